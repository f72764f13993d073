/*
 * client-responses.c: POST /v1/responses, the OpenAI Responses API,
 * stateless, as a client of the one chat pipeline (client.h): the
 * request's input items, instructions and function tools become an
 * internal chat request (so the policy step, plan, admission, call loop
 * over every provider type, output guard and settlement are chat's),
 * and the chat answer or stream becomes the Response object or its
 * semantic events (response.created ... response.completed).
 * previous_response_id and store: true are refused: nothing is kept,
 * the client sends the whole conversation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client.h"
#include "http.h"
#include "provider.h"
#include "route.h"
#include "validate.h"

#define TOOLS_MAX	1024	/* function calls of one streamed answer */

/* One function call item of a stream. */
struct rs_call {
	int		 index;		/* the chat tool call's index */
	int		 output;	/* its output_index */
	char		 id[48];	/* fc_... */
	char		 call_id[128];
	char		*name;
	struct buf	 args;
	int		 done;
};

/* A Responses client's state: the stream's items as they are built. */
struct rs {
	char		 id[48];		/* resp_... */
	char		 msg_id[48];		/* msg_... */
	long		 created;
	long		 seq;			/* sequence_number of the next */
	int		 started;		/* response.created sent */
	int		 outputs;		/* output items opened */
	int		 text_output;		/* the message's index; -1: none */
	int		 text_done;
	struct buf	 text;
	char		 rs_id[48];		/* rs_...: the reasoning item */
	int		 think_output;		/* its index; -1: none */
	int		 think_done;
	struct buf	 think;
	struct rs_call	*calls;			/* owned; ncalls of them */
	int		 ncalls;
	int		 acalls;		/* allocated */
	char		 finish[32];
	int64_t		 out_bytes;
};

static int	close_think(struct client *, struct buf *);

/* --- the request: items -> chat messages ------------------------------- */

static int
bad(struct client *cl, const char *param, const char *why)
{
	return http_error(cl->r, 400, "invalid_request_error",
	    "invalid_value", param, "%s", why);
}

static const char *
str_member(struct json_object *o, const char *member)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, member, &v) &&
	    json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

/*
 * A message item's content as chat content: a string as it is; parts
 * (input_text, output_text, input_image) as chat parts, or, for the
 * assistant, as one string. NULL with *why set when a part is refused.
 */
static struct json_object *
content_of(struct json_object *c, int assistant, const char **why,
    size_t max)
{
	struct json_object	*arr, *p, *o, *img, *url;
	struct buf		 b;
	const char		*type, *text;
	size_t			 i;

	if (json_object_is_type(c, json_type_string))
		return json_object_get(c);
	if (!json_object_is_type(c, json_type_array)) {
		*why = "content: expected a string or an array of parts";
		return NULL;
	}
	buf_init(&b, max);
	arr = json_object_new_array();
	for (i = 0; i < json_object_array_length(c); i++) {
		p = json_object_array_get_idx(c, i);
		type = str_member(p, "type");
		text = str_member(p, "text");
		if (type != NULL && (strcmp(type, "input_text") == 0 ||
		    strcmp(type, "output_text") == 0 ||
		    strcmp(type, "text") == 0 ||
		    strcmp(type, "refusal") == 0) && (text != NULL ||
		    (text = str_member(p, "refusal")) != NULL)) {
			if (assistant) {
				buf_puts(&b, text);
				continue;
			}
			o = json_object_new_object();
			json_object_object_add(o, "type",
			    json_object_new_string("text"));
			json_object_object_add(o, "text",
			    json_object_new_string(text));
			json_object_array_add(arr, o);
		} else if (type != NULL && strcmp(type, "input_image") == 0 &&
		    !assistant && json_object_object_get_ex(p, "image_url",
		    &url) && json_object_is_type(url, json_type_string)) {
			img = json_object_new_object();
			json_object_object_add(img, "url", json_object_get(url));
			o = json_object_new_object();
			json_object_object_add(o, "type",
			    json_object_new_string("image_url"));
			json_object_object_add(o, "image_url", img);
			json_object_array_add(arr, o);
		} else {
			*why = "content: only input_text, output_text and "
			    "input_image (by image_url) parts are accepted";
			json_object_put(arr);
			buf_free(&b);
			return NULL;
		}
	}
	if (assistant) {
		json_object_put(arr);
		arr = json_object_new_string_len(b.data != NULL ? b.data : "",
		    (int)b.len);
	}
	buf_free(&b);
	return arr;
}

/* The last message of msgs when it is the assistant's, else a new one. */
static struct json_object *
assistant_turn(struct json_object *msgs)
{
	struct json_object	*m;
	size_t			 n = json_object_array_length(msgs);
	const char		*role;

	if (n > 0) {
		m = json_object_array_get_idx(msgs, n - 1);
		role = str_member(m, "role");
		if (role != NULL && strcmp(role, "assistant") == 0)
			return m;
	}
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "content", NULL);
	json_object_array_add(msgs, m);
	return m;
}

/* A function_call item onto the assistant turn it belongs to. */
static const char *
add_call(struct json_object *msgs, struct json_object *it)
{
	struct json_object	*m, *calls, *tc, *fn, *v;
	const char		*call_id, *name;

	call_id = str_member(it, "call_id");
	name = str_member(it, "name");
	if (call_id == NULL || name == NULL)
		return "function_call: call_id and name are required";
	m = assistant_turn(msgs);
	if (!json_object_object_get_ex(m, "tool_calls", &calls)) {
		calls = json_object_new_array();
		json_object_object_add(m, "tool_calls", calls);
	}
	fn = json_object_new_object();
	json_object_object_add(fn, "name", json_object_new_string(name));
	json_object_object_add(fn, "arguments", json_object_new_string(
	    json_object_object_get_ex(it, "arguments", &v) ?
	    provider_args_string(v) : "{}"));
	tc = json_object_new_object();
	json_object_object_add(tc, "id", json_object_new_string(call_id));
	json_object_object_add(tc, "type", json_object_new_string("function"));
	json_object_object_add(tc, "function", fn);
	json_object_array_add(calls, tc);
	return NULL;
}

/* A function_call_output item as a tool message. */
static const char *
add_output(struct json_object *msgs, struct json_object *it, size_t max)
{
	struct json_object	*m, *out, *c;
	const char		*call_id, *why = NULL;

	if ((call_id = str_member(it, "call_id")) == NULL ||
	    !json_object_object_get_ex(it, "output", &out))
		return "function_call_output: call_id and output are required";
	if ((c = content_of(out, 1, &why, max)) == NULL)
		return why;
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("tool"));
	json_object_object_add(m, "tool_call_id",
	    json_object_new_string(call_id));
	json_object_object_add(m, "content", c);
	json_object_array_add(msgs, m);
	return NULL;
}

/* A message item (or an easy input message: role and content). */
static const char *
add_message(struct json_object *msgs, struct json_object *it, size_t max)
{
	struct json_object	*m, *c, *content, *prev;
	const char		*role, *why = NULL;

	role = str_member(it, "role");
	if (role == NULL || (strcmp(role, "user") != 0 &&
	    strcmp(role, "assistant") != 0 && strcmp(role, "system") != 0 &&
	    strcmp(role, "developer") != 0))
		return "message: role must be user, assistant, system or "
		    "developer";
	if (!json_object_object_get_ex(it, "content", &c))
		return "message: content is required";
	if ((content = content_of(c, strcmp(role, "assistant") == 0,
	    &why, max)) == NULL)
		return why;
	if (strcmp(role, "assistant") == 0) {
		/* Text then calls of one turn stay one chat message. */
		m = assistant_turn(msgs);
		if (json_object_object_get_ex(m, "content", &prev) &&
		    prev != NULL) {
			m = json_object_new_object();
			json_object_object_add(m, "role",
			    json_object_new_string("assistant"));
			json_object_array_add(msgs, m);
		}
		json_object_object_add(m, "content", content);
		return NULL;
	}
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "content", content);
	json_object_array_add(msgs, m);
	return NULL;
}

static const char *
add_item(struct json_object *msgs, struct json_object *it, size_t max)
{
	const char	*type;

	if (!json_object_is_type(it, json_type_object))
		return "input: every item must be an object";
	type = str_member(it, "type");
	if (type == NULL || strcmp(type, "message") == 0)
		return add_message(msgs, it, max);
	if (strcmp(type, "function_call") == 0)
		return add_call(msgs, it);
	if (strcmp(type, "function_call_output") == 0)
		return add_output(msgs, it, max);
	if (strcmp(type, "reasoning") == 0)
		return NULL;	/* a model's own notes: not sent back */
	return "input: only message, function_call and function_call_output "
	    "items are accepted";
}

/* Responses function tools -> chat tools. NULL with *why when refused. */
static struct json_object *
tools_of(struct json_object *tools, const char **why)
{
	struct json_object	*out, *t, *fn, *v;
	const char		*type;
	size_t			 i;

	if (!json_object_is_type(tools, json_type_array)) {
		*why = "tools: expected an array";
		return NULL;
	}
	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		type = str_member(t, "type");
		if (type == NULL || strcmp(type, "function") != 0 ||
		    str_member(t, "name") == NULL) {
			*why = "tools: only function tools ({\"type\":"
			    "\"function\",\"name\":...}) are accepted; the "
			    "gateway runs no hosted tools";
			json_object_put(out);
			return NULL;
		}
		fn = json_object_new_object();
		json_object_object_foreach(t, k, val) {
			if (strcmp(k, "name") == 0 ||
			    strcmp(k, "description") == 0 ||
			    strcmp(k, "parameters") == 0 ||
			    (strcmp(k, "strict") == 0 && val != NULL))
				json_object_object_add(fn, k,
				    json_object_get(val));
		}
		v = json_object_new_object();
		json_object_object_add(v, "type",
		    json_object_new_string("function"));
		json_object_object_add(v, "function", fn);
		json_object_array_add(out, v);
	}
	return out;
}

/* tool_choice: the strings as they are; {"type":"function","name"}. */
static struct json_object *
tool_choice_of(struct json_object *tc)
{
	struct json_object	*o, *fn;
	const char		*name;

	if (json_object_is_type(tc, json_type_string))
		return json_object_get(tc);
	if ((name = str_member(tc, "name")) == NULL)
		return NULL;
	fn = json_object_new_object();
	json_object_object_add(fn, "name", json_object_new_string(name));
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string("function"));
	json_object_object_add(o, "function", fn);
	return o;
}

/* text.format -> response_format (json_schema, json_object). */
static struct json_object *
format_of(struct json_object *text)
{
	struct json_object	*f, *o, *js;
	const char		*type;

	if (!json_object_object_get_ex(text, "format", &f) ||
	    (type = str_member(f, "type")) == NULL ||
	    strcmp(type, "text") == 0)
		return NULL;
	o = json_object_new_object();
	json_object_object_add(o, "type", json_object_new_string(type));
	if (strcmp(type, "json_schema") == 0) {
		js = json_object_new_object();
		json_object_object_foreach(f, k, v)
			if (strcmp(k, "type") != 0)
				json_object_object_add(js, k,
				    json_object_get(v));
		json_object_object_add(o, "json_schema", js);
	}
	return o;
}

static int
is_true(struct json_object *o, const char *member)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, member, &v) && v != NULL &&
	    json_object_get_boolean(v);
}

/* Copy member from of body into out under name, when present and not null. */
static void
copy(struct json_object *out, const char *name, struct json_object *body,
    const char *member)
{
	struct json_object	*v;

	if (json_object_object_get_ex(body, member, &v) && v != NULL)
		json_object_object_add(out, name, json_object_get(v));
}

/* client_ops.request: the Responses request as a chat request. */
static int
rs_request(struct client *cl, struct json_object **out)
{
	struct request		*r = cl->r;
	struct json_object	*body, *req, *msgs, *in, *v, *so, *m;
	struct verr		 e;
	struct rs		*st;
	const char		*why = NULL, *param = "input", *s;
	size_t			 i;

	*out = NULL;
	memset(&e, 0, sizeof(e));
	body = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (body == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	cl->body = body;
	if (!json_object_is_type(body, json_type_object))
		return bad(cl, NULL, "the body must be a JSON object");
	if (json_object_object_get_ex(body, "previous_response_id", &v) &&
	    v != NULL)
		return http_error(r, 400, "invalid_request_error",
		    "unsupported_parameter", "previous_response_id", "%s",
		    "previous_response_id is not supported: this gateway is "
		    "stateless and keeps no responses; send the whole "
		    "conversation in input (earlier messages, function_call "
		    "and function_call_output items)");
	if (is_true(body, "store"))
		return http_error(r, 400, "invalid_request_error",
		    "unsupported_parameter", "store", "%s", "store: true is "
		    "not supported: this gateway is stateless and keeps no "
		    "responses; send store: false (or leave it out) and the "
		    "whole conversation in input");
	if (json_object_object_get_ex(body, "background", &v) && is_true(body,
	    "background"))
		return bad(cl, "background", "background: not supported "
		    "(the gateway is stateless)");
	if (json_object_object_get_ex(body, "conversation", &v) && v != NULL)
		return bad(cl, "conversation", "conversation: not "
		    "supported (the gateway is stateless)");

	req = json_object_new_object();
	msgs = json_object_new_array();
	json_object_object_add(req, "messages", msgs);
	copy(req, "model", body, "model");
	if ((s = str_member(body, "instructions")) != NULL) {
		m = json_object_new_object();
		json_object_object_add(m, "role",
		    json_object_new_string("system"));
		json_object_object_add(m, "content",
		    json_object_new_string(s));
		json_object_array_add(msgs, m);
	}
	if (!json_object_object_get_ex(body, "input", &in) || in == NULL) {
		why = "input: a string or an array of items is required";
	} else if (json_object_is_type(in, json_type_string)) {
		m = json_object_new_object();
		json_object_object_add(m, "role",
		    json_object_new_string("user"));
		json_object_object_add(m, "content", json_object_get(in));
		json_object_array_add(msgs, m);
	} else if (json_object_is_type(in, json_type_array)) {
		for (i = 0; why == NULL && i < json_object_array_length(in);
		    i++)
			why = add_item(msgs, json_object_array_get_idx(in, i),
			    r->body.len + 1);
	} else
		why = "input: a string or an array of items is required";
	if (why == NULL && json_object_object_get_ex(body, "tools", &v) &&
	    v != NULL) {
		param = "tools";
		if ((v = tools_of(v, &why)) != NULL) {
			if (json_object_array_length(v) > 0)
				json_object_object_add(req, "tools", v);
			else
				json_object_put(v);
		}
	}
	if (why == NULL && json_object_object_get_ex(body, "tool_choice",
	    &v) && v != NULL) {
		param = "tool_choice";
		if ((v = tool_choice_of(v)) == NULL)
			why = "tool_choice: a string or {\"type\":\"function\","
			    "\"name\":...}";
		else
			json_object_object_add(req, "tool_choice", v);
	}
	if (why != NULL) {
		json_object_put(req);
		return bad(cl, param, why);
	}
	copy(req, "max_tokens", body, "max_output_tokens");
	copy(req, "temperature", body, "temperature");
	copy(req, "top_p", body, "top_p");
	copy(req, "parallel_tool_calls", body, "parallel_tool_calls");
	copy(req, "user", body, "user");
	if (json_object_object_get_ex(body, "text", &v) &&
	    (v = format_of(v)) != NULL)
		json_object_object_add(req, "response_format", v);
	if (is_true(body, "stream")) {
		json_object_object_add(req, "stream",
		    json_object_new_boolean(1));
		/* The usage chunk comes through: response.completed has it. */
		so = json_object_new_object();
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
		json_object_object_add(req, "stream_options", so);
	}

	st = calloc(1, sizeof(*st));
	if (st == NULL) {
		json_object_put(req);
		return http_error(r, 500, "server_error", "out_of_memory",
		    NULL, "%s", "out of memory");
	}
	provider_new_id(st->id, sizeof(st->id), "resp_");
	provider_new_id(st->msg_id, sizeof(st->msg_id), "msg_");
	st->created = (long)time(NULL);
	st->text_output = -1;
	buf_init(&st->text, (size_t)r->cfg->gw.max_upstream_body);
	provider_new_id(st->rs_id, sizeof(st->rs_id), "rs_");
	st->think_output = -1;
	buf_init(&st->think, (size_t)r->cfg->gw.max_upstream_body);
	cl->state = st;
	*out = req;
	return 0;
}

/* --- the answer: the Response object ------------------------------------ */

/* usage in the Responses shape: the upstream's, else estimated. */
static struct json_object *
usage_of(struct client *cl, int64_t out_bytes)
{
	struct json_object	*u, *d;
	int64_t			 in, out, cached = 0;

	if (cl->usage != NULL && cl->usage->known) {
		in = cl->usage->prompt;
		out = cl->usage->completion;
		cached = cl->usage->cached;
	} else {
		in = cl->prompt_est;
		out = (out_bytes + 3) / 4;
	}
	u = json_object_new_object();
	json_object_object_add(u, "input_tokens", json_object_new_int64(in));
	d = json_object_new_object();
	json_object_object_add(d, "cached_tokens",
	    json_object_new_int64(cached));
	json_object_object_add(u, "input_tokens_details", d);
	json_object_object_add(u, "output_tokens", json_object_new_int64(out));
	d = json_object_new_object();
	json_object_object_add(d, "reasoning_tokens", json_object_new_int64(0));
	json_object_object_add(u, "output_tokens_details", d);
	json_object_object_add(u, "total_tokens",
	    json_object_new_int64(in + out));
	return u;
}

/*
 * The Response object: status from the finish reason (NULL: in
 * progress), output items (a new array when output is NULL).
 */
static struct json_object *
response_object(struct client *cl, const char *model, const char *finish,
    struct json_object *output, struct json_object *usage)
{
	struct rs		*st = cl->state;
	struct json_object	*o, *d, *v, *body = cl->body;
	const char		*status = "in_progress", *reason = NULL;

	if (finish != NULL) {
		status = "completed";
		if (strcmp(finish, "length") == 0)
			reason = "max_output_tokens";
		else if (strcmp(finish, "content_filter") == 0)
			reason = "content_filter";
		if (reason != NULL)
			status = "incomplete";
	}
	o = json_object_new_object();
	json_object_object_add(o, "id", json_object_new_string(st->id));
	json_object_object_add(o, "object", json_object_new_string("response"));
	json_object_object_add(o, "created_at",
	    json_object_new_int64(st->created));
	json_object_object_add(o, "status", json_object_new_string(status));
	json_object_object_add(o, "error", NULL);
	if (reason != NULL) {
		d = json_object_new_object();
		json_object_object_add(d, "reason",
		    json_object_new_string(reason));
		json_object_object_add(o, "incomplete_details", d);
	} else
		json_object_object_add(o, "incomplete_details", NULL);
	json_object_object_add(o, "instructions",
	    json_object_object_get_ex(body, "instructions", &v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(o, "max_output_tokens",
	    json_object_object_get_ex(body, "max_output_tokens", &v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(o, "model", json_object_new_string(model));
	json_object_object_add(o, "output", output != NULL ? output :
	    json_object_new_array());
	json_object_object_add(o, "parallel_tool_calls",
	    json_object_new_boolean(!json_object_object_get_ex(body,
	    "parallel_tool_calls", &v) || v == NULL ||
	    json_object_get_boolean(v)));
	json_object_object_add(o, "previous_response_id", NULL);
	json_object_object_add(o, "store", json_object_new_boolean(0));
	json_object_object_add(o, "temperature",
	    json_object_object_get_ex(body, "temperature", &v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(o, "top_p",
	    json_object_object_get_ex(body, "top_p", &v) ?
	    json_object_get(v) : NULL);
	json_object_object_add(o, "tool_choice",
	    json_object_object_get_ex(body, "tool_choice", &v) && v != NULL ?
	    json_object_get(v) : json_object_new_string("auto"));
	json_object_object_add(o, "tools",
	    json_object_object_get_ex(body, "tools", &v) && v != NULL ?
	    json_object_get(v) : json_object_new_array());
	d = json_object_new_object();
	json_object_object_add(d, "format", json_object_new_object());
	json_object_object_add(json_object_object_get(d, "format"), "type",
	    json_object_new_string("text"));
	json_object_object_add(o, "text", d);
	json_object_object_add(o, "metadata",
	    json_object_object_get_ex(body, "metadata", &v) && v != NULL ?
	    json_object_get(v) : json_object_new_object());
	json_object_object_add(o, "usage", usage);
	return o;
}

static struct json_object *
text_part(const char *text, size_t len)
{
	struct json_object	*p;

	p = json_object_new_object();
	json_object_object_add(p, "type", json_object_new_string("output_text"));
	json_object_object_add(p, "text",
	    json_object_new_string_len(text != NULL ? text : "", (int)len));
	json_object_object_add(p, "annotations", json_object_new_array());
	return p;
}

static struct json_object *
message_item(const char *id, const char *status, struct json_object *part)
{
	struct json_object	*it, *c;

	it = json_object_new_object();
	json_object_object_add(it, "id", json_object_new_string(id));
	json_object_object_add(it, "type", json_object_new_string("message"));
	json_object_object_add(it, "status", json_object_new_string(status));
	json_object_object_add(it, "role", json_object_new_string("assistant"));
	c = json_object_new_array();
	if (part != NULL)
		json_object_array_add(c, part);
	json_object_object_add(it, "content", c);
	return it;
}

static struct json_object *
call_item(const char *id, const char *status, const char *call_id,
    const char *name, const char *args, size_t args_len)
{
	struct json_object	*it;

	it = json_object_new_object();
	json_object_object_add(it, "id", json_object_new_string(id));
	json_object_object_add(it, "type",
	    json_object_new_string("function_call"));
	json_object_object_add(it, "status", json_object_new_string(status));
	json_object_object_add(it, "call_id", json_object_new_string(call_id));
	json_object_object_add(it, "name", json_object_new_string(name));
	json_object_object_add(it, "arguments",
	    json_object_new_string_len(args != NULL ? args : "",
	    (int)args_len));
	return it;
}

/* A reasoning summary part (DeepSeek's reasoning_content, ...). */
static struct json_object *
summary_part(const char *text, size_t len)
{
	struct json_object	*p;

	p = json_object_new_object();
	json_object_object_add(p, "type",
	    json_object_new_string("summary_text"));
	json_object_object_add(p, "text",
	    json_object_new_string_len(text != NULL ? text : "", (int)len));
	return p;
}

static struct json_object *
reasoning_item(const char *id, struct json_object *part)
{
	struct json_object	*it, *c;

	it = json_object_new_object();
	json_object_object_add(it, "id", json_object_new_string(id));
	json_object_object_add(it, "type", json_object_new_string("reasoning"));
	c = json_object_new_array();
	if (part != NULL)
		json_object_array_add(c, part);
	json_object_object_add(it, "summary", c);
	return it;
}

/* client_ops.reply: a chat.completion as the Response object. */
static struct json_object *
rs_reply(struct client *cl, struct json_object *chat)
{
	struct json_object	*choices, *ch, *msg, *v, *calls, *tc, *fn;
	struct json_object	*output;
	const char		*finish = "stop", *text, *args;
	char			 fid[48];
	int64_t			 bytes = 0;
	size_t			 i;

	output = json_object_new_array();
	if (json_object_object_get_ex(chat, "choices", &choices) &&
	    json_object_is_type(choices, json_type_array) &&
	    json_object_array_length(choices) > 0) {
		ch = json_object_array_get_idx(choices, 0);
		if ((text = str_member(ch, "finish_reason")) != NULL)
			finish = text;
		if (json_object_object_get_ex(ch, "message", &msg)) {
			if (json_object_object_get_ex(msg,
			    "reasoning_content", &v) &&
			    json_object_is_type(v, json_type_string) &&
			    json_object_get_string_len(v) > 0) {
				bytes += json_object_get_string_len(v);
				json_object_array_add(output, reasoning_item(
				    ((struct rs *)cl->state)->rs_id,
				    summary_part(json_object_get_string(v),
				    (size_t)json_object_get_string_len(v))));
			}
			if (json_object_object_get_ex(msg, "content", &v) &&
			    json_object_is_type(v, json_type_string) &&
			    json_object_get_string_len(v) > 0) {
				bytes += json_object_get_string_len(v);
				json_object_array_add(output, message_item(
				    ((struct rs *)cl->state)->msg_id,
				    "completed", text_part(
				    json_object_get_string(v),
				    (size_t)json_object_get_string_len(v))));
			}
			if (json_object_object_get_ex(msg, "tool_calls",
			    &calls) && json_object_is_type(calls,
			    json_type_array))
				for (i = 0; i < json_object_array_length(calls);
				    i++) {
					tc = json_object_array_get_idx(calls, i);
					if (!json_object_object_get_ex(tc,
					    "function", &fn))
						continue;
					args = json_object_object_get_ex(fn,
					    "arguments", &v) ?
					    provider_args_string(v) : "{}";
					provider_new_id(fid, sizeof(fid), "fc_");
					bytes += (int64_t)strlen(args);
					json_object_array_add(output, call_item(
					    fid, "completed",
					    str_member(tc, "id") != NULL ?
					    str_member(tc, "id") : fid,
					    str_member(fn, "name") != NULL ?
					    str_member(fn, "name") : "",
					    args, strlen(args)));
				}
		}
	}
	return response_object(cl, str_member(chat, "model") != NULL ?
	    str_member(chat, "model") : cl->model, finish, output,
	    usage_of(cl, bytes));
}

/* --- streams: the semantic events ------------------------------------------ */

/* One event: "event: TYPE" and its data with type and sequence_number. */
static int
event(struct client *cl, struct buf *out, const char *type,
    struct json_object *data)
{
	struct rs	*st = cl->state;
	int		 rc;

	json_object_object_add(data, "type", json_object_new_string(type));
	json_object_object_add(data, "sequence_number",
	    json_object_new_int64(st->seq++));
	rc = buf_printf(out, "event: %s\ndata: %s\n\n", type,
	    http_json_string(data));
	json_object_put(data);
	return rc == -1 ? -1 : 0;
}

static struct json_object *
obj(void)
{
	return json_object_new_object();
}

static void
add_int(struct json_object *o, const char *k, int64_t v)
{
	json_object_object_add(o, k, json_object_new_int64(v));
}

static void
add_str(struct json_object *o, const char *k, const char *v, size_t len)
{
	json_object_object_add(o, k, json_object_new_string_len(v != NULL ?
	    v : "", (int)len));
}

/* response.created and response.in_progress, once. */
static int
start(struct client *cl, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;

	if (st->started)
		return 0;
	st->started = 1;
	d = obj();
	json_object_object_add(d, "response", response_object(cl, cl->model,
	    NULL, NULL, NULL));
	if (event(cl, out, "response.created", d) == -1)
		return -1;
	d = obj();
	json_object_object_add(d, "response", response_object(cl, cl->model,
	    NULL, NULL, NULL));
	return event(cl, out, "response.in_progress", d);
}

static int
open_text(struct client *cl, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;

	if (st->text_output >= 0)
		return 0;
	if (close_think(cl, out) == -1)
		return -1;
	st->text_output = st->outputs++;
	d = obj();
	add_int(d, "output_index", st->text_output);
	json_object_object_add(d, "item", message_item(st->msg_id,
	    "in_progress", NULL));
	if (event(cl, out, "response.output_item.added", d) == -1)
		return -1;
	d = obj();
	add_str(d, "item_id", st->msg_id, strlen(st->msg_id));
	add_int(d, "output_index", st->text_output);
	add_int(d, "content_index", 0);
	json_object_object_add(d, "part", text_part("", 0));
	return event(cl, out, "response.content_part.added", d);
}

static int
close_text(struct client *cl, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;

	if (st->text_output < 0 || st->text_done)
		return 0;
	st->text_done = 1;
	d = obj();
	add_str(d, "item_id", st->msg_id, strlen(st->msg_id));
	add_int(d, "output_index", st->text_output);
	add_int(d, "content_index", 0);
	add_str(d, "text", st->text.data, st->text.len);
	json_object_object_add(d, "logprobs", json_object_new_array());
	if (event(cl, out, "response.output_text.done", d) == -1)
		return -1;
	d = obj();
	add_str(d, "item_id", st->msg_id, strlen(st->msg_id));
	add_int(d, "output_index", st->text_output);
	add_int(d, "content_index", 0);
	json_object_object_add(d, "part", text_part(st->text.data,
	    st->text.len));
	if (event(cl, out, "response.content_part.done", d) == -1)
		return -1;
	d = obj();
	add_int(d, "output_index", st->text_output);
	json_object_object_add(d, "item", message_item(st->msg_id,
	    "completed", text_part(st->text.data, st->text.len)));
	return event(cl, out, "response.output_item.done", d);
}

static int
close_call(struct client *cl, struct rs_call *c, struct buf *out)
{
	struct json_object	*d;

	if (c->done)
		return 0;
	c->done = 1;
	d = obj();
	add_str(d, "item_id", c->id, strlen(c->id));
	add_int(d, "output_index", c->output);
	add_str(d, "arguments", c->args.data, c->args.len);
	if (event(cl, out, "response.function_call_arguments.done", d) == -1)
		return -1;
	d = obj();
	add_int(d, "output_index", c->output);
	json_object_object_add(d, "item", call_item(c->id, "completed",
	    c->call_id, c->name != NULL ? c->name : "", c->args.data,
	    c->args.len));
	return event(cl, out, "response.output_item.done", d);
}

/* The call item of chat tool call index, opened on its first delta. */
static struct rs_call *
call_for(struct client *cl, struct json_object *tc, struct buf *out)
{
	struct rs		*st = cl->state;
	struct rs_call		*c;
	struct json_object	*fn, *d;
	const char		*s;
	int			 idx = (int)provider_json_int(tc, "index"), i;

	for (i = 0; i < st->ncalls; i++)
		if (st->calls[i].index == idx)
			return &st->calls[i];
	/* Items are closed at the end: a delta may come back to any. */
	if (close_think(cl, out) == -1)
		return NULL;
	if (st->ncalls == st->acalls) {
		if (st->acalls == TOOLS_MAX)
			return NULL;
		c = reallocarray(st->calls, (size_t)st->acalls * 2 + 4,
		    sizeof(*c));
		if (c == NULL)
			return NULL;
		st->calls = c;
		st->acalls = st->acalls * 2 + 4;
	}
	c = &st->calls[st->ncalls++];
	memset(c, 0, sizeof(*c));
	c->index = idx;
	c->output = st->outputs++;
	provider_new_id(c->id, sizeof(c->id), "fc_");
	s = str_member(tc, "id");
	snprintf(c->call_id, sizeof(c->call_id), "%s", s != NULL ? s : c->id);
	if (json_object_object_get_ex(tc, "function", &fn) &&
	    (s = str_member(fn, "name")) != NULL)
		c->name = strdup(s);
	buf_init(&c->args, (size_t)cl->r->cfg->gw.max_upstream_body);
	d = obj();
	add_int(d, "output_index", c->output);
	json_object_object_add(d, "item", call_item(c->id, "in_progress",
	    c->call_id, c->name != NULL ? c->name : "", "", 0));
	if (event(cl, out, "response.output_item.added", d) == -1)
		return NULL;
	return c;
}

/* The reasoning item's summary: opened on its first delta. */
static int
think_delta(struct client *cl, const char *text, size_t len, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;

	if (st->think_done)
		return 0;	/* late reasoning after the answer began */
	if (st->think_output < 0) {
		st->think_output = st->outputs++;
		d = obj();
		add_int(d, "output_index", st->think_output);
		json_object_object_add(d, "item", reasoning_item(st->rs_id,
		    NULL));
		if (event(cl, out, "response.output_item.added", d) == -1)
			return -1;
		d = obj();
		add_str(d, "item_id", st->rs_id, strlen(st->rs_id));
		add_int(d, "output_index", st->think_output);
		add_int(d, "summary_index", 0);
		json_object_object_add(d, "part", summary_part("", 0));
		if (event(cl, out, "response.reasoning_summary_part.added",
		    d) == -1)
			return -1;
	}
	if (buf_append(&st->think, text, len) == -1)
		return -1;
	st->out_bytes += (int64_t)len;
	d = obj();
	add_str(d, "item_id", st->rs_id, strlen(st->rs_id));
	add_int(d, "output_index", st->think_output);
	add_int(d, "summary_index", 0);
	add_str(d, "delta", text, len);
	return event(cl, out, "response.reasoning_summary_text.delta", d);
}

/* The reasoning item ends where the answer begins, or at the end. */
static int
close_think(struct client *cl, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;

	if (st->think_output < 0 || st->think_done)
		return 0;
	st->think_done = 1;
	d = obj();
	add_str(d, "item_id", st->rs_id, strlen(st->rs_id));
	add_int(d, "output_index", st->think_output);
	add_int(d, "summary_index", 0);
	add_str(d, "text", st->think.data, st->think.len);
	if (event(cl, out, "response.reasoning_summary_text.done", d) == -1)
		return -1;
	d = obj();
	add_str(d, "item_id", st->rs_id, strlen(st->rs_id));
	add_int(d, "output_index", st->think_output);
	add_int(d, "summary_index", 0);
	json_object_object_add(d, "part", summary_part(st->think.data,
	    st->think.len));
	if (event(cl, out, "response.reasoning_summary_part.done", d) == -1)
		return -1;
	d = obj();
	add_int(d, "output_index", st->think_output);
	json_object_object_add(d, "item", reasoning_item(st->rs_id,
	    summary_part(st->think.data, st->think.len)));
	return event(cl, out, "response.output_item.done", d);
}

/* client_ops.chunk: one chat chunk as the events it means. */
static int
rs_chunk(struct client *cl, struct json_object *chunk, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*choices, *ch, *delta, *v, *calls, *tc, *fn;
	struct json_object	*d;
	struct rs_call		*c;
	const char		*s;
	size_t			 i, len;

	if (start(cl, out) == -1)
		return -1;
	if (!json_object_object_get_ex(chunk, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array) ||
	    json_object_array_length(choices) == 0)
		return 0;
	ch = json_object_array_get_idx(choices, 0);
	if ((s = str_member(ch, "finish_reason")) != NULL)
		snprintf(st->finish, sizeof(st->finish), "%s", s);
	if (!json_object_object_get_ex(ch, "delta", &delta))
		return 0;
	if (json_object_object_get_ex(delta, "reasoning_content", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (len = (size_t)json_object_get_string_len(v)) > 0 &&
	    think_delta(cl, json_object_get_string(v), len, out) == -1)
		return -1;
	if (json_object_object_get_ex(delta, "content", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    (len = (size_t)json_object_get_string_len(v)) > 0) {
		if (open_text(cl, out) == -1 ||
		    buf_append(&st->text, json_object_get_string(v), len) == -1)
			return -1;
		st->out_bytes += (int64_t)len;
		d = obj();
		add_str(d, "item_id", st->msg_id, strlen(st->msg_id));
		add_int(d, "output_index", st->text_output);
		add_int(d, "content_index", 0);
		add_str(d, "delta", json_object_get_string(v), len);
		json_object_object_add(d, "logprobs", json_object_new_array());
		if (event(cl, out, "response.output_text.delta", d) == -1)
			return -1;
	}
	if (!json_object_object_get_ex(delta, "tool_calls", &calls) ||
	    !json_object_is_type(calls, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(calls); i++) {
		tc = json_object_array_get_idx(calls, i);
		if ((c = call_for(cl, tc, out)) == NULL)
			return -1;
		if (!json_object_object_get_ex(tc, "function", &fn) ||
		    !json_object_object_get_ex(fn, "arguments", &v) ||
		    !json_object_is_type(v, json_type_string) ||
		    (len = (size_t)json_object_get_string_len(v)) == 0)
			continue;
		if (buf_append(&c->args, json_object_get_string(v), len) == -1)
			return -1;
		st->out_bytes += (int64_t)len;
		d = obj();
		add_str(d, "item_id", c->id, strlen(c->id));
		add_int(d, "output_index", c->output);
		add_str(d, "delta", json_object_get_string(v), len);
		if (event(cl, out, "response.function_call_arguments.delta",
		    d) == -1)
			return -1;
	}
	return 0;
}

/* The output items as they stand, for the final Response object. */
static struct json_object *
items(struct client *cl)
{
	struct rs		*st = cl->state;
	struct json_object	*arr;
	struct rs_call		*c;
	int			 i;

	/* Each at its output_index, in the order the items were opened. */
	arr = json_object_new_array();
	if (st->think_output >= 0)
		json_object_array_put_idx(arr, (size_t)st->think_output,
		    reasoning_item(st->rs_id, summary_part(st->think.data,
		    st->think.len)));
	if (st->text_output >= 0)
		json_object_array_put_idx(arr, (size_t)st->text_output,
		    message_item(st->msg_id, "completed",
		    text_part(st->text.data, st->text.len)));
	for (i = 0; i < st->ncalls; i++) {
		c = &st->calls[i];
		json_object_array_put_idx(arr, (size_t)c->output, call_item(
		    c->id, "completed", c->call_id, c->name != NULL ? c->name :
		    "", c->args.data, c->args.len));
	}
	return arr;
}

/* client_ops.done: every open item closed, then response.completed. */
static int
rs_done(struct client *cl, struct buf *out)
{
	struct rs		*st = cl->state;
	struct json_object	*d;
	int			 i;

	if (start(cl, out) == -1 || close_think(cl, out) == -1 ||
	    close_text(cl, out) == -1)
		return -1;
	for (i = 0; i < st->ncalls; i++)
		if (close_call(cl, &st->calls[i], out) == -1)
			return -1;
	d = obj();
	json_object_object_add(d, "response", response_object(cl, cl->model,
	    st->finish[0] ? st->finish : "stop", items(cl),
	    usage_of(cl, st->out_bytes)));
	return event(cl, out, st->finish[0] && (strcmp(st->finish, "length")
	    == 0 || strcmp(st->finish, "content_filter") == 0) ?
	    "response.incomplete" : "response.completed", d);
}

/* client_ops.fail: an error event, then response.failed. */
static int
rs_fail(struct client *cl, const struct provider_error *e, struct buf *out)
{
	struct json_object	*d, *resp, *err;
	const char		*code = e->code[0] ? e->code : (e->type[0] ?
				    e->type : "upstream_error");

	if (start(cl, out) == -1)
		return -1;
	d = obj();
	add_str(d, "code", code, strlen(code));
	add_str(d, "message", e->message, strlen(e->message));
	if (e->param[0])
		add_str(d, "param", e->param, strlen(e->param));
	else
		json_object_object_add(d, "param", NULL);
	if (event(cl, out, "error", d) == -1)
		return -1;
	resp = response_object(cl, cl->model, NULL, items(cl),
	    usage_of(cl, ((struct rs *)cl->state)->out_bytes));
	json_object_object_add(resp, "status", json_object_new_string("failed"));
	err = obj();
	add_str(err, "code", code, strlen(code));
	add_str(err, "message", e->message, strlen(e->message));
	json_object_object_add(resp, "error", err);
	d = obj();
	json_object_object_add(d, "response", resp);
	return event(cl, out, "response.failed", d);
}

static void
rs_free(struct client *cl)
{
	struct rs	*st = cl->state;
	int		 i;

	if (st == NULL)
		return;
	for (i = 0; i < st->ncalls; i++) {
		free(st->calls[i].name);
		buf_free(&st->calls[i].args);
	}
	free(st->calls);
	buf_free(&st->text);
	buf_free(&st->think);
	free(st);
	cl->state = NULL;
}

const struct client_ops client_responses = {
	.name = "responses",
	.request = rs_request,
	.reply = rs_reply,
	.chunk = rs_chunk,
	.done = rs_done,
	.fail = rs_fail,
	.free = rs_free,
};

int
route_responses(struct request *r, const char *arg)
{
	return route_chat_as(r, &client_responses);
}
