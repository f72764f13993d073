/* billing.h: budgets, rate limits, prepaid balances and the ledger: reserve before the upstream call, settle after. */
#ifndef LLMGATE_BILLING_H
#define LLMGATE_BILLING_H

#include <stdint.h>
#include <time.h>

#include "keys.h"
#include "money.h"

struct config;
struct json_object;
struct store;
struct store_txn;
struct tier_cfg;
struct usage_row;

/* A key's prepaid balance (SDB_BALANCE). */
struct balance_rec {
	uint8_t		 version;
	money_t		 balance;	/* credits minus debits */
	money_t		 credited;
	money_t		 debited;
	int64_t		 updated;	/* unix s */
};

/* Spend of one scope in one UTC day (SDB_SPEND). */
struct spend_rec {
	uint8_t		 version;
	money_t		 spent;
	int64_t		 requests;
	int64_t		 prompt;
	int64_t		 completion;
};

/* Money and tokens held for a request in flight (SDB_RESERVE). */
struct reserve_rec {
	uint8_t		 version;
	uint64_t	 id;
	money_t		 amount;
	int64_t		 tokens;
	int64_t		 expires;	/* unix s; counts only until then */
	char		 request_id[32];
};

/* Requests and tokens of one scope in the current minute (SDB_RATE). */
struct rate_rec {
	uint8_t		 version;
	int64_t		 minute;	/* unix s / 60 */
	int64_t		 requests;
	int64_t		 tokens;
};

enum ledger_kind {
	LEDGER_DEBIT,		/* a request */
	LEDGER_TOPUP,		/* money paid in */
	LEDGER_ADJUST,		/* a correction, either sign */
	LEDGER__MAX
};

extern const char *const ledger_kind_names[LEDGER__MAX];

/* One movement of a key's money (SDB_LEDGER). */
struct ledger_rec {
	uint8_t		 version;
	uint8_t		 kind;		/* enum ledger_kind */
	uint64_t	 id;
	uint64_t	 key_id;
	int64_t		 time_us;
	money_t		 amount;	/* credit > 0, debit < 0 */
	money_t		 balance_after;
	int64_t		 usage_time_us;	/* the usage record of a debit */
	uint64_t	 usage_id;
	char		 request_id[32];
	char		 reason[128];
};

/* Who a request is billed to, decided when its key is authenticated. */
struct principal {
	int			 master;	/* the master key: no limits */
	struct key_rec		 key;		/* id 0 for the master key */
	char			 agent[KEY_AGENT_MAX];
	char			 tier[KEY_TIER_MAX];	/* "" when no tiers */
	const struct tier_cfg	*tier_cfg;
	money_t			 agent_budget;	/* per UTC day; 0: none */
	money_t			 monthly_budget;	/* key's; 0: none */
	int64_t			 rpm, tpm;	/* key's, else tier's; 0: none */
};

/* What a request asks to be admitted with. */
struct admit_in {
	const char	*request_id;
	const char	*model;		/* first model of the plan */
	long		 model_rpm;	/* 0: none */
	long		 model_tpm;
	money_t		 worst;		/* most the request can cost */
	int64_t		 tokens;	/* prompt estimate + max completion */
	time_t		 now;
};

enum admit_verdict {
	ADMIT_OK,
	ADMIT_KEY_RPM,
	ADMIT_KEY_TPM,
	ADMIT_MODEL_RPM,
	ADMIT_MODEL_TPM,
	ADMIT_KEY_BUDGET,
	ADMIT_AGENT_BUDGET,
	ADMIT_MONTHLY_BUDGET,
	ADMIT_BALANCE,
	ADMIT_STORE,		/* the store failed: 503 */
	ADMIT__MAX
};

/* The answer to an admission; kept until the request is settled. */
struct admission {
	enum admit_verdict	 verdict;
	uint64_t		 reservation;	/* 0: nothing reserved */
	time_t			 day;		/* UTC day start the spend counts in */
	long			 retry_after;	/* s, for 429 */
	/* x-ratelimit-* of the key (-1: no limit) */
	long			 limit_requests, remaining_requests;
	long			 limit_tokens, remaining_tokens;
	long			 reset_s;
	money_t			 balance;	/* available, for 402 */
	money_t			 budget, spent;	/* the budget warned or blocked */
	int			 warn;		/* a budget is past warn percent */
	char			 message[256];	/* for the client when refused */
};

/* The start of the UTC day holding t, and of its month. */
time_t	billing_day(time_t);
time_t	billing_month(time_t);

/*
 * Admit a request in one transaction: rate limits, budgets and balance
 * are checked against spend plus unexpired reservations, and on success
 * the worst case is reserved. The master key is always admitted.
 */
int	billing_admit(struct store *, const struct config *,
	    const struct principal *, const struct admit_in *,
	    struct admission *);
/*
 * Settle in one transaction: write the usage row, debit the ledger, add
 * to spend and token counters, release the reservation. When the store
 * cannot be written the row goes to the JSONL fallback file. Returns a
 * store_rc (STORE_OK also when the fallback took it).
 */
int	billing_settle(struct store *, const struct config *,
	    const struct principal *, const struct admission *,
	    struct usage_row *);
/*
 * The settle step inside a transaction, also used by the fallback replay:
 * insert the row (STORE_EXISTS when it is already there), debit the
 * ledger of row->key_id, add to the spend of the key and the agent, and
 * drop row->reservation.
 */
int	billing_apply(struct store_txn *, const struct usage_row *);
/* Credit (or with a negative amount, adjust) a key's balance. */
int	billing_credit(struct store *, uint64_t, money_t, enum ledger_kind,
	    const char *, struct ledger_rec *);
/* A key's balance and what its requests in flight hold now. */
int	billing_balance(struct store *, uint64_t, struct balance_rec *,
	    money_t *);
typedef int (*ledger_fn)(void *, const struct ledger_rec *);
/* A key's ledger, newest first, skipping offset entries, at most limit. */
int	billing_ledger(struct store *, uint64_t, long, long, ledger_fn,
	    void *);
/* Spend of "k:ID" or "a:AGENT" on the UTC day starting at day. */
int	billing_spend(struct store *, const char *, time_t,
	    struct spend_rec *);
/*
 * A ledger entry as the billing and admin routes show it. The caller
 * owns the result (NULL when out of memory).
 */
struct json_object *ledger_to_json(const struct ledger_rec *);

#endif
