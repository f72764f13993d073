/* unit-provider.c: the OpenAI adapter: requests, responses, events, errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../src/log.h"
#include "../src/provider.h"
#include "tap.h"

#define MAX_CHUNKS	32

/* got contains needle; on failure both are printed. */
#define like(got, needle, ...) do {					\
	const char *l_ = (got), *n_ = (needle);				\
	int f_ = l_ != NULL && strstr(l_, n_) != NULL;			\
	ok(f_, __VA_ARGS__);						\
	if (!f_)							\
		printf("#   '%s' lacks '%s'\n", l_ ? l_ : "(null)", n_); \
} while (0)

/* One provider, one [model] and the candidate built from them. */
struct route {
	struct provider_cfg	 p;
	struct model_cfg	 m;
	struct candidate	 c;
	char			*hdr[2];
};

static char hdr_title[] = "X-Title: llmgate";
static char hdr_referer[] = "HTTP-Referer: https://llmgate.example";
static char prov_name[] = "openai";

/* base_url and key as given (key may be NULL); max_tokens the model default. */
static void
route_init(struct route *r, const char *base_url, const char *key,
    long max_tokens)
{
	memset(r, 0, sizeof(*r));
	r->hdr[0] = hdr_title;
	r->hdr[1] = hdr_referer;
	r->p.name = prov_name;
	r->p.type = PROVIDER_OPENAI;
	r->p.base_url = (char *)base_url;
	r->p.api_key = (char *)key;
	r->p.available = 1;
	r->p.headers.v = r->hdr;
	r->p.headers.n = 2;
	r->p.max_tokens_field = (char *)"max_tokens";
	r->m.provider = &r->p;
	r->m.max_tokens = max_tokens;
	r->c.max_tokens = max_tokens > 0 ? max_tokens : 4096;
	snprintf(r->c.name, sizeof(r->c.name), "gpt-4o");
	snprintf(r->c.upstream, sizeof(r->c.upstream), "gpt-4o-2024-08-06");
	r->c.provider = &r->p;
	r->c.model = &r->m;
}

/*
 * A data file of the test suite, under $top_srcdir (as make check sets it),
 * else the current or the parent directory; the caller frees it.
 */
static char *
slurp(const char *name, size_t *len)
{
	const char	*top = getenv("top_srcdir");
	const char	*bases[] = { top ? top : ".", ".", ".." };
	char		 path[1024], *s = NULL;
	FILE		*fp = NULL;
	size_t		 i;
	long		 n;

	for (i = 0; i < 3 && fp == NULL; i++) {
		snprintf(path, sizeof(path), "%s/t/data/unit/%s", bases[i],
		    name);
		fp = fopen(path, "rb");
	}
	if (fp == NULL) {
		printf("# cannot find t/data/unit/%s\n", name);
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		*len = fread(s, 1, (size_t)n, fp);
		s[*len] = '\0';
	}
	fclose(fp);
	return s;
}

/* A member by dotted path ("stream_options.include_usage"), or NULL. */
static struct json_object *
get(struct json_object *o, const char *path)
{
	char	 key[128];
	size_t	 n;

	while (o != NULL && *path != '\0') {
		n = strcspn(path, ".");
		if (n >= sizeof(key))
			return NULL;
		memcpy(key, path, n);
		key[n] = '\0';
		if (json_object_is_type(o, json_type_array))
			o = json_object_array_get_idx(o, (size_t)atoi(key));
		else if (!json_object_object_get_ex(o, key, &o))
			return NULL;
		path += n + (path[n] == '.');
	}
	return o;
}

static const char *
get_str(struct json_object *o, const char *path)
{
	struct json_object	*v = get(o, path);

	return json_object_is_type(v, json_type_string) ?
	    json_object_get_string(v) : NULL;
}

static int
has(struct json_object *o, const char *path)
{
	struct json_object	*v;
	const char		*dot = strrchr(path, '.');
	char			 parent[128];

	if (dot == NULL)
		return json_object_object_get_ex(o, path, NULL);
	snprintf(parent, sizeof(parent), "%.*s", (int)(dot - path), path);
	v = get(o, parent);
	return v != NULL && json_object_object_get_ex(v, dot + 1, NULL);
}

/* The header list holds exactly this line. */
static int
has_header(const struct provider_call *call, const char *line)
{
	const struct curl_slist	*h;

	for (h = call->headers; h != NULL; h = h->next)
		if (strcmp(h->data, line) == 0)
			return 1;
	return 0;
}

static int
count_headers(const struct provider_call *call, const char *prefix)
{
	const struct curl_slist	*h;
	int			 n = 0;

	for (h = call->headers; h != NULL; h = h->next)
		if (strncasecmp(h->data, prefix, strlen(prefix)) == 0)
			n++;
	return n;
}

/*
 * Build the upstream call for the client body req; return the body it
 * would send, parsed (the caller frees it and the call).
 */
static struct json_object *
build(const struct route *r, const char *req, int stream,
    struct provider_call *call)
{
	struct chat_in		 in;
	struct json_object	*out = NULL;
	char			*before;
	struct provider_error	 perr;
	int			 rc;

	memset(&in, 0, sizeof(in));
	in.req = json_tokener_parse(req);
	in.stream = stream;
	in.client_max = provider_client_max(in.req);
	provider_call_init(call, 1 << 20);
	if (in.req == NULL) {
		ok(0, "test request parses: %s", req);
		return NULL;
	}
	before = strdup(json_object_to_json_string(in.req));
	memset(&perr, 0, sizeof(perr));
	rc = provider_openai.chat_request(&r->c, &in, call, &perr);
	is_int(rc, 0, "chat_request succeeds");
	ok(before != NULL && strcmp(before,
	    json_object_to_json_string(in.req)) == 0,
	    "the client's request is left as it was");
	if (rc == 0 && call->body.data != NULL)
		out = json_tokener_parse(call->body.data);
	ok(out != NULL, "the upstream body is JSON");
	free(before);
	json_object_put(in.req);
	return out;
}

static void
test_request(void)
{
	struct route		 r;
	struct provider_call	 call;
	struct json_object	*b, *msgs;

	route_init(&r, "https://api.openai.com/v1", "sk-test", 0);
	b = build(&r, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"a/b\"}],\"temperature\":0.5,\"stream_options\":"
	    "{\"include_usage\":true},\"vendor\":{\"x\":[1,2]}}", 0, &call);
	is_str(get_str(b, "model"), "gpt-4o-2024-08-06",
	    "non-stream: model is the upstream id");
	msgs = get(b, "messages");
	ok(json_object_is_type(msgs, json_type_array) &&
	    json_object_array_length(msgs) == 1,
	    "non-stream: messages carried");
	is_str(get_str(b, "messages.0.content"), "a/b",
	    "non-stream: message content carried");
	ok(json_object_get_double(get(b, "temperature")) == 0.5,
	    "non-stream: temperature carried");
	is_int(json_object_get_int(get(b, "vendor.x.1")), 2,
	    "non-stream: unknown fields carried");
	ok(!has(b, "stream_options"),
	    "non-stream: no stream_options upstream");
	is_int(json_object_get_int64(get(b, "max_tokens")), 4096,
	    "non-stream: the gateway's limit is always sent");
	ok(strstr(call.body.data, "a/b") != NULL,
	    "slashes are not escaped in the body");
	ok(strstr(call.body.data, "sk-test") == NULL,
	    "the key is not in the body");
	is_str(call.url.data, "https://api.openai.com/v1/chat/completions",
	    "URL is base_url + /chat/completions");
	ok(has_header(&call, "Authorization: Bearer sk-test"),
	    "Authorization: Bearer <key>");
	is_int(count_headers(&call, "Authorization:"), 1,
	    "one Authorization header");
	ok(has_header(&call, "Content-Type: application/json"),
	    "JSON content type");
	ok(has_header(&call, "X-Title: llmgate") &&
	    has_header(&call, "HTTP-Referer: https://llmgate.example"),
	    "the provider's extra headers");
	json_object_put(b);
	provider_call_free(&call);

	b = build(&r, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}],\"stream\":true,\"stream_options\":"
	    "{\"include_usage\":false,\"continuous_usage_stats\":true}}", 1,
	    &call);
	ok(json_object_get_boolean(get(b, "stream")), "stream: stream true");
	ok(json_object_is_type(get(b, "stream_options.include_usage"),
	    json_type_boolean) &&
	    json_object_get_boolean(get(b, "stream_options.include_usage")),
	    "stream: include_usage forced true");
	ok(json_object_get_boolean(get(b,
	    "stream_options.continuous_usage_stats")),
	    "stream: the client's other stream_options kept");
	is_str(get_str(b, "model"), "gpt-4o-2024-08-06", "stream: upstream id");
	json_object_put(b);
	provider_call_free(&call);

	b = build(&r, "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}],\"stream\":true}", 1, &call);
	ok(json_object_get_boolean(get(b, "stream_options.include_usage")),
	    "stream without stream_options: include_usage added");
	is_int(json_object_object_length(get(b, "stream_options")), 1,
	    "stream without stream_options: nothing else added");
	json_object_put(b);
	provider_call_free(&call);
}

/*
 * The one limit the gateway sends: the smaller of the client's and the
 * model's cap, in the provider's one field, whatever the client sent.
 */
static void
test_max_tokens(void)
{
	static const struct {
		const char	*fields;	/* the client's limit fields */
		long		 cap;		/* the model's max_tokens */
		const char	*field;		/* the provider's field */
		int64_t		 want;
	} cases[] = {
		{ "", 4096, "max_tokens", 4096 },
		{ ",\"max_tokens\":100", 4096, "max_tokens", 100 },
		{ ",\"max_tokens\":100000", 4096, "max_tokens", 4096 },
		{ ",\"max_tokens\":null", 4096, "max_tokens", 4096 },
		{ ",\"max_completion_tokens\":null,\"max_tokens\":null", 300,
		  "max_tokens", 300 },
		{ ",\"max_completion_tokens\":50", 4096, "max_tokens", 50 },
		{ ",\"max_completion_tokens\":1,\"max_tokens\":100000", 4096,
		  "max_tokens", 1 },
		{ ",\"max_completion_tokens\":100000,\"max_tokens\":7", 4096,
		  "max_tokens", 7 },
		{ ",\"max_tokens\":9", 0, "max_completion_tokens", 9 },
		{ "", 0, "max_completion_tokens", 4096 },
	};
	static const char msgs[] = "\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]";
	const char		*other;
	struct route		 r;
	struct provider_call	 call;
	struct json_object	*b;
	char			 req[256];
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		route_init(&r, "https://api.openai.com/v1", "sk-test",
		    cases[i].cap);
		r.p.max_tokens_field = (char *)cases[i].field;
		other = strcmp(cases[i].field, "max_tokens") == 0 ?
		    "max_completion_tokens" : "max_tokens";
		snprintf(req, sizeof(req), "{\"model\":\"gpt-4o\",%s%s}",
		    msgs, cases[i].fields);
		b = build(&r, req, 0, &call);
		is_int(json_object_get_int64(get(b, cases[i].field)),
		    cases[i].want, "%s cap %ld: %s %lld", cases[i].fields,
		    cases[i].cap, cases[i].field, (long long)cases[i].want);
		ok(!has(b, other), "%s cap %ld: no %s forwarded",
		    cases[i].fields, cases[i].cap, other);
		json_object_put(b);
		provider_call_free(&call);
	}
}

static void
test_url_headers(void)
{
	static const struct {
		const char	*base;
		const char	*url;
	} urls[] = {
		{ "https://api.deepseek.com/",
		  "https://api.deepseek.com/chat/completions" },
		{ "http://127.0.0.1:11434/v1//",
		  "http://127.0.0.1:11434/v1/chat/completions" },
		{ "https://openrouter.ai/api/v1",
		  "https://openrouter.ai/api/v1/chat/completions" },
	};
	struct route		 r;
	struct provider_call	 call;
	struct json_object	*b;
	size_t			 i;

	for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
		route_init(&r, urls[i].base, NULL, 0);
		b = build(&r, "{\"model\":\"m\",\"messages\":[]}", 0, &call);
		is_str(call.url.data, urls[i].url, "one slash after %s",
		    urls[i].base);
		if (i == 0)
			is_int(count_headers(&call, "Authorization"), 0,
			    "no key: no Authorization header");
		json_object_put(b);
		provider_call_free(&call);
	}
	route_init(&r, "https://api.openai.com/v1", "sk-test", 0);
	provider_call_init(&call, 1024);
	is_int(provider_url(&call, &r.p, "models"), 0, "provider_url");
	is_str(call.url.data, "https://api.openai.com/v1/models",
	    "a path without a slash gets one");
	is_int(provider_headers(&call, &r.p, "x-api-key", ""), 0,
	    "provider_headers with another key header");
	ok(has_header(&call, "x-api-key: sk-test"), "x-api-key: <key>");
	provider_call_free(&call);
	ok(call.headers == NULL && call.url.data == NULL,
	    "provider_call_free clears the call");
}

/* chat_response over a body; out is NULL on failure. */
static int
respond(const struct route *r, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	*out = NULL;
	memset(u, 0, sizeof(*u));
	memset(e, 0, sizeof(*e));
	return provider_openai.chat_response(&r->c, body, len, out, u, e);
}

static void
test_response(void)
{
	static const char *const malformed[] = {
		"", "not json", "{", "[]", "\"choices\"", "{\"id\":\"x\"}",
		"{\"choices\":{}}", "{\"choices\":[]",
		"<html><body>502 Bad Gateway</body></html>",
	};
	struct route		 r;
	struct json_object	*o;
	struct usage		 u;
	struct provider_error	 e;
	const char		*s;
	char			*file;
	size_t			 n = 0, i;

	route_init(&r, "https://api.openai.com/v1", "sk-test", 0);
	if ((file = slurp("openai-nonstream-tool-calls.json", &n)) == NULL) {
		ok(0, "fixture readable");
		return;
	}
	is_int(respond(&r, file, n, &o, &u, &e), 0,
	    "tool-call response accepted");
	is_str(get_str(o, "model"), "gpt-4o",
	    "model rewritten to the served name");
	is_str(get_str(o, "id"), "chatcmpl-Dx9mockNonStr04", "id kept");
	is_str(get_str(o, "choices.0.message.tool_calls.0.function.name"),
	    "get_weather", "tool call kept");
	is_str(get_str(o, "choices.0.finish_reason"), "tool_calls",
	    "finish_reason kept");
	is_int(u.known, 1, "usage known");
	is_int(u.prompt, 76, "prompt tokens");
	is_int(u.completion, 24, "completion tokens");
	is_int(u.cached, 0, "no cached tokens");
	json_object_put(o);
	free(file);

	s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
	    "\"completion_tokens\":5,\"prompt_tokens_details\":"
	    "{\"cached_tokens\":40}}}";
	is_int(respond(&r, s, strlen(s), &o, &u, &e), 0,
	    "response with cached tokens");
	ok(u.known && u.prompt == 100 && u.completion == 5 && u.cached == 40,
	    "cached tokens from prompt_tokens_details");
	json_object_put(o);

	/* DeepSeek: hit + miss = prompt_tokens, no prompt_tokens_details. */
	s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
	    "\"completion_tokens\":5,\"prompt_cache_hit_tokens\":64,"
	    "\"prompt_cache_miss_tokens\":36}}";
	is_int(respond(&r, s, strlen(s), &o, &u, &e), 0,
	    "response with DeepSeek's cache fields");
	ok(u.prompt == 100 && u.cached == 64 && u.cache_write == 0,
	    "cached tokens from prompt_cache_hit_tokens");
	json_object_put(o);
	s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
	    "\"completion_tokens\":5,\"prompt_tokens_details\":"
	    "{\"cached_tokens\":10},\"prompt_cache_hit_tokens\":64}}";
	is_int(respond(&r, s, strlen(s), &o, &u, &e), 0, "both forms");
	is_int(u.cached, 10, "prompt_tokens_details wins over the hit count");
	json_object_put(o);
	/* An llmgate upstream says what it wrote to a cache. */
	s = "{\"choices\":[],\"usage\":{\"prompt_tokens\":100,"
	    "\"completion_tokens\":5,\"prompt_tokens_details\":"
	    "{\"cached_tokens\":0,\"cache_creation_tokens\":90}}}";
	is_int(respond(&r, s, strlen(s), &o, &u, &e), 0,
	    "response with cache_creation_tokens");
	ok(u.cached == 0 && u.cache_write == 90,
	    "cache writes from prompt_tokens_details.cache_creation_tokens");
	json_object_put(o);

	s = "{\"choices\":[{\"message\":{\"content\":\"hi\"}}]}";
	is_int(respond(&r, s, strlen(s), &o, &u, &e), 0,
	    "response without usage");
	is_int(u.known, 0, "usage unknown");
	json_object_put(o);

	for (i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		is_int(respond(&r, malformed[i], strlen(malformed[i]), &o, &u,
		    &e), -1, "malformed body %zu refused", i);
		ok(o == NULL, "malformed body %zu: no output", i);
		is_str(e.code, "bad_upstream_response",
		    "malformed body %zu: code", i);
		like(e.message, "'openai'", "malformed body %zu: names the "
		    "provider", i);
		ok(strchr(e.message, '<') == NULL,
		    "malformed body %zu: body not echoed", i);
	}
}

/* Chunks a stream emitted, as JSON text. */
struct sink {
	char	*chunk[MAX_CHUNKS];
	size_t	 n;
	int	 ret;		/* what emit returns */
};

static int
collect(void *ctx, struct json_object *o)
{
	struct sink	*k = ctx;

	if (k->n < MAX_CHUNKS)
		k->chunk[k->n] = strdup(json_object_to_json_string_ext(o,
		    JSON_C_TO_STRING_PLAIN));
	k->n++;
	return k->ret;
}

static void
sink_free(struct sink *k)
{
	size_t	 i;

	for (i = 0; i < k->n && i < MAX_CHUNKS; i++)
		free(k->chunk[i]);
	memset(k, 0, sizeof(*k));
}

/* The i-th chunk parsed again; the caller frees it. */
static struct json_object *
chunk(const struct sink *k, size_t i)
{
	if (i >= k->n || i >= MAX_CHUNKS || k->chunk[i] == NULL)
		return NULL;
	return json_tokener_parse(k->chunk[i]);
}

/* A stream being relayed: adapter state, its sink, the last return. */
struct relay {
	struct stream_state	 st;
	struct sink		 sink;
	int			 events;
};

static void
relay_init(struct relay *r, const struct route *rt, int include_usage)
{
	memset(r, 0, sizeof(*r));
	r->st.emit = collect;
	r->st.ctx = &r->sink;
	r->st.cand = &rt->c;
	r->st.include_usage = include_usage;
}

static int
on_sse(void *ctx, const struct sse_event *ev)
{
	struct relay	*r = ctx;

	if (ev->comment)
		return 0;
	r->events++;
	return provider_openai.chat_event(&r->st, ev);
}

/* Relay a fixture stream; returns the parser's result. */
static int
relay_file(struct relay *r, const char *name)
{
	struct sse_parser	 p;
	char			*s;
	size_t			 n = 0;
	int			 rc;

	if ((s = slurp(name, &n)) == NULL)
		return -100;
	sse_init(&p, 1 << 16);
	if ((rc = sse_feed(&p, s, n, on_sse, r)) == 0)
		rc = sse_finish(&p, on_sse, r);
	sse_free(&p);
	free(s);
	return rc;
}

/* One event whose data is s. */
static int
event(struct relay *r, const char *s)
{
	struct sse_event	 ev;

	ev.event = "";
	ev.data = s;
	ev.data_len = strlen(s);
	ev.comment = 0;
	return provider_openai.chat_event(&r->st, &ev);
}

static void
test_stream_usage(int include_usage)
{
	const char		*how = include_usage ? "usage asked" :
				    "usage not asked";
	struct route		 rt;
	struct relay		 r;
	struct json_object	*o;
	size_t			 i, want = include_usage ? 10 : 9;
	int			 model_ok = 1, usage_key = 0;

	route_init(&rt, "https://api.openai.com/v1", "sk-test", 0);
	relay_init(&r, &rt, include_usage);
	if (relay_file(&r, "openai-stream-include-usage.sse") != 0) {
		ok(0, "%s: stream relayed", how);
		sink_free(&r.sink);
		return;
	}
	ok(1, "%s: stream relayed", how);
	is_int(r.events, 11, "%s: eleven events", how);
	is_int(r.sink.n, want, "%s: %zu chunks emitted", how, want);
	for (i = 0; i < r.sink.n; i++) {
		o = chunk(&r.sink, i);
		if (o == NULL || get_str(o, "model") == NULL ||
		    strcmp(get_str(o, "model"), "gpt-4o") != 0)
			model_ok = 0;
		if (o != NULL && has(o, "usage"))
			usage_key++;
		json_object_put(o);
	}
	ok(model_ok, "%s: every chunk names the served model", how);
	if (include_usage) {
		is_int(usage_key, 10, "usage asked: the usage key kept");
		o = chunk(&r.sink, 9);
		ok(json_object_is_type(get(o, "choices"), json_type_array) &&
		    json_object_array_length(get(o, "choices")) == 0,
		    "usage asked: last chunk is the usage chunk");
		is_int(json_object_get_int(get(o, "usage.prompt_tokens")), 12,
		    "usage asked: with its prompt_tokens");
		json_object_put(o);
	} else
		is_int(usage_key, 0, "usage not asked: no chunk has usage");
	o = chunk(&r.sink, 1);
	is_str(get_str(o, "choices.0.delta.content"), "Hello",
	    "%s: content carried", how);
	is_str(get_str(o, "id"), "chatcmpl-Dx9mockUsage002", "%s: id kept",
	    how);
	json_object_put(o);
	ok(r.st.usage.known && r.st.usage.prompt == 12 &&
	    r.st.usage.completion == 7 && r.st.usage.cached == 0,
	    "%s: usage 12/7 captured", how);
	is_str(r.st.finish, "stop", "%s: finish_reason recorded", how);
	is_int(r.st.done, 1, "%s: [DONE] seen", how);
	is_int(r.st.failed, 0, "%s: not failed", how);
	is_int(r.st.chars, 22, "%s: 22 content characters", how);
	sink_free(&r.sink);
}

static void
test_stream_events(void)
{
	struct route		 rt;
	struct relay		 r;
	struct json_object	*o;

	route_init(&rt, "https://api.deepseek.com", "sk-test", 0);

	relay_init(&r, &rt, 1);
	is_int(relay_file(&r, "openai-stream-text.sse"), 0,
	    "stream without usage relayed");
	is_int(r.sink.n, 10, "ten chunks");
	is_int(r.st.usage.known, 0, "no usage");
	ok(r.st.done && strcmp(r.st.finish, "stop") == 0, "done and stop");
	is_int(r.st.chars, 8, "'1, 2, 3.' is eight characters");
	sink_free(&r.sink);

	relay_init(&r, &rt, 0);
	is_int(event(&r, "{\"id\":\"u-1\",\"object\":\"chat.completion.chunk\","
	    "\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":null,\"reasoning_content\":\"Let me "
	    "think\"},\"finish_reason\":null}]}"), 0, "reasoning chunk");
	is_int(event(&r, "{\"id\":\"u-1\",\"object\":\"chat.completion.chunk\","
	    "\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":\"Hi\",\"reasoning_content\":null},"
	    "\"finish_reason\":\"length\"}]}"), 0, "answer chunk");
	is_int(r.sink.n, 2, "both emitted");
	o = chunk(&r.sink, 0);
	is_str(get_str(o, "choices.0.delta.reasoning_content"), "Let me think",
	    "reasoning_content preserved");
	is_str(get_str(o, "model"), "gpt-4o", "model rewritten");
	json_object_put(o);
	is_int(r.st.chars, 14, "reasoning and content characters counted");
	is_str(r.st.finish, "length", "finish_reason length");
	is_int(event(&r, "{\"choices\":[],\"usage\":{\"prompt_tokens\":3,"
	    "\"completion_tokens\":4}}"), 0, "usage-only chunk");
	is_int(r.sink.n, 2, "usage-only chunk not emitted when not asked");
	ok(r.st.usage.known && r.st.usage.prompt == 3 &&
	    r.st.usage.completion == 4, "but its usage captured");
	is_str(r.st.finish, "length", "an empty choices keeps finish_reason");
	is_int(event(&r, "[DONE]"), 0, "[DONE]");
	ok(r.st.done && r.sink.n == 2, "[DONE] sets done, emits nothing");
	sink_free(&r.sink);

	/* OpenRouter's mid-stream error: an error object beside choices. */
	relay_init(&r, &rt, 0);
	is_int(event(&r, "{\"id\":\"gen-1\","
	    "\"object\":\"chat.completion.chunk\","
	    "\"error\":{\"code\":502,\"message\":\"Provider disconnected\"},"
	    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\"},"
	    "\"finish_reason\":\"error\"}]}"), -1, "error chunk: -1");
	is_int(r.st.failed, 1, "error chunk: failed");
	is_str(r.st.err.message, "Provider disconnected",
	    "error chunk: message copied");
	is_str(r.st.err.code, "502", "error chunk: integer code as text");
	is_str(r.st.err.type, "upstream_error", "error chunk: type");
	is_int(r.sink.n, 0, "error chunk: nothing emitted");
	sink_free(&r.sink);

	relay_init(&r, &rt, 0);
	is_int(event(&r, "{\"error\":{\"message\":\"The server had an error\","
	    "\"type\":\"server_error\",\"param\":null,\"code\":null}}"), -1,
	    "OpenAI error event: -1");
	ok(r.st.failed && strcmp(r.st.err.type, "server_error") == 0 &&
	    strcmp(r.st.err.message, "The server had an error") == 0,
	    "OpenAI error event: type and message");
	sink_free(&r.sink);

	relay_init(&r, &rt, 0);
	is_int(event(&r, "{\"error\":null,\"choices\":[{\"index\":0,"
	    "\"delta\":{\"content\":\"ok\"}}]}"), 0,
	    "\"error\":null is no error");
	ok(!r.st.failed && r.sink.n == 1, "and the chunk is relayed");
	sink_free(&r.sink);

	relay_init(&r, &rt, 0);
	is_int(event(&r, "{\"choices\":[{\"delta\":"), -1,
	    "truncated event: -1");
	is_str(r.st.err.code, "bad_upstream_response", "truncated event: code");
	like(r.st.err.message, "'openai'", "truncated event: names provider");
	is_int(r.st.failed, 0, "malformed is not an upstream error event");
	is_int(event(&r, "[1,2]"), -1, "an array event: -1");
	is_int(event(&r, ""), -1, "an empty event: -1");
	is_int(r.sink.n, 0, "nothing emitted");
	sink_free(&r.sink);

	relay_init(&r, &rt, 0);
	r.sink.ret = 5;
	is_int(event(&r, "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"), 5,
	    "emit's non-zero value is returned");
	sink_free(&r.sink);
}

static void
test_errors(void)
{
	struct provider_error	 e;
	const char		*s;
	char			*file, big[2048];
	size_t			 n = 0;

	if ((file = slurp("openai-error-404.json", &n)) != NULL) {
		provider_error_openai(404, file, n, &e);
		is_str(e.message, "The model `gpt-nope` does not exist or you "
		    "do not have access to it.", "OpenAI 404: message");
		is_str(e.type, "invalid_request_error", "OpenAI 404: type");
		is_str(e.code, "model_not_found", "OpenAI 404: code");
		is_str(e.param, "", "OpenAI 404: null param is empty");
		free(file);
	} else
		ok(0, "error fixture readable");

	s = "{\"error\":{\"message\":\"x\",\"code\":400},"
	    "\"user_id\":\"user_1\"}";
	provider_error_openai(400, s, strlen(s), &e);
	is_str(e.message, "x", "OpenRouter: message");
	is_str(e.code, "400", "OpenRouter: integer code as \"400\"");
	is_str(e.type, "invalid_request_error", "OpenRouter: type from status");

	s = "{\"error\":\"model not found\"}";
	provider_error_openai(404, s, strlen(s), &e);
	is_str(e.message, "model not found", "Ollama: string error");
	is_str(e.code, "", "Ollama: no code");

	s = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
	    "\"message\":\"Overloaded\"}}";
	provider_error_openai(529, s, strlen(s), &e);
	ok(strcmp(e.type, "overloaded_error") == 0 &&
	    strcmp(e.message, "Overloaded") == 0, "Anthropic shape");

	s = "<html><head><title>502 Bad Gateway</title></head><body>"
	    "<center><h1>502 Bad Gateway</h1></center></body></html>\r\n";
	provider_error_openai(502, s, strlen(s), &e);
	is_str(e.message, "upstream answered HTTP 502",
	    "HTML: generic message");
	is_str(e.type, "upstream_error", "HTML: upstream_error for 5xx");
	ok(strchr(e.message, '<') == NULL && strstr(e.message, "Bad") == NULL,
	    "HTML: nothing of the body echoed");

	provider_error_openai(503, "", 0, &e);
	is_str(e.message, "upstream answered HTTP 503", "empty body: generic");
	s = "{\"detail\":\"Not Found\"}";
	provider_error_openai(404, s, strlen(s), &e);
	ok(strcmp(e.message, "upstream answered HTTP 404") == 0 &&
	    strcmp(e.type, "invalid_request_error") == 0,
	    "JSON without error: generic 4xx");
	s = "{\"error\":{\"message\":\"cut";
	provider_error_openai(500, s, strlen(s), &e);
	is_str(e.message, "upstream answered HTTP 500",
	    "truncated JSON: generic");
	s = "{\"error\":42}";
	provider_error_openai(500, s, strlen(s), &e);
	is_str(e.message, "upstream answered HTTP 500",
	    "error a number: generic");

	memset(big, 'm', sizeof(big));
	memcpy(big, "{\"error\":{\"message\":\"", 21);
	memcpy(big + sizeof(big) - 4, "\"}}", 4);
	provider_error_openai(400, big, strlen(big), &e);
	is_int(strlen(e.message), sizeof(e.message) - 1,
	    "a long message is cut to fit");
	ok(provider_openai.error == provider_error_openai,
	    "the adapter's error slot");
}

/* Providers whose protocol the build lacks are marked unavailable. */
static void
test_check(void)
{
	static const char text[] =
	    "[gateway]\ndata_dir = /tmp\n"
	    "[provider openai]\nbase_url = http://a\napi_key = none\n"
	    "[provider claude]\ntype = anthropic\nbase_url = http://b\n"
	    "api_key = none\n"
	    "[provider gone]\ntype = gemini\nbase_url = http://c\n"
	    "api_key = env:LLMGATE_UNIT_PROVIDER_UNSET\n";
	struct config	*c;
	char		 path[64], err[512];
	size_t		 n = sizeof(text) - 1;
	int		 fd;

	ok(provider_ops_for(PROVIDER_OPENAI) == &provider_openai,
	    "openai ops");
	ok(provider_ops_for(PROVIDER__MAX) == NULL, "out of range: NULL");
	snprintf(path, sizeof(path), "/tmp/llmgate-unit-XXXXXX");
	if ((fd = mkstemp(path)) == -1 || write(fd, text, n) != (ssize_t)n) {
		ok(0, "cannot write a config");
		return;
	}
	close(fd);
	unsetenv("LLMGATE_UNIT_PROVIDER_UNSET");
	c = config_load(path, err, sizeof(err));
	unlink(path);
	ok(c != NULL, "config loads (%s)", c ? "" : err);
	if (c == NULL)
		return;
	provider_check(c);
	is_int(c->providers[0].available, 1, "openai stays available");
	if (provider_ops_for(PROVIDER_ANTHROPIC) == NULL) {
		is_int(c->providers[1].available, 0,
		    "anthropic without an adapter: unavailable");
		like(c->providers[1].unavailable,
		    "'anthropic' is not supported",
		    "with the reason");
	} else
		ok(c->providers[1].available, "anthropic adapter present");
	like(c->providers[2].unavailable, "LLMGATE_UNIT_PROVIDER_UNSET",
	    "an already unavailable provider keeps its reason");
	config_free(c);
}

/* provider_redact: what upstream error text may quote never passes. */
static void
test_redact(void)
{
	static const struct {
		const char	*in, *want, *what;
	} cases[] = {
		{ "Incorrect API key provided: sk-abc...xyz. You can find "
		  "your API key at https://platform.openai.com/account/api-keys.",
		  "Incorrect API key provided: [redacted]. You can find "
		  "your API key at https://platform.openai.com/account/api-keys.",
		  "OpenAI's masked key" },
		{ "bad header Authorization: Bearer abcdefgh12345678 given",
		  "bad header Authorization: Bearer [redacted] given",
		  "Authorization: Bearer value" },
		{ "{\"authorization\":\"Api-Key AQVNxyzxyzxyz123\"}",
		  "{\"authorization\":\"Api-Key [redacted]\"}",
		  "a quoted Yandex Api-Key" },
		{ "x-api-key: QWERTYUIOP1234 is invalid",
		  "x-api-key: [redacted] is invalid", "x-api-key header" },
		{ "url ...?key=AIzaSyA1234567890abcdef failed",
		  "url ...?key=[redacted] failed", "key= query parameter" },
		{ "token key-0123456789abcdef expired",
		  "token [redacted] expired", "key-... token" },
		{ "the configured MYSECRETKEY99 is wrong (MYSECRETKEY99)",
		  "the configured [redacted] is wrong ([redacted])",
		  "the provider's own key, anywhere" },
		{ "authorization failed: quota exceeded for key-value store",
		  "authorization failed: quota exceeded for key-value store",
		  "ordinary words pass" },
		{ "Rate limit reached for gpt-4o in organization org-123 on "
		  "tokens per min (TPM): Limit 30000, Used 29000.",
		  "Rate limit reached for gpt-4o in organization org-123 on "
		  "tokens per min (TPM): Limit 30000, Used 29000.",
		  "a rate-limit message passes whole" },
		{ "risk-management sk-short",
		  "risk-management sk-short", "short sk- words pass" },
	};
	struct provider_cfg	 p;
	struct provider_error	 e;
	char			 buf[512], small[16];
	size_t			 i;

	memset(&p, 0, sizeof(p));
	p.api_key = "MYSECRETKEY99";
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(buf, sizeof(buf), "%s", cases[i].in);
		provider_redact(buf, sizeof(buf), &p);
		is_str(buf, cases[i].want, "redact: %s", cases[i].what);
	}
	snprintf(small, sizeof(small), "sk-0123456789ab");
	provider_redact(small, sizeof(small), NULL);
	is_str(small, "[redacted]", "redact: without a provider; fits");
	snprintf(small, sizeof(small), "ab MYSECRETKEY9");
	provider_redact(small, sizeof(small), &p);
	is_str(small, "ab MYSECRETKEY9", "redact: a key prefix is not the key");
	snprintf(small, sizeof(small), "%s", "Bearer ");
	provider_redact(small, sizeof(small), &p);
	is_str(small, "Bearer ", "redact: a label at the end");

	provider_error_set(&e, "invalid_request_error", "sk-0123456789abcdef",
	    "key MYSECRETKEY99");
	snprintf(e.param, sizeof(e.param), "Bearer zzzzzzzzzzzz");
	provider_error_redact(&e, &p);
	ok(strstr(e.message, "MYSECRETKEY99") == NULL &&
	    strstr(e.code, "0123456789") == NULL &&
	    strstr(e.param, "zzzz") == NULL, "redact: every field of an error");

	/* A pool: every key, the longest first when one begins another. */
	{
		char	*pool[3] = { "MYSECRETKEY99", "POOLKEY2xyz",
		    "POOLKEY2xyz-longer" };

		p.keys = pool;
		p.nkeys = 3;
		snprintf(buf, sizeof(buf), "sent POOLKEY2xyz, then "
		    "POOLKEY2xyz-longer, then MYSECRETKEY99.");
		provider_redact(buf, sizeof(buf), &p);
		is_str(buf, "sent [redacted], then [redacted], then [redacted].",
		    "redact: every key of a pool, whole");
		p.api_key = NULL;
		snprintf(buf, sizeof(buf), "key 3 POOLKEY2xyz-longer");
		provider_redact(buf, sizeof(buf), &p);
		is_str(buf, "key 3 [redacted]", "redact: pool keys without "
		    "api_key");
		p.keys = NULL;
		p.nkeys = 0;
	}
}

/*
 * Found by t/fuzz: an upstream's token counts near INT64_MAX overflowed the
 * sums (prompt + cached, prompt + completion) into negative, unbilled
 * counts. Every adapter clamps a count to MONEY_TOKENS_MAX as it reads it.
 */
static int
discard_chunk(void *ctx, struct json_object *chunk)
{
	(void)ctx;
	(void)json_object_to_json_string(chunk);
	return 0;
}

static int
huge_event(void *ctx, const struct sse_event *ev)
{
	struct stream_state	*st = ctx;

	if (ev->comment)
		return 0;
	return provider_ops_for(st->cand->provider->type)->chat_event(st, ev);
}

static void
test_huge_usage(void)
{
	static const char *const streams[PROVIDER__MAX] = {
		[PROVIDER_OPENAI] = "data: {\"id\":\"x\",\"choices\":[],\"usage\":"
		    "{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":"
		    "9223372036854775807,\"prompt_tokens_details\":{\"cached_tokens\":"
		    "9223372036854775807}}}\n\n",
		[PROVIDER_ANTHROPIC] = "event: message_start\ndata: {\"type\":"
		    "\"message_start\",\"message\":{\"id\":\"m\",\"usage\":{"
		    "\"input_tokens\":9223372036854775807,\"cache_read_input_tokens\":"
		    "9223372036854775807,\"cache_creation_input_tokens\":"
		    "9223372036854775807,\"output_tokens\":9223372036854775807}}}\n\n",
		[PROVIDER_GEMINI] = "data: {\"usageMetadata\":{\"promptTokenCount\":"
		    "9223372036854775807,\"toolUsePromptTokenCount\":9223372036854775807,"
		    "\"candidatesTokenCount\":9223372036854775807,\"thoughtsTokenCount\":"
		    "9223372036854775807}}\n\n",
		[PROVIDER_GIGACHAT] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":"
		    "9223372036854775807,\"completion_tokens\":9223372036854775807,"
		    "\"precached_prompt_tokens\":9223372036854775807}}\n\n",
		[PROVIDER_YANDEX] = "{\"result\":{\"alternatives\":[],\"usage\":{"
		    "\"inputTextTokens\":9223372036854775807,\"completionTokens\":"
		    "\"999999999999999999\"}}}\n",
	};
	static struct provider_cfg	 pc = { .name = "huge" };
	struct candidate		 cd;
	struct stream_state		 st;
	struct sse_parser		 p;
	const struct provider_ops	*ops;
	int				 t;

	for (t = 0; t < PROVIDER__MAX; t++) {
		if ((ops = provider_ops_for((enum provider_type)t)) == NULL)
			continue;
		pc.type = (enum provider_type)t;
		memset(&cd, 0, sizeof(cd));
		cd.provider = &pc;
		snprintf(cd.name, sizeof(cd.name), "huge");
		memset(&st, 0, sizeof(st));
		st.emit = discard_chunk;
		st.cand = &cd;
		sse_init(&p, 65536);
		sse_set_ndjson(&p, ops->framing == FRAMING_NDJSON);
		sse_feed(&p, streams[t], strlen(streams[t]), huge_event, &st);
		sse_finish(&p, huge_event, &st);
		sse_free(&p);
		ok(st.usage.known && st.usage.prompt > 0 &&
		    st.usage.prompt <= 3 * MONEY_TOKENS_MAX &&
		    st.usage.completion > 0 &&
		    st.usage.completion <= 2 * MONEY_TOKENS_MAX,
		    "%s: huge token counts clamped (prompt %lld, completion %lld)",
		    ops->type, (long long)st.usage.prompt,
		    (long long)st.usage.completion);
	}
}

/* The injected clock of the key pool test. */
static int64_t	 pool_now = 1700000000000LL;

static int64_t
pool_clock(void)
{
	return pool_now;
}

/*
 * provider_key_pick and provider_key_report: keys in turn; a refused key
 * is set aside for key_cooldown_s in the shared region (a second config,
 * as another process would have, sees it), then probed by one request.
 */
static void
test_key_pool(void)
{
	struct config		 cfg, other;
	struct provider_cfg	 p;
	struct provider_key	 k, k2;
	char			*keys[3] = { "sk-pool-aaaaaaaaaaaa",
	    "sk-pool-bbbbbbbbbbbb", "sk-pool-cccccccccccc" };
	char			*fp[3] = { "sha256:00000001", "sha256:00000002",
	    "sha256:00000003" };
	char			 dir[] = "/tmp/llmgate-unit-pool-XXXXXX", path[64];
	int			 i, seen[3] = { 0, 0, 0 }, rc;

	if (mkdtemp(dir) == NULL) {
		ok(0, "key pool: a temporary directory");
		return;
	}
	log_threshold = LOG_ERROR;
	breaker_set_clock(pool_clock);
	memset(&cfg, 0, sizeof(cfg));
	cfg.gw.data_dir = dir;
	other = cfg;
	memset(&p, 0, sizeof(p));
	p.name = "pooled";
	p.keys = keys;
	p.key_fp = fp;
	p.nkeys = 3;
	p.api_key = keys[0];
	p.key_cooldown = 60;
	p.connect_timeout = 1000;
	p.first_byte_timeout = 10;

	ok(provider_key_pool(&p), "three keys are a pool");
	for (i = 0; i < 6; i++) {
		rc = provider_key_pick(&cfg, &p, 0, (uint64_t)i, &k);
		if (rc == 0 && k.index >= 0)
			seen[k.index]++;
		provider_key_report(&k, KEY_OK, NULL);
	}
	ok(seen[0] == 2 && seen[1] == 2 && seen[2] == 2,
	    "six turns: each key twice (%d %d %d)", seen[0], seen[1], seen[2]);
	ok(provider_key_secret(&k) == NULL, "a reported key is spent");

	/* Key 2 refused: set aside, for this process and any other. */
	ok(provider_key_pick(&cfg, &p, 0, 1, &k) == 0 && k.index == 1,
	    "turn 1: key 2");
	provider_key_report(&k, KEY_REFUSED, "HTTP 401");
	for (i = 0, rc = 0; i < 30; i++) {
		if (provider_key_pick(&other, &p, 0, (uint64_t)i, &k2) == 0 &&
		    k2.index == 1)
			rc = 1;
		provider_key_report(&k2, KEY_NEUTRAL, NULL);
	}
	is_int(rc, 0, "30 turns: key 2 never picked while set aside");
	ok(provider_key_pick(&cfg, &p, 0, 1, &k) == 0 && k.index == 2,
	    "its turn goes to the next key");
	provider_key_report(&k, KEY_OK, NULL);
	/* This request's own refusals: tried keys are not picked again. */
	ok(provider_key_pick(&cfg, &p, 1u << 2, 1, &k) == 0 && k.index == 0,
	    "key 3 refused in this request, key 2 set aside: key 1");
	provider_key_report(&k, KEY_NEUTRAL, NULL);
	rc = provider_key_pick(&cfg, &p, 1u << 0 | 1u << 2, 0, &k);
	ok(rc == -1 && k.index == -1, "every key refused or set aside: none");
	ok(k.retry_after > 0 && k.retry_after <= 60,
	    "back in %ld s", k.retry_after);

	/* After the cooldown: one probe; refused, set aside again. */
	pool_now += 61 * 1000;
	ok(provider_key_pick(&cfg, &p, 0, 1, &k) == 0 && k.index == 1,
	    "after key_cooldown_s: key 2 is probed");
	ok(provider_key_pick(&other, &p, 0, 1, &k2) == 0 && k2.index == 2,
	    "while its probe runs, others get the next key");
	provider_key_report(&k2, KEY_OK, NULL);
	provider_key_report(&k, KEY_REFUSED, "HTTP 401");
	ok(provider_key_pick(&cfg, &p, 0, 1, &k) == 0 && k.index == 2,
	    "the probe refused: set aside again");
	provider_key_report(&k, KEY_OK, NULL);
	pool_now += 61 * 1000;
	ok(provider_key_pick(&cfg, &p, 0, 1, &k) == 0 && k.index == 1,
	    "probed again later");
	provider_key_report(&k, KEY_OK, NULL);
	ok(provider_key_pick(&other, &p, 0, 1, &k) == 0 && k.index == 1,
	    "accepted: back in turn");
	provider_key_report(&k, KEY_OK, NULL);
	is_int(provider_key_slot(&p, "#key:sha256:00000003"), 2,
	    "a slot name -> its key");
	is_int(provider_key_slot(&p, "gpt-4o"), -2, "a deployment is no key");

	/* One key: no pool, no state. */
	p.nkeys = 1;
	ok(!provider_key_pool(&p) && provider_key_pick(&cfg, &p, 0, 5, &k) ==
	    0 && k.index == -1 && provider_key_secret(&k) == NULL,
	    "one key: the provider's api_key, untracked");
	breaker_set_clock(NULL);
	snprintf(path, sizeof(path), "%s/%s", dir, BREAKER_FILE);
	unlink(path);
	rmdir(dir);
}

int
main(void)
{
	test_request();
	test_max_tokens();
	test_url_headers();
	test_response();
	test_stream_usage(1);
	test_stream_usage(0);
	test_stream_events();
	test_errors();
	test_redact();
	test_check();
	test_huge_usage();
	test_key_pool();
	return tap_done();
}
