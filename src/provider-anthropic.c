/* provider-anthropic.c: the Anthropic Messages protocol (POST /v1/messages). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "provider.h"

#define ANTHROPIC_VERSION	"2023-06-01"

static const struct finish_map finish_reasons[] = {
	{ "end_turn", "stop" },
	{ "stop_sequence", "stop" },
	{ "pause_turn", "stop" },
	{ "max_tokens", "length" },
	{ "model_context_window_exceeded", "length" },
	{ "tool_use", "tool_calls" },
	{ "refusal", "content_filter" },
	{ NULL, NULL },
};

/*
 * Prompt caching: a cache_control object ({"type":"ephemeral"}, maybe
 * with a ttl) on an OpenAI content part, message or tool is kept on the
 * Anthropic block made of it, as the client wrote it (Anthropic checks
 * it). A message's own goes on the last block made of the message.
 */
static struct json_object *
cache_control(struct json_object *o)
{
	struct json_object	*cc;

	if (o == NULL || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "cache_control", &cc) ||
	    !json_object_is_type(cc, json_type_object))
		return NULL;
	return cc;
}

/* Give block b from's cache_control, if it has one; 1 if it did. */
static int
keep_cache(struct json_object *b, struct json_object *from)
{
	struct json_object	*cc;

	if (b == NULL || (cc = cache_control(from)) == NULL)
		return 0;
	json_object_object_add(b, "cache_control", json_object_get(cc));
	return 1;
}

/* A message's cache_control onto the last of blocks (from index first). */
static int
keep_cache_last(struct json_object *blocks, size_t first,
    struct json_object *msg)
{
	size_t	 n = json_object_array_length(blocks);

	if (n <= first)
		return 0;
	return keep_cache(json_object_array_get_idx(blocks, n - 1), msg);
}

static struct json_object *
text_block(const char *text)
{
	struct json_object	*b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string("text"));
	json_object_object_add(b, "text", json_object_new_string(text));
	return b;
}

/* An image_url part: a data: URL becomes base64 source, else a url source. */
static struct json_object *
image_block(struct json_object *part)
{
	struct json_object	*b, *src;
	struct image_data	 img;
	const char		*url;

	if ((url = provider_image_url(part, &img)) == NULL)
		return NULL;
	src = json_object_new_object();
	if (img.mime != NULL) {
		json_object_object_add(src, "type",
		    json_object_new_string("base64"));
		json_object_object_add(src, "media_type",
		    json_object_new_string_len(img.mime, (int)img.mime_len));
		json_object_object_add(src, "data",
		    json_object_new_string(img.data));
	} else {
		json_object_object_add(src, "type", json_object_new_string("url"));
		json_object_object_add(src, "url", json_object_new_string(url));
	}
	b = json_object_new_object();
	json_object_object_add(b, "type", json_object_new_string("image"));
	json_object_object_add(b, "source", src);
	return b;
}

/*
 * OpenAI content (string or parts) -> Anthropic content blocks, appended;
 * text only when text_only (system). Returns how many blocks carry a
 * cache_control.
 */
static int
add_content(struct json_object *blocks, struct json_object *c, int text_only)
{
	struct json_object	*part, *b;
	const char		*type;
	size_t			 i;
	int			 cached = 0;

	if (json_object_is_type(c, json_type_string)) {
		if (json_object_get_string_len(c) > 0)
			json_object_array_add(blocks,
			    text_block(json_object_get_string(c)));
		return 0;
	}
	if (!json_object_is_type(c, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		type = provider_json_str(part, "type");
		b = NULL;
		if (type != NULL && strcmp(type, "text") == 0)
			b = text_block(provider_json_str(part, "text") ?
			    provider_json_str(part, "text") : "");
		else if (type != NULL && strcmp(type, "image_url") == 0 &&
		    !text_only)
			b = image_block(part);
		if (b != NULL) {
			cached += keep_cache(b, part);
			json_object_array_add(blocks, b);
		}
	}
	return cached;
}

/* The last part of content c that carries a cache_control, or NULL. */
static struct json_object *
last_marked(struct json_object *c)
{
	size_t	 i;

	if (!json_object_is_type(c, json_type_array))
		return NULL;
	for (i = json_object_array_length(c); i > 0; i--)
		if (cache_control(json_object_array_get_idx(c, i - 1)) != NULL)
			return json_object_array_get_idx(c, i - 1);
	return NULL;
}

/* Assistant tool_calls -> tool_use blocks; arguments must be JSON. */
static int
add_tool_uses(struct json_object *blocks, struct json_object *calls,
    struct provider_error *e)
{
	struct json_object	*call, *fn, *args, *b;
	const char		*a;
	size_t			 i;

	for (i = 0; i < json_object_array_length(calls); i++) {
		call = json_object_array_get_idx(calls, i);
		if (!json_object_object_get_ex(call, "function", &fn))
			continue;
		/* No arguments at all ("" from some clients) is {}. */
		if ((a = provider_json_str(fn, "arguments")) == NULL || *a == '\0')
			a = "{}";
		args = provider_parse(a, strlen(a));
		if (args == NULL) {
			provider_error_set(e, "invalid_request_error",
			    "invalid_value", "tool call arguments must be a "
			    "JSON object for this provider");
			return -1;
		}
		b = json_object_new_object();
		json_object_object_add(b, "type",
		    json_object_new_string("tool_use"));
		json_object_object_add(b, "id", json_object_new_string(
		    provider_json_str(call, "id") ? provider_json_str(call, "id")
		    : "toolu_missing"));
		json_object_object_add(b, "name", json_object_new_string(
		    provider_json_str(fn, "name") ? provider_json_str(fn, "name")
		    : ""));
		json_object_object_add(b, "input", args);
		json_object_array_add(blocks, b);
	}
	return 0;
}

/*
 * OpenAI messages -> system text and Anthropic turns. The system messages
 * go both into system (flattened) and into sysblocks (text blocks); *cached
 * counts the system blocks that carry a cache_control.
 */
static int
convert_messages(struct json_object *in, struct json_object *out,
    struct buf *system, struct json_object *sysblocks, int *cached,
    struct provider_error *e)
{
	struct json_object	*m, *c, *calls, *blocks, *b;
	struct buf		 text;
	const char		*role, *id;
	size_t			 i, first;
	int			 rc = 0;

	buf_init(&text, 1 << 30);
	for (i = 0; i < json_object_array_length(in) && rc == 0; i++) {
		m = json_object_array_get_idx(in, i);
		role = provider_json_str(m, "role");
		c = NULL;
		json_object_object_get_ex(m, "content", &c);
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if (system->len > 0)
				buf_puts(system, "\n\n");
			provider_content_text(c, system);
			first = json_object_array_length(sysblocks);
			*cached += add_content(sysblocks, c, 1);
			*cached += keep_cache_last(sysblocks, first, m);
			continue;
		}
		blocks = json_object_new_array();
		if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
			buf_reset(&text);
			provider_content_text(c, &text);
			id = provider_json_str(m, "tool_call_id");
			b = json_object_new_object();
			json_object_object_add(b, "type",
			    json_object_new_string("tool_result"));
			json_object_object_add(b, "tool_use_id",
			    json_object_new_string(id ? id : ""));
			json_object_object_add(b, "content",
			    json_object_new_string(text.data ? text.data : ""));
			/* The result is one string: its parts' mark is its. */
			if (!keep_cache(b, m))
				keep_cache(b, last_marked(c));
			json_object_array_add(blocks, b);
			provider_add_turn(out, "user", "content", blocks);
			continue;
		}
		add_content(blocks, c, 0);
		if (strcmp(role, "assistant") == 0) {
			if (json_object_object_get_ex(m, "tool_calls", &calls) &&
			    json_object_is_type(calls, json_type_array))
				rc = add_tool_uses(blocks, calls, e);
			keep_cache_last(blocks, 0, m);
			provider_add_turn(out, "assistant", "content", blocks);
		} else {
			keep_cache_last(blocks, 0, m);
			provider_add_turn(out, "user", "content", blocks);
		}
	}
	buf_free(&text);
	return rc;
}

/* OpenAI tools -> Anthropic tools. */
static struct json_object *
convert_tools(struct json_object *tools)
{
	struct json_object	*out, *t, *fn, *params, *d;
	const char		*s;
	size_t			 i;

	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		if (!json_object_object_get_ex(t, "function", &fn))
			continue;
		d = json_object_new_object();
		s = provider_json_str(fn, "name");
		json_object_object_add(d, "name", json_object_new_string(s ? s :
		    ""));
		if ((s = provider_json_str(fn, "description")) != NULL)
			json_object_object_add(d, "description",
			    json_object_new_string(s));
		if (json_object_object_get_ex(fn, "parameters", &params) &&
		    json_object_is_type(params, json_type_object))
			json_object_object_add(d, "input_schema",
			    json_object_get(params));
		else
			json_object_object_add(d, "input_schema",
			    provider_parse("{\"type\":\"object\"}", 17));
		/* On the tool (as LiteLLM takes it) or on its function. */
		if (!keep_cache(d, t))
			keep_cache(d, fn);
		json_object_array_add(out, d);
	}
	return out;
}

/* OpenAI tool_choice -> Anthropic tool_choice; NULL when it has none. */
static struct json_object *
convert_tool_choice(struct json_object *tc, int parallel_off)
{
	struct json_object	*out, *fn;
	const char		*s, *name;

	out = json_object_new_object();
	s = json_object_is_type(tc, json_type_string) ?
	    json_object_get_string(tc) : NULL;
	if (tc == NULL || (s != NULL && strcmp(s, "auto") == 0))
		json_object_object_add(out, "type", json_object_new_string("auto"));
	else if (s != NULL && strcmp(s, "required") == 0)
		json_object_object_add(out, "type", json_object_new_string("any"));
	else if (s != NULL && strcmp(s, "none") == 0)
		json_object_object_add(out, "type", json_object_new_string("none"));
	else if (json_object_object_get_ex(tc, "function", &fn) &&
	    (name = provider_json_str(fn, "name")) != NULL) {
		json_object_object_add(out, "type", json_object_new_string("tool"));
		json_object_object_add(out, "name", json_object_new_string(name));
	} else
		json_object_object_add(out, "type", json_object_new_string("auto"));
	if (parallel_off)
		json_object_object_add(out, "disable_parallel_tool_use",
		    json_object_new_boolean(1));
	return out;
}

static int
chat_request(const struct candidate *c, const struct chat_in *in,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*out, *msgs, *v, *stop, *sysblocks;
	struct buf		 system;
	size_t			 i;
	int			 rc = -1, cached = 0;

	out = json_object_new_object();
	msgs = json_object_new_array();
	sysblocks = json_object_new_array();
	buf_init(&system, 1 << 30);
	json_object_object_get_ex(in->req, "messages", &v);
	if (convert_messages(v, msgs, &system, sysblocks, &cached, e) == -1) {
		json_object_put(msgs);
		goto done;
	}
	json_object_object_add(out, "model", json_object_new_string(c->upstream));
	json_object_object_add(out, "max_tokens",
	    json_object_new_int64(plan_max_tokens(c, in->client_max)));
	/*
	 * A system with a cache breakpoint goes as text blocks, the only form
	 * that carries one; else as one string, as it always went.
	 */
	if (cached > 0) {
		json_object_object_add(out, "system", sysblocks);
		sysblocks = NULL;
	} else if (system.len > 0)
		json_object_object_add(out, "system",
		    json_object_new_string(system.data));
	json_object_object_add(out, "messages", msgs);
	if (json_object_object_get_ex(in->req, "stop", &v) && v != NULL) {
		stop = json_object_new_array();
		if (json_object_is_type(v, json_type_string))
			json_object_array_add(stop, json_object_get(v));
		else
			for (i = 0; i < json_object_array_length(v); i++)
				json_object_array_add(stop, json_object_get(
				    json_object_array_get_idx(v, i)));
		json_object_object_add(out, "stop_sequences", stop);
	}
	if (json_object_object_get_ex(in->req, "temperature", &v) && v != NULL)
		/* Anthropic accepts 0..1; OpenAI clients send up to 2. */
		json_object_object_add(out, "temperature",
		    json_object_get_double(v) > 1.0 ?
		    json_object_new_double(1.0) : json_object_get(v));
	if (json_object_object_get_ex(in->req, "top_p", &v) && v != NULL)
		json_object_object_add(out, "top_p", json_object_get(v));
	if (json_object_object_get_ex(in->req, "top_k", &v) && v != NULL)
		json_object_object_add(out, "top_k", json_object_get(v));
	if (json_object_object_get_ex(in->req, "user", &v) && v != NULL) {
		stop = json_object_new_object();
		json_object_object_add(stop, "user_id", json_object_get(v));
		json_object_object_add(out, "metadata", stop);
	}
	if (json_object_object_get_ex(in->req, "tools", &v) && v != NULL &&
	    json_object_array_length(v) > 0) {
		json_object_object_add(out, "tools", convert_tools(v));
		json_object_object_get_ex(in->req, "tool_choice", &stop);
		json_object_object_add(out, "tool_choice",
		    convert_tool_choice(stop,
		    json_object_object_get_ex(in->req, "parallel_tool_calls",
		    &v) && v != NULL && !json_object_get_boolean(v)));
	}
	if (in->stream)
		json_object_object_add(out, "stream", json_object_new_boolean(1));
	if (provider_body(call, out) == -1 ||
	    provider_url(call, c->provider, "/messages") == -1 ||
	    provider_headers(call, c->provider, "x-api-key", "") == -1)
		goto done;
	if (!provider_has_header(c->provider, "anthropic-version") &&
	    (call->headers = curl_slist_append(call->headers,
	    "anthropic-version: " ANTHROPIC_VERSION)) == NULL)
		goto done;
	rc = 0;
done:
	buf_free(&system);
	json_object_put(sysblocks);
	json_object_put(out);
	return rc;
}

/*
 * Anthropic usage -> struct usage. Its input_tokens leaves out the tokens
 * read from the cache and those written to it; prompt counts all three.
 */
static void
read_usage(struct json_object *u, struct usage *out)
{
	int64_t	 in, cr, cw, o;

	if (u == NULL || !json_object_is_type(u, json_type_object))
		return;
	in = provider_json_tokens(u, "input_tokens");
	cr = provider_json_tokens(u, "cache_read_input_tokens");
	cw = provider_json_tokens(u, "cache_creation_input_tokens");
	o = provider_json_tokens(u, "output_tokens");
	if (in >= 0)
		out->prompt = in + (cr > 0 ? cr : 0) + (cw > 0 ? cw : 0);
	if (cr >= 0)
		out->cached = cr;
	if (cw >= 0)
		out->cache_write = cw;
	/* output_tokens is cumulative in message_delta: set, never add. */
	if (o >= 0)
		out->completion = o;
	if (in >= 0 || o >= 0)
		out->known = 1;
}

static int
chat_response(const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	struct json_object	*o, *content, *b, *input, *msg, *calls, *ch,
				*choices, *res, *v;
	struct buf		 text;
	const char		*type, *id;
	size_t			 i;

	if ((o = provider_parse(body, len)) == NULL ||
	    !json_object_object_get_ex(o, "content", &content) ||
	    !json_object_is_type(content, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed message",
		    c->provider->name);
		return -1;
	}
	buf_init(&text, 1 << 30);
	calls = json_object_new_array();
	for (i = 0; i < json_object_array_length(content); i++) {
		b = json_object_array_get_idx(content, i);
		type = provider_json_str(b, "type");
		if (type != NULL && strcmp(type, "text") == 0 &&
		    provider_json_str(b, "text") != NULL)
			buf_puts(&text, provider_json_str(b, "text"));
		else if (type != NULL && strcmp(type, "tool_use") == 0) {
			input = NULL;
			json_object_object_get_ex(b, "input", &input);
			json_object_array_add(calls, provider_tool_call(
			    provider_json_str(b, "id"),
			    provider_json_str(b, "name"), input));
		}
	}
	if (json_object_object_get_ex(o, "usage", &v))
		read_usage(v, u);

	msg = json_object_new_object();
	json_object_object_add(msg, "role", json_object_new_string("assistant"));
	json_object_object_add(msg, "content", text.len > 0 ?
	    json_object_new_string(text.data) : NULL);
	if (json_object_array_length(calls) > 0)
		json_object_object_add(msg, "tool_calls", calls);
	else
		json_object_put(calls);
	ch = json_object_new_object();
	json_object_object_add(ch, "index", json_object_new_int(0));
	json_object_object_add(ch, "message", msg);
	json_object_object_add(ch, "logprobs", NULL);
	type = provider_finish(finish_reasons, provider_json_str(o,
	    "stop_reason"));
	json_object_object_add(ch, "finish_reason",
	    json_object_new_string(type ? type : "stop"));
	choices = json_object_new_array();
	json_object_array_add(choices, ch);

	res = json_object_new_object();
	id = provider_json_str(o, "id");
	json_object_object_add(res, "id", json_object_new_string(id ? id : ""));
	json_object_object_add(res, "object",
	    json_object_new_string("chat.completion"));
	json_object_object_add(res, "created",
	    json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(res, "model", json_object_new_string(c->name));
	json_object_object_add(res, "choices", choices);
	json_object_object_add(res, "usage", provider_usage_object(u));
	buf_free(&text);
	json_object_put(o);
	*out = res;
	return 0;
}

/* Emit a delta with one tool_calls entry. */
static int
emit_tool_delta(struct stream_state *st, int index, struct json_object *tc)
{
	struct json_object	*d, *arr, *chunk;
	int			 rc;

	json_object_object_add(tc, "index", json_object_new_int(index));
	arr = json_object_new_array();
	json_object_array_add(arr, tc);
	d = json_object_new_object();
	json_object_object_add(d, "tool_calls", arr);
	chunk = provider_chunk(st, d, NULL);
	rc = st->emit(st->ctx, chunk);
	json_object_put(chunk);
	return rc;
}

static int
on_block_start(struct stream_state *st, struct json_object *o)
{
	struct json_object	*b, *tc, *fn;
	int64_t			 idx = provider_json_int(o, "index");
	const char		*type, *id, *name;

	if (!json_object_object_get_ex(o, "content_block", &b) ||
	    (type = provider_json_str(b, "type")) == NULL ||
	    strcmp(type, "tool_use") != 0)
		return 0;
	if (idx < 0 || idx >= STREAM_BLOCKS_MAX) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent too many "
		    "content blocks", st->cand->provider->name);
		return -1;
	}
	id = provider_json_str(b, "id");
	name = provider_json_str(b, "name");
	st->block_tool[idx] = ++st->tools;
	fn = json_object_new_object();
	json_object_object_add(fn, "name", json_object_new_string(name ? name :
	    ""));
	json_object_object_add(fn, "arguments", json_object_new_string(""));
	tc = json_object_new_object();
	json_object_object_add(tc, "id", json_object_new_string(id ? id : ""));
	json_object_object_add(tc, "type", json_object_new_string("function"));
	json_object_object_add(tc, "function", fn);
	return emit_tool_delta(st, st->tools - 1, tc);
}

static int
on_block_delta(struct stream_state *st, struct json_object *o)
{
	struct json_object	*d, *tc, *fn;
	int64_t			 idx = provider_json_int(o, "index");
	const char		*type, *s;

	if (!json_object_object_get_ex(o, "delta", &d) ||
	    (type = provider_json_str(d, "type")) == NULL)
		return 0;
	if (strcmp(type, "text_delta") == 0 &&
	    (s = provider_json_str(d, "text")) != NULL) {
		st->chars += (int64_t)strlen(s);
		return provider_emit_delta(st, "content", json_object_new_string(s),
		    NULL);
	}
	if (strcmp(type, "thinking_delta") == 0 &&
	    (s = provider_json_str(d, "thinking")) != NULL) {
		st->chars += (int64_t)strlen(s);
		return provider_emit_delta(st, "reasoning_content",
		    json_object_new_string(s), NULL);
	}
	if (strcmp(type, "input_json_delta") == 0 &&
	    (s = provider_json_str(d, "partial_json")) != NULL) {
		if (idx < 0 || idx >= STREAM_BLOCKS_MAX ||
		    st->block_tool[idx] == 0) {
			provider_error_set(&st->err, "upstream_error",
			    "bad_upstream_response", "provider '%s' sent tool "
			    "input for an unknown block",
			    st->cand->provider->name);
			return -1;
		}
		if (*s == '\0')
			return 0;	/* Anthropic opens with an empty one */
		st->chars += (int64_t)strlen(s);
		fn = json_object_new_object();
		json_object_object_add(fn, "arguments",
		    json_object_new_string(s));
		tc = json_object_new_object();
		json_object_object_add(tc, "function", fn);
		return emit_tool_delta(st, st->block_tool[idx] - 1, tc);
	}
	return 0;
}

static int
chat_event(struct stream_state *st, const struct sse_event *ev)
{
	struct json_object	*o, *v, *msg;
	const char		*type, *s;
	int			 rc = 0;

	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream event", st->cand->provider->name);
		return -1;
	}
	type = provider_json_str(o, "type");
	if (type == NULL)
		type = ev->event;
	if (strcmp(type, "message_start") == 0) {
		if (json_object_object_get_ex(o, "message", &msg)) {
			if ((s = provider_json_str(msg, "id")) != NULL)
				snprintf(st->id, sizeof(st->id), "%s", s);
			if (json_object_object_get_ex(msg, "usage", &v))
				read_usage(v, &st->usage);
		}
		v = json_object_new_object();
		json_object_object_add(v, "role",
		    json_object_new_string("assistant"));
		json_object_object_add(v, "content", json_object_new_string(""));
		rc = st->emit(st->ctx, msg = provider_chunk(st, v, NULL));
		json_object_put(msg);
	} else if (strcmp(type, "content_block_start") == 0)
		rc = on_block_start(st, o);
	else if (strcmp(type, "content_block_delta") == 0)
		rc = on_block_delta(st, o);
	else if (strcmp(type, "message_delta") == 0) {
		if (json_object_object_get_ex(o, "usage", &v))
			read_usage(v, &st->usage);
		s = json_object_object_get_ex(o, "delta", &v) ?
		    provider_json_str(v, "stop_reason") : NULL;
		if (s != NULL) {
			snprintf(st->finish, sizeof(st->finish), "%s",
			    provider_finish(finish_reasons, s));
			rc = provider_emit_delta(st, NULL, NULL, st->finish);
		}
	} else if (strcmp(type, "message_stop") == 0) {
		st->done = 1;
		rc = provider_emit_usage(st);
	} else if (strcmp(type, "error") == 0) {
		v = NULL;
		json_object_object_get_ex(o, "error", &v);
		provider_error_set(&st->err, provider_json_str(v, "type") ?
		    provider_json_str(v, "type") : "upstream_error",
		    provider_json_str(v, "type"), "provider '%s': %s",
		    st->cand->provider->name, provider_json_str(v, "message") ?
		    provider_json_str(v, "message") : "stream error");
		st->failed = 1;
		rc = -1;
	}
	/* ping and content_block_stop carry nothing for the client. */
	json_object_put(o);
	return rc;
}

/* {"type":"error","error":{"type":"overloaded_error","message":"..."}} */
static void
error(long status, const char *body, size_t len, struct provider_error *e)
{
	struct json_object	*o, *err;
	const char		*type, *msg;

	provider_error_set(e, status >= 500 ? "upstream_error" :
	    "invalid_request_error", NULL, "upstream answered HTTP %ld", status);
	if ((o = provider_parse(body, len)) == NULL)
		return;
	if (json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object)) {
		type = provider_json_str(err, "type");
		msg = provider_json_str(err, "message");
		if (msg != NULL)
			snprintf(e->message, sizeof(e->message), "%s", msg);
		if (type != NULL) {
			snprintf(e->type, sizeof(e->type), "%s", type);
			snprintf(e->code, sizeof(e->code), "%s", type);
		}
	}
	json_object_put(o);
}

const struct provider_ops provider_anthropic = {
	.type = "anthropic",
	.chat_request = chat_request,
	.chat_response = chat_response,
	.chat_event = chat_event,
	.error = error,
};
