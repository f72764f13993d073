/*
 * store.c: the Berkeley DB environment in data_dir, opened by every
 * gateway process and by llmgate-admin at once (PLATFORM.md section 4):
 * locking, logging and transactions; no DB_REGISTER or DB_RECOVER in
 * workers, a watchdog thread that runs failchk every second so that a
 * process killed with SIGKILL leaves no lock behind, and checkpoints;
 * and a thread for periodic chores (reclaiming a dead process's
 * reservations) that may wait on such a lock until failchk frees it.
 */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <db.h>

#include "log.h"
#include "store.h"

#define TXN_TRIES	200	/* deadlock retries before giving up */
#define KEY_MAX		512
#define SCHEMA		"1"

static const char *const db_files[SDB__MAX] = {
	"keys.db", "keyhash.db", "balance.db", "spend.db", "reserve.db",
	"rate.db", "usage.db", "ledger.db", "meta.db",
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
	pthread_t	 watchdog;
	int		 watching;
	pthread_t	 chore;		/* store_every's thread */
	int		 choring;
	store_chore_fn	 chore_fn;
	void		*chore_arg;
	long		 chore_s;
	pthread_mutex_t	 lock;
	pthread_cond_t	 cond;
	int		 stopping;
};

struct store_txn {
	struct store	*s;
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

static void
on_event(DB_ENV *env, u_int32_t event, void *info)
{
	struct store	*s = env->app_private;

	(void)info;
	if (event == DB_EVENT_PANIC && s != NULL) {
		s->panicked = 1;
		log_error("berkeley db: the environment panicked; the store "
		    "needs `llmgate-admin recover` with the gateway stopped");
	}
}

/* failchk asks whether the thread (process) that held something lives. */
static int
is_alive(DB_ENV *env, pid_t pid, db_threadid_t tid, u_int32_t flags)
{
	(void)env;
	(void)tid;
	(void)flags;
	return kill(pid, 0) == 0 || errno == EPERM;
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
		s->panicked = 1;
		seterr("%s: the store needs recovery (llmgate-admin recover)",
		    what);
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

/* Every second: failchk; every checkpoint_s: a checkpoint. */
static void *
watchdog_main(void *arg)
{
	struct store	*s = arg;
	struct timespec	 until;
	time_t		 last_ckp = time(NULL);
	int		 rc;

	pthread_mutex_lock(&s->lock);
	while (!s->stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&s->cond, &s->lock, &until);
		if (s->stopping)
			break;
		pthread_mutex_unlock(&s->lock);
		if (s->panicked) {
			/* The process exits after its request; nothing to do. */
			pthread_mutex_lock(&s->lock);
			continue;
		}
		rc = s->env->failchk(s->env, 0);
		/* 5.3.28 answers EBUSY once after a death; the next call works. */
		if (rc == DB_RUNRECOVERY) {
			s->panicked = 1;
			log_error("store: failchk: a process died inside Berkeley "
			    "DB; stop the gateway and run llmgate-admin recover");
		} else if (rc != 0 && rc != EBUSY)
			log_warn("store: failchk: %s", db_strerror(rc));
		if (time(NULL) - last_ckp >= s->checkpoint_s) {
			last_ckp = time(NULL);
			if ((rc = s->env->txn_checkpoint(s->env, 0, 0, 0)) != 0)
				log_warn("store: checkpoint: %s",
				    db_strerror(rc));
		}
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
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
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += wait_s;
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
	rc = db->open(db, NULL, db_files[i], NULL, DB_BTREE,
	    DB_CREATE | DB_AUTO_COMMIT | DB_THREAD, 0660);
	if (rc == EACCES || rc == EROFS) {
		/* Keep serving what can be read; writes go to the fallback. */
		db->close(db, 0);
		if ((rc = db_create(&db, s->env, 0)) != 0)
			goto fail;
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

static struct store *
open_locked(const char *dir, enum store_mode mode, int nosync,
    long checkpoint_s, char *err, size_t errlen)
{
	struct store	*s;
	u_int32_t	 flags;
	int		 rc, i;

	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->mode = mode;
	s->checkpoint_s = checkpoint_s > 0 ? checkpoint_s : 30;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
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
	s->env->set_thread_count(s->env, 128);
	s->env->set_isalive(s->env, is_alive);
	s->env->set_cachesize(s->env, 0, 4 * 1024 * 1024, 1);
	/*
	 * The defaults (1000 locks) run out under a report that reads a few
	 * thousand pages, and an environment out of lock memory refuses every
	 * later open until recovery. These take effect when the environment
	 * is created (llmgate-admin recover recreates it).
	 */
	s->env->set_lk_max_locks(s->env, 20000);
	s->env->set_lk_max_objects(s->env, 20000);
	s->env->set_lk_max_lockers(s->env, 4000);
	s->env->log_set_config(s->env, DB_LOG_AUTO_REMOVE, 1);
	if (nosync)
		s->env->set_flags(s->env, DB_TXN_WRITE_NOSYNC, 1);
	flags = DB_CREATE | DB_INIT_LOCK | DB_INIT_LOG | DB_INIT_MPOOL |
	    DB_INIT_TXN | DB_THREAD;
	if (mode == STORE_RECOVER)
		flags |= DB_RECOVER;
	if ((rc = s->env->open(s->env, dir, flags, 0660)) != 0) {
		snprintf(err, errlen, "cannot open the store in %s: %s%s", dir,
		    db_strerror(rc), rc == DB_RUNRECOVERY ? " (stop the "
		    "gateway and run llmgate-admin recover)" : "");
		s->env->close(s->env, 0);
		free(s);
		return NULL;
	}
	/* A process that died holding locks is cleaned up before we start. */
	if (mode != STORE_RECOVER &&
	    s->env->failchk(s->env, 0) == DB_RUNRECOVERY) {
		snprintf(err, errlen, "the store needs recovery: stop the "
		    "gateway and run llmgate-admin recover");
		goto fail;
	}
	for (i = 0; i < SDB__MAX; i++)
		if (open_db(s, (enum store_db)i, err, errlen) == -1)
			goto fail;
	if (open_sequence(s, err, errlen) == -1 ||
	    check_schema(s, err, errlen) == -1)
		goto fail;
	if (mode == STORE_WORKER) {
		if (pthread_create(&s->watchdog, NULL, watchdog_main, s) != 0) {
			snprintf(err, errlen, "cannot start the store watchdog");
			goto fail;
		}
		s->watching = 1;
	}
	return s;
fail:
	store_close(s);
	return NULL;
}

/*
 * Processes that start together (mod_fcgid spawning several on the first
 * request) would race to create the environment: opens take turns on an
 * fcntl lock on data_dir/open.lock, held only while opening.
 */
struct store *
store_open(const char *dir, enum store_mode mode, int nosync,
    long checkpoint_s, char *err, size_t errlen)
{
	struct store	*s;
	struct flock	 fl;
	char		 path[4096];
	int		 fd;

	/* Group-writable files: the web server user and admins share them. */
	umask(007);
	if ((size_t)snprintf(path, sizeof(path), "%s/open.lock", dir) >=
	    sizeof(path)) {
		snprintf(err, errlen, "data_dir is too long");
		return NULL;
	}
	if ((fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0660)) == -1) {
		snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(errno));
		return NULL;
	}
	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	while (fcntl(fd, F_SETLKW, &fl) == -1 && errno == EINTR)
		;
	s = open_locked(dir, mode, nosync, checkpoint_s, err, errlen);
	close(fd);	/* releases the lock */
	return s;
}

void
store_close(struct store *s)
{
	int	 i;

	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->stopping = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	/* The chore first: the watchdog frees what it may be waiting on. */
	if (s->choring)
		pthread_join(s->chore, NULL);
	if (s->watching)
		pthread_join(s->watchdog, NULL);
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
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->cond);
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
	int	 rc;

	rc = s->env->failchk(s->env, 0);
	if (rc == EBUSY)
		rc = s->env->failchk(s->env, 0);
	return map(s, NULL, rc == EBUSY ? 0 : rc, "failchk");
}

int
store_checkpoint(struct store *s)
{
	return map(s, NULL, s->env->txn_checkpoint(s->env, 0, 0, 0),
	    "checkpoint");
}

/* Back off a little longer after each lost deadlock, with jitter. */
static void
backoff(int try)
{
	long	 us = 100L << (try < 8 ? try : 8);

	usleep((useconds_t)(us + random() % us));
}

static int
run_txn(struct store *s, store_txn_fn fn, void *arg, u_int32_t flags)
{
	struct store_txn	 t;
	int			 try, rc, crc;

	if (s->panicked) {
		seterr("the store needs recovery (llmgate-admin recover)");
		return STORE_PANIC;
	}
	for (try = 0; try < TXN_TRIES; try++) {
		memset(&t, 0, sizeof(t));
		t.s = s;
		if ((crc = s->env->txn_begin(s->env, NULL, &t.txn, flags)) != 0)
			return map(s, NULL, crc, "txn_begin");
		rc = fn(&t, arg);
		if (rc < 0 || t.deadlock) {
			t.txn->abort(t.txn);
			if (t.deadlock || rc == STORE_DEADLOCK) {
				backoff(try);
				continue;
			}
			return rc;
		}
		if ((crc = t.txn->commit(t.txn, 0)) != 0)
			return map(s, NULL, crc, "commit");
		return rc;
	}
	seterr("gave up after %d deadlocks", TXN_TRIES);
	return STORE_ERROR;
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

	dbt_in(&key, k, klen);
	dbt_in(&val, v, vlen);
	return map(t->s, t, t->s->db[i]->put(t->s->db[i], t->txn, &key, &val,
	    flags), db_files[i]);
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
	int		 rc;

	if ((rc = s->seq->get(s->seq, NULL, 1, &id, DB_TXN_NOSYNC)) != 0) {
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
