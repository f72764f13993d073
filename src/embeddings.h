/*
 * embeddings.h: POST /v1/embeddings: the request's checks and shapes, and
 * the calls every protocol with the embeddings slots of provider_ops
 * answers through (route-embeddings.c).
 */
#ifndef LLMGATE_EMBEDDINGS_H
#define LLMGATE_EMBEDDINGS_H

#include <json-c/json.h>

#include "buf.h"
#include "plan.h"
#include "provider.h"
#include "validate.h"

/* Most inputs one embeddings request may carry (OpenAI's own limit). */
#define EMBEDDINGS_INPUT_MAX	2048

/* The shapes OpenAI accepts for input. */
enum embeddings_input {
	EMBEDDINGS_TEXT,		/* "text" */
	EMBEDDINGS_TEXTS,		/* ["a", "b"] */
	EMBEDDINGS_TOKENS,		/* [1, 2, 3]: one input as token ids */
	EMBEDDINGS_TOKEN_LISTS,		/* [[1, 2], [3]] */
};

/* A validated request: model, input, encoding_format, dimensions, user. */
int	embeddings_validate(struct json_object *, struct verr *);

/* The shape of a validated input, judged by its first member. */
enum embeddings_input embeddings_input_kind(struct json_object *);

/* How many embeddings a validated input asks for. */
size_t	embeddings_input_count(struct json_object *);

/*
 * Append the base64 of an array of numbers as little-endian float32 to
 * out, as the OpenAI SDKs decode it. -1 when a member is not a number or
 * out is full.
 */
int	embeddings_base64(struct json_object *, struct buf *);

/*
 * Build the upstream call for a validated request to candidate c through
 * its protocol's embeddings_request. -1 with e filled when c's protocol
 * cannot take it (no embeddings slot, or not this input), -1 with e empty
 * when out of memory.
 */
int	embeddings_request(const struct candidate *, struct json_object *,
	    struct provider_call *, struct provider_error *);

/*
 * Translate a 2xx upstream body into the OpenAI list the client asked for
 * (floats or base64, the served model, usage); the caller owns *out.
 * u->known is 0 when the tokens are an estimate. -1 with e filled when the
 * body is malformed.
 */
int	embeddings_response(const struct candidate *, struct json_object *,
	    const char *, size_t, struct json_object **, struct usage *,
	    struct provider_error *);

struct guard;
struct request;

/*
 * The gateway's own embeddings call for one text (the semantic cache's):
 * model planned for the request's key (its model list and price rule,
 * the guard's residency), the call loop over its candidates with
 * fallback, settled as a usage row of route "embeddings" flagged
 * semantic. Nothing is sent to the client and the request's status is
 * left alone. Returns the vector (a JSON array the caller owns), or NULL
 * when it failed (logged).
 */
struct json_object *embeddings_internal(struct request *,
	    const struct guard *, const char *, const char *);

#endif
