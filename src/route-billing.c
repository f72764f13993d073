/* route-billing.c: being written. */
