/* admin.c: llmgate-admin, the operator's tool: the command table, main, and the helpers its command families (admin-*.c) share. */
#include <sys/stat.h>
#include <sys/types.h>

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "admin.h"
#include "config.h"
#include "keys.h"
#include "metrics.h"
#include "money.h"
#include "report.h"
#include "store.h"


void
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
int
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

int
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
void
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
int
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
int
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
int
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
int
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
int
open_key(struct admin *a, const char *ref, struct key_rec *k)
{
	if (admin_open(a, STORE_ADMIN) != ADM_OK)
		return ADM_FAIL;
	return find_key(a, ref, k);
}

/* Dollars with two decimals at least ("2.50", "0.000123"), into buf. */
const char *
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
const char *
fmt_time(int64_t t, char *buf, size_t len)
{
	time_t		 tt = (time_t)t;
	struct tm	 tm;

	if (gmtime_r(&tt, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%d %H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

int
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

void
jint(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

void
juint(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

void
jstr(struct json_object *o, const char *k, const char *s, size_t size)
{
	json_object_object_add(o, k,
	    json_object_new_string_len(s, (int)strnlen(s, size)));
}

void
jusd(struct json_object *o, const char *k, money_t m)
{
	char	 buf[32];

	money_format_usd(m, buf, sizeof(buf));
	json_object_object_add(o, k, json_object_new_string(buf));
}

/* A whole number 0..max; -1 (reported) when it is not one. */
int
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
int
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
int
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
int
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
int
is_negative(const char *s)
{
	return s[0] == '-' && (isdigit((unsigned char)s[1]) ||
	    (s[1] == '.' && isdigit((unsigned char)s[2])));
}

/* Nonzero when arg is a long option that takes the next word. */
int
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


/* Append a copy of rec; -1 (and failed set) when out of memory. */
int
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
int
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
int
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
	  "  --policy NAME           [policy NAME] of the config (default: "
	  "the agent's, the tier's, default_policy)\n"
	  "  --json                  print JSON\n",
	  cmd_key_create },
	{ "key list", "[--json]",
	  "List keys: id, prefix, name, agent, tier, state, limits.",
	  NULL, cmd_key_list },
	{ "key show", "KEY [--json]",
	  "Show one key.", KEY_REF, cmd_key_show },
	{ "key set", "KEY [options] [--json]",
	  "Change any of a key's fields and limits.",
	  "  --name NAME, --agent A, --tier T, --models \"GLOB ...\"\n"
	  "                          as for key create; \"\" clears agent, tier "
	  "and models\n"
	  "  --rpm N, --tpm N, --max-concurrent N\n"
	  "  --daily-budget USD, --monthly-budget USD\n"
	  "                          0 clears a limit (the tier's, or none)\n"
	  "  --expires DATE|Nd|never YYYY-MM-DD (UTC), days from now, or no "
	  "expiry\n"
	  "  --prepaid, --no-prepaid\n"
	  "  --allow-agent-header, --no-agent-header\n"
	  "  --policy NAME|none      the key's own [policy], or none\n"
	  "  --json                  print JSON\n" KEY_REF,
	  cmd_key_set },
	{ "key update", "KEY [options] [--json]",
	  "The same as key set (its former name).", KEY_REF, cmd_key_set },
	{ "key rotate", "KEY [--grace SECONDS] [--json]",
	  "A new secret for the key, printed once; the same id and books.",
	  "  --grace SECONDS   the old secret works this much longer (default 0:\n"
	  "                    it stops at once; at most 2592000, 30 days).\n"
	  "                    Both secrets work meanwhile; a secret still in\n"
	  "                    a grace period from an earlier rotation stops now.\n"
	  KEY_REF, cmd_key_rotate },
	{ "key delete", "KEY [--json]",
	  "Delete a key: its secret stops at once, its books stay.",
	  "Refused while money is held: requests in flight (disable the key,\n"
	  "wait for them), a balance paid in (refund it with adjust), or a\n"
	  "prepaid key overdrawn. Usage rows, ledger and balance stay under\n"
	  "its id (usage --key ID, ledger ID); the name may be used again.\n"
	  KEY_REF, cmd_key_delete },
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
	  "  --group-by G[,G...] up to 3 of day, month, model, key, agent,\n"
	  "                      provider, tier (default: one total)\n"
	  "  --key KEY           only this key's requests (0: the master "
	  "key's)\n"
	  "  --json, --csv       print JSON or CSV (latency p50/p95 in ms are\n"
	  "                      approximate: within 10%)\n"
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
			complain("key: expected create, list, show, set, "
			    "rotate, delete, disable or enable");
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
