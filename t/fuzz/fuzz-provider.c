/*
 * fuzz-provider.c: libFuzzer target for every adapter (OpenAI, Anthropic,
 * Gemini, GigaChat, Yandex). The first byte picks the adapter and what the
 * rest is fed to, as the gateway feeds it: a client request body (parsed
 * strictly, validated, then translated for the upstream), a non-streamed
 * upstream answer, an upstream stream (cut by the adapter's framing), an
 * upstream error body, or an embeddings answer (for the protocols that
 * embed, through the shaping every one shares).
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../src/embeddings.h"
#include "../../src/provider.h"
#include "../../src/validate.h"
#include "../fixture.h"

enum {
	FEED_REQUEST, FEED_RESPONSE, FEED_STREAM, FEED_ERROR, FEED_EMBEDDINGS,
	FEED_N
};

static const enum provider_type types[] = {
	PROVIDER_OPENAI, PROVIDER_ANTHROPIC, PROVIDER_GEMINI,
	PROVIDER_GIGACHAT, PROVIDER_YANDEX,
};
#define NTYPES	(sizeof(types) / sizeof(types[0]))

static int
emit(void *ctx, struct json_object *chunk)
{
	(void)ctx;
	(void)json_object_to_json_string(chunk);
	return 0;
}

static int
on_event(void *ctx, const struct sse_event *ev)
{
	struct stream_state	*st = ctx;
	const struct provider_ops *ops = provider_ops_for(st->cand->provider->type);

	if (ev->comment)
		return 0;
	return ops->chat_event(st, ev);		/* -1 stops, as in route-chat.c */
}

static void
feed_request(const struct provider_ops *ops, const char *s, size_t n)
{
	struct provider_call	 call;
	struct provider_error	 err;
	struct chat_in		 in;
	struct verr		 e;

	memset(&in, 0, sizeof(in));
	if ((in.req = json_parse_strict(s, n, 64, &e)) == NULL)
		return;
	if (validate_chat(in.req, &e) == 0) {
		memset(&err, 0, sizeof(err));
		provider_call_init(&call, 1 << 20);
		(void)ops->chat_request(&cand, &in, &call, &err);
		provider_call_free(&call);
	}
	json_object_put(in.req);
}

/* An embeddings answer to a request for two texts, floats or base64. */
static void
feed_embeddings(const char *s, size_t n, int base64)
{
	struct provider_error	 err;
	struct json_object	*req, *out = NULL;
	struct usage		 u;

	req = json_tokener_parse(base64 ?
	    "{\"model\":\"m\",\"input\":[\"a\",\"b\"],"
	    "\"encoding_format\":\"base64\"}" :
	    "{\"model\":\"m\",\"input\":\"a\"}");
	memset(&err, 0, sizeof(err));
	if (embeddings_response(&cand, req, s, n, &out, &u, &err) == 0)
		(void)json_object_to_json_string(out);
	json_object_put(out);
	json_object_put(req);
}

static void
feed_stream(const struct provider_ops *ops, const char *s, size_t n,
    int include_usage)
{
	struct stream_state	 st;
	struct sse_parser	 p;
	size_t			 half = n / 2;

	memset(&st, 0, sizeof(st));
	st.emit = emit;
	st.cand = &cand;
	st.include_usage = include_usage;
	sse_init(&p, 4096);
	sse_set_ndjson(&p, ops->framing == FRAMING_NDJSON);
	/* Two feeds so that events split across reads are exercised. */
	if (sse_feed(&p, s, half, on_event, &st) == 0 &&
	    sse_feed(&p, s + half, n - half, on_event, &st) == 0)
		(void)sse_finish(&p, on_event, &st);
	sse_free(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct provider_ops *ops;
	struct provider_error	 err;
	struct json_object	*out = NULL;
	struct usage		 u;
	enum provider_type	 type;
	const char		*s = (const char *)data + 1;
	size_t			 n;
	int			 feed;

	if (size < 1)
		return 0;
	n = size - 1;
	type = types[data[0] % NTYPES];
	feed = (data[0] / NTYPES) % FEED_N;
	/* GigaChat requests need an OAuth token from the network: not here. */
	if (type == PROVIDER_GIGACHAT && feed == FEED_REQUEST)
		feed = FEED_STREAM;
	fixture_candidate(type, "fuzz", "https://upstream.invalid/v1/",
	    "sk-fuzz", "fuzz-model", "fuzz-upstream", 4096, "X-Fuzz: 1");
	ops = provider_ops_for(type);
	memset(&err, 0, sizeof(err));
	memset(&u, 0, sizeof(u));
	switch (feed) {
	case FEED_REQUEST:
		feed_request(ops, s, n);
		break;
	case FEED_RESPONSE:
		if (ops->chat_response(&cand, s, n, &out, &u, &err) == 0)
			json_object_put(out);
		break;
	case FEED_STREAM:
		feed_stream(ops, s, n, data[0] >= 128);
		break;
	case FEED_EMBEDDINGS:
		if (ops->embeddings_response != NULL) {
			feed_embeddings(s, n, data[0] >= 128);
			break;
		}
		/* FALLTHROUGH */
	default:
		ops->error(400 + (long)(data[0] % 200), s, n, &err);
		break;
	}
	return 0;
}
