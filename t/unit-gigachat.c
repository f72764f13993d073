/*
 * unit-gigachat.c: the GigaChat adapter: the OAuth token (against a tiny
 * HTTP server in a thread), request, response and stream translation.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/log.h"
#include "../src/provider.h"
#include "fixture.h"
#include "loopback.h"
#include "tap.h"

#define slurp(name, len)	tap_slurp("gigachat", name, len)

#define AUTH_KEY	"Y2xpZW50OnNlY3JldA=="	/* base64 of client:secret */


/* What the token server answers. */
enum reply {
	REPLY_TOKEN,		/* {"access_token":"tok-N","expires_at":ms} */
	REPLY_LEGACY,		/* {"tok":"tok-N","exp":s} */
	REPLY_FIXED,		/* status and body as set */
};

/* A one-connection-at-a-time HTTP server standing in for the token endpoint. */
static struct loopback	 tokens;
static struct {
	pthread_mutex_t	 lock;
	int		 hits;
	char		 req[8192];	/* the last request, head and body */
	enum reply	 reply;
	long		 expires_in;	/* ms from now */
	int		 status;
	char		 body[512];
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
serve_one(int c)
{
	char		 in[8192], body[512];
	size_t		 n;
	struct timespec	 ts;
	long long	 ms;
	int		 status;

	n = loopback_read(c, in, sizeof(in));
	clock_gettime(CLOCK_REALTIME, &ts);
	ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	pthread_mutex_lock(&srv.lock);
	srv.hits++;
	memcpy(srv.req, in, n + 1);
	if (srv.reply == REPLY_TOKEN)
		snprintf(body, sizeof(body), "{\"access_token\":\"tok-%d\","
		    "\"expires_at\":%lld}", srv.hits, ms + srv.expires_in);
	else if (srv.reply == REPLY_LEGACY)
		snprintf(body, sizeof(body), "{\"tok\":\"tok-%d\",\"exp\":%lld}",
		    srv.hits, (ms + srv.expires_in) / 1000);
	else
		snprintf(body, sizeof(body), "%s", srv.body);
	status = srv.reply == REPLY_FIXED ? srv.status : 200;
	pthread_mutex_unlock(&srv.lock);
	loopback_reply(c, status, body);
}

static void
srv_set(enum reply reply, long expires_in, int status, const char *body)
{
	pthread_mutex_lock(&srv.lock);
	srv.reply = reply;
	srv.expires_in = expires_in;
	srv.status = status;
	snprintf(srv.body, sizeof(srv.body), "%s", body ? body : "");
	pthread_mutex_unlock(&srv.lock);
}

static int
srv_hits(void)
{
	int	 n;

	pthread_mutex_lock(&srv.lock);
	n = srv.hits;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

/* The value of header name in the last token request ("" when absent). */
static void
srv_header(const char *name, char *dst, size_t len)
{
	const char	*p, *e;
	char		 key[64];

	snprintf(key, sizeof(key), "\r\n%s: ", name);
	pthread_mutex_lock(&srv.lock);
	*dst = '\0';
	if ((p = strstr(srv.req, key)) != NULL &&
	    (e = strstr(p + strlen(key), "\r\n")) != NULL)
		snprintf(dst, len, "%.*s", (int)(e - p - strlen(key)),
		    p + strlen(key));
	pthread_mutex_unlock(&srv.lock);
}

static void
srv_body(char *dst, size_t len)
{
	const char	*p;

	pthread_mutex_lock(&srv.lock);
	p = strstr(srv.req, "\r\n\r\n");
	snprintf(dst, len, "%s", p ? p + 4 : "");
	pthread_mutex_unlock(&srv.lock);
}

static int
uuid_shaped(const char *s)
{
	size_t	 i;

	if (strlen(s) != 36)
		return 0;
	for (i = 0; i < 36; i++)
		if ((i == 8 || i == 13 || i == 18 || i == 23) ? s[i] != '-' :
		    !isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
			return 0;
	return s[14] == '4' && strchr("89ab", s[19]) != NULL;
}

static char	 auth_url[128];

static void
setup(void)
{
	fixture_candidate(PROVIDER_GIGACHAT, "giga",
	    "https://giga.example/api/v1/", AUTH_KEY, "giga", "GigaChat", 0,
	    "X-Client-ID: llmgate-test");
	prov.connect_timeout = 2000;
	prov.timeout = 900;
	snprintf(auth_url, sizeof(auth_url),
	    "http://127.0.0.1:%d/api/v2/oauth", tokens.port);
	prov.auth_url = auth_url;
}

/* Build a request for body; returns chat_request's value, *out the upstream body. */
static int
build(const struct candidate *c, const char *body, int stream,
    struct provider_call *call, struct json_object **out,
    struct provider_error *e)
{
	struct chat_in	 in;
	int		 rc;

	memset(&in, 0, sizeof(in));
	memset(e, 0, sizeof(*e));
	in.req = json_tokener_parse(body);
	in.client_max = provider_client_max(in.req);
	in.stream = stream;
	provider_call_init(call, 1 << 20);
	rc = provider_gigachat.chat_request(c, &in, call, e);
	if (out != NULL)
		*out = call->body.len > 0 ? json_tokener_parse(call->body.data) :
		    NULL;
	json_object_put(in.req);
	return rc;
}

#define SIMPLE	"{\"model\":\"giga\",\"messages\":[{\"role\":\"user\"," \
		"\"content\":\"hi\"}]}"

static void
test_request(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got, *want;
	char			*src, *exp, v[256], rq1[64];

	srv_set(REPLY_TOKEN, 30 * 60 * 1000L, 200, NULL);
	src = slurp("request_full.openai.json", NULL);
	exp = slurp("request_full.gigachat.json", NULL);
	ok(src != NULL && exp != NULL, "request fixtures found");
	if (src == NULL || exp == NULL)
		return;
	is_int(build(&cand, src, 0, &call, &got, &e), 0, "chat_request succeeds");
	want = json_tokener_parse(exp);
	ok(got != NULL && want != NULL && json_object_equal(got, want),
	    "upstream body equals request_full.gigachat.json");
	if (got == NULL || want == NULL || !json_object_equal(got, want))
		printf("#   got  %s\n", call.body.data ? call.body.data : "");
	is_str(call.url.data, "https://giga.example/api/v1/chat/completions",
	    "URL");
	ok(has_header(call.headers, "Authorization: Bearer tok-1"),
	    "bearer access token");
	ok(has_header(call.headers, "Content-Type: application/json"),
	    "JSON content type");
	ok(has_header(call.headers, "X-Client-ID: llmgate-test"),
	    "extra header");
	ok(!has_header(call.headers, "Authorization: Basic " AUTH_KEY),
	    "the authorization key stays off chat calls");
	json_object_put(got);
	json_object_put(want);
	provider_call_free(&call);
	free(src);
	free(exp);

	/* The token request itself. */
	is_int(srv_hits(), 1, "one token request");
	pthread_mutex_lock(&srv.lock);
	ok(strncmp(srv.req, "POST /api/v2/oauth HTTP/1.1\r\n", 29) == 0,
	    "POST to the auth_url path");
	pthread_mutex_unlock(&srv.lock);
	srv_header("Authorization", v, sizeof(v));
	is_str(v, "Basic " AUTH_KEY, "Basic authorization key");
	srv_header("RqUID", rq1, sizeof(rq1));
	ok(uuid_shaped(rq1), "RqUID is a UUID v4: %s", rq1);
	srv_header("Content-Type", v, sizeof(v));
	is_str(v, "application/x-www-form-urlencoded", "form content type");
	srv_header("Accept", v, sizeof(v));
	is_str(v, "application/json", "Accept: application/json");
	srv_body(v, sizeof(v));
	is_str(v, "scope=GIGACHAT_API_PERS", "default scope");

	/* Cached: no second token request. */
	is_int(build(&cand, SIMPLE, 1, &call, &got, &e), 0, "second request");
	is_int(srv_hits(), 1, "the token is cached");
	ok(has_header(call.headers, "Authorization: Bearer tok-1"),
	    "same token");
	ok(json_object_get_boolean(json_object_object_get(got, "stream")),
	    "stream: true");
	ok(json_object_object_get(got, "stream_options") == NULL,
	    "no stream_options");
	ok(json_object_object_get(got, "functions") == NULL, "no functions "
	    "without tools");
	json_object_put(got);
	provider_call_free(&call);

	/* 401: the token is dropped, the retry gets a new one. */
	is_int(provider_gigachat.auth_failed(&prov), 1, "auth_failed asks for "
	    "a retry");
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), 0, "request after 401");
	is_int(srv_hits(), 2, "a fresh token was requested");
	ok(has_header(call.headers, "Authorization: Bearer tok-2"),
	    "the fresh token is used");
	srv_header("RqUID", v, sizeof(v));
	ok(uuid_shaped(v) && strcmp(v, rq1) != 0, "a new RqUID per token "
	    "request");
	provider_call_free(&call);

	/* A token within 60 s of its expiry is refreshed. */
	provider_gigachat.auth_failed(&prov);
	srv_set(REPLY_TOKEN, 30 * 1000L, 200, NULL);
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), 0, "request with a "
	    "token about to expire");
	is_int(srv_hits(), 4, "refreshed 60 s before expires_at");
	ok(has_header(call.headers, "Authorization: Bearer tok-4"),
	    "the refreshed token is used");
	provider_call_free(&call);

	/* ... but when the refresh fails, the still valid one serves. */
	srv_set(REPLY_FIXED, 0, 503, "{\"message\":\"busy\"}");
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), 0, "failed refresh");
	ok(has_header(call.headers, "Authorization: Bearer tok-4"),
	    "the old token serves until it expires");
	provider_call_free(&call);

	/* The legacy {"tok","exp"} answer, exp in seconds. */
	provider_gigachat.auth_failed(&prov);
	srv_set(REPLY_LEGACY, 30 * 60 * 1000L, 200, NULL);
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), 0, "legacy token");
	is_int(srv_hits(), 6, "legacy token cached (exp read as seconds)");
	ok(has_header(call.headers, "Authorization: Bearer tok-6"),
	    "legacy token used");
	provider_call_free(&call);

	/* A changed scope needs a new token; scope goes in the form. */
	srv_set(REPLY_TOKEN, 30 * 60 * 1000L, 200, NULL);
	prov.scope = "GIGACHAT_API_CORP";
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	is_int(srv_hits(), 7, "new scope, new token");
	srv_body(v, sizeof(v));
	is_str(v, "scope=GIGACHAT_API_CORP", "configured scope sent");
}

static void
test_token_errors(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct provider_cfg	 other;
	struct candidate	 c2;
	char			 dead[128];
	int			 fd, port = 1, hits;

	/* Another provider has its own token. */
	other = prov;
	other.name = "giga-b2b";
	c2 = cand;
	c2.provider = &other;
	is_int(build(&c2, SIMPLE, 0, &call, NULL, &e), 0, "second provider");
	is_int(srv_hits(), 8, "its own token request");
	provider_call_free(&call);
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	ok(has_header(call.headers, "Authorization: Bearer tok-7"),
	    "the first provider keeps its token");
	provider_call_free(&call);

	/* OAuth refuses the scope. */
	provider_gigachat.auth_failed(&prov);
	srv_set(REPLY_FIXED, 0, 400, "{\"code\": 5, \"message\": \"scope is "
	    "empty\"}");
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2,
	    "no token: -2 (upstream auth unavailable)");
	is_str(e.code, "upstream_auth_error", "error code");
	ok(strstr(e.message, "HTTP 400 (scope is empty)") != NULL,
	    "message says why: %s", e.message);
	ok(call.url.len == 0 && call.body.len == 0, "nothing to send");
	provider_call_free(&call);
	hits = srv_hits();
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2,
	    "right after a failure: -2 again");
	is_int(srv_hits(), hits, "without asking the endpoint again");
	ok(strstr(e.message, "scope is empty") != NULL, "with the same reason");
	provider_call_free(&call);

	/* An answer quoting the key is not repeated. */
	provider_gigachat.auth_failed(&prov);
	srv_set(REPLY_FIXED, 0, 401, "{\"message\": \"bad key " AUTH_KEY "\"}");
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2, "401 from OAuth");
	ok(strstr(e.message, AUTH_KEY) == NULL, "the key is not echoed: %s",
	    e.message);
	provider_call_free(&call);

	srv_set(REPLY_FIXED, 0, 200, "{\"access_token\": \"a b\"}");
	provider_gigachat.auth_failed(&prov);
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2, "unusable token");
	ok(strstr(e.message, "no usable access_token") != NULL, "%s",
	    e.message);
	provider_call_free(&call);

	/* Nobody listening. */
	if ((fd = loopback_listen(&port)) != -1)
		close(fd);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/api/v2/oauth", port);
	prov.auth_url = dead;
	provider_gigachat.auth_failed(&prov);
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2,
	    "unreachable token endpoint");
	ok(strstr(e.message, dead) != NULL, "message names the endpoint: %s",
	    e.message);
	provider_call_free(&call);
	prov.auth_url = auth_url;

	prov.api_key = NULL;
	provider_gigachat.auth_failed(&prov);
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), -2, "no api_key");
	provider_call_free(&call);
	prov.api_key = AUTH_KEY;
	srv_set(REPLY_TOKEN, 30 * 60 * 1000L, 200, NULL);

	/* A new key (a reloaded config) gets its own token, and back. */
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	hits = srv_hits();
	prov.api_key = "b3RoZXI6a2V5";
	is_int(build(&cand, SIMPLE, 0, &call, NULL, &e), 0, "changed key");
	provider_call_free(&call);
	srv_header("Authorization", dead, sizeof(dead));
	is_str(dead, "Basic b3RoZXI6a2V5", "the new key is sent");
	prov.api_key = AUTH_KEY;
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	build(&cand, SIMPLE, 0, &call, NULL, &e);
	provider_call_free(&call);
	is_int(srv_hits(), hits + 2, "one token per change, then cached");
}

/* function_call of a request with tools and tool_choice tc (JSON or NULL). */
static char *
choice_for(const char *tc, int ntools)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got;
	char			 req[1024];
	char			*s;

	snprintf(req, sizeof(req), "{\"model\":\"giga\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\","
	    "\"function\":{\"name\":\"a\"}}%s]%s%s}", ntools > 1 ?
	    ",{\"type\":\"function\",\"function\":{\"name\":\"b\"}}" : "",
	    tc ? ",\"tool_choice\":" : "", tc ? tc : "");
	build(&cand, req, 0, &call, &got, &e);
	s = strdup(json_object_to_json_string_ext(json_object_object_get(got,
	    "function_call"), JSON_C_TO_STRING_PLAIN));
	json_object_put(got);
	provider_call_free(&call);
	return s;
}

static void
test_mapping(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*got, *m;
	char			*s;
	int			 hits;

	s = choice_for(NULL, 1);
	is_str(s, "\"auto\"", "tools without tool_choice: auto");
	free(s);
	s = choice_for("\"none\"", 1);
	is_str(s, "\"none\"", "none");
	free(s);
	s = choice_for("\"required\"", 1);
	is_str(s, "{\"name\":\"a\"}", "required with one tool: that tool");
	free(s);
	s = choice_for("\"required\"", 2);
	is_str(s, "\"auto\"", "required with two tools: auto");
	free(s);
	s = choice_for("{\"type\":\"function\",\"function\":{\"name\":\"b\"}}", 2);
	is_str(s, "{\"name\":\"b\"}", "a named function");
	free(s);

	/* temperature 0 becomes top_p 0; model and client max_tokens. */
	model.max_tokens = 500;
	cand.max_tokens = 500;
	build(&cand, "{\"model\":\"giga\",\"temperature\":0,\"top_p\":0.5,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 0, &call,
	    &got, &e);
	ok(json_object_object_get(got, "temperature") == NULL,
	    "no temperature 0");
	is_str(json_object_to_json_string(json_object_object_get(got, "top_p")),
	    "0", "top_p 0 instead");
	is_int(provider_json_int(got, "max_tokens"), 500, "model max_tokens");
	json_object_put(got);
	provider_call_free(&call);
	build(&cand, "{\"model\":\"giga\",\"max_completion_tokens\":9,"
	    "\"max_tokens\":8,\"messages\":[{\"role\":\"system\",\"content\":"
	    "\"s\"},{\"role\":\"user\",\"content\":null}]}", 0, &call, &got, &e);
	is_int(provider_json_int(got, "max_tokens"), 8,
	    "the smaller of max_completion_tokens and max_tokens is sent");
	m = json_object_object_get(got, "messages");
	is_int(json_object_array_length(m), 2, "system + user");
	is_str(provider_json_str(json_object_array_get_idx(m, 1), "content"),
	    "", "null content is empty text");
	json_object_put(got);
	provider_call_free(&call);
	model.max_tokens = 0;
	cand.max_tokens = 4096;

	/* What cannot be said to GigaChat. */
	provider_gigachat.auth_failed(&prov);
	hits = srv_hits();
	is_int(build(&cand, "{\"model\":\"giga\",\"messages\":[{\"role\":\"user\","
	    "\"content\":[{\"type\":\"image_url\",\"image_url\":{\"url\":"
	    "\"https://x/y.png\"}}]}]}", 0, &call, NULL, &e), -1,
	    "images refused");
	is_str(e.code, "unsupported_content", "error code");
	provider_call_free(&call);
	is_int(build(&cand, "{\"model\":\"giga\",\"messages\":[{\"role\":"
	    "\"assistant\",\"content\":null,\"tool_calls\":[{\"id\":\"c\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\",\"arguments\":"
	    "\"{oops\"}}]}]}", 0, &call, NULL, &e), -1, "bad arguments refused");
	ok(strstr(e.message, "JSON object") != NULL, "says why: %s", e.message);
	provider_call_free(&call);
	is_int(build(&cand, "{\"model\":\"giga\",\"messages\":[{\"role\":\"tool\","
	    "\"tool_call_id\":\"nope\",\"content\":\"1\"}]}", 0, &call, NULL,
	    &e), -1, "a result without its call refused");
	provider_call_free(&call);
	is_int(srv_hits(), hits, "no token request for refused requests");
}

static void
test_response(void)
{
	struct json_object	*out = NULL, *msg, *ch, *tc;
	struct provider_error	 e;
	struct usage		 u;
	const char		*s;
	char			*body;
	size_t			 len;

	body = slurp("chat_200.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_gigachat.chat_response(&cand, body, len, &out, &u, &e),
	    0, "text response translates");
	ch = json_object_array_get_idx(json_object_object_get(out, "choices"), 0);
	msg = json_object_object_get(ch, "message");
	is_str(provider_json_str(msg, "content"), "Hello.", "content");
	is_str(provider_json_str(msg, "role"), "assistant", "role");
	is_str(provider_json_str(ch, "finish_reason"), "stop", "finish stop");
	is_str(provider_json_str(out, "model"), "giga", "served model name");
	is_str(provider_json_str(out, "object"), "chat.completion", "object");
	s = provider_json_str(out, "id");
	ok(s != NULL && strncmp(s, "chatcmpl-", 9) == 0 && strlen(s) == 33,
	    "generated id: %s", s ? s : "(null)");
	is_int(provider_json_int(out, "created"), 1768996171, "created kept");
	is_int(u.prompt, 19, "prompt includes precached tokens");
	is_int(u.cached, 2, "precached -> cached");
	is_int(u.completion, 3, "completion tokens");
	is_int(provider_json_int(json_object_object_get(json_object_object_get(
	    out, "usage"), "prompt_tokens_details"), "cached_tokens"), 2,
	    "cached_tokens in the usage object");
	json_object_put(out);
	free(body);

	body = slurp("chat_function.json", &len);
	memset(&u, 0, sizeof(u));
	is_int(provider_gigachat.chat_response(&cand, body, len, &out, &u, &e),
	    0, "function call translates");
	ch = json_object_array_get_idx(json_object_object_get(out, "choices"), 0);
	msg = json_object_object_get(ch, "message");
	tc = json_object_array_get_idx(json_object_object_get(msg,
	    "tool_calls"), 0);
	is_str(provider_json_str(json_object_object_get(tc, "function"),
	    "name"), "weather_forecast", "function name");
	is_str(provider_json_str(json_object_object_get(tc, "function"),
	    "arguments"), "{\"location\":\"Москва\",\"num_days\":0}",
	    "arguments as a JSON string, UTF-8 kept");
	s = provider_json_str(tc, "id");
	ok(s != NULL && strncmp(s, "call_", 5) == 0 && strlen(s) == 29,
	    "generated tool call id: %s", s ? s : "(null)");
	is_str(provider_json_str(tc, "type"), "function", "type function");
	ok(json_object_object_get(msg, "content") == NULL,
	    "content null beside tool_calls");
	ok(json_object_object_get(msg, "function_call") == NULL &&
	    json_object_object_get(msg, "functions_state_id") == NULL,
	    "no GigaChat fields left");
	is_str(provider_json_str(ch, "finish_reason"), "tool_calls",
	    "function_call -> tool_calls");
	is_int(u.prompt, 138, "prompt tokens");
	json_object_put(out);
	free(body);

	s = "{\"choices\":[{\"message\":{\"content\":\"abc\",\"role\":"
	    "\"assistant\"},\"index\":0,\"finish_reason\":\"length\"}]}";
	provider_gigachat.chat_response(&cand, s, strlen(s), &out, &u, &e);
	is_str(provider_json_str(json_object_array_get_idx(
	    json_object_object_get(out, "choices"), 0), "finish_reason"),
	    "length", "length -> length");
	json_object_put(out);
	is_int(provider_gigachat.chat_response(&cand, "{\"x\":1}", 7, &out, &u,
	    &e), -1, "a body without choices is malformed");
}

/* Collects what a stream emits. */
struct sink {
	struct buf	 text;
	struct buf	 args;
	char		 id[64];
	char		 name[64];
	char		 chunk_ids[2][64];
	int		 chunks;
	int		 usage_chunks;
	int		 tool_deltas;
	int		 bad_object;
	char		 finish[32];
};

static int
collect(void *ctx, struct json_object *chunk)
{
	struct sink		*s = ctx;
	struct json_object	*ch, *d, *tcs, *tc, *fn;
	const char		*v;
	size_t			 i;

	if (s->chunks < 2 && (v = provider_json_str(chunk, "id")) != NULL)
		snprintf(s->chunk_ids[s->chunks], sizeof(s->chunk_ids[0]), "%s",
		    v);
	s->chunks++;
	if ((v = provider_json_str(chunk, "object")) == NULL ||
	    strcmp(v, "chat.completion.chunk") != 0)
		s->bad_object++;
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
		s->tool_deltas++;
		if (provider_json_int(tc, "index") != 0)
			continue;
		if ((v = provider_json_str(tc, "id")) != NULL)
			snprintf(s->id, sizeof(s->id), "%s", v);
		fn = json_object_object_get(tc, "function");
		if ((v = provider_json_str(fn, "name")) != NULL)
			snprintf(s->name, sizeof(s->name), "%s", v);
		if ((v = provider_json_str(fn, "arguments")) != NULL)
			buf_puts(&s->args, v);
	}
	return 0;
}

static int
feed(void *ctx, const struct sse_event *ev)
{
	struct stream_state	*st = ctx;

	if (ev->comment)
		return 0;
	return provider_gigachat.chat_event(st, ev) == -1 ? 1 : 0;
}

static void
run_stream(const char *name, const char *inline_data, int include_usage,
    struct stream_state *st, struct sink *s)
{
	struct sse_parser	 p;
	char			*data;
	size_t			 len = 0, i;

	memset(st, 0, sizeof(*st));
	memset(s, 0, sizeof(*s));
	buf_init(&s->text, 1 << 20);
	buf_init(&s->args, 1 << 20);
	st->emit = collect;
	st->ctx = s;
	st->cand = &cand;
	st->include_usage = include_usage;
	data = name ? slurp(name, &len) : strdup(inline_data);
	if (name == NULL)
		len = strlen(data);
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
	buf_free(&s->text);
	buf_free(&s->args);
}

static void
test_stream(void)
{
	struct stream_state	 st;
	struct sink		 s;

	run_stream("stream.sse", NULL, 1, &st, &s);
	is_str(s.text.data, "Раз, два, три.", "streamed text");
	is_str(s.finish, "stop", "finish_reason stop");
	ok(st.done, "[DONE] ends the stream");
	is_int(s.chunks, 2 + 1 + 1, "2 text + finish + usage chunks");
	is_int(s.usage_chunks, 1, "one usage chunk when asked");
	is_int(s.bad_object, 0, "every chunk is a chat.completion.chunk");
	ok(strncmp(st.id, "chatcmpl-", 9) == 0 &&
	    strcmp(s.chunk_ids[0], st.id) == 0 &&
	    strcmp(s.chunk_ids[1], st.id) == 0, "one generated id: %s", st.id);
	is_int(st.usage.prompt, 19, "prompt tokens include precached");
	is_int(st.usage.cached, 2, "cached tokens");
	is_int(st.usage.completion, 6, "completion tokens from the last chunk");
	is_int(st.chars, (int64_t)strlen("Раз, два, три."), "characters counted");
	free_sink(&s);

	run_stream("stream.sse", NULL, 0, &st, &s);
	is_int(s.usage_chunks, 0, "no usage chunk unless asked");
	free_sink(&s);

	run_stream("stream_function.sse", NULL, 1, &st, &s);
	is_int(s.tool_deltas, 1, "one tool_calls delta");
	is_str(s.name, "get_weather", "function name");
	is_str(s.args.data, "{\"city\":\"Paris\",\"unit\":\"c\"}",
	    "full arguments as a JSON string");
	ok(strncmp(s.id, "call_", 5) == 0, "tool call id: %s", s.id);
	is_str(s.finish, "tool_calls", "function_call -> tool_calls");
	is_int(st.usage.completion, 20, "usage of the function call");
	ok(st.done, "done");
	free_sink(&s);

	run_stream("stream_blacklist.sse", NULL, 1, &st, &s);
	is_str(s.finish, "content_filter", "blacklist -> content_filter");
	is_int(st.usage.completion, 4, "usage set, never summed");
	is_int(st.usage.prompt, 9, "prompt not doubled");
	free_sink(&s);

	/* Fragments, should GigaChat ever stream string arguments. */
	run_stream(NULL, "data: {\"choices\":[{\"delta\":{\"role\":\"assistant\","
	    "\"function_call\":{\"name\":\"f\",\"arguments\":\"{\\\"a\\\"\"}},"
	    "\"index\":0}]}\n\ndata: {\"choices\":[{\"delta\":{\"function_call\":"
	    "{\"arguments\":\":1}\"}},\"index\":0,\"finish_reason\":\"stop\"}]}"
	    "\n\ndata: [DONE]\n\n", 0, &st, &s);
	is_str(s.args.data, "{\"a\":1}", "string fragments join on one call");
	is_str(s.finish, "tool_calls", "stop after a call -> tool_calls");
	free_sink(&s);

	run_stream(NULL, "data: {\"status\":500,\"message\":\"Internal "
	    "error\"}\n\n", 0, &st, &s);
	ok(st.failed, "an error object fails the stream");
	ok(strstr(st.err.message, "Internal error") != NULL, "message kept: %s",
	    st.err.message);
	free_sink(&s);

	run_stream(NULL, "data: {\"broken\n\n", 0, &st, &s);
	is_str(st.err.code, "bad_upstream_response", "malformed event");
	free_sink(&s);
}

static void
test_error(void)
{
	struct provider_error	 e;
	char			*body;
	size_t			 len;

	body = slurp("error_404.json", &len);
	provider_gigachat.error(404, body, len, &e);
	is_str(e.message, "No such model", "404 message kept");
	is_str(e.type, "invalid_request_error", "404 type");
	is_str(e.code, "model_not_found", "404 code");
	free(body);
	body = slurp("oauth_error_scope.json", &len);
	provider_gigachat.error(400, body, len, &e);
	is_str(e.message, "scope is empty", "OAuth-shaped body");
	free(body);
	provider_gigachat.error(429, "{\"status\":429,\"message\":\"Too many "
	    "requests\"}", 45, &e);
	is_str(e.type, "rate_limit_error", "429 type");
	provider_gigachat.error(502, "<html>bad gateway</html>", 24, &e);
	is_str(e.message, "upstream answered HTTP 502", "HTML body not echoed");
	is_str(e.type, "upstream_error", "5xx type");
}

int
main(void)
{
	log_threshold = LOG_ERROR;	/* the token requests log at info */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (loopback_start(&tokens, serve_one, 0) == -1) {
		printf("Bail out! cannot start the token server\n");
		return 1;
	}
	setup();
	test_request();
	test_token_errors();
	test_mapping();
	test_response();
	test_stream();
	test_error();
	loopback_stop(&tokens);
	curl_global_cleanup();
	return tap_done();
}
