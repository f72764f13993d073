/*
 * policy.c: the guardrail step of every route that sends user content
 * upstream. The request's policy (key > agent > tier > default_policy)
 * runs the detectors over the request's text once, then acts: block
 * answers 400 policy_violation naming the detectors (never the text),
 * redact rewrites the JSON strings in place with typed placeholders
 * before anything is built from them, route and residency leave out of
 * the plan every candidate whose provider's residency the policy does
 * not allow, fallbacks and context fallbacks included.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "billing.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "plan.h"
#include "policy.h"
#include "usage.h"

_Static_assert(DET__MAX <= USAGE_GUARD_KINDS, "a usage row holds every kind");
_Static_assert(POLICY__MAX <= 16, "an action fits the row's four bits");
_Static_assert(DET__MAX <= 16 && POLICY__MAX <= 16,
    "kinds and actions fit the row's 16-bit masks");

const char *const policy_action_names[POLICY__MAX] = {
	"off", "log", "redact", "block", "route",
};

const char *const policy_from_names[POLICY_FROM__MAX] = {
	"none", "key", "agent", "tier", "default",
};

#define NONE		((size_t)-1)

/* Spans looked at per call of det_scan: only their kinds are kept. */
#define SPANS_MAX	32
/* Injection rule names kept for the log line. */
#define INJECT_NAMES	4

const struct policy_cfg *
policy_resolve(const struct config *cfg, const struct principal *p,
    enum policy_from *from)
{
	const struct agent_cfg	*ag;
	const struct tier_cfg	*t;

	*from = POLICY_FROM_NONE;
	if (p != NULL && !p->master && p->key.policy[0] != '\0') {
		*from = POLICY_FROM_KEY;
		return config_policy(cfg, p->key.policy);
	}
	if (p != NULL && (ag = config_agent(cfg, p->agent)) != NULL &&
	    ag->policy != NULL) {
		*from = POLICY_FROM_AGENT;
		return ag->policy;
	}
	t = p != NULL ? p->tier_cfg : NULL;
	if (t != NULL && t->policy != NULL) {
		*from = POLICY_FROM_TIER;
		return t->policy;
	}
	if (cfg->gw.default_policy_cfg != NULL) {
		*from = POLICY_FROM_DEFAULT;
		return cfg->gw.default_policy_cfg;
	}
	return NULL;
}

const struct policy_cfg *
policy_for(const struct request *r)
{
	enum policy_from	 from;

	return policy_resolve(r->cfg, r->who, &from);
}

const char *
policy_kinds(unsigned mask, char *buf, size_t len)
{
	size_t	 n = 0;
	int	 k, w;

	if (len == 0)
		return buf;
	buf[0] = '\0';
	for (k = 0; k < DET__MAX; k++) {
		if (!(mask & DET_BIT(k)))
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n > 0 ? " " : "",
		    det_names[k]);
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* --- the request's text ------------------------------------------------ */

/* What a walk does with each string of the request's text. */
typedef int (*text_fn)(void *, struct json_object *, int);

/* A string member of o, if o has one. */
static struct json_object *
string_member(struct json_object *o, const char *name)
{
	struct json_object	*v;

	return json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, name, &v) &&
	    json_object_is_type(v, json_type_string) ? v : NULL;
}

/*
 * A message's content: a string, or parts of which the text ones count.
 * inject: whether the injection score looks at it (not the system's).
 */
static int
walk_content(struct json_object *c, int inject, text_fn fn, void *ctx)
{
	struct json_object	*part, *type, *s;
	size_t			 i;
	int			 rc;

	if (json_object_is_type(c, json_type_string))
		return fn(ctx, c, inject);
	if (!json_object_is_type(c, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		if (!json_object_object_get_ex(part, "type", &type) ||
		    strcmp(json_object_get_string(type), "text") != 0 ||
		    (s = string_member(part, "text")) == NULL)
			continue;
		if ((rc = fn(ctx, s, inject)) != 0)
			return rc;
	}
	return 0;
}

/* Tool calls an assistant message made: their arguments. */
static int
walk_calls(struct json_object *m, text_fn fn, void *ctx)
{
	struct json_object	*calls, *call, *f, *s;
	size_t			 i;
	int			 rc;

	if (json_object_object_get_ex(m, "function_call", &f) &&
	    (s = string_member(f, "arguments")) != NULL &&
	    (rc = fn(ctx, s, 1)) != 0)
		return rc;
	if (!json_object_object_get_ex(m, "tool_calls", &calls) ||
	    !json_object_is_type(calls, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(calls); i++) {
		call = json_object_array_get_idx(calls, i);
		if (json_object_object_get_ex(call, "function", &f) &&
		    (s = string_member(f, "arguments")) != NULL &&
		    (rc = fn(ctx, s, 1)) != 0)
			return rc;
	}
	return 0;
}

/*
 * Every string of user content the route sends upstream, in order. A
 * system (or developer) message is the application's own: it is checked
 * for personal data but not scored as an injection.
 */
static int
walk(enum policy_route route, struct json_object *req, text_fn fn, void *ctx)
{
	struct json_object	*msgs, *m, *c, *role, *in, *s;
	const char		*rs;
	size_t			 i;
	int			 rc, inject;

	switch (route) {
	case POLICY_CHAT:
		if (!json_object_object_get_ex(req, "messages", &msgs) ||
		    !json_object_is_type(msgs, json_type_array))
			return 0;
		for (i = 0; i < json_object_array_length(msgs); i++) {
			m = json_object_array_get_idx(msgs, i);
			if (!json_object_is_type(m, json_type_object))
				continue;
			rs = json_object_object_get_ex(m, "role", &role) ?
			    json_object_get_string(role) : "";
			inject = rs == NULL || (strcmp(rs, "system") != 0 &&
			    strcmp(rs, "developer") != 0);
			if (json_object_object_get_ex(m, "content", &c) &&
			    (rc = walk_content(c, inject, fn, ctx)) != 0)
				return rc;
			if ((rc = walk_calls(m, fn, ctx)) != 0)
				return rc;
		}
		return 0;
	case POLICY_EMBEDDINGS:
		if (!json_object_object_get_ex(req, "input", &in))
			return 0;
		if (json_object_is_type(in, json_type_string))
			return fn(ctx, in, 1);
		if (!json_object_is_type(in, json_type_array))
			return 0;
		/* Token ids are not text: nothing to detect in them. */
		for (i = 0; i < json_object_array_length(in); i++) {
			s = json_object_array_get_idx(in, i);
			if (json_object_is_type(s, json_type_string) &&
			    (rc = fn(ctx, s, 1)) != 0)
				return rc;
		}
		return 0;
	case POLICY_IMAGES:
		return (s = string_member(req, "prompt")) != NULL ?
		    fn(ctx, s, 1) : 0;
	case POLICY_COMPLETIONS:
		if ((s = string_member(req, "prompt")) != NULL &&
		    (rc = fn(ctx, s, 1)) != 0)
			return rc;
		if (json_object_object_get_ex(req, "prompt", &in) &&
		    json_object_is_type(in, json_type_array))
			for (i = 0; i < json_object_array_length(in); i++) {
				s = json_object_array_get_idx(in, i);
				if (json_object_is_type(s, json_type_string) &&
				    (rc = fn(ctx, s, 1)) != 0)
					return rc;
			}
		return (s = string_member(req, "suffix")) != NULL ?
		    fn(ctx, s, 1) : 0;
	}
	return 0;
}

/* --- detection ---------------------------------------------------------- */

struct scan {
	const struct policy_cfg	*pol;
	unsigned		 mask;		/* span kinds looked for */
	unsigned		 found;
	int			 inject;	/* score injections */
	int			 injection;	/* the highest score */
	const char		*rule[INJECT_NAMES];	/* its rules' names */
	size_t			 chars;		/* UTF-8 characters */
	size_t			 bytes;
};

/* The kinds of mask found in s[0..n): each kind is looked for once. */
static unsigned
kinds_in(const struct det_rules *rules, unsigned mask, const char *s,
    size_t n)
{
	struct det_span	 sp[SPANS_MAX];
	unsigned	 found = 0;
	size_t		 got, i;
	int		 k;

	got = det_scan(rules, mask, s, n, sp, SPANS_MAX);
	for (i = 0; i < got && i < SPANS_MAX; i++)
		found |= DET_BIT(sp[i].kind);
	if (got <= SPANS_MAX)
		return found;
	/* More spans than kept: each kind not seen yet, on its own. */
	for (k = 0; k < DET__MAX; k++)
		if ((mask & ~found & DET_BIT(k)) &&
		    det_scan(rules, DET_BIT(k), s, n, sp, 0) > 0)
			found |= DET_BIT(k);
	return found;
}

static size_t
utf8_chars(const char *s, size_t n)
{
	size_t	 i, c = 0;

	for (i = 0; i < n; i++)
		c += ((unsigned char)s[i] & 0xc0) != 0x80;
	return c;
}

static int
scan_one(void *ctx, struct json_object *str, int inject)
{
	struct scan		*sc = ctx;
	const char		*s = json_object_get_string(str);
	const char		*names[INJECT_NAMES];
	size_t			 n = (size_t)json_object_get_string_len(str);
	int			 score;

	sc->chars += utf8_chars(s, n);
	sc->bytes += n;
	if (sc->mask != 0)
		sc->found |= kinds_in(sc->pol->rules, sc->mask, s, n);
	if (inject && sc->inject) {
		memset(names, 0, sizeof(names));
		score = det_injection(sc->pol->rules, s, n, names,
		    INJECT_NAMES);
		if (score > sc->injection) {
			sc->injection = score;
			memcpy(sc->rule, names, sizeof(names));
		}
	}
	return 0;
}

/* --- redaction ---------------------------------------------------------- */

struct rewrite {
	const struct policy_cfg	*pol;
	struct redact_map	*map;
	struct buf		 out;
	unsigned		 found;
	int			 err;
};

/* One string with its findings replaced by placeholders, in place. */
static int
redact_one(void *ctx, struct json_object *str, int inject)
{
	struct rewrite	*rw = ctx;
	unsigned	 f = 0;
	int		 rc;

	buf_reset(&rw->out);
	rc = redact_text(rw->pol->rules, rw->pol->redact_mask, rw->map,
	    json_object_get_string(str),
	    (size_t)json_object_get_string_len(str), &rw->out, &f);
	if (rc != BUF_OK) {
		rw->err = rc;
		return -1;
	}
	if (f == 0)
		return 0;
	rw->found |= f;
	if (json_object_set_string_len(str, rw->out.data != NULL ?
	    rw->out.data : "", (int)rw->out.len) == 0) {
		rw->err = BUF_NOMEM;
		return -1;
	}
	return 0;
}

/* --- the step ------------------------------------------------------------ */

/* 400 policy_violation: the policy and the detectors, never the text. */
static int
refuse(struct request *r, const struct guard *g, unsigned kinds,
    const char *why)
{
	char	 names[160];

	policy_kinds(kinds, names, sizeof(names));
	log_info("%s: policy %s: refused (%s)%s%s", r->id, g->pol->name,
	    names, why != NULL ? ": " : "", why != NULL ? why : "");
	return http_error(r, 400, "invalid_request_error", "policy_violation",
	    NULL, "The request was refused by policy '%s' (%s)%s%s; nothing "
	    "was sent upstream.", g->pol->name, names, why != NULL ? ": " : "",
	    why != NULL ? why : "");
}

int
policy_request(struct request *r, enum policy_route route,
    struct json_object *req, struct guard *g)
{
	const struct policy_cfg	*pol;
	struct scan		 sc;
	struct rewrite		 rw;
	enum policy_from	 from;
	unsigned		 block = 0;
	size_t			 tokens;
	char			 why[160];
	int			 k;

	memset(g, 0, sizeof(*g));
	redact_map_init(&g->map);
	if ((pol = policy_resolve(r->cfg, r->who, &from)) == NULL) {
		if (from != POLICY_FROM_KEY)
			return 0;
		/* Never served unguarded: the operator removed its policy. */
		log_warn("%s: the key's policy %s is not configured: refused",
		    r->id, r->who->key.policy);
		return http_error(r, 503, "service_unavailable_error",
		    "policy_unavailable", NULL, "This key's policy '%s' is not "
		    "configured on this gateway; nothing was sent upstream.",
		    r->who->key.policy);
	}
	g->pol = pol;
	if (pol->residency.n > 0)
		g->residency = pol->residency.v[0];

	/*
	 * One pass over the text for the kinds that are not redacted, the
	 * injection score and the length; the redacted kinds are found by
	 * the redaction itself (a second pass only when something blocks,
	 * for the record). A policy of residency alone reads no text.
	 */
	memset(&sc, 0, sizeof(sc));
	sc.pol = pol;
	sc.mask = pol->scan_mask;
	sc.inject = pol->action[DET_INJECTION] != POLICY_OFF;
	if (sc.mask != 0 || sc.inject || pol->action[DET_LENGTH] != POLICY_OFF)
		walk(route, req, scan_one, &sc);
	g->injection = sc.injection;
	if (pol->action[DET_INJECTION] != POLICY_OFF &&
	    sc.injection >= pol->injection_threshold)
		sc.found |= DET_BIT(DET_INJECTION);
	tokens = (sc.bytes + 3) / 4;
	why[0] = '\0';
	if (pol->action[DET_LENGTH] != POLICY_OFF &&
	    ((pol->max_chars > 0 && sc.chars > (size_t)pol->max_chars) ||
	    (pol->max_tokens > 0 && tokens > (size_t)pol->max_tokens))) {
		sc.found |= DET_BIT(DET_LENGTH);
		if (pol->max_chars > 0 && sc.chars > (size_t)pol->max_chars)
			snprintf(why, sizeof(why), "the prompt has %zu "
			    "characters, more than max_prompt_chars %ld",
			    sc.chars, pol->max_chars);
		else
			snprintf(why, sizeof(why), "the prompt is about %zu "
			    "tokens, more than max_prompt_tokens %ld", tokens,
			    pol->max_tokens);
	}
	g->found = sc.found;
	for (k = 0; k < DET__MAX; k++) {
		if (!(sc.found & DET_BIT(k)))
			continue;
		g->acted |= 1u << pol->action[k];
		if (pol->action[k] == POLICY_BLOCK)
			block |= DET_BIT(k);
	}
	if (sc.injection > 0 && (sc.found & DET_BIT(DET_INJECTION)))
		log_info("%s: policy %s: injection score %d (%s%s%s)", r->id,
		    pol->name, sc.injection, sc.rule[0] ? sc.rule[0] : "?",
		    sc.rule[1] ? ", " : "", sc.rule[1] ? sc.rule[1] : "");
	if (block != 0) {
		if (pol->redact_mask != 0) {
			memset(&sc, 0, sizeof(sc));
			sc.pol = pol;
			sc.mask = pol->redact_mask;
			walk(route, req, scan_one, &sc);
			g->found |= sc.found;
			if (sc.found != 0)
				g->acted |= 1u << POLICY_REDACT;
		}
		return refuse(r, g, block, (block & DET_BIT(DET_LENGTH)) &&
		    why[0] != '\0' ? why : NULL);
	}
	if (g->acted & (1u << POLICY_ROUTE))
		g->residency = pol->route_residency.v[0];
	if (pol->redact_mask == 0)
		return 0;

	memset(&rw, 0, sizeof(rw));
	rw.pol = pol;
	rw.map = &g->map;
	buf_init(&rw.out, (size_t)r->cfg->gw.max_body * 2 + 65536);
	walk(route, req, redact_one, &rw);
	buf_free(&rw.out);
	g->found |= rw.found;
	if (rw.found != 0)
		g->acted |= 1u << POLICY_REDACT;
	if (rw.err != 0) {
		/* Refused whole, never sent with findings left in it. */
		g->acted |= 1u << POLICY_BLOCK;
		return refuse(r, g, rw.found != 0 ? rw.found :
		    pol->redact_mask,
		    rw.err == BUF_NOMEM ? "out of memory while redacting" :
		    "too many findings to redact");
	}
	return 0;
}

/* Does candidate c satisfy g: the policy's residency, and route's? */
static int
allowed(const struct guard *g, const struct candidate *c)
{
	const char	*have = c->provider->residency;

	if (!config_residency_ok(have, &g->pol->residency))
		return 0;
	return !(g->acted & (1u << POLICY_ROUTE)) ||
	    config_residency_ok(have, &g->pol->route_residency);
}

static void
join(const struct strlist *l, char *buf, size_t len)
{
	size_t	 i, n = 0;
	int	 w;

	buf[0] = '\0';
	for (i = 0; i < l->n && n < len; i++) {
		w = snprintf(buf + n, len - n, "%s%s", i > 0 ? " " : "",
		    l->v[i]);
		if (w < 0)
			break;
		n += (size_t)w;
	}
}

/* policy_plan's work; quiet: nothing sent, -1 when nothing remains. */
static int
plan_filter(struct request *r, const struct guard *g, struct plan *pl,
    int quiet)
{
	struct candidate	 keep[PLAN_MAX];
	size_t			 map[PLAN_MAX], i, n = 0, j, first, cnt;
	char			 need[200], more[200], kinds[160];

	if (g->pol == NULL || (g->pol->residency.n == 0 &&
	    !(g->acted & (1u << POLICY_ROUTE))))
		return 0;
	for (i = 0; i < pl->n; i++) {
		map[i] = NONE;
		if (!allowed(g, &pl->c[i])) {
			log_debug("%s: policy %s: %s/%s left out (residency "
			    "%s)", r->id, g->pol->name,
			    pl->c[i].provider->name, pl->c[i].upstream,
			    pl->c[i].provider->residency);
			continue;
		}
		map[i] = n;
		keep[n++] = pl->c[i];
	}
	if (n == 0) {
		join(&g->pol->residency, need, sizeof(need));
		more[0] = '\0';
		if (g->acted & (1u << POLICY_ROUTE)) {
			join(&g->pol->route_residency, more, sizeof(more));
			policy_kinds(g->found, kinds, sizeof(kinds));
		}
		log_info("%s: policy %s: no candidate of %s has residency "
		    "%s%s%s", r->id, g->pol->name, pl->routed_model,
		    need[0] ? need : more, need[0] && more[0] ? " and " : "",
		    need[0] ? more : "");
		if (quiet)
			return -1;
		return http_error(r, 403, "permission_error",
		    "residency_required", "model", "Policy '%s' requires "
		    "residency %s%s%s%s%s%s; no provider of model '%s' has it, "
		    "and nothing was sent upstream.", g->pol->name,
		    need[0] ? need : more, need[0] && more[0] ? " and " : "",
		    need[0] ? more : "", more[0] ? " (the request holds: " :
		    "", more[0] ? kinds : "", more[0] ? ")" : "",
		    pl->routed_model);
	}
	/* A group of deployments keeps its members that remain, together. */
	for (i = 0; i < pl->n; i++) {
		if (map[i] == NONE || pl->c[i].group_n == 0)
			continue;
		first = NONE;
		cnt = 0;
		for (j = pl->c[i].group; j < pl->n &&
		    j < pl->c[i].group + pl->c[i].group_n; j++)
			if (map[j] != NONE) {
				if (first == NONE)
					first = map[j];
				cnt++;
			}
		keep[map[i]].group = first;
		keep[map[i]].group_n = cnt;
	}
	memcpy(pl->c, keep, n * sizeof(keep[0]));
	pl->n = n;
	return 0;
}

int
policy_plan(struct request *r, const struct guard *g, struct plan *pl)
{
	return plan_filter(r, g, pl, 0);
}

int
policy_plan_quiet(struct request *r, const struct guard *g, struct plan *pl)
{
	return plan_filter(r, g, pl, 1);
}

const struct det_rules *
policy_rules(const struct guard *g)
{
	return g->pol != NULL ? g->pol->rules : NULL;
}

unsigned
policy_out_mask(const struct guard *g)
{
	return g->pol != NULL && g->pol->output != REDACT_OUT_OFF ?
	    g->pol->out_mask : 0;
}

enum redact_out
policy_out_mode(const struct guard *g)
{
	return g->pol != NULL ? (enum redact_out)g->pol->output :
	    REDACT_OUT_OFF;
}

int
policy_restore(const struct guard *g)
{
	return g->pol != NULL && g->pol->restore && g->map.n > 0;
}

void
policy_row(const struct guard *g, struct usage_row *u)
{
	int	 k;

	if (g->pol == NULL)
		return;
	snprintf(u->policy, sizeof(u->policy), "%s", g->pol->name);
	u->guard_found = (uint16_t)g->found;
	u->guard_acted = (uint16_t)g->acted;
	u->guard_out_found = (uint16_t)g->out_found;
	u->guard_out_acted = (uint16_t)g->out_acted;
	u->injection = g->injection;
	for (k = 0; k < DET__MAX; k++)
		if (g->found & DET_BIT(k))
			USAGE_GUARD_SET(u, k, g->pol->action[k]);
}

void
guard_free(struct guard *g)
{
	redact_map_free(&g->map);
	memset(g, 0, sizeof(*g));
}
