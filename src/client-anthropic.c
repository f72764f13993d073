/*
 * client-anthropic.c: the Anthropic Messages API spoken by the client
 * (POST /v1/messages, POST /v1/messages/count_tokens), over the one chat
 * pipeline of route-chat.c (client.h).
 *
 * The client's body becomes the internal OpenAI chat request; its text
 * strings are SHARED with it (json_object_get, never copied), so that
 * what the policy step rewrites in place (redact) is rewritten in the
 * client's body too. To a candidate of type anthropic that body passes
 * natively (cache_control, thinking, system blocks, tool_choice,
 * metadata kept; model, max_tokens and stream the gateway's); tool_use
 * inputs, the one text the internal request holds as a copy (arguments
 * strings), are parsed back from the guarded copy first. To any other
 * provider the internal request goes through the adapters.
 *
 * The answer is what the gateway would send an OpenAI client (the output
 * guard's too), turned into a message or Anthropic's event sequence:
 * message_start, ping, content_block_start / _delta / _stop per block
 * (thinking, text, tool_use with input_json_delta), message_delta with
 * stop_reason and usage, message_stop; a failure after the stream began
 * is "event: error".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "call.h"
#include "client.h"
#include "plan.h"
#include "provider.h"
#include "route.h"
#include "validate.h"

#define ANTHROPIC_VERSION	"2023-06-01"

/* Blocks of a streamed message. */
enum block {
	BLOCK_NONE,
	BLOCK_TEXT,
	BLOCK_THINKING,
	BLOCK_TOOL,
};

/* One request's state. */
struct anth {
	/* Request: tool_use blocks and their arguments strings, pairwise. */
	struct json_object	*tool_args;	/* [[block, string], ...] */
	/* Stream. */
	int			 started;	/* message_start sent */
	int			 pinged;
	int			 index;		/* of the open block, -1: none */
	enum block		 open;
	int			 tool;		/* OpenAI index of the open tool */
	char			 stop[32];	/* stop_reason */
	int64_t			 out_bytes;	/* generated text, for estimates */
	int			 relayed;	/* the upstream's events went on */
	int			 relay_stopped;	/* ... its message_stop too */
	char			 id[64];
};

/* --- errors ------------------------------------------------------------ */

static const char *
error_type(int status)
{
	switch (status) {
	case 400:
	case 405:
	case 409:
	case 414:
	case 422:
		return "invalid_request_error";
	case 401:
		return "authentication_error";
	case 402:
		return "billing_error";
	case 403:
		return "permission_error";
	case 404:
		return "not_found_error";
	case 413:
		return "request_too_large";
	case 429:
		return "rate_limit_error";
	case 529:
		return "overloaded_error";
	}
	return status >= 500 ? "api_error" : "invalid_request_error";
}

/* http_error_fn: {"type":"error","error":{"type":...,"message":...}}. */
struct json_object *
client_anthropic_error(int status, const char *message, const char *type,
    const char *code, const char *param)
{
	struct json_object	*o, *err;

	err = json_object_new_object();
	json_object_object_add(err, "type",
	    json_object_new_string(error_type(status)));
	json_object_object_add(err, "message", json_object_new_string(message));
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("error"));
	json_object_object_add(o, "error", err);
	return o;
}

static int
bad(struct request *r, const char *what)
{
	return http_error(r, 400, "invalid_request_error", "invalid_value",
	    NULL, "%s", what);
}

/* --- request: Anthropic -> internal OpenAI ------------------------------ */

static struct json_object *
member(struct json_object *o, const char *name)
{
	struct json_object	*v;

	return json_object_is_type(o, json_type_object) &&
	    json_object_object_get_ex(o, name, &v) ? v : NULL;
}

static int
is_type(struct json_object *o, const char *type)
{
	const char	*t = provider_json_str(o, "type");

	return t != NULL && strcmp(t, type) == 0;
}

/* {"type":"text","text":<s, shared>} */
static struct json_object *
text_part(struct json_object *s)
{
	struct json_object	*p = json_object_new_object();

	json_object_object_add(p, "type", json_object_new_string("text"));
	json_object_object_add(p, "text", json_object_get(s));
	return p;
}

/* An image block -> an image_url part (a data: URL for base64), or NULL. */
static struct json_object *
image_part(struct json_object *b)
{
	struct json_object	*src = member(b, "source"), *p, *iu;
	const char		*mt, *data, *url;
	char			*s;
	size_t			 n;

	if (is_type(src, "base64") &&
	    (mt = provider_json_str(src, "media_type")) != NULL &&
	    (data = provider_json_str(src, "data")) != NULL) {
		n = strlen(mt) + strlen(data) + 16;
		if ((s = malloc(n)) == NULL)
			return NULL;
		snprintf(s, n, "data:%s;base64,%s", mt, data);
		iu = json_object_new_object();
		json_object_object_add(iu, "url", json_object_new_string(s));
		free(s);
	} else if (is_type(src, "url") &&
	    (url = provider_json_str(src, "url")) != NULL) {
		iu = json_object_new_object();
		json_object_object_add(iu, "url", json_object_new_string(url));
	} else
		return NULL;
	p = json_object_new_object();
	json_object_object_add(p, "type", json_object_new_string("image_url"));
	json_object_object_add(p, "image_url", iu);
	return p;
}

/*
 * Text (and image) blocks of content into OpenAI parts, appended; a
 * string content is one text part. Other blocks are left to the caller.
 */
static void
add_parts(struct json_object *parts, struct json_object *b, int images)
{
	struct json_object	*t, *p;

	if (json_object_is_type(b, json_type_string)) {
		json_object_array_add(parts, text_part(b));
		return;
	}
	if (is_type(b, "text") && (t = member(b, "text")) != NULL &&
	    json_object_is_type(t, json_type_string))
		json_object_array_add(parts, text_part(t));
	else if (images && is_type(b, "image") && (p = image_part(b)) != NULL)
		json_object_array_add(parts, p);
}

static void
add_message(struct json_object *msgs, const char *role,
    struct json_object *content)
{
	struct json_object	*m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", content);
	json_object_array_add(msgs, m);
}

/* A tool_result block -> a "tool" message. */
static void
add_tool_result(struct json_object *msgs, struct json_object *b)
{
	struct json_object	*m, *c = member(b, "content"), *parts;
	const char		*id = provider_json_str(b, "tool_use_id");
	size_t			 i;

	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("tool"));
	json_object_object_add(m, "tool_call_id",
	    json_object_new_string(id ? id : ""));
	if (json_object_is_type(c, json_type_string))
		json_object_object_add(m, "content", json_object_get(c));
	else {
		parts = json_object_new_array();
		for (i = 0; json_object_is_type(c, json_type_array) &&
		    i < json_object_array_length(c); i++)
			add_parts(parts, json_object_array_get_idx(c, i), 0);
		if (json_object_array_length(parts) == 0) {
			json_object_put(parts);
			parts = json_object_new_string(is_type(b, "tool_result") &&
			    json_object_get_boolean(member(b, "is_error")) ?
			    "error" : "");
		}
		json_object_object_add(m, "content", parts);
	}
	json_object_array_add(msgs, m);
}

/* A tool_use block -> an OpenAI tool call; the pair kept for native. */
static struct json_object *
tool_call(struct anth *a, struct json_object *b)
{
	struct json_object	*tc, *fn, *pair;

	tc = provider_tool_call(provider_json_str(b, "id"),
	    provider_json_str(b, "name"), member(b, "input"));
	if (json_object_object_get_ex(tc, "function", &fn) &&
	    json_object_object_get_ex(fn, "arguments", &pair)) {
		pair = json_object_new_array();
		json_object_array_add(pair, json_object_get(b));
		json_object_array_add(pair, json_object_get(member(fn,
		    "arguments")));
		json_object_array_add(a->tool_args, pair);
	}
	return tc;
}

/* One Anthropic message -> OpenAI messages (tool results first). */
static int
convert_message(struct anth *a, struct json_object *msgs,
    struct json_object *m)
{
	struct json_object	*c = member(m, "content"), *b, *parts, *calls;
	const char		*role = provider_json_str(m, "role");
	size_t			 i;
	int			 user;

	if (role == NULL || (strcmp(role, "user") != 0 &&
	    strcmp(role, "assistant") != 0))
		return -1;
	user = strcmp(role, "user") == 0;
	if (json_object_is_type(c, json_type_string)) {
		add_message(msgs, role, json_object_get(c));
		return 0;
	}
	if (!json_object_is_type(c, json_type_array))
		return -1;
	parts = json_object_new_array();
	calls = json_object_new_array();
	for (i = 0; i < json_object_array_length(c); i++) {
		b = json_object_array_get_idx(c, i);
		if (user && is_type(b, "tool_result"))
			add_tool_result(msgs, b);
		else if (!user && is_type(b, "tool_use"))
			json_object_array_add(calls, tool_call(a, b));
		else
			/* thinking and server blocks: the native path's only */
			add_parts(parts, b, user);
	}
	if (json_object_array_length(parts) > 0 ||
	    json_object_array_length(calls) > 0) {
		m = json_object_new_object();
		json_object_object_add(m, "role", json_object_new_string(role));
		if (json_object_array_length(parts) > 0)
			json_object_object_add(m, "content", parts);
		else {
			json_object_object_add(m, "content", NULL);
			json_object_put(parts);
		}
		if (json_object_array_length(calls) > 0)
			json_object_object_add(m, "tool_calls", calls);
		else
			json_object_put(calls);
		json_object_array_add(msgs, m);
	} else {
		json_object_put(parts);
		json_object_put(calls);
	}
	return 0;
}

/* Custom tools -> OpenAI function tools; server tools stay native. */
static struct json_object *
convert_tools(struct json_object *tools)
{
	struct json_object	*out, *t, *fn, *d, *schema;
	size_t			 i;

	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		if ((schema = member(t, "input_schema")) == NULL ||
		    provider_json_str(t, "name") == NULL)
			continue;
		fn = json_object_new_object();
		json_object_object_add(fn, "name",
		    json_object_get(member(t, "name")));
		if ((d = member(t, "description")) != NULL &&
		    json_object_is_type(d, json_type_string))
			json_object_object_add(fn, "description",
			    json_object_get(d));
		json_object_object_add(fn, "parameters",
		    json_object_get(schema));
		d = json_object_new_object();
		json_object_object_add(d, "type",
		    json_object_new_string("function"));
		json_object_object_add(d, "function", fn);
		json_object_array_add(out, d);
	}
	return out;
}

/* tool_choice -> OpenAI's; parallel off when the client disabled it. */
static void
convert_tool_choice(struct json_object *tc, struct json_object *out)
{
	struct json_object	*o, *fn;
	const char		*name;

	if (tc == NULL)
		return;
	if (is_type(tc, "any"))
		json_object_object_add(out, "tool_choice",
		    json_object_new_string("required"));
	else if (is_type(tc, "none"))
		json_object_object_add(out, "tool_choice",
		    json_object_new_string("none"));
	else if (is_type(tc, "tool") &&
	    (name = provider_json_str(tc, "name")) != NULL) {
		fn = json_object_new_object();
		json_object_object_add(fn, "name", json_object_new_string(name));
		o = json_object_new_object();
		json_object_object_add(o, "type",
		    json_object_new_string("function"));
		json_object_object_add(o, "function", fn);
		json_object_object_add(out, "tool_choice", o);
	} else
		json_object_object_add(out, "tool_choice",
		    json_object_new_string("auto"));
	if (json_object_get_boolean(member(tc, "disable_parallel_tool_use")))
		json_object_object_add(out, "parallel_tool_calls",
		    json_object_new_boolean(0));
}

/* Copy member name of in to out as it is (shared), when present. */
static void
copy(struct json_object *in, const char *name, struct json_object *out,
    const char *as)
{
	struct json_object	*v;

	if ((v = member(in, name)) != NULL)
		json_object_object_add(out, as, json_object_get(v));
}

/*
 * The Anthropic body -> the internal request; need_max: max_tokens is
 * required (messages, not count_tokens). 0; else the status answered.
 */
static int
to_internal(struct client *cl, struct json_object *in, int need_max,
    struct json_object **out)
{
	struct anth		*a = cl->state;
	struct request		*r = cl->r;
	struct json_object	*o, *v, *msgs, *sys, *parts, *tools;
	size_t			 i;

	if (!json_object_is_type(in, json_type_object))
		return bad(r, "the body must be a JSON object");
	if ((v = member(in, "model")) == NULL ||
	    !json_object_is_type(v, json_type_string))
		return bad(r, "model: Field required");
	v = member(in, "max_tokens");
	if (need_max && (v == NULL || !json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1))
		return bad(r, v == NULL ? "max_tokens: Field required" :
		    "max_tokens: must be a positive integer");
	if ((msgs = member(in, "messages")) == NULL ||
	    !json_object_is_type(msgs, json_type_array))
		return bad(r, "messages: Field required");
	sys = member(in, "system");
	if (sys != NULL && !json_object_is_type(sys, json_type_string) &&
	    !json_object_is_type(sys, json_type_array))
		return bad(r, "system: must be a string or text blocks");
	tools = member(in, "tools");
	if (tools != NULL && !json_object_is_type(tools, json_type_array))
		return bad(r, "tools: must be an array");

	o = json_object_new_object();
	copy(in, "model", o, "model");
	copy(in, "max_tokens", o, "max_tokens");
	v = json_object_new_array();
	if (json_object_is_type(sys, json_type_string))
		add_message(v, "system", json_object_get(sys));
	else if (sys != NULL) {
		parts = json_object_new_array();
		for (i = 0; i < json_object_array_length(sys); i++)
			add_parts(parts, json_object_array_get_idx(sys, i), 0);
		if (json_object_array_length(parts) > 0)
			add_message(v, "system", parts);
		else
			json_object_put(parts);
	}
	for (i = 0; i < json_object_array_length(msgs); i++)
		if (convert_message(a, v, json_object_array_get_idx(msgs,
		    i)) == -1) {
			json_object_put(v);
			json_object_put(o);
			return http_error(r, 400, "invalid_request_error",
			    "invalid_value", NULL, "messages.%zu: role must be "
			    "user or assistant, content a string or blocks", i);
		}
	json_object_object_add(o, "messages", v);
	copy(in, "stop_sequences", o, "stop");
	copy(in, "temperature", o, "temperature");
	copy(in, "top_p", o, "top_p");
	copy(in, "top_k", o, "top_k");
	copy(in, "stream", o, "stream");
	if ((v = member(member(in, "metadata"), "user_id")) != NULL &&
	    json_object_is_type(v, json_type_string))
		json_object_object_add(o, "user", json_object_get(v));
	if (tools != NULL) {
		v = convert_tools(tools);
		if (json_object_array_length(v) > 0) {
			json_object_object_add(o, "tools", v);
			convert_tool_choice(member(in, "tool_choice"), o);
		} else
			json_object_put(v);
	}
	*out = o;
	return 0;
}

/* The body parsed into cl->body and translated; 0, or the status sent. */
static int
anth_parse(struct client *cl, int need_max, struct json_object **out)
{
	struct request	*r = cl->r;
	struct anth	*a;
	struct verr	 e;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return http_error(r, 500, "server_error", NULL, NULL,
		    "out of memory");
	a->index = -1;
	a->tool = -1;
	a->tool_args = json_object_new_array();
	cl->state = a;
	memset(&e, 0, sizeof(e));
	cl->body = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (cl->body == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	return to_internal(cl, cl->body, need_max, out);
}

/* client_anthropic.request */
static int
anth_request(struct client *cl, struct json_object **out)
{
	return anth_parse(cl, 1, out);
}

static void
anth_free(struct client *cl)
{
	struct anth	*a = cl->state;

	if (a == NULL)
		return;
	json_object_put(a->tool_args);
	free(a);
	cl->state = NULL;
}

/* --- native pass-through ---------------------------------------------- */

/* tool_use inputs from their guarded arguments (the policy's rewrites). */
static void
restore_inputs(struct anth *a)
{
	struct json_object	*pair, *in;
	const char		*s;
	size_t			 i;

	for (i = 0; i < json_object_array_length(a->tool_args); i++) {
		pair = json_object_array_get_idx(a->tool_args, i);
		s = json_object_get_string(json_object_array_get_idx(pair, 1));
		if (s != NULL && (in = provider_parse(s, strlen(s))) != NULL)
			json_object_object_add(json_object_array_get_idx(pair,
			    0), "input", in);
	}
}

/* A client header passed on as it came, when it came. */
static int
pass_header(struct provider_call *pc, struct request *r, const char *name)
{
	const char	*v = http_header_in(r, name);
	struct buf	 h;
	int		 rc = 0;

	if (v == NULL || strchr(v, '\r') != NULL || strchr(v, '\n') != NULL)
		return 0;
	buf_init(&h, 8192);
	if (buf_printf(&h, "%s: %s", name, v) == -1 ||
	    (pc->headers = curl_slist_append(pc->headers, h.data)) == NULL)
		rc = -1;
	buf_free(&h);
	return rc;
}

static int
anth_native(struct client *cl, const struct candidate *c,
    const struct provider_ops *ops, const struct chat_in *in,
    struct provider_call *pc, struct provider_error *e)
{
	struct json_object	*out;
	int			 rc = -1;

	if (ops != &provider_anthropic)
		return 1;
	restore_inputs(cl->state);
	out = json_object_new_object();
	json_object_object_foreach(cl->body, k, v) {
		if (strcmp(k, "model") == 0 || strcmp(k, "max_tokens") == 0 ||
		    strcmp(k, "stream") == 0)
			continue;
		json_object_object_add(out, k, json_object_get(v));
	}
	json_object_object_add(out, "model", json_object_new_string(c->upstream));
	json_object_object_add(out, "max_tokens",
	    json_object_new_int64(plan_max_tokens(c, in->client_max)));
	if (in->stream)
		json_object_object_add(out, "stream", json_object_new_boolean(1));
	if (provider_body(pc, out) == -1 ||
	    provider_url(pc, c->provider, "/messages") == -1 ||
	    provider_headers(pc, c->provider, "x-api-key", "") == -1)
		goto done;
	if (!provider_has_header(c->provider, "anthropic-version") &&
	    (pc->headers = curl_slist_append(pc->headers,
	    "anthropic-version: " ANTHROPIC_VERSION)) == NULL)
		goto done;
	if (!provider_has_header(c->provider, "anthropic-beta") &&
	    pass_header(pc, cl->r, "anthropic-beta") == -1)
		goto done;
	rc = 0;
done:
	json_object_put(out);
	return rc;
}

/* --- answers: internal OpenAI -> Anthropic ---------------------------- */

static const char *
stop_reason(const char *finish)
{
	if (finish == NULL)
		return "end_turn";
	if (strcmp(finish, "length") == 0)
		return "max_tokens";
	if (strcmp(finish, "tool_calls") == 0 ||
	    strcmp(finish, "function_call") == 0)
		return "tool_use";
	if (strcmp(finish, "content_filter") == 0)
		return "refusal";
	return "end_turn";
}

/*
 * Anthropic's usage: input_tokens excludes the cache's (the gateway's
 * prompt counts it); estimated (prompt_est, bytes / 4) when unknown.
 */
static struct json_object *
usage_object(struct client *cl, int64_t out_bytes)
{
	struct json_object	*u = json_object_new_object();
	struct usage		 t;

	memset(&t, 0, sizeof(t));
	if (cl->usage != NULL)
		t = *cl->usage;
	if (!t.known) {
		t.prompt = cl->prompt_est;
		t.completion = (out_bytes + 3) / 4;
		t.cached = 0;
		t.cache_write = 0;
	}
	/* Anthropic counts input apart from cache reads and writes. */
	json_object_object_add(u, "input_tokens", json_object_new_int64(
	    t.prompt - t.cached - t.cache_write > 0 ?
	    t.prompt - t.cached - t.cache_write : 0));
	json_object_object_add(u, "cache_creation_input_tokens",
	    json_object_new_int64(t.cache_write));
	json_object_object_add(u, "cache_read_input_tokens",
	    json_object_new_int64(t.cached));
	json_object_object_add(u, "output_tokens",
	    json_object_new_int64(t.completion));
	return u;
}

static void
message_id(struct client *cl, struct json_object *openai, char *id,
    size_t len)
{
	const char	*s = provider_json_str(openai, "id");

	if (s != NULL && strncmp(s, "msg_", 4) == 0)
		snprintf(id, len, "%s", s);
	else
		snprintf(id, len, "msg_%s", cl->r->id);
}

static struct json_object *
text_block(const char *type, const char *member_name, struct json_object *s)
{
	struct json_object	*b = json_object_new_object();

	json_object_object_add(b, "type", json_object_new_string(type));
	json_object_object_add(b, member_name, json_object_get(s));
	return b;
}

/* client_anthropic.reply: a chat.completion -> a message. */
static struct json_object *
anth_reply(struct client *cl, struct json_object *openai)
{
	struct json_object	*o, *content, *ch, *msg, *v, *calls, *tc, *fn,
				*b, *in;
	const char		*args;
	char			 id[160];
	int64_t			 bytes = 0;
	size_t			 i;

	ch = json_object_array_get_idx(member(openai, "choices"), 0);
	msg = member(ch, "message");
	content = json_object_new_array();
	if ((v = member(msg, "reasoning_content")) != NULL &&
	    json_object_is_type(v, json_type_string)) {
		b = text_block("thinking", "thinking", v);
		json_object_object_add(b, "signature",
		    json_object_new_string(""));
		json_object_array_add(content, b);
	}
	if ((v = member(msg, "content")) != NULL &&
	    json_object_is_type(v, json_type_string) &&
	    json_object_get_string_len(v) > 0) {
		json_object_array_add(content, text_block("text", "text", v));
		bytes += json_object_get_string_len(v);
	}
	calls = member(msg, "tool_calls");
	for (i = 0; json_object_is_type(calls, json_type_array) &&
	    i < json_object_array_length(calls); i++) {
		tc = json_object_array_get_idx(calls, i);
		fn = member(tc, "function");
		args = provider_json_str(fn, "arguments");
		if (args == NULL || (in = provider_parse(args,
		    strlen(args))) == NULL)
			in = json_object_new_object();
		bytes += args != NULL ? (int64_t)strlen(args) : 0;
		b = json_object_new_object();
		json_object_object_add(b, "type",
		    json_object_new_string("tool_use"));
		json_object_object_add(b, "id", json_object_new_string(
		    provider_json_str(tc, "id") ? provider_json_str(tc, "id") :
		    ""));
		json_object_object_add(b, "name", json_object_new_string(
		    provider_json_str(fn, "name") ? provider_json_str(fn,
		    "name") : ""));
		json_object_object_add(b, "input", in);
		json_object_array_add(content, b);
	}
	message_id(cl, openai, id, sizeof(id));
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "type", json_object_new_string("message"));
	json_object_object_add(o, "role", json_object_new_string("assistant"));
	json_object_object_add(o, "model", json_object_new_string(cl->model));
	json_object_object_add(o, "content", content);
	json_object_object_add(o, "stop_reason", json_object_new_string(
	    stop_reason(provider_json_str(ch, "finish_reason"))));
	json_object_object_add(o, "stop_sequence", NULL);
	json_object_object_add(o, "usage", usage_object(cl, bytes));
	return o;
}

/* "event: NAME\ndata: JSON\n\n"; takes o. */
static int
event(struct buf *out, const char *name, struct json_object *o)
{
	int	 rc;

	rc = buf_printf(out, "event: %s\ndata: %s\n\n", name,
	    http_json_string(o));
	json_object_put(o);
	return rc == -1 ? -1 : 0;
}

static struct json_object *
typed(const char *type)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "type", json_object_new_string(type));
	return o;
}

static int
message_start(struct client *cl, struct anth *a, struct json_object *chunk,
    struct buf *out)
{
	struct json_object	*o, *m, *u;

	a->started = 1;
	message_id(cl, chunk, a->id, sizeof(a->id));
	m = json_object_new_object();
	json_object_object_add(m, "id", json_object_new_string(a->id));
	json_object_object_add(m, "type", json_object_new_string("message"));
	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "model", json_object_new_string(cl->model));
	json_object_object_add(m, "content", json_object_new_array());
	json_object_object_add(m, "stop_reason", NULL);
	json_object_object_add(m, "stop_sequence", NULL);
	u = usage_object(cl, 0);
	if (cl->usage == NULL || !cl->usage->known)
		json_object_object_add(u, "output_tokens",
		    json_object_new_int64(0));
	json_object_object_add(m, "usage", u);
	o = typed("message_start");
	json_object_object_add(o, "message", m);
	return event(out, "message_start", o);
}

static int
block_stop(struct anth *a, struct buf *out)
{
	struct json_object	*o;

	if (a->open == BLOCK_NONE)
		return 0;
	o = typed("content_block_stop");
	json_object_object_add(o, "index", json_object_new_int(a->index));
	a->open = BLOCK_NONE;
	a->tool = -1;
	return event(out, "content_block_stop", o);
}

/* Close the open block, open one of kind with content_block b (taken). */
static int
block_start(struct anth *a, enum block kind, struct json_object *b,
    struct buf *out)
{
	struct json_object	*o;

	if (block_stop(a, out) == -1) {
		json_object_put(b);
		return -1;
	}
	a->index++;
	a->open = kind;
	o = typed("content_block_start");
	json_object_object_add(o, "index", json_object_new_int(a->index));
	json_object_object_add(o, "content_block", b);
	if (event(out, "content_block_start", o) == -1)
		return -1;
	if (!a->pinged) {
		a->pinged = 1;
		return event(out, "ping", typed("ping"));
	}
	return 0;
}

/* content_block_delta of the open block: {"type":dtype, field: s}. */
static int
block_delta(struct anth *a, const char *dtype, const char *field,
    struct json_object *s, struct buf *out)
{
	struct json_object	*o, *d;

	d = typed(dtype);
	json_object_object_add(d, field, json_object_get(s));
	o = typed("content_block_delta");
	json_object_object_add(o, "index", json_object_new_int(a->index));
	json_object_object_add(o, "delta", d);
	a->out_bytes += json_object_get_string_len(s);
	return event(out, "content_block_delta", o);
}

static int
delta_tools(struct anth *a, struct json_object *calls, struct buf *out)
{
	struct json_object	*tc, *fn, *args, *b;
	const char		*id, *name;
	int			 k;
	size_t			 i;

	for (i = 0; i < json_object_array_length(calls); i++) {
		tc = json_object_array_get_idx(calls, i);
		k = (int)provider_json_int(tc, "index");
		fn = member(tc, "function");
		id = provider_json_str(tc, "id");
		name = provider_json_str(fn, "name");
		if ((id != NULL || name != NULL) &&
		    !(a->open == BLOCK_TOOL && a->tool == k)) {
			b = typed("tool_use");
			json_object_object_add(b, "id", json_object_new_string(
			    id != NULL ? id : ""));
			json_object_object_add(b, "name",
			    json_object_new_string(name != NULL ? name : ""));
			json_object_object_add(b, "input",
			    json_object_new_object());
			if (block_start(a, BLOCK_TOOL, b, out) == -1)
				return -1;
			a->tool = k;
			if (name != NULL)
				a->out_bytes += (int64_t)strlen(name);
		}
		if ((args = member(fn, "arguments")) != NULL &&
		    json_object_is_type(args, json_type_string) &&
		    json_object_get_string_len(args) > 0 &&
		    a->open == BLOCK_TOOL &&
		    block_delta(a, "input_json_delta", "partial_json", args,
		    out) == -1)
			return -1;
	}
	return 0;
}

/*
 * A delta's text (name: reasoning_content or content) into a block of
 * kind (thinking or text), started when another block is open.
 */
static int
text_delta(struct anth *a, struct json_object *d, const char *name,
    enum block kind, struct buf *out)
{
	struct json_object	*v, *b;
	const char		*field = kind == BLOCK_THINKING ? "thinking" :
				    "text";

	if ((v = member(d, name)) == NULL ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0)
		return 0;
	if (a->open != kind) {
		b = typed(field);
		json_object_object_add(b, field, json_object_new_string(""));
		if (kind == BLOCK_THINKING)
			json_object_object_add(b, "signature",
			    json_object_new_string(""));
		if (block_start(a, kind, b, out) == -1)
			return -1;
	}
	return block_delta(a, kind == BLOCK_THINKING ? "thinking_delta" :
	    "text_delta", field, v, out);
}

/* client_anthropic.chunk */
static int
anth_chunk(struct client *cl, struct json_object *chunk, struct buf *out)
{
	struct anth		*a = cl->state;
	struct json_object	*ch, *d, *v;
	const char		*f;

	if (!a->started && message_start(cl, a, chunk, out) == -1)
		return -1;
	/* A usage-only chunk, or any choice but the one Anthropic has. */
	if ((ch = json_object_array_get_idx(member(chunk, "choices"), 0)) ==
	    NULL || provider_json_int(ch, "index") > 0)
		return 0;
	d = member(ch, "delta");
	if (text_delta(a, d, "reasoning_content", BLOCK_THINKING, out) == -1 ||
	    text_delta(a, d, "content", BLOCK_TEXT, out) == -1)
		return -1;
	if ((v = member(d, "tool_calls")) != NULL &&
	    json_object_is_type(v, json_type_array) &&
	    delta_tools(a, v, out) == -1)
		return -1;
	if ((f = provider_json_str(ch, "finish_reason")) != NULL)
		snprintf(a->stop, sizeof(a->stop), "%s", stop_reason(f));
	return 0;
}

/* client_anthropic.done: the open block closed, message_delta, message_stop. */
static int
anth_done(struct client *cl, struct buf *out)
{
	struct anth		*a = cl->state;
	struct json_object	*o, *d;

	if (a->relayed)
		/* The upstream's own end went; one it did not send is added. */
		return a->relay_stopped ? 0 :
		    event(out, "message_stop", typed("message_stop"));
	if (!a->started && message_start(cl, a, NULL, out) == -1)
		return -1;
	if (block_stop(a, out) == -1)
		return -1;
	d = json_object_new_object();
	json_object_object_add(d, "stop_reason", json_object_new_string(
	    a->stop[0] != '\0' ? a->stop : "end_turn"));
	json_object_object_add(d, "stop_sequence", NULL);
	o = typed("message_delta");
	json_object_object_add(o, "delta", d);
	json_object_object_add(o, "usage", usage_object(cl, a->out_bytes));
	if (event(out, "message_delta", o) == -1)
		return -1;
	return event(out, "message_stop", typed("message_stop"));
}

/* An Anthropic error type an upstream gave, or one by the gateway's. */
static const char *
fail_type(const struct provider_error *e)
{
	static const char *const known[] = { "invalid_request_error",
	    "authentication_error", "permission_error", "not_found_error",
	    "request_too_large", "rate_limit_error", "api_error",
	    "overloaded_error", "billing_error", "timeout_error", NULL };
	size_t		 i;

	for (i = 0; known[i] != NULL; i++)
		if (strcmp(e->type, known[i]) == 0)
			return known[i];
	return "api_error";
}

/* client_anthropic.fail: "event: error" (no message_stop follows). */
static int
anth_fail(struct client *cl, const struct provider_error *e,
    struct buf *out)
{
	struct json_object	*o, *err;

	err = json_object_new_object();
	json_object_object_add(err, "type",
	    json_object_new_string(fail_type(e)));
	json_object_object_add(err, "message",
	    json_object_new_string(e->message));
	o = typed("error");
	json_object_object_add(o, "error", err);
	return event(out, "error", o);
}

/* The upstream's message with the model the client asked for; NULL: bad. */
static struct json_object *
relay_message(struct client *cl, const char *p, size_t n, int in_start)
{
	struct json_object	*o, *m;

	if ((o = provider_parse(p, n)) == NULL)
		return NULL;
	m = in_start ? member(o, "message") : o;
	if (json_object_is_type(m, json_type_object) &&
	    member(m, "model") != NULL)
		json_object_object_add(m, "model",
		    json_object_new_string(cl->model));
	return o;
}

/*
 * client_anthropic.relay: the upstream's event as it came, but for the
 * model (the client's name) and a data that spans lines (made one).
 */
static int
anth_relay(struct client *cl, const struct sse_event *ev, struct buf *out)
{
	struct anth		*a = cl->state;
	struct json_object	*o;
	const char		*name = ev->event, *t;
	char			 type[64];
	size_t			 i;

	a->relayed = 1;
	if (name == NULL || *name == '\0') {
		o = provider_parse(ev->data, ev->data_len);
		t = provider_json_str(o, "type");
		snprintf(type, sizeof(type), "%s", t != NULL ? t : "message");
		json_object_put(o);
		for (i = 0; type[i] != '\0'; i++)
			if (type[i] == '\r' || type[i] == '\n')
				type[i] = '_';
		name = type;
	}
	if (strcmp(name, "message_stop") == 0)
		a->relay_stopped = 1;
	if (strcmp(name, "message_start") == 0 ||
	    memchr(ev->data, '\n', ev->data_len) != NULL) {
		if ((o = relay_message(cl, ev->data, ev->data_len,
		    strcmp(name, "message_start") == 0)) == NULL)
			return 0;	/* the adapter read it: cannot be */
		a->started = 1;
		return event(out, name, o);
	}
	return buf_printf(out, "event: %s\ndata: ", name) == -1 ||
	    buf_append(out, ev->data, ev->data_len) == -1 ||
	    buf_puts(out, "\n\n") == -1 ? -1 : 0;
}

/* client_anthropic.relay_reply: the upstream's message, model ours. */
static struct json_object *
anth_relay_reply(struct client *cl, const char *p, size_t n)
{
	return relay_message(cl, p, n, 0);
}

const struct client_ops client_anthropic = {
	.name = "anthropic",
	.request = anth_request,
	.native = anth_native,
	.reply = anth_reply,
	.chunk = anth_chunk,
	.done = anth_done,
	.fail = anth_fail,
	.error_object = client_anthropic_error,
	.free = anth_free,
	.relay = anth_relay,
	.relay_reply = anth_relay_reply,
};

int
route_messages(struct request *r, const char *arg)
{
	return route_chat_as(r, &client_anthropic);
}

/* --- count_tokens ------------------------------------------------------ */

/* jcall_ops.build: the client's body to an Anthropic provider's counter. */
static int
count_build(void *ctx, const struct candidate *c,
    const struct provider_ops *ops, struct provider_call *pc,
    struct provider_error *e)
{
	struct client		*cl = ctx;
	struct json_object	*out;
	int			 rc = -1;

	if (ops != &provider_anthropic) {
		provider_error_set(e, "invalid_request_error",
		    "unsupported_request", "model '%s' cannot count tokens "
		    "exactly", c->name);
		return -1;
	}
	restore_inputs(cl->state);
	out = json_object_new_object();
	json_object_object_foreach(cl->body, k, v) {
		if (strcmp(k, "model") == 0 || strcmp(k, "max_tokens") == 0 ||
		    strcmp(k, "stream") == 0 || strcmp(k, "metadata") == 0 ||
		    strcmp(k, "temperature") == 0 || strcmp(k, "top_p") == 0 ||
		    strcmp(k, "top_k") == 0 ||
		    strcmp(k, "stop_sequences") == 0)
			continue;
		json_object_object_add(out, k, json_object_get(v));
	}
	json_object_object_add(out, "model", json_object_new_string(c->upstream));
	if (provider_body(pc, out) == -1 ||
	    provider_url(pc, c->provider, "/messages/count_tokens") == -1 ||
	    provider_headers(pc, c->provider, "x-api-key", "") == -1)
		goto done;
	if (!provider_has_header(c->provider, "anthropic-version") &&
	    (pc->headers = curl_slist_append(pc->headers,
	    "anthropic-version: " ANTHROPIC_VERSION)) == NULL)
		goto done;
	if (!provider_has_header(c->provider, "anthropic-beta") &&
	    pass_header(pc, cl->r, "anthropic-beta") == -1)
		goto done;
	rc = 0;
done:
	json_object_put(out);
	return rc;
}

/* jcall_ops.reply: {"input_tokens":N} as it came, checked. */
static int
count_reply(void *ctx, const struct candidate *c, const char *body,
    size_t len, struct json_object **out, struct provider_error *e)
{
	struct json_object	*o, *res;

	if ((o = provider_parse(body, len)) == NULL ||
	    provider_json_int(o, "input_tokens") < 0) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed token count",
		    c->provider->name);
		return -1;
	}
	res = json_object_new_object();
	json_object_object_add(res, "input_tokens",
	    json_object_new_int64(provider_json_int(o, "input_tokens")));
	json_object_put(o);
	*out = res;
	return 0;
}

static const struct jcall_ops count_ops = {
	.build = count_build,
	.reply = count_reply,
};

/*
 * POST /v1/messages/count_tokens: exact from the first Anthropic
 * candidate of the model's plan (its own count_tokens, through the one
 * call loop and policy step; recorded at no cost), else an estimate
 * that says so: {"input_tokens":N,"estimated":true} (four bytes a
 * token of the body, as the chat route reserves).
 */
int
route_count_tokens(struct request *r, const char *arg)
{
	struct client		 cl;
	struct jcall		*jc = NULL;
	struct plan		 plan;
	struct json_object	*req = NULL, *o;
	const char		*model;
	size_t			 i;
	int			 rc, exact = 0;

	memset(&cl, 0, sizeof(cl));
	cl.r = r;
	cl.ops = &client_anthropic;
	if ((rc = anth_parse(&cl, 0, &req)) != 0)
		goto out;
	model = provider_json_str(req, "model");
	if (!validate_model_name(model)) {
		rc = http_error(r, 400, "invalid_request_error",
		    "invalid_value", "model", "'model' may hold only letters, "
		    "digits and . _ - : / @ +");
		goto out;
	}
	if ((rc = account_plan(r, model, &plan)) != 0)
		goto out;
	for (i = 0; i < plan.n; i++)
		if (plan.c[i].provider->type == PROVIDER_ANTHROPIC)
			exact = 1;
	if (!exact) {
		o = json_object_new_object();
		json_object_object_add(o, "input_tokens",
		    json_object_new_int64(((int64_t)r->body.len + 3) / 4));
		json_object_object_add(o, "estimated",
		    json_object_new_boolean(1));
		rc = http_send_json(r, 200, o) == -1 ? 0 : 200;
		json_object_put(o);
		goto out;
	}
	if ((jc = calloc(1, sizeof(*jc))) == NULL) {
		rc = http_error(r, 500, "server_error", NULL, NULL,
		    "out of memory");
		goto out;
	}
	jc->r = r;
	jc->ops = &count_ops;
	jc->ctx = &cl;
	jc->req = req;
	jc->proute = POLICY_CHAT;
	jc->body_max = (size_t)r->cfg->gw.max_body * 2 + 65536;
	jc->prompt_est = (int64_t)r->body.len;
	rc = jcall_run(jc, model);
	jcall_record(jc, model, NULL, 0);
out:
	free(jc);
	anth_free(&cl);
	json_object_put(cl.body);
	json_object_put(req);
	return rc;
}
