/* route.h: the route table entry every route-*.c exports, and the worker. */
#ifndef LLMGATE_ROUTE_H
#define LLMGATE_ROUTE_H

#include <curl/curl.h>

#include "http.h"

struct store;

/* What one thread of a process keeps between requests. */
struct worker {
	int		 id;
	CURL		*curl;		/* one reused handle: connections stay warm */
	struct store	*store;		/* the process's store, or NULL */
};

/* Flags the dispatcher checks before a handler runs. */
#define ROUTE_NEEDS_KEY	0x01u	/* a valid client key is required */
#define ROUTE_BODY	0x02u	/* read the request body first */
#define ROUTE_PREFIX	0x04u	/* path is a prefix; the rest is an argument */
#define ROUTE_ADMIN	0x08u	/* only the master key (implies NEEDS_KEY) */
#define ROUTE_MODEL	0x10u	/* a model request: counted in flight */

/* A handler answers the request itself and returns its HTTP status. */
typedef int (*route_fn)(struct request *, const char *);

struct route {
	enum http_method	 method;
	const char		*path;
	unsigned		 flags;
	route_fn		 handler;
	const char		*name;
};

int	router_dispatch(struct request *);

/* route-chat.c */
int	route_chat(struct request *, const char *);
/* route-completions.c: the legacy text completion (prompt, suffix) */
int	route_completions(struct request *, const char *);
/* client-responses.c: the OpenAI Responses API, stateless */
int	route_responses(struct request *, const char *);
/* client-anthropic.c: the Anthropic Messages API */
int	route_messages(struct request *, const char *);
int	route_count_tokens(struct request *, const char *);
struct json_object *client_anthropic_error(int, const char *, const char *,
	    const char *, const char *);
/* route-models.c */
int	route_models(struct request *, const char *);
int	route_model(struct request *, const char *);
int	route_providers(struct request *, const char *);
/* route-embeddings.c */
int	route_embeddings(struct request *, const char *);
/* route-images.c */
int	route_images(struct request *, const char *);
/* route-billing.c: the caller's own money and usage */
int	route_billing_balance(struct request *, const char *);
int	route_billing_transactions(struct request *, const char *);
int	route_billing_usage(struct request *, const char *);
int	route_usage(struct request *, const char *);
/* route-admin.c: master key only */
int	route_admin_keys(struct request *, const char *);	/* GET list */
int	route_admin_key_create(struct request *, const char *);	/* POST */
int	route_admin_key(struct request *, const char *);	/* GET /admin/keys/ID */
int	route_admin_key_update(struct request *, const char *); /* POST /admin/keys/ID[/disable|enable|rotate] */
int	route_admin_key_delete(struct request *, const char *); /* DELETE /admin/keys/ID */
int	route_admin_usage(struct request *, const char *);	/* GET /admin/usage */
int	route_admin_topup(struct request *, const char *);	/* POST */
int	route_admin_adjust(struct request *, const char *);	/* POST */
/* route-dashboard.c: master key only */
int	route_dashboard_series(struct request *, const char *);	/* GET series */
int	route_dashboard_log(struct request *, const char *);	/* GET usage log */
/* route-health.c */
int	route_health(struct request *, const char *);
int	route_readiness(struct request *, const char *);
int	route_circuit_breakers(struct request *, const char *);	/* master key */
int	route_health_detailed(struct request *, const char *);	/* master key */
/* route-metrics.c */
int	route_metrics(struct request *, const char *);	/* its own guard */

#endif
