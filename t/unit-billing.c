/*
 * unit-billing.c: pricing, admission and settlement against a real store
 * in a scratch directory: budgets across UTC midnight, reservation
 * expiry, prepaid balances and the ledger, exact books when several
 * processes admit and settle at once, and reservations of killed
 * processes reclaimed exactly once.
 */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <signal.h>
#include <time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/billing.h"
#include "../src/config.h"
#include "../src/keys.h"
#include "../src/plan.h"
#include "../src/store.h"
#include "../src/usage.h"
#include "tap.h"

#define DAY	86400
/* 2026-11-23 23:59:59 UTC and one second later. */
#define EVENING	((time_t)1795391999)
#define MIDNIGHT (EVENING + 1)

static char	 dir[] = "/tmp/llmgate-unit-billing.XXXXXX";

static struct config *
load(void)
{
	char		 path[256], err[512];
	struct config	*c;
	FILE		*fp;

	snprintf(path, sizeof(path), "%s/test.ini", dir);
	fp = fopen(path, "w");
	fprintf(fp, "[gateway]\ndata_dir = %s\nreservation_ttl = 60\n"
	    "budget_warn_percent = 90\ndefault_tier = T3\n"
	    "[tier T3]\ndaily_budget = 1.00\n"
	    "[provider p]\nbase_url = http://127.0.0.1:9\napi_key = none\n"
	    "[model m]\nprovider = p\ninput_price = 1\noutput_price = 3\n"
	    "cached_input_price = 0.25\n", dir);
	fclose(fp);
	if ((c = config_load(path, err, sizeof(err))) == NULL)
		printf("# config: %s\n", err);
	return c;
}

static void
test_pricing(void)
{
	struct candidate	 c;
	struct usage		 u = { .known = 1 };

	memset(&c, 0, sizeof(c));
	c.input_price = 2500000;	/* $2.50 per 1M */
	c.output_price = 10000000;	/* $10 */
	c.cached_input_price = 1250000;
	u.prompt = 1;
	is_int(usage_cost(&c, &u), 3, "1 prompt token at $2.50/1M rounds "
	    "2.5 micro-USD up to 3");
	u.prompt = 1000;
	u.completion = 500;
	is_int(usage_cost(&c, &u), 7500, "1000 in + 500 out = 2500 + 5000");
	u.prompt = 3;
	u.completion = 0;
	u.cached = 1;
	/* 2 * 2.5 + 1 * 1.25 = 6.25: rounded once to 7, not 5 + 2 = 8. */
	is_int(usage_cost(&c, &u), 7, "parts are summed before rounding once");
	u.cached = 10;
	is_int(usage_cost(&c, &u), 4, "cached tokens beyond the prompt are "
	    "capped at the prompt (3 * 1.25 = 3.75 -> 4)");
	/* Anthropic's prompt caching: 1.25 x input for each token written. */
	c.cache_write_price = 3125000;
	u.prompt = 1808;	/* 8 plain + 1500 written + 300 read */
	u.cached = 300;
	u.cache_write = 1500;
	u.completion = 4;
	/* 8 * 2.5 + 1500 * 3.125 + 300 * 1.25 + 4 * 10 = 5122.5 -> 5123 */
	is_int(usage_cost(&c, &u), 5123, "cache writes at their price, reads "
	    "at theirs, the rest at input, rounded once");
	u.prompt = 10;
	u.cached = 4;
	u.cache_write = 100;
	u.completion = 0;
	/* 4 * 1.25 + 6 * 3.125 = 23.75 -> 24 */
	is_int(usage_cost(&c, &u), 24, "cache writes beyond the prompt less "
	    "the reads are capped at that");
	u.cache_write = -5;
	/* 6 * 2.5 + 4 * 1.25 = 20 */
	is_int(usage_cost(&c, &u), 20, "a negative cache-write count is none");
	u.cached = 0;
	u.cache_write = 10;
	c.cache_write_price = MONEY_PRICE_MAX;
	u.prompt = MONEY_TOKENS_MAX;
	u.cache_write = MONEY_TOKENS_MAX;
	is_int(usage_cost(&c, &u), MONEY_TOKENS_MAX * (MONEY_PRICE_MAX /
	    1000000), "the largest prompt all written at the largest price "
	    "does not overflow");
	u.cache_write = 0;
	u.cached = 0;
	u.completion = 0;
	ok(billing_day(EVENING) + DAY == billing_day(MIDNIGHT),
	    "23:59:59 and 00:00:00 UTC fall in consecutive days");
	is_int(billing_month(MIDNIGHT), 1793491200, "month of 2026-11-24 "
	    "starts 2026-11-01");
}

static void
principal(struct principal *p, const struct config *cfg,
    const struct key_rec *k)
{
	memset(p, 0, sizeof(*p));
	p->key = *k;
	snprintf(p->agent, sizeof(p->agent), "%s", k->name);
	snprintf(p->tier, sizeof(p->tier), "T3");
	p->tier_cfg = config_tier(cfg, "T3");
	p->agent_budget = p->tier_cfg->daily_budget;
}

static int
admit(struct store *s, const struct config *cfg, const struct principal *p,
    money_t worst, time_t now, struct admission *a)
{
	struct admit_in	 in;

	memset(&in, 0, sizeof(in));
	in.request_id = "req_unit";
	in.model = "m";
	in.worst = worst;
	in.tokens = 100;
	in.now = now;
	return billing_admit(s, cfg, p, &in, a);
}

static int
settle(struct store *s, const struct config *cfg, const struct principal *p,
    const struct admission *a, money_t cost, time_t when)
{
	struct usage_row	 row;

	memset(&row, 0, sizeof(row));
	row.version = STORE_VERSION;
	row.time_us = (int64_t)when * 1000000;
	row.key_id = p->key.id;
	row.cost = cost;
	row.status = 200;
	snprintf(row.agent, sizeof(row.agent), "%s", p->agent);
	snprintf(row.request_id, sizeof(row.request_id), "req_unit");
	return billing_settle(s, cfg, p, a, &row);
}

static void
test_budget_midnight(struct store *s, const struct config *cfg)
{
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a;
	struct spend_rec	 sp;
	char			 secret[KEY_SECRET_LEN + 1], scope[80];

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "night");
	is_int(keys_create(s, &k, secret, sizeof(secret)), STORE_OK,
	    "key created");
	principal(&p, cfg, &k);
	is_int(admit(s, cfg, &p, 950000, EVENING, &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_OK, "$0.95 of a $1.00 agent budget admitted");
	is_int(settle(s, cfg, &p, &a, 950000, EVENING), STORE_OK, "settled");
	is_int(admit(s, cfg, &p, 100000, EVENING, &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_AGENT_BUDGET, "$0.10 more refused at "
	    "23:59:59");
	ok(a.warn, "and the budget is past the warning line");
	is_int(a.retry_after, 1, "Retry-After: one second to midnight");
	is_int(admit(s, cfg, &p, 100000, MIDNIGHT, &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_OK, "at 00:00:00 UTC the new day admits it");
	ok(!a.warn, "no warning on a fresh day");
	is_int(settle(s, cfg, &p, &a, 40000, MIDNIGHT), STORE_OK, "settled");
	snprintf(scope, sizeof(scope), "a:%s", p.agent);
	billing_spend(s, scope, EVENING, &sp);
	is_int(sp.spent, 950000, "the evening's spend stays on its day");
	billing_spend(s, scope, MIDNIGHT, &sp);
	is_int(sp.spent, 40000, "the new day holds only the actual cost");
	is_int(sp.requests, 1, "one request on the new day");
}

static void
test_expiry(struct store *s, const struct config *cfg)
{
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a, b;
	struct balance_rec	 bal;
	money_t			 held;
	char			 secret[KEY_SECRET_LEN + 1];
	time_t			 t0 = MIDNIGHT + 3600;

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "expiry");
	k.prepaid = 1;
	keys_create(s, &k, secret, sizeof(secret));
	principal(&p, cfg, &k);
	is_int(admit(s, cfg, &p, 1, t0, &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_BALANCE, "a prepaid key without money: 402");
	ok(strstr(a.message, "$0.000000 available") != NULL,
	    "the message gives the balance: %s", a.message);
	is_int(billing_credit(s, k.id, 500000, LEDGER_TOPUP, "unit", NULL),
	    STORE_OK, "top up $0.50");
	is_int(admit(s, cfg, &p, 400000, t0, &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_OK, "$0.40 reserved");
	billing_balance(s, k.id, &bal, &held);
	/* billing_balance counts at the wall clock; t0 is in the future. */
	is_int(admit(s, cfg, &p, 200000, t0 + 10, &b), STORE_OK, "admit");
	is_int(b.verdict, ADMIT_BALANCE, "$0.20 more does not fit beside the "
	    "held $0.40");
	/* The first request's process died: its reservation expires. */
	is_int(admit(s, cfg, &p, 200000, t0 + 61, &b), STORE_OK, "admit");
	is_int(b.verdict, ADMIT_OK, "after reservation_ttl the dead "
	    "reservation no longer counts");
	is_int(settle(s, cfg, &p, &b, 150000, t0 + 61), STORE_OK, "settle");
	/* A late settlement of the expired one still debits what it cost. */
	is_int(settle(s, cfg, &p, &a, 100000, t0 + 62), STORE_OK,
	    "late settle");
	billing_balance(s, k.id, &bal, &held);
	is_int(bal.balance, 250000, "balance 0.50 - 0.15 - 0.10");
	is_int(bal.credited - bal.debited, bal.balance, "credited - debited "
	    "== balance");
}

struct sum {
	money_t	 debits, credits;
	long	 n;
};

static int
add_ledger(void *arg, const struct ledger_rec *l)
{
	struct sum	*s = arg;

	if (l->kind == LEDGER_DEBIT)
		s->debits -= l->amount;
	else
		s->credits += l->amount;
	s->n++;
	return 0;
}

struct usum {
	uint64_t	 key;
	money_t		 cost;
	long		 n;
};

static int
add_usage(void *arg, const struct usage_row *r)
{
	struct usum	*u = arg;

	if (r->key_id == u->key) {
		u->cost += r->cost;
		u->n++;
	}
	return 0;
}

/* Eight processes spend one balance at once: nothing over, nothing lost. */
static void
test_concurrency(struct config *cfg)
{
	struct store		*s;
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a;
	struct balance_rec	 bal;
	struct sum		 sum = { 0, 0, 0 };
	struct usum		 us;
	char			 secret[KEY_SECRET_LEN + 1], err[256];
	int			 i, j, status, admitted = 0, st;
	pid_t			 pid;
	time_t			 now = time(NULL);

	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "busy");
	k.prepaid = 1;
	keys_create(s, &k, secret, sizeof(secret));
	billing_credit(s, k.id, 1000000, LEDGER_TOPUP, "unit", NULL);
	store_close(s);
	for (i = 0; i < 8; i++) {
		if ((pid = fork()) != 0)
			continue;
		s = store_open(dir, STORE_WORKER, 1, 30, err, sizeof(err));
		principal(&p, cfg, &k);
		p.agent_budget = 0;
		for (j = 0, st = 0; j < 50; j++) {
			if (admit(s, cfg, &p, 7000, now, &a) != STORE_OK) {
				st = 2;
				break;
			}
			if (a.verdict != ADMIT_OK)
				continue;
			settle(s, cfg, &p, &a, 3000 + j % 5 * 1000, now);
			admitted++;
		}
		store_close(s);
		config_free(cfg);
		/* 255: a store error; a count (at most 50) otherwise. */
		_exit(st == 2 ? 255 : admitted);
	}
	admitted = 0;
	st = 0;
	while (wait(&status) > 0) {
		if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
			st = 1;
		else
			admitted += WEXITSTATUS(status);
	}
	ok(st == 0, "every process admitted and settled without a store error");
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	billing_balance(s, k.id, &bal, NULL);
	billing_ledger(s, k.id, 0, -1, add_ledger, &sum);
	memset(&us, 0, sizeof(us));
	us.key = k.id;
	usage_scan(s, 0, INT64_MAX, add_usage, &us);
	ok(admitted > 100, "%d of 400 requests admitted", admitted);
	is_int(us.n, admitted, "one usage row per admitted request");
	is_int(sum.debits, us.cost, "ledger debits == usage costs");
	is_int(bal.balance, 1000000 - us.cost, "balance == top-up - costs");
	ok(bal.balance >= 0, "balance never below zero (%lld)",
	    (long long)bal.balance);
	is_int(sum.n, admitted + 1, "ledger: one top-up and one debit each");
	store_close(s);
}

/* Eight processes against one agent's daily budget: never over it. */
static void
test_budget_race(struct config *cfg)
{
	struct store		*s;
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a;
	struct spend_rec	 sp;
	char			 secret[KEY_SECRET_LEN + 1], err[256], scope[80];
	int			 i, j, status, bad = 0;
	time_t			 now = time(NULL);

	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "racer");
	keys_create(s, &k, secret, sizeof(secret));
	store_close(s);
	for (i = 0; i < 8; i++) {
		if (fork() != 0)
			continue;
		s = store_open(dir, STORE_WORKER, 1, 30, err, sizeof(err));
		principal(&p, cfg, &k);
		p.agent_budget = 300000;	/* $0.30 */
		for (j = 0; j < 40; j++) {
			if (admit(s, cfg, &p, 9000, now, &a) != STORE_OK)
				_exit(2);
			if (a.verdict == ADMIT_OK)
				settle(s, cfg, &p, &a, 9000 - j % 3 * 2000,
				    now);
		}
		store_close(s);
		config_free(cfg);
		_exit(0);
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	is_int(bad, 0, "every racer admitted and settled without errors");
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	snprintf(scope, sizeof(scope), "a:racer");
	billing_spend(s, scope, now, &sp);
	ok(sp.spent <= 300000 && sp.spent > 300000 - 9000 * 2, "the agent "
	    "spent $%lld micro of its $0.30 budget: not over, and close",
	    (long long)sp.spent);
	store_close(s);
}

static int
hold_and_die(struct store_txn *t, void *arg)
{
	struct balance_rec	 b;
	unsigned char		 k[8];

	(void)arg;
	memset(&b, 0, sizeof(b));
	b.version = STORE_VERSION;
	store_be64(k, 424242);
	store_put(t, SDB_BALANCE, k, 8, &b, sizeof(b));
	/* Killed holding the write lock, outside Berkeley DB's code. */
	kill(getpid(), SIGKILL);
	return 0;
}

static int
touch_same(struct store_txn *t, void *arg)
{
	struct balance_rec	 b;
	unsigned char		 k[8];

	(void)arg;
	memset(&b, 0, sizeof(b));
	b.version = STORE_VERSION;
	b.balance = 1;
	store_be64(k, 424242);
	return store_put(t, SDB_BALANCE, k, 8, &b, sizeof(b));
}

static void
on_alarm(int sig)
{
	(void)sig;
	printf("not ok - a lock of a SIGKILLed process blocked for 20 s\n");
	_exit(1);
}

/*
 * PLATFORM.md 4: a process killed while it holds a write lock blocks its
 * peers until someone runs failchk; the worker's watchdog does, every
 * second.
 */
static void
test_dead_holder(void)
{
	struct store	*s;
	struct timespec	 t0, t1;
	char		 err[256];
	pid_t		 pid;
	int		 status, rc;

	/* The worker is open before the death: only its watchdog can help. */
	s = store_open(dir, STORE_WORKER, 1, 30, err, sizeof(err));
	if ((pid = fork()) == 0) {
		struct store	*mine;

		mine = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
		if (mine != NULL)
			store_txn(mine, hold_and_die, NULL);
		_exit(3);
	}
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "a process died by SIGKILL inside a transaction");
	signal(SIGALRM, on_alarm);
	alarm(20);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = store_txn(s, touch_same, NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	alarm(0);
	is_int(rc, STORE_OK, "a worker writes the record the dead one locked");
	ok(t1.tv_sec - t0.tv_sec < 5, "within %.1f s (the watchdog's failchk "
	    "runs every second)", (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	store_close(s);
}

/* A candidate priced like model m: $1 in, $3 out, $0.25 cached per 1M. */
static void
cand_m(struct candidate *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "m");
	c->input_price = 1000000;
	c->output_price = 3000000;
	c->cached_input_price = 250000;
}

static int64_t	 admitted_us;	/* the time_us of the last admit_full */

/* Admit as a gateway does: with what a reclaim needs to bill. */
static int
admit_full(struct store *s, const struct config *cfg,
    const struct principal *p, const struct candidate *c, int64_t prompt,
    money_t worst, const char *rid, struct admission *a)
{
	struct admit_in	 in;
	struct timespec	 now;

	clock_gettime(CLOCK_REALTIME, &now);
	memset(&in, 0, sizeof(in));
	in.request_id = rid;
	in.model = "m";
	in.worst = worst;
	in.tokens = 100;
	in.now = now.tv_sec;
	in.priced = c;
	in.prompt = prompt;
	in.time_us = (int64_t)now.tv_sec * 1000000 + now.tv_nsec / 1000;
	admitted_us = in.time_us;
	in.route = "chat";
	return billing_admit(s, cfg, p, &in, a);
}

/*
 * A child admits n requests (one streams 1000 tokens), then is killed;
 * with tier_limit, under its tier's max_concurrent (tier copies written).
 */
static void
die_holding_in(const struct config *cfg, const struct key_rec *k, int n,
    money_t worst, long tier_limit)
{
	struct store		*s;
	struct principal	 p;
	struct admission	 a;
	struct candidate	 c;
	char			 err[256], rid[32];
	int			 i, status;
	pid_t			 pid;

	if ((pid = fork()) == 0) {
		s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
		principal(&p, cfg, k);
		p.agent_budget = 0;
		p.tier_concurrent = tier_limit;
		cand_m(&c);
		for (i = 0; s != NULL && i < n; i++) {
			snprintf(rid, sizeof(rid), "req_dead_%d", i);
			if (admit_full(s, cfg, &p, &c, 10000, worst, rid, &a) !=
			    STORE_OK || a.verdict != ADMIT_OK)
				_exit(3);
			if (i == 0) {
				a.progress_ms -= 10000;	/* due now */
				billing_progress(s, &a, &c, 1000);
			}
		}
		kill(getpid(), SIGKILL);
		_exit(4);
	}
	waitpid(pid, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "a process admitted %d request(s) and was SIGKILLed", n);
}

static void
die_holding(const struct config *cfg, const struct key_rec *k, int n,
    money_t worst)
{
	die_holding_in(cfg, k, n, worst, 0);
}

struct dead_rows {
	uint64_t		 key;
	long			 n, died;
	money_t			 cost;
	struct usage_row	 last;
};

static int
dead_row(void *arg, const struct usage_row *r)
{
	struct dead_rows	*d = arg;

	if (r->key_id != d->key)
		return 0;
	d->n++;
	d->cost += r->cost;
	if (r->worker_died) {
		d->died++;
		d->last = *r;
	}
	return 0;
}

static void
rows_of(struct store *s, uint64_t key, struct dead_rows *d)
{
	memset(d, 0, sizeof(*d));
	d->key = key;
	usage_scan(s, 0, INT64_MAX, dead_row, d);
}

/* Rewrite the key scope's copy of a reservation through fn. */
struct tamper {
	uint64_t	 key_id, res;
	void		(*fn)(struct reserve_rec *);
};

static int
tamper_txn(struct store_txn *t, void *arg)
{
	struct tamper		*c = arg;
	struct reserve_rec	 r;
	unsigned char		 k[64];
	size_t			 kl, n = sizeof(r);
	int			 rc;

	kl = (size_t)snprintf((char *)k, 40, "k:%llu",
	    (unsigned long long)c->key_id) + 1;
	store_be64(k + kl, c->res);
	kl += 8;
	if ((rc = store_get(t, SDB_RESERVE, k, kl, &r, &n, 0)) != STORE_OK)
		return rc;
	if (n != sizeof(r) || r.version != RESERVE_VERSION)
		return STORE_ERROR;
	c->fn(&r);
	return store_put(t, SDB_RESERVE, k, kl, &r, sizeof(r));
}

static void
other_start(struct reserve_rec *r)
{
	r->holder.start++;	/* our pid, another process's start */
}

static void
other_pidns(struct reserve_rec *r)
{
	r->holder.pidns ^= 1;
	r->holder.start++;
}

static void
expire(struct reserve_rec *r)
{
	r->expires = 1;
}

/*
 * A reservation whose process died is reclaimed: billed once for the
 * prompt estimate and the progress recorded, never above what was
 * reserved, with a usage row flagged worker_died; its money is free.
 */
static void
test_reclaim(struct store *s, const struct config *cfg)
{
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a;
	struct candidate	 c;
	struct balance_rec	 bal;
	struct reclaim_result	 res;
	struct dead_rows	 d;
	struct sum		 sum;
	struct tamper		 tm;
	struct usage_row	 row;
	money_t			 held;
	char			 secret[KEY_SECRET_LEN + 1];

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "killed");
	k.prepaid = 1;
	keys_create(s, &k, secret, sizeof(secret));
	billing_credit(s, k.id, 1000000, LEDGER_TOPUP, "unit", NULL);
	principal(&p, cfg, &k);
	p.agent_budget = 0;
	cand_m(&c);

	die_holding(cfg, &k, 1, 70000);
	billing_balance(s, k.id, &bal, &held);
	is_int(held, 70000, "the dead process's reservation still holds "
	    "$0.07");
	is_int(admit_full(s, cfg, &p, &c, 1, 950000, "req_big", &a), STORE_OK,
	    "admit");
	is_int(a.verdict, ADMIT_BALANCE, "so $0.95 more does not fit: 402");
	is_int(billing_reclaim(s, time(NULL), &res, NULL, NULL), STORE_OK,
	    "reclaim");
	is_int(res.reclaimed, 1, "one reservation reclaimed");
	/* 10000 prompt tokens at $1 + 1000 completion tokens at $3. */
	is_int(res.billed, 13000, "billed the prompt estimate and the "
	    "progress recorded: $0.013");
	is_int(res.released, 70000 - 13000, "the rest released");
	rows_of(s, k.id, &d);
	is_int(d.died, 1, "one usage row flagged worker_died");
	is_int(d.last.cost, 13000, "its cost");
	is_int(d.last.completion, 1000, "its completion tokens: the progress");
	is_int(d.last.prompt, 10000, "its prompt tokens: the estimate");
	ok(d.last.estimated && d.last.stream && d.last.status == 502,
	    "estimated, streamed, status 502");
	is_str(d.last.request_id, "req_dead_0", "under the request's id");
	is_str(d.last.served, "m", "served by the candidate that streamed");
	memset(&sum, 0, sizeof(sum));
	billing_ledger(s, k.id, 0, -1, add_ledger, &sum);
	is_int(sum.debits, 13000, "one ledger debit of the row's cost");
	billing_balance(s, k.id, &bal, &held);
	is_int(held, 0, "nothing held any more");
	is_int(bal.balance, 1000000 - 13000, "balance: top-up - the debit");
	is_int(billing_reclaim(s, time(NULL), &res, NULL, NULL), STORE_OK,
	    "reclaim again");
	is_int(res.reclaimed + res.dropped, 0, "nothing left to reclaim");
	is_int(admit_full(s, cfg, &p, &c, 1, 950000, "req_big", &a), STORE_OK,
	    "admit");
	is_int(a.verdict, ADMIT_OK, "$0.95 fits at once after the reclaim");

	/* A live holder (this process) is left alone. */
	is_int(billing_reclaim(s, time(NULL), &res, NULL, NULL), STORE_OK,
	    "reclaim");
	is_int(res.reclaimed + res.dropped, 0, "a live process's reservation "
	    "is not reclaimed");
	is_int(settle(s, cfg, &p, &a, 20000, time(NULL)), STORE_OK, "settle");

	/* Our pid, another start time: a dead process whose pid came back. */
	is_int(admit_full(s, cfg, &p, &c, 1000, 50000, "req_reuse", &a),
	    STORE_OK, "admit");
	tm.key_id = k.id;
	tm.res = a.reservation;
	tm.fn = other_start;
	is_int(store_txn(s, tamper_txn, &tm), STORE_OK, "holder's start time "
	    "changed");
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	is_int(res.reclaimed, 1, "a reused pid does not keep a dead holder's "
	    "reservation alive");
	is_int(res.billed, 1000, "billed its prompt estimate");
	/* Its settle comes late (its row as the gateway makes it). */
	memset(&row, 0, sizeof(row));
	row.time_us = admitted_us;
	row.key_id = k.id;
	row.cost = 40000;
	row.status = 200;
	snprintf(row.agent, sizeof(row.agent), "%s", p.agent);
	snprintf(row.request_id, sizeof(row.request_id), "req_reuse");
	is_int(billing_settle(s, cfg, &p, &a, &row), STORE_OK,
	    "a late settle of the reclaimed request");
	memset(&sum, 0, sizeof(sum));
	billing_ledger(s, k.id, 0, -1, add_ledger, &sum);
	is_int(sum.debits, 13000 + 20000 + 1000, "no second debit for it");

	/* A holder in another pid namespace: released only once expired. */
	is_int(admit_full(s, cfg, &p, &c, 1000, 50000, "req_ns", &a),
	    STORE_OK, "admit");
	tm.res = a.reservation;
	tm.fn = other_pidns;
	store_txn(s, tamper_txn, &tm);
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	is_int(res.reclaimed + res.dropped, 0, "a holder this process cannot "
	    "see is left alone while the reservation lasts");
	tm.fn = expire;
	store_txn(s, tamper_txn, &tm);
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	ok(res.reclaimed == 0 && res.dropped == 1 && res.released == 50000,
	    "and released unbilled once it expired");

	/* The bill never exceeds the reservation. */
	die_holding(cfg, &k, 1, 5000);
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	ok(res.reclaimed == 1 && res.billed == 5000, "a reservation of "
	    "$0.005 is billed $0.005, not the $0.013 its estimate costs "
	    "(billed %lld)", (long long)res.billed);
	rows_of(s, k.id, &d);
	is_int(d.died, 3, "three worker_died rows in all");
	memset(&sum, 0, sizeof(sum));
	billing_ledger(s, k.id, 0, -1, add_ledger, &sum);
	is_int(sum.debits, d.cost, "ledger debits == usage costs");
	billing_balance(s, k.id, &bal, &held);
	is_int(bal.balance, 1000000 - d.cost, "balance == top-up - costs");
}

/* Four processes reclaim 30 dead reservations at once: each billed once. */
static void
test_reclaim_race(const struct config *cfg)
{
	struct store		*s;
	struct key_rec		 k;
	struct reclaim_result	 res;
	struct dead_rows	 d;
	struct sum		 sum;
	struct balance_rec	 bal;
	money_t			 held;
	char			 secret[KEY_SECRET_LEN + 1], err[256];
	int			 i, status, total = 0, bad = 0;

	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "massacre");
	k.prepaid = 1;
	keys_create(s, &k, secret, sizeof(secret));
	billing_credit(s, k.id, 5000000, LEDGER_TOPUP, "unit", NULL);
	store_close(s);
	die_holding(cfg, &k, 30, 70000);
	for (i = 0; i < 4; i++) {
		if (fork() != 0)
			continue;
		s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
		if (s == NULL || billing_reclaim(s, time(NULL), &res, NULL,
		    NULL) != STORE_OK)
			_exit(255);
		store_close(s);
		_exit((int)res.reclaimed);
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) == 255)
			bad++;
		else
			total += WEXITSTATUS(status);
	is_int(bad, 0, "four reclaimers ran without a store error");
	is_int(total, 30, "between them they reclaimed the 30 reservations");
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	rows_of(s, k.id, &d);
	is_int(d.died, 30, "30 worker_died rows, none twice");
	memset(&sum, 0, sizeof(sum));
	billing_ledger(s, k.id, 0, -1, add_ledger, &sum);
	is_int(sum.n, 31, "ledger: the top-up and 30 debits");
	is_int(sum.debits, d.cost, "debits == the rows' costs");
	billing_balance(s, k.id, &bal, &held);
	is_int(held, 0, "nothing held");
	is_int(bal.balance, 5000000 - d.cost, "balance == top-up - costs");
	store_close(s);
}

/* A key named name, created in s. */
static void
new_key(struct store *s, struct key_rec *k, const char *name)
{
	char	 secret[KEY_SECRET_LEN + 1];

	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	keys_create(s, k, secret, sizeof(secret));
}

/*
 * Requests in flight are the reservations: a key's max_concurrent and its
 * tier's (all its keys together) refuse the next one with
 * ADMIT_*_CONCURRENT and Retry-After 1; a settle, a reclaim of a dead
 * holder or the expiry frees the slot.
 */
static void
test_in_flight(struct store *s, const struct config *cfg)
{
	struct key_rec		 k, k2;
	struct principal	 p, p2;
	struct admission	 a[4];
	struct candidate	 c;
	struct reclaim_result	 res;
	time_t			 now = time(NULL);

	new_key(s, &k, "flight");
	principal(&p, cfg, &k);
	p.agent_budget = 0;
	p.max_concurrent = 2;
	cand_m(&c);
	is_int(admit_full(s, cfg, &p, &c, 10, 1000, "req_f1", &a[0]), STORE_OK,
	    "admit");
	is_int(admit_full(s, cfg, &p, &c, 10, 1000, "req_f2", &a[1]), STORE_OK,
	    "admit");
	ok(a[0].verdict == ADMIT_OK && a[1].verdict == ADMIT_OK,
	    "max_concurrent 2: two requests in flight admitted");
	is_int(admit_full(s, cfg, &p, &c, 10, 1000, "req_f3", &a[2]), STORE_OK,
	    "admit");
	is_int(a[2].verdict, ADMIT_KEY_CONCURRENT, "the third is refused");
	is_int(a[2].retry_after, 1, "Retry-After: 1 s");
	ok(strstr(a[2].message, "2 in flight") != NULL, "the message says "
	    "how many: %s", a[2].message);
	is_int(a[2].reservation, 0, "and nothing is reserved for it");
	is_int(settle(s, cfg, &p, &a[0], 500, now), STORE_OK, "one settles");
	admit_full(s, cfg, &p, &c, 10, 1000, "req_f3", &a[2]);
	is_int(a[2].verdict, ADMIT_OK, "then the next is admitted");
	admit_full(s, cfg, &p, &c, 10, 1000, "req_f4", &a[3]);
	is_int(a[3].verdict, ADMIT_KEY_CONCURRENT, "and the one after refused");
	is_int(admit(s, cfg, &p, 1000, now + 61, &a[3]), STORE_OK, "admit");
	is_int(a[3].verdict, ADMIT_OK, "reservations past reservation_ttl no "
	    "longer count as in flight");
	settle(s, cfg, &p, &a[1], 500, now);
	settle(s, cfg, &p, &a[2], 500, now);
	settle(s, cfg, &p, &a[3], 500, now);

	/* A killed holder's slots come back with the reclaim. */
	die_holding(cfg, &k, 2, 1000);
	admit_full(s, cfg, &p, &c, 10, 1000, "req_f5", &a[0]);
	is_int(a[0].verdict, ADMIT_KEY_CONCURRENT, "a dead process's two "
	    "reservations hold both slots");
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	is_int(res.reclaimed, 2, "reclaimed");
	admit_full(s, cfg, &p, &c, 10, 1000, "req_f5", &a[0]);
	is_int(a[0].verdict, ADMIT_OK, "after the reclaim a slot is free");
	settle(s, cfg, &p, &a[0], 500, now);

	/* The tier's limit counts all its keys together. */
	new_key(s, &k2, "flight-2");
	principal(&p2, cfg, &k2);
	p2.agent_budget = 0;
	p.max_concurrent = 0;
	p.tier_concurrent = p2.tier_concurrent = 3;
	admit_full(s, cfg, &p, &c, 10, 1000, "req_t1", &a[0]);
	admit_full(s, cfg, &p, &c, 10, 1000, "req_t2", &a[1]);
	admit_full(s, cfg, &p2, &c, 10, 1000, "req_t3", &a[2]);
	ok(a[0].verdict == ADMIT_OK && a[1].verdict == ADMIT_OK &&
	    a[2].verdict == ADMIT_OK, "tier limit 3: two of one key and one "
	    "of another admitted");
	admit_full(s, cfg, &p2, &c, 10, 1000, "req_t4", &a[3]);
	is_int(a[3].verdict, ADMIT_TIER_CONCURRENT, "a fourth, of either key, "
	    "is refused");
	ok(strstr(a[3].message, "tier T3") != NULL, "naming the tier: %s",
	    a[3].message);
	is_int(a[3].retry_after, 1, "Retry-After: 1 s");
	admit_full(s, cfg, &p, &c, 10, 1000, "req_t4", &a[3]);
	is_int(a[3].verdict, ADMIT_TIER_CONCURRENT, "either key");
	settle(s, cfg, &p, &a[0], 500, now);
	admit_full(s, cfg, &p2, &c, 10, 1000, "req_t4", &a[3]);
	is_int(a[3].verdict, ADMIT_OK, "a settle of one key frees a slot for "
	    "the other");
	settle(s, cfg, &p, &a[1], 500, now);
	settle(s, cfg, &p2, &a[2], 500, now);
	settle(s, cfg, &p2, &a[3], 500, now);
	die_holding_in(cfg, &k2, 3, 1000, 3);
	admit_full(s, cfg, &p, &c, 10, 1000, "req_t5", &a[0]);
	is_int(a[0].verdict, ADMIT_TIER_CONCURRENT, "a dead process holds the "
	    "tier's three slots");
	billing_reclaim(s, time(NULL), &res, NULL, NULL);
	is_int(res.reclaimed, 3, "reclaimed");
	admit_full(s, cfg, &p, &c, 10, 1000, "req_t5", &a[0]);
	is_int(a[0].verdict, ADMIT_OK, "after the reclaim the tier has room");
	settle(s, cfg, &p, &a[0], 500, now);
	is_int(admit(s, cfg, &p, 1000, now + 61, &a[0]), STORE_OK, "admit");
	is_int(a[0].verdict, ADMIT_OK, "an expired tier copy no longer counts");
	settle(s, cfg, &p, &a[0], 500, now);
}

/* Requests in flight as the racers see them, in memory they share. */
struct flight {
	int	 key[2], tier;		/* in flight now */
	int	 key_max[2], tier_max;	/* the most seen */
	int	 admitted, refused, errors;
};

static void
flight_max(int *max, int now)
{
	int	 m;

	while ((m = __atomic_load_n(max, __ATOMIC_SEQ_CST)) < now &&
	    !__atomic_compare_exchange_n(max, &m, now, 0, __ATOMIC_SEQ_CST,
	    __ATOMIC_SEQ_CST))
		;
}

/*
 * Eight processes, two keys of max_concurrent 3 in a tier of 4, each
 * holding what it is admitted a moment: never more in flight than the
 * limits, counted between the admission's commit and the settle's start.
 */
static void
test_in_flight_race(struct config *cfg)
{
	struct store		*s;
	struct key_rec		 k[2];
	struct principal	 p;
	struct admission	 a;
	struct candidate	 c;
	struct flight		*f;
	char			 err[256], rid[32];
	int			 i, j, w, status, bad = 0;

	f = mmap(NULL, sizeof(*f), PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	if (f == MAP_FAILED) {
		ok(0, "shared memory");
		return;
	}
	memset(f, 0, sizeof(*f));
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	new_key(s, &k[0], "crowd-a");
	new_key(s, &k[1], "crowd-b");
	store_close(s);
	for (i = 0; i < 8; i++) {
		if (fork() != 0)
			continue;
		s = store_open(dir, STORE_WORKER, 1, 30, err, sizeof(err));
		w = i % 2;
		principal(&p, cfg, &k[w]);
		p.agent_budget = 0;
		p.max_concurrent = 3;
		p.tier_concurrent = 4;
		cand_m(&c);
		for (j = 0; s != NULL && j < 40; j++) {
			snprintf(rid, sizeof(rid), "req_race_%d_%d", i, j);
			if (admit_full(s, cfg, &p, &c, 10, 1000, rid, &a) !=
			    STORE_OK) {
				__atomic_add_fetch(&f->errors, 1,
				    __ATOMIC_SEQ_CST);
				continue;
			}
			if (a.verdict != ADMIT_OK) {
				__atomic_add_fetch(&f->refused, 1,
				    __ATOMIC_SEQ_CST);
				usleep(500);
				continue;
			}
			__atomic_add_fetch(&f->admitted, 1, __ATOMIC_SEQ_CST);
			flight_max(&f->key_max[w], __atomic_add_fetch(
			    &f->key[w], 1, __ATOMIC_SEQ_CST));
			flight_max(&f->tier_max, __atomic_add_fetch(&f->tier, 1,
			    __ATOMIC_SEQ_CST));
			usleep(3000);
			__atomic_sub_fetch(&f->key[w], 1, __ATOMIC_SEQ_CST);
			__atomic_sub_fetch(&f->tier, 1, __ATOMIC_SEQ_CST);
			settle(s, cfg, &p, &a, 500, time(NULL));
		}
		store_close(s);
		config_free(cfg);
		_exit(s == NULL ? 1 : 0);
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	is_int(bad + f->errors, 0, "eight racers admitted and settled without "
	    "a store error");
	ok(f->key_max[0] <= 3 && f->key_max[1] <= 3, "never more than 3 of a "
	    "key in flight (most seen: %d and %d)", f->key_max[0],
	    f->key_max[1]);
	ok(f->tier_max <= 4, "never more than 4 of the tier in flight (most "
	    "seen: %d)", f->tier_max);
	ok(f->admitted > 0 && f->refused > 0, "%d admitted, %d refused",
	    f->admitted, f->refused);
	munmap(f, sizeof(*f));
}

static int
put_raw(struct store_txn *t, void *arg)
{
	struct { enum store_db db; const void *k, *v; size_t kl, vl; } *c = arg;

	return store_put(t, c->db, c->k, c->kl, c->v, c->vl);
}

struct v1_rows {
	long	 n, died;
};

static int
count_v1(void *arg, const struct usage_row *r)
{
	struct v1_rows	*c = arg;

	if (strcmp(r->request_id, "req_v1") == 0) {
		c->n++;
		c->died += r->worker_died;
	}
	return 0;
}

/* Records written before version 2 are still read. */
static void
test_versions(struct store *s, const struct config *cfg)
{
	struct { enum store_db db; const void *k, *v; size_t kl, vl; } c;
	struct key_rec		 k;
	struct principal	 p;
	struct admission	 a;
	struct reserve_rec	 r;
	struct usage_row	 row;
	struct v1_rows		 n = { 0, 0 };
	struct json_object	*o;
	unsigned char		 key[64];
	char			 secret[KEY_SECRET_LEN + 1];
	money_t			 held;
	struct balance_rec	 bal;

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "old");
	k.prepaid = 1;
	keys_create(s, &k, secret, sizeof(secret));
	billing_credit(s, k.id, 100000, LEDGER_TOPUP, "unit", NULL);
	principal(&p, cfg, &k);
	p.agent_budget = 0;
	/* A version 1 reservation: 72 bytes, no holder. */
	memset(&r, 0, sizeof(r));
	r.version = 1;
	r.id = 777;
	r.amount = 60000;
	r.expires = time(NULL) + 30;
	memset(key, 0, sizeof(key));
	c.kl = (size_t)snprintf((char *)key, 40, "k:%llu",
	    (unsigned long long)k.id) + 1;
	store_be64(key + c.kl, 777);
	c.kl += 8;
	c.db = SDB_RESERVE;
	c.k = key;
	c.v = &r;
	c.vl = RESERVE_V1_SIZE;
	is_int(store_txn(s, put_raw, &c), STORE_OK, "a version 1 reservation "
	    "stored");
	billing_balance(s, k.id, &bal, &held);
	is_int(held, 60000, "it counts");
	is_int(admit(s, cfg, &p, 50000, time(NULL), &a), STORE_OK, "admit");
	is_int(a.verdict, ADMIT_BALANCE, "beside it $0.05 does not fit");
	is_int(admit(s, cfg, &p, 50000, time(NULL) + 31, &a), STORE_OK,
	    "admit");
	is_int(a.verdict, ADMIT_OK, "once expired it is pruned, as before");

	/* A version 1 usage row: 848 bytes, no worker_died. */
	memset(&row, 0, sizeof(row));
	row.version = 1;
	row.time_us = 1000000;
	row.id = 778;
	row.status = 200;
	snprintf(row.request_id, sizeof(row.request_id), "req_v1");
	row.worker_died = 1;	/* not stored: beyond version 1 */
	memset(key, 0, sizeof(key));
	store_be64(key, (uint64_t)row.time_us);
	store_be64(key + 8, row.id);
	c.db = SDB_USAGE;
	c.kl = 16;
	c.v = &row;
	c.vl = USAGE_V1_SIZE;
	is_int(store_txn(s, put_raw, &c), STORE_OK, "a version 1 usage row "
	    "stored");
	usage_scan(s, 0, INT64_MAX, count_v1, &n);
	ok(n.n == 1 && n.died == 0, "it is read, not worker_died");
	o = json_tokener_parse("{\"v\":1,\"time_us\":5,\"id\":\"9\","
	    "\"request_id\":\"r\",\"key_id\":0,\"key_name\":\"\",\"agent\":\"\","
	    "\"tier\":\"\",\"route\":\"chat\",\"requested\":\"m\",\"served\":\"m\","
	    "\"provider\":\"p\",\"prompt_tokens\":1,\"completion_tokens\":2,"
	    "\"cached_tokens\":0,\"estimated\":false,\"cost_micro_usd\":3,"
	    "\"latency_ms\":4,\"ttft_ms\":0,\"status\":200,\"attempts\":1,"
	    "\"stream\":false,\"client_aborted\":false,\"reservation\":\"0\"}");
	ok(o != NULL && usage_from_json(o, &row) == 0 && !row.worker_died &&
	    row.version == USAGE_VERSION && row.cache_write == 0,
	    "a version 1 fallback line is read (no cache writes)");
	json_object_put(o);
	row.worker_died = 1;
	row.cache_write = 1500;
	o = usage_to_json(&row);
	memset(&row, 0, sizeof(row));
	ok(usage_from_json(o, &row) == 0 && row.worker_died &&
	    row.cache_write == 1500, "worker_died and cache_write_tokens go "
	    "through the fallback file's JSON");
	json_object_put(o);
	o = json_tokener_parse("{\"v\":4,\"time_us\":5,\"id\":\"9\","
	    "\"request_id\":\"r\",\"key_id\":0,\"key_name\":\"\",\"agent\":\"\","
	    "\"tier\":\"\",\"route\":\"chat\",\"requested\":\"m\",\"served\":\"m\","
	    "\"provider\":\"p\",\"prompt_tokens\":1,\"completion_tokens\":2,"
	    "\"cached_tokens\":0,\"cache_write_tokens\":-7,\"estimated\":false,"
	    "\"cost_micro_usd\":3,\"latency_ms\":4,\"ttft_ms\":0,\"status\":200,"
	    "\"attempts\":1,\"stream\":false,\"client_aborted\":false,"
	    "\"reservation\":\"0\"}");
	ok(o != NULL && usage_from_json(o, &row) == 0 && row.cache_write == 0,
	    "a negative cache_write_tokens in a line reads as none");
	json_object_put(o);
	is_int(usage_cache_write(-1), 0, "usage_cache_write: negative is 0");
	is_int(usage_cache_write((int64_t)INT32_MAX + 5), INT32_MAX,
	    "usage_cache_write: clamped to the row's int32");
}

/* Eight processes open a store that does not exist yet, all at once. */
static void
test_first_open(struct config *cfg)
{
	char		 fresh[300], err[256];
	struct store	*s;
	struct key_rec	 k;
	char		 secret[KEY_SECRET_LEN + 1];
	int		 i, status, bad = 0;

	snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
	mkdir(fresh, 0770);
	for (i = 0; i < 8; i++) {
		if (fork() != 0)
			continue;
		s = store_open(fresh, STORE_WORKER, 1, 30, err, sizeof(err));
		if (s == NULL) {
			config_free(cfg);
			_exit(1);
		}
		memset(&k, 0, sizeof(k));
		snprintf(k.name, sizeof(k.name), "first-%d", i);
		status = keys_create(s, &k, secret, sizeof(secret));
		store_close(s);
		config_free(cfg);
		_exit(status == STORE_OK ? 0 : 2);
	}
	while (wait(&status) > 0)
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			bad++;
	is_int(bad, 0, "eight processes created and used a new store at once");
}

int
main(void)
{
	struct config	*cfg;
	struct store	*s;
	char		 err[256], cmd[300];

	test_pricing();
	if (mkdtemp(dir) == NULL || (cfg = load()) == NULL) {
		ok(0, "scratch directory and config");
		return 1;
	}
	s = store_open(dir, STORE_RECOVER, 1, 30, err, sizeof(err));
	ok(s != NULL, "store created: %s", s ? "ok" : err);
	if (s == NULL)
		return 1;
	store_close(s);
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	test_budget_midnight(s, cfg);
	test_expiry(s, cfg);
	test_reclaim(s, cfg);
	test_versions(s, cfg);
	test_in_flight(s, cfg);
	store_close(s);
	test_reclaim_race(cfg);
	test_concurrency(cfg);
	test_budget_race(cfg);
	test_in_flight_race(cfg);
	test_dead_holder();
	test_first_open(cfg);
	config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		printf("# cannot remove %s\n", dir);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
