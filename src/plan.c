/* plan.c: resolve a requested model into the ordered list of candidates. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"

static void
fill(struct candidate *c, const struct config *cfg, const char *name,
    const char *upstream, const struct provider_cfg *p,
    const struct model_cfg *m)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->upstream, sizeof(c->upstream), "%s", upstream);
	c->provider = p;
	c->model = m;
	snprintf(c->identity, sizeof(c->identity), "%s", m != NULL ?
	    config_model_identity(m) : name);
	c->input_price = m ? m->input_price : 0;
	c->output_price = m ? m->output_price : 0;
	c->cached_input_price = m ? m->cached_input_price : 0;
	c->cache_write_price = plan_cache_write_price(p, c->input_price,
	    m ? m->cache_write_price : -1);
	c->max_tokens = m != NULL && m->max_tokens > 0 ? m->max_tokens :
	    cfg->gw.default_max_tokens;
}

/* The name as provider p knows it: without its strip_prefix. */
static const char *
stripped(const struct provider_cfg *p, const char *name)
{
	size_t	 n;

	if (p->strip_prefix == NULL)
		return name;
	n = strlen(p->strip_prefix);
	if (strncmp(name, p->strip_prefix, n) == 0 && name[n] != '\0')
		return name + n;
	return name;
}

/* The provider a name is routed to by the match patterns or the default. */
static const struct provider_cfg *
route_by_pattern(const struct config *cfg, const char *name)
{
	const struct provider_cfg	*p;
	size_t				 i, j;

	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		for (j = 0; j < p->match.n; j++)
			if (fnmatch(p->match.v[j], name, 0) == 0)
				return p;
	}
	return cfg->gw.default_prov;
}

/*
 * One model name -> one candidate: the [model] that prices it (its own
 * section, else the most specific template) routes it when it names a
 * provider; else the providers' match patterns in file order, then the
 * default provider. Returns 0, or -1 when nothing serves the name.
 */
int
plan_lookup(const struct config *cfg, const char *name, struct candidate *c)
{
	const struct model_cfg		*m;
	const struct provider_cfg	*p;
	size_t				 i;

	if (strlen(name) >= MODEL_NAME_MAX)
		return -1;
	m = config_model_match(cfg, name);
	if (m != NULL && !m->is_template && m->ndeploys > 0) {
		/* Its first deployment that can serve (plans take them all). */
		for (i = 0; i + 1 < m->ndeploys; i++)
			if (m->deploys[i].provider->available)
				break;
		fill(c, cfg, name, m->deploys[i].upstream,
		    m->deploys[i].provider, m);
		return 0;
	}
	if (m != NULL && !m->is_template) {
		fill(c, cfg, name, m->upstream, m->provider, m);
		return 0;
	}
	if ((p = m != NULL && m->provider != NULL ? m->provider :
	    route_by_pattern(cfg, name)) == NULL)
		return -1;
	fill(c, cfg, name, stripped(p, name), p, m);
	return 0;
}

money_t
plan_cache_write_price(const struct provider_cfg *p, money_t input,
    money_t configured)
{
	if (configured >= 0)
		return configured;
	/* Within MONEY_PRICE_MAX: tokens x price must fit in 64 bits. */
	if (p != NULL && p->type == PROVIDER_ANTHROPIC && input > 0)
		return input > MONEY_PRICE_MAX / 5 * 4 ? MONEY_PRICE_MAX :
		    input + (input + 3) / 4;
	return input;
}

int64_t
plan_max_tokens(const struct candidate *c, int64_t client)
{
	return client > 0 && client < c->max_tokens ? client : c->max_tokens;
}

static struct candidate *
seen(struct plan *pl, const char *name)
{
	size_t	 i;

	for (i = 0; i < pl->n; i++)
		if (strcmp(pl->c[i].name, name) == 0)
			return &pl->c[i];
	return NULL;
}

/* Remember the first candidate left out, for the answer when none is left. */
static void
skipped(struct plan *pl, enum plan_skip why, const char *name,
    const struct provider_cfg *p)
{
	if (pl->skip != PLAN_SKIP_NONE)
		return;
	pl->skip = why;
	switch (why) {
	case PLAN_SKIP_UNAVAILABLE:
		snprintf(pl->why, sizeof(pl->why), "provider '%s' for model "
		    "'%s' is unavailable: %s", p->name, name, p->unavailable);
		break;
	case PLAN_SKIP_NOT_ALLOWED:
		snprintf(pl->why, sizeof(pl->why), "This API key may not use "
		    "the model '%s'.", name);
		break;
	case PLAN_SKIP_NOT_PRICED:
		snprintf(pl->why, sizeof(pl->why), "The model '%s' has no "
		    "price on this gateway.", name);
		break;
	default:
		break;
	}
}

/*
 * Candidate c once per deployment of its [model] whose provider is
 * available (as many as the plan holds), each with its provider, upstream
 * id, weight and prices: one group.
 */
static void
add_deployments(struct plan *pl, const struct candidate *c)
{
	const struct model_cfg		*m = c->model;
	const struct deployment_cfg	*d;
	struct candidate		*k;
	size_t				 first = pl->n, i;

	for (i = 0; i < m->ndeploys && pl->n < PLAN_MAX; i++) {
		d = &m->deploys[i];
		if (!d->provider->available) {
			skipped(pl, PLAN_SKIP_UNAVAILABLE, c->name, d->provider);
			continue;
		}
		k = &pl->c[pl->n++];
		*k = *c;
		k->provider = d->provider;
		snprintf(k->upstream, sizeof(k->upstream), "%s", d->upstream);
		k->input_price = d->input_price;
		k->output_price = d->output_price;
		k->cached_input_price = d->cached_input_price;
		k->cache_write_price = plan_cache_write_price(d->provider,
		    d->input_price, d->cache_write_price);
		k->weight = d->weight;
	}
	for (i = first; i < pl->n; i++) {
		pl->c[i].group = first;
		pl->c[i].group_n = pl->n - first;
	}
}

/* Planning state: the config, the caller's tier and rules, the plan. */
struct planner {
	const struct config	*cfg;
	const struct tier_cfg	*tier;
	plan_policy_fn		 policy;
	void			*ctx;
	struct plan		*pl;
};

/*
 * One candidate name through the tier's downgrade (of the name, else of
 * its identity), then past the caller's rules into the plan with flags
 * (CAND_*); a name already planned only gains CAND_ON_CONTEXT.
 */
static void
add_routed(struct planner *pp, const char *name, unsigned flags)
{
	struct plan	*pl = pp->pl;
	struct candidate c, *had;
	const char	*to;
	enum plan_skip	 why;

	if (plan_lookup(pp->cfg, name, &c) == -1)
		return;
	if ((to = config_downgrade(pp->tier, name)) == NULL &&
	    strcmp(c.identity, name) != 0)
		to = config_downgrade(pp->tier, c.identity);
	if (to != NULL && plan_lookup(pp->cfg, to, &c) == -1)
		return;
	if (to != NULL)
		snprintf(c.downgraded_from, sizeof(c.downgraded_from), "%s",
		    name);
	if (pl->routed_model[0] == '\0')
		snprintf(pl->routed_model, sizeof(pl->routed_model), "%s",
		    c.name);
	if ((had = seen(pl, c.name)) != NULL) {
		/* Every deployment of it. */
		for (; had < pl->c + pl->n; had++)
			if (strcmp(had->name, c.name) == 0)
				had->flags |= flags & CAND_ON_CONTEXT;
		return;
	}
	if (pl->n == PLAN_MAX)
		return;
	c.flags = flags;
	if (c.model != NULL && c.model->ndeploys > 0) {
		if (pp->policy != NULL &&
		    (why = pp->policy(pp->ctx, &c)) != PLAN_SKIP_NONE)
			skipped(pl, why, c.name, c.provider);
		else
			add_deployments(pl, &c);
		return;
	}
	if (!c.provider->available) {
		skipped(pl, PLAN_SKIP_UNAVAILABLE, c.name, c.provider);
		return;
	}
	if (pp->policy != NULL &&
	    (why = pp->policy(pp->ctx, &c)) != PLAN_SKIP_NONE) {
		skipped(pl, why, c.name, c.provider);
		return;
	}
	pl->c[pl->n++] = c;
}

/*
 * The task's model and fallbacks (else the requested model), then the
 * first model's own fallback chain, each through the tier's downgrade;
 * candidates whose provider is unavailable, or that the policy refuses,
 * are left out. Last the first model's context_fallback (CAND_CONTEXT_ONLY,
 * under the same rules), when something else serves. Returns PLAN_OK with
 * at least one candidate that serves without a context error.
 */
int
plan_resolve_routed(const struct config *cfg, const char *model,
    const struct tier_cfg *tier, const struct task_cfg *task,
    plan_policy_fn policy, void *ctx, struct plan *pl)
{
	struct planner		 pp = { cfg, tier, policy, ctx, pl };
	struct candidate	 first;
	size_t			 i;

	memset(pl, 0, sizeof(*pl));
	if (task != NULL)
		model = task->model;
	if (plan_lookup(cfg, model, &first) == -1)
		return PLAN_UNKNOWN_MODEL;
	add_routed(&pp, model, 0);
	if (task != NULL)
		for (i = 0; i < task->fallback.n; i++)
			add_routed(&pp, task->fallback.v[i], 0);
	if (first.model != NULL)
		for (i = 0; i < first.model->fallback.n; i++)
			add_routed(&pp, first.model->fallback.v[i], 0);
	if (first.model != NULL && first.model->context_fallback != NULL &&
	    pl->n > 0)
		add_routed(&pp, first.model->context_fallback,
		    CAND_ON_CONTEXT | CAND_CONTEXT_ONLY);
	return pl->n > 0 ? PLAN_OK : PLAN_UNAVAILABLE;
}

int
plan_resolve(const struct config *cfg, const char *model, struct plan *pl)
{
	return plan_resolve_routed(cfg, model, NULL, NULL, NULL, NULL, pl);
}
