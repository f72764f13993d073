/* route-admin.c: being written (stubs answer 501). */
#include "route.h"
#define STUB(f) int f(struct request *r, const char *a) { (void)a; return http_error(r, 501, "server_error", NULL, NULL, "not built yet"); }
STUB(route_admin_keys)
STUB(route_admin_key_create)
STUB(route_admin_key)
STUB(route_admin_key_update)
STUB(route_admin_topup)
STUB(route_admin_adjust)
