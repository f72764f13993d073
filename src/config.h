/* config.h: the INI configuration, loaded once into one immutable struct. */
#ifndef LLMGATE_CONFIG_H
#define LLMGATE_CONFIG_H

#include <stddef.h>
#include <time.h>

#include "detect.h"
#include "money.h"

enum provider_type {
	PROVIDER_OPENAI,
	PROVIDER_ANTHROPIC,
	PROVIDER_GEMINI,
	PROVIDER_GIGACHAT,
	PROVIDER_YANDEX,
	PROVIDER__MAX
};

extern const char *const provider_type_names[PROVIDER__MAX];

/*
 * Circuit breaker thresholds (breaker.c): [gateway] holds the defaults,
 * a [provider] may override each; after loading, every provider's copy
 * is complete (its unset fields, -1, took the gateway's).
 */
struct breaker_cfg {
	int	 enabled;	/* breaker = on | off */
	long	 failures;	/* consecutive failures that open */
	long	 failure_rate;	/* percent of the window that opens; 0: off */
	long	 window;	/* s, the failure-rate window */
	long	 min_requests;	/* the rate counts from this many in the window */
	long	 open;		/* s open before probes */
	long	 probes;	/* probes at once when half-open */
	long	 successes;	/* probe successes in a row that close */
};

/* A list of strings read from one key, possibly repeated. */
struct strlist {
	char	**v;
	size_t	  n;
};

/* Keys in one provider's pool at most. */
#define PROVIDER_KEYS_MAX	32

struct provider_cfg {
	char			*name;
	enum provider_type	 type;
	char			*base_url;
	char			*api_key_ref;	/* the first of api_key_refs, or NULL */
	char			*api_key;	/* keys[0], or NULL */
	/*
	 * The key pool: api_key may list several references, used in turn
	 * (provider-keys.c). keys[i] is the secret of api_key_refs.v[i],
	 * key_fp[i] its fingerprint ("sha256:" and 8 hex digits), the only
	 * form a key is ever shown in.
	 */
	struct strlist		 api_key_refs;
	char			**keys;
	char			**key_fp;
	size_t			 nkeys;
	long			 key_cooldown;	/* s a refused key is set aside */
	int			 available;
	char			*unavailable;	/* why not, when !available */
	char			*proxy;
	char			*ca_file;
	char			*strip_prefix;
	char			*residency;
	char			*auth_url;	/* OAuth token endpoint */
	char			*scope;		/* OAuth scope */
	char			*folder;	/* Yandex Cloud folder id */
	char			*auth_scheme;	/* e.g. "Api-Key" or "Bearer" */
	char			*max_tokens_field;	/* the limit's name (openai) */
	int			 completions;	/* offers POST /completions (openai) */
	struct strlist		 match;
	struct strlist		 headers;	/* "Name: value" */
	long			 connect_timeout;	/* ms */
	long			 first_byte_timeout;	/* s */
	long			 idle_timeout;		/* s */
	long			 timeout;		/* s, hard cap */
	struct breaker_cfg	 breaker;	/* breaker: complete after load */
	int			 line;
};

/* Deployments of one [model] at most, and the largest weight. */
#define MODEL_DEPLOYMENTS_MAX	8
#define DEPLOYMENT_WEIGHT_MAX	100

/* One deployment of a [model]: a provider and its id there, with a weight. */
struct deployment_cfg {
	struct provider_cfg	*provider;
	char			*upstream;
	long			 weight;
	/* This deployment's prices; -1: the model's. */
	money_t			 input_price;
	money_t			 output_price;
	money_t			 cached_input_price;
	money_t			 cache_write_price;
};

struct model_cfg {
	char			*name;
	char			*provider_name;
	struct provider_cfg	*provider;
	char			*upstream;
	money_t			 input_price;	/* micro-USD per 1M tokens */
	money_t			 output_price;
	money_t			 cached_input_price;
	money_t			 cache_write_price;	/* -1 until resolved */
	money_t			 image_price;	/* micro-USD per image */
	struct strlist		 fallback;
	/* Tried instead of answering an upstream context-window error. */
	char			*context_fallback;
	/* "deployment =" lines as read, then parsed (0: provider/upstream). */
	struct strlist		 deployment;
	struct deployment_cfg	*deploys;
	size_t			 ndeploys;
	long			 rpm;
	long			 tpm;
	long			 max_tokens;	/* cap per choice; 0: default_max_tokens */
	int			 completions;	/* offers /completions; -1: the provider's */
	/* Response cache (rcache.c): seconds an answer is kept; 0: off. */
	long			 cache_ttl;
	char			*cache_scope;	/* key | agent | global; NULL: key */
	money_t			 cache_hit_price;	/* per 1M tokens of a hit */
	/* Semantic cache (semantic.c): reuse by prompt similarity. */
	int			 semantic_cache;
	char			*semantic_model;	/* an embeddings [model] */
	double			 semantic_threshold;	/* cosine, (0, 1] */
	long			 semantic_max_entries;	/* per bucket */
	char			*like;	/* a template's model: identity and defaults */
	const struct model_cfg	*like_model;
	int			 is_template;	/* the name is a shell glob */
	unsigned long		 set;	/* bit per model key the file set */
	int			 line;
};

#define RETRY_STATUS_MAX 16

struct retry_cfg {
	long	 attempts;
	long	 backoff_ms;
	long	 backoff_max_ms;
	long	 retry_after_max;	/* s */
	int	 on_status[RETRY_STATUS_MAX];
	size_t	 non_status;
};

struct tier_cfg;
struct policy_cfg;

struct gateway_cfg {
	char			*data_dir;
	char			*master_key_ref;
	char			*master_key;	/* the secret, or NULL */
	char			*default_provider;
	struct provider_cfg	*default_prov;
	char			*base_path;
	char			*durability;
	int			 accounting;	/* 0: no store, master key only */
	char			*log_level;
	int			 log_json;	/* log_format = json */
	long			 max_body;
	long			 max_upstream_body;
	long			 max_json_depth;
	long			 max_sse_event;
	long			 heartbeat;	/* s */
	char			*default_tier;
	const struct tier_cfg	*default_tier_cfg;	/* NULL: no tiers */
	char			*fallback_file;	/* always set after load */
	long			 reservation_ttl;	/* s */
	long			 usage_retention_days;
	long			 budget_warn_percent;
	long			 default_max_tokens;
	int			 unpriced_free;	/* unpriced = free */
	long			 checkpoint_interval;	/* s */
	struct breaker_cfg	 breaker;	/* breaker: the defaults */
	long			 workers_max;	/* FastCGI threads per process */
	long			 workers_spare;	/* idle threads kept ready */
	long			 workers_idle;	/* s a surplus idle thread lives */
	long			 worker_stack;	/* KiB of each worker's stack */
	char			*metrics_key_ref;	/* GET /metrics: env:/file: */
	char			*metrics_key;	/* the secret, or NULL */
	char			*metrics_allow;	/* addresses, CIDRs: no key */
	int			 metrics_key_label;	/* key names as labels */
	char			*default_policy;	/* [policy] of the rest */
	const struct policy_cfg	*default_policy_cfg;	/* NULL: none */
	long			 response_cache_max_mb;	/* rcache.c's cap */
};

/* A budget class of agents: spend limits and cheaper models. */
struct tier_cfg {
	char		*name;
	money_t		 daily_budget;	/* micro-USD per agent per UTC day; 0: none */
	money_t		 monthly_budget;	/* 0: none */
	long		 rpm, tpm;	/* per key; 0: none */
	long		 max_concurrent;	/* in flight, all its keys; 0: none */
	struct strlist	 downgrade;	/* raw "from -> to" items as read */
	char		**down_from, **down_to;	/* parsed pairs */
	size_t		 ndown;
	char		*policy_name;	/* [policy] of its keys; NULL: none */
	const struct policy_cfg *policy;
	int		 policy_line;
	int		 line;
};

struct agent_cfg {
	char			*name;
	char			*tier_name;	/* default_tier when not given */
	const struct tier_cfg	*tier;	/* NULL when no tiers configured */
	money_t			 daily_budget;	/* -1: the tier's */
	int			 cache;		/* response cache: 1 on (default), 0 off */
	char			*policy_name;	/* [policy]; NULL: the tier's */
	const struct policy_cfg	*policy;
	int			 policy_line;
	int			 line;
};

/* A named job routed to a model of the operator's choice. */
struct task_cfg {
	char		*name;
	char		*model;
	struct strlist	 fallback;
	int		 line;
};

/*
 * A [policy NAME]: what the guardrails do with a request (policy.c). The
 * actions are enum policy_action values (policy.h), one per det_kind;
 * rules are compiled once at load and shared read-only afterwards.
 */
#define POLICY_UNSET	0xffu	/* an action the file did not set */
#define POLICY_NAME_MAX	23	/* characters of a [policy NAME] */
struct policy_cfg {
	char			*name;
	unsigned char		 action[DET__MAX];	/* enum policy_action */
	unsigned char		 pii;	/* every PII kind not set; or UNSET */
	struct strlist		 residency;	/* required of every candidate */
	struct strlist		 route_residency;	/* when a kind routes */
	struct det_rules	*rules;		/* keywords, injection patterns */
	int			 keywords_set;	/* the defaults were replaced */
	long			 injection_threshold;
	long			 max_chars;	/* 0: no limit */
	long			 max_tokens;	/* estimated; 0: no limit */
	int			 restore;	/* placeholders back in answers */
	int			 output;	/* enum redact_out */
	unsigned		 out_mask;	/* DET_BIT kinds checked on output */
	int			 out_set;	/* output_detectors was given */
	/* Derived at load: kinds whose action is not off, and by action. */
	unsigned		 scan_mask;	/* span kinds to look for */
	unsigned		 redact_mask;	/* span kinds replaced */
	int			 line;
};

/* Events an [alert] webhook may receive. */
enum alert_event {
	ALERT_BUDGET_WARNING,	/* budget_warn_percent of a budget spent */
	ALERT_BUDGET_EXCEEDED,	/* a request refused: 429 budget_exceeded */
	ALERT_BALANCE_LOW,	/* a prepaid balance under balance_below */
	ALERT_BREAKER_OPEN,	/* a deployment's circuit breaker opened */
	ALERT__MAX
};
extern const char *const alert_event_names[ALERT__MAX];

/* A webhook: the events it gets, how often and how hard it is tried. */
struct alert_cfg {
	char		*name;
	char		*url;
	struct strlist	 events;
	unsigned	 mask;		/* 1 << alert_event */
	money_t		 balance_below;
	long		 period;	/* s */
	char		*header_ref;	/* as read: "Name: text env:VAR" */
	char		*header;	/* with the secret; NULL: none */
	long		 attempts;
	long		 backoff_ms;
	long		 timeout;	/* s */
	int		 line;
};

struct config {
	char			*path;
	time_t			 mtime;
	struct gateway_cfg	 gw;
	struct retry_cfg	 retry;
	struct provider_cfg	*providers;
	size_t			 nproviders;
	struct model_cfg	*models;
	size_t			 nmodels;
	struct tier_cfg		*tiers;
	size_t			 ntiers;
	struct agent_cfg	*agents;
	size_t			 nagents;
	struct task_cfg		*tasks;
	size_t			 ntasks;
	struct alert_cfg	*alerts;
	size_t			 nalerts;
	struct policy_cfg	*policies;
	size_t			 npolicies;
};

/* Load path; on error return NULL and write "file:line: reason" to err. */
struct config	*config_load(const char *path, char *err, size_t errlen);
/* Tools that never check the master key need not read it (llmgate-admin). */
#define CONFIG_NO_MASTER_KEY	0x01u
struct config	*config_load_opts(const char *, unsigned, char *, size_t);
void		 config_free(struct config *);
struct provider_cfg *config_provider(const struct config *, const char *);
/* The [model NAME] section itself, never a template; NULL if none. */
struct model_cfg *config_model(const struct config *, const char *);
/*
 * The [model] that prices name: its own section, else the most specific
 * template [model PATTERN] matching it (most literal characters, then
 * file order); NULL when nothing prices it.
 */
const struct model_cfg *config_model_match(const struct config *,
		    const char *);
/* The identity of a [model] for allow-lists, downgrades and limits. */
const char	*config_model_identity(const struct model_cfg *);
int		 config_retry_status(const struct config *, int);
/* Lookups by name; NULL if none. */
const struct tier_cfg *config_tier(const struct config *, const char *name);
const struct agent_cfg *config_agent(const struct config *, const char *name);
const struct task_cfg *config_task(const struct config *, const char *name);
const struct policy_cfg *config_policy(const struct config *, const char *name);
/*
 * Does a provider's residency satisfy a list of residencies (a policy's)?
 * "local" is "onprem"; an empty list allows any.
 */
int		 config_residency_ok(const char *, const struct strlist *);
/* The model a tier serves instead of model, or NULL when the tier keeps it. */
const char	*config_downgrade(const struct tier_cfg *, const char *model);
void		 config_print_help(void);

#endif
