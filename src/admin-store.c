/* admin-store.c: llmgate-admin upkeep of the store: purge, replay, recover, reclaim, check (books.c) and the breakers. */
#include <sys/stat.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin.h"
#include "billing.h"
#include "books.h"
#include "breaker.h"
#include "config.h"
#include "store.h"
#include "usage.h"

int
cmd_purge(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "days", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t	 days = -1, before;
	long	 n = 0;
	char	 buf[32];
	int	 ch, rc;

	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (ch) {
		case 'd':
			if (parse_count(optarg, "--days", 36500, &days))
				return ADM_USAGE;
			if (days == 0) {
				complain("--days: expected 1..36500");
				return ADM_USAGE;
			}
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			return cmd_usage(a, stderr);
		}
	if (optind != argc)
		return cmd_usage(a, stderr);
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	if (days < 0)
		days = a->cfg->gw.usage_retention_days;
	before = (int64_t)time(NULL) - days * DAY_S;
	if ((rc = usage_purge(a->st, before * 1000000, &n)) != STORE_OK)
		return store_failed("cannot purge the usage", rc);
	printf("purged %ld usage rows older than %s\n", n,
	    fmt_time(before, buf, sizeof(buf)));
	return ADM_OK;
}

/* Nonzero when name is a Berkeley DB file: environment, database or log. */
static int
store_file(const char *name)
{
	size_t	 n = strlen(name);

	return strncmp(name, "__db.", 5) == 0 || strncmp(name, "log.", 4) == 0 ||
	    (n > 3 && strcmp(name + n - 3, ".db") == 0);
}

/*
 * Replay writes the store in dir and renames the file beside it: when
 * this user cannot, say which directory or file and why (before Berkeley
 * DB could fail less clearly, or wait). ADM_OK or ADM_FAIL (reported).
 */
static int
replay_writable(const char *dir, const char *file)
{
	char		 path[PATH_MAX], fdir[PATH_MAX], *slash;
	struct dirent	*de;
	DIR		*d;
	int		 rc = ADM_OK;

	if (access(dir, W_OK | X_OK) == -1) {
		complain("cannot write to the store directory %s: %s", dir,
		    strerror(errno));
		return ADM_FAIL;
	}
	snprintf(fdir, sizeof(fdir), "%s", file);
	if ((slash = strrchr(fdir, '/')) == NULL)
		snprintf(fdir, sizeof(fdir), ".");
	else
		slash[slash == fdir] = '\0';
	if (access(fdir, W_OK | X_OK) == -1) {
		complain("cannot write to %s, where %s is moved aside: %s",
		    fdir, file, strerror(errno));
		return ADM_FAIL;
	}
	if ((d = opendir(dir)) == NULL) {
		complain("cannot read the store directory %s: %s", dir,
		    strerror(errno));
		return ADM_FAIL;
	}
	while (rc == ADM_OK && (de = readdir(d)) != NULL) {
		if (!store_file(de->d_name))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (access(path, R_OK | W_OK) == -1 && errno != ENOENT) {
			complain("cannot write the store file %s: %s", path,
			    strerror(errno));
			rc = ADM_FAIL;
		}
	}
	closedir(d);
	return rc;
}

int
cmd_replay(struct admin *a, int argc, char **argv)
{
	struct replay_result	 res;
	struct stat		 sb;
	const char		*file;
	char			 work[PATH_MAX];
	int			 rc;

	if ((rc = plain_opts(a, argc, argv, NULL, 0, 1)) >= 0)
		return rc;
	if (admin_config(a) != ADM_OK)
		return ADM_FAIL;
	file = optind < argc ? argv[optind] : a->cfg->gw.fallback_file;
	if (replay_writable(a->cfg->gw.data_dir, file) != ADM_OK ||
	    admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	memset(&res, 0, sizeof(res));
	rc = STORE_OK;
	/* An interrupted replay left FILE.replaying: usage_replay ends it. */
	snprintf(work, sizeof(work), "%s.replaying", file);
	if (stat(file, &sb) != 0 && errno == ENOENT &&
	    stat(work, &sb) != 0 && errno == ENOENT)
		fprintf(stderr, "nothing to replay: %s does not exist\n", file);
	else
		rc = usage_replay(a->st, a->cfg, file, &res);
	printf("imported %ld, duplicate %ld, bad %ld\n", res.imported,
	    res.duplicate, res.bad);
	if (rc != STORE_OK && res.error[0] != '\0') {
		complain("replay stopped: %s", res.error);
		return ADM_FAIL;
	}
	if (rc != STORE_OK)
		return store_failed(file, rc);
	return ADM_OK;
}

int
cmd_recover(struct admin *a, int argc, char **argv)
{
	int	 rc;

	if ((rc = plain_opts(a, argc, argv, NULL, 0, 0)) >= 0)
		return rc;
	if (admin_open(a, STORE_RECOVER) != ADM_OK)
		return ADM_FAIL;
	printf("recovered the store in %s\n", a->cfg->gw.data_dir);
	return ADM_OK;
}

/* reclaim: one line (or JSON object) per reservation billed. */
struct reclaim_out {
	struct json_object	*rows;		/* --json: the rows billed */
};

static void
reclaimed_one(void *arg, const struct reserve_rec *res,
    const struct usage_row *row)
{
	struct reclaim_out	*ro = arg;
	char			 b1[32], b2[32];

	if (ro->rows != NULL) {
		json_object_array_add(ro->rows, usage_to_json(row));
		return;
	}
	printf("reclaimed %.*s of key %" PRIu64 " (%.*s): process %d died; "
	    "billed %s of %s reserved\n", FIX(row->request_id), row->key_id,
	    FIX(row->key_name), (int)res->holder.pid,
	    fmt_usd(row->cost, b1, sizeof(b1)),
	    fmt_usd(res->amount, b2, sizeof(b2)));
}

int
cmd_reclaim(struct admin *a, int argc, char **argv)
{
	struct reclaim_result	 res;
	struct reclaim_out	 ro;
	struct json_object	*o;
	char			 b1[32], b2[32];
	int			 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 0, 0)) >= 0)
		return rc;
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	memset(&ro, 0, sizeof(ro));
	if (json && (ro.rows = json_object_new_array()) == NULL) {
		complain("out of memory");
		return ADM_FAIL;
	}
	rc = billing_reclaim(a->st, time(NULL), &res, reclaimed_one, &ro);
	if (rc != STORE_OK) {
		json_object_put(ro.rows);
		return store_failed("reclaim", rc);
	}
	if (json) {
		if ((o = json_object_new_object()) == NULL) {
			json_object_put(ro.rows);
			complain("out of memory");
			return ADM_FAIL;
		}
		jint(o, "reclaimed", res.reclaimed);
		jint(o, "released_unbilled", res.dropped);
		jint(o, "billed_micro_usd", res.billed);
		jint(o, "released_micro_usd", res.released);
		json_object_object_add(o, "rows", ro.rows);
		return print_json(o);
	}
	printf("reclaim: %ld reservations of dead processes billed (%s), "
	    "%ld released unbilled; %s released\n", res.reclaimed,
	    fmt_usd(res.billed, b1, sizeof(b1)), res.dropped,
	    fmt_usd(res.released, b2, sizeof(b2)));
	return ADM_OK;
}
int
cmd_check(struct admin *a, int argc, char **argv)
{
	struct books		 bk;
	struct reclaim_result	 reclaim;
	struct json_object	*o = NULL;
	size_t			 i, np;
	char			 buf[32];
	int			 rc, ret = ADM_FAIL, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 0, 0)) >= 0)
		return rc;
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	memset(&bk, 0, sizeof(bk));
	if ((rc = store_failchk(a->st)) != STORE_OK) {
		store_failed("failchk", rc);
		goto fail;
	}
	/* Dead processes' reservations are billed first: no row is missing. */
	if ((rc = billing_reclaim(a->st, time(NULL), &reclaim, NULL,
	    NULL)) != STORE_OK) {
		store_failed("reclaim", rc);
		goto fail;
	}
	if ((rc = books_check(a->st, &bk)) != STORE_OK) {
		store_failed("cannot read the store", rc);
		goto fail;
	}
	np = json_object_array_length(bk.problems);
	if (json) {
		if ((o = json_object_new_object()) == NULL) {
			complain("out of memory");
			goto fail;
		}
		jint(o, "keys", bk.keys);
		jint(o, "usage_rows", bk.usage_rows);
		jint(o, "ledger_entries", bk.ledger_entries);
		json_object_object_add(o, "problems",
		    json_object_get(bk.problems));
		json_object_object_add(o, "warnings",
		    json_object_get(bk.warnings));
		jint(o, "over_reservation_rows", bk.over_reservation);
		jint(o, "usage_cost_micro_usd", bk.usage_cost);
		jint(o, "ledger_debits_micro_usd", bk.ledger_debits);
		jint(o, "purged_debits_micro_usd", bk.purged_debits);
		jint(o, "busy_keys", bk.busy);
		jint(o, "reclaimed", reclaim.reclaimed);
		if (print_json(o) != ADM_OK)
			goto fail;
	} else {
		for (i = 0; i < np; i++)
			printf("check: %s\n", json_object_get_string(
			    json_object_array_get_idx(bk.problems, i)));
		for (i = 0; i < json_object_array_length(bk.warnings); i++)
			printf("check: warning: %s\n", json_object_get_string(
			    json_object_array_get_idx(bk.warnings, i)));
		if (bk.purged_debits != 0)
			printf("check: %s of debits for purged usage rows not "
			    "compared\n", fmt_usd(bk.purged_debits, buf,
			    sizeof(buf)));
		if (bk.busy > 0)
			printf("check: %ld keys written during the check, not "
			    "compared\n", bk.busy);
		if (reclaim.reclaimed + reclaim.dropped > 0)
			printf("check: reclaimed %ld reservations of dead "
			    "processes (billed %s)\n", reclaim.reclaimed,
			    fmt_usd(reclaim.billed, buf, sizeof(buf)));
		printf("check: %ld keys, %ld usage rows, %ld ledger entries, "
		    "%zu problems\n", bk.keys, bk.usage_rows,
		    bk.ledger_entries, np);
	}
	ret = np == 0 ? ADM_OK : ADM_FAIL;
 fail:
	books_free(&bk);
	return ret;
}

/* --- breaker: llmgate-admin breaker list|reset -------------------------- */

/*
 * The gateway's breaker region, never created here: NULL with *none set
 * when no gateway has counted a failure yet (nothing to list or reset).
 */
static struct breaker_region *
breaker_open(struct admin *a, int *none)
{
	struct breaker_region	*r;
	struct stat		 sb;
	char			 path[4096], err[512];

	*none = 0;
	if (admin_config(a) != ADM_OK)
		return NULL;
	snprintf(path, sizeof(path), "%s/%s", a->cfg->gw.data_dir,
	    BREAKER_FILE);
	if (stat(path, &sb) == -1) {
		if (errno == ENOENT) {
			*none = 1;
			return NULL;
		}
		complain("%s: %s", path, strerror(errno));
		return NULL;
	}
	/* A rebuild by root would lock the gateway's user out of it. */
	if (geteuid() == 0 && sb.st_uid != 0) {
		complain("%s belongs to uid %ld: run as that user (sudo -u "
		    "www-data llmgate-admin ...)", path, (long)sb.st_uid);
		return NULL;
	}
	if ((r = breaker_region_open(path, err, sizeof(err))) == NULL)
		complain("%s", err);
	return r;
}

static void
fmt_age(int64_t ms, int64_t now, char *buf, size_t len)
{
	if (ms <= 0)
		snprintf(buf, len, "-");
	else if (ms > now)
		snprintf(buf, len, "in %llds", (long long)((ms - now + 999) /
		    1000));
	else
		snprintf(buf, len, "%llds ago", (long long)((now - ms) / 1000));
}

int
cmd_breaker_list(struct admin *a, int argc, char **argv)
{
	struct breaker_region	*r;
	struct breaker_info	*in;
	struct breaker_stats	 st;
	struct json_object	*o, *data, *e;
	char			 dep[BREAKER_DEPLOYMENT_MAX];
	char			 b1[32], b2[32];
	int64_t			 now = breaker_now_ms();
	size_t			 i, n = 0;
	int			 json = 0, rc, none;

	if ((rc = plain_opts(a, argc, argv, &json, 0, 0)) != -1)
		return rc;
	if ((r = breaker_open(a, &none)) == NULL && !none)
		return ADM_FAIL;
	if ((in = calloc(BREAKER_SLOTS, sizeof(*in))) == NULL) {
		breaker_region_close(r);
		complain("out of memory");
		return ADM_FAIL;
	}
	memset(&st, 0, sizeof(st));
	if (r != NULL)
		n = breaker_region_list(r, in, BREAKER_SLOTS, &st);
	if (json) {
		data = json_object_new_array();
		for (i = 0; i < n; i++) {
			e = json_object_new_object();
			snprintf(dep, sizeof(dep), "%s/%s", in[i].provider,
			    in[i].model);
			jstr(e, "deployment", dep, sizeof(dep));
			jstr(e, "state", breaker_state_names[in[i].state],
			    32);
			jint(e, "consecutive_failures",
			    in[i].consecutive_failures);
			jint(e, "trips", in[i].trips);
			jint(e, "opened_at", in[i].opened_ms / 1000);
			jint(e, "next_probe_at", in[i].next_probe_ms / 1000);
			juint(e, "requests", in[i].requests);
			juint(e, "failures", in[i].failures);
			jstr(e, "last_error", in[i].last_error,
			    sizeof(in[i].last_error));
			json_object_array_add(data, e);
		}
		o = json_object_new_object();
		json_object_object_add(o, "data", data);
		jint(o, "slots", st.slots);
		jint(o, "used", st.used);
		print_json(o);	/* puts o */
	} else if (n == 0)
		printf("no deployment has a breaker yet\n");
	else {
		printf("%-40s %-9s %5s %5s %-10s %-10s %s\n", "DEPLOYMENT",
		    "STATE", "FAILS", "TRIPS", "OPENED", "PROBE", "LAST ERROR");
		for (i = 0; i < n; i++) {
			snprintf(dep, sizeof(dep), "%s/%s", in[i].provider,
			    in[i].model);
			fmt_age(in[i].opened_ms, now, b1, sizeof(b1));
			fmt_age(in[i].next_probe_ms, now, b2, sizeof(b2));
			printf("%-40s %-9s %5u %5u %-10s %-10s %s\n", dep,
			    breaker_state_names[in[i].state],
			    in[i].consecutive_failures, in[i].trips, b1, b2,
			    in[i].last_error);
		}
	}
	free(in);
	breaker_region_close(r);
	return ADM_OK;
}

int
cmd_breaker_reset(struct admin *a, int argc, char **argv)
{
	struct breaker_region	*r;
	const char		*which;
	int			 rc, none, n;

	if ((rc = plain_opts(a, argc, argv, NULL, 0, 1)) != -1)
		return rc;
	which = optind < argc ? argv[optind] : NULL;
	if ((r = breaker_open(a, &none)) == NULL && !none)
		return ADM_FAIL;
	n = r != NULL ? breaker_region_reset(r, which) : 0;
	breaker_region_close(r);
	if (n < 0) {
		complain("the breaker region did not answer");
		return ADM_FAIL;
	}
	if (n == 0 && which != NULL) {
		complain("no breaker for %s", which);
		return ADM_FAIL;
	}
	printf("reset %d breaker(s)\n", n);
	return ADM_OK;
}
