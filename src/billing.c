/*
 * billing.c: budgets, rate limits, prepaid balances and the ledger.
 * A request is admitted in one short transaction that checks every limit
 * against what is spent plus what requests in flight have reserved, and
 * reserves its own worst case; it is settled in another that writes the
 * usage row, debits the ledger, counts the spend and drops the
 * reservation. A reservation names the process that holds it; when that
 * process dies before it settles (SIGKILL), any live process reclaims the
 * reservation within seconds (billing_reclaim): it bills what the request
 * is known to have used and releases the rest.
 *
 * Requests in flight (max_concurrent) are the reservations themselves:
 * the admission counts the unexpired reservations of the key (and, for a
 * tier with a limit, the tier's copies of them) and reserves only below
 * the limit. Whatever releases a reservation (settle, reclaim of a dead
 * holder, expiry) frees the slot with it; there is no counter to drift.
 */
#include <sys/types.h>

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "billing.h"
#include "config.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "store.h"
#include "usage.h"

#define SCOPE_MAX	(2 + KEY_AGENT_MAX + 256)
#define DAY_S		86400
#define PROGRESS_MS	2000	/* a stream records its progress this often */
#define RECLAIM_BATCH	64	/* reservations read per transaction */
/*
 * Retry-After of a request refused for max_concurrent: a slot frees when
 * one of the requests in flight ends, which nothing here can foresee; one
 * second is a short, honest "try again soon".
 */
#define CONCURRENT_RETRY_S 1

/* A fixed char field (maybe without its NUL) into another, NUL-terminated. */
#define COPY(dst, src)	snprintf((dst), sizeof(dst), "%.*s",		\
			    (int)strnlen((src), sizeof(src)), (src))

_Static_assert(offsetof(struct reserve_rec, holder) == RESERVE_V1_SIZE,
    "version 1 reservations are a prefix of version 2 ones");
_Static_assert(sizeof(((struct reserve_rec *)0)->agent) ==
    sizeof(((struct usage_row *)0)->agent), "a reservation holds the agent");

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

/*
 * Scope names: "k:ID" for a key, "a:NAME" for an agent, "m:NAME" for a
 * model, "t:NAME" for a tier.
 */
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

/*
 * A stored reservation of either version: 0, or -1. A version 1 record
 * (the agent scope's copy, or one written before version 2) has no
 * holder: every later field is zero.
 */
static int
reserve_read(const void *v, size_t vlen, struct reserve_rec *rec)
{
	const uint8_t	*p = v;

	if (vlen == 0 || !((p[0] == RESERVE_VERSION && vlen == sizeof(*rec)) ||
	    (p[0] == 1 && vlen == RESERVE_V1_SIZE))) {
		log_warn("billing: a reservation of %zu bytes, version %d",
		    vlen, vlen > 0 ? p[0] : -1);
		return -1;
	}
	memset(rec, 0, sizeof(*rec));
	memcpy(rec, v, vlen);
	return 0;
}

/* A reservation by its key; STORE_NOTFOUND when it is gone. */
static int
reserve_get(struct store_txn *t, const void *k, size_t klen,
    struct reserve_rec *rec, int flags)
{
	unsigned char	 v[sizeof(*rec)];
	size_t		 n = sizeof(v);
	int		 rc;

	if ((rc = store_get(t, SDB_RESERVE, k, klen, v, &n, flags)) != STORE_OK)
		return rc;
	return reserve_read(v, n, rec) == 0 ? STORE_OK : STORE_ERROR;
}

/*
 * Reservations of a scope that still count at now. An expired one with a
 * holder stays until it is settled or reclaimed, and no longer counts;
 * one without goes: a record of before version 2 (logged), or an agent
 * scope's copy (its key scope's copy is the one that tells).
 */
struct held {
	time_t		 now;
	int		 prune;
	int		 copy;		/* an agent's or a tier's scope */
	money_t		 amount;
	int64_t		 tokens;
	long		 count;		/* requests in flight */
};

static int
sum_held(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct held		*h = arg;
	struct reserve_rec	 rec;

	(void)k;
	(void)klen;
	if (reserve_read(v, vlen, &rec) == -1)
		return STORE_ERROR;
	if (rec.expires <= h->now) {
		if (!h->prune || rec.holder.pid != 0)
			return 0;
		if (!h->copy)
			log_warn("billing: reservation %.*s of %" PRId64
			    " micro-USD expired unsettled",
			    (int)strnlen(rec.request_id, sizeof(rec.request_id)),
			    rec.request_id, rec.amount);
		return STORE_SCAN_DELETE;
	}
	h->amount += rec.amount;
	h->tokens += rec.tokens;
	h->count++;
	return 0;
}

/* What a scope's reservations hold, and how many count (count may be NULL). */
static int
held(struct store_txn *t, const char *scope, size_t slen, time_t now,
    int prune, money_t *out, long *count)
{
	struct held	 h = { now, prune, scope[0] != 'k', 0, 0, 0 };
	int		 rc;

	rc = store_scan(t, SDB_RESERVE, scope, slen, NULL, 0, 0, sum_held, &h);
	*out = h.amount;
	if (count != NULL)
		*count = h.count;
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

/*
 * Who holds a reservation: the pid, and what tells that process from a
 * later one given the same pid (its start time since boot), the boot, and
 * the pid namespace the pid means something in.
 */
static pthread_mutex_t	 self_lock = PTHREAD_MUTEX_INITIALIZER;
static struct holder	 self_h;

/* Start time (clock ticks since boot) and state of a process: 0 or -1. */
static int
proc_stat(pid_t pid, uint64_t *start, char *state)
{
	char			 path[64], buf[1024], *p;
	unsigned long long	 v;
	ssize_t			 n;
	int			 fd, i, save;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	save = errno;
	close(fd);
	errno = save;
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	/* The name in parentheses may hold anything: fields follow the last ')'. */
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == '\0')
		goto bad;
	*state = p[2];
	p += 3;		/* field 4 */
	for (i = 4; i < 22; i++)
		if ((p = strchr(p, ' ')) == NULL)
			goto bad;
		else
			p++;
	if (sscanf(p, "%llu", &v) != 1)
		goto bad;
	*start = v;
	return 0;
bad:
	errno = EINVAL;
	return -1;
}

/* The inode of a process's pid namespace, or 0. */
static uint64_t
proc_pidns(const char *pid)
{
	char			 path[64], link[64];
	unsigned long long	 v;
	ssize_t			 n;

	snprintf(path, sizeof(path), "/proc/%s/ns/pid", pid);
	if ((n = readlink(path, link, sizeof(link) - 1)) <= 0)
		return 0;
	link[n] = '\0';
	return sscanf(link, "pid:[%llu]", &v) == 1 ? v : 0;
}

/* This process as a holder; read once per process. */
static void
self_holder(struct holder *out)
{
	char	 st;
	int	 fd;
	ssize_t	 n;

	pthread_mutex_lock(&self_lock);
	if (self_h.pid != (int32_t)getpid()) {
		memset(&self_h, 0, sizeof(self_h));
		self_h.pid = (int32_t)getpid();
		if (proc_stat(getpid(), &self_h.start, &st) == -1)
			self_h.start = 0;
		self_h.pidns = proc_pidns("self");
		fd = open("/proc/sys/kernel/random/boot_id",
		    O_RDONLY | O_CLOEXEC);
		if (fd != -1) {
			n = read(fd, self_h.boot, sizeof(self_h.boot) - 1);
			close(fd);
			if (n > 0)
				self_h.boot[strcspn(self_h.boot, "\n")] = '\0';
			else
				self_h.boot[0] = '\0';
		}
	}
	*out = self_h;
	pthread_mutex_unlock(&self_lock);
}

enum liveness {
	HOLDER_ALIVE,
	HOLDER_DEAD,
	HOLDER_UNKNOWN,		/* no holder, or one this process cannot see */
};

static enum liveness
holder_liveness(const struct holder *h)
{
	struct holder	 me;
	uint64_t	 start;
	char		 state;

	if (h->pid <= 0)
		return HOLDER_UNKNOWN;
	self_holder(&me);
	/* A reboot ended every process of the boot before. */
	if (me.boot[0] != '\0' && h->boot[0] != '\0' &&
	    strncmp(me.boot, h->boot, sizeof(me.boot)) != 0)
		return HOLDER_DEAD;
	if (me.pidns != 0 && h->pidns != 0 && me.pidns != h->pidns)
		return HOLDER_UNKNOWN;
	if (h->pid == me.pid)
		return h->start == me.start ? HOLDER_ALIVE : HOLDER_DEAD;
	if (kill((pid_t)h->pid, 0) == -1 && errno == ESRCH)
		return HOLDER_DEAD;
	/*
	 * Unreadable: hidden (hidepid), or it died since kill(); alive as
	 * far as kill() could tell, and the next pass sees the death.
	 */
	if (proc_stat((pid_t)h->pid, &start, &state) == -1)
		return HOLDER_ALIVE;
	/* A zombie has died; another start time is another process. */
	if (state == 'Z' || state == 'X' || (h->start != 0 &&
	    start != h->start))
		return HOLDER_DEAD;
	return HOLDER_ALIVE;
}

/*
 * The reservation of an admitted request: the worst case it holds, who
 * holds it, and what a reclaim bills should the holder die: the prompt
 * estimate at the prices of the candidate the worst case was priced at
 * (a stream's progress replaces them by the serving candidate's).
 */
static void
reserve_fill(struct reserve_rec *res, uint64_t id, const struct config *cfg,
    const struct principal *p, const struct admit_in *in)
{
	memset(res, 0, sizeof(*res));
	res->version = RESERVE_VERSION;
	res->id = id;
	res->amount = in->worst;
	res->tokens = in->tokens;
	res->expires = (int64_t)in->now + cfg->gw.reservation_ttl;
	snprintf(res->request_id, sizeof(res->request_id), "%s",
	    in->request_id ? in->request_id : "");
	self_holder(&res->holder);
	res->key_id = p->key.id;
	res->time_us = in->time_us;
	res->prompt = in->prompt;
	COPY(res->key_name, p->key.name);
	COPY(res->agent, p->agent);
	COPY(res->tier, p->tier);
	snprintf(res->route, sizeof(res->route), "%s",
	    in->route ? in->route : "");
	snprintf(res->requested, sizeof(res->requested), "%s",
	    in->model ? in->model : "");
	if (in->priced != NULL) {
		res->input_price = in->priced->input_price;
		res->cached_input_price = in->priced->cached_input_price;
		res->output_price = in->priced->output_price;
		snprintf(res->model, sizeof(res->model), "%s",
		    in->priced->name);
		if (in->priced->provider != NULL)
			snprintf(res->provider, sizeof(res->provider), "%s",
			    in->priced->provider->name);
	}
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

/*
 * Whether the key is still there and enabled in this transaction: one
 * deleted or disabled since it was authenticated is refused, so that
 * keys_delete, which writes the record, never sees a reservation made
 * after its check. 1, 0, or a store_rc below 0.
 */
static int
key_live(struct store_txn *t, uint64_t key_id)
{
	struct key_rec	 k;
	unsigned char	 id[8];
	int		 rc;

	store_be64(id, key_id);
	rc = store_get_rec(t, SDB_KEYS, id, sizeof(id), &k, sizeof(k), 0);
	if (rc == STORE_NOTFOUND)
		return 1;	/* a principal made without a record (tests) */
	if (rc != STORE_OK)
		return rc < 0 ? rc : STORE_ERROR;
	return k.disabled == 0;
}

/* The admission transaction: read every limit, decide, then write. */
static int
admit_txn(struct store_txn *t, void *arg)
{
	struct admit_ctx	*c = arg;
	const struct principal	*p = c->p;
	const struct admit_in	*in = c->in;
	struct admission	*a = c->adm;
	struct rate_rec		 krate, mrate, trate;
	struct spend_rec	 sp;
	struct balance_rec	 bal;
	struct reserve_rec	 res;
	char			 ks[SCOPE_MAX], as[SCOPE_MAX], ms[SCOPE_MAX];
	char			 ts[SCOPE_MAX];
	char			 b1[32], b2[32], b3[32];
	unsigned char		 rk[SCOPE_MAX + 8], id[8];
	size_t			 kl, al, ml, tl;
	money_t			 kheld, aheld, theld, spent;
	int64_t			 minute = (int64_t)in->now / 60;
	long			 reset = 60 - (long)(in->now % 60);
	long			 kflight, tflight = 0;
	int			 key_gate, tier_gate, rc;

	memset(a, 0, sizeof(*a));
	a->verdict = ADMIT_OK;
	a->day = billing_day(in->now);
	a->limit_requests = a->remaining_requests = -1;
	a->limit_tokens = a->remaining_tokens = -1;
	a->reset_s = reset;
	kl = scope_key(ks, sizeof(ks), 'k', p->key.id, NULL);
	al = scope_key(as, sizeof(as), 'a', 0, p->agent);
	ml = scope_key(ms, sizeof(ms), 'm', 0, in->model);
	tl = scope_key(ts, sizeof(ts), 't', 0, p->tier);

	if ((rc = key_live(t, p->key.id)) < 0)
		return rc;
	if (rc == 0) {
		refuse(a, ADMIT_KEY_GONE, 0, "This API key has been disabled "
		    "or deleted.");
		return STORE_OK;
	}

	/*
	 * The key's rate window, read for update, is also the gate of its
	 * requests in flight, and the tier's window the gate of the tier's:
	 * two admissions that count one scope's reservations run one after
	 * the other, so neither counts without the other's.
	 */
	key_gate = p->rpm > 0 || p->tpm > 0 || p->max_concurrent > 0;
	tier_gate = p->tier_concurrent > 0 && p->tier[0] != '\0';
	memset(&krate, 0, sizeof(krate));
	memset(&trate, 0, sizeof(trate));
	if (key_gate && (rc = get_rate(t, ks, kl, minute, &krate)) != STORE_OK)
		return rc;
	if (tier_gate && (rc = get_rate(t, ts, tl, minute, &trate)) !=
	    STORE_OK)
		return rc;

	/* Rate limits: per key, then per model; fixed one-minute windows. */
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
	if ((rc = held(t, ks, kl, in->now, 1, &kheld, &kflight)) != STORE_OK ||
	    (rc = held(t, as, al, in->now, 1, &aheld, NULL)) != STORE_OK)
		return rc;
	if (tier_gate &&
	    (rc = held(t, ts, tl, in->now, 1, &theld, &tflight)) != STORE_OK)
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

	/*
	 * Requests in flight, checked last: the refusal that lasts longer
	 * (a rate window, a budget, the balance) is the one to report.
	 */
	if (p->max_concurrent > 0 && kflight >= p->max_concurrent) {
		refuse(a, ADMIT_KEY_CONCURRENT, CONCURRENT_RETRY_S, "Too many "
		    "concurrent requests for this key: %ld in flight, its "
		    "max_concurrent is %ld. Retry when one ends.", kflight,
		    p->max_concurrent);
		return STORE_OK;
	}
	if (tier_gate && tflight >= p->tier_concurrent) {
		refuse(a, ADMIT_TIER_CONCURRENT, CONCURRENT_RETRY_S, "Too many "
		    "concurrent requests for tier %s: %ld in flight across its "
		    "keys, its max_concurrent is %ld. Retry when one ends.",
		    p->tier, tflight, p->tier_concurrent);
		return STORE_OK;
	}

	/* Admitted: count it and hold the worst case. */
	krate.requests++;
	krate.tokens += in->tokens;
	if (key_gate && (rc = store_put(t, SDB_RATE, ks, kl, &krate,
	    sizeof(krate))) != STORE_OK)
		return rc;
	trate.requests++;
	trate.tokens += in->tokens;
	if (tier_gate && (rc = store_put(t, SDB_RATE, ts, tl, &trate,
	    sizeof(trate))) != STORE_OK)
		return rc;
	if (in->model_rpm > 0 || in->model_tpm > 0) {
		mrate.requests++;
		mrate.tokens += in->tokens;
		if ((rc = store_put(t, SDB_RATE, ms, ml, &mrate,
		    sizeof(mrate))) != STORE_OK)
			return rc;
	}
	reserve_fill(&res, c->res_id, c->cfg, p, in);
	store_be64(id, c->res_id);
	if ((rc = store_put(t, SDB_RESERVE, rk, scoped(rk, ks, kl, id, 8),
	    &res, sizeof(res))) != STORE_OK)
		return rc;
	/* The agent's copy: version 1, amount and expiry only. */
	res.version = 1;
	if ((rc = store_put(t, SDB_RESERVE, rk, scoped(rk, as, al, id, 8),
	    &res, RESERVE_V1_SIZE)) != STORE_OK)
		return rc;
	/* The tier's, while the tier has a limit: counted by the next ones. */
	if (tier_gate && (rc = store_put(t, SDB_RESERVE, rk, scoped(rk, ts, tl,
	    id, 8), &res, RESERVE_V1_SIZE)) != STORE_OK)
		return rc;
	a->reservation = c->res_id;
	a->key_id = p->key.id;
	return STORE_OK;
}

int
billing_admit(struct store *s, const struct config *cfg,
    const struct principal *p, const struct admit_in *in,
    struct admission *adm)
{
	struct admit_ctx	 c = { cfg, p, in, adm, 0 };
	struct timespec		 mono;
	int			 rc;

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
	clock_gettime(CLOCK_MONOTONIC, &mono);
	rc = store_txn(s, admit_txn, &c);
	/* The first progress of a stream is recorded after PROGRESS_MS. */
	adm->progress_ms = (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000;
	return rc;
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
    const struct usage_row *row, const struct reserve_rec *res)
{
	struct rate_rec		 rate;
	int64_t			 used = row->prompt + row->completion;
	int			 rc;

	if (res->tokens <= used)
		return STORE_OK;
	rc = store_get_rec(t, SDB_RATE, scope, slen, &rate, sizeof(rate),
	    STORE_RMW);
	/* Only the window the estimate was counted in (admission's minute). */
	if (rc != STORE_OK || rate.minute != row->time_us / 60000000)
		return rc == STORE_NOTFOUND || rc == STORE_OK ? STORE_OK : rc;
	rate.tokens -= res->tokens - used;
	if (rate.tokens < 0)
		rate.tokens = 0;
	return store_put(t, SDB_RATE, scope, slen, &rate, sizeof(rate));
}

int
billing_apply(struct store_txn *t, const struct usage_row *row)
{
	struct balance_rec	 bal;
	struct ledger_rec	 l;
	struct reserve_rec	 res;
	char			 ks[SCOPE_MAX], as[SCOPE_MAX], ts[SCOPE_MAX];
	char			 tier[sizeof(res.tier) + 1];
	unsigned char		 rk[SCOPE_MAX + 8], id[8];
	size_t			 kl, al, tl;
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
		snprintf(l.reason, sizeof(l.reason), "%.15s %.90s%s",
		    row->route[0] ? row->route : "request",
		    row->served[0] ? row->served : row->requested,
		    row->worker_died ? " (worker died)" : "");
		if ((rc = put_ledger(t, &l)) != STORE_OK)
			return rc;
	}
	if ((rc = add_spend(t, ks, kl, day, row)) != STORE_OK)
		return rc;
	if (row->key_id != 0 && row->agent[0] != '\0' &&
	    (rc = add_spend(t, as, al, day, row)) != STORE_OK)
		return rc;
	if (row->reservation == 0)
		return STORE_OK;
	store_be64(id, row->reservation);
	rc = reserve_get(t, rk, scoped(rk, ks, kl, id, 8), &res, 0);
	if (rc == STORE_NOTFOUND)
		return STORE_OK;	/* released already, every copy */
	if (rc != STORE_OK ||
	    (rc = true_up_tokens(t, ks, kl, row, &res)) != STORE_OK ||
	    (rc = drop_reservation(t, ks, kl, row->reservation)) != STORE_OK ||
	    (rc = drop_reservation(t, as, al, row->reservation)) != STORE_OK)
		return rc;
	/* The tier's copy, written if its tier had a limit at admission. */
	if (res.tier[0] != '\0') {
		COPY(tier, res.tier);
		tl = scope_key(ts, sizeof(ts), 't', 0, tier);
		if ((rc = drop_reservation(t, ts, tl, row->reservation)) !=
		    STORE_OK)
			return rc;
	}
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
	/*
	 * The row takes the reservation's id: a reclaim that billed it
	 * first (this process was judged dead) wrote the same key, and the
	 * request is billed once, whichever comes first.
	 */
	row->id = row->reservation;
	if (s != NULL) {
		if (row->id != 0 || (row->id = store_next_id(s)) != 0)
			rc = store_txn(s, settle_txn, row);
		if (rc == STORE_OK)
			return STORE_OK;
		if (rc == STORE_EXISTS) {
			log_warn("%s: already billed by a reclaim of its "
			    "reservation", row->request_id);
			return STORE_OK;
		}
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

/* The key scope's key of a reservation. */
static size_t
reserve_key(unsigned char *out, uint64_t key_id, uint64_t res)
{
	char		 ks[SCOPE_MAX];
	unsigned char	 id[8];

	store_be64(id, res);
	return scoped(out, ks, scope_key(ks, sizeof(ks), 'k', key_id, NULL),
	    id, 8);
}

struct progress_ctx {
	const struct admission	*adm;
	const struct candidate	*cand;
	int64_t			 completion;
	int64_t			 now_us;
};

static int
progress_txn(struct store_txn *t, void *arg)
{
	struct progress_ctx	*c = arg;
	struct reserve_rec	 res;
	unsigned char		 k[SCOPE_MAX + 8];
	size_t			 kl;
	int			 rc;

	kl = reserve_key(k, c->adm->key_id, c->adm->reservation);
	if ((rc = reserve_get(t, k, kl, &res, STORE_RMW)) != STORE_OK)
		return rc == STORE_NOTFOUND ? STORE_OK : rc;
	if (res.version != RESERVE_VERSION)
		return STORE_OK;
	res.completion = c->completion;
	res.progress_us = c->now_us;
	res.input_price = c->cand->input_price;
	res.cached_input_price = c->cand->cached_input_price;
	res.output_price = c->cand->output_price;
	snprintf(res.model, sizeof(res.model), "%s", c->cand->name);
	snprintf(res.provider, sizeof(res.provider), "%s",
	    c->cand->provider != NULL ? c->cand->provider->name : "");
	res.served = 1;
	return store_put(t, SDB_RESERVE, k, kl, &res, sizeof(res));
}

void
billing_progress(struct store *s, struct admission *a,
    const struct candidate *cand, int64_t completion)
{
	struct progress_ctx	 c;
	struct timespec		 mono, wall;
	int64_t			 ms;

	if (s == NULL || a == NULL || a->reservation == 0 || cand == NULL)
		return;
	clock_gettime(CLOCK_MONOTONIC, &mono);
	ms = (int64_t)mono.tv_sec * 1000 + mono.tv_nsec / 1000000;
	if (ms - a->progress_ms < PROGRESS_MS)
		return;
	a->progress_ms = ms;
	store_wall(&wall);
	c.adm = a;
	c.cand = cand;
	c.completion = completion;
	c.now_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
	if (store_txn(s, progress_txn, &c) < 0)
		log_debug("billing: progress of reservation %" PRIu64 ": %s",
		    a->reservation, store_error());
}

/*
 * The row a reclaim writes for a dead holder's request: the prompt
 * estimate and the completion progress last recorded, at the recorded
 * prices, estimated, never billed above what was reserved.
 */
static void
reclaim_row(const struct reserve_rec *res, int64_t now_us,
    struct usage_row *row)
{
	struct candidate	 c;
	struct usage		 u;
	int64_t			 ms;

	memset(row, 0, sizeof(*row));
	row->version = USAGE_VERSION;
	row->time_us = res->time_us > 0 ? res->time_us : now_us;
	row->id = res->id;
	row->reservation = res->id;
	row->key_id = res->key_id;
	memset(&c, 0, sizeof(c));
	c.input_price = res->input_price;
	c.cached_input_price = res->cached_input_price;
	c.output_price = res->output_price;
	memset(&u, 0, sizeof(u));
	u.prompt = row->prompt = res->prompt;
	u.completion = row->completion = res->completion;
	row->cost = usage_cost(&c, &u);
	if (row->cost > res->amount)
		row->cost = res->amount;
	if (row->cost < 0)
		row->cost = 0;
	row->estimated = 1;
	row->worker_died = 1;
	row->stream = res->progress_us != 0;
	row->status = 502;	/* the answer, if it began, was cut */
	ms = (now_us - row->time_us) / 1000;
	row->latency_ms = (int32_t)(ms < 0 ? 0 : ms > INT32_MAX ? INT32_MAX :
	    ms);
	COPY(row->request_id, res->request_id);
	COPY(row->key_name, res->key_name);
	COPY(row->agent, res->agent);
	COPY(row->tier, res->tier);
	COPY(row->route, res->route);
	COPY(row->requested, res->requested);
	if (res->served) {
		COPY(row->served, res->model);
		COPY(row->provider, res->provider);
	}
}

/* One reservation to reclaim (bill) or drop, and what became of it. */
struct reclaim_ctx {
	const struct reserve_rec *seen;	/* as the scan read it */
	int			 bill;	/* 0: release unbilled */
	int64_t			 now_us;
	struct reserve_rec	 res;	/* as the transaction read it */
	struct usage_row	 row;
};

/*
 * Bill and release one reservation, or release it only. Whoever deletes
 * it first bills it: a reclaim or a settle that comes second finds it
 * gone (STORE_NOTFOUND) or its row there (STORE_EXISTS: then the
 * reservation is only released).
 */
static int
reclaim_txn(struct store_txn *t, void *arg)
{
	struct reclaim_ctx	*c = arg;
	unsigned char		 k[SCOPE_MAX + 8];
	char			 as[SCOPE_MAX], ts[SCOPE_MAX];
	size_t			 kl, al, tl;
	int			 rc;

	kl = reserve_key(k, c->seen->key_id, c->seen->id);
	if ((rc = reserve_get(t, k, kl, &c->res, STORE_RMW)) != STORE_OK)
		return rc;
	reclaim_row(&c->res, c->now_us, &c->row);
	if (c->bill && (rc = billing_apply(t, &c->row)) != STORE_EXISTS)
		return rc;
	al = scope_key(as, sizeof(as), 'a', 0, c->row.agent);
	tl = scope_key(ts, sizeof(ts), 't', 0, c->row.tier);
	if ((rc = store_del(t, SDB_RESERVE, k, kl)) != STORE_OK ||
	    (rc = drop_reservation(t, as, al, c->seen->id)) != STORE_OK ||
	    (c->row.tier[0] != '\0' &&
	    (rc = drop_reservation(t, ts, tl, c->seen->id)) != STORE_OK))
		return rc;
	return c->bill ? STORE_EXISTS : STORE_OK;
}

/*
 * The key scope's reservations that name a holder, RECLAIM_BATCH per
 * read transaction; the next batch starts after the last key seen.
 */
struct reclaim_scan {
	struct reserve_rec	*recs;
	size_t			 n;
	int			 more;
	unsigned char		 start[SCOPE_MAX + 8];	/* exclusive */
	size_t			 slen;
	unsigned char		 last[SCOPE_MAX + 8];
	size_t			 llen;
};

static int
reclaim_one(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct reclaim_scan	*sc = arg;

	if (sc->slen > 0 && klen == sc->slen && memcmp(k, sc->start, klen) == 0)
		return 0;
	if (sc->n == RECLAIM_BATCH) {
		sc->more = 1;
		return STORE_STOP;
	}
	if (klen > sizeof(sc->last))
		return 0;
	memcpy(sc->last, k, klen);
	sc->llen = klen;
	if (reserve_read(v, vlen, &sc->recs[sc->n]) == 0 &&
	    sc->recs[sc->n].holder.pid != 0)
		sc->n++;
	return 0;
}

static int
reclaim_scan_txn(struct store_txn *t, void *arg)
{
	struct reclaim_scan	*sc = arg;

	/* A deadlock runs this again: the batch starts over. */
	sc->n = 0;
	sc->more = 0;
	sc->llen = 0;
	return store_scan(t, SDB_RESERVE, "k:", 2, sc->slen > 0 ? sc->start :
	    NULL, sc->slen, 0, reclaim_one, sc);
}

/* Judge one reservation and, its holder dead, reclaim it. */
static int
reclaim(struct store *s, const struct reserve_rec *seen, time_t now,
    struct reclaim_result *out, reclaim_fn fn, void *arg)
{
	struct reclaim_ctx	*c;
	struct timespec		 wall;
	enum liveness		 l = holder_liveness(&seen->holder);
	int			 rc;

	/* A holder this process cannot see: released once it expired. */
	if (l == HOLDER_ALIVE || (l == HOLDER_UNKNOWN && seen->expires > now))
		return STORE_OK;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return STORE_ERROR;
	store_wall(&wall);
	c->seen = seen;
	c->bill = l == HOLDER_DEAD;
	c->now_us = (int64_t)wall.tv_sec * 1000000 + wall.tv_nsec / 1000;
	rc = store_txn(s, reclaim_txn, c);
	if (rc == STORE_OK && c->bill) {
		out->reclaimed++;
		out->billed += c->row.cost;
		out->released += c->res.amount - c->row.cost;
		log_warn("billing: reclaimed reservation %.*s of key %s: its "
		    "process %d died; billed %" PRId64 " of %" PRId64
		    " micro-USD (prompt %" PRId64 " + completion %" PRId64
		    " tokens, estimated)", (int)strnlen(c->res.request_id,
		    sizeof(c->res.request_id)), c->res.request_id,
		    c->row.key_name, (int)c->res.holder.pid, c->row.cost,
		    c->res.amount, c->row.prompt, c->row.completion);
		usage_log(&c->row);
		metrics_record(&c->row);
		if (fn != NULL)
			fn(arg, &c->res, &c->row);
	} else if (rc == STORE_OK || rc == STORE_EXISTS) {
		out->dropped++;
		out->released += c->res.amount;
		log_warn("billing: released reservation %.*s of key %s "
		    "unbilled: %s", (int)strnlen(c->res.request_id,
		    sizeof(c->res.request_id)), c->res.request_id,
		    c->row.key_name, rc == STORE_EXISTS ? "its request was "
		    "billed already" : "it expired and its process cannot be "
		    "seen from here");
	}
	free(c);
	return rc == STORE_NOTFOUND || rc == STORE_EXISTS ? STORE_OK : rc;
}

int
billing_reclaim(struct store *s, time_t now, struct reclaim_result *out,
    reclaim_fn fn, void *arg)
{
	struct reclaim_scan	*sc;
	size_t			 i;
	int			 rc, failed = STORE_OK;

	memset(out, 0, sizeof(*out));
	if ((sc = calloc(1, sizeof(*sc))) == NULL ||
	    (sc->recs = calloc(RECLAIM_BATCH, sizeof(*sc->recs))) == NULL) {
		free(sc);
		return STORE_ERROR;
	}
	do {
		if ((rc = store_read(s, reclaim_scan_txn, sc)) != STORE_OK) {
			failed = rc;
			break;
		}
		/* Outside the scan: each in a transaction of its own. */
		for (i = 0; i < sc->n; i++)
			if ((rc = reclaim(s, &sc->recs[i], now, out, fn,
			    arg)) != STORE_OK) {
				log_error("billing: reclaim of reservation "
				    "%" PRIu64 ": %s", sc->recs[i].id,
				    store_error());
				failed = rc;
			}
		memcpy(sc->start, sc->last, sc->llen);
		sc->slen = sc->llen;
	} while (sc->more && sc->llen > 0);
	free(sc->recs);
	free(sc);
	return failed;
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

	store_wall(&now);
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
	struct timespec		 now;
	char			 ks[SCOPE_MAX];
	size_t			 kl;
	int			 rc;

	if ((rc = get_balance(t, c->key_id, c->bal, 0)) != STORE_OK)
		return rc;
	kl = scope_key(ks, sizeof(ks), 'k', c->key_id, NULL);
	store_wall(&now);
	return held(t, ks, kl, now.tv_sec, 0, c->held, NULL);
}

int
billing_key_holds(struct store_txn *t, uint64_t key_id, money_t *reserved,
    long *requests, struct balance_rec *bal)
{
	char	 ks[SCOPE_MAX];
	size_t	 kl;
	int	 rc;

	if ((rc = get_balance(t, key_id, bal, STORE_RMW)) != STORE_OK)
		return rc;
	kl = scope_key(ks, sizeof(ks), 'k', key_id, NULL);
	/* At time 0 every reservation counts, expired ones too. */
	return held(t, ks, kl, 0, 0, reserved, requests);
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
