/* route-billing.c: being written (stubs answer 501). */
#include "route.h"
#define STUB(f) int f(struct request *r, const char *a) { (void)a; return http_error(r, 501, "server_error", NULL, NULL, "not built yet"); }
STUB(route_billing_balance)
STUB(route_billing_transactions)
STUB(route_billing_usage)
STUB(route_usage)
