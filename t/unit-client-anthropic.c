/*
 * unit-client-anthropic.c: the Anthropic client protocol (client.h): its
 * request into the internal one (text shared, so that a rewrite there is
 * a rewrite of the native body), the native body, and the internal
 * answer (chunks cut anywhere, whole replies, failures) back into
 * Anthropic's messages and event sequence.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/client.h"
#include "../src/config.h"
#include "../src/provider.h"
#include "fixture.h"
#include "tap.h"

static struct config	 cfg;
static struct request	 req;

static const char body_text[] =
    "{\"model\":\"claude-x\",\"max_tokens\":5000,\"stream\":true,"
    "\"system\":[{\"type\":\"text\",\"text\":\"be terse\","
    "\"cache_control\":{\"type\":\"ephemeral\"}}],"
    "\"metadata\":{\"user_id\":\"u1\"},"
    "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":1024},"
    "\"stop_sequences\":[\"END\"],"
    "\"tools\":[{\"name\":\"get_weather\",\"input_schema\":{\"type\":"
    "\"object\"}},{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
    "\"tool_choice\":{\"type\":\"any\",\"disable_parallel_tool_use\":true},"
    "\"messages\":["
    "{\"role\":\"user\",\"content\":\"mail a@b.example\"},"
    "{\"role\":\"assistant\",\"content\":[{\"type\":\"thinking\","
    "\"thinking\":\"hm\",\"signature\":\"sig\"},{\"type\":\"text\",\"text\":"
    "\"checking\"},{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":"
    "\"get_weather\",\"input\":{\"to\":\"a@b.example\"}}]},"
    "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":"
    "\"toolu_1\",\"content\":[{\"type\":\"text\",\"text\":\"20C\"}]},"
    "{\"type\":\"text\",\"text\":\"and?\"},{\"type\":\"image\",\"source\":"
    "{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]}]}";

static struct json_object *
path(struct json_object *o, const char *p)
{
	char		 key[64];
	const char	*dot;
	size_t		 n;

	while (o != NULL && *p != '\0') {
		dot = strchr(p, '.');
		n = dot != NULL ? (size_t)(dot - p) : strlen(p);
		snprintf(key, sizeof(key), "%.*s", (int)n, p);
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(key));
		else if (!json_object_object_get_ex(o, key, &o))
			o = NULL;
		p += n + (dot != NULL);
	}
	return o;
}

static const char *
str(struct json_object *o, const char *p)
{
	return json_object_get_string(path(o, p));
}

static void
open_client(struct client *cl, struct json_object **in, const char *body)
{
	memset(cl, 0, sizeof(*cl));
	buf_reset(&req.body);
	buf_append(&req.body, body, strlen(body));
	cl->ops = &client_anthropic;
	cl->r = &req;
	*in = NULL;
	is_int(client_anthropic.request(cl, in), 0, "request translated");
	cl->model = "claude-x";
}

static void
close_client(struct client *cl, struct json_object *in)
{
	client_anthropic.free(cl);
	json_object_put(cl->body);
	json_object_put(in);
}

static void
test_request(void)
{
	struct client		 cl;
	struct json_object	*in, *m, *native;
	struct provider_call	 pc;
	struct provider_error	 e;
	struct chat_in		 ci;

	open_client(&cl, &in, body_text);
	m = path(in, "messages");
	is_int(json_object_array_length(m), 5,
	    "system, user, assistant, tool, user");
	is_str(str(m, "0.role"), "system", "system blocks: a system message");
	is_str(str(m, "0.content.0.text"), "be terse", "... its text part");
	ok(path(m, "0.content.0.cache_control") == NULL,
	    "... without cache_control (native only)");
	is_str(str(m, "2.content.0.text"), "checking",
	    "assistant text (thinking left to the native path)");
	is_str(str(m, "2.tool_calls.0.function.arguments"),
	    "{\"to\":\"a@b.example\"}", "tool_use -> arguments");
	is_str(str(m, "3.role"), "tool", "tool_result -> a tool message first");
	is_str(str(m, "3.tool_call_id"), "toolu_1", "... its tool_call_id");
	is_str(str(m, "3.content.0.text"), "20C", "... its text");
	is_str(str(m, "4.content.1.type"), "image_url", "image -> image_url");
	is_str(str(m, "4.content.1.image_url.url"), "data:image/png;base64,AAAA",
	    "... a data: URL");
	is_int(json_object_array_length(path(in, "tools")), 1,
	    "custom tools only (server tools native only)");
	is_str(str(in, "tools.0.function.name"), "get_weather", "a function");
	is_str(str(in, "tool_choice"), "required", "any -> required");
	ok(path(in, "parallel_tool_calls") != NULL &&
	    !json_object_get_boolean(path(in, "parallel_tool_calls")),
	    "disable_parallel_tool_use -> parallel_tool_calls false");
	is_str(str(in, "stop.0"), "END", "stop_sequences -> stop");
	is_str(str(in, "user"), "u1", "metadata.user_id -> user");

	/* What the policy rewrites in the internal request... */
	json_object_set_string(path(m, "1.content"), "mail [EMAIL_1]");
	json_object_set_string(path(m, "2.tool_calls.0.function.arguments"),
	    "{\"to\":\"[EMAIL_1]\"}");
	/* ... is what the native body carries. */
	fixture_candidate(PROVIDER_ANTHROPIC, "anth", "https://api.example/v1",
	    "sk-ant", "claude-x", "claude-up", 2048, "X-Extra: 1");
	memset(&ci, 0, sizeof(ci));
	memset(&e, 0, sizeof(e));
	ci.req = in;
	ci.stream = 1;
	ci.client_max = 5000;
	provider_call_init(&pc, 1 << 20);
	is_int(client_anthropic.native(&cl, &cand, &provider_openai, &ci, &pc,
	    &e), 1, "not native to an openai provider");
	is_int(client_anthropic.native(&cl, &cand, &provider_anthropic, &ci,
	    &pc, &e), 0, "native to an anthropic provider");
	native = json_tokener_parse(pc.body.data);
	is_str(str(native, "model"), "claude-up", "native: the upstream model");
	is_int(json_object_get_int64(path(native, "max_tokens")), 2048,
	    "native: max_tokens capped by the model");
	is_str(str(native, "messages.0.content"), "mail [EMAIL_1]",
	    "native: the rewritten text");
	is_str(str(native, "messages.1.content.2.input.to"), "[EMAIL_1]",
	    "native: the rewritten tool_use input");
	is_str(str(native, "messages.1.content.0.signature"), "sig",
	    "native: thinking block kept");
	is_str(str(native, "system.0.cache_control.type"), "ephemeral",
	    "native: cache_control kept");
	is_int(json_object_get_int(path(native, "thinking.budget_tokens")),
	    1024, "native: thinking kept");
	is_str(str(native, "tools.1.type"), "web_search_20250305",
	    "native: server tools kept");
	is_str(str(native, "tool_choice.type"), "any", "native: tool_choice kept");
	ok(strstr(pc.body.data, "a@b.example") == NULL,
	    "native: nothing of the original address");
	ok(has_header(pc.headers, "anthropic-version: 2023-06-01"),
	    "native: anthropic-version");
	json_object_put(native);
	provider_call_free(&pc);
	close_client(&cl, in);
}

/* A chunk of the internal stream. */
static struct json_object *
chunk(const char *delta, const char *finish)
{
	char	 s[1024];

	snprintf(s, sizeof(s), "{\"id\":\"chatcmpl-1\",\"object\":"
	    "\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,"
	    "\"delta\":%s,\"finish_reason\":%s}]}", delta, finish);
	return json_tokener_parse(s);
}

/* The event names of an Anthropic stream, space-separated, into names. */
static void
events(const char *s, char *names, size_t len, struct buf *json)
{
	struct json_object	*o;
	const char		*p = s, *e;
	char			*d;

	names[0] = '\0';
	while ((p = strstr(p, "event: ")) != NULL) {
		p += 7;
		e = strchr(p, '\n');
		snprintf(names + strlen(names), len - strlen(names), "%s%.*s",
		    names[0] ? " " : "", (int)(e - p), p);
		p = e;
		if (strncmp(p, "\ndata: ", 7) != 0 || json == NULL)
			continue;
		/* The partial_json of input_json_delta, gathered. */
		e = strchr(p + 7, '\n');
		d = strndup(p + 7, (size_t)(e - p - 7));
		o = json_tokener_parse(d);
		if (str(o, "delta.partial_json") != NULL)
			buf_puts(json, str(o, "delta.partial_json"));
		json_object_put(o);
		free(d);
	}
}

static void
test_stream(void)
{
	static const char *const deltas[][2] = {
		{ "{\"role\":\"assistant\",\"content\":\"\"}", "null" },
		{ "{\"reasoning_content\":\"think\"}", "null" },
		{ "{\"content\":\"Hel\"}", "null" },
		{ "{\"content\":\"lo\"}", "null" },
		{ "{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":"
		  "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}",
		  "null" },
		{ "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		  "\"{\\\"a\\\":\"}}]}", "null" },
		{ "{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":"
		  "\"1}\"}}]}", "null" },
		{ "{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":"
		  "\"function\",\"function\":{\"name\":\"g\",\"arguments\":"
		  "\"{}\"}}]}", "null" },
		{ "{}", "\"tool_calls\"" },
	};
	struct client		 cl;
	struct json_object	*in, *c, *o;
	struct usage		 u;
	struct buf		 out, pj;
	char			 names[2048];
	const char		*md;
	size_t			 i;

	open_client(&cl, &in, "{\"model\":\"claude-x\",\"max_tokens\":9,"
	    "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}");
	memset(&u, 0, sizeof(u));
	cl.usage = &u;
	cl.prompt_est = 7;
	buf_init(&out, 1 << 20);
	buf_init(&pj, 1 << 20);
	for (i = 0; i < sizeof(deltas) / sizeof(deltas[0]); i++) {
		c = chunk(deltas[i][0], deltas[i][1]);
		ok(client_anthropic.chunk(&cl, c, &out) == 0, "chunk %zu", i);
		json_object_put(c);
	}
	u.prompt = 12;
	u.cached = 2;
	u.completion = 9;
	u.known = 1;
	ok(client_anthropic.done(&cl, &out) == 0, "done");
	events(out.data, names, sizeof(names), &pj);
	is_str(names, "message_start content_block_start ping "
	    "content_block_delta content_block_stop content_block_start "
	    "content_block_delta content_block_delta content_block_stop "
	    "content_block_start content_block_delta content_block_delta "
	    "content_block_stop content_block_start content_block_delta "
	    "content_block_stop message_delta message_stop",
	    "thinking, text, two tool_use blocks, in Anthropic's order");
	ok(strstr(out.data, "\"content_block\":{\"type\":\"thinking\"") != NULL,
	    "a thinking block");
	ok(strstr(out.data, "\"delta\":{\"type\":\"text_delta\",\"text\":\"lo\"}")
	    != NULL, "text_delta");
	ok(strstr(out.data, "{\"type\":\"tool_use\",\"id\":\"call_1\","
	    "\"name\":\"f\",\"input\":{}}") != NULL, "tool_use block start");
	is_str(pj.data, "{\"a\":1}{}", "partial_json, both tools, in order");
	md = strstr(out.data, "event: message_delta\ndata: ");
	o = md != NULL ? json_tokener_parse(md + 27) : NULL;
	is_str(str(o, "delta.stop_reason"), "tool_use", "stop_reason tool_use");
	is_int(json_object_get_int64(path(o, "usage.input_tokens")), 10,
	    "input_tokens: prompt less cache reads");
	is_int(json_object_get_int64(path(o, "usage.cache_read_input_tokens")),
	    2, "cache_read_input_tokens");
	is_int(json_object_get_int64(path(o, "usage.output_tokens")), 9,
	    "output_tokens");
	ok(strstr(out.data, "[DONE]") == NULL, "no [DONE]");
	json_object_put(o);

	/* A failure after the stream began. */
	{
		struct provider_error	 e;

		buf_reset(&out);
		memset(&e, 0, sizeof(e));
		provider_error_set(&e, "overloaded_error", NULL, "Overloaded");
		client_anthropic.fail(&cl, &e, &out);
		is_str(out.data, "event: error\ndata: {\"type\":\"error\",\"error\":"
		    "{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
		    "fail: event: error, the upstream's type");
		buf_reset(&out);
		provider_error_set(&e, "upstream_error", "upstream_broken", "x");
		client_anthropic.fail(&cl, &e, &out);
		ok(strstr(out.data, "\"type\":\"api_error\"") != NULL,
		    "fail: the gateway's own -> api_error");
	}
	buf_free(&out);
	buf_free(&pj);
	close_client(&cl, in);

	/* An empty stream still has its frame. */
	open_client(&cl, &in, "{\"model\":\"claude-x\",\"max_tokens\":9,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	buf_init(&out, 1 << 20);
	client_anthropic.done(&cl, &out);
	events(out.data, names, sizeof(names), NULL);
	is_str(names, "message_start message_delta message_stop",
	    "no content: start, delta, stop");
	buf_free(&out);
	close_client(&cl, in);
}

static void
test_reply(void)
{
	struct client		 cl;
	struct json_object	*in, *o, *m;
	struct usage		 u;

	open_client(&cl, &in, "{\"model\":\"claude-x\",\"max_tokens\":9,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
	memset(&u, 0, sizeof(u));
	u.prompt = 5;
	u.completion = 3;
	u.known = 1;
	cl.usage = &u;
	o = json_tokener_parse("{\"id\":\"chatcmpl-9\",\"object\":"
	    "\"chat.completion\",\"model\":\"m\",\"choices\":[{\"index\":0,"
	    "\"message\":{\"role\":\"assistant\",\"content\":\"Hi\","
	    "\"reasoning_content\":\"r\",\"tool_calls\":[{\"id\":\"c1\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{\\\"x\\\":2}\"}}]},\"finish_reason\":\"length\"}]}");
	m = client_anthropic.reply(&cl, o);
	ok(strncmp(str(m, "id"), "msg_", 4) == 0, "id msg_...");
	is_str(str(m, "type"), "message", "type message");
	is_str(str(m, "model"), "claude-x", "the client's model");
	is_str(str(m, "content.0.type"), "thinking", "thinking first");
	is_str(str(m, "content.1.text"), "Hi", "then text");
	is_int(json_object_get_int(path(m, "content.2.input.x")), 2,
	    "then tool_use with its input parsed");
	is_str(str(m, "stop_reason"), "max_tokens", "length -> max_tokens");
	ok(path(m, "stop_sequence") == NULL, "stop_sequence null");
	is_int(json_object_get_int(path(m, "usage.input_tokens")), 5, "usage in");
	is_int(json_object_get_int(path(m, "usage.output_tokens")), 3,
	    "usage out");
	json_object_put(m);
	json_object_put(o);
	close_client(&cl, in);
}

static void
test_errors(void)
{
	static const struct { int status; const char *type; } want[] = {
		{ 400, "invalid_request_error" }, { 401, "authentication_error" },
		{ 402, "billing_error" }, { 403, "permission_error" },
		{ 404, "not_found_error" }, { 413, "request_too_large" },
		{ 429, "rate_limit_error" }, { 500, "api_error" },
		{ 502, "api_error" }, { 529, "overloaded_error" },
	};
	struct json_object	*o;
	size_t			 i;

	for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		o = client_anthropic.error_object(want[i].status, "m", "t", "c",
		    NULL);
		is_str(str(o, "error.type"), want[i].type, "HTTP %d -> %s",
		    want[i].status, want[i].type);
		is_str(str(o, "type"), "error", "... in the error envelope");
		json_object_put(o);
	}
}

int
main(void)
{
	cfg.gw.max_body = 1 << 20;
	cfg.gw.max_json_depth = 64;
	http_request_init(&req, &cfg, NULL, NULL);
	test_request();
	test_stream();
	test_reply();
	test_errors();
	http_request_free(&req);
	return tap_done();
}
