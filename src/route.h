/* route.h: the route table entry every route-*.c exports, and the worker. */
#ifndef LLMGATE_ROUTE_H
#define LLMGATE_ROUTE_H

#include <curl/curl.h>

#include "http.h"

/* What one thread of a process keeps between requests. */
struct worker {
	int	 id;
	CURL	*curl;		/* one reused handle: connections stay warm */
};

/* Flags the dispatcher checks before a handler runs. */
#define ROUTE_NEEDS_KEY	0x01u	/* a valid client key is required */
#define ROUTE_BODY	0x02u	/* read the request body first */
#define ROUTE_PREFIX	0x04u	/* path is a prefix; the rest is an argument */

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
/* route-models.c */
int	route_models(struct request *, const char *);
int	route_model(struct request *, const char *);
int	route_providers(struct request *, const char *);
/* route-embeddings.c */
int	route_embeddings(struct request *, const char *);
/* route-images.c */
int	route_images(struct request *, const char *);
/* route-health.c */
int	route_health(struct request *, const char *);
int	route_readiness(struct request *, const char *);

#endif
