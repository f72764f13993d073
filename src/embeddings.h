/*
 * embeddings.h: the checks and translations of POST /v1/embeddings, and the
 * retry-and-fallback loop of one non-streamed JSON call that
 * route-images.c shares (both live in route-embeddings.c).
 */
#ifndef LLMGATE_EMBEDDINGS_H
#define LLMGATE_EMBEDDINGS_H

#include <json-c/json.h>

#include "buf.h"
#include "http.h"
#include "account.h"
#include "plan.h"
#include "provider.h"
#include "retry.h"
#include "validate.h"

/* Most inputs one embeddings request may carry (OpenAI's own limit). */
#define EMBEDDINGS_INPUT_MAX	2048

/* A validated request: model, input, encoding_format, dimensions, user. */
int	embeddings_validate(struct json_object *, struct verr *);

/*
 * Append the base64 of an array of numbers as little-endian float32 to
 * out, as the OpenAI SDKs decode it. -1 when a member is not a number or
 * out is full.
 */
int	embeddings_base64(struct json_object *, struct buf *);

/*
 * Build the upstream call for a validated request to candidate c. -1 with
 * e filled when c's protocol cannot take it, -1 with e empty when out of
 * memory.
 */
int	embeddings_request(const struct candidate *, struct json_object *,
	    struct provider_call *, struct provider_error *);

/*
 * Translate a 2xx upstream body into the OpenAI list the client asked for
 * (floats or base64); the caller owns *out. u->known is 0 when the tokens
 * are an estimate. -1 with e filled when the body is malformed.
 */
int	embeddings_response(const struct candidate *, struct json_object *,
	    const char *, size_t, struct json_object **, struct usage *,
	    struct provider_error *);

/* What a route plugs into the JSON call loop; ctx is the route's own. */
struct jcall_ops {
	/*
	 * Build the call to a candidate. -1 with e filled when this
	 * candidate cannot take the request (the next one is tried, and the
	 * client gets a 400 if none can), -1 with e empty when out of memory.
	 */
	int	(*build)(void *, const struct candidate *,
		    struct provider_call *, struct provider_error *);
	/*
	 * Translate a 2xx body into the client's answer (the caller owns
	 * *out; NULL sends the body as it came). -1 with e filled when the
	 * body is malformed.
	 */
	int	(*reply)(void *, const struct candidate *, const char *, size_t,
		    struct json_object **, struct provider_error *);
};

/* One non-streamed JSON call over a model's plan; lives on the stack. */
struct jcall {
	struct request		*r;
	const struct jcall_ops	*ops;
	void			*ctx;
	struct plan		 plan;
	struct account		 acct;
	int64_t			 prompt_est;	/* prompt tokens reserved */
	int64_t			 images;	/* images reserved */
	uint32_t		 flags;		/* USAGE_* of the cost */
	int			 refused;	/* admission refused: recorded at no cost */
	const struct candidate	*cand;	/* the one that answered or failed last */
	int			 attempts;
	/* The last failure, answered when nothing else remains. */
	struct retry_failure	 fail;	/* the last failure */
};

int	jcall_run(struct jcall *, const char *);
void	jcall_record(struct jcall *, const char *, const struct usage *,
	    money_t);

#endif
