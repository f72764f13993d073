/* account.c: being written. */
