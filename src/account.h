/* account.h: what the routes call: admit a request against limits, budgets and balance, then settle it. */
#ifndef LLMGATE_ACCOUNT_H
#define LLMGATE_ACCOUNT_H

#include "billing.h"
#include "usage.h"

struct request;
struct candidate;

/* One request's accounting, on the handler's stack. */
struct account {
	struct admission	 adm;
	int			 admitted;
	int			 settled;
};

/*
 * Admit the request for its first candidate: prompt_tokens is the prompt
 * estimate, max_out the completion tokens it may produce. Returns 0, or
 * the status of the error already sent (401/402/403/429/503).
 */
int	account_admit(struct request *, const struct candidate *, int64_t,
	    int64_t, struct account *);
/* Fill the common fields of a usage row from the request. */
void	account_row(struct request *, struct usage_row *);
/* Settle once: usage row, ledger, spend, release. Never fails the request. */
void	account_settle(struct request *, struct account *, struct usage_row *);

#endif
