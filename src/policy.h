/*
 * policy.h: the guardrail step every route that sends user content
 * upstream runs once, between parsing and planning: [policy NAME]
 * sections (attached to keys, agents or tiers; the most specific wins)
 * run the detectors over the request's text and act per detector (off,
 * log, redact, block, route); residency then filters every candidate of
 * the plan, fallbacks included. The answer's side (restore, output
 * checks) is the route's, with this request's guard.
 */
#ifndef LLMGATE_POLICY_H
#define LLMGATE_POLICY_H

#include <stdint.h>

#include "detect.h"
#include "redact.h"

struct config;
struct plan;
struct policy_cfg;
struct principal;
struct request;
struct json_object;
struct usage_row;

enum policy_action {
	POLICY_OFF,
	POLICY_LOG,		/* counted and recorded, sent as it is */
	POLICY_REDACT,		/* replaced by placeholders before it leaves */
	POLICY_BLOCK,		/* 400 policy_violation, nothing sent */
	POLICY_ROUTE,		/* only to a provider of route_residency */
	POLICY__MAX
};
extern const char *const policy_action_names[POLICY__MAX];

/* What the request's text is, by route. */
enum policy_route {
	POLICY_CHAT,		/* messages[].content (strings and text parts),
				   tool call arguments, tool results */
	POLICY_EMBEDDINGS,	/* input: a string or strings */
	POLICY_IMAGES,		/* prompt */
	POLICY_COMPLETIONS,	/* prompt, suffix (later routes) */
};

/* One request's guardrail state; lives in the route's own struct. */
struct guard {
	const struct policy_cfg	*pol;		/* NULL: no policy applies */
	unsigned		 found;		/* DET_BIT kinds in the request */
	unsigned		 acted;		/* 1 << policy_action taken */
	int			 injection;	/* its score */
	const char		*residency;	/* required of every candidate
						   (a policy's list), or NULL */
	struct redact_map	 map;		/* what redact replaced */
	unsigned		 out_found;	/* DET_BIT kinds in the answer */
	unsigned		 out_acted;	/* 1 << policy_action on them */
};

/* The policy for this request's key, agent and tier, or NULL. */
const struct policy_cfg *policy_for(const struct request *);

/* Where a principal's policy comes from (llmgate-admin key show). */
enum policy_from {
	POLICY_FROM_NONE,	/* no policy applies */
	POLICY_FROM_KEY,	/* the key's own */
	POLICY_FROM_AGENT,	/* its [agent]'s */
	POLICY_FROM_TIER,	/* its tier's */
	POLICY_FROM_DEFAULT,	/* [gateway] default_policy */
	POLICY_FROM__MAX
};
extern const char *const policy_from_names[POLICY_FROM__MAX];

/*
 * The policy of p's requests under cfg, most specific first: the key's,
 * its agent's, its tier's (p->tier_cfg), default_policy; *from says
 * which. A key naming a policy the configuration lacks gives NULL with
 * POLICY_FROM_KEY: its requests are refused, never served unguarded.
 */
const struct policy_cfg *policy_resolve(const struct config *,
	    const struct principal *, enum policy_from *);

/*
 * Run the request's policy over req (parsed, validated; rewritten in
 * place by redact). 0: go on. Otherwise the HTTP status already sent:
 * 400 policy_violation (detector names, never the text), 413 / 400 for
 * max_prompt_*. g is initialised in either case; guard_free it.
 */
int	policy_request(struct request *, enum policy_route,
	    struct json_object *, struct guard *);

/*
 * Leave out every candidate of plan whose provider's residency the guard
 * does not allow. 0: some remain. Otherwise 403 residency_required was
 * sent (the required residency named), and nothing leaves the gateway.
 */
int	policy_plan(struct request *, const struct guard *, struct plan *);
/* policy_plan for an internal call: nothing sent; -1 when none remain. */
int	policy_plan_quiet(struct request *, const struct guard *,
	    struct plan *);

/* The answer's side: output detectors, their mode, and whether to restore. */
const struct det_rules *policy_rules(const struct guard *);
unsigned	policy_out_mask(const struct guard *);
enum redact_out	policy_out_mode(const struct guard *);
int		policy_restore(const struct guard *);

/* The guard's record in a usage row: policy, kinds found, actions. */
void	policy_row(const struct guard *, struct usage_row *);
/* "card email" for the kinds in mask (DET_BIT bits), into buf. */
const char *policy_kinds(unsigned, char *, size_t);

void	guard_free(struct guard *);

#endif
