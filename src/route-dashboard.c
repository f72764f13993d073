/* route-dashboard.c: the dashboard's master-key views of the usage rows: time series (GET /admin/dashboard/series) and the filtered log (GET /admin/dashboard/log). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "account.h"
#include "config.h"
#include "keys.h"
#include "report.h"
#include "route.h"
#include "store.h"
#include "usage.h"

#define US_PER_S	INT64_C(1000000)
#define HOUR_S		3600
#define DAY_S		86400
#define BUCKETS_MAX	1000		/* most time buckets one series holds */
#define GROUPS_MAX	20		/* groups per dimension; the rest is "(other)" */
#define GROUP_LEN	272
#define LAT_BINS	128		/* latency histogram bins per bucket */
#define LOG_LIMIT_MAX	2000		/* most rows the log answers */
#define PARAM_MAX	256

/* The dimensions a series is broken down by. */
enum dim { DIM_MODEL, DIM_PROVIDER, DIM_AGENT, DIM_KEY, DIM__MAX };
static const char *const dim_names[DIM__MAX] = {
	"model", "provider", "agent", "key",
};

/* One group of a dimension: totals and per-bucket requests, errors and cost. */
struct group {
	char		 name[GROUP_LEN];
	int64_t		 requests, errors;
	money_t		 cost;
	int64_t		*req, *err;
	money_t		*costs;
};

struct dimension {
	struct group	 g[GROUPS_MAX + 1];	/* the last: "(other)" */
	size_t		 n;			/* named groups in use */
	int		 other;			/* "(other)" has rows */
};

/* A series being built: n buckets of bucket_s seconds from from_s. */
struct series {
	int64_t		 from_s, bucket_s;
	size_t		 n;
	int64_t		*req, *err, *prompt, *completion;
	money_t		*cost;
	uint32_t	*lat;			/* n * LAT_BINS */
	struct dimension dims[DIM__MAX];
	int64_t		 last_time;		/* to spot a rescan */
	uint64_t	 last_id;
	int		 seen;
};

static int
store_failed(struct request *r, const char *what, int rc)
{
	return account_store_failed(r, "usage", what, rc);
}

/* A time parameter in unix seconds, or def when absent; 0 or the status sent. */
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
 * Latency histogram bin: milliseconds below 16 exactly, then bins 10%
 * wide (bin b >= 16 ends at 16 * 1.1^(b - 16) ms), up to about 15
 * minutes in the last.
 */
static int
lat_bin(int32_t ms)
{
	double	 x = 16.0;
	int	 b = 16;

	if (ms < 16)
		return ms < 0 ? 0 : ms;
	while (x < (double)ms && b < LAT_BINS - 1) {
		x *= 1.1;
		b++;
	}
	return b;
}

/* The upper bound of a bin in milliseconds (what a percentile reports). */
static int64_t
lat_bin_ms(int b)
{
	double	 x = 16.0;
	int	 i;

	if (b < 16)
		return b;
	for (i = 16; i < b; i++)
		x *= 1.1;
	return (int64_t)x + ((double)(int64_t)x < x);
}

/* The q-th percentile (0..1) of bucket i's histogram, or -1 when empty. */
static int64_t
percentile(const struct series *s, size_t i, double q)
{
	const uint32_t	*h = s->lat + i * LAT_BINS;
	uint64_t	 total = 0, seen = 0, want;
	int		 b;

	for (b = 0; b < LAT_BINS; b++)
		total += h[b];
	if (total == 0)
		return -1;
	want = (uint64_t)(q * (double)total);
	if ((double)want < q * (double)total)
		want++;
	if (want == 0)
		want = 1;
	for (b = 0; b < LAT_BINS; b++) {
		seen += h[b];
		if (seen >= want)
			return lat_bin_ms(b);
	}
	return lat_bin_ms(LAT_BINS - 1);
}

static void
series_free(struct series *s)
{
	size_t	 d, i;

	free(s->req);
	free(s->err);
	free(s->prompt);
	free(s->completion);
	free(s->cost);
	free(s->lat);
	for (d = 0; d < DIM__MAX; d++)
		for (i = 0; i <= GROUPS_MAX; i++) {
			free(s->dims[d].g[i].req);
			free(s->dims[d].g[i].err);
			free(s->dims[d].g[i].costs);
		}
	memset(s, 0, sizeof(*s));
}

/* Allocate n buckets' arrays; -1 when out of memory. */
static int
series_alloc(struct series *s, size_t n)
{
	size_t	 d, i;

	s->n = n;
	s->req = calloc(n, sizeof(*s->req));
	s->err = calloc(n, sizeof(*s->err));
	s->prompt = calloc(n, sizeof(*s->prompt));
	s->completion = calloc(n, sizeof(*s->completion));
	s->cost = calloc(n, sizeof(*s->cost));
	s->lat = calloc(n * LAT_BINS, sizeof(*s->lat));
	if (!s->req || !s->err || !s->prompt || !s->completion || !s->cost ||
	    !s->lat)
		return -1;
	for (d = 0; d < DIM__MAX; d++)
		for (i = 0; i <= GROUPS_MAX; i++) {
			struct group *g = &s->dims[d].g[i];

			g->req = calloc(n, sizeof(*g->req));
			g->err = calloc(n, sizeof(*g->err));
			g->costs = calloc(n, sizeof(*g->costs));
			if (!g->req || !g->err || !g->costs)
				return -1;
		}
	return 0;
}

/* Forget everything counted: the scan started over. */
static void
series_reset(struct series *s)
{
	size_t	 n = s->n, d, i;

	memset(s->req, 0, n * sizeof(*s->req));
	memset(s->err, 0, n * sizeof(*s->err));
	memset(s->prompt, 0, n * sizeof(*s->prompt));
	memset(s->completion, 0, n * sizeof(*s->completion));
	memset(s->cost, 0, n * sizeof(*s->cost));
	memset(s->lat, 0, n * LAT_BINS * sizeof(*s->lat));
	for (d = 0; d < DIM__MAX; d++) {
		for (i = 0; i <= GROUPS_MAX; i++) {
			struct group *g = &s->dims[d].g[i];

			g->name[0] = '\0';
			g->requests = g->errors = g->cost = 0;
			memset(g->req, 0, n * sizeof(*g->req));
			memset(g->err, 0, n * sizeof(*g->err));
			memset(g->costs, 0, n * sizeof(*g->costs));
		}
		s->dims[d].n = 0;
		s->dims[d].other = 0;
	}
	s->seen = 0;
}

/* The name of the group a row counts in along dimension d. */
static void
group_name(enum dim d, const struct usage_row *u, char *dst, size_t len)
{
	switch (d) {
	case DIM_MODEL:
		snprintf(dst, len, "%.*s", (int)sizeof(u->served),
		    u->served[0] != '\0' ? u->served : u->requested);
		break;
	case DIM_PROVIDER:
		snprintf(dst, len, "%.*s", (int)sizeof(u->provider),
		    u->provider[0] != '\0' ? u->provider : "(none)");
		break;
	case DIM_AGENT:
		snprintf(dst, len, "%.*s", (int)sizeof(u->agent), u->agent);
		break;
	default:
		if (u->key_id == 0)
			snprintf(dst, len, "master");
		else
			snprintf(dst, len, "%.*s (%" PRIu64 ")",
			    (int)sizeof(u->key_name), u->key_name, u->key_id);
		break;
	}
}

/* The group of name in dimension dm: found, added, or "(other)" when full. */
static struct group *
find_group(struct dimension *dm, const char *name)
{
	size_t	 i;

	for (i = 0; i < dm->n; i++)
		if (strcmp(dm->g[i].name, name) == 0)
			return &dm->g[i];
	if (dm->n < GROUPS_MAX) {
		snprintf(dm->g[dm->n].name, GROUP_LEN, "%s", name);
		return &dm->g[dm->n++];
	}
	dm->other = 1;
	return &dm->g[GROUPS_MAX];
}

static int
series_row(void *arg, const struct usage_row *u)
{
	struct series	*s = arg;
	struct group	*g;
	char		 name[GROUP_LEN];
	int64_t		 t;
	size_t		 i;
	int		 d, bad;

	/* Rows come oldest first; an earlier one means a retried scan. */
	if (s->seen && (u->time_us < s->last_time ||
	    (u->time_us == s->last_time && u->id <= s->last_id)))
		series_reset(s);
	s->seen = 1;
	s->last_time = u->time_us;
	s->last_id = u->id;

	t = u->time_us / US_PER_S;
	if (t < s->from_s)
		return 0;
	i = (size_t)((t - s->from_s) / s->bucket_s);
	if (i >= s->n)
		return 0;
	bad = u->status >= 400;
	s->req[i]++;
	s->err[i] += bad;
	s->prompt[i] += u->prompt;
	s->completion[i] += u->completion;
	s->cost[i] += u->cost;
	s->lat[i * LAT_BINS + (size_t)lat_bin(u->latency_ms)]++;
	for (d = 0; d < DIM__MAX; d++) {
		group_name((enum dim)d, u, name, sizeof(name));
		g = find_group(&s->dims[d], name);
		g->requests++;
		g->errors += bad;
		g->cost += u->cost;
		g->req[i]++;
		g->err[i] += bad;
		g->costs[i] += u->cost;
	}
	return 0;
}

static struct json_object *
int_array(const int64_t *v, size_t n)
{
	struct json_object	*a = json_object_new_array_ext((int)n);
	size_t			 i;

	for (i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64(v[i]));
	return a;
}

static struct json_object *
group_json(const struct group *g, const char *name, size_t n)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "group", json_object_new_string(name));
	json_object_object_add(o, "requests_total",
	    json_object_new_int64(g->requests));
	json_object_object_add(o, "errors_total",
	    json_object_new_int64(g->errors));
	json_object_object_add(o, "cost_micro_usd_total",
	    json_object_new_int64(g->cost));
	json_object_object_add(o, "requests", int_array(g->req, n));
	json_object_object_add(o, "errors", int_array(g->err, n));
	json_object_object_add(o, "cost_micro_usd", int_array(g->costs, n));
	return o;
}

static struct json_object *
series_json(const struct series *s, const char *bucket)
{
	struct json_object	*o, *a, *p50, *p95, *by, *groups;
	size_t			 i, d;
	int64_t			 v;

	o = json_object_new_object();
	json_object_object_add(o, "object",
	    json_object_new_string("dashboard.series"));
	json_object_object_add(o, "from", json_object_new_int64(s->from_s));
	json_object_object_add(o, "to", json_object_new_int64(s->from_s +
	    (int64_t)s->n * s->bucket_s));
	json_object_object_add(o, "bucket", json_object_new_string(bucket));
	json_object_object_add(o, "bucket_s", json_object_new_int64(s->bucket_s));
	a = json_object_new_array_ext((int)s->n);
	for (i = 0; i < s->n; i++)
		json_object_array_add(a, json_object_new_int64(s->from_s +
		    (int64_t)i * s->bucket_s));
	json_object_object_add(o, "t", a);
	json_object_object_add(o, "requests", int_array(s->req, s->n));
	json_object_object_add(o, "errors", int_array(s->err, s->n));
	json_object_object_add(o, "cost_micro_usd", int_array(s->cost, s->n));
	json_object_object_add(o, "prompt_tokens", int_array(s->prompt, s->n));
	json_object_object_add(o, "completion_tokens",
	    int_array(s->completion, s->n));
	p50 = json_object_new_array_ext((int)s->n);
	p95 = json_object_new_array_ext((int)s->n);
	for (i = 0; i < s->n; i++) {
		v = percentile(s, i, 0.50);
		json_object_array_add(p50, v < 0 ? NULL : json_object_new_int64(v));
		v = percentile(s, i, 0.95);
		json_object_array_add(p95, v < 0 ? NULL : json_object_new_int64(v));
	}
	json_object_object_add(o, "latency_p50_ms", p50);
	json_object_object_add(o, "latency_p95_ms", p95);
	by = json_object_new_object();
	for (d = 0; d < DIM__MAX; d++) {
		groups = json_object_new_array();
		for (i = 0; i < s->dims[d].n; i++)
			json_object_array_add(groups, group_json(&s->dims[d].g[i],
			    s->dims[d].g[i].name, s->n));
		if (s->dims[d].other)
			json_object_array_add(groups, group_json(
			    &s->dims[d].g[GROUPS_MAX], "(other)", s->n));
		json_object_object_add(by, dim_names[d], groups);
	}
	json_object_object_add(o, "by", by);
	return o;
}

/*
 * GET /admin/dashboard/series?from=&to=&bucket=hour|day: requests,
 * errors, tokens, cost and latency p50/p95 per UTC hour or day, overall
 * and by model, provider, agent and key (the first GROUPS_MAX of each,
 * then "(other)"). from is rounded down and to up to whole buckets.
 */
int
route_dashboard_series(struct request *r, const char *arg)
{
	struct store		*st;
	struct series		 s;
	struct json_object	*o;
	char			 bucket[8];
	int64_t			 now = (int64_t)r->wall.tv_sec, from, to, bs;
	int			 found, rc;

	if ((st = account_need_store(r, "usage")) == NULL)
		return r->status;
	found = http_query(r, "bucket", bucket, sizeof(bucket));
	if (found == 0)
		snprintf(bucket, sizeof(bucket), "hour");
	if (found == -1 || (strcmp(bucket, "hour") != 0 &&
	    strcmp(bucket, "day") != 0))
		return http_bad_param(r, "bucket", "'bucket' must be hour or "
		    "day");
	bs = bucket[0] == 'h' ? HOUR_S : DAY_S;
	if ((rc = query_time(r, "from", now - (bs == HOUR_S ? DAY_S :
	    30 * DAY_S) + 1, &from)) != 0 ||
	    (rc = query_time(r, "to", now + 1, &to)) != 0)
		return rc;
	if (from >= to)
		return http_bad_param(r, "from", "'from' must be before 'to' "
		    "(to is exclusive)");
	from -= from % bs;
	if (to % bs != 0)
		to += bs - to % bs;
	if ((to - from) / bs > BUCKETS_MAX)
		return http_bad_param(r, "from", "at most %d buckets: narrow "
		    "'from'..'to' or use bucket=day", BUCKETS_MAX);

	memset(&s, 0, sizeof(s));
	s.from_s = from;
	s.bucket_s = bs;
	if (series_alloc(&s, (size_t)((to - from) / bs)) == -1) {
		series_free(&s);
		return http_error(r, 503, "server_error", "out_of_memory",
		    NULL, "Out of memory for the series");
	}
	rc = usage_scan(st, from * US_PER_S, to * US_PER_S, series_row, &s);
	if (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_STOP) {
		series_free(&s);
		return store_failed(r, "usage_scan", rc);
	}
	o = series_json(&s, bucket);
	series_free(&s);
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/* What the log keeps: the newest limit rows that pass the filters. */
struct log_scan {
	int		 by_key;
	uint64_t	 key_id;
	char		 agent[PARAM_MAX];
	char		 model[PARAM_MAX];
	char		 provider[PARAM_MAX];
	int		 status;	/* 0 any, -1 < 400, -2 >= 400, else equal */
	struct usage_row *ring;
	size_t		 limit, next;
	int64_t		 matched;
	int64_t		 last_time;
	uint64_t	 last_id;
	int		 seen;
};

static int
log_pass(const struct log_scan *l, const struct usage_row *u)
{
	if (l->by_key && u->key_id != l->key_id)
		return 0;
	if (l->agent[0] != '\0' && strncmp(u->agent, l->agent,
	    sizeof(u->agent)) != 0)
		return 0;
	if (l->model[0] != '\0' && strncmp(u->served, l->model,
	    sizeof(u->served)) != 0 && strncmp(u->requested, l->model,
	    sizeof(u->requested)) != 0)
		return 0;
	if (l->provider[0] != '\0' && strncmp(u->provider, l->provider,
	    sizeof(u->provider)) != 0)
		return 0;
	if (l->status == -1)
		return u->status < 400;
	if (l->status == -2)
		return u->status >= 400;
	return l->status == 0 || u->status == l->status;
}

static int
log_row(void *arg, const struct usage_row *u)
{
	struct log_scan	*l = arg;

	if (l->seen && (u->time_us < l->last_time ||
	    (u->time_us == l->last_time && u->id <= l->last_id))) {
		l->matched = 0;
		l->next = 0;
	}
	l->seen = 1;
	l->last_time = u->time_us;
	l->last_id = u->id;
	if (!log_pass(l, u))
		return 0;
	l->ring[l->next] = *u;
	l->next = (l->next + 1) % l->limit;
	l->matched++;
	return 0;
}

/* A text filter of the log from the query into dst ("" when absent). */
static int
query_text(struct request *r, const char *name, char *dst, size_t len)
{
	if (http_query(r, name, dst, len) == -1)
		return http_bad_param(r, name, "'%s' is too long or holds a "
		    "NUL", name);
	return 0;
}

/* The key filter: by id, name or prefix, or "master"; 0 or the status sent. */
static int
log_key(struct request *r, struct store *st, struct log_scan *l)
{
	struct key_rec	 k;
	char		 ref[PARAM_MAX];
	int		 found, rc;

	if ((found = http_query(r, "key", ref, sizeof(ref))) == -1)
		return http_bad_param(r, "key", "'key' must be a key id, name "
		    "or prefix");
	if (found == 0 || ref[0] == '\0')
		return 0;
	l->by_key = 1;
	if (strcmp(ref, "master") == 0 || strcmp(ref, "0") == 0) {
		l->key_id = 0;
		return 0;
	}
	if ((rc = keys_find(st, ref, &k)) == STORE_NOTFOUND)
		return http_error(r, 404, "invalid_request_error",
		    "key_not_found", "key", "No key '%s'", ref);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);
	l->key_id = k.id;
	return 0;
}

/* The status filter: ok, error or a 3-digit status; 0 or the status sent. */
static int
log_status(struct request *r, struct log_scan *l)
{
	char	 v[8];
	int	 found;

	if ((found = http_query(r, "status", v, sizeof(v))) == 0 || v[0] == 0)
		return 0;
	if (found == 1 && strcmp(v, "ok") == 0)
		l->status = -1;
	else if (found == 1 && strcmp(v, "error") == 0)
		l->status = -2;
	else if (found == 1 && strlen(v) == 3 && v[0] >= '1' && v[0] <= '5' &&
	    v[1] >= '0' && v[1] <= '9' && v[2] >= '0' && v[2] <= '9')
		l->status = atoi(v);
	else
		return http_bad_param(r, "status", "'status' must be ok, error "
		    "or an HTTP status such as 429");
	return 0;
}

/*
 * GET /admin/dashboard/log?from=&to=&key=&agent=&model=&provider=&status=
 * &limit=: the newest usage rows that pass every filter given, newest
 * first, with how many matched in all.
 */
int
route_dashboard_log(struct request *r, const char *arg)
{
	struct store		*st;
	struct log_scan		*l;
	struct json_object	*o, *data;
	char			 v[16], *end = v;
	int64_t			 now = (int64_t)r->wall.tv_sec, from, to;
	size_t			 kept, i;
	long			 limit = 100;
	int			 found, rc;

	if ((st = account_need_store(r, "usage")) == NULL)
		return r->status;
	if ((rc = query_time(r, "from", now - 7 * DAY_S, &from)) != 0 ||
	    (rc = query_time(r, "to", now + 1, &to)) != 0)
		return rc;
	if (from >= to)
		return http_bad_param(r, "from", "'from' must be before 'to' "
		    "(to is exclusive)");
	if ((found = http_query(r, "limit", v, sizeof(v))) != 0) {
		limit = found == 1 && v[0] >= '0' && v[0] <= '9' ?
		    strtol(v, &end, 10) : -1;
		if (found == -1 || limit < 1 || *end != '\0' ||
		    limit > LOG_LIMIT_MAX)
			return http_bad_param(r, "limit", "'limit' must be a "
			    "whole number from 1 to %d", LOG_LIMIT_MAX);
	}
	if ((l = calloc(1, sizeof(*l))) == NULL ||
	    (l->ring = calloc((size_t)limit, sizeof(*l->ring))) == NULL) {
		free(l);
		return http_error(r, 503, "server_error", "out_of_memory",
		    NULL, "Out of memory for the log");
	}
	l->limit = (size_t)limit;
	if ((rc = query_text(r, "agent", l->agent, sizeof(l->agent))) != 0 ||
	    (rc = query_text(r, "model", l->model, sizeof(l->model))) != 0 ||
	    (rc = query_text(r, "provider", l->provider,
	    sizeof(l->provider))) != 0 ||
	    (rc = log_status(r, l)) != 0 || (rc = log_key(r, st, l)) != 0)
		goto done;
	rc = usage_scan(st, from * US_PER_S, to * US_PER_S, log_row, l);
	if (rc != STORE_OK && rc != STORE_NOTFOUND && rc != STORE_STOP) {
		rc = store_failed(r, "usage_scan", rc);
		goto done;
	}
	data = json_object_new_array();
	kept = l->matched < (int64_t)l->limit ? (size_t)l->matched : l->limit;
	for (i = 1; i <= kept; i++)
		json_object_array_add(data, usage_to_json(
		    &l->ring[(l->next + l->limit - i) % l->limit]));
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "from", json_object_new_int64(from));
	json_object_object_add(o, "to", json_object_new_int64(to));
	json_object_object_add(o, "matched", json_object_new_int64(l->matched));
	json_object_object_add(o, "has_more",
	    json_object_new_boolean(l->matched > (int64_t)kept));
	json_object_object_add(o, "data", data);
	http_send_json(r, 200, o);
	json_object_put(o);
	rc = 200;
done:
	free(l->ring);
	free(l);
	return rc;
}
