/* unit-config.c: config_load values, defaults, secrets and file:line errors. */
#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/config.h"
#include "tap.h"

#define KEY_SET		"LLMGATE_UNIT_CONFIG_KEY"
#define KEY_UNSET	"LLMGATE_UNIT_CONFIG_UNSET"

/* got contains needle; on failure both are printed. */
#define like(got, needle, ...) do {					\
	const char *l_ = (got), *n_ = (needle);				\
	int f_ = l_ != NULL && strstr(l_, n_) != NULL;			\
	ok(f_, __VA_ARGS__);						\
	if (!f_)							\
		printf("#   '%s' lacks '%s'\n", l_ ? l_ : "(null)", n_); \
} while (0)

/* Write text to a new file under /tmp; path receives its name. */
static int
write_tmp(char *path, size_t len, const char *text)
{
	size_t	 n = strlen(text);
	int	 fd;

	snprintf(path, len, "/tmp/llmgate-unit-XXXXXX");
	if ((fd = mkstemp(path)) == -1)
		return -1;
	if (write(fd, text, n) != (ssize_t)n) {
		close(fd);
		unlink(path);
		return -1;
	}
	close(fd);
	return 0;
}

/* Load text as a config file; the file is gone when this returns. */
static struct config *
load(const char *text, char *path, size_t pathlen, char *err, size_t errlen)
{
	struct config	*c;

	err[0] = '\0';
	if (write_tmp(path, pathlen, text) == -1) {
		snprintf(err, errlen, "cannot write a temporary file");
		return NULL;
	}
	c = config_load(path, err, errlen);
	unlink(path);
	return c;
}

/* text must be refused with "file:line: " and a reason containing why. */
static void
bad(const char *what, const char *text, int line, const char *why)
{
	struct config	*c;
	char		 path[64], err[512], want[96];

	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c == NULL, "%s: refused", what);
	snprintf(want, sizeof(want), "%s:%d: ", path, line);
	ok(strncmp(err, want, strlen(want)) == 0, "%s: error at line %d",
	    what, line);
	if (strncmp(err, want, strlen(want)) != 0)
		printf("#   error was '%s'\n", err);
	like(err, why, "%s: reason says '%s'", what, why);
	config_free(c);
}

/*
 * A check of the whole file (a missing key, a dangling reference outside
 * any section) has no line of its own: it names the file, not line 0.
 */
static void
bad_file(const char *what, const char *text, const char *why)
{
	struct config	*c;
	char		 path[64], err[512], want[96];

	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c == NULL, "%s: refused", what);
	snprintf(want, sizeof(want), "%s:", path);
	ok(strncmp(err, want, strlen(want)) == 0, "%s: error names the file",
	    what);
	like(err, why, "%s: reason says '%s'", what, why);
	snprintf(want, sizeof(want), "%s:0:", path);
	ok(strncmp(err, want, strlen(want)) != 0, "%s: no line 0 in '%s'",
	    what, err);
	config_free(c);
}

static const char full[] =
	"; a full configuration\n"			/* 1 */
	"[gateway]\n"
	"data_dir = /var/lib/llmgate\n"
	"default_provider = openrouter\n"
	"max_body = 1048576\n"				/* 5 */
	"max_json_depth = 32\n"
	"log_level = debug\n"
	"durability = fsync\n"
	"base_path = /llm\n"
	"\n"						/* 10 */
	"[retry]\n"
	"attempts = 3\n"
	"backoff_ms = 100\n"
	"on_status = 500, 503 529\n"
	"\n"						/* 15 */
	"[provider openai]\n"
	"type = openai\n"
	"base_url = https://api.openai.com/v1\n"
	"api_key = env:" KEY_SET "\n"
	"match = gpt-* o1\n"				/* 20 */
	"header = X-Title: llmgate\n"
	"header = HTTP-Referer: https://llmgate.example\n"
	"connect_timeout = 5000\n"
	"\n"
	"[provider openrouter]\n"			/* 25 */
	"base_url = https://openrouter.ai/api/v1\n"
	"api_key = none\n"
	"match = openrouter/*\n"
	"strip_prefix = openrouter/\n"
	"residency = global\n"				/* 30 */
	"\n"
	"[model gpt-4o]\n"
	"provider = openai\n"
	"upstream = gpt-4o-2024-08-06\n"
	"input_price = 2.50\n"				/* 35 */
	"output_price = 10\n"
	"cached_input_price = 1.25\n"
	"fallback = gpt-4o-mini, openrouter/openai/gpt-4o\n"
	"max_tokens = 4096\n"
	"rpm = 60\n"					/* 40 */
	"\n"
	"[model gpt-4o-mini]\n"
	"provider = openai\n"
	"input_price = 0.15\n"
	"output_price = 0.6\n"				/* 45 */
	"\n"
	"[model openrouter/openai/gpt-4o]\n"
	"provider = openrouter\n";

static void
test_full(void)
{
	struct config		*c;
	struct provider_cfg	*p;
	struct model_cfg	*m;
	char			 path[64], err[512];

	setenv(KEY_SET, "sk-unit-secret", 1);
	c = load(full, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "full config loads (%s)", err);
	if (c == NULL)
		return;
	is_str(c->path, path, "path kept");
	is_str(c->gw.data_dir, "/var/lib/llmgate", "data_dir");
	is_str(c->gw.default_provider, "openrouter", "default_provider");
	ok(c->gw.default_prov == config_provider(c, "openrouter"),
	    "default_provider resolved to its [provider]");
	is_int(c->gw.max_body, 1048576, "max_body");
	is_int(c->gw.max_json_depth, 32, "max_json_depth");
	is_str(c->gw.log_level, "debug", "log_level");
	is_str(c->gw.durability, "fsync", "durability");
	is_str(c->gw.base_path, "/llm", "base_path");
	ok(c->gw.master_key == NULL, "no master_key");

	is_int(c->retry.attempts, 3, "retry attempts");
	is_int(c->retry.backoff_ms, 100, "retry backoff_ms");
	is_int(c->retry.backoff_max_ms, 4000, "retry backoff_max_ms default");
	is_int(c->retry.non_status, 3, "on_status replaces the default list");
	ok(config_retry_status(c, 500) && config_retry_status(c, 503) &&
	    config_retry_status(c, 529), "500, 503 and 529 are retried");
	ok(!config_retry_status(c, 502) && !config_retry_status(c, 404),
	    "502 and 404 are not");

	is_int(c->nproviders, 2, "two providers");
	p = config_provider(c, "openai");
	ok(p != NULL && p == &c->providers[0], "[provider openai] first");
	if (p != NULL) {
		is_int(p->type, PROVIDER_OPENAI, "openai type");
		is_str(p->base_url, "https://api.openai.com/v1", "base_url");
		is_str(p->api_key_ref, "env:" KEY_SET, "api_key reference");
		is_str(p->api_key, "sk-unit-secret", "api_key from env");
		is_int(p->available, 1, "openai available");
		ok(p->unavailable == NULL, "no unavailable reason");
		is_int(p->match.n, 2, "two match patterns");
		if (p->match.n == 2) {
			is_str(p->match.v[0], "gpt-*", "match[0]");
			is_str(p->match.v[1], "o1", "match[1]");
		}
		is_int(p->headers.n, 2, "two extra headers");
		if (p->headers.n == 2) {
			is_str(p->headers.v[0], "X-Title: llmgate",
			    "header kept whole");
			is_str(p->headers.v[1],
			    "HTTP-Referer: https://llmgate.example",
			    "header with a URL value");
		}
		is_int(p->connect_timeout, 5000, "connect_timeout");
		is_int(p->first_byte_timeout, 120,
		    "first_byte_timeout default");
		is_int(p->idle_timeout, 60, "idle_timeout default");
		is_int(p->timeout, 900, "timeout default");
		is_str(p->residency, "global", "residency default");
		is_int(p->line, 16, "provider remembers its header line");
	}
	p = config_provider(c, "openrouter");
	ok(p != NULL, "[provider openrouter]");
	if (p != NULL) {
		ok(p->api_key_ref == NULL && p->api_key == NULL,
		    "api_key = none: no key");
		is_int(p->available, 1, "keyless provider available");
		is_str(p->strip_prefix, "openrouter/", "strip_prefix");
	}
	ok(config_provider(c, "nope") == NULL, "unknown provider is NULL");

	is_int(c->nmodels, 3, "three models");
	m = config_model(c, "gpt-4o");
	ok(m != NULL, "[model gpt-4o]");
	if (m != NULL) {
		ok(m->provider == config_provider(c, "openai"),
		    "model points at its provider");
		is_str(m->upstream, "gpt-4o-2024-08-06", "upstream");
		is_int(m->input_price, 2500000,
		    "input_price 2.50 in micro-USD");
		is_int(m->output_price, 10000000, "output_price 10");
		is_int(m->cached_input_price, 1250000, "cached_input_price");
		is_int(m->fallback.n, 2, "two fallbacks");
		if (m->fallback.n == 2) {
			is_str(m->fallback.v[0], "gpt-4o-mini", "fallback[0]");
			is_str(m->fallback.v[1], "openrouter/openai/gpt-4o",
			    "fallback[1]");
		}
		is_int(m->max_tokens, 4096, "max_tokens");
		is_int(m->rpm, 60, "rpm");
		is_int(m->tpm, 0, "tpm default");
		is_int(m->line, 32, "model remembers its header line");
	}
	m = config_model(c, "gpt-4o-mini");
	ok(m != NULL, "[model gpt-4o-mini]");
	if (m != NULL) {
		is_str(m->upstream, "gpt-4o-mini", "upstream defaults to name");
		is_int(m->input_price, 150000, "input_price 0.15");
		is_int(m->output_price, 600000, "output_price 0.6");
		is_int(m->cached_input_price, 150000,
		    "cached_input_price defaults to input_price");
		is_int(m->fallback.n, 0, "no fallback");
		is_int(m->max_tokens, 0, "max_tokens default");
		is_int(m->rpm, 1000, "rpm default");
	}
	ok(config_model(c, "nope") == NULL, "unknown model is NULL");
	config_free(c);
	unsetenv(KEY_SET);
}

static void
test_defaults(void)
{
	struct config	*c;
	char		 path[64], err[512];

	c = load("[gateway]\ndata_dir = /tmp\n", path, sizeof(path), err,
	    sizeof(err));
	ok(c != NULL, "minimal config loads (%s)", err);
	if (c == NULL)
		return;
	is_int(c->gw.max_body, 8388608, "max_body default");
	is_int(c->gw.max_upstream_body, 33554432, "max_upstream_body default");
	is_int(c->gw.max_json_depth, 64, "max_json_depth default");
	is_int(c->gw.max_sse_event, 4194304, "max_sse_event default");
	is_int(c->gw.heartbeat, 15, "heartbeat default");
	is_str(c->gw.durability, "nosync", "durability default");
	is_str(c->gw.log_level, "info", "log_level default");
	is_str(c->gw.base_path, "", "base_path default");
	ok(c->gw.default_provider == NULL && c->gw.default_prov == NULL,
	    "no default_provider");
	ok(c->gw.master_key_ref == NULL && c->gw.master_key == NULL,
	    "no master_key");
	is_int(c->retry.attempts, 2, "attempts default");
	is_int(c->retry.backoff_ms, 250, "backoff_ms default");
	is_int(c->retry.backoff_max_ms, 4000, "backoff_max_ms default");
	is_int(c->retry.retry_after_max, 30, "retry_after_max default");
	is_int(c->retry.non_status, 5, "five default retry statuses");
	ok(config_retry_status(c, 500) && config_retry_status(c, 502) &&
	    config_retry_status(c, 503) && config_retry_status(c, 504) &&
	    config_retry_status(c, 529), "500 502 503 504 529 retried");
	ok(!config_retry_status(c, 429) && !config_retry_status(c, 400) &&
	    !config_retry_status(c, 501), "429, 400 and 501 not in the list");
	is_int(c->nproviders, 0, "no providers");
	is_int(c->nmodels, 0, "no models");
	config_free(c);
}

/* inih strips "; comment" after a space; a ';' inside a value stays. */
static void
test_comments(void)
{
	struct config	*c;
	char		 path[64], err[512];

	c = load("# hash comment\n[gateway] ; the gateway\n"
	    "data_dir = /tmp ; where the store lives\nmax_body = 2048 ; bytes\n"
	    "[provider a]\nbase_url = http://a\nheader = X-List: a;b\n",
	    path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "comments load (%s)", err);
	if (c == NULL)
		return;
	is_str(c->gw.data_dir, "/tmp", "inline comment stripped from a path");
	is_int(c->gw.max_body, 2048, "inline comment stripped from a number");
	is_str(c->providers[0].headers.v[0], "X-List: a;b",
	    "';' without a space before it is part of the value");
	config_free(c);
}

static void
test_errors(void)
{
	bad("unknown key", "[gateway]\ndata_dir = /tmp\nbogus = 1\n", 3,
	    "unknown key \"bogus\" in [gateway]");
	bad("key of another section", "[gateway]\ndata_dir = /tmp\n"
	    "attempts = 2\n", 3, "unknown key \"attempts\"");
	bad("bad integer", "[gateway]\ndata_dir = /tmp\nmax_body = 12abc\n",
	    3, "max_body: \"12abc\" is not an integer");
	bad("empty integer", "[gateway]\ndata_dir = /tmp\nheartbeat =\n", 3,
	    "heartbeat");
	bad("integer out of range", "[gateway]\ndata_dir = /tmp\n"
	    "max_json_depth = 2\n", 3, "max_json_depth: 2 is out of range");
	bad("integer above range", "[retry]\nattempts = 11\n"
	    "[gateway]\ndata_dir = /tmp\n", 2, "attempts: 11 is out of range");
	bad("integer overflow", "[gateway]\ndata_dir = /tmp\n"
	    "max_body = 99999999999999999999999\n", 3, "not an integer");
	bad("bad log_level", "[gateway]\ndata_dir = /tmp\nlog_level = loud\n",
	    3, "log_level");
	bad("bad durability", "[gateway]\ndata_dir = /tmp\n"
	    "durability = maybe\n", 3, "durability");
	bad("[gateway] with a name", "[gateway main]\ndata_dir = /tmp\n", 1,
	    "takes no name");
	bad("bad URL", "[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = ftp://example.com\n", 4,
	    "base_url: expected an http:// or https:// URL");
	bad("bad proxy URL", "[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\nproxy = 127.0.0.1:3128\n", 5, "proxy");
	bad("unknown provider type", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\ntype = bedrock\n", 5,
	    "unknown provider type \"bedrock\"");
	bad("header without colon", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\nheader = X-Title llmgate\n", 5,
	    "expected \"Name: value\"");
	bad("missing base_url", "[gateway]\ndata_dir = /tmp\n\n"
	    "[provider a]\napi_key = none\n", 4,
	    "[provider a] needs base_url");
	bad("strip_prefix without match", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\nstrip_prefix = a/\n", 3,
	    "strip_prefix needs match");
	bad("model without provider", "[gateway]\ndata_dir = /tmp\n"
	    "[model m]\nupstream = x\n", 3, "[model m] needs provider");
	bad("model of a missing provider", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n\n[model m]\nprovider = b\n",
	    6, "no [provider b]");
	bad("fallback to a missing model", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m]\nprovider = a\n"
	    "[model n]\nprovider = a\nfallback = m, ghost\n", 7,
	    "fallback: no [model ghost]");
	bad("fallback to itself", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m]\nprovider = a\n"
	    "fallback = m\n", 5, "falls back to itself");
	bad("syntax error", "[gateway]\ndata_dir = /tmp\nthis is not ini\n"
	    "max_body = 2048\n", 3, "syntax error");
	bad("provider without a name", "[gateway]\ndata_dir = /tmp\n"
	    "[provider]\nbase_url = http://a\n", 3, "needs a name");
	bad("key before any section", "data_dir = /tmp\n[gateway]\n", 1,
	    "unknown section");
	bad("first error wins", "[gateway]\ndata_dir = /tmp\nbogus = 1\n"
	    "max_body = x\n", 3, "bogus");
	bad("bad unpriced", "[gateway]\ndata_dir = /tmp\nunpriced = maybe\n",
	    3, "unpriced: expected refuse or free");
	bad("bad max_tokens_field", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\nmax_tokens_field = limit\n", 3,
	    "max_tokens_field: expected max_tokens or max_completion_tokens");
	bad("like a missing model", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m-*]\nlike = ghost\n", 5,
	    "[model m-*] like: no [model ghost]");
	bad("like a template", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model t*]\nprovider = a\n"
	    "[model u*]\nlike = t*\n", 7, "like: no [model t*]");
	bad("like a like", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m]\nprovider = a\n"
	    "[model n]\nlike = m\n[model o-*]\nlike = n\n", 9,
	    "must be a model of its own");
	bad("template with upstream", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m-*]\nprovider = a\n"
	    "upstream = x\n", 5, "a template sends each name as asked");
	bad("fallback to a template", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model t*]\nprovider = a\n"
	    "[model m]\nprovider = a\nfallback = t*\n", 7,
	    "fallback: no [model t*]");
	bad("a model name with a space", "[gateway]\ndata_dir = /tmp\n"
	    "[model a b]\nprovider = a\n", 3, "needs a name");
}

/* Errors point at the line that caused them, never at line 0. */
static void
test_error_lines(void)
{
	struct config	*c;
	char		 path[64], err[512], want[96];

	/* An unclosed header is inih's error; the keys below it are not. */
	c = load("[gateway]\ndata_dir = /tmp\n[provider a\n"
	    "base_url = http://a\n", path, sizeof(path), err, sizeof(err));
	ok(c == NULL, "unclosed section: refused");
	snprintf(want, sizeof(want), "%s:3: syntax error", path);
	ok(strncmp(err, want, strlen(want)) == 0,
	    "unclosed section: syntax error at line 3, not '%s'", err);
	config_free(c);

	/* "unknown section" names the [header] line, not a key below it. */
	c = load("[gateway]\ndata_dir = /tmp\n\n[bogus]\n\nkey = 1\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c == NULL, "unknown section: refused");
	like(err, "unknown section [bogus]", "unknown section: reason");
	snprintf(want, sizeof(want), "%s:4: ", path);
	ok(strncmp(err, want, strlen(want)) == 0,
	    "unknown section: error at its header line 4, not '%s'", err);
	config_free(c);

	/* A misspelt header with no keys under it is still an error. */
	c = load("[gateway]\ndata_dir = /tmp\n[bogus]\n", path, sizeof(path),
	    err, sizeof(err));
	snprintf(want, sizeof(want), "%s:3: unknown section", path);
	ok(c == NULL && strncmp(err, want, strlen(want)) == 0,
	    "unknown section without keys: refused at line 3");
	config_free(c);
}

static void
test_whole_file(void)
{
	bad_file("missing data_dir", "[retry]\nattempts = 2\n",
	    "[gateway] needs data_dir");
	bad_file("default_provider missing", "[gateway]\ndata_dir = /tmp\n"
	    "default_provider = ghost\n",
	    "default_provider: no [provider ghost]");
	unsetenv(KEY_UNSET);
	bad_file("master_key unset", "[gateway]\ndata_dir = /tmp\n"
	    "master_key = env:" KEY_UNSET "\n", KEY_UNSET);
}

static void
test_prices(void)
{
	static const char *const bad_prices[] = {
		"1.2345678", "-1", "abc", "1e3", "", "1.5 USD", "10000.000001",
	};
	struct config	*c;
	char		 text[256], path[64], err[512], what[64];
	size_t		 i;

	for (i = 0; i < sizeof(bad_prices) / sizeof(bad_prices[0]); i++) {
		snprintf(text, sizeof(text), "[gateway]\ndata_dir = /tmp\n"
		    "[provider a]\nbase_url = http://a\n[model m]\n"
		    "provider = a\ninput_price = %s\n", bad_prices[i]);
		snprintf(what, sizeof(what), "price \"%s\"", bad_prices[i]);
		bad(what, text, 7, "input_price");
	}
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\n[model m]\nprovider = a\n"
	    "input_price = 0.000001\noutput_price = 10000\n"
	    "cached_input_price = 0\n", path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "boundary prices load (%s)", err);
	if (c != NULL) {
		is_int(c->models[0].input_price, 1, "0.000001 is 1 micro-USD");
		is_int(c->models[0].output_price, MONEY_PRICE_MAX,
		    "10000 is the largest price");
		is_int(c->models[0].cached_input_price, 0,
		    "cached_input_price 0 kept, not replaced by input_price");
	}
	config_free(c);
}

static void
test_secrets(void)
{
	struct config		*c;
	struct provider_cfg	*p;
	char			 path[64], keyfile[64], text[512], err[512];

	/* A literal key is refused and not echoed. */
	bad("literal api_key", "[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = sk-abc\n", 5,
	    "api_key: secrets never live in the INI");
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = sk-abc\n", path, sizeof(path),
	    err, sizeof(err));
	ok(c == NULL && strstr(err, "sk-abc") == NULL,
	    "literal api_key not echoed in the error");
	config_free(c);
	bad("relative key file", "[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = file:key.txt\n", 5, "api_key");
	bad("literal master_key", "[gateway]\ndata_dir = /tmp\n"
	    "master_key = hunter2\n", 3, "master_key");

	/* A missing key makes the provider unavailable, not the file bad. */
	unsetenv(KEY_UNSET);
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = env:" KEY_UNSET "\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c != NULL, "env:UNSET loads (%s)", err);
	if (c != NULL) {
		p = &c->providers[0];
		is_int(p->available, 0, "env:UNSET: provider unavailable");
		ok(p->api_key == NULL, "env:UNSET: no key");
		like(p->unavailable, KEY_UNSET,
		    "env:UNSET: reason names the variable");
	}
	config_free(c);

	setenv(KEY_UNSET, "", 1);
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = env:" KEY_UNSET "\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c != NULL && !c->providers[0].available,
	    "env: of an empty variable: unavailable");
	config_free(c);
	unsetenv(KEY_UNSET);

	setenv(KEY_SET, "sk-from-env", 1);
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = env:" KEY_SET "\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c != NULL, "env:SET loads (%s)", err);
	if (c != NULL) {
		is_int(c->providers[0].available, 1, "env:SET: available");
		is_str(c->providers[0].api_key, "sk-from-env",
		    "env:SET: api_key is the value");
	}
	config_free(c);
	unsetenv(KEY_SET);

	/* file:/path, first line, trailing newline trimmed. */
	if (write_tmp(keyfile, sizeof(keyfile), "sk-from-file\n") == -1) {
		ok(0, "cannot write a key file");
		return;
	}
	snprintf(text, sizeof(text), "[gateway]\ndata_dir = /tmp\n"
	    "master_key = file:%s\n[provider a]\nbase_url = http://a\n"
	    "api_key = file:%s\n", keyfile, keyfile);
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "file: key loads (%s)", err);
	if (c != NULL) {
		is_str(c->providers[0].api_key, "sk-from-file",
		    "file: api_key without its newline");
		is_int(c->providers[0].available, 1, "file: available");
		is_str(c->gw.master_key, "sk-from-file", "file: master_key");
	}
	config_free(c);
	unlink(keyfile);

	/* A missing key file: unavailable, with the path in the reason. */
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c == NULL, "missing master_key file is an error");
	like(err, "master_key", "error names master_key");
	config_free(c);
	snprintf(text, sizeof(text), "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\napi_key = file:%s\n", keyfile);
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c != NULL && !c->providers[0].available,
	    "missing api_key file: provider unavailable");
	if (c != NULL)
		like(c->providers[0].unavailable, keyfile,
		    "reason names the key file");
	config_free(c);

	/*
	 * The key is the file's first line (conf/llmgate.ini says so); a
	 * second line must not become part of the Authorization header.
	 */
	if (write_tmp(keyfile, sizeof(keyfile), "sk-first\nnote: rotated\n")
	    == -1) {
		ok(0, "cannot write a key file");
		return;
	}
	snprintf(text, sizeof(text), "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\napi_key = file:%s\n", keyfile);
	c = load(text, path, sizeof(path), err, sizeof(err));
	unlink(keyfile);
	ok(c != NULL, "two-line key file loads (%s)", err);
	if (c != NULL)
		ok(c->providers[0].api_key != NULL &&
		    strcmp(c->providers[0].api_key, "sk-first") == 0,
		    "the key is the first line only");
	config_free(c);
}

static void
test_lists(void)
{
	struct config		*c;
	struct provider_cfg	*p;
	char			 path[64], err[512];

	/* A repeated [provider x] adds to the first; match continues. */
	c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\n"
	    "base_url = http://a\n"
	    "match = gpt-*\n"
	    "  claude-*\n"
	    "\tgemini-*, o1\n"
	    "[model m]\n"
	    "provider = a\n"
	    "[provider a]\n"
	    "match = last-*\n"
	    "header = X-Title: llmgate\n"
	    "header = X-Other: 1\n"
	    "timeout = 30\n", path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "lists load (%s)", err);
	if (c == NULL)
		return;
	is_int(c->nproviders, 1, "repeated [provider a] is one provider");
	p = &c->providers[0];
	is_int(p->match.n, 5, "indented lines continue match");
	if (p->match.n == 5) {
		is_str(p->match.v[0], "gpt-*", "match[0]");
		is_str(p->match.v[1], "claude-*",
		    "match[1] from a continuation");
		is_str(p->match.v[2], "gemini-*", "match[2] tab-indented");
		is_str(p->match.v[3], "o1", "match[3] after a comma");
		is_str(p->match.v[4], "last-*",
		    "match[4] from the second section");
	}
	is_int(p->headers.n, 2, "headers from the second section");
	if (p->headers.n == 2)
		is_str(p->headers.v[0], "X-Title: llmgate", "header stored");
	is_int(p->timeout, 30, "second section sets timeout");
	is_str(p->base_url, "http://a", "first section's base_url kept");
	is_int(p->line, 3, "line of the first [provider a]");
	config_free(c);
}

static void
test_on_status(void)
{
	struct config	*c;
	char		 path[64], err[512];

	c = load("[gateway]\ndata_dir = /tmp\n[retry]\n"
	    "on_status = 429,500 , 599\n", path, sizeof(path), err,
	    sizeof(err));
	ok(c != NULL, "on_status loads (%s)", err);
	if (c != NULL) {
		is_int(c->retry.non_status, 3, "three statuses");
		is_int(c->retry.on_status[0], 429, "first status");
		is_int(c->retry.on_status[2], 599, "last status");
		ok(config_retry_status(c, 429), "429 retried");
		ok(!config_retry_status(c, 503), "503 no longer retried");
	}
	config_free(c);

	c = load("[gateway]\ndata_dir = /tmp\n[retry]\non_status =\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c != NULL && c->retry.non_status == 0,
	    "empty on_status retries nothing");
	if (c != NULL)
		ok(!config_retry_status(c, 500), "500 not retried");
	config_free(c);

	c = load("[gateway]\ndata_dir = /tmp\n[retry]\n"
	    "on_status = 500 502\n  503 429\n", path, sizeof(path), err,
	    sizeof(err));
	ok(c != NULL, "on_status with a continuation line loads (%s)", err);
	if (c != NULL) {
		is_int(c->retry.non_status, 4, "continuation adds to the list");
		ok(config_retry_status(c, 500) && config_retry_status(c, 429),
		    "first and last status both retried");
	}
	config_free(c);

	{
		char		 dir[1100], file[1200], cfgerr[512];
		struct config	*lc;
		FILE		*fp;
		size_t		 n;
		int		 depth;

		/* A path that alone fills the message must not overflow it. */
		snprintf(dir, sizeof(dir), "/tmp/llmgate-unit-long.%d",
		    (int)getpid());
		mkdir(dir, 0700);
		for (depth = 0; depth < 4; depth++) {
			n = strlen(dir);
			dir[n++] = '/';
			memset(dir + n, 'd', 200);
			dir[n + 200] = '\0';
			mkdir(dir, 0700);
		}
		snprintf(file, sizeof(file), "%s/c.ini", dir);
		if ((fp = fopen(file, "w")) != NULL) {
			fputs("[gateway]\nbogus = 1\n", fp);
			fclose(fp);
		}
		lc = config_load(file, cfgerr, sizeof(cfgerr));
		ok(lc == NULL && strlen(cfgerr) < sizeof(cfgerr),
		    "an error in a config with a 1 KB path is reported safely");
		config_free(lc);
		unlink(file);
		for (depth = 0; depth < 4; depth++) {
			rmdir(dir);
			*strrchr(dir, '/') = '\0';
		}
		rmdir(dir);
	}

	bad("on_status 200", "[retry]\non_status = 500 200\n", 2,
	    "on_status: expected HTTP statuses 400..599");
	bad("on_status 5xx", "[retry]\non_status = 5xx\n", 2, "on_status");
	bad("on_status 600", "[retry]\non_status = 600\n", 2, "on_status");
	bad("17 statuses", "[retry]\non_status = 400 401 402 403 404 405 406 "
	    "407 408 409 410 411 412 413 414 415 416\n", 2, "at most 16");
}

/* inih reads at most 200 bytes a line; longer lines name their own line. */
/* A header line "header = X-Pad: aaa..." of len characters, then eol. */
static void
pad_line(char *dst, size_t dstlen, size_t len, const char *eol)
{
	char	 pad[512];

	memset(pad, 'a', len - 16);
	pad[len - 16] = '\0';
	snprintf(dst, dstlen, "[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\nheader = X-Pad: %s%smatch = a-*\n"
	    "timeout = 5\n", pad, eol);
}

static void
test_long_line(void)
{
	struct config	*c;
	char		 text[1024], path[64], err[512];

	pad_line(text, sizeof(text), 197, "\n");
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "a 197-character line loads (%s)", err);
	if (c != NULL)
		is_int(strlen(c->providers[0].headers.v[0]), 197 - 9,
		    "its value is whole");
	config_free(c);

	pad_line(text, sizeof(text), 197, "\r\n");
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "a 197-character line ending in CRLF loads (%s)", err);
	if (c != NULL)
		is_int(strlen(c->providers[0].headers.v[0]), 197 - 9,
		    "its value is whole, without the CR");
	config_free(c);

	/* Longer lines name their own line, with valid lines after them. */
	pad_line(text, sizeof(text), 250, "\n");
	bad("250-character line", text, 5,
	    "line longer than 197 characters");
	pad_line(text, sizeof(text), 199, "\n");
	bad("199-character line", text, 5, "line longer than");
	pad_line(text, sizeof(text), 250, "\n");
	memcpy(strstr(text, "header"), "; ", 2);
	bad("250-character comment", text, 5, "line longer than");
}

static const char routing[] =
	"[gateway]\n"					/* 1 */
	"data_dir = /var/lib/llmgate/\n"
	"default_tier = T2\n"
	"reservation_ttl = 60\n"
	"usage_retention_days = 30\n"			/* 5 */
	"budget_warn_percent = 75\n"
	"default_max_tokens = 1024\n"
	"checkpoint_interval = 5\n"
	"[provider a]\n"
	"base_url = http://a\n"				/* 10 */
	"match = pat-*\n"
	"[model big]\nprovider = a\n"
	"[model small]\nprovider = a\n"			/* 14 */
	"[model tiny]\nprovider = a\n"			/* 16 */
	"[tier T1]\n"					/* 18 */
	"daily_budget = 50\n"
	"monthly_budget = 1000.25\n"			/* 20 */
	"rpm = 60\n"
	"tpm = 100000\n"
	"[tier T2]\n"
	"daily_budget = 12.50\n"
	"downgrade = big -> small, huge-* -> tiny\n"	/* 25 */
	"  pat-x->tiny\n"
	"downgrade = gpt-4? -> small\n"
	"[agent director]\n"
	"tier = T1\n"
	"[agent intern]\n"				/* 30 */
	"daily_budget = 0.5\n"
	"[task code]\n"
	"model = big\n"
	"fallback = small, tiny\n"
	"[task summarize]\n"				/* 35 */
	"model = pat-summary\n";

static void
test_routing(void)
{
	struct config		*c;
	const struct tier_cfg	*t;
	const struct agent_cfg	*a;
	const struct task_cfg	*k;
	char			 path[64], err[512];

	c = load(routing, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "tiers, agents and tasks load (%s)", err);
	if (c == NULL)
		return;
	is_str(c->gw.default_tier, "T2", "default_tier");
	ok(c->gw.default_tier_cfg == config_tier(c, "T2"),
	    "default_tier resolved to its [tier]");
	is_int(c->gw.reservation_ttl, 60, "reservation_ttl");
	is_int(c->gw.usage_retention_days, 30, "usage_retention_days");
	is_int(c->gw.budget_warn_percent, 75, "budget_warn_percent");
	is_int(c->gw.default_max_tokens, 1024, "default_max_tokens");
	is_int(c->gw.checkpoint_interval, 5, "checkpoint_interval");
	is_str(c->gw.fallback_file, "/var/lib/llmgate/usage-fallback.jsonl",
	    "fallback_file defaults into data_dir, one slash");

	is_int(c->ntiers, 2, "two tiers");
	t = config_tier(c, "T1");
	ok(t != NULL, "[tier T1]");
	if (t != NULL) {
		is_int(t->daily_budget, 50000000, "daily_budget 50 USD");
		is_int(t->monthly_budget, 1000250000, "monthly_budget 1000.25");
		is_int(t->rpm, 60, "tier rpm");
		is_int(t->tpm, 100000, "tier tpm");
		is_int(t->ndown, 0, "no downgrades");
		is_int(t->line, 18, "tier remembers its header line");
		ok(config_downgrade(t, "big") == NULL, "T1 keeps big");
	}
	t = config_tier(c, "T2");
	ok(t != NULL, "[tier T2]");
	if (t != NULL) {
		is_int(t->daily_budget, 12500000, "daily_budget 12.50");
		is_int(t->monthly_budget, 0, "monthly_budget default");
		is_int(t->rpm + t->tpm, 0, "rpm and tpm default to none");
		is_int(t->downgrade.n, 4, "pairs from commas, a continuation "
		    "and a repeat");
		is_int(t->ndown, 4, "four parsed pairs");
		if (t->ndown == 4) {
			is_str(t->downgrade.v[1], "huge-* -> tiny",
			    "raw item kept, trimmed");
			is_str(t->down_from[0], "big", "down_from[0]");
			is_str(t->down_to[0], "small", "down_to[0]");
			is_str(t->down_from[2], "pat-x", "pair without blanks");
			is_str(t->down_to[2], "tiny", "its target");
			is_str(t->down_from[3], "gpt-4?", "glob FROM");
		}
		is_str(config_downgrade(t, "big"), "small", "big -> small");
		is_str(config_downgrade(t, "huge-1"), "tiny", "glob huge-*");
		is_str(config_downgrade(t, "gpt-4o"), "small", "glob gpt-4?");
		ok(config_downgrade(t, "gpt-4o-mini") == NULL,
		    "a glob matches the whole name");
		ok(config_downgrade(t, "small") == NULL, "T2 keeps small");
	}
	ok(config_downgrade(NULL, "big") == NULL, "no tier keeps every model");
	ok(config_tier(c, "T9") == NULL, "unknown tier is NULL");

	is_int(c->nagents, 2, "two agents");
	a = config_agent(c, "director");
	ok(a != NULL && a->tier == config_tier(c, "T1"),
	    "director is in T1");
	if (a != NULL) {
		is_str(a->tier_name, "T1", "tier_name");
		is_int(a->daily_budget, -1, "daily_budget unset is -1");
		is_int(a->line, 28, "agent remembers its header line");
	}
	a = config_agent(c, "intern");
	ok(a != NULL && a->tier == c->gw.default_tier_cfg,
	    "an agent without tier is in default_tier");
	if (a != NULL) {
		is_str(a->tier_name, "T2", "its tier_name is default_tier");
		is_int(a->daily_budget, 500000, "daily_budget override 0.5");
	}
	ok(config_agent(c, "nobody") == NULL, "unknown agent is NULL");

	is_int(c->ntasks, 2, "two tasks");
	k = config_task(c, "code");
	ok(k != NULL, "[task code]");
	if (k != NULL) {
		is_str(k->model, "big", "task model");
		is_int(k->fallback.n, 2, "task fallbacks");
		if (k->fallback.n == 2)
			is_str(k->fallback.v[1], "tiny", "fallback[1]");
		is_int(k->line, 32, "task remembers its header line");
	}
	k = config_task(c, "summarize");
	ok(k != NULL && strcmp(k->model, "pat-summary") == 0,
	    "a task model served by a match pattern");
	ok(config_task(c, "nothing") == NULL, "unknown task is NULL");
	config_free(c);

	/* No tiers at all: default_tier names nothing and that is fine. */
	c = load("[gateway]\ndata_dir = /srv\nfallback_file = /var/f.jsonl\n"
	    "[agent bot]\n", path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "agents without any tier load (%s)", err);
	if (c != NULL) {
		is_str(c->gw.default_tier, "T3", "default_tier default");
		ok(c->gw.default_tier_cfg == NULL, "no tier configured");
		ok(c->agents[0].tier == NULL, "the agent has no tier");
		is_str(c->gw.fallback_file, "/var/f.jsonl",
		    "fallback_file as given");
		is_int(c->gw.reservation_ttl, 3600, "reservation_ttl default");
		is_int(c->gw.usage_retention_days, 90,
		    "usage_retention_days default");
		is_int(c->gw.budget_warn_percent, 90,
		    "budget_warn_percent default");
		is_int(c->gw.default_max_tokens, 4096,
		    "default_max_tokens default");
		is_int(c->gw.checkpoint_interval, 30,
		    "checkpoint_interval default");
		is_int(c->ntiers + c->ntasks, 0, "no tiers, no tasks");
	}
	config_free(c);
}

static void
test_routing_errors(void)
{
	static const char head[] = "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n[model m]\nprovider = a\n";
	char	 text[512];

	snprintf(text, sizeof(text), "%s[tier T3]\n[agent x]\ntier = T9\n",
	    head);
	bad("agent of an unknown tier", text, 8, "[agent x] tier: no [tier T9]");
	snprintf(text, sizeof(text), "%s\n[tier T1]\ndowngrade = m -> m, "
	    "a* -> ghost\n", head);
	bad("downgrade to an unknown model", text, 8,
	    "[tier T1] downgrade: no [model ghost]");
	snprintf(text, sizeof(text), "%s[tier T1]\ndowngrade = m -> m,\n"
	    "  a b\n", head);
	bad("pair without an arrow", text, 9,
	    "downgrade: \"a b\" is not \"FROM -> TO\"");
	snprintf(text, sizeof(text), "%s[tier T1]\ndowngrade = a -> b -> m\n",
	    head);
	bad("pair with two arrows", text, 8, "is not \"FROM -> TO\"");
	snprintf(text, sizeof(text), "%s[tier T1]\ndowngrade = -> m\n", head);
	bad("pair without FROM", text, 8, "downgrade");
	snprintf(text, sizeof(text), "%s[tier T1]\ndowngrade = a ->\n", head);
	bad("pair without TO", text, 8, "downgrade");
	snprintf(text, sizeof(text), "%s\n[task t]\nfallback = m\n", head);
	bad("task without model", text, 8, "[task t] needs model");
	snprintf(text, sizeof(text), "%s[task t]\nmodel = ghost\n", head);
	bad("task of an unknown model", text, 7, "model: no [model ghost]");
	snprintf(text, sizeof(text), "%s[task t]\nmodel = m\n"
	    "fallback = m ghost\n", head);
	bad("task fallback unknown", text, 7,
	    "[task t] fallback: no [model ghost]");
	bad("default_tier names nothing", "[gateway]\ndata_dir = /tmp\n"
	    "default_tier = T5\n[tier T1]\n", 3, "default_tier: no [tier T5]");
	bad_file("default T3 with other tiers", "[gateway]\ndata_dir = /tmp\n"
	    "[tier T1]\n", "default_tier: no [tier T3]");
	snprintf(text, sizeof(text), "%s[tier T1]\ndaily_budget = 1.5 USD\n",
	    head);
	bad("budget with a unit", text, 8,
	    "daily_budget: \"1.5 USD\" is not an amount in USD");
	bad("negative budget", "[tier T1]\nmonthly_budget = -5\n", 2,
	    "monthly_budget: \"-5\" is not an amount in USD");
	bad("budget over the cap", "[agent x]\ndaily_budget = 100000\n", 2,
	    "is not an amount in USD");
	bad("budget of 7 decimals", "[tier T1]\ndaily_budget = 0.1234567\n",
	    2, "daily_budget");
	bad("tier without a name", "[tier]\nrpm = 1\n", 1,
	    "[tier NAME] needs a name");
	bad("reservation_ttl too short", "[gateway]\ndata_dir = /tmp\n"
	    "reservation_ttl = 5\n", 3, "reservation_ttl: 5 is out of range");
	bad("budget_warn_percent above 100", "[gateway]\ndata_dir = /tmp\n"
	    "budget_warn_percent = 101\n", 3, "budget_warn_percent");
	bad("unknown key in [agent]", "[agent x]\nmodel = m\n", 2,
	    "unknown key \"model\" in [agent x]");
}

static void
test_missing_file(void)
{
	struct config	*c;
	char		 err[512];

	c = config_load("/nonexistent/llmgate.ini", err, sizeof(err));
	ok(c == NULL, "missing file: NULL");
	like(err, "/nonexistent/llmgate.ini", "missing file: error names it");
	config_free(NULL);
	ok(1, "config_free(NULL) is harmless");
}

/* api_key pools and context_fallback (issue 9, item 4). */
static void
test_pools(void)
{
	struct config		*c;
	struct provider_cfg	*p;
	char			 path[64], err[512];
	size_t			 i;

	setenv("LLMGATE_UNIT_POOL_1", "sk-pool-one-0123456789", 1);
	setenv("LLMGATE_UNIT_POOL_2", "sk-pool-two-0123456789", 1);
	setenv(KEY_SET, "sk-unit-secret", 1);
	c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n"
	    "api_key = env:LLMGATE_UNIT_POOL_1 , env:LLMGATE_UNIT_POOL_2,\n"
	    "    env:" KEY_SET "\n"
	    "key_cooldown_s = 90\n"
	    "[provider b]\nbase_url = http://b\napi_key = env:" KEY_SET "\n"
	    "[model m]\nprovider = a\ncontext_fallback = big\n"
	    "[model big]\nprovider = b\n"
	    "[model snap]\nlike = m\nprovider = a\n",
	    path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "a pool of three keys loads (%s)", err);
	if (c != NULL) {
		p = &c->providers[0];
		is_int(p->nkeys, 3, "three keys, continuation line included");
		is_int(p->available, 1, "the pool's provider is available");
		if (p->nkeys == 3) {
			is_str(p->keys[0], "sk-pool-one-0123456789", "key 1");
			is_str(p->keys[2], "sk-unit-secret", "key 3");
			ok(p->api_key == p->keys[0], "api_key is the first");
			is_str(p->api_key_ref, "env:LLMGATE_UNIT_POOL_1",
			    "api_key_ref is the first reference");
			for (i = 0; i < 3; i++)
				ok(strncmp(p->key_fp[i], "sha256:", 7) == 0 &&
				    strlen(p->key_fp[i]) == 15 &&
				    strstr(p->keys[i], p->key_fp[i] + 7) == NULL,
				    "key %zu: fingerprint %s", i + 1,
				    p->key_fp[i]);
			ok(strcmp(p->key_fp[0], p->key_fp[1]) != 0,
			    "fingerprints differ");
			/* sha256("sk-pool-one-0123456789") */
		}
		is_int(p->key_cooldown, 90, "key_cooldown_s");
		is_int(c->providers[1].nkeys, 1, "one key: a pool of one");
		is_int(c->providers[1].key_cooldown, 60,
		    "key_cooldown_s default 60");
		is_str(config_model(c, "m")->context_fallback, "big",
		    "context_fallback");
		is_str(config_model(c, "snap")->context_fallback, "big",
		    "like inherits context_fallback");
		ok(config_model(c, "big")->context_fallback == NULL,
		    "no context_fallback by default");
	}
	config_free(c);

	/* One missing key: the provider is unavailable, naming it. */
	unsetenv(KEY_UNSET);
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = env:LLMGATE_UNIT_POOL_1, env:"
	    KEY_UNSET "\n", path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "a pool with a missing key loads (%s)", err);
	if (c != NULL) {
		p = &c->providers[0];
		ok(!p->available && p->nkeys == 0 && p->api_key == NULL,
		    "a pool with a missing key: unavailable, no key kept");
		like(p->unavailable, KEY_UNSET, "names the missing variable");
	}
	config_free(c);

	bad("literal key in a pool", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n"
	    "api_key = env:A, sk-literal-secret\n", 5,
	    "api_key: secrets never live in the INI");
	c = load("[gateway]\ndata_dir = /tmp\n[provider a]\n"
	    "base_url = http://a\napi_key = env:A, sk-literal-secret\n", path,
	    sizeof(path), err, sizeof(err));
	ok(c == NULL && strstr(err, "sk-literal") == NULL,
	    "a literal key in a pool is not echoed");
	config_free(c);
	bad("gigachat pool", "[gateway]\ndata_dir = /tmp\n"
	    "[provider g]\ntype = gigachat\nbase_url = http://a\n"
	    "api_key = env:A, env:B\n", 3, "gigachat takes one api_key");
	bad("key_cooldown_s 0", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\nkey_cooldown_s = 0\n", 5,
	    "key_cooldown_s: 0 is out of range");
	bad("context_fallback to a missing model", "[gateway]\n"
	    "data_dir = /tmp\n[provider a]\nbase_url = http://a\n"
	    "[model m]\nprovider = a\ncontext_fallback = ghost\n", 5,
	    "context_fallback: no [model ghost]");
	bad("context_fallback to itself", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n"
	    "[model m]\nprovider = a\ncontext_fallback = m\n", 5,
	    "context_fallback is the model itself");
}

/* Several deployments of one [model]. */
static void
test_deployments(void)
{
	struct config		*c;
	const struct model_cfg	*m;
	char			 path[64], err[512];
	static const char	 head[] = "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\n"
	    "[provider b]\nbase_url = http://b\n";
	char			 text[1024];

	snprintf(text, sizeof(text), "%s[model m]\ninput_price = 2\n"
	    "output_price = 8\n"
	    "deployment = a gpt-4o weight=3\n"
	    "deployment = b  gpt-4o-eu:v2   weight=1 input_price=2.5 "
	    "output_price=10\n"
	    "deployment = a other\n", head);
	c = load(text, path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "three deployments load (%s)", err);
	if (c != NULL && (m = config_model(c, "m")) != NULL) {
		is_int(m->ndeploys, 3, "three");
		if (m->ndeploys == 3) {
			is_str(m->deploys[0].provider->name, "a", "1: provider");
			is_str(m->deploys[0].upstream, "gpt-4o", "1: upstream");
			is_int(m->deploys[0].weight, 3, "1: weight");
			is_int(m->deploys[0].input_price, 2000000,
			    "1: the model's price");
			is_str(m->deploys[1].upstream, "gpt-4o-eu:v2",
			    "2: an upstream id with a colon");
			is_int(m->deploys[1].input_price, 2500000, "2: its own "
			    "input price");
			is_int(m->deploys[1].output_price, 10000000, "2: its own "
			    "output price");
			is_int(m->deploys[1].cached_input_price, 2500000,
			    "2: cached price follows its own input price");
			is_int(m->deploys[2].weight, 1, "3: weight default 1");
		}
		is_str(m->provider->name, "a", "the model's provider is the "
		    "first deployment's");
		is_str(m->upstream, "gpt-4o", "and its upstream");
	}
	config_free(c);

	snprintf(text, sizeof(text), "%s[model m]\nprovider = a\n"
	    "deployment = b x\n", head);
	bad("deployment with provider", text, 7, "replace provider and "
	    "upstream");
	snprintf(text, sizeof(text), "%s[model m]\ndeployment = c x\n", head);
	bad("deployment to a missing provider", text, 7,
	    "deployment: no [provider c]");
	snprintf(text, sizeof(text), "%s[model m]\ndeployment = a\n", head);
	bad("deployment without upstream", text, 8, "expected \"PROVIDER "
	    "UPSTREAM");
	snprintf(text, sizeof(text), "%s[model m]\ndeployment = a x "
	    "weight=0\n", head);
	bad("weight 0", text, 8, "weight: expected 1..100");
	snprintf(text, sizeof(text), "%s[model m]\ndeployment = a x "
	    "weight=3 colour=red\n", head);
	bad("unknown option", text, 8, "unknown option \"colour\"");
	snprintf(text, sizeof(text), "%s[model m]\ndeployment = a x "
	    "input_price=abc\n", head);
	bad("bad deployment price", text, 8, "input_price");
	snprintf(text, sizeof(text), "%s[model m*]\ndeployment = a x\n",
	    head);
	bad("template with deployments", text, 7, "deployment is not allowed");
}

/* [alert NAME] and log_format. */
static void
test_alerts(void)
{
	struct config	*c;
	char		 path[64], err[512];

	setenv("UNIT_ALERT_TOKEN", "tok-123", 1);
	c = load("[gateway]\ndata_dir = /tmp\nlog_format = json\n"
	    "[alert ops]\nurl = https://hooks.example/x\n"
	    "events = budget_warning, breaker_open\nbalance_below = 2.50\n"
	    "header = Authorization: Bearer env:UNIT_ALERT_TOKEN\n"
	    "[alert two]\nurl = http://127.0.0.1:1/y\nevents = balance_low\n",
	    path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "two alerts load (%s)", err);
	if (c != NULL) {
		is_int(c->gw.log_json, 1, "log_format = json");
		is_int((long)c->nalerts, 2, "two [alert]s");
		is_int(c->alerts[0].mask, (1 << ALERT_BUDGET_WARNING) |
		    (1 << ALERT_BREAKER_OPEN), "their events");
		is_int(c->alerts[0].balance_below, 2500000, "balance_below");
		is_str(c->alerts[0].header, "Authorization: Bearer tok-123",
		    "the header with its secret");
		is_int(c->alerts[1].period, 3600, "period_s default");
		is_int(c->alerts[1].attempts, 5, "attempts default");
		ok(c->alerts[1].header == NULL, "no header");
	}
	config_free(c);
	bad("log_format", "[gateway]\ndata_dir = /tmp\nlog_format = xml\n",
	    3, "text or json");
	bad("alert event", "[gateway]\ndata_dir = /tmp\n[alert a]\n"
	    "url = http://x/\nevents = budget_warning, lunch\n", 3,
	    "unknown event 'lunch'");
	bad("alert url", "[gateway]\ndata_dir = /tmp\n[alert a]\n"
	    "events = balance_low\n", 3, "needs url");
	bad("alert literal secret", "[gateway]\ndata_dir = /tmp\n[alert a]\n"
	    "url = http://x/\nevents = balance_low\n"
	    "header = Authorization: Bearer sk-literal\n", 3,
	    "secrets never live in the INI");
	bad("alert missing env", "[gateway]\ndata_dir = /tmp\n[alert a]\n"
	    "url = http://x/\nevents = balance_low\n"
	    "header = X-Token: env:UNIT_NO_SUCH_VAR\n", 3, "UNIT_NO_SUCH_VAR");
}

/* completions: off by default per provider; a [model] may say otherwise. */
static void
test_completions(void)
{
	struct config		*c;
	char			 path[64], err[512];
	size_t			 i;

	setenv(KEY_SET, "sk-unit-secret", 1);
	c = load("[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\napi_key = env:" KEY_SET "\n"
	    "[provider b]\nbase_url = http://b\napi_key = env:" KEY_SET "\n"
	    "completions = on\n"
	    "[model plain]\nprovider = a\n"
	    "[model fim]\nprovider = a\ncompletions = on\n"
	    "[model nofim]\nprovider = b\ncompletions = off\n"
	    "[model snap]\nlike = fim\n"
	    "[model t-*]\nprovider = b\n",
	    path, sizeof(path), err, sizeof(err));
	ok(c != NULL, "completions keys load (%s)", err);
	if (c == NULL)
		return;
	is_int(config_provider(c, "a")->completions, 0,
	    "a provider offers no completions unless it says so");
	is_int(config_provider(c, "b")->completions, 1, "completions = on");
	is_int(config_model(c, "plain")->completions, -1,
	    "a model that says nothing: its provider's");
	is_int(config_model(c, "fim")->completions, 1, "[model] completions = on");
	is_int(config_model(c, "nofim")->completions, 0,
	    "[model] completions = off");
	is_int(config_model(c, "snap")->completions, 1,
	    "like = fim inherits completions");
	for (i = 0; i < c->nmodels; i++)
		if (strcmp(c->models[i].name, "t-*") == 0)
			break;
	ok(i < c->nmodels && c->models[i].completions == -1,
	    "a template that says nothing: its provider's");
	config_free(c);
	bad("completions not on or off", "[gateway]\ndata_dir = /tmp\n"
	    "[provider a]\nbase_url = http://a\ncompletions = yes\n", 5,
	    "completions: expected on or off");
}

int
main(void)
{
	test_full();
	test_alerts();
	test_defaults();
	test_comments();
	test_errors();
	test_error_lines();
	test_whole_file();
	test_prices();
	test_secrets();
	test_lists();
	test_on_status();
	test_long_line();
	test_routing();
	test_routing_errors();
	test_missing_file();
	test_pools();
	test_deployments();
	test_completions();
	return tap_done();
}
