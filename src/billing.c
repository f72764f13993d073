/* billing.c: being written. */
