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
	const struct model_cfg		*model;	/* NULL: matched by pattern */
	money_t				 input_price;
	money_t				 output_price;
	money_t				 cached_input_price;
};

struct plan {
	struct candidate	 c[PLAN_MAX];
	size_t			 n;
	/* When n == 0: why (an unavailable provider), or "" if unknown. */
	char			 why[256];
	/* The first model name the tier replaced, or "". */
	char			 downgraded_from[MODEL_NAME_MAX];
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
 * every candidate name through config_downgrade (duplicates dropped).
 */
int	plan_resolve_routed(const struct config *, const char *model,
	    const struct tier_cfg *, const struct task_cfg *, struct plan *);
int	plan_lookup(const struct config *, const char *, struct candidate *);

#endif
