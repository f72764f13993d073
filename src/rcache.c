/*
 * rcache.c: the exact response cache. A chat answer is stored under the
 * SHA-256 of its canonical request (scope, planned model, every member
 * that shapes the answer) and served again, without an upstream call,
 * until its model's cache_ttl passes. Three databases: the head (times,
 * usage, size), the body (the answer's JSON) and an index by the time
 * stored, which evicts the oldest once the cache holds more than
 * [gateway] response_cache_max_mb; one short transaction per get and put.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "billing.h"
#include "buf.h"
#include "config.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "plan.h"
#include "rcache.h"
#include "route.h"
#include "semantic.h"
#include "store.h"

#define DEPTH_MAX	128	/* deeper requests are not cached */
#define EVICT_MAX	32	/* entries one put deletes at most */
#define ENTRY_OVERHEAD	128	/* an entry's bytes beyond its body */
#define TOOLS_MAX	16	/* tool calls a streamed answer may carry */

/* SDB_RCACHE: one stored answer's facts. */
struct rcache_head {
	uint8_t		 version;	/* STORE_VERSION */
	uint8_t		 estimated;	/* the usage was estimated */
	uint8_t		 spare[2];
	uint32_t	 len;		/* bytes of the body */
	int64_t		 stored_us;	/* its SDB_RCACHE_AGE key */
	int64_t		 expires_us;
	int64_t		 prompt, completion, cached;
};

/* SDB_RCACHE_AGE: stored us + sha256 -> this. */
struct rcache_age {
	uint8_t		 version;
	uint8_t		 spare[3];
	uint32_t	 size;		/* bytes counted in the cap */
	int64_t		 expires_us;
};

/* SDB_RCACHE_AGE under 8 zero bytes: what the cache holds. */
struct rcache_total {
	uint8_t		 version;
	uint8_t		 spare[7];
	int64_t		 bytes;
	int64_t		 entries;
};

/* A streamed answer's choice 0, assembled chunk by chunk. */
struct rc_tool {
	char		 id[128];
	struct buf	 name, args;
};
struct rc_asm {
	struct json_object	*first;		/* chunk 1: id, created, model */
	char			 role[32];
	char			 finish[32];
	struct buf		 content, reasoning;
	int			 has_content;
	struct rc_tool		 tools[TOOLS_MAX];
	int			 ntools;
};

static const char *const skipped[] = {
	"model", "stream", "stream_options", "user", "metadata", "store",
};

/* The canonical form, fed to the digest: typed, length-prefixed. */
static int	canon(EVP_MD_CTX *, struct json_object *, int);

static int
feed(EVP_MD_CTX *md, const void *p, size_t n)
{
	return EVP_DigestUpdate(md, p, n) == 1 ? 0 : -1;
}

static int
feed_str(EVP_MD_CTX *md, char tag, const char *s, size_t n)
{
	char	 head[24];
	int	 hl;

	hl = snprintf(head, sizeof(head), "%c%zu:", tag, n);
	return feed(md, head, (size_t)hl) == 0 && feed(md, s, n) == 0 ? 0 : -1;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int
skip_member(const char *k, int top)
{
	size_t	 i;

	if (!top)
		return 0;
	for (i = 0; i < sizeof(skipped) / sizeof(skipped[0]); i++)
		if (strcmp(k, skipped[i]) == 0)
			return 1;
	return 0;
}

/* An object's members in name order (top: without the skipped ones). */
static int
canon_object(EVP_MD_CTX *md, struct json_object *o, int depth, int top)
{
	const char		**names;
	struct json_object	*v;
	size_t			 n = 0, i;
	int			 rc = -1;

	names = calloc((size_t)json_object_object_length(o) + 1,
	    sizeof(*names));
	if (names == NULL)
		return -1;
	json_object_object_foreach(o, k, val) {
		(void)val;
		if (!skip_member(k, top))
			names[n++] = k;
	}
	qsort(names, n, sizeof(*names), cmp_name);
	if (feed(md, "{", 1) == -1)
		goto out;
	for (i = 0; i < n; i++) {
		json_object_object_get_ex(o, names[i], &v);
		if (feed_str(md, 'k', names[i], strlen(names[i])) == -1 ||
		    canon(md, v, depth + 1) == -1)
			goto out;
	}
	rc = feed(md, "}", 1);
out:
	free(names);
	return rc;
}

static int
canon(EVP_MD_CTX *md, struct json_object *v, int depth)
{
	char	 num[40];
	double	 d;
	size_t	 i;
	int	 n;

	if (depth > DEPTH_MAX)
		return -1;
	switch (json_object_get_type(v)) {
	case json_type_null:
		return feed(md, "n", 1);
	case json_type_boolean:
		return feed(md, json_object_get_boolean(v) ? "t" : "f", 1);
	case json_type_int:
		n = snprintf(num, sizeof(num), "#%" PRId64 ";",
		    json_object_get_int64(v));
		return feed(md, num, (size_t)n);
	case json_type_double:
		/* 0 and 0.0, 1 and 1.0 are the same number. */
		d = json_object_get_double(v);
		if (d == floor(d) && fabs(d) < 9.0e15)
			n = snprintf(num, sizeof(num), "#%" PRId64 ";",
			    (int64_t)d);
		else
			n = snprintf(num, sizeof(num), "#%.17g;", d);
		return feed(md, num, (size_t)n);
	case json_type_string:
		return feed_str(md, 's', json_object_get_string(v),
		    (size_t)json_object_get_string_len(v));
	case json_type_array:
		if (feed(md, "[", 1) == -1)
			return -1;
		for (i = 0; i < json_object_array_length(v); i++)
			if (canon(md, json_object_array_get_idx(v, i),
			    depth + 1) == -1)
				return -1;
		return feed(md, "]", 1);
	case json_type_object:
		return canon_object(md, v, depth, 0);
	}
	return -1;
}

int
rcache_key(const char *scope, const char *model, struct json_object *req,
    unsigned char out[RCACHE_KEY_LEN])
{
	EVP_MD_CTX	*md;
	unsigned int	 len = 0;
	int		 rc = -1;

	if (!json_object_is_type(req, json_type_object) ||
	    (md = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
	    feed_str(md, 'S', "llmgate-rcache-1", 16) == 0 &&
	    feed_str(md, 'S', scope, strlen(scope)) == 0 &&
	    feed_str(md, 'M', model, strlen(model)) == 0 &&
	    canon_object(md, req, 0, 1) == 0 &&
	    EVP_DigestFinal_ex(md, out, &len) == 1 && len == RCACHE_KEY_LEN)
		rc = 0;
	EVP_MD_CTX_free(md);
	return rc;
}

static int64_t
wall_us(void)
{
	struct timespec	 ts;

	store_wall(&ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* X-Llmgate-Cache, counted in llm_cache_requests_total. */
static void
set_header(struct request *r, enum metrics_cache result)
{
	static const char *const names[METRICS_CACHE__MAX] = {
		"hit", "miss", "bypass",
	};

	http_header(r, "X-Llmgate-Cache", "%s", names[result]);
	metrics_cache(result);
}

/* Only what asks for the same answer twice is cached by default. */
static int
deterministic(struct json_object *req)
{
	struct json_object	*t;

	if (!json_object_object_get_ex(req, "temperature", &t))
		return 0;
	return (json_object_is_type(t, json_type_int) ||
	    json_object_is_type(t, json_type_double)) &&
	    json_object_get_double(t) == 0.0;
}

/* "no-store" or "no-cache" among a Cache-Control header's directives. */
static int
has_directive(const char *h, const char *d)
{
	size_t	 n = strlen(d);

	for (; h != NULL && *h != '\0'; h++) {
		while (*h == ' ' || *h == ',' || *h == '\t')
			h++;
		if (strncasecmp(h, d, n) == 0 && (h[n] == '\0' ||
		    h[n] == ',' || h[n] == ' ' || h[n] == '\t' || h[n] == '='))
			return 1;
		if ((h = strchr(h, ',')) == NULL)
			return 0;
	}
	return 0;
}

static void
scope_of(const struct request *r, const char *how, char *out, size_t len)
{
	const struct principal	*p = r->who;

	if (how != NULL && strcmp(how, "global") == 0)
		snprintf(out, len, "g");
	else if (how != NULL && strcmp(how, "agent") == 0 && p != NULL &&
	    p->agent[0] != '\0')
		snprintf(out, len, "a:%s", p->agent);
	else
		snprintf(out, len, "k:%" PRIu64, p != NULL ? p->key.id : 0);
}

void
rcache_begin(struct rcache *rc, struct request *r, const struct plan *pl,
    struct json_object *req)
{
	const struct model_cfg	*m;
	const struct agent_cfg	*ag;
	struct json_object	*v;
	const char		*cc, *opt;
	char			 scope[96];

	memset(rc, 0, sizeof(*rc));
	if (pl->n == 0 || (m = pl->c[0].model) == NULL || m->cache_ttl <= 0)
		return;
	rc->mode = RCACHE_BYPASS;
	rc->ttl = m->cache_ttl;
	rc->hit_price = m->cache_hit_price;
	rc->max_bytes = (int64_t)r->cfg->gw.response_cache_max_mb << 20;
	cc = http_header_in(r, "Cache-Control");
	opt = http_header_in(r, "X-Llmgate-Cache");
	if (r->worker == NULL || r->worker->store == NULL ||
	    has_directive(cc, "no-store") ||
	    (opt != NULL && strcasecmp(opt, "off") == 0))
		goto bypass;
	if (r->who != NULL && r->who->agent[0] != '\0' &&
	    (ag = config_agent(r->cfg, r->who->agent)) != NULL && !ag->cache)
		goto bypass;
	/* One choice only: the replay is of choice 0. */
	if (json_object_object_get_ex(req, "n", &v) &&
	    json_object_get_int64(v) > 1)
		goto bypass;
	if (!deterministic(req) && !(opt != NULL && strcasecmp(opt, "on") == 0))
		goto bypass;
	scope_of(r, m->cache_scope, scope, sizeof(scope));
	if (rcache_key(scope, pl->c[0].name, req, rc->key) == -1)
		goto bypass;
	if (has_directive(cc, "no-cache")) {
		rc->mode = RCACHE_STORE;
		set_header(r, METRICS_CACHE_MISS);
		return;
	}
	rc->mode = RCACHE_USE;
	if (m->semantic_cache)
		rc->sem = semantic_begin(scope, pl->c[0].name, req,
		    m->semantic_threshold, m->semantic_max_entries,
		    m->cache_ttl);
	return;
bypass:
	set_header(r, METRICS_CACHE_BYPASS);
}

struct get_arg {
	const unsigned char	*key;
	struct rcache_head	 head;
	char			*body;
	int64_t			 now;
};

static int
get_txn(struct store_txn *t, void *a)
{
	struct get_arg	*g = a;
	size_t		 n;
	int		 rc;

	free(g->body);
	g->body = NULL;
	rc = store_get_rec(t, SDB_RCACHE, g->key, RCACHE_KEY_LEN, &g->head,
	    sizeof(g->head), 0);
	if (rc != STORE_OK)
		return rc;
	if (g->head.expires_us <= g->now || g->head.len == 0 ||
	    g->head.len > RCACHE_ANSWER_MAX)
		return STORE_NOTFOUND;
	if ((g->body = malloc((size_t)g->head.len + 1)) == NULL)
		return STORE_ERROR;
	n = g->head.len;
	if ((rc = store_get(t, SDB_RCACHE_BODY, g->key, RCACHE_KEY_LEN,
	    g->body, &n, 0)) != STORE_OK)
		return rc;
	if (n != g->head.len)
		return STORE_NOTFOUND;
	g->body[n] = '\0';
	return STORE_OK;
}

int
rcache_get(struct rcache *rc, struct store *s, struct json_object **reply)
{
	struct get_arg		 g;
	struct json_tokener	*tok;
	int			 st;

	*reply = NULL;
	if (rc->mode != RCACHE_USE)
		return 0;
	memset(&g, 0, sizeof(g));
	g.key = rc->key;
	g.now = wall_us();
	st = store_read(s, get_txn, &g);
	if (st == STORE_OK) {
		if ((tok = json_tokener_new()) != NULL) {
			*reply = json_tokener_parse_ex(tok, g.body,
			    (int)g.head.len);
			json_tokener_free(tok);
		}
		if (*reply != NULL && json_object_is_type(*reply,
		    json_type_object)) {
			rc->hit = 1;
			rc->usage.prompt = g.head.prompt;
			rc->usage.completion = g.head.completion;
			rc->usage.cached = g.head.cached;
			rc->usage.known = 1;
			rc->estimated = g.head.estimated;
		} else {
			json_object_put(*reply);
			*reply = NULL;
		}
	} else if (st != STORE_NOTFOUND)
		log_warn("rcache: lookup failed: %s", store_error());
	free(g.body);
	return rc->hit ? 1 : st < 0 ? -1 : 0;
}

void
rcache_mark(struct rcache *rc, struct request *r)
{
	if (rc->mode == RCACHE_USE)
		set_header(r, rc->hit ? METRICS_CACHE_HIT : METRICS_CACHE_MISS);
}

static struct rc_asm *
asm_get(struct rcache *rc)
{
	struct rc_asm	*a = rc->as;
	int		 i;

	if (a != NULL)
		return a;
	if ((a = calloc(1, sizeof(*a))) == NULL) {
		rc->unfit = 1;
		return NULL;
	}
	buf_init(&a->content, RCACHE_ANSWER_MAX);
	buf_init(&a->reasoning, RCACHE_ANSWER_MAX);
	for (i = 0; i < TOOLS_MAX; i++) {
		buf_init(&a->tools[i].name, 1024);
		buf_init(&a->tools[i].args, RCACHE_ANSWER_MAX);
	}
	rc->as = a;
	return a;
}

static void
asm_free(struct rc_asm *a)
{
	int	 i;

	if (a == NULL)
		return;
	json_object_put(a->first);
	buf_free(&a->content);
	buf_free(&a->reasoning);
	for (i = 0; i < TOOLS_MAX; i++) {
		buf_free(&a->tools[i].name);
		buf_free(&a->tools[i].args);
	}
	free(a);
}

static int
append_member(struct buf *b, struct json_object *o, const char *k)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, k, &v) ||
	    !json_object_is_type(v, json_type_string))
		return 0;
	return buf_append(b, json_object_get_string(v),
	    (size_t)json_object_get_string_len(v)) == 0 ? 1 : -1;
}

static void
copy_member(char *dst, size_t len, struct json_object *o, const char *k)
{
	struct json_object	*v;

	if (json_object_object_get_ex(o, k, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(dst, len, "%s", json_object_get_string(v));
}

static int
asm_tools(struct rc_asm *a, struct json_object *calls)
{
	struct json_object	*tc, *v, *fn;
	int64_t			 idx;
	size_t			 i;

	for (i = 0; i < json_object_array_length(calls); i++) {
		tc = json_object_array_get_idx(calls, i);
		idx = json_object_object_get_ex(tc, "index", &v) ?
		    json_object_get_int64(v) : 0;
		if (idx < 0 || idx >= TOOLS_MAX)
			return -1;
		if (idx >= a->ntools)
			a->ntools = (int)idx + 1;
		copy_member(a->tools[idx].id, sizeof(a->tools[idx].id), tc,
		    "id");
		if (json_object_object_get_ex(tc, "function", &fn) &&
		    (append_member(&a->tools[idx].name, fn, "name") == -1 ||
		    append_member(&a->tools[idx].args, fn, "arguments") == -1))
			return -1;
	}
	return 0;
}

void
rcache_chunk(struct rcache *rc, struct json_object *chunk)
{
	struct json_object	*choices, *c, *d, *v;
	struct rc_asm		*a;
	size_t			 i;
	int			 n;

	if (rc->mode < RCACHE_STORE || rc->hit || rc->unfit ||
	    (a = asm_get(rc)) == NULL)
		return;
	if (a->first == NULL)
		a->first = json_object_get(chunk);
	if (!json_object_object_get_ex(chunk, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(choices); i++) {
		c = json_object_array_get_idx(choices, i);
		if (json_object_object_get_ex(c, "index", &v) &&
		    json_object_get_int64(v) != 0) {
			rc->unfit = 1;	/* only one choice is replayed */
			return;
		}
		copy_member(a->finish, sizeof(a->finish), c, "finish_reason");
		if (!json_object_object_get_ex(c, "delta", &d))
			continue;
		copy_member(a->role, sizeof(a->role), d, "role");
		if (json_object_object_get_ex(d, "refusal", &v) &&
		    !json_object_is_type(v, json_type_null)) {
			rc->unfit = 1;	/* not replayed: not kept */
			return;
		}
		if ((n = append_member(&a->content, d, "content")) == -1 ||
		    append_member(&a->reasoning, d, "reasoning_content") ==
		    -1 ||
		    (json_object_object_get_ex(d, "tool_calls", &v) &&
		    json_object_is_type(v, json_type_array) &&
		    asm_tools(a, v) == -1)) {
			rc->unfit = 1;
			return;
		}
		if (n == 1)
			a->has_content = 1;
	}
}

static struct json_object *
jstr(const struct buf *b)
{
	return json_object_new_string_len(b->len > 0 ? b->data : "",
	    (int)b->len);
}

/* The assembled stream as a chat.completion object. */
static struct json_object *
asm_reply(struct rc_asm *a)
{
	struct json_object	*o, *msg, *ch, *arr, *calls, *tc, *fn, *v;
	int			 i;

	o = json_object_new_object();
	msg = json_object_new_object();
	ch = json_object_new_object();
	arr = json_object_new_array();
	if (a->first != NULL && json_object_object_get_ex(a->first, "id", &v))
		json_object_object_add(o, "id", json_object_get(v));
	json_object_object_add(o, "object",
	    json_object_new_string("chat.completion"));
	if (a->first != NULL &&
	    json_object_object_get_ex(a->first, "created", &v))
		json_object_object_add(o, "created", json_object_get(v));
	if (a->first != NULL &&
	    json_object_object_get_ex(a->first, "model", &v))
		json_object_object_add(o, "model", json_object_get(v));
	json_object_object_add(msg, "role", json_object_new_string(
	    a->role[0] ? a->role : "assistant"));
	json_object_object_add(msg, "content", a->has_content || a->ntools == 0
	    ? jstr(&a->content) : NULL);
	if (a->reasoning.len > 0)
		json_object_object_add(msg, "reasoning_content",
		    jstr(&a->reasoning));
	if (a->ntools > 0) {
		calls = json_object_new_array();
		for (i = 0; i < a->ntools; i++) {
			tc = json_object_new_object();
			fn = json_object_new_object();
			json_object_object_add(tc, "id",
			    json_object_new_string(a->tools[i].id));
			json_object_object_add(tc, "type",
			    json_object_new_string("function"));
			json_object_object_add(fn, "name",
			    jstr(&a->tools[i].name));
			json_object_object_add(fn, "arguments",
			    jstr(&a->tools[i].args));
			json_object_object_add(tc, "function", fn);
			json_object_array_add(calls, tc);
		}
		json_object_object_add(msg, "tool_calls", calls);
	}
	json_object_object_add(ch, "index", json_object_new_int(0));
	json_object_object_add(ch, "message", msg);
	json_object_object_add(ch, "finish_reason",
	    json_object_new_string(a->finish[0] ? a->finish : "stop"));
	json_object_array_add(arr, ch);
	json_object_object_add(o, "choices", arr);
	return o;
}

void
rcache_reply(struct rcache *rc, struct json_object *reply)
{
	struct json_object	*choices;

	if (rc->mode < RCACHE_STORE || rc->hit || rc->reply != NULL ||
	    rc->unfit)
		return;
	if (json_object_object_get_ex(reply, "choices", &choices) &&
	    json_object_array_length(choices) > 1) {
		rc->unfit = 1;
		return;
	}
	/* A copy: the output guard restores and redacts the original. */
	if (json_object_deep_copy(reply, &rc->reply, NULL) != 0) {
		json_object_put(rc->reply);
		rc->reply = NULL;
		rc->unfit = 1;
	}
}

struct put_arg {
	const unsigned char	*key;
	const char		*body;
	size_t			 len;
	struct rcache_head	 head;
	int64_t			 max_bytes;
	int64_t			 now;
	struct store_txn	*t;
	struct rcache_total	 total;
	int			 evicted;
};

static void
age_key(unsigned char k[8 + RCACHE_KEY_LEN], int64_t us,
    const unsigned char *hash)
{
	store_be64(k, (uint64_t)us);
	memcpy(k + 8, hash, RCACHE_KEY_LEN);
}

/* Oldest first: evict while over the cap or expired, EVICT_MAX at most. */
static int
evict_cb(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct put_arg		*p = arg;
	struct rcache_age	 age;
	const unsigned char	*hash = (const unsigned char *)k + 8;
	int			 rc;

	if (klen != 8 + RCACHE_KEY_LEN || store_rec(v, vlen, &age,
	    sizeof(age)) == -1)
		return STORE_ERROR;
	if (p->evicted >= EVICT_MAX || (p->total.bytes <= p->max_bytes &&
	    age.expires_us > p->now))
		return STORE_STOP;
	/* The entry just stored is not evicted by its own put. */
	if (memcmp(hash, p->key, RCACHE_KEY_LEN) == 0)
		return 0;
	if ((rc = store_del(p->t, SDB_RCACHE, hash, RCACHE_KEY_LEN)) < 0 ||
	    (rc = store_del(p->t, SDB_RCACHE_BODY, hash, RCACHE_KEY_LEN)) < 0)
		return rc;
	p->total.bytes -= age.size;
	p->total.entries--;
	p->evicted++;
	return STORE_SCAN_DELETE;
}

static int
put_txn(struct store_txn *t, void *a)
{
	struct put_arg		*p = a;
	struct rcache_head	 old;
	struct rcache_age	 age;
	unsigned char		 ak[8 + RCACHE_KEY_LEN], zero[8], from[8];
	int			 rc;

	p->t = t;
	p->evicted = 0;
	memset(zero, 0, sizeof(zero));
	rc = store_get_rec(t, SDB_RCACHE_AGE, zero, sizeof(zero), &p->total,
	    sizeof(p->total), STORE_RMW);
	if (rc == STORE_NOTFOUND) {
		memset(&p->total, 0, sizeof(p->total));
		p->total.version = STORE_VERSION;
	} else if (rc != STORE_OK)
		return rc < 0 ? rc : STORE_ERROR;
	rc = store_get_rec(t, SDB_RCACHE, p->key, RCACHE_KEY_LEN, &old,
	    sizeof(old), STORE_RMW);
	if (rc == STORE_OK) {
		/* Replaced: the old entry leaves the index and the total. */
		age_key(ak, old.stored_us, p->key);
		if ((rc = store_del(t, SDB_RCACHE_AGE, ak, sizeof(ak))) < 0)
			return rc;
		p->total.bytes -= (int64_t)old.len + ENTRY_OVERHEAD;
		p->total.entries--;
	} else if (rc != STORE_NOTFOUND)
		return rc < 0 ? rc : STORE_ERROR;
	memset(&age, 0, sizeof(age));
	age.version = STORE_VERSION;
	age.size = (uint32_t)(p->len + ENTRY_OVERHEAD);
	age.expires_us = p->head.expires_us;
	age_key(ak, p->head.stored_us, p->key);
	if ((rc = store_put(t, SDB_RCACHE, p->key, RCACHE_KEY_LEN, &p->head,
	    sizeof(p->head))) < 0 ||
	    (rc = store_put(t, SDB_RCACHE_BODY, p->key, RCACHE_KEY_LEN,
	    p->body, p->len)) < 0 ||
	    (rc = store_put(t, SDB_RCACHE_AGE, ak, sizeof(ak), &age,
	    sizeof(age))) < 0)
		return rc;
	p->total.bytes += age.size;
	p->total.entries++;
	store_be64(from, 1);
	if ((rc = store_scan(t, SDB_RCACHE_AGE, NULL, 0, from, sizeof(from),
	    0, evict_cb, p)) < 0)
		return rc;
	if (p->total.bytes < 0)
		p->total.bytes = 0;
	if (p->total.entries < 0)
		p->total.entries = 0;
	return store_put(t, SDB_RCACHE_AGE, zero, sizeof(zero), &p->total,
	    sizeof(p->total));
}

int
rcache_put(struct rcache *rc, struct store *s, const struct usage *u,
    int estimated)
{
	struct json_object	*reply = NULL, *uo;
	struct put_arg		 p;
	const char		*text;
	size_t			 len;
	int			 st, rv = -1;

	if (rc->mode < RCACHE_STORE || rc->hit || rc->unfit || s == NULL)
		return -1;
	if (rc->reply != NULL)
		reply = json_object_get(rc->reply);
	else if (rc->as != NULL && (reply = asm_reply(rc->as)) != NULL) {
		/* The usage the client of the stream would have seen. */
		uo = json_object_new_object();
		json_object_object_add(uo, "prompt_tokens",
		    json_object_new_int64(u->prompt));
		json_object_object_add(uo, "completion_tokens",
		    json_object_new_int64(u->completion));
		json_object_object_add(uo, "total_tokens",
		    json_object_new_int64(u->prompt + u->completion));
		json_object_object_add(reply, "usage", uo);
	}
	if (reply == NULL)
		return -1;
	text = json_object_to_json_string_length(reply,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	if (text == NULL || len == 0 || len > RCACHE_ANSWER_MAX ||
	    (int64_t)len + ENTRY_OVERHEAD > rc->max_bytes)
		goto out;
	memset(&p, 0, sizeof(p));
	p.key = rc->key;
	p.body = text;
	p.len = len;
	p.max_bytes = rc->max_bytes;
	p.now = wall_us();
	p.head.version = STORE_VERSION;
	p.head.estimated = estimated != 0;
	p.head.len = (uint32_t)len;
	p.head.stored_us = p.now;
	p.head.expires_us = p.now + (int64_t)rc->ttl * 1000000;
	p.head.prompt = u->prompt;
	p.head.completion = u->completion;
	p.head.cached = u->cached;
	if ((st = store_txn(s, put_txn, &p)) < 0)
		log_warn("rcache: store failed: %s", store_error());
	else
		rv = 0;
out:
	json_object_put(reply);
	return rv;
}

/* One chat.completion.chunk of the replay around one choice. */
static struct json_object *
chunk_new(struct json_object *reply, struct json_object *choice)
{
	struct json_object	*o, *v, *arr;

	o = json_object_new_object();
	if (json_object_object_get_ex(reply, "id", &v))
		json_object_object_add(o, "id", json_object_get(v));
	json_object_object_add(o, "object",
	    json_object_new_string("chat.completion.chunk"));
	if (json_object_object_get_ex(reply, "created", &v))
		json_object_object_add(o, "created", json_object_get(v));
	if (json_object_object_get_ex(reply, "model", &v))
		json_object_object_add(o, "model", json_object_get(v));
	arr = json_object_new_array();
	if (choice != NULL)
		json_object_array_add(arr, choice);
	json_object_object_add(o, "choices", arr);
	return o;
}

static struct json_object *
delta_choice(struct json_object *delta, struct json_object *finish)
{
	struct json_object	*c = json_object_new_object();

	json_object_object_add(c, "index", json_object_new_int(0));
	json_object_object_add(c, "delta", delta);
	json_object_object_add(c, "finish_reason", finish);
	return c;
}

struct json_object *
rcache_chunks(struct json_object *reply, const struct usage *u,
    int include_usage)
{
	struct json_object	*out, *choices, *c0, *msg, *d, *v, *calls;
	struct json_object	*tc, *fin, *uo, *ch;
	size_t			 i;

	out = json_object_new_array();
	if (!json_object_object_get_ex(reply, "choices", &choices) ||
	    (c0 = json_object_array_get_idx(choices, 0)) == NULL ||
	    !json_object_object_get_ex(c0, "message", &msg))
		return out;
	/* Role and content (and reasoning) in the first chunk. */
	d = json_object_new_object();
	json_object_object_add(d, "role", json_object_new_string("assistant"));
	if (json_object_object_get_ex(msg, "reasoning_content", &v) &&
	    json_object_is_type(v, json_type_string))
		json_object_object_add(d, "reasoning_content",
		    json_object_get(v));
	if (json_object_object_get_ex(msg, "content", &v) &&
	    json_object_is_type(v, json_type_string))
		json_object_object_add(d, "content", json_object_get(v));
	json_object_array_add(out, chunk_new(reply, delta_choice(d, NULL)));
	/* Each tool call whole, with its index. */
	if (json_object_object_get_ex(msg, "tool_calls", &calls) &&
	    json_object_is_type(calls, json_type_array))
		for (i = 0; i < json_object_array_length(calls); i++) {
			tc = NULL;
			json_object_deep_copy(json_object_array_get_idx(calls,
			    i), &tc, NULL);
			if (tc == NULL)
				continue;
			json_object_object_add(tc, "index",
			    json_object_new_int((int)i));
			v = json_object_new_array();
			json_object_array_add(v, tc);
			d = json_object_new_object();
			json_object_object_add(d, "tool_calls", v);
			json_object_array_add(out, chunk_new(reply,
			    delta_choice(d, NULL)));
		}
	fin = json_object_object_get_ex(c0, "finish_reason", &v) ?
	    json_object_get(v) : json_object_new_string("stop");
	json_object_array_add(out, chunk_new(reply,
	    delta_choice(json_object_new_object(), fin)));
	if (include_usage) {
		ch = chunk_new(reply, NULL);
		uo = json_object_new_object();
		json_object_object_add(uo, "prompt_tokens",
		    json_object_new_int64(u->prompt));
		json_object_object_add(uo, "completion_tokens",
		    json_object_new_int64(u->completion));
		json_object_object_add(uo, "total_tokens",
		    json_object_new_int64(u->prompt + u->completion));
		json_object_object_add(ch, "usage", uo);
		json_object_array_add(out, ch);
	}
	return out;
}

money_t
rcache_hit_cost(const struct rcache *rc)
{
	struct money_sum	 sum = { 0, 0 };

	money_sum_add(&sum, rc->usage.prompt + rc->usage.completion,
	    rc->hit_price);
	return money_sum_total(&sum);
}

void
rcache_free(struct rcache *rc)
{
	json_object_put(rc->reply);
	rc->reply = NULL;
	asm_free(rc->as);
	rc->as = NULL;
	semantic_free(rc->sem);
	rc->sem = NULL;
}

struct stats_arg {
	struct rcache_stats	*st;
	struct store_txn	*t;
};

static int
stats_age_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct stats_arg	*a = arg;
	struct rcache_age	 age;
	struct rcache_head	 head;
	int			 rc;

	if (klen != 8 + RCACHE_KEY_LEN || store_rec(v, vlen, &age,
	    sizeof(age)) == -1)
		return STORE_ERROR;
	a->st->index_bytes += age.size;
	a->st->index_entries++;
	rc = store_get_rec(a->t, SDB_RCACHE, (const unsigned char *)k + 8,
	    RCACHE_KEY_LEN, &head, sizeof(head), 0);
	if (rc == STORE_NOTFOUND)
		a->st->orphans++;
	else if (rc != STORE_OK)
		return rc < 0 ? rc : STORE_ERROR;
	return 0;
}

static int
stats_head_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct stats_arg	*a = arg;

	(void)k;
	(void)klen;
	(void)v;
	(void)vlen;
	a->st->heads++;
	return 0;
}

static int
stats_txn(struct store_txn *t, void *arg)
{
	struct stats_arg	*a = arg;
	struct rcache_total	 total;
	unsigned char		 zero[8], from[8];
	int			 rc;

	memset(a->st, 0, sizeof(*a->st));
	a->t = t;
	memset(zero, 0, sizeof(zero));
	rc = store_get_rec(t, SDB_RCACHE_AGE, zero, sizeof(zero), &total,
	    sizeof(total), 0);
	if (rc == STORE_OK) {
		a->st->total_bytes = total.bytes;
		a->st->total_entries = total.entries;
	} else if (rc != STORE_NOTFOUND)
		return rc < 0 ? rc : STORE_ERROR;
	store_be64(from, 1);
	if ((rc = store_scan(t, SDB_RCACHE_AGE, NULL, 0, from, sizeof(from), 0,
	    stats_age_cb, a)) < 0)
		return rc;
	return store_scan(t, SDB_RCACHE, NULL, 0, NULL, 0, 0, stats_head_cb,
	    a);
}

int
rcache_stats(struct store *s, struct rcache_stats *st)
{
	struct stats_arg	 a;

	a.st = st;
	return store_read(s, stats_txn, &a);
}
