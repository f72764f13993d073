/* account.h: what the routes call: admit a request against limits, budgets and balance, then settle it. */
#ifndef LLMGATE_ACCOUNT_H
#define LLMGATE_ACCOUNT_H

#include "billing.h"
#include "plan.h"
#include "usage.h"

struct config;
struct request;
struct plan;
struct candidate;

/* One request's accounting, on the handler's stack. */
struct account {
	struct admission	 adm;
	money_t			 worst;		/* the most it may cost, reserved */
	int			 admitted;
	int			 settled;
};

/*
 * What a request may consume, for its reservation. The limits it sends
 * upstream come from the same numbers (plan_max_tokens), so what is
 * forwarded can never cost more than what is reserved.
 */
struct admit_ask {
	int64_t	 prompt;	/* prompt tokens: an upper bound */
	int64_t	 prompt_est;	/* billed if the worker dies before usage */
	int64_t	 client_max;	/* client's completion limit per choice; 0: none */
	int64_t	 choices;	/* completions asked (n); 0: the route has none */
	int64_t	 images;	/* images it may generate */
	money_t	 extra;		/* reserved on top: what the request may
				   spend besides its own call (the semantic
				   cache's embedding) */
};

/* The key the client sent (Bearer or X-Api-Key), or NULL. */
const char *account_client_key(const struct request *);
/* Constant-time comparison of two secrets: 1 when equal. */
int	account_secret_equal(const char *, const char *);
/*
 * Authenticate the request's key into who (r->who points at it): 0, or
 * the status of the 401/503 already sent.
 */
int	account_authenticate(struct request *, struct principal *);
/*
 * Tier, budgets and limits of p->key and p->agent from config (the
 * key's tier, else its agent's, else default_tier).
 */
void	account_resolve(const struct config *, struct principal *);
/*
 * Plan the model for the caller: an X-Task header picks a [task], the
 * key's tier downgrades, the key's model list and the price rule apply
 * to every candidate. 0, or the status of the error already sent
 * (400/403/404/503).
 */
int	account_plan(struct request *, const char *, struct plan *);
/*
 * The caller's rules for one candidate, as every plan applies them: the
 * key's model list (by name or identity) and a price (unless unpriced =
 * free); none for the master key. PLAN_SKIP_NONE when it may be served.
 */
enum plan_skip account_policy(const struct request *, const struct candidate *);
/*
 * The headers that say who answered: the served model and provider (when
 * c is not NULL; with the name its tier downgraded) and the attempts.
 */
void	account_served(struct request *, const struct candidate *, int);
/*
 * Admit the request for its plan: the worst case of ask is priced at the
 * dearest candidate and reserved. Returns 0, or the status of the error
 * already sent (402/429/503).
 */
int	account_admit(struct request *, const struct plan *,
	    const struct admit_ask *, struct account *);
/* Fill the common fields of a usage row from the request. */
void	account_row(struct request *, struct usage_row *);
/*
 * What a served request costs: the provider's own price when it reported
 * one, else its tokens at candidate c's prices; sets USAGE_COST_REPORTED
 * or USAGE_UNPRICED in flags.
 */
money_t	account_cost(const struct candidate *, const struct usage *,
	    uint32_t *);
/*
 * Settle once: usage row (with what was reserved, flagged when it cost
 * more), ledger, spend, release. Never fails the request.
 */
void	account_settle(struct request *, struct account *, struct usage_row *);
/*
 * A billing or admin route's store failed (what failed, with rc; NULL
 * when there is no store): logged with its cause, answered 503 naming
 * the store ("key", "usage") without it. Returns 503.
 */
int	account_store_failed(struct request *, const char *, const char *, int);
/*
 * The worker's store, or NULL after answering 503 as account_store_failed
 * does (which: "key", "usage").
 */
struct store *account_need_store(struct request *, const char *);

#endif
