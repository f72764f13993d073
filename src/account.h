/* account.h: what the routes call: admit a request against limits, budgets and balance, then settle it. */
#ifndef LLMGATE_ACCOUNT_H
#define LLMGATE_ACCOUNT_H

#include "billing.h"
#include "usage.h"

struct config;
struct request;
struct plan;

/* One request's accounting, on the handler's stack. */
struct account {
	struct admission	 adm;
	int			 admitted;
	int			 settled;
};

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
 * key's tier downgrades, the key's model list is enforced. 0, or the
 * status of the error already sent (400/403/404/503).
 */
int	account_plan(struct request *, const char *, struct plan *);
/*
 * Admit the request for its plan: prompt is the prompt token estimate,
 * client_max the client's max_tokens (0: none, the model's or the
 * gateway's default counts), images the images it may generate; the
 * worst case is priced at the dearest candidate. Returns 0, or the
 * status of the error already sent (402/429/503).
 */
int	account_admit(struct request *, const struct plan *, int64_t, int64_t,
	    int64_t, struct account *);
/* Fill the common fields of a usage row from the request. */
void	account_row(struct request *, struct usage_row *);
/* Settle once: usage row, ledger, spend, release. Never fails the request. */
void	account_settle(struct request *, struct account *, struct usage_row *);
/*
 * A billing or admin route's store failed (what failed, with rc; NULL
 * when there is no store): logged with its cause, answered 503 naming
 * the store ("key", "usage") without it. Returns 503.
 */
int	account_store_failed(struct request *, const char *, const char *, int);

#endif
