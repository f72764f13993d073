/* report.h: usage totals over a time range, grouped by day, month, model, key, agent, provider or tier, or several of them (routes and llmgate-admin). */
#ifndef LLMGATE_REPORT_H
#define LLMGATE_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"

struct json_object;
struct store;

enum report_group {
	REPORT_NONE,		/* one total */
	REPORT_DAY,		/* "2026-11-23" (UTC) */
	REPORT_MODEL,		/* served model, else requested */
	REPORT_KEY,		/* key name (id) */
	REPORT_AGENT,
	REPORT_MONTH,		/* "2026-11" (UTC) */
	REPORT_PROVIDER,	/* the provider that answered, or "-" */
	REPORT_TIER,		/* the tier billed, or "-" */
	REPORT__MAX
};

/* Most groupings one report nests ("month,provider,model"). */
#define REPORT_DEPTH	3
/* Between the values of a row's group (sorts before any printable). */
#define REPORT_SEP	'\x1f'
/*
 * Latencies are counted in buckets a quarter of a power of two wide
 * (1 ms, 1.19 ms, 1.41 ms ... 2^20 ms): the p50 and p95 reported are
 * the middle of their bucket, within 10% of the exact figure.
 */
#define REPORT_LAT_BUCKETS	84

extern const char *const report_group_names[REPORT__MAX];

struct report_row {
	char		 group[272];	/* values joined by REPORT_SEP */
	int64_t		 requests;
	int64_t		 errors;	/* status >= 400 */
	int64_t		 prompt;
	int64_t		 completion;
	int64_t		 cached;	/* of prompt: read from a prompt cache */
	int64_t		 cache_write;	/* of prompt: written to one */
	money_t		 cost;
	uint32_t	 lat[REPORT_LAT_BUCKETS];	/* requests by latency */
};

struct report {
	struct report_row	*rows;	/* sorted by group */
	size_t			 n, cap;
	struct report_row	 total;
	enum report_group	 by[REPORT_DEPTH];
	size_t			 nby;	/* 0: one total */
};

/* Parse "day", "model", "key", "agent" (or "" / NULL: none); -1 if unknown. */
int	report_group_parse(const char *, enum report_group *);
/*
 * A list of groupings ("month,provider"): 1 to REPORT_DEPTH names, none
 * twice, "none" alone; the count in *n (0 for "none", "" or NULL), -1 if bad.
 */
int	report_groups_parse(const char *, enum report_group *, size_t *);
/* The list back as text ("month,provider", "none") into buf. */
const char *report_groups_name(const struct report *, char *, size_t);
/*
 * Totals of usage rows with from_us <= time < to_us; only key_id's rows
 * when only_key is set. The caller frees with report_free.
 */
int	report_build(struct store *, int64_t, int64_t, int, uint64_t,
	    enum report_group, struct report *);
/* The same, grouped by n groupings in turn (n <= REPORT_DEPTH). */
int	report_build_by(struct store *, int64_t, int64_t, int, uint64_t,
	    const enum report_group *, size_t, struct report *);
/* Latency percentile pct (50, 95) of a row in ms, or -1 with no latency. */
int64_t	report_latency(const struct report_row *, int);
/* The i-th value of a row's group into buf ("" past the last). */
const char *report_value(const struct report_row *, size_t, char *, size_t);
/*
 * The whole report as the usage routes and llmgate-admin --json show it:
 * {"group_by", "data": [{"group", one field per grouping, totals}],
 * "total"}. The caller owns the result (NULL when out of memory).
 */
struct json_object *report_to_json(const struct report *);
/*
 * The report as CSV: a header, then a row per group (columns "group", or
 * one per grouping when there are several), and the total when ungrouped.
 * The caller frees the result; NULL when out of memory.
 */
char	*report_to_csv(const struct report *, size_t *);
void	report_free(struct report *);
/* Parse a date "YYYY-MM-DD" (UTC midnight) or unix seconds; -1 if bad. */
int	report_parse_time(const char *, int64_t *);
/*
 * One row's totals as the usage routes and llmgate-admin show them, with
 * its group (values joined by ", ") unless it is the total. The caller owns the result (NULL when
 * out of memory).
 */
struct json_object *report_row_to_json(const struct report_row *, int);

#endif
