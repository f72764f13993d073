/* plan.c: resolve a requested model into the ordered list of candidates. */
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "plan.h"

static void
fill(struct candidate *c, const char *name, const char *upstream,
    const struct provider_cfg *p, const struct model_cfg *m)
{
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->upstream, sizeof(c->upstream), "%s", upstream);
	c->provider = p;
	c->model = m;
	c->input_price = m ? m->input_price : 0;
	c->output_price = m ? m->output_price : 0;
	c->cached_input_price = m ? m->cached_input_price : 0;
}

/*
 * One model name -> one candidate: an exact [model] entry first, then the
 * providers' match patterns in file order, then the default provider.
 * Returns 0, or -1 when nothing claims the name.
 */
int
plan_lookup(const struct config *cfg, const char *name, struct candidate *c)
{
	const struct model_cfg		*m;
	const struct provider_cfg	*p;
	const char			*up;
	size_t				 i, j, n;

	if (strlen(name) >= MODEL_NAME_MAX)
		return -1;
	if ((m = config_model(cfg, name)) != NULL) {
		fill(c, name, m->upstream, m->provider, m);
		return 0;
	}
	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		for (j = 0; j < p->match.n; j++) {
			if (fnmatch(p->match.v[j], name, 0) != 0)
				continue;
			up = name;
			if (p->strip_prefix != NULL) {
				n = strlen(p->strip_prefix);
				if (strncmp(name, p->strip_prefix, n) == 0 &&
				    name[n] != '\0')
					up = name + n;
			}
			fill(c, name, up, p, NULL);
			return 0;
		}
	}
	if (cfg->gw.default_prov != NULL) {
		fill(c, name, name, cfg->gw.default_prov, NULL);
		return 0;
	}
	return -1;
}

static int
seen(const struct plan *pl, const char *name)
{
	size_t	 i;

	for (i = 0; i < pl->n; i++)
		if (strcmp(pl->c[i].name, name) == 0)
			return 1;
	return 0;
}

static void
add(struct plan *pl, const struct config *cfg, const char *name)
{
	struct candidate	 c;

	if (pl->n == PLAN_MAX || seen(pl, name))
		return;
	if (plan_lookup(cfg, name, &c) == -1)
		return;
	if (!c.provider->available) {
		if (pl->why[0] == '\0')
			snprintf(pl->why, sizeof(pl->why),
			    "provider '%s' for model '%s' is unavailable: %s",
			    c.provider->name, name, c.provider->unavailable);
		return;
	}
	pl->c[pl->n++] = c;
}

/* One candidate name through the tier's downgrade, then into the plan. */
static void
add_routed(struct plan *pl, const struct config *cfg,
    const struct tier_cfg *tier, const char *name)
{
	const char	*to;

	if ((to = config_downgrade(tier, name)) != NULL &&
	    pl->downgraded_from[0] == '\0')
		snprintf(pl->downgraded_from, sizeof(pl->downgraded_from),
		    "%s", name);
	if (to == NULL)
		to = name;
	if (pl->routed_model[0] == '\0')
		snprintf(pl->routed_model, sizeof(pl->routed_model), "%s", to);
	add(pl, cfg, to);
}

/*
 * The task's model and fallbacks (else the requested model), then the
 * first model's own fallback chain, each through the tier's downgrade;
 * candidates whose provider is unavailable are left out. Returns PLAN_OK
 * with at least one candidate.
 */
int
plan_resolve_routed(const struct config *cfg, const char *model,
    const struct tier_cfg *tier, const struct task_cfg *task,
    struct plan *pl)
{
	struct candidate	 first;
	size_t			 i;

	memset(pl, 0, sizeof(*pl));
	if (task != NULL)
		model = task->model;
	if (plan_lookup(cfg, model, &first) == -1)
		return PLAN_UNKNOWN_MODEL;
	add_routed(pl, cfg, tier, model);
	if (task != NULL)
		for (i = 0; i < task->fallback.n; i++)
			add_routed(pl, cfg, tier, task->fallback.v[i]);
	if (first.model != NULL)
		for (i = 0; i < first.model->fallback.n; i++)
			add_routed(pl, cfg, tier, first.model->fallback.v[i]);
	return pl->n > 0 ? PLAN_OK : PLAN_UNAVAILABLE;
}

int
plan_resolve(const struct config *cfg, const char *model, struct plan *pl)
{
	return plan_resolve_routed(cfg, model, NULL, NULL, pl);
}
