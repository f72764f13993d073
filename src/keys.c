/* keys.c: being written. */
