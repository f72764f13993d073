/* route-admin.c: being written. */
