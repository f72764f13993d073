/* plan.h: model name -> ordered candidates (provider, upstream id, price). */
#ifndef LLMGATE_PLAN_H
#define LLMGATE_PLAN_H

#include "config.h"

#define PLAN_MAX	8
#define MODEL_NAME_MAX	256

struct candidate {
	char				 name[MODEL_NAME_MAX];	/* served */
	char				 upstream[MODEL_NAME_MAX];
	const struct provider_cfg	*provider;
	/* The [model] (own section or template) that prices it; NULL: none. */
	const struct model_cfg		*model;
	/* Allow-lists, downgrades and rate limits see it as this name. */
	char				 identity[MODEL_NAME_MAX];
	money_t				 input_price;
	money_t				 output_price;
	money_t				 cached_input_price;
	money_t				 cache_write_price;
	int64_t				 max_tokens;	/* cap per choice */
	/* The name the tier's downgrade replaced by this one, or "". */
	char				 downgraded_from[MODEL_NAME_MAX];
	unsigned			 flags;		/* CAND_* */
	/*
	 * One of several deployments of its model (group_n > 0): the group
	 * is plan->c[group] to c[group + group_n - 1], in the [model]'s
	 * order; the call loop spreads requests over it by weight.
	 */
	long				 weight;
	size_t				 group;
	size_t				 group_n;
};

/*
 * A plan's context_fallback is in it from the start, so that admission
 * reserves for it, but it is tried only after an upstream said the
 * request is too long for the context window (call.c); from then on only
 * such candidates are tried.
 */
#define CAND_ON_CONTEXT		0x01u	/* may serve after a context error */
#define CAND_CONTEXT_ONLY	0x02u	/* and only then */

/* Why a candidate was left out of a plan. */
enum plan_skip {
	PLAN_SKIP_NONE = 0,
	PLAN_SKIP_UNAVAILABLE,		/* its provider has no key */
	PLAN_SKIP_NOT_ALLOWED,		/* the caller's key may not use it */
	PLAN_SKIP_NOT_PRICED,		/* nothing prices it */
	PLAN_SKIP__MAX
};

/*
 * The caller's rules, asked of every candidate of a plan (task model,
 * downgrade, fallback, template match): PLAN_SKIP_NONE to keep it.
 */
typedef enum plan_skip (*plan_policy_fn)(void *, const struct candidate *);

struct plan {
	struct candidate	 c[PLAN_MAX];
	size_t			 n;
	/* When n == 0: why the first candidate left out was (or ""). */
	char			 why[768];
	enum plan_skip		 skip;		/* and its kind */
	/* The first model after task and downgrade, available or not. */
	char			 routed_model[MODEL_NAME_MAX];
};

enum plan_err {
	PLAN_OK = 0,
	PLAN_UNKNOWN_MODEL = -1,	/* 404 */
	PLAN_UNAVAILABLE = -2,		/* 503 */
};

int	plan_resolve(const struct config *, const char *, struct plan *);
/*
 * plan_resolve after routing: a task (may be NULL) replaces the requested
 * model by its model and fallback list; a tier (may be NULL) downgrades
 * every candidate name (or its identity) through config_downgrade
 * (duplicates dropped); policy (may be NULL) is asked of every candidate.
 */
int	plan_resolve_routed(const struct config *, const char *model,
	    const struct tier_cfg *, const struct task_cfg *, plan_policy_fn,
	    void *, struct plan *);
/* One name -> one candidate, before any policy: 0, or -1 if none serves it. */
int	plan_lookup(const struct config *, const char *, struct candidate *);

/*
 * The completion limit the gateway sends to candidate c, per choice: the
 * smaller of the client's limit (0: it gave none) and the candidate's
 * cap. This is the one number both the request and the reservation use,
 * so that what is forwarded can never cost more than what was reserved.
 */
int64_t	plan_max_tokens(const struct candidate *, int64_t);

/*
 * The price of prompt tokens written to provider p's prompt cache: the
 * one configured (>= 0), else 1.25 x input (rounded up) for an anthropic
 * provider, whose cache writes cost that, else input.
 */
money_t	plan_cache_write_price(const struct provider_cfg *, money_t input,
	    money_t configured);

#endif
