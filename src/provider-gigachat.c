/*
 * provider-gigachat.c: Sber GigaChat REST v1 (POST /api/v1/chat/completions)
 * behind an OAuth client-credentials token.
 *
 * The access token comes from gigachat-token.c (cached per process,
 * fetched once for all threads); auth_failed drops it when GigaChat
 * answers 401, and the call loop tries once more.
 *
 * chat_request returns -2 when no access token can be had right now (the
 * token endpoint is unreachable, refuses the key or the scope, or answers
 * nonsense). That is no fault of the client: the call loop answers 502
 * upstream_auth_error and tries the next model; err says what happened.
 * Neither the key nor a token is ever logged or put in an error.
 *
 * Request: the system and developer messages before the first turn become
 * the one leading system message GigaChat allows; later ones become user
 * text. Consecutive user messages are joined, as LiteLLM and gpt2giga do.
 * An assistant message with several tool calls is split so that each
 * function_call is followed by its own result. stop, n, penalties, seed,
 * user and response_format are not sent; images are refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gigachat-token.h"
#include "log.h"
#include "provider.h"

static const struct finish_map finish_reasons[] = {
	{ "stop", "stop" },
	{ "length", "length" },
	{ "function_call", "tool_calls" },
	{ "blacklist", "content_filter" },
	{ NULL, NULL },
};

/* GigaChat said 401: forget the token so that the retry gets a new one. */
static int
auth_failed(const struct provider_cfg *p)
{
	gigachat_token_drop(p);
	return 1;
}

/*
 * The text of an OpenAI content value: a string, or its text parts joined
 * by newlines. -1 with e filled for parts GigaChat cannot take inline.
 */
static int
content_text(const struct candidate *c, struct json_object *v,
    struct buf *out, struct provider_error *e)
{
	struct json_object	*part;
	const char		*type, *t;
	size_t			 i;

	if (json_object_is_type(v, json_type_string))
		return buf_puts(out, json_object_get_string(v)) == BUF_OK ?
		    0 : -1;
	if (!json_object_is_type(v, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(v); i++) {
		part = json_object_array_get_idx(v, i);
		type = provider_json_str(part, "type");
		if (type == NULL || strcmp(type, "text") != 0) {
			provider_error_set(e, "invalid_request_error",
			    "unsupported_content", "content parts of type '%s' "
			    "cannot be sent to provider '%s' (gigachat takes "
			    "text only)", type ? type : "?", c->provider->name);
			snprintf(e->param, sizeof(e->param), "messages");
			return -1;
		}
		if ((t = provider_json_str(part, "text")) == NULL)
			continue;
		if ((i > 0 && buf_puts(out, "\n") != BUF_OK) ||
		    buf_puts(out, t) != BUF_OK)
			return -1;
	}
	return 0;
}

/* A user turn; a user turn right before it takes the text instead. */
static void
add_user(struct json_object *msgs, const char *text)
{
	struct json_object	*last;
	size_t			 n = json_object_array_length(msgs);
	const char		*role, *prev;
	struct buf		 b;

	last = n > 0 ? json_object_array_get_idx(msgs, n - 1) : NULL;
	role = provider_json_str(last, "role");
	if (role != NULL && strcmp(role, "user") == 0) {
		prev = provider_json_str(last, "content");
		buf_init(&b, 1 << 30);
		if (buf_printf(&b, "%s\n%s", prev ? prev : "", text) ==
		    BUF_OK)
			json_object_object_add(last, "content",
			    json_object_new_string(b.data));
		buf_free(&b);
		return;
	}
	last = json_object_new_object();
	json_object_object_add(last, "role", json_object_new_string("user"));
	json_object_object_add(last, "content", json_object_new_string(text));
	json_object_array_add(msgs, last);
}

/* True when s is one whole JSON value. */
static int
is_json(const char *s)
{
	struct json_tokener	*tok;
	struct json_object	*o;
	int			 ok;

	if ((tok = json_tokener_new_ex(PROVIDER_JSON_DEPTH)) == NULL)
		return 0;
	o = json_tokener_parse_ex(tok, s, (int)strlen(s));
	ok = o != NULL && json_tokener_get_error(tok) == json_tokener_success &&
	    (size_t)json_tokener_get_parse_end(tok) == strlen(s);
	json_object_put(o);
	json_tokener_free(tok);
	return ok;
}

static struct json_object *
function_call(const char *name, struct json_object *args)
{
	struct json_object	*fc = json_object_new_object();

	json_object_object_add(fc, "name", json_object_new_string(name));
	json_object_object_add(fc, "arguments", json_object_get(args));
	return fc;
}

static struct json_object *
assistant_call(const char *content, struct json_object *call)
{
	struct json_object	*m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "content", json_object_new_string(content));
	json_object_object_add(m, "function_call", function_call(
	    provider_json_str(call, "name"),
	    json_object_object_get(call, "arguments")));
	return m;
}

/*
 * Assistant tool_calls: each is remembered in calls (id -> name,
 * arguments as an object, sent) and the first goes out with the message.
 */
static int
add_assistant(const struct candidate *c, struct json_object *msgs,
    struct json_object *m, const char *text, struct json_object *calls,
    struct provider_error *e)
{
	struct json_object	*tcs, *tc, *fn, *args, *rec, *first = NULL;
	const char		*a, *id, *name;
	char			 key[64];
	size_t			 i;

	if (!json_object_object_get_ex(m, "tool_calls", &tcs) ||
	    !json_object_is_type(tcs, json_type_array))
		tcs = NULL;
	for (i = 0; tcs != NULL && i < json_object_array_length(tcs); i++) {
		tc = json_object_array_get_idx(tcs, i);
		if (!json_object_object_get_ex(tc, "function", &fn))
			continue;
		name = provider_json_str(fn, "name");
		/* No arguments at all ("" from some clients) is {}. */
		if ((a = provider_json_str(fn, "arguments")) == NULL ||
		    *a == '\0')
			a = "{}";
		if (name == NULL || (args = provider_parse(a, strlen(a))) ==
		    NULL) {
			provider_error_set(e, "invalid_request_error",
			    "invalid_value", "tool call arguments must be a "
			    "JSON object for provider '%s'", c->provider->name);
			snprintf(e->param, sizeof(e->param), "messages");
			return -1;
		}
		rec = json_object_new_object();
		json_object_object_add(rec, "name", json_object_new_string(name));
		json_object_object_add(rec, "arguments", args);
		json_object_object_add(rec, "sent",
		    json_object_new_boolean(first == NULL));
		if ((id = provider_json_str(tc, "id")) == NULL) {
			snprintf(key, sizeof(key), "#%zu", i);
			id = key;
		}
		json_object_object_add(calls, id, rec);
		if (first == NULL)
			first = rec;
	}
	if (first != NULL)
		json_object_array_add(msgs, assistant_call(text, first));
	else {
		rec = json_object_new_object();
		json_object_object_add(rec, "role",
		    json_object_new_string("assistant"));
		json_object_object_add(rec, "content",
		    json_object_new_string(text));
		json_object_array_add(msgs, rec);
	}
	return 0;
}

/*
 * A tool result becomes a function message named after its call. A call
 * that did not go out with its assistant message goes out right before
 * its result. The content must be JSON: other text is sent as a string.
 */
static int
add_result(const struct candidate *c, struct json_object *msgs,
    struct json_object *m, const char *text, struct json_object *calls,
    struct provider_error *e)
{
	struct json_object	*rec = NULL, *f, *s;
	const char		*id, *name;

	if ((id = provider_json_str(m, "tool_call_id")) != NULL)
		json_object_object_get_ex(calls, id, &rec);
	name = rec ? provider_json_str(rec, "name") :
	    provider_json_str(m, "name");
	if (name == NULL) {
		provider_error_set(e, "invalid_request_error", "invalid_value",
		    "tool message for '%s' answers no earlier tool call",
		    id ? id : "?");
		snprintf(e->param, sizeof(e->param), "messages");
		return -1;
	}
	if (rec != NULL && !json_object_get_boolean(json_object_object_get(rec,
	    "sent"))) {
		json_object_array_add(msgs, assistant_call("", rec));
		json_object_object_add(rec, "sent", json_object_new_boolean(1));
	}
	f = json_object_new_object();
	json_object_object_add(f, "role", json_object_new_string("function"));
	json_object_object_add(f, "name", json_object_new_string(name));
	if (is_json(text))
		json_object_object_add(f, "content",
		    json_object_new_string(text));
	else {
		s = json_object_new_string(text);
		json_object_object_add(f, "content", json_object_new_string(
		    json_object_to_json_string_ext(s, JSON_C_TO_STRING_PLAIN |
		    JSON_C_TO_STRING_NOSLASHESCAPE)));
		json_object_put(s);
	}
	json_object_array_add(msgs, f);
	return 0;
}

/* OpenAI messages -> GigaChat messages, the system message first. */
static int
convert_messages(const struct candidate *c, struct json_object *in,
    struct json_object *out, struct provider_error *e)
{
	struct json_object	*m, *v, *calls, *turns, *sys;
	struct buf		 system, text;
	const char		*role;
	size_t			 i;
	int			 rc = 0, began = 0;

	buf_init(&system, 1 << 30);
	buf_init(&text, 1 << 30);
	calls = json_object_new_object();
	turns = json_object_new_array();
	for (i = 0; i < json_object_array_length(in) && rc == 0; i++) {
		m = json_object_array_get_idx(in, i);
		role = provider_json_str(m, "role");
		v = NULL;
		json_object_object_get_ex(m, "content", &v);
		buf_reset(&text);
		if ((rc = content_text(c, v, &text, e)) == -1)
			break;
		if (role == NULL)
			continue;
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			if (began)
				add_user(turns, text.data ? text.data : "");
			else if (text.len > 0 && ((system.len > 0 &&
			    buf_puts(&system, "\n\n") != BUF_OK) ||
			    buf_puts(&system, text.data) != BUF_OK))
				rc = -1;
			continue;
		}
		began = 1;
		if (strcmp(role, "assistant") == 0)
			rc = add_assistant(c, turns, m, text.data ? text.data :
			    "", calls, e);
		else if (strcmp(role, "tool") == 0 ||
		    strcmp(role, "function") == 0)
			rc = add_result(c, turns, m, text.data ? text.data : "",
			    calls, e);
		else
			add_user(turns, text.data ? text.data : "");
	}
	if (rc == 0 && system.len > 0) {
		sys = json_object_new_object();
		json_object_object_add(sys, "role",
		    json_object_new_string("system"));
		json_object_object_add(sys, "content",
		    json_object_new_string(system.data));
		json_object_array_add(out, sys);
	}
	for (i = 0; rc == 0 && i < json_object_array_length(turns); i++)
		json_object_array_add(out, json_object_get(
		    json_object_array_get_idx(turns, i)));
	json_object_put(turns);
	json_object_put(calls);
	buf_free(&system);
	buf_free(&text);
	return rc;
}

/* OpenAI tools -> GigaChat functions. */
static struct json_object *
convert_tools(struct json_object *tools)
{
	struct json_object	*out, *t, *fn, *params, *d;
	const char		*s;
	size_t			 i;

	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		if (!json_object_object_get_ex(t, "function", &fn) ||
		    (s = provider_json_str(fn, "name")) == NULL)
			continue;
		d = json_object_new_object();
		json_object_object_add(d, "name", json_object_new_string(s));
		if ((s = provider_json_str(fn, "description")) != NULL)
			json_object_object_add(d, "description",
			    json_object_new_string(s));
		if (json_object_object_get_ex(fn, "parameters", &params) &&
		    json_object_is_type(params, json_type_object))
			json_object_object_add(d, "parameters",
			    json_object_get(params));
		else
			json_object_object_add(d, "parameters", provider_parse(
			    "{\"type\":\"object\",\"properties\":{}}", 35));
		json_object_array_add(out, d);
	}
	return out;
}

/*
 * OpenAI tool_choice -> function_call: "auto", "none" or {"name"}.
 * GigaChat has no "required": with one function it is that function.
 */
static struct json_object *
convert_tool_choice(struct json_object *tc, struct json_object *functions)
{
	struct json_object	*fn, *o;
	const char		*s = NULL, *name = NULL;

	if (json_object_is_type(tc, json_type_string))
		s = json_object_get_string(tc);
	else if (json_object_object_get_ex(tc, "function", &fn))
		name = provider_json_str(fn, "name");
	if (s != NULL && strcmp(s, "none") == 0)
		return json_object_new_string("none");
	if (s != NULL && strcmp(s, "required") == 0 &&
	    json_object_array_length(functions) == 1)
		name = provider_json_str(json_object_array_get_idx(functions,
		    0), "name");
	if (name == NULL)
		return json_object_new_string("auto");
	o = json_object_new_object();
	json_object_object_add(o, "name", json_object_new_string(name));
	return o;
}

/* A member that is present and not null. */
static struct json_object *
member(struct json_object *o, const char *name)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, name, &v) ? v : NULL;
}

static int
chat_request(const struct candidate *c, const struct chat_in *in,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*out, *msgs, *v, *fns;
	int			 rc = -1;

	out = json_object_new_object();
	msgs = json_object_new_array();
	json_object_object_add(out, "model", json_object_new_string(c->upstream));
	json_object_object_add(out, "messages", msgs);
	if (convert_messages(c, member(in->req, "messages"), msgs, e) == -1)
		goto done;
	if ((v = member(in->req, "temperature")) != NULL) {
		/* GigaChat wants temperature > 0; top_p 0 is greedy. */
		if (json_object_get_double(v) > 0.0)
			json_object_object_add(out, "temperature",
			    json_object_get(v));
		else
			json_object_object_add(out, "top_p",
			    json_object_new_int(0));
	}
	if ((v = member(in->req, "top_p")) != NULL &&
	    !json_object_object_get_ex(out, "top_p", NULL))
		json_object_object_add(out, "top_p", json_object_get(v));
	json_object_object_add(out, "max_tokens",
	    json_object_new_int64(plan_max_tokens(c, in->client_max)));
	if (in->stream)
		json_object_object_add(out, "stream", json_object_new_boolean(1));
	if ((v = member(in->req, "tools")) != NULL &&
	    json_object_is_type(v, json_type_array)) {
		fns = convert_tools(v);
		if (json_object_array_length(fns) > 0) {
			json_object_object_add(out, "functions", fns);
			json_object_object_add(out, "function_call",
			    convert_tool_choice(member(in->req, "tool_choice"),
			    fns));
		} else
			json_object_put(fns);
	}
	if (provider_body(call, out) == -1)
		goto done;
	if (gigachat_token_bearer(c->provider, call, e) == -1) {
		/* No URL: a caller that does not know -2 cannot send it. */
		buf_reset(&call->body);
		rc = -2;
		goto done;
	}
	if (provider_url(call, c->provider, "/chat/completions") == -1 ||
	    provider_headers(call, c->provider, NULL, NULL) == -1 ||
	    (call->headers = curl_slist_append(call->headers, in->stream ?
	    "Accept: text/event-stream" : "Accept: application/json")) == NULL)
		goto done;
	rc = 0;
done:
	json_object_put(out);
	return rc;
}

/* GigaChat usage; precached_prompt_tokens come on top of prompt_tokens. */
static void
read_usage(struct json_object *u, struct usage *out)
{
	int64_t	 p, c, k;

	if (u == NULL || !json_object_is_type(u, json_type_object))
		return;
	p = provider_json_tokens(u, "prompt_tokens");
	c = provider_json_tokens(u, "completion_tokens");
	k = provider_json_tokens(u, "precached_prompt_tokens");
	if (p < 0 && c < 0)
		return;
	out->cached = k > 0 ? k : 0;
	out->prompt = (p > 0 ? p : 0) + out->cached;
	/* Set, never add: a later report replaces an earlier one. */
	out->completion = c > 0 ? c : 0;
	out->known = 1;
}

static struct json_object *
tool_call(struct json_object *fc, int with_id)
{
	struct json_object	*tc, *fn;
	const char		*name = provider_json_str(fc, "name");
	char			 id[64];

	fn = json_object_new_object();
	if (name != NULL || with_id)
		json_object_object_add(fn, "name",
		    json_object_new_string(name ? name : ""));
	json_object_object_add(fn, "arguments", json_object_new_string(
	    provider_args_string(json_object_object_get(fc, "arguments"))));
	tc = json_object_new_object();
	if (with_id) {
		provider_new_id(id, sizeof(id), "call_");
		json_object_object_add(tc, "id", json_object_new_string(id));
		json_object_object_add(tc, "type",
		    json_object_new_string("function"));
	}
	json_object_object_add(tc, "function", fn);
	return tc;
}

/* One GigaChat choice -> an OpenAI choice. */
static struct json_object *
convert_choice(struct json_object *ch, size_t idx)
{
	struct json_object	*msg, *fc, *out, *m, *calls;
	const char		*content, *finish;

	msg = member(ch, "message");
	content = provider_json_str(msg, "content");
	fc = member(msg, "function_call");
	if (fc != NULL && !json_object_is_type(fc, json_type_object))
		fc = NULL;
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "content", content != NULL &&
	    (*content != '\0' || fc == NULL) ? json_object_new_string(content) :
	    NULL);
	if (fc != NULL) {
		calls = json_object_new_array();
		json_object_array_add(calls, tool_call(fc, 1));
		json_object_object_add(m, "tool_calls", calls);
	}
	finish = provider_finish(finish_reasons, provider_json_str(ch,
	    "finish_reason"));
	if (fc != NULL)
		finish = "tool_calls";
	out = json_object_new_object();
	json_object_object_add(out, "index", json_object_new_int64(
	    provider_json_int(ch, "index") >= 0 ? provider_json_int(ch,
	    "index") : (int64_t)idx));
	json_object_object_add(out, "message", m);
	json_object_object_add(out, "logprobs", NULL);
	json_object_object_add(out, "finish_reason",
	    json_object_new_string(finish ? finish : "stop"));
	return out;
}

static int
chat_response(const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	struct json_object	*o, *choices, *res, *list;
	char			 id[64];
	int64_t			 created;
	size_t			 i;

	if ((o = provider_parse(body, len)) == NULL ||
	    (choices = member(o, "choices")) == NULL ||
	    !json_object_is_type(choices, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed chat completion",
		    c->provider->name);
		return -1;
	}
	read_usage(member(o, "usage"), u);
	list = json_object_new_array();
	for (i = 0; i < json_object_array_length(choices); i++)
		json_object_array_add(list, convert_choice(
		    json_object_array_get_idx(choices, i), i));
	provider_new_id(id, sizeof(id), "chatcmpl-");
	created = provider_json_int(o, "created");
	res = json_object_new_object();
	json_object_object_add(res, "id", json_object_new_string(id));
	json_object_object_add(res, "object",
	    json_object_new_string("chat.completion"));
	json_object_object_add(res, "created", json_object_new_int64(
	    created > 0 ? created : (int64_t)time(NULL)));
	json_object_object_add(res, "model", json_object_new_string(c->name));
	json_object_object_add(res, "choices", list);
	json_object_object_add(res, "usage", provider_usage_object(u));
	json_object_put(o);
	*out = res;
	return 0;
}

/*
 * A delta's function_call as one tool_calls entry. A named call is a new
 * call with the whole arguments; a nameless one with string arguments
 * continues the open call (in case GigaChat ever streams fragments).
 */
static struct json_object *
stream_tool_call(struct stream_state *st, struct json_object *fc)
{
	struct json_object	*tc, *arr, *args;

	args = member(fc, "arguments");
	if (provider_json_str(fc, "name") != NULL) {
		tc = tool_call(fc, 1);
		st->tools++;
	} else if (st->tools > 0 && json_object_is_type(args,
	    json_type_string))
		tc = tool_call(fc, 0);
	else
		return NULL;
	st->chars += (int64_t)strlen(provider_args_string(args));
	json_object_object_add(tc, "index", json_object_new_int(st->tools - 1));
	arr = json_object_new_array();
	json_object_array_add(arr, tc);
	return arr;
}

/*
 * One "data:" event: a chunk with "object": "chat.completion", no id, the
 * usage in the last chunk, or [DONE]. Each becomes a delta chunk and,
 * when it finishes, a finish chunk.
 */
static int
chat_event(struct stream_state *st, const struct sse_event *ev)
{
	struct json_object	*o, *ch, *delta, *d, *v;
	const char		*s, *msg, *finish;
	int			 rc = 0;

	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		st->done = 1;
		return provider_emit_usage(st);
	}
	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream event", st->cand->provider->name);
		return -1;
	}
	if (st->id[0] == '\0')
		provider_new_id(st->id, sizeof(st->id), "chatcmpl-");
	v = member(o, "choices");
	if (v == NULL && (msg = provider_json_str(o, "message")) != NULL) {
		/* An error in the stream: {"status": 500, "message": "..."}. */
		provider_error_set(&st->err, "upstream_error", "upstream_error",
		    "provider '%s': %s", st->cand->provider->name, msg);
		st->failed = 1;
		json_object_put(o);
		return -1;
	}
	read_usage(member(o, "usage"), &st->usage);
	ch = json_object_is_type(v, json_type_array) ?
	    json_object_array_get_idx(v, 0) : NULL;
	delta = member(ch, "delta");
	d = json_object_new_object();
	if (provider_json_str(delta, "role") != NULL)
		json_object_object_add(d, "role",
		    json_object_new_string("assistant"));
	if ((s = provider_json_str(delta, "content")) != NULL &&
	    (*s != '\0' || member(d, "role") != NULL)) {
		st->chars += (int64_t)strlen(s);
		json_object_object_add(d, "content", json_object_new_string(s));
	}
	if ((v = member(delta, "function_call")) != NULL &&
	    json_object_is_type(v, json_type_object) &&
	    (v = stream_tool_call(st, v)) != NULL)
		json_object_object_add(d, "tool_calls", v);
	if (json_object_object_length(d) > 0)
		rc = provider_emit_chunk(st, d, NULL);
	else
		json_object_put(d);
	if (rc == 0 && (s = provider_json_str(ch, "finish_reason")) != NULL) {
		finish = provider_finish(finish_reasons, s);
		if (st->tools > 0 && strcmp(finish, "stop") == 0)
			finish = "tool_calls";
		snprintf(st->finish, sizeof(st->finish), "%s", finish);
		rc = provider_emit_chunk(st, NULL, st->finish);
	}
	json_object_put(o);
	return rc;
}

/* {"status": 404, "message": "No such model"}, or an OAuth-style code. */
static void
error(long status, const char *body, size_t len, struct provider_error *e)
{
	struct json_object	*o;
	const char		*msg;

	provider_error_set(e, status >= 500 ? "upstream_error" : status == 429 ?
	    "rate_limit_error" : "invalid_request_error", NULL,
	    "upstream answered HTTP %ld", status);
	if ((o = provider_parse(body, len)) == NULL)
		return;
	if ((msg = provider_json_str(o, "message")) != NULL)
		snprintf(e->message, sizeof(e->message), "%s", msg);
	if (status == 404)
		snprintf(e->code, sizeof(e->code), "%s", "model_not_found");
	json_object_put(o);
}

const struct provider_ops provider_gigachat = {
	.type = "gigachat",
	.framing = FRAMING_SSE,
	.chat_request = chat_request,
	.chat_response = chat_response,
	.chat_event = chat_event,
	.error = error,
	.auth_failed = auth_failed,
};
