/*
 * call.c: the one upstream-call loop. For each candidate of a plan (the
 * deployments of one model in the order of their weighted turn): may it
 * be tried now, the provider's pool key for this turn, build the
 * provider's request, one transfer through upstream.c, the route's
 * deliver, then judge: the same model again after a pause, once more at
 * once with fresh credentials after a 401 or with the next pool key after
 * a refused one, the model's context_fallback after a context-window
 * error, the next model, or the error back to the client.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "call.h"
#include "config.h"
#include "log.h"
#include "route.h"
#include "usage.h"
#include "validate.h"

const char *const call_outcome_names[CALL_OUTCOME__MAX] = {
	"success", "failure", "timeout", "client_error", "aborted",
	"key_refused",
};

/* What the loop does after one attempt. */
enum next {
	NEXT_DONE,		/* the client has its answer */
	NEXT_STOP,		/* the client went away: nobody to answer */
	NEXT_RETRY,		/* the same candidate again, after a pause */
	NEXT_REAUTH,		/* the same candidate at once: new credentials */
	NEXT_KEY,		/* the same candidate at once: the next pool key */
	NEXT_FALLBACK,		/* the next candidate */
	NEXT_FINAL,		/* answer the client with this error */
};

static uint64_t	turn_next(const struct config *, const char *, const char *);

void
call_init(struct call *c, struct request *r, const struct plan *plan,
    const struct call_ops *ops, void *ctx, size_t body_max)
{
	memset(c, 0, sizeof(*c));
	c->r = r;
	c->plan = plan;
	c->ops = ops;
	c->ctx = ctx;
	c->body_max = body_max;
	c->retry_after = -1;
}

/* Set the failure with an upstream_error of the gateway's own wording. */
static void
fail(struct call *c, int status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
fail(struct call *c, int status, const char *code, const char *fmt, ...)
{
	char	 msg[sizeof(c->err.message)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->status = status;
	provider_error_set(&c->err, "upstream_error", code, "%s", msg);
}

/* Does text contain word, ignoring case? */
static int
has_word(const char *text, const char *word)
{
	size_t	 n = strlen(word);

	for (; *text != '\0'; text++)
		if (strncasecmp(text, word, n) == 0)
			return 1;
	return 0;
}

/*
 * Does an upstream 4xx say the request is too long for the model's
 * context window? OpenAI and the compatible APIs: code
 * context_length_exceeded ("This model's maximum context length is...");
 * Anthropic: "prompt is too long: N tokens > M maximum"; Gemini: "The
 * input token count (N) exceeds the maximum number of tokens allowed".
 */
static int
context_error(long s, const struct provider_error *e)
{
	static const char *const words[] = {
		"context_length_exceeded", "context length", "context window",
		"prompt is too long", "input token count",
		"maximum number of tokens", "too many tokens",
	};
	size_t	 i;

	if (s != 400 && s != 413 && s != 422)
		return 0;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (has_word(e->code, words[i]) ||
		    has_word(e->message, words[i]))
			return 1;
	return 0;
}

/*
 * Does an upstream error say the gateway's key has no quota or credit
 * left (OpenAI 429 insufficient_quota, credit_balance_exhausted; Gemini
 * 429 "exceeded your current quota"; Anthropic billing_error)? A rate
 * limit that passes in seconds is not.
 */
static int
quota_error(long s, const struct provider_error *e)
{
	static const char *const words[] = {
		"insufficient_quota", "credit_balance", "billing_error",
		"billing_hard_limit", "exceeded your current quota",
		"credit balance is too low",
	};
	size_t	 i;

	if (s != 429 && s != 402 && s != 400 && s != 403)
		return 0;
	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (has_word(e->code, words[i]) ||
		    has_word(e->type, words[i]) ||
		    has_word(e->message, words[i]))
			return 1;
	return 0;
}

/* Is a candidate after c->cand a context_fallback? */
static int
context_left(const struct call *c)
{
	size_t	 i;

	for (i = c->idx + 1; i < c->plan->n; i++)
		if (c->plan->c[i].flags & CAND_ON_CONTEXT)
			return 1;
	return 0;
}

/*
 * The pool key of this attempt was refused: set it aside, and the next
 * key at once when one is left to try.
 */
static enum next
key_refused(struct call *c, long s)
{
	char	 why[64];

	snprintf(why, sizeof(why), "HTTP %ld", s);
	c->outcome = CALL_KEY_REFUSED;
	if (c->key.index >= 0 && c->key.index < 32)
		c->keys_tried |= 1u << c->key.index;
	provider_key_report(&c->key, KEY_REFUSED, why);
	return c->keys_tried != (c->cand->provider->nkeys >= 32 ? ~0u :
	    (1u << c->cand->provider->nkeys) - 1) ? NEXT_KEY : NEXT_FALLBACK;
}

/*
 * Judge a transfer that gave the client nothing. Upstream statuses in
 * [retry] on_status, 408, 429, timeouts and broken connections are
 * retried; 401/403 (the gateway's key refused: a 502 for the client, after
 * one re-authentication where the protocol has one), 404 (a model this
 * provider lacks), odd statuses and oversized answers move on; other 4xx
 * are the client's and go back as they are.
 */
static enum next
judge(struct call *c, const struct upstream_resp *resp)
{
	const struct config	*cfg = c->r->cfg;
	const char		*name = c->cand->provider->name;
	long			 s = resp->status;

	c->retry_after = resp->retry_after;
	c->outcome = CALL_FAILURE;
	switch (resp->result) {
	case UP_HTTP:
		/* Redacted: the text may quote the gateway's key. */
		provider_error_body(c->cand, s, resp->body.data, resp->body.len,
		    &c->err);
		/* Some providers say "bad key" or "retry later" in the body. */
		if (c->err.status >= 400 && c->err.status <= 599)
			s = c->err.status;
		if (c->retry_after < 0 && c->err.retry_after > 0)
			c->retry_after = c->err.retry_after;
		c->status = (int)s;
		if (s == 401 && !c->reauthed &&
		    c->pops->auth_failed != NULL &&
		    c->pops->auth_failed(c->cand->provider)) {
			/* Fresh credentials (an OAuth token): once more. */
			c->reauthed = 1;
			fail(c, 502, "upstream_auth_error", "provider '%s' "
			    "refused the gateway's credentials (HTTP %ld)",
			    name, s);
			return NEXT_REAUTH;
		}
		if (c->key.index >= 0 && quota_error(s, &c->err)) {
			log_debug("%s: provider %s said: %s", c->r->id, name,
			    c->err.message);
			fail(c, 502, "upstream_quota_exhausted", "provider '%s' "
			    "says the gateway's key has no quota left (HTTP "
			    "%ld)", name, s);
			return key_refused(c, s);
		}
		if (s == 401 || s == 403) {
			/* Not the client's fault: it gets the gateway's words. */
			log_debug("%s: provider %s said: %s", c->r->id, name,
			    c->err.message);
			fail(c, 502, "upstream_auth_error", "provider '%s' "
			    "refused the gateway's credentials (HTTP %ld)",
			    name, s);
			if (c->key.index >= 0)
				return key_refused(c, s);
			return NEXT_FALLBACK;
		}
		if (s < 400 || s > 599) {
			fail(c, 502, "bad_upstream_response", "provider '%s' "
			    "answered with unexpected HTTP %ld", name, s);
			return NEXT_FALLBACK;
		}
		if (config_retry_status(cfg, (int)s) || s == 408 || s == 429)
			return NEXT_RETRY;
		if (s == 404)
			return NEXT_FALLBACK;
		c->outcome = CALL_CLIENT_ERROR;
		if (context_error(s, &c->err) && context_left(c)) {
			log_info("%s: model %s via %s: context window "
			    "exceeded: to its context_fallback", c->r->id,
			    c->cand->name, name);
			c->context = 1;
			return NEXT_FALLBACK;
		}
		return NEXT_FINAL;
	case UP_CONNECT:
		fail(c, 502, "upstream_unreachable", "could not reach "
		    "provider '%s': %s", name, resp->error);
		return NEXT_RETRY;
	case UP_TIMEOUT:
		c->outcome = CALL_TIMEOUT;
		fail(c, 504, "upstream_timeout", "provider '%s' timed out: %s",
		    name, resp->error);
		return NEXT_RETRY;
	case UP_TOOBIG:
		fail(c, 502, "upstream_too_large", "provider '%s' sent a "
		    "response larger than max_upstream_body", name);
		return NEXT_FALLBACK;
	case UP_OK:
		/* A 2xx stream that ended before any event or [DONE]. */
		fail(c, 502, "upstream_broken", "provider '%s' ended the "
		    "stream early", name);
		return NEXT_RETRY;
	default:
		fail(c, 502, "upstream_broken", "connection to provider '%s' "
		    "failed: %s", name, resp->error);
		return NEXT_RETRY;
	}
}

/*
 * The request could not be built for c->cand. A refusal (this protocol
 * cannot say it) moves on and is the client's 400 only while no upstream
 * failed (no credentials counts): a later model's limits never hide an
 * earlier model's outage.
 */
static enum next
build_failed(struct call *c, int rc, const struct provider_error *e)
{
	const char	*name = c->cand->provider->name;

	c->retry_after = -1;
	if (rc == -2) {
		/* The provider's credentials cannot be had right now. */
		c->outcome = CALL_FAILURE;
		c->err = *e;
		if (c->err.message[0] == '\0')
			fail(c, 502, "upstream_auth_error", "provider '%s' did "
			    "not grant the gateway a token", name);
		c->status = 502;
		snprintf(c->err.type, sizeof(c->err.type), "upstream_error");
		snprintf(c->err.code, sizeof(c->err.code),
		    "upstream_auth_error");
		/* A retry would only meet the adapter's cached failure. */
		return NEXT_FALLBACK;
	}
	c->outcome = CALL_CLIENT_ERROR;
	if (e->message[0] == '\0') {
		fail(c, 500, "internal_error", "cannot build the request for "
		    "provider '%s'", name);
		return NEXT_FINAL;
	}
	if (!c->upstream_failed) {
		c->err = *e;
		c->status = 400;
	}
	return NEXT_FALLBACK;
}

/*
 * HOOK (outcome): the attempt against c->cand ended as c->outcome. The one
 * place where the circuit breaker records it: CALL_FAILURE and
 * CALL_TIMEOUT count against the deployment, CALL_SUCCESS for it, the
 * others neither. Its error text is the gateway's own words (the HTTP
 * status, the transport's error), never the upstream's body.
 */
static void
outcome(struct call *c, const struct upstream_resp *resp)
{
	enum breaker_outcome	 bo = BREAKER_NEUTRAL;
	char			 why[BREAKER_ERROR_MAX] = "";

	log_debug("%s: model %s via %s: %s", c->r->id, c->cand->name,
	    c->cand->provider->name, call_outcome_names[c->outcome]);
	switch (c->outcome) {
	case CALL_SUCCESS:
		bo = BREAKER_SUCCESS;
		break;
	case CALL_FAILURE:
	case CALL_TIMEOUT:
		bo = BREAKER_FAILURE;
		if (resp->result == UP_HTTP)
			snprintf(why, sizeof(why), "HTTP %ld", resp->status);
		else if (resp->result == UP_OK && resp->status != 0)
			snprintf(why, sizeof(why), "broken response");
		else
			snprintf(why, sizeof(why), "%.*s", (int)sizeof(why) - 1,
			    c->err.message);
		break;
	default:
		break;
	}
	c->brk_stop = breaker_record(&c->brk, bo, resp->first_byte_ms,
	    why[0] != '\0' ? why : NULL);
}

/* Every key of c->cand's pool is set aside or refused this request. */
static enum next
no_key(struct call *c)
{
	const struct provider_cfg	*p = c->cand->provider;

	c->outcome = CALL_KEY_REFUSED;
	c->retry_after = -1;
	log_warn("%s: model %s via %s: every API key of the provider is set "
	    "aside", c->r->id, c->cand->name, p->name);
	/* An earlier key's own refusal says more; else these words. */
	if (c->keys_tried == 0 || c->status == 0)
		fail(c, 502, "upstream_auth_error", "every API key of provider "
		    "'%s' was refused recently; the first is tried again in "
		    "%ld s", p->name, c->key.retry_after);
	return NEXT_FALLBACK;
}

/*
 * Every attempt carries the request's trace to the upstream with the
 * gateway's span as parent (a provider's own traceparent header from the
 * config stays as it is). -1 when out of memory.
 */
static int
trace_to_upstream(struct call *c, struct provider_call *pc)
{
	struct curl_slist	*n;
	char			 h[TRACEPARENT_LEN + 16];
	size_t			 i;

	for (i = 0; i < c->cand->provider->headers.n; i++)
		if (strncasecmp(c->cand->provider->headers.v[i], "traceparent:",
		    12) == 0)
			return 0;
	memcpy(h, "traceparent: ", 13);
	trace_header(&c->r->trace, h + 13, sizeof(h) - 13);
	if (h[13] == '\0')
		return 0;
	if ((n = curl_slist_append(pc->headers, h)) == NULL)
		return -1;
	pc->headers = n;
	return 0;
}

/*
 * One attempt against c->cand: build, transfer, deliver, and when nothing
 * reached the client, judge.
 */
static enum next
attempt(struct call *c)
{
	struct provider_call	 pc;
	struct upstream_req	 req;
	struct upstream_resp	 resp;
	struct provider_error	 e;
	enum next		 next;
	int			 rc;

	provider_call_init(&pc, c->body_max);
	upstream_resp_init(&resp, (size_t)c->r->cfg->gw.max_upstream_body);
	memset(&e, 0, sizeof(e));
	if (provider_key_pick(c->r->cfg, c->cand->provider, c->keys_tried,
	    provider_key_pool(c->cand->provider) ? turn_next(c->r->cfg,
	    c->cand->provider->name, PROVIDER_KEY_SLOT) : 0, &c->key) == -1) {
		next = no_key(c);
		goto out;
	}
	pc.api_key = provider_key_secret(&c->key);
	if ((rc = c->ops->build(c, c->cand, c->pops, &pc, &e)) != 0) {
		next = build_failed(c, rc, &e);
		goto out;
	}
	if (trace_to_upstream(c, &pc) == -1) {
		next = build_failed(c, -1, &e);
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.url = pc.url.data;
	req.headers = pc.headers;
	req.body = pc.body.data;
	req.body_len = pc.body.len;
	req.provider = c->cand->provider;
	req.max_body = (size_t)c->r->cfg->gw.max_upstream_body;
	if (c->ops->prepare != NULL)
		c->ops->prepare(c, &req);
	++c->attempts;
	if (!c->quiet)
		c->r->attempts = c->attempts;
	upstream_perform(c->r->worker->curl, &req, &resp);

	memset(&e, 0, sizeof(e));
	switch (c->ops->deliver(c, &resp, &e)) {
	case CALL_SENT:
		c->outcome = CALL_SUCCESS;
		next = NEXT_DONE;
		break;
	case CALL_SENT_BROKEN:
		c->outcome = resp.result == UP_TIMEOUT ? CALL_TIMEOUT :
		    CALL_FAILURE;
		next = NEXT_DONE;
		break;
	case CALL_GONE:
		c->outcome = CALL_ABORTED;
		next = NEXT_STOP;
		break;
	case CALL_MALFORMED:
		c->outcome = CALL_FAILURE;
		c->err = e;
		c->status = 502;
		c->retry_after = -1;
		next = NEXT_RETRY;
		break;
	default:
		next = c->r->client_gone ? NEXT_STOP : judge(c, &resp);
		if (next == NEXT_STOP)
			c->outcome = CALL_ABORTED;
		break;
	}
out:
	outcome(c, &resp);
	/* Refused keys reported themselves; a success vouches for its key. */
	provider_key_report(&c->key, c->outcome == CALL_SUCCESS ? KEY_OK :
	    KEY_NEUTRAL, NULL);
	upstream_resp_free(&resp);
	provider_call_free(&pc);
	return next;
}

/*
 * HOOK (admission): may the plan's candidate i be tried now? The one place
 * where a circuit breaker (breaker_admit(provider, upstream model)) skips
 * a deployment at once, with no retries and no timeouts spent on it (the
 * order of several deployments of one model is spread()'s).
 * Returns the candidate to try, or NULL to go on to the next.
 */
static const struct candidate *
admit(struct call *c, size_t i)
{
	const struct candidate	*cand = &c->plan->c[i];

	if (provider_ops_for(cand->provider->type) == NULL) {
		/* provider_check leaves such providers out of every plan. */
		log_warn("%s: provider %s has no protocol in this build",
		    c->r->id, cand->provider->name);
		return NULL;
	}
	c->brk_stop = 0;
	if (breaker_admit(c->r->cfg, cand, &c->brk) == BREAKER_SKIP) {
		log_info("%s: model %s via %s: circuit open, skipped",
		    c->r->id, cand->name, cand->provider->name);
		/* The client's answer only while nothing was tried. */
		if (c->attempts == 0)
			breaker_refusal(&c->brk, &c->err, &c->status,
			    &c->retry_after);
		return NULL;
	}
	return cand;
}

/*
 * Several deployments of one model: the turn of each request comes from
 * a counter per model that every process shares (DATA_DIR/deployments,
 * one page of counters that processes add to atomically), so that the
 * spread is exact whichever process serves: over any sum-of-weights
 * consecutive turns every deployment gets exactly its weight, in the
 * order of a smooth weighted round robin (3:1 is a a b a, not a a a b).
 * Without the file (data_dir not writable) each process counts alone
 * from a random start.
 */
#define TURN_FILE	"deployments"
#define TURN_SLOTS	512
#define TURN_SIZE	(TURN_SLOTS * sizeof(uint64_t))

static pthread_mutex_t	 turns_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t		*turns;		/* the shared page, or NULL */
static int		 turns_failed;	/* not to be had: count alone */
static uint64_t		 local_turns[TURN_SLOTS];
static uint64_t		 local_start;

/* Map DATA_DIR/deployments once; NULL when it cannot be had. */
static uint64_t *
turn_page(const struct config *cfg)
{
	uint64_t	*t = __atomic_load_n(&turns, __ATOMIC_ACQUIRE);
	char		 path[4096], err[4200];
	void		*m;
	int		 fd = -1;

	if (t != NULL || __atomic_load_n(&turns_failed, __ATOMIC_RELAXED))
		return t;
	pthread_mutex_lock(&turns_mu);
	if (turns != NULL || turns_failed)
		goto out;
	if (snprintf(path, sizeof(path), "%s/%s", cfg->gw.data_dir,
	    TURN_FILE) >= (int)sizeof(path) ||
	    (fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660)) == -1) {
		log_warn("deployments: cannot open %s: %s; each process "
		    "spreads requests alone", path, strerror(errno));
		goto fail;
	}
	if ((m = shared_file_map(fd, path, TURN_SIZE, err, sizeof(err))) ==
	    MAP_FAILED) {
		log_warn("deployments: %s; each process spreads requests "
		    "alone", err);
		goto fail;
	}
	__atomic_store_n(&turns, (uint64_t *)m, __ATOMIC_RELEASE);
	goto out;
fail:
	local_start = (uint64_t)random();
	__atomic_store_n(&turns_failed, 1, __ATOMIC_RELAXED);
out:
	if (fd != -1)
		close(fd);
	pthread_mutex_unlock(&turns_mu);
	return turns;
}

/*
 * The next turn of name (a model's, or a provider's key pool with the
 * prefix PROVIDER_KEY_SLOT), counted by every process.
 */
static uint64_t
turn_next(const struct config *cfg, const char *name, const char *prefix)
{
	uint64_t	*page = turn_page(cfg), h = 1469598103934665603ULL;
	const char	*s;

	for (s = prefix; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 1099511628211ULL;
	if (page != NULL)
		return __atomic_fetch_add(&page[h % TURN_SLOTS], 1,
		    __ATOMIC_RELAXED);
	return local_start + __atomic_fetch_add(&local_turns[h % TURN_SLOTS], 1,
	    __ATOMIC_RELAXED);
}

/*
 * The member a smooth weighted round robin over weights w[0..n) picks at
 * position pos of its cycle (pos < the sum of weights).
 */
size_t
call_swrr(const long *w, size_t n, uint64_t pos)
{
	long	 cur[PLAN_MAX] = { 0 }, total = 0;
	size_t	 i, best = 0;
	uint64_t k;

	for (i = 0; i < n; i++)
		total += w[i];
	for (k = 0; k <= pos; k++) {
		best = 0;
		for (i = 0; i < n; i++) {
			cur[i] += w[i];
			if (cur[i] > cur[best])
				best = i;
		}
		cur[best] -= total;
	}
	return best;
}

/*
 * The plan's candidates from i in the order to try them, into order;
 * returns how many (a group of deployments, else 1). A group's member for
 * this turn comes first, then the others by weight, heaviest first (a
 * deployment whose breaker is open is skipped in admit(): its turn goes
 * to the next in line).
 */
static size_t
spread(struct call *c, size_t i, size_t *order)
{
	const struct candidate	*k = &c->plan->c[i];
	long			 w[PLAN_MAX], total = 0;
	size_t			 n = k->group_n, j, m, pick;
	uint64_t		 t;

	order[0] = i;
	if (n < 2 || k->group != i || i + n > c->plan->n)
		return 1;
	for (j = 0; j < n; j++)
		total += w[j] = c->plan->c[i + j].weight;
	t = turn_next(c->r->cfg, k->name, "");
	pick = call_swrr(w, n, t % (uint64_t)total);
	order[0] = i + pick;
	m = 1;
	for (j = 0; j < n; j++)
		if (j != pick)
			order[m++] = i + j;
	/* Insertion sort of the rest by weight, stable. */
	for (j = 2; j < n; j++) {
		size_t	 v = order[j], h = j;

		while (h > 1 && c->plan->c[order[h - 1]].weight <
		    c->plan->c[v].weight) {
			order[h] = order[h - 1];
			h--;
		}
		order[h] = v;
	}
	log_debug("%s: model %s: turn %llu: deployment %s/%s", c->r->id,
	    k->name, (unsigned long long)t,
	    c->plan->c[order[0]].provider->name, c->plan->c[order[0]].upstream);
	return n;
}

/* Before a retry: Retry-After if given, else a doubling backoff, jittered. */
static void
pause_before(const struct retry_cfg *rc, int attempt, long retry_after)
{
	struct timespec	 ts;
	long		 ms = rc->backoff_ms;

	if (retry_after >= 0)
		ms = retry_after * 1000;
	else {
		for (; attempt > 1 && ms < rc->backoff_max_ms; attempt--)
			ms *= 2;
		if (ms > rc->backoff_max_ms)
			ms = rc->backoff_max_ms;
		/* Equal jitter: half fixed, half random. */
		if (ms > 1)
			ms = ms / 2 + random() % (ms / 2 + 1);
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static int
answer_error(struct call *c)
{
	struct provider_error	*e = &c->err;

	if (c->quiet)
		return c->status ? c->status : 502;
	account_served(c->r, c->cand, c->attempts);
	if (c->retry_after >= 0 && (c->status == 429 || c->status == 503))
		http_header(c->r, "Retry-After", "%ld", c->retry_after);
	return http_error(c->r, c->status ? c->status : 502,
	    e->type[0] ? e->type : "upstream_error",
	    e->code[0] ? e->code : NULL, e->param[0] ? e->param : NULL,
	    "%s", e->message[0] ? e->message : "upstream failed");
}

/* A context_fallback serves only after a context error, the others before. */
static int
not_now(const struct call *c, size_t i)
{
	unsigned	 f = c->plan->c[i].flags;

	return c->context ? !(f & CAND_ON_CONTEXT) :
	    (f & CAND_CONTEXT_ONLY) != 0;
}

/*
 * Candidate i with its retries. Returns 1 when the loop ends with *status
 * (the client has its answer, left, or gets this error now); 0 to go on.
 */
static int
try_candidate(struct call *c, size_t i, int *status)
{
	const struct retry_cfg	*rc = &c->r->cfg->retry;
	const struct candidate	*cand;
	enum next		 next;
	int			 a;

	if (not_now(c, i) || (cand = admit(c, i)) == NULL)
		return 0;
	c->cand = cand;
	c->idx = i;
	c->pops = provider_ops_for(c->cand->provider->type);
	c->reauthed = 0;
	c->keys_tried = 0;
	for (a = 1; a <= rc->attempts; a++) {
		next = attempt(c);
		if (c->outcome == CALL_FAILURE || c->outcome == CALL_TIMEOUT ||
		    c->outcome == CALL_KEY_REFUSED)
			c->upstream_failed = 1;
		if (next == NEXT_DONE || next == NEXT_STOP) {
			*status = c->quiet ? (next == NEXT_DONE ? 200 : 0) :
			    c->r->status;
			return 1;
		}
		log_warn("%s: model %s via %s attempt %d: %s (%d)", c->r->id,
		    c->cand->name, c->cand->provider->name, a, c->err.message,
		    c->status);
		if (next == NEXT_REAUTH || next == NEXT_KEY) {
			/* Not the upstream's failure: no try used up. */
			a--;
			continue;
		}
		if (next == NEXT_FINAL) {
			*status = answer_error(c);
			return 1;
		}
		if (next == NEXT_FALLBACK || c->brk_stop ||
		    a == rc->attempts || c->retry_after > rc->retry_after_max)
			break;
		pause_before(rc, a, c->retry_after);
	}
	return 0;
}

int
call_run(struct call *c)
{
	size_t	 order[PLAN_MAX], n, i, j;
	int	 status;

	for (i = 0; i < c->plan->n; i += n) {
		if (not_now(c, i)) {	/* no turn taken for it */
			n = c->plan->c[i].group == i &&
			    c->plan->c[i].group_n > 1 ? c->plan->c[i].group_n : 1;
			continue;
		}
		n = spread(c, i, order);
		for (j = 0; j < n; j++)
			if (try_candidate(c, order[j], &status))
				return status;
	}
	return answer_error(c);
}

/* call_ops.build of a JSON route. */
static int
jcall_build(struct call *c, const struct candidate *cand,
    const struct provider_ops *p, struct provider_call *pc,
    struct provider_error *e)
{
	struct jcall	*jc = c->ctx;

	return jc->ops->build(jc->ctx, cand, p, pc, e);
}

/* call_ops.deliver of a JSON route: the reply, or the body as it came. */
static enum call_delivery
jcall_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	struct jcall		*jc = c->ctx;
	struct request		*r = c->r;
	struct json_object	*out = NULL;

	if (resp->result != UP_OK)
		return CALL_UNSENT;
	if (jc->ops->reply(jc->ctx, c->cand, resp->body.data, resp->body.len,
	    &out, e) == -1) {
		provider_error_redact(e, c->cand->provider);
		return CALL_MALFORMED;
	}
	account_served(r, c->cand, c->attempts);
	snprintf(r->served, sizeof(r->served), "%s", c->cand->name);
	if (out != NULL)
		http_send_json(r, 200, out);
	else
		http_send_raw_json(r, 200, resp->body.data, resp->body.len);
	json_object_put(out);
	return CALL_SENT;
}

static const struct call_ops jcall_ops = {
	.build = jcall_build,
	.deliver = jcall_deliver,
};

int
jcall_run(struct jcall *jc, const char *model)
{
	struct request		*r = jc->r;
	struct admit_ask	 ask;
	int			 rc;

	memset(&ask, 0, sizeof(ask));
	call_init(&jc->call, r, &jc->plan, &jcall_ops, jc, jc->body_max);
	if (!validate_model_name(model))
		return http_error(r, 400, "invalid_request_error",
		    "invalid_value", "model", "'model' may hold only letters, "
		    "digits and . _ - : / @ +");
	if (jc->req != NULL && (rc = policy_request(r, jc->proute, jc->req,
	    &jc->guard)) != 0) {
		jc->guarded = 1;
		return rc;
	}
	if ((rc = account_plan(r, model, &jc->plan)) != 0)
		return rc;
	if ((rc = policy_plan(r, &jc->guard, &jc->plan)) != 0) {
		jc->guarded = 1;
		return rc;
	}
	ask.prompt = jc->prompt_est;
	ask.prompt_est = (jc->prompt_est + 3) / 4;	/* four bytes a token */
	ask.images = jc->images;
	if ((rc = account_admit(r, &jc->plan, &ask, &jc->acct)) != 0) {
		jc->refused = 1;
		return rc;
	}
	return call_run(&jc->call);
}

void
jcall_record(struct jcall *jc, const char *model, const struct usage *tokens,
    money_t cost)
{
	struct usage_row	 u;
	struct request		*r = jc->r;
	const struct candidate	*c = jc->call.cand;
	int			 served = r->served[0] != '\0';

	if (!jc->guarded && (jc->plan.n == 0 || (!jc->acct.admitted &&
	    !jc->refused))) {
		guard_free(&jc->guard);
		return;
	}
	account_row(r, &u);
	snprintf(u.requested, sizeof(u.requested), "%s", model);
	snprintf(u.served, sizeof(u.served), "%s", r->served);
	if (served && c != NULL)
		snprintf(u.provider, sizeof(u.provider), "%s",
		    c->provider->name);
	if (served && tokens != NULL) {
		u.prompt = tokens->prompt;
		u.completion = tokens->completion;
		u.cached = tokens->cached;
		u.cache_write = usage_cache_write(tokens->cache_write);
		u.estimated = !tokens->known;
	}
	u.cost = served ? cost : 0;
	if (served)
		u.flags = jc->flags;
	u.status = (uint16_t)r->status;
	u.attempts = (uint16_t)jc->call.attempts;
	policy_row(&jc->guard, &u);
	account_settle(r, &jc->acct, &u);
	guard_free(&jc->guard);
}
