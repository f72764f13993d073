/*
 * account.c: the accounting steps of a request, in the order a handler
 * takes them: authenticate the key, plan the model for its tier and task,
 * admit (rate limits, budgets, balance: the worst case is reserved), and
 * settle (usage row, ledger, spend; the reservation is released).
 *
 * Requests in flight: a key's max_concurrent and its tier's (all the
 * tier's keys together) are counted by billing_admit in the admission
 * transaction, from the reservations themselves; the master key holds no
 * reservation and has no such limit.
 *
 * The invariants these steps keep:
 * - every candidate that may serve has a price (a [model] or a template)
 *   and passes the key's model list, unless unpriced = free or the caller
 *   is the master key (account_policy, on every candidate of the plan);
 * - what is forwarded can never cost more than what was reserved: the
 *   reservation prices, at the dearest candidate, the prompt's upper
 *   bound plus plan_max_tokens() times every choice and every image, and
 *   the adapters send exactly plan_max_tokens() upstream. Only an
 *   upstream that ignores the limit it was sent (or prices the request
 *   itself) can cost more; that row is billed as reported and flagged
 *   over_reservation (account_settle).
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <json-c/json.h>
#include <strings.h>
#include <time.h>

#include "account.h"
#include "alert.h"
#include "config.h"
#include "http.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "route.h"
#include "store.h"

/* Constant-time comparison of two secrets of possibly different length. */
static int
secret_equal(const char *a, const char *b)
{
	size_t		 la = strlen(a), lb = strlen(b), i;
	unsigned char	 d = la != lb;

	for (i = 0; i < la; i++)
		d |= (unsigned char)(a[i] ^ b[lb ? i % lb : 0]);
	return d == 0;
}

/* The key the client sent: "Authorization: Bearer KEY" or X-Api-Key. */
static const char *
client_key(const struct request *r)
{
	const char	*h;

	h = http_header_in(r, "Authorization");
	if (h != NULL && strncasecmp(h, "Bearer ", 7) == 0)
		h += 7;
	else if ((h = http_header_in(r, "X-Api-Key")) == NULL)
		return NULL;
	while (*h == ' ')
		h++;
	return *h != '\0' ? h : NULL;
}

const char *
account_client_key(const struct request *r)
{
	return client_key(r);
}

int
account_secret_equal(const char *a, const char *b)
{
	return secret_equal(a, b);
}

/* An agent name a key may set in X-Agent: like a config section name. */
static int
valid_agent(const char *s)
{
	size_t	 n = 0;

	for (; *s != '\0'; s++, n++)
		if (!isalnum((unsigned char)*s) && strchr("-_.:@", *s) == NULL)
			return 0;
	return n > 0 && n < KEY_AGENT_MAX;
}

void
account_resolve(const struct config *cfg, struct principal *p)
{
	const struct agent_cfg	*ag = config_agent(cfg, p->agent);
	const struct tier_cfg	*t = NULL;
	char			 name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	char			 tier[LOG_VALUE_SIZE(KEY_TIER_MAX)];

	if (p->key.tier[0] != '\0' &&
	    (t = config_tier(cfg, p->key.tier)) == NULL)
		log_warn("key %s: tier %s is not configured; using the "
		    "agent's", log_value(name, sizeof(name), p->key.name),
		    log_value(tier, sizeof(tier), p->key.tier));
	if (t == NULL && ag != NULL)
		t = ag->tier;
	if (t == NULL)
		t = cfg->gw.default_tier_cfg;
	p->tier_cfg = t;
	snprintf(p->tier, sizeof(p->tier), "%s", t != NULL ? t->name : "");
	if (ag != NULL && ag->daily_budget >= 0)
		p->agent_budget = ag->daily_budget;
	else
		p->agent_budget = t != NULL ? t->daily_budget : 0;
	p->monthly_budget = p->key.monthly_budget > 0 ? p->key.monthly_budget :
	    t != NULL ? t->monthly_budget : 0;
	p->rpm = p->key.rpm > 0 ? p->key.rpm : t != NULL ? t->rpm : 0;
	p->tpm = p->key.tpm > 0 ? p->key.tpm : t != NULL ? t->tpm : 0;
	/* Two limits, both kept: the key's own, and its tier's for all its keys. */
	p->max_concurrent = p->key.max_concurrent;
	p->tier_concurrent = t != NULL ? t->max_concurrent : 0;
}

int
account_authenticate(struct request *r, struct principal *p)
{
	const char	*key, *agent;
	struct store	*s = r->worker->store;
	char		 when[32];
	struct tm	 tm;
	time_t		 exp;
	int		 rc;

	memset(p, 0, sizeof(*p));
	if ((key = client_key(r)) == NULL)
		return http_error(r, 401, "invalid_request_error",
		    "missing_api_key", NULL, "You didn't provide an API key. "
		    "Send it as 'Authorization: Bearer KEY'.");
	if (r->cfg->gw.master_key != NULL &&
	    secret_equal(key, r->cfg->gw.master_key)) {
		p->master = 1;
		snprintf(p->key.name, sizeof(p->key.name), "master");
		agent = http_header_in(r, "X-Agent");
		snprintf(p->agent, sizeof(p->agent), "%s",
		    agent != NULL && valid_agent(agent) ? agent : "master");
		r->who = p;
		return 0;
	}
	if (strncmp(key, "sk-", 3) != 0 || strlen(key) != KEY_SECRET_LEN)
		return http_error(r, 401, "invalid_request_error",
		    "invalid_api_key", NULL, "Incorrect API key provided.");
	if (s == NULL)
		return http_error(r, 503, "service_unavailable_error",
		    "store_unavailable", NULL, "%s", r->cfg->gw.accounting ?
		    "The key store is unavailable; see the gateway's error log." :
		    "Accounting is off on this gateway: only the master key is "
		    "accepted.");
	rc = keys_authenticate(s, key, &p->key);
	if (rc == STORE_NOTFOUND)
		return http_error(r, 401, "invalid_request_error",
		    "invalid_api_key", NULL, "Incorrect API key provided.");
	if (rc != STORE_OK) {
		log_error("%s: key lookup: %s", r->id, store_error());
		return http_error(r, 503, "service_unavailable_error",
		    "store_unavailable", NULL, "The key store is unavailable; "
		    "see the gateway's error log.");
	}
	if (p->key.disabled)
		return http_error(r, 401, "invalid_request_error",
		    "invalid_api_key", NULL, "This API key has been disabled.");
	if (p->key.expires != 0 && p->key.expires <= r->wall.tv_sec) {
		exp = (time_t)p->key.expires;
		gmtime_r(&exp, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
		return http_error(r, 401, "invalid_request_error",
		    "invalid_api_key", NULL, "This API key expired on %s.",
		    when);
	}
	snprintf(p->agent, sizeof(p->agent), "%s",
	    p->key.agent[0] ? p->key.agent : p->key.name);
	/*
	 * A key allowed to name its agent names a configured [agent] (or its
	 * own): a made-up name would start a fresh budget each time.
	 */
	agent = http_header_in(r, "X-Agent");
	if (agent != NULL && p->key.agent_header && strcmp(agent,
	    p->agent) != 0) {
		if (!valid_agent(agent) || config_agent(r->cfg, agent) == NULL)
			return http_error(r, 400, "invalid_request_error",
			    "unknown_agent", NULL, "X-Agent: no [agent %.64s] "
			    "is configured on this gateway", agent);
		snprintf(p->agent, sizeof(p->agent), "%s", agent);
	}
	account_resolve(r->cfg, p);
	r->who = p;
	return 0;
}

/*
 * The caller's rules, asked of every candidate of its plan: the key's
 * model list (by name or by the identity a template gives), and a price
 * unless the gateway serves unpriced models free. The master key is the
 * operator's: no rules.
 */
/* The key's model list lets it use c, by name or by identity. */
static int
key_allows(const struct principal *p, const struct candidate *c)
{
	return p == NULL || p->master || keys_model_allowed(&p->key, c->name) ||
	    keys_model_allowed(&p->key, c->identity);
}

enum plan_skip
account_policy(const struct request *r, const struct candidate *c)
{
	if (r->who == NULL || r->who->master)
		return PLAN_SKIP_NONE;
	if (!key_allows(r->who, c))
		return PLAN_SKIP_NOT_ALLOWED;
	if (c->model == NULL && !r->cfg->gw.unpriced_free)
		return PLAN_SKIP_NOT_PRICED;
	return PLAN_SKIP_NONE;
}

static enum plan_skip
key_policy(void *ctx, const struct candidate *c)
{
	return account_policy(ctx, c);
}

/*
 * The answer when a plan has no candidate left, by why the first one went
 * (its message names that candidate: the model asked for, or the one it
 * would have been served by).
 */
static int
plan_refused(struct request *r, const struct plan *pl)
{
	switch (pl->skip) {
	case PLAN_SKIP_NOT_ALLOWED:
		return http_error(r, 403, "permission_error",
		    "model_not_allowed", "model", "%s", pl->why);
	case PLAN_SKIP_NOT_PRICED:
		return http_error(r, 400, "invalid_request_error",
		    "model_not_priced", "model", "%s Ask the operator to add "
		    "it to the price list.", pl->why);
	default:
		return http_error(r, 503, "service_unavailable_error",
		    "provider_unavailable", "model", "%s", pl->why);
	}
}

int
account_plan(struct request *r, const char *model, struct plan *pl)
{
	const struct task_cfg	*task = NULL;
	const struct tier_cfg	*tier = r->who ? r->who->tier_cfg : NULL;
	const char		*h, *asked;
	struct candidate	 c;

	if ((h = http_header_in(r, "X-Task")) != NULL &&
	    (task = config_task(r->cfg, h)) == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "unknown_task", NULL, "X-Task: no task '%.64s' is "
		    "configured", h);
	asked = task != NULL ? task->model : model;
	/*
	 * A model the key may not use is refused as asked, before any
	 * downgrade could serve something else; a price is asked of what
	 * would serve it (an unpriced name a tier downgrades is served).
	 */
	if (plan_lookup(r->cfg, asked, &c) == 0 && !key_allows(r->who, &c))
		return http_error(r, 403, "permission_error",
		    "model_not_allowed", "model", "This API key may not use "
		    "the model '%s'.", asked);
	switch (plan_resolve_routed(r->cfg, model, tier, task, key_policy, r,
	    pl)) {
	case PLAN_UNKNOWN_MODEL:
		return http_error(r, 404, "invalid_request_error",
		    "model_not_found", "model", "The model '%s' does not "
		    "exist or is not configured on this gateway", asked);
	case PLAN_UNAVAILABLE:
		return plan_refused(r, pl);
	default:
		break;
	}
	return 0;
}

void
account_served(struct request *r, const struct candidate *c, int attempts)
{
	if (c != NULL) {
		http_header(r, "X-Llmgate-Model", "%s", c->name);
		http_header(r, "X-Llmgate-Provider", "%s", c->provider->name);
		if (c->downgraded_from[0] != '\0')
			http_header(r, "X-Llmgate-Downgraded-From", "%s",
			    c->downgraded_from);
	}
	http_header(r, "X-Llmgate-Attempts", "%d", attempts);
}

/*
 * The dearest candidate's cost for the ask (its index in *which): its
 * prompt, the completion limit the gateway will send that candidate
 * times every choice, and every image. The prompt is priced at the dearer
 * of input and cache write (a request may write all of it to a prompt
 * cache: 1.25 x input at Anthropic); reading the cache is never dearer.
 */
static money_t
worst_case(const struct plan *pl, const struct admit_ask *ask, size_t *which)
{
	struct usage	 u;
	money_t		 worst = 0, c;
	size_t		 i;

	for (i = 0; i < pl->n; i++) {
		memset(&u, 0, sizeof(u));
		u.prompt = ask->prompt;
		if (pl->c[i].cache_write_price > pl->c[i].input_price)
			u.cache_write = u.prompt;
		u.completion = ask->choices * plan_max_tokens(&pl->c[i],
		    ask->client_max);
		c = usage_cost(&pl->c[i], &u);
		if (ask->images > 0 && pl->c[i].model != NULL)
			c += ask->images * pl->c[i].model->image_price;
		if (c > worst || i == 0) {
			worst = c;
			*which = i;
		}
	}
	return worst + ask->extra;
}

/* "key NAME agent AGENT" for a log line, each value quoted if it must be. */
static const char *
log_who(const struct principal *p, char *buf, size_t len)
{
	char	 name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	char	 agent[LOG_VALUE_SIZE(KEY_AGENT_MAX)];

	snprintf(buf, len, "key %s agent %s",
	    log_value(name, sizeof(name), p->key.name),
	    log_value(agent, sizeof(agent), p->agent));
	return buf;
}

/*
 * The members of an alert about p's request: who (the key's id, name and
 * prefix, never the key), the request, and detail; message says it in
 * words. The caller hands the object to alert_emit().
 */
static struct json_object *
alert_fields(const struct request *r, const struct principal *p,
    struct json_object *detail, const char *message)
{
	struct json_object	*o = json_object_new_object(), *k;
	char			 tp[TRACEPARENT_LEN + 1];

	if (o == NULL || (k = json_object_new_object()) == NULL) {
		json_object_put(o);
		json_object_put(detail);
		return NULL;
	}
	json_object_object_add(k, "id", json_object_new_int64(
	    (int64_t)p->key.id));
	json_object_object_add(k, "name", json_object_new_string(p->key.name));
	json_object_object_add(k, "prefix",
	    json_object_new_string(p->key.prefix));
	json_object_object_add(o, "key", k);
	json_object_object_add(o, "agent", json_object_new_string(p->agent));
	json_object_object_add(o, "tier", json_object_new_string(p->tier));
	json_object_object_add(o, "request_id", json_object_new_string(r->id));
	trace_header(&r->trace, tp, sizeof(tp));
	json_object_object_add(o, "traceparent", json_object_new_string(tp));
	json_object_object_add(o, "message", json_object_new_string(message));
	json_object_object_add(o, "detail", detail != NULL ? detail :
	    json_object_new_object());
	return o;
}

/* A budget's warning line crossed or its limit hit: the alert. */
static void
budget_alert(const struct request *r, const struct principal *p,
    const struct admission *a, enum alert_event e, const char *scope)
{
	struct json_object	*d;
	char			 subject[160], spent[32], budget[32], msg[600];

	if (!alert_wanted(e) || (d = json_object_new_object()) == NULL)
		return;
	money_format_usd(a->spent, spent, sizeof(spent));
	money_format_usd(a->budget, budget, sizeof(budget));
	json_object_object_add(d, "scope", json_object_new_string(scope));
	json_object_object_add(d, "spent_micro_usd",
	    json_object_new_int64(a->spent));
	json_object_object_add(d, "budget_micro_usd",
	    json_object_new_int64(a->budget));
	json_object_object_add(d, "spent_usd", json_object_new_string(spent));
	json_object_object_add(d, "budget_usd", json_object_new_string(budget));
	json_object_object_add(d, "percent", json_object_new_int64(
	    a->budget > 0 ? a->spent * 100 / a->budget : 100));
	json_object_object_add(d, "warn_percent",
	    json_object_new_int64(r->cfg->gw.budget_warn_percent));
	if (e == ALERT_BUDGET_EXCEEDED)
		json_object_object_add(d, "reason",
		    json_object_new_string(a->message));
	if (strncmp(scope, "agent", 5) == 0)
		snprintf(subject, sizeof(subject), "agent:%s:%s", p->agent,
		    scope);
	else
		snprintf(subject, sizeof(subject), "key:%" PRIu64 ":%s",
		    p->key.id, scope);
	snprintf(msg, sizeof(msg), "%s budget of key %s (agent %s): $%s of "
	    "$%s spent%s", scope, p->key.name, p->agent, spent, budget,
	    e == ALERT_BUDGET_EXCEEDED ? ": requests refused" : "");
	alert_emit(e, subject, alert_fields(r, p, d, msg));
}

static void
ratelimit_headers(struct request *r, const struct admission *a)
{
	if (a->limit_requests >= 0) {
		http_header(r, "x-ratelimit-limit-requests", "%ld",
		    a->limit_requests);
		http_header(r, "x-ratelimit-remaining-requests", "%ld",
		    a->remaining_requests < 0 ? 0 : a->remaining_requests);
		http_header(r, "x-ratelimit-reset-requests", "%lds", a->reset_s);
	}
	if (a->limit_tokens >= 0) {
		http_header(r, "x-ratelimit-limit-tokens", "%ld",
		    a->limit_tokens);
		http_header(r, "x-ratelimit-remaining-tokens", "%ld",
		    a->remaining_tokens < 0 ? 0 : a->remaining_tokens);
		http_header(r, "x-ratelimit-reset-tokens", "%lds", a->reset_s);
	}
}

int
account_admit(struct request *r, const struct plan *pl,
    const struct admit_ask *ask, struct account *acct)
{
	const struct principal	*p = r->who;
	struct admit_in		 in;
	struct admission	*a = &acct->adm;
	char			 spent[32], budget[32];
	char			 who[2 * LOG_VALUE_SIZE(KEY_NAME_MAX) + 16];
	size_t			 dearest = 0;
	int			 rc;

	memset(acct, 0, sizeof(*acct));
	acct->worst = worst_case(pl, ask, &dearest);
	if (p == NULL || p->master) {
		acct->admitted = 1;	/* the operator: no limits */
		return 0;
	}
	memset(&in, 0, sizeof(in));
	in.request_id = r->id;
	/* A template's names share the limits of the model they are. */
	in.model = pl->c[0].identity;
	if (pl->c[0].model != NULL) {
		in.model_rpm = pl->c[0].model->rpm;
		in.model_tpm = pl->c[0].model->tpm;
	}
	in.worst = acct->worst;
	in.priced = pl->n > 0 ? &pl->c[dearest] : NULL;
	/* A dead worker's request is billed this prompt (and its progress). */
	in.prompt = ask->prompt_est;
	in.time_us = (int64_t)r->wall.tv_sec * 1000000 + r->wall.tv_nsec / 1000;
	in.route = r->route;
	in.tokens = ask->prompt + ask->choices * plan_max_tokens(&pl->c[0],
	    ask->client_max);
	in.now = r->wall.tv_sec;
	rc = billing_admit(r->worker->store, r->cfg, p, &in, a);
	if (rc == STORE_READONLY && !p->key.prepaid && p->rpm == 0 &&
	    p->tpm == 0 && p->key.daily_budget == 0 && p->agent_budget == 0 &&
	    p->monthly_budget == 0 && in.model_rpm == 0 && in.model_tpm == 0 &&
	    p->max_concurrent == 0 && p->tier_concurrent == 0) {
		/*
		 * Nothing to enforce for this key: serve, and the settlement
		 * goes to the fallback file. A key with money limits is
		 * refused below: they cannot be kept without the store.
		 */
		log_error("%s: cannot reserve (%s): admitted without a "
		    "reservation", r->id, store_error());
		memset(a, 0, sizeof(*a));
		acct->admitted = 1;
		return 0;
	}
	if (rc != STORE_OK) {
		log_error("%s: admission: %s", r->id, store_error());
		return http_error(r, 503, "service_unavailable_error",
		    "store_unavailable", NULL, "The accounting store is "
		    "unavailable; see the gateway's error log.");
	}
	ratelimit_headers(r, a);
	if (a->warn) {
		money_format_usd(a->spent, spent, sizeof(spent));
		money_format_usd(a->budget, budget, sizeof(budget));
		http_header(r, "X-Llmgate-Budget-Warning", "%" PRId64 "%% of "
		    "the budget used ($%s of $%s)", a->budget > 0 ?
		    a->spent * 100 / a->budget : 100, spent, budget);
		log_warn("%s: budget warning: %s: $%s of $%s", r->id,
		    log_who(p, who, sizeof(who)), spent, budget);
		budget_alert(r, p, a, ALERT_BUDGET_WARNING, "budget");
	}
	switch (a->verdict) {
	case ADMIT_OK:
		acct->admitted = 1;
		return 0;
	case ADMIT_KEY_RPM:
	case ADMIT_KEY_TPM:
	case ADMIT_MODEL_RPM:
	case ADMIT_MODEL_TPM:
		http_header(r, "Retry-After", "%ld", a->retry_after);
		return http_error(r, 429, "rate_limit_error",
		    "rate_limit_exceeded", NULL, "%s", a->message);
	case ADMIT_KEY_BUDGET:
	case ADMIT_AGENT_BUDGET:
	case ADMIT_MONTHLY_BUDGET:
		http_header(r, "Retry-After", "%ld", a->retry_after);
		log_warn("%s: budget exhausted: %s: %s", r->id,
		    log_who(p, who, sizeof(who)), a->message);
		budget_alert(r, p, a, ALERT_BUDGET_EXCEEDED,
		    a->verdict == ADMIT_KEY_BUDGET ? "key_daily" :
		    a->verdict == ADMIT_AGENT_BUDGET ? "agent_daily" :
		    "key_monthly");
		return http_error(r, 429, "insufficient_quota",
		    "budget_exceeded", NULL, "%s", a->message);
	case ADMIT_KEY_GONE:
		return http_error(r, 401, "invalid_request_error",
		    "invalid_api_key", NULL, "%s", a->message);
	case ADMIT_BALANCE:
		return http_error(r, 402, "insufficient_quota",
		    "insufficient_balance", NULL, "%s", a->message);
	case ADMIT_KEY_CONCURRENT:
	case ADMIT_TIER_CONCURRENT:
		http_header(r, "Retry-After", "%ld", a->retry_after);
		return http_error(r, 429, "rate_limit_error",
		    "too_many_concurrent_requests", NULL, "%s", a->message);
	default:
		break;
	}
	return http_error(r, 503, "service_unavailable_error",
	    "store_unavailable", NULL, "The accounting store is unavailable.");
}

void
account_row(struct request *r, struct usage_row *row)
{
	const struct principal	*p = r->who;

	memset(row, 0, sizeof(*row));
	row->version = USAGE_VERSION;
	row->time_us = (int64_t)r->wall.tv_sec * 1000000 +
	    r->wall.tv_nsec / 1000;
	snprintf(row->request_id, sizeof(row->request_id), "%s", r->id);
	snprintf(row->route, sizeof(row->route), "%s",
	    r->route ? r->route : "");
	if (p != NULL) {
		row->key_id = p->key.id;
		snprintf(row->key_name, sizeof(row->key_name), "%s",
		    p->key.name);
		snprintf(row->agent, sizeof(row->agent), "%s", p->agent);
		snprintf(row->tier, sizeof(row->tier), "%s", p->tier);
		snprintf(row->key_prefix, sizeof(row->key_prefix), "%s",
		    p->key.prefix);
	}
	trace_header(&r->trace, row->traceparent, sizeof(row->traceparent));
	snprintf(row->trace_parent, sizeof(row->trace_parent), "%s",
	    r->trace.parent_id);
}

money_t
account_cost(const struct candidate *c, const struct usage *u,
    uint32_t *flags)
{
	if (c->model == NULL)
		*flags |= USAGE_UNPRICED;
	if (u->cost_known) {
		*flags |= USAGE_COST_REPORTED;
		return u->cost;
	}
	return usage_cost(c, u);
}

/* A prepaid key's balance after a settlement, under an alert's line. */
static void
balance_alert(const struct request *r, const struct usage_row *row)
{
	const struct principal	*p = r->who;
	struct balance_rec	 b;
	struct json_object	*d;
	money_t			 held = 0;
	char			 subject[64], bal[32], msg[300];

	if (p == NULL || p->master || !p->key.prepaid || row->cost <= 0 ||
	    !alert_wanted(ALERT_BALANCE_LOW) ||
	    billing_balance(r->worker->store, p->key.id, &b, &held) !=
	    STORE_OK || (d = json_object_new_object()) == NULL)
		return;
	money_format_usd(b.balance, bal, sizeof(bal));
	json_object_object_add(d, "balance_micro_usd",
	    json_object_new_int64(b.balance));
	json_object_object_add(d, "balance_usd", json_object_new_string(bal));
	json_object_object_add(d, "held_micro_usd", json_object_new_int64(held));
	snprintf(subject, sizeof(subject), "key:%" PRIu64 ":balance",
	    p->key.id);
	snprintf(msg, sizeof(msg), "prepaid balance of key %s is $%s",
	    p->key.name, bal);
	alert_balance_low(subject, alert_fields(r, p, d, msg), b.balance);
}

void
account_settle(struct request *r, struct account *acct,
    struct usage_row *row)
{
	if (acct->settled)
		return;
	acct->settled = 1;
	/*
	 * An upstream that ignored the limit it was sent (or a provider's
	 * own price) can cost more than was reserved: billed as it is,
	 * and flagged for llmgate-admin check.
	 */
	row->reserved = acct->worst;
	if (acct->worst > 0 && row->cost > acct->worst)
		row->flags |= USAGE_OVER_RESERVATION;
	row->latency_ms = (int32_t)http_elapsed_ms(r);
	if (row->status == 0)
		row->status = (uint16_t)r->status;
	row->client_aborted = r->client_gone != 0;
	usage_log(row);
	metrics_record(row);
	r->logged = 1;
	if (!r->cfg->gw.accounting)
		return;		/* the log line is the record */
	billing_settle(r->worker->store, r->cfg, r->who, acct->admitted ?
	    &acct->adm : NULL, row);
	balance_alert(r, row);
}

int
account_store_failed(struct request *r, const char *which, const char *what,
    int rc)
{
	if (what != NULL)
		log_warn("%s: %s: store rc=%d: %s", r->id, what, rc,
		    store_error());
	return http_error(r, 503, "server_error", "store_unavailable", NULL,
	    "The %s store is unavailable; try again later", which);
}

struct store *
account_need_store(struct request *r, const char *which)
{
	if (r->worker == NULL || r->worker->store == NULL) {
		account_store_failed(r, which, NULL, 0);
		return NULL;
	}
	return r->worker->store;
}
