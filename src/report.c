/* report.c: usage totals over a time range, grouped by day, month, model, key, agent, provider or tier, or several of them (routes and llmgate-admin). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "report.h"
#include "store.h"
#include "usage.h"

/* Most groups one report holds; beyond it the report is refused. */
#define REPORT_GROUPS_MAX	100000
#define US_PER_S		INT64_C(1000000)
/* Latest unix second accepted: 9999-12-31T23:59:59Z (keeps *1e6 in int64). */
#define REPORT_TIME_MAX		INT64_C(253402300799)

const char *const report_group_names[REPORT__MAX] = {
	"none", "day", "model", "key", "agent", "month", "provider", "tier",
};

/* One report being built: rows plus an index of row numbers by group. */
struct build {
	struct report	*rep;
	int		 only_key;
	uint64_t	 key_id;
	int64_t		 from_us, to_us;
	size_t		*slots;		/* row index + 1; 0: empty */
	size_t		 nslots;	/* a power of two, or 0 */
	int64_t		 last_time;	/* the last row seen, to spot a rescan */
	uint64_t	 last_id;
	int		 seen;
	int		 failed;
};

int
report_group_parse(const char *s, enum report_group *g)
{
	int	 i;

	if (s == NULL || *s == '\0') {
		*g = REPORT_NONE;
		return 0;
	}
	for (i = 0; i < REPORT__MAX; i++)
		if (strcmp(s, report_group_names[i]) == 0) {
			*g = (enum report_group)i;
			return 0;
		}
	return -1;
}

static int
digits(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!isdigit((unsigned char)s[i]))
			return 0;
	return 1;
}

int
report_groups_parse(const char *s, enum report_group *out, size_t *n)
{
	char		 name[32];
	size_t		 len, i, k = 0;
	enum report_group g;

	*n = 0;
	if (s == NULL || *s == '\0' || strcmp(s, "none") == 0)
		return 0;
	for (;;) {
		len = strcspn(s, ",");
		if (len == 0 || len >= sizeof(name) || k == REPORT_DEPTH)
			return -1;
		memcpy(name, s, len);
		name[len] = '\0';
		if (report_group_parse(name, &g) == -1 || g == REPORT_NONE)
			return -1;
		for (i = 0; i < k; i++)
			if (out[i] == g)
				return -1;
		out[k++] = g;
		if (s[len] == '\0')
			break;
		s += len + 1;
	}
	*n = k;
	return 0;
}

const char *
report_groups_name(const struct report *rep, char *buf, size_t len)
{
	size_t	 i, n = 0;

	snprintf(buf, len, "none");
	for (i = 0; i < rep->nby && n < len; i++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", i > 0 ? "," : "",
		    report_group_names[rep->by[i]]);
	return buf;
}

/* A date "YYYY-MM-DD" (UTC midnight) or unix seconds into *out (seconds). */
int
report_parse_time(const char *s, int64_t *out)
{
	struct tm	 tm, back;
	time_t		 t;
	size_t		 n;
	int64_t		 v;

	if (s == NULL || (n = strlen(s)) == 0)
		return -1;
	if (digits(s, n)) {
		if (n > 12)
			return -1;
		v = (int64_t)strtoll(s, NULL, 10);
		if (v > REPORT_TIME_MAX)
			return -1;
		*out = v;
		return 0;
	}
	if (n != 10 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) ||
	    s[7] != '-' || !digits(s + 8, 2))
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	if (tm.tm_year < 70 || tm.tm_mon < 0 || tm.tm_mon > 11 ||
	    tm.tm_mday < 1 || tm.tm_mday > 31)
		return -1;
	back = tm;
	if ((t = timegm(&back)) == (time_t)-1)
		return -1;
	/* timegm normalises 2026-02-30 into March: refuse it. */
	if (back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
	    back.tm_mday != tm.tm_mday)
		return -1;
	*out = (int64_t)t;
	return 0;
}

/* The group a usage row counts in, written to dst. */
static void
group_of(enum report_group g, const struct usage_row *u, char *dst,
    size_t len)
{
	struct tm	 tm;
	time_t		 t;
	int64_t		 s;

	switch (g) {
	case REPORT_DAY:
	case REPORT_MONTH:
		/* Floor division: a row before 1970 still gets its own day. */
		s = u->time_us / US_PER_S;
		if (u->time_us % US_PER_S < 0)
			s--;
		t = (time_t)s;
		if (gmtime_r(&t, &tm) == NULL || strftime(dst, len,
		    g == REPORT_DAY ? "%Y-%m-%d" : "%Y-%m", &tm) == 0)
			snprintf(dst, len, "?");
		break;
	case REPORT_PROVIDER:
		snprintf(dst, len, "%.*s", (int)sizeof(u->provider),
		    u->provider[0] != '\0' ? u->provider : "-");
		break;
	case REPORT_TIER:
		snprintf(dst, len, "%.*s", (int)sizeof(u->tier),
		    u->tier[0] != '\0' ? u->tier : "-");
		break;
	case REPORT_MODEL:
		snprintf(dst, len, "%.*s", (int)sizeof(u->served),
		    u->served[0] != '\0' ? u->served : u->requested);
		break;
	case REPORT_KEY:
		if (u->key_id == 0)
			snprintf(dst, len, "master");
		else
			snprintf(dst, len, "%.*s (%" PRIu64 ")",
			    (int)sizeof(u->key_name), u->key_name, u->key_id);
		break;
	case REPORT_AGENT:
		snprintf(dst, len, "%.*s", (int)sizeof(u->agent), u->agent);
		break;
	default:
		dst[0] = '\0';
		break;
	}
}

/* The values of every grouping of b, joined by REPORT_SEP, into dst. */
static void
groups_of(const struct build *b, const struct usage_row *u, char *dst,
    size_t len)
{
	size_t	 i, n = 0;

	dst[0] = '\0';
	for (i = 0; i < b->rep->nby && n + 1 < len; i++) {
		if (i > 0)
			dst[n++] = REPORT_SEP;
		group_of(b->rep->by[i], u, dst + n, len - n);
		n += strlen(dst + n);
	}
}

static size_t
hash(const char *s)
{
	size_t	 h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* Rebuild the index with room for twice the rows; -1 when out of memory. */
static int
grow_index(struct build *b)
{
	size_t	 n = b->nslots ? b->nslots * 2 : 64, i, j;
	size_t	*slots;

	if ((slots = calloc(n, sizeof(*slots))) == NULL)
		return -1;
	for (i = 0; i < b->rep->n; i++) {
		j = hash(b->rep->rows[i].group) & (n - 1);
		while (slots[j] != 0)
			j = (j + 1) & (n - 1);
		slots[j] = i + 1;
	}
	free(b->slots);
	b->slots = slots;
	b->nslots = n;
	return 0;
}

/* The row of group, added when new; NULL past the cap or out of memory. */
static struct report_row *
find_row(struct build *b, const char *group)
{
	struct report		*rep = b->rep;
	struct report_row	*rows;
	size_t			 j, cap;

	if (b->nslots > 0) {
		j = hash(group) & (b->nslots - 1);
		for (; b->slots[j] != 0; j = (j + 1) & (b->nslots - 1))
			if (strcmp(rep->rows[b->slots[j] - 1].group,
			    group) == 0)
				return &rep->rows[b->slots[j] - 1];
	}
	if (rep->n >= REPORT_GROUPS_MAX)
		return NULL;
	if (rep->n == rep->cap) {
		cap = rep->cap ? rep->cap * 2 : 16;
		if (cap > REPORT_GROUPS_MAX)
			cap = REPORT_GROUPS_MAX;
		if ((rows = realloc(rep->rows, cap * sizeof(*rows))) == NULL)
			return NULL;
		rep->rows = rows;
		rep->cap = cap;
	}
	/* Keep the index at most half full. */
	if ((rep->n + 1) * 2 > b->nslots && grow_index(b) == -1)
		return NULL;
	memset(&rep->rows[rep->n], 0, sizeof(rep->rows[0]));
	snprintf(rep->rows[rep->n].group, sizeof(rep->rows[0].group), "%s",
	    group);
	j = hash(group) & (b->nslots - 1);
	while (b->slots[j] != 0)
		j = (j + 1) & (b->nslots - 1);
	b->slots[j] = rep->n + 1;
	return &rep->rows[rep->n++];
}

/* The latency bucket of ms: 0 for none, else 1 + 4 log2(ms), capped. */
static int
lat_bucket(int32_t ms)
{
	int	 b;

	if (ms <= 0)
		return 0;
	b = 1 + (int)floor(4.0 * log2((double)ms));
	return b < REPORT_LAT_BUCKETS ? b : REPORT_LAT_BUCKETS - 1;
}

int64_t
report_latency(const struct report_row *row, int pct)
{
	uint64_t	 n = 0, want, seen = 0;
	int		 b;

	for (b = 1; b < REPORT_LAT_BUCKETS; b++)
		n += row->lat[b];
	if (n == 0)
		return -1;
	/* The smallest bucket holding at least pct percent of them. */
	want = (n * (uint64_t)pct + 99) / 100;
	if (want == 0)
		want = 1;
	for (b = 1; b < REPORT_LAT_BUCKETS; b++)
		if ((seen += row->lat[b]) >= want)
			break;
	/* The bucket's middle: it spans 2^((b-1)/4) to 2^(b/4) ms. */
	return (int64_t)llround(pow(2.0, ((double)b - 0.5) / 4.0));
}

static void
add(struct report_row *row, const struct usage_row *u)
{
	row->lat[lat_bucket(u->latency_ms)]++;
	row->requests++;
	if (u->status >= 400)
		row->errors++;
	row->prompt += u->prompt;
	row->completion += u->completion;
	row->cached += u->cached;
	row->cache_write += u->cache_write;
	row->cost += u->cost;
}

/* Forget everything counted: the scan started over (a retried transaction). */
static void
reset(struct build *b)
{
	b->rep->n = 0;
	memset(&b->rep->total, 0, sizeof(b->rep->total));
	snprintf(b->rep->total.group, sizeof(b->rep->total.group), "total");
	if (b->nslots > 0)
		memset(b->slots, 0, b->nslots * sizeof(*b->slots));
	b->seen = 0;
}

static int
count(void *arg, const struct usage_row *u)
{
	struct build		*b = arg;
	struct report_row	*row;
	char			 group[sizeof(row->group)];

	/*
	 * Rows come oldest first; one that is not after the last means the
	 * store retried the scan from the start, so count it all again.
	 */
	if (b->seen && (u->time_us < b->last_time ||
	    (u->time_us == b->last_time && u->id <= b->last_id)))
		reset(b);
	b->seen = 1;
	b->last_time = u->time_us;
	b->last_id = u->id;

	if (u->time_us < b->from_us || u->time_us >= b->to_us)
		return 0;
	if (b->only_key && u->key_id != b->key_id)
		return 0;
	add(&b->rep->total, u);
	if (b->rep->nby == 0)
		return 0;
	groups_of(b, u, group, sizeof(group));
	if ((row = find_row(b, group)) == NULL) {
		b->failed = 1;
		return STORE_ERROR;
	}
	add(row, u);
	return 0;
}

static int
by_group(const void *a, const void *b)
{
	return strcmp(((const struct report_row *)a)->group,
	    ((const struct report_row *)b)->group);
}

/*
 * Totals of usage rows with from_us <= time < to_us (of key_id only when
 * only_key), grouped; a store_rc. The caller frees rep with report_free,
 * also on failure.
 */
int
report_build(struct store *st, int64_t from_us, int64_t to_us, int only_key,
    uint64_t key_id, enum report_group group, struct report *rep)
{
	return report_build_by(st, from_us, to_us, only_key, key_id, &group,
	    group == REPORT_NONE ? 0 : 1, rep);
}

int
report_build_by(struct store *st, int64_t from_us, int64_t to_us,
    int only_key, uint64_t key_id, const enum report_group *by, size_t nby,
    struct report *rep)
{
	struct build	 b;
	size_t		 i;
	int		 rc;

	memset(rep, 0, sizeof(*rep));
	snprintf(rep->total.group, sizeof(rep->total.group), "total");
	if (nby > REPORT_DEPTH)
		return STORE_ERROR;
	for (i = 0; i < nby; i++) {
		if (by[i] <= REPORT_NONE || by[i] >= REPORT__MAX)
			return STORE_ERROR;
		rep->by[i] = by[i];
	}
	rep->nby = nby;
	if (from_us >= to_us)
		return STORE_OK;
	memset(&b, 0, sizeof(b));
	b.rep = rep;
	b.only_key = only_key;
	b.key_id = key_id;
	b.from_us = from_us;
	b.to_us = to_us;
	rc = usage_scan(st, from_us, to_us, count, &b);
	free(b.slots);
	if (b.failed)
		rc = STORE_ERROR;
	if (rc == STORE_STOP)
		rc = STORE_OK;
	if (rc != STORE_OK)
		return rc;
	if (rep->n > 1)
		qsort(rep->rows, rep->n, sizeof(rep->rows[0]), by_group);
	return STORE_OK;
}

void
report_free(struct report *rep)
{
	free(rep->rows);
	memset(rep, 0, sizeof(*rep));
}

const char *
report_value(const struct report_row *row, size_t i, char *buf, size_t len)
{
	const char	*p = row->group, *end;
	size_t		 n;

	for (; i > 0 && p != NULL; i--)
		if ((p = strchr(p, REPORT_SEP)) != NULL)
			p++;
	if (p == NULL) {
		snprintf(buf, len, "%s", "");
		return buf;
	}
	end = strchr(p, REPORT_SEP);
	n = end != NULL ? (size_t)(end - p) : strlen(p);
	snprintf(buf, len, "%.*s", (int)n, p);
	return buf;
}

/* A latency figure, or null when no row had one. */
static struct json_object *
latency_json(const struct report_row *row, int pct)
{
	int64_t	 ms = report_latency(row, pct);

	return ms < 0 ? NULL : json_object_new_int64(ms);
}

struct json_object *
report_row_to_json(const struct report_row *row, int with_group)
{
	struct json_object	*o;
	char			 usd[32], g[sizeof(row->group) * 2];
	size_t			 i, n = 0;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	if (with_group) {
		/* The values joined by ", " for people; each apart in report_to_json. */
		for (i = 0; row->group[i] != '\0' && i < sizeof(row->group) &&
		    n + 3 < sizeof(g); i++)
			if (row->group[i] == REPORT_SEP) {
				g[n++] = ',';
				g[n++] = ' ';
			} else
				g[n++] = row->group[i];
		g[n] = '\0';
		json_object_object_add(o, "group", json_object_new_string(g));
	}
	json_object_object_add(o, "requests",
	    json_object_new_int64(row->requests));
	json_object_object_add(o, "errors", json_object_new_int64(row->errors));
	json_object_object_add(o, "prompt_tokens",
	    json_object_new_int64(row->prompt));
	json_object_object_add(o, "completion_tokens",
	    json_object_new_int64(row->completion));
	json_object_object_add(o, "cached_tokens",
	    json_object_new_int64(row->cached));
	json_object_object_add(o, "cache_write_tokens",
	    json_object_new_int64(row->cache_write));
	json_object_object_add(o, "cost_micro_usd",
	    json_object_new_int64(row->cost));
	money_format_usd(row->cost, usd, sizeof(usd));
	json_object_object_add(o, "cost_usd", json_object_new_string(usd));
	json_object_object_add(o, "latency_p50_ms", latency_json(row, 50));
	json_object_object_add(o, "latency_p95_ms", latency_json(row, 95));
	return o;
}

struct json_object *
report_to_json(const struct report *rep)
{
	struct json_object	*o, *data, *e;
	char			 v[sizeof(rep->rows[0].group)];
	size_t			 i, j;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "group_by",
	    json_object_new_string(report_groups_name(rep, v, sizeof(v))));
	data = json_object_new_array();
	for (i = 0; i < rep->n; i++) {
		if ((e = report_row_to_json(&rep->rows[i], 1)) == NULL)
			continue;
		for (j = 0; j < rep->nby; j++)
			json_object_object_add(e, report_group_names[rep->by[j]],
			    json_object_new_string(report_value(&rep->rows[i], j,
			    v, sizeof(v))));
		json_object_array_add(data, e);
	}
	json_object_object_add(o, "data", data);
	json_object_object_add(o, "total", report_row_to_json(&rep->total, 0));
	return o;
}

/* A CSV field, quoted when it holds a comma, quote or line break. */
static void
csv_field(FILE *fp, const char *s)
{
	if (strcspn(s, ",\"\r\n") == strlen(s)) {
		fputs(s, fp);
		return;
	}
	fputc('"', fp);
	for (; *s != '\0'; s++) {
		if (*s == '"')
			fputc('"', fp);
		fputc(*s, fp);
	}
	fputc('"', fp);
}

static void
csv_row(FILE *fp, const struct report *rep, const struct report_row *row,
    int total)
{
	char	 v[sizeof(row->group)], usd[32];
	size_t	 i, n = rep->nby > 1 ? rep->nby : 1;
	int64_t	 p50 = report_latency(row, 50), p95 = report_latency(row, 95);

	for (i = 0; i < n; i++) {
		if (i > 0)
			fputc(',', fp);
		csv_field(fp, total ? (i == 0 ? "total" : "") :
		    report_value(row, i, v, sizeof(v)));
	}
	money_format_usd(row->cost, usd, sizeof(usd));
	fprintf(fp, ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
	    ",%" PRId64 ",%" PRId64 ",%s,", row->requests, row->errors,
	    row->prompt, row->completion, row->cached, row->cache_write,
	    row->cost, usd);
	if (p50 >= 0)
		fprintf(fp, "%" PRId64 ",%" PRId64, p50, p95);
	else
		fputc(',', fp);
	fputc('\n', fp);
}

char *
report_to_csv(const struct report *rep, size_t *len)
{
	FILE	*fp;
	char	*out = NULL;
	size_t	 i;

	if ((fp = open_memstream(&out, len)) == NULL)
		return NULL;
	if (rep->nby > 1)
		for (i = 0; i < rep->nby; i++)
			fprintf(fp, "%s,", report_group_names[rep->by[i]]);
	else
		fputs("group,", fp);
	fputs("requests,errors,prompt_tokens,completion_tokens,cached_tokens,"
	    "cache_write_tokens,cost_micro_usd,cost_usd,latency_p50_ms,"
	    "latency_p95_ms\n", fp);
	for (i = 0; i < rep->n; i++)
		csv_row(fp, rep, &rep->rows[i], 0);
	/* A report of one total shows it; a grouped one's rows add up to it. */
	if (rep->nby == 0)
		csv_row(fp, rep, &rep->total, 1);
	if (ferror(fp)) {
		fclose(fp);
		free(out);
		return NULL;
	}
	if (fclose(fp) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
