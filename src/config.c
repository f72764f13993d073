/* config.c: INI (libinih) -> one immutable struct config; errors name file:line. */
#include <sys/stat.h>

#include <ctype.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>
#include <openssl/sha.h>

#include "config.h"
#include "detect.h"
#include "metrics.h"
#include "policy.h"

/* inih's compiled-in line limit (INI_MAX_LINE), including "\r\n\0". */
#define INI_LINE_LIMIT	200
#define SECRET_MAX	4096
/* fallback_file, in data_dir, when none is configured. */
#define FALLBACK_NAME	"usage-fallback.jsonl"

const char *const provider_type_names[PROVIDER__MAX] = {
	"openai", "anthropic", "gemini", "gigachat", "yandex",
};

enum section {
	SECT_GATEWAY,
	SECT_RETRY,
	SECT_PROVIDER,
	SECT_MODEL,
	SECT_TIER,
	SECT_AGENT,
	SECT_TASK,
	SECT_ALERT,
	SECT_POLICY,
	SECT__MAX
};

static const char *const section_names[SECT__MAX] = {
	"gateway", "retry", "provider", "model", "tier", "agent", "task",
	"alert", "policy",
};

enum key_type {
	K_STR,		/* free text */
	K_PATH,		/* a file or directory path */
	K_URL,		/* http:// or https:// */
	K_LONG,		/* integer within [min, max] */
	K_PRICE,	/* USD per 1M tokens -> micro-USD */
	K_USD,		/* an amount in USD, at most max -> micro-USD */
	K_PAIRS,	/* "from -> to" items split on commas; repeats append */
	K_WORDS,	/* list split on spaces and commas; repeats append */
	K_LINES,	/* list of whole values; each line one item */
	K_SECRET,	/* env:NAME, file:/path or none */
	K_SECRETS,	/* K_SECRETS items split on commas; repeats append */
	K_DEPLOY,	/* "PROVIDER UPSTREAM [k=v...]"; each line one item */
	K_PTYPE,	/* provider type name */
	K_STATUS,	/* list of HTTP statuses */
	K_LOGLEVEL,	/* error | warn | info | debug */
	K_DURABILITY,	/* fsync | nosync */
	K_ONOFF,	/* on | off -> int 1 | 0 */
	K_UNPRICED,	/* refuse | free -> int 0 | 1 */
	K_LOGFORMAT,	/* text | json -> int 0 | 1 */
	K_ACTION,	/* off | log | redact | block | route -> unsigned char */
	K_RESIDENCY,	/* one residency word: global, ru, eu, us, onprem... */
	K_RESIDENCIES,	/* residency words; repeats append */
	K_KEYWORDS,	/* phrases split on commas -> the policy's rules */
	K_INJECT,	/* "WEIGHT PATTERN"; each line one -> the rules */
	K_OUTMODE,	/* off | redact | stop -> int enum redact_out */
	K_DETECTORS,	/* detector names -> unsigned DET_BIT mask */
	K_RATIO,	/* a number in (0, 1] -> double */
};

struct key_def {
	enum section	 sect;
	const char	*name;
	enum key_type	 type;
	size_t		 off;
	long		 min, max;
	const char	*def;
	const char	*help;
};

#define G(f)	offsetof(struct gateway_cfg, f)
#define R(f)	offsetof(struct retry_cfg, f)
#define P(f)	offsetof(struct provider_cfg, f)
#define M(f)	offsetof(struct model_cfg, f)
#define T(f)	offsetof(struct tier_cfg, f)
#define A(f)	offsetof(struct agent_cfg, f)
#define K(f)	offsetof(struct task_cfg, f)
#define AL(f)	offsetof(struct alert_cfg, f)
#define PO(f)	offsetof(struct policy_cfg, f)
#define PA(k)	(PO(action) + (k))

/* Largest budget in whole USD (money_parse_usd reads up to 5 digits). */
#define BUDGET_MAX_USD	99999

/* Every config key: section, name, type, field, bounds, default, help. */
static const struct key_def keys[] = {
	{ SECT_GATEWAY, "data_dir", K_PATH, G(data_dir), 0, 0, NULL,
	  "directory of the Berkeley DB environment and fallback files" },
	{ SECT_GATEWAY, "master_key", K_SECRET, G(master_key_ref), 0, 0, NULL,
	  "admin key as env:NAME or file:/path; when set, clients must send it" },
	{ SECT_GATEWAY, "default_provider", K_STR, G(default_provider), 0, 0,
	  NULL, "provider for model names no [model] or match pattern claims" },
	{ SECT_GATEWAY, "base_path", K_STR, G(base_path), 0, 0, "",
	  "URL prefix stripped before routing, e.g. /llm" },
	{ SECT_GATEWAY, "max_body", K_LONG, G(max_body), 1024, 1L << 30,
	  "8388608", "largest request body in bytes (413 above)" },
	{ SECT_GATEWAY, "max_upstream_body", K_LONG, G(max_upstream_body),
	  1024, 1L << 30, "33554432",
	  "largest non-streamed upstream response in bytes (502 above)" },
	{ SECT_GATEWAY, "max_json_depth", K_LONG, G(max_json_depth), 4, 1000,
	  "64", "deepest JSON nesting accepted in a request" },
	{ SECT_GATEWAY, "max_sse_event", K_LONG, G(max_sse_event), 1024,
	  1L << 28, "4194304", "largest single upstream stream event in bytes" },
	{ SECT_GATEWAY, "heartbeat", K_LONG, G(heartbeat), 1, 3600, "15",
	  "seconds of upstream silence before a ': ping' comment is streamed" },
	{ SECT_GATEWAY, "accounting", K_ONOFF, G(accounting), 0, 0, "on",
	  "off: no store, only the master key, usage in the log only" },
	{ SECT_GATEWAY, "durability", K_DURABILITY, G(durability), 0, 0,
	  "nosync", "store commits: fsync, or nosync (survives a process crash)" },
	{ SECT_GATEWAY, "log_level", K_LOGLEVEL, G(log_level), 0, 0, "info",
	  "error, warn, info or debug" },
	{ SECT_GATEWAY, "log_format", K_LOGFORMAT, G(log_json), 0, 0, "text",
	  "text (key=value lines) or json (one JSON object per line)" },
	{ SECT_GATEWAY, "default_tier", K_STR, G(default_tier), 0, 0, "T3",
	  "[tier] of keys and agents that name none" },
	{ SECT_GATEWAY, "reservation_ttl", K_LONG, G(reservation_ttl), 10,
	  86400, "3600", "seconds a reservation counts at most if never settled "
	  "nor reclaimed (longer than the longest request)" },
	{ SECT_GATEWAY, "usage_retention_days", K_LONG,
	  G(usage_retention_days), 1, 36500, "90",
	  "days usage records are kept" },
	{ SECT_GATEWAY, "budget_warn_percent", K_LONG, G(budget_warn_percent),
	  1, 100, "90", "percent of a budget spent that logs a warning" },
	{ SECT_GATEWAY, "default_max_tokens", K_LONG, G(default_max_tokens), 1,
	  10000000, "4096", "completion tokens reserved when neither client nor "
	  "model gives max_tokens" },
	{ SECT_GATEWAY, "unpriced", K_UNPRICED, G(unpriced_free), 0, 0,
	  "refuse", "client keys asking for a model no [model] prices: refuse "
	  "(400 model_not_priced) or free (served at cost 0)" },
	{ SECT_GATEWAY, "fallback_file", K_PATH, G(fallback_file), 0, 0, NULL,
	  "usage written here while the store is unavailable (default: "
	  "DATA_DIR/usage-fallback.jsonl)" },
	{ SECT_GATEWAY, "checkpoint_interval", K_LONG, G(checkpoint_interval),
	  1, 3600, "30", "seconds between store checkpoints" },
	{ SECT_GATEWAY, "response_cache_max_mb", K_LONG,
	  G(response_cache_max_mb), 1, 1048576, "256",
	  "MiB of answers the response cache keeps; the oldest are evicted" },
	{ SECT_GATEWAY, "workers_max", K_LONG, G(workers_max), 1, 4096, "1024",
	  "FastCGI: most worker threads per process (requests at once); "
	  "--threads N lowers it" },
	{ SECT_GATEWAY, "workers_spare", K_LONG, G(workers_spare), 1, 256, "4",
	  "FastCGI: idle worker threads kept ready; more start as they are "
	  "taken" },
	{ SECT_GATEWAY, "workers_idle_timeout", K_LONG, G(workers_idle), 1,
	  86400, "30", "seconds an idle worker thread beyond workers_spare "
	  "lives" },
	{ SECT_GATEWAY, "worker_stack", K_LONG, G(worker_stack), 128, 65536,
	  "256", "KiB of stack per worker thread (memory is used only as "
	  "touched)" },

	/* metrics: GET /metrics (metrics.c, route-metrics.c). */
	{ SECT_GATEWAY, "metrics_key", K_SECRET, G(metrics_key_ref), 0, 0,
	  NULL, "key for GET /metrics as env:NAME or file:/path, besides the "
	  "master key (a Prometheus scraper need not hold the master key)" },
	{ SECT_GATEWAY, "metrics_allow", K_STR, G(metrics_allow), 0, 0, NULL,
	  "addresses and CIDR blocks (comma-separated, from REMOTE_ADDR) "
	  "that may GET /metrics without a key, e.g. 127.0.0.1, 10.0.0.0/8" },
	{ SECT_GATEWAY, "metrics_key_label", K_ONOFF, G(metrics_key_label), 0,
	  0, "off", "on: /metrics labels series with the key's name too (one "
	  "series per key: mind the cardinality)" },
	{ SECT_GATEWAY, "default_policy", K_STR, G(default_policy), 0, 0, NULL,
	  "[policy] of requests whose key, agent and tier name none" },

	/* breaker: circuit breakers per deployment (breaker.c). */
	{ SECT_GATEWAY, "breaker", K_ONOFF, G(breaker.enabled), 0, 0, "on",
	  "circuit breakers per deployment (provider + upstream model): off "
	  "tries every candidate whatever its recent failures" },
	{ SECT_GATEWAY, "breaker_failures", K_LONG, G(breaker.failures), 1,
	  10000, "5", "consecutive failed attempts that open a breaker" },
	{ SECT_GATEWAY, "breaker_failure_rate", K_LONG,
	  G(breaker.failure_rate), 0, 100, "50", "percent of failed attempts "
	  "in the window that opens a breaker (0: only consecutive failures)" },
	{ SECT_GATEWAY, "breaker_window_s", K_LONG, G(breaker.window), 1, 86400,
	  "60", "seconds of attempts the failure rate looks back on" },
	{ SECT_GATEWAY, "breaker_min_requests", K_LONG, G(breaker.min_requests),
	  1, 1000000, "20", "attempts in the window before the rate can open" },
	{ SECT_GATEWAY, "breaker_open_s", K_LONG, G(breaker.open), 1, 86400,
	  "60", "seconds an open breaker skips its deployment before probes" },
	{ SECT_GATEWAY, "breaker_probes", K_LONG, G(breaker.probes), 1, 8, "1",
	  "probe requests let through at once while half-open" },
	{ SECT_GATEWAY, "breaker_successes", K_LONG, G(breaker.successes), 1,
	  1000, "3", "probe successes in a row that close a breaker" },

	{ SECT_RETRY, "attempts", K_LONG, R(attempts), 1, 10, "2",
	  "tries per model before the next model of the fallback chain" },
	{ SECT_RETRY, "backoff_ms", K_LONG, R(backoff_ms), 0, 60000, "250",
	  "first backoff in ms; doubles per attempt, plus jitter" },
	{ SECT_RETRY, "backoff_max_ms", K_LONG, R(backoff_max_ms), 0, 600000,
	  "4000", "largest backoff in ms" },
	{ SECT_RETRY, "retry_after_max", K_LONG, R(retry_after_max), 0, 3600,
	  "30", "longest upstream Retry-After honoured in s; longer moves on" },
	{ SECT_RETRY, "on_status", K_STATUS, R(on_status), 0, 0,
	  "500 502 503 504 529", "upstream statuses that are retried" },

	{ SECT_PROVIDER, "type", K_PTYPE, P(type), 0, 0, "openai",
	  "wire protocol: openai, anthropic, gemini, gigachat or yandex" },
	{ SECT_PROVIDER, "base_url", K_URL, P(base_url), 0, 0, NULL,
	  "API base URL, e.g. https://api.openai.com/v1" },
	{ SECT_PROVIDER, "api_key", K_SECRETS, P(api_key_refs), 0, 0, NULL,
	  "env:NAME, file:/path or none; never the key itself; several, "
	  "comma-separated, make a pool used in turn" },
	{ SECT_PROVIDER, "key_cooldown_s", K_LONG, P(key_cooldown), 1, 86400,
	  "60", "seconds a pool key refused by the provider (401, 403, quota "
	  "exhausted) is set aside before it is tried again" },
	{ SECT_PROVIDER, "proxy", K_URL, P(proxy), 0, 0, NULL,
	  "egress HTTP proxy, e.g. http://127.0.0.1:3128" },
	{ SECT_PROVIDER, "ca_file", K_PATH, P(ca_file), 0, 0, NULL,
	  "CA bundle for this provider's TLS" },
	{ SECT_PROVIDER, "match", K_WORDS, P(match), 0, 0, NULL,
	  "model name patterns (shell globs) routed to this provider" },
	{ SECT_PROVIDER, "strip_prefix", K_STR, P(strip_prefix), 0, 0, NULL,
	  "prefix removed from a matched model name, e.g. openrouter/" },
	{ SECT_PROVIDER, "header", K_LINES, P(headers), 0, 0, NULL,
	  "extra request header \"Name: value\"; repeat for more" },
	{ SECT_PROVIDER, "residency", K_RESIDENCY, P(residency), 0, 0,
	  "global", "where data goes: global, ru, eu, us, onprem (local is "
	  "onprem) or a word of your own; a [policy] may require it" },
	{ SECT_PROVIDER, "auth_url", K_URL, P(auth_url), 0, 0, NULL,
	  "OAuth token endpoint (gigachat)" },
	{ SECT_PROVIDER, "scope", K_STR, P(scope), 0, 0, NULL,
	  "OAuth scope (gigachat: GIGACHAT_API_PERS, _B2B or _CORP)" },
	{ SECT_PROVIDER, "folder", K_STR, P(folder), 0, 0, NULL,
	  "Yandex Cloud folder id (yandex)" },
	{ SECT_PROVIDER, "auth_scheme", K_STR, P(auth_scheme), 0, 0, NULL,
	  "how api_key is sent where a protocol has several (yandex: Api-Key "
	  "or Bearer)" },
	{ SECT_PROVIDER, "max_tokens_field", K_STR, P(max_tokens_field), 0, 0,
	  "max_tokens", "openai type: the field the completion limit is sent "
	  "in, max_tokens or max_completion_tokens" },
	{ SECT_PROVIDER, "completions", K_ONOFF, P(completions), 0, 0, "off",
	  "openai type: the provider offers the legacy POST /completions "
	  "(prompt, suffix for fill-in-the-middle), so POST /v1/completions "
	  "may be sent to its models (DeepSeek's /beta, vLLM, Ollama)" },
	{ SECT_PROVIDER, "connect_timeout", K_LONG, P(connect_timeout), 100,
	  600000, "10000", "TCP+TLS connect timeout in ms" },
	{ SECT_PROVIDER, "first_byte_timeout", K_LONG, P(first_byte_timeout),
	  1, 3600, "120", "seconds to wait for the first response byte" },
	{ SECT_PROVIDER, "idle_timeout", K_LONG, P(idle_timeout), 1, 3600, "60",
	  "seconds of silence mid-response before the transfer is aborted" },
	{ SECT_PROVIDER, "timeout", K_LONG, P(timeout), 1, 86400, "900",
	  "hard cap on one upstream transfer in seconds" },

	/* breaker: per-provider overrides; unset takes [gateway]'s. */
	{ SECT_PROVIDER, "breaker", K_ONOFF, P(breaker.enabled), 0, 0, NULL,
	  "on or off for this provider's deployments (default: [gateway])" },
	{ SECT_PROVIDER, "breaker_failures", K_LONG, P(breaker.failures), 1,
	  10000, NULL, "as [gateway] breaker_failures, for this provider" },
	{ SECT_PROVIDER, "breaker_failure_rate", K_LONG,
	  P(breaker.failure_rate), 0, 100, NULL,
	  "as [gateway] breaker_failure_rate, for this provider" },
	{ SECT_PROVIDER, "breaker_window_s", K_LONG, P(breaker.window), 1,
	  86400, NULL, "as [gateway] breaker_window_s, for this provider" },
	{ SECT_PROVIDER, "breaker_min_requests", K_LONG,
	  P(breaker.min_requests), 1, 1000000, NULL,
	  "as [gateway] breaker_min_requests, for this provider" },
	{ SECT_PROVIDER, "breaker_open_s", K_LONG, P(breaker.open), 1, 86400,
	  NULL, "as [gateway] breaker_open_s, for this provider" },
	{ SECT_PROVIDER, "breaker_probes", K_LONG, P(breaker.probes), 1, 8,
	  NULL, "as [gateway] breaker_probes, for this provider" },
	{ SECT_PROVIDER, "breaker_successes", K_LONG, P(breaker.successes), 1,
	  1000, NULL, "as [gateway] breaker_successes, for this provider" },

	{ SECT_MODEL, "provider", K_STR, M(provider_name), 0, 0, NULL,
	  "name of the [provider] serving this model" },
	{ SECT_MODEL, "upstream", K_STR, M(upstream), 0, 0, NULL,
	  "the provider's own model id (default: the model name; a template "
	  "sends each name as asked)" },
	{ SECT_MODEL, "like", K_STR, M(like), 0, 0, NULL,
	  "[model] this one is (a dated snapshot of): its allow-list, downgrade "
	  "and limit identity, and every key not set here" },
	{ SECT_MODEL, "input_price", K_PRICE, M(input_price), 0, 0, "0",
	  "USD per 1M prompt tokens" },
	{ SECT_MODEL, "output_price", K_PRICE, M(output_price), 0, 0, "0",
	  "USD per 1M completion tokens" },
	{ SECT_MODEL, "cached_input_price", K_PRICE, M(cached_input_price), 0,
	  0, NULL, "USD per 1M cached prompt tokens (default input_price)" },
	{ SECT_MODEL, "cache_write_price", K_PRICE, M(cache_write_price), 0,
	  0, NULL, "USD per 1M prompt tokens written to the provider's prompt "
	  "cache (default 1.25 x input_price for an anthropic provider, else "
	  "input_price)" },
	{ SECT_MODEL, "image_price", K_PRICE, M(image_price), 0, 0, "0",
	  "USD per generated image" },
	{ SECT_MODEL, "fallback", K_WORDS, M(fallback), 0, 0, NULL,
	  "models tried in order when this one fails" },
	{ SECT_MODEL, "context_fallback", K_STR, M(context_fallback), 0, 0,
	  NULL, "[model] tried when the upstream says the request is too long "
	  "for the context window (otherwise that 400 is answered)" },
	{ SECT_MODEL, "deployment", K_DEPLOY, M(deployment), 0, 0, NULL,
	  "\"PROVIDER UPSTREAM [weight=N] [input_price=USD] [output_price=USD] "
	  "[cached_input_price=USD] [cache_write_price=USD]\": one of several "
	  "deployments requests are spread over by weight (repeat the key; "
	  "instead of provider and upstream)" },
	{ SECT_MODEL, "rpm", K_LONG, M(rpm), 0, 100000000, "1000",
	  "requests per minute for this model, all keys together" },
	{ SECT_MODEL, "tpm", K_LONG, M(tpm), 0, LONG_MAX, "0",
	  "tokens per minute for this model (0: no limit)" },
	{ SECT_MODEL, "max_tokens", K_LONG, M(max_tokens), 0, 10000000, "0",
	  "most completion tokens per choice: sent and reserved when the "
	  "client asks for more or none (0: default_max_tokens)" },
	{ SECT_MODEL, "completions", K_ONOFF, M(completions), 0, 0, NULL,
	  "on or off: this model is served on POST /v1/completions (default: "
	  "its provider's completions; only openai-type providers can)" },
	{ SECT_MODEL, "cache_ttl", K_LONG, M(cache_ttl), 0, 31536000, "0",
	  "seconds an answer stays in the response cache (0: not cached)" },
	{ SECT_MODEL, "cache_scope", K_STR, M(cache_scope), 0, 0, NULL,
	  "who shares cached answers: key (default), agent or global" },
	{ SECT_MODEL, "cache_hit_price", K_PRICE, M(cache_hit_price), 0, 0,
	  "0", "USD per 1M tokens (prompt + completion) of an answer served "
	  "from the response cache" },
	{ SECT_MODEL, "semantic_cache", K_ONOFF, M(semantic_cache), 0, 0,
	  "off", "on: a request the exact cache misses is embedded and served "
	  "a stored answer of a similar prompt (needs cache_ttl)" },
	{ SECT_MODEL, "semantic_model", K_STR, M(semantic_model), 0, 0, NULL,
	  "the [model] that embeds prompts for the semantic cache" },
	{ SECT_MODEL, "semantic_threshold", K_RATIO, M(semantic_threshold), 0,
	  0, "0.95", "the cosine similarity (0..1] at which a stored answer "
	  "is reused" },
	{ SECT_MODEL, "semantic_max_entries", K_LONG,
	  M(semantic_max_entries), 1, 100000, "1000", "prompt vectors kept "
	  "per scope and parameters (the oldest evicted); bounds a lookup" },

	{ SECT_TIER, "daily_budget", K_USD, T(daily_budget), 0, BUDGET_MAX_USD,
	  "0", "USD per agent per UTC day (0: no limit)" },
	{ SECT_TIER, "monthly_budget", K_USD, T(monthly_budget), 0,
	  BUDGET_MAX_USD, "0", "USD per key per UTC month, for keys that set "
	  "none (0: no limit)" },
	{ SECT_TIER, "downgrade", K_PAIRS, T(downgrade), 0, 0, NULL,
	  "\"FROM -> TO\" pairs: FROM (a shell glob) is served by [model] TO" },
	{ SECT_TIER, "rpm", K_LONG, T(rpm), 0, 100000000, "0",
	  "requests per minute per key of this tier (0: no limit)" },
	{ SECT_TIER, "tpm", K_LONG, T(tpm), 0, LONG_MAX, "0",
	  "tokens per minute per key of this tier (0: no limit)" },
	{ SECT_TIER, "max_concurrent", K_LONG, T(max_concurrent), 0, 1000000,
	  "0", "requests in flight at once, all keys of this tier together "
	  "(0: no limit)" },
	{ SECT_TIER, "policy", K_STR, T(policy_name), 0, 0, NULL,
	  "[policy] of this tier's keys and agents (default: default_policy)" },

	{ SECT_AGENT, "tier", K_STR, A(tier_name), 0, 0, NULL,
	  "the [tier] of this agent (default: default_tier)" },
	{ SECT_AGENT, "daily_budget", K_USD, A(daily_budget), 0,
	  BUDGET_MAX_USD, NULL, "USD per UTC day (default: the tier's)" },
	{ SECT_AGENT, "policy", K_STR, A(policy_name), 0, 0, NULL,
	  "[policy] of this agent's keys (default: its tier's)" },
	{ SECT_AGENT, "cache", K_ONOFF, A(cache), 0, 0, NULL,
	  "off: this agent's requests never use the response cache" },

	{ SECT_TASK, "model", K_STR, K(model), 0, 0, NULL,
	  "model that serves this task (required)" },
	{ SECT_TASK, "fallback", K_WORDS, K(fallback), 0, 0, NULL,
	  "[model]s tried in order when the task's model fails" },

	{ SECT_ALERT, "url", K_URL, AL(url), 0, 0, NULL,
	  "webhook the events are POSTed to as JSON (required)" },
	{ SECT_ALERT, "events", K_WORDS, AL(events), 0, 0, NULL,
	  "budget_warning, budget_exceeded, balance_low, breaker_open "
	  "(required)" },
	{ SECT_ALERT, "balance_below", K_USD, AL(balance_below), 0,
	  BUDGET_MAX_USD, "1.00", "balance_low: a prepaid key's balance in "
	  "USD under which it fires after a settlement" },
	{ SECT_ALERT, "period_s", K_LONG, AL(period), 1, 31 * 86400, "3600",
	  "seconds: one event of a kind about one subject is sent at most "
	  "once per period, across all processes" },
	{ SECT_ALERT, "header", K_STR, AL(header_ref), 0, 0, NULL,
	  "\"Name: [text ]env:VAR\" (or file:/path): one header with a "
	  "secret, e.g. Authorization: Bearer env:ALERT_TOKEN" },
	{ SECT_ALERT, "attempts", K_LONG, AL(attempts), 1, 20, "5",
	  "deliveries tried before the event is given up (spool .failed)" },
	{ SECT_ALERT, "backoff_ms", K_LONG, AL(backoff_ms), 10, 600000,
	  "1000", "wait before the second attempt, doubled after each" },
	{ SECT_ALERT, "timeout_s", K_LONG, AL(timeout), 1, 300, "10",
	  "seconds one delivery attempt may take" },

	/* [policy NAME]: guardrails (policy.c, detect.c, redact.c). */
	{ SECT_POLICY, "email", K_ACTION, PA(DET_EMAIL), 0, 0, NULL,
	  "e-mail addresses: off, log, redact, block or route (default: pii)" },
	{ SECT_POLICY, "phone", K_ACTION, PA(DET_PHONE), 0, 0, NULL,
	  "phone numbers, Russian and international (default: pii)" },
	{ SECT_POLICY, "card", K_ACTION, PA(DET_CARD), 0, 0, NULL,
	  "payment card numbers, Luhn-checked (default: pii)" },
	{ SECT_POLICY, "iban", K_ACTION, PA(DET_IBAN), 0, 0, NULL,
	  "IBANs, mod-97 checked (default: pii)" },
	{ SECT_POLICY, "passport", K_ACTION, PA(DET_PASSPORT), 0, 0, NULL,
	  "Russian passport series and numbers (default: pii)" },
	{ SECT_POLICY, "snils", K_ACTION, PA(DET_SNILS), 0, 0, NULL,
	  "SNILS with its check number (default: pii)" },
	{ SECT_POLICY, "inn", K_ACTION, PA(DET_INN), 0, 0, NULL,
	  "INN, 10 or 12 digits with check digits (default: pii)" },
	{ SECT_POLICY, "ip", K_ACTION, PA(DET_IP), 0, 0, NULL,
	  "IPv4 and IPv6 addresses (default: pii)" },
	{ SECT_POLICY, "secret", K_ACTION, PA(DET_SECRET), 0, 0, NULL,
	  "API keys, tokens, private keys (default: pii)" },
	{ SECT_POLICY, "confidential", K_ACTION, PA(DET_CONFIDENTIAL), 0, 0,
	  NULL, "a confidentiality keyword (default: off)" },
	{ SECT_POLICY, "injection", K_ACTION, PA(DET_INJECTION), 0, 0, NULL,
	  "prompt-injection score at or above injection_threshold: off, log, "
	  "block or route (default: off)" },
	{ SECT_POLICY, "length", K_ACTION, PA(DET_LENGTH), 0, 0, NULL,
	  "a prompt over max_prompt_chars or max_prompt_tokens: log, block or "
	  "route (default: block when a maximum is set)" },
	{ SECT_POLICY, "pii", K_ACTION, PO(pii), 0, 0, NULL,
	  "every personal-data kind (email to secret) not set on its own" },
	{ SECT_POLICY, "residency", K_RESIDENCIES, PO(residency), 0, 0, NULL,
	  "residencies every candidate of every request must have, e.g. ru "
	  "onprem (default: any)" },
	{ SECT_POLICY, "route_residency", K_RESIDENCIES, PO(route_residency),
	  0, 0, NULL, "residencies required when a detector with action route "
	  "fired, e.g. onprem" },
	{ SECT_POLICY, "keywords", K_KEYWORDS, PO(rules), 0, 0, NULL,
	  "confidentiality keywords and phrases, comma-separated, any case "
	  "(Cyrillic too); the first line replaces the built-in list" },
	{ SECT_POLICY, "injection_threshold", K_LONG, PO(injection_threshold),
	  1, 1000000, "50", "injection score that counts as an injection (one "
	  "strong pattern weighs 50..60)" },
	{ SECT_POLICY, "injection_pattern", K_INJECT, PO(rules), 0, 0, NULL,
	  "\"WEIGHT PATTERN\": one more injection pattern and its score; "
	  "repeat the key" },
	{ SECT_POLICY, "max_prompt_chars", K_LONG, PO(max_chars), 0,
	  1L << 30, "0", "most characters of prompt text (0: no limit)" },
	{ SECT_POLICY, "max_prompt_tokens", K_LONG, PO(max_tokens), 0,
	  1L << 30, "0", "most prompt tokens, estimated at four bytes a "
	  "token (0: no limit)" },
	{ SECT_POLICY, "restore", K_ONOFF, PO(restore), 0, 0, "on",
	  "put redacted values back into the answer" },
	{ SECT_POLICY, "output", K_OUTMODE, PO(output), 0, 0, "off",
	  "checks on the answer: off, redact (findings replaced) or stop (the "
	  "stream ends with an error)" },
	{ SECT_POLICY, "output_detectors", K_DETECTORS, PO(out_mask), 0, 0,
	  NULL, "detectors run on the answer (default: the personal-data "
	  "kinds)" },
};

#define NKEYS	(sizeof(keys) / sizeof(keys[0]))

/* The bit of keys[i], a [model] key, in model_cfg.set. */
static unsigned long
model_bit(size_t i)
{
	size_t	 j, n = 0;

	for (j = 0; j < i; j++)
		if (keys[j].sect == SECT_MODEL)
			n++;
	return 1UL << n;
}

/* Parser state while inih calls back. */
struct loader {
	struct config	*cfg;
	const char	*path;
	FILE		*fp;
	int		 line;
	int		 long_line;	/* first line over the limit, or 0 */
	int		 section_line;	/* line of the last [header] */
	int		 err_line;	/* line of the error in err */
	int		 status_set;	/* on_status came from the file */
	int		 gateway_line;	/* line of [gateway], or 0 */
	int		 key_line[NKEYS];	/* per keys[] entry: line last set */
	char		 err[512];
	char		 cur_section[256];
	enum section	 sect;
	void		*obj;		/* struct the current section fills */
	unsigned char	*seen;		/* per current object: keys set */
	int		 has_gateway, has_retry;
	unsigned	 opts;		/* CONFIG_* */
};

static int
fail(struct loader *l, const char *fmt, ...)
{
	va_list	 ap;
	int	 n;

	if (l->err[0] != '\0')
		return 0;
	l->err_line = l->line;
	n = snprintf(l->err, sizeof(l->err), "%s:%d: ", l->path, l->line);
	if (n < 0 || (size_t)n >= sizeof(l->err))
		return 0;	/* the path alone fills the message */
	va_start(ap, fmt);
	vsnprintf(l->err + n, sizeof(l->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return 0;
}

static char *
xstrdup(const char *s)
{
	char	*p;

	if ((p = strdup(s)) == NULL) {
		fprintf(stderr, "llmgate: out of memory\n");
		exit(1);
	}
	return p;
}

static void *
xgrow(void *p, size_t n, size_t size)
{
	if ((p = realloc(p, n * size)) == NULL) {
		fprintf(stderr, "llmgate: out of memory\n");
		exit(1);
	}
	return p;
}

static void
strlist_add(struct strlist *l, const char *s, size_t n)
{
	l->v = xgrow(l->v, l->n + 1, sizeof(*l->v));
	l->v[l->n] = xgrow(NULL, n + 1, 1);
	memcpy(l->v[l->n], s, n);
	l->v[l->n][n] = '\0';
	l->n++;
}

static void
strlist_free(struct strlist *l)
{
	size_t	 i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/* A secret goes into an HTTP header: no control characters at all. */
static int
secret_clean(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 0;
	return 1;
}

/*
 * Read a secret from env:NAME or from the first line of file:/path. NULL
 * with why when it is missing, empty or holds control characters; why
 * never contains the secret.
 */
static char *
secret_resolve(const char *ref, char *why, size_t whylen)
{
	char		 buf[SECRET_MAX];
	const char	*v;
	FILE		*fp;
	size_t		 n;

	if (strncmp(ref, "env:", 4) == 0) {
		if ((v = getenv(ref + 4)) == NULL || *v == '\0') {
			snprintf(why, whylen, "environment variable %s is not set",
			    ref + 4);
			return NULL;
		}
		if (!secret_clean(v)) {
			snprintf(why, whylen, "environment variable %s holds "
			    "control characters", ref + 4);
			return NULL;
		}
		return xstrdup(v);
	}
	/* file: */
	if ((fp = fopen(ref + 5, "r")) == NULL) {
		snprintf(why, whylen, "cannot read key file %s: %s", ref + 5,
		    strerror(errno));
		return NULL;
	}
	if (fgets(buf, sizeof(buf), fp) == NULL)
		buf[0] = '\0';
	fclose(fp);
	n = strcspn(buf, "\r\n");
	buf[n] = '\0';
	while (n > 0 && isspace((unsigned char)buf[n - 1]))
		buf[--n] = '\0';
	if (n == 0) {
		snprintf(why, whylen, "key file %s is empty", ref + 5);
		return NULL;
	}
	if (!secret_clean(buf)) {
		explicit_bzero(buf, sizeof(buf));
		snprintf(why, whylen, "key file %s holds control characters",
		    ref + 5);
		return NULL;
	}
	v = xstrdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return (char *)v;
}

static int
parse_long(const char *v, long *out)
{
	char	*end;

	errno = 0;
	*out = strtol(v, &end, 10);
	return (errno != 0 || end == v || *end != '\0') ? -1 : 0;
}

static int
valid_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("-_.:/", *s) == NULL)
			return 0;
	return 1;
}

/* A [model] name may be a template: a shell glob over model names. */
static int
valid_model_name(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) &&
		    strchr("-_.:/*?[]!", *s) == NULL)
			return 0;
	return 1;
}

static int
is_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* [s, end) without the blanks around it; returns its length. */
static size_t
trim(const char **s, const char *end)
{
	while (*s < end && isspace((unsigned char)**s))
		(*s)++;
	while (end > *s && isspace((unsigned char)end[-1]))
		end--;
	return (size_t)(end - *s);
}

/*
 * Split the item "FROM -> TO" in [s, end): FROM a glob without blanks, TO
 * a model name. Either out may be NULL; what is set, the caller frees.
 */
static int
pair_parse(const char *s, const char *end, char **from, char **to)
{
	const char	*arrow, *f, *t;
	char		 buf[INI_LINE_LIMIT];
	size_t		 fn, tn, i;

	for (arrow = s; arrow + 1 < end; arrow++)
		if (arrow[0] == '-' && arrow[1] == '>')
			break;
	if (arrow + 1 >= end)
		return -1;
	f = s;
	fn = trim(&f, arrow);
	t = arrow + 2;
	tn = trim(&t, end);
	if (fn == 0 || tn == 0 || tn >= sizeof(buf))
		return -1;
	for (i = 0; i < fn; i++)
		if (isspace((unsigned char)f[i]))
			return -1;
	memcpy(buf, t, tn);
	buf[tn] = '\0';
	if (!valid_name(buf))
		return -1;
	if (from != NULL) {
		*from = xgrow(NULL, fn + 1, 1);
		memcpy(*from, f, fn);
		(*from)[fn] = '\0';
	}
	if (to != NULL)
		*to = xstrdup(buf);
	return 0;
}

/* A "deployment =" line, parsed. */
struct deploy_item {
	char	 provider[INI_LINE_LIMIT];
	char	*upstream;	/* the caller frees */
	long	 weight;
	money_t	 price[4];	/* input, output, cached input, cache write;
				   -1: none */
};

/*
 * One "deployment =" line: PROVIDER UPSTREAM, then weight=N (1..100,
 * default 1) and input_price, output_price, cached_input_price,
 * cache_write_price=USD per 1M tokens. Into d when not NULL; 0, or -1
 * with why in err.
 */
static int
deploy_parse(const char *v, struct deploy_item *d, char *err, size_t errlen)
{
	char		 buf[INI_LINE_LIMIT], *w[8], *save = NULL, *eq;
	size_t		 n = 0, i;
	long		 weight = 1;
	money_t		 price[4] = { -1, -1, -1, -1 };
	size_t		 m;
	static const char *const pname[4] = {
		"input_price", "output_price", "cached_input_price",
		"cache_write_price",
	};

	snprintf(buf, sizeof(buf), "%s", v);
	for (w[n] = strtok_r(buf, " \t", &save); w[n] != NULL && n < 8;
	    w[n] = strtok_r(NULL, " \t", &save))
		n++;
	if (n < 2 || w[n] != NULL || strchr(w[0], '=') != NULL ||
	    strchr(w[1], '=') != NULL) {
		snprintf(err, errlen, "expected \"PROVIDER UPSTREAM [weight=N] "
		    "[input_price=USD] [output_price=USD] "
		    "[cached_input_price=USD] [cache_write_price=USD]\"");
		return -1;
	}
	for (i = 2; i < n; i++) {
		if ((eq = strchr(w[i], '=')) == NULL)
			goto bad;
		*eq++ = '\0';
		if (strcmp(w[i], "weight") == 0) {
			if (parse_long(eq, &weight) == -1 || weight < 1 ||
			    weight > DEPLOYMENT_WEIGHT_MAX) {
				snprintf(err, errlen, "weight: expected 1..%d",
				    DEPLOYMENT_WEIGHT_MAX);
				return -1;
			}
			continue;
		}
		for (m = 0; m < 4 && strcmp(w[i], pname[m]) != 0; m++)
			;
		if (m == 4)
			goto bad;
		if (money_parse_usd(eq, &price[m]) == -1 ||
		    price[m] > MONEY_PRICE_MAX) {
			snprintf(err, errlen, "%s: \"%s\" is not a price in USD "
			    "per 1M tokens", pname[m], eq);
			return -1;
		}
	}
	if (d != NULL) {
		snprintf(d->provider, sizeof(d->provider), "%s", w[0]);
		d->upstream = xstrdup(w[1]);
		d->weight = weight;
		memcpy(d->price, price, sizeof(price));
	}
	return 0;
bad:
	snprintf(err, errlen, "unknown option \"%s\" (weight, input_price, "
	    "output_price, cached_input_price, cache_write_price)", w[i]);
	return -1;
}

/*
 * A residency: a word such as ru, eu, us, onprem, global, of letters,
 * digits, - and _; kept in lower case ("RU" is ru), into out (33 bytes).
 */
static int
valid_residency(const char *s, size_t n, char *out)
{
	size_t	 i;

	if (n == 0 || n > 32)
		return 0;
	for (i = 0; i < n; i++) {
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return 0;
		out[i] = (char)tolower((unsigned char)s[i]);
	}
	out[n] = '\0';
	return 1;
}

/* The next word of a list split on blanks and commas: its length, at *p. */
static size_t
next_word(const char **p)
{
	while (**p == ' ' || **p == '\t' || **p == ',')
		(*p)++;
	return strcspn(*p, " \t,");
}

/*
 * The guardrail types of [policy] (and a provider's residency): checked
 * as read, so that an error names the key's own line; keywords and
 * injection patterns go straight into the policy's compiled rules.
 */
static int
set_guard(struct loader *l, const struct key_def *k, const char *v,
    char *field)
{
	struct policy_cfg	*pol = l->obj;
	const char		*p, *q;
	char			 word[64], err[160];
	size_t			 n;
	long			 weight;
	int			 i;

	switch (k->type) {
	case K_ACTION:
		for (i = 0; i < POLICY__MAX; i++)
			if (strcmp(v, policy_action_names[i]) == 0)
				break;
		if (i == POLICY__MAX)
			return fail(l, "%s: unknown action \"%s\" (off, log, "
			    "redact, block, route)", k->name, v);
		if (i == POLICY_REDACT && (strcmp(k->name, "injection") == 0 ||
		    strcmp(k->name, "length") == 0))
			return fail(l, "%s: redact replaces what a detector "
			    "found; %s has nothing to replace (off, log, "
			    "block, route)", k->name, k->name);
		*(unsigned char *)field = (unsigned char)i;
		return 1;
	case K_RESIDENCY:
		if (!valid_residency(v, strlen(v), word))
			return fail(l, "%s: \"%s\" is not a residency (a "
			    "word: global, ru, eu, us, onprem...)", k->name, v);
		free(*(char **)field);
		*(char **)field = xstrdup(word);
		return 1;
	case K_RESIDENCIES:
		for (p = v; (n = next_word(&p)) > 0; p += n) {
			if (!valid_residency(p, n, word))
				return fail(l, "%s: \"%.*s\" is not a residency "
				    "(a word: global, ru, eu, us, onprem...)",
				    k->name, (int)(n < 64 ? n : 64), p);
			strlist_add((struct strlist *)field, word, n);
		}
		return 1;
	case K_KEYWORDS:
		if (!pol->keywords_set) {
			det_rules_clear_keywords(pol->rules);
			pol->keywords_set = 1;
		}
		for (p = v; *p != '\0'; p = *q == ',' ? q + 1 : q) {
			q = p + strcspn(p, ",");
			n = trim(&p, q);
			if (n == 0)
				continue;
			if (n >= INI_LINE_LIMIT)
				return fail(l, "%s: a keyword is too long",
				    k->name);
			snprintf(err, sizeof(err), "%.*s", (int)n, p);
			if (n >= sizeof(err) ||
			    det_rules_keyword(pol->rules, err) == -1)
				return fail(l, "%s: \"%.*s\" cannot be a keyword "
				    "(empty, too long or no memory)", k->name,
				    (int)(n < 64 ? n : 64), p);
		}
		return 1;
	case K_INJECT:
		n = strcspn(v, " \t");
		if (n == 0 || n >= sizeof(word))
			goto inject_bad;
		memcpy(word, v, n);
		word[n] = '\0';
		if (parse_long(word, &weight) == -1 || weight < -1000 ||
		    weight > 1000 || weight == 0)
			goto inject_bad;
		p = v + n;
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '\0')
			goto inject_bad;
		err[0] = '\0';
		if (det_rules_injection(pol->rules, p, (int)weight, err,
		    sizeof(err)) == -1)
			return fail(l, "%s: %s", k->name, err[0] ? err :
			    "a bad pattern");
		return 1;
inject_bad:
		return fail(l, "%s: expected \"WEIGHT PATTERN\" (a score "
		    "-1000..1000, not 0, then the pattern)", k->name);
	case K_OUTMODE:
		if (strcmp(v, "off") == 0)
			*(int *)field = REDACT_OUT_OFF;
		else if (strcmp(v, "redact") == 0)
			*(int *)field = REDACT_OUT_REDACT;
		else if (strcmp(v, "stop") == 0)
			*(int *)field = REDACT_OUT_STOP;
		else
			return fail(l, "%s: expected off, redact or stop",
			    k->name);
		return 1;
	case K_DETECTORS:
		if (!pol->out_set) {
			*(unsigned *)field = 0;
			pol->out_set = 1;
		}
		for (p = v; (n = next_word(&p)) > 0; p += n) {
			snprintf(word, sizeof(word), "%.*s",
			    (int)(n < sizeof(word) ? n : sizeof(word) - 1), p);
			if (strcmp(word, "pii") == 0) {
				*(unsigned *)field |= DET_PII_MASK;
				continue;
			}
			if ((i = det_kind_byname(word)) < 0 ||
			    !(DET_BIT(i) & DET_SPAN_MASK))
				return fail(l, "%s: \"%s\" is not a detector "
				    "of text spans (email, phone, card, iban, "
				    "passport, snils, inn, ip, secret, "
				    "confidential, or pii for all but the "
				    "last)", k->name, word);
			*(unsigned *)field |= DET_BIT(i);
		}
		return 1;
	default:
		break;
	}
	return fail(l, "%s: internal error", k->name);
}

/* A number in (0, 1]: 0, or -1. */
static int
parse_ratio(const char *v, double *out)
{
	char	*end;
	double	 d;

	errno = 0;
	d = strtod(v, &end);
	if (end == v || *end != '\0' || errno != 0 || !(d > 0.0 && d <= 1.0))
		return -1;
	*out = d;
	return 0;
}

/* Store one value into the field the key describes. */
static int
set_value(struct loader *l, const struct key_def *k, const char *v)
{
	char		*field = (char *)l->obj + k->off;
	char	       **sp = (char **)field;
	long		 n;
	money_t		 m;
	size_t		 i, len;
	const char	*p, *q;
	struct retry_cfg *r;
	char		 err[160];

	switch (k->type) {
	case K_URL:
		if (strncmp(v, "http://", 7) != 0 &&
		    strncmp(v, "https://", 8) != 0)
			return fail(l, "%s: expected an http:// or https:// URL",
			    k->name);
		/* FALLTHROUGH */
	case K_STR:
	case K_PATH:
		free(*sp);
		*sp = xstrdup(v);
		return 1;
	case K_LONG:
		if (parse_long(v, &n) == -1)
			return fail(l, "%s: \"%s\" is not an integer", k->name,
			    v);
		if (n < k->min || n > k->max)
			return fail(l, "%s: %ld is out of range %ld..%ld",
			    k->name, n, k->min, k->max);
		*(long *)field = n;
		return 1;
	case K_PRICE:
		if (money_parse_usd(v, &m) == -1 || m > MONEY_PRICE_MAX)
			return fail(l, "%s: \"%s\" is not a price in USD per "
			    "1M tokens (e.g. 2.50, at most 6 decimals)",
			    k->name, v);
		*(money_t *)field = m;
		return 1;
	case K_USD:
		if (money_parse_usd(v, &m) == -1 ||
		    m > k->max * MONEY_PER_USD)
			return fail(l, "%s: \"%s\" is not an amount in USD "
			    "(e.g. 12.50, at most 6 decimals, up to %ld)",
			    k->name, v, k->max);
		*(money_t *)field = m;
		return 1;
	case K_PAIRS:
		for (p = v; *p != '\0'; p = *q == ',' ? q + 1 : q) {
			q = p + strcspn(p, ",");
			len = trim(&p, q);
			if (len == 0)
				continue;
			if (pair_parse(p, p + len, NULL, NULL) == -1)
				return fail(l, "%s: \"%.*s\" is not \"FROM -> "
				    "TO\" (a model glob and a model name)",
				    k->name, (int)len, p);
			strlist_add((struct strlist *)field, p, len);
		}
		return 1;
	case K_WORDS:
		for (p = v; *p != '\0'; p = q) {
			while (*p == ' ' || *p == '\t' || *p == ',')
				p++;
			for (q = p; *q != '\0' && *q != ' ' && *q != '\t' &&
			    *q != ','; q++)
				;
			if (q > p)
				strlist_add((struct strlist *)field, p,
				    (size_t)(q - p));
		}
		return 1;
	case K_DEPLOY:
		if (deploy_parse(v, NULL, err, sizeof(err)) == -1)
			return fail(l, "%s: %s", k->name, err);
		strlist_add((struct strlist *)field, v, strlen(v));
		return 1;
	case K_LINES:
		if (strchr(v, ':') == NULL)
			return fail(l, "%s: expected \"Name: value\"", k->name);
		strlist_add((struct strlist *)field, v, strlen(v));
		return 1;
	case K_SECRET:
		if (strcmp(v, "none") != 0 && strncmp(v, "env:", 4) != 0 &&
		    strncmp(v, "file:/", 6) != 0)
			return fail(l, "%s: secrets never live in the INI; use "
			    "env:NAME, file:/path or none", k->name);
		free(*sp);
		*sp = strcmp(v, "none") == 0 ? NULL : xstrdup(v);
		return 1;
	case K_SECRETS:
		/* Checked whole first: a literal key is never half kept. */
		for (p = v; *p != '\0'; p = *q == ',' ? q + 1 : q) {
			q = p + strcspn(p, ",");
			len = trim(&p, q);
			if ((len == 4 && strncmp(p, "none", 4) == 0) ||
			    (len > 4 && strncmp(p, "env:", 4) == 0 &&
			    memchr(p, ' ', len) == NULL) || (len > 6 &&
			    strncmp(p, "file:/", 6) == 0))
				continue;
			return fail(l, "%s: secrets never live in the INI; use "
			    "env:NAME, file:/path or none (several: comma-"
			    "separated)", k->name);
		}
		for (p = v; *p != '\0'; p = *q == ',' ? q + 1 : q) {
			q = p + strcspn(p, ",");
			len = trim(&p, q);
			if (len > 0 && !(len == 4 && strncmp(p, "none", 4) == 0))
				strlist_add((struct strlist *)field, p, len);
		}
		return 1;
	case K_PTYPE:
		for (i = 0; i < PROVIDER__MAX; i++)
			if (strcmp(v, provider_type_names[i]) == 0) {
				*(enum provider_type *)field =
				    (enum provider_type)i;
				return 1;
			}
		return fail(l, "type: unknown provider type \"%s\" (openai, "
		    "anthropic, gemini, gigachat, yandex)", v);
	case K_STATUS:
		r = (struct retry_cfg *)l->obj;
		/* The file's first on_status replaces the default; more
		 * lines (indented continuations) add to it. */
		if (!l->status_set) {
			r->non_status = 0;
			l->status_set = 1;
		}
		for (p = v; *p != '\0'; p = q) {
			while (*p == ' ' || *p == ',')
				p++;
			if (*p == '\0')
				break;
			n = strtol(p, (char **)&q, 10);
			len = (size_t)(q - p);
			if (len == 0 || n < 400 || n > 599 ||
			    (*q != '\0' && *q != ' ' && *q != ','))
				return fail(l, "%s: expected HTTP statuses "
				    "400..599", k->name);
			if (r->non_status == RETRY_STATUS_MAX)
				return fail(l, "%s: at most %d statuses",
				    k->name, RETRY_STATUS_MAX);
			r->on_status[r->non_status++] = (int)n;
		}
		return 1;
	case K_LOGLEVEL:
		if (strcmp(v, "error") && strcmp(v, "warn") &&
		    strcmp(v, "info") && strcmp(v, "debug"))
			return fail(l, "log_level: expected error, warn, info "
			    "or debug");
		free(*sp);
		*sp = xstrdup(v);
		return 1;
	case K_RATIO:
		if (parse_ratio(v, (double *)field) == -1)
			return fail(l, "%s: \"%s\" is not a number in (0, 1]",
			    k->name, v);
		return 1;
	case K_ONOFF:
		if (strcmp(v, "on") && strcmp(v, "off"))
			return fail(l, "%s: expected on or off", k->name);
		*(int *)field = strcmp(v, "on") == 0;
		return 1;
	case K_LOGFORMAT:
		if (strcmp(v, "text") && strcmp(v, "json"))
			return fail(l, "%s: expected text or json", k->name);
		*(int *)field = strcmp(v, "json") == 0;
		return 1;
	case K_UNPRICED:
		if (strcmp(v, "refuse") && strcmp(v, "free"))
			return fail(l, "%s: expected refuse or free", k->name);
		*(int *)field = strcmp(v, "free") == 0;
		return 1;
	case K_DURABILITY:
		if (strcmp(v, "fsync") && strcmp(v, "nosync"))
			return fail(l, "durability: expected fsync or nosync");
		free(*sp);
		*sp = xstrdup(v);
		return 1;
	case K_ACTION:
	case K_RESIDENCY:
	case K_RESIDENCIES:
	case K_KEYWORDS:
	case K_INJECT:
	case K_OUTMODE:
	case K_DETECTORS:
		return set_guard(l, k, v, field);
	}
	return fail(l, "%s: internal error", k->name);
}

/* Apply every default of a section kind to a fresh object. */
static void
apply_defaults(struct loader *l, enum section s, void *obj)
{
	size_t	 i;
	void	*save = l->obj;

	l->obj = obj;
	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == s && keys[i].def != NULL)
			(void)set_value(l, &keys[i], keys[i].def);
	l->obj = save;
}

/* Where the objects of a named section kind live in struct config. */
struct named_def {
	size_t	 arr, count, size, name, line;
};

#define C(f)	offsetof(struct config, f)

static const struct named_def named[SECT__MAX] = {
	[SECT_PROVIDER] = { C(providers), C(nproviders),
	    sizeof(struct provider_cfg), P(name), P(line) },
	[SECT_MODEL] = { C(models), C(nmodels), sizeof(struct model_cfg),
	    M(name), M(line) },
	[SECT_TIER] = { C(tiers), C(ntiers), sizeof(struct tier_cfg), T(name),
	    T(line) },
	[SECT_AGENT] = { C(agents), C(nagents), sizeof(struct agent_cfg),
	    A(name), A(line) },
	[SECT_TASK] = { C(tasks), C(ntasks), sizeof(struct task_cfg), K(name),
	    K(line) },
	[SECT_ALERT] = { C(alerts), C(nalerts), sizeof(struct alert_cfg),
	    AL(name), AL(line) },
	[SECT_POLICY] = { C(policies), C(npolicies), sizeof(struct policy_cfg),
	    PO(name), PO(line) },
};

/* breaker: every field unset (-1), for a new [provider]. */
static void
breaker_unset(struct breaker_cfg *b)
{
	b->enabled = -1;
	b->failures = b->failure_rate = b->window = b->min_requests = -1;
	b->open = b->probes = b->successes = -1;
}

/* breaker: a provider's unset fields take the gateway's. */
static void
breaker_inherit(struct breaker_cfg *b, const struct breaker_cfg *gw)
{
#define INHERIT(f)	if (b->f < 0) b->f = gw->f
	INHERIT(enabled);
	INHERIT(failures);
	INHERIT(failure_rate);
	INHERIT(window);
	INHERIT(min_requests);
	INHERIT(open);
	INHERIT(probes);
	INHERIT(successes);
#undef INHERIT
}

/* A new [policy]: every action unset, the built-in rules to add to. */
static int
policy_init(struct loader *l, struct policy_cfg *pol)
{
	memset(pol->action, POLICY_UNSET, sizeof(pol->action));
	pol->pii = POLICY_UNSET;
	pol->out_mask = DET_PII_MASK;
	if ((pol->rules = det_rules_new()) == NULL)
		return fail(l, "[policy %s]: out of memory", pol->name);
	return 1;
}

/* The object named name of a section kind, created on first sight. */
static void *
named_obj(struct loader *l, enum section s, const char *name)
{
	const struct named_def	*d = &named[s];
	char			**arr = (char **)((char *)l->cfg + d->arr);
	size_t			*n = (size_t *)((char *)l->cfg + d->count);
	char			*o;
	size_t			 i;

	for (i = 0; i < *n; i++) {
		o = *arr + i * d->size;
		if (strcmp(*(char **)(o + d->name), name) == 0)
			return o;
	}
	*arr = xgrow(*arr, *n + 1, d->size);
	o = memset(*arr + *n * d->size, 0, d->size);
	*(char **)(o + d->name) = xstrdup(name);
	*(int *)(o + d->line) = l->section_line;
	/* Fields whose unset state is not zero. */
	if (s == SECT_MODEL) {
		((struct model_cfg *)o)->cached_input_price = -1;
		((struct model_cfg *)o)->cache_write_price = -1;
		((struct model_cfg *)o)->completions = -1;
	}
	if (s == SECT_AGENT) {
		((struct agent_cfg *)o)->daily_budget = -1;
		((struct agent_cfg *)o)->cache = 1;
	}
	if (s == SECT_PROVIDER)		/* breaker: unset, inherit */
		breaker_unset(&((struct provider_cfg *)o)->breaker);
	if (s == SECT_POLICY && !policy_init(l, (struct policy_cfg *)o))
		return NULL;
	apply_defaults(l, s, o);
	(*n)++;
	return o;
}

/* A new "[kind name]" header: find or create the object it fills. */
static int
enter_section(struct loader *l, const char *section)
{
	char		 kind[64];
	const char	*name;
	size_t		 n, i;
	struct config	*c = l->cfg;

	snprintf(l->cur_section, sizeof(l->cur_section), "%s", section);
	name = strchr(section, ' ');
	n = name ? (size_t)(name - section) : strlen(section);
	if (n >= sizeof(kind))
		return fail(l, "unknown section [%s]", section);
	memcpy(kind, section, n);
	kind[n] = '\0';
	if (name != NULL)
		while (*name == ' ')
			name++;
	for (i = 0; i < SECT__MAX; i++)
		if (strcmp(kind, section_names[i]) == 0)
			break;
	if (i == SECT__MAX)
		return fail(l, "unknown section [%s] (gateway, retry, "
		    "provider NAME, model NAME, tier NAME, agent NAME, "
		    "task NAME, alert NAME, policy NAME)", section);
	l->sect = (enum section)i;
	if (l->sect == SECT_GATEWAY || l->sect == SECT_RETRY) {
		if (name != NULL && *name != '\0')
			return fail(l, "[%s] takes no name", kind);
		if (l->sect == SECT_GATEWAY && l->gateway_line == 0)
			l->gateway_line = l->section_line;
		l->obj = l->sect == SECT_GATEWAY ? (void *)&c->gw :
		    (void *)&c->retry;
		return 1;
	}
	if (name == NULL || !(l->sect == SECT_MODEL ? valid_model_name(name) :
	    valid_name(name)))
		return fail(l, "[%s NAME] needs a name of letters, digits and "
		    "-_.:/%s", kind, l->sect == SECT_MODEL ? " (a template: "
		    "also * ? [ ] !)" : "");
	/* A usage row records the name whole (usage.h). */
	if (l->sect == SECT_POLICY && strlen(name) > POLICY_NAME_MAX)
		return fail(l, "[policy %s]: a policy's name has at most %d "
		    "characters", name, POLICY_NAME_MAX);
	l->obj = named_obj(l, l->sect, name);
	return l->obj != NULL;
}

static int
on_value(void *user, const char *section, const char *name,
    const char *value)
{
	struct loader	*l = user;
	size_t		 i;

	if (l->err[0] != '\0')
		return 0;
	if (l->long_line)
		return 0;
	if (strcmp(section, l->cur_section) != 0 || l->obj == NULL)
		if (!enter_section(l, section))
			return 0;
	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == l->sect && strcmp(keys[i].name, name) == 0) {
			l->key_line[i] = l->line;
			if (l->sect == SECT_MODEL)
				((struct model_cfg *)l->obj)->set |=
				    model_bit(i);
			if (strcmp(name, "policy") == 0 && l->sect == SECT_TIER)
				((struct tier_cfg *)l->obj)->policy_line =
				    l->line;
			if (strcmp(name, "policy") == 0 &&
			    l->sect == SECT_AGENT)
				((struct agent_cfg *)l->obj)->policy_line =
				    l->line;
			return set_value(l, &keys[i], value);
		}
	return fail(l, "unknown key \"%s\" in [%s]", name, section);
}

/*
 * A "[section]" line, seen before inih parses it, so that sections without
 * keys are checked too and errors point at the header line.
 */
static void
header(struct loader *l, const char *s)
{
	char		 name[256];
	const char	*end;

	l->section_line = l->line;
	if ((end = strchr(s, ']')) == NULL ||
	    (size_t)(end - s) >= sizeof(name))
		return;		/* inih reports the syntax error */
	memcpy(name, s, (size_t)(end - s));
	name[end - s] = '\0';
	if (l->err[0] == '\0')
		enter_section(l, name);
}

/* inih reads lines through us, so we know the line number and length. */
static char *
reader(char *dst, int num, void *user)
{
	struct loader	*l = user;
	int		 c, n = 0;

	while ((c = fgetc(l->fp)) != EOF) {
		if (n < num - 1)
			dst[n] = (char)c;
		n++;
		if (c == '\n')
			break;
	}
	if (n == 0)
		return NULL;
	l->line++;
	if (n >= num - 1 && !l->long_line && !(n == num - 1 &&
	    dst[n - 1] == '\n'))
		l->long_line = l->line;
	dst[n < num - 1 ? n : num - 1] = '\0';
	for (c = 0; dst[c] == ' ' || dst[c] == '\t'; c++)
		;
	if (dst[c] == '[')
		header(l, dst + c + 1);
	return dst;
}

/* The line a [gateway] key was set on, else that of [gateway], else 1. */
static int
key_line(const struct loader *l, const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == SECT_GATEWAY &&
		    strcmp(keys[i].name, name) == 0 && l->key_line[i] > 0)
			return l->key_line[i];
	return l->gateway_line > 0 ? l->gateway_line : 1;
}

/* A name some [model], provider match pattern or default_provider serves. */
static int
routable(const struct config *c, const char *name)
{
	size_t	 i, j;

	if (config_model_match(c, name) != NULL || c->gw.default_prov != NULL)
		return 1;
	for (i = 0; i < c->nproviders; i++)
		for (j = 0; j < c->providers[i].match.n; j++)
			if (fnmatch(c->providers[i].match.v[j], name, 0) == 0)
				return 1;
	return 0;
}

/* Tiers, agents and tasks: their references, once models are checked. */
static int
finish_routing(struct loader *l)
{
	struct config		*c = l->cfg;
	struct tier_cfg		*t;
	struct agent_cfg	*a;
	struct task_cfg		*k;
	size_t			 i, j, len;

	for (i = 0; i < c->ntiers; i++) {
		t = &c->tiers[i];
		l->line = t->line;
		t->down_from = xgrow(NULL, t->downgrade.n + 1,
		    sizeof(*t->down_from));
		t->down_to = xgrow(NULL, t->downgrade.n + 1,
		    sizeof(*t->down_to));
		for (j = 0; j < t->downgrade.n; j++) {
			len = strlen(t->downgrade.v[j]);
			if (pair_parse(t->downgrade.v[j], t->downgrade.v[j] +
			    len, &t->down_from[j], &t->down_to[j]) == -1)
				return fail(l, "[tier %s] downgrade: internal "
				    "error", t->name);
			t->ndown++;
			if (config_model(c, t->down_to[j]) == NULL)
				return fail(l, "[tier %s] downgrade: no [model "
				    "%s]", t->name, t->down_to[j]);
		}
	}
	l->line = key_line(l, "default_tier");
	if (c->ntiers > 0 && (c->gw.default_tier_cfg = config_tier(c,
	    c->gw.default_tier)) == NULL)
		return fail(l, "default_tier: no [tier %s]", c->gw.default_tier);
	for (i = 0; i < c->nagents; i++) {
		a = &c->agents[i];
		l->line = a->line;
		if (a->tier_name == NULL) {
			a->tier_name = xstrdup(c->gw.default_tier);
			a->tier = c->gw.default_tier_cfg;
		} else if ((a->tier = config_tier(c, a->tier_name)) == NULL)
			return fail(l, "[agent %s] tier: no [tier %s]", a->name,
			    a->tier_name);
	}
	for (i = 0; i < c->ntasks; i++) {
		k = &c->tasks[i];
		l->line = k->line;
		if (k->model == NULL)
			return fail(l, "[task %s] needs model", k->name);
		if (!routable(c, k->model))
			return fail(l, "[task %s] model: no [model %s] and no "
			    "provider serves it", k->name, k->model);
		for (j = 0; j < k->fallback.n; j++)
			if (config_model(c, k->fallback.v[j]) == NULL)
				return fail(l, "[task %s] fallback: no [model "
				    "%s]", k->name, k->fallback.v[j]);
	}
	return 1;
}

static unsigned long
model_key_bit(const char *name)
{
	size_t	 i;

	for (i = 0; i < NKEYS; i++)
		if (keys[i].sect == SECT_MODEL && strcmp(keys[i].name, name) == 0)
			return model_bit(i);
	return 0;
}

/*
 * A model with like = NAME takes NAME's identity and every [model] key
 * it does not set itself (upstream excepted: each name is its own).
 */
static int
finish_like(struct loader *l, struct model_cfg *m)
{
	const struct model_cfg	*src;
	const struct strlist	*from;
	const char		*from_s;
	size_t			 i, j;
	char			*dst;

	if (m->like == NULL)
		return 1;
	l->line = m->line;
	src = config_model(l->cfg, m->like);
	if (src == NULL)
		return fail(l, "[model %s] like: no [model %s]", m->name,
		    m->like);
	if (src == m || src->like != NULL)
		return fail(l, "[model %s] like: [model %s] must be a model "
		    "of its own (not a template, not itself like another)",
		    m->name, m->like);
	m->like_model = src;
	for (i = 0; i < NKEYS; i++) {
		if (keys[i].sect != SECT_MODEL || (m->set & model_bit(i)) ||
		    strcmp(keys[i].name, "upstream") == 0 ||
		    strcmp(keys[i].name, "deployment") == 0 ||
		    strcmp(keys[i].name, "like") == 0)
			continue;
		/* A price of its own makes its own cached prices too. */
		if ((strcmp(keys[i].name, "cached_input_price") == 0 ||
		    strcmp(keys[i].name, "cache_write_price") == 0) &&
		    (m->set & model_key_bit("input_price")))
			continue;
		dst = (char *)m + keys[i].off;
		switch (keys[i].type) {
		case K_STR:
			from_s = *(char *const *)((const char *)src +
			    keys[i].off);
			free(*(char **)dst);
			*(char **)dst = from_s != NULL ? xstrdup(from_s) : NULL;
			break;
		case K_WORDS:
			from = (const struct strlist *)((const char *)src +
			    keys[i].off);
			for (j = 0; j < from->n; j++)
				strlist_add((struct strlist *)dst, from->v[j],
				    strlen(from->v[j]));
			break;
		case K_PRICE:
			*(money_t *)dst = *(const money_t *)((const char *)src +
			    keys[i].off);
			break;
		case K_LONG:
			*(long *)dst = *(const long *)((const char *)src +
			    keys[i].off);
			break;
		case K_ONOFF:
			*(int *)dst = *(const int *)((const char *)src +
			    keys[i].off);
			break;
		case K_RATIO:
			*(double *)dst = *(const double *)((const char *)src +
			    keys[i].off);
			break;
		default:
			return fail(l, "[model %s] like: key %s cannot be "
			    "inherited (internal error)", m->name, keys[i].name);
		}
	}
	return 1;
}

static void	wipe_free(char *);

/* "sha256:" and the first 8 hex digits of the key's SHA-256. */
static char *
key_fingerprint(const char *key)
{
	unsigned char	 md[SHA256_DIGEST_LENGTH];
	char		 out[24];

	SHA256((const unsigned char *)key, strlen(key), md);
	snprintf(out, sizeof(out), "sha256:%02x%02x%02x%02x", md[0], md[1],
	    md[2], md[3]);
	explicit_bzero(md, sizeof(md));
	return xstrdup(out);
}

/*
 * Resolve every key of p's pool: 1, or 0 with why (naming the reference,
 * never a secret) when one cannot be had; then p has no key at all.
 */
static int
finish_keys(struct provider_cfg *p, char *why, size_t whylen)
{
	size_t	 i, n = p->api_key_refs.n;

	p->api_key_ref = n > 0 ? p->api_key_refs.v[0] : NULL;
	if (n == 0)
		return 1;
	p->keys = xgrow(NULL, n, sizeof(*p->keys));
	p->key_fp = xgrow(NULL, n, sizeof(*p->key_fp));
	for (i = 0; i < n; i++) {
		if ((p->keys[i] = secret_resolve(p->api_key_refs.v[i], why,
		    whylen)) == NULL)
			break;
		p->key_fp[i] = key_fingerprint(p->keys[i]);
	}
	p->nkeys = i;
	if (i < n) {
		for (i = 0; i < p->nkeys; i++) {
			wipe_free(p->keys[i]);
			free(p->key_fp[i]);
		}
		p->nkeys = 0;
		return 0;
	}
	p->api_key = p->keys[0];
	return 1;
}

/*
 * A model's "deployment =" lines: each names a [provider] and carries a
 * weight and maybe prices of its own (else the model's). The first is
 * the model's provider and upstream for everything that knows one.
 */
static int
finish_deployments(struct loader *l, struct model_cfg *m)
{
	struct deploy_item	 it;
	struct deployment_cfg	*d;
	char			 err[160];
	size_t			 i;

	if (m->deployment.n == 0)
		return 1;
	if (m->is_template)
		return fail(l, "[model %s]: a template sends each name as "
		    "asked; deployment is not allowed", m->name);
	if (m->set & (model_key_bit("provider") | model_key_bit("upstream")))
		return fail(l, "[model %s]: deployment lines replace provider "
		    "and upstream; set one or the other", m->name);
	if (m->deployment.n > MODEL_DEPLOYMENTS_MAX)
		return fail(l, "[model %s] deployment: at most %d", m->name,
		    MODEL_DEPLOYMENTS_MAX);
	if (m->cached_input_price < 0)
		m->cached_input_price = m->input_price;
	m->deploys = xgrow(NULL, m->deployment.n, sizeof(*m->deploys));
	for (i = 0; i < m->deployment.n; i++) {
		if (deploy_parse(m->deployment.v[i], &it, err,
		    sizeof(err)) == -1)
			return fail(l, "[model %s] deployment: %s", m->name,
			    err);	/* checked when read: cannot happen */
		d = &m->deploys[m->ndeploys++];
		memset(d, 0, sizeof(*d));
		d->upstream = it.upstream;
		d->weight = it.weight;
		if ((d->provider = config_provider(l->cfg, it.provider)) ==
		    NULL)
			return fail(l, "[model %s] deployment: no [provider %s]",
			    m->name, it.provider);
		d->input_price = it.price[0] >= 0 ? it.price[0] :
		    m->input_price;
		d->output_price = it.price[1] >= 0 ? it.price[1] :
		    m->output_price;
		/* A price of its own makes its own cached price too. */
		d->cached_input_price = it.price[2] >= 0 ? it.price[2] :
		    it.price[0] >= 0 ? it.price[0] : m->cached_input_price;
		/* -1: the default for its provider (plan.c) at its price. */
		d->cache_write_price = it.price[3] >= 0 ? it.price[3] :
		    it.price[0] >= 0 ? -1 : m->cache_write_price;
	}
	free(m->provider_name);
	m->provider_name = xstrdup(m->deploys[0].provider->name);
	free(m->upstream);
	m->upstream = xstrdup(m->deploys[0].upstream);
	return 1;
}

/*
 * The semantic cache needs the exact one (its answers live there) and an
 * embeddings model of the file.
 */
static int
finish_semantic(struct loader *l, const struct model_cfg *m)
{
	if (!m->semantic_cache)
		return 1;
	if (m->cache_ttl <= 0)
		return fail(l, "[model %s] semantic_cache = on needs cache_ttl "
		    "(the answers are the exact cache's)", m->name);
	if (m->semantic_model == NULL)
		return fail(l, "[model %s] semantic_cache = on needs "
		    "semantic_model", m->name);
	if (config_model(l->cfg, m->semantic_model) == NULL)
		return fail(l, "[model %s] semantic_model: no [model %s]",
		    m->name, m->semantic_model);
	return 1;
}

/* Checks that need the whole file: references, required keys, secrets. */
const char *const alert_event_names[ALERT__MAX] = {
	"budget_warning", "budget_exceeded", "balance_low", "breaker_open",
};

/*
 * [alert]: a url, known events, and the header's secret read now: the
 * text before env:NAME or file:/path is kept, the secret appended.
 */
static int
finish_alerts(struct loader *l)
{
	struct alert_cfg	*a;
	const char		*ref, *colon;
	char			 why[256], *secret;
	size_t			 i, j, n;
	int			 e;

	for (i = 0; i < l->cfg->nalerts; i++) {
		a = &l->cfg->alerts[i];
		l->line = a->line;
		if (a->url == NULL)
			return fail(l, "[alert %s] needs url", a->name);
		if (a->events.n == 0)
			return fail(l, "[alert %s] needs events", a->name);
		for (j = 0; j < a->events.n; j++) {
			for (e = 0; e < ALERT__MAX; e++)
				if (strcmp(a->events.v[j], alert_event_names[e]) == 0)
					break;
			if (e == ALERT__MAX)
				return fail(l, "[alert %s] events: unknown event "
				    "'%s' (budget_warning, budget_exceeded, "
				    "balance_low, breaker_open)", a->name,
				    a->events.v[j]);
			a->mask |= 1u << e;
		}
		if (a->header_ref == NULL)
			continue;
		colon = strchr(a->header_ref, ':');
		ref = strstr(a->header_ref, "env:");
		if (ref == NULL)
			ref = strstr(a->header_ref, "file:/");
		if (colon == NULL || colon == a->header_ref || ref == NULL ||
		    ref <= colon)
			return fail(l, "[alert %s] header: expected \"Name: "
			    "[text ]env:VAR\" or file:/path (secrets never live "
			    "in the INI)", a->name);
		if ((secret = secret_resolve(ref, why, sizeof(why))) == NULL)
			return fail(l, "[alert %s] header: %s", a->name, why);
		n = (size_t)(ref - a->header_ref);
		a->header = xgrow(NULL, n + strlen(secret) + 1, 1);
		memcpy(a->header, a->header_ref, n);
		strcpy(a->header + n, secret);
		free(secret);
	}
	return 1;
}

/*
 * [policy] sections: every action settled (its own, else pii for the
 * personal-data kinds, else off; length blocks when a maximum is set),
 * route needs route_residency; then the policies tiers, agents and
 * default_policy name.
 */
static int
finish_policies(struct loader *l)
{
	struct config		*c = l->cfg;
	struct policy_cfg	*pol;
	size_t			 i;
	int			 k, routes;

	for (i = 0; i < c->npolicies; i++) {
		pol = &c->policies[i];
		l->line = pol->line;
		routes = 0;
		for (k = 0; k < DET__MAX; k++) {
			if (pol->action[k] == POLICY_UNSET)
				pol->action[k] = (DET_BIT(k) & DET_PII_MASK) &&
				    pol->pii != POLICY_UNSET ? pol->pii :
				    k == DET_LENGTH && (pol->max_chars > 0 ||
				    pol->max_tokens > 0) ? POLICY_BLOCK :
				    POLICY_OFF;
			if (pol->action[k] == POLICY_ROUTE)
				routes = 1;
			if (pol->action[k] == POLICY_OFF ||
			    !(DET_BIT(k) & DET_SPAN_MASK))
				continue;
			if (pol->action[k] == POLICY_REDACT)
				pol->redact_mask |= DET_BIT(k);
			else
				pol->scan_mask |= DET_BIT(k);
		}
		if (routes && pol->route_residency.n == 0)
			return fail(l, "[policy %s]: a detector's action is "
			    "route but route_residency is not set (e.g. "
			    "route_residency = onprem)", pol->name);
		if (pol->action[DET_LENGTH] != POLICY_OFF &&
		    pol->max_chars == 0 && pol->max_tokens == 0)
			return fail(l, "[policy %s]: length needs "
			    "max_prompt_chars or max_prompt_tokens", pol->name);
	}
	for (i = 0; i < c->ntiers; i++) {
		l->line = c->tiers[i].policy_line;
		if (c->tiers[i].policy_name != NULL &&
		    (c->tiers[i].policy = config_policy(c,
		    c->tiers[i].policy_name)) == NULL)
			return fail(l, "[tier %s] policy: no [policy %s]",
			    c->tiers[i].name, c->tiers[i].policy_name);
	}
	for (i = 0; i < c->nagents; i++) {
		l->line = c->agents[i].policy_line;
		if (c->agents[i].policy_name != NULL &&
		    (c->agents[i].policy = config_policy(c,
		    c->agents[i].policy_name)) == NULL)
			return fail(l, "[agent %s] policy: no [policy %s]",
			    c->agents[i].name, c->agents[i].policy_name);
	}
	l->line = key_line(l, "default_policy");
	if (c->gw.default_policy != NULL && (c->gw.default_policy_cfg =
	    config_policy(c, c->gw.default_policy)) == NULL)
		return fail(l, "default_policy: no [policy %s]",
		    c->gw.default_policy);
	return 1;
}

static int
finish(struct loader *l)
{
	struct config		*c = l->cfg;
	struct provider_cfg	*p;
	struct model_cfg	*m;
	char			 why[256];
	size_t			 i, j, n;

	for (i = 0; i < c->nproviders; i++) {
		p = &c->providers[i];
		l->line = p->line;
		if (p->base_url == NULL)
			return fail(l, "[provider %s] needs base_url", p->name);
		if (p->strip_prefix != NULL && p->match.n == 0)
			return fail(l, "[provider %s] strip_prefix needs match",
			    p->name);
		if (p->type == PROVIDER_YANDEX && p->folder == NULL)
			return fail(l, "[provider %s] type yandex needs folder "
			    "(the Yandex Cloud folder id)", p->name);
		if (strcmp(p->max_tokens_field, "max_tokens") != 0 &&
		    strcmp(p->max_tokens_field, "max_completion_tokens") != 0)
			return fail(l, "[provider %s] max_tokens_field: expected "
			    "max_tokens or max_completion_tokens", p->name);
		if (p->auth_scheme != NULL && strcmp(p->auth_scheme,
		    "Api-Key") != 0 && strcmp(p->auth_scheme, "Bearer") != 0)
			return fail(l, "[provider %s] auth_scheme: expected "
			    "Api-Key or Bearer", p->name);
		breaker_inherit(&p->breaker, &c->gw.breaker);	/* breaker */
		if (p->api_key_refs.n > PROVIDER_KEYS_MAX)
			return fail(l, "[provider %s] api_key: at most %d keys",
			    p->name, PROVIDER_KEYS_MAX);
		if (p->type == PROVIDER_GIGACHAT && p->api_key_refs.n > 1)
			return fail(l, "[provider %s] type gigachat takes one "
			    "api_key (its OAuth authorization key)", p->name);
		if (!finish_keys(p, why, sizeof(why))) {
			p->available = 0;
			p->unavailable = xstrdup(why);
		} else
			p->available = 1;
	}
	for (i = 0; i < c->nmodels; i++)
		c->models[i].is_template = is_glob(c->models[i].name);
	for (i = 0; i < c->nmodels; i++)
		if (!finish_like(l, &c->models[i]))
			return 0;
	for (i = 0; i < c->nmodels; i++) {
		m = &c->models[i];
		l->line = m->line;
		if (!finish_deployments(l, m))
			return 0;
		if (m->cache_scope != NULL &&
		    strcmp(m->cache_scope, "key") != 0 &&
		    strcmp(m->cache_scope, "agent") != 0 &&
		    strcmp(m->cache_scope, "global") != 0)
			return fail(l, "[model %s] cache_scope: expected key, "
			    "agent or global", m->name);
		if (!finish_semantic(l, m))
			return 0;
		if (m->provider_name == NULL && !m->is_template)
			return fail(l, "[model %s] needs provider", m->name);
		if (m->provider_name != NULL && (m->provider =
		    config_provider(c, m->provider_name)) == NULL)
			return fail(l, "[model %s]: no [provider %s]", m->name,
			    m->provider_name);
		if (m->is_template && m->upstream != NULL)
			return fail(l, "[model %s]: a template sends each name "
			    "as asked; upstream is not allowed", m->name);
		if (m->upstream == NULL && !m->is_template)
			m->upstream = xstrdup(m->name);
		if (m->cached_input_price < 0)
			m->cached_input_price = m->input_price;
		for (j = 0; j < m->fallback.n; j++) {
			if (config_model(c, m->fallback.v[j]) == NULL)
				return fail(l, "[model %s] fallback: no [model "
				    "%s]", m->name, m->fallback.v[j]);
			if (strcmp(m->fallback.v[j], m->name) == 0)
				return fail(l, "[model %s] falls back to itself",
				    m->name);
		}
		if (m->context_fallback != NULL && config_model(c,
		    m->context_fallback) == NULL)
			return fail(l, "[model %s] context_fallback: no [model "
			    "%s]", m->name, m->context_fallback);
		if (m->context_fallback != NULL &&
		    strcmp(m->context_fallback, m->name) == 0)
			return fail(l, "[model %s] context_fallback is the model "
			    "itself", m->name);
	}
	l->line = key_line(l, "default_provider");
	if (c->gw.default_provider != NULL && (c->gw.default_prov =
	    config_provider(c, c->gw.default_provider)) == NULL)
		return fail(l, "default_provider: no [provider %s]",
		    c->gw.default_provider);
	if (!finish_routing(l) || !finish_alerts(l) || !finish_policies(l))
		return 0;
	l->line = key_line(l, "master_key");
	if (c->gw.master_key_ref != NULL && !(l->opts & CONFIG_NO_MASTER_KEY) &&
	    (c->gw.master_key = secret_resolve(c->gw.master_key_ref, why,
	    sizeof(why))) == NULL)
		return fail(l, "master_key: %s", why);
	l->line = key_line(l, "metrics_key");
	if (c->gw.metrics_key_ref != NULL && !(l->opts & CONFIG_NO_MASTER_KEY) &&
	    (c->gw.metrics_key = secret_resolve(c->gw.metrics_key_ref, why,
	    sizeof(why))) == NULL)
		return fail(l, "metrics_key: %s", why);
	l->line = key_line(l, "metrics_allow");
	if (c->gw.metrics_allow != NULL &&
	    !metrics_allow_valid(c->gw.metrics_allow, why, sizeof(why)))
		return fail(l, "metrics_allow: %s", why);
	l->line = l->gateway_line > 0 ? l->gateway_line : 1;
	if (c->gw.data_dir == NULL)
		return fail(l, "[gateway] needs data_dir");
	if (c->gw.fallback_file == NULL || c->gw.fallback_file[0] == '\0') {
		free(c->gw.fallback_file);
		n = strlen(c->gw.data_dir);
		while (n > 0 && c->gw.data_dir[n - 1] == '/')
			n--;
		c->gw.fallback_file = xgrow(NULL, n + sizeof(FALLBACK_NAME) + 1,
		    1);
		snprintf(c->gw.fallback_file, n + sizeof(FALLBACK_NAME) + 1,
		    "%.*s/%s", (int)n, c->gw.data_dir, FALLBACK_NAME);
	}
	return 1;
}

struct config *
config_load(const char *path, char *err, size_t errlen)
{
	return config_load_opts(path, 0, err, errlen);
}

struct config *
config_load_opts(const char *path, unsigned opts, char *err, size_t errlen)
{
	struct loader	 l;
	struct stat	 st;
	int		 rc;

	memset(&l, 0, sizeof(l));
	l.opts = opts;
	l.path = path;
	if ((l.fp = fopen(path, "r")) == NULL) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	l.cfg = calloc(1, sizeof(*l.cfg));
	if (l.cfg == NULL) {
		fclose(l.fp);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	l.cfg->path = xstrdup(path);
	if (fstat(fileno(l.fp), &st) == 0)
		l.cfg->mtime = st.st_mtime;
	apply_defaults(&l, SECT_GATEWAY, &l.cfg->gw);
	apply_defaults(&l, SECT_RETRY, &l.cfg->retry);
	l.status_set = 0;

	rc = ini_parse_stream(reader, &l, on_value, &l);
	fclose(l.fp);
	if (l.long_line) {
		l.line = l.long_line;
		l.err[0] = '\0';
		fail(&l, "line longer than %d characters; continue long lists "
		    "on indented lines", INI_LINE_LIMIT - 3);
	} else if (rc > 0 && (l.err[0] == '\0' || rc < l.err_line)) {
		/* inih's own error comes first when it is on an earlier line. */
		l.err[0] = '\0';
		l.line = rc;
		fail(&l, "syntax error (expected [section] or key = value)");
	} else if (rc < 0 && l.err[0] == '\0')
		fail(&l, "cannot parse (out of memory)");
	if (l.err[0] == '\0')
		finish(&l);
	if (l.err[0] != '\0') {
		snprintf(err, errlen, "%s", l.err);
		config_free(l.cfg);
		return NULL;
	}
	return l.cfg;
}

static void
free_fields(enum section s, void *obj)
{
	size_t	 i;
	char	*field;

	for (i = 0; i < NKEYS; i++) {
		if (keys[i].sect != s)
			continue;
		field = (char *)obj + keys[i].off;
		switch (keys[i].type) {
		case K_STR:
		case K_PATH:
		case K_URL:
		case K_SECRET:
		case K_LOGLEVEL:
		case K_DURABILITY:
			free(*(char **)field);
			break;
		case K_WORDS:
		case K_LINES:
		case K_PAIRS:
		case K_SECRETS:
		case K_DEPLOY:
		case K_RESIDENCIES:
			strlist_free((struct strlist *)field);
			break;
		case K_RESIDENCY:
			free(*(char **)field);
			break;
		default:
			break;
		}
	}
}

static void
wipe_free(char *secret)
{
	if (secret == NULL)
		return;
	explicit_bzero(secret, strlen(secret));
	free(secret);
}

void
config_free(struct config *c)
{
	size_t	 i, j;

	if (c == NULL)
		return;
	free_fields(SECT_GATEWAY, &c->gw);
	wipe_free(c->gw.master_key);
	wipe_free(c->gw.metrics_key);
	for (i = 0; i < c->nproviders; i++) {
		free_fields(SECT_PROVIDER, &c->providers[i]);
		free(c->providers[i].name);
		free(c->providers[i].unavailable);
		for (j = 0; j < c->providers[i].nkeys; j++) {
			wipe_free(c->providers[i].keys[j]);
			free(c->providers[i].key_fp[j]);
		}
		free(c->providers[i].keys);
		free(c->providers[i].key_fp);
	}
	for (i = 0; i < c->nmodels; i++) {
		free_fields(SECT_MODEL, &c->models[i]);
		free(c->models[i].name);
		for (j = 0; j < c->models[i].ndeploys; j++)
			free(c->models[i].deploys[j].upstream);
		free(c->models[i].deploys);
	}
	for (i = 0; i < c->ntiers; i++) {
		free_fields(SECT_TIER, &c->tiers[i]);
		free(c->tiers[i].name);
		for (j = 0; j < c->tiers[i].ndown; j++) {
			free(c->tiers[i].down_from[j]);
			free(c->tiers[i].down_to[j]);
		}
		free(c->tiers[i].down_from);
		free(c->tiers[i].down_to);
	}
	for (i = 0; i < c->nagents; i++) {
		free_fields(SECT_AGENT, &c->agents[i]);
		free(c->agents[i].name);
	}
	for (i = 0; i < c->ntasks; i++) {
		free_fields(SECT_TASK, &c->tasks[i]);
		free(c->tasks[i].name);
	}
	free(c->providers);
	free(c->models);
	free(c->tiers);
	free(c->agents);
	for (i = 0; i < c->nalerts; i++) {
		free_fields(SECT_ALERT, &c->alerts[i]);
		free(c->alerts[i].name);
		free(c->alerts[i].header);
	}
	for (i = 0; i < c->npolicies; i++) {
		free_fields(SECT_POLICY, &c->policies[i]);
		free(c->policies[i].name);
		det_rules_free(c->policies[i].rules);
	}
	free(c->policies);
	free(c->tasks);
	free(c->alerts);
	free(c->path);
	free(c);
}

struct provider_cfg *
config_provider(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->nproviders; i++)
		if (strcmp(c->providers[i].name, name) == 0)
			return &c->providers[i];
	return NULL;
}

struct model_cfg *
config_model(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->nmodels; i++)
		if (!c->models[i].is_template &&
		    strcmp(c->models[i].name, name) == 0)
			return &c->models[i];
	return NULL;
}

/* Characters of a pattern that match only themselves. */
static size_t
literal_chars(const char *pat)
{
	size_t	 n = 0;

	for (; *pat != '\0'; pat++) {
		if (*pat == '*' || *pat == '?')
			continue;
		if (*pat == '[') {
			/* A bracket expression matches one of many. */
			while (pat[1] != '\0' && pat[1] != ']')
				pat++;
			if (pat[1] == ']')
				pat++;
			continue;
		}
		n++;
	}
	return n;
}

const struct model_cfg *
config_model_match(const struct config *c, const char *name)
{
	const struct model_cfg	*m, *best = NULL;
	size_t			 i, n, best_n = 0;

	if ((m = config_model(c, name)) != NULL)
		return m;
	for (i = 0; i < c->nmodels; i++) {
		m = &c->models[i];
		if (!m->is_template || fnmatch(m->name, name, 0) != 0)
			continue;
		n = literal_chars(m->name);
		if (best == NULL || n > best_n) {
			best = m;
			best_n = n;
		}
	}
	return best;
}

const char *
config_model_identity(const struct model_cfg *m)
{
	return m->like != NULL ? m->like : m->name;
}

const struct tier_cfg *
config_tier(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ntiers; i++)
		if (strcmp(c->tiers[i].name, name) == 0)
			return &c->tiers[i];
	return NULL;
}

const struct agent_cfg *
config_agent(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->nagents; i++)
		if (strcmp(c->agents[i].name, name) == 0)
			return &c->agents[i];
	return NULL;
}

const struct task_cfg *
config_task(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->ntasks; i++)
		if (strcmp(c->tasks[i].name, name) == 0)
			return &c->tasks[i];
	return NULL;
}

const struct policy_cfg *
config_policy(const struct config *c, const char *name)
{
	size_t	 i;

	for (i = 0; i < c->npolicies; i++)
		if (strcmp(c->policies[i].name, name) == 0)
			return &c->policies[i];
	return NULL;
}

/* "local" is the older word for "onprem": either satisfies both. */
static const char *
residency_canon(const char *s)
{
	return strcmp(s, "local") == 0 ? "onprem" : s;
}

int
config_residency_ok(const char *have, const struct strlist *want)
{
	size_t	 i;

	if (want == NULL || want->n == 0)
		return 1;
	if (have == NULL)
		return 0;
	for (i = 0; i < want->n; i++)
		if (strcmp(residency_canon(have),
		    residency_canon(want->v[i])) == 0)
			return 1;
	return 0;
}

/*
 * The first downgrade pair whose FROM glob matches model, in file order,
 * gives the model served instead; one step only, so pairs cannot loop.
 */
const char *
config_downgrade(const struct tier_cfg *t, const char *model)
{
	size_t	 i;

	if (t == NULL)
		return NULL;
	for (i = 0; i < t->ndown; i++)
		if (fnmatch(t->down_from[i], model, 0) == 0)
			return strcmp(t->down_to[i], model) == 0 ? NULL :
			    t->down_to[i];
	return NULL;
}

int
config_retry_status(const struct config *c, int status)
{
	size_t	 i;

	for (i = 0; i < c->retry.non_status; i++)
		if (c->retry.on_status[i] == status)
			return 1;
	return 0;
}

/* Print every key with its default and help (llmgate --help-config). */
void
config_print_help(void)
{
	size_t	 i;
	int	 s;

	for (s = 0; s < SECT__MAX; s++) {
		printf("[%s%s]\n", section_names[s],
		    s >= SECT_PROVIDER ? " NAME" : "");
		for (i = 0; i < NKEYS; i++)
			if (keys[i].sect == (enum section)s)
				printf("  %-20s %s%s%s%s\n", keys[i].name,
				    keys[i].help,
				    keys[i].def ? " (default: " : "",
				    keys[i].def ? keys[i].def : "",
				    keys[i].def ? ")" : "");
	}
}
