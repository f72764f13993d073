/*
 * store.c: the Berkeley DB environment in data_dir, opened by every
 * gateway process and by llmgate-admin at once (PLATFORM.md section 4):
 * locking, logging and transactions; no DB_REGISTER in workers, a
 * watchdog thread that runs failchk every second so that a process
 * killed with SIGKILL leaves no lock behind, and checkpoints; and a
 * thread for periodic chores (reclaiming a dead process's reservations)
 * that may wait on such a lock until failchk frees it.
 *
 * Faults are survived without an operator:
 * - Every wait is bounded: lock and transaction timeouts (the watchdog
 *   runs the detector for them), a time budget for deadlock retries, a
 *   bounded open, and a guard thread that notices a store call stuck
 *   past HANG_MS (a mutex of a process that died inside the library).
 * - A panicked environment is left: no call goes into it again, and the
 *   process drops its read lock on attach.lock (the registry of attached
 *   processes) once its calls are out; a call that never comes out
 *   makes the process exit (store_set_hang_handler).
 * - The next opener that finds attach.lock free (F_WRLCK granted: no one
 *   attached) runs recovery itself when the needs-recovery marker says
 *   so (or the plain open fails or hangs), then serves.
 * - The region files are allocated in full (fallocate to the size they
 *   are mapped at) when attached, so a full disk cannot SIGBUS a process
 *   when a region grows.
 */
#define _GNU_SOURCE	/* F_OFD_SETLK, fallocate */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <limits.h>
#include <stdatomic.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "store.h"

#define TXN_TRIES	200	/* deadlock retries before giving up */
#define TXN_BUDGET_MS	15000	/* nor retry past this */
/*
 * Transactions of one process in the library at once. Hundreds of
 * threads queueing inside Berkeley DB on the same pages (one key's
 * balance, the reservation table's last page) run its deadlock detector
 * on every conflict and preempt lock holders: of 1000 concurrent
 * client-key streams in one process, 800 failed on lock timeouts. Waiting
 * here instead keeps them fast and in order (all 1000 pass), and bounds
 * the locks a process holds. 1000 streams opened over 1 s on 2 cores, p99
 * added to the first byte: 276 ms with 1, 242 with 2, 542 with 4, 1062
 * with 8.
 */
#define TXN_GATE	2
#define LOCK_TIMEOUT_US	5000000	/* a lock request waits at most this */
#define TXN_TIMEOUT_US	10000000	/* a transaction lives at most this */
#define HANG_MS		25000	/* a store call this old is stuck */
#define DRAIN_MS	2000	/* calls still in 2 s after a panic are stuck */
#define OPEN_WAIT_MS	3000	/* for open.lock, then for the open */
#define WATCH_MS	950	/* lock_detect and failchk: one process this often */
#define RECOVER_WAIT_MS	120000	/* for an open that runs recovery */
#define CALL_SLOTS	256	/* store calls tracked at once */
#define MARKER		"needs-recovery"
#define KEY_MAX		512
#define SCHEMA		"1"

static const char *const db_files[SDB__MAX] = {
	"keys.db", "keyhash.db", "balance.db", "spend.db", "reserve.db",
	"rate.db", "usage.db", "ledger.db", "meta.db",
	"rcache.db", "rcache-body.db", "rcache-age.db", "semantic.db",
};

struct store {
	DB_ENV		*env;
	DB		*db[SDB__MAX];
	DB		*seqdb;
	DB_SEQUENCE	*seq;
	enum store_mode	 mode;
	int		 readonly;	/* some database is read-only */
	volatile int	 panicked;
	long		 checkpoint_s;
	pthread_t	 watchdog, guard;
	int		 watching;
	pthread_t	 chore;		/* store_every's thread */
	int		 choring;
	store_chore_fn	 chore_fn;
	void		*chore_arg;
	long		 chore_s;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 stopping;
	char		 dir[PATH_MAX];
	int		 reg_fd;	/* read lock on attach.lock while attached */
	int		 watch_fd;	/* watch.lock: whose turn to watch */
	volatile int	 left;		/* detached after a panic */
	int		 hang_told;
	int64_t		 panic_ms;	/* when the panic was noticed */
	_Atomic int64_t	 calls[CALL_SLOTS];	/* start (ms) of calls in flight */
	sem_t		 gate;		/* TXN_GATE transactions at once */
	struct rescue {
		store_rescue_fn	 fn;
		const void	*rec;
		void		*owner;	/* the calling thread's store_owner() */
	}		 rescue[CALL_SLOTS];	/* what a stuck call would lose */
};

static __thread void	*thread_owner;	/* store_owner(): what this thread serves */

static void	(*hang_handler)(const char *);
static volatile int	 last_open;	/* enum open_state of the last failure */

enum open_state { OPEN_UNAVAILABLE, OPEN_NEEDS_RECOVERY };

struct store_txn {
	struct store	*s;
	int		 slot;		/* of the store call, or -1 */
	DB_TXN		*txn;
	int		 deadlock;	/* some operation lost a deadlock */
	int		 failed;	/* some operation failed otherwise */
};

static __thread char	 errtext[256];

static void
seterr(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void
seterr(const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(errtext, sizeof(errtext), fmt, ap);
	va_end(ap);
}

const char *
store_error(void)
{
	return errtext[0] ? errtext : "no error";
}

/* Berkeley DB's own messages: kept for store_error(), logged at debug. */
static void
on_dberr(const DB_ENV *env, const char *pfx, const char *msg)
{
	(void)env;
	(void)pfx;
	snprintf(errtext, sizeof(errtext), "%s", msg);
	log_debug("berkeley db: %s", msg);
}

/* Informational messages (failchk freeing a dead process's locks). */
static void
on_dbmsg(const DB_ENV *env, const char *msg)
{
	(void)env;
	log_info("berkeley db: %s", msg);
}

static int64_t
mono_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
store_set_hang_handler(void (*fn)(const char *))
{
	hang_handler = fn;
}

/* A store call starts: its slot, or -1 when every slot is taken. */
static int
call_begin(struct store *s)
{
	int64_t	 zero, now = mono_ms();
	int	 i;

	for (i = 0; i < CALL_SLOTS; i++) {
		zero = 0;
		if (atomic_compare_exchange_strong(&s->calls[i], &zero, now)) {
			s->rescue[i].owner = thread_owner;
			return i;
		}
	}
	return -1;
}

static void
call_end(struct store *s, int slot)
{
	if (slot < 0)
		return;
	s->rescue[slot].fn = NULL;
	s->rescue[slot].owner = NULL;
	atomic_store(&s->calls[slot], 0);
}

void
store_txn_rescue(struct store_txn *t, store_rescue_fn fn, const void *rec)
{
	if (t->slot < 0)
		return;
	t->s->rescue[t->slot].rec = rec;
	t->s->rescue[t->slot].fn = fn;
}

/*
 * The process is about to exit with calls stuck in the store: hand what
 * they carry to their rescue functions (the usage rows go to the
 * fallback file; a row that did commit is a duplicate replay skips).
 */
void
store_rescue(struct store *s)
{
	int	 i;

	if (s == NULL)
		return;
	for (i = 0; i < CALL_SLOTS; i++)
		if (atomic_load(&s->calls[i]) != 0 && s->rescue[i].fn != NULL)
			s->rescue[i].fn(s->rescue[i].rec);
}

void
store_owner(void *owner)
{
	thread_owner = owner;
}

/* Exit path: fn(owner) for each call still in the store with an owner. */
void
store_stuck_owners(struct store *s, void (*fn)(void *))
{
	void	*o;
	int	 i;

	if (s == NULL)
		return;
	for (i = 0; i < CALL_SLOTS; i++)
		if (atomic_load(&s->calls[i]) != 0 &&
		    (o = s->rescue[i].owner) != NULL)
			fn(o);
}

/* The start of the oldest call in flight, or 0 when none is. */
static int64_t
oldest_call(struct store *s)
{
	int64_t	 t, oldest = 0;
	int	 i;

	for (i = 0; i < CALL_SLOTS; i++) {
		t = atomic_load(&s->calls[i]);
		if (t != 0 && (oldest == 0 || t < oldest))
			oldest = t;
	}
	return oldest;
}

/* The marker that tells the next opener alone to run recovery. */
static void
mark_recovery(const char *dir)
{
	char	 path[PATH_MAX];
	int	 fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/" MARKER, dir) >=
	    sizeof(path))
		return;
	if ((fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0660)) != -1)
		close(fd);
}

static int
marked(const char *dir)
{
	char	 path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/" MARKER, dir);
	return access(path, F_OK) == 0;
}

/* From now on nothing goes into this environment; the guard leaves it. */
static void
set_panic(struct store *s, const char *why)
{
	if (s->panicked)
		return;
	s->panic_ms = mono_ms();
	s->panicked = 1;
	last_open = OPEN_NEEDS_RECOVERY;
	mark_recovery(s->dir);
	log_error("store: %s: the environment needs recovery; this process "
	    "leaves it, and the first process to open it alone recovers it",
	    why);
}

#ifdef LLMGATE_FAULT_INJECTION
/*
 * Fault injection (./configure --enable-fault-injection, or the
 * t/llmgate-fault copy make check builds): the process SIGKILLs itself
 * at point when $LLMGATE_FAULT_DIR/point exists, removing it (once);
 * slow-failchk instead holds a failchk (an open's) for 6 s. And the
 * accounting clock (store_wall) runs ahead by the signed seconds written
 * in $LLMGATE_FAULT_DIR/clock (behind when negative; absent, 0), read at
 * every call, so that a test moves every process across a minute, a day
 * or a month between two requests. A build without the define reads no
 * such file: nothing shifts a shipped gateway's billing time.
 */
static volatile int	 fault_in_library;

/* Whether $LLMGATE_FAULT_DIR/point exists; taken (removed) when take. */
static int
fault_set(const char *point, int take)
{
	const char	*dir = getenv("LLMGATE_FAULT_DIR");
	char		 path[PATH_MAX];

	if (dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, point);
	return take ? unlink(path) == 0 : access(path, F_OK) == 0;
}

static void
fault(const char *point)
{
	if (fault_set(point, 1)) {
		log_error("fault injection: SIGKILL at %s", point);
		raise(SIGKILL);
	}
}

/* Arm the in-library point for this transaction when its file exists. */
static void
fault_arm(void)
{
	fault_in_library = fault_set("in-library", 0);
}

/* The default btree order, with a point inside Berkeley DB's own code. */
static int
fault_compare(DB *db, const DBT *a, const DBT *b)
{
	size_t	 n = a->size < b->size ? a->size : b->size;
	int	 c;

	(void)db;
	if (fault_in_library)
		fault("in-library");
	if ((c = n > 0 ? memcmp(a->data, b->data, n) : 0) != 0)
		return c;
	return a->size < b->size ? -1 : a->size > b->size;
}

/* Inside failchk (it asks is_alive): a slow open, once per file. */
static void
fault_slow(void)
{
	if (fault_set("slow-failchk", 1)) {
		log_error("fault injection: 6 s inside failchk");
		sleep(6);
	}
}

/* The seconds in $LLMGATE_FAULT_DIR/clock: 0 when absent or unreadable. */
static long long
fault_clock(void)
{
	const char	*dir = getenv("LLMGATE_FAULT_DIR");
	char		 path[PATH_MAX], text[32];
	ssize_t		 n;
	int		 fd;

	if (dir == NULL)
		return 0;
	snprintf(path, sizeof(path), "%s/clock", dir);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 0;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtoll(text, NULL, 10);
}
#else
#define fault(point)	do { } while (0)
#define fault_arm()	do { } while (0)
#define fault_slow()	do { } while (0)
#define fault_clock()	0
#endif

void
store_wall(struct timespec *ts)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += (time_t)fault_clock();
}

static void
on_event(DB_ENV *env, u_int32_t event, void *info)
{
	struct store	*s = env->app_private;

	(void)info;
	if (event == DB_EVENT_PANIC && s != NULL)
		set_panic(s, "berkeley db panicked");
}

/*
 * failchk asks whether the thread (process) that held something lives.
 * A zombie does not: mod_fcgid reaps its dead children only every few
 * seconds, and kill(pid, 0) succeeds until then.
 */
static int
is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	char	 path[64], buf[512], *p;
	ssize_t	 n;
	int	 fd;

	(void)env;
	(void)tid;
	(void)flags;
	fault_slow();
	if (kill(pid, 0) == -1 && errno != EPERM)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return 1;	/* no /proc: trust kill() */
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 1;
	buf[n] = '\0';
	/* "pid (comm) S ...": the state follows the last ')'. */
	if ((p = strrchr(buf, ')')) != NULL && p[1] == ' ' &&
	    (p[2] == 'Z' || p[2] == 'X'))
		return 0;
	return 1;
}

/* Map a Berkeley DB result; deadlocks and panics are remembered. */
static int
map(struct store *s, struct store_txn *t, int rc, const char *what)
{
	switch (rc) {
	case 0:
		return STORE_OK;
	case DB_NOTFOUND:
	case DB_KEYEMPTY:
		return STORE_NOTFOUND;
	case DB_KEYEXIST:
		return STORE_EXISTS;
	case DB_LOCK_DEADLOCK:
	case DB_LOCK_NOTGRANTED:
		if (t != NULL)
			t->deadlock = 1;
		return STORE_DEADLOCK;
	case DB_RUNRECOVERY:
		set_panic(s, what);
		seterr("%s: the store needs recovery", what);
		if (t != NULL)
			t->failed = 1;
		return STORE_PANIC;
	case EACCES:
	case EROFS:
		seterr("%s: the store is read-only: %s", what, db_strerror(rc));
		if (t != NULL)
			t->failed = 1;
		return STORE_READONLY;
	default:
		seterr("%s: %s", what, db_strerror(rc));
		if (t != NULL)
			t->failed = 1;
		return STORE_ERROR;
	}
}

/* The CLOCK_REALTIME time ms from now, for pthread_cond_timedwait. */
static void
deadline_in(long ms, struct timespec *t)
{
	clock_gettime(CLOCK_REALTIME, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000;
	if (t->tv_nsec >= 1000000000) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000;
	}
}

/* Wait on the store's condition for ms, or until it stops; 1 when stopping. */
static int
nap(struct store *s, long ms)
{
	struct timespec	 until;
	int		 stop;

	deadline_in(ms, &until);
	pthread_mutex_lock(&s->lock);
	if (!s->stopping)
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
	stop = s->stopping;
	pthread_mutex_unlock(&s->lock);
	return stop;
}

/*
 * Whether this process runs the environment-wide checks this second. One
 * process per second does, whoever comes first: data_dir/watch.lock holds
 * the time of the last run, read and written under its lock. With every
 * process checking every second, the time processes spend inside Berkeley
 * DB grew with their number, and so did the chance that a process killed
 * at a random moment (SIGKILL, the OOM killer, mod_fcgid) died inside it
 * and left the environment needing recovery.
 */
static int
watch_turn(struct store *s)
{
	struct flock	 fl;
	int64_t		 last = 0, now = mono_ms();
	int		 mine = 0;

	if (s->watch_fd == -1)
		return 1;
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(s->watch_fd, F_OFD_SETLK, &fl) == -1)
		return 0;	/* another process is deciding */
	if (pread(s->watch_fd, &last, sizeof(last), 0) != sizeof(last) ||
	    now - last >= WATCH_MS || now < last)
		mine = pwrite(s->watch_fd, &now, sizeof(now), 0) ==
		    sizeof(now);
	fl.l_type = F_UNLCK;
	(void)fcntl(s->watch_fd, F_OFD_SETLK, &fl);
	return mine;
}

/*
 * Every second, in one process at a time (watch_turn): expire lock
 * requests past their timeout and failchk; every checkpoint_s in each
 * worker, a checkpoint. Its own calls are tracked like any other: one
 * that sticks is seen by the guard.
 */
static void *
watchdog_main(void *arg)
{
	struct store	*s = arg;
	time_t		 last_ckp = time(NULL);
	int		 rc, slot, turn;

	while (!nap(s, 1000)) {
		if (s->panicked)
			continue;
		turn = watch_turn(s);
		slot = call_begin(s);
		rc = turn ? s->env->lock_detect(s->env, 0, DB_LOCK_EXPIRE,
		    NULL) : 0;
		if (rc == DB_RUNRECOVERY)
			set_panic(s, "lock_detect");
		if (turn && s->mode == STORE_WORKER && !s->panicked) {
			rc = s->env->failchk(s->env, 0);
			/* 5.3.28 answers EBUSY once after a death. */
			if (rc == DB_RUNRECOVERY)
				set_panic(s, "failchk: a process died inside "
				    "Berkeley DB");
			else if (rc != 0 && rc != EBUSY)
				log_warn("store: failchk: %s", db_strerror(rc));
		}
		if (s->mode == STORE_WORKER && !s->panicked &&
		    time(NULL) - last_ckp >= s->checkpoint_s) {
			last_ckp = time(NULL);
			if ((rc = s->env->txn_checkpoint(s->env, 0, 0, 0)) != 0)
				log_warn("store: checkpoint: %s",
				    db_strerror(rc));
		}
		call_end(s, slot);
	}
	return NULL;
}

/*
 * Five times a second, touching no Berkeley DB code: a call in flight for
 * HANG_MS means the environment is stuck; once panicked, leave it when
 * the calls are out, or have the process exit when they stay in.
 */
static void *
guard_main(void *arg)
{
	struct store	*s = arg;
	int64_t		 oldest, now;

	while (!nap(s, 200)) {
		now = mono_ms();
		oldest = oldest_call(s);
		if (!s->panicked && oldest != 0 && now - oldest > HANG_MS)
			set_panic(s, "a store call has been blocked for "
			    "25 s");
		if (!s->panicked || s->left)
			continue;
		if (oldest == 0) {
			/* No one is inside: drop the registry's read lock. */
			if (s->reg_fd != -1)
				close(s->reg_fd);
			s->reg_fd = -1;
			s->left = 1;
			log_error("store: left the panicked environment");
		} else if (now - s->panic_ms > DRAIN_MS && !s->hang_told) {
			s->hang_told = 1;
			log_error("store: a call stays blocked in the panicked "
			    "environment");
			if (hang_handler != NULL)
				hang_handler("a store call stays blocked in a "
				    "panicked environment");
		}
	}
	return NULL;
}

/* store_every's thread: the chore, then a wait of chore_s (or stop). */
static void *
chore_main(void *arg)
{
	struct store	*s = arg;
	struct timespec	 until;
	long		 wait_s = 1;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		deadline_in(wait_s * 1000, &until);
		while (!s->stopping && pthread_cond_timedwait(&s->cond,
		    &s->lock, &until) == 0)
			;	/* woken for another reason: wait on */
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->lock);
		if (!s->panicked)
			s->chore_fn(s, s->chore_arg);
		wait_s = s->chore_s;
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

int
store_every(struct store *s, long period_s, store_chore_fn fn, void *arg)
{
	int	 rc = -1;

	pthread_mutex_lock(&s->lock);
	if (!s->choring && !s->stopping && period_s > 0) {
		s->chore_fn = fn;
		s->chore_arg = arg;
		s->chore_s = period_s;
		if (pthread_create(&s->chore, NULL, chore_main, s) == 0) {
			s->choring = 1;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&s->lock);
	return rc;
}

static int
open_db(struct store *s, enum store_db i, char *err, size_t errlen)
{
	DB	*db;
	int	 rc;

	if ((rc = db_create(&db, s->env, 0)) != 0)
		goto fail;
#ifdef LLMGATE_FAULT_INJECTION
	if (i == SDB_USAGE)
		db->set_bt_compare(db, fault_compare);
#endif
	rc = db->open(db, NULL, db_files[i], NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0660);
	if (rc == EACCES || rc == EROFS) {
		/* Keep serving what can be read; writes go to the fallback. */
		db->close(db, 0);
		if ((rc = db_create(&db, s->env, 0)) != 0)
			goto fail;
#ifdef LLMGATE_FAULT_INJECTION
		if (i == SDB_USAGE)
			db->set_bt_compare(db, fault_compare);
#endif
		rc = db->open(db, NULL, db_files[i], NULL, DB_BTREE,
		    DB_RDONLY | DB_AUTO_COMMIT | DB_THREAD, 0);
		if (rc == 0) {
			s->readonly = 1;
			log_warn("store: %s is read-only", db_files[i]);
		}
	}
	if (rc != 0) {
		db->close(db, 0);
		goto fail;
	}
	s->db[i] = db;
	return 0;
fail:
	snprintf(err, errlen, "cannot open %s: %s", db_files[i],
	    db_strerror(rc));
	return -1;
}

static int
open_sequence(struct store *s, char *err, size_t errlen)
{
	DBT	 key;
	int	 rc;

	if ((rc = db_create(&s->seqdb, s->env, 0)) != 0 ||
	    (rc = s->seqdb->open(s->seqdb, NULL, "seq.db", NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0660)) != 0 ||
	    (rc = db_sequence_create(&s->seq, s->seqdb, 0)) != 0)
		goto fail;
	memset(&key, 0, sizeof(key));
	key.data = (void *)"id";
	key.size = 2;
	if ((rc = s->seq->initial_value(s->seq, 1)) != 0 ||
	    (rc = s->seq->set_cachesize(s->seq, 100)) != 0 ||
	    (rc = s->seq->open(s->seq, NULL, &key,
	    DB_CREATE | DB_THREAD)) != 0)
		goto fail;
	return 0;
fail:
	snprintf(err, errlen, "cannot open seq.db: %s", db_strerror(rc));
	return -1;
}

/* The schema version of a new store is written; another one is refused. */
static int
check_schema(struct store *s, char *err, size_t errlen)
{
	DBT	 k, v;
	char	 buf[32];
	int	 rc;

	memset(&k, 0, sizeof(k));
	memset(&v, 0, sizeof(v));
	k.data = (void *)"schema";
	k.size = 6;
	v.data = buf;
	v.ulen = sizeof(buf) - 1;
	v.flags = DB_DBT_USERMEM;
	rc = s->db[SDB_META]->get(s->db[SDB_META], NULL, &k, &v, 0);
	if (rc == DB_NOTFOUND) {
		v.data = (void *)SCHEMA;
		v.size = sizeof(SCHEMA) - 1;
		rc = s->db[SDB_META]->put(s->db[SDB_META], NULL, &k, &v,
		    DB_NOOVERWRITE | DB_AUTO_COMMIT);
		if (rc == 0 || rc == DB_KEYEXIST || rc == EACCES)
			return 0;
	}
	if (rc != 0) {
		snprintf(err, errlen, "cannot read the store schema: %s",
		    db_strerror(rc));
		return -1;
	}
	buf[v.size] = '\0';
	if (strcmp(buf, SCHEMA) != 0) {
		snprintf(err, errlen, "the store in data_dir has schema %s; "
		    "this llmgate reads schema %s", buf, SCHEMA);
		return -1;
	}
	return 0;
}

/*
 * A region grows inside the mapping Berkeley DB made at attach; a page
 * of it that the file system cannot supply is a SIGBUS. Allocate every
 * region file up to its mapped size now (fallocate with KEEP_SIZE: the
 * size Berkeley DB sees does not change). DB_REGION_INIT did not help:
 * it touches only the first size of a region (tried on a full tmpfs).
 */
static int
reserve_regions(const char *dir, char *err, size_t errlen)
{
	char		 real[PATH_MAX], line[PATH_MAX + 128], path[PATH_MAX];
	unsigned long	 lo, hi;
	size_t		 dl;
	FILE		*fp;
	int		 fd, rc = 0;

	if (realpath(dir, real) == NULL ||
	    (fp = fopen("/proc/self/maps", "re")) == NULL)
		return 0;	/* no /proc: nothing to go by */
	dl = strlen(real);
	while (rc == 0 && fgets(line, sizeof(line), fp) != NULL) {
		if (sscanf(line, "%lx-%lx %*s %*s %*s %*s %4095s", &lo, &hi,
		    path) != 3 || strncmp(path, real, dl) != 0 ||
		    strncmp(path + dl, "/__db.", 6) != 0)
			continue;
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1)
			continue;
		if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)(hi - lo)) ==
		    -1 && errno != EOPNOTSUPP && errno != ENOSYS) {
			snprintf(err, errlen, "cannot allocate the %lu bytes of "
			    "%.300s: %s", hi - lo, path, strerror(errno));
			rc = -1;
		}
		close(fd);
	}
	fclose(fp);
	return rc;
}

static struct store *
open_locked(const char *dir, enum store_mode mode, int nosync,
    long checkpoint_s, int recover, char *err, size_t errlen)
{
	struct store	*s;
	u_int32_t	 flags;
	int		 rc, i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->mode = mode;
	s->reg_fd = -1;
	s->watch_fd = -1;
	snprintf(s->dir, sizeof(s->dir), "%s", dir);
	s->checkpoint_s = checkpoint_s > 0 ? checkpoint_s : 30;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	sem_init(&s->gate, 0, TXN_GATE);
	if ((rc = db_env_create(&s->env, 0)) != 0) {
		snprintf(err, errlen, "db_env_create: %s", db_strerror(rc));
		free(s);
		return NULL;
	}
	s->env->app_private = s;
	s->env->set_errcall(s->env, on_dberr);
	s->env->set_msgcall(s->env, on_dbmsg);
	s->env->set_event_notify(s->env, on_event);
	s->env->set_lk_detect(s->env, DB_LOCK_DEFAULT);
	/* Bounded waits; the watchdog's lock_detect expires them. */
	s->env->set_timeout(s->env, LOCK_TIMEOUT_US, DB_SET_LOCK_TIMEOUT);
	s->env->set_timeout(s->env, TXN_TIMEOUT_US, DB_SET_TXN_TIMEOUT);
	s->env->set_thread_count(s->env, 128);
	s->env->set_isalive(s->env, is_alive);
	s->env->set_cachesize(s->env, 0, 4 * 1024 * 1024, 1);
	/*
	 * The defaults (1000 locks) run out under a report that reads a few
	 * thousand pages, and an environment out of lock memory refuses every
	 * later open until recovery. They hold TXN_GATE transactions per
	 * process with room to spare (1000 concurrent client-key streams in
	 * one process pass); without the gate, 1000 transactions in flight
	 * ran out of 20000 locks, and 200000 only traded that for lock
	 * timeouts. Each lock costs region space, preallocated on disk
	 * (60000 locks: a 40 MB region). These take effect when the
	 * environment is created (recovery recreates it).
	 */
	s->env->set_lk_max_locks(s->env, 20000);
	s->env->set_lk_max_objects(s->env, 20000);
	s->env->set_lk_max_lockers(s->env, 4000);
	s->env->log_set_config(s->env, DB_LOG_AUTO_REMOVE, 1);
	if (nosync)
		s->env->set_flags(s->env, DB_TXN_WRITE_NOSYNC, 1);
	flags = DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
	    DB_INIT_TXN | DB_THREAD;
	if (recover)
		flags |= DB_RECOVER;
	if ((rc = s->env->open(s->env, dir, flags, 0660)) != 0) {
		snprintf(err, errlen, "cannot open the store in %.300s: %s", dir,
		    db_strerror(rc));
		if (rc == DB_RUNRECOVERY) {
			last_open = OPEN_NEEDS_RECOVERY;
			mark_recovery(dir);
		}
		s->env->close(s->env, 0);
		free(s);
		return NULL;
	}
	if (reserve_regions(dir, err, errlen) == -1)
		goto fail;
	/*
	 * A process that died holding locks is cleaned up before we start
	 * (5.3.28 answers EBUSY once after a death and frees nothing: again).
	 */
	if (!recover && (rc = s->env->failchk(s->env, 0)) == EBUSY)
		rc = s->env->failchk(s->env, 0);
	if (!recover && rc == DB_RUNRECOVERY) {
		set_panic(s, "failchk at open");
		snprintf(err, errlen, "the store needs recovery");
		goto fail;
	}
	for (i = 0; i < SDB__MAX; i++)
		if (open_db(s, (enum store_db)i, err, errlen) == -1)
			goto fail;
	if (open_sequence(s, err, errlen) == -1 ||
	    check_schema(s, err, errlen) == -1)
		goto fail;
	return s;
fail:
	store_close(s);
	return NULL;
}

/* Take an OFD lock on fd, waiting at most ms (0: do not wait); 0 or -1. */
static int
lock_fd(int fd, short type, long ms)
{
	struct flock	 fl;
	long		 waited = 0;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, F_OFD_SETLK, &fl) == -1) {
		if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
		    waited >= ms)
			return -1;
		usleep(10000);
		waited += 10;
	}
	return 0;
}

/*
 * One open runs in a thread of its own so that the caller can stop
 * waiting for it: an open can block forever on a region mutex that a
 * process which died inside the library still holds. An open given up
 * on runs on by itself and closes whatever it opened, unused; the
 * process waits for it before exiting (store_wait_openers).
 */
struct opening {
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 done, abandoned;
	char		 dir[PATH_MAX];
	enum store_mode	 mode;
	int		 nosync, recover;
	long		 checkpoint_s;
	struct store	*s;
	int		 fds[2];	/* locks it keeps when given up on */
	char		 err[512];
};

/*
 * Opens given up on whose thread is still inside Berkeley DB. A process
 * that exits under one dies inside the library and leaves the environment
 * needing recovery for every process: exits wait for them first
 * (store_wait_openers).
 */
static pthread_mutex_t	 late_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t	 late_cond = PTHREAD_COND_INITIALIZER;
static int		 late_openers;

static void
opening_free(struct opening *o)
{
	pthread_mutex_destroy(&o->lock);
	pthread_cond_destroy(&o->cond);
	free(o);
}

static void *
opener_main(void *arg)
{
	struct opening	*o = arg;
	struct store	*s;
	int		 abandoned;

	s = open_locked(o->dir, o->mode, o->nosync, o->checkpoint_s,
	    o->recover, o->err, sizeof(o->err));
	pthread_mutex_lock(&o->lock);
	o->s = s;
	o->done = 1;
	abandoned = o->abandoned;
	pthread_cond_signal(&o->cond);
	pthread_mutex_unlock(&o->lock);
	if (!abandoned)
		return NULL;
	if (s != NULL) {
		log_warn("store: an open given up on finished late; it is "
		    "closed unused");
		store_close(s);
	}
	/* A recovery keeps its locks to its end. */
	if (o->fds[0] != -1)
		close(o->fds[0]);
	if (o->fds[1] != -1)
		close(o->fds[1]);
	opening_free(o);
	pthread_mutex_lock(&late_lock);
	late_openers--;
	pthread_cond_broadcast(&late_cond);
	pthread_mutex_unlock(&late_lock);
	return NULL;
}

/*
 * Before the process exits: wait up to ms for opens given up on to leave
 * Berkeley DB. Returns 0, or -1 when one is still inside (stuck on a dead
 * process's mutex: the environment needs recovery anyway).
 */
int
store_wait_openers(long ms)
{
	struct timespec	 until;
	int		 rc = 0;

	deadline_in(ms, &until);
	pthread_mutex_lock(&late_lock);
	while (late_openers > 0 && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&late_cond, &late_lock, &until);
	rc = late_openers > 0 ? -1 : 0;
	pthread_mutex_unlock(&late_lock);
	if (rc == -1)
		log_error("store: an open given up on is still inside the "
		    "store at exit");
	return rc;
}

/*
 * Open in a thread and wait at most ms. On timeout NULL, and when keep
 * is set the thread takes the lock fds (a recovery must hold them to its
 * end); *timedout says which.
 */
static struct store *
open_bounded(const char *dir, enum store_mode mode, int nosync,
    long checkpoint_s, int recover, const int fds[2], int *timedout,
    char *err, size_t errlen)
{
	struct opening	*o;
	struct timespec	 until;
	struct store	*s;
	pthread_attr_t	 attr;
	pthread_t	 tid;
	long		 ms = recover ? RECOVER_WAIT_MS : OPEN_WAIT_MS;
	int		 rc = 0;

	*timedout = 0;
	if ((o = calloc(1, sizeof(*o))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cond, NULL);
	snprintf(o->dir, sizeof(o->dir), "%s", dir);
	o->mode = mode;
	o->nosync = nosync;
	o->recover = recover;
	o->checkpoint_s = checkpoint_s;
	o->fds[0] = o->fds[1] = -1;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (pthread_create(&tid, &attr, opener_main, o) != 0) {
		pthread_attr_destroy(&attr);
		opening_free(o);
		snprintf(err, errlen, "cannot start a thread to open the store");
		return NULL;
	}
	pthread_attr_destroy(&attr);
	deadline_in(ms, &until);
	pthread_mutex_lock(&o->lock);
	while (!o->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&o->cond, &o->lock, &until);
	if (!o->done) {
		o->abandoned = 1;
		pthread_mutex_lock(&late_lock);
		late_openers++;
		pthread_mutex_unlock(&late_lock);
		if (recover) {
			o->fds[0] = fds[0];
			o->fds[1] = fds[1];
		}
		pthread_mutex_unlock(&o->lock);
		*timedout = 1;
		snprintf(err, errlen, "the store did not %s within %ld s",
		    recover ? "recover" : "open", ms / 1000);
		return NULL;	/* the thread frees o */
	}
	pthread_mutex_unlock(&o->lock);
	if ((s = o->s) == NULL)
		snprintf(err, errlen, "%s", o->err);
	opening_free(o);
	return s;
}

static void
start_threads(struct store *s)
{
	if (s->mode == STORE_RECOVER)
		return;
	if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0)
		return;
	if (pthread_create(&s->guard, NULL, guard_main, s) != 0) {
		pthread_mutex_lock(&s->lock);
		s->stopping = 1;
		pthread_mutex_unlock(&s->lock);
		pthread_join(s->watchdog, NULL);
		s->stopping = 0;
		return;
	}
	s->watching = 1;
}

static int
open_fd(const char *dir, const char *name, char *err, size_t errlen)
{
	char	 path[PATH_MAX];
	int	 fd;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", dir, name) >=
	    sizeof(path)) {
		snprintf(err, errlen, "data_dir is too long");
		return -1;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660)) == -1)
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
	return fd;
}

/*
 * Opens take turns on an fcntl lock on data_dir/open.lock (processes
 * that start together would race to create the environment). Every
 * process attached holds a read lock on data_dir/attach.lock; an opener
 * that gets the write lock there is alone, and runs recovery when the
 * needs-recovery marker is there (or asked: llmgate-admin recover), or
 * when a plain open fails or does not finish. Recovery with others
 * attached is refused: they would be left on a dead environment.
 */
/*
 * Join one of the store's threads. In a panicked environment it may wait
 * for ever (on a mutex of a process that died inside the library): it is
 * then left to the exit, which a process must reach to drop its lock on
 * attach.lock so that the first process after it can recover the store.
 */
static void
join_or_leave(struct store *s, pthread_t tid)
{
	struct timespec	 until;

	for (;;) {
		deadline_in(1000, &until);
		if (pthread_timedjoin_np(tid, NULL, &until) == 0)
			return;
		if (s->panicked) {
			pthread_detach(tid);
			return;
		}
	}
}

struct store *
store_open(const char *dir, enum store_mode mode, int nosync,
    long checkpoint_s, char *err, size_t errlen)
{
	struct store	*s = NULL;
	char		 path[PATH_MAX];
	int		 fds[2] = { -1, -1 }, alone, recover, timedout;

	umask(007);	/* group-writable: the web server user and admins */
	last_open = OPEN_UNAVAILABLE;
	if ((fds[0] = open_fd(dir, "open.lock", err, errlen)) == -1 ||
	    (fds[1] = open_fd(dir, "attach.lock", err, errlen)) == -1)
		goto fail;
	if (lock_fd(fds[0], F_WRLCK, OPEN_WAIT_MS) == -1) {
		snprintf(err, errlen, "another process has been opening the "
		    "store for %d s", OPEN_WAIT_MS / 1000);
		goto fail;
	}
	alone = lock_fd(fds[1], F_WRLCK, 0) == 0;
	if (!alone && mode == STORE_RECOVER) {
		snprintf(err, errlen, "gateway processes are using the store; "
		    "it recovers by itself once they leave it (stop the "
		    "server to recover it by hand)");
		goto fail;
	}
	if (!alone && lock_fd(fds[1], F_RDLCK, OPEN_WAIT_MS) == -1) {
		snprintf(err, errlen, "cannot lock attach.lock: %s",
		    strerror(errno));
		goto fail;
	}
	recover = alone && (mode == STORE_RECOVER || marked(dir));
	s = open_bounded(dir, mode, nosync, checkpoint_s, recover, fds,
	    &timedout, err, errlen);
	if (s == NULL && timedout && recover)
		return NULL;	/* the recovery holds the locks to its end */
	if (s == NULL && (timedout || last_open == OPEN_NEEDS_RECOVERY))
		mark_recovery(dir);
	if (s == NULL && alone && !recover) {
		/* No one else is attached: whatever is wrong, recover. */
		log_warn("store: %s; alone on the store: running recovery",
		    err);
		recover = 1;
		s = open_bounded(dir, mode, nosync, checkpoint_s, 1, fds,
		    &timedout, err, errlen);
		if (s == NULL && timedout)
			return NULL;
	}
	if (s == NULL) {
		if (timedout)
			last_open = OPEN_NEEDS_RECOVERY;
		goto fail;
	}
	if (recover) {
		log_info("store: recovered the environment in %s", dir);
		snprintf(path, sizeof(path), "%s/" MARKER, dir);
		unlink(path);
	}
	/* Attached: a read lock like everyone's (an opener alone downgrades). */
	if (alone && lock_fd(fds[1], F_RDLCK, 0) == -1)
		log_warn("store: cannot downgrade the lock on attach.lock: %s",
		    strerror(errno));
	s->reg_fd = fds[1];
	close(fds[0]);
	if ((s->watch_fd = open_fd(dir, "watch.lock", path, sizeof(path))) == -1)
		log_warn("store: %s: this process checks the environment "
		    "every second itself", path);
	start_threads(s);
	return s;
fail:
	if (fds[0] != -1)
		close(fds[0]);
	if (fds[1] != -1)
		close(fds[1]);
	return NULL;
}

/* Nonzero when this process has stopped using a panicked environment. */
int
store_left(const struct store *s)
{
	return s != NULL && s->left;
}

/* What /health/readiness says of the store (s may be NULL). */
const char *
store_health(const struct store *s)
{
	if (s != NULL && !s->panicked)
		return s->readonly ? "read_only" : "ok";
	if (s != NULL || last_open == OPEN_NEEDS_RECOVERY)
		return "needs_recovery";
	return "unavailable";
}

void
store_close(struct store *s)
{
	int		 i, slot;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/*
	 * The chore first: the watchdog frees what it may be waiting on.
	 * Then the watchdog, and the guard last: it is what notices either
	 * of them stuck.
	 */
	if (s->choring)
		join_or_leave(s, s->chore);
	if (s->watching) {
		join_or_leave(s, s->watchdog);
		pthread_join(s->guard, NULL);
	}
	if (s->panicked) {
		/*
		 * Nothing goes into a panicked environment, not even a
		 * close (it may wait on a dead process's mutex): the
		 * handles are left to the exit.
		 */
		if (s->reg_fd != -1)
			close(s->reg_fd);
		return;
	}
	slot = call_begin(s);
	if (s->seq != NULL)
		s->seq->close(s->seq, 0);
	if (s->seqdb != NULL)
		s->seqdb->close(s->seqdb, 0);
	for (i = 0; i < SDB__MAX; i++)
		if (s->db[i] != NULL)
			s->db[i]->close(s->db[i], 0);
	/* Short-lived openers (CGI, llmgate-admin) checkpoint now and then. */
	if (!s->panicked && s->mode != STORE_WORKER)
		s->env->txn_checkpoint(s->env, 256, (u_int32_t)
		    (s->checkpoint_s + 59) / 60, 0);
	s->env->close(s->env, 0);
	call_end(s, slot);
	if (s->watch_fd != -1)
		close(s->watch_fd);
	if (s->reg_fd != -1)
		close(s->reg_fd);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
	sem_destroy(&s->gate);
	free(s);
}

int
store_panicked(const struct store *s)
{
	return s != NULL && s->panicked;
}

int
store_readonly(const struct store *s)
{
	return s != NULL && s->readonly;
}

int
store_failchk(struct store *s)
{
	int	 rc, slot;

	if (s->panicked) {
		seterr("the store needs recovery");
		return STORE_PANIC;
	}
	slot = call_begin(s);
	rc = s->env->failchk(s->env, 0);
	if (rc == EBUSY)
		rc = s->env->failchk(s->env, 0);
	call_end(s, slot);
	return map(s, NULL, rc == EBUSY ? 0 : rc, "failchk");
}

int
store_checkpoint(struct store *s)
{
	int	 rc, slot;

	if (s->panicked) {
		seterr("the store needs recovery");
		return STORE_PANIC;
	}
	slot = call_begin(s);
	rc = s->env->txn_checkpoint(s->env, 0, 0, 0);
	call_end(s, slot);
	return map(s, NULL, rc, "checkpoint");
}

/* Back off a little longer after each lost deadlock, with jitter. */
static void
backoff(int try)
{
	long	 us = 100L << (try < 8 ? try : 8);

	usleep((useconds_t)(us + random() % us));
}

/* Wait for a place among the TXN_GATE transactions, within the budget. */
static int
enter_gate(struct store *s, int64_t start)
{
	struct timespec	 until;

	for (;;) {
		if (s->panicked) {
			seterr("the store needs recovery");
			return STORE_PANIC;
		}
		if (mono_ms() - start > TXN_BUDGET_MS) {
			seterr("the store stayed busy (waited %lld ms for "
			    "other transactions)",
			    (long long)(mono_ms() - start));
			return STORE_ERROR;
		}
		deadline_in(100, &until);
		if (sem_timedwait(&s->gate, &until) == 0)
			return STORE_OK;
	}
}

/*
 * Deadlocks and lock timeouts are retried with backoff, within a time
 * budget: past it the caller gets an error rather than a longer wait.
 */
static int
run_txn(struct store *s, store_txn_fn fn, void *arg, u_int32_t flags)
{
	struct store_txn	 t;
	int64_t			 start = mono_ms();
	int			 try, rc, crc, slot;

	if ((rc = enter_gate(s, start)) != STORE_OK)
		return rc;
	slot = call_begin(s);
	for (try = 0; try < TXN_TRIES; try++) {
		if (s->panicked || mono_ms() - start > TXN_BUDGET_MS)
			break;
		memset(&t, 0, sizeof(t));
		t.s = s;
		t.slot = slot;
		fault_arm();
		if ((crc = s->env->txn_begin(s->env, NULL, &t.txn, flags)) != 0) {
			rc = map(s, NULL, crc, "txn_begin");
			goto out;
		}
		rc = fn(&t, arg);
		if (rc < 0 || t.deadlock) {
			t.txn->abort(t.txn);
			if (t.deadlock || rc == STORE_DEADLOCK) {
				backoff(try);
				continue;
			}
			goto out;
		}
		fault("txn-commit");
		if ((crc = t.txn->commit(t.txn, 0)) != 0)
			rc = map(s, NULL, crc, "commit");
		goto out;
	}
	if (s->panicked) {
		seterr("the store needs recovery");
		rc = STORE_PANIC;
	} else {
		seterr("the store stayed busy (%d deadlocks or lock timeouts "
		    "in %lld ms)", try, (long long)(mono_ms() - start));
		rc = STORE_ERROR;
	}
out:
	call_end(s, slot);
	sem_post(&s->gate);
	return rc;
}

int
store_txn(struct store *s, store_txn_fn fn, void *arg)
{
	return run_txn(s, fn, arg, 0);
}

/* Reads release each page's lock as the cursor moves on (degree 2). */
int
store_read(struct store *s, store_txn_fn fn, void *arg)
{
	return run_txn(s, fn, arg, DB_READ_COMMITTED);
}

static void
dbt_in(DBT *d, const void *p, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->data = (void *)p;
	d->size = (u_int32_t)n;
}

static void
dbt_out(DBT *d, void *p, size_t cap)
{
	memset(d, 0, sizeof(*d));
	d->data = p;
	d->ulen = (u_int32_t)cap;
	d->flags = DB_DBT_USERMEM;
}

int
store_get(struct store_txn *t, enum store_db i, const void *k, size_t klen,
    void *v, size_t *vlen, int flags)
{
	DBT	 key, val;
	int	 rc;

	dbt_in(&key, k, klen);
	dbt_out(&val, v, *vlen);
	rc = t->s->db[i]->get(t->s->db[i], t->txn, &key, &val,
	    (flags & STORE_RMW) && !t->s->readonly ? DB_RMW : 0);
	if (rc == DB_BUFFER_SMALL) {
		seterr("%s: a record of %u bytes is larger than expected",
		    db_files[i], val.size);
		t->failed = 1;
		return STORE_ERROR;
	}
	if (rc == 0)
		*vlen = val.size;
	return map(t->s, t, rc, db_files[i]);
}

int
store_get_rec(struct store_txn *t, enum store_db i, const void *k,
    size_t klen, void *rec, size_t size, int flags)
{
	size_t	 n = size;
	int	 rc;

	if ((rc = store_get(t, i, k, klen, rec, &n, flags)) != STORE_OK)
		return rc;
	if (n != size || ((unsigned char *)rec)[0] != STORE_VERSION) {
		seterr("%s: a record of version %u and %zu bytes; this llmgate "
		    "reads version %u, %zu bytes", db_files[i],
		    ((unsigned char *)rec)[0], n, STORE_VERSION, size);
		t->failed = 1;
		return STORE_ERROR;
	}
	return STORE_OK;
}

/* A scanned value as a fixed record: 0, or -1 when size or version differ. */
int
store_rec(const void *v, size_t vlen, void *rec, size_t size)
{
	if (vlen != size || ((const unsigned char *)v)[0] != STORE_VERSION) {
		seterr("a record of %zu bytes or another version", vlen);
		return -1;
	}
	memcpy(rec, v, size);
	return 0;
}

static int
put(struct store_txn *t, enum store_db i, const void *k, size_t klen,
    const void *v, size_t vlen, u_int32_t flags)
{
	DBT	 key, val;

	int	 rc;

	dbt_in(&key, k, klen);
	dbt_in(&val, v, vlen);
	rc = map(t->s, t, t->s->db[i]->put(t->s->db[i], t->txn, &key, &val,
	    flags), db_files[i]);
	if (rc == STORE_OK && i == SDB_USAGE)
		fault("txn-put");	/* write locks held, outside the library */
	if (rc == STORE_OK && i == SDB_RCACHE_BODY)
		fault("rcache-put");	/* a cache store's locks held (totals too) */
	return rc;
}

int
store_put(struct store_txn *t, enum store_db i, const void *k, size_t klen,
    const void *v, size_t vlen)
{
	return put(t, i, k, klen, v, vlen, 0);
}

int
store_put_new(struct store_txn *t, enum store_db i, const void *k,
    size_t klen, const void *v, size_t vlen)
{
	return put(t, i, k, klen, v, vlen, DB_NOOVERWRITE);
}

int
store_del(struct store_txn *t, enum store_db i, const void *k, size_t klen)
{
	DBT	 key;

	dbt_in(&key, k, klen);
	return map(t->s, t, t->s->db[i]->del(t->s->db[i], t->txn, &key, 0),
	    db_files[i]);
}

/* Position the cursor on the last key <= from (reverse scans). */
static int
seek_le(DBC *c, DBT *key, DBT *val, const void *from, size_t flen)
{
	int	 rc;

	memcpy(key->data, from, flen);
	key->size = (u_int32_t)flen;
	rc = c->get(c, key, val, DB_SET_RANGE);
	if (rc == DB_NOTFOUND)
		return c->get(c, key, val, DB_LAST);
	if (rc != 0)
		return rc;
	if (key->size == flen && memcmp(key->data, from, flen) == 0)
		return 0;
	return c->get(c, key, val, DB_PREV);
}

int
store_scan(struct store_txn *t, enum store_db i, const void *prefix,
    size_t plen, const void *from, size_t flen, int flags, store_scan_fn fn,
    void *arg)
{
	unsigned char	 kbuf[KEY_MAX], vbuf[STORE_VALUE_MAX], hi[KEY_MAX];
	DBC		*c = NULL;
	DBT		 key, val;
	int		 rc, cb, reverse = flags & STORE_REVERSE;
	u_int32_t	 next = reverse ? DB_PREV : DB_NEXT;

	if (plen > KEY_MAX / 2 || flen > KEY_MAX) {
		seterr("scan key too long");
		return STORE_ERROR;
	}
	if ((rc = t->s->db[i]->cursor(t->s->db[i], t->txn, &c, 0)) != 0)
		return map(t->s, t, rc, db_files[i]);
	dbt_out(&key, kbuf, sizeof(kbuf));
	dbt_out(&val, vbuf, sizeof(vbuf));
	if (reverse) {
		if (from == NULL) {
			/* The highest key under the prefix. */
			if (plen > 0)
				memcpy(hi, prefix, plen);
			memset(hi + plen, 0xff, KEY_MAX / 2);
			from = hi;
			flen = plen + KEY_MAX / 2;
		}
		rc = seek_le(c, &key, &val, from, flen);
	} else if (from != NULL || plen > 0) {
		if (from == NULL) {
			from = prefix;
			flen = plen;
		}
		memcpy(kbuf, from, flen);
		key.size = (u_int32_t)flen;
		rc = c->get(c, &key, &val, DB_SET_RANGE);
	} else
		rc = c->get(c, &key, &val, DB_FIRST);
	for (; rc == 0; rc = c->get(c, &key, &val, next)) {
		if (plen > 0 && (key.size < plen ||
		    memcmp(kbuf, prefix, plen) != 0)) {
			rc = DB_NOTFOUND;
			break;
		}
		cb = fn(arg, kbuf, key.size, vbuf, val.size);
		if (cb == STORE_SCAN_DELETE) {
			if ((rc = c->del(c, 0)) != 0)
				break;
			continue;
		}
		if (cb == STORE_STOP) {
			c->close(c);
			return STORE_OK;
		}
		if (cb < 0) {
			c->close(c);
			return cb;
		}
	}
	if (rc == DB_BUFFER_SMALL) {
		c->close(c);
		seterr("%s: a record is larger than expected", db_files[i]);
		t->failed = 1;
		return STORE_ERROR;
	}
	c->close(c);
	return rc == DB_NOTFOUND ? STORE_OK : map(t->s, t, rc, db_files[i]);
}

uint64_t
store_next_id(struct store *s)
{
	db_seq_t	 id;
	int		 rc, slot;

	if (s->panicked)
		return 0;
	slot = call_begin(s);
	rc = s->seq->get(s->seq, NULL, 1, &id, DB_TXN_NOSYNC);
	call_end(s, slot);
	if (rc != 0) {
		map(s, NULL, rc, "seq.db");
		return 0;
	}
	return (uint64_t)id;
}

void
store_be64(unsigned char *p, uint64_t v)
{
	int	 i;

	for (i = 7; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

uint64_t
store_get_be64(const unsigned char *p)
{
	uint64_t	 v = 0;
	int		 i;

	for (i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

void
store_be32(unsigned char *p, uint32_t v)
{
	int	 i;

	for (i = 3; i >= 0; i--, v >>= 8)
		p[i] = (unsigned char)(v & 0xff);
}

uint32_t
store_get_be32(const unsigned char *p)
{
	uint32_t	 v = 0;
	int		 i;

	for (i = 0; i < 4; i++)
		v = v << 8 | p[i];
	return v;
}
