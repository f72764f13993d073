/* billing.h: budgets, rate limits, prepaid balances and the ledger: reserve before the upstream call, settle after. */
#ifndef LLMGATE_BILLING_H
#define LLMGATE_BILLING_H

#include <stdint.h>
#include <time.h>

#include "keys.h"
#include "money.h"

struct candidate;
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

/*
 * Money and tokens held for a request in flight (SDB_RESERVE). Version 1
 * records end after request_id: the agent scope's copy keeps that layout
 * (it only counts against the agent's budget), and so do records written
 * before version 2. The key scope's copy is the reservation of record: it
 * also says who holds it and what to bill should the holder die.
 */
#define RESERVE_V1_SIZE	72
#define RESERVE_VERSION	2

/* A process, told apart from a later one that reuses its pid. */
struct holder {
	int32_t		 pid;		/* 0: unknown (version 1) */
	uint32_t	 pad;
	uint64_t	 start;		/* /proc/PID/stat starttime, clock ticks */
	uint64_t	 pidns;		/* inode of /proc/PID/ns/pid; 0: unknown */
	char		 boot[40];	/* /proc/sys/kernel/random/boot_id */
};

struct reserve_rec {
	uint8_t		 version;
	uint64_t	 id;
	money_t		 amount;
	int64_t		 tokens;
	int64_t		 expires;	/* unix s; counts only until then */
	char		 request_id[32];
	/* Version 2. */
	struct holder	 holder;
	uint64_t	 key_id;
	int64_t		 time_us;	/* the request's start: its usage row's */
	int64_t		 prompt;	/* prompt tokens estimated at admission */
	int64_t		 completion;	/* progress: completion tokens so far */
	int64_t		 progress_us;	/* when progress was recorded; 0: never */
	money_t		 input_price;	/* of the candidate billed, per 1M */
	money_t		 cached_input_price;
	money_t		 output_price;
	char		 key_name[64];
	char		 agent[64];
	char		 tier[16];
	char		 route[16];
	char		 requested[256];	/* the plan's first model */
	char		 model[256];	/* the candidate priced (streaming: served) */
	char		 provider[64];
	uint8_t		 served;	/* model began answering (progress) */
	uint8_t		 spare[7];
};

/*
 * Requests and tokens of one scope ("k:ID" key, "m:MODEL" model, "t:TIER"
 * tier) in the current minute (SDB_RATE).
 */
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
	long			 max_concurrent;	/* key's in flight; 0: none */
	long			 tier_concurrent;	/* the tier's, all its
							   keys together; 0: none */
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
	/* For a reclaim, should the process die before it settles: */
	const struct candidate *priced;	/* the worst case's; NULL: none */
	int64_t		 prompt;	/* prompt token estimate */
	int64_t		 time_us;	/* the request's start (its row's time) */
	const char	*route;
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
	ADMIT_KEY_CONCURRENT,	/* the key's max_concurrent in flight */
	ADMIT_TIER_CONCURRENT,	/* the tier's, all its keys together */
	ADMIT_STORE,		/* the store failed: 503 */
	ADMIT_KEY_GONE,		/* disabled or deleted since authenticated: 401 */
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
	uint64_t		 key_id;	/* whose the reservation is */
	int64_t			 progress_ms;	/* CLOCK_MONOTONIC of the last
						   progress record */
};

/* The start of the UTC day holding t, and of its month. */
time_t	billing_day(time_t);
time_t	billing_month(time_t);

/*
 * Admit a request in one transaction: rate limits, budgets and balance
 * are checked against spend plus unexpired reservations, requests in
 * flight (max_concurrent) by counting those reservations, and on success
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
/*
 * A stream's progress: every few seconds at most, record in the
 * reservation the completion tokens sent so far and the candidate
 * serving them, so that a reclaim bills them if this process dies.
 * Cheap when nothing is due; never fails the request.
 */
void	billing_progress(struct store *, struct admission *,
	    const struct candidate *, int64_t);

/* What one reclaim pass did. */
struct reclaim_result {
	long		 reclaimed;	/* reservations billed and released */
	long		 dropped;	/* expired, holder unknown: released */
	money_t		 billed;	/* micro-USD billed */
	money_t		 released;	/* micro-USD released unbilled */
};
typedef void (*reclaim_fn)(void *, const struct reserve_rec *,
	    const struct usage_row *);
/*
 * Reclaim the reservations whose holder died (a process killed before it
 * settled): in one transaction each, write a usage row flagged
 * worker_died for the prompt estimate plus the completion progress last
 * recorded, at the candidate's prices and never above the reservation,
 * debit the ledger, count the spend and release the reservation. Exactly
 * once, whoever else reclaims or settles at the same time. fn (may be
 * NULL) sees each row billed. Returns a store_rc.
 */
int	billing_reclaim(struct store *, time_t, struct reclaim_result *,
	    reclaim_fn, void *);

/* Credit (or with a negative amount, adjust) a key's balance. */
int	billing_credit(struct store *, uint64_t, money_t, enum ledger_kind,
	    const char *, struct ledger_rec *);
/* A key's balance and what its requests in flight hold now. */
/*
 * In a transaction: what key_id's reservations hold, every one until
 * settled or reclaimed, and its balance (read for update; zero when it
 * has none). For keys_delete.
 */
int	billing_key_holds(struct store_txn *, uint64_t, money_t *, long *,
	    struct balance_rec *);
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
