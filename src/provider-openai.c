/*
 * provider-openai.c: the OpenAI chat protocol, also spoken by DeepSeek,
 * OpenRouter, Groq, Ollama, DashScope, vLLM and Yandex's compatible API.
 */
#include <string.h>

#include "provider.h"

/*
 * The client's request with the upstream model id, the gateway's
 * completion limit in the one field the provider honours (the client's
 * max_tokens and max_completion_tokens are replaced, never passed on),
 * and, for streams, usage asked for in the stream so that the request can
 * be billed exactly.
 */
static int
chat_request(const struct candidate *c, const struct chat_in *in,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*out, *so, *v;
	int			 rc = 0;

	out = json_object_new_object();
	json_object_object_foreach(in->req, key, val) {
		if (strcmp(key, "model") == 0 ||
		    strcmp(key, "stream_options") == 0 ||
		    strcmp(key, "max_tokens") == 0 ||
		    strcmp(key, "max_completion_tokens") == 0)
			continue;
		json_object_object_add(out, key, json_object_get(val));
	}
	json_object_object_add(out, "model",
	    json_object_new_string(c->upstream));
	json_object_object_add(out, c->provider->max_tokens_field,
	    json_object_new_int64(plan_max_tokens(c, in->client_max)));
	if (in->stream) {
		so = json_object_new_object();
		if (json_object_object_get_ex(in->req, "stream_options", &v) &&
		    json_object_is_type(v, json_type_object)) {
			json_object_object_foreach(v, k2, v2)
				json_object_object_add(so, k2,
				    json_object_get(v2));
		}
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
		json_object_object_add(out, "stream_options", so);
	}
	if (provider_body(call, out) == -1 ||
	    provider_url(call, c->provider, "/chat/completions") == -1 ||
	    provider_headers(call, c->provider, "Authorization",
	    "Bearer ") == -1)
		rc = -1;
	json_object_put(out);
	return rc;
}

static int
chat_response(const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	struct json_object	*o, *v;

	if ((o = provider_parse(body, len)) == NULL ||
	    !json_object_object_get_ex(o, "choices", &v) ||
	    !json_object_is_type(v, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed chat completion",
		    c->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(o, "usage", &v))
		provider_usage_openai(v, u);
	json_object_object_add(o, "model", json_object_new_string(c->name));
	*out = o;
	return 0;
}

static int64_t
content_chars(struct json_object *choices)
{
	struct json_object	*ch, *delta, *v;
	int64_t			 n = 0;
	size_t			 i;

	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		if (!json_object_object_get_ex(ch, "delta", &delta))
			continue;
		if (json_object_object_get_ex(delta, "content", &v) &&
		    json_object_is_type(v, json_type_string))
			n += json_object_get_string_len(v);
		if (json_object_object_get_ex(delta, "reasoning_content", &v) &&
		    json_object_is_type(v, json_type_string))
			n += json_object_get_string_len(v);
	}
	return n;
}

static void
note_finish(struct stream_state *st, struct json_object *choices)
{
	struct json_object	*ch, *v;
	size_t			 i;

	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		if (json_object_object_get_ex(ch, "finish_reason", &v) &&
		    json_object_is_type(v, json_type_string))
			snprintf(st->finish, sizeof(st->finish), "%s",
			    json_object_get_string(v));
	}
}

static int
chat_event(struct stream_state *st, const struct sse_event *ev)
{
	struct json_object	*o, *v, *choices = NULL;
	int			 rc, usage_only;

	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		st->done = 1;
		return 0;
	}
	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream event", st->cand->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(o, "error", &v) && v != NULL) {
		provider_error_openai(502, ev->data, ev->data_len, &st->err);
		st->failed = 1;
		json_object_put(o);
		return -1;
	}
	if (json_object_object_get_ex(o, "usage", &v) && v != NULL)
		provider_usage_openai(v, &st->usage);
	if (json_object_object_get_ex(o, "choices", &choices) &&
	    json_object_is_type(choices, json_type_array)) {
		st->chars += content_chars(choices);
		note_finish(st, choices);
	}
	usage_only = choices != NULL &&
	    json_object_is_type(choices, json_type_array) &&
	    json_object_array_length(choices) == 0;
	if (usage_only && !st->include_usage) {
		json_object_put(o);
		return 0;
	}
	if (!st->include_usage)
		json_object_object_del(o, "usage");
	json_object_object_add(o, "model",
	    json_object_new_string(st->cand->name));
	rc = st->emit(st->ctx, o);
	json_object_put(o);
	return rc;
}

/* Embeddings: the client's request with the upstream model id. */
static int
embed_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	return provider_openai_forward(c, req, "/embeddings", call);
}

/* The upstream's list as it came, with its usage when it gave one. */
static int
embed_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	struct json_object	*o, *data, *usage;

	if ((o = provider_parse(body, len)) == NULL ||
	    !json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned malformed embeddings",
		    c->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(o, "usage", &usage))
		provider_usage_openai(usage, u);
	*out = o;
	return 0;
}

const struct provider_ops provider_openai = {
	.type = "openai",
	.chat_request = chat_request,
	.chat_response = chat_response,
	.chat_event = chat_event,
	.error = provider_error_openai,
	.embeddings_request = embed_request,
	.embeddings_response = embed_response,
};

/*
 * The OpenAI-compatible call for a route that needs no translation
 * (embeddings, images): req with model set to the upstream id, POSTed to
 * base_url + path with the Bearer key and the provider's headers.
 */
int
provider_openai_forward(const struct candidate *c, struct json_object *req,
    const char *path, struct provider_call *call)
{
	struct json_object	*out;
	int			 rc = 0;

	out = json_object_new_object();
	json_object_object_foreach(req, key, val) {
		if (strcmp(key, "model") != 0)
			json_object_object_add(out, key, json_object_get(val));
	}
	json_object_object_add(out, "model",
	    json_object_new_string(c->upstream));
	if (provider_body(call, out) == -1 ||
	    provider_url(call, c->provider, path) == -1 ||
	    provider_headers(call, c->provider, "Authorization",
	    "Bearer ") == -1)
		rc = -1;
	json_object_put(out);
	return rc;
}
