/* unit-anthropic.c: the Anthropic adapter: request, response and stream translation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/provider.h"
#include "fixture.h"
#include "tap.h"

#define slurp(name, len)	tap_slurp("anthropic", name, len)


static void
setup(void)
{
	fixture_candidate(PROVIDER_ANTHROPIC, "anth", "https://api.example/v1/",
	    "sk-ant-secret", "claude-test", "claude-test-upstream", 2048,
	    "X-Extra: 1");
}

static void
test_request(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct chat_in		 in;
	struct json_object	*got, *want;
	char			*src, *exp;

	src = slurp("request_full.openai.json", NULL);
	exp = slurp("request_full.anthropic.json", NULL);
	ok(src != NULL && exp != NULL, "request fixtures found");
	if (src == NULL || exp == NULL)
		return;
	memset(&in, 0, sizeof(in));
	memset(&e, 0, sizeof(e));
	in.req = json_tokener_parse(src);
	in.client_max = provider_client_max(in.req);
	provider_call_init(&call, 1 << 20);
	is_int(provider_anthropic.chat_request(&cand, &in, &call, &e), 0,
	    "chat_request succeeds");
	got = json_tokener_parse(call.body.data ? call.body.data : "");
	want = json_tokener_parse(exp);
	ok(got != NULL && want != NULL && json_object_equal(got, want),
	    "upstream body equals request_full.anthropic.json");
	if (got == NULL || want == NULL || !json_object_equal(got, want))
		printf("#   got  %s\n", call.body.data ? call.body.data : "");
	is_str(call.url.data, "https://api.example/v1/messages", "URL");
	ok(has_header(call.headers, "x-api-key: sk-ant-secret"), "x-api-key");
	ok(has_header(call.headers, "anthropic-version: 2023-06-01"),
	    "anthropic-version");
	ok(has_header(call.headers, "X-Extra: 1"), "extra header");
	ok(!has_header(call.headers, "Authorization: Bearer sk-ant-secret"),
	    "no bearer token");
	json_object_put(got);
	json_object_put(want);
	provider_call_free(&call);
	json_object_put(in.req);

	/* Streaming adds stream:true; max_tokens from the client wins. */
	in.req = json_tokener_parse("{\"model\":\"m\",\"max_tokens\":77,"
	    "\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":"
	    "\"hi\"}]}");
	in.client_max = provider_client_max(in.req);
	in.stream = 1;
	provider_call_init(&call, 1 << 20);
	is_int(provider_anthropic.chat_request(&cand, &in, &call, &e), 0,
	    "streamed request builds");
	got = json_tokener_parse(call.body.data);
	is_int(provider_json_int(got, "max_tokens"), 77, "client max_tokens");
	ok(json_object_get_boolean(json_object_object_get(got, "stream")),
	    "stream: true");
	ok(json_object_object_get(got, "system") == NULL, "no empty system");
	json_object_put(got);
	provider_call_free(&call);
	json_object_put(in.req);

	/* Arguments that are not JSON cannot become a tool_use input. */
	in.req = json_tokener_parse("{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{oops\"}}]}]}");
	in.client_max = provider_client_max(in.req);
	in.stream = 0;
	provider_call_init(&call, 1 << 20);
	is_int(provider_anthropic.chat_request(&cand, &in, &call, &e), -1,
	    "bad tool arguments refused");
	ok(strstr(e.message, "JSON object") != NULL, "error says why: %s",
	    e.message);
	provider_call_free(&call);
	json_object_put(in.req);
	free(src);
	free(exp);
}

/* The upstream body of an OpenAI request (NULL when it is refused). */
static struct json_object *
translate(const char *req)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct chat_in		 in;
	struct json_object	*got = NULL;

	memset(&in, 0, sizeof(in));
	memset(&e, 0, sizeof(e));
	in.req = json_tokener_parse(req);
	in.client_max = provider_client_max(in.req);
	provider_call_init(&call, 1 << 20);
	if (provider_anthropic.chat_request(&cand, &in, &call, &e) == 0)
		got = json_tokener_parse(call.body.data);
	else
		printf("#   refused: %s\n", e.message);
	provider_call_free(&call);
	json_object_put(in.req);
	return got;
}

/* got's member at a path of names and indexes equals the JSON want. */
static int
same(struct json_object *got, const char *want)
{
	struct json_object	*w = json_tokener_parse(want);
	int			 eq = got != NULL && w != NULL &&
				    json_object_equal(got, w);

	if (!eq)
		printf("#   got  %s\n#   want %s\n", got ?
		    json_object_to_json_string(got) : "(none)", want);
	json_object_put(w);
	return eq;
}

#define GET(o, k)	json_object_object_get((o), (k))
#define IDX(o, i)	json_object_array_get_idx((o), (i))

/* Prompt caching: cache_control kept on every block; system as blocks. */
static void
test_cache_control(void)
{
	struct json_object	*got, *msgs;

	got = translate("{\"model\":\"m\",\"max_tokens\":10,\"messages\":["
	    "{\"role\":\"system\",\"content\":\"You are terse.\"},"
	    "{\"role\":\"system\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"A long manual.\",\"cache_control\":{\"type\":\"ephemeral\"}},"
	    "{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"https://x/i.png\"}}]},"
	    "{\"role\":\"developer\",\"content\":\"Be kind.\",\"cache_control\":"
	    "{\"type\":\"ephemeral\",\"ttl\":\"1h\"}},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"doc\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":"
	    "\"image_url\",\"image_url\":{\"url\":\"https://x/a.png\"},"
	    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\","
	    "\"text\":\"question\"}]},"
	    "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":"
	    "\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{}\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":[{\"type\":"
	    "\"text\",\"text\":\"42\",\"cache_control\":{\"type\":"
	    "\"ephemeral\"}}]},"
	    "{\"role\":\"user\",\"content\":\"more\",\"cache_control\":"
	    "{\"type\":\"ephemeral\"}}],"
	    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"parameters\":{\"type\":\"object\"}}},{\"type\":\"function\","
	    "\"function\":{\"name\":\"g\",\"parameters\":{\"type\":\"object\"}},"
	    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"function\","
	    "\"function\":{\"name\":\"h\",\"cache_control\":{\"type\":"
	    "\"ephemeral\"}}}]}");
	ok(got != NULL, "a request with cache_control translates");
	ok(same(GET(got, "system"), "[{\"type\":\"text\",\"text\":"
	    "\"You are terse.\"},{\"type\":\"text\",\"text\":\"A long manual.\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\","
	    "\"text\":\"Be kind.\",\"cache_control\":{\"type\":\"ephemeral\","
	    "\"ttl\":\"1h\"}}]"),
	    "system as text blocks, each message's mark kept, no image");
	msgs = GET(got, "messages");
	ok(same(GET(IDX(msgs, 0), "content"), "[{\"type\":\"text\",\"text\":"
	    "\"doc\",\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":"
	    "\"image\",\"source\":{\"type\":\"url\",\"url\":\"https://x/a.png\"},"
	    "\"cache_control\":{\"type\":\"ephemeral\"}},{\"type\":\"text\","
	    "\"text\":\"question\"}]"), "text and image parts keep theirs");
	ok(same(IDX(GET(IDX(msgs, 2), "content"), 0), "{\"type\":"
	    "\"tool_result\",\"tool_use_id\":\"c1\",\"content\":\"42\","
	    "\"cache_control\":{\"type\":\"ephemeral\"}}"),
	    "tool_result keeps its part's");
	/* The tool result and the next user turn are one user turn. */
	ok(same(IDX(GET(IDX(msgs, 2), "content"), 1), "{\"type\":\"text\","
	    "\"text\":\"more\",\"cache_control\":{\"type\":\"ephemeral\"}}"),
	    "a message's own goes on its block");
	ok(GET(IDX(GET(got, "tools"), 0), "cache_control") == NULL,
	    "a tool without one has none");
	ok(same(GET(IDX(GET(got, "tools"), 1), "cache_control"),
	    "{\"type\":\"ephemeral\"}"), "a tool's own kept");
	ok(same(GET(IDX(GET(got, "tools"), 2), "cache_control"),
	    "{\"type\":\"ephemeral\"}"), "a function's kept on its tool");
	json_object_put(got);

	/* Without a mark the system stays one string, as before. */
	got = translate("{\"model\":\"m\",\"messages\":[{\"role\":\"system\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"a\"}]},{\"role\":"
	    "\"system\",\"content\":\"b\"},{\"role\":\"user\",\"content\":"
	    "\"hi\",\"cache_control\":null}]}");
	ok(same(GET(got, "system"), "\"a\\n\\nb\""),
	    "no mark: system is one string");
	ok(same(GET(IDX(GET(got, "messages"), 0), "content"),
	    "[{\"type\":\"text\",\"text\":\"hi\"}]"), "null mark: none sent");
	json_object_put(got);

	/* A mark that is not an object is not sent. */
	got = translate("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"x\",\"cache_control\":"
	    "\"ephemeral\"}]}]}");
	ok(same(GET(IDX(GET(got, "messages"), 0), "content"),
	    "[{\"type\":\"text\",\"text\":\"x\"}]"), "a string mark is dropped");
	json_object_put(got);
}

/* Cache reads and writes counted apart, both part of prompt. */
static void
test_cache_usage(void)
{
	struct json_object	*out = NULL, *d;
	struct provider_error	 e;
	struct usage		 u;
	const char		*body =
	    "{\"id\":\"msg_2\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"ok\"}],\"stop_reason\":"
	    "\"end_turn\",\"usage\":{\"input_tokens\":7,"
	    "\"cache_creation_input_tokens\":1500,\"cache_read_input_tokens\":"
	    "300,\"output_tokens\":4}}";

	memset(&u, 0, sizeof(u));
	is_int(provider_anthropic.chat_response(&cand, body, strlen(body), &out,
	    &u, &e), 0, "cache usage translates");
	is_int(u.prompt, 1807, "prompt = input + cache writes + cache reads");
	is_int(u.cached, 300, "cache reads");
	is_int(u.cache_write, 1500, "cache writes");
	d = GET(GET(out, "usage"), "prompt_tokens_details");
	is_int(provider_json_int(GET(out, "usage"), "prompt_tokens"), 1807,
	    "client's prompt_tokens counts all");
	is_int(provider_json_int(d, "cached_tokens"), 300, "client's cached");
	is_int(provider_json_int(d, "cache_creation_tokens"), 1500,
	    "client's cache_creation_tokens");
	json_object_put(out);
}

static void
test_response(void)
{
	struct json_object	*out = NULL, *msg;
	struct provider_error	 e;
	struct usage		 u;
	const char		*tool =
	    "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"Checking.\"},"
	    "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"get_weather\","
	    "\"input\":{\"city\":\"Paris\"}}],\"stop_reason\":\"tool_use\","
	    "\"usage\":{\"input_tokens\":10,\"cache_read_input_tokens\":90,"
	    "\"cache_creation_input_tokens\":0,\"output_tokens\":20}}";
	char			*body;
	size_t			 len;

	body = slurp("nonstream_text.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_anthropic.chat_response(&cand, body, len, &out, &u, &e),
	    0, "text response translates");
	msg = json_object_object_get(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "message");
	is_str(provider_json_str(msg, "content"), "Hello!", "content");
	is_str(provider_json_str(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "finish_reason"),
	    "stop", "end_turn -> stop");
	is_str(provider_json_str(out, "model"), "claude-test", "served name");
	is_int(u.prompt, 12, "prompt tokens");
	is_int(u.completion, 5, "completion tokens");
	json_object_put(out);
	free(body);

	memset(&u, 0, sizeof(u));
	is_int(provider_anthropic.chat_response(&cand, tool, strlen(tool), &out,
	    &u, &e), 0, "tool response translates");
	msg = json_object_object_get(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "message");
	is_str(provider_json_str(json_object_object_get(json_object_array_get_idx(
	    json_object_object_get(msg, "tool_calls"), 0), "function"),
	    "arguments"), "{\"city\":\"Paris\"}", "arguments are a JSON string");
	is_str(provider_json_str(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "finish_reason"),
	    "tool_calls", "tool_use -> tool_calls");
	is_int(u.prompt, 100, "prompt includes cache reads");
	is_int(u.cached, 90, "cached tokens");
	json_object_put(out);

	is_int(provider_anthropic.chat_response(&cand, "{\"x\":1}", 7, &out, &u,
	    &e), -1, "a body without content is malformed");
}

/* Collects what a stream emits. */
struct sink {
	struct buf	 text;
	struct buf	 args[4];
	char		 ids[4][64];
	int		 chunks;
	int		 usage_chunks;
	char		 finish[32];
};

static int
collect(void *ctx, struct json_object *chunk)
{
	struct sink		*s = ctx;
	struct json_object	*ch, *d, *tcs, *tc, *fn;
	const char		*v;
	size_t			 i;
	int64_t			 idx;

	s->chunks++;
	if (json_object_array_length(json_object_object_get(chunk,
	    "choices")) == 0) {
		s->usage_chunks++;
		return 0;
	}
	ch = json_object_array_get_idx(json_object_object_get(chunk,
	    "choices"), 0);
	if ((v = provider_json_str(ch, "finish_reason")) != NULL)
		snprintf(s->finish, sizeof(s->finish), "%s", v);
	d = json_object_object_get(ch, "delta");
	if ((v = provider_json_str(d, "content")) != NULL)
		buf_puts(&s->text, v);
	tcs = json_object_object_get(d, "tool_calls");
	for (i = 0; tcs != NULL && i < json_object_array_length(tcs); i++) {
		tc = json_object_array_get_idx(tcs, i);
		idx = provider_json_int(tc, "index");
		if (idx < 0 || idx > 3)
			continue;
		if ((v = provider_json_str(tc, "id")) != NULL)
			snprintf(s->ids[idx], sizeof(s->ids[idx]), "%s", v);
		fn = json_object_object_get(tc, "function");
		if ((v = provider_json_str(fn, "arguments")) != NULL)
			buf_puts(&s->args[idx], v);
	}
	return 0;
}

static int
feed(void *ctx, const struct sse_event *ev)
{
	struct stream_state	*st = ctx;

	if (ev->comment)
		return 0;
	return provider_anthropic.chat_event(st, ev) == -1 ? 1 : 0;
}

static void
run_stream(const char *name, int include_usage, struct stream_state *st,
    struct sink *s)
{
	struct sse_parser	 p;
	char			*data;
	size_t			 len, i;

	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	buf_init(&s->text, 1 << 20);
	for (i = 0; i < 4; i++)
		buf_init(&s->args[i], 1 << 20);
	st->emit = collect;
	st->ctx = s;
	st->cand = &cand;
	st->include_usage = include_usage;
	data = slurp(name, &len);
	sse_init(&p, 1 << 20);
	/* Byte by byte: events split anywhere. */
	for (i = 0; data != NULL && i < len; i++)
		if (sse_feed(&p, data + i, 1, feed, st) != 0)
			break;
	sse_finish(&p, feed, st);
	sse_free(&p);
	free(data);
}

static void
free_sink(struct sink *s)
{
	size_t	 i;

	buf_free(&s->text);
	for (i = 0; i < 4; i++)
		buf_free(&s->args[i]);
}

static void
test_stream(void)
{
	struct stream_state	 st;
	struct sink		 s;

	run_stream("stream_text.sse", 1, &st, &s);
	is_str(s.text.data, "Hi! How can I help?", "streamed text");
	is_str(s.finish, "stop", "finish_reason stop");
	ok(st.done, "message_stop ends the stream");
	is_int(s.usage_chunks, 1, "one usage chunk when asked");
	is_int(st.usage.prompt, 11, "prompt tokens from message_start");
	is_int(st.usage.completion, 9, "completion is the final cumulative count");
	is_int(s.chunks, 1 + 3 + 1 + 1, "role + 3 text + finish + usage chunks");
	is_str(st.id, "msg_01MockTextAAAAAAAAAAAAAA", "chunk id is the message id");
	free_sink(&s);

	run_stream("stream_text.sse", 0, &st, &s);
	is_int(s.usage_chunks, 0, "no usage chunk unless asked");
	free_sink(&s);

	run_stream("stream_tool_use.sse", 0, &st, &s);
	is_str(s.text.data, "Let me check", "text before the tools");
	is_str(s.ids[0], "toolu_01MockAAAA", "first tool call id at index 0");
	is_str(s.ids[1], "toolu_01MockBBBB", "second tool call id at index 1");
	is_str(s.args[0].data, "{\"city\": \"Paris\"}", "first arguments whole");
	is_str(s.args[1].data, "{\"tz\":\"Europe/Paris\"}",
	    "second arguments whole");
	is_str(s.finish, "tool_calls", "finish_reason tool_calls");
	is_int(st.usage.prompt, 502, "prompt includes cache reads");
	is_int(st.usage.cached, 100, "cached tokens");
	is_int(st.usage.completion, 57, "completion tokens");
	ok(st.done, "padded message_stop understood");
	free_sink(&s);

	run_stream("stream_error_overloaded.sse", 0, &st, &s);
	ok(st.failed, "error event fails the stream");
	is_str(st.err.type, "overloaded_error", "error type kept");
	ok(strstr(st.err.message, "Overloaded") != NULL, "error message kept");
	ok(!st.done, "not done");
	free_sink(&s);
}

static void
test_error(void)
{
	struct provider_error	 e;
	char			*body;
	size_t			 len;

	body = slurp("error_529_overloaded.json", &len);
	provider_anthropic.error(529, body, len, &e);
	is_str(e.message, "Overloaded", "529 message");
	is_str(e.code, "overloaded_error", "529 code");
	free(body);
	provider_anthropic.error(502, "<html>bad gateway</html>", 24, &e);
	is_str(e.message, "upstream answered HTTP 502", "HTML body not echoed");
}

int
main(void)
{
	setup();
	test_request();
	test_cache_control();
	test_cache_usage();
	test_response();
	test_stream();
	test_error();
	return tap_done();
}
