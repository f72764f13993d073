/* route-health.c: GET / and /health (liveness), GET /health/readiness. */
#include <unistd.h>

#include "config.h"
#include "route.h"
#include "store.h"

/* Alive: the process answers. Nothing else is checked. */
int
route_health(struct request *r, const char *arg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "status", json_object_new_string("ok"));
	json_object_object_add(o, "service", json_object_new_string("llmgate"));
	json_object_object_add(o, "version",
	    json_object_new_string(PACKAGE_VERSION));
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/*
 * Ready: at least one provider can be used, the data directory is
 * writable and the store is open, writable and healthy. 503 with the
 * reasons otherwise; "store": "needs_recovery" while the gateway waits
 * for every process to leave a panicked store and recovers it.
 */
int
route_readiness(struct request *r, const char *arg)
{
	const struct config	*cfg = r->cfg;
	struct json_object	*o, *checks;
	size_t			 i, avail = 0;
	struct store		*st = r->worker->store;
	int			 data_ok, store_ok, ready;

	for (i = 0; i < cfg->nproviders; i++)
		if (cfg->providers[i].available)
			avail++;
	data_ok = access(cfg->gw.data_dir, W_OK | X_OK) == 0;
	store_ok = !cfg->gw.accounting ||
	    (st != NULL && !store_panicked(st) && !store_readonly(st));
	ready = avail > 0 && data_ok && store_ok;
	checks = json_object_new_object();
	json_object_object_add(checks, "providers_available",
	    json_object_new_int64((int64_t)avail));
	json_object_object_add(checks, "providers_configured",
	    json_object_new_int64((int64_t)cfg->nproviders));
	json_object_object_add(checks, "data_dir_writable",
	    json_object_new_boolean(data_ok));
	json_object_object_add(checks, "store",
	    json_object_new_string(!cfg->gw.accounting ? "off" :
	    store_health(st)));
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(ready ? "ready" : "not_ready"));
	json_object_object_add(o, "checks", checks);
	http_send_json(r, ready ? 200 : 503, o);
	json_object_put(o);
	return ready ? 200 : 503;
}
