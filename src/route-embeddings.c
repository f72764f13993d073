/*
 * route-embeddings.c: POST /v1/embeddings for OpenAI-compatible and Gemini
 * providers, and the loop of one non-streamed JSON call (retries,
 * fallbacks, the last error) that route-images.c shares.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "breaker.h"
#include "config.h"
#include "embeddings.h"
#include "log.h"
#include "route.h"
#include "upstream.h"
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

/* The shapes OpenAI accepts for input. */
enum input_kind {
	IN_TEXT,		/* "text" */
	IN_TEXTS,		/* ["a", "b"] */
	IN_TOKENS,		/* [1, 2, 3]: one input as token ids */
	IN_TOKEN_LISTS,		/* [[1, 2], [3]] */
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

/* The shape of an input, judged by its first member. */
static enum input_kind
input_kind(struct json_object *in)
{
	struct json_object	*first;

	if (json_object_is_type(in, json_type_string))
		return IN_TEXT;
	first = json_object_array_get_idx(in, 0);
	if (json_object_is_type(first, json_type_int))
		return IN_TOKENS;
	if (json_object_is_type(first, json_type_array))
		return IN_TOKEN_LISTS;
	return IN_TEXTS;
}

/* How many embeddings the input asks for. */
static size_t
input_count(struct json_object *in)
{
	enum input_kind	 k = input_kind(in);

	return k == IN_TEXT || k == IN_TOKENS ? 1 :
	    json_object_array_length(in);
}

static int
check_input(struct json_object *in, struct verr *e)
{
	struct json_object	*v;
	enum input_kind		 kind = input_kind(in);
	char			 param[32];
	size_t			 i;

	if (kind == IN_TEXT)
		return json_object_get_string_len(in) > 0 ? 0 :
		    refuse(e, "input", "'input' must not be an empty string");
	if (json_object_array_length(in) == 0)
		return refuse(e, "input", "'input' must not be an empty array");
	/* One input as token ids may be longer than the list limit. */
	if (kind != IN_TOKENS &&
	    json_object_array_length(in) > EMBEDDINGS_INPUT_MAX)
		return refuse(e, "input", "'input' may hold at most %d inputs",
		    EMBEDDINGS_INPUT_MAX);
	if (kind == IN_TOKENS)
		return token_list(in) ? 0 : refuse(e, "input", "'input' as "
		    "token ids must hold only non-negative integers");
	for (i = 0; i < json_object_array_length(in); i++) {
		v = json_object_array_get_idx(in, i);
		snprintf(param, sizeof(param), "input[%zu]", i);
		if (kind == IN_TOKEN_LISTS && !token_list(v))
			return refuse(e, param, "'%s' must be a non-empty array "
			    "of token ids like input[0]", param);
		if (kind == IN_TEXTS && !json_object_is_type(v, json_type_string))
			return refuse(e, param, "'%s' must be a string, not %s",
			    param, json_type_label(v));
		if (kind == IN_TEXTS && json_object_get_string_len(v) == 0)
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

	switch (input_kind(in)) {
	case IN_TEXT:
		chars = json_object_get_string_len(in);
		break;
	case IN_TOKENS:
		return (int64_t)json_object_array_length(in);
	case IN_TOKEN_LISTS:
		for (i = 0; i < json_object_array_length(in); i++)
			tokens += (int64_t)json_object_array_length(
			    json_object_array_get_idx(in, i));
		return tokens;
	case IN_TEXTS:
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

static void
unsupported(struct provider_error *e, const char *param, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));

static void
unsupported(struct provider_error *e, const char *param, const char *fmt,
    ...)
{
	char	 msg[sizeof(e->message)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	provider_error_set(e, "invalid_request_error", "unsupported_request",
	    "%s", msg);
	snprintf(e->param, sizeof(e->param), "%s", param);
}

/* OpenAI-compatible: the client's request with the upstream model id. */
static int
openai_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	return provider_openai_forward(c, req, "/embeddings", call);
}

/*
 * The upstream's list with the served model name. Base64 asked of a
 * provider that answers floats anyway (some ignore encoding_format) is
 * encoded here; a provider's base64 passes as it came.
 */
static int
openai_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	struct json_object	*o, *data, *item, *emb, *s, *in;
	size_t			 i;
	int			 base64 = wants_base64(req);

	if ((o = provider_parse(body, len)) == NULL ||
	    !json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array))
		goto bad;
	for (i = 0; base64 && i < json_object_array_length(data); i++) {
		item = json_object_array_get_idx(data, i);
		if (!json_object_object_get_ex(item, "embedding", &emb) ||
		    !json_object_is_type(emb, json_type_array))
			continue;
		if ((s = vector(emb, 1)) == NULL)
			goto bad;
		json_object_object_add(item, "embedding", s);
	}
	json_object_object_add(o, "model", json_object_new_string(c->name));
	if (json_object_object_get_ex(o, "usage", &s))
		provider_usage_openai(s, u);
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
	*out = o;
	return 0;
bad:
	json_object_put(o);
	malformed(e, c);
	return -1;
}

/* Gemini's model id without "models/", if it needs no escape in a URL. */
static const char *
gemini_id(const char *upstream)
{
	const char	*id, *s;

	id = strncmp(upstream, "models/", 7) == 0 ? upstream + 7 : upstream;
	if (*id == '\0')
		return NULL;
	for (s = id; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-~@+", *s) == NULL)
			return NULL;
	return id;
}

/* One EmbedContentRequest for one text. */
static struct json_object *
gemini_one(const char *model, struct json_object *text, int64_t dims)
{
	struct json_object	*o, *content, *parts, *part;

	part = json_object_new_object();
	json_object_object_add(part, "text", json_object_get(text));
	parts = json_object_new_array();
	json_object_array_add(parts, part);
	content = json_object_new_object();
	json_object_object_add(content, "parts", parts);
	o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_string(model));
	json_object_object_add(o, "content", content);
	if (dims > 0)
		json_object_object_add(o, "outputDimensionality",
		    json_object_new_int64(dims));
	return o;
}

/*
 * Gemini: embedContent for one string, batchEmbedContents (one request
 * per string, each naming the model) for an array; dimensions becomes
 * outputDimensionality. The key goes in x-goog-api-key, never the URL.
 */
static int
gemini_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*in, *v, *body, *list;
	enum input_kind		 kind;
	const char		*id, *method;
	char			 model[MODEL_NAME_MAX + 8], path[MODEL_NAME_MAX + 64];
	int64_t			 dims = 0;
	size_t			 i;
	int			 rc = 0;

	if ((id = gemini_id(c->upstream)) == NULL) {
		unsupported(e, "model", "model id '%s' of provider '%s' cannot "
		    "be used in a Gemini URL", c->upstream, c->provider->name);
		return -1;
	}
	json_object_object_get_ex(req, "input", &in);
	kind = input_kind(in);
	if (kind == IN_TOKENS || kind == IN_TOKEN_LISTS) {
		unsupported(e, "input", "provider '%s' (type gemini) embeds "
		    "text only, not token ids", c->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(req, "dimensions", &v) &&
	    json_object_is_type(v, json_type_int))
		dims = json_object_get_int64(v);
	snprintf(model, sizeof(model), "models/%s", id);
	if (kind == IN_TEXT) {
		body = gemini_one(model, in, dims);
		method = "embedContent";
	} else {
		list = json_object_new_array();
		for (i = 0; i < json_object_array_length(in); i++)
			json_object_array_add(list, gemini_one(model,
			    json_object_array_get_idx(in, i), dims));
		body = json_object_new_object();
		json_object_object_add(body, "requests", list);
		method = "batchEmbedContents";
	}
	snprintf(path, sizeof(path), "/models/%s:%s", id, method);
	if (provider_body(call, body) == -1 ||
	    provider_url(call, c->provider, path) == -1 ||
	    provider_headers(call, c->provider, "x-goog-api-key", "") == -1)
		rc = -1;
	json_object_put(body);
	return rc;
}

/* The values array of a ContentEmbedding, or NULL. */
static struct json_object *
gemini_values(struct json_object *emb)
{
	struct json_object	*v;

	if (emb == NULL || !json_object_object_get_ex(emb, "values", &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/*
 * {"embedding":{"values":[...]}} or {"embeddings":[{"values":[...]}...]}
 * (one per input, in order) -> the OpenAI list. Gemini reports no token
 * counts, so usage is the estimate.
 */
static int
gemini_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	struct json_object	*o, *in, *embs = NULL, *values, *data, *item;
	struct json_object	*res = NULL, *vec, *usage;
	size_t			 i, n;
	int			 base64 = wants_base64(req);

	json_object_object_get_ex(req, "input", &in);
	n = input_count(in);
	if ((o = provider_parse(body, len)) == NULL)
		goto bad;
	if (input_kind(in) != IN_TEXT &&
	    (!json_object_object_get_ex(o, "embeddings", &embs) ||
	    !json_object_is_type(embs, json_type_array) ||
	    json_object_array_length(embs) != n))
		goto bad;
	data = json_object_new_array();
	res = json_object_new_object();
	json_object_object_add(res, "object", json_object_new_string("list"));
	json_object_object_add(res, "data", data);
	for (i = 0; i < n; i++) {
		if (embs != NULL)
			values = gemini_values(json_object_array_get_idx(embs,
			    i));
		else
			values = json_object_object_get_ex(o, "embedding",
			    &item) ? gemini_values(item) : NULL;
		if (values == NULL || (vec = vector(values, base64)) == NULL)
			goto bad;
		item = json_object_new_object();
		json_object_object_add(item, "object",
		    json_object_new_string("embedding"));
		json_object_object_add(item, "index",
		    json_object_new_int64((int64_t)i));
		json_object_object_add(item, "embedding", vec);
		json_object_array_add(data, item);
	}
	json_object_object_add(res, "model", json_object_new_string(c->name));
	u->prompt = estimate_tokens(in);
	u->known = 0;
	usage = json_object_new_object();
	json_object_object_add(usage, "prompt_tokens",
	    json_object_new_int64(u->prompt));
	json_object_object_add(usage, "total_tokens",
	    json_object_new_int64(u->prompt));
	json_object_object_add(res, "usage", usage);
	json_object_put(o);
	*out = res;
	return 0;
bad:
	json_object_put(res);
	json_object_put(o);
	malformed(e, c);
	return -1;
}

/* The protocols that embed, indexed by provider type. */
static const struct embedder {
	int	(*request)(const struct candidate *, struct json_object *,
		    struct provider_call *, struct provider_error *);
	int	(*response)(const struct candidate *, struct json_object *,
		    const char *, size_t, struct json_object **, struct usage *,
		    struct provider_error *);
} embedders[PROVIDER__MAX] = {
	[PROVIDER_OPENAI] = { openai_request, openai_response },
	[PROVIDER_GEMINI] = { gemini_request, gemini_response },
};

static const struct embedder *
embedder(const struct candidate *c)
{
	if (c->provider->type >= PROVIDER__MAX ||
	    embedders[c->provider->type].request == NULL)
		return NULL;
	return &embedders[c->provider->type];
}

int
embeddings_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	const struct embedder	*em;

	if ((em = embedder(c)) == NULL) {
		unsupported(e, "model", "embeddings are not supported by "
		    "provider type %s", provider_type_names[c->provider->type]);
		return -1;
	}
	return em->request(c, req, call, e);
}

int
embeddings_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	const struct embedder	*em;

	memset(u, 0, sizeof(*u));
	*out = NULL;
	if ((em = embedder(c)) == NULL) {
		malformed(e, c);
		return -1;
	}
	return em->response(c, req, body, len, out, u, e);
}

/* What to do after one attempt of a JSON call. */
enum next {
	NEXT_DONE,		/* the client has its answer */
	NEXT_RETRY,		/* the same candidate again, after a pause */
	NEXT_FALLBACK,		/* the next candidate */
	NEXT_FINAL,		/* answer the client with this error */
};


/* One attempt against jc->cand; resp says how the transfer went. */
static enum next
try_once(struct jcall *jc, struct upstream_resp *resp)
{
	struct request		*r = jc->r;
	struct provider_call	 call;
	struct upstream_req	 req;
	struct provider_error	 perr;
	struct json_object	*out = NULL;
	enum next		 next;

	provider_call_init(&call, (size_t)r->cfg->gw.max_body * 2 +
	    CALL_SLACK);
	memset(&perr, 0, sizeof(perr));
	jc->fail.retry_after = -1;
	if (jc->ops->build(jc->ctx, jc->cand, &call, &perr) == -1) {
		if (perr.message[0] == '\0') {
			retry_fail(&jc->fail, 500, "internal_error", "cannot build the "
			    "request for provider '%s'",
			    jc->cand->provider->name);
			next = NEXT_FINAL;
		} else {
			jc->fail.err = perr;
			jc->fail.status = 400;
			next = NEXT_FALLBACK;
		}
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.url = call.url.data;
	req.headers = call.headers;
	req.body = call.body.data;
	req.body_len = call.body.len;
	req.provider = jc->cand->provider;
	req.max_body = (size_t)r->cfg->gw.max_upstream_body;
	r->attempts = ++jc->attempts;
	upstream_perform(r->worker->curl, &req, resp);
	if (resp->result != UP_OK) {
		switch (retry_judge(r->cfg, jc->cand, resp, r->id, &jc->fail)) {
		case RETRY_SAME:
			next = NEXT_RETRY;
			break;
		case RETRY_FALLBACK:
			next = NEXT_FALLBACK;
			break;
		default:
			next = NEXT_FINAL;
			break;
		}
		goto out;
	}
	if (jc->ops->reply(jc->ctx, jc->cand, resp->body.data, resp->body.len,
	    &out, &perr) == -1) {
		provider_error_redact(&perr, jc->cand->provider);
		jc->fail.err = perr;
		jc->fail.status = 502;
		next = NEXT_RETRY;
		goto out;
	}
	account_served(jc->r, jc->cand, jc->attempts);
	snprintf(r->served, sizeof(r->served), "%s", jc->cand->name);
	if (out != NULL)
		http_send_json(r, 200, out);
	else
		http_send_raw_json(r, 200, resp->body.data, resp->body.len);
	json_object_put(out);
	next = NEXT_DONE;
out:
	provider_call_free(&call);
	return next;
}

static int
answer_error(struct jcall *jc)
{
	struct provider_error	*e = &jc->fail.err;

	account_served(jc->r, jc->cand, jc->attempts);
	if (jc->fail.retry_after >= 0 &&
	    (jc->fail.status == 429 || jc->fail.status == 503))
		http_header(jc->r, "Retry-After", "%ld", jc->fail.retry_after);
	return http_error(jc->r, jc->fail.status ? jc->fail.status : 502,
	    e->type[0] ? e->type : "upstream_error",
	    e->code[0] ? e->code : NULL, e->param[0] ? e->param : NULL,
	    "%s", e->message[0] ? e->message : "upstream failed");
}

/*
 * Resolve model and try each candidate of its plan, each up to
 * retry.attempts times, until one answers; else answer the last error.
 * Returns the HTTP status sent.
 */
int
jcall_run(struct jcall *jc, const char *model)
{
	struct request		*r = jc->r;
	const struct retry_cfg	*rc = &r->cfg->retry;
	struct upstream_resp	 resp;
	struct admit_ask	 ask = { 0, 0, 0, 0, 0 };
	enum next		 next;
	long			 retry_after;
	size_t			 i;
	int			 a, brk_stop;	/* breaker */
	struct breaker_ticket	 brk;	/* breaker */

	jc->fail.retry_after = -1;
	if (!validate_model_name(model))
		return http_error(r, 400, "invalid_request_error",
		    "invalid_value", "model", "'model' may hold only letters, "
		    "digits and . _ - : / @ +");
	if ((a = account_plan(r, model, &jc->plan)) != 0)
		return a;
	ask.prompt = jc->prompt_est;
	ask.prompt_est = (jc->prompt_est + 3) / 4;	/* four bytes a token */
	ask.images = jc->images;
	if ((a = account_admit(r, &jc->plan, &ask, &jc->acct)) != 0) {
		jc->refused = 1;
		return a;
	}
	for (i = 0; i < jc->plan.n; i++) {
		jc->cand = &jc->plan.c[i];
		/* breaker: admit */
		if (breaker_admit(r->cfg, jc->cand, &brk) == BREAKER_SKIP) {
			if (jc->attempts == 0)
				breaker_refusal(&brk, &jc->fail.err,
				    &jc->fail.status, &jc->fail.retry_after);
			continue;
		}
		for (a = 1; a <= rc->attempts; a++) {
			upstream_resp_init(&resp,
			    (size_t)r->cfg->gw.max_upstream_body);
			next = try_once(jc, &resp);
			/* breaker: record (a 2xx not understood counts as failed) */
			brk_stop = breaker_record(&brk, &resp,
			    resp.result == UP_OK && next != NEXT_DONE);
			upstream_resp_free(&resp);
			if (next == NEXT_DONE)
				return r->status;
			retry_after = jc->fail.retry_after;
			log_warn("%s: model %s via %s attempt %d: %s (%d)",
			    r->id, jc->cand->name, jc->cand->provider->name, a,
			    jc->fail.err.message, jc->fail.status);
			if (next == NEXT_FINAL)
				return answer_error(jc);
			if (next == NEXT_FALLBACK || brk_stop ||	/* breaker */
			    a == rc->attempts ||
			    retry_after > rc->retry_after_max)
				break;
			retry_pause(rc, a, retry_after);
		}
	}
	return answer_error(jc);
}

/*
 * The usage line of a JSON call whose plan resolved: tokens (NULL for
 * none) and cost count only when a candidate answered.
 */
void
jcall_record(struct jcall *jc, const char *model, const struct usage *tokens,
    money_t cost)
{
	struct usage_row	 u;
	struct request		*r = jc->r;
	int			 served = r->served[0] != '\0';

	if (jc->plan.n == 0 || (!jc->acct.admitted && !jc->refused))
		return;
	account_row(r, &u);
	snprintf(u.requested, sizeof(u.requested), "%s", model);
	snprintf(u.served, sizeof(u.served), "%s", r->served);
	if (served && jc->cand != NULL)
		snprintf(u.provider, sizeof(u.provider), "%s",
		    jc->cand->provider->name);
	if (served && tokens != NULL) {
		u.prompt = tokens->prompt;
		u.completion = tokens->completion;
		u.cached = tokens->cached;
		u.estimated = !tokens->known;
	}
	u.cost = served ? cost : 0;
	if (served)
		u.flags = jc->flags;
	u.status = (uint16_t)r->status;
	u.attempts = (uint16_t)jc->attempts;
	account_settle(r, &jc->acct, &u);
}

/* The embeddings request the JSON call carries. */
struct emb {
	struct json_object	*req;
	struct usage		 usage;
};

static int
emb_build(void *ctx, const struct candidate *c, struct provider_call *call,
    struct provider_error *e)
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
	/* A token is at least a byte of the body: the bound is reserved. */
	jc.prompt_est = (int64_t)r->body.len;
	rc = jcall_run(&jc, model);
	jcall_record(&jc, model, &em.usage, r->served[0] ?
	    account_cost(jc.cand, &em.usage, &jc.flags) : 0);
out:
	json_object_put(em.req);
	return rc;
}
