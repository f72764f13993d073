/* admin.h: what the files of llmgate-admin share: the command table's entry, the open config and store, output helpers, and each command family's handlers. */
#ifndef LLMGATE_ADMIN_H
#define LLMGATE_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "money.h"
#include "store.h"

struct config;
struct json_object;
struct key_rec;
struct option;

#define DAY_S		86400

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

#define KEY_REF	"KEY is a key id, its name or its listed prefix (sk-XXXXXXX).\n"

/* admin.c: shared helpers. */
void	complain(const char *, ...) __attribute__((format(printf, 1, 2)));
int	store_failed(const char *, int);
int	cmd_usage(const struct admin *, FILE *);
void	opt_reset(void);
int	plain_opts(struct admin *, int, char **, int *, int, int);
int	admin_config(struct admin *);
int	admin_open(struct admin *, enum store_mode);
int	find_key(struct admin *, const char *, struct key_rec *);
int	open_key(struct admin *, const char *, struct key_rec *);
const char *fmt_usd(money_t, char *, size_t);
const char *fmt_time(int64_t, char *, size_t);
int	print_json(struct json_object *);
void	jint(struct json_object *, const char *, int64_t);
void	juint(struct json_object *, const char *, uint64_t);
void	jstr(struct json_object *, const char *, const char *, size_t);
void	jusd(struct json_object *, const char *, money_t);
int	parse_count(const char *, const char *, int64_t, int64_t *);
int	parse_usd(const char *, const char *, int, money_t *);
int	set_field(char *, size_t, const char *, const char *);
int	set_models(char *, size_t, const char *);
int	is_negative(const char *);
int	takes_arg(const char *, const struct option *);

/*
 * Records handed over by a scan callback, kept until the scan is done:
 * a deadlock retry scans again from the start, which restarts the list.
 */
struct recs {
	void	*v;
	size_t	 n, cap, size;
	int	 failed;	/* out of memory */
};
int	recs_push(struct recs *, const void *);
int	recs_check(const struct recs *, int, const char *);
int	recs_print_json(const struct recs *,
	    struct json_object *(*)(const void *, time_t), time_t);

/* admin-keys.c: key create, list, show, set (update), rotate, delete, disable, enable. */
int	cmd_key_create(struct admin *, int, char **);
int	cmd_key_list(struct admin *, int, char **);
int	cmd_key_show(struct admin *, int, char **);
int	cmd_key_set(struct admin *, int, char **);
int	cmd_key_rotate(struct admin *, int, char **);
int	cmd_key_delete(struct admin *, int, char **);
int	cmd_key_state(struct admin *, int, char **);

/* admin-money.c: topup, adjust, balance, ledger. */
int	cmd_credit(struct admin *, int, char **);
int	cmd_balance(struct admin *, int, char **);
int	cmd_ledger(struct admin *, int, char **);

/* admin-report.c: usage. */
int	cmd_usage_report(struct admin *, int, char **);

/* admin-store.c: purge, replay, recover, reclaim, check, breaker list and reset. */
int	cmd_purge(struct admin *, int, char **);
int	cmd_replay(struct admin *, int, char **);
int	cmd_recover(struct admin *, int, char **);
int	cmd_reclaim(struct admin *, int, char **);
int	cmd_check(struct admin *, int, char **);
int	cmd_breaker_list(struct admin *, int, char **);
int	cmd_breaker_reset(struct admin *, int, char **);

#endif
