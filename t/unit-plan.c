/* unit-plan.c: plan_resolve and plan_lookup over a config read from a file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/plan.h"
#include "tap.h"

#define KEY_UNSET	"LLMGATE_UNIT_PLAN_UNSET"

/* got contains needle; on failure both are printed. */
#define like(got, needle, ...) do {					\
	const char *l_ = (got), *n_ = (needle);				\
	int f_ = l_ != NULL && strstr(l_, n_) != NULL;			\
	ok(f_, __VA_ARGS__);						\
	if (!f_)							\
		printf("#   '%s' lacks '%s'\n", l_ ? l_ : "(null)", n_); \
} while (0)

static const char routes[] =
	"[gateway]\n"
	"data_dir = /tmp\n"
	"default_provider = openrouter\n"
	"[provider openai]\n"
	"base_url = https://api.openai.com/v1\n"
	"api_key = none\n"
	"match = gpt-* o1\n"
	"[provider anthropic]\n"
	"base_url = https://api.anthropic.com/v1\n"
	"api_key = none\n"
	"match = claude-*\n"
	"[provider broad]\n"
	"base_url = https://broad.example/v1\n"
	"api_key = none\n"
	"match = gpt-4* claude-*\n"
	"[provider openrouter]\n"
	"base_url = https://openrouter.ai/api/v1\n"
	"api_key = none\n"
	"match = openrouter/*\n"
	"strip_prefix = openrouter/\n"
	"[provider down]\n"
	"base_url = https://down.example/v1\n"
	"api_key = env:" KEY_UNSET "\n"
	"match = down-*\n"
	"[model gpt-4o]\n"
	"provider = openai\n"
	"upstream = gpt-4o-2024-08-06\n"
	"input_price = 2.50\n"
	"output_price = 10\n"
	"cached_input_price = 1.25\n"
	"fallback = claude-3, gpt-4o-mini, claude-3, down-1, gpt-4o-mini\n"
	"[model gpt-4o-mini]\n"
	"provider = openai\n"
	"input_price = 0.15\n"
	"[model claude-3]\n"
	"provider = anthropic\n"
	"upstream = claude-3-5-sonnet-latest\n"
	"[model gpt-special]\n"
	"provider = anthropic\n"
	"[model down-1]\n"
	"provider = down\n"
	"fallback = gpt-4o-mini\n"
	"[model down-2]\n"
	"provider = down\n"
	"fallback = down-1\n"
	"[model down-3]\n"
	"provider = down\n"
	"fallback = down-2\n"
	"[model long]\n"
	"provider = openai\n"
	"fallback = m1 m2 m3 m4 m5 m6 m7 m8 m9\n"
	"[model m1]\nprovider = openai\n"
	"[model m2]\nprovider = openai\n"
	"[model m3]\nprovider = openai\n"
	"[model m4]\nprovider = openai\n"
	"[model m5]\nprovider = openai\n"
	"[model m6]\nprovider = openai\n"
	"[model m7]\nprovider = openai\n"
	"[model m8]\nprovider = openai\n"
	"[model m9]\nprovider = openai\n";

/* Load text through a file under /tmp, removed before returning. */
static struct config *
load(const char *text)
{
	struct config	*c;
	char		 path[64], err[512];
	size_t		 n = strlen(text);
	int		 fd;

	snprintf(path, sizeof(path), "/tmp/llmgate-unit-XXXXXX");
	if ((fd = mkstemp(path)) == -1)
		return NULL;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return NULL;
	}
	close(fd);
	unsetenv(KEY_UNSET);
	err[0] = '\0';
	if ((c = config_load(path, err, sizeof(err))) == NULL)
		printf("# config: %s\n", err);
	unlink(path);
	return c;
}

static void
test_exact(const struct config *cfg)
{
	struct plan	 pl;

	is_int(plan_resolve(cfg, "gpt-4o-mini", &pl), PLAN_OK,
	    "exact model resolves");
	is_int(pl.n, 1, "a model without fallback is one candidate");
	is_str(pl.c[0].name, "gpt-4o-mini", "served name");
	is_str(pl.c[0].upstream, "gpt-4o-mini", "upstream is the name");
	is_str(pl.c[0].provider->name, "openai", "its provider");
	ok(pl.c[0].model == config_model(cfg, "gpt-4o-mini"),
	    "candidate points at its [model]");
	is_int(pl.c[0].input_price, 150000, "input price");
	is_int(pl.c[0].cached_input_price, 150000,
	    "cached price defaults to input price");
	is_str(pl.why, "", "no why when all is well");

	/* An exact [model] wins over an earlier provider's pattern. */
	is_int(plan_resolve(cfg, "gpt-special", &pl), PLAN_OK,
	    "gpt-special resolves");
	is_str(pl.c[0].provider->name, "anthropic",
	    "[model gpt-special] beats openai's gpt-*");
}

static void
test_patterns(const struct config *cfg)
{
	struct plan	 pl;

	is_int(plan_resolve(cfg, "gpt-5-nano", &pl), PLAN_OK,
	    "gpt-5-nano resolves");
	is_int(pl.n, 1, "one candidate");
	is_str(pl.c[0].provider->name, "openai", "gpt-* goes to openai");
	is_str(pl.c[0].upstream, "gpt-5-nano", "upstream unchanged");
	ok(pl.c[0].model == NULL, "no [model] behind a pattern");
	is_int(pl.c[0].input_price + pl.c[0].output_price, 0,
	    "a pattern carries no price");

	is_int(plan_resolve(cfg, "gpt-4.1", &pl), PLAN_OK, "gpt-4.1 resolves");
	is_str(pl.c[0].provider->name, "openai",
	    "the first provider in file order wins (not broad's gpt-4*)");
	is_int(plan_resolve(cfg, "o1", &pl), PLAN_OK, "o1 resolves");
	is_str(pl.c[0].provider->name, "openai", "second pattern of a list");

	is_int(plan_resolve(cfg, "claude-opus-4", &pl), PLAN_OK,
	    "claude-opus-4 resolves");
	is_str(pl.c[0].provider->name, "anthropic",
	    "claude-* goes to anthropic");

	is_int(plan_resolve(cfg, "openrouter/vendor/model", &pl), PLAN_OK,
	    "openrouter/vendor/model resolves");
	is_str(pl.c[0].provider->name, "openrouter", "openrouter/* matched");
	is_str(pl.c[0].name, "openrouter/vendor/model",
	    "served name keeps the prefix");
	is_str(pl.c[0].upstream, "vendor/model", "strip_prefix removed");
}

static void
test_default(const struct config *cfg)
{
	struct config	*c;
	struct plan	 pl;
	char		 name[MODEL_NAME_MAX + 8];

	is_int(plan_resolve(cfg, "mistral-large", &pl), PLAN_OK,
	    "an unclaimed name resolves through default_provider");
	is_str(pl.c[0].provider->name, "openrouter", "to openrouter");
	is_str(pl.c[0].upstream, "mistral-large", "name sent unchanged");

	memset(name, 'x', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	is_int(plan_resolve(cfg, name, &pl), PLAN_UNKNOWN_MODEL,
	    "a name longer than MODEL_NAME_MAX is unknown");

	c = load("[gateway]\ndata_dir = /tmp\n[provider openai]\n"
	    "base_url = https://api.openai.com/v1\napi_key = none\n"
	    "match = gpt-*\n");
	ok(c != NULL, "config without default_provider loads");
	if (c == NULL)
		return;
	is_int(plan_resolve(c, "mistral-large", &pl), PLAN_UNKNOWN_MODEL,
	    "no default_provider: unclaimed name is PLAN_UNKNOWN_MODEL");
	is_int(pl.n, 0, "no candidates");
	is_str(pl.why, "", "unknown is not unavailable");
	is_int(plan_resolve(c, "gpt-4o", &pl), PLAN_OK,
	    "patterns still work without default_provider");
	config_free(c);
}

static void
test_fallback(const struct config *cfg)
{
	struct plan	 pl;

	is_int(plan_resolve(cfg, "gpt-4o", &pl), PLAN_OK, "gpt-4o resolves");
	is_int(pl.n, 3, "fallback chain without duplicates or down-1");
	if (pl.n != 3)
		return;
	is_str(pl.c[0].name, "gpt-4o", "requested model first");
	is_str(pl.c[0].upstream, "gpt-4o-2024-08-06", "its upstream id");
	is_int(pl.c[0].input_price, 2500000, "its input price");
	is_int(pl.c[0].output_price, 10000000, "its output price");
	is_int(pl.c[0].cached_input_price, 1250000, "its cached price");
	is_str(pl.c[1].name, "claude-3", "first fallback second");
	is_str(pl.c[1].upstream, "claude-3-5-sonnet-latest",
	    "fallback's upstream id");
	is_str(pl.c[1].provider->name, "anthropic", "fallback's provider");
	is_str(pl.c[2].name, "gpt-4o-mini", "second fallback third");
	like(pl.why, "down", "the skipped candidate is explained");

	is_int(plan_resolve(cfg, "long", &pl), PLAN_OK, "long chain resolves");
	is_int(pl.n, PLAN_MAX, "a chain is cut at PLAN_MAX");
	is_str(pl.c[PLAN_MAX - 1].name, "m7", "in order up to the cut");
}

static void
test_unavailable(const struct config *cfg)
{
	struct plan	 pl;

	is_int(plan_resolve(cfg, "down-1", &pl), PLAN_OK,
	    "down-1 resolves to its fallback");
	is_int(pl.n, 1, "only the fallback");
	is_str(pl.c[0].name, "gpt-4o-mini", "gpt-4o-mini serves");
	like(pl.why, "'down'", "why names the provider");
	like(pl.why, "'down-1'", "why names the model");
	like(pl.why, KEY_UNSET, "why gives the provider's reason");

	is_int(plan_resolve(cfg, "down-3", &pl), PLAN_UNAVAILABLE,
	    "fallbacks are one level deep: down-3 -> down-2 only");
	is_int(pl.n, 0, "fallbacks of fallbacks are not candidates");
	like(pl.why, "'down-3'", "why names the first model skipped");

	is_int(plan_resolve(cfg, "down-2", &pl), PLAN_UNAVAILABLE,
	    "all candidates unavailable: PLAN_UNAVAILABLE");
	is_int(pl.n, 0, "no candidates");
	like(pl.why, "provider 'down'", "why names the provider");
	like(pl.why, "environment variable " KEY_UNSET " is not set",
	    "why gives the reason");

	is_int(plan_resolve(cfg, "down-by-pattern", &pl), PLAN_UNAVAILABLE,
	    "a pattern to an unavailable provider: PLAN_UNAVAILABLE");
	like(pl.why, "down-by-pattern", "why names the requested model");
}

static void
test_lookup(const struct config *cfg)
{
	struct candidate	 c;

	is_int(plan_lookup(cfg, "claude-3", &c), 0,
	    "plan_lookup finds a model");
	is_str(c.upstream, "claude-3-5-sonnet-latest", "with its upstream");
	is_int(plan_lookup(cfg, "down-1", &c), 0,
	    "plan_lookup ignores availability");
	is_int(c.provider->available, 0, "and reports the provider as is");
	is_int(plan_lookup(cfg, "openrouter/", &c), 0,
	    "a bare prefix still matches openrouter/*");
	is_str(c.upstream, "openrouter/", "but is not stripped to nothing");
}

/* Tiers and tasks added to the routes above. */
static const char routing[] =
	"[tier TD]\n"
	"downgrade = gpt-4o -> gpt-4o-mini, claude-* -> m1\n"
	"[tier TF]\n"
	"downgrade = gpt-4o-mini -> m2\n"
	"[tier T3]\n"
	"[task code]\n"
	"model = gpt-4o\n"
	"fallback = m3\n"
	"[task cheap]\n"
	"model = gpt-5-nano\n"
	"fallback = m1 m1 m2\n";

/* Names of the plan's candidates joined by spaces. */
static const char *
names(const struct plan *pl)
{
	static char	 buf[PLAN_MAX * MODEL_NAME_MAX];
	size_t		 i;

	buf[0] = '\0';
	for (i = 0; i < pl->n; i++) {
		if (i > 0)
			strcat(buf, " ");
		strcat(buf, pl->c[i].name);
	}
	return buf;
}

/* "served<-asked" for each candidate a tier downgraded, space separated. */
static const char *
downs(const struct plan *pl)
{
	static char	 buf[PLAN_MAX * 2 * MODEL_NAME_MAX];
	size_t		 i;

	buf[0] = '\0';
	for (i = 0; i < pl->n; i++) {
		if (pl->c[i].downgraded_from[0] == '\0')
			continue;
		if (buf[0] != '\0')
			strcat(buf, " ");
		strcat(buf, pl->c[i].name);
		strcat(buf, "<-");
		strcat(buf, pl->c[i].downgraded_from);
	}
	return buf;
}

static void
test_routed(void)
{
	struct config		*c;
	const struct tier_cfg	*td, *tf;
	const struct task_cfg	*code, *cheap;
	struct plan		 pl;
	char			*text;

	if ((text = malloc(sizeof(routes) + sizeof(routing))) == NULL)
		return;
	snprintf(text, sizeof(routes) + sizeof(routing), "%s%s", routes,
	    routing);
	c = load(text);
	free(text);
	ok(c != NULL, "routing config with tiers and tasks loads");
	if (c == NULL)
		return;
	td = config_tier(c, "TD");
	tf = config_tier(c, "TF");
	code = config_task(c, "code");
	cheap = config_task(c, "cheap");
	ok(td != NULL && tf != NULL && code != NULL && cheap != NULL,
	    "tiers and tasks found");
	if (td == NULL || tf == NULL || code == NULL || cheap == NULL)
		goto done;

	is_int(plan_resolve_routed(c, "gpt-4o", NULL, NULL, NULL, NULL, &pl), PLAN_OK,
	    "no tier, no task");
	is_str(names(&pl), "gpt-4o claude-3 gpt-4o-mini", "as plan_resolve");
	is_str(downs(&pl), "", "nothing downgraded");
	is_str(pl.routed_model, "gpt-4o", "routed_model is the request");
	is_int(plan_resolve(c, "gpt-4o", &pl), PLAN_OK, "plan_resolve");
	is_str(pl.routed_model, "gpt-4o", "plan_resolve sets routed_model");

	is_int(plan_resolve_routed(c, "gpt-4o", td, NULL, NULL, NULL, &pl), PLAN_OK,
	    "gpt-4o in tier TD");
	is_str(names(&pl), "gpt-4o-mini m1",
	    "first and fallbacks downgraded, duplicates dropped");
	is_str(downs(&pl), "gpt-4o-mini<-gpt-4o m1<-claude-3",
	    "each candidate says what it was downgraded from");
	is_str(pl.routed_model, "gpt-4o-mini", "routed_model");
	ok(pl.c[0].model == config_model(c, "gpt-4o-mini"),
	    "the downgraded candidate carries its own [model]");
	is_int(pl.c[0].input_price, 150000, "and its own price");

	is_int(plan_resolve_routed(c, "claude-opus-4", td, NULL, NULL, NULL, &pl), PLAN_OK,
	    "a pattern-served name in TD");
	is_str(names(&pl), "m1", "a glob FROM downgrades it");
	is_str(downs(&pl), "m1<-claude-opus-4", "downgraded_from");

	is_int(plan_resolve_routed(c, "down-1", tf, NULL, NULL, NULL, &pl), PLAN_OK,
	    "down-1 in tier TF");
	is_str(names(&pl), "m2", "only the fallback is downgraded");
	is_str(downs(&pl), "m2<-gpt-4o-mini",
	    "downgraded_from names the fallback, on the fallback");
	is_str(pl.routed_model, "down-1",
	    "routed_model is the first name, available or not");

	is_int(plan_resolve_routed(c, "gpt-4o-mini", td, NULL, NULL, NULL, &pl), PLAN_OK,
	    "a name no pair matches");
	is_str(names(&pl), "gpt-4o-mini", "kept");
	is_str(downs(&pl), "", "nothing downgraded");

	is_int(plan_resolve_routed(c, "anything", NULL, code, NULL, NULL, &pl), PLAN_OK,
	    "task code");
	is_str(names(&pl), "gpt-4o m3 claude-3 gpt-4o-mini",
	    "task model, task fallbacks, then the model's own chain");
	is_str(pl.routed_model, "gpt-4o", "routed_model is the task's model");
	is_int(plan_resolve_routed(c, NULL, td, code, NULL, NULL, &pl), PLAN_OK,
	    "task code in tier TD, no model asked");
	is_str(names(&pl), "gpt-4o-mini m3 m1", "task routed, then downgraded");
	is_str(downs(&pl), "gpt-4o-mini<-gpt-4o m1<-claude-3",
	    "downgraded_from");
	is_str(pl.routed_model, "gpt-4o-mini", "routed_model");

	is_int(plan_resolve_routed(c, "gpt-4o", td, cheap, NULL, NULL, &pl), PLAN_OK,
	    "task cheap");
	is_str(names(&pl), "gpt-5-nano m1 m2",
	    "a pattern model without a chain; duplicate fallbacks dropped");
	is_str(downs(&pl), "", "TD leaves gpt-5-nano and m1 alone");
	ok(pl.c[0].model == NULL, "the task's model served by a pattern");
done:
	config_free(c);

	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\n[model m]\nprovider = a\n"
	    "[tier T3]\ndowngrade = x-* -> m\n");
	ok(c != NULL, "config without default_provider loads");
	if (c == NULL)
		return;
	is_int(plan_resolve_routed(c, "x-1", c->gw.default_tier_cfg, NULL,
	    NULL, NULL, &pl), PLAN_UNKNOWN_MODEL,
	    "an unknown request stays unknown though a tier would downgrade it");
	is_int(pl.n, 0, "no candidates");
	config_free(c);
}

/* Price templates: [model PATTERN] sections, like, most specific wins. */
static const char templates[] =
	"[gateway]\n"
	"data_dir = /tmp\n"
	"default_tier = T3\n"
	"default_max_tokens = 1000\n"
	"[provider openai]\n"
	"base_url = https://api.openai.com/v1\n"
	"api_key = none\n"
	"match = gpt-* o1*\n"
	"max_tokens_field = max_completion_tokens\n"
	"[provider anthropic]\n"
	"type = anthropic\n"
	"base_url = https://api.anthropic.com/v1\n"
	"api_key = none\n"
	"match = claude-*\n"
	"[model gpt-4o]\n"
	"provider = openai\n"
	"input_price = 2.50\n"
	"output_price = 10\n"
	"max_tokens = 16384\n"
	"rpm = 7\n"
	"fallback = gpt-4o-mini\n"
	"[model gpt-4o-mini]\n"
	"provider = openai\n"
	"input_price = 0.15\n"
	"output_price = 0.60\n"
	"[model gpt-4o-20*]\n"
	"like = gpt-4o\n"
	"[model gpt-4o-mini-20*]\n"
	"like = gpt-4o-mini\n"
	"output_price = 0.70\n"
	"[model gpt-*]\n"
	"input_price = 50\n"
	"output_price = 100\n"
	"[model claude-opus-4-6]\n"
	"provider = anthropic\n"
	"input_price = 15\n"
	"output_price = 75\n"
	"[model claude-opus-4-6-*]\n"
	"like = claude-opus-4-6\n"
	"[model claude-haiku-4-5]\n"
	"provider = anthropic\n"
	"input_price = 0.80\n"
	"output_price = 4\n"
	"[tier T3]\n"
	"downgrade = claude-opus-4-6 -> claude-haiku-4-5\n";

/* A policy that refuses one name (ctx) and every unpriced candidate. */
static enum plan_skip
refuse_one(void *ctx, const struct candidate *c)
{
	if (strcmp(c->name, (const char *)ctx) == 0)
		return PLAN_SKIP_NOT_ALLOWED;
	return c->model == NULL ? PLAN_SKIP_NOT_PRICED : PLAN_SKIP_NONE;
}

static void
test_templates(void)
{
	struct config		*c = load(templates);
	const struct model_cfg	*m;
	struct candidate	 k;
	struct plan		 pl;

	ok(c != NULL, "a config with templates loads");
	if (c == NULL)
		return;
	ok(config_model(c, "gpt-4o-20*") == NULL,
	    "config_model never returns a template");
	m = config_model_match(c, "gpt-4o-2024-08-06");
	is_str(m != NULL ? m->name : "", "gpt-4o-20*",
	    "a dated snapshot is priced by its template");
	is_str(m != NULL ? config_model_identity(m) : "", "gpt-4o",
	    "and is gpt-4o for allow-lists and limits");
	m = config_model_match(c, "gpt-4o-mini-2024-07-18");
	is_str(m != NULL ? m->name : "", "gpt-4o-mini-20*",
	    "the most specific template wins over gpt-4o-20* and gpt-*");
	m = config_model_match(c, "gpt-5-nano");
	is_str(m != NULL ? m->name : "", "gpt-*", "a catch-all template");
	ok(config_model_match(c, "o1-preview") == NULL,
	    "a name no template matches has no price");
	ok(config_model_match(c, "gpt-4o") == config_model(c, "gpt-4o"),
	    "a model's own section beats every template");

	is_int(plan_lookup(c, "gpt-4o-2024-08-06", &k), 0, "snapshot resolves");
	is_str(k.upstream, "gpt-4o-2024-08-06", "a template sends the name "
	    "as asked");
	is_str(k.provider->name, "openai", "the provider of its like");
	is_int(k.input_price, 2500000, "inherits the input price");
	is_int(k.output_price, 10000000, "inherits the output price");
	is_int(k.max_tokens, 16384, "inherits the cap");
	ok(k.model != NULL && k.model->rpm == 7, "inherits the rpm");
	is_str(k.identity, "gpt-4o", "identity");
	is_int(plan_lookup(c, "gpt-4o-mini-2024-07-18", &k), 0,
	    "mini snapshot resolves");
	is_int(k.input_price, 150000, "inherits what it does not set");
	is_int(k.output_price, 700000, "keeps what it sets");
	is_int(k.cached_input_price, 150000, "cached defaults to its input");
	is_int(k.max_tokens, 1000, "no cap anywhere: default_max_tokens");
	is_int(plan_lookup(c, "gpt-5-nano", &k), 0, "catch-all resolves");
	is_str(k.provider->name, "openai", "routed by the match patterns");
	is_int(k.output_price, 100000000, "priced by gpt-*");
	is_str(k.identity, "gpt-*", "its identity is the template");
	is_int(plan_lookup(c, "o1-preview", &k), 0, "unpriced resolves");
	ok(k.model == NULL && k.input_price == 0, "with no price");
	is_str(k.identity, "o1-preview", "its identity is its name");

	is_int(plan_max_tokens(&k, 0), 1000, "no client limit: the cap");
	is_int(plan_max_tokens(&k, 10), 10, "a smaller client limit");
	is_int(plan_max_tokens(&k, 100000000), 1000, "a huge one: the cap");

	is_int(plan_resolve_routed(c, "claude-opus-4-6-20260101",
	    c->gw.default_tier_cfg, NULL, NULL, NULL, &pl), PLAN_OK,
	    "an Opus snapshot in T3");
	is_str(names(&pl), "claude-haiku-4-5",
	    "is downgraded like Opus itself");
	is_str(downs(&pl), "claude-haiku-4-5<-claude-opus-4-6-20260101",
	    "and says so");

	is_int(plan_resolve_routed(c, "gpt-4o", NULL, NULL, refuse_one,
	    (void *)"gpt-4o", &pl), PLAN_OK, "the policy refuses gpt-4o");
	is_str(names(&pl), "gpt-4o-mini", "its fallback is left");
	is_int(plan_resolve_routed(c, "gpt-4o", NULL, NULL, refuse_one,
	    (void *)"gpt-4o-mini", &pl), PLAN_OK,
	    "the policy refuses the fallback");
	is_str(names(&pl), "gpt-4o", "the fallback is left out");
	is_int(plan_resolve_routed(c, "o1-preview", NULL, NULL, refuse_one,
	    (void *)"", &pl), PLAN_UNAVAILABLE, "an unpriced name, refused");
	is_int(pl.skip, PLAN_SKIP_NOT_PRICED, "says why");
	is_int(plan_resolve_routed(c, "claude-opus-4-6",
	    c->gw.default_tier_cfg, NULL, refuse_one,
	    (void *)"claude-haiku-4-5", &pl), PLAN_UNAVAILABLE,
	    "a downgrade the key may not use is refused, not served");
	is_int(pl.skip, PLAN_SKIP_NOT_ALLOWED, "as not allowed");
	config_free(c);
}

/* context_fallback: in the plan from the start, flagged, under the rules. */
static void
test_context(void)
{
	struct config	*c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider p]\nbase_url = http://p\napi_key = none\n"
	    "[model small]\nprovider = p\nfallback = other\n"
	    "context_fallback = big\ninput_price = 1\n"
	    "[model big]\nprovider = p\ninput_price = 9\n"
	    "[model other]\nprovider = p\ninput_price = 1\n"
	    "[model both]\nprovider = p\nfallback = big\n"
	    "context_fallback = big\n"
	    "[tier T3]\ndowngrade = big -> other\n");
	struct plan	 pl;

	ok(c != NULL, "context config loads");
	if (c == NULL)
		return;
	is_int(plan_resolve(c, "small", &pl), PLAN_OK, "small resolves");
	is_str(names(&pl), "small other big", "the context_fallback comes last");
	is_int(pl.c[0].flags | pl.c[1].flags, 0,
	    "the model and its fallback serve without a context error");
	is_int(pl.c[2].flags, CAND_ON_CONTEXT | CAND_CONTEXT_ONLY,
	    "big serves only after a context error");
	is_int(pl.c[2].input_price, 9000000,
	    "priced (so admission reserves for it)");
	is_int(plan_resolve(c, "both", &pl), PLAN_OK, "both resolves");
	is_str(names(&pl), "both big", "a fallback that is also the "
	    "context_fallback is planned once");
	is_int(pl.c[1].flags, CAND_ON_CONTEXT,
	    "and serves either way");
	is_int(plan_resolve_routed(c, "small", NULL, NULL, refuse_one,
	    (void *)"big", &pl), PLAN_OK, "the policy refuses big");
	is_str(names(&pl), "small other", "no context_fallback then");
	is_int(plan_resolve_routed(c, "small", NULL, NULL, refuse_one,
	    (void *)"small", &pl), PLAN_OK, "the policy refuses small");
	is_str(names(&pl), "other big", "its context_fallback stays behind "
	    "what serves");
	is_int(plan_resolve_routed(c, "small", c->gw.default_tier_cfg, NULL,
	    NULL, NULL, &pl), PLAN_OK, "with a tier that downgrades big");
	is_str(names(&pl), "small other", "the downgraded context_fallback "
	    "is other, already planned");
	ok(pl.c[1].flags == CAND_ON_CONTEXT, "other serves after a context "
	    "error too");
	is_int(plan_resolve_routed(c, "big", NULL, NULL, refuse_one,
	    (void *)"big", &pl), PLAN_UNAVAILABLE,
	    "no context_fallback alone in a plan");
	config_free(c);
}

/* A [model] with several deployments: one candidate each, one group. */
static void
test_deployments(void)
{
	struct config	*c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\napi_key = none\n"
	    "[provider b]\nbase_url = http://b\napi_key = none\n"
	    "[provider gone]\nbase_url = http://g\n"
	    "api_key = env:" KEY_UNSET "\n"
	    "[model m]\ninput_price = 1\noutput_price = 2\n"
	    "deployment = a m-a weight=3\n"
	    "deployment = gone m-g weight=5\n"
	    "deployment = b m-b input_price=4 output_price=8\n"
	    "fallback = f\ncontext_fallback = m2\n"
	    "[model f]\nprovider = a\n"
	    "[model m2]\ninput_price = 1\n"
	    "deployment = a m2-a\ndeployment = b m2-b\n"
	    "[model g]\ninput_price = 1\n"
	    "deployment = gone g-g\ndeployment = b g-b\n");
	struct plan	 pl;
	struct candidate k;

	ok(c != NULL, "deployments config loads");
	if (c == NULL)
		return;
	is_int(plan_resolve(c, "m", &pl), PLAN_OK, "m resolves");
	is_str(names(&pl), "m m f m2 m2", "m twice (its provider 'gone' has "
	    "no key), f, m2 twice");
	is_str(pl.c[0].upstream, "m-a", "deployment 1: upstream");
	is_str(pl.c[0].provider->name, "a", "deployment 1: provider");
	is_int(pl.c[0].weight, 3, "deployment 1: weight");
	is_int(pl.c[0].output_price, 2000000, "deployment 1: the model's "
	    "price");
	is_str(pl.c[1].provider->name, "b", "deployment 3: provider");
	is_int(pl.c[1].output_price, 8000000, "deployment 3: its own price");
	ok(pl.c[0].group == 0 && pl.c[0].group_n == 2 && pl.c[1].group == 0 &&
	    pl.c[1].group_n == 2, "one group of two");
	is_int(pl.c[2].group_n, 0, "f: no group");
	ok(pl.c[3].group == 3 && pl.c[4].group_n == 2 &&
	    (pl.c[3].flags & pl.c[4].flags & CAND_CONTEXT_ONLY),
	    "the context_fallback's deployments: a group, context only");
	is_str(pl.c[0].name, "m", "served as the model's name");
	ok(plan_lookup(c, "g", &k) == 0 && strcmp(k.provider->name, "b") == 0 &&
	    strcmp(k.upstream, "g-b") == 0, "plan_lookup: the first deployment "
	    "that can serve (/v1/models lists g)");
	config_free(c);
}

/* cache_write_price: configured, or 1.25 x input for anthropic, else input. */
static void
test_cache_write_price(void)
{
	struct config	*c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider anth]\ntype = anthropic\nbase_url = http://a\n"
	    "api_key = none\n"
	    "[provider oa]\nbase_url = http://o\napi_key = none\n"
	    "[model c1]\nprovider = anth\ninput_price = 3\n"
	    "[model c2]\nprovider = anth\ninput_price = 3\n"
	    "cache_write_price = 6\n"
	    "[model o1]\nprovider = oa\ninput_price = 2.5\n"
	    "[model o2]\nprovider = oa\ninput_price = 2.5\n"
	    "cache_write_price = 3\n"
	    "[model c3]\nlike = c1\n"
	    "[model c4]\nlike = c2\ninput_price = 1\n"
	    "[model c5]\nlike = c2\n"
	    "[model d]\ninput_price = 2\n"
	    "deployment = anth d-a\ndeployment = oa d-o\n"
	    "deployment = anth d-a2 input_price=4\n"
	    "deployment = oa d-o2 cache_write_price=9\n"
	    "[model e]\ninput_price = 2\ncache_write_price = 7\n"
	    "deployment = oa e-o\ndeployment = anth e-a input_price=4\n"
	    "[model t*]\nprovider = anth\ninput_price = 1\n"
	    "[model h]\nprovider = anth\ninput_price = 10000\n"
	    "[model odd]\nprovider = anth\ninput_price = 0.000003\n");
	struct plan	 pl;
	struct candidate k;
	static const struct { const char *m; money_t want; const char *why; }
	    one[] = {
		{ "c1", 3750000, "anthropic: 1.25 x input" },
		{ "c2", 6000000, "anthropic: its own" },
		{ "o1", 2500000, "openai: input" },
		{ "o2", 3000000, "openai: its own" },
		{ "c3", 3750000, "like: the default at the same input" },
		{ "c4", 1250000, "like with a price of its own: its default" },
		{ "c5", 6000000, "like: the configured one" },
		{ "t-x", 1250000, "template: 1.25 x its input" },
		{ "h", MONEY_PRICE_MAX, "capped at the largest price" },
		{ "odd", 4, "3 micro-USD x 1.25 rounds up to 4" },
	};
	size_t		 i;

	ok(c != NULL, "cache_write_price config loads");
	if (c == NULL)
		return;
	for (i = 0; i < sizeof(one) / sizeof(one[0]); i++) {
		ok(plan_lookup(c, one[i].m, &k) == 0, "%s plans", one[i].m);
		is_int(k.cache_write_price, one[i].want, "%s: %s", one[i].m,
		    one[i].why);
	}
	is_int(plan_resolve(c, "d", &pl), PLAN_OK, "d resolves");
	is_int(pl.n, 4, "four deployments");
	is_int(pl.c[0].cache_write_price, 2500000, "anthropic deployment: "
	    "1.25 x the model's input");
	is_int(pl.c[1].cache_write_price, 2000000, "openai deployment: input");
	is_int(pl.c[2].cache_write_price, 5000000, "anthropic deployment with "
	    "its own input: 1.25 x that");
	is_int(pl.c[3].cache_write_price, 9000000, "a deployment's own");
	is_int(plan_resolve(c, "e", &pl), PLAN_OK, "e resolves");
	is_int(pl.c[0].cache_write_price, 7000000, "the model's own price");
	is_int(pl.c[1].cache_write_price, 5000000, "a deployment with its own "
	    "input price: its default");
	config_free(c);
}

int
main(void)
{
	struct config	*cfg;

	cfg = load(routes);
	ok(cfg != NULL, "routing config loads");
	if (cfg == NULL)
		return tap_done();
	test_exact(cfg);
	test_patterns(cfg);
	test_default(cfg);
	test_fallback(cfg);
	test_unavailable(cfg);
	test_lookup(cfg);
	config_free(cfg);
	test_routed();
	test_templates();
	test_context();
	test_deployments();
	test_cache_write_price();
	return tap_done();
}
