/*
 * metrics.c: Prometheus counters shared by every process of the gateway.
 *
 * mod_fcgid runs many one-request processes, lighttpd and spawn-fcgi a
 * few threaded ones, and a scrape reaches one of them: the counters live
 * in one file, DATA_DIR/metrics, that every process maps (MAP_SHARED,
 * blocks reserved, group read-write; see shared_file_map). It holds a
 * header, a fixed table of METRICS_SERIES series and a table of
 * METRICS_PROCS process slots.
 *
 * No lock. A series is found by the 64-bit hash of its labels in an open
 * addressed table: a writer claims a free slot by compare-and-swap of the
 * hash, writes the labels and then marks the slot ready; the exposition
 * shows ready slots only. A writer killed between the claim and the mark
 * leaves labels that the next writer of the same hash writes again (the
 * same bytes) and marks. Every counter is a 64-bit atomic add, so that a
 * process killed anywhere loses at most the counts of the request it was
 * recording, and concurrent writers never lose one. When every slot is
 * taken, a label set no slot holds is counted in the reserved slot 0,
 * labelled "other", and llmgate_metrics_series_overflow_total says so.
 * (Two label sets of the same 64-bit hash would share a slot: odds of
 * about 2^-45 for a full table, accepted.)
 *
 * Counters survive restarts of the gateway and of the machine (the file
 * stays); they start again from zero only when the file is removed or its
 * layout changes (a new build): Prometheus' rate() takes such a reset in
 * its stride. Histograms keep a count per bucket and no separate total,
 * so that a scrape during an update still sees _count equal to the +Inf
 * bucket.
 *
 * Gauges of things in progress (worker threads, busy ones, model
 * requests in flight) cannot be shared counters: a process killed with
 * SIGKILL in the middle of a request could not take its +1 back. Each
 * process owns a slot, claimed by compare-and-swap of one word holding
 * its pid and its start time (from /proc, so that a reused pid is not
 * taken for the old process), and only it writes its gauges. A scrape
 * sums the slots of living owners and frees the slots of dead ones: a
 * killed process's requests drop out at the next scrape. A claimer writes
 * its gauges before it shows the slot (the owner word's low bit), so a
 * scrape never sums a dead owner's leftovers.
 */
#include <sys/mman.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "account.h"
#include "billing.h"
#include "breaker.h"
#include "buf.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "metrics.h"
#include "policy.h"
#include "store.h"
#include "usage.h"

#define MAGIC		"LLMGMET\0"
#define LAYOUT_VERSION	1
#define HEADER_SIZE	4096
#define RETRY_ATTACH_S	10
#define LABEL_MAX	128

/* Upper bounds of the histogram buckets, ms. */
static const uint32_t bucket_ms[METRICS_BUCKETS] = {
	50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 120000,
	300000,
};

/* One label set's counters, in the shared file. */
struct series {
	uint64_t	 hash;		/* 0: free */
	uint32_t	 ready;		/* labels written */
	uint16_t	 status;
	uint16_t	 pad;
	char		 route[16];
	char		 provider[64];
	char		 model[LABEL_MAX];
	char		 agent[64];
	char		 key[64];	/* "" unless metrics_key_label */
	uint64_t	 requests;
	uint64_t	 errors;	/* status 4xx, 5xx */
	uint64_t	 ratelimited;	/* 429 of the gateway's own limits */
	uint64_t	 prompt, completion, cached;
	uint64_t	 cost;		/* micro-USD */
	uint64_t	 dur[METRICS_BUCKETS + 1];	/* last: +Inf */
	uint64_t	 dur_ms;	/* the sum */
	uint64_t	 ttft[METRICS_BUCKETS + 1];
	uint64_t	 ttft_ms;
};

/* One process's gauges; only its owner writes them. */
struct proc {
	uint64_t	 owner;		/* pid << 32 | start time; 0: free */
	int64_t		 workers, busy, inflight;
};

struct header {
	char		 magic[8];
	uint32_t	 version;
	uint32_t	 header_size;
	uint32_t	 series_size, nseries;
	uint32_t	 proc_size, nprocs;
	uint64_t	 file_size;
	int64_t		 created_s;
	uint64_t	 overflows;	/* records folded into "other" */
	uint64_t	 proc_overflows;	/* processes without a slot */
	/*
	 * Guardrail findings by detector and action, once per request per
	 * detector (the answer's findings too). In the header's spare room,
	 * which a file made before them holds as zeros: no new layout.
	 */
	uint64_t	 security[DET__MAX][POLICY__MAX];
	/* The response cache's results (enum metrics_cache); spare room too. */
	uint64_t	 rcache[METRICS_CACHE__MAX];
	/* The semantic cache's lookups (enum metrics_semantic); spare room. */
	uint64_t	 semantic[METRICS_SEMANTIC__MAX];
};

_Static_assert(sizeof(struct header) <= HEADER_SIZE, "header too large");

#define FILE_SIZE	(HEADER_SIZE + METRICS_SERIES * sizeof(struct series) + \
			    METRICS_PROCS * sizeof(struct proc))

struct region {
	struct header	*hdr;
	struct series	*series;
	struct proc	*procs;
};

static pthread_mutex_t	 mu = PTHREAD_MUTEX_INITIALIZER;
static char		*data_dir;	/* NULL: off */
static int		 key_label;
static int		 may_create;
static struct region	*region;	/* attached, or NULL */
static time_t		 failed_at;
static struct proc	*my_proc;	/* this process's slot, or NULL */
static pid_t		 my_pid;	/* whose my_proc is (fork: another) */
static int64_t		 local_workers, local_busy, local_inflight;

/* --- the file ----------------------------------------------------------- */

static int
header_valid(const struct header *h, size_t size)
{
	return size == FILE_SIZE && memcmp(h->magic, MAGIC, 8) == 0 &&
	    h->version == LAYOUT_VERSION && h->header_size == HEADER_SIZE &&
	    h->series_size == sizeof(struct series) &&
	    h->nseries == METRICS_SERIES && h->proc_size ==
	    sizeof(struct proc) && h->nprocs == METRICS_PROCS &&
	    h->file_size == FILE_SIZE;
}

/* A fresh file at tmp with a whole header; 0 or -1. */
static int
create_file(const char *tmp, char *err, size_t errlen)
{
	struct header	*h;
	struct series	*s;
	void		*m;
	int		 fd;

	if ((fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0660)) ==
	    -1) {
		snprintf(err, errlen, "cannot create %s: %s", tmp,
		    strerror(errno));
		return -1;
	}
	if ((m = shared_file_map(fd, tmp, FILE_SIZE, err, errlen)) ==
	    MAP_FAILED) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	h = m;
	h->version = LAYOUT_VERSION;
	h->header_size = HEADER_SIZE;
	h->series_size = sizeof(struct series);
	h->nseries = METRICS_SERIES;
	h->proc_size = sizeof(struct proc);
	h->nprocs = METRICS_PROCS;
	h->file_size = FILE_SIZE;
	h->created_s = time(NULL);
	/* Slot 0: where label sets go when the table is full. */
	s = (struct series *)((char *)m + HEADER_SIZE);
	s->hash = 1;
	snprintf(s->route, sizeof(s->route), "other");
	snprintf(s->provider, sizeof(s->provider), "other");
	snprintf(s->model, sizeof(s->model), "other");
	snprintf(s->agent, sizeof(s->agent), "other");
	snprintf(s->key, sizeof(s->key), "other");
	s->ready = 1;
	__sync_synchronize();
	memcpy(h->magic, MAGIC, 8);
	munmap(m, FILE_SIZE);
	close(fd);
	return 0;
}

/*
 * Put a fresh file at path: linked when none is there (the first of
 * several processes wins), renamed over one of another layout.
 */
static int
install(const char *path, int replace, char *err, size_t errlen)
{
	char	 tmp[4200];

	snprintf(tmp, sizeof(tmp), "%s.new.%ld.%lx", path, (long)getpid(),
	    (unsigned long)pthread_self());
	if (create_file(tmp, err, errlen) == -1)
		return -1;
	if (replace) {
		if (rename(tmp, path) == -1) {
			snprintf(err, errlen, "cannot replace %s: %s", path,
			    strerror(errno));
			unlink(tmp);
			return -1;
		}
		log_warn("metrics: %s was of another layout: rebuilt (the "
		    "counters start again from zero)", path);
		return 0;
	}
	if (link(tmp, path) == -1 && errno != EEXIST) {
		snprintf(err, errlen, "cannot create %s: %s", path,
		    strerror(errno));
		unlink(tmp);
		return -1;
	}
	unlink(tmp);
	return 0;
}

static struct region *
region_open(const char *path, char *err, size_t errlen)
{
	struct region	*r;
	struct stat	 sb;
	void		*m;
	int		 fd, tries;

	for (tries = 0; tries < 4; tries++) {
		if ((fd = open(path, O_RDWR | O_CLOEXEC)) == -1) {
			if (errno != ENOENT || !may_create) {
				snprintf(err, errlen, "cannot open %s: %s",
				    path, strerror(errno));
				return NULL;
			}
			if (install(path, 0, err, errlen) == -1)
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
		if ((size_t)sb.st_size == FILE_SIZE)
			m = mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE,
			    MAP_SHARED, fd, 0);
		close(fd);
		if (m != MAP_FAILED && header_valid(m, (size_t)sb.st_size)) {
			if ((r = calloc(1, sizeof(*r))) == NULL) {
				munmap(m, FILE_SIZE);
				snprintf(err, errlen, "out of memory");
				return NULL;
			}
			r->hdr = m;
			r->series = (struct series *)((char *)m + HEADER_SIZE);
			r->procs = (struct proc *)(r->series + METRICS_SERIES);
			return r;
		}
		if (m != MAP_FAILED)
			munmap(m, FILE_SIZE);
		if (!may_create) {
			snprintf(err, errlen, "%s is of another layout", path);
			return NULL;
		}
		if (install(path, 1, err, errlen) == -1)
			return NULL;
	}
	snprintf(err, errlen, "%s keeps changing", path);
	return NULL;
}

/* The process's region, attached once (retried every RETRY_ATTACH_S). */
static struct region *
attached(void)
{
	struct region	*r = __atomic_load_n(&region, __ATOMIC_ACQUIRE);
	char		 path[4096], err[4400];
	time_t		 now;

	if (r != NULL || data_dir == NULL)
		return r;
	pthread_mutex_lock(&mu);
	if ((r = region) != NULL)
		goto out;
	now = time(NULL);
	if (failed_at != 0 && now - failed_at < RETRY_ATTACH_S)
		goto out;
	if (snprintf(path, sizeof(path), "%s/%s", data_dir, METRICS_FILE) >=
	    (int)sizeof(path)) {
		failed_at = now;
		goto out;
	}
	if ((r = region_open(path, err, sizeof(err))) == NULL) {
		failed_at = now;
		log_error("metrics: %s; this process counts nothing for %d s",
		    err, RETRY_ATTACH_S);
		goto out;
	}
	__atomic_store_n(&region, r, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&mu);
	return r;
}

void
metrics_init(const struct config *cfg, int create)
{
	pthread_mutex_lock(&mu);
	may_create = create;
	free(data_dir);
	data_dir = cfg != NULL && cfg->gw.data_dir != NULL ?
	    strdup(cfg->gw.data_dir) : NULL;
	key_label = cfg != NULL && cfg->gw.metrics_key_label;
	pthread_mutex_unlock(&mu);
}

/* --- series ------------------------------------------------------------- */

static uint64_t
fnv(uint64_t h, const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n && s[i] != '\0'; i++)
		h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
	return (h ^ 0xff) * 1099511628211ULL;	/* a separator */
}

/* Labels of a row: the model that answered, else the one asked for. */
static void
labels_of(const struct usage_row *u, struct series *l)
{
	memset(l, 0, sizeof(*l));
	snprintf(l->route, sizeof(l->route), "%s", u->route);
	snprintf(l->provider, sizeof(l->provider), "%.*s",
	    (int)strnlen(u->provider, sizeof(u->provider)), u->provider);
	snprintf(l->model, sizeof(l->model), "%.*s",
	    (int)strnlen(u->served[0] != '\0' ? u->served : u->requested,
	    sizeof(u->served)), u->served[0] != '\0' ? u->served :
	    u->requested);
	snprintf(l->agent, sizeof(l->agent), "%.*s",
	    (int)strnlen(u->agent, sizeof(u->agent)), u->agent);
	if (key_label)
		snprintf(l->key, sizeof(l->key), "%.*s",
		    (int)strnlen(u->key_name, sizeof(u->key_name)),
		    u->key_name);
	l->status = u->status;
	l->hash = fnv(1469598103934665603ULL, l->route, sizeof(l->route));
	l->hash = fnv(l->hash, l->provider, sizeof(l->provider));
	l->hash = fnv(l->hash, l->model, sizeof(l->model));
	l->hash = fnv(l->hash, l->agent, sizeof(l->agent));
	l->hash = fnv(l->hash, l->key, sizeof(l->key));
	l->hash = (l->hash ^ l->status) * 1099511628211ULL;
	if (l->hash <= 1)	/* 0: free, 1: "other" */
		l->hash += 2;
}

/* The slot of label set l: found, claimed, or slot 0 when full. */
static struct series *
series_slot(struct region *r, const struct series *l)
{
	struct series	*s;
	uint64_t	 want;
	size_t		 i, at = 1 + l->hash % (METRICS_SERIES - 1);

	for (i = 0; i < METRICS_SERIES - 1; i++) {
		s = &r->series[at];
		want = 0;
		if (__atomic_load_n(&s->hash, __ATOMIC_ACQUIRE) == l->hash ||
		    __atomic_compare_exchange_n(&s->hash, &want, l->hash, 0,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE) || want == l->hash) {
			if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE)) {
				memcpy(s->route, l->route, sizeof(s->route));
				memcpy(s->provider, l->provider,
				    sizeof(s->provider));
				memcpy(s->model, l->model, sizeof(s->model));
				memcpy(s->agent, l->agent, sizeof(s->agent));
				memcpy(s->key, l->key, sizeof(s->key));
				s->status = l->status;
				__atomic_store_n(&s->ready, 1,
				    __ATOMIC_RELEASE);
			}
			return s;
		}
		if (++at == METRICS_SERIES)
			at = 1;
	}
	__atomic_fetch_add(&r->hdr->overflows, 1, __ATOMIC_RELAXED);
	return &r->series[0];
}

static void
add(uint64_t *p, uint64_t n)
{
	if (n != 0)
		__atomic_fetch_add(p, n, __ATOMIC_RELAXED);
}

static void
observe(uint64_t *buckets, uint64_t *sum, int32_t ms)
{
	size_t	 b;

	if (ms < 0)
		ms = 0;
	for (b = 0; b < METRICS_BUCKETS && (uint32_t)ms > bucket_ms[b]; b++)
		;
	add(sum, (uint64_t)ms);
	add(&buckets[b], 1);
}

/*
 * The row's guardrail findings: each kind found in the request under the
 * action its policy took, each found in the answer under the strongest
 * action taken on the answer.
 */
static void
security(struct region *r, const struct usage_row *u)
{
	unsigned	 a, out = 0;
	int		 k;

	for (a = 0; a < POLICY__MAX; a++)
		if (u->guard_out_acted & (1u << a))
			out = a;
	for (k = 0; k < DET__MAX; k++) {
		if (u->guard_found & DET_BIT(k)) {
			a = USAGE_GUARD_ACTION(u, k) < POLICY__MAX ?
			    USAGE_GUARD_ACTION(u, k) : POLICY_LOG;
			add(&r->hdr->security[k][a], 1);
		}
		if (u->guard_out_found & DET_BIT(k))
			add(&r->hdr->security[k][out], 1);
	}
}

void
metrics_record(const struct usage_row *u)
{
	struct region	*r = attached();
	struct series	 l, *s;

	if (r == NULL)
		return;
	labels_of(u, &l);
	s = series_slot(r, &l);
	add(&s->requests, 1);
	if (u->status >= 400)	/* as llmgate-admin usage counts errors */
		add(&s->errors, 1);
	/* The gateway's own limits refuse before any upstream attempt. */
	if (u->status == 429 && u->attempts == 0)
		add(&s->ratelimited, 1);
	add(&s->prompt, u->prompt > 0 ? (uint64_t)u->prompt : 0);
	add(&s->completion, u->completion > 0 ? (uint64_t)u->completion : 0);
	add(&s->cached, u->cached > 0 ? (uint64_t)u->cached : 0);
	add(&s->cost, u->cost > 0 ? (uint64_t)u->cost : 0);
	observe(s->dur, &s->dur_ms, u->latency_ms);
	if (u->stream && u->status == 200)
		observe(s->ttft, &s->ttft_ms, u->ttft_ms);
	security(r, u);
}

void
metrics_cache(enum metrics_cache result)
{
	struct region	*r = attached();

	if (r != NULL && result < METRICS_CACHE__MAX)
		add(&r->hdr->rcache[result], 1);
}

void
metrics_semantic(enum metrics_semantic result)
{
	struct region	*r = attached();

	if (r != NULL && result < METRICS_SEMANTIC__MAX)
		add(&r->hdr->semantic[result], 1);
}

/* --- processes ---------------------------------------------------------- */

/* Field 22 of /proc/PID/stat (start time in ticks since boot); 0: gone. */
static uint64_t
start_time(pid_t pid)
{
	char			 path[64], line[1024], *p;
	unsigned long long	 t = 0;
	FILE			*fp;
	int			 i;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((fp = fopen(path, "re")) == NULL)
		return 0;
	if (fgets(line, sizeof(line), fp) != NULL &&
	    (p = strrchr(line, ')')) != NULL) {
		/* After ") ": state is field 3; start time is field 22. */
		for (i = 2, p++; i < 21 && p != NULL; i++)
			p = strchr(p + 1, ' ');
		if (p != NULL)
			t = strtoull(p + 1, NULL, 10);
	}
	fclose(fp);
	return t;
}

static uint64_t
owner_word(pid_t pid, uint64_t start)
{
	return (uint64_t)(uint32_t)pid << 32 | (uint32_t)(start | 1);
}

/*
 * Is the owner of a slot alive (the same process, not a reused pid)? The
 * low bit of an owner word is clear while its owner is still setting the
 * slot up (CLAIMING): readers skip it, but it is the same process.
 */
#define CLAIMING	1u
static int
owner_alive(uint64_t owner)
{
	pid_t	 pid = (pid_t)(owner >> 32);

	return owner_word(pid, start_time(pid)) == (owner | CLAIMING);
}

/*
 * Free the slot of a dead owner (o as read): its gauges go with it. The
 * next claimer writes its own before it shows the slot.
 */
static int
free_if_dead(struct proc *p, uint64_t o)
{
	if (o == 0 || owner_alive(o))
		return 0;
	__atomic_compare_exchange_n(&p->owner, &o, 0, 0, __ATOMIC_ACQ_REL,
	    __ATOMIC_RELAXED);
	return 1;
}

/* This process's slot, claimed at its first gauge; NULL: none to be had. */
static struct proc *
proc_slot(struct region *r)
{
	struct proc	*p;
	uint64_t	 me, want;
	pid_t		 pid = getpid();
	size_t		 i, at;

	if (__atomic_load_n(&my_pid, __ATOMIC_ACQUIRE) == pid)
		return my_proc;		/* NULL: none was to be had */
	pthread_mutex_lock(&mu);
	if (my_pid == pid)
		goto out;
	my_proc = NULL;
	me = owner_word(pid, start_time(pid));
	at = (size_t)pid % METRICS_PROCS;
	for (i = 0; i < 2 * METRICS_PROCS; i++, at = (at + 1) % METRICS_PROCS) {
		p = &r->procs[at];
		want = __atomic_load_n(&p->owner, __ATOMIC_ACQUIRE);
		/* The second round frees the slots of dead owners. */
		if (want != 0 && (i < METRICS_PROCS || !free_if_dead(p, want)))
			continue;
		want = 0;
		if (!__atomic_compare_exchange_n(&p->owner, &want,
		    me & ~(uint64_t)CLAIMING, 0, __ATOMIC_ACQ_REL,
		    __ATOMIC_ACQUIRE))
			continue;
		/* Hidden from readers until the gauges are this process's. */
		__atomic_store_n(&p->workers, local_workers, __ATOMIC_RELAXED);
		__atomic_store_n(&p->busy, local_busy, __ATOMIC_RELAXED);
		__atomic_store_n(&p->inflight, local_inflight,
		    __ATOMIC_RELAXED);
		__atomic_store_n(&p->owner, me, __ATOMIC_RELEASE);
		my_proc = p;
		__atomic_store_n(&my_pid, pid, __ATOMIC_RELEASE);
		goto out;
	}
	__atomic_fetch_add(&r->hdr->proc_overflows, 1, __ATOMIC_RELAXED);
	log_warn("metrics: no free process slot of %d: this process's workers "
	    "and requests in flight are not shown", METRICS_PROCS);
	__atomic_store_n(&my_pid, pid, __ATOMIC_RELEASE);	/* tried once */
out:
	pthread_mutex_unlock(&mu);
	return my_proc;
}

static void
gauge(int64_t *local, size_t off, int d)
{
	struct region	*r = attached();
	struct proc	*p;

	/* The slot first: a claim copies the counts made before it. */
	p = r != NULL ? proc_slot(r) : NULL;
	__atomic_fetch_add(local, d, __ATOMIC_RELAXED);
	if (p != NULL)
		__atomic_fetch_add((int64_t *)((char *)p + off), d,
		    __ATOMIC_RELAXED);
}

void
metrics_worker(int d)
{
	gauge(&local_workers, offsetof(struct proc, workers), d);
}

void
metrics_busy(int d)
{
	gauge(&local_busy, offsetof(struct proc, busy), d);
}

void
metrics_inflight(int d)
{
	gauge(&local_inflight, offsetof(struct proc, inflight), d);
}

/* --- exposition --------------------------------------------------------- */

/* A label value: backslash, quote and newline escaped. */
static void
put_value(struct buf *b, const char *s, size_t max)
{
	char	 c[2] = { 0, 0 };
	size_t	 i;

	for (i = 0; i < max && s[i] != '\0'; i++) {
		switch (s[i]) {
		case '\\':
			buf_puts(b, "\\\\");
			break;
		case '"':
			buf_puts(b, "\\\"");
			break;
		case '\n':
			buf_puts(b, "\\n");
			break;
		default:
			c[0] = s[i];
			buf_puts(b, c);
		}
	}
}

static void
put_label(struct buf *b, const char *name, const char *v, size_t max,
    int comma)
{
	buf_printf(b, "%s%s=\"", comma ? "," : "", name);
	put_value(b, v, max);
	buf_puts(b, "\"");
}

/* The labels of a series, without braces; extra (may be NULL) goes last. */
static void
put_labels(struct buf *b, const struct series *s, const char *extra)
{
	char	 st[16];

	put_label(b, "route", s->route, sizeof(s->route), 0);
	put_label(b, "provider", s->provider, sizeof(s->provider), 1);
	put_label(b, "model", s->model, sizeof(s->model), 1);
	snprintf(st, sizeof(st), "%u", s->status);
	put_label(b, "status", st, sizeof(st), 1);
	put_label(b, "agent", s->agent, sizeof(s->agent), 1);
	/* Series counted with metrics_key_label on keep it when it is off. */
	if (s->key[0] != '\0')
		put_label(b, "key", s->key, sizeof(s->key), 1);
	if (extra != NULL)
		buf_printf(b, ",%s", extra);
}

static void
help(struct buf *b, const char *name, const char *type, const char *text)
{
	buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name, type);
}

static uint64_t
load(const uint64_t *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/*
 * Is series s shown: its labels are written, and for the "other" slot,
 * it counted something (a table that never filled up shows no "other").
 */
static int
shown(const struct region *r, const struct series *s)
{
	if (!__atomic_load_n(&s->ready, __ATOMIC_ACQUIRE))
		return 0;
	return s != &r->series[0] ||
	    __atomic_load_n(&s->requests, __ATOMIC_RELAXED) > 0;
}

/* A counter of every ready series at field off. */
static void
counter(struct buf *b, const struct region *r, const char *name,
    size_t off, const char *extra)
{
	const struct series	*s;
	size_t			 i;

	for (i = 0; i < METRICS_SERIES; i++) {
		s = &r->series[i];
		if (!shown(r, s))
			continue;
		buf_printf(b, "%s{", name);
		put_labels(b, s, extra);
		buf_printf(b, "} %" PRIu64 "\n",
		    load((const uint64_t *)((const char *)s + off)));
	}
}

static void
histogram(struct buf *b, const struct region *r, const char *name,
    size_t off, size_t sum_off, int always)
{
	const struct series	*s;
	const uint64_t		*h;
	uint64_t		 cum, sum;
	size_t			 i, k;
	char			 le[32];

	for (i = 0; i < METRICS_SERIES; i++) {
		s = &r->series[i];
		if (!shown(r, s))
			continue;
		h = (const uint64_t *)((const char *)s + off);
		for (cum = 0, k = 0; k <= METRICS_BUCKETS; k++)
			cum += load(&h[k]);
		if (cum == 0 && !always)
			continue;	/* time to first token: not a stream */
		for (cum = 0, k = 0; k <= METRICS_BUCKETS; k++) {
			cum += load(&h[k]);
			if (k < METRICS_BUCKETS)
				snprintf(le, sizeof(le), "le=\"%u.%03u\"",
				    bucket_ms[k] / 1000, bucket_ms[k] % 1000);
			else
				snprintf(le, sizeof(le), "le=\"+Inf\"");
			buf_printf(b, "%s_bucket{", name);
			put_labels(b, s, le);
			buf_printf(b, "} %" PRIu64 "\n", cum);
		}
		sum = load((const uint64_t *)((const char *)s + sum_off));
		buf_printf(b, "%s_sum{", name);
		put_labels(b, s, NULL);
		buf_printf(b, "} %" PRIu64 ".%03" PRIu64 "\n", sum / 1000,
		    sum % 1000);
		buf_printf(b, "%s_count{", name);
		put_labels(b, s, NULL);
		buf_printf(b, "} %" PRIu64 "\n", cum);
	}
}

#define SO(f)	offsetof(struct series, f)

static void
expose_series(struct buf *b, const struct region *r,
    struct metrics_totals *t)
{
	const struct series	*s;
	uint64_t		 c;
	size_t			 i;

	help(b, "llm_requests_total", "counter", "Model requests (chat, "
	    "responses, completions, embeddings, images) as recorded in the usage log, refused and "
	    "failed ones included, each once.");
	counter(b, r, "llm_requests_total", SO(requests), NULL);
	help(b, "llm_requests_errors_total", "counter", "Model requests "
	    "that ended with a 4xx or 5xx status, refusals included (the "
	    "errors of llmgate-admin usage; the status label tells them "
	    "apart).");
	counter(b, r, "llm_requests_errors_total", SO(errors), NULL);
	help(b, "rate_limit_requests_total", "counter", "Model requests "
	    "refused with 429 by the gateway's own limits (rpm, tpm, budgets, "
	    "max_concurrent) before any upstream attempt.");
	counter(b, r, "rate_limit_requests_total", SO(ratelimited), NULL);
	help(b, "llm_tokens_total", "counter", "Tokens billed, by type "
	    "(cached tokens are part of prompt).");
	counter(b, r, "llm_tokens_total", SO(prompt), "type=\"prompt\"");
	counter(b, r, "llm_tokens_total", SO(completion),
	    "type=\"completion\"");
	counter(b, r, "llm_tokens_total", SO(cached), "type=\"cached\"");
	help(b, "llm_cost_usd_total", "counter", "Cost billed in USD (exact "
	    "sum of the usage rows' micro-dollars).");
	for (i = 0; i < METRICS_SERIES; i++) {
		s = &r->series[i];
		if (!shown(r, s))
			continue;
		c = load(&s->cost);
		buf_puts(b, "llm_cost_usd_total{");
		put_labels(b, s, NULL);
		buf_printf(b, "} %" PRIu64 ".%06" PRIu64 "\n", c / 1000000,
		    c % 1000000);
		t->requests += load(&s->requests);
		t->series++;
	}
	help(b, "llm_request_duration_seconds", "histogram", "Time from the "
	    "request's arrival to its last byte.");
	histogram(b, r, "llm_request_duration_seconds", SO(dur), SO(dur_ms), 1);
	help(b, "llm_time_to_first_token_seconds", "histogram", "Streamed "
	    "requests: time from arrival to the first token sent.");
	histogram(b, r, "llm_time_to_first_token_seconds", SO(ttft),
	    SO(ttft_ms), 0);
	t->overflows = load(&r->hdr->overflows);
	help(b, "llmgate_metrics_series_overflow_total", "counter", "Records "
	    "counted in the series labelled \"other\" because the table of "
	    "label sets was full.");
	buf_printf(b, "llmgate_metrics_series_overflow_total %" PRIu64 "\n",
	    t->overflows);
	help(b, "llm_cache_requests_total", "counter", "Requests to models "
	    "with a response cache (cache_ttl), by X-Llmgate-Cache result.");
	buf_printf(b, "llm_cache_requests_total{result=\"hit\"} %" PRIu64
	    "\n", load(&r->hdr->rcache[METRICS_CACHE_HIT]));
	buf_printf(b, "llm_cache_requests_total{result=\"miss\"} %" PRIu64
	    "\n", load(&r->hdr->rcache[METRICS_CACHE_MISS]));
	buf_printf(b, "llm_cache_requests_total{result=\"bypass\"} %" PRIu64
	    "\n", load(&r->hdr->rcache[METRICS_CACHE_BYPASS]));
	help(b, "llm_semantic_lookups_total", "counter", "Semantic cache "
	    "lookups after an exact miss: hit, miss, or error (the embedding "
	    "failed; the request went upstream).");
	buf_printf(b, "llm_semantic_lookups_total{result=\"hit\"} %" PRIu64
	    "\n", load(&r->hdr->semantic[METRICS_SEMANTIC_HIT]));
	buf_printf(b, "llm_semantic_lookups_total{result=\"miss\"} %" PRIu64
	    "\n", load(&r->hdr->semantic[METRICS_SEMANTIC_MISS]));
	buf_printf(b, "llm_semantic_lookups_total{result=\"error\"} %" PRIu64
	    "\n", load(&r->hdr->semantic[METRICS_SEMANTIC_ERROR]));
	help(b, "llmgate_metrics_series", "gauge", "Label sets in use of the "
	    "fixed table (" "1024" " at most, one of them \"other\").");
	buf_printf(b, "llmgate_metrics_series %" PRIu64 "\n", t->series);
	help(b, "llmgate_metrics_created_timestamp_seconds", "gauge",
	    "When the counters last started from zero (the file was made).");
	buf_printf(b, "llmgate_metrics_created_timestamp_seconds %" PRId64
	    "\n", r->hdr->created_s);
}

/* Sum the gauges of living processes; free the slots of dead ones. */
static void
sum_procs(struct region *r, struct metrics_totals *t)
{
	struct proc	*p;
	uint64_t	 o;
	int64_t		 v;
	size_t		 i;

	for (i = 0; i < METRICS_PROCS; i++) {
		p = &r->procs[i];
		o = __atomic_load_n(&p->owner, __ATOMIC_ACQUIRE);
		/* A dead owner's requests in flight died with it. */
		if (o == 0 || free_if_dead(p, o) || !(o & CLAIMING))
			continue;
		t->procs++;
		if ((v = __atomic_load_n(&p->workers, __ATOMIC_RELAXED)) > 0)
			t->workers += v;
		if ((v = __atomic_load_n(&p->busy, __ATOMIC_RELAXED)) > 0)
			t->busy += v;
		if ((v = __atomic_load_n(&p->inflight, __ATOMIC_RELAXED)) > 0)
			t->inflight += v;
	}
}

static void
expose_procs(struct buf *b, struct region *r, struct metrics_totals *t)
{
	if (r != NULL) {
		sum_procs(r, t);
	} else {
		t->procs = 1;
		t->workers = local_workers;
		t->busy = local_busy;
		t->inflight = local_inflight;
	}
	if (t->busy > t->workers)
		t->workers = t->busy;	/* CGI: no pool, one busy worker */
	help(b, "llm_requests_in_flight", "gauge", "Model requests being "
	    "served now, in every living gateway process.");
	buf_printf(b, "llm_requests_in_flight %" PRId64 "\n", t->inflight);
	help(b, "llmgate_workers", "gauge", "Worker threads of every living "
	    "gateway process, busy with a request or idle.");
	buf_printf(b, "llmgate_workers{state=\"busy\"} %" PRId64 "\n",
	    t->busy);
	buf_printf(b, "llmgate_workers{state=\"idle\"} %" PRId64 "\n",
	    t->workers - t->busy);
	help(b, "llmgate_processes", "gauge", "Living gateway processes "
	    "that have served since the file was made.");
	buf_printf(b, "llmgate_processes %" PRIu32 "\n", t->procs);
}

static void
expose_breakers(struct buf *b, const struct config *cfg)
{
	struct breaker_region	*reg = breaker_process_region(cfg);
	struct breaker_info	*in = NULL;
	struct breaker_stats	 st;
	size_t			 n = 0, i;

	help(b, "llm_circuit_breaker_state", "gauge", "Circuit breaker of "
	    "each deployment: 0 closed, 1 open, 2 half-open.");
	if (reg == NULL || (in = calloc(BREAKER_SLOTS, sizeof(*in))) == NULL)
		return;
	n = breaker_region_list(reg, in, BREAKER_SLOTS, &st);
	for (i = 0; i < n; i++) {
		buf_puts(b, "llm_circuit_breaker_state{");
		put_label(b, "provider", in[i].provider,
		    sizeof(in[i].provider), 0);
		put_label(b, "model", in[i].model, sizeof(in[i].model), 1);
		buf_printf(b, "} %d\n", (int)in[i].state);
	}
	free(in);
}

/* Has the agent's daily spend been shown already (agents seen in series)? */
static int
agent_seen(char (*names)[KEY_AGENT_MAX], size_t n, const char *a)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], a) == 0)
			return 1;
	return 0;
}

static void
budget_one(struct buf *b, const struct config *cfg, struct store *st,
    const char *agent, time_t day)
{
	struct principal	 p;
	struct spend_rec	 sp;
	char			 scope[KEY_AGENT_MAX + 3];

	memset(&p, 0, sizeof(p));
	snprintf(p.agent, sizeof(p.agent), "%s", agent);
	account_resolve(cfg, &p);
	if (p.agent_budget <= 0)
		return;
	snprintf(scope, sizeof(scope), "a:%s", agent);
	memset(&sp, 0, sizeof(sp));
	if (billing_spend(st, scope, day, &sp) != STORE_OK)
		memset(&sp, 0, sizeof(sp));
	buf_puts(b, "llm_budget_spent_ratio{");
	put_label(b, "agent", agent, KEY_AGENT_MAX, 0);
	buf_printf(b, "} %.6f\n", (double)sp.spent / (double)p.agent_budget);
}

/*
 * The agents' daily spend against their daily budget: every [agent] of
 * the configuration and every agent the series name, read from the store.
 */
static void
expose_budgets(struct buf *b, const struct config *cfg, struct store *st,
    const struct region *r)
{
	char		(*names)[KEY_AGENT_MAX];
	size_t		 n = 0, i;
	time_t		 day = billing_day(time(NULL));

	help(b, "llm_budget_spent_ratio", "gauge", "Each agent's spend "
	    "today (UTC) over its daily budget; agents without one are not "
	    "shown.");
	if (st == NULL || !cfg->gw.accounting ||
	    (names = calloc(cfg->nagents + METRICS_SERIES,
	    sizeof(*names))) == NULL)
		return;
	for (i = 0; i < cfg->nagents; i++)
		if (!agent_seen(names, n, cfg->agents[i].name))
			snprintf(names[n++], KEY_AGENT_MAX, "%s",
			    cfg->agents[i].name);
	for (i = 1; r != NULL && i < METRICS_SERIES; i++)
		if (__atomic_load_n(&r->series[i].ready, __ATOMIC_ACQUIRE) &&
		    r->series[i].agent[0] != '\0' &&
		    !agent_seen(names, n, r->series[i].agent))
			snprintf(names[n++], KEY_AGENT_MAX, "%.*s",
			    (int)sizeof(r->series[i].agent),
			    r->series[i].agent);
	for (i = 0; i < n; i++)
		budget_one(b, cfg, st, names[i], day);
	free(names);
}

static void
expose_health(struct buf *b, const struct config *cfg, struct store *st)
{
	struct stat	 sb;
	const char	*h = cfg->gw.accounting ? store_health(st) : "off";
	int		 exists, writable;

	help(b, "llmgate_store_up", "gauge", "1 when the accounting store "
	    "is open, writable and healthy in the process that answered "
	    "(0: read-only, needs recovery or unavailable; accounting off: "
	    "1).");
	buf_printf(b, "llmgate_store_up %d\n", strcmp(h, "ok") == 0 ||
	    strcmp(h, "off") == 0);
	exists = stat(cfg->gw.fallback_file, &sb) == 0;
	writable = exists ? access(cfg->gw.fallback_file, W_OK) == 0 :
	    access(cfg->gw.data_dir, W_OK | X_OK) == 0;
	help(b, "llmgate_fallback_file_bytes", "gauge", "Size of the usage "
	    "fallback file waiting for llmgate-admin replay (0: none).");
	buf_printf(b, "llmgate_fallback_file_bytes %lld\n",
	    exists ? (long long)sb.st_size : 0LL);
	help(b, "llmgate_fallback_file_writable", "gauge", "1 when usage can "
	    "be written to the fallback file should the store fail.");
	buf_printf(b, "llmgate_fallback_file_writable %d\n", writable);
}

static void
expose_unbuilt(struct buf *b)
{
	help(b, "llm_cache_hits_total", "counter", "Responses served from the "
	    "gateway's response cache (no cache exists yet: always 0).");
	buf_puts(b, "llm_cache_hits_total 0\n");
}

/*
 * Guardrail findings: a series per detector and each action it can take,
 * at 0 until it counts (rate() and dashboards see every series from the
 * start; injection and length have nothing to redact).
 */
static void
expose_security(struct buf *b, const struct region *r)
{
	uint64_t	 n;
	int		 k, a;

	help(b, "llm_security_violations_total", "counter", "Guardrail "
	    "findings, once per request per detector, by the action its "
	    "policy took (log, redact, block, route; the answer's findings "
	    "too).");
	for (k = 0; k < DET__MAX; k++)
		for (a = POLICY_LOG; a < POLICY__MAX; a++) {
			n = r != NULL ? load(&r->hdr->security[k][a]) : 0;
			if (n == 0 && a == POLICY_REDACT &&
			    !(DET_BIT(k) & DET_SPAN_MASK))
				continue;
			buf_printf(b, "llm_security_violations_total{detector="
			    "\"%s\",action=\"%s\"} %" PRIu64 "\n",
			    det_names[k], policy_action_names[a], n);
		}
}

int
metrics_expose(const struct config *cfg, struct store *st, struct buf *b,
    struct metrics_totals *t)
{
	struct region	*r = attached();

	memset(t, 0, sizeof(*t));
	if (r != NULL)
		expose_series(b, r, t);
	expose_unbuilt(b);
	expose_security(b, r);
	expose_procs(b, r, t);
	expose_breakers(b, cfg);
	expose_budgets(b, cfg, st, r);
	expose_health(b, cfg, st);
	help(b, "llmgate_metrics_up", "gauge", "1 when the shared counters "
	    "file in data_dir could be read (0: only this process's gauges "
	    "are shown).");
	buf_printf(b, "llmgate_metrics_up %d\n", r != NULL);
	return r != NULL ? 0 : -1;
}

/* --- the guard ---------------------------------------------------------- */

/* Parse "ADDR" or "ADDR/BITS" into 16 bytes (IPv4 mapped) and bits. */
static int
parse_net(const char *s, unsigned char *a, int *bits)
{
	char		 host[64], *slash;
	struct in_addr	 v4;
	long		 n;
	int		 v6;

	if (snprintf(host, sizeof(host), "%s", s) >= (int)sizeof(host))
		return -1;
	if ((slash = strchr(host, '/')) != NULL)
		*slash++ = '\0';
	memset(a, 0, 16);
	if (inet_pton(AF_INET, host, &v4) == 1) {
		a[10] = a[11] = 0xff;
		memcpy(a + 12, &v4, 4);
		v6 = 0;
	} else if (inet_pton(AF_INET6, host, a) == 1)
		v6 = 1;
	else
		return -1;
	*bits = 128;
	if (slash != NULL) {
		n = strtol(slash, &slash, 10);
		if (*slash != '\0' || n < 0 || n > (v6 ? 128 : 32))
			return -1;
		*bits = (int)n + (v6 ? 0 : 96);
	}
	return 0;
}

int
metrics_addr_allowed(const char *list, const char *addr)
{
	unsigned char	 a[16], n[16];
	char		 item[64];
	const char	*p = list;
	size_t		 len;
	int		 bits, abits, i;

	if (list == NULL || addr == NULL || parse_net(addr, a, &abits) == -1 ||
	    abits != 128)
		return 0;
	while (*p != '\0') {
		p += strspn(p, ", \t");
		len = strcspn(p, ", \t");
		if (len == 0)
			break;
		if (len < sizeof(item)) {
			memcpy(item, p, len);
			item[len] = '\0';
			if (parse_net(item, n, &bits) == 0) {
				for (i = 0; i < bits / 8; i++)
					if (a[i] != n[i])
						break;
				if (i == bits / 8 && (bits % 8 == 0 ||
				    ((a[i] ^ n[i]) & (0xff00 >>
				    (bits % 8) & 0xff)) == 0))
					return 1;
			}
		}
		p += len;
	}
	return 0;
}

int
metrics_allow_valid(const char *list, char *why, size_t whylen)
{
	unsigned char	 n[16];
	char		 item[64];
	const char	*p = list;
	size_t		 len;
	int		 bits;

	while (*p != '\0') {
		p += strspn(p, ", \t");
		if ((len = strcspn(p, ", \t")) == 0)
			break;
		if (len >= sizeof(item) || (memcpy(item, p, len),
		    item[len] = '\0', parse_net(item, n, &bits)) == -1) {
			snprintf(why, whylen, "\"%.*s\" is not an address or "
			    "CIDR block", (int)(len < 64 ? len : 64), p);
			return 0;
		}
		p += len;
	}
	return 1;
}
