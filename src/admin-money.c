/* admin-money.c: llmgate-admin topup, adjust, balance and ledger: a key's money. */
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
#include "billing.h"
#include "keys.h"
#include "store.h"

#define LEDGER_LIMIT	20		/* default entries of `ledger` */

static struct json_object *
ledger_json(const struct ledger_rec *l)
{
	struct json_object	*o;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	juint(o, "id", l->id);
	json_object_object_add(o, "type", json_object_new_string(
	    l->kind < LEDGER__MAX ? ledger_kind_names[l->kind] : "unknown"));
	jint(o, "amount_micro_usd", l->amount);
	jusd(o, "amount_usd", l->amount);
	jint(o, "balance_after_micro_usd", l->balance_after);
	jint(o, "created_us", l->time_us);
	jstr(o, "request_id", l->request_id, sizeof(l->request_id));
	juint(o, "usage_id", l->usage_id);
	jstr(o, "reason", l->reason, sizeof(l->reason));
	return o;
}

/* topup and adjust: a credit, or for adjust a signed correction. */
int
cmd_credit(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "reason", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_rec		 k;
	struct ledger_rec	 l;
	struct json_object	*o;
	enum ledger_kind	 kind;
	money_t			 amount;
	const char		*reason = NULL, *amt, *why;
	char			*neg = NULL, b1[32], b2[32];
	int			 ch, i, rc, json = 0;

	kind = strcmp(a->cmd->name, "adjust") == 0 ? LEDGER_ADJUST :
	    LEDGER_TOPUP;
	/* getopt would read "-2.50" as options: hide its sign until after. */
	for (i = 1; i < argc; i++)
		if (is_negative(argv[i]) && !takes_arg(argv[i - 1], lo)) {
			neg = ++argv[i];
			break;
		}
	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (ch) {
		case 'r':
			reason = optarg;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			return cmd_usage(a, stderr);
		}
	if (optind + 2 != argc)
		return cmd_usage(a, stderr);
	amt = argv[optind + 1];
	if (neg != NULL && amt == neg)
		amt--;
	if (parse_usd(amt, "amount", 1, &amount) != 0)
		return ADM_USAGE;
	if (kind == LEDGER_TOPUP && amount <= 0) {
		complain("amount: a topup must be more than 0");
		return ADM_USAGE;
	}
	if (kind == LEDGER_ADJUST && amount == 0) {
		complain("amount: an adjustment must not be 0");
		return ADM_USAGE;
	}
	if (kind == LEDGER_ADJUST && (reason == NULL || reason[0] == '\0')) {
		complain("adjust needs --reason");
		return ADM_USAGE;
	}
	/* The same rule as POST /admin/topup and /admin/adjust. */
	if (reason != NULL && (why = keys_check_reason(reason)) != NULL) {
		complain("--reason: %s", why);
		return ADM_USAGE;
	}
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	memset(&l, 0, sizeof(l));
	rc = billing_credit(a->st, k.id, amount, kind,
	    reason != NULL ? reason : "", &l);
	if (rc != STORE_OK)
		return store_failed(kind == LEDGER_TOPUP ?
		    "cannot top up" : "cannot adjust", rc);
	if (json) {
		if ((o = ledger_json(&l)) != NULL) {
			json_object_object_add(o, "object",
			    json_object_new_string("ledger_entry"));
			juint(o, "key_id", k.id);
			jint(o, "balance_micro_usd", l.balance_after);
			jusd(o, "balance_usd", l.balance_after);
		}
		return print_json(o);
	}
	printf("key %" PRIu64 " (%.*s): %s %s%s, balance %s\n", k.id,
	    FIX(k.name), ledger_kind_names[kind], amount > 0 ? "+" : "",
	    fmt_usd(amount, b1, sizeof(b1)),
	    fmt_usd(l.balance_after, b2, sizeof(b2)));
	return ADM_OK;
}

int
cmd_balance(struct admin *a, int argc, char **argv)
{
	struct key_rec		 k;
	struct balance_rec	 b;
	struct json_object	*o;
	money_t			 reserved = 0;
	char			 buf[32];
	int			 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 1, 1)) >= 0)
		return rc;
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	memset(&b, 0, sizeof(b));
	rc = billing_balance(a->st, k.id, &b, &reserved);
	if (rc == STORE_NOTFOUND) {
		memset(&b, 0, sizeof(b));
		reserved = 0;
	} else if (rc != STORE_OK)
		return store_failed("cannot read the balance", rc);
	if (json) {
		if ((o = json_object_new_object()) != NULL) {
			juint(o, "key_id", k.id);
			jstr(o, "name", k.name, sizeof(k.name));
			json_object_object_add(o, "prepaid",
			    json_object_new_boolean(k.prepaid));
			jint(o, "balance_micro_usd", b.balance);
			jint(o, "reserved_micro_usd", reserved);
			jint(o, "available_micro_usd", b.balance - reserved);
			jint(o, "credited_micro_usd", b.credited);
			jint(o, "debited_micro_usd", b.debited);
			jusd(o, "balance_usd", b.balance);
		}
		return print_json(o);
	}
	printf("key: %" PRIu64 " (%.*s)\n", k.id, FIX(k.name));
	printf("prepaid: %s\n", k.prepaid ? "yes" : "no");
	printf("balance: %s\n", fmt_usd(b.balance, buf, sizeof(buf)));
	printf("reserved: %s\n", fmt_usd(reserved, buf, sizeof(buf)));
	printf("available: %s\n", fmt_usd(b.balance - reserved, buf,
	    sizeof(buf)));
	printf("credited: %s\n", fmt_usd(b.credited, buf, sizeof(buf)));
	printf("debited: %s\n", fmt_usd(b.debited, buf, sizeof(buf)));
	return ADM_OK;
}
static int
ledger_collect(void *arg, const struct ledger_rec *l)
{
	struct recs		*r = arg;
	const struct ledger_rec	*last;

	/* Newest first: an entry not older than the last is a rescan. */
	if (r->n > 0) {
		last = (const struct ledger_rec *)r->v + r->n - 1;
		if (l->time_us > last->time_us ||
		    (l->time_us == last->time_us && l->id >= last->id))
			r->n = 0;
	}
	return recs_push(r, l);
}

static void
print_ledger_row(const struct ledger_rec *l)
{
	char	 t[32], b1[32], b2[32];

	printf("%-21s %-6s %12s %12s %-24.*s %.*s\n",
	    fmt_time(l->time_us / 1000000, t, sizeof(t)),
	    l->kind < LEDGER__MAX ? ledger_kind_names[l->kind] : "?",
	    fmt_usd(l->amount, b1, sizeof(b1)),
	    fmt_usd(l->balance_after, b2, sizeof(b2)),
	    l->request_id[0] != '\0' ?
	    (int)strnlen(l->request_id, sizeof(l->request_id)) : 1,
	    l->request_id[0] != '\0' ? l->request_id : "-", FIX(l->reason));
}

static struct json_object *
ledger_elem(const void *l, time_t now)
{
	return ledger_json(l);
}

int
cmd_ledger(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "offset", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct recs		 r = { NULL, 0, 0, sizeof(struct ledger_rec), 0 };
	const struct ledger_rec	*l;
	struct key_rec		 k;
	int64_t			 limit = LEDGER_LIMIT, offset = 0;
	size_t			 i;
	int			 ch, rc, json = 0;

	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (ch) {
		case 'l':
			if (parse_count(optarg, "--limit", 1000000, &limit))
				return ADM_USAGE;
			if (limit == 0) {
				complain("--limit: expected 1 or more");
				return ADM_USAGE;
			}
			break;
		case 'o':
			if (parse_count(optarg, "--offset", INT32_MAX,
			    &offset))
				return ADM_USAGE;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			return cmd_usage(a, stderr);
		}
	if (optind + 1 != argc)
		return cmd_usage(a, stderr);
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	rc = billing_ledger(a->st, k.id, (long)offset, (long)limit,
	    ledger_collect, &r);
	if ((rc = recs_check(&r, rc, "cannot read the ledger")) != ADM_OK)
		goto done;
	if (json) {
		rc = recs_print_json(&r, ledger_elem, 0);
		goto done;
	}
	printf("%-21s %-6s %12s %12s %-24s %s\n", "TIME", "TYPE", "AMOUNT",
	    "BALANCE", "REQUEST", "REASON");
	for (l = r.v, i = 0; i < r.n; i++)
		print_ledger_row(&l[i]);
 done:
	free(r.v);
	return rc;
}
