/* store.h: the Berkeley DB environment: databases, short transactions with deadlock retry, failchk watchdog. */
#ifndef LLMGATE_STORE_H
#define LLMGATE_STORE_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The databases of one environment; names in store.c. */
enum store_db {
	SDB_KEYS,	/* key id (BE64) -> struct key_rec */
	SDB_KEYHASH,	/* sha256(secret) -> key id (BE64) */
	SDB_BALANCE,	/* key id (BE64) -> struct balance_rec */
	SDB_SPEND,	/* scope "k:ID"/"a:AGENT", 0, UTC day (BE32) -> struct spend_rec */
	SDB_RESERVE,	/* scope "k:ID"/"a:AGENT"/"t:TIER", 0, reservation id (BE64)
			   -> struct reserve_rec */
	SDB_RATE,	/* scope "k:ID"/"m:MODEL"/"t:TIER" -> struct rate_rec
			   (current minute) */
	SDB_USAGE,	/* time us (BE64) + id (BE64) -> struct usage_row */
	SDB_LEDGER,	/* key id (BE64) + time us (BE64) + id (BE64) -> struct ledger_rec */
	SDB_META,	/* name -> value (schema version, replayed fallback lines) */
	SDB_RCACHE,	/* sha256 of the canonical request -> struct rcache_head */
	SDB_RCACHE_BODY,	/* the same sha256 -> the answer's JSON text */
	SDB_RCACHE_AGE,	/* stored us (BE64) + sha256 -> struct rcache_age;
			   8 zero bytes -> struct rcache_total (rcache.c) */
	SDB_SEMANTIC,	/* bucket sha256 + stored us (BE64) + sha256 of the
			   answer's key -> struct sem_rec (semantic.c) */
	SDB__MAX
};

enum store_mode {
	STORE_WORKER,	/* a gateway process: no recovery, watchdog thread */
	STORE_ADMIN,	/* llmgate-admin: no recovery, failchk once at open */
	STORE_RECOVER,	/* llmgate-admin recover: create and run recovery */
};

/* Results; every store_* function returns one of these. */
enum store_rc {
	STORE_OK = 0,
	STORE_NOTFOUND = 1,	/* no such record */
	STORE_STOP = 2,		/* a scan callback asked to stop */
	STORE_EXISTS = 4,	/* store_put_new: the key is taken */
	STORE_ERROR = -1,	/* the operation failed; see store_error() */
	STORE_READONLY = -2,	/* the store cannot be written */
	STORE_PANIC = -3,	/* the environment needs recovery */
	STORE_DEADLOCK = -4,	/* internal: store_txn retries it */
};

/* Every value starts with this byte; a record of another version is refused. */
#define STORE_VERSION	1
#define STORE_VALUE_MAX	4096

struct store;
struct store_txn;

/* Open the environment in dir; NULL with err filled (never a secret). */
struct store	*store_open(const char *dir, enum store_mode, int nosync,
		    long checkpoint_s, char *err, size_t errlen);
void		 store_close(struct store *);
/* The last error text of this thread's operations on the store. */
const char	*store_error(void);
/* Nonzero once the environment panicked: no call goes into it again. */
int		 store_panicked(const struct store *);
/* Nonzero once this process has left a panicked environment (reopen then). */
int		 store_left(const struct store *);
/* "ok", "read_only", "needs_recovery" or "unavailable" (s may be NULL). */
const char	*store_health(const struct store *);
/*
 * The wall clock accounting reads (rate windows, budgets' days and months,
 * usage and ledger times): CLOCK_REALTIME, shifted in the fault-injection
 * build only (store.c).
 */
void		 store_wall(struct timespec *);
/*
 * Called (from a store thread) when a store call stays blocked in a
 * panicked environment: the process cannot leave it and should exit.
 */
void		 store_set_hang_handler(void (*)(const char *));
/* Nonzero when some database was opened read-only (writes will fail). */
int		 store_readonly(const struct store *);
/* Run failchk now (llmgate-admin check); returns a store_rc. */
int		 store_failchk(struct store *);
/* Force a checkpoint and remove logs no longer needed. */
int		 store_checkpoint(struct store *);
/*
 * Run fn every period_s seconds (first after one second) in a thread of
 * its own until store_close: work that may wait on a lock a killed
 * process held, which the watchdog's failchk then frees. At most one
 * per store; not after a panic. Returns 0, or -1.
 */
typedef void	(*store_chore_fn)(struct store *, void *);
int		 store_every(struct store *, long, store_chore_fn, void *);

/*
 * Run fn in one transaction: commit when it returns >= 0, abort when it
 * returns < 0. A deadlock aborts and runs fn again (up to a bound), so fn
 * must set its outputs from scratch each time and act on what it read
 * only after the commit (keys_list, billing_ledger and usage_scan collect
 * first, then call back). Returns fn's result or a store_rc.
 */
typedef int	(*store_txn_fn)(struct store_txn *, void *);
int		 store_txn(struct store *, store_txn_fn, void *);
/* Same, read-only intent: committed the same way, no write expected. */
int		 store_read(struct store *, store_txn_fn, void *);

/*
 * A record the transaction writes, and what to do with it if the process
 * must exit while the transaction is stuck (store_rescue): rec must live
 * until the store_txn call returns.
 */
typedef void	(*store_rescue_fn)(const void *);
void		 store_txn_rescue(struct store_txn *, store_rescue_fn,
		    const void *);
/* Run the rescue functions of the calls still in the store (exit path). */
void		 store_rescue(struct store *);
/*
 * What the calling thread serves (a request), or NULL: the store notes it
 * with each call, and store_stuck_owners() hands the owners of the calls
 * still in the store to fn on the exit path (their clients are answered).
 */
/*
 * Before exit: wait up to ms for opens given up on (they run on in a
 * thread) to leave Berkeley DB; -1 if one is still inside.
 */
int		 store_wait_openers(long);
#define STORE_LATE_OPEN_MS	30000	/* what an exit waits for them */
void		 store_owner(void *);
void		 store_stuck_owners(struct store *, void (*)(void *));

#define STORE_RMW	0x01	/* lock the record for a later write */

/* Copy the value into val (at most *vlen bytes); *vlen becomes its size. */
int		 store_get(struct store_txn *, enum store_db, const void *,
		    size_t, void *, size_t *, int);
/* store_get of a fixed record, version byte first: another size or version fails. */
int		 store_get_rec(struct store_txn *, enum store_db, const void *,
		    size_t, void *, size_t, int);
/* Copy a scanned value into a fixed record: 0, or -1 on size or version. */
int		 store_rec(const void *, size_t, void *, size_t);
int		 store_put(struct store_txn *, enum store_db, const void *,
		    size_t, const void *, size_t);
/* Put only if absent: STORE_OK, or STORE_EXISTS leaving the record alone. */
int		 store_put_new(struct store_txn *, enum store_db, const void *,
		    size_t, const void *, size_t);
int		 store_del(struct store_txn *, enum store_db, const void *,
		    size_t);

/*
 * Walk the records whose key starts with prefix (plen may be 0), from the
 * first key >= from (or <= from when STORE_REVERSE; from may be NULL).
 * The callback returns 0 to go on, STORE_SCAN_DELETE to delete the
 * current record and go on, STORE_STOP to stop, or < 0 to fail.
 */
#define STORE_REVERSE	0x01
#define STORE_SCAN_DELETE 3
typedef int	(*store_scan_fn)(void *, const void *, size_t, const void *,
		    size_t);
int		 store_scan(struct store_txn *, enum store_db, const void *,
		    size_t, const void *, size_t, int, store_scan_fn, void *);

/* A unique 64-bit id (not monotonic across processes); 0 on failure. */
uint64_t	 store_next_id(struct store *);

/* Big-endian keys sort in numeric order. */
void		 store_be64(unsigned char *, uint64_t);
uint64_t	 store_get_be64(const unsigned char *);
void		 store_be32(unsigned char *, uint32_t);
uint32_t	 store_get_be32(const unsigned char *);

#endif
