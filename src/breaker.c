/*
 * breaker.c: circuit breakers per deployment (provider + upstream model),
 * shared by every process of the gateway.
 *
 * The state lives in one file, DATA_DIR/breakers, that every process maps
 * (MAP_SHARED): a header (magic, version, sizes, boot id, the lock) and a
 * fixed table of BREAKER_SLOTS slots. mod_fcgid runs many one-request
 * processes, lighttpd and spawn-fcgi a few threaded ones, CGI one process
 * per request: all of them meet in the same pages.
 *
 * The lock is a process-shared, ROBUST pthread mutex in the header, not an
 * fcntl lock: fcntl locks belong to a process, so the threads of one
 * lighttpd worker would not exclude each other without a second lock, and
 * every lock and unlock would be two system calls; a robust mutex costs
 * no system call when uncontended, excludes threads and processes alike,
 * and when its holder dies (mod_fcgid ends busy processes with SIGKILL) the
 * kernel hands it to the next locker with EOWNERDEAD, which checks the
 * table and marks it consistent. What a robust mutex cannot survive is a
 * reboot with the lock held (the futex word names a thread of the old
 * boot): the header keeps the boot id and a region of another boot is
 * rebuilt. Locking is bounded (pthread_mutex_timedlock): a holder that is
 * stopped, not dead, costs a request a second and the breaker is passed
 * over (fail open), never a hung worker.
 *
 * The table is bounded. A deployment gets a slot on its first counted
 * attempt; when none is free the least recently used closed slot is
 * reused (its state was "healthy", so little is lost; evictions are
 * counted); when every slot is open or half-open the attempt is not
 * tracked (overflows are counted and logged) and the deployment is served
 * as if closed. A breaker never refuses traffic it cannot account for.
 */
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "alert.h"
#include "breaker.h"
#include "log.h"
#include "plan.h"
#include "provider.h"
#include "upstream.h"

#define MAGIC		"LLMGBRK\0"
#define LAYOUT_VERSION	1
#define HEADER_SIZE	4096
#define BUCKETS		10		/* of the failure-rate window */
#define LOCK_WAIT_MS	1000
#define RETRY_ATTACH_S	10		/* after a failed attach */

const char *const breaker_state_names[BREAKER__MAX] = {
	"closed", "open", "half_open",
};

/* One deployment's breaker, in the shared file: fixed-width fields only. */
struct slot {
	uint64_t	 hash;			/* 0: free */
	char		 provider[BREAKER_PROVIDER_MAX];
	char		 model[BREAKER_MODEL_MAX];
	uint32_t	 state;
	uint32_t	 consec_fail;
	uint32_t	 consec_ok;		/* probe successes, half-open */
	uint32_t	 trips;
	int64_t		 opened_ms;
	int64_t		 next_probe_ms;
	int64_t		 changed_ms;
	int64_t		 used_ms;		/* LRU for eviction */
	uint32_t	 probe_seq;
	uint32_t	 probe_id[BREAKER_PROBES_MAX];	/* 0: free place */
	int64_t		 probe_until[BREAKER_PROBES_MAX];
	int64_t		 window_ms;		/* as last recorded */
	int64_t		 bucket_epoch[BUCKETS];
	uint32_t	 bucket_ok[BUCKETS];
	uint32_t	 bucket_fail[BUCKETS];
	uint64_t	 requests, failures;
	int64_t		 last_latency_ms, avg_latency_ms;	/* -1: none */
	int64_t		 last_error_ms;
	char		 last_error[BREAKER_ERROR_MAX];
};

struct header {
	char		 magic[8];
	uint32_t	 version;
	uint32_t	 header_size;
	uint32_t	 slot_size;
	uint32_t	 nslots;
	uint64_t	 file_size;
	char		 boot_id[40];
	int64_t		 created_ms;
	volatile uint32_t retired;	/* replaced: map the path again */
	uint32_t	 pad;
	uint64_t	 evictions, overflows, dead_owners;
	uint64_t	 lock_timeouts;		/* atomic: counted unlocked */
	pthread_mutex_t	 lock;
};

struct breaker_region {
	struct header	*hdr;
	struct slot	*slots;
	size_t		 size;
	char		*path;
};

_Static_assert(sizeof(struct header) <= HEADER_SIZE, "header too large");

#define FILE_SIZE	(HEADER_SIZE + BREAKER_SLOTS * sizeof(struct slot))

/* --- clock -------------------------------------------------------------- */

static int64_t	(*clock_fn)(void);

void
breaker_set_clock(int64_t (*fn)(void))
{
	clock_fn = fn;
}

int64_t
breaker_now_ms(void)
{
	struct timespec	 ts;

	if (clock_fn != NULL)
		return clock_fn();
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* --- the file ----------------------------------------------------------- */

static void
boot_id(char *buf, size_t len)
{
	FILE	*fp;

	buf[0] = '\0';
	if ((fp = fopen("/proc/sys/kernel/random/boot_id", "r")) != NULL) {
		if (fgets(buf, (int)len, fp) == NULL)
			buf[0] = '\0';
		fclose(fp);
	}
	buf[strcspn(buf, "\n")] = '\0';
}

/* Does the mapping hold a region of this build and this boot? */
static int
header_valid(const struct header *h, size_t size)
{
	char	 boot[40];

	if (size < HEADER_SIZE || memcmp(h->magic, MAGIC, 8) != 0 ||
	    h->version != LAYOUT_VERSION || h->header_size != HEADER_SIZE ||
	    h->slot_size != sizeof(struct slot) ||
	    h->nslots != BREAKER_SLOTS || h->file_size != FILE_SIZE ||
	    size != FILE_SIZE)
		return 0;
	boot_id(boot, sizeof(boot));
	return strncmp(h->boot_id, boot, sizeof(h->boot_id)) == 0;
}

void *
shared_file_map(int fd, const char *path, size_t size, char *err,
    size_t errlen)
{
	void	*m;
	int	 rc;

	/* Like the store: group read-write whatever the umask. */
	(void)fchmod(fd, 0660);
	/* Blocks reserved now: a full disk fails here, not as SIGBUS later. */
	if ((rc = posix_fallocate(fd, 0, (off_t)size)) != 0) {
		snprintf(err, errlen, "cannot size %s: %s", path, strerror(rc));
		return MAP_FAILED;
	}
	m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		snprintf(err, errlen, "cannot map %s: %s", path,
		    strerror(errno));
	return m;
}

/* A fresh region in a new file tmp: space reserved, lock set up. */
static int
create_file(const char *tmp, char *err, size_t errlen)
{
	pthread_mutexattr_t	 ma;
	struct header		*h;
	void			*m;
	int			 fd, rc;

	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660)) ==
	    -1) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	if ((m = shared_file_map(fd, tmp, FILE_SIZE, err, errlen)) ==
	    MAP_FAILED)
		goto fail;
	memset(m, 0, FILE_SIZE);
	h = m;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
	pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
	rc = pthread_mutex_init(&h->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	if (rc != 0) {
		munmap(m, FILE_SIZE);
		snprintf(err, errlen, "cannot set up the lock: %s",
		    strerror(rc));
		goto fail;
	}
	h->version = LAYOUT_VERSION;
	h->header_size = HEADER_SIZE;
	h->slot_size = sizeof(struct slot);
	h->nslots = BREAKER_SLOTS;
	h->file_size = FILE_SIZE;
	boot_id(h->boot_id, sizeof(h->boot_id));
	h->created_ms = breaker_now_ms();
	__sync_synchronize();
	memcpy(h->magic, MAGIC, 8);	/* last: the region is whole */
	munmap(m, FILE_SIZE);
	close(fd);
	return 0;
fail:
	close(fd);
	unlink(tmp);
	return -1;
}

/*
 * Put a fresh region at path: linked when none is there (the first of
 * several processes wins, the others use its file), or renamed over old
 * (a file of another layout or boot, or a lock nobody can recover),
 * whose own mappers of this layout are told to map the path again.
 */
static int
install(const char *path, int old_fd, struct header *old, char *err,
    size_t errlen)
{
	struct stat	 a, b;
	char		 tmp[4096];
	int		 rc = -1;

	if (snprintf(tmp, sizeof(tmp), "%s.new.%ld.%lx", path, (long)getpid(),
	    (unsigned long)pthread_self()) >= (int)sizeof(tmp)) {
		snprintf(err, errlen, "path too long: %s", path);
		return -1;
	}
	if (old_fd == -1) {
		if (create_file(tmp, err, errlen) == -1)
			return -1;
		if (link(tmp, path) == -1 && errno != EEXIST) {
			snprintf(err, errlen, "cannot create %s: %s", path,
			    strerror(errno));
			unlink(tmp);
			return -1;
		}
		unlink(tmp);
		return 0;
	}
	/* One replacer at a time; the path may have moved on meanwhile. */
	if (flock(old_fd, LOCK_EX) == -1) {
		snprintf(err, errlen, "cannot lock %s: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(old_fd, &a) == 0 && stat(path, &b) == 0 &&
	    a.st_ino == b.st_ino && a.st_dev == b.st_dev) {
		if (create_file(tmp, err, errlen) == -1)
			goto out;
		if (rename(tmp, path) == -1) {
			snprintf(err, errlen, "cannot replace %s: %s", path,
			    strerror(errno));
			unlink(tmp);
			goto out;
		}
		if (old != NULL)
			old->retired = 1;
		log_warn("breaker: %s was of another layout, boot or had an "
		    "unrecoverable lock: rebuilt (breaker states reset)", path);
	}
	rc = 0;
out:
	flock(old_fd, LOCK_UN);
	return rc;
}

struct breaker_region *
breaker_region_open(const char *path, char *err, size_t errlen)
{
	struct breaker_region	*r;
	struct header		*h, *old;
	struct stat		 sb;
	void			*m;
	int			 fd, tries;

	for (tries = 0; tries < 4; tries++) {
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
			if (errno != ENOENT) {
				snprintf(err, errlen, "cannot open %s: %s",
				    path, strerror(errno));
				return NULL;
			}
			if (install(path, -1, NULL, err, errlen) == -1)
				return NULL;
			continue;
		}
		if (fstat(fd, &sb) == -1) {
			snprintf(err, errlen, "cannot stat %s: %s", path,
			    strerror(errno));
			close(fd);
			return NULL;
		}
		m = MAP_FAILED;
		if (sb.st_size >= HEADER_SIZE)
			m = mmap(NULL, (size_t)sb.st_size, PROT_READ |
			    PROT_WRITE, MAP_SHARED, fd, 0);
		h = m == MAP_FAILED ? NULL : m;
		if (h != NULL && header_valid(h, (size_t)sb.st_size) &&
		    !h->retired) {
			close(fd);
			if ((r = calloc(1, sizeof(*r))) == NULL ||
			    (r->path = strdup(path)) == NULL) {
				free(r);
				munmap(m, (size_t)sb.st_size);
				snprintf(err, errlen, "out of memory");
				return NULL;
			}
			r->hdr = h;
			r->slots = (struct slot *)((char *)m + HEADER_SIZE);
			r->size = (size_t)sb.st_size;
			return r;
		}
		/* Another layout, boot or a half-made file: replace it. */
		old = h != NULL && memcmp(h->magic, MAGIC, 8) == 0 &&
		    h->version == LAYOUT_VERSION ? h : NULL;
		if (install(path, fd, old, err, errlen) == -1) {
			if (h != NULL)
				munmap(m, (size_t)sb.st_size);
			close(fd);
			return NULL;
		}
		if (h != NULL)
			munmap(m, (size_t)sb.st_size);
		close(fd);
	}
	snprintf(err, errlen, "%s keeps changing under the gateway", path);
	return NULL;
}

void
breaker_region_close(struct breaker_region *r)
{
	if (r == NULL)
		return;
	munmap(r->hdr, r->size);
	free(r->path);
	free(r);
}

/* --- the lock ----------------------------------------------------------- */

/* A slot a dead holder may have left half-written: made sane again. */
static void
repair(struct breaker_region *r)
{
	struct slot	*s;
	size_t		 i;

	for (i = 0; i < BREAKER_SLOTS; i++) {
		s = &r->slots[i];
		s->provider[sizeof(s->provider) - 1] = '\0';
		s->model[sizeof(s->model) - 1] = '\0';
		s->last_error[sizeof(s->last_error) - 1] = '\0';
		if (s->state >= BREAKER__MAX) {
			s->state = BREAKER_CLOSED;
			s->consec_fail = s->consec_ok = 0;
		}
	}
}

int
breaker_region_lock(struct breaker_region *r)
{
	struct timespec	 ts;
	int		 rc;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += LOCK_WAIT_MS / 1000;
	rc = pthread_mutex_timedlock(&r->hdr->lock, &ts);
	if (rc == EOWNERDEAD) {
		/* Its holder died (SIGKILL): check the table, carry on. */
		repair(r);
		r->hdr->dead_owners++;
		pthread_mutex_consistent(&r->hdr->lock);
		log_warn("breaker: took over the lock of a dead process");
		return 0;
	}
	if (rc == ENOTRECOVERABLE) {
		/* A taker died before making it consistent: rebuild. */
		r->hdr->retired = 1;
		log_error("breaker: the lock of %s cannot be recovered; the "
		    "region is rebuilt", r->path);
		return -1;
	}
	if (rc != 0) {
		__atomic_add_fetch(&r->hdr->lock_timeouts, 1, __ATOMIC_RELAXED);
		log_warn("breaker: lock of %s not had in %d ms (%s): breakers "
		    "passed over", r->path, LOCK_WAIT_MS, strerror(rc));
		return -1;
	}
	return 0;
}

void
breaker_region_unlock(struct breaker_region *r)
{
	pthread_mutex_unlock(&r->hdr->lock);
}

/* --- slots -------------------------------------------------------------- */

/* FNV-1a over provider, NUL, model; never 0 (a free slot). */
static uint64_t
deployment_hash(const char *prov, const char *model)
{
	uint64_t	 h = 1469598103934665603ULL;
	const char	*p;

	for (p = prov; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	h *= 1099511628211ULL;
	for (p = model; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ULL;
	return h == 0 ? 1 : h;
}

static int
slot_is(const struct slot *s, const struct breaker_ticket *t)
{
	return s->hash == t->hash &&
	    strncmp(s->provider, t->prov, sizeof(s->provider)) == 0 &&
	    strncmp(s->model, t->model, sizeof(s->model)) == 0;
}

/* The ticket's slot, or NULL: the hint first, then a scan. */
static struct slot *
find(struct breaker_region *r, struct breaker_ticket *t)
{
	size_t	 i;

	if (t->slot >= 0 && t->slot < BREAKER_SLOTS &&
	    slot_is(&r->slots[t->slot], t))
		return &r->slots[t->slot];
	for (i = 0; i < BREAKER_SLOTS; i++)
		if (slot_is(&r->slots[i], t)) {
			t->slot = (int)i;
			return &r->slots[i];
		}
	return NULL;
}

static void
slot_init(struct slot *s, const struct breaker_ticket *t, int64_t now)
{
	memset(s, 0, sizeof(*s));
	s->hash = t->hash;
	snprintf(s->provider, sizeof(s->provider), "%s", t->prov);
	snprintf(s->model, sizeof(s->model), "%s", t->model);
	s->state = BREAKER_CLOSED;
	s->changed_ms = s->used_ms = now;
	s->last_latency_ms = s->avg_latency_ms = -1;
}

/*
 * A slot for the ticket's deployment: a free one, else the least recently
 * used closed one; NULL when every slot is open or half-open.
 */
static struct slot *
claim(struct breaker_region *r, struct breaker_ticket *t, int64_t now)
{
	struct slot	*s, *lru = NULL;
	size_t		 i;

	for (i = 0; i < BREAKER_SLOTS; i++) {
		s = &r->slots[i];
		if (s->hash == 0) {
			lru = s;
			break;
		}
		if (s->state != BREAKER_CLOSED)
			continue;
		/* Healthy slots go first, then the least recently used. */
		if (lru == NULL || (s->consec_fail == 0) >
		    (lru->consec_fail == 0) || ((s->consec_fail == 0) ==
		    (lru->consec_fail == 0) && s->used_ms < lru->used_ms))
			lru = s;
	}
	if (lru == NULL) {
		r->hdr->overflows++;
		return NULL;
	}
	if (lru->hash != 0)
		r->hdr->evictions++;
	slot_init(lru, t, now);
	t->slot = (int)(lru - r->slots);
	return lru;
}

/* Probes still in flight (their lease not run out). */
static uint32_t
probes_live(const struct slot *s, int64_t now)
{
	uint32_t	 n = 0;
	size_t		 i;

	for (i = 0; i < BREAKER_PROBES_MAX; i++)
		if (s->probe_id[i] != 0 && s->probe_until[i] > now)
			n++;
	return n;
}

static void
probes_clear(struct slot *s)
{
	memset(s->probe_id, 0, sizeof(s->probe_id));
	memset(s->probe_until, 0, sizeof(s->probe_until));
}

/* A place for one more probe: its id, or 0 when all are taken. */
static uint32_t
probe_take(struct slot *s, const struct breaker_params *p, int64_t now)
{
	size_t	 i;

	if (probes_live(s, now) >= (uint32_t)p->probes)
		return 0;
	for (i = 0; i < BREAKER_PROBES_MAX; i++)
		if (s->probe_id[i] == 0 || s->probe_until[i] <= now) {
			if (++s->probe_seq == 0)
				s->probe_seq = 1;
			s->probe_id[i] = s->probe_seq;
			s->probe_until[i] = now + p->lease_ms;
			return s->probe_seq;
		}
	return 0;
}

static void
probe_give_back(struct slot *s, uint32_t id)
{
	size_t	 i;

	for (i = 0; id != 0 && i < BREAKER_PROBES_MAX; i++)
		if (s->probe_id[i] == id) {
			s->probe_id[i] = 0;
			s->probe_until[i] = 0;
		}
}

/* The failure-rate window: this moment's bucket, emptied when stale. */
static size_t
bucket(struct slot *s, const struct breaker_params *p, int64_t now)
{
	int64_t	 len = p->window_ms / BUCKETS > 0 ? p->window_ms / BUCKETS : 1;
	int64_t	 epoch = now / len;
	size_t	 i = (size_t)(epoch % BUCKETS);

	if (s->bucket_epoch[i] != epoch) {
		s->bucket_epoch[i] = epoch;
		s->bucket_ok[i] = s->bucket_fail[i] = 0;
	}
	return i;
}

static void
window_totals(const struct slot *s, long window_ms, int64_t now,
    uint32_t *total, uint32_t *failed)
{
	int64_t	 len = window_ms / BUCKETS > 0 ? window_ms / BUCKETS : 1;
	int64_t	 epoch = now / len;
	size_t	 i;

	*total = *failed = 0;
	for (i = 0; i < BUCKETS; i++)
		if (s->bucket_epoch[i] > epoch - BUCKETS &&
		    s->bucket_epoch[i] <= epoch) {
			*total += s->bucket_ok[i] + s->bucket_fail[i];
			*failed += s->bucket_fail[i];
		}
}

static void
window_clear(struct slot *s)
{
	memset(s->bucket_epoch, 0, sizeof(s->bucket_epoch));
	memset(s->bucket_ok, 0, sizeof(s->bucket_ok));
	memset(s->bucket_fail, 0, sizeof(s->bucket_fail));
}

static void
trip(struct slot *s, const struct breaker_params *p, int64_t now)
{
	s->state = BREAKER_OPEN;
	s->opened_ms = s->changed_ms = now;
	s->next_probe_ms = now + p->open_ms;
	s->consec_ok = 0;
	s->trips++;
	probes_clear(s);
}

static void
close_slot(struct slot *s, int64_t now)
{
	s->state = BREAKER_CLOSED;
	s->changed_ms = now;
	s->consec_fail = s->consec_ok = 0;
	s->next_probe_ms = 0;
	probes_clear(s);
	window_clear(s);
}

static long
secs_until(int64_t when, int64_t now)
{
	return when <= now ? 1 : (long)((when - now + 999) / 1000);
}

/* --- the state machine -------------------------------------------------- */

enum breaker_verdict
breaker_region_admit(struct breaker_region *r, const struct breaker_params *p,
    const char *prov, const char *model, struct breaker_ticket *t)
{
	struct slot	*s;
	int64_t		 now = breaker_now_ms();
	int		 probing = 0;

	t->region = r;
	t->p = *p;
	t->verdict = BREAKER_ALLOW;
	t->slot = -1;
	t->probe = 0;
	t->retry_after = 0;
	t->t_ms = now;
	snprintf(t->prov, sizeof(t->prov), "%s", prov);
	snprintf(t->model, sizeof(t->model), "%s", model);
	t->hash = deployment_hash(prov, model);
	if (r == NULL || breaker_region_lock(r) == -1)
		return BREAKER_ALLOW;		/* untracked: fail open */
	if ((s = find(r, t)) == NULL)
		goto out;			/* never failed: closed */
	s->used_ms = now;
	/* Due, or the clock went back by more than open_s: probe now. */
	if (s->state == BREAKER_OPEN && (now >= s->next_probe_ms ||
	    s->next_probe_ms - now > p->open_ms)) {
		s->state = BREAKER_HALF_OPEN;
		s->changed_ms = now;
		s->consec_ok = 0;
		probes_clear(s);
		probing = 1;
	}
	switch (s->state) {
	case BREAKER_OPEN:
		t->verdict = BREAKER_SKIP;
		t->retry_after = secs_until(s->next_probe_ms, now);
		break;
	case BREAKER_HALF_OPEN:
		if ((t->probe = probe_take(s, p, now)) != 0)
			t->verdict = BREAKER_PROBE;
		else {
			t->verdict = BREAKER_SKIP;
			t->retry_after = 1;	/* when a probe reports */
		}
		break;
	default:
		break;
	}
out:
	breaker_region_unlock(r);
	if (probing)
		log_info("breaker: %s/%s half-open: probing", t->prov,
		    t->model);
	return t->verdict;
}

/* A deployment's breaker opened (or opened again after a failed probe). */
static void
open_alert(const struct breaker_ticket *t, const struct breaker_params *p,
    enum breaker_state was, uint32_t consec, const char *error)
{
	struct json_object	*o, *d;
	char			 subject[300], msg[400];

	if (!alert_wanted(ALERT_BREAKER_OPEN) ||
	    (o = json_object_new_object()) == NULL)
		return;
	if ((d = json_object_new_object()) == NULL) {
		json_object_put(o);
		return;
	}
	snprintf(subject, sizeof(subject), "%s/%s", t->prov, t->model);
	snprintf(msg, sizeof(msg), "circuit breaker of %s opened for %ld s: %s",
	    subject, p->open_ms / 1000, error != NULL ? error : "failed");
	json_object_object_add(d, "provider", json_object_new_string(t->prov));
	json_object_object_add(d, "model", json_object_new_string(t->model));
	json_object_object_add(d, "from", json_object_new_string(
	    was == BREAKER_CLOSED ? "closed" : "half_open"));
	json_object_object_add(d, "consecutive_failures",
	    json_object_new_int64(consec));
	json_object_object_add(d, "open_s",
	    json_object_new_int64(p->open_ms / 1000));
	json_object_object_add(d, "error", json_object_new_string(
	    error != NULL ? error : "failed"));
	json_object_object_add(o, "provider", json_object_new_string(t->prov));
	json_object_object_add(o, "message", json_object_new_string(msg));
	json_object_object_add(o, "detail", d);
	alert_emit(ALERT_BREAKER_OPEN, subject, o);
}

int
breaker_region_record(struct breaker_ticket *t, enum breaker_outcome o,
    int64_t latency_ms, const char *error)
{
	struct breaker_region	*r = t->region;
	const struct breaker_params *p = &t->p;
	struct slot		*s;
	int64_t			 now = breaker_now_ms();
	uint32_t		 total, failed, consec = 0;
	enum breaker_state	 was;
	int			 stop = 0, opened = 0, closed = 0, lost = 0;
	size_t			 b;

	if (r == NULL)
		return 0;
	if (r->hdr->retired)
		return t->verdict == BREAKER_PROBE;
	if (breaker_region_lock(r) == -1)
		return t->verdict == BREAKER_PROBE;
	if ((s = find(r, t)) == NULL) {
		if (o == BREAKER_NEUTRAL || (s = claim(r, t, now)) == NULL) {
			lost = o != BREAKER_NEUTRAL;
			stop = t->verdict == BREAKER_PROBE;
			goto out;
		}
	}
	s->used_ms = now;
	s->window_ms = p->window_ms;
	was = s->state;
	if (o != BREAKER_NEUTRAL) {
		s->requests++;
		s->last_latency_ms = latency_ms;
		s->avg_latency_ms = s->avg_latency_ms < 0 ? latency_ms :
		    (s->avg_latency_ms * 7 + latency_ms) / 8;
	}
	if (o == BREAKER_FAILURE) {
		s->failures++;
		s->last_error_ms = now;
		snprintf(s->last_error, sizeof(s->last_error), "%s",
		    error != NULL && *error != '\0' ? error : "failed");
	}
	switch (was) {
	case BREAKER_CLOSED:
		if (o == BREAKER_NEUTRAL)
			break;
		b = bucket(s, p, now);
		if (o == BREAKER_SUCCESS) {
			s->consec_fail = 0;
			s->bucket_ok[b]++;
			break;
		}
		s->consec_fail++;
		s->bucket_fail[b]++;
		window_totals(s, p->window_ms, now, &total, &failed);
		if (s->consec_fail >= (uint32_t)p->failures ||
		    (p->failure_rate > 0 &&
		    total >= (uint32_t)p->min_requests &&
		    (uint64_t)failed * 100 >= (uint64_t)p->failure_rate *
		    total)) {
			consec = s->consec_fail;
			trip(s, p, now);
			opened = 1;
			stop = 1;
		}
		break;
	case BREAKER_OPEN:
		/* Admitted before it opened: counted above, nothing more. */
		stop = 1;
		break;
	case BREAKER_HALF_OPEN:
		stop = 1;
		if (t->verdict != BREAKER_PROBE)
			break;		/* only probes decide */
		probe_give_back(s, t->probe);
		if (o == BREAKER_SUCCESS) {
			if (++s->consec_ok >= (uint32_t)p->successes) {
				close_slot(s, now);
				closed = 1;
			}
		} else if (o == BREAKER_FAILURE) {
			trip(s, p, now);
			opened = 1;
		}
		break;
	default:
		break;
	}
	t->probe = 0;
out:
	breaker_region_unlock(r);
	if (opened)
		open_alert(t, p, was, consec, error);
	if (opened && was == BREAKER_CLOSED)
		log_warn("breaker: %s/%s opened after %u failure(s) in a row "
		    "for %ld s: %s", t->prov, t->model, consec,
		    p->open_ms / 1000, error != NULL ? error : "failed");
	else if (opened)
		log_warn("breaker: %s/%s probe failed: open again for %ld s: "
		    "%s", t->prov, t->model, p->open_ms / 1000,
		    error != NULL ? error : "failed");
	if (closed)
		log_info("breaker: %s/%s closed: %ld probe(s) succeeded",
		    t->prov, t->model, p->successes);
	if (lost)
		log_warn("breaker: every one of %d slots is open: %s/%s is not "
		    "tracked", BREAKER_SLOTS, t->prov, t->model);
	return stop;
}

static void
info_of(const struct slot *s, int64_t now, struct breaker_info *in)
{
	memset(in, 0, sizeof(*in));
	memcpy(in->provider, s->provider, sizeof(in->provider));
	memcpy(in->model, s->model, sizeof(in->model));
	in->provider[sizeof(in->provider) - 1] = '\0';
	in->model[sizeof(in->model) - 1] = '\0';
	in->state = s->state < BREAKER__MAX ? (enum breaker_state)s->state :
	    BREAKER_CLOSED;
	/* Open past its time: the next request probes, so half-open. */
	if (in->state == BREAKER_OPEN && now >= s->next_probe_ms)
		in->state = BREAKER_HALF_OPEN;
	in->consecutive_failures = s->consec_fail;
	in->consecutive_successes = s->consec_ok;
	in->probes_in_flight = s->state == BREAKER_HALF_OPEN ?
	    probes_live(s, now) : 0;
	in->trips = s->trips;
	in->requests = s->requests;
	in->failures = s->failures;
	window_totals(s, s->window_ms > 0 ? s->window_ms : 60000, now,
	    &in->window_requests, &in->window_failures);
	in->opened_ms = s->opened_ms;
	in->next_probe_ms = s->state == BREAKER_OPEN ? s->next_probe_ms : 0;
	in->changed_ms = s->changed_ms;
	in->used_ms = s->used_ms;
	in->last_latency_ms = s->last_latency_ms;
	in->avg_latency_ms = s->avg_latency_ms;
	in->last_error_ms = s->last_error_ms;
	memcpy(in->last_error, s->last_error, sizeof(in->last_error));
	in->last_error[sizeof(in->last_error) - 1] = '\0';
}

size_t
breaker_region_list(struct breaker_region *r, struct breaker_info *out,
    size_t max, struct breaker_stats *st)
{
	int64_t	 now = breaker_now_ms();
	size_t	 i, n = 0;

	memset(st, 0, sizeof(*st));
	st->slots = BREAKER_SLOTS;
	if (r == NULL || breaker_region_lock(r) == -1)
		return 0;
	for (i = 0; i < BREAKER_SLOTS; i++) {
		if (r->slots[i].hash == 0)
			continue;
		st->used++;
		if (n < max)
			info_of(&r->slots[i], now, &out[n++]);
	}
	st->evictions = r->hdr->evictions;
	st->overflows = r->hdr->overflows;
	st->dead_owners = r->hdr->dead_owners;
	st->lock_timeouts = __atomic_load_n(&r->hdr->lock_timeouts,
	    __ATOMIC_RELAXED);
	breaker_region_unlock(r);
	return n;
}

/* Does "PROVIDER/MODEL" or "PROVIDER" name slot s? */
static int
names(const struct slot *s, const char *which)
{
	size_t	 n = strnlen(s->provider, sizeof(s->provider));

	if (strncmp(which, s->provider, n) != 0)
		return 0;
	if (which[n] == '\0')
		return 1;
	return which[n] == '/' && strncmp(which + n + 1, s->model,
	    sizeof(s->model)) == 0;
}

int
breaker_region_reset(struct breaker_region *r, const char *which)
{
	int64_t	 now = breaker_now_ms();
	size_t	 i;
	int	 n = 0;

	if (r == NULL || breaker_region_lock(r) == -1)
		return -1;
	for (i = 0; i < BREAKER_SLOTS; i++) {
		if (r->slots[i].hash == 0 || (which != NULL &&
		    !names(&r->slots[i], which)))
			continue;
		close_slot(&r->slots[i], now);
		n++;
	}
	breaker_region_unlock(r);
	return n;
}

/* --- the process's region ----------------------------------------------- */

static pthread_mutex_t		 proc_mu = PTHREAD_MUTEX_INITIALIZER;
static struct breaker_region	*proc_region;
static time_t			 proc_failed;	/* last failed attach */

/*
 * Attached on first use, so that no server start-up code needs to know.
 * A region that was replaced (retired) is mapped again; the old mapping
 * stays (other threads may still read it): a rare, bounded leak.
 */
struct breaker_region *
breaker_process_region(const struct config *cfg)
{
	struct breaker_region	*r;
	char			 path[4096], err[512];
	time_t			 now;

	r = __atomic_load_n(&proc_region, __ATOMIC_ACQUIRE);
	if (r != NULL && !r->hdr->retired)
		return r;
	pthread_mutex_lock(&proc_mu);
	if ((r = proc_region) != NULL && !r->hdr->retired)
		goto out;
	now = time(NULL);
	if (r == NULL && proc_failed != 0 && now - proc_failed < RETRY_ATTACH_S)
		goto out;
	if (snprintf(path, sizeof(path), "%s/%s", cfg->gw.data_dir,
	    BREAKER_FILE) >= (int)sizeof(path)) {
		r = NULL;
		goto out;
	}
	if ((r = breaker_region_open(path, err, sizeof(err))) == NULL) {
		proc_failed = now;
		log_error("breaker: %s; breakers are off in this process for "
		    "%d s", err, RETRY_ATTACH_S);
		r = proc_region;	/* a retired one still answers */
		goto out;
	}
	__atomic_store_n(&proc_region, r, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&proc_mu);
	return r;
}

/* --- what the routes call ----------------------------------------------- */

void
breaker_params_of(const struct provider_cfg *pc, struct breaker_params *p)
{
	const struct breaker_cfg	*b = &pc->breaker;

	p->failures = b->failures > 0 ? b->failures : 5;
	p->failure_rate = b->failure_rate >= 0 ? b->failure_rate : 0;
	p->window_ms = (b->window > 0 ? b->window : 60) * 1000;
	p->min_requests = b->min_requests > 0 ? b->min_requests : 20;
	p->open_ms = (b->open > 0 ? b->open : 60) * 1000;
	p->probes = b->probes > 0 ? b->probes : 1;
	if (p->probes > BREAKER_PROBES_MAX)
		p->probes = BREAKER_PROBES_MAX;
	p->successes = b->successes > 0 ? b->successes : 3;
	/* A probe that never reports (its process killed) frees its place
	 * once it would have timed out waiting for the first byte. */
	p->lease_ms = pc->connect_timeout + pc->first_byte_timeout * 1000 +
	    5000;
}

enum breaker_verdict
breaker_admit(const struct config *cfg, const struct candidate *c,
    struct breaker_ticket *t)
{
	struct breaker_params	 p;

	memset(t, 0, sizeof(*t));
	t->slot = -1;
	t->provider = c->provider;
	if (!c->provider->breaker.enabled)
		return t->verdict = BREAKER_ALLOW;
	breaker_params_of(c->provider, &p);
	breaker_region_admit(breaker_process_region(cfg), &p,
	    c->provider->name, c->upstream, t);
	t->provider = c->provider;
	return t->verdict;
}

int
breaker_record(struct breaker_ticket *t, enum breaker_outcome o,
    double first_byte_ms, const char *error)
{
	char			 err[BREAKER_ERROR_MAX];
	int64_t			 lat;

	if (t->region == NULL)
		return 0;
	snprintf(err, sizeof(err), "%s", error != NULL ? error : "");
	provider_redact(err, sizeof(err), t->provider);
	lat = first_byte_ms > 0 ? (int64_t)first_byte_ms :
	    breaker_now_ms() - t->t_ms;
	t->t_ms = breaker_now_ms();	/* the next attempt's start, about */
	return breaker_region_record(t, o, lat, error != NULL ? err : NULL);
}

void
breaker_refusal(const struct breaker_ticket *t, struct provider_error *e,
    int *status, long *retry_after)
{
	long	 ra = t->retry_after > 0 ? t->retry_after : 1;

	/* Several open candidates: the soonest probe is the client's wait. */
	if (*status == 503 && strcmp(e->code, "circuit_open") == 0 &&
	    *retry_after > 0 && *retry_after < ra)
		ra = *retry_after;
	*status = 503;
	*retry_after = ra;
	provider_error_set(e, "upstream_error", "circuit_open", "every "
	    "deployment of the model is unavailable (circuit breaker open: "
	    "recent failures); the next probe in %ld s", ra);
}
