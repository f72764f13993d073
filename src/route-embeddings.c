/*
 * route-embeddings.c: POST /v1/embeddings: validation, and the shaping of
 * the answer common to every protocol (served model, base64, estimated
 * usage); each protocol's own request and reply are its embeddings slots
 * in provider_ops.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "call.h"
#include "account.h"
#include "config.h"
#include "embeddings.h"
#include "log.h"
#include "policy.h"
#include "route.h"
#include "usage.h"
#include "validate.h"

#define NRULES(a)	(sizeof(a) / sizeof((a)[0]))
#define UNBOUNDED	1, 0, 0

/* Room for what a protocol wraps around the client's input (Gemini). */
#define CALL_SLACK	((size_t)EMBEDDINGS_INPUT_MAX * 640)

static const struct field_rule rules[] = {
	{ "model", J_STRING, 1, 1, 255, 0 },
	{ "input", J_STRING | J_ARRAY, 1, UNBOUNDED },
	{ "encoding_format", J_STRING | J_NULL, 0, UNBOUNDED },
	{ "dimensions", J_INT | J_NULL, 0, 1, 65536, 0 },
	{ "user", J_STRING | J_NULL, 0, 0, 512, 0 },
};

static int
refuse(struct verr *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
refuse(struct verr *e, const char *param, const char *fmt, ...)
{
	va_list	 ap;

	snprintf(e->param, sizeof(e->param), "%s", param);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

/* A non-empty array of token ids (non-negative integers). */
static int
token_list(struct json_object *a)
{
	struct json_object	*v;
	size_t			 i, n;

	if (!json_object_is_type(a, json_type_array) ||
	    (n = json_object_array_length(a)) == 0)
		return 0;
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(a, i);
		if (!json_object_is_type(v, json_type_int) ||
		    json_object_get_int64(v) < 0)
			return 0;
	}
	return 1;
}

enum embeddings_input
embeddings_input_kind(struct json_object *in)
{
	struct json_object	*first;

	if (json_object_is_type(in, json_type_string))
		return EMBEDDINGS_TEXT;
	first = json_object_array_get_idx(in, 0);
	if (json_object_is_type(first, json_type_int))
		return EMBEDDINGS_TOKENS;
	if (json_object_is_type(first, json_type_array))
		return EMBEDDINGS_TOKEN_LISTS;
	return EMBEDDINGS_TEXTS;
}

size_t
embeddings_input_count(struct json_object *in)
{
	enum embeddings_input	 k = embeddings_input_kind(in);

	return k == EMBEDDINGS_TEXT || k == EMBEDDINGS_TOKENS ? 1 :
	    json_object_array_length(in);
}

static int
check_input(struct json_object *in, struct verr *e)
{
	struct json_object	*v;
	enum embeddings_input		 kind = embeddings_input_kind(in);
	char			 param[32];
	size_t			 i;

	if (kind == EMBEDDINGS_TEXT)
		return json_object_get_string_len(in) > 0 ? 0 :
		    refuse(e, "input", "'input' must not be an empty string");
	if (json_object_array_length(in) == 0)
		return refuse(e, "input", "'input' must not be an empty array");
	/* One input as token ids may be longer than the list limit. */
	if (kind != EMBEDDINGS_TOKENS &&
	    json_object_array_length(in) > EMBEDDINGS_INPUT_MAX)
		return refuse(e, "input", "'input' may hold at most %d inputs",
		    EMBEDDINGS_INPUT_MAX);
	if (kind == EMBEDDINGS_TOKENS)
		return token_list(in) ? 0 : refuse(e, "input", "'input' as "
		    "token ids must hold only non-negative integers");
	for (i = 0; i < json_object_array_length(in); i++) {
		v = json_object_array_get_idx(in, i);
		snprintf(param, sizeof(param), "input[%zu]", i);
		if (kind == EMBEDDINGS_TOKEN_LISTS && !token_list(v))
			return refuse(e, param, "'%s' must be a non-empty array "
			    "of token ids like input[0]", param);
		if (kind == EMBEDDINGS_TEXTS && !json_object_is_type(v, json_type_string))
			return refuse(e, param, "'%s' must be a string, not %s",
			    param, json_type_label(v));
		if (kind == EMBEDDINGS_TEXTS && json_object_get_string_len(v) == 0)
			return refuse(e, param, "'%s' must not be an empty "
			    "string", param);
	}
	return 0;
}

int
embeddings_validate(struct json_object *req, struct verr *e)
{
	struct json_object	*v;
	const char		*fmt;

	if (!json_object_is_type(req, json_type_object))
		return refuse(e, "", "request body must be a JSON object, not "
		    "%s", json_type_label(req));
	if (validate_fields(req, rules, NRULES(rules), "", e) == -1)
		return -1;
	if (json_object_object_get_ex(req, "encoding_format", &v) &&
	    v != NULL) {
		fmt = json_object_get_string(v);
		if (strcmp(fmt, "float") != 0 && strcmp(fmt, "base64") != 0)
			return refuse(e, "encoding_format", "'encoding_format' "
			    "must be 'float' or 'base64', not '%s'", fmt);
	}
	json_object_object_get_ex(req, "input", &v);
	return check_input(v, e);
}

/* base64 written in groups of four characters, flushed to out in runs. */
struct b64 {
	struct buf	*out;
	unsigned char	 in[3];
	size_t		 nin;
	char		 run[256];
	size_t		 nrun;
	int		 err;
};

static void
b64_flush(struct b64 *b)
{
	if (b->nrun > 0 && buf_append(b->out, b->run, b->nrun) != BUF_OK)
		b->err = -1;
	b->nrun = 0;
}

static void
b64_group(struct b64 *b)
{
	static const char	 abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned long		 v;
	char			*p;

	v = (unsigned long)b->in[0] << 16 |
	    (unsigned long)(b->nin > 1 ? b->in[1] : 0) << 8 |
	    (unsigned long)(b->nin > 2 ? b->in[2] : 0);
	if (b->nrun + 4 > sizeof(b->run))
		b64_flush(b);
	p = b->run + b->nrun;
	p[0] = abc[v >> 18 & 63];
	p[1] = abc[v >> 12 & 63];
	p[2] = b->nin > 1 ? abc[v >> 6 & 63] : '=';
	p[3] = b->nin > 2 ? abc[v & 63] : '=';
	b->nrun += 4;
	b->nin = 0;
}

int
embeddings_base64(struct json_object *values, struct buf *out)
{
	struct json_object	*v;
	struct b64		 b;
	uint32_t		 bits;
	float			 f;
	size_t			 i, n;
	int			 k;

	if (!json_object_is_type(values, json_type_array))
		return -1;
	memset(&b, 0, sizeof(b));
	b.out = out;
	n = json_object_array_length(values);
	for (i = 0; i < n; i++) {
		v = json_object_array_get_idx(values, i);
		if (!json_object_is_type(v, json_type_double) &&
		    !json_object_is_type(v, json_type_int))
			return -1;
		f = (float)json_object_get_double(v);
		memcpy(&bits, &f, sizeof(bits));
		/* Little-endian whatever the host's order. */
		for (k = 0; k < 4; k++) {
			b.in[b.nin++] = (unsigned char)(bits >> (8 * k));
			if (b.nin == 3)
				b64_group(&b);
		}
	}
	if (b.nin > 0)
		b64_group(&b);
	b64_flush(&b);
	return b.err;
}

/* One vector as the client asked for it: the floats, or their base64. */
static struct json_object *
vector(struct json_object *values, int base64)
{
	struct json_object	*s = NULL;
	struct buf		 b;

	if (!base64)
		return json_object_get(values);
	buf_init(&b, json_object_array_length(values) * 6 + 8);
	if (embeddings_base64(values, &b) == 0)
		s = json_object_new_string_len(b.data ? b.data : "",
		    (int)b.len);
	buf_free(&b);
	return s;
}

static int
wants_base64(struct json_object *req)
{
	struct json_object	*v;

	return json_object_object_get_ex(req, "encoding_format", &v) &&
	    v != NULL && strcmp(json_object_get_string(v), "base64") == 0;
}

/*
 * The prompt tokens when the upstream gives none: about four characters
 * a token for text (Gemini counts nothing), exact for token ids.
 */
static int64_t
estimate_tokens(struct json_object *in)
{
	struct json_object	*v;
	int64_t			 chars = 0, tokens = 0;
	size_t			 i;

	switch (embeddings_input_kind(in)) {
	case EMBEDDINGS_TEXT:
		chars = json_object_get_string_len(in);
		break;
	case EMBEDDINGS_TOKENS:
		return (int64_t)json_object_array_length(in);
	case EMBEDDINGS_TOKEN_LISTS:
		for (i = 0; i < json_object_array_length(in); i++)
			tokens += (int64_t)json_object_array_length(
			    json_object_array_get_idx(in, i));
		return tokens;
	case EMBEDDINGS_TEXTS:
		for (i = 0; i < json_object_array_length(in); i++) {
			v = json_object_array_get_idx(in, i);
			chars += json_object_get_string_len(v);
		}
		break;
	}
	return (chars + 3) / 4;
}

static void
malformed(struct provider_error *e, const struct candidate *c)
{
	provider_error_set(e, "upstream_error", "bad_upstream_response",
	    "provider '%s' returned malformed embeddings", c->provider->name);
}

/* The protocol of c when it embeds, else NULL. */
static const struct provider_ops *
embedder(const struct candidate *c)
{
	const struct provider_ops	*p = provider_ops_for(c->provider->type);

	return p != NULL && p->embeddings_request != NULL &&
	    p->embeddings_response != NULL ? p : NULL;
}

int
embeddings_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	const struct provider_ops	*p;

	if ((p = embedder(c)) == NULL) {
		provider_error_set(e, "invalid_request_error",
		    "unsupported_request", "embeddings are not supported by "
		    "provider type %s", provider_type_names[c->provider->type]);
		snprintf(e->param, sizeof(e->param), "model");
		return -1;
	}
	return p->embeddings_request(c, req, call, e);
}

/*
 * What every protocol's list gets: float vectors encoded when base64 was
 * asked (a provider's own base64 passes as it came), the served model's
 * name, and usage estimated when the upstream gave none.
 */
static int
shape(const struct candidate *c, struct json_object *req,
    struct json_object *o, struct usage *u)
{
	struct json_object	*data, *item, *emb, *s, *in;
	size_t			 i;
	int			 base64 = wants_base64(req);

	if (!json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array))
		return -1;
	for (i = 0; base64 && i < json_object_array_length(data); i++) {
		item = json_object_array_get_idx(data, i);
		if (!json_object_object_get_ex(item, "embedding", &emb) ||
		    !json_object_is_type(emb, json_type_array))
			continue;
		if ((s = vector(emb, 1)) == NULL)
			return -1;
		json_object_object_add(item, "embedding", s);
	}
	json_object_object_add(o, "model", json_object_new_string(c->name));
	if (!u->known) {
		json_object_object_get_ex(req, "input", &in);
		u->prompt = estimate_tokens(in);
		s = json_object_new_object();
		json_object_object_add(s, "prompt_tokens",
		    json_object_new_int64(u->prompt));
		json_object_object_add(s, "total_tokens",
		    json_object_new_int64(u->prompt));
		json_object_object_add(o, "usage", s);
	}
	return 0;
}

int
embeddings_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	const struct provider_ops	*p;

	memset(u, 0, sizeof(*u));
	*out = NULL;
	if ((p = embedder(c)) == NULL) {
		malformed(e, c);
		return -1;
	}
	if (p->embeddings_response(c, req, body, len, out, u, e) == -1)
		return -1;
	if (shape(c, req, *out, u) == -1) {
		json_object_put(*out);
		*out = NULL;
		malformed(e, c);
		return -1;
	}
	return 0;
}

/* The embeddings request the JSON call carries. */
struct emb {
	struct json_object	*req;
	struct usage		 usage;
};

static int
emb_build(void *ctx, const struct candidate *c, const struct provider_ops *p,
    struct provider_call *call, struct provider_error *e)
{
	struct emb	*em = ctx;

	return embeddings_request(c, em->req, call, e);
}

static int
emb_reply(void *ctx, const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct provider_error *e)
{
	struct emb	*em = ctx;

	return embeddings_response(c, em->req, body, len, out, &em->usage, e);
}

static const struct jcall_ops emb_ops = {
	.build = emb_build,
	.reply = emb_reply,
};

int
route_embeddings(struct request *r, const char *arg)
{
	struct jcall		 jc;
	struct emb		 em;
	struct json_object	*v;
	struct verr		 e;
	const char		*model;
	int			 rc;

	memset(&e, 0, sizeof(e));
	memset(&em, 0, sizeof(em));
	em.req = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (em.req == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	if (embeddings_validate(em.req, &e) == -1) {
		rc = http_error(r, 400, "invalid_request_error",
		    "invalid_value", e.param[0] ? e.param : NULL, "%s",
		    e.message);
		goto out;
	}
	json_object_object_get_ex(em.req, "model", &v);
	model = json_object_get_string(v);
	memset(&jc, 0, sizeof(jc));
	jc.r = r;
	jc.ops = &emb_ops;
	jc.ctx = &em;
	jc.req = em.req;
	jc.proute = POLICY_EMBEDDINGS;
	jc.body_max = (size_t)r->cfg->gw.max_body * 2 + CALL_SLACK;
	/* A token is at least a byte of the body: the bound is reserved. */
	jc.prompt_est = (int64_t)r->body.len;
	rc = jcall_run(&jc, model);
	jcall_record(&jc, model, &em.usage, r->served[0] ?
	    account_cost(jc.call.cand, &em.usage, &jc.flags) : 0);
out:
	json_object_put(em.req);
	return rc;
}

/* An internal call: the request, its usage and the vector kept. */
struct internal {
	struct emb		 em;
	struct json_object	*vec;		/* data[0].embedding */
};

static int
internal_build(struct call *c, const struct candidate *cand,
    const struct provider_ops *p, struct provider_call *pc,
    struct provider_error *e)
{
	struct internal	*in = c->ctx;

	return embeddings_request(cand, in->em.req, pc, e);
}

/* call_ops.deliver of an internal call: the vector is kept, never sent. */
static enum call_delivery
internal_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	struct internal		*in = c->ctx;
	struct json_object	*out = NULL, *data, *emb;

	if (resp->result != UP_OK)
		return CALL_UNSENT;
	if (embeddings_response(c->cand, in->em.req, resp->body.data,
	    resp->body.len, &out, &in->em.usage, e) == -1) {
		provider_error_redact(e, c->cand->provider);
		return CALL_MALFORMED;
	}
	if (!json_object_object_get_ex(out, "data", &data) ||
	    !json_object_object_get_ex(json_object_array_get_idx(data, 0),
	    "embedding", &emb) || !json_object_is_type(emb, json_type_array)) {
		json_object_put(out);
		malformed(e, c->cand);
		return CALL_MALFORMED;
	}
	json_object_put(in->vec);
	in->vec = json_object_get(emb);
	json_object_put(out);
	return CALL_SENT;
}

static const struct call_ops internal_ops = {
	.build = internal_build,
	.deliver = internal_deliver,
};

static enum plan_skip
internal_policy(void *ctx, const struct candidate *c)
{
	return account_policy(ctx, c);
}

/*
 * Its own usage row: not admitted on its own (the chat request it serves
 * was), so settled without a reservation.
 */
static void
internal_record(struct request *r, const char *model, const struct call *c,
    int status, const struct usage *tok)
{
	struct usage_row	 u;
	struct account		 acct;
	int			 served = status == 200 && c->cand != NULL;

	memset(&acct, 0, sizeof(acct));
	account_row(r, &u);
	snprintf(u.route, sizeof(u.route), "embeddings");
	snprintf(u.requested, sizeof(u.requested), "%s", model);
	if (served) {
		snprintf(u.served, sizeof(u.served), "%s", c->cand->name);
		snprintf(u.provider, sizeof(u.provider), "%s",
		    c->cand->provider->name);
		u.prompt = tok->prompt;
		u.estimated = !tok->known;
		u.cost = account_cost(c->cand, tok, &u.flags);
	}
	u.flags |= USAGE_SEMANTIC;
	u.status = (uint16_t)(status != 0 ? status : 499);
	u.attempts = (uint16_t)c->attempts;
	account_settle(r, &acct, &u);
}

struct json_object *
embeddings_internal(struct request *r, const struct guard *g,
    const char *model, const char *text)
{
	struct internal		*in;
	struct plan		*pl;
	struct call		 c;
	struct json_object	*vec = NULL;
	int			 status;

	/* A plan is large for a worker's stack. */
	if ((in = calloc(1, sizeof(*in))) == NULL ||
	    (pl = calloc(1, sizeof(*pl))) == NULL) {
		free(in);
		return NULL;
	}
	if ((in->em.req = json_object_new_object()) == NULL)
		goto out;
	json_object_object_add(in->em.req, "model",
	    json_object_new_string(model));
	json_object_object_add(in->em.req, "input",
	    json_object_new_string(text));
	if (plan_resolve_routed(r->cfg, model, NULL, NULL, internal_policy, r,
	    pl) != PLAN_OK || pl->n == 0) {
		log_warn("%s: semantic cache: model %s cannot embed for this "
		    "key: %s", r->id, model, pl->why[0] ? pl->why :
		    "not configured");
		goto out;
	}
	if (policy_plan_quiet(r, g, pl) == -1)
		goto out;
	call_init(&c, r, pl, &internal_ops, in,
	    strlen(text) * 2 + CALL_SLACK);
	c.quiet = 1;
	status = call_run(&c);
	internal_record(r, model, &c, status, &in->em.usage);
	if (status == 200) {
		vec = in->vec;
		in->vec = NULL;
	} else
		log_warn("%s: semantic cache: embedding with %s failed: %s "
		    "(%d)", r->id, model, c.err.message, status);
out:
	json_object_put(in->vec);
	json_object_put(in->em.req);
	free(pl);
	free(in);
	return vec;
}
