/* provider.c: the table of wire protocols and the pieces they share. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

/* Indexed by enum provider_type; NULL until the protocol is implemented. */
static const struct provider_ops *const ops_table[PROVIDER__MAX] = {
	[PROVIDER_OPENAI] = &provider_openai,
};

const struct provider_ops *
provider_ops_for(enum provider_type t)
{
	return t < PROVIDER__MAX ? ops_table[t] : NULL;
}

/* Mark providers whose protocol this build cannot speak as unavailable. */
void
provider_check(struct config *cfg)
{
	struct provider_cfg	*p;
	char			 why[128];
	size_t			 i;

	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		if (provider_ops_for(p->type) != NULL || !p->available)
			continue;
		snprintf(why, sizeof(why), "provider type '%s' is not "
		    "supported by this build", provider_type_names[p->type]);
		p->available = 0;
		free(p->unavailable);
		p->unavailable = strdup(why);
	}
}

void
provider_call_init(struct provider_call *c, size_t max_body)
{
	buf_init(&c->url, 4096);
	buf_init(&c->body, max_body);
	c->headers = NULL;
}

void
provider_call_free(struct provider_call *c)
{
	buf_free(&c->url);
	buf_free(&c->body);
	curl_slist_free_all(c->headers);
	c->headers = NULL;
}

/* base_url + path, with exactly one slash between them. */
int
provider_url(struct provider_call *c, const struct provider_cfg *p,
    const char *path)
{
	size_t	 n = strlen(p->base_url);

	while (n > 0 && p->base_url[n - 1] == '/')
		n--;
	buf_reset(&c->url);
	if (buf_append(&c->url, p->base_url, n) != BUF_OK)
		return -1;
	return buf_printf(&c->url, "%s%s", *path == '/' ? "" : "/", path) ==
	    BUF_OK ? 0 : -1;
}

static int
add_header(struct provider_call *c, const char *h)
{
	struct curl_slist	*n;

	if ((n = curl_slist_append(c->headers, h)) == NULL)
		return -1;
	c->headers = n;
	return 0;
}

/*
 * JSON content type, the provider's extra headers, and the key as
 * "name: prefix key" (e.g. "Authorization", "Bearer ") when there is one.
 */
int
provider_headers(struct provider_call *c, const struct provider_cfg *p,
    const char *key_header, const char *key_prefix)
{
	struct buf	 h;
	size_t		 i;
	int		 rc = 0;

	if (add_header(c, "Content-Type: application/json") == -1 ||
	    add_header(c, "Expect:") == -1)
		return -1;
	for (i = 0; i < p->headers.n; i++)
		if (add_header(c, p->headers.v[i]) == -1)
			return -1;
	if (p->api_key == NULL || key_header == NULL)
		return 0;
	buf_init(&h, 8192);
	if (buf_printf(&h, "%s: %s%s", key_header, key_prefix, p->api_key) !=
	    BUF_OK || add_header(c, h.data) == -1)
		rc = -1;
	explicit_bzero(h.data, h.len);
	buf_free(&h);
	return rc;
}

void
provider_error_set(struct provider_error *e, const char *type,
    const char *code, const char *fmt, ...)
{
	va_list	 ap;

	memset(e, 0, sizeof(*e));
	snprintf(e->type, sizeof(e->type), "%s", type);
	snprintf(e->code, sizeof(e->code), "%s", code ? code : "");
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
}

static void
copy_field(struct json_object *o, const char *name, char *dst, size_t len)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, name, &v) || v == NULL)
		return;
	/* Integers (OpenRouter's code) are printed as text. */
	snprintf(dst, len, "%s", json_object_get_string(v));
}

/*
 * An OpenAI-style error body {"error":{"message","type","param","code"}};
 * anything else gets a generic message that never echoes the raw body.
 */
void
provider_error_openai(long status, const char *body, size_t len,
    struct provider_error *e)
{
	struct json_object	*o = NULL, *err;
	struct json_tokener	*tok;

	provider_error_set(e, status >= 500 ? "upstream_error" :
	    "invalid_request_error", NULL, "upstream answered HTTP %ld", status);
	if (len > 0 && (tok = json_tokener_new_ex(32)) != NULL) {
		o = json_tokener_parse_ex(tok, body, (int)len);
		json_tokener_free(tok);
	}
	if (o != NULL && json_object_object_get_ex(o, "error", &err)) {
		if (json_object_is_type(err, json_type_object)) {
			copy_field(err, "message", e->message,
			    sizeof(e->message));
			copy_field(err, "type", e->type, sizeof(e->type));
			copy_field(err, "code", e->code, sizeof(e->code));
			copy_field(err, "param", e->param, sizeof(e->param));
		} else if (json_object_is_type(err, json_type_string))
			/* Ollama native: {"error":"..."} */
			snprintf(e->message, sizeof(e->message), "%s",
			    json_object_get_string(err));
	}
	json_object_put(o);
}

/* An integer member, or -1 when absent or not an integer. */
int64_t
provider_json_int(struct json_object *o, const char *name)
{
	struct json_object	*v;

	if (o == NULL || !json_object_object_get_ex(o, name, &v) ||
	    !json_object_is_type(v, json_type_int))
		return -1;
	return json_object_get_int64(v);
}

/* OpenAI usage object -> struct usage (cached from prompt_tokens_details). */
void
provider_usage_openai(struct json_object *u, struct usage *out)
{
	struct json_object	*d;
	int64_t			 p, c, k;

	if (u == NULL || !json_object_is_type(u, json_type_object))
		return;
	p = provider_json_int(u, "prompt_tokens");
	c = provider_json_int(u, "completion_tokens");
	if (p < 0 && c < 0)
		return;
	out->prompt = p > 0 ? p : 0;
	out->completion = c > 0 ? c : 0;
	out->cached = 0;
	if (json_object_object_get_ex(u, "prompt_tokens_details", &d) &&
	    (k = provider_json_int(d, "cached_tokens")) > 0)
		out->cached = k;
	out->known = 1;
}
