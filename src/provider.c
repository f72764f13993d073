/* provider.c: the table of wire protocols and the pieces they share. */
#include <sys/random.h>

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "provider.h"

/* Indexed by enum provider_type; NULL until the protocol is implemented. */
static const struct provider_ops *const ops_table[PROVIDER__MAX] = {
	[PROVIDER_OPENAI] = &provider_openai,
	[PROVIDER_ANTHROPIC] = &provider_anthropic,
	[PROVIDER_GEMINI] = &provider_gemini,
	[PROVIDER_GIGACHAT] = &provider_gigachat,
	[PROVIDER_YANDEX] = &provider_yandex,
};

/* The protocol of a provider type, or NULL when this build has none. */
const struct provider_ops *
provider_ops_for(enum provider_type t)
{
	if (t >= PROVIDER__MAX || ops_table[t] == NULL ||
	    ops_table[t]->chat_request == NULL)
		return NULL;
	return ops_table[t];
}

/* Mark providers whose protocol this build cannot speak as unavailable. */
void
provider_check(struct config *cfg)
{
	struct provider_cfg	*p;
	char			 why[128];
	size_t			 i;

	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		if (provider_ops_for(p->type) != NULL || !p->available)
			continue;
		snprintf(why, sizeof(why), "provider type '%s' is not "
		    "supported by this build", provider_type_names[p->type]);
		p->available = 0;
		free(p->unavailable);
		p->unavailable = strdup(why);
	}
}

void
provider_call_init(struct provider_call *c, size_t max_body)
{
	buf_init(&c->url, 4096);
	buf_init(&c->body, max_body);
	c->headers = NULL;
	c->api_key = NULL;
}

void
provider_call_free(struct provider_call *c)
{
	buf_free(&c->url);
	buf_free(&c->body);
	curl_slist_free_all(c->headers);
	c->headers = NULL;
}

/* base_url + path, with exactly one slash between them. */
int
provider_url(struct provider_call *c, const struct provider_cfg *p,
    const char *path)
{
	size_t	 n = strlen(p->base_url);

	while (n > 0 && p->base_url[n - 1] == '/')
		n--;
	buf_reset(&c->url);
	if (buf_append(&c->url, p->base_url, n) != BUF_OK)
		return -1;
	return buf_printf(&c->url, "%s%s", *path == '/' ? "" : "/", path) ==
	    BUF_OK ? 0 : -1;
}

static int
add_header(struct provider_call *c, const char *h)
{
	struct curl_slist	*n;

	if ((n = curl_slist_append(c->headers, h)) == NULL)
		return -1;
	c->headers = n;
	return 0;
}

/*
 * JSON content type, the provider's extra headers, and the key as
 * "name: prefix key" (e.g. "Authorization", "Bearer ") when there is one.
 */
int
provider_headers(struct provider_call *c, const struct provider_cfg *p,
    const char *key_header, const char *key_prefix)
{
	const char	*key = c->api_key != NULL ? c->api_key : p->api_key;
	struct buf	 h;
	size_t		 i;
	int		 rc = 0;

	if (add_header(c, "Content-Type: application/json") == -1 ||
	    add_header(c, "Expect:") == -1)
		return -1;
	for (i = 0; i < p->headers.n; i++)
		if (add_header(c, p->headers.v[i]) == -1)
			return -1;
	if (key == NULL || key_header == NULL)
		return 0;
	buf_init(&h, 8192);
	if (buf_printf(&h, "%s: %s%s", key_header, key_prefix, key) !=
	    BUF_OK || add_header(c, h.data) == -1)
		rc = -1;
	explicit_bzero(h.data, h.len);
	buf_free(&h);
	return rc;
}

void
provider_error_set(struct provider_error *e, const char *type,
    const char *code, const char *fmt, ...)
{
	va_list	 ap;

	memset(e, 0, sizeof(*e));
	snprintf(e->type, sizeof(e->type), "%s", type);
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static void
copy_field(struct json_object *o, const char *name, char *dst, size_t len)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, name, &v) || v == NULL)
		return;
	/* Integers (OpenRouter's code) are printed as text. */
	snprintf(dst, len, "%s", json_object_get_string(v));
}

/*
 * An OpenAI-style error body {"error":{"message","type","param","code"}};
 * anything else gets a generic message that never echoes the raw body.
 */
void
provider_error_openai(long status, const char *body, size_t len,
    struct provider_error *e)
{
	struct json_object	*o = NULL, *err;
	struct json_tokener	*tok;

	provider_error_set(e, status >= 500 ? "upstream_error" :
	    "invalid_request_error", NULL, "upstream answered HTTP %ld", status);
	if (len > 0 && (tok = json_tokener_new_ex(32)) != NULL) {
		o = json_tokener_parse_ex(tok, body, (int)len);
		json_tokener_free(tok);
	}
	if (o != NULL && json_object_object_get_ex(o, "error", &err)) {
		if (json_object_is_type(err, json_type_object)) {
			copy_field(err, "message", e->message,
			    sizeof(e->message));
			copy_field(err, "type", e->type, sizeof(e->type));
			copy_field(err, "code", e->code, sizeof(e->code));
			copy_field(err, "param", e->param, sizeof(e->param));
		} else if (json_object_is_type(err, json_type_string))
			/* Ollama native: {"error":"..."} */
			snprintf(e->message, sizeof(e->message), "%s",
			    json_object_get_string(err));
	}
	json_object_put(o);
}

/*
 * Credential redaction. Upstream error messages quote what they were sent
 * ("Incorrect API key provided: sk-ab...yz", "Authorization: Bearer ...");
 * such text must reach neither the client nor the log.
 */
#define REDACTED	"[redacted]"
#define SECRET_MIN	8	/* shortest value after a label that is hidden */

/* Words after which the next token is a credential; colon: needs ':' or '='. */
static const struct {
	const char	*word;
	int		 colon;
} labels[] = {
	{ "authorization", 1 },
	{ "proxy-authorization", 1 },
	{ "x-api-key", 1 },
	{ "api_key", 1 },
	{ "apikey", 1 },
	{ "access_token", 1 },
	{ "key", 1 },
	{ "bearer", 0 },
	{ "basic", 0 },
	{ "api-key", 0 },
	{ "oauth", 0 },
};

/* Prefixes of tokens shaped like provider secrets. */
static const char *const secret_prefixes[] = {
	"sk-", "sk_", "key-", "AIza", "ya29.", "t1.", "AQVN",
};

static int
tok_char(char c)
{
	return isalnum((unsigned char)c) ||
	    (c != '\0' && strchr("-_.*+/=~", c) != NULL);
}

static int
word_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_';
}

/* Length of the token at s (a run of tok_char, trailing dots left out). */
static size_t
tok_len(const char *s)
{
	size_t	 n = 0;

	while (tok_char(s[n]))
		n++;
	while (n > 0 && s[n - 1] == '.')
		n--;
	return n;
}

/*
 * A label at s (case-insensitive, a whole word): returns how many bytes
 * of s are the label and its separator, 0 when none; *val is the value.
 */
static size_t
label_at(const char *s, const char **val)
{
	const char	*p;
	size_t		 i, n;
	int		 colon;

	for (i = 0; i < sizeof(labels) / sizeof(labels[0]); i++) {
		n = strlen(labels[i].word);
		if (strncasecmp(s, labels[i].word, n) != 0 || word_char(s[n]))
			continue;
		colon = 0;
		for (p = s + n; *p == ' ' || *p == '\t' || *p == '"' ||
		    *p == '\'' || *p == ':' || *p == '='; p++)
			colon |= *p == ':' || *p == '=';
		if (p == s + n || (labels[i].colon && !colon))
			continue;
		*val = p;
		return (size_t)(p - s);
	}
	return 0;
}

static int
secret_shaped(const char *s, size_t n)
{
	size_t	 i, l;

	for (i = 0; i < sizeof(secret_prefixes) / sizeof(secret_prefixes[0]);
	    i++) {
		l = strlen(secret_prefixes[i]);
		if (n >= l + SECRET_MIN && strncmp(s, secret_prefixes[i], l) == 0)
			return 1;
	}
	return 0;
}

/*
 * The length of the longest key of p found at in (its api_key or a pool
 * key), or 0.
 */
static size_t
key_at(const char *in, const struct provider_cfg *p)
{
	size_t	 i, n, best = 0;

	if (p == NULL)
		return 0;
	if (p->api_key != NULL && (n = strlen(p->api_key)) >= 4 &&
	    strncmp(in, p->api_key, n) == 0)
		best = n;
	for (i = 0; i < p->nkeys; i++)
		if ((n = strlen(p->keys[i])) >= 4 && n > best &&
		    strncmp(in, p->keys[i], n) == 0)
			best = n;
	return best;
}

/*
 * Hide credentials in the text s (size bytes, NUL-terminated), in place:
 * every key of the provider's pool anywhere, the value after a label such as
 * "Bearer", "Authorization:" or "x-api-key:", and tokens shaped like
 * keys (sk-..., key-..., AIza...). Each becomes "[redacted]"; the text
 * is cut to fit.
 */
void
provider_redact(char *s, size_t size, const struct provider_cfg *p)
{
	char		 out[1024];
	const char	*in = s, *val;
	size_t		 o = 0, klen, n, l;
	int		 boundary = 1;

	if (size == 0)
		return;
	if (size > sizeof(out))
		size = sizeof(out);
#define PUT(src, len) do {						\
	l = (len) < size - 1 - o ? (len) : size - 1 - o;		\
	memcpy(out + o, (src), l);					\
	o += l;								\
} while (0)
	while (*in != '\0' && o < size - 1) {
		if ((klen = key_at(in, p)) > 0) {
			PUT(REDACTED, sizeof(REDACTED) - 1);
			in += klen;
			boundary = 0;
			continue;
		}
		if (boundary && (n = label_at(in, &val)) > 0) {
			PUT(in, n);
			in = val;
			if ((l = tok_len(in)) >= SECRET_MIN &&
			    label_at(in, &val) == 0) {
				in += l;
				PUT(REDACTED, sizeof(REDACTED) - 1);
			}
			boundary = 1;
			continue;
		}
		if (boundary && secret_shaped(in, n = tok_len(in))) {
			PUT(REDACTED, sizeof(REDACTED) - 1);
			in += n;
			boundary = 0;
			continue;
		}
		boundary = !word_char(*in);
		out[o++] = *in++;
	}
#undef PUT
	out[o] = '\0';
	memcpy(s, out, o + 1);
}

/* Every text field of an upstream error, redacted for provider p. */
void
provider_error_redact(struct provider_error *e, const struct provider_cfg *p)
{
	provider_redact(e->message, sizeof(e->message), p);
	provider_redact(e->type, sizeof(e->type), p);
	provider_redact(e->code, sizeof(e->code), p);
	provider_redact(e->param, sizeof(e->param), p);
}

/*
 * The adapter's reading of a non-2xx upstream body, redacted: the one way
 * upstream error bodies enter the gateway.
 */
void
provider_error_body(const struct candidate *c, long status, const char *body,
    size_t len, struct provider_error *e)
{
	const struct provider_ops	*ops = provider_ops_for(c->provider->type);

	if (ops != NULL)
		ops->error(status, body, len, e);
	else
		provider_error_openai(status, body, len, e);
	provider_error_redact(e, c->provider);
}

/* ops->chat_event, with an error the event carried redacted. */
int
provider_chat_event(const struct provider_ops *ops, struct stream_state *st,
    const struct sse_event *ev)
{
	int	 rc = ops->chat_event(st, ev);

	if (rc == -1 || st->failed)
		provider_error_redact(&st->err, st->cand->provider);
	return rc;
}

/* ops->chat_response, with an error the body carried redacted. */
int
provider_chat_response(const struct provider_ops *ops,
    const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	int	 rc = ops->chat_response(c, body, len, out, u, e);

	if (rc == -1)
		provider_error_redact(e, c->provider);
	return rc;
}

/* An integer member, or -1 when absent or not an integer. */
int64_t
provider_json_int(struct json_object *o, const char *name)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/*
 * A token count an upstream reported: the integer member clamped to
 * MONEY_TOKENS_MAX (nothing past it is priced), or -1 when absent, not an
 * integer or negative. Counts read this way can be summed without overflow.
 */
int64_t
provider_json_tokens(struct json_object *o, const char *name)
{
	int64_t	 n = provider_json_int(o, name);

	if (n < 0)
		return -1;
	return n > MONEY_TOKENS_MAX ? MONEY_TOKENS_MAX : n;
}

/*
 * OpenAI usage object -> struct usage: cached from prompt_tokens_details
 * (or DeepSeek's prompt_cache_hit_tokens), cache writes from the
 * cache_creation_tokens llmgate adds there.
 */
void
provider_usage_openai(struct json_object *u, struct usage *out)
{
	struct json_object	*d;
	int64_t			 p, c, k;

	if (u == NULL || !json_object_is_type(u, json_type_object))
		return;
	p = provider_json_tokens(u, "prompt_tokens");
	c = provider_json_tokens(u, "completion_tokens");
	if (p < 0 && c < 0)
		return;
	out->prompt = p > 0 ? p : 0;
	out->completion = c > 0 ? c : 0;
	out->cached = 0;
	out->cache_write = 0;
	if (json_object_object_get_ex(u, "prompt_tokens_details", &d) &&
	    json_object_is_type(d, json_type_object)) {
		if ((k = provider_json_tokens(d, "cached_tokens")) > 0)
			out->cached = k;
		/* An llmgate upstream's own field (provider_usage_object). */
		if ((k = provider_json_tokens(d, "cache_creation_tokens")) > 0)
			out->cache_write = k;
	}
	/* DeepSeek: prompt_cache_hit_tokens (+ miss) is prompt_tokens. */
	if (out->cached == 0 &&
	    (k = provider_json_tokens(u, "prompt_cache_hit_tokens")) > 0)
		out->cached = k;
	out->known = 1;
	/* OpenRouter prices each request itself, in USD. */
	if (json_object_object_get_ex(u, "cost", &d) && (json_object_is_type(d,
	    json_type_double) || json_object_is_type(d, json_type_int)) &&
	    json_object_get_double(d) >= 0 &&
	    json_object_get_double(d) < 1e6) {
		out->cost = (money_t)llround(json_object_get_double(d) *
		    (double)MONEY_PER_USD);
		out->cost_known = 1;
	}
}

int64_t
provider_client_max(struct json_object *req)
{
	int64_t	 a = provider_json_int(req, "max_tokens");
	int64_t	 b = provider_json_int(req, "max_completion_tokens");

	if (a <= 0)
		return b > 0 ? b : 0;
	return b > 0 && b < a ? b : a;
}

/* A string member, or NULL when absent or not a string. */
const char *
provider_json_str(struct json_object *o, const char *name)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

/*
 * Parse an upstream body or event as a JSON object (upstreams pad and
 * space their JSON freely). NULL when it is anything else.
 */
struct json_object *
provider_parse(const char *s, size_t n)
{
	struct json_tokener	*tok;
	struct json_object	*o;

	if ((tok = json_tokener_new_ex(PROVIDER_JSON_DEPTH)) == NULL)
		return NULL;
	o = json_tokener_parse_ex(tok, s, (int)n);
	if (o != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	if (o != NULL && !json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		o = NULL;
	}
	return o;
}

/* The OpenAI finish_reason for a provider's own; unknown ones are "stop". */
const char *
provider_finish(const struct finish_map *map, const char *raw)
{
	if (raw == NULL)
		return NULL;
	for (; map->raw != NULL; map++)
		if (strcmp(map->raw, raw) == 0)
			return map->openai;
	return "stop";
}

/*
 * An OpenAI usage object; the caller owns it. prompt_tokens counts every
 * prompt token, those read from and written to a prompt cache too;
 * prompt_tokens_details tells those apart (cached_tokens, and llmgate's
 * cache_creation_tokens).
 */
struct json_object *
provider_usage_object(const struct usage *u)
{
	struct json_object	*o, *d;

	o = json_object_new_object();
	json_object_object_add(o, "prompt_tokens",
	    json_object_new_int64(u->prompt));
	json_object_object_add(o, "completion_tokens",
	    json_object_new_int64(u->completion));
	json_object_object_add(o, "total_tokens",
	    json_object_new_int64(u->prompt + u->completion));
	if (u->cached > 0 || u->cache_write > 0) {
		d = json_object_new_object();
		json_object_object_add(d, "cached_tokens",
		    json_object_new_int64(u->cached));
		/* llmgate's: prompt tokens written to the provider's cache. */
		if (u->cache_write > 0)
			json_object_object_add(d, "cache_creation_tokens",
			    json_object_new_int64(u->cache_write));
		json_object_object_add(o, "prompt_tokens_details", d);
	}
	return o;
}

/*
 * One chat.completion.chunk with a single choice; delta is taken over
 * (NULL for an empty one). The caller owns the result.
 */
struct json_object *
provider_chunk(const struct stream_state *st, struct json_object *delta,
    const char *finish)
{
	struct json_object	*o, *choices, *ch;

	ch = json_object_new_object();
	json_object_object_add(ch, "index", json_object_new_int(0));
	json_object_object_add(ch, "delta",
	    delta ? delta : json_object_new_object());
	json_object_object_add(ch, "logprobs", NULL);
	json_object_object_add(ch, "finish_reason",
	    finish ? json_object_new_string(finish) : NULL);
	choices = json_object_new_array();
	json_object_array_add(choices, ch);
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "object",
	    json_object_new_string("chat.completion.chunk"));
	json_object_object_add(o, "created",
	    json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(o, "model",
	    json_object_new_string(st->cand->name));
	json_object_object_add(o, "choices", choices);
	return o;
}

/* The final usage chunk (choices []), when the client asked for it. */
int
provider_emit_usage(struct stream_state *st)
{
	struct json_object	*o;
	int			 rc;

	if (!st->include_usage)
		return 0;
	o = provider_chunk(st, NULL, NULL);
	json_object_object_add(o, "choices", json_object_new_array());
	json_object_object_add(o, "usage", provider_usage_object(&st->usage));
	rc = st->emit(st->ctx, o);
	json_object_put(o);
	return rc;
}

/* Serialize a request body into call->body. */
int
provider_body(struct provider_call *call, struct json_object *o)
{
	buf_reset(&call->body);
	return buf_puts(&call->body, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)) ==
	    BUF_OK ? 0 : -1;
}

/* Text of an OpenAI content value: a string, or its text parts joined. */
void
provider_content_text(struct json_object *c, struct buf *out)
{
	struct json_object	*part;
	const char		*t;
	size_t			 i;

	if (json_object_is_type(c, json_type_string)) {
		buf_puts(out, json_object_get_string(c));
		return;
	}
	if (!json_object_is_type(c, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		if ((t = provider_json_str(part, "text")) != NULL)
			buf_puts(out, t);
	}
}

/* Emit one chunk with delta (taken over; NULL for an empty one). */
int
provider_emit_chunk(struct stream_state *st, struct json_object *delta,
    const char *finish)
{
	struct json_object	*chunk;
	int			 rc;

	chunk = provider_chunk(st, delta, finish);
	rc = st->emit(st->ctx, chunk);
	json_object_put(chunk);
	return rc;
}

/* Emit one chunk whose delta is {key: v} (an empty delta when key is NULL). */
int
provider_emit_delta(struct stream_state *st, const char *key,
    struct json_object *v, const char *finish)
{
	struct json_object	*d = NULL;

	if (key != NULL) {
		d = json_object_new_object();
		json_object_object_add(d, key, v);
	}
	return provider_emit_chunk(st, d, finish);
}

/* The first chunk of a stream: the assistant's role, empty content. */
int
provider_emit_role(struct stream_state *st)
{
	struct json_object	*d;

	d = json_object_new_object();
	json_object_object_add(d, "role", json_object_new_string("assistant"));
	json_object_object_add(d, "content", json_object_new_string(""));
	return provider_emit_chunk(st, d, NULL);
}

/*
 * prefix + 24 random characters, for the response and tool call ids that
 * some providers do not give and clients want.
 */
void
provider_new_id(char *dst, size_t len, const char *prefix)
{
	static const char	 alphabet[] = "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	unsigned char		 raw[24];
	char			 s[sizeof(raw) + 1];
	ssize_t			 got;
	size_t			 i;

	got = getrandom(raw, sizeof(raw), GRND_NONBLOCK);
	for (i = got > 0 ? (size_t)got : 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)random();
	for (i = 0; i < sizeof(raw); i++)
		s[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	s[sizeof(raw)] = '\0';
	snprintf(dst, len, "%s%s", prefix, s);
}

/*
 * Function arguments as the JSON text OpenAI carries: an object's JSON, a
 * string as it is, "{}" for none. Owned by args (or static).
 */
const char *
provider_args_string(struct json_object *args)
{
	if (args == NULL)
		return "{}";
	if (json_object_is_type(args, json_type_string))
		return json_object_get_string(args);
	return json_object_to_json_string_ext(args, JSON_C_TO_STRING_PLAIN |
	    JSON_C_TO_STRING_NOSLASHESCAPE);
}

/*
 * Append items (taken over) as a turn {"role": role, key: items}; a turn
 * of the same role as the last one merges into it, for protocols that
 * want the roles to alternate. Empty items add nothing.
 */
void
provider_add_turn(struct json_object *turns, const char *role,
    const char *key, struct json_object *items)
{
	struct json_object	*last, *list;
	size_t			 n = json_object_array_length(turns), i;
	const char		*lr;

	if (json_object_array_length(items) == 0) {
		json_object_put(items);
		return;
	}
	if (n > 0) {
		last = json_object_array_get_idx(turns, n - 1);
		lr = provider_json_str(last, "role");
		if (lr != NULL && strcmp(lr, role) == 0 &&
		    json_object_object_get_ex(last, key, &list)) {
			for (i = 0; i < json_object_array_length(items); i++)
				json_object_array_add(list, json_object_get(
				    json_object_array_get_idx(items, i)));
			json_object_put(items);
			return;
		}
	}
	last = json_object_new_object();
	json_object_object_add(last, "role", json_object_new_string(role));
	json_object_object_add(last, key, items);
	json_object_array_add(turns, last);
}

/* Whether the provider's own header lines set name (case-insensitive). */
int
provider_has_header(const struct provider_cfg *p, const char *name)
{
	size_t	 i, n = strlen(name);

	for (i = 0; i < p->headers.n; i++)
		if (strncasecmp(p->headers.v[i], name, n) == 0 &&
		    p->headers.v[i][n] == ':')
			return 1;
	return 0;
}

/*
 * An OpenAI tool call; args is the provider's arguments, an object (sent
 * on as its JSON text), a string (taken as that text) or NULL ("{}").
 */
struct json_object *
provider_tool_call(const char *id, const char *name, struct json_object *args)
{
	struct json_object	*tc, *fn;
	const char		*a = provider_args_string(args);

	fn = json_object_new_object();
	json_object_object_add(fn, "name", json_object_new_string(name ? name :
	    ""));
	json_object_object_add(fn, "arguments", json_object_new_string(a));
	tc = json_object_new_object();
	json_object_object_add(tc, "id", json_object_new_string(id ? id : ""));
	json_object_object_add(tc, "type", json_object_new_string("function"));
	json_object_object_add(tc, "function", fn);
	return tc;
}

/*
 * The image URL of an OpenAI image_url part ({"image_url":{"url":...}} or
 * the older {"image_url":"..."}); when it is a base64 data: URL, also its
 * media type (not NUL-terminated: mime_len bytes) and payload. NULL when
 * the part has no URL.
 */
const char *
provider_image_url(struct json_object *part, struct image_data *d)
{
	struct json_object	*iu;
	const char		*url, *comma, *semi;

	memset(d, 0, sizeof(*d));
	if (!json_object_object_get_ex(part, "image_url", &iu))
		return NULL;
	url = json_object_is_type(iu, json_type_string) ?
	    json_object_get_string(iu) : provider_json_str(iu, "url");
	if (url == NULL)
		return NULL;
	if (strncmp(url, "data:", 5) == 0 &&
	    (comma = strchr(url, ',')) != NULL &&
	    (semi = strchr(url, ';')) != NULL && semi < comma &&
	    strncmp(semi, ";base64,", 8) == 0) {
		d->mime = url + 5;
		d->mime_len = (size_t)(semi - url - 5);
		d->data = comma + 1;
	}
	return url;
}
