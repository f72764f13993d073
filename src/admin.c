/* admin.c: llmgate-admin, the operator's tool: keys, balances, usage reports, purge, replay, recovery and a check of the books. */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "billing.h"
#include "breaker.h"
#include "config.h"
#include "keys.h"
#include "metrics.h"
#include "money.h"
#include "report.h"
#include "store.h"
#include "usage.h"

#define DAY_S		86400
#define LEDGER_LIMIT	20		/* default entries of `ledger` */
#define USAGE_DAYS	30		/* default range of `usage` */

/* Exit statuses. */
enum {
	ADM_OK = 0,
	ADM_FAIL = 1,
	ADM_USAGE = 2,
};

struct admin;

/* One command: its name (one or two words), arguments, help and handler. */
struct cmd_entry {
	const char	*name;
	const char	*args;
	const char	*help;
	const char	*options;	/* lines after the usage, or NULL */
	int		(*exec)(struct admin *, int, char **);
};

/* What a command works with; opened by the command, closed by main. */
struct admin {
	const char		*path;		/* config file */
	const struct cmd_entry	*cmd;
	struct config		*cfg;
	struct store		*st;
};

/* A fixed char array of a stored record for "%.*s" (may lack its NUL). */
#define FIX(f)	(int)strnlen((f), sizeof(f)), (f)

static void complain(const char *, ...) __attribute__((format(printf, 1, 2)));

static void
complain(const char *fmt, ...)
{
	va_list	 ap;

	fputs("llmgate-admin: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Report a failed store operation; returns ADM_FAIL. */
static int
store_failed(const char *what, int rc)
{
	switch (rc) {
	case STORE_READONLY:
		complain("%s: the store is read-only (run as the web server "
		    "user?)", what);
		break;
	case STORE_PANIC:
		complain("%s: the store needs recovery: stop the gateway and "
		    "run llmgate-admin recover", what);
		break;
	default:
		complain("%s: %s", what, store_error());
		break;
	}
	return ADM_FAIL;
}

static int
cmd_usage(const struct admin *a, FILE *fp)
{
	const struct cmd_entry	*ce = a->cmd;

	fprintf(fp, "usage: llmgate-admin [-c CONFIG] %s%s%s\n\n%s\n",
	    ce->name, ce->args[0] != '\0' ? " " : "", ce->args, ce->help);
	if (ce->options != NULL)
		fprintf(fp, "\n%s", ce->options);
	return fp == stdout ? ADM_OK : ADM_USAGE;
}

/*
 * Start getopt afresh on a command's own argv. glibc reinitialises only
 * when optind is 0 (else it keeps the "+" mode main used).
 */
static void
opt_reset(void)
{
#ifdef __GLIBC__
	optind = 0;
#else
	optind = 1;
	optreset = 1;
#endif
}

/*
 * The options of a command that takes only --help and, when json is not
 * NULL, --json, then min to max operands. Returns -1 to go on, else the
 * exit status (the usage was printed).
 */
static int
plain_opts(struct admin *a, int argc, char **argv, int *json, int min,
    int max)
{
	static const struct option lo[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int	 ch;

	opt_reset();
	while ((ch = getopt_long(argc, argv, "h", json != NULL ? lo : lo + 1,
	    NULL)) != -1)
		switch (ch) {
		case 'j':
			*json = 1;
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			return cmd_usage(a, stderr);
		}
	if (argc - optind < min || argc - optind > max)
		return cmd_usage(a, stderr);
	return -1;
}

/* Load the config once; ADM_OK or ADM_FAIL (reported). */
static int
admin_config(struct admin *a)
{
	char	 err[1024];

	if (a->cfg != NULL)
		return ADM_OK;
	if ((a->cfg = config_load_opts(a->path, CONFIG_NO_MASTER_KEY, err,
	    sizeof(err))) == NULL) {
		complain("config error: %s", err);
		return ADM_FAIL;
	}
	/* A reclaim here counts the requests it bills, as the gateway would. */
	metrics_init(a->cfg, 0);
	return ADM_OK;
}

/*
 * A store call stuck in a panicked environment (a process died inside
 * Berkeley DB): say so and exit rather than wait for ever.
 */
static void
on_hang(const char *why)
{
	char	 msg[512];
	int	 n;

	n = snprintf(msg, sizeof(msg), "llmgate-admin: the store does not "
	    "answer (%s); the gateway recovers it by itself once its "
	    "processes leave it; try again in a few seconds\n", why);
	if (n > 0)
		(void)!write(STDERR_FILENO, msg, (size_t)n < sizeof(msg) ?
		    (size_t)n : sizeof(msg) - 1);
	_exit(ADM_FAIL);
}

/* Load the config and open its store; ADM_OK or ADM_FAIL (reported). */
static int
admin_open(struct admin *a, enum store_mode mode)
{
	struct passwd	*pw;
	struct stat	 sb;
	char		 err[1024];
	int		 nosync;

	if (admin_config(a) != ADM_OK)
		return ADM_FAIL;
	/* Files root creates in another user's data_dir lock that user out. */
	if (geteuid() == 0 && stat(a->cfg->gw.data_dir, &sb) == 0 &&
	    sb.st_uid != 0 && (sb.st_mode & S_ISGID) == 0) {
		pw = getpwuid(sb.st_uid);
		complain("%s belongs to %s: run as that user (sudo -u %s "
		    "llmgate-admin ...) or make it setgid (chmod 2770)",
		    a->cfg->gw.data_dir, pw != NULL ? pw->pw_name : "another "
		    "user", pw != NULL ? pw->pw_name : "USER");
		return ADM_FAIL;
	}
	nosync = a->cfg->gw.durability != NULL &&
	    strcmp(a->cfg->gw.durability, "nosync") == 0;
	umask(007);
	a->st = store_open(a->cfg->gw.data_dir, mode, nosync,
	    a->cfg->gw.checkpoint_interval, err, sizeof(err));
	if (a->st == NULL) {
		if (strstr(err, a->cfg->gw.data_dir) != NULL)
			complain("%s", err);
		else
			complain("the store in %s: %s", a->cfg->gw.data_dir,
			    err);
		return ADM_FAIL;
	}
	return ADM_OK;
}

/* A key by id, name or prefix; ADM_OK or ADM_FAIL (reported). */
static int
find_key(struct admin *a, const char *ref, struct key_rec *k)
{
	int	 rc;

	if ((rc = keys_find(a->st, ref, k)) == STORE_OK)
		return ADM_OK;
	if (rc == STORE_NOTFOUND) {
		complain("no such key: %s", ref);
		return ADM_FAIL;
	}
	return store_failed("cannot read the key", rc);
}

/* Open the store and read the key ref names; ADM_OK or ADM_FAIL. */
static int
open_key(struct admin *a, const char *ref, struct key_rec *k)
{
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	return find_key(a, ref, k);
}

/* Dollars with two decimals at least ("2.50", "0.000123"), into buf. */
static const char *
fmt_usd(money_t m, char *buf, size_t len)
{
	char	*dot;
	size_t	 n;

	money_format_usd(m, buf, len);
	if ((dot = strchr(buf, '.')) == NULL)
		return buf;
	n = strlen(buf);
	while (n > (size_t)(dot - buf) + 3 && buf[n - 1] == '0')
		buf[--n] = '\0';
	return buf;
}

/* A UTC time ("2026-11-23 14:05:00Z"), into buf. */
static const char *
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

static int
print_json(struct json_object *o)
{
	if (o == NULL) {
		complain("out of memory");
		return ADM_FAIL;
	}
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
	    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return ADM_OK;
}

static void
jint(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void
juint(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void
jstr(struct json_object *o, const char *k, const char *s, size_t size)
{
	json_object_object_add(o, k,
	    json_object_new_string_len(s, (int)strnlen(s, size)));
}

static void
jusd(struct json_object *o, const char *k, money_t m)
{
	char	 buf[32];

	money_format_usd(m, buf, sizeof(buf));
	json_object_object_add(o, k, json_object_new_string(buf));
}

/* A whole number 0..max; -1 (reported) when it is not one. */
static int
parse_count(const char *s, const char *what, int64_t max, int64_t *out)
{
	char		*end;
	long long	 v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (!isdigit((unsigned char)s[0]) || *end != '\0' || errno != 0 ||
	    v > max) {
		complain("%s: expected a whole number 0..%" PRId64, what, max);
		return -1;
	}
	*out = v;
	return 0;
}

/* Dollars, with a sign when signed; -1 (reported) when not an amount. */
static int
parse_usd(const char *s, const char *what, int signed_ok, money_t *out)
{
	int	 neg = 0;

	if (signed_ok && (s[0] == '-' || s[0] == '+'))
		neg = *s++ == '-';
	if (money_parse_usd(s, out) != 0) {
		complain("%s: expected an amount in USD such as 12.50", what);
		return -1;
	}
	if (neg)
		*out = -*out;
	return 0;
}

/* Copy a value into a fixed field; -1 (reported) when it does not fit. */
static int
set_field(char *dst, size_t size, const char *val, const char *what)
{
	size_t	 n = strlen(val);

	if (n >= size) {
		complain("%s: longer than %zu characters", what, size - 1);
		return -1;
	}
	memcpy(dst, val, n + 1);
	return 0;
}

/* --models "GLOB ...": globs split at spaces and commas, one space apart. */
static int
set_models(char *dst, size_t size, const char *val)
{
	char	 glob[KEY_MODELS_MAX];
	size_t	 n;

	dst[0] = '\0';
	for (;;) {
		val += strspn(val, " ,\t");
		if ((n = strcspn(val, " ,\t")) == 0)
			return 0;
		if (n >= sizeof(glob))
			break;
		memcpy(glob, val, n);
		glob[n] = '\0';
		if (keys_models_add(dst, size, glob) == -1)
			break;
		val += n;
	}
	complain("--models: longer than %zu characters", size - 1);
	return -1;
}

/* "-2.50": an argument that getopt would take for options. */
static int
is_negative(const char *s)
{
	return s[0] == '-' && (isdigit((unsigned char)s[1]) ||
	    (s[1] == '.' && isdigit((unsigned char)s[2])));
}

/* Nonzero when arg is a long option that takes the next word. */
static int
takes_arg(const char *arg, const struct option *lo)
{
	size_t	 n;

	if (strncmp(arg, "--", 2) != 0 || strchr(arg, '=') != NULL)
		return 0;
	if ((n = strlen(arg + 2)) == 0)
		return 0;
	for (; lo->name != NULL; lo++)
		if (lo->has_arg == required_argument &&
		    strncmp(arg + 2, lo->name, n) == 0)
			return 1;
	return 0;
}

static void
print_key(const struct key_rec *k, time_t now)
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
 * The limits key create and key update both set: 1 when ch is one of
 * them (*rc: 0, or -1 reported), else 0.
 */
static int
key_limit_opt(int ch, const char *arg, struct key_rec *k, int *rc)
{
	int64_t	 n;

	switch (ch) {
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
	case 'C':
		if ((*rc = parse_count(arg, "--max-concurrent",
		    KEY_CONCURRENT_MAX, &n)) == 0)
			k->max_concurrent = (int32_t)n;
		return 1;
	default:
		return 0;
	}
}

#define KEY_LIMIT_OPTIONS						\
	{ "rpm", required_argument, NULL, 'R' },			\
	{ "tpm", required_argument, NULL, 'T' },			\
	{ "daily-budget", required_argument, NULL, 'd' },		\
	{ "monthly-budget", required_argument, NULL, 'M' },		\
	{ "max-concurrent", required_argument, NULL, 'C' }

static int
cmd_key_create(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "agent", required_argument, NULL, 'a' },
		{ "tier", required_argument, NULL, 't' },
		{ "models", required_argument, NULL, 'm' },
		KEY_LIMIT_OPTIONS,
		{ "expires", required_argument, NULL, 'e' },
		{ "prepaid", no_argument, NULL, 'p' },
		{ "allow-agent-header", no_argument, NULL, 'H' },
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
		switch (ch) {
		case 'n':
			rc = set_field(k.name, sizeof(k.name), optarg,
			    "--name");
			break;
		case 'a':
			rc = set_field(k.agent, sizeof(k.agent), optarg,
			    "--agent");
			break;
		case 't':
			rc = set_field(k.tier, sizeof(k.tier), optarg,
			    "--tier");
			break;
		case 'm':
			rc = set_models(k.models, sizeof(k.models), optarg);
			break;
		case 'e':
			rc = parse_expires(optarg, now, &k.expires);
			break;
		case 'p':
			k.prepaid = 1;
			break;
		case 'H':
			k.agent_header = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			return cmd_usage(a, stdout);
		default:
			if (!key_limit_opt(ch, optarg, &k, &rc))
				return cmd_usage(a, stderr);
		}
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
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	if (k.tier[0] != '\0' && config_tier(a->cfg, k.tier) == NULL) {
		complain("--tier: no [tier %s] in %s", k.tier, a->cfg->path);
		return ADM_FAIL;
	}
	if ((rc = keys_create(a->st, &k, secret, sizeof(secret))) != STORE_OK) {
		if (rc == STORE_EXISTS) {
			complain("a key named %s exists", k.name);
			return ADM_FAIL;
		}
		return store_failed("cannot create the key", rc);
	}
	if (json) {
		if ((o = keys_to_json(&k, now)) != NULL)
			json_object_object_add(o, "key",
			    json_object_new_string(secret));
		rc = print_json(o);
	} else {
		printf("%s\n", secret);
		print_key(&k, now);
		rc = ADM_OK;
	}
	fflush(stdout);
	fputs("store it now: it is not shown again\n", stderr);
	explicit_bzero(secret, sizeof(secret));
	return rc;
}

/*
 * Records handed over by a scan callback, kept until the scan is done:
 * a deadlock retry scans again from the start, which restarts the list.
 */
struct recs {
	void	*v;
	size_t	 n, cap, size;
	int	 failed;	/* out of memory */
};

/* Append a copy of rec; -1 (and failed set) when out of memory. */
static int
recs_push(struct recs *r, const void *rec)
{
	void	*v;
	size_t	 cap;

	if (r->n == r->cap) {
		cap = r->cap == 0 ? 32 : r->cap * 2;
		if ((v = reallocarray(r->v, cap, r->size)) == NULL) {
			r->failed = 1;
			return -1;
		}
		r->v = v;
		r->cap = cap;
	}
	memcpy((char *)r->v + r->n++ * r->size, rec, r->size);
	return 0;
}

/* How the scan that filled r ended: ADM_OK or ADM_FAIL (reported). */
static int
recs_check(const struct recs *r, int rc, const char *what)
{
	if (rc != STORE_OK)
		return store_failed(what, rc);
	if (r->failed) {
		complain("out of memory");
		return ADM_FAIL;
	}
	return ADM_OK;
}

/* Print the records as {"data": [...]}, each made by fn. */
static int
recs_print_json(const struct recs *r,
    struct json_object *(*fn)(const void *, time_t), time_t now)
{
	struct json_object	*o, *data;
	size_t			 i;

	if ((o = json_object_new_object()) == NULL ||
	    (data = json_object_new_array()) == NULL) {
		json_object_put(o);
		complain("out of memory");
		return ADM_FAIL;
	}
	json_object_object_add(o, "data", data);
	for (i = 0; i < r->n; i++)
		json_object_array_add(data,
		    fn((const char *)r->v + i * r->size, now));
	return print_json(o);
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

static int
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

static int
cmd_key_show(struct admin *a, int argc, char **argv)
{
	struct key_rec	 k;
	int		 rc, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 1, 1)) >= 0)
		return rc;
	if (open_key(a, argv[optind], &k) != ADM_OK)
		return ADM_FAIL;
	if (json)
		return print_json(keys_to_json(&k, time(NULL)));
	print_key(&k, time(NULL));
	return ADM_OK;
}

/* key update: change a key's limits; 0 clears one (the tier's, or none). */
static int
cmd_key_update(struct admin *a, int argc, char **argv)
{
	static const struct option lo[] = {
		KEY_LIMIT_OPTIONS,
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct key_rec		 k, set;
	struct keys_fault	 f;
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
		else if (!key_limit_opt(ch, optarg, &set, &rc))
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
		(void)key_limit_opt(ch, optarg, &k, &rc);
	if (keys_check(&k, &f) == -1) {
		complain("--%s: %s", f.field, f.why);
		return ADM_USAGE;
	}
	if ((rc = keys_update(a->st, &k)) != STORE_OK)
		return store_failed("cannot update the key", rc);
	if (json)
		return print_json(keys_to_json(&k, time(NULL)));
	print_key(&k, time(NULL));
	return ADM_OK;
}

/* key disable and key enable: set the flag from the command's name. */
static int
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
	if ((rc = keys_update(a->st, &k)) != STORE_OK)
		return store_failed("cannot update the key", rc);
	printf("key %" PRIu64 " (%.*s) %s\n", k.id, FIX(k.name), verb);
	return ADM_OK;
}

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
static int
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

static int
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

/* A CSV field, quoted when it holds a comma, quote or line break. */
static void
csv_field(const char *s, size_t size)
{
	size_t	 i, n = strnlen(s, size);

	if (strcspn(s, ",\"\r\n") >= n) {
		printf("%.*s", (int)n, s);
		return;
	}
	putchar('"');
	for (i = 0; i < n; i++) {
		if (s[i] == '"')
			putchar('"');
		putchar(s[i]);
	}
	putchar('"');
}

static void
csv_row(const struct report_row *r)
{
	char	 buf[32];

	csv_field(r->group, sizeof(r->group));
	money_format_usd(r->cost, buf, sizeof(buf));
	printf(",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64 ",%" PRId64
	    ",%" PRId64 ",%s\n", r->requests, r->errors, r->prompt,
	    r->completion, r->cached, r->cost, buf);
}

static void
text_row(const struct report_row *r, const char *group)
{
	char	 buf[32];

	printf("%-24s %9" PRId64 " %7" PRId64 " %12" PRId64 " %12" PRId64
	    " %12" PRId64 " %14s\n", group, r->requests, r->errors, r->prompt,
	    r->completion, r->cached, fmt_usd(r->cost, buf, sizeof(buf)));
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

static int
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
	enum report_group	 group = REPORT_NONE;
	const char		*keyref = NULL, *fromarg = NULL, *toarg = NULL;
	char			 b1[32], b2[32], gname[200];
	time_t			 now = time(NULL);
	int64_t			 from, to;
	uint64_t		 key_id = 0;
	size_t			 i;
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
			if (report_group_parse(optarg, &group) != 0) {
				complain("--group-by: expected day, model, "
				    "key or agent");
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
	rc = report_build(a->st, from * 1000000, to * 1000000,
	    keyref != NULL, key_id, group, &rep);
	if (rc != STORE_OK) {
		report_free(&rep);
		return store_failed("cannot read the usage", rc);
	}

	if (json) {
		if ((o = json_object_new_object()) == NULL ||
		    (data = json_object_new_array()) == NULL) {
			json_object_put(o);
			o = NULL;
			goto done;
		}
		jint(o, "from", from);
		jint(o, "to", to);
		json_object_object_add(o, "group_by",
		    json_object_new_string(report_group_names[group]));
		for (i = 0; i < rep.n; i++)
			json_object_array_add(data,
			    report_row_to_json(&rep.rows[i], 1));
		json_object_object_add(o, "data", data);
		json_object_object_add(o, "total",
		    report_row_to_json(&rep.total, 0));
	} else if (csv) {
		printf("group,requests,errors,prompt_tokens,completion_tokens,"
		    "cached_tokens,cost_micro_usd,cost_usd\n");
		for (i = 0; i < rep.n; i++)
			csv_row(&rep.rows[i]);
		if (group == REPORT_NONE && rep.n == 0) {
			snprintf(rep.total.group, sizeof(rep.total.group),
			    "total");
			csv_row(&rep.total);
		}
	} else {
		printf("usage from %s to %s (exclusive)%s%s\n",
		    fmt_time(from, b1, sizeof(b1)), fmt_time(to, b2,
		    sizeof(b2)), group != REPORT_NONE ? ", by " : "",
		    group != REPORT_NONE ? report_group_names[group] : "");
		printf("%-24s %9s %7s %12s %12s %12s %14s\n", "GROUP",
		    "REQUESTS", "ERRORS", "PROMPT", "COMPLETION", "CACHED",
		    "COST_USD");
		for (i = 0; i < rep.n; i++) {
			snprintf(gname, sizeof(gname), "%.*s",
			    FIX(rep.rows[i].group));
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

static int
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

static int
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

static int
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

static int
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

static int
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

/*
 * check reads the store in short batches, each its own read transaction,
 * like usage_scan: one transaction over every record would hold a lock
 * per page read and exhaust the lock table of a large store. The gateway
 * may write meanwhile, so each key's balance is read before and after:
 * a key whose credits or debits moved is not compared (every ledger
 * entry moves one of them).
 */
#define CHK_BATCH	256
#define CHK_KEY_MAX	64		/* longest key of the databases read */

/* One key's books as `check` adds them up. */
struct chk_key {
	uint64_t		 id;
	char			 name[KEY_NAME_MAX];
	int			 has_balance;
	int			 prepaid;
	int			 busy;		/* written during the check */
	struct balance_rec	 bal;
	money_t			 ledger_sum;
	money_t			 ledger_debits;	/* positive */
	money_t			 usage_cost;
};

struct chk {
	struct store		*st;
	struct chk_key		*keys;		/* sorted by id */
	size_t			 n, cap;
	long			 usage_rows;
	long			 ledger_entries;
	long			 busy;
	int64_t			 oldest_us;	/* the oldest usage row */
	money_t			 usage_cost;	/* rows of keys, not master */
	money_t			 ledger_debits;	/* of rows still there */
	money_t			 purged_debits;	/* of rows purged */
	int			 again;		/* second balance pass */
	struct json_object	*problems;	/* array of strings */
	/* Books that hold but say money went past a limit: strings too. */
	struct json_object	*warnings;
	long			 over_reservation;	/* rows so flagged */
	struct reclaim_result	 reclaim;	/* done before reading */
};

/* One record copied out of a batch. */
struct chk_rec {
	unsigned char	 k[CHK_KEY_MAX];
	size_t		 klen, vlen;
	unsigned char	 v[STORE_VALUE_MAX];
};

/* A walk over one database, CHK_BATCH records per transaction. */
struct batch {
	enum store_db	 db;
	struct chk_rec	*recs;
	size_t		 n;
	int		 more;
	unsigned char	 from[CHK_KEY_MAX];	/* the last key handled */
	size_t		 flen;
};

static void problem(struct chk *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void warning(struct chk *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void finding(struct json_object *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/* Up to this many warnings of one kind are listed one by one. */
#define CHK_WARN_MAX	20

/* One formatted finding added to a list of them. */
static void
finding(struct json_object *list, const char *fmt, va_list ap)
{
	char	 buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	json_object_array_add(list, json_object_new_string(buf));
}

static void
problem(struct chk *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	finding(c->problems, fmt, ap);
	va_end(ap);
}

static void
warning(struct chk *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	finding(c->warnings, fmt, ap);
	va_end(ap);
}

static int
batch_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct batch	*b = arg;
	struct chk_rec	*r;

	/* The scan resumes on the key the last batch ended with. */
	if (b->flen > 0 && klen == b->flen && memcmp(k, b->from, klen) == 0)
		return 0;
	if (b->n == CHK_BATCH) {
		b->more = 1;
		return STORE_STOP;
	}
	if (klen > CHK_KEY_MAX || vlen > STORE_VALUE_MAX)
		return STORE_ERROR;
	r = &b->recs[b->n++];
	memcpy(r->k, k, klen);
	r->klen = klen;
	memcpy(r->v, v, vlen);
	r->vlen = vlen;
	return 0;
}

static int
batch_txn(struct store_txn *txn, void *arg)
{
	struct batch	*b = arg;

	/* A deadlock runs this again: the batch starts over. */
	b->n = 0;
	b->more = 0;
	return store_scan(txn, b->db, NULL, 0, b->flen > 0 ? b->from : NULL,
	    b->flen, 0, batch_one, b);
}

/* Hand every record of db to fn, outside any transaction. */
static int
chk_walk(struct chk *c, struct batch *b, enum store_db db, store_scan_fn fn)
{
	struct chk_rec	*r;
	size_t		 i;
	int		 rc;

	b->db = db;
	b->flen = 0;
	do {
		if ((rc = store_read(c->st, batch_txn, b)) != STORE_OK)
			return rc;
		for (i = 0; i < b->n; i++) {
			r = &b->recs[i];
			if ((rc = fn(c, r->k, r->klen, r->v, r->vlen)) < 0)
				return rc;
		}
		if (b->n > 0) {
			r = &b->recs[b->n - 1];
			memcpy(b->from, r->k, r->klen);
			b->flen = r->klen;
		}
	} while (b->more);
	return STORE_OK;
}

static int
chk_cmp(const void *a, const void *b)
{
	const struct chk_key	*x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct chk_key *
chk_find(struct chk *c, uint64_t id)
{
	struct chk_key	 k;

	k.id = id;
	return c->n == 0 ? NULL :
	    bsearch(&k, c->keys, c->n, sizeof(k), chk_cmp);
}

/* A record of a key not read at the start: a problem unless it is new. */
static int
chk_unknown(struct chk *c, uint64_t id)
{
	struct key_rec	 k;

	return keys_get(c->st, id, &k) != STORE_OK;
}

/* The id in an 8-byte big-endian key, or 0. */
static uint64_t
key_id_of(const void *k, size_t klen)
{
	return klen >= 8 ? store_get_be64(k) : 0;
}

/* A stored value of the expected size and version, else a problem. */
static int
chk_value(struct chk *c, const char *what, uint64_t id, const void *v,
    size_t vlen, size_t size)
{
	if (vlen != size || ((const uint8_t *)v)[0] != STORE_VERSION) {
		problem(c, "%s of key %" PRIu64 ": %zu bytes, version %d "
		    "(expected %zu bytes, version %d)", what, id, vlen,
		    vlen > 0 ? ((const uint8_t *)v)[0] : -1, size,
		    STORE_VERSION);
		return -1;
	}
	return 0;
}

static int
chk_key_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk	*c = arg;
	struct key_rec	 r;
	struct chk_key	*ck, *keys;
	size_t		 cap;

	if (chk_value(c, "key record", key_id_of(k, klen), v, vlen,
	    sizeof(r)) != 0)
		return 0;
	memcpy(&r, v, sizeof(r));
	if (klen != 8 || r.id != store_get_be64(k))
		problem(c, "key record %" PRIu64 " is stored under another "
		    "id", r.id);
	if (c->n == c->cap) {
		cap = c->cap == 0 ? 64 : c->cap * 2;
		if ((keys = reallocarray(c->keys, cap, sizeof(*keys))) ==
		    NULL) {
			complain("out of memory");
			return STORE_ERROR;
		}
		c->keys = keys;
		c->cap = cap;
	}
	ck = &c->keys[c->n++];
	memset(ck, 0, sizeof(*ck));
	ck->id = r.id;
	ck->prepaid = r.prepaid;
	snprintf(ck->name, sizeof(ck->name), "%.*s", FIX(r.name));
	return 0;
}

/* First pass: the balance compared; second pass: has it moved since? */
static int
chk_balance_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct balance_rec	 b;
	uint64_t		 id = key_id_of(k, klen);

	if (c->again) {
		if (vlen != sizeof(b) || (ck = chk_find(c, id)) == NULL)
			return 0;
		memcpy(&b, v, sizeof(b));
		if (!ck->busy && (!ck->has_balance ||
		    b.credited != ck->bal.credited ||
		    b.debited != ck->bal.debited ||
		    b.balance != ck->bal.balance)) {
			ck->busy = 1;
			c->busy++;
		}
		return 0;
	}
	if (chk_value(c, "balance", id, v, vlen, sizeof(b)) != 0)
		return 0;
	if ((ck = chk_find(c, id)) == NULL) {
		if (chk_unknown(c, id))
			problem(c, "a balance of key %" PRIu64 ", which does "
			    "not exist", id);
		return 0;
	}
	memcpy(&ck->bal, v, sizeof(ck->bal));
	ck->has_balance = 1;
	return 0;
}

static int
chk_usage_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct usage_row	 u;
	char			 b1[32], b2[32];

	c->usage_rows++;
	if (usage_rec(v, vlen, &u) == -1) {
		problem(c, "usage row of %zu bytes, version %d (expected "
		    "%zu, version %d, or %d bytes, version 1)", vlen,
		    vlen > 0 ? ((const uint8_t *)v)[0] : -1, sizeof(u),
		    USAGE_VERSION, USAGE_V1_SIZE);
		return 0;
	}
	if (u.time_us < c->oldest_us)
		c->oldest_us = u.time_us;
	if ((u.flags & USAGE_OVER_RESERVATION) &&
	    c->over_reservation++ < CHK_WARN_MAX)
		warning(c, "usage row %.*s (key %.*s, model %.*s) cost %s, more "
		    "than the %s reserved: the upstream went past the limit it "
		    "was sent", FIX(u.request_id), FIX(u.key_name),
		    FIX(u.served), fmt_usd(u.cost, b1, sizeof(b1)),
		    fmt_usd(u.reserved, b2, sizeof(b2)));
	if (u.key_id == 0)
		return 0;
	if ((ck = chk_find(c, u.key_id)) == NULL) {
		if (chk_unknown(c, u.key_id))
			problem(c, "usage row %.*s of key %" PRIu64 ", which "
			    "does not exist", FIX(u.request_id), u.key_id);
		return 0;
	}
	ck->usage_cost += u.cost;
	c->usage_cost += u.cost;
	return 0;
}

static int
chk_ledger_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct ledger_rec	 l;

	c->ledger_entries++;
	if (chk_value(c, "ledger entry", key_id_of(k, klen), v, vlen,
	    sizeof(l)) != 0)
		return 0;
	memcpy(&l, v, sizeof(l));
	if (klen < 8 || l.key_id != store_get_be64(k))
		problem(c, "ledger entry %" PRIu64 " of key %" PRIu64 " is "
		    "stored under another key", l.id, l.key_id);
	if ((ck = chk_find(c, l.key_id)) == NULL) {
		if (chk_unknown(c, l.key_id))
			problem(c, "ledger entry %" PRIu64 " of key %" PRIu64
			    ", which does not exist", l.id, l.key_id);
		return 0;
	}
	ck->ledger_sum += l.amount;
	if (l.kind != LEDGER_DEBIT)
		return 0;
	/* Purge deleted the oldest usage rows, never their debits. */
	if (l.usage_time_us < c->oldest_us) {
		c->purged_debits -= l.amount;
		return 0;
	}
	ck->ledger_debits -= l.amount;
	c->ledger_debits -= l.amount;
	return 0;
}

/* Keys and balances, usage, ledger, then balances again. */
static int
chk_read(struct chk *c)
{
	struct batch	 b;
	int		 rc;

	memset(&b, 0, sizeof(b));
	if ((b.recs = calloc(CHK_BATCH, sizeof(*b.recs))) == NULL) {
		complain("out of memory");
		return STORE_ERROR;
	}
	c->oldest_us = INT64_MAX;
	if ((rc = chk_walk(c, &b, SDB_KEYS, chk_key_cb)) != STORE_OK)
		goto done;
	if (c->n > 1)
		qsort(c->keys, c->n, sizeof(*c->keys), chk_cmp);
	if ((rc = chk_walk(c, &b, SDB_BALANCE, chk_balance_cb)) != STORE_OK)
		goto done;
	/* Usage first: debits older than its oldest row were purged. */
	if ((rc = chk_walk(c, &b, SDB_USAGE, chk_usage_cb)) != STORE_OK ||
	    (rc = chk_walk(c, &b, SDB_LEDGER, chk_ledger_cb)) != STORE_OK)
		goto done;
	c->again = 1;
	rc = chk_walk(c, &b, SDB_BALANCE, chk_balance_cb);
 done:
	free(b.recs);
	return rc;
}

/* Compare each quiet key's balance, ledger and usage (purged rows aside). */
static void
chk_books(struct chk *c)
{
	struct chk_key	*k;
	char		 b1[32], b2[32], b3[32];
	size_t		 i;

	for (i = 0; i < c->n; i++) {
		k = &c->keys[i];
		if (k->busy)
			continue;
		if (k->has_balance &&
		    k->bal.balance != k->bal.credited - k->bal.debited)
			problem(c, "key %" PRIu64 " (%s): balance %s != "
			    "credited %s - debited %s", k->id, k->name,
			    fmt_usd(k->bal.balance, b1, sizeof(b1)),
			    fmt_usd(k->bal.credited, b2, sizeof(b2)),
			    fmt_usd(k->bal.debited, b3, sizeof(b3)));
		if (k->bal.balance != k->ledger_sum)
			problem(c, "key %" PRIu64 " (%s): balance %s != sum "
			    "of its ledger %s", k->id, k->name,
			    fmt_usd(k->bal.balance, b1, sizeof(b1)),
			    fmt_usd(k->ledger_sum, b2, sizeof(b2)));
		if (k->ledger_debits != k->usage_cost)
			problem(c, "key %" PRIu64 " (%s): ledger debits %s != "
			    "usage cost %s", k->id, k->name,
			    fmt_usd(k->ledger_debits, b1, sizeof(b1)),
			    fmt_usd(k->usage_cost, b2, sizeof(b2)));
		if (k->prepaid && k->has_balance && k->bal.balance < 0)
			warning(c, "prepaid key %" PRIu64 " (%s) is overdrawn: "
			    "balance %s", k->id, k->name,
			    fmt_usd(k->bal.balance, b1, sizeof(b1)));
	}
	if (c->over_reservation > CHK_WARN_MAX)
		warning(c, "%ld more usage rows cost more than was reserved",
		    c->over_reservation - CHK_WARN_MAX);
}

static int
cmd_check(struct admin *a, int argc, char **argv)
{
	struct chk		 c;
	struct json_object	*o = NULL;
	size_t			 i, np;
	char			 buf[32];
	int			 rc, ret = ADM_FAIL, json = 0;

	if ((rc = plain_opts(a, argc, argv, &json, 0, 0)) >= 0)
		return rc;
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	memset(&c, 0, sizeof(c));
	c.st = a->st;
	if ((c.problems = json_object_new_array()) == NULL ||
	    (c.warnings = json_object_new_array()) == NULL) {
		complain("out of memory");
		goto fail;
	}
	if ((rc = store_failchk(a->st)) != STORE_OK) {
		store_failed("failchk", rc);
		goto fail;
	}
	/* Dead processes' reservations are billed first: no row is missing. */
	if ((rc = billing_reclaim(a->st, time(NULL), &c.reclaim, NULL,
	    NULL)) != STORE_OK) {
		store_failed("reclaim", rc);
		goto fail;
	}
	if ((rc = chk_read(&c)) != STORE_OK) {
		store_failed("cannot read the store", rc);
		goto fail;
	}
	chk_books(&c);
	np = json_object_array_length(c.problems);
	if (json) {
		if ((o = json_object_new_object()) == NULL) {
			complain("out of memory");
			goto fail;
		}
		jint(o, "keys", (int64_t)c.n);
		jint(o, "usage_rows", c.usage_rows);
		jint(o, "ledger_entries", c.ledger_entries);
		json_object_object_add(o, "problems",
		    json_object_get(c.problems));
		json_object_object_add(o, "warnings",
		    json_object_get(c.warnings));
		jint(o, "over_reservation_rows", c.over_reservation);
		jint(o, "usage_cost_micro_usd", c.usage_cost);
		jint(o, "ledger_debits_micro_usd", c.ledger_debits);
		jint(o, "purged_debits_micro_usd", c.purged_debits);
		jint(o, "busy_keys", c.busy);
		jint(o, "reclaimed", c.reclaim.reclaimed);
		if (print_json(o) != ADM_OK)
			goto fail;
	} else {
		for (i = 0; i < np; i++)
			printf("check: %s\n", json_object_get_string(
			    json_object_array_get_idx(c.problems, i)));
		for (i = 0; i < json_object_array_length(c.warnings); i++)
			printf("check: warning: %s\n", json_object_get_string(
			    json_object_array_get_idx(c.warnings, i)));
		if (c.purged_debits != 0)
			printf("check: %s of debits for purged usage rows not "
			    "compared\n", fmt_usd(c.purged_debits, buf,
			    sizeof(buf)));
		if (c.busy > 0)
			printf("check: %ld keys written during the check, not "
			    "compared\n", c.busy);
		if (c.reclaim.reclaimed + c.reclaim.dropped > 0)
			printf("check: reclaimed %ld reservations of dead "
			    "processes (billed %s)\n", c.reclaim.reclaimed,
			    fmt_usd(c.reclaim.billed, buf, sizeof(buf)));
		printf("check: %zu keys, %ld usage rows, %ld ledger entries, "
		    "%zu problems\n", c.n, c.usage_rows, c.ledger_entries, np);
	}
	ret = np == 0 ? ADM_OK : ADM_FAIL;
 fail:
	json_object_put(c.problems);
	json_object_put(c.warnings);
	free(c.keys);
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

static int
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

static int
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

#define KEY_REF	"KEY is a key id, its name or its listed prefix (sk-XXXXXXX).\n"

static const struct cmd_entry commands[] = {
	{ "key create", "--name NAME [options]",
	  "Create a client key; prints its secret, shown only this once.",
	  "  --name NAME             who the key is for (required, unique)\n"
	  "  --agent A               agent it bills to (default: the name)\n"
	  "  --tier T                [tier T] of the config (default: the "
	  "agent's)\n"
	  "  --models \"GLOB ...\"     models it may use (default: all)\n"
	  "  --rpm N, --tpm N        requests/tokens per minute (default: the "
	  "tier's)\n"
	  "  --daily-budget USD      spend per UTC day (default: none)\n"
	  "  --monthly-budget USD    spend per UTC month (default: none)\n"
	  "  --max-concurrent N      requests in flight at once (default: 0, "
	  "no limit)\n"
	  "  --expires DATE|Nd       YYYY-MM-DD (UTC) or days from now\n"
	  "  --prepaid               refuse requests the balance cannot pay\n"
	  "  --allow-agent-header    the client may name its agent (X-Agent)\n"
	  "  --json                  print JSON\n",
	  cmd_key_create },
	{ "key list", "[--json]",
	  "List keys: id, prefix, name, agent, tier, state, limits.",
	  NULL, cmd_key_list },
	{ "key show", "KEY [--json]",
	  "Show one key.", KEY_REF, cmd_key_show },
	{ "key update", "KEY [--rpm N] [--tpm N] [--daily-budget USD]\n"
	  "    [--monthly-budget USD] [--max-concurrent N] [--json]",
	  "Change a key's limits (0 clears one: the tier's, or none).",
	  KEY_REF, cmd_key_update },
	{ "key disable", "KEY",
	  "Disable a key: its requests get 401 at once.", KEY_REF,
	  cmd_key_state },
	{ "key enable", "KEY",
	  "Enable a disabled key again.", KEY_REF, cmd_key_state },
	{ "topup", "KEY USD [--reason TEXT] [--json]",
	  "Add money paid in to a key's balance.", KEY_REF, cmd_credit },
	{ "adjust", "KEY [-]USD --reason TEXT [--json]",
	  "Correct a key's balance up or down, with a reason.", KEY_REF,
	  cmd_credit },
	{ "balance", "KEY [--json]",
	  "A key's balance, what requests in flight hold, its totals.",
	  KEY_REF, cmd_balance },
	{ "usage", "[--from DATE] [--to DATE] [--group-by G] [--key KEY]\n"
	  "    [--json|--csv|--rows]",
	  "Usage totals over a time range, grouped.",
	  "  --from DATE         YYYY-MM-DD (UTC) or unix seconds "
	  "(default: 30 days ago)\n"
	  "  --to DATE           exclusive end (default: now)\n"
	  "  --group-by G        day, model, key or agent (default: one "
	  "total)\n"
	  "  --key KEY           only this key's requests (0: the master "
	  "key's)\n"
	  "  --json, --csv       print JSON or CSV\n"
	  "  --rows              every request's row, one JSON object a line\n",
	  cmd_usage_report },
	{ "ledger", "KEY [--limit N] [--offset N] [--json]",
	  "A key's debits, topups and adjustments, newest first.",
	  "  --limit N     entries to print (default 20)\n"
	  "  --offset N    newest entries to skip\n" KEY_REF, cmd_ledger },
	{ "purge", "[--days N]",
	  "Delete usage rows older than N days.",
	  "  --days N      1..36500 (default: gateway.usage_retention_days)\n",
	  cmd_purge },
	{ "replay", "[FILE]",
	  "Import the usage fallback file exactly once.",
	  "FILE defaults to gateway.fallback_file. Each row is settled once\n"
	  "(usage row, ledger debit, spend); a row already there counts as a\n"
	  "duplicate. The file is renamed FILE.replayed-TIME afterwards.\n",
	  cmd_replay },
	{ "recover", "",
	  "Run Berkeley DB recovery; creates the store when missing.",
	  "Stop every gateway process first (web server, spawn-fcgi) and run\n"
	  "it as the web server user, before the gateway starts again.\n",
	  cmd_recover },
	{ "reclaim", "[--json]",
	  "Bill and release the reservations of processes that died.",
	  "A gateway process killed in the middle of a request (SIGKILL) leaves\n"
	  "its reservation behind. Each live gateway process reclaims such\n"
	  "reservations every 2 s, and so does check; this does it now. Each\n"
	  "is billed once, for its prompt estimate and the completion its\n"
	  "stream had recorded, never above the reservation, with a usage row\n"
	  "flagged worker_died, and released.\n",
	  cmd_reclaim },
	{ "check", "[--json]",
	  "Verify balances against ledger and usage; exit 1 on problems.",
	  "For every key: balance == credited - debited == the sum of its\n"
	  "ledger, and its ledger debits == the cost of its usage rows (debits\n"
	  "of rows older than the oldest usage row, i.e. purged, are not\n"
	  "compared). It may run beside the gateway: a key written during\n"
	  "the check is left out and counted. Reservations of processes that\n"
	  "died are reclaimed first (see reclaim). Warnings (exit 0): prepaid\n"
	  "keys below zero, and usage rows that cost more than was reserved\n"
	  "(over_reservation: an upstream went past the limit it was sent).\n",
	  cmd_check },
	{ "breaker list", "[--json]",
	  "The circuit breakers the gateway tracks: state, failures, errors.",
	  "Every deployment (PROVIDER/MODEL) that had a counted attempt, as\n"
	  "all gateway processes share it (DATA_DIR/breakers).\n",
	  cmd_breaker_list },
	{ "breaker reset", "[PROVIDER[/MODEL]]",
	  "Close breakers now: one deployment, a provider's, or all.",
	  "An open breaker normally closes by itself: after breaker_open_s\n"
	  "probe requests go through, and breaker_successes of them close it.\n",
	  cmd_breaker_reset },
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void
usage(FILE *fp)
{
	size_t	 i;

	fprintf(fp,
	    "usage: llmgate-admin [--config FILE] COMMAND [ARGS]\n"
	    "\n"
	    "Keys, balances, usage reports and upkeep of the llmgate store.\n"
	    "Run it as the web server user: sudo -u www-data llmgate-admin ...\n"
	    "\n"
	    "  -c, --config FILE   configuration (default: $LLMGATE_CONFIG,\n"
	    "                      then %s/llmgate.ini)\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          this text\n"
	    "\n"
	    "Commands (llmgate-admin COMMAND --help for each):\n",
	    SYSCONFDIR);
	for (i = 0; i < NCOMMANDS; i++)
		fprintf(fp, "  %-12s %s\n", commands[i].name,
		    commands[i].help);
	fprintf(fp, "\n" KEY_REF);
}

/* The command argv names, and how many words its name takes. */
static const struct cmd_entry *
cmd_find(int argc, char **argv, int *words)
{
	const char	*sp;
	size_t		 i, n;

	for (i = 0; i < NCOMMANDS; i++) {
		if ((sp = strchr(commands[i].name, ' ')) == NULL) {
			if (strcmp(argv[0], commands[i].name) == 0) {
				*words = 1;
				return &commands[i];
			}
			continue;
		}
		n = (size_t)(sp - commands[i].name);
		if (argc > 1 && strlen(argv[0]) == n &&
		    strncmp(argv[0], commands[i].name, n) == 0 &&
		    strcmp(argv[1], sp + 1) == 0) {
			*words = 2;
			return &commands[i];
		}
	}
	return NULL;
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct admin	 a;
	char		 prog[64];
	int		 ch, rc, words = 0;

	memset(&a, 0, sizeof(a));
	while ((ch = getopt_long(argc, argv, "+c:Vh", longopts, NULL)) != -1)
		switch (ch) {
		case 'c':
			a.path = optarg;
			break;
		case 'V':
			printf("llmgate-admin %s\n", PACKAGE_VERSION);
			return ADM_OK;
		case 'h':
			usage(stdout);
			return ADM_OK;
		default:
			usage(stderr);
			return ADM_USAGE;
		}
	argc -= optind;
	argv += optind;
	if (argc == 0) {
		usage(stderr);
		return ADM_USAGE;
	}
	if (strcmp(argv[0], "help") == 0) {
		usage(stdout);
		return ADM_OK;
	}
	if ((a.cmd = cmd_find(argc, argv, &words)) == NULL) {
		if (strcmp(argv[0], "key") == 0)
			complain("key: expected create, list, show, disable "
			    "or enable");
		else
			complain("unknown command: %s", argv[0]);
		fprintf(stderr, "see llmgate-admin --help\n");
		return ADM_USAGE;
	}
	if (a.path == NULL && (a.path = getenv("LLMGATE_CONFIG")) == NULL)
		a.path = SYSCONFDIR "/llmgate.ini";

	/* The command sees its own argv; getopt names it in messages. */
	argc -= words - 1;
	argv += words - 1;
	snprintf(prog, sizeof(prog), "llmgate-admin %s", a.cmd->name);
	argv[0] = prog;
	store_set_hang_handler(on_hang);
	rc = a.cmd->exec(&a, argc, argv);

	if (a.st != NULL)
		store_close(a.st);
	/* An open given up on must not be cut by the exit (store.c). */
	fflush(stdout);
	if (store_wait_openers(STORE_LATE_OPEN_MS) == -1 && rc == ADM_OK)
		rc = ADM_FAIL;
	config_free(a.cfg);
	return rc;
}
