/* unit-gemini.c: the Gemini adapter: request, response, stream and error translation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/provider.h"
#include "fixture.h"
#include "tap.h"

#define slurp(name, len)	tap_slurp("gemini", name, len)


static void
setup(void)
{
	fixture_candidate(PROVIDER_GEMINI, "gem", "https://api.example/v1beta/",
	    "AIza-secret", "gemini-test", "gemini-test-upstream", 2048,
	    "X-Extra: 1");
}

/* Build a request from JSON text; the body parsed, or NULL on failure. */
static struct json_object *
build(const char *req, int stream, struct provider_call *call,
    struct provider_error *e, int *rc)
{
	struct chat_in		 in;
	struct json_object	*got = NULL;

	memset(&in, 0, sizeof(in));
	memset(e, 0, sizeof(*e));
	in.req = json_tokener_parse(req);
	in.client_max = provider_client_max(in.req);
	in.stream = stream;
	provider_call_init(call, 1 << 20);
	*rc = provider_gemini.chat_request(&cand, &in, call, e);
	if (*rc == 0)
		got = json_tokener_parse(call->body.data ? call->body.data : "");
	json_object_put(in.req);
	return got;
}

/* The JSON text of a member path like "generationConfig.topK". */
static const char *
at(struct json_object *o, const char *path)
{
	char	 name[128], *dot, *p = name;

	snprintf(name, sizeof(name), "%s", path);
	while (o != NULL && p != NULL) {
		if ((dot = strchr(p, '.')) != NULL)
			*dot = '\0';
		if (!json_object_object_get_ex(o, p, &o))
			return NULL;
		p = dot ? dot + 1 : NULL;
	}
	return o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN) :
	    NULL;
}

static void
test_request_full(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got, *want;
	char			*src, *exp;
	int			 rc;

	src = slurp("request_full.openai.json", NULL);
	exp = slurp("request_full.gemini.json", NULL);
	ok(src != NULL && exp != NULL, "request fixtures found");
	if (src == NULL || exp == NULL)
		return;
	got = build(src, 0, &call, &e, &rc);
	is_int(rc, 0, "chat_request succeeds");
	want = json_tokener_parse(exp);
	ok(got != NULL && want != NULL && json_object_equal(got, want),
	    "upstream body equals request_full.gemini.json");
	if (got == NULL || want == NULL || !json_object_equal(got, want))
		printf("#   got  %s\n", call.body.data ? call.body.data : "");
	is_str(call.url.data, "https://api.example/v1beta/models/"
	    "gemini-test-upstream:generateContent", "URL");
	ok(has_header(call.headers, "x-goog-api-key: AIza-secret"),
	    "x-goog-api-key");
	ok(has_header(call.headers, "X-Extra: 1"), "extra header");
	ok(has_header(call.headers, "Content-Type: application/json"),
	    "content type");
	ok(strstr(call.url.data, "key=") == NULL, "no key in the URL");
	ok(!has_header(call.headers, "Authorization: Bearer AIza-secret"),
	    "no bearer token");
	json_object_put(got);
	json_object_put(want);
	provider_call_free(&call);
	free(src);
	free(exp);
}

static void
test_request_small(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got;
	const char		*s;
	int			 rc;

	/* Streaming: the SSE method; the model's max_tokens as default. */
	got = build("{\"model\":\"m\",\"stream\":true,\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"},{\"role\":\"user\",\"content\":"
	    "[{\"type\":\"text\",\"text\":\"there\"},{\"type\":\"image_url\","
	    "\"image_url\":{\"url\":\"https://x.example/a.webp?s=1\"}}]}]}", 1,
	    &call, &e, &rc);
	is_int(rc, 0, "streamed request builds");
	is_str(call.url.data, "https://api.example/v1beta/models/"
	    "gemini-test-upstream:streamGenerateContent?alt=sse", "stream URL");
	is_str(at(got, "generationConfig"), "{\"maxOutputTokens\":2048}",
	    "model max_tokens when the client sets none");
	ok(at(got, "stream") == NULL && at(got, "systemInstruction") == NULL,
	    "no stream member, no empty systemInstruction");
	is_str(at(got, "contents"), "[{\"role\":\"user\",\"parts\":[{\"text\":"
	    "\"hi\"},{\"text\":\"there\"},{\"fileData\":{\"mimeType\":"
	    "\"image\\/webp\",\"fileUri\":\"https:\\/\\/x.example\\/a.webp?s=1\"}}]}]",
	    "consecutive user turns merge; a URL image is fileData");
	json_object_put(got);
	provider_call_free(&call);

	/* The smaller limit is sent; tool_choice and response formats. */
	got = build("{\"model\":\"m\",\"max_tokens\":5,\"max_completion_tokens\""
	    ":9,\"top_k\":3,\"temperature\":null,\"response_format\":{\"type\":"
	    "\"json_object\"},\"tool_choice\":\"required\",\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}]}", 0, &call, &e, &rc);
	is_str(at(got, "generationConfig"), "{\"topK\":3,\"maxOutputTokens\":5,"
	    "\"responseMimeType\":\"application\\/json\"}",
	    "the smaller limit, topK, json_object; null temperature unset");
	is_str(at(got, "toolConfig"), "{\"functionCallingConfig\":{\"mode\":"
	    "\"ANY\"}}", "required -> ANY");
	is_str(at(got, "tools"), "[{\"functionDeclarations\":[{\"name\":\"f\"}]}]",
	    "a tool without parameters");
	json_object_put(got);
	provider_call_free(&call);

	got = build("{\"model\":\"m\",\"tool_choice\":\"none\",\"tools\":[{"
	    "\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &call,
	    &e, &rc);
	is_str(at(got, "toolConfig.functionCallingConfig.mode"), "\"NONE\"",
	    "none -> NONE");
	json_object_put(got);
	provider_call_free(&call);

	got = build("{\"model\":\"m\",\"tools\":[{\"type\":\"function\","
	    "\"function\":{\"name\":\"f\"}}],\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", 0, &call, &e, &rc);
	ok(at(got, "toolConfig") == NULL, "no tool_choice: no toolConfig");
	json_object_put(got);
	provider_call_free(&call);

	got = build("{\"model\":\"m\",\"response_format\":{\"type\":"
	    "\"json_schema\",\"json_schema\":{\"name\":\"r\",\"strict\":true,"
	    "\"schema\":{\"type\":\"object\",\"additionalProperties\":false,"
	    "\"properties\":{\"strict\":{\"type\":\"array\",\"items\":{\"type\":"
	    "\"integer\",\"$comment\":\"x\"}}},\"required\":[\"strict\"]}}},"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}", 0, &call,
	    &e, &rc);
	is_str(at(got, "generationConfig.responseSchema"), "{\"type\":\"object\","
	    "\"properties\":{\"strict\":{\"type\":\"array\",\"items\":{\"type\":"
	    "\"integer\"}}},\"required\":[\"strict\"]}",
	    "json_schema -> responseSchema without unknown keywords");
	is_str(at(got, "generationConfig.responseMimeType"),
	    "\"application\\/json\"", "json_schema -> JSON mime type");
	json_object_put(got);
	provider_call_free(&call);

	/* A model id cannot leave its path segment. */
	strcpy(cand.upstream, "models/gem ini/../x?key=1#f:streamGenerateContent");
	got = build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", 0, &call, &e, &rc);
	is_str(call.url.data, "https://api.example/v1beta/models/gem%20ini%2F.."
	    "%2Fx%3Fkey=1%23f%3AstreamGenerateContent:generateContent",
	    "model id escaped, models/ prefix dropped");
	strcpy(cand.upstream, "gemini-test-upstream");
	json_object_put(got);
	provider_call_free(&call);

	/* Arguments that are not JSON cannot become a functionCall. */
	got = build("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\","
	    "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{oops\"}}]}]}", 0, &call, &e, &rc);
	is_int(rc, -1, "bad tool arguments refused");
	ok(strstr(e.message, "JSON object") != NULL, "error says why: %s",
	    e.message);
	provider_call_free(&call);

	/* A tool result needs a function name. */
	got = build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"zz\","
	    "\"content\":\"r\"}]}", 0, &call, &e, &rc);
	is_int(rc, -1, "orphan tool result refused");
	is_str(e.param, "messages[1].tool_call_id", "names the field");
	provider_call_free(&call);

	/* An empty arguments string and an array result. */
	got = build("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\","
	    "\"content\":\"\",\"tool_calls\":[{\"id\":\"c\",\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c\",\"content\":\"[1,2]\"}]}",
	    0, &call, &e, &rc);
	is_int(rc, 0, "empty arguments accepted");
	s = at(got, "contents");
	is_str(s, "[{\"role\":\"model\",\"parts\":[{\"functionCall\":{\"name\":"
	    "\"f\",\"args\":{}}}]},{\"role\":\"user\",\"parts\":[{"
	    "\"functionResponse\":{\"name\":\"f\",\"response\":{\"result\":"
	    "\"[1,2]\"}}}]}]", "{} arguments; a non-object result is wrapped");
	json_object_put(got);
	provider_call_free(&call);
}

static struct json_object *
choice(struct json_object *out)
{
	return json_object_array_get_idx(json_object_object_get(out, "choices"),
	    0);
}

static void
test_response(void)
{
	struct json_object	*out = NULL, *msg, *calls, *fn;
	struct provider_error	 e;
	struct usage		 u;
	char			*body;
	size_t			 len;
	const char		*max = "{\"candidates\":[{\"content\":{\"parts\":"
	    "[{\"text\":\"a\"}]},\"finishReason\":\"MAX_TOKENS\"}]}";
	const char		*safety = "{\"candidates\":[{\"finishReason\":"
	    "\"SAFETY\",\"index\":0}]}";

	body = slurp("nonstream_text.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_gemini.chat_response(&cand, body, len, &out, &u, &e),
	    0, "text response translates");
	msg = json_object_object_get(choice(out), "message");
	is_str(provider_json_str(msg, "content"), "Hello!", "content");
	is_str(provider_json_str(choice(out), "finish_reason"), "stop",
	    "STOP -> stop");
	is_str(provider_json_str(out, "model"), "gemini-test", "served name");
	is_str(provider_json_str(out, "id"), "MockRespText000000000001",
	    "id is the responseId");
	is_str(provider_json_str(out, "object"), "chat.completion", "object");
	is_int(u.prompt, 3, "prompt tokens");
	is_int(u.completion, 19, "completion counts thoughts (2 + 17)");
	is_int(provider_json_int(json_object_object_get(out, "usage"),
	    "total_tokens"), 22, "total equals totalTokenCount");
	json_object_put(out);
	free(body);

	body = slurp("nonstream_tool.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_gemini.chat_response(&cand, body, len, &out, &u, &e),
	    0, "tool response translates");
	msg = json_object_object_get(choice(out), "message");
	calls = json_object_object_get(msg, "tool_calls");
	is_int(json_object_array_length(calls), 2, "two tool calls");
	is_str(provider_json_str(json_object_array_get_idx(calls, 0), "id"),
	    "call_MockRespTool000000000001_0", "first id generated");
	is_str(provider_json_str(json_object_array_get_idx(calls, 1), "id"),
	    "call_MockRespTool000000000001_1", "second id distinct");
	fn = json_object_object_get(json_object_array_get_idx(calls, 0),
	    "function");
	is_str(provider_json_str(fn, "name"), "get_weather", "name");
	is_str(provider_json_str(fn, "arguments"),
	    "{\"city\":\"Paris\",\"unit\":\"c\"}", "arguments as a JSON string");
	is_str(provider_json_str(json_object_array_get_idx(calls, 1), "type"),
	    "function", "type function");
	is_str(provider_json_str(msg, "content"), "Let me check.",
	    "text beside the calls");
	is_str(provider_json_str(choice(out), "finish_reason"), "tool_calls",
	    "STOP with calls -> tool_calls");
	is_int(u.prompt, 120, "prompt tokens");
	is_int(u.cached, 100, "cached tokens");
	is_int(u.completion, 80, "completion tokens with thoughts");
	json_object_put(out);
	free(body);

	body = slurp("nonstream_blocked.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_gemini.chat_response(&cand, body, len, &out, &u, &e),
	    0, "blocked prompt translates");
	msg = json_object_object_get(choice(out), "message");
	ok(json_object_object_get(msg, "content") == NULL, "no content");
	is_str(provider_json_str(choice(out), "finish_reason"),
	    "content_filter", "blockReason -> content_filter");
	is_int(u.prompt, 9, "blocked prompt still billed");
	json_object_put(out);
	free(body);

	is_int(provider_gemini.chat_response(&cand, max, strlen(max), &out, &u,
	    &e), 0, "MAX_TOKENS response");
	is_str(provider_json_str(choice(out), "finish_reason"), "length",
	    "MAX_TOKENS -> length");
	json_object_put(out);
	is_int(provider_gemini.chat_response(&cand, safety, strlen(safety), &out,
	    &u, &e), 0, "SAFETY response without content");
	is_str(provider_json_str(choice(out), "finish_reason"),
	    "content_filter", "SAFETY -> content_filter");
	json_object_put(out);

	is_int(provider_gemini.chat_response(&cand, "{\"x\":1}", 7, &out, &u,
	    &e), -1, "a body without candidates is malformed");
	is_str(e.code, "bad_upstream_response", "malformed code");
	is_int(provider_gemini.chat_response(&cand, "[{", 2, &out, &u, &e), -1,
	    "a body that is not an object is malformed");
}

/* Collects what a stream emits. */
struct sink {
	struct buf	 text;
	struct buf	 reasoning;
	struct buf	 args[4];
	char		 ids[4][64];
	char		 names[4][64];
	int		 deltas[4];
	int		 chunks;
	int		 roles;
	int		 usage_chunks;
	int64_t		 usage_completion;
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
		s->usage_completion = provider_json_int(json_object_object_get(
		    chunk, "usage"), "completion_tokens");
		return 0;
	}
	ch = choice(chunk);
	if ((v = provider_json_str(ch, "finish_reason")) != NULL)
		snprintf(s->finish, sizeof(s->finish), "%s", v);
	d = json_object_object_get(ch, "delta");
	if (provider_json_str(d, "role") != NULL)
		s->roles++;
	if ((v = provider_json_str(d, "content")) != NULL)
		buf_puts(&s->text, v);
	if ((v = provider_json_str(d, "reasoning_content")) != NULL)
		buf_puts(&s->reasoning, v);
	tcs = json_object_object_get(d, "tool_calls");
	for (i = 0; tcs != NULL && i < json_object_array_length(tcs); i++) {
		tc = json_object_array_get_idx(tcs, i);
		idx = provider_json_int(tc, "index");
		if (idx < 0 || idx > 3)
			continue;
		s->deltas[idx]++;
		if ((v = provider_json_str(tc, "id")) != NULL)
			snprintf(s->ids[idx], sizeof(s->ids[idx]), "%s", v);
		fn = json_object_object_get(tc, "function");
		if ((v = provider_json_str(fn, "name")) != NULL)
			snprintf(s->names[idx], sizeof(s->names[idx]), "%s", v);
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
	return provider_gemini.chat_event(st, ev) == -1 ? 1 : 0;
}

static void
run_stream(const char *name, int include_usage, struct stream_state *st,
    struct sink *s)
{
	struct sse_parser	 p;
	char			*data;
	size_t			 len = 0, i;

	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	buf_init(&s->text, 1 << 20);
	buf_init(&s->reasoning, 1 << 20);
	for (i = 0; i < 4; i++)
		buf_init(&s->args[i], 1 << 20);
	st->emit = collect;
	st->ctx = s;
	st->cand = &cand;
	st->include_usage = include_usage;
	data = slurp(name, &len);
	ok(data != NULL, "%s found", name);
	sse_init(&p, 1 << 20);
	/* Byte by byte: events and CRLFs split anywhere. */
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
	buf_free(&s->reasoning);
	for (i = 0; i < 4; i++)
		buf_free(&s->args[i]);
}

static void
test_stream(void)
{
	struct stream_state	 st;
	struct sink		 s;

	run_stream("stream_sse.txt", 1, &st, &s);
	is_str(s.text.data, "1, 2, 3", "streamed text");
	is_str(s.finish, "stop", "finish_reason stop");
	ok(st.done, "the finishReason chunk ends the stream");
	is_int(s.roles, 1, "one role delta");
	is_int(s.usage_chunks, 1, "one usage chunk when asked");
	is_int(st.usage.prompt, 8, "prompt tokens");
	is_int(st.usage.completion, 30,
	    "completion is the last cumulative count (7 + 23), not a sum");
	is_int(s.usage_completion, 30, "usage chunk shows the final count");
	is_int(s.chunks, 1 + 2 + 1 + 1, "role + 2 text + finish + usage chunks");
	is_str(st.id, "MockResp0000000000000001", "chunk id is the responseId");
	free_sink(&s);

	run_stream("stream_sse.txt", 0, &st, &s);
	is_int(s.usage_chunks, 0, "no usage chunk unless asked");
	is_int(st.usage.completion, 30, "usage still known for billing");
	free_sink(&s);

	run_stream("stream_tool.sse", 1, &st, &s);
	is_str(s.text.data, "Let me check.", "text before the calls");
	is_str(s.ids[0], "call_MockRespStreamTool000001_0", "first call id");
	is_str(s.ids[1], "call_MockRespStreamTool000001_1", "second call id");
	is_str(s.names[0], "get_weather", "first name");
	is_str(s.names[1], "get_time", "second name");
	is_str(s.args[0].data, "{\"city\":\"Paris\",\"unit\":\"c\"}",
	    "first arguments whole");
	is_str(s.args[1].data, "{\"tz\":\"Europe/Paris\"}",
	    "second arguments whole");
	ok(s.deltas[0] == 1 && s.deltas[1] == 1, "one delta per call");
	is_str(s.finish, "tool_calls", "STOP with calls -> tool_calls");
	is_int(st.tools, 2, "two calls counted");
	is_int(st.usage.prompt, 40, "prompt tokens");
	is_int(st.usage.completion, 37, "completion 25 + 12 thoughts");
	ok(st.done, "done");
	free_sink(&s);

	run_stream("stream_thought.sse", 1, &st, &s);
	is_str(s.reasoning.data, "**Thinking** about it.",
	    "thought parts -> reasoning_content");
	is_str(s.text.data, "The answer is 42.", "text without the thought");
	is_str(s.finish, "length", "MAX_TOKENS -> length");
	is_int(st.usage.cached, 2, "cached tokens");
	is_int(st.usage.completion, 14, "completion 5 + 9 thoughts");
	free_sink(&s);

	run_stream("stream_error.sse", 0, &st, &s);
	is_str(s.text.data, "Par", "text before the error relayed");
	ok(st.failed, "an error object fails the stream");
	is_str(st.err.type, "unavailable", "type from status");
	is_str(st.err.code, "UNAVAILABLE", "code is the status");
	ok(strstr(st.err.message, "overloaded") != NULL, "message kept: %s",
	    st.err.message);
	ok(!st.done && st.finish[0] == '\0', "not done");
	free_sink(&s);
}

static void
test_error(void)
{
	struct provider_error	 e;
	char			*body;
	size_t			 len;

	body = slurp("error_404_model.json", &len);
	provider_gemini.error(404, body, len, &e);
	ok(strncmp(e.message, "models/gemini-nope is not found", 31) == 0,
	    "404 message kept");
	is_str(e.type, "not_found", "404 type");
	is_str(e.code, "NOT_FOUND", "404 code");
	free(body);

	body = slurp("error_503.json", &len);
	provider_gemini.error(503, body, len, &e);
	is_str(e.message, "The model is overloaded. Please try again later.",
	    "503 message");
	is_str(e.type, "unavailable", "503 type");
	free(body);

	body = slurp("error_429.json", &len);
	provider_gemini.error(429, body, len, &e);
	is_str(e.code, "RESOURCE_EXHAUSTED", "429 code");
	is_str(e.type, "resource_exhausted", "429 type");
	is_int(e.retry_after, 41, "429 RetryInfo retryDelay becomes retry_after");
	is_int(e.status, 0, "429 judged as sent");
	free(body);

	body = slurp("error_400_bad_key.json", &len);
	provider_gemini.error(400, body, len, &e);
	is_str(e.code, "upstream_auth_error", "bad key is the gateway's problem");
	is_str(e.type, "upstream_error", "bad key type");
	is_int(e.status, 401, "bad key judged as a 401");
	ok(strstr(e.message, "gateway's API key") != NULL, "bad key message: %s",
	    e.message);
	free(body);

	provider_gemini.error(502, "<html>bad gateway</html>", 24, &e);
	is_str(e.message, "upstream answered HTTP 502", "HTML body not echoed");
	is_str(e.type, "upstream_error", "5xx type");
}

int
main(void)
{
	setup();
	test_request_full();
	test_request_small();
	test_response();
	test_stream();
	test_error();
	return tap_done();
}
