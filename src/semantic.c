/*
 * semantic.c: the semantic cache. A request the exact cache misses is
 * looked up by the embedding of its last user message among the vectors
 * of its bucket (the same scope, model, system prompt, history, tools and
 * parameters); the closest at or above the model's semantic_threshold
 * names an answer of the exact cache, served as a hit. Vectors are kept
 * quantised to int8 (a 1536-dimension vector is 1.5 KiB), at most
 * semantic_max_entries a bucket, in one database keyed by bucket and
 * time stored: a lookup is one read transaction over one bucket.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "buf.h"
#include "config.h"
#include "log.h"
#include "plan.h"
#include "semantic.h"
#include "store.h"
#include "usage.h"

/* SDB_SEMANTIC's value: this, then dim int8s. */
struct sem_rec {
	uint8_t		 version;	/* STORE_VERSION */
	uint8_t		 spare;
	uint16_t	 dim;
	float		 norm;
	int64_t		 expires_us;	/* the exact entry's */
};

#define REC_HEAD	sizeof(struct sem_rec)
/* bucket + stored us (BE64) + the answer's key */
#define SKEY_LEN	(RCACHE_KEY_LEN + 8 + RCACHE_KEY_LEN)

int
semantic_encode_f(const float *x, size_t n, struct sem_vec *v)
{
	double	 max = 0, sum = 0, a;
	long	 q;
	size_t	 i;

	if (n == 0 || n > SEM_DIM_MAX)
		return -1;
	for (i = 0; i < n; i++) {
		if (!isfinite(x[i]))
			return -1;
		if ((a = fabs((double)x[i])) > max)
			max = a;
	}
	if (max == 0)
		return -1;
	/* The scale drops out of a cosine: no need to normalise first. */
	for (i = 0; i < n; i++) {
		q = lrint(127.0 * (double)x[i] / max);
		v->q[i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
		sum += (double)v->q[i] * v->q[i];
	}
	v->dim = (uint16_t)n;
	v->norm = (float)sqrt(sum);
	return 0;
}

int
semantic_encode(struct json_object *arr, struct sem_vec *v)
{
	struct json_object	*e;
	float			*x;
	size_t			 n, i;
	int			 rc = -1;

	if (!json_object_is_type(arr, json_type_array) ||
	    (n = json_object_array_length(arr)) == 0 || n > SEM_DIM_MAX)
		return -1;
	if ((x = malloc(n * sizeof(*x))) == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		e = json_object_array_get_idx(arr, i);
		if (!json_object_is_type(e, json_type_double) &&
		    !json_object_is_type(e, json_type_int))
			goto out;
		x[i] = (float)json_object_get_double(e);
	}
	rc = semantic_encode_f(x, n, v);
out:
	free(x);
	return rc;
}

/*
 * In blocks of 32: a loop of fixed count that -O2 vectorises (the
 * lookup at the cap is this loop, max_entries times).
 */
static int32_t
dot(const int8_t *a, const int8_t *b, size_t n)
{
	int32_t	 s = 0, t;
	size_t	 i = 0, j;

	for (; i + 32 <= n; i += 32) {
		t = 0;
		for (j = 0; j < 32; j++)
			t += (int16_t)((int16_t)a[i + j] * b[i + j]);
		s += t;
	}
	for (; i < n; i++)
		s += (int32_t)a[i] * b[i];
	return s;
}

double
semantic_cosine(const struct sem_vec *a, const struct sem_vec *b)
{
	if (a->dim != b->dim || a->norm == 0 || b->norm == 0)
		return 0;
	return (double)dot(a->q, b->q, a->dim) / ((double)a->norm * b->norm);
}

/* Append a content's text (a string, or text parts): 0, or -1. */
static int
content_text(struct json_object *c, struct buf *b)
{
	struct json_object	*part, *type, *text;
	size_t			 i;

	if (json_object_is_type(c, json_type_string))
		return buf_append(b, json_object_get_string(c),
		    (size_t)json_object_get_string_len(c)) == BUF_OK ? 0 : -1;
	if (!json_object_is_type(c, json_type_array))
		return -1;
	for (i = 0; i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		/* An image or a file is not embedded: no lookup at all. */
		if (!json_object_object_get_ex(part, "type", &type) ||
		    strcmp(json_object_get_string(type), "text") != 0 ||
		    !json_object_object_get_ex(part, "text", &text) ||
		    !json_object_is_type(text, json_type_string))
			return -1;
		if ((b->len > 0 && buf_append(b, "\n", 1) != BUF_OK) ||
		    buf_append(b, json_object_get_string(text),
		    (size_t)json_object_get_string_len(text)) != BUF_OK)
			return -1;
	}
	return 0;
}

char *
semantic_text(struct json_object *req)
{
	struct json_object	*msgs, *last, *role, *c;
	struct buf		 b;
	char			*s = NULL;
	size_t			 n;

	if (!json_object_object_get_ex(req, "messages", &msgs) ||
	    !json_object_is_type(msgs, json_type_array) ||
	    (n = json_object_array_length(msgs)) == 0)
		return NULL;
	last = json_object_array_get_idx(msgs, n - 1);
	if (!json_object_object_get_ex(last, "role", &role) ||
	    strcmp(json_object_get_string(role), "user") != 0 ||
	    !json_object_object_get_ex(last, "content", &c))
		return NULL;
	buf_init(&b, SEM_TEXT_MAX);
	if (content_text(c, &b) == 0 && b.len > 0 &&
	    memchr(b.data, '\0', b.len) == NULL &&
	    (s = malloc(b.len + 1)) != NULL) {
		memcpy(s, b.data, b.len);
		s[b.len] = '\0';
	}
	buf_free(&b);
	return s;
}

/* The bucket: the request with every message but the last. */
static int
bucket_of(const char *scope, const char *model, struct json_object *req,
    unsigned char out[RCACHE_KEY_LEN])
{
	struct json_object	*o, *msgs, *head;
	size_t			 i, n;
	int			 rc;

	if ((o = json_object_new_object()) == NULL ||
	    (head = json_object_new_array()) == NULL) {
		json_object_put(o);
		return -1;
	}
	json_object_object_get_ex(req, "messages", &msgs);
	n = json_object_array_length(msgs);
	for (i = 0; i + 1 < n; i++)
		json_object_array_add(head, json_object_get(
		    json_object_array_get_idx(msgs, i)));
	json_object_object_foreach(req, k, v) {
		if (strcmp(k, "messages") != 0)
			json_object_object_add(o, k, json_object_get(v));
	}
	json_object_object_add(o, "messages", head);
	/* A member no request has keeps buckets apart from exact keys. */
	json_object_object_add(o, " semantic", json_object_new_int(1));
	rc = rcache_key(scope, model, o, out);
	json_object_put(o);
	return rc;
}

struct sem *
semantic_begin(const char *scope, const char *model, struct json_object *req,
    double threshold, long max_entries, long ttl)
{
	struct sem	*s;
	char		*text;

	if ((text = semantic_text(req)) == NULL)
		return NULL;
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		free(text);
		return NULL;
	}
	s->text = text;
	s->threshold = threshold;
	s->max_entries = max_entries > 0 ? max_entries : 1;
	s->ttl = ttl;
	if (bucket_of(scope, model, req, s->bucket) == -1) {
		semantic_free(s);
		return NULL;
	}
	return s;
}

void
semantic_free(struct sem *s)
{
	if (s == NULL)
		return;
	free(s->text);
	free(s);
}

static int64_t
now_us(void)
{
	struct timespec	 ts;

	store_wall(&ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* A record's head, when it is one of this version: 0, or -1. */
static int
rec_head(const void *v, size_t vlen, struct sem_rec *h)
{
	if (vlen < REC_HEAD)
		return -1;
	memcpy(h, v, REC_HEAD);
	if (h->version != STORE_VERSION || h->dim == 0 ||
	    h->dim > SEM_DIM_MAX || vlen != REC_HEAD + h->dim)
		return -1;
	return 0;
}

struct find_arg {
	const struct sem	*s;
	int64_t			 now;
	long			 seen;
	double			 best;
	int			 found;
	unsigned char		 key[RCACHE_KEY_LEN];
};

/* Newest first, max_entries at most: the closest at or over threshold. */
static int
find_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct find_arg		*f = arg;
	struct sem_rec		 h;
	double			 cos;

	if (f->seen++ >= f->s->max_entries)
		return STORE_STOP;
	if (klen != SKEY_LEN || rec_head(v, vlen, &h) == -1 ||
	    h.expires_us <= f->now || h.dim != f->s->vec.dim || h.norm <= 0)
		return 0;
	cos = (double)dot((const int8_t *)v + REC_HEAD, f->s->vec.q, h.dim) /
	    ((double)h.norm * f->s->vec.norm);
	if (cos >= f->s->threshold && (!f->found || cos > f->best)) {
		f->found = 1;
		f->best = cos;
		memcpy(f->key, (const unsigned char *)k + RCACHE_KEY_LEN + 8,
		    RCACHE_KEY_LEN);
	}
	return 0;
}

static int
find_txn(struct store_txn *t, void *arg)
{
	struct find_arg	*f = arg;

	f->seen = 0;
	f->found = 0;
	f->best = 0;
	return store_scan(t, SDB_SEMANTIC, f->s->bucket, RCACHE_KEY_LEN, NULL,
	    0, STORE_REVERSE, find_cb, f);
}

int
semantic_find(struct sem *s, struct store *st,
    unsigned char key[RCACHE_KEY_LEN])
{
	struct find_arg	 f;
	int		 rc;

	if (!s->have_vec || st == NULL)
		return 0;
	memset(&f, 0, sizeof(f));
	f.s = s;
	f.now = now_us();
	if ((rc = store_read(st, find_txn, &f)) != STORE_OK) {
		log_warn("semantic cache: lookup failed: %s", store_error());
		return -1;
	}
	if (!f.found)
		return 0;
	s->similarity = f.best;
	memcpy(key, f.key, RCACHE_KEY_LEN);
	return 1;
}

struct put_arg {
	const struct sem	*s;
	const unsigned char	*key;
	int64_t			 now;
	long			 kept;
	unsigned char		*rec;
	size_t			 len;
	unsigned char		 skey[SKEY_LEN];
};

/*
 * Newest first: expired records and the answer's own go; the first
 * max_entries - 1 live ones stay, the older beyond them go.
 */
static int
put_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct put_arg	*p = arg;
	struct sem_rec	 h;

	if (klen != SKEY_LEN || rec_head(v, vlen, &h) == -1 ||
	    h.expires_us <= p->now ||
	    memcmp((const unsigned char *)k + RCACHE_KEY_LEN + 8, p->key,
	    RCACHE_KEY_LEN) == 0)
		return STORE_SCAN_DELETE;
	if (++p->kept >= p->s->max_entries)
		return STORE_SCAN_DELETE;
	return 0;
}

static int
put_txn(struct store_txn *t, void *arg)
{
	struct put_arg	*p = arg;
	int		 rc;

	p->kept = 0;
	if ((rc = store_scan(t, SDB_SEMANTIC, p->s->bucket, RCACHE_KEY_LEN,
	    NULL, 0, STORE_REVERSE, put_cb, p)) < 0)
		return rc;
	return store_put(t, SDB_SEMANTIC, p->skey, SKEY_LEN, p->rec, p->len);
}

void
semantic_put(struct sem *s, struct store *st,
    const unsigned char key[RCACHE_KEY_LEN])
{
	struct put_arg	 p;
	struct sem_rec	 h;

	if (!s->have_vec || st == NULL)
		return;
	memset(&p, 0, sizeof(p));
	p.s = s;
	p.key = key;
	p.now = now_us();
	p.len = REC_HEAD + s->vec.dim;
	if ((p.rec = malloc(p.len)) == NULL)
		return;
	memset(&h, 0, sizeof(h));
	h.version = STORE_VERSION;
	h.dim = s->vec.dim;
	h.norm = s->vec.norm;
	h.expires_us = p.now + (int64_t)s->ttl * 1000000;
	memcpy(p.rec, &h, REC_HEAD);
	memcpy(p.rec + REC_HEAD, s->vec.q, s->vec.dim);
	memcpy(p.skey, s->bucket, RCACHE_KEY_LEN);
	store_be64(p.skey + RCACHE_KEY_LEN, (uint64_t)p.now);
	memcpy(p.skey + RCACHE_KEY_LEN + 8, key, RCACHE_KEY_LEN);
	if (store_txn(st, put_txn, &p) < 0)
		log_warn("semantic cache: store failed: %s", store_error());
	free(p.rec);
}

struct stats_arg {
	int64_t	 records, bytes;
};

static int
stats_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct stats_arg	*a = arg;

	(void)k;
	(void)v;
	a->records++;
	a->bytes += (int64_t)(klen + vlen);
	return 0;
}

static int
stats_txn(struct store_txn *t, void *arg)
{
	struct stats_arg	*a = arg;

	a->records = a->bytes = 0;
	return store_scan(t, SDB_SEMANTIC, NULL, 0, NULL, 0, 0, stats_cb, a);
}

int
semantic_stats(struct store *st, int64_t *records, int64_t *bytes)
{
	struct stats_arg	 a;
	int			 rc;

	rc = store_read(st, stats_txn, &a);
	*records = a.records;
	*bytes = a.bytes;
	return rc;
}

money_t
semantic_reserve(const struct config *cfg, const struct plan *pl,
    int64_t prompt)
{
	const struct model_cfg	*m;
	struct plan		*ep;
	struct usage		 u;
	money_t			 worst = 0, c;
	size_t			 i;

	if (pl->n == 0 || (m = pl->c[0].model) == NULL ||
	    !m->semantic_cache || m->cache_ttl <= 0 ||
	    m->semantic_model == NULL)
		return 0;
	/* A plan is large for a worker's stack. */
	if ((ep = calloc(1, sizeof(*ep))) == NULL)
		return 0;
	memset(&u, 0, sizeof(u));
	u.prompt = prompt < SEM_TEXT_MAX ? prompt : SEM_TEXT_MAX;
	if (plan_resolve(cfg, m->semantic_model, ep) == PLAN_OK)
		for (i = 0; i < ep->n; i++)
			if ((c = usage_cost(&ep->c[i], &u)) > worst)
				worst = c;
	free(ep);
	return worst;
}
