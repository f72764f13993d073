/*
 * usage.c: price a request, store its usage row, and when the store
 * cannot be written keep the row in a JSONL fallback file that
 * llmgate-admin replay imports exactly once.
 */
#define _GNU_SOURCE	/* F_OFD_SETLK */
#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "billing.h"
#include "config.h"
#include "detect.h"
#include "log.h"
#include "policy.h"
#include "store.h"
#include "usage.h"

#define SCAN_BATCH	500	/* rows per read transaction */
#define PURGE_BATCH	1000	/* rows deleted per transaction */
#define LINE_MAX_LEN	8192

/*
 * Prompt tokens read from the provider's cache are billed at the cached
 * price, those written to it at the cache-write price, the rest at the
 * input price; the total is rounded up to the next micro-dollar once.
 * Both counts are part of prompt (clamped to it: a provider that reports
 * more is never billed more than its prompt at those prices).
 */
money_t
usage_cost(const struct candidate *c, const struct usage *u)
{
	struct money_sum	 sum = { 0, 0 };
	int64_t			 cached = u->cached, write = u->cache_write;

	if (c == NULL)
		return 0;
	if (cached < 0)
		cached = 0;
	if (write < 0)
		write = 0;
	if (cached > u->prompt)
		cached = u->prompt;
	if (write > u->prompt - cached)
		write = u->prompt - cached;
	money_sum_add(&sum, u->prompt - cached - write, c->input_price);
	money_sum_add(&sum, cached, c->cached_input_price);
	money_sum_add(&sum, write, c->cache_write_price);
	money_sum_add(&sum, u->completion, c->output_price);
	return money_sum_total(&sum);
}

int32_t
usage_cache_write(int64_t n)
{
	if (n <= 0)
		return 0;
	return n > INT32_MAX ? INT32_MAX : (int32_t)n;
}

static void
row_key(unsigned char k[16], int64_t time_us, uint64_t id)
{
	store_be64(k, (uint64_t)time_us);
	store_be64(k + 8, id);
}

_Static_assert(offsetof(struct usage_row, worker_died) == USAGE_V1_SIZE,
    "version 1 usage rows are a prefix of version 2 rows");
_Static_assert(offsetof(struct usage_row, traceparent) == USAGE_V2_SIZE,
    "version 2 usage rows are a prefix of version 3 rows");
_Static_assert(offsetof(struct usage_row, policy) == USAGE_V3_SIZE,
    "version 3 usage rows are a prefix of version 4 rows");
_Static_assert(sizeof(((struct usage_row *)0)->policy) > POLICY_NAME_MAX,
    "a usage row holds a policy's name whole");
_Static_assert(sizeof(struct usage_row) <= 1000,
    "a usage row fits on a 4 KiB Berkeley DB page (1009 bytes at most)");

static const struct config	*rescue_cfg;

void
usage_set_rescue(const struct config *cfg)
{
	rescue_cfg = cfg;
}

/* A row whose transaction is stuck as the process exits: the fallback. */
static void
rescue_row(const void *rec)
{
	const struct usage_row	*row = rec;

	log_error("%s: the store is stuck settling it: writing its row to "
	    "the fallback file", row->request_id);
	if (rescue_cfg != NULL)
		usage_fallback_write(rescue_cfg, row);
	else
		usage_lost(row);
}

int
usage_put(struct store_txn *t, const struct usage_row *row)
{
	struct usage_row	 v = *row;
	unsigned char		 k[16];

	v.version = USAGE_VERSION;
	store_txn_rescue(t, rescue_row, row);
	row_key(k, row->time_us, row->id);
	return store_put_new(t, SDB_USAGE, k, sizeof(k), &v, sizeof(v));
}

int
usage_rec(const void *v, size_t vlen, struct usage_row *r)
{
	const uint8_t	*p = v;

	if (vlen == 0 || !((p[0] == USAGE_VERSION && vlen == sizeof(*r)) ||
	    (p[0] == 3 && vlen == USAGE_V3_SIZE) ||
	    (p[0] == 2 && vlen == USAGE_V2_SIZE) ||
	    (p[0] == 1 && vlen == USAGE_V1_SIZE)))
		return -1;
	memset(r, 0, sizeof(*r));
	memcpy(r, v, vlen);
	r->version = USAGE_VERSION;
	return 0;
}

#define JS(o, k, v)	json_object_object_add(o, k, json_object_new_string(v))
#define JI(o, k, v)	json_object_object_add(o, k, \
			    json_object_new_int64((int64_t)(v)))
#define JB(o, k, v)	json_object_object_add(o, k, \
			    json_object_new_boolean(v))

static int	get_int(struct json_object *, const char *, int64_t *);

/* "card:redact email:log": each kind found with the action taken on it. */
static const char *
guard_actions(const struct usage_row *r, char *buf, size_t len)
{
	size_t	 n = 0;
	int	 k, w, a;

	buf[0] = '\0';
	for (k = 0; k < DET__MAX; k++) {
		if (!(r->guard_found & DET_BIT(k)))
			continue;
		a = USAGE_GUARD_ACTION(r, k) < POLICY__MAX ?
		    (int)USAGE_GUARD_ACTION(r, k) : 0;
		w = snprintf(buf + n, len - n, "%s%s:%s", n > 0 ? " " : "",
		    det_names[k], policy_action_names[a]);
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* The actions of a mask (1 << policy_action): "redact block". */
static const char *
action_names(unsigned acted, char *buf, size_t len)
{
	size_t	 n = 0;
	int	 a, w;

	buf[0] = '\0';
	for (a = 0; a < POLICY__MAX; a++) {
		if (!(acted & (1u << a)))
			continue;
		w = snprintf(buf + n, len - n, "%s%s", n > 0 ? " " : "",
		    policy_action_names[a]);
		if (w < 0 || (size_t)w >= len - n)
			break;
		n += (size_t)w;
	}
	return buf;
}

/* The guardrails' members, only when a policy applied: names, no text. */
static void
guard_json(struct json_object *o, const struct usage_row *r)
{
	char	 buf[256];

	if (r->policy[0] == '\0')
		return;
	json_object_object_add(o, "policy", json_object_new_string_len(
	    r->policy, (int)strnlen(r->policy, sizeof(r->policy))));
	json_object_object_add(o, "guard_found", json_object_new_string(
	    policy_kinds(r->guard_found, buf, sizeof(buf))));
	json_object_object_add(o, "guard_actions", json_object_new_string(
	    guard_actions(r, buf, sizeof(buf))));
	json_object_object_add(o, "guard_out_found", json_object_new_string(
	    policy_kinds(r->guard_out_found, buf, sizeof(buf))));
	json_object_object_add(o, "guard_out_acted", json_object_new_string(
	    action_names(r->guard_out_acted, buf, sizeof(buf))));
	json_object_object_add(o, "injection_score",
	    json_object_new_int64(r->injection));
}

/* A list of detector names back into DET_BIT bits; unknown ones dropped. */
static unsigned
kinds_of(const char *s)
{
	char		 w[32];
	size_t		 n;
	unsigned	 m = 0;
	int		 k;

	while (*s != '\0') {
		s += strspn(s, " ");
		if ((n = strcspn(s, " :")) == 0)
			break;
		snprintf(w, sizeof(w), "%.*s", (int)(n < sizeof(w) ? n :
		    sizeof(w) - 1), s);
		if ((k = det_kind_byname(w)) >= 0)
			m |= DET_BIT(k);
		s += n;
		if (*s == ':')
			s += strcspn(s, " ");
	}
	return m;
}

static int
action_byname(const char *s, size_t n)
{
	int	 a;

	for (a = 0; a < POLICY__MAX; a++)
		if (strlen(policy_action_names[a]) == n &&
		    strncmp(s, policy_action_names[a], n) == 0)
			return a;
	return -1;
}

/* The guardrails' members of a fallback line, when it has them. */
static void
guard_from_json(struct json_object *o, struct usage_row *r)
{
	struct json_object	*v;
	const char		*s, *c;
	char			 w[32];
	size_t			 n;
	int64_t			 score;
	int			 k, a;

	if (!json_object_object_get_ex(o, "policy", &v) ||
	    !json_object_is_type(v, json_type_string))
		return;
	snprintf(r->policy, sizeof(r->policy), "%s", json_object_get_string(v));
	if (json_object_object_get_ex(o, "guard_found", &v))
		r->guard_found = (uint16_t)kinds_of(json_object_get_string(v));
	if (json_object_object_get_ex(o, "guard_out_found", &v))
		r->guard_out_found = (uint16_t)kinds_of(
		    json_object_get_string(v));
	if (json_object_object_get_ex(o, "guard_actions", &v))
		for (s = json_object_get_string(v); *s != '\0'; s += n) {
			s += strspn(s, " ");
			if ((n = strcspn(s, " ")) == 0 ||
			    (c = memchr(s, ':', n)) == NULL)
				break;
			snprintf(w, sizeof(w), "%.*s", (int)((size_t)(c - s) <
			    sizeof(w) ? (size_t)(c - s) : sizeof(w) - 1), s);
			k = det_kind_byname(w);
			a = action_byname(c + 1, n - (size_t)(c + 1 - s));
			if (k >= 0 && a >= 0) {
				USAGE_GUARD_SET(r, k, (unsigned)a);
				r->guard_acted |= (uint16_t)(1u << a);
			}
		}
	if (json_object_object_get_ex(o, "guard_out_acted", &v))
		for (s = json_object_get_string(v); *s != '\0'; s += n) {
			s += strspn(s, " ");
			if ((n = strcspn(s, " ")) == 0)
				break;
			if ((a = action_byname(s, n)) >= 0)
				r->guard_out_acted |= (uint16_t)(1u << a);
		}
	if (get_int(o, "injection_score", &score) == 0)
		r->injection = (int32_t)score;
}

struct json_object *
usage_to_json(const struct usage_row *r)
{
	struct json_object	*o = json_object_new_object();
	char			 usd[32];

	JI(o, "v", USAGE_VERSION);
	JI(o, "time_us", r->time_us);
	/* 64-bit ids as strings: JSON readers lose precision past 2^53. */
	snprintf(usd, sizeof(usd), "%" PRIu64, r->id);
	JS(o, "id", usd);
	JS(o, "request_id", r->request_id);
	JI(o, "key_id", r->key_id);
	JS(o, "key_name", r->key_name);
	JS(o, "agent", r->agent);
	JS(o, "tier", r->tier);
	JS(o, "route", r->route);
	JS(o, "requested", r->requested);
	JS(o, "served", r->served);
	JS(o, "provider", r->provider);
	JI(o, "prompt_tokens", r->prompt);
	JI(o, "completion_tokens", r->completion);
	JI(o, "cached_tokens", r->cached);
	JI(o, "cache_write_tokens", r->cache_write);
	JB(o, "estimated", r->estimated);
	JI(o, "cost_micro_usd", r->cost);
	money_format_usd(r->cost, usd, sizeof(usd));
	JS(o, "cost_usd", usd);
	JI(o, "latency_ms", r->latency_ms);
	JI(o, "ttft_ms", r->ttft_ms);
	JI(o, "status", r->status);
	JI(o, "attempts", r->attempts);
	JB(o, "stream", r->stream);
	JB(o, "client_aborted", r->client_aborted);
	JB(o, "worker_died", r->worker_died);
	JI(o, "reserved_micro_usd", r->reserved);
	JB(o, "over_reservation", (r->flags & USAGE_OVER_RESERVATION) != 0);
	JB(o, "cost_reported", (r->flags & USAGE_COST_REPORTED) != 0);
	JB(o, "unpriced", (r->flags & USAGE_UNPRICED) != 0);
	JB(o, "cache_hit", (r->flags & USAGE_CACHE_HIT) != 0);
	JB(o, "semantic", (r->flags & USAGE_SEMANTIC) != 0);
	snprintf(usd, sizeof(usd), "%" PRIu64, r->reservation);
	JS(o, "reservation", usd);
	JS(o, "traceparent", r->traceparent);
	JS(o, "trace_parent_id", r->trace_parent);
	JS(o, "key_prefix", r->key_prefix);
	guard_json(o, r);
	return o;
}

static int
get_str(struct json_object *o, const char *k, char *dst, size_t len)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return -1;
	snprintf(dst, len, "%s", json_object_get_string(v));
	return 0;
}

static int
get_int(struct json_object *o, const char *k, int64_t *dst)
{
	struct json_object	*v;
	char			*end;

	if (!json_object_object_get_ex(o, k, &v))
		return -1;
	if (json_object_is_type(v, json_type_int)) {
		*dst = json_object_get_int64(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_boolean)) {
		*dst = json_object_get_boolean(v);
		return 0;
	}
	if (json_object_is_type(v, json_type_string)) {
		errno = 0;
		*dst = (int64_t)strtoull(json_object_get_string(v), &end, 10);
		return errno != 0 || *end != '\0' ? -1 : 0;
	}
	return -1;
}

int
usage_from_json(struct json_object *o, struct usage_row *r)
{
	int64_t	 v[16];
	static const struct {
		const char	*name;
		uint32_t	 bit;
	} flags[] = {
		{ "over_reservation", USAGE_OVER_RESERVATION },
		{ "cost_reported", USAGE_COST_REPORTED },
		{ "unpriced", USAGE_UNPRICED },
		{ "cache_hit", USAGE_CACHE_HIT },
		{ "semantic", USAGE_SEMANTIC },
	};
	size_t	 i;

	memset(r, 0, sizeof(*r));
	/* Version 1 lines have no worker_died: it stays 0. */
	if (get_int(o, "worker_died", &v[11]) == -1)
		v[11] = 0;
	if (get_int(o, "v", &v[0]) == -1 || v[0] < 1 || v[0] > USAGE_VERSION ||
	    get_int(o, "time_us", &r->time_us) == -1 ||
	    get_int(o, "id", &v[1]) == -1 ||
	    get_int(o, "key_id", &v[2]) == -1 ||
	    get_int(o, "prompt_tokens", &r->prompt) == -1 ||
	    get_int(o, "completion_tokens", &r->completion) == -1 ||
	    get_int(o, "cached_tokens", &r->cached) == -1 ||
	    get_int(o, "estimated", &v[3]) == -1 ||
	    get_int(o, "cost_micro_usd", &r->cost) == -1 ||
	    get_int(o, "latency_ms", &v[4]) == -1 ||
	    get_int(o, "ttft_ms", &v[5]) == -1 ||
	    get_int(o, "status", &v[6]) == -1 ||
	    get_int(o, "attempts", &v[7]) == -1 ||
	    get_int(o, "stream", &v[8]) == -1 ||
	    get_int(o, "client_aborted", &v[9]) == -1 ||
	    get_int(o, "reservation", &v[10]) == -1 ||
	    get_str(o, "request_id", r->request_id,
	    sizeof(r->request_id)) == -1 ||
	    get_str(o, "key_name", r->key_name, sizeof(r->key_name)) == -1 ||
	    get_str(o, "agent", r->agent, sizeof(r->agent)) == -1 ||
	    get_str(o, "tier", r->tier, sizeof(r->tier)) == -1 ||
	    get_str(o, "route", r->route, sizeof(r->route)) == -1 ||
	    get_str(o, "requested", r->requested, sizeof(r->requested)) == -1 ||
	    get_str(o, "served", r->served, sizeof(r->served)) == -1 ||
	    get_str(o, "provider", r->provider, sizeof(r->provider)) == -1)
		return -1;
	if (v[1] == 0 || r->time_us <= 0 || r->cost < 0 || v[6] < 0 ||
	    v[6] > 999 || v[7] < 0 || v[7] > 1000)
		return -1;
	r->version = USAGE_VERSION;
	r->id = (uint64_t)v[1];
	r->key_id = (uint64_t)v[2];
	r->estimated = v[3] != 0;
	r->latency_ms = (int32_t)v[4];
	r->ttft_ms = (int32_t)v[5];
	r->status = (uint16_t)v[6];
	r->attempts = (uint16_t)v[7];
	r->stream = v[8] != 0;
	r->client_aborted = v[9] != 0;
	r->reservation = (uint64_t)v[10];
	r->worker_died = v[11] != 0;
	/* Fields a row written before they existed does not carry. */
	if (get_int(o, "reserved_micro_usd", &r->reserved) == -1)
		r->reserved = 0;
	if (get_int(o, "cache_write_tokens", &v[12]) == 0 && v[12] > 0 &&
	    v[12] <= INT32_MAX)
		r->cache_write = (int32_t)v[12];
	(void)get_str(o, "traceparent", r->traceparent, sizeof(r->traceparent));
	(void)get_str(o, "trace_parent_id", r->trace_parent,
	    sizeof(r->trace_parent));
	(void)get_str(o, "key_prefix", r->key_prefix, sizeof(r->key_prefix));
	guard_from_json(o, r);
	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++)
		if (get_int(o, flags[i].name, &v[12]) == 0 && v[12] != 0)
			r->flags |= flags[i].bit;
	return 0;
}

/*
 * Appends of whole rows only. Writers of every process and thread take
 * an open-file-description lock on the file (bounded wait), so a row cut
 * short by a full disk is cut back before anyone appends after it.
 */
#define FALLBACK_LOCK_MS	2000

static int
lock_file(int fd)
{
	struct flock	 fl;
	int		 waited;

	memset(&fl, 0, sizeof(fl));
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	for (waited = 0; fcntl(fd, F_OFD_SETLK, &fl) == -1; waited += 5) {
		if ((errno != EAGAIN && errno != EACCES && errno != EINTR) ||
		    waited >= FALLBACK_LOCK_MS)
			return -1;
		usleep(5000);
	}
	return 0;
}

/*
 * Append line (n bytes, newline last) whole or not at all: one write()
 * with O_APPEND; a short write or a failed fdatasync is cut back with
 * ftruncate to the size before it. A file left ending without a newline
 * (a crash before this code) gets one first, so rows are never glued.
 * 0 when the row is in the file, -1 (errno set) when it is not.
 */
static int
append_whole(int fd, const char *line, size_t n)
{
	struct stat	 st;
	ssize_t		 w;
	off_t		 start;
	char		 last;
	int		 saved;

	if (lock_file(fd) == -1 || fstat(fd, &st) == -1)
		return -1;
	start = st.st_size;
	if (start > 0 && pread(fd, &last, 1, start - 1) == 1 && last != '\n') {
		if (write(fd, "\n", 1) != 1) {
			saved = errno;
			(void)!ftruncate(fd, start);
			errno = saved;
			return -1;
		}
		start++;
	}
	w = write(fd, line, n);
	if (w == (ssize_t)n && fdatasync(fd) == 0)
		return 0;
	saved = w >= 0 && w < (ssize_t)n ? ENOSPC : errno;
	if (w != 0 && ftruncate(fd, start) == -1)
		log_error("usage fallback: cannot cut back a partial row: %s",
		    strerror(errno));
	errno = saved;
	return -1;
}

/* The LOST-STORE log line: the whole row, where nothing else could take it. */
void
usage_lost(const struct usage_row *row)
{
	struct json_object	*o = usage_to_json(row);

	log_error("usage LOST-STORE row=%s", json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

int
usage_fallback_write(const struct config *cfg, const struct usage_row *row)
{
	struct json_object	*o = usage_to_json(row);
	const char		*s;
	char			 line[LINE_MAX_LEN];
	int			 fd, n, rc = -1;

	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	n = snprintf(line, sizeof(line), "%s\n", s);
	if (n < 0 || (size_t)n >= sizeof(line))
		goto out;
	fd = open(cfg->gw.fallback_file, O_RDWR | O_APPEND | O_CREAT |
	    O_CLOEXEC, 0660);
	if (fd == -1) {
		log_error("usage fallback %s: %s", cfg->gw.fallback_file,
		    strerror(errno));
		goto out;
	}
	if (append_whole(fd, line, (size_t)n) == 0)
		rc = 0;
	else
		log_error("usage fallback %s: %s (the row is not in it)",
		    cfg->gw.fallback_file, strerror(errno));
	close(fd);
out:
	if (rc == -1)
		/* The last place left: the error log holds the whole row. */
		log_error("usage LOST-STORE row=%s", s);
	json_object_put(o);
	return rc;
}

static int
replay_txn(struct store_txn *t, void *arg)
{
	return billing_apply(t, arg);
}

/* Import one fallback file line by line; each row in its own transaction. */
static int
replay_file(struct store *s, const char *path, struct replay_result *res)
{
	struct json_object	*o;
	struct usage_row	 row;
	char			*line = NULL;
	size_t			 cap = 0;
	ssize_t			 n;
	long			 lineno = 0;
	FILE			*fp;
	int			 rc = STORE_OK;

	if ((fp = fopen(path, "r")) == NULL) {
		snprintf(res->error, sizeof(res->error), "cannot read %.400s: %s",
		    path, strerror(errno));
		return STORE_ERROR;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (n <= 1)
			continue;
		o = json_tokener_parse(line);
		if (o == NULL || usage_from_json(o, &row) == -1) {
			log_warn("replay %s:%ld: not a usage row", path, lineno);
			res->bad++;
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		rc = store_txn(s, replay_txn, &row);
		if (rc == STORE_EXISTS)
			res->duplicate++;
		else if (rc == STORE_OK)
			res->imported++;
		else {
			snprintf(res->error, sizeof(res->error), "%.400s:%ld: %.80s",
			    path, lineno, store_error());
			break;
		}
		rc = STORE_OK;
	}
	free(line);
	fclose(fp);
	return rc;
}

int
usage_replay(struct store *s, const struct config *cfg, const char *path,
    struct replay_result *res)
{
	char		 work[1024], done[1100], stamp[32];
	struct stat	 st;
	time_t		 now = time(NULL);
	struct tm	 tm;
	int		 rc;

	memset(res, 0, sizeof(*res));
	if (path == NULL)
		path = cfg->gw.fallback_file;
	if ((size_t)snprintf(work, sizeof(work), "%s.replaying", path) >=
	    sizeof(work)) {
		snprintf(res->error, sizeof(res->error), "%.400s: path too long",
		    path);
		return STORE_ERROR;
	}
	/*
	 * Move the file aside first: workers that write meanwhile start a new
	 * one. A .replaying file left by an interrupted replay is finished
	 * first; rows already imported are skipped as duplicates.
	 */
	if (stat(work, &st) == -1) {
		if (rename(path, work) == -1) {
			if (errno == ENOENT)
				return STORE_OK;	/* nothing to replay */
			snprintf(res->error, sizeof(res->error), "cannot move "
			    "%.400s aside: %s", path, strerror(errno));
			return STORE_ERROR;
		}
	}
	if ((rc = replay_file(s, work, res)) != STORE_OK)
		return rc;
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(done, sizeof(done), "%s.replayed-%s", path, stamp);
	if (rename(work, done) == -1) {
		snprintf(res->error, sizeof(res->error), "cannot rename %.400s: %s",
		    work, strerror(errno));
		return STORE_ERROR;
	}
	return STORE_OK;
}

/*
 * A scan reads one batch of rows per short read transaction and hands
 * them to the callback only after the commit: a deadlock retry re-reads
 * the batch, and the callback never sees a row twice.
 */
struct scan_ctx {
	int64_t			 to_us;
	unsigned char		 next[16];	/* where this batch starts */
	unsigned char		 last[16];	/* the key after the batch */
	int			 more;
	size_t			 n;
	struct usage_row	*rows;		/* SCAN_BATCH of them */
};

static int
scan_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct scan_ctx	*c = arg;

	if (klen != 16 || usage_rec(v, vlen, &c->rows[c->n]) == -1)
		return STORE_ERROR;
	if (c->rows[c->n].time_us >= c->to_us)
		return STORE_STOP;
	if (c->n == SCAN_BATCH) {
		memcpy(c->last, k, 16);
		c->more = 1;
		return STORE_STOP;
	}
	c->n++;
	return 0;
}

static int
scan_txn(struct store_txn *t, void *arg)
{
	struct scan_ctx	*c = arg;

	c->n = 0;
	c->more = 0;
	return store_scan(t, SDB_USAGE, NULL, 0, c->next, 16, 0, scan_one, c);
}

int
usage_scan(struct store *s, int64_t from_us, int64_t to_us, usage_fn fn,
    void *arg)
{
	struct scan_ctx	 c;
	size_t		 i;
	int		 rc = STORE_OK;

	memset(&c, 0, sizeof(c));
	c.to_us = to_us;
	/* One spare slot: the row that starts the next batch is read too. */
	if ((c.rows = calloc(SCAN_BATCH + 1, sizeof(*c.rows))) == NULL)
		return STORE_ERROR;
	row_key(c.next, from_us < 0 ? 0 : from_us, 0);
	do {
		if ((rc = store_read(s, scan_txn, &c)) != STORE_OK)
			break;
		for (i = 0; i < c.n; i++)
			if (fn(arg, &c.rows[i]) != 0) {
				c.more = 0;
				break;
			}
		memcpy(c.next, c.last, 16);
	} while (c.more);
	free(c.rows);
	return rc;
}

struct purge_ctx {
	int64_t	 before_us;
	long	 deleted, batch;
	int	 more;
};

static int
purge_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct purge_ctx	*c = arg;

	(void)v;
	(void)vlen;
	if (klen != 16 || (int64_t)store_get_be64(k) >= c->before_us)
		return STORE_STOP;
	if (c->batch == PURGE_BATCH) {
		c->more = 1;
		return STORE_STOP;
	}
	c->batch++;
	return STORE_SCAN_DELETE;
}

static int
purge_txn(struct store_txn *t, void *arg)
{
	struct purge_ctx	*c = arg;

	c->batch = 0;
	c->more = 0;
	return store_scan(t, SDB_USAGE, NULL, 0, NULL, 0, 0, purge_one, c);
}

int
usage_purge(struct store *s, int64_t before_us, long *n)
{
	struct purge_ctx	 c;
	int			 rc;

	memset(&c, 0, sizeof(c));
	c.before_us = before_us;
	*n = 0;
	do {
		if ((rc = store_txn(s, purge_txn, &c)) != STORE_OK)
			return rc;
		*n += c.batch;
	} while (c.more);
	return STORE_OK;
}

/* The usage line's members in JSON format; never a key, only its prefix. */
static void
usage_fields(const struct usage_row *u, struct log_fields *f)
{
	char	 usd[32], buf[256];

	log_fields_init(f);
	log_field_str(f, "event", "usage");
	log_field_str(f, "request_id", u->request_id);
	log_field_str(f, "key_prefix", u->key_prefix);
	log_field_int(f, "key_id", (long long)u->key_id);
	log_field_str(f, "key_name", u->key_name);
	log_field_str(f, "agent", u->agent);
	log_field_str(f, "tier", u->tier);
	log_field_str(f, "route", u->route);
	log_field_str(f, "model", u->requested);
	log_field_str(f, "served", u->served);
	log_field_str(f, "provider", u->provider);
	log_field_int(f, "status", u->status);
	log_field_int(f, "latency_ms", u->latency_ms);
	log_field_int(f, "ttft_ms", u->ttft_ms);
	log_field_int(f, "prompt_tokens", u->prompt);
	log_field_int(f, "completion_tokens", u->completion);
	log_field_int(f, "cached_tokens", u->cached);
	log_field_int(f, "cache_write_tokens", u->cache_write);
	log_field_int(f, "estimated", u->estimated);
	log_field_int(f, "cost_micro_usd", u->cost);
	money_format_usd(u->cost, usd, sizeof(usd));
	log_field_str(f, "cost_usd", usd);
	log_field_int(f, "attempts", u->attempts);
	log_field_int(f, "stream", u->stream);
	log_field_int(f, "client_aborted", u->client_aborted);
	if (u->flags & USAGE_CACHE_HIT)
		log_field_int(f, "cache_hit", 1);
	if (u->flags & USAGE_SEMANTIC)
		log_field_int(f, "semantic", 1);
	if (u->worker_died)
		log_field_int(f, "worker_died", 1);
	log_field_str(f, "traceparent", u->traceparent);
	if (u->trace_parent[0] != '\0')
		log_field_str(f, "trace_parent_id", u->trace_parent);
	if (u->policy[0] != '\0') {
		log_field_str(f, "policy", u->policy);
		log_field_str(f, "guard_found", policy_kinds(u->guard_found,
		    buf, sizeof(buf)));
		log_field_str(f, "guard_actions", guard_actions(u, buf,
		    sizeof(buf)));
		if (u->guard_out_found != 0)
			log_field_str(f, "guard_out_found", policy_kinds(
			    u->guard_out_found, buf, sizeof(buf)));
	}
}

/* " cache_write=N" when the request wrote to a prompt cache, or "". */
static const char *
cache_text(const struct usage_row *u, char *buf, size_t len)
{
	if (u->cache_write <= 0)
		return "";
	snprintf(buf, len, " cache_write=%d", (int)u->cache_write);
	return buf;
}

/* " policy=P found=card,email actions=card:redact,..." or "". */
static const char *
guard_text(const struct usage_row *u, char *line, size_t len)
{
	char	 name[LOG_VALUE_SIZE(sizeof(u->policy))];
	char	 found[200], acts[256], out[200];
	char	*p;

	line[0] = '\0';
	if (u->policy[0] == '\0')
		return line;
	policy_kinds(u->guard_found, found, sizeof(found));
	guard_actions(u, acts, sizeof(acts));
	policy_kinds(u->guard_out_found, out, sizeof(out));
	/* Comma-separated: one word each, nothing to quote. */
	for (p = found; (p = strchr(p, ' ')) != NULL; )
		*p = ',';
	for (p = acts; (p = strchr(p, ' ')) != NULL; )
		*p = ',';
	for (p = out; (p = strchr(p, ' ')) != NULL; )
		*p = ',';
	snprintf(line, len, " policy=%s found=%s actions=%s%s%s",
	    log_value(name, sizeof(name), u->policy), found[0] ? found : "-",
	    acts[0] ? acts : "-", out[0] ? " out_found=" : "", out);
	return line;
}

/*
 * The one log line per request: operators grep it; the store has the rest.
 * Names come from clients and admins: log_value() quotes any that could
 * forge a field.
 */
void
usage_log(const struct usage_row *u)
{
	struct log_fields	*f = NULL;
	char	 key[LOG_VALUE_SIZE(sizeof(u->key_name))];
	char	 agent[LOG_VALUE_SIZE(sizeof(u->agent))];
	char	 model[LOG_VALUE_SIZE(sizeof(u->requested))];
	char	 served[LOG_VALUE_SIZE(sizeof(u->served))];
	char	 provider[LOG_VALUE_SIZE(sizeof(u->provider))];
	char	 line[800], cw[32];

	/* The members go on the heap: worker stacks are small. */
	if (log_json && (f = malloc(sizeof(*f))) != NULL)
		usage_fields(u, f);
	if (f != NULL) {
		log_msg_fields(LOG_INFO, f, "usage %s", u->request_id);
		free(f);
		return;
	}
	log_info("usage id=%s key=%s agent=%s model=%s served=%s provider=%s "
	    "status=%d attempts=%d stream=%d prompt=%" PRId64 " completion=%"
	    PRId64 " cached=%" PRId64 " estimated=%d cost_micro_usd=%" PRId64
	    " latency_ms=%d ttft_ms=%d client_aborted=%d%s%s%s%s%s",
	    u->request_id,
	    log_value(key, sizeof(key), u->key_name[0] ? u->key_name : "-"),
	    log_value(agent, sizeof(agent), u->agent[0] ? u->agent : "-"),
	    log_value(model, sizeof(model), u->requested),
	    log_value(served, sizeof(served), u->served[0] ? u->served : "-"),
	    log_value(provider, sizeof(provider),
	    u->provider[0] ? u->provider : "-"),
	    u->status, u->attempts, u->stream, u->prompt, u->completion,
	    u->cached, u->estimated, u->cost, u->latency_ms, u->ttft_ms,
	    u->client_aborted, u->worker_died ? " worker_died=1" : "",
	    cache_text(u, cw, sizeof(cw)),
	    (u->flags & USAGE_CACHE_HIT) ? " cache_hit=1" : "",
	    (u->flags & USAGE_SEMANTIC) ? " semantic=1" : "",
	    guard_text(u, line, sizeof(line)));
}
