/* unit-yandex.c: the YandexGPT native adapter: request, response, cumulative stream, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../src/provider.h"
#include "fixture.h"
#include "tap.h"

#define slurp(name, len)	tap_slurp("yandex", name, len)


static void
setup(void)
{
	fixture_candidate(PROVIDER_YANDEX, "yandex", "https://llm.example/",
	    "AQVN-secret", "yandexgpt-test", "yandexgpt-lite/latest", 0,
	    "X-Extra: 1");
	prov.folder = "b1gfolder";
}

static int
count_prefix(struct curl_slist *h, const char *prefix)
{
	int	 n = 0;

	for (; h != NULL; h = h->next)
		if (strncasecmp(h->data, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

/* chat_request on a literal client body; the call is left for inspection. */
static int
build(const char *req, int stream, struct provider_call *call,
    struct provider_error *e)
{
	struct chat_in	 in;
	int		 rc;

	memset(&in, 0, sizeof(in));
	memset(e, 0, sizeof(*e));
	in.req = json_tokener_parse(req);
	in.client_max = provider_client_max(in.req);
	in.stream = stream;
	provider_call_init(call, 1 << 20);
	rc = provider_yandex.chat_request(&cand, &in, call, e);
	json_object_put(in.req);
	return rc;
}

static void
test_request(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got, *want, *co;
	char			*src, *exp;
	const char		*hi = "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"hi\"}]}";

	src = slurp("request_full.openai.json", NULL);
	exp = slurp("request_full.yandex.json", NULL);
	ok(src != NULL && exp != NULL, "request fixtures found");
	if (src == NULL || exp == NULL)
		return;
	is_int(build(src, 0, &call, &e), 0, "chat_request succeeds");
	got = json_tokener_parse(call.body.data ? call.body.data : "");
	want = json_tokener_parse(exp);
	ok(got != NULL && want != NULL && json_object_equal(got, want),
	    "upstream body equals request_full.yandex.json");
	if (got == NULL || want == NULL || !json_object_equal(got, want))
		printf("#   got  %s\n", call.body.data ? call.body.data : "");
	is_str(call.url.data,
	    "https://llm.example/foundationModels/v1/completion", "URL");
	ok(has_header(call.headers, "Authorization: Api-Key AQVN-secret"),
	    "Api-Key by default");
	ok(has_header(call.headers, "x-folder-id: b1gfolder"), "x-folder-id");
	ok(has_header(call.headers, "X-Extra: 1"), "extra header");
	ok(has_header(call.headers, "Content-Type: application/json"),
	    "JSON content type");
	json_object_put(got);
	json_object_put(want);
	provider_call_free(&call);
	free(src);
	free(exp);

	/* Streams say so; the model's max_tokens is sent as a string. */
	model.max_tokens = 800;
	cand.max_tokens = 800;
	is_int(build(hi, 1, &call, &e), 0, "streamed request builds");
	got = json_tokener_parse(call.body.data);
	co = json_object_object_get(got, "completionOptions");
	ok(json_object_get_boolean(json_object_object_get(co, "stream")),
	    "completionOptions.stream true");
	is_str(provider_json_str(co, "maxTokens"), "800",
	    "maxTokens is the model's cap, as a string");
	ok(json_object_object_get(co, "temperature") == NULL,
	    "no temperature unless asked");
	ok(json_object_object_get(got, "tools") == NULL, "no empty tools");
	json_object_put(got);
	provider_call_free(&call);
	model.max_tokens = 0;
	cand.max_tokens = 4096;

	/* IAM tokens go as Bearer. */
	prov.auth_scheme = "bearer";
	is_int(build(hi, 0, &call, &e), 0, "auth_scheme bearer builds");
	ok(has_header(call.headers, "Authorization: Bearer AQVN-secret"),
	    "Bearer IAM token");
	is_int(count_prefix(call.headers, "Authorization:"), 1,
	    "one Authorization header");
	provider_call_free(&call);
	prov.auth_scheme = "Basic";
	is_int(build(hi, 0, &call, &e), -1, "unknown auth_scheme refused");
	is_str(e.message, "", "as the gateway's fault (500), not the client's");
	provider_call_free(&call);
	prov.auth_scheme = NULL;

	/* A full model URI is used as is, with its own folder. */
	strcpy(cand.upstream, "gpt://b1gother/yandexgpt/rc");
	is_int(build(hi, 0, &call, &e), 0, "gpt:// upstream builds");
	got = json_tokener_parse(call.body.data);
	is_str(provider_json_str(got, "modelUri"), "gpt://b1gother/yandexgpt/rc",
	    "modelUri taken as is");
	ok(has_header(call.headers, "x-folder-id: b1gother"),
	    "x-folder-id from the URI");
	json_object_put(got);
	provider_call_free(&call);
	strcpy(cand.upstream, "gpt://b1g\r\nX-Evil: 1/yandexgpt");
	is_int(build(hi, 0, &call, &e), -1, "a folder with CR LF is refused");
	is_str(e.param, "model", "the model is at fault");
	ok(count_prefix(call.headers, "X-Evil") == 0, "no header smuggled");
	provider_call_free(&call);
	strcpy(cand.upstream, "yandexgpt-lite/latest");

	/* Without a folder there is no modelUri. */
	prov.folder = NULL;
	is_int(build(hi, 0, &call, &e), -1, "no folder, no request");
	is_str(e.message, "", "no folder is a configuration fault");
	provider_call_free(&call);
	prov.folder = "b1gfolder";

	/* What Yandex cannot take is the client's to fix. */
	is_int(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"what?\"},{\"type\":"
	    "\"image_url\",\"image_url\":{\"url\":\"https://x/y.png\"}}]}]}", 0,
	    &call, &e), -1, "image parts refused");
	ok(strstr(e.message, "image_url") != NULL, "error names the part: %s",
	    e.message);
	is_str(e.param, "messages[0].content", "error names the message");
	provider_call_free(&call);
	is_int(build("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\","
	    "\"content\":null,\"tool_calls\":[{\"id\":\"c\",\"type\":\"function\","
	    "\"function\":{\"name\":\"f\",\"arguments\":\"{oops\"}}]}]}", 0,
	    &call, &e), -1, "bad tool arguments refused");
	ok(strstr(e.message, "JSON object") != NULL, "error says why: %s",
	    e.message);
	provider_call_free(&call);
	is_int(build("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"x\"},{\"role\":\"tool\",\"tool_call_id\":\"nope\","
	    "\"content\":\"r\"}]}", 0, &call, &e), -1,
	    "a tool result without its call refused");
	is_str(e.param, "messages[1].tool_call_id", "error names the id");
	provider_call_free(&call);

	/* A legacy function message names its function itself. */
	is_int(build("{\"model\":\"m\",\"tool_choice\":{\"type\":\"function\","
	    "\"function\":{\"name\":\"f\"}},\"tools\":[{\"type\":\"function\","
	    "\"function\":{\"name\":\"f\"}}],\"response_format\":{\"type\":"
	    "\"json_object\"},\"messages\":[{\"role\":\"function\",\"name\":\"f\","
	    "\"content\":\"r\"}]}", 0, &call, &e), 0, "function result builds");
	got = json_tokener_parse(call.body.data);
	want = json_tokener_parse("{\"modelUri\":\"gpt://b1gfolder/yandexgpt-"
	    "lite/latest\",\"completionOptions\":{\"stream\":false,\"maxTokens\":"
	    "\"4096\"},\"messages\":"
	    "[{\"role\":\"user\",\"toolResultList\":{\"toolResults\":[{"
	    "\"functionResult\":{\"name\":\"f\",\"content\":\"r\"}}]}}],\"tools\":"
	    "[{\"function\":{\"name\":\"f\"}}],\"toolChoice\":{\"functionName\":"
	    "\"f\"},\"jsonObject\":true}");
	ok(json_object_equal(got, want), "functionName choice, jsonObject");
	if (!json_object_equal(got, want))
		printf("#   got  %s\n", call.body.data);
	json_object_put(got);
	json_object_put(want);
	provider_call_free(&call);
}

/* The first choice's message of a translated response. */
static struct json_object *
message_of(struct json_object *out)
{
	return json_object_object_get(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "message");
}

static const char *
finish_of(struct json_object *out)
{
	return provider_json_str(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "finish_reason");
}

/* chat_response on a literal body; returns its result, out in *out. */
static int
respond(const char *body, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	memset(u, 0, sizeof(*u));
	memset(e, 0, sizeof(*e));
	*out = NULL;
	return provider_yandex.chat_response(&cand, body, strlen(body), out, u,
	    e);
}

static void
test_response(void)
{
	struct json_object	*out = NULL, *tc;
	struct provider_error	 e;
	struct usage		 u;
	char			*body, body2[1024];
	const char		*s;
	size_t			 len, i;
	static const struct {
		const char	*status;
		const char	*finish;
	} statuses[] = {
		{ "\"ALTERNATIVE_STATUS_FINAL\"", "stop" },
		{ "\"ALTERNATIVE_STATUS_TRUNCATED_FINAL\"", "length" },
		{ "\"ALTERNATIVE_STATUS_CONTENT_FILTER\"", "content_filter" },
		{ "\"ALTERNATIVE_STATUS_TOOL_CALLS\"", "tool_calls" },
		{ "2", "length" },
		{ "\"SOMETHING_NEW\"", "stop" },
	};
	static const struct {
		const char	*count;
		int		 known;
	} counts[] = {
		{ "\"12\"", 1 }, { "12", 1 }, { "\"0\"", 1 },
		{ "\"12abc\"", 0 }, { "\"-1\"", 0 }, { "-1", 0 }, { "\"\"", 0 },
		{ "\" 12\"", 0 }, { "\"1e3\"", 0 }, { "\"+5\"", 0 },
		{ "\"9999999999999999999999\"", 0 }, { "12.5", 0 }, { "null", 0 },
	};

	body = slurp("completion_200.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_yandex.chat_response(&cand, body, len, &out, &u, &e),
	    0, "text response translates");
	is_str(provider_json_str(message_of(out), "content"),
	    "Ошибки сами себя не исправят.", "content is the alternative's text");
	is_str(finish_of(out), "stop", "FINAL -> stop");
	is_str(provider_json_str(out, "model"), "yandexgpt-test", "served name");
	is_str(provider_json_str(out, "object"), "chat.completion", "object");
	ok(strncmp(provider_json_str(out, "id"), "chatcmpl-", 9) == 0 &&
	    strlen(provider_json_str(out, "id")) > 20, "a synthesized id: %s",
	    provider_json_str(out, "id"));
	is_str(provider_json_str(out, "system_fingerprint"), "07.03.2024",
	    "modelVersion as system_fingerprint");
	is_int(u.prompt, 29, "prompt tokens from a string");
	is_int(u.completion, 9, "completion tokens from a string");
	ok(u.known, "usage known");
	is_int(provider_json_int(json_object_object_get(out, "usage"),
	    "total_tokens"), 38, "total tokens");
	json_object_put(out);
	free(body);

	body = slurp("completion_tool_calls.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_yandex.chat_response(&cand, body, len, &out, &u, &e),
	    0, "tool call response translates");
	tc = json_object_array_get_idx(json_object_object_get(message_of(out),
	    "tool_calls"), 0);
	is_str(provider_json_str(json_object_object_get(tc, "function"),
	    "name"), "weatherTool", "tool name");
	is_str(provider_json_str(json_object_object_get(tc, "function"),
	    "arguments"), "{\"city\":\"Санкт-Петербург\"}",
	    "arguments object as a JSON string");
	ok(strncmp(provider_json_str(tc, "id"), "call_", 5) == 0,
	    "a synthesized tool call id");
	is_str(provider_json_str(tc, "type"), "function", "type function");
	ok(json_object_object_get(message_of(out), "content") == NULL,
	    "content null");
	is_str(finish_of(out), "tool_calls", "TOOL_CALLS -> tool_calls");
	is_int(u.prompt, 74, "tool call prompt tokens");
	json_object_put(out);
	free(body);

	/* The API reference shows the response without "result". */
	is_int(respond("{\"alternatives\":[{\"message\":{\"role\":\"assistant\","
	    "\"text\":\"bare\"},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}],"
	    "\"usage\":{\"inputTextTokens\":\"1\",\"completionTokens\":\"2\","
	    "\"totalTokens\":\"3\"}}", &out, &u, &e), 0,
	    "a body without result translates");
	is_str(provider_json_str(message_of(out), "content"), "bare",
	    "its text");
	is_int(u.completion, 2, "its usage");
	json_object_put(out);

	/* A tool call under a FINAL status is still a tool call. */
	is_int(respond("{\"result\":{\"alternatives\":[{\"message\":{\"role\":"
	    "\"assistant\",\"toolCallList\":{\"toolCalls\":[{\"functionCall\":{"
	    "\"name\":\"f\",\"arguments\":{}}},{\"functionCall\":{\"name\":\"g\","
	    "\"arguments\":\"{\\\"a\\\":[1]}\"}}]}},\"status\":"
	    "\"ALTERNATIVE_STATUS_FINAL\""
	    "}]}}", &out, &u, &e), 0, "two tool calls translate");
	is_str(finish_of(out), "tool_calls", "FINAL with tool calls -> "
	    "tool_calls");
	is_int(json_object_array_length(json_object_object_get(message_of(out),
	    "tool_calls")), 2, "both calls");
	tc = json_object_object_get(message_of(out), "tool_calls");
	ok(strcmp(provider_json_str(json_object_array_get_idx(tc, 0), "id"),
	    provider_json_str(json_object_array_get_idx(tc, 1), "id")) != 0,
	    "distinct ids");
	is_str(provider_json_str(json_object_object_get(json_object_array_get_idx(
	    tc, 1), "function"), "arguments"), "{\"a\":[1]}",
	    "string arguments taken as the JSON itself");
	ok(!u.known, "no usage, not known");
	json_object_put(out);

	for (i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
		snprintf(body2, sizeof(body2), "{\"result\":{\"alternatives\":[{"
		    "\"message\":{\"role\":\"assistant\",\"text\":\"t\"},"
		    "\"status\":%s}]}}", statuses[i].status);
		is_int(respond(body2, &out, &u, &e), 0, "status %s translates",
		    statuses[i].status);
		is_str(finish_of(out), statuses[i].finish, "status %s -> %s",
		    statuses[i].status, statuses[i].finish);
		json_object_put(out);
	}
	for (i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		snprintf(body2, sizeof(body2), "{\"result\":{\"alternatives\":[{"
		    "\"message\":{\"role\":\"assistant\",\"text\":\"t\"},"
		    "\"status\":\"ALTERNATIVE_STATUS_FINAL\"}],\"usage\":{"
		    "\"inputTextTokens\":%s,\"completionTokens\":\"3\","
		    "\"totalTokens\":\"15\"}}}", counts[i].count);
		respond(body2, &out, &u, &e);
		is_int(u.known, counts[i].known, "token count %s %s",
		    counts[i].count, counts[i].known ? "taken" : "rejected");
		if (counts[i].known)
			is_int(u.prompt, strcmp(counts[i].count, "\"0\"") == 0 ?
			    0 : 12, "token count %s is its value",
			    counts[i].count);
		json_object_put(out);
	}

	/* An error in a 200 body, and bodies that are not completions. */
	is_int(respond("{\"error\":{\"grpcCode\":13,\"httpCode\":500,"
	    "\"message\":\"Internal error\",\"httpStatus\":\"Internal Server "
	    "Error\",\"details\":[]}}", &out, &u, &e), -1,
	    "an error body on 200 fails");
	ok(strstr(e.message, "Internal error") != NULL, "with its message: %s",
	    e.message);
	is_str(e.code, "internal", "and its grpc code");
	is_int(respond("{\"result\":{\"alternatives\":[]}}", &out, &u, &e), -1,
	    "no alternatives is malformed");
	is_str(e.code, "bad_upstream_response", "malformed code");
	is_int(respond("{\"result\": {\"alt", &out, &u, &e), -1,
	    "truncated JSON is malformed");
	s = "[1,2]";
	is_int(respond(s, &out, &u, &e), -1, "an array is malformed");
}

/* Collects what a stream emits. */
struct sink {
	struct buf	 text;
	struct buf	 args[4];
	char		 ids[4][64];
	char		 names[4][64];
	int		 chunks;
	int		 usage_chunks;
	int		 finishes;
	int		 roles;
	char		 finish[32];
	char		 id[128];
	int		 same_id;
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
	v = provider_json_str(chunk, "id");
	if (s->chunks == 1)
		snprintf(s->id, sizeof(s->id), "%s", v ? v : "");
	else if (v == NULL || strcmp(v, s->id) != 0)
		s->same_id = 0;
	if (json_object_array_length(json_object_object_get(chunk,
	    "choices")) == 0) {
		s->usage_chunks++;
		return 0;
	}
	ch = json_object_array_get_idx(json_object_object_get(chunk,
	    "choices"), 0);
	if ((v = provider_json_str(ch, "finish_reason")) != NULL) {
		snprintf(s->finish, sizeof(s->finish), "%s", v);
		s->finishes++;
	}
	d = json_object_object_get(ch, "delta");
	if (provider_json_str(d, "role") != NULL)
		s->roles++;
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
	return provider_yandex.chat_event(st, ev) == -1 ? 1 : 0;
}

static void
start_stream(int include_usage, struct stream_state *st, struct sink *s)
{
	size_t	 i;

	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	s->same_id = 1;
	buf_init(&s->text, 1 << 20);
	for (i = 0; i < 4; i++)
		buf_init(&s->args[i], 1 << 20);
	st->emit = collect;
	st->ctx = s;
	st->cand = &cand;
	st->include_usage = include_usage;
}

/*
 * Feed data byte by byte through the parser route-chat uses, in NDJSON
 * mode (the adapter's framing) or, for comparison, as plain SSE.
 */
static void
feed_data(const char *data, size_t len, int sse, struct stream_state *st)
{
	struct sse_parser	 p;
	size_t			 i;

	sse_init(&p, 1 << 20);
	sse_set_ndjson(&p, !sse);
	for (i = 0; i < len; i++)
		if (sse_feed(&p, data + i, 1, feed, st) != 0)
			break;
	if (i == len)
		sse_finish(&p, feed, st);
	sse_free(&p);
}

static void
run_stream(const char *name, int sse, int include_usage,
    struct stream_state *st, struct sink *s)
{
	char	*data;
	size_t	 len = 0;

	start_stream(include_usage, st, s);
	data = slurp(name, &len);
	if (data == NULL)
		printf("# cannot read %s\n", name);
	feed_data(data ? data : "", len, sse, st);
	free(data);
}

static void
run_literal(const char *data, struct stream_state *st, struct sink *s)
{
	start_stream(0, st, s);
	feed_data(data, strlen(data), 0, st);
}

static void
free_sink(struct sink *s)
{
	size_t	 i;

	buf_free(&s->text);
	for (i = 0; i < 4; i++)
		buf_free(&s->args[i]);
}

/* One NDJSON stream message with a text and a status. */
#define MSG(text, status) "{\"result\":{\"alternatives\":[{\"message\":{"	\
	"\"role\":\"assistant\",\"text\":\"" text "\"},\"status\":"		\
	"\"ALTERNATIVE_STATUS_" status "\"}],\"usage\":{\"inputTextTokens\":"	\
	"\"5\",\"completionTokens\":\"2\",\"totalTokens\":\"7\"}}}\n"

static void
test_stream(void)
{
	struct stream_state	 st;
	struct sink		 s;
	const char		*final = "Ошибки сами себя не исправят.";
	size_t			 i;
	static const struct {
		const char	*name;
		const char	*file;
		int		 sse;	/* plain SSE parser, not NDJSON mode */
	} readings[] = {
		{ "NDJSON", "stream_native.jsonl", 0 },
		{ "SSE lines in NDJSON mode", "stream_native.sse", 0 },
		{ "SSE in SSE mode", "stream_native.sse", 1 },
	};

	for (i = 0; i < sizeof(readings) / sizeof(readings[0]); i++) {
		run_stream(readings[i].file, readings[i].sse, 1, &st, &s);
		is_str(s.text.data, final, "%s: deltas add up to the final text "
		    "exactly", readings[i].name);
		is_str(s.finish, "stop", "%s: FINAL -> stop", readings[i].name);
		ok(st.done, "%s: the final status ends the stream",
		    readings[i].name);
		is_int(s.usage_chunks, 1, "%s: one usage chunk when asked",
		    readings[i].name);
		is_int(st.usage.prompt, 29, "%s: prompt tokens",
		    readings[i].name);
		is_int(st.usage.completion, 9, "%s: completion tokens are the "
		    "last count, not a sum", readings[i].name);
		is_int(s.chunks, 1 + 3 + 1 + 1, "%s: role + 3 deltas + finish + "
		    "usage", readings[i].name);
		is_int(st.chars, (long long)strlen(final), "%s: chars relayed",
		    readings[i].name);
		ok(s.same_id && strncmp(s.id, "chatcmpl-", 9) == 0,
		    "%s: one synthesized id on every chunk", readings[i].name);
		free_sink(&s);
	}

	run_stream("stream_native.jsonl", 0, 0, &st, &s);
	is_int(s.usage_chunks, 0, "no usage chunk unless asked");
	is_int(s.roles, 1, "one role chunk");
	free_sink(&s);

	run_stream("stream_tool_calls.jsonl", 0, 0, &st, &s);
	is_str(s.names[0], "weatherTool", "first tool call at index 0");
	is_str(s.names[1], "timeTool", "second tool call at index 1");
	is_str(s.args[0].data, "{\"city\":\"Paris\"}", "first arguments whole, "
	    "once");
	is_str(s.args[1].data, "{\"tz\":\"Europe/Paris\"}",
	    "second arguments whole");
	ok(strncmp(s.ids[0], "call_", 5) == 0 && strncmp(s.ids[1], "call_",
	    5) == 0 && strcmp(s.ids[0], s.ids[1]) != 0, "distinct call ids");
	is_str(s.finish, "tool_calls", "TOOL_CALLS -> tool_calls");
	is_int(st.tools, 2, "two calls sent");
	is_int(st.usage.completion, 14, "tool call usage");
	is_int(s.chunks, 1 + 2 + 1, "role + 2 calls + finish");
	free_sink(&s);

	run_stream("stream_truncated.jsonl", 0, 0, &st, &s);
	is_str(s.text.data, "One two three", "truncated text");
	is_str(s.finish, "length", "TRUNCATED_FINAL -> length");
	free_sink(&s);

	run_stream("stream_error.jsonl", 0, 0, &st, &s);
	is_str(s.text.data, "Hel", "text before the error relayed");
	ok(st.failed, "an error line fails the stream");
	ok(strstr(st.err.message, "quota limit exceed") != NULL,
	    "error message kept: %s", st.err.message);
	ok(strstr(st.err.message, "'yandex'") != NULL, "error names the "
	    "provider");
	is_str(st.err.code, "resource_exhausted", "grpc code 8 named");
	ok(!st.done && s.finish[0] == '\0', "not done, no finish");
	free_sink(&s);

	/* A stream that just stops has no finish: route-chat reports it. */
	run_literal(MSG("a", "PARTIAL") MSG("ab", "PARTIAL"), &st, &s);
	is_str(s.text.data, "ab", "partial text relayed");
	ok(!st.done && st.finish[0] == '\0', "no final status, not done");
	free_sink(&s);

	/* A revised partial is held back until the text agrees again. */
	run_literal(MSG("Hello wor", "PARTIAL") MSG("Hello, world", "PARTIAL")
	    MSG("Hello world!", "FINAL"), &st, &s);
	is_str(s.text.data, "Hello world!", "a partial revision is not relayed");
	is_str(s.finish, "stop", "and the stream ends well");
	free_sink(&s);

	/* A final text that takes back what was sent cannot be relayed. */
	run_literal(MSG("Hello wor", "PARTIAL") MSG("Goodbye", "FINAL"), &st,
	    &s);
	ok(!st.done && s.finish[0] == '\0', "a revised final text fails");
	ok(strstr(st.err.message, "revised") != NULL, "error says why: %s",
	    st.err.message);
	free_sink(&s);

	/* Except a content filter, which replaces the text by design. */
	run_literal(MSG("Bad wor", "PARTIAL") MSG("I cannot talk about that",
	    "CONTENT_FILTER"), &st, &s);
	is_str(s.text.data, "Bad wor", "nothing garbled after the filter");
	is_str(s.finish, "content_filter", "CONTENT_FILTER -> content_filter");
	ok(st.done, "filtered stream done");
	free_sink(&s);

	/* Nothing after the final message, and blank lines, CRLF, no last LF. */
	run_literal(MSG("x", "PARTIAL") "\r\n\r\n" MSG("xy", "FINAL")
	    MSG("xyz", "FINAL") "{\"result\":{\"alternatives\":[{\"message\":"
	    "{\"text\":\"xyzw\"},\"status\":\"ALTERNATIVE_STATUS_FINAL\"}]}}",
	    &st, &s);
	is_str(s.text.data, "xy", "messages after the final one are ignored");
	is_int(s.finishes, 1, "one finish chunk");
	free_sink(&s);

	/* Malformed lines fail the stream. */
	run_literal(MSG("x", "PARTIAL") "{\"broken\n", &st, &s);
	ok(strstr(st.err.message, "malformed") != NULL, "malformed line: %s",
	    st.err.message);
	ok(!st.failed, "malformed is not an upstream error event");
	free_sink(&s);
	run_literal("garbage line\n", &st, &s);
	ok(strstr(st.err.message, "malformed") != NULL,
	    "a line of junk is malformed, not skipped");
	free_sink(&s);

	/* SSE data lines and comments pass the NDJSON splitter too. */
	run_literal(": ping\n\ndata: " MSG("o", "PARTIAL") "\ndata: "
	    MSG("ok", "FINAL"), &st, &s);
	is_str(s.text.data, "ok", "SSE lines through the NDJSON splitter");
	is_str(s.finish, "stop", "and their finish");
	free_sink(&s);
}

static void
test_error(void)
{
	struct provider_error	 e;
	const char		*odd = "{\"error\":{\"grpcCode\":99,"
	    "\"message\":\"odd\"}}";
	char			*body;
	size_t			 len;

	body = slurp("error_401.json", &len);
	provider_yandex.error(401, body, len, &e);
	is_str(e.message, "Unknown api key 'AQVN***'", "grpc-style message");
	is_str(e.code, "unauthenticated", "grpcCode 16 named");
	is_str(e.type, "invalid_request_error", "4xx type");
	free(body);
	body = slurp("error_429_flat.json", &len);
	provider_yandex.error(429, body, len, &e);
	is_str(e.message, "Quota exceeded: completion tokens per hour",
	    "flat {code, message} shape");
	is_str(e.code, "resource_exhausted", "code 8 named");
	free(body);
	provider_yandex.error(503, "<html>bad gateway</html>", 24, &e);
	is_str(e.message, "upstream answered HTTP 503", "HTML body not echoed");
	is_str(e.type, "upstream_error", "5xx type");
	provider_yandex.error(500, "{\"error\":\"boom\"}", 16, &e);
	is_str(e.message, "boom", "a string error");
	provider_yandex.error(400, odd, strlen(odd), &e);
	is_str(e.message, "odd", "unknown grpc code: message kept");
	is_str(e.code, "", "and no code invented");
}

int
main(void)
{
	setup();
	test_request();
	test_response();
	test_stream();
	test_error();
	return tap_done();
}
