/* admin-report.c: llmgate-admin usage: usage totals over a time range, grouped, as text, CSV, JSON or rows. */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin.h"
#include "keys.h"
#include "report.h"
#include "store.h"
#include "usage.h"

#define USAGE_DAYS	30		/* default range of `usage` */

static void
text_row(const struct report_row *r, const char *group)
{
	char	 buf[32], p50[16], p95[16];
	int64_t	 l50 = report_latency(r, 50), l95 = report_latency(r, 95);

	snprintf(p50, sizeof(p50), l50 >= 0 ? "%" PRId64 : "-", l50);
	snprintf(p95, sizeof(p95), l95 >= 0 ? "%" PRId64 : "-", l95);
	printf("%-24s %9" PRId64 " %7" PRId64 " %12" PRId64 " %12" PRId64
	    " %12" PRId64 " %12" PRId64 " %14s %7s %7s\n", group, r->requests,
	    r->errors, r->prompt, r->completion, r->cached, r->cache_write,
	    fmt_usd(r->cost, buf, sizeof(buf)), p50, p95);
}

/* --rows: every usage row in the range, one JSON object per line. */
struct rows_out {
	int		 only_key;
	uint64_t	 key_id;
	long		 n;
};

static int
print_row(void *arg, const struct usage_row *u)
{
	struct rows_out		*ro = arg;
	struct json_object	*o;

	if (ro->only_key && u->key_id != ro->key_id)
		return 0;
	if ((o = usage_to_json(u)) == NULL)
		return -1;
	printf("%s\n", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	ro->n++;
	return 0;
}

int
cmd_usage_report(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "from", required_argument, NULL, 'f' },
		{ "to", required_argument, NULL, 't' },
		{ "group-by", required_argument, NULL, 'g' },
		{ "key", required_argument, NULL, 'k' },
		{ "json", no_argument, NULL, 'j' },
		{ "csv", no_argument, NULL, 'C' },
		{ "rows", no_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct rows_out		 ro;
	struct report		 rep;
	struct key_rec		 k;
	struct json_object	*o = NULL, *data;
	enum report_group	 by[REPORT_DEPTH];
	size_t			 nby = 0, len;
	const char		*keyref = NULL, *fromarg = NULL, *toarg = NULL;
	char			 b1[32], b2[32], gname[200];
	time_t			 now = time(NULL);
	int64_t			 from, to;
	uint64_t		 key_id = 0;
	char			*out;
	size_t			 i, j;
	int			 ch, rc, json = 0, csv = 0, rows = 0;

	memset(&rep, 0, sizeof(rep));
	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (ch) {
		case 'f':
			fromarg = optarg;
			break;
		case 't':
			toarg = optarg;
			break;
		case 'g':
			if (report_groups_parse(optarg, by, &nby) != 0) {
				complain("--group-by: expected up to %d of day, "
				    "month, model, key, agent, provider, tier "
				    "(comma-separated)", REPORT_DEPTH);
				return ADM_USAGE;
			}
			break;
		case 'k':
			keyref = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'C':
			csv = 1;
			break;
		case 'r':
			rows = 1;
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			return cmd_usage(a, stderr);
		}
	if (json + csv + rows > 1) {
		complain("--json, --csv and --rows: choose one");
		return ADM_USAGE;
	}
	if (optind != argc)
		return cmd_usage(a, stderr);
	from = (int64_t)now - USAGE_DAYS * DAY_S;
	to = (int64_t)now + 1;
	if (fromarg != NULL && report_parse_time(fromarg, &from) != 0) {
		complain("--from: expected YYYY-MM-DD or unix seconds");
		return ADM_USAGE;
	}
	if (toarg != NULL && report_parse_time(toarg, &to) != 0) {
		complain("--to: expected YYYY-MM-DD or unix seconds");
		return ADM_USAGE;
	}
	if (from >= to) {
		complain("--from must be before --to (which is exclusive)");
		return ADM_USAGE;
	}
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	if (keyref != NULL) {
		/* Key 0 is the master key, which has no key record. */
		if (strcmp(keyref, "0") == 0)
			key_id = 0;
		else if (find_key(a, keyref, &k) != ADM_OK)
			return ADM_FAIL;
		else
			key_id = k.id;
	}
	if (rows) {
		memset(&ro, 0, sizeof(ro));
		ro.only_key = keyref != NULL;
		ro.key_id = key_id;
		rc = usage_scan(a->st, from * 1000000, to * 1000000, print_row,
		    &ro);
		if (rc != STORE_OK)
			return store_failed("cannot read the usage", rc);
		return ADM_OK;
	}
	rc = report_build_by(a->st, from * 1000000, to * 1000000,
	    keyref != NULL, key_id, by, nby, &rep);
	if (rc != STORE_OK) {
		report_free(&rep);
		return store_failed("cannot read the usage", rc);
	}

	if (json) {
		if ((data = report_to_json(&rep)) == NULL ||
		    (o = json_object_new_object()) == NULL) {
			json_object_put(data);
			o = NULL;
			goto done;
		}
		jint(o, "from", from);
		jint(o, "to", to);
		json_object_object_foreach(data, name, val)
			json_object_object_add(o, name, json_object_get(val));
		json_object_put(data);
	} else if (csv) {
		if ((out = report_to_csv(&rep, &len)) == NULL) {
			complain("out of memory");
			rc = ADM_FAIL;
			goto done;
		}
		fwrite(out, 1, len, stdout);
		free(out);
	} else {
		printf("usage from %s to %s (exclusive)%s%s\n",
		    fmt_time(from, b1, sizeof(b1)), fmt_time(to, b2,
		    sizeof(b2)), nby > 0 ? ", by " : "", nby > 0 ?
		    report_groups_name(&rep, gname, sizeof(gname)) : "");
		printf("%-24s %9s %7s %12s %12s %12s %12s %14s %7s %7s\n",
		    "GROUP", "REQUESTS", "ERRORS", "PROMPT", "COMPLETION",
		    "CACHED", "CACHE_WRITE", "COST_USD", "P50_MS", "P95_MS");
		for (i = 0; i < rep.n; i++) {
			snprintf(gname, sizeof(gname), "%.*s",
			    FIX(rep.rows[i].group));
			for (j = 0; gname[j] != '\0'; j++)
				if (gname[j] == REPORT_SEP)
					gname[j] = ' ';
			text_row(&rep.rows[i], gname);
		}
		text_row(&rep.total, "total");
	}
	rc = ADM_OK;
 done:
	report_free(&rep);
	if (json)
		return print_json(o);
	return rc;
}
