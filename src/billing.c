/*
 * billing.c: budgets, rate limits, prepaid balances and the ledger.
 * A request is admitted in one short transaction that checks every limit
 * against what is spent plus what requests in flight have reserved, and
 * reserves its own worst case; it is settled in another that writes the
 * usage row, debits the ledger, counts the spend and drops the
 * reservation. A reservation left by a dead process stops counting at its
 * expiry and is deleted by the next admission that meets it.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "billing.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "usage.h"

#define SCOPE_MAX	(2 + KEY_AGENT_MAX + 256)
#define DAY_S		86400

const char *const ledger_kind_names[LEDGER__MAX] = {
	"debit", "topup", "adjust",
};

time_t
billing_day(time_t t)
{
	return t - t % DAY_S;
}

time_t
billing_month(time_t t)
{
	struct tm	 tm;

	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	return timegm(&tm);
}

/* The start of the next UTC month. */
static time_t
next_month(time_t t)
{
	struct tm	 tm;

	gmtime_r(&t, &tm);
	tm.tm_mday = 1;
	tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
	tm.tm_mon++;
	return timegm(&tm);
}

/* Scope names: "k:ID" for a key, "a:NAME" for an agent, "m:NAME" for a model. */
static size_t
scope_key(char *out, size_t cap, char kind, uint64_t id, const char *name)
{
	int	 n;

	if (name != NULL)
		n = snprintf(out, cap, "%c:%s", kind, name);
	else
		n = snprintf(out, cap, "%c:%" PRIu64, kind, id);
	if (n < 0 || (size_t)n >= cap)
		n = (int)cap - 1;
	return (size_t)n + 1;		/* the NUL separates the suffix */
}

/* scope, NUL, suffix */
static size_t
scoped(unsigned char *out, const char *scope, size_t slen,
    const unsigned char *suffix, size_t sufflen)
{
	memcpy(out, scope, slen);
	memcpy(out + slen, suffix, sufflen);
	return slen + sufflen;
}

/* Reservations of a scope that still count at now; expired ones go. */
struct held {
	time_t		 now;
	int		 prune;
	money_t		 amount;
	int64_t		 tokens;
};

static int
sum_held(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct held		*h = arg;
	struct reserve_rec	 rec;

	(void)k;
	(void)klen;
	if (store_rec(v, vlen, &rec, sizeof(rec)) == -1)
		return STORE_ERROR;
	if (rec.expires <= h->now) {
		if (h->prune)
			log_warn("billing: reservation %s of %" PRId64
			    " micro-USD expired unsettled", rec.request_id,
			    rec.amount);
		return h->prune ? STORE_SCAN_DELETE : 0;
	}
	h->amount += rec.amount;
	h->tokens += rec.tokens;
	return 0;
}

static int
held(struct store_txn *t, const char *scope, size_t slen, time_t now,
    int prune, money_t *out)
{
	struct held	 h = { now, prune, 0, 0 };
	int		 rc;

	rc = store_scan(t, SDB_RESERVE, scope, slen, NULL, 0, 0, sum_held, &h);
	*out = h.amount;
	return rc;
}

/* A fixed record, or a zeroed one of this version when there is none yet. */
static int
get_or_zero(struct store_txn *t, enum store_db db, const void *k, size_t klen,
    void *rec, size_t size, int flags)
{
	int	 rc;

	rc = store_get_rec(t, db, k, klen, rec, size, flags);
	if (rc == STORE_NOTFOUND) {
		memset(rec, 0, size);
		*(uint8_t *)rec = STORE_VERSION;
		return STORE_OK;
	}
	return rc;
}

/* Spend of a scope on one UTC day; zero when nothing was spent. */
static int
get_spend(struct store_txn *t, const char *scope, size_t slen, time_t day,
    struct spend_rec *out, int flags)
{
	unsigned char	 k[SCOPE_MAX + 4], d[4];

	store_be32(d, (uint32_t)(day / DAY_S));
	return get_or_zero(t, SDB_SPEND, k, scoped(k, scope, slen, d, 4), out,
	    sizeof(*out), flags);
}

struct month {
	money_t	 spent;
};

static int
sum_month(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct month		*m = arg;
	struct spend_rec	 rec;

	(void)k;
	(void)klen;
	if (store_rec(v, vlen, &rec, sizeof(rec)) == -1)
		return STORE_ERROR;
	m->spent += rec.spent;
	return 0;
}

static int
month_spend(struct store_txn *t, const char *scope, size_t slen, time_t now,
    money_t *out)
{
	unsigned char	 from[SCOPE_MAX + 4], d[4];
	struct month	 m = { 0 };
	int		 rc;

	store_be32(d, (uint32_t)(billing_month(now) / DAY_S));
	rc = store_scan(t, SDB_SPEND, scope, slen, from,
	    scoped(from, scope, slen, d, 4), 0, sum_month, &m);
	*out = m.spent;
	return rc;
}

static int
get_balance(struct store_txn *t, uint64_t key_id, struct balance_rec *out,
    int flags)
{
	unsigned char	 k[8];

	store_be64(k, key_id);
	return get_or_zero(t, SDB_BALANCE, k, 8, out, sizeof(*out), flags);
}

static int
put_balance(struct store_txn *t, uint64_t key_id, const struct balance_rec *b)
{
	unsigned char	 k[8];

	store_be64(k, key_id);
	return store_put(t, SDB_BALANCE, k, 8, b, sizeof(*b));
}

/* A rate window of a scope; a new minute starts from zero. */
static int
get_rate(struct store_txn *t, const char *scope, size_t slen, int64_t minute,
    struct rate_rec *out)
{
	int	 rc;

	rc = get_or_zero(t, SDB_RATE, scope, slen, out, sizeof(*out),
	    STORE_RMW);
	if (rc == STORE_OK && out->minute != minute) {
		memset(out, 0, sizeof(*out));
		out->version = STORE_VERSION;
		out->minute = minute;
	}
	return rc;
}

struct admit_ctx {
	const struct config		*cfg;
	const struct principal		*p;
	const struct admit_in		*in;
	struct admission		*adm;
	uint64_t			 res_id;
};

static void
refuse(struct admission *a, enum admit_verdict v, long retry_after,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void
refuse(struct admission *a, enum admit_verdict v, long retry_after,
    const char *fmt, ...)
{
	va_list	 ap;

	a->verdict = v;
	a->retry_after = retry_after;
	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
}

/* Check a daily or monthly budget: spent and held plus worst must fit. */
static int
over_budget(struct admission *a, const struct config *cfg, money_t budget,
    money_t spent, money_t worst)
{
	if (budget <= 0)
		return 0;
	if (!a->warn && spent * 100 >= budget * cfg->gw.budget_warn_percent) {
		/* The first budget past the warning line is reported. */
		a->warn = 1;
		a->budget = budget;
		a->spent = spent;
	}
	if (spent + worst > budget) {
		a->budget = budget;
		a->spent = spent;
		return 1;
	}
	return 0;
}

static void
usd(money_t m, char *buf, size_t len)
{
	money_format_usd(m, buf, len);
}

/* The admission transaction: read every limit, decide, then write. */
static int
admit_txn(struct store_txn *t, void *arg)
{
	struct admit_ctx	*c = arg;
	const struct principal	*p = c->p;
	const struct admit_in	*in = c->in;
	struct admission	*a = c->adm;
	struct rate_rec		 krate, mrate;
	struct spend_rec	 sp;
	struct balance_rec	 bal;
	struct reserve_rec	 res;
	char			 ks[SCOPE_MAX], as[SCOPE_MAX], ms[SCOPE_MAX];
	char			 b1[32], b2[32], b3[32];
	unsigned char		 rk[SCOPE_MAX + 8], id[8];
	size_t			 kl, al, ml;
	money_t			 kheld, aheld, spent;
	int64_t			 minute = (int64_t)in->now / 60;
	long			 reset = 60 - (long)(in->now % 60);
	int			 rc;

	memset(a, 0, sizeof(*a));
	a->verdict = ADMIT_OK;
	a->day = billing_day(in->now);
	a->limit_requests = a->remaining_requests = -1;
	a->limit_tokens = a->remaining_tokens = -1;
	a->reset_s = reset;
	kl = scope_key(ks, sizeof(ks), 'k', p->key.id, NULL);
	al = scope_key(as, sizeof(as), 'a', 0, p->agent);
	ml = scope_key(ms, sizeof(ms), 'm', 0, in->model);

	/* Rate limits: per key, then per model; fixed one-minute windows. */
	memset(&krate, 0, sizeof(krate));
	if ((p->rpm > 0 || p->tpm > 0) &&
	    (rc = get_rate(t, ks, kl, minute, &krate)) != STORE_OK)
		return rc;
	if (p->rpm > 0) {
		a->limit_requests = (long)p->rpm;
		a->remaining_requests = (long)(p->rpm - krate.requests - 1);
		if (krate.requests + 1 > p->rpm) {
			a->remaining_requests = 0;
			refuse(a, ADMIT_KEY_RPM, reset, "Rate limit reached for "
			    "this key: %" PRId64 " requests per minute. Retry "
			    "in %lds.", p->rpm, reset);
			return STORE_OK;
		}
	}
	if (p->tpm > 0) {
		a->limit_tokens = (long)p->tpm;
		a->remaining_tokens = (long)(p->tpm - krate.tokens - in->tokens);
		if (a->remaining_tokens < 0)
			a->remaining_tokens = 0;
		if (krate.tokens + in->tokens > p->tpm) {
			refuse(a, ADMIT_KEY_TPM, reset, "Rate limit reached for "
			    "this key: %" PRId64 " tokens per minute, this "
			    "request may use %" PRId64 ". Retry in %lds.",
			    p->tpm, in->tokens, reset);
			return STORE_OK;
		}
	}
	if (in->model_rpm > 0 || in->model_tpm > 0) {
		if ((rc = get_rate(t, ms, ml, minute, &mrate)) != STORE_OK)
			return rc;
		if (in->model_rpm > 0 && mrate.requests + 1 > in->model_rpm) {
			refuse(a, ADMIT_MODEL_RPM, reset, "Rate limit reached "
			    "for model %s: %ld requests per minute across the "
			    "gateway. Retry in %lds.", in->model, in->model_rpm,
			    reset);
			return STORE_OK;
		}
		if (in->model_tpm > 0 &&
		    mrate.tokens + in->tokens > in->model_tpm) {
			refuse(a, ADMIT_MODEL_TPM, reset, "Rate limit reached "
			    "for model %s: %ld tokens per minute across the "
			    "gateway. Retry in %lds.", in->model, in->model_tpm,
			    reset);
			return STORE_OK;
		}
	}

	/* Budgets and balance count what requests in flight hold. */
	if ((rc = held(t, ks, kl, in->now, 1, &kheld)) != STORE_OK ||
	    (rc = held(t, as, al, in->now, 1, &aheld)) != STORE_OK)
		return rc;
	/*
	 * The spend records are read for update: two admissions against one
	 * budget then run one after the other, never both on a stale sum.
	 */
	if (p->key.daily_budget > 0) {
		if ((rc = get_spend(t, ks, kl, a->day, &sp, STORE_RMW)) !=
		    STORE_OK)
			return rc;
		if (over_budget(a, c->cfg, p->key.daily_budget,
		    sp.spent + kheld, in->worst)) {
			usd(a->spent, b1, sizeof(b1));
			usd(a->budget, b2, sizeof(b2));
			usd(in->worst, b3, sizeof(b3));
			refuse(a, ADMIT_KEY_BUDGET, (long)(a->day + DAY_S -
			    in->now), "Daily budget of this key would be "
			    "exceeded: $%s of $%s used or held today (UTC), and "
			    "this request may cost up to $%s.", b1, b2, b3);
			return STORE_OK;
		}
	}
	if (p->agent_budget > 0) {
		if ((rc = get_spend(t, as, al, a->day, &sp, STORE_RMW)) !=
		    STORE_OK)
			return rc;
		if (over_budget(a, c->cfg, p->agent_budget, sp.spent + aheld,
		    in->worst)) {
			usd(a->spent, b1, sizeof(b1));
			usd(a->budget, b2, sizeof(b2));
			usd(in->worst, b3, sizeof(b3));
			refuse(a, ADMIT_AGENT_BUDGET, (long)(a->day + DAY_S -
			    in->now), "Daily budget of agent '%s' (tier %s) "
			    "would be exceeded: $%s of $%s used or held today "
			    "(UTC), and this request may cost up to $%s.",
			    p->agent, p->tier[0] ? p->tier : "-", b1, b2, b3);
			return STORE_OK;
		}
	}
	if (p->monthly_budget > 0) {
		if ((rc = month_spend(t, ks, kl, in->now, &spent)) != STORE_OK)
			return rc;
		if (over_budget(a, c->cfg, p->monthly_budget, spent + kheld,
		    in->worst)) {
			usd(a->spent, b1, sizeof(b1));
			usd(a->budget, b2, sizeof(b2));
			usd(in->worst, b3, sizeof(b3));
			refuse(a, ADMIT_MONTHLY_BUDGET, (long)(next_month(in->now)
			    - in->now), "Monthly budget of this key would be "
			    "exceeded: $%s of $%s used or held this month (UTC), "
			    "and this request may cost up to $%s.", b1, b2, b3);
			return STORE_OK;
		}
	}
	if (p->key.prepaid) {
		if ((rc = get_balance(t, p->key.id, &bal, STORE_RMW)) != STORE_OK)
			return rc;
		a->balance = bal.balance - kheld;
		if (in->worst > a->balance) {
			usd(a->balance < 0 ? 0 : a->balance, b1, sizeof(b1));
			usd(in->worst, b2, sizeof(b2));
			refuse(a, ADMIT_BALANCE, 0, "Insufficient balance: $%s "
			    "available, this request may cost up to $%s. Top "
			    "up the balance of this key.", b1, b2);
			return STORE_OK;
		}
	}

	/* Admitted: count it and hold the worst case. */
	krate.requests++;
	krate.tokens += in->tokens;
	if ((p->rpm > 0 || p->tpm > 0) &&
	    (rc = store_put(t, SDB_RATE, ks, kl, &krate, sizeof(krate))) !=
	    STORE_OK)
		return rc;
	if (in->model_rpm > 0 || in->model_tpm > 0) {
		mrate.requests++;
		mrate.tokens += in->tokens;
		if ((rc = store_put(t, SDB_RATE, ms, ml, &mrate,
		    sizeof(mrate))) != STORE_OK)
			return rc;
	}
	memset(&res, 0, sizeof(res));
	res.version = STORE_VERSION;
	res.id = c->res_id;
	res.amount = in->worst;
	res.tokens = in->tokens;
	res.expires = (int64_t)in->now + c->cfg->gw.reservation_ttl;
	snprintf(res.request_id, sizeof(res.request_id), "%s",
	    in->request_id ? in->request_id : "");
	store_be64(id, c->res_id);
	if ((rc = store_put(t, SDB_RESERVE, rk, scoped(rk, ks, kl, id, 8),
	    &res, sizeof(res))) != STORE_OK ||
	    (rc = store_put(t, SDB_RESERVE, rk, scoped(rk, as, al, id, 8),
	    &res, sizeof(res))) != STORE_OK)
		return rc;
	a->reservation = c->res_id;
	return STORE_OK;
}

int
billing_admit(struct store *s, const struct config *cfg,
    const struct principal *p, const struct admit_in *in,
    struct admission *adm)
{
	struct admit_ctx	 c = { cfg, p, in, adm, 0 };

	memset(adm, 0, sizeof(*adm));
	adm->limit_requests = adm->remaining_requests = -1;
	adm->limit_tokens = adm->remaining_tokens = -1;
	adm->day = billing_day(in->now);
	if (p->master)
		return STORE_OK;	/* the operator: no limits */
	if ((c.res_id = store_next_id(s)) == 0) {
		adm->verdict = ADMIT_STORE;
		return STORE_ERROR;
	}
	return store_txn(s, admit_txn, &c);
}

/* Add a settled request to the spend of a scope on its day. */
static int
add_spend(struct store_txn *t, const char *scope, size_t slen, time_t day,
    const struct usage_row *row)
{
	unsigned char		 k[SCOPE_MAX + 4], d[4];
	struct spend_rec	 sp;
	int			 rc;

	if ((rc = get_spend(t, scope, slen, day, &sp, STORE_RMW)) != STORE_OK)
		return rc;
	sp.spent += row->cost;
	sp.requests++;
	sp.prompt += row->prompt;
	sp.completion += row->completion;
	store_be32(d, (uint32_t)(day / DAY_S));
	return store_put(t, SDB_SPEND, k, scoped(k, scope, slen, d, 4), &sp,
	    sizeof(sp));
}

static int
put_ledger(struct store_txn *t, struct ledger_rec *l)
{
	unsigned char	 k[24];

	store_be64(k, l->key_id);
	store_be64(k + 8, (uint64_t)l->time_us);
	store_be64(k + 16, l->id);
	return store_put(t, SDB_LEDGER, k, sizeof(k), l, sizeof(*l));
}

static int
drop_reservation(struct store_txn *t, const char *scope, size_t slen,
    uint64_t res)
{
	unsigned char	 k[SCOPE_MAX + 8], id[8];
	int		 rc;

	store_be64(id, res);
	rc = store_del(t, SDB_RESERVE, k, scoped(k, scope, slen, id, 8));
	return rc == STORE_NOTFOUND ? STORE_OK : rc;
}

/*
 * The key's tokens-per-minute window counted the reservation's estimate
 * (prompt estimate plus max_tokens); while that minute lasts, count the
 * tokens really used instead.
 */
static int
true_up_tokens(struct store_txn *t, const char *scope, size_t slen,
    const struct usage_row *row)
{
	unsigned char		 k[SCOPE_MAX + 8], id[8];
	struct reserve_rec	 res;
	struct rate_rec		 rate;
	int64_t			 used = row->prompt + row->completion;
	int			 rc;

	store_be64(id, row->reservation);
	rc = store_get_rec(t, SDB_RESERVE, k, scoped(k, scope, slen, id, 8),
	    &res, sizeof(res), 0);
	if (rc != STORE_OK || res.tokens <= used)
		return rc == STORE_NOTFOUND ? STORE_OK : rc;
	rc = store_get_rec(t, SDB_RATE, scope, slen, &rate, sizeof(rate),
	    STORE_RMW);
	/* Only the window the estimate was counted in (admission's minute). */
	if (rc != STORE_OK || rate.minute != row->time_us / 60000000)
		return rc == STORE_NOTFOUND || rc == STORE_OK ? STORE_OK : rc;
	rate.tokens -= res.tokens - used;
	if (rate.tokens < 0)
		rate.tokens = 0;
	return store_put(t, SDB_RATE, scope, slen, &rate, sizeof(rate));
}

int
billing_apply(struct store_txn *t, const struct usage_row *row)
{
	struct balance_rec	 bal;
	struct ledger_rec	 l;
	char			 ks[SCOPE_MAX], as[SCOPE_MAX];
	size_t			 kl, al;
	time_t			 day = billing_day((time_t)(row->time_us /
				    1000000));
	int			 rc;

	if ((rc = usage_put(t, row)) != STORE_OK)
		return rc;
	kl = scope_key(ks, sizeof(ks), 'k', row->key_id, NULL);
	al = scope_key(as, sizeof(as), 'a', 0, row->agent);
	if (row->key_id != 0 && row->cost != 0) {
		if ((rc = get_balance(t, row->key_id, &bal, STORE_RMW)) !=
		    STORE_OK)
			return rc;
		bal.balance -= row->cost;
		bal.debited += row->cost;
		bal.updated = row->time_us / 1000000;
		if ((rc = put_balance(t, row->key_id, &bal)) != STORE_OK)
			return rc;
		memset(&l, 0, sizeof(l));
		l.version = STORE_VERSION;
		l.kind = LEDGER_DEBIT;
		l.id = row->id;
		l.key_id = row->key_id;
		l.time_us = row->time_us;
		l.amount = -row->cost;
		l.balance_after = bal.balance;
		l.usage_time_us = row->time_us;
		l.usage_id = row->id;
		snprintf(l.request_id, sizeof(l.request_id), "%s",
		    row->request_id);
		snprintf(l.reason, sizeof(l.reason), "%.15s %.100s",
		    row->route[0] ? row->route : "request",
		    row->served[0] ? row->served : row->requested);
		if ((rc = put_ledger(t, &l)) != STORE_OK)
			return rc;
	}
	if ((rc = add_spend(t, ks, kl, day, row)) != STORE_OK)
		return rc;
	if (row->key_id != 0 && row->agent[0] != '\0' &&
	    (rc = add_spend(t, as, al, day, row)) != STORE_OK)
		return rc;
	if (row->reservation != 0 &&
	    ((rc = true_up_tokens(t, ks, kl, row)) != STORE_OK ||
	    (rc = drop_reservation(t, ks, kl, row->reservation)) != STORE_OK ||
	    (rc = drop_reservation(t, as, al, row->reservation)) != STORE_OK))
		return rc;
	return STORE_OK;
}

static int
settle_txn(struct store_txn *t, void *arg)
{
	return billing_apply(t, arg);
}

int
billing_settle(struct store *s, const struct config *cfg,
    const struct principal *p, const struct admission *adm,
    struct usage_row *row)
{
	int	 rc = STORE_ERROR;

	(void)p;
	row->reservation = adm != NULL ? adm->reservation : 0;
	if (s != NULL) {
		if ((row->id = store_next_id(s)) != 0)
			rc = store_txn(s, settle_txn, row);
		if (rc == STORE_OK)
			return STORE_OK;
		log_error("%s: cannot record usage in the store: %s; writing "
		    "it to %s", row->request_id, store_error(),
		    cfg->gw.fallback_file);
	}
	if (row->id == 0)
		/* No sequence: time and pid keep the fallback row unique. */
		row->id = (uint64_t)getpid() << 32 | (uint64_t)(row->time_us &
		    0xffffffff);
	if (usage_fallback_write(cfg, row) == 0)
		return STORE_OK;
	return STORE_ERROR;
}

struct credit_ctx {
	uint64_t		 key_id;
	money_t			 amount;
	enum ledger_kind	 kind;
	const char		*reason;
	uint64_t		 id;
	struct ledger_rec	*out;
};

static int
credit_txn(struct store_txn *t, void *arg)
{
	struct credit_ctx	*c = arg;
	struct balance_rec	 bal;
	struct ledger_rec	 l;
	struct timespec		 now;
	int			 rc;

	clock_gettime(CLOCK_REALTIME, &now);
	if ((rc = get_balance(t, c->key_id, &bal, STORE_RMW)) != STORE_OK)
		return rc;
	bal.balance += c->amount;
	if (c->amount > 0)
		bal.credited += c->amount;
	else
		bal.debited -= c->amount;
	bal.updated = now.tv_sec;
	if ((rc = put_balance(t, c->key_id, &bal)) != STORE_OK)
		return rc;
	memset(&l, 0, sizeof(l));
	l.version = STORE_VERSION;
	l.kind = (uint8_t)c->kind;
	l.id = c->id;
	l.key_id = c->key_id;
	l.time_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	l.amount = c->amount;
	l.balance_after = bal.balance;
	snprintf(l.reason, sizeof(l.reason), "%s", c->reason ? c->reason : "");
	if ((rc = put_ledger(t, &l)) != STORE_OK)
		return rc;
	if (c->out != NULL)
		*c->out = l;
	return STORE_OK;
}

int
billing_credit(struct store *s, uint64_t key_id, money_t amount,
    enum ledger_kind kind, const char *reason, struct ledger_rec *out)
{
	struct credit_ctx	 c = { key_id, amount, kind, reason, 0, out };

	if (amount == 0 || kind == LEDGER_DEBIT ||
	    (kind == LEDGER_TOPUP && amount < 0))
		return STORE_ERROR;
	if ((c.id = store_next_id(s)) == 0)
		return STORE_ERROR;
	return store_txn(s, credit_txn, &c);
}

struct balance_ctx {
	uint64_t		 key_id;
	struct balance_rec	*bal;
	money_t			*held;
};

static int
balance_txn(struct store_txn *t, void *arg)
{
	struct balance_ctx	*c = arg;
	char			 ks[SCOPE_MAX];
	size_t			 kl;
	int			 rc;

	if ((rc = get_balance(t, c->key_id, c->bal, 0)) != STORE_OK)
		return rc;
	kl = scope_key(ks, sizeof(ks), 'k', c->key_id, NULL);
	return held(t, ks, kl, time(NULL), 0, c->held);
}

int
billing_balance(struct store *s, uint64_t key_id, struct balance_rec *bal,
    money_t *held_out)
{
	struct balance_ctx	 c = { key_id, bal, held_out };
	money_t			 dummy;

	if (held_out == NULL)
		c.held = &dummy;
	return store_read(s, balance_txn, &c);
}

#define LEDGER_BATCH	256

/*
 * Ledger pages are read in batches, each in its own read transaction, and
 * handed out after the commit: a deadlock retry re-reads the batch and the
 * callback never sees an entry twice.
 */
struct ledger_ctx {
	uint64_t		 key_id;
	long			 offset, limit;
	long			 seen, seen0;	/* entries passed, at batch start */
	unsigned char		 next[24];	/* resume after this key */
	unsigned char		 start[24];	/* next, when the batch began */
	int			 resume, more;
	size_t			 n;
	struct ledger_rec	 batch[LEDGER_BATCH];
};

static int
ledger_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct ledger_ctx	*c = arg;

	if (klen != 24)
		return STORE_ERROR;
	if (c->resume && memcmp(k, c->next, 24) == 0)
		return 0;	/* the last entry of the previous batch */
	if (c->limit >= 0 && c->seen >= c->offset + c->limit)
		return STORE_STOP;
	if (c->n == LEDGER_BATCH) {
		c->more = 1;
		return STORE_STOP;
	}
	if (c->seen++ < c->offset)
		return 0;
	if (store_rec(v, vlen, &c->batch[c->n], sizeof(c->batch[0])) == -1)
		return STORE_ERROR;
	memcpy(c->next, k, 24);
	c->n++;
	return 0;
}

static int
ledger_txn(struct store_txn *t, void *arg)
{
	struct ledger_ctx	*c = arg;
	unsigned char		 prefix[8], from[24];

	/* A deadlock retry starts the batch where it first began. */
	c->seen = c->seen0;
	c->n = 0;
	c->more = 0;
	memcpy(c->next, c->start, 24);
	store_be64(prefix, c->key_id);
	memcpy(from, c->next, 24);
	return store_scan(t, SDB_LEDGER, prefix, 8, c->resume ? from : NULL,
	    c->resume ? 24 : 0, STORE_REVERSE, ledger_one, c);
}

int
billing_ledger(struct store *s, uint64_t key_id, long offset, long limit,
    ledger_fn fn, void *arg)
{
	struct ledger_ctx	*c;
	size_t			 i;
	int			 rc = STORE_OK, stop = 0;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return STORE_ERROR;
	c->key_id = key_id;
	c->offset = offset;
	c->limit = limit;
	do {
		if ((rc = store_read(s, ledger_txn, c)) != STORE_OK)
			break;
		for (i = 0; i < c->n && !stop; i++)
			stop = fn(arg, &c->batch[i]) != 0;
		c->seen0 = c->seen;
		memcpy(c->start, c->next, 24);
		c->resume = 1;
	} while (c->more && !stop);
	free(c);
	return rc;
}

struct spend_ctx {
	const char		*scope;
	time_t			 day;
	struct spend_rec	*out;
};

static int
spend_txn(struct store_txn *t, void *arg)
{
	struct spend_ctx	*c = arg;

	return get_spend(t, c->scope, strlen(c->scope) + 1, c->day, c->out, 0);
}

int
billing_spend(struct store *s, const char *scope, time_t day,
    struct spend_rec *out)
{
	struct spend_ctx	 c = { scope, billing_day(day), out };

	return store_read(s, spend_txn, &c);
}

/* A fixed field of the record as a JSON string, or null when empty. */
static struct json_object *
field_or_null(const char *s, size_t size)
{
	if (s[0] == '\0')
		return NULL;
	return json_object_new_string_len(s, (int)strnlen(s, size));
}

struct json_object *
ledger_to_json(const struct ledger_rec *l)
{
	struct json_object	*o;
	char			 usd[32];

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "object",
	    json_object_new_string("ledger_entry"));
	json_object_object_add(o, "id", json_object_new_uint64(l->id));
	json_object_object_add(o, "type", json_object_new_string(
	    l->kind < LEDGER__MAX ? ledger_kind_names[l->kind] : "unknown"));
	json_object_object_add(o, "amount_micro_usd",
	    json_object_new_int64(l->amount));
	money_format_usd(l->amount, usd, sizeof(usd));
	json_object_object_add(o, "amount_usd", json_object_new_string(usd));
	json_object_object_add(o, "balance_after_micro_usd",
	    json_object_new_int64(l->balance_after));
	json_object_object_add(o, "created",
	    json_object_new_int64(l->time_us / 1000000));
	json_object_object_add(o, "request_id",
	    field_or_null(l->request_id, sizeof(l->request_id)));
	json_object_object_add(o, "usage_id", l->usage_id != 0 ?
	    json_object_new_uint64(l->usage_id) : NULL);
	json_object_object_add(o, "reason",
	    field_or_null(l->reason, sizeof(l->reason)));
	return o;
}
