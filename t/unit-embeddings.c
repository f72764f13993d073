/* unit-embeddings.c: embeddings checks, base64 vectors, OpenAI and Gemini translation. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/embeddings.h"
#define FIXTURE_HEADERS_ONLY
#include "fixture.h"
#include "tap.h"

#define slurp(name, len)	tap_slurp("embeddings", name, len)

static struct provider_cfg	 oai, gem, anth;
static struct candidate		 c_oai, c_gem, c_anth;

static void
cand(struct candidate *c, struct provider_cfg *p, const char *name,
    enum provider_type t, const char *served, const char *upstream)
{
	static char	*hdr[] = { "X-Extra: 1" };

	p->name = (char *)name;
	p->type = t;
	p->base_url = "https://api.example/v1beta/";
	p->api_key = "sk-secret";
	p->headers.v = hdr;
	p->headers.n = 1;
	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", served);
	snprintf(c->upstream, sizeof(c->upstream), "%s", upstream);
	c->provider = p;
}

/* The param and message of a refused request body. */
static int
refused(const char *body, const char *param)
{
	struct json_object	*o = json_tokener_parse(body);
	struct verr		 e;
	int			 rc;

	memset(&e, 0, sizeof(e));
	rc = o != NULL && embeddings_validate(o, &e) == -1 &&
	    strcmp(e.param, param) == 0;
	if (!rc)
		printf("#   param '%s', message '%s'\n", e.param, e.message);
	json_object_put(o);
	return rc;
}

static int
accepted(const char *body)
{
	struct json_object	*o = json_tokener_parse(body);
	struct verr		 e;
	int			 rc;

	memset(&e, 0, sizeof(e));
	rc = o != NULL && embeddings_validate(o, &e) == 0;
	if (!rc)
		printf("#   refused: %s: %s\n", e.param, e.message);
	json_object_put(o);
	return rc;
}

/* 2049 texts are too many; one input of 5000 token ids is fine. */
static void
big_input(void)
{
	struct json_object	*o, *in, *toks;
	struct verr		 e;
	int			 i;

	o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_string("m"));
	in = json_object_new_array();
	for (i = 0; i < EMBEDDINGS_INPUT_MAX + 1; i++)
		json_object_array_add(in, json_object_new_string("x"));
	json_object_object_add(o, "input", in);
	memset(&e, 0, sizeof(e));
	ok(embeddings_validate(o, &e) == -1 && strcmp(e.param, "input") == 0,
	    "2049 inputs refused");
	json_object_array_del_idx(in, 0, 1);
	ok(embeddings_validate(o, &e) == 0, "2048 inputs accepted");
	toks = json_object_new_array();
	for (i = 0; i < 5000; i++)
		json_object_array_add(toks, json_object_new_int(i));
	json_object_object_add(o, "input", toks);
	ok(embeddings_validate(o, &e) == 0, "5000 token ids accepted");
	json_object_put(o);
}

static void
test_validate(void)
{
	ok(accepted("{\"model\":\"m\",\"input\":\"hi\"}"), "string input");
	ok(accepted("{\"model\":\"m\",\"input\":[\"a\",\"b\"],"
	    "\"encoding_format\":\"base64\",\"dimensions\":256}"),
	    "array input, base64, dimensions");
	ok(accepted("{\"model\":\"m\",\"input\":[1,2,3]}"), "token ids");
	ok(accepted("{\"model\":\"m\",\"input\":[[1,2],[3]],"
	    "\"encoding_format\":null}"), "token id lists");
	ok(refused("{\"input\":\"hi\"}", "model"), "model is required");
	ok(refused("{\"model\":7,\"input\":\"hi\"}", "model"),
	    "model must be a string");
	ok(refused("{\"model\":\"m\"}", "input"), "input is required");
	ok(refused("{\"model\":\"m\",\"input\":42}", "input"),
	    "a number is no input");
	ok(refused("{\"model\":\"m\",\"input\":\"\"}", "input"),
	    "an empty string is no input");
	ok(refused("{\"model\":\"m\",\"input\":[]}", "input"),
	    "an empty array is no input");
	ok(refused("{\"model\":\"m\",\"input\":[\"a\",1]}", "input[1]"),
	    "mixed array names the member");
	ok(refused("{\"model\":\"m\",\"input\":[\"a\",\"\"]}", "input[1]"),
	    "empty member string");
	ok(refused("{\"model\":\"m\",\"input\":[{\"text\":\"a\"}]}",
	    "input[0]"), "object member");
	ok(refused("{\"model\":\"m\",\"input\":[1,-2]}", "input"),
	    "negative token id");
	ok(refused("{\"model\":\"m\",\"input\":[[1],[]]}", "input[1]"),
	    "empty token list");
	ok(refused("{\"model\":\"m\",\"input\":[[1],\"a\"]}", "input[1]"),
	    "token lists mixed with text");
	ok(refused("{\"model\":\"m\",\"input\":\"a\",\"encoding_format\":"
	    "\"hex\"}", "encoding_format"), "encoding_format hex");
	ok(refused("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":0}",
	    "dimensions"), "dimensions 0");
	ok(refused("{\"model\":\"m\",\"input\":\"a\",\"dimensions\":1.5}",
	    "dimensions"), "dimensions not an integer");
	ok(refused("[1]", ""), "an array body");
	big_input();
}

static void
base64_is(const char *values, const char *want, const char *name)
{
	struct json_object	*o = json_tokener_parse(values);
	struct buf		 b;

	buf_init(&b, 1024);
	ok(embeddings_base64(o, &b) == 0, "%s encodes", name);
	is_str(b.data ? b.data : "", want, "%s", name);
	buf_free(&b);
	json_object_put(o);
}

static void
test_base64(void)
{
	struct json_object	*o;
	struct buf		 b;

	/* Expected values from Python: base64(struct.pack("<nf", ...)). */
	base64_is("[1.0,-2.0,0.5]", "AACAPwAAAMAAAAA/", "three floats");
	base64_is("[1]", "AACAPw==", "one integer, two pad characters");
	base64_is("[1.0,2]", "AACAPwAAAEA=", "two values, one pad character");
	base64_is("[]", "", "no values");
	base64_is("[0.0023064255,-0.009327292,0.015797347,-0.0077780345,"
	    "-0.0046922187]", "ZicXO4DRGLxwaYE84t7+uy/Bmbs=",
	    "real-looking vector rounded to float32");

	o = json_tokener_parse("[1.0,\"x\"]");
	buf_init(&b, 1024);
	ok(embeddings_base64(o, &b) == -1, "a string member is refused");
	buf_free(&b);
	json_object_put(o);
	o = json_tokener_parse("[1.0,2.0,3.0]");
	buf_init(&b, 8);
	ok(embeddings_base64(o, &b) == -1, "a full buffer is an error");
	buf_free(&b);
	json_object_put(o);
}

/* Build the call for request file req; compare its body with file want. */
static void
request_is(const struct candidate *c, const char *req, const char *want,
    const char *url)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*in, *got, *exp;
	char			*src, *dst;

	src = slurp(req, NULL);
	dst = slurp(want, NULL);
	ok(src != NULL && dst != NULL, "%s and %s found", req, want);
	if (src == NULL || dst == NULL) {
		free(src);
		free(dst);
		return;
	}
	in = json_tokener_parse(src);
	memset(&e, 0, sizeof(e));
	provider_call_init(&call, 1 << 20);
	is_int(embeddings_request(c, in, &call, &e), 0, "%s builds", req);
	got = json_tokener_parse(call.body.data ? call.body.data : "");
	exp = json_tokener_parse(dst);
	ok(got != NULL && exp != NULL && json_object_equal(got, exp),
	    "upstream body equals %s", want);
	if (got == NULL || exp == NULL || !json_object_equal(got, exp))
		printf("#   got  %s\n", call.body.data ? call.body.data : "");
	is_str(call.url.data, url, "%s URL", req);
	ok(has_header(call.headers, "x-goog-api-key: sk-secret"),
	    "x-goog-api-key");
	ok(has_header(call.headers, "X-Extra: 1"), "extra header");
	ok(!has_header(call.headers, "Authorization: Bearer sk-secret"),
	    "no bearer token for Gemini");
	json_object_put(got);
	json_object_put(exp);
	json_object_put(in);
	provider_call_free(&call);
	free(src);
	free(dst);
}

/* The error a request gets from candidate c, or "" when it builds. */
static void
request_refused(const struct candidate *c, const char *body,
    const char *param, const char *name)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*in = json_tokener_parse(body);

	memset(&e, 0, sizeof(e));
	provider_call_init(&call, 1 << 20);
	ok(embeddings_request(c, in, &call, &e) == -1 && e.message[0] != '\0',
	    "%s: refused", name);
	is_str(e.param, param, "%s: param", name);
	printf("#   %s\n", e.message);
	provider_call_free(&call);
	json_object_put(in);
}

static void
test_requests(void)
{
	struct provider_call	 call;
	struct provider_error	 e;
	struct json_object	*in, *got;

	request_is(&c_gem, "gemini-single.openai.json",
	    "gemini-single.gemini.json", "https://api.example/v1beta/models/"
	    "gemini-embedding-001:embedContent");
	request_is(&c_gem, "gemini-batch.openai.json",
	    "gemini-batch.gemini.json", "https://api.example/v1beta/models/"
	    "gemini-embedding-001:batchEmbedContents");

	request_refused(&c_gem, "{\"model\":\"m\",\"input\":[1,2]}", "input",
	    "token ids to Gemini");
	request_refused(&c_anth, "{\"model\":\"m\",\"input\":\"a\"}", "model",
	    "an anthropic provider");
	snprintf(c_gem.upstream, sizeof(c_gem.upstream), "bad?id");
	request_refused(&c_gem, "{\"model\":\"m\",\"input\":\"a\"}", "model",
	    "a model id that needs escaping");
	snprintf(c_gem.upstream, sizeof(c_gem.upstream),
	    "models/gemini-embedding-001");

	/* OpenAI: everything passes but the model, encoding_format kept. */
	in = json_tokener_parse("{\"model\":\"emb\",\"input\":[\"a\"],"
	    "\"encoding_format\":\"base64\",\"dimensions\":3,\"user\":\"u\"}");
	memset(&e, 0, sizeof(e));
	provider_call_init(&call, 1 << 20);
	is_int(embeddings_request(&c_oai, in, &call, &e), 0, "OpenAI builds");
	got = json_tokener_parse(call.body.data);
	json_object_object_add(in, "model",
	    json_object_new_string("text-embedding-3-small"));
	ok(json_object_equal(got, in), "OpenAI body is the request with the "
	    "upstream model");
	is_str(call.url.data, "https://api.example/v1beta/embeddings",
	    "OpenAI URL");
	ok(has_header(call.headers, "Authorization: Bearer sk-secret"),
	    "OpenAI bearer token");
	ok(has_header(call.headers, "X-Extra: 1"), "OpenAI extra header");
	json_object_put(got);
	json_object_put(in);
	provider_call_free(&call);
}

/* Translate response file resp for request req; the caller frees *out. */
static int
translate(const struct candidate *c, const char *req, const char *resp,
    struct json_object **out, struct usage *u)
{
	struct provider_error	 e;
	struct json_object	*in = json_tokener_parse(req);
	char			*body;
	size_t			 len = 0;
	int			 rc;

	*out = NULL;
	if ((body = slurp(resp, &len)) == NULL) {
		json_object_put(in);
		return -2;
	}
	memset(&e, 0, sizeof(e));
	rc = embeddings_response(c, in, body, len, out, u, &e);
	free(body);
	json_object_put(in);
	return rc;
}

static const char *
embedding_str(struct json_object *o, size_t i)
{
	struct json_object	*data, *item, *v;

	if (!json_object_object_get_ex(o, "data", &data) ||
	    (item = json_object_array_get_idx(data, i)) == NULL ||
	    !json_object_object_get_ex(item, "embedding", &v))
		return NULL;
	return json_object_get_string(v);
}

static void
test_responses(void)
{
	struct provider_error	 e;
	struct json_object	*out, *want, *usage;
	struct usage		 u;
	char			*exp;

	/* Gemini batch -> the OpenAI list, floats kept as sent. */
	is_int(translate(&c_gem, "{\"model\":\"gem-emb\",\"input\":[\"The "
	    "quick brown fox\",\"jumps over the lazy dog\"]}",
	    "gemini-batch.response.json", &out, &u), 0, "Gemini batch maps");
	exp = slurp("gemini-batch.expected.json", NULL);
	want = exp ? json_tokener_parse(exp) : NULL;
	ok(out != NULL && want != NULL && json_object_equal(out, want),
	    "Gemini batch equals gemini-batch.expected.json");
	if (out != NULL && (want == NULL || !json_object_equal(out, want)))
		printf("#   got %s\n", json_object_to_json_string(out));
	is_int(u.prompt, 11, "estimated tokens: 42 characters / 4");
	is_int(u.known, 0, "Gemini tokens are an estimate");
	json_object_put(want);
	json_object_put(out);
	free(exp);

	/* Gemini single with base64. */
	is_int(translate(&c_gem, "{\"model\":\"gem-emb\",\"input\":\"hello\","
	    "\"encoding_format\":\"base64\"}", "gemini-single.response.json",
	    &out, &u), 0, "Gemini single maps");
	is_str(embedding_str(out, 0), "ZicXO4DRGLxwaYE84t7+uy/Bmbs=",
	    "Gemini floats encoded as base64 float32");
	is_str(provider_json_str(out, "model"), "gem-emb", "served model name");
	is_int(u.prompt, 2, "'hello' is about 2 tokens");
	json_object_put(out);

	/* A batch answer that does not match the input count is malformed. */
	ok(translate(&c_gem, "{\"model\":\"gem-emb\",\"input\":[\"a\",\"b\","
	    "\"c\"]}", "gemini-batch.response.json", &out, &u) == -1 &&
	    out == NULL, "Gemini batch with too few embeddings refused");
	ok(translate(&c_gem, "{\"model\":\"gem-emb\",\"input\":[\"a\",\"b\"]}",
	    "gemini-single.response.json", &out, &u) == -1,
	    "Gemini single answer to a batch refused");

	/* OpenAI floats asked as base64: the gateway encodes them. */
	is_int(translate(&c_oai, "{\"model\":\"emb\",\"input\":\"hello\","
	    "\"encoding_format\":\"base64\"}", "openai-float.response.json",
	    &out, &u), 0, "OpenAI floats map");
	is_str(embedding_str(out, 0), "ZicXO4DRGLxwaYE84t7+uy/Bmbs=",
	    "floats from a provider that ignored base64 are encoded");
	is_str(provider_json_str(out, "model"), "emb", "OpenAI served model");
	ok(u.known && u.prompt == 5, "OpenAI usage taken as reported");
	json_object_put(out);
	is_int(translate(&c_oai, "{\"model\":\"emb\",\"input\":\"hello\"}",
	    "openai-float.response.json", &out, &u), 0, "OpenAI floats kept");
	ok(json_object_is_type(json_object_array_get_idx(json_object_object_get(
	    json_object_array_get_idx(json_object_object_get(out, "data"), 0),
	    "embedding"), 0), json_type_double), "floats stay floats");
	json_object_put(out);

	/* A provider's own base64 and missing usage. */
	memset(&e, 0, sizeof(e));
	want = json_tokener_parse("{\"model\":\"e\",\"input\":[[1,2,3],[4]],"
	    "\"encoding_format\":\"base64\"}");
	exp = "{\"object\":\"list\",\"data\":[{\"object\":\"embedding\","
	    "\"index\":0,\"embedding\":\"AACAPw==\"}],\"model\":\"x\"}";
	is_int(embeddings_response(&c_oai, want, exp, strlen(exp), &out, &u,
	    &e), 0, "OpenAI base64 without usage maps");
	is_str(embedding_str(out, 0), "AACAPw==", "provider base64 passes");
	ok(!u.known && u.prompt == 4, "token ids counted exactly: 4");
	ok(json_object_object_get_ex(out, "usage", &usage) &&
	    provider_json_int(usage, "prompt_tokens") == 4 &&
	    provider_json_int(usage, "total_tokens") == 4,
	    "estimated usage added to the answer");
	json_object_put(out);
	exp = "{\"object\":\"list\",\"data\":{}}";
	ok(embeddings_response(&c_oai, want, exp, strlen(exp), &out, &u,
	    &e) == -1 && strcmp(e.code, "bad_upstream_response") == 0,
	    "OpenAI data not an array refused");
	exp = "not json";
	ok(embeddings_response(&c_oai, want, exp, strlen(exp), &out, &u,
	    &e) == -1, "OpenAI non-JSON refused");
	json_object_put(want);
}

int
main(void)
{
	cand(&c_oai, &oai, "oai", PROVIDER_OPENAI, "emb",
	    "text-embedding-3-small");
	cand(&c_gem, &gem, "gem", PROVIDER_GEMINI, "gem-emb",
	    "models/gemini-embedding-001");
	cand(&c_anth, &anth, "anth", PROVIDER_ANTHROPIC, "claude",
	    "claude-x");
	test_validate();
	test_base64();
	test_requests();
	test_responses();
	return tap_done();
}
