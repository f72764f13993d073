/* unit-report.c: report_parse_time, report_group_parse, report_groups_parse, report_build and report_build_by (month, provider, tier, several at once, latency, JSON, CSV) over a scratch store. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../src/report.h"
#include "../src/store.h"
#include "../src/usage.h"
#include "tap.h"

#define US	INT64_C(1000000)
#define DAY	INT64_C(86400)
/* 2026-03-10T00:00:00Z */
#define D	INT64_C(1773100800)

static void
test_parse_time(void)
{
	int64_t	 t = -1;

	ok(report_parse_time("2026-03-10", &t) == 0 && t == D,
	    "a date is its UTC midnight");
	ok(report_parse_time("2024-02-29", &t) == 0 && t == 1709164800,
	    "a leap day");
	ok(report_parse_time("1773100800", &t) == 0 && t == D,
	    "unix seconds");
	ok(report_parse_time("0", &t) == 0 && t == 0, "0 is the epoch");
	ok(report_parse_time("2026-02-29", &t) == -1, "no 29 February 2026");
	ok(report_parse_time("2026-04-31", &t) == -1, "no 31 April");
	ok(report_parse_time("2026-13-01", &t) == -1, "no month 13");
	ok(report_parse_time("2026-00-10", &t) == -1, "no month 0");
	ok(report_parse_time("2026-3-10", &t) == -1, "two-digit month");
	ok(report_parse_time("2026-03-10T00:00", &t) == -1, "no time part");
	ok(report_parse_time("", &t) == -1, "empty");
	ok(report_parse_time(NULL, &t) == -1, "NULL");
	ok(report_parse_time("-5", &t) == -1, "negative");
	ok(report_parse_time("17731008OO", &t) == -1, "not digits");
	ok(report_parse_time("99999999999999", &t) == -1,
	    "seconds past year 9999");
}

static void
test_group_parse(void)
{
	enum report_group	 g = REPORT__MAX;

	ok(report_group_parse("day", &g) == 0 && g == REPORT_DAY, "day");
	ok(report_group_parse("model", &g) == 0 && g == REPORT_MODEL, "model");
	ok(report_group_parse("key", &g) == 0 && g == REPORT_KEY, "key");
	ok(report_group_parse("agent", &g) == 0 && g == REPORT_AGENT, "agent");
	ok(report_group_parse(NULL, &g) == 0 && g == REPORT_NONE, "NULL: none");
	ok(report_group_parse("", &g) == 0 && g == REPORT_NONE, "\"\": none");
	ok(report_group_parse("week", &g) == -1, "week is unknown");
	ok(report_group_parse("Day", &g) == -1, "names are lower case");
}

static struct usage_row rows[5];
static size_t nrows;

static void
row(int64_t t, uint64_t key, const char *name, const char *agent,
    const char *requested, const char *served, int status, money_t cost)
{
	struct usage_row	*u = &rows[nrows++];

	memset(u, 0, sizeof(*u));
	u->version = STORE_VERSION;
	u->time_us = t * US;
	u->id = 1000 + nrows;
	u->key_id = key;
	u->status = (uint16_t)status;
	u->prompt = 10;
	u->completion = 5;
	u->cached = 2;
	u->cache_write = 3;
	u->cost = cost;
	snprintf(u->request_id, sizeof(u->request_id), "req_%zu", nrows);
	snprintf(u->key_name, sizeof(u->key_name), "%s", name);
	snprintf(u->agent, sizeof(u->agent), "%s", agent);
	snprintf(u->requested, sizeof(u->requested), "%s", requested);
	snprintf(u->served, sizeof(u->served), "%s", served);
	snprintf(u->route, sizeof(u->route), "chat");
}

static int
put_rows(struct store_txn *t, void *arg)
{
	size_t	 i;
	int	 rc;

	for (i = 0; i < nrows; i++)
		if ((rc = usage_put(t, &rows[i])) != STORE_OK)
			return rc;
	return STORE_OK;
}

static const struct report_row *
group(const struct report *rep, size_t i)
{
	static struct report_row	 none;

	return i < rep->n ? &rep->rows[i] : &none;
}

static void
test_build(struct store *st)
{
	struct report	 rep;
	int		 rc;

	/* 23:59:59 on the 9th and 00:00:00 on the 10th fall in two days. */
	row(D - 1, 1, "alice", "bot", "gpt-4o", "gpt-4o", 200, 100);
	row(D, 2, "bob", "bot", "claude-x", "", 500, 200);
	row(D + 3600, 0, "", "", "gpt-4o", "gpt-4o", 200, 300);
	row(D + DAY, 1, "alice", "bot", "gpt-4o", "gpt-4o", 200, 400);
	rc = store_txn(st, put_rows, NULL);
	is_int(rc, STORE_OK, "four usage rows stored");

	rc = report_build(st, (D - DAY) * US, (D + DAY) * US, 0, 0, REPORT_DAY,
	    &rep);
	is_int(rc, STORE_OK, "report by day");
	is_int(rep.n, 2, "two days");
	is_str(group(&rep, 0)->group, "2026-03-09", "23:59:59 is the 9th");
	is_int(group(&rep, 0)->requests, 1, "one request on the 9th");
	is_str(group(&rep, 1)->group, "2026-03-10", "00:00:00 is the 10th");
	is_int(group(&rep, 1)->requests, 2, "two requests on the 10th");
	is_int(group(&rep, 1)->errors, 1, "status 500 is an error");
	is_int(rep.total.requests, 3, "to is exclusive: three in all");
	is_int(rep.total.errors, 1, "one error in all");
	is_int(rep.total.cost, 600, "total cost");
	is_int(rep.total.prompt, 30, "total prompt tokens");
	is_int(rep.total.completion, 15, "total completion tokens");
	is_int(rep.total.cached, 6, "total cached tokens");
	is_int(rep.total.cache_write, 9, "total cache-write tokens, apart");
	report_free(&rep);
	ok(rep.rows == NULL && rep.n == 0, "report_free empties the report");

	rc = report_build(st, (D - DAY) * US, (D + 2 * DAY) * US, 0, 0,
	    REPORT_MODEL, &rep);
	is_int(rc, STORE_OK, "report by model");
	is_int(rep.n, 2, "two models");
	is_str(group(&rep, 0)->group, "claude-x",
	    "no served model: the requested one");
	is_int(group(&rep, 0)->cost, 200, "its cost");
	is_str(group(&rep, 1)->group, "gpt-4o", "the served model");
	is_int(group(&rep, 1)->requests, 3, "three gpt-4o requests");
	is_int(group(&rep, 1)->cost, 800, "their cost");
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, (D + 2 * DAY) * US, 0, 0,
	    REPORT_KEY, &rep);
	is_int(rc, STORE_OK, "report by key");
	is_int(rep.n, 3, "three keys");
	is_str(group(&rep, 0)->group, "alice (1)", "name (id)");
	is_int(group(&rep, 0)->requests, 2, "alice's requests");
	is_str(group(&rep, 1)->group, "bob (2)", "bob");
	is_str(group(&rep, 2)->group, "master", "key id 0 is the master key");
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, (D + 2 * DAY) * US, 0, 0,
	    REPORT_AGENT, &rep);
	is_int(rc, STORE_OK, "report by agent");
	is_int(rep.n, 2, "two agents");
	is_str(group(&rep, 0)->group, "", "the master key's empty agent");
	is_str(group(&rep, 1)->group, "bot", "bot");
	is_int(group(&rep, 1)->requests, 3, "bot's requests");
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, (D + 2 * DAY) * US, 1, 1,
	    REPORT_DAY, &rep);
	is_int(rc, STORE_OK, "one key's report");
	is_int(rep.n, 2, "alice used two days");
	is_str(group(&rep, 1)->group, "2026-03-11", "the 11th");
	is_int(rep.total.cost, 500, "alice's cost only");
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, (D + 2 * DAY) * US, 1, 0,
	    REPORT_NONE, &rep);
	is_int(rc, STORE_OK, "the master key's rows, no groups");
	is_int(rep.n, 0, "no groups");
	is_int(rep.total.requests, 1, "one master request");
	is_int(rep.total.cost, 300, "its cost");
	report_free(&rep);

	rc = report_build(st, D * US, (D + 1) * US, 0, 0, REPORT_DAY, &rep);
	is_int(rc, STORE_OK, "from is inclusive");
	is_int(rep.total.requests, 1, "the row at exactly from counts");
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, D * US, 0, 0, REPORT_DAY, &rep);
	is_int(rc, STORE_OK, "to is exclusive");
	is_int(rep.total.requests, 1, "the row at exactly to does not");
	report_free(&rep);

	rc = report_build(st, D * US, D * US, 0, 0, REPORT_DAY, &rep);
	is_int(rc, STORE_OK, "an empty range");
	is_int(rep.n + rep.total.requests, 0, "is empty");
	report_free(&rep);
}

static void
test_build_by(struct store *st)
{
	struct report		 rep;
	struct json_object	*o, *e;
	enum report_group	 by[REPORT_DEPTH];
	size_t			 n = 9, len;
	char			 v[64], *csv;
	int64_t			 p50, p95;
	int			 rc;

	ok(report_groups_parse("month,provider", by, &n) == 0 && n == 2 &&
	    by[0] == REPORT_MONTH && by[1] == REPORT_PROVIDER,
	    "groups: month,provider");
	ok(report_groups_parse("tier", by, &n) == 0 && n == 1 &&
	    by[0] == REPORT_TIER, "groups: tier");
	ok(report_groups_parse("none", by, &n) == 0 && n == 0, "groups: none");
	ok(report_groups_parse("", by, &n) == 0 && n == 0, "groups: \"\"");
	ok(report_groups_parse("day,day", by, &n) == -1, "a grouping twice");
	ok(report_groups_parse("day,month,model,key", by, &n) == -1,
	    "four groupings: too many");
	ok(report_groups_parse("day,", by, &n) == -1, "an empty name");
	ok(report_groups_parse("day,none", by, &n) == -1, "none in a list");
	ok(report_groups_parse("week", by, &n) == -1, "week");

	/* Two rows in April with a provider, a tier and latencies. */
	nrows = 0;
	row(D + 40 * DAY, 1, "alice", "bot", "gpt-4o", "gpt-4o", 200, 10);
	rows[0].latency_ms = 100;
	row(D + 41 * DAY, 1, "alice", "bot", "gpt-4o", "gpt-4o", 429, 0);
	rows[1].latency_ms = 1000;
	for (n = 0; n < 2; n++) {
		snprintf(rows[n].provider, sizeof(rows[n].provider), "p1");
		snprintf(rows[n].tier, sizeof(rows[n].tier), "T1");
	}
	is_int(store_txn(st, put_rows, NULL), STORE_OK, "two April rows");

	by[0] = REPORT_MONTH;
	by[1] = REPORT_PROVIDER;
	rc = report_build_by(st, (D - DAY) * US, (D + 60 * DAY) * US, 0, 0, by,
	    2, &rep);
	is_int(rc, STORE_OK, "report by month,provider");
	is_int(rep.n, 2, "two groups");
	is_str(report_value(group(&rep, 0), 0, v, sizeof(v)), "2026-03",
	    "March first");
	is_str(report_value(group(&rep, 0), 1, v, sizeof(v)), "-",
	    "no provider: -");
	is_int(group(&rep, 0)->requests, 4, "March's four rows");
	is_str(report_value(group(&rep, 1), 0, v, sizeof(v)), "2026-04",
	    "then April");
	is_str(report_value(group(&rep, 1), 1, v, sizeof(v)), "p1",
	    "by p1");
	is_str(report_value(group(&rep, 1), 2, v, sizeof(v)), "",
	    "no third value");
	is_int(group(&rep, 1)->errors, 1, "a 429 is an error");
	is_int(report_latency(group(&rep, 0), 50), -1, "no latency in March");
	p50 = report_latency(group(&rep, 1), 50);
	p95 = report_latency(group(&rep, 1), 95);
	ok(p50 >= 90 && p50 <= 110, "p50 of 100 and 1000 ms: ~100 (%lld)",
	    (long long)p50);
	ok(p95 >= 900 && p95 <= 1100, "p95: ~1000 (%lld)", (long long)p95);
	o = report_to_json(&rep);
	e = json_object_array_get_idx(json_object_object_get(o, "data"), 1);
	is_str(json_object_get_string(json_object_object_get(o, "group_by")),
	    "month,provider", "JSON: group_by");
	is_str(json_object_get_string(json_object_object_get(e, "month")),
	    "2026-04", "JSON: a field per grouping: month");
	is_str(json_object_get_string(json_object_object_get(e, "provider")),
	    "p1", "JSON: provider");
	is_str(json_object_get_string(json_object_object_get(e, "group")),
	    "2026-04, p1", "JSON: group joins them");
	json_object_put(o);
	csv = report_to_csv(&rep, &len);
	ok(csv != NULL && strncmp(csv, "month,provider,requests,errors,", 31)
	    == 0, "CSV: a column per grouping");
	ok(csv != NULL && strstr(csv, ",cached_tokens,cache_write_tokens,cost_"
	    "micro_usd,") != NULL, "CSV: cached and cache-write columns");
	ok(csv != NULL && strstr(csv, "\n2026-04,p1,2,1,20,10,4,6,10,0.00001") !=
	    NULL, "CSV: April's row");
	free(csv);
	report_free(&rep);

	rc = report_build(st, (D - DAY) * US, (D + 60 * DAY) * US, 0, 0,
	    REPORT_TIER, &rep);
	is_int(rc, STORE_OK, "report by tier");
	is_int(rep.n, 2, "two tiers");
	is_str(group(&rep, 0)->group, "-", "no tier: -");
	is_str(group(&rep, 1)->group, "T1", "T1");
	is_int(group(&rep, 1)->requests, 2, "T1's two");
	report_free(&rep);
}

int
main(void)
{
	char		 dir[] = "/tmp/llmgate-unit-report-XXXXXX";
	char		 err[512], cmd[600];
	struct store	*st;

	test_parse_time();
	test_group_parse();

	if (mkdtemp(dir) == NULL) {
		ok(0, "mkdtemp");
		return tap_done();
	}
	st = store_open(dir, STORE_RECOVER, 1, 0, err, sizeof(err));
	ok(st != NULL, "store created: %s", st ? "ok" : err);
	if (st != NULL)
		store_close(st);
	st = store_open(dir, STORE_ADMIN, 1, 0, err, sizeof(err));
	ok(st != NULL, "store reopened: %s", st ? "ok" : err);
	if (st != NULL) {
		test_build(st);
		test_build_by(st);
		store_close(st);
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		printf("# could not remove %s\n", dir);
	return tap_done();
}
