/*
 * route-health.c: GET / and /health (liveness), GET /health/readiness,
 * and for the master key GET /health/circuit-breakers and
 * /health/detailed (they name providers, models and upstream errors).
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "breaker.h"
#include "config.h"
#include "provider.h"
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

/* --- circuit breakers --------------------------------------------------- */

/* Every used slot of the process's region; NULL (answered 503) if none. */
static struct breaker_info *
breakers(struct request *r, size_t *n, struct breaker_stats *st)
{
	struct breaker_region	*reg;
	struct breaker_info	*in;

	if ((reg = breaker_process_region(r->cfg)) == NULL ||
	    (in = calloc(BREAKER_SLOTS, sizeof(*in))) == NULL) {
		http_error(r, 503, "service_unavailable_error",
		    "breaker_unavailable", NULL, "the circuit breaker region "
		    "in data_dir cannot be used; see the gateway's error log");
		return NULL;
	}
	*n = breaker_region_list(reg, in, BREAKER_SLOTS, st);
	return in;
}

static struct json_object *
ms_or_null(int64_t ms)
{
	return ms > 0 ? json_object_new_int64(ms / 1000) : NULL;
}

static struct json_object *
latency(int64_t last, int64_t avg)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "last", last >= 0 ?
	    json_object_new_int64(last) : NULL);
	json_object_object_add(o, "avg", avg >= 0 ?
	    json_object_new_int64(avg) : NULL);
	return o;
}

/* The last error: redacted when recorded, never the upstream's body. */
static struct json_object *
last_error(const struct breaker_info *b)
{
	struct json_object	*o;

	if (b->last_error_ms == 0)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "message",
	    json_object_new_string(b->last_error));
	json_object_object_add(o, "at", ms_or_null(b->last_error_ms));
	return o;
}

static struct json_object *
breaker_json(const struct breaker_info *b, int64_t now)
{
	struct json_object	*o = json_object_new_object(), *w;
	char			 dep[BREAKER_DEPLOYMENT_MAX];

	snprintf(dep, sizeof(dep), "%s/%s", b->provider, b->model);
	json_object_object_add(o, "deployment", json_object_new_string(dep));
	json_object_object_add(o, "provider",
	    json_object_new_string(b->provider));
	json_object_object_add(o, "model", json_object_new_string(b->model));
	json_object_object_add(o, "state",
	    json_object_new_string(breaker_state_names[b->state]));
	json_object_object_add(o, "consecutive_failures",
	    json_object_new_int64(b->consecutive_failures));
	json_object_object_add(o, "consecutive_successes",
	    json_object_new_int64(b->consecutive_successes));
	json_object_object_add(o, "probes_in_flight",
	    json_object_new_int64(b->probes_in_flight));
	json_object_object_add(o, "opened_at", ms_or_null(b->opened_ms));
	json_object_object_add(o, "next_probe_at",
	    ms_or_null(b->next_probe_ms));
	json_object_object_add(o, "retry_after", json_object_new_int64(
	    b->next_probe_ms > now ? (b->next_probe_ms - now + 999) / 1000 :
	    0));
	json_object_object_add(o, "trips", json_object_new_int64(b->trips));
	json_object_object_add(o, "requests",
	    json_object_new_int64((int64_t)b->requests));
	json_object_object_add(o, "failures",
	    json_object_new_int64((int64_t)b->failures));
	w = json_object_new_object();
	json_object_object_add(w, "requests",
	    json_object_new_int64(b->window_requests));
	json_object_object_add(w, "failures",
	    json_object_new_int64(b->window_failures));
	json_object_object_add(o, "window", w);
	json_object_object_add(o, "last_error", last_error(b));
	json_object_object_add(o, "latency_ms",
	    latency(b->last_latency_ms, b->avg_latency_ms));
	return o;
}

/* Is a slot a pool key's (provider-keys.c), not a deployment's? */
static int
key_slot(const struct breaker_info *b)
{
	return strncmp(b->model, PROVIDER_KEY_SLOT,
	    strlen(PROVIDER_KEY_SLOT)) == 0;
}

/*
 * One key of p's pool, by index and fingerprint (never the key): "ok",
 * "set_aside" (refused: not sent until set_aside_until) or "probing" (one
 * request tries it again).
 */
static struct json_object *
key_json(const struct provider_cfg *p, size_t k, const struct breaker_info *in,
    size_t n, int *aside)
{
	const struct breaker_info	*b = NULL;
	struct json_object		*o = json_object_new_object();
	const char			*state = "ok";
	size_t				 i;

	for (i = 0; i < n && b == NULL; i++)
		if (strncmp(in[i].provider, p->name, BREAKER_PROVIDER_MAX) ==
		    0 && provider_key_slot(p, in[i].model) == (int)k)
			b = &in[i];
	if (b != NULL && b->state == BREAKER_OPEN)
		state = "set_aside";
	else if (b != NULL && b->state == BREAKER_HALF_OPEN)
		state = "probing";
	*aside += b != NULL && b->state != BREAKER_CLOSED;
	json_object_object_add(o, "index", json_object_new_int64((int64_t)k +
	    1));
	json_object_object_add(o, "fingerprint",
	    json_object_new_string(p->key_fp[k]));
	json_object_object_add(o, "state", json_object_new_string(state));
	json_object_object_add(o, "set_aside_until", b != NULL &&
	    b->state == BREAKER_OPEN ? ms_or_null(b->next_probe_ms) : NULL);
	json_object_object_add(o, "refusals", json_object_new_int64(b != NULL ?
	    (int64_t)b->failures : 0));
	json_object_object_add(o, "last_refused_at", b != NULL ?
	    ms_or_null(b->last_error_ms) : NULL);
	json_object_object_add(o, "last_error", b != NULL &&
	    b->last_error_ms > 0 ? json_object_new_string(b->last_error) :
	    NULL);
	return o;
}

/* GET /health/circuit-breakers: every tracked deployment. */
int
route_circuit_breakers(struct request *r, const char *arg)
{
	struct breaker_info	*in;
	struct breaker_stats	 st;
	struct json_object	*o, *data, *slots;
	int64_t			 now = breaker_now_ms();
	size_t			 i, n;

	(void)arg;
	if ((in = breakers(r, &n, &st)) == NULL)
		return r->status;
	data = json_object_new_array();
	for (i = 0; i < n; i++)
		if (!key_slot(&in[i]))	/* pool keys: /health/detailed */
			json_object_array_add(data, breaker_json(&in[i], now));
	slots = json_object_new_object();
	json_object_object_add(slots, "total", json_object_new_int64(st.slots));
	json_object_object_add(slots, "used", json_object_new_int64(st.used));
	json_object_object_add(slots, "evictions",
	    json_object_new_int64((int64_t)st.evictions));
	json_object_object_add(slots, "overflows",
	    json_object_new_int64((int64_t)st.overflows));
	json_object_object_add(slots, "dead_lock_holders",
	    json_object_new_int64((int64_t)st.dead_owners));
	json_object_object_add(slots, "lock_timeouts",
	    json_object_new_int64((int64_t)st.lock_timeouts));
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "enabled",
	    json_object_new_boolean(r->cfg->gw.breaker.enabled));
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "slots", slots);
	http_send_json(r, 200, o);
	json_object_put(o);
	free(in);
	return 200;
}

/* The worse of two states for a provider's summary: open, half, closed. */
static enum breaker_state
worse(enum breaker_state a, enum breaker_state b)
{
	static const int	 rank[BREAKER__MAX] = { 0, 2, 1 };

	return rank[b] > rank[a] ? b : a;
}

static struct json_object *
provider_json(const struct provider_cfg *p, const struct breaker_info *in,
    size_t n, int *degraded)
{
	struct json_object		*o, *deps, *e, *keys;
	const struct breaker_info	*err = NULL, *recent = NULL;
	int				 aside = 0;
	enum breaker_state		 state = BREAKER_CLOSED;
	int64_t				 sum = 0, weight = 0;
	uint64_t			 reqs = 0, fails = 0;
	size_t				 i, nopen = 0;

	o = json_object_new_object();
	deps = json_object_new_array();
	for (i = 0; i < n; i++) {
		if (strncmp(in[i].provider, p->name, BREAKER_PROVIDER_MAX) !=
		    0 || key_slot(&in[i]))
			continue;
		state = worse(state, in[i].state);
		nopen += in[i].state != BREAKER_CLOSED;
		reqs += in[i].requests;
		fails += in[i].failures;
		if (in[i].last_error_ms > 0 && (err == NULL ||
		    in[i].last_error_ms > err->last_error_ms))
			err = &in[i];
		if (in[i].last_latency_ms >= 0 && (recent == NULL ||
		    in[i].used_ms > recent->used_ms))
			recent = &in[i];
		if (in[i].avg_latency_ms >= 0 && in[i].requests > 0) {
			sum += in[i].avg_latency_ms * (int64_t)in[i].requests;
			weight += (int64_t)in[i].requests;
		}
		json_object_array_add(deps, json_object_new_string(
		    in[i].model));
	}
	*degraded |= nopen > 0;
	json_object_object_add(o, "name", json_object_new_string(p->name));
	json_object_object_add(o, "type",
	    json_object_new_string(provider_type_names[p->type]));
	json_object_object_add(o, "available",
	    json_object_new_boolean(p->available));
	json_object_object_add(o, "breaker_enabled",
	    json_object_new_boolean(p->breaker.enabled));
	json_object_object_add(o, "breaker",
	    json_object_new_string(breaker_state_names[state]));
	json_object_object_add(o, "deployments", deps);
	json_object_object_add(o, "open_deployments",
	    json_object_new_int64((int64_t)nopen));
	json_object_object_add(o, "requests",
	    json_object_new_int64((int64_t)reqs));
	json_object_object_add(o, "failures",
	    json_object_new_int64((int64_t)fails));
	if ((e = err != NULL ? last_error(err) : NULL) != NULL)
		json_object_object_add(e, "model",
		    json_object_new_string(err->model));
	json_object_object_add(o, "last_error", e);
	json_object_object_add(o, "latency_ms", latency(recent != NULL ?
	    recent->last_latency_ms : -1, weight > 0 ? sum / weight : -1));
	keys = json_object_new_array();
	for (i = 0; i < p->nkeys; i++)
		json_object_array_add(keys, key_json(p, i, in, n, &aside));
	json_object_object_add(o, "keys", keys);
	json_object_object_add(o, "keys_set_aside",
	    json_object_new_int64(aside));
	*degraded |= aside > 0;
	return o;
}

/* GET /health/detailed: per configured provider, its breakers' summary. */
int
route_health_detailed(struct request *r, const char *arg)
{
	const struct config	*cfg = r->cfg;
	struct breaker_info	*in;
	struct breaker_stats	 st;
	struct json_object	*o, *provs;
	size_t			 i, n;
	int			 degraded = 0;

	(void)arg;
	if ((in = breakers(r, &n, &st)) == NULL)
		return r->status;
	provs = json_object_new_array();
	for (i = 0; i < cfg->nproviders; i++)
		json_object_array_add(provs, provider_json(&cfg->providers[i],
		    in, n, &degraded));
	o = json_object_new_object();
	json_object_object_add(o, "status",
	    json_object_new_string(degraded ? "degraded" : "ok"));
	json_object_object_add(o, "store", json_object_new_string(
	    !cfg->gw.accounting ? "off" : store_health(r->worker->store)));
	json_object_object_add(o, "providers", provs);
	http_send_json(r, 200, o);
	json_object_put(o);
	free(in);
	return 200;
}
