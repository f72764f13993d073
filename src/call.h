/*
 * call.h: the one upstream-call loop every route uses: a plan's candidates
 * in turn, each tried up to [retry] attempts (re-authenticated once on a
 * 401 where the protocol can), fallback, and the last error for the client.
 */
#ifndef LLMGATE_CALL_H
#define LLMGATE_CALL_H

#include "account.h"
#include "breaker.h"
#include "http.h"
#include "plan.h"
#include "policy.h"
#include "provider.h"
#include "upstream.h"

/*
 * What one attempt says about the deployment tried (a candidate's provider
 * and upstream model): what a circuit breaker counts. Timeouts, connection
 * errors and the upstream's own failures count; the client's own request
 * refused, or the client leaving, do not.
 */
enum call_outcome {
	CALL_SUCCESS,		/* a 2xx answer its protocol allows */
	CALL_FAILURE,		/* 5xx, 429, 404, our key refused, no token,
				   unreachable, a broken or malformed answer */
	CALL_TIMEOUT,		/* connect, first byte, idle or total timeout */
	CALL_CLIENT_ERROR,	/* an upstream 4xx about the client's request,
				   one this protocol cannot say, or one the
				   gateway could not build (out of memory) */
	CALL_ABORTED,		/* the client went away during the transfer */
	CALL_KEY_REFUSED,	/* a pool key refused (401, 403, quota), or
				   every key set aside: the key is blamed,
				   not the deployment */
	CALL_OUTCOME__MAX
};

extern const char *const call_outcome_names[CALL_OUTCOME__MAX];

/* What a route's deliver did with one finished transfer. */
enum call_delivery {
	CALL_UNSENT,		/* nothing reached the client: judge resp */
	CALL_SENT,		/* the client has its answer */
	CALL_SENT_BROKEN,	/* the client has an answer the upstream broke
				   off (a stream ended in-band): no fallback */
	CALL_MALFORMED,		/* a 2xx the protocol does not allow; err says
				   why: retried like a 5xx */
	CALL_GONE,		/* the client went away: stop */
};

struct call;

/* What a route plugs into the loop; every slot but prepare is required. */
struct call_ops {
	/*
	 * Build the upstream call to c in protocol p. 0; -1 with e filled
	 * when this candidate cannot take the request (the next is tried, and
	 * the client gets the 400 when none can); -1 with e empty when out of
	 * memory (500, final); -2 when the provider's credentials cannot be
	 * had now (502 upstream_auth_error, the next candidate).
	 */
	int	(*build)(struct call *, const struct candidate *,
		    const struct provider_ops *, struct provider_call *,
		    struct provider_error *);
	/* Optional: set req's sinks (on_body, on_tick, ctx) before a transfer. */
	void	(*prepare)(struct call *, struct upstream_req *);
	/*
	 * After every transfer, whatever its result: hand the answer (or the
	 * stream's end) to the client, or say that nothing was sent.
	 */
	enum call_delivery (*deliver)(struct call *, const struct upstream_resp *,
		    struct provider_error *);
};

/* One upstream call over a plan; lives on the route's stack. */
struct call {
	/* Set by the route. */
	struct request		*r;
	const struct plan	*plan;
	const struct call_ops	*ops;
	void			*ctx;		/* the route's own */
	size_t			 body_max;	/* cap of an upstream request */
	int			 quiet;		/* an internal call: the loop
						   answers nobody and leaves the
						   request's attempts alone; the
						   route's deliver keeps the answer
						   (call_run returns 200, or the
						   last failure's status) */

	/* Set by the loop. */
	const struct candidate	*cand;		/* tried now, or last */
	size_t			 idx;		/* cand's index in the plan */
	const struct provider_ops *pops;	/* cand's protocol */
	struct provider_key	 key;		/* cand's pool key, this attempt */
	uint32_t		 keys_tried;	/* pool keys cand refused (bits) */
	int			 context;	/* an upstream said: context window
						   exceeded; context_fallback
						   candidates only from now */
	int			 attempts;	/* upstream transfers made */
	int			 reauthed;	/* cand re-authenticated once */
	int			 upstream_failed; /* an attempt failed upstream */
	enum call_outcome	 outcome;	/* of the last attempt */
	struct breaker_ticket	 brk;		/* cand's admission */
	int			 brk_stop;	/* its breaker says: no more */
	/* The last failure, answered when nothing else remains. */
	int			 status;
	long			 retry_after;	/* s, or -1 */
	struct provider_error	 err;
};

/*
 * Initialise c for request r over plan with the route's ops and ctx.
 */
void	call_init(struct call *, struct request *, const struct plan *,
	    const struct call_ops *, void *, size_t);
/*
 * Try the plan's candidates until one answers; else answer the last
 * failure in the OpenAI shape. Returns the HTTP status sent (0 when the
 * client went away before any answer).
 */
int	call_run(struct call *);

/*
 * The member a smooth weighted round robin over weights w[0..n) picks at
 * position pos of its cycle (0 <= pos < the sum of the weights).
 */
size_t	call_swrr(const long *, size_t, uint64_t);

/* What a non-streamed JSON route (embeddings, images) plugs into jcall. */
struct jcall_ops {
	/* Build the call to a candidate in protocol p; returns as call_ops.build. */
	int	(*build)(void *, const struct candidate *,
		    const struct provider_ops *, struct provider_call *,
		    struct provider_error *);
	/*
	 * Translate a 2xx body into the client's answer (the caller owns
	 * *out; NULL sends the body as it came). -1 with e filled when the
	 * body is malformed.
	 */
	int	(*reply)(void *, const struct candidate *, const char *, size_t,
		    struct json_object **, struct provider_error *);
};

/* One non-streamed JSON route over a model's plan; lives on the stack. */
struct jcall {
	struct request		*r;
	const struct jcall_ops	*ops;
	void			*ctx;
	struct json_object	*req;		/* the client's, guarded in place */
	enum policy_route	 proute;	/* what text req holds */
	size_t			 body_max;	/* cap of an upstream request */
	struct plan		 plan;
	struct account		 acct;
	int64_t			 prompt_est;	/* prompt tokens reserved */
	int64_t			 images;	/* images reserved */
	uint32_t		 flags;		/* USAGE_* of the cost */
	int			 refused;	/* admission refused: recorded at no cost */
	int			 guarded;	/* the policy refused: recorded too */
	struct guard		 guard;		/* the policy's state */
	struct call		 call;		/* cand: the one that answered */
};

/*
 * Run the policy over req, resolve model (every candidate of the
 * residency the policy requires), admit the request for its plan and
 * run the call. Returns the HTTP status sent.
 */
int	jcall_run(struct jcall *, const char *);
/*
 * The usage line of a JSON call whose plan resolved, or that its policy
 * refused: tokens (NULL for none) and cost count only when a candidate
 * answered. Frees the guard: the call is over.
 */
void	jcall_record(struct jcall *, const char *, const struct usage *,
	    money_t);

#endif
