/* router.c: the route table; flags (key, admin, body) are enforced before a handler runs. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "account.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "route.h"

static const struct route routes[] = {
	{ HTTP_POST, "/v1/chat/completions", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_chat, "chat" },
	{ HTTP_POST, "/v1/completions", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_completions, "completions" },
	{ HTTP_POST, "/v1/responses", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_responses, "responses" },
	{ HTTP_POST, "/v1/messages", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_messages, "messages" },
	{ HTTP_POST, "/v1/messages/count_tokens", ROUTE_NEEDS_KEY | ROUTE_BODY,
	  route_count_tokens, "count_tokens" },
	{ HTTP_POST, "/v1/embeddings", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_embeddings, "embeddings" },
	{ HTTP_POST, "/v1/images/generations", ROUTE_NEEDS_KEY | ROUTE_BODY | ROUTE_MODEL,
	  route_images, "images" },
	{ HTTP_GET, "/v1/models", ROUTE_NEEDS_KEY, route_models, "models" },
	{ HTTP_GET, "/v1/models/", ROUTE_NEEDS_KEY | ROUTE_PREFIX,
	  route_model, "model" },
	{ HTTP_GET, "/v1/providers", ROUTE_NEEDS_KEY, route_providers,
	  "providers" },
	{ HTTP_GET, "/billing/balance", ROUTE_NEEDS_KEY,
	  route_billing_balance, "balance" },
	{ HTTP_GET, "/billing/transactions", ROUTE_NEEDS_KEY,
	  route_billing_transactions, "transactions" },
	{ HTTP_GET, "/billing/usage", ROUTE_NEEDS_KEY, route_billing_usage,
	  "billing_usage" },
	{ HTTP_GET, "/usage", ROUTE_NEEDS_KEY, route_usage, "usage" },
	{ HTTP_GET, "/admin/keys", ROUTE_ADMIN, route_admin_keys,
	  "admin_keys" },
	{ HTTP_POST, "/admin/keys", ROUTE_ADMIN | ROUTE_BODY,
	  route_admin_key_create, "admin_key_create" },
	{ HTTP_GET, "/admin/keys/", ROUTE_ADMIN | ROUTE_PREFIX,
	  route_admin_key, "admin_key" },
	{ HTTP_POST, "/admin/keys/", ROUTE_ADMIN | ROUTE_PREFIX | ROUTE_BODY,
	  route_admin_key_update, "admin_key_update" },
	{ HTTP_DELETE, "/admin/keys/", ROUTE_ADMIN | ROUTE_PREFIX,
	  route_admin_key_delete, "admin_key_delete" },
	{ HTTP_GET, "/admin/usage", ROUTE_ADMIN, route_admin_usage,
	  "admin_usage" },
	{ HTTP_POST, "/admin/topup", ROUTE_ADMIN | ROUTE_BODY,
	  route_admin_topup, "admin_topup" },
	{ HTTP_POST, "/admin/adjust", ROUTE_ADMIN | ROUTE_BODY,
	  route_admin_adjust, "admin_adjust" },
	{ HTTP_GET, "/admin/dashboard/series", ROUTE_ADMIN,
	  route_dashboard_series, "dashboard_series" },
	{ HTTP_GET, "/admin/dashboard/log", ROUTE_ADMIN, route_dashboard_log,
	  "dashboard_log" },
	{ HTTP_GET, "/", 0, route_health, "root" },
	{ HTTP_GET, "/health", 0, route_health, "health" },
	{ HTTP_GET, "/health/readiness", 0, route_readiness, "readiness" },
	/* breaker: provider names and upstream errors: the master key only. */
	{ HTTP_GET, "/health/circuit-breakers", ROUTE_ADMIN,
	  route_circuit_breakers, "circuit_breakers" },
	{ HTTP_GET, "/health/detailed", ROUTE_ADMIN, route_health_detailed,
	  "health_detailed" },
	/* metrics: its own guard (metrics_key, metrics_allow, master key). */
	{ HTTP_GET, "/metrics", 0, route_metrics, "metrics" },
};

#define NROUTES	(sizeof(routes) / sizeof(routes[0]))

/*
 * The error body of a route whose clients speak another protocol than
 * OpenAI's (client.h), from the first check on: NULL for OpenAI's.
 */
static http_error_fn
error_shape(const struct route *rt)
{
	if (rt->handler == route_messages || rt->handler == route_count_tokens)
		return client_anthropic_error;
	return NULL;
}

/* Returns the argument after the path, or NULL when path does not match. */
static const char *
match(const struct route *rt, const char *path)
{
	size_t	 n = strlen(rt->path);

	if (rt->flags & ROUTE_PREFIX) {
		if (strncmp(path, rt->path, n) != 0 || path[n] == '\0')
			return NULL;
		return path + n;
	}
	if (strcmp(path, rt->path) == 0)
		return "";
	/* A trailing slash is forgiven. */
	if (strncmp(path, rt->path, n) == 0 && path[n] == '/' &&
	    path[n + 1] == '\0')
		return "";
	return NULL;
}

static int
dispatch(struct request *r, struct principal *who)
{
	const struct route	*rt;
	const char		*arg;
	char			 allow[64];
	size_t			 i, n = 0;
	int			 rc;

	if (http_parse(r) == -1)
		return http_error(r, 414, "invalid_request_error", NULL, NULL,
		    "request path is too long");
	for (i = 0; i < NROUTES; i++) {
		rt = &routes[i];
		if ((arg = match(rt, r->path)) == NULL)
			continue;
		if (rt->method != r->method &&
		    !(rt->method == HTTP_GET && r->method == HTTP_HEAD)) {
			/* The methods the path takes, for a 405's Allow. */
			if (n < sizeof(allow))
				n += (size_t)snprintf(allow + n, sizeof(allow) -
				    n, "%s%s", n > 0 ? ", " : "",
				    rt->method == HTTP_GET ? "GET, HEAD" :
				    rt->method == HTTP_DELETE ? "DELETE" : "POST");
			continue;
		}
		r->route = rt->name;
		r->error_object = error_shape(rt);
		if ((rt->flags & (ROUTE_NEEDS_KEY | ROUTE_ADMIN)) &&
		    (rc = account_authenticate(r, who)) != 0)
			return rc;
		if ((rt->flags & ROUTE_ADMIN) && !who->master)
			return http_error(r, 403, "permission_error",
			    "admin_only", NULL, "%s %s needs the master key",
			    r->method_name, r->path);
		if (rt->flags & ROUTE_BODY) {
			switch (http_read_body(r)) {
			case HTTP_BODY_OK:
				break;
			case HTTP_BODY_TOOBIG:
				return http_error(r, 413, "invalid_request_error",
				    "request_too_large", NULL, "request body is "
				    "larger than max_body (%ld bytes)",
				    r->cfg->gw.max_body);
			case HTTP_BODY_BADLENGTH:
				return http_error(r, 400, "invalid_request_error",
				    "invalid_content_length", NULL,
				    "invalid Content-Length");
			default:
				return http_error(r, 400, "invalid_request_error",
				    NULL, NULL, "request body is shorter than "
				    "Content-Length");
			}
		}
		if (!(rt->flags & ROUTE_MODEL))
			return rt->handler(r, arg);
		metrics_inflight(1);
		rc = rt->handler(r, arg);
		metrics_inflight(-1);
		return rc;
	}
	if (n > 0) {
		http_header(r, "Allow", "%s", allow);
		return http_error(r, 405, "invalid_request_error",
		    "method_not_allowed", NULL, "%s is not allowed on %s",
		    r->method_name, r->path);
	}
	return http_error(r, 404, "invalid_request_error", "not_found", NULL,
	    "no route %s %s", r->method_name, r->path);
}

/* The access line in JSON format. */
static void
access_json(const struct request *r)
{
	struct log_fields	*f;
	char			 tp[TRACEPARENT_LEN + 1];

	if ((f = malloc(sizeof(*f))) == NULL)
		return;
	log_fields_init(f);
	log_field_str(f, "event", "access");
	log_field_str(f, "request_id", r->id);
	log_field_str(f, "method", r->method_name);
	log_field_str(f, "path", r->path);
	log_field_int(f, "status", r->status);
	log_field_str(f, "route", r->route ? r->route : "");
	log_field_str(f, "served", r->served);
	log_field_int(f, "attempts", r->attempts);
	log_field_int(f, "bytes", (long long)r->bytes_out);
	log_field_int(f, "latency_ms", (long long)http_elapsed_ms(r));
	log_field_int(f, "client_gone", r->client_gone != 0);
	trace_header(&r->trace, tp, sizeof(tp));
	log_field_str(f, "traceparent", tp);
	log_msg_fields(LOG_INFO, f, "access %s", r->id);
	free(f);
}

/*
 * Route one request, then write its access log line, unless the handler
 * already logged the request in a usage line (one line per request).
 */
int
router_dispatch(struct request *r)
{
	struct principal	 who;
	int			 rc;

	rc = dispatch(r, &who);
	if (!r->headers_sent)
		rc = http_error(r, 500, "server_error", NULL, NULL,
		    "the handler sent no response");
	if (r->logged && !r->client_gone)
		return rc;
	if (log_json) {
		access_json(r);
		return rc;
	}
	log_info("access id=%s %s %s %d route=%s served=%s attempts=%d "
	    "bytes=%llu ms=%.1f%s", r->id, r->method_name, r->path, r->status,
	    r->route ? r->route : "-", r->served[0] ? r->served : "-",
	    r->attempts, (unsigned long long)r->bytes_out, http_elapsed_ms(r),
	    r->client_gone ? " client_gone" : "");
	return rc;
}
