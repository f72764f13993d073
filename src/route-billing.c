/* route-billing.c: GET /billing/balance, /billing/transactions, /billing/usage and /usage: a key's money and usage. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "billing.h"
#include "config.h"
#include "keys.h"
#include "report.h"
#include "route.h"
#include "store.h"

#define PARAM_MAX	256		/* longest decoded query value */
#define LEDGER_LIMIT	100
#define US_PER_S	INT64_C(1000000)
#define DAY_S		86400

/* Whose data a request reads. */
struct target {
	int		 all;		/* the master key without key=: everyone */
	int		 master;	/* the caller is the master key */
	struct key_rec	 key;		/* the key read, when !all */
};

/* A store failure: logged with its cause, answered 503 without it. */
static int
store_failed(struct request *r, const char *what, int rc)
{
	return account_store_failed(r, "usage", what, rc);
}

/*
 * Decide whose data the request reads: a client key its own (key= may
 * only name itself), the master key everyone or the key named by key=.
 * need_key: the master key must name one. Returns 0 or the status sent.
 */
static int
get_target(struct request *r, struct store *st, int need_key,
    struct target *t)
{
	char	 ref[PARAM_MAX];
	int	 found, rc;

	memset(t, 0, sizeof(*t));
	if (r->who == NULL)
		return http_error(r, 401, "invalid_request_error",
		    "missing_api_key", NULL, "This route needs an API key");
	if ((found = http_query(r, "key", ref, sizeof(ref))) == -1 ||
	    (found == 1 && ref[0] == '\0'))
		return http_bad_param(r, "key", "'key' must be a key id, "
		    "name or prefix");
	t->master = r->who->master;
	if (!t->master) {
		t->key = r->who->key;
		if (found == 0)
			return 0;
		rc = keys_find(st, ref, &t->key);
		if (rc == STORE_OK && t->key.id == r->who->key.id)
			return 0;
		if (rc != STORE_OK && rc != STORE_NOTFOUND)
			return store_failed(r, "keys_find", rc);
		return http_error(r, 403, "permission_error", "admin_only",
		    "key", "Only the master key may read another key's data");
	}
	if (found == 0 || strcmp(ref, "0") == 0) {
		if (need_key)
			return http_bad_param(r, "key", "The master key has no "
			    "balance of its own: name a key with "
			    "?key=ID|name|prefix");
		/* key=0: the master key's own requests. */
		if (found == 0)
			t->all = 1;
		else
			snprintf(t->key.name, sizeof(t->key.name), "master");
		return 0;
	}
	if ((rc = keys_find(st, ref, &t->key)) == STORE_NOTFOUND)
		return http_error(r, 404, "invalid_request_error",
		    "key_not_found", "key", "No key '%s'", ref);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);
	return 0;
}

static struct json_object *
usd(money_t m)
{
	char	 s[32];

	money_format_usd(m, s, sizeof(s));
	return json_object_new_string(s);
}

static struct json_object *
str_or_null(const char *s)
{
	return s[0] != '\0' ? json_object_new_string(s) : NULL;
}

/* GET /billing/balance: a key's prepaid balance and what is held now. */
int
route_billing_balance(struct request *r, const char *arg)
{
	struct store		*st;
	struct target		 t;
	struct balance_rec	 bal;
	struct json_object	*o;
	money_t			 reserved = 0;
	int			 rc;

	if ((st = account_need_store(r, "usage")) == NULL)
		return 503;
	if ((rc = get_target(r, st, 1, &t)) != 0)
		return rc;
	memset(&bal, 0, sizeof(bal));
	rc = billing_balance(st, t.key.id, &bal, &reserved);
	if (rc == STORE_NOTFOUND) {
		memset(&bal, 0, sizeof(bal));
		reserved = 0;
	} else if (rc != STORE_OK)
		return store_failed(r, "billing_balance", rc);

	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("balance"));
	json_object_object_add(o, "key_id", json_object_new_uint64(t.key.id));
	json_object_object_add(o, "key_name",
	    json_object_new_string(t.key.name));
	json_object_object_add(o, "prepaid",
	    json_object_new_boolean(t.key.prepaid));
	json_object_object_add(o, "balance_micro_usd",
	    json_object_new_int64(bal.balance));
	json_object_object_add(o, "reserved_micro_usd",
	    json_object_new_int64(reserved));
	json_object_object_add(o, "available_micro_usd",
	    json_object_new_int64(bal.balance - reserved));
	json_object_object_add(o, "credited_micro_usd",
	    json_object_new_int64(bal.credited));
	json_object_object_add(o, "debited_micro_usd",
	    json_object_new_int64(bal.debited));
	json_object_object_add(o, "balance_usd", usd(bal.balance));
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/* What the ledger callback fills. */
struct ledger_page {
	struct json_object	*data;
	long			 limit;
	long			 got;
	int64_t			 last_time;	/* the entry before, newest first */
	uint64_t		 last_id;
};

static int
ledger_entry(void *arg, const struct ledger_rec *l)
{
	struct ledger_page	*pg = arg;

	/* An entry not older than the last: a retried scan started over. */
	if (pg->got > 0 && (l->time_us > pg->last_time ||
	    (l->time_us == pg->last_time && l->id >= pg->last_id))) {
		json_object_array_del_idx(pg->data, 0,
		    json_object_array_length(pg->data));
		pg->got = 0;
	}
	pg->last_time = l->time_us;
	pg->last_id = l->id;
	/* One more than the page was asked for: it only says has_more. */
	if (++pg->got > pg->limit)
		return 0;
	json_object_array_add(pg->data, ledger_to_json(l));
	return 0;
}

/* A whole number from the query in [min, max], or def when absent. */
static int
query_long(struct request *r, const char *name, long def, long min,
    long max, long *out)
{
	char	 v[32], *end;
	int	 found;

	if ((found = http_query(r, name, v, sizeof(v))) == 0) {
		*out = def;
		return 0;
	}
	if (found == 1 && v[0] >= '0' && v[0] <= '9') {
		*out = strtol(v, &end, 10);
		if (*end == '\0' && *out >= min && *out <= max)
			return 0;
	}
	return http_bad_param(r, name, "'%s' must be a whole number from %ld "
	    "to %ld", name, min, max);
}

/* GET /billing/transactions?limit=20&offset=0: the ledger, newest first. */
int
route_billing_transactions(struct request *r, const char *arg)
{
	struct store		*st;
	struct target		 t;
	struct ledger_page	 pg;
	struct json_object	*o;
	long			 limit, offset;
	int			 rc;

	if ((st = account_need_store(r, "usage")) == NULL)
		return 503;
	if ((rc = query_long(r, "limit", 20, 1, LEDGER_LIMIT, &limit)) != 0 ||
	    (rc = query_long(r, "offset", 0, 0, 1000000000L, &offset)) != 0)
		return rc;
	if ((rc = get_target(r, st, 1, &t)) != 0)
		return rc;

	pg.data = json_object_new_array();
	pg.limit = limit;
	pg.got = 0;
	pg.last_time = 0;
	pg.last_id = 0;
	rc = billing_ledger(st, t.key.id, offset, limit + 1, ledger_entry, &pg);
	if (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_STOP) {
		json_object_put(pg.data);
		return store_failed(r, "billing_ledger", rc);
	}
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", pg.data);
	json_object_object_add(o, "has_more",
	    json_object_new_boolean(pg.got > limit));
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/* A time parameter in unix seconds, or def when absent. */
static int
query_time(struct request *r, const char *name, int64_t def, int64_t *out)
{
	char	 v[32];
	int	 found;

	if ((found = http_query(r, name, v, sizeof(v))) == 0) {
		*out = def;
		return 0;
	}
	if (found == 1 && report_parse_time(v, out) == 0)
		return 0;
	return http_bad_param(r, name, "'%s' must be a date YYYY-MM-DD (UTC) "
	    "or unix seconds", name);
}

/*
 * GET /billing/usage and /admin/usage ?from&to&group_by=day,model&key&
 * format=json|csv: usage totals, grouped by up to REPORT_DEPTH of day,
 * month, model, key, agent, provider, tier (default day). A client key
 * reads its own; the master key everyone's, or key='s.
 */
int
route_billing_usage(struct request *r, const char *arg)
{
	struct store		*st;
	struct target		 t;
	struct report		 rep;
	struct json_object	*o, *rj;
	enum report_group	 by[REPORT_DEPTH] = { REPORT_DAY };
	char			 v[64], *csv;
	int64_t			 now = (int64_t)r->wall.tv_sec, from, to;
	size_t			 nby = 1, len;
	int			 rc, found, as_csv = 0;

	if ((st = account_need_store(r, "usage")) == NULL)
		return 503;
	if ((rc = query_time(r, "from", now - 30 * DAY_S, &from)) != 0 ||
	    (rc = query_time(r, "to", now + 1, &to)) != 0)
		return rc;
	if (from >= to)
		return http_bad_param(r, "from", "'from' must be before 'to' "
		    "(to is exclusive)");
	found = http_query(r, "group_by", v, sizeof(v));
	if (found == -1 || (found == 1 &&
	    report_groups_parse(v, by, &nby) == -1))
		return http_bad_param(r, "group_by", "'group_by' must be none "
		    "or up to %d of day, month, model, key, agent, provider, "
		    "tier, comma-separated", REPORT_DEPTH);
	found = http_query(r, "format", v, sizeof(v));
	if (found == -1 || (found == 1 && strcmp(v, "json") != 0 &&
	    !(as_csv = strcmp(v, "csv") == 0)))
		return http_bad_param(r, "format", "'format' must be json or "
		    "csv");
	if ((rc = get_target(r, st, 0, &t)) != 0)
		return rc;

	rc = report_build_by(st, from * US_PER_S, to * US_PER_S, !t.all,
	    t.key.id, by, nby, &rep);
	if (rc != STORE_OK) {
		report_free(&rep);
		return store_failed(r, "report_build", rc);
	}
	if (as_csv) {
		csv = report_to_csv(&rep, &len);
		report_free(&rep);
		if (csv == NULL)
			return http_error(r, 500, "server_error", NULL, NULL,
			    "out of memory");
		http_header(r, "Content-Length", "%zu", len);
		http_header(r, "Content-Disposition", "attachment; "
		    "filename=\"usage.csv\"");
		if (http_begin(r, 200, "text/csv; charset=utf-8") == 0 &&
		    http_write(r, csv, len) == 0)
			http_flush(r);
		free(csv);
		return 200;
	}
	rj = report_to_json(&rep);
	report_free(&rep);
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("usage"));
	json_object_object_add(o, "from", json_object_new_int64(from));
	json_object_object_add(o, "to", json_object_new_int64(to));
	if (!t.all) {
		json_object_object_add(o, "key_id",
		    json_object_new_uint64(t.key.id));
		json_object_object_add(o, "key_name",
		    json_object_new_string(t.key.name));
	}
	json_object_object_foreach(rj, name, val)
		json_object_object_add(o, name, json_object_get(val));
	json_object_put(rj);
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/* GET /admin/usage: the same for the master key (the router checks). */
int
route_admin_usage(struct request *r, const char *arg)
{
	return route_billing_usage(r, arg);
}

/* Who a key bills as when the master key asks about it (the router's rules). */
static void
key_principal(const struct config *cfg, const struct key_rec *k,
    struct principal *p)
{
	memset(p, 0, sizeof(*p));
	p->key = *k;
	snprintf(p->agent, sizeof(p->agent), "%s",
	    k->agent[0] != '\0' ? k->agent : k->name);
	account_resolve(cfg, p);
}

/* Add the spend of scope on the UTC day starting at day to *out. */
static int
spent_on(struct store *st, const char *scope, time_t day, money_t *out)
{
	struct spend_rec	 sp;
	int			 rc;

	/* billing_spend gives zeros for a day with no spend. */
	if ((rc = billing_spend(st, scope, day, &sp)) != STORE_OK)
		return rc;
	*out += sp.spent;
	return STORE_OK;
}

/*
 * GET /usage: the caller's today and this month, its budgets and what is
 * spent of them, and its balance. The master key sees everyone's totals,
 * or with key= one key's summary.
 */
int
route_usage(struct request *r, const char *arg)
{
	struct store		*st;
	struct target		 t;
	struct principal	 kp;
	const struct principal	*p = NULL;
	struct report		 rep;
	struct report_row	 zero;
	struct balance_rec	 bal;
	struct json_object	*o, *b, *today = NULL;
	time_t			 now = r->wall.tv_sec, day, month, d;
	money_t			 reserved, key_today = 0, agent_today = 0;
	money_t			 month_spent = 0;
	char			 scope[16 + KEY_AGENT_MAX], date[16];
	struct tm		 tm;
	size_t			 i;
	int			 rc;

	if ((st = account_need_store(r, "usage")) == NULL)
		return 503;
	if ((rc = get_target(r, st, 0, &t)) != 0)
		return rc;
	if (!t.all && t.key.id != 0) {
		if (!t.master)
			p = r->who;
		else {
			key_principal(r->cfg, &t.key, &kp);
			p = &kp;
		}
	}
	day = billing_day(now);
	month = billing_month(now);

	/* One scan of the month by day gives both today and the month. */
	rc = report_build(st, (int64_t)month * US_PER_S,
	    ((int64_t)now + 1) * US_PER_S, !t.all, t.key.id, REPORT_DAY, &rep);
	if (rc != STORE_OK) {
		report_free(&rep);
		return store_failed(r, "report_build", rc);
	}
	gmtime_r(&day, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	for (i = 0; i < rep.n; i++)
		if (strcmp(rep.rows[i].group, date) == 0)
			today = report_row_to_json(&rep.rows[i], 0);
	if (today == NULL) {
		memset(&zero, 0, sizeof(zero));
		today = report_row_to_json(&zero, 0);
	}

	o = json_object_new_object();
	json_object_object_add(o, "object",
	    json_object_new_string("usage_summary"));
	json_object_object_add(o, "key_id",
	    json_object_new_uint64(t.all ? 0 : t.key.id));
	json_object_object_add(o, "key_name",
	    json_object_new_string(t.all ? "master" : t.key.name));
	json_object_object_add(o, "agent",
	    p != NULL ? str_or_null(p->agent) : NULL);
	json_object_object_add(o, "tier", p != NULL ? str_or_null(p->tier) :
	    NULL);
	json_object_object_add(o, "today", today);
	json_object_object_add(o, "month", report_row_to_json(&rep.total, 0));
	report_free(&rep);

	if (p == NULL) {
		/* Everyone: no budgets, no balance of one key. */
		json_object_object_add(o, "budgets", NULL);
		json_object_object_add(o, "balance_micro_usd", NULL);
		goto send;
	}
	snprintf(scope, sizeof(scope), "k:%" PRIu64, p->key.id);
	if ((rc = spent_on(st, scope, day, &key_today)) != STORE_OK)
		goto fail;
	for (d = month; d <= day; d += DAY_S)
		if ((rc = spent_on(st, scope, d, &month_spent)) != STORE_OK)
			goto fail;
	snprintf(scope, sizeof(scope), "a:%s", p->agent);
	if ((rc = spent_on(st, scope, day, &agent_today)) != STORE_OK)
		goto fail;
	reserved = 0;
	memset(&bal, 0, sizeof(bal));
	rc = billing_balance(st, p->key.id, &bal, &reserved);
	if (rc == STORE_NOTFOUND)
		bal.balance = 0;
	else if (rc != STORE_OK)
		goto fail;

	b = json_object_new_object();
	json_object_object_add(b, "key_daily_micro_usd",
	    json_object_new_int64(p->key.daily_budget));
	json_object_object_add(b, "key_spent_today_micro_usd",
	    json_object_new_int64(key_today));
	json_object_object_add(b, "agent_daily_micro_usd",
	    json_object_new_int64(p->agent_budget));
	json_object_object_add(b, "agent_spent_today_micro_usd",
	    json_object_new_int64(agent_today));
	json_object_object_add(b, "monthly_micro_usd",
	    json_object_new_int64(p->monthly_budget));
	json_object_object_add(b, "spent_month_micro_usd",
	    json_object_new_int64(month_spent));
	json_object_object_add(o, "budgets", b);
	json_object_object_add(o, "balance_micro_usd",
	    json_object_new_int64(bal.balance));
send:
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
fail:
	json_object_put(o);
	return store_failed(r, "usage summary", rc);
}
