/* report.h: usage totals over a time range, grouped by day, model, key or agent (routes and llmgate-admin). */
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
	REPORT__MAX
};

extern const char *const report_group_names[REPORT__MAX];

struct report_row {
	char		 group[272];
	int64_t		 requests;
	int64_t		 errors;	/* status >= 400 */
	int64_t		 prompt;
	int64_t		 completion;
	int64_t		 cached;
	money_t		 cost;
};

struct report {
	struct report_row	*rows;	/* sorted by group */
	size_t			 n, cap;
	struct report_row	 total;
};

/* Parse "day", "model", "key", "agent" (or "" / NULL: none); -1 if unknown. */
int	report_group_parse(const char *, enum report_group *);
/*
 * Totals of usage rows with from_us <= time < to_us; only key_id's rows
 * when only_key is set. The caller frees with report_free.
 */
int	report_build(struct store *, int64_t, int64_t, int, uint64_t,
	    enum report_group, struct report *);
void	report_free(struct report *);
/* Parse a date "YYYY-MM-DD" (UTC midnight) or unix seconds; -1 if bad. */
int	report_parse_time(const char *, int64_t *);
/*
 * One row's totals as the usage routes and llmgate-admin show them, with
 * its group unless it is the total. The caller owns the result (NULL when
 * out of memory).
 */
struct json_object *report_row_to_json(const struct report_row *, int);

#endif
