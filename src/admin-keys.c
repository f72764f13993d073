/* admin-keys.c: llmgate-admin key create, list, show, set, rotate, delete, disable and enable. */
#include <ctype.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "account.h"
#include "admin.h"
#include "billing.h"
#include "config.h"
#include "keys.h"
#include "policy.h"
#include "report.h"
#include "store.h"

/* The policy k's requests run under, and where it comes from. */
static const struct policy_cfg *
key_policy(const struct config *cfg, const struct key_rec *k,
    enum policy_from *from, char *where, size_t len)
{
	struct principal	 p;
	const struct policy_cfg	*pol;

	memset(&p, 0, sizeof(p));
	p.key = *k;
	if (k->agent[0] != '\0')
		snprintf(p.agent, sizeof(p.agent), "%.*s", FIX(k->agent));
	else
		snprintf(p.agent, sizeof(p.agent), "%.*s", FIX(k->name));
	account_resolve(cfg, &p);
	pol = policy_resolve(cfg, &p, from);
	switch (*from) {
	case POLICY_FROM_AGENT:
		snprintf(where, len, "agent %s", p.agent);
		break;
	case POLICY_FROM_TIER:
		snprintf(where, len, "tier %s", p.tier);
		break;
	default:
		snprintf(where, len, "%s", policy_from_names[*from]);
		break;
	}
	return pol;
}

static void
print_policy(const struct config *cfg, const struct key_rec *k)
{
	const struct policy_cfg	*pol;
	enum policy_from	 from;
	char			 where[128];

	pol = key_policy(cfg, k, &from, where, sizeof(where));
	if (pol != NULL)
		printf("policy: %s (%s)\n", pol->name, where);
	else if (from == POLICY_FROM_KEY)
		printf("policy: %.*s (key; not configured: its requests are "
		    "refused)\n", FIX(k->policy));
	else
		printf("policy: none\n");
}

static void
print_key(const struct config *cfg, const struct key_rec *k, time_t now)
{
	char	 buf[64];

	printf("id: %" PRIu64 "\n", k->id);
	printf("prefix: %.*s\n", FIX(k->prefix));
	printf("name: %.*s\n", FIX(k->name));
	if (k->agent[0] != '\0')
		printf("agent: %.*s\n", FIX(k->agent));
	else
		printf("agent: (the key's name)\n");
	if (k->tier[0] != '\0')
		printf("tier: %.*s\n", FIX(k->tier));
	else
		printf("tier: (the agent's)\n");
	printf("models: %.*s\n", k->models[0] != '\0' ?
	    (int)strnlen(k->models, sizeof(k->models)) : 3,
	    k->models[0] != '\0' ? k->models : "all");
	if (k->rpm > 0)
		printf("rpm: %" PRId64 "\n", k->rpm);
	else
		printf("rpm: (the tier's)\n");
	if (k->tpm > 0)
		printf("tpm: %" PRId64 "\n", k->tpm);
	else
		printf("tpm: (the tier's)\n");
	if (k->max_concurrent > 0)
		printf("max concurrent: %d\n", (int)k->max_concurrent);
	else
		printf("max concurrent: none (the tier's counts all its keys)\n");
	printf("daily budget: %s\n", k->daily_budget > 0 ?
	    fmt_usd(k->daily_budget, buf, sizeof(buf)) : "none");
	printf("monthly budget: %s\n", k->monthly_budget > 0 ?
	    fmt_usd(k->monthly_budget, buf, sizeof(buf)) : "none");
	printf("prepaid: %s\n", k->prepaid ? "yes" : "no");
	printf("agent header: %s\n", k->agent_header ? "allowed" : "no");
	printf("state: %s\n", keys_state(k, now));
	printf("created: %s\n", fmt_time(k->created, buf, sizeof(buf)));
	printf("expires: %s\n", k->expires != 0 ?
	    fmt_time(k->expires, buf, sizeof(buf)) : "never");
	print_policy(cfg, k);
}

/* The key as JSON, with the policy its requests run under. */
static struct json_object *
key_json(const struct config *cfg, const struct key_rec *k, time_t now)
{
	struct json_object	*o = keys_to_json(k, now);
	const struct policy_cfg	*pol;
	enum policy_from	 from;
	char			 where[128];

	if (o == NULL)
		return NULL;
	pol = key_policy(cfg, k, &from, where, sizeof(where));
	json_object_object_add(o, "effective_policy", pol != NULL ?
	    json_object_new_string(pol->name) : NULL);
	json_object_object_add(o, "policy_from",
	    json_object_new_string(where));
	return o;
}

/* "Nd" (days from now), YYYY-MM-DD or unix seconds, in the future. */
static int
parse_expires(const char *s, time_t now, int64_t *out)
{
	size_t	 n = strlen(s);
	int64_t	 days, t;
	char	 num[16];

	if (n >= 2 && n < sizeof(num) && s[n - 1] == 'd') {
		memcpy(num, s, n - 1);
		num[n - 1] = '\0';
		if (parse_count(num, "--expires", 36500, &days) != 0)
			return -1;
		t = (int64_t)now + days * DAY_S;
	} else if (report_parse_time(s, &t) != 0) {
		complain("--expires: expected YYYY-MM-DD or a number of days "
		    "such as 30d");
		return -1;
	}
	if (t <= now) {
		complain("--expires: %s is not in the future", s);
		return -1;
	}
	*out = t;
	return 0;
}

/*
 * The fields key create and key set both take: 1 when ch is one of them
 * (*rc: 0, or -1 reported), else 0. Every field a key has is here.
 */
static int
key_opt(int ch, const char *arg, struct key_rec *k, time_t now, int *rc)
{
	int64_t	 n;

	*rc = 0;
	switch (ch) {
	case 'n':
		*rc = set_field(k->name, sizeof(k->name), arg, "--name");
		return 1;
	case 'a':
		*rc = set_field(k->agent, sizeof(k->agent), arg, "--agent");
		return 1;
	case 't':
		*rc = set_field(k->tier, sizeof(k->tier), arg, "--tier");
		return 1;
	case 'm':
		*rc = set_models(k->models, sizeof(k->models), arg);
		return 1;
	case 'e':
		if (strcmp(arg, "never") == 0 || strcmp(arg, "0") == 0)
			k->expires = 0;
		else
			*rc = parse_expires(arg, now, &k->expires);
		return 1;
	case 'p':
		k->prepaid = 1;
		return 1;
	case 'P':
		k->prepaid = 0;
		return 1;
	case 'H':
		k->agent_header = 1;
		return 1;
	case 'N':
		k->agent_header = 0;
		return 1;
	case 'R':
		*rc = parse_count(arg, "--rpm", INT32_MAX, &k->rpm);
		return 1;
	case 'T':
		*rc = parse_count(arg, "--tpm", INT64_MAX / 2, &k->tpm);
		return 1;
	case 'd':
		*rc = parse_usd(arg, "--daily-budget", 0, &k->daily_budget);
		return 1;
	case 'M':
		*rc = parse_usd(arg, "--monthly-budget", 0, &k->monthly_budget);
		return 1;
	case 'L':
		*rc = set_field(k->policy, sizeof(k->policy), strcmp(arg,
		    "none") == 0 ? "" : arg, "--policy");
		return 1;
	case 'C':
		if ((*rc = parse_count(arg, "--max-concurrent",
		    KEY_CONCURRENT_MAX, &n)) == 0)
			k->max_concurrent = (int32_t)n;
		return 1;
	default:
		return 0;
	}
}

#define KEY_OPTIONS							\
	{ "name", required_argument, NULL, 'n' },			\
	{ "agent", required_argument, NULL, 'a' },			\
	{ "tier", required_argument, NULL, 't' },			\
	{ "models", required_argument, NULL, 'm' },			\
	{ "rpm", required_argument, NULL, 'R' },			\
	{ "tpm", required_argument, NULL, 'T' },			\
	{ "daily-budget", required_argument, NULL, 'd' },		\
	{ "monthly-budget", required_argument, NULL, 'M' },		\
	{ "max-concurrent", required_argument, NULL, 'C' },		\
	{ "policy", required_argument, NULL, 'L' },			\
	{ "expires", required_argument, NULL, 'e' },			\
	{ "prepaid", no_argument, NULL, 'p' },				\
	{ "allow-agent-header", no_argument, NULL, 'H' }

/* A key's tier must be one of the config's; ADM_OK or ADM_FAIL. */
static int
tier_known(struct admin *a, const struct key_rec *k)
{
	if (k->tier[0] != '\0' && config_tier(a->cfg, k->tier) == NULL) {
		complain("--tier: no [tier %.*s] in %s", FIX(k->tier),
		    a->cfg->path);
		return ADM_FAIL;
	}
	return ADM_OK;
}

/* A key's policy must be one of the config's; ADM_OK or ADM_FAIL. */
static int
policy_known(struct admin *a, const struct key_rec *k)
{
	if (k->policy[0] != '\0' && config_policy(a->cfg, k->policy) == NULL) {
		complain("--policy: no [policy %.*s] in %s", FIX(k->policy),
		    a->cfg->path);
		return ADM_FAIL;
	}
	return ADM_OK;
}

int
cmd_key_create(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		KEY_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_rec		 k;
	struct keys_fault	 f;
	struct json_object	*o;
	char			 secret[KEY_SECRET_LEN + 1];
	time_t			 now = time(NULL);
	int			 ch, rc, json = 0;

	memset(&k, 0, sizeof(k));
	memset(secret, 0, sizeof(secret));
	k.version = STORE_VERSION;
	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		rc = 0;
		if (ch == 'j')
			json = 1;
		else if (ch == 'h')
			return cmd_usage(a, stdout);
		else if (!key_opt(ch, optarg, &k, now, &rc))
			return cmd_usage(a, stderr);
		if (rc != 0)
			return ADM_USAGE;
	}
	if (optind != argc || k.name[0] == '\0')
		return cmd_usage(a, stderr);
	/* The same rules as POST /admin/keys. */
	if (keys_check(&k, &f) == -1) {
		complain("--%s: %s", f.field, f.why);
		return ADM_USAGE;
	}
	if (admin_open(a, STORE_ADMIN) != ADM_OK || tier_known(a, &k) !=
	    ADM_OK || policy_known(a, &k) != ADM_OK)
		return ADM_FAIL;
	if ((rc = keys_create(a->st, &k, secret, sizeof(secret))) != STORE_OK) {
		if (rc == STORE_EXISTS) {
			complain("a key named %s exists", k.name);
			return ADM_FAIL;
		}
		return store_failed("cannot create the key", rc);
	}
	if (json) {
		if ((o = key_json(a->cfg, &k, now)) != NULL)
			json_object_object_add(o, "key",
			    json_object_new_string(secret));
		rc = print_json(o);
	} else {
		printf("%s\n", secret);
		print_key(a->cfg, &k, now);
		rc = ADM_OK;
	}
	fflush(stdout);
	fputs("store it now: it is not shown again\n", stderr);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

static int
key_collect(void *arg, const struct key_rec *k)
{
	struct recs		*r = arg;
	const struct key_rec	*v = r->v;

	/* Keys come in id order: one not after the last is a rescan. */
	if (r->n > 0 && k->id <= v[r->n - 1].id)
		r->n = 0;
	return recs_push(r, k);
}

static void
print_key_row(const struct key_rec *k, time_t now)
{
	char	 lim[256], buf[32];
	size_t	 n = 0;

	lim[0] = '\0';
	if (k->rpm > 0)
		n += (size_t)snprintf(lim + n, sizeof(lim) - n,
		    " rpm=%" PRId64, k->rpm);
	if (k->tpm > 0 && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n,
		    " tpm=%" PRId64, k->tpm);
	if (k->max_concurrent > 0 && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n,
		    " concurrent=%d", (int)k->max_concurrent);
	if (k->daily_budget > 0 && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n, " day=%s",
		    fmt_usd(k->daily_budget, buf, sizeof(buf)));
	if (k->monthly_budget > 0 && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n, " month=%s",
		    fmt_usd(k->monthly_budget, buf, sizeof(buf)));
	if (k->prepaid && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n, " prepaid");
	if (k->agent_header && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n,
		    " agent-header");
	if (k->policy[0] != '\0' && n < sizeof(lim))
		n += (size_t)snprintf(lim + n, sizeof(lim) - n, " policy=%.*s",
		    FIX(k->policy));
	if (k->models[0] != '\0' && n < sizeof(lim))
		snprintf(lim + n, sizeof(lim) - n, " models=%.*s",
		    FIX(k->models));
	printf("%-6" PRIu64 " %-10.*s %-20.*s %-16.*s %-6.*s %-8s %s\n",
	    k->id, FIX(k->prefix), FIX(k->name),
	    k->agent[0] != '\0' ? (int)strnlen(k->agent, sizeof(k->agent)) : 1,
	    k->agent[0] != '\0' ? k->agent : "-",
	    k->tier[0] != '\0' ? (int)strnlen(k->tier, sizeof(k->tier)) : 1,
	    k->tier[0] != '\0' ? k->tier : "-",
	    keys_state(k, now), lim[0] != '\0' ? lim + 1 : "-");
}

static struct json_object *
key_elem(const void *k, time_t now)
{
	return keys_to_json(k, now);
}

int
cmd_key_list(struct admin *a, int argc, char **argv)
{
	struct recs		 r = { NULL, 0, 0, sizeof(struct key_rec), 0 };
	const struct key_rec	*keys;
	time_t			 now = time(NULL);
	size_t			 i;
	int			 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 0, 0)) >= 0)
		return rc;
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	rc = keys_list(a->st, key_collect, &r);
	if ((rc = recs_check(&r, rc, "cannot list the keys")) != ADM_OK)
		goto done;
	if (json) {
		rc = recs_print_json(&r, key_elem, now);
		goto done;
	}
	printf("%-6s %-10s %-20s %-16s %-6s %-8s %s\n", "ID", "PREFIX",
	    "NAME", "AGENT", "TIER", "STATE", "LIMITS");
	for (keys = r.v, i = 0; i < r.n; i++)
		print_key_row(&keys[i], now);
 done:
	free(r.v);
	return rc;
}

int
cmd_key_show(struct admin *a, int argc, char **argv)
{
	struct key_rec	 k;
	int		 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 1, 1)) >= 0)
		return rc;
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	if (json)
		return print_json(key_json(a->cfg, &k, time(NULL)));
	print_key(a->cfg, &k, time(NULL));
	return ADM_OK;
}

/*
 * key set (and its old name, key update): change any of a key's fields;
 * a limit of 0 clears it (the tier's, or none), --expires never clears
 * the expiry, --no-prepaid and --no-agent-header clear those flags.
 */
int
cmd_key_set(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		KEY_OPTIONS,
		{ "no-prepaid", no_argument, NULL, 'P' },
		{ "no-agent-header", no_argument, NULL, 'N' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_rec		 k, set;
	struct keys_fault	 f;
	time_t			 now = time(NULL);
	int			 ch, rc, json = 0, any = 0;

	memset(&set, 0, sizeof(set));
	opt_reset();
	/* Parsed twice: checked before the store is opened, applied after. */
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		rc = 0;
		if (ch == 'j')
			json = 1;
		else if (ch == 'h')
			return cmd_usage(a, stdout);
		else if (!key_opt(ch, optarg, &set, now, &rc))
			return cmd_usage(a, stderr);
		else
			any = 1;
		if (rc != 0)
			return ADM_USAGE;
	}
	if (argc - optind != 1 || !any)
		return cmd_usage(a, stderr);
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		(void)key_opt(ch, optarg, &k, now, &rc);
	/* The same rules as POST /admin/keys/KEY. */
	if (keys_check(&k, &f) == -1) {
		complain("--%s: %s", f.field, f.why);
		return ADM_USAGE;
	}
	if (tier_known(a, &k) != ADM_OK || policy_known(a, &k) != ADM_OK)
		return ADM_FAIL;
	if ((rc = keys_update(a->st, &k)) == STORE_EXISTS) {
		complain("--name: a key named %.*s exists", FIX(k.name));
		return ADM_FAIL;
	}
	if (rc == STORE_NOTFOUND) {
		complain("no such key: %s", argv[optind]);
		return ADM_FAIL;
	}
	if (rc != STORE_OK)
		return store_failed("cannot update the key (rotated or deleted "
		    "meanwhile? try again)", rc);
	if (json)
		return print_json(key_json(a->cfg, &k, now));
	print_key(a->cfg, &k, now);
	return ADM_OK;
}

/* key rotate: a new secret, the same id and books. */
int
cmd_key_rotate(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "grace", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_rec		 k, out;
	struct json_object	*o;
	char			 secret[KEY_SECRET_LEN + 1], buf[32];
	time_t			 now = time(NULL);
	int64_t			 grace = 0;
	int			 ch, rc, json = 0;

	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", lo, NULL)) != -1)
		switch (ch) {
		case 'g':
			if (parse_count(optarg, "--grace", KEY_GRACE_MAX,
			    &grace) != 0)
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
	if (argc - optind != 1)
		return cmd_usage(a, stderr);
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	memset(secret, 0, sizeof(secret));
	rc = keys_rotate(a->st, k.id, grace, &out, secret, sizeof(secret));
	if (rc == STORE_NOTFOUND) {
		complain("no such key: %s", argv[optind]);
		return ADM_FAIL;
	}
	if (rc != STORE_OK)
		return store_failed("cannot rotate the key", rc);
	if (json) {
		if ((o = keys_to_json(&out, now)) != NULL) {
			json_object_object_add(o, "key",
			    json_object_new_string(secret));
			jint(o, "grace_s", grace);
			jint(o, "old_secret_until", (int64_t)now + grace);
		}
		rc = print_json(o);
	} else {
		printf("%s\n", secret);
		print_key(a->cfg, &out, now);
		if (grace > 0)
			printf("old secret (%.*s): works until %s\n",
			    FIX(k.prefix), fmt_time((int64_t)now + grace, buf,
			    sizeof(buf)));
		else
			printf("old secret (%.*s): stopped\n", FIX(k.prefix));
		rc = ADM_OK;
	}
	fflush(stdout);
	fputs("store it now: it is not shown again\n", stderr);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

/* key delete: refused while money is held; the books stay. */
int
cmd_key_delete(struct admin *a, int argc, char **argv)
{
	struct keys_held	 h;
	struct key_rec		 k;
	char			 b1[32];
	int			 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 1, 1)) >= 0)
		return rc;
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	rc = keys_delete(a->st, k.id, &h);
	if (rc == STORE_NOTFOUND) {
		complain("no such key: %s", argv[optind]);
		return ADM_FAIL;
	}
	if (rc == STORE_EXISTS && h.requests > 0) {
		complain("key %" PRIu64 " (%.*s) has %ld requests in flight "
		    "holding %s: wait for them to end (key disable stops new "
		    "ones), then delete it", k.id, FIX(k.name), h.requests,
		    fmt_usd(h.reserved, b1, sizeof(b1)));
		return ADM_FAIL;
	}
	if (rc == STORE_EXISTS && h.balance > 0) {
		complain("key %" PRIu64 " (%.*s) has a balance of %s paid in: "
		    "refund it first (llmgate-admin adjust %" PRIu64 " -%s "
		    "--reason refund), then delete it", k.id, FIX(k.name),
		    fmt_usd(h.balance, b1, sizeof(b1)), k.id, b1);
		return ADM_FAIL;
	}
	if (rc == STORE_EXISTS) {
		complain("prepaid key %" PRIu64 " (%.*s) is overdrawn by %s: "
		    "settle it first (llmgate-admin topup or adjust), then "
		    "delete it", k.id, FIX(k.name),
		    fmt_usd(-h.balance, b1, sizeof(b1)));
		return ADM_FAIL;
	}
	if (rc != STORE_OK)
		return store_failed("cannot delete the key", rc);
	if (json) {
		k.disabled = KEY_DELETED;
		return print_json(keys_to_json(&k, time(NULL)));
	}
	printf("key %" PRIu64 " (%.*s) deleted; its usage and ledger are "
	    "kept\n", k.id, FIX(k.name));
	return ADM_OK;
}

/* key disable and key enable: set the flag from the command's name. */
int
cmd_key_state(struct admin *a, int argc, char **argv)
{
	struct key_rec	 k;
	int		 rc, disable;
	const char	*verb;

	disable = strcmp(a->cmd->name, "key disable") == 0;
	verb = disable ? "disabled" : "enabled";
	if ((rc = plain_opts(a, argc, argv, NULL, 1, 1)) >= 0)
		return rc;
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	if (k.disabled == disable) {
		printf("key %" PRIu64 " (%.*s) was already %s\n", k.id,
		    FIX(k.name), verb);
		return ADM_OK;
	}
	k.disabled = (uint8_t)disable;
	if ((rc = keys_update(a->st, &k)) == STORE_NOTFOUND) {
		complain("no such key: %s", argv[optind]);
		return ADM_FAIL;
	}
	if (rc != STORE_OK)
		return store_failed("cannot update the key", rc);
	printf("key %" PRIu64 " (%.*s) %s\n", k.id, FIX(k.name), verb);
	return ADM_OK;
}
