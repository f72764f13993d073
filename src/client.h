/*
 * client.h: the protocol a chat client speaks. route-chat.c runs ONE
 * pipeline (policy step, plan, admission, call loop, output guard,
 * settlement, metrics) over the gateway's internal request, which is an
 * OpenAI chat request; a client_ops turns the client's body into it,
 * and what the gateway would send an OpenAI client (each chunk of a
 * stream as emitted after the output guard, the stream's end or its
 * in-band failure, the whole reply, errors) into the client's protocol.
 *
 * client_openai is the default (POST /v1/chat/completions);
 * client_anthropic speaks the Anthropic Messages API (POST /v1/messages).
 */
#ifndef LLMGATE_CLIENT_H
#define LLMGATE_CLIENT_H

#include "buf.h"
#include "http.h"
#include "provider.h"

struct client_ops;

/* One client request's protocol state; lives in route-chat's struct. */
struct client {
	const struct client_ops	*ops;
	struct request		*r;
	/* The client's own parsed body, kept by ops->request (may be NULL). */
	struct json_object	*body;
	void			*state;		/* the ops' own; ops->free frees it */
	/*
	 * Set by route-chat.c before the stream or reply is translated: the
	 * usage of the attempt in flight (the adapter's, updated as events
	 * go by; known 0 until the upstream gave some), the gateway's
	 * prompt estimate, and the model the client asked for.
	 */
	const struct usage	*usage;
	int64_t			 prompt_est;
	const char		*model;
	int			 stream;	/* the internal request streams */
};

/* Every slot is required unless it says optional. */
struct client_ops {
	const char	*name;		/* "openai", "anthropic", ... */

	/*
	 * The client's body (c->r->body) into the internal OpenAI chat
	 * request (the caller owns *out; route-chat.c still runs
	 * validate_chat over it). 0; else the HTTP status of the error
	 * this function answered (http_error, in the request's shape).
	 */
	int		(*request)(struct client *, struct json_object **);

	/*
	 * Optional: native pass-through. The upstream call to cand in the
	 * client's own protocol, built after the policy step ran over the
	 * internal request in (what the policy rewrote must be in it).
	 * Returns 1 when cand's protocol (ops) is not the client's (the
	 * adapter builds the call), else as provider_ops.chat_request. The
	 * upstream's answer is still read by ops (the candidate's adapter).
	 */
	int		(*native)(struct client *, const struct candidate *,
			    const struct provider_ops *, const struct chat_in *,
			    struct provider_call *, struct provider_error *);

	/*
	 * A whole answer: the OpenAI chat.completion the gateway would send
	 * (restored and checked by the output guard) into the client's
	 * (the caller owns the result). NULL: out of memory.
	 */
	struct json_object *(*reply)(struct client *, struct json_object *);

	/*
	 * Streams: the bytes of the client's stream appended to out for one
	 * OpenAI chunk (as the gateway would send it, after the output
	 * guard), for the stream's normal end, and for a failure after the
	 * stream began (e: in OpenAI terms). 0, or -1 out of memory.
	 */
	int		(*chunk)(struct client *, struct json_object *,
			    struct buf *);
	int		(*done)(struct client *, struct buf *);
	int		(*fail)(struct client *, const struct provider_error *,
			    struct buf *);

	/*
	 * Optional: the error body of the client's protocol for
	 * http_error (NULL: OpenAI's). route.h's struct route names it so
	 * that the router's own errors (no key, body too large) have it.
	 */
	http_error_fn	 error_object;

	/* Optional: free c->state. */
	void		(*free)(struct client *);

	/*
	 * Optional, with native: relay the upstream's own answer when the
	 * call went natively and no output guard is active (nothing of the
	 * answer to restore or check). The candidate's adapter still reads
	 * every event first (usage, finish, billing); relay gets the events
	 * it accepted (an error event goes to fail instead) and appends the
	 * bytes the client gets; done is still called at the stream's end.
	 * relay_reply turns the upstream's whole 2xx body into the client's
	 * answer (NULL: translate it as usual).
	 */
	int		(*relay)(struct client *, const struct sse_event *,
			    struct buf *);
	struct json_object *(*relay_reply)(struct client *, const char *,
			    size_t);
};

extern const struct client_ops client_openai;
extern const struct client_ops client_anthropic;

/* The chat pipeline for a client of protocol ops; returns the status. */
int	route_chat_as(struct request *, const struct client_ops *);

#endif
