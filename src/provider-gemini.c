/*
 * provider-gemini.c: the Google Gemini protocol (POST models/{m}:generateContent,
 * streamed as :streamGenerateContent?alt=sse).
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "embeddings.h"
#include "provider.h"

#define CALL_ID_PREFIX	"call_"

static const struct finish_map finish_reasons[] = {
	{ "STOP", "stop" },
	{ "MAX_TOKENS", "length" },
	{ "SAFETY", "content_filter" },
	{ "RECITATION", "content_filter" },
	{ "LANGUAGE", "content_filter" },
	{ "BLOCKLIST", "content_filter" },
	{ "PROHIBITED_CONTENT", "content_filter" },
	{ "SPII", "content_filter" },
	{ "IMAGE_SAFETY", "content_filter" },
	{ "IMAGE_PROHIBITED_CONTENT", "content_filter" },
	{ "IMAGE_RECITATION", "content_filter" },
	{ NULL, NULL },
};

/*
 * The keywords of Gemini's OpenAPI schema subset. It refuses any other
 * (additionalProperties, $schema, strict...) with a 400, and JSON Schemas
 * from OpenAI clients carry them, so the rest are left out.
 */
static const char *const schema_keys[] = {
	"type", "format", "title", "description", "nullable", "enum",
	"maxItems", "minItems", "required", "minProperties", "maxProperties",
	"minLength", "maxLength", "pattern", "example", "propertyOrdering",
	"default", "minimum", "maximum", NULL,
};

/*
 * Append s percent-encoded except for unreserved characters and the few
 * sub-delimiters model ids use, so that no id can leave its path segment.
 */
static int
append_escaped(struct buf *b, const char *s)
{
	static const char	 safe[] = "-._~@,=+";
	const unsigned char	*p;

	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr(safe, *p) != NULL) {
			if (buf_append(b, p, 1) != BUF_OK)
				return -1;
		} else if (buf_printf(b, "%%%02X", *p) != BUF_OK)
			return -1;
	}
	return 0;
}

static struct json_object *
text_part(const char *text)
{
	struct json_object	*p = json_object_new_object();

	json_object_object_add(p, "text", json_object_new_string(text));
	return p;
}

/* A type for an image URL from its extension; Gemini wants one. */
static const char *
image_mime(const char *url)
{
	static const struct {
		const char	*ext;
		const char	*mime;
	} types[] = {
		{ ".png", "image/png" }, { ".gif", "image/gif" },
		{ ".webp", "image/webp" }, { ".heic", "image/heic" },
		{ ".heif", "image/heif" }, { NULL, NULL },
	};
	const char	*dot, *end;
	size_t		 i, n;

	end = url + strcspn(url, "?#");
	for (dot = end; dot > url && dot[-1] != '.' && dot[-1] != '/'; dot--)
		;
	if (dot == url || dot[-1] != '.')
		return "image/jpeg";
	n = (size_t)(end - dot + 1);
	for (i = 0; types[i].ext != NULL; i++)
		if (strlen(types[i].ext) == n &&
		    strncasecmp(types[i].ext, dot - 1, n) == 0)
			return types[i].mime;
	return "image/jpeg";
}

/* An image_url part: a data: URL becomes inlineData, else fileData. */
static struct json_object *
image_part(struct json_object *part)
{
	struct json_object	*d, *p;
	struct image_data	 img;
	const char		*url;

	if ((url = provider_image_url(part, &img)) == NULL)
		return NULL;
	d = json_object_new_object();
	p = json_object_new_object();
	if (img.mime != NULL) {
		json_object_object_add(d, "mimeType",
		    json_object_new_string_len(img.mime, (int)img.mime_len));
		json_object_object_add(d, "data",
		    json_object_new_string(img.data));
		json_object_object_add(p, "inlineData", d);
	} else {
		json_object_object_add(d, "mimeType",
		    json_object_new_string(image_mime(url)));
		json_object_object_add(d, "fileUri", json_object_new_string(url));
		json_object_object_add(p, "fileData", d);
	}
	return p;
}

/* OpenAI content (string or parts) -> Gemini parts, appended. */
static void
add_content(struct json_object *parts, struct json_object *c)
{
	struct json_object	*part, *p;
	const char		*type, *t;
	size_t			 i;

	if (json_object_is_type(c, json_type_string)) {
		/* Gemini refuses empty text parts. */
		if (json_object_get_string_len(c) > 0)
			json_object_array_add(parts,
			    text_part(json_object_get_string(c)));
		return;
	}
	if (!json_object_is_type(c, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		type = provider_json_str(part, "type");
		p = NULL;
		if (type != NULL && strcmp(type, "text") == 0 &&
		    (t = provider_json_str(part, "text")) != NULL && *t != '\0')
			p = text_part(t);
		else if (type != NULL && strcmp(type, "image_url") == 0)
			p = image_part(part);
		if (p != NULL)
			json_object_array_add(parts, p);
	}
}

/* Assistant tool_calls -> functionCall parts; arguments must be JSON objects. */
static int
add_function_calls(struct json_object *parts, struct json_object *calls,
    struct provider_error *e)
{
	struct json_object	*call, *fn, *args, *fc, *p;
	const char		*a, *name;
	size_t			 i;

	for (i = 0; i < json_object_array_length(calls); i++) {
		call = json_object_array_get_idx(calls, i);
		if (!json_object_object_get_ex(call, "function", &fn))
			continue;
		/* No arguments at all ("" from some clients) is {}. */
		if ((a = provider_json_str(fn, "arguments")) == NULL || *a == '\0')
			a = "{}";
		if ((args = provider_parse(a, strlen(a))) == NULL) {
			provider_error_set(e, "invalid_request_error",
			    "invalid_value", "tool call arguments must be a "
			    "JSON object for this provider");
			snprintf(e->param, sizeof(e->param), "messages");
			return -1;
		}
		name = provider_json_str(fn, "name");
		fc = json_object_new_object();
		json_object_object_add(fc, "name",
		    json_object_new_string(name ? name : ""));
		json_object_object_add(fc, "args", args);
		p = json_object_new_object();
		json_object_object_add(p, "functionCall", fc);
		json_object_array_add(parts, p);
	}
	return 0;
}

/*
 * The function a tool result answers: the name of the latest earlier
 * assistant tool call with its id, else the message's own name; NULL when
 * neither exists. Points into msgs.
 */
static const char *
answered_name(struct json_object *msgs, size_t upto, struct json_object *m)
{
	struct json_object	*prev, *calls, *call, *fn;
	const char		*id, *cid;
	size_t			 i, j;

	if ((id = provider_json_str(m, "tool_call_id")) != NULL) {
		for (i = upto; i-- > 0;) {
			prev = json_object_array_get_idx(msgs, i);
			if (!json_object_object_get_ex(prev, "tool_calls",
			    &calls) || !json_object_is_type(calls,
			    json_type_array))
				continue;
			for (j = 0; j < json_object_array_length(calls); j++) {
				call = json_object_array_get_idx(calls, j);
				cid = provider_json_str(call, "id");
				if (cid != NULL && strcmp(cid, id) == 0 &&
				    json_object_object_get_ex(call, "function",
				    &fn) && provider_json_str(fn, "name"))
					return provider_json_str(fn, "name");
			}
		}
	}
	return provider_json_str(m, "name");
}

/*
 * A tool message -> a functionResponse part. Gemini wants an object as
 * the response: a JSON object result is sent as is, any other text as
 * {"result": text}.
 */
static struct json_object *
function_response(const char *name, struct json_object *c)
{
	struct json_object	*fr, *resp, *p;
	struct buf		 text;

	buf_init(&text, 1 << 30);
	provider_content_text(c, &text);
	if (text.len == 0 ||
	    (resp = provider_parse(text.data, text.len)) == NULL) {
		resp = json_object_new_object();
		json_object_object_add(resp, "result",
		    json_object_new_string(text.data ? text.data : ""));
	}
	buf_free(&text);
	fr = json_object_new_object();
	json_object_object_add(fr, "name", json_object_new_string(name));
	json_object_object_add(fr, "response", resp);
	p = json_object_new_object();
	json_object_object_add(p, "functionResponse", fr);
	return p;
}

/* OpenAI messages -> systemInstruction parts and Gemini contents. */
static int
convert_messages(struct json_object *in, struct json_object *contents,
    struct json_object *system, struct provider_error *e)
{
	struct json_object	*m, *c, *calls, *parts;
	struct buf		 text;
	const char		*role, *name;
	size_t			 i;

	buf_init(&text, 1 << 30);
	for (i = 0; i < json_object_array_length(in); i++) {
		m = json_object_array_get_idx(in, i);
		role = provider_json_str(m, "role");
		c = NULL;
		json_object_object_get_ex(m, "content", &c);
		if (strcmp(role, "system") == 0 ||
		    strcmp(role, "developer") == 0) {
			buf_reset(&text);
			provider_content_text(c, &text);
			if (text.len > 0)
				json_object_array_add(system,
				    text_part(text.data));
			continue;
		}
		parts = json_object_new_array();
		if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
			if ((name = answered_name(in, i, m)) == NULL) {
				json_object_put(parts);
				provider_error_set(e, "invalid_request_error",
				    "invalid_value", "messages[%zu]: tool result "
				    "answers no earlier tool call", i);
				snprintf(e->param, sizeof(e->param),
				    "messages[%zu].tool_call_id", i);
				buf_free(&text);
				return -1;
			}
			json_object_array_add(parts, function_response(name, c));
			provider_add_turn(contents, "user", "parts", parts);
			continue;
		}
		add_content(parts, c);
		if (strcmp(role, "assistant") == 0) {
			if (json_object_object_get_ex(m, "tool_calls", &calls) &&
			    json_object_is_type(calls, json_type_array) &&
			    add_function_calls(parts, calls, e) == -1) {
				json_object_put(parts);
				buf_free(&text);
				return -1;
			}
			provider_add_turn(contents, "model", "parts", parts);
		} else
			provider_add_turn(contents, "user", "parts", parts);
	}
	buf_free(&text);
	return 0;
}

static int
is_schema_key(const char *k)
{
	size_t	 i;

	for (i = 0; schema_keys[i] != NULL; i++)
		if (strcmp(schema_keys[i], k) == 0)
			return 1;
	return 0;
}

/*
 * A JSON Schema reduced to what Gemini accepts; the caller owns it.
 * "type": ["string", "null"] becomes "type": "string", "nullable": true.
 */
static struct json_object *
clean_schema(struct json_object *s, int depth)
{
	struct json_object	*out, *sub, *v;
	const char		*t;
	size_t			 i;
	int			 nullable = 0;

	if (!json_object_is_type(s, json_type_object) ||
	    depth > PROVIDER_JSON_DEPTH)
		return json_object_new_object();
	out = json_object_new_object();
	json_object_object_foreach(s, key, val) {
		if (strcmp(key, "properties") == 0 &&
		    json_object_is_type(val, json_type_object)) {
			/* A map of names, each to a schema. */
			sub = json_object_new_object();
			json_object_object_foreach(val, name, ps)
				json_object_object_add(sub, name,
				    clean_schema(ps, depth + 1));
			json_object_object_add(out, key, sub);
		} else if (strcmp(key, "items") == 0)
			json_object_object_add(out, key,
			    clean_schema(val, depth + 1));
		else if (strcmp(key, "anyOf") == 0 &&
		    json_object_is_type(val, json_type_array)) {
			sub = json_object_new_array();
			for (i = 0; i < json_object_array_length(val); i++)
				json_object_array_add(sub, clean_schema(
				    json_object_array_get_idx(val, i),
				    depth + 1));
			json_object_object_add(out, key, sub);
		} else if (strcmp(key, "type") == 0 &&
		    json_object_is_type(val, json_type_array)) {
			t = NULL;
			for (i = 0; i < json_object_array_length(val); i++) {
				v = json_object_array_get_idx(val, i);
				if (!json_object_is_type(v, json_type_string))
					continue;
				if (strcmp(json_object_get_string(v), "null")
				    == 0)
					nullable = 1;
				else if (t == NULL)
					t = json_object_get_string(v);
			}
			if (t != NULL)
				json_object_object_add(out, key,
				    json_object_new_string(t));
		} else if (is_schema_key(key))
			json_object_object_add(out, key, json_object_get(val));
	}
	if (nullable)
		json_object_object_add(out, "nullable",
		    json_object_new_boolean(1));
	return out;
}

/* Parameters worth sending: Gemini refuses an object without properties. */
static int
has_properties(struct json_object *params)
{
	struct json_object	*props;

	return json_object_is_type(params, json_type_object) &&
	    json_object_object_get_ex(params, "properties", &props) &&
	    json_object_is_type(props, json_type_object) &&
	    json_object_object_length(props) > 0;
}

/* OpenAI tools -> one Gemini tool of functionDeclarations. */
static struct json_object *
convert_tools(struct json_object *tools)
{
	struct json_object	*decls, *t, *fn, *params, *d, *out, *tool;
	const char		*s;
	size_t			 i;

	decls = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		if (!json_object_object_get_ex(t, "function", &fn))
			continue;
		d = json_object_new_object();
		s = provider_json_str(fn, "name");
		json_object_object_add(d, "name",
		    json_object_new_string(s ? s : ""));
		if ((s = provider_json_str(fn, "description")) != NULL)
			json_object_object_add(d, "description",
			    json_object_new_string(s));
		if (json_object_object_get_ex(fn, "parameters", &params) &&
		    has_properties(params))
			json_object_object_add(d, "parameters",
			    clean_schema(params, 0));
		json_object_array_add(decls, d);
	}
	tool = json_object_new_object();
	json_object_object_add(tool, "functionDeclarations", decls);
	out = json_object_new_array();
	json_object_array_add(out, tool);
	return out;
}

/* OpenAI tool_choice -> toolConfig; NULL when there is none. */
static struct json_object *
convert_tool_choice(struct json_object *tc)
{
	struct json_object	*fcc, *cfg, *fn, *names;
	const char		*s, *mode, *name = NULL;

	if (tc == NULL)
		return NULL;
	s = json_object_is_type(tc, json_type_string) ?
	    json_object_get_string(tc) : NULL;
	if (s != NULL && strcmp(s, "none") == 0)
		mode = "NONE";
	else if (s != NULL && strcmp(s, "required") == 0)
		mode = "ANY";
	else if (s == NULL && json_object_object_get_ex(tc, "function", &fn) &&
	    (name = provider_json_str(fn, "name")) != NULL)
		mode = "ANY";
	else
		mode = "AUTO";
	fcc = json_object_new_object();
	json_object_object_add(fcc, "mode", json_object_new_string(mode));
	if (name != NULL) {
		names = json_object_new_array();
		json_object_array_add(names, json_object_new_string(name));
		json_object_object_add(fcc, "allowedFunctionNames", names);
	}
	cfg = json_object_new_object();
	json_object_object_add(cfg, "functionCallingConfig", fcc);
	return cfg;
}

/* Copy req[from] to out[to] when the client set it (null is unset). */
static void
copy_set(struct json_object *out, const char *to, struct json_object *req,
    const char *from)
{
	struct json_object	*v;

	if (json_object_object_get_ex(req, from, &v) && v != NULL)
		json_object_object_add(out, to, json_object_get(v));
}

/* generationConfig from the sampling fields; NULL when it would be empty. */
static struct json_object *
generation_config(const struct candidate *c, const struct chat_in *in)
{
	struct json_object	*req = in->req;
	struct json_object	*g, *v, *stop, *rf, *js, *schema;
	const char		*type;
	size_t			 i;

	g = json_object_new_object();
	copy_set(g, "temperature", req, "temperature");
	copy_set(g, "topP", req, "top_p");
	copy_set(g, "topK", req, "top_k");
	copy_set(g, "seed", req, "seed");
	json_object_object_add(g, "maxOutputTokens",
	    json_object_new_int64(plan_max_tokens(c, in->client_max)));
	if (json_object_object_get_ex(req, "stop", &v) && v != NULL) {
		stop = json_object_new_array();
		if (json_object_is_type(v, json_type_string))
			json_object_array_add(stop, json_object_get(v));
		else
			for (i = 0; i < json_object_array_length(v); i++)
				json_object_array_add(stop, json_object_get(
				    json_object_array_get_idx(v, i)));
		if (json_object_array_length(stop) > 0)
			json_object_object_add(g, "stopSequences", stop);
		else
			json_object_put(stop);
	}
	if (json_object_object_get_ex(req, "response_format", &rf) &&
	    (type = provider_json_str(rf, "type")) != NULL &&
	    strcmp(type, "text") != 0) {
		json_object_object_add(g, "responseMimeType",
		    json_object_new_string("application/json"));
		if (strcmp(type, "json_schema") == 0 &&
		    json_object_object_get_ex(rf, "json_schema", &js) &&
		    json_object_object_get_ex(js, "schema", &schema) &&
		    json_object_is_type(schema, json_type_object))
			json_object_object_add(g, "responseSchema",
			    clean_schema(schema, 0));
	}
	if (json_object_object_length(g) == 0) {
		json_object_put(g);
		return NULL;
	}
	return g;
}

/* base_url/models/{model}:{method}, the model id kept inside its segment. */
static int
model_url(struct provider_call *call, const struct candidate *c, int stream)
{
	const char	*m = c->upstream;

	/* Clients may name a model "models/gemini-2.5-flash". */
	if (strncmp(m, "models/", 7) == 0)
		m += 7;
	if (provider_url(call, c->provider, "/models/") == -1 ||
	    append_escaped(&call->url, m) == -1)
		return -1;
	return buf_puts(&call->url, stream ?
	    ":streamGenerateContent?alt=sse" : ":generateContent") == BUF_OK ?
	    0 : -1;
}

static int
chat_request(const struct candidate *c, const struct chat_in *in,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*out, *contents, *system, *v, *o;
	int			 rc = -1;

	out = json_object_new_object();
	contents = json_object_new_array();
	system = json_object_new_array();
	json_object_object_get_ex(in->req, "messages", &v);
	if (convert_messages(v, contents, system, e) == -1) {
		json_object_put(contents);
		json_object_put(system);
		goto done;
	}
	if (json_object_array_length(system) > 0) {
		o = json_object_new_object();
		json_object_object_add(o, "parts", system);
		json_object_object_add(out, "systemInstruction", o);
	} else
		json_object_put(system);
	json_object_object_add(out, "contents", contents);
	if (json_object_object_get_ex(in->req, "tools", &v) && v != NULL &&
	    json_object_array_length(v) > 0) {
		json_object_object_add(out, "tools", convert_tools(v));
		json_object_object_get_ex(in->req, "tool_choice", &v);
		if ((o = convert_tool_choice(v)) != NULL)
			json_object_object_add(out, "toolConfig", o);
	}
	if ((o = generation_config(c, in)) != NULL)
		json_object_object_add(out, "generationConfig", o);
	if (provider_body(call, out) == -1 ||
	    model_url(call, c, in->stream) == -1 ||
	    provider_headers(call, c->provider, "x-goog-api-key", "") == -1)
		goto done;
	rc = 0;
done:
	json_object_put(out);
	return rc;
}

/*
 * usageMetadata -> struct usage. Streams repeat it cumulatively in every
 * chunk, so each reading replaces the last. Thinking tokens are billed as
 * output, tool-use prompt tokens as input; the cached ones are part of
 * promptTokenCount already.
 */
static void
read_usage(struct json_object *um, struct usage *out)
{
	int64_t	 p, c, th, tu, k;

	if (um == NULL || !json_object_is_type(um, json_type_object))
		return;
	p = provider_json_tokens(um, "promptTokenCount");
	c = provider_json_tokens(um, "candidatesTokenCount");
	th = provider_json_tokens(um, "thoughtsTokenCount");
	tu = provider_json_tokens(um, "toolUsePromptTokenCount");
	k = provider_json_tokens(um, "cachedContentTokenCount");
	if (p < 0 && c < 0 && th < 0)
		return;
	out->prompt = (p > 0 ? p : 0) + (tu > 0 ? tu : 0);
	out->completion = (c > 0 ? c : 0) + (th > 0 ? th : 0);
	out->cached = k > 0 ? k : 0;
	out->known = 1;
}

/* The response id, or a random one when Gemini sent none. */
static void
response_id(struct json_object *o, char *dst, size_t len)
{
	const char	*rid = provider_json_str(o, "responseId");

	if (rid != NULL && *rid != '\0' && strlen(rid) < 100)
		snprintf(dst, len, "%s", rid);
	else
		snprintf(dst, len, "gemini-%08lx%08lx", (unsigned long)random(),
		    (unsigned long)time(NULL));
}

/*
 * An OpenAI tool call for a functionCall part. Gemini gives calls no id,
 * so the n-th call of response rid is called "call_<rid>_<n>": unique
 * across turns, and stable within the response.
 */
static struct json_object *
tool_call(struct json_object *fc, const char *rid, int n)
{
	struct json_object	*args = NULL;
	const char		*id;
	char			 gen[160];

	json_object_object_get_ex(fc, "args", &args);
	if ((id = provider_json_str(fc, "id")) == NULL || *id == '\0') {
		snprintf(gen, sizeof(gen), CALL_ID_PREFIX "%s_%d", rid, n);
		id = gen;
	}
	return provider_tool_call(id, provider_json_str(fc, "name"), args);
}

/* The parts of the first candidate, or NULL. */
static struct json_object *
candidate_parts(struct json_object *cand)
{
	struct json_object	*content, *parts;

	if (cand == NULL || !json_object_object_get_ex(cand, "content",
	    &content) || !json_object_object_get_ex(content, "parts", &parts) ||
	    !json_object_is_type(parts, json_type_array))
		return NULL;
	return parts;
}

/*
 * The OpenAI finish_reason of a candidate: STOP with function calls is
 * tool_calls; a prompt blocked before any candidate is content_filter.
 * NULL while the candidate is unfinished.
 */
static const char *
finish_of(struct json_object *o, struct json_object *cand, int calls)
{
	struct json_object	*pf;
	const char		*f;

	if (cand == NULL) {
		if (json_object_object_get_ex(o, "promptFeedback", &pf) &&
		    provider_json_str(pf, "blockReason") != NULL)
			return "content_filter";
		return NULL;
	}
	if ((f = provider_finish(finish_reasons, provider_json_str(cand,
	    "finishReason"))) == NULL)
		return NULL;
	return calls > 0 && strcmp(f, "stop") == 0 ? "tool_calls" : f;
}

/* The first candidate of a response, or NULL. */
static struct json_object *
first_candidate(struct json_object *o)
{
	struct json_object	*cands;

	if (!json_object_object_get_ex(o, "candidates", &cands) ||
	    !json_object_is_type(cands, json_type_array) ||
	    json_object_array_length(cands) == 0)
		return NULL;
	return json_object_array_get_idx(cands, 0);
}

static int
chat_response(const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	struct json_object	*o, *cand, *parts, *p, *fc, *v, *msg, *calls,
				*ch, *choices, *res;
	struct buf		 text, thought;
	const char		*t, *f;
	char			 rid[128];
	size_t			 i;

	o = provider_parse(body, len);
	cand = first_candidate(o);
	if (o == NULL || (cand == NULL &&
	    !json_object_object_get_ex(o, "promptFeedback", NULL))) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed response",
		    c->provider->name);
		return -1;
	}
	response_id(o, rid, sizeof(rid));
	buf_init(&text, 1 << 30);
	buf_init(&thought, 1 << 30);
	calls = json_object_new_array();
	parts = candidate_parts(cand);
	for (i = 0; parts != NULL && i < json_object_array_length(parts); i++) {
		p = json_object_array_get_idx(parts, i);
		if (json_object_object_get_ex(p, "functionCall", &fc))
			json_object_array_add(calls, tool_call(fc, rid,
			    (int)json_object_array_length(calls)));
		else if ((t = provider_json_str(p, "text")) != NULL)
			buf_puts(json_object_object_get_ex(p, "thought", &v) &&
			    json_object_get_boolean(v) ? &thought : &text, t);
	}
	if (json_object_object_get_ex(o, "usageMetadata", &v))
		read_usage(v, u);

	msg = json_object_new_object();
	json_object_object_add(msg, "role", json_object_new_string("assistant"));
	json_object_object_add(msg, "content", text.len > 0 ?
	    json_object_new_string(text.data) : NULL);
	if (thought.len > 0)
		json_object_object_add(msg, "reasoning_content",
		    json_object_new_string(thought.data));
	f = finish_of(o, cand, (int)json_object_array_length(calls));
	if (json_object_array_length(calls) > 0)
		json_object_object_add(msg, "tool_calls", calls);
	else
		json_object_put(calls);
	ch = json_object_new_object();
	json_object_object_add(ch, "index", json_object_new_int(0));
	json_object_object_add(ch, "message", msg);
	json_object_object_add(ch, "logprobs", NULL);
	json_object_object_add(ch, "finish_reason",
	    json_object_new_string(f ? f : "stop"));
	choices = json_object_new_array();
	json_object_array_add(choices, ch);

	res = json_object_new_object();
	json_object_object_add(res, "id", json_object_new_string(rid));
	json_object_object_add(res, "object",
	    json_object_new_string("chat.completion"));
	json_object_object_add(res, "created",
	    json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(res, "model", json_object_new_string(c->name));
	json_object_object_add(res, "choices", choices);
	json_object_object_add(res, "usage", provider_usage_object(u));
	buf_free(&text);
	buf_free(&thought);
	json_object_put(o);
	*out = res;
	return 0;
}

/*
 * A whole function call in one delta: Gemini never splits one across
 * chunks, so id, name and the complete arguments travel together.
 */
static int
emit_call(struct stream_state *st, struct json_object *fc)
{
	struct json_object	*tc, *arr, *fn;
	const char		*a;

	tc = tool_call(fc, st->id, st->tools);
	json_object_object_add(tc, "index", json_object_new_int(st->tools));
	st->tools++;
	if (json_object_object_get_ex(tc, "function", &fn) &&
	    (a = provider_json_str(fn, "arguments")) != NULL)
		st->chars += (int64_t)strlen(a);
	arr = json_object_new_array();
	json_object_array_add(arr, tc);
	return provider_emit_delta(st, "tool_calls", arr, NULL);
}

/* The parts of one chunk, in order, as OpenAI deltas. */
static int
emit_parts(struct stream_state *st, struct json_object *parts)
{
	struct json_object	*p, *fc, *v;
	const char		*t;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; parts != NULL && i < json_object_array_length(parts) &&
	    rc == 0; i++) {
		p = json_object_array_get_idx(parts, i);
		if (json_object_object_get_ex(p, "functionCall", &fc))
			rc = emit_call(st, fc);
		else if ((t = provider_json_str(p, "text")) != NULL &&
		    *t != '\0') {
			st->chars += (int64_t)strlen(t);
			rc = provider_emit_delta(st, json_object_object_get_ex(p,
			    "thought", &v) && json_object_get_boolean(v) ?
			    "reasoning_content" : "content",
			    json_object_new_string(t), NULL);
		}
	}
	return rc;
}

/* A google.rpc.Status {"code","message","status"} as an OpenAI error. */
static void
rpc_error(struct json_object *err, struct provider_error *e)
{
	struct json_object	*details, *d;
	const char		*msg, *status, *reason;
	size_t			 i;
	char			*p;

	if ((msg = provider_json_str(err, "message")) != NULL)
		snprintf(e->message, sizeof(e->message), "%s", msg);
	if ((status = provider_json_str(err, "status")) != NULL) {
		snprintf(e->code, sizeof(e->code), "%s", status);
		snprintf(e->type, sizeof(e->type), "%s", status);
		for (p = e->type; *p != '\0'; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
	}
	if (!json_object_object_get_ex(err, "details", &details) ||
	    !json_object_is_type(details, json_type_array))
		return;
	for (i = 0; i < json_object_array_length(details); i++) {
		d = json_object_array_get_idx(details, i);
		/* RetryInfo {"retryDelay":"41s"}: the body's Retry-After. */
		if ((msg = provider_json_str(d, "retryDelay")) != NULL &&
		    atol(msg) > 0)
			e->retry_after = atol(msg);
		reason = provider_json_str(d, "reason");
		if (reason == NULL || strcmp(reason, "API_KEY_INVALID") != 0)
			continue;
		/*
		 * A bad key is Gemini's 400, not a 401: it is the gateway's
		 * credential, so say so rather than blame the client.
		 */
		provider_error_set(e, "upstream_error", "upstream_auth_error",
		    "the provider refused the gateway's API key "
		    "(API_KEY_INVALID)");
		e->status = 401;	/* judged as the auth failure it is */
		return;
	}
}

static int
chat_event(struct stream_state *st, const struct sse_event *ev)
{
	struct json_object	*o, *cand, *v, *d;
	const char		*f;
	int			 rc = 0;

	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream event", st->cand->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(o, "error", &v) &&
	    json_object_is_type(v, json_type_object)) {
		provider_error_set(&st->err, "upstream_error", NULL,
		    "provider '%s' failed mid-stream", st->cand->provider->name);
		rpc_error(v, &st->err);
		st->failed = 1;
		json_object_put(o);
		return -1;
	}
	if (st->id[0] == '\0') {
		response_id(o, st->id, sizeof(st->id));
		d = json_object_new_object();
		json_object_object_add(d, "role",
		    json_object_new_string("assistant"));
		json_object_object_add(d, "content", json_object_new_string(""));
		v = provider_chunk(st, d, NULL);
		rc = st->emit(st->ctx, v);
		json_object_put(v);
		if (rc != 0)
			goto done;
	}
	/* Cumulative in every chunk: set, never add. */
	if (json_object_object_get_ex(o, "usageMetadata", &v))
		read_usage(v, &st->usage);
	cand = first_candidate(o);
	if ((rc = emit_parts(st, candidate_parts(cand))) != 0)
		goto done;
	if ((f = finish_of(o, cand, st->tools)) != NULL && !st->done) {
		/* No [DONE] and no end event: the finish is the end. */
		snprintf(st->finish, sizeof(st->finish), "%s", f);
		st->done = 1;
		if ((rc = provider_emit_delta(st, NULL, NULL, st->finish)) == 0)
			rc = provider_emit_usage(st);
	}
done:
	json_object_put(o);
	return rc;
}

/* {"error":{"code":404,"message":"...","status":"NOT_FOUND","details":[]}} */
static void
error(long status, const char *body, size_t len, struct provider_error *e)
{
	struct json_object	*o, *err;

	provider_error_set(e, status >= 500 ? "upstream_error" :
	    "invalid_request_error", NULL, "upstream answered HTTP %ld", status);
	if ((o = provider_parse(body, len)) == NULL)
		return;
	if (json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_object))
		rpc_error(err, e);
	json_object_put(o);
}

/* Gemini's model id without "models/", if it needs no escape in a URL. */
static const char *
embed_model_id(const char *upstream)
{
	const char	*id, *s;

	id = strncmp(upstream, "models/", 7) == 0 ? upstream + 7 : upstream;
	if (*id == '\0')
		return NULL;
	for (s = id; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-~@+", *s) == NULL)
			return NULL;
	return id;
}

/* One EmbedContentRequest for one text. */
static struct json_object *
embed_one(const char *model, struct json_object *text, int64_t dims)
{
	struct json_object	*o, *content, *parts, *part;

	part = json_object_new_object();
	json_object_object_add(part, "text", json_object_get(text));
	parts = json_object_new_array();
	json_object_array_add(parts, part);
	content = json_object_new_object();
	json_object_object_add(content, "parts", parts);
	o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_string(model));
	json_object_object_add(o, "content", content);
	if (dims > 0)
		json_object_object_add(o, "outputDimensionality",
		    json_object_new_int64(dims));
	return o;
}

static void
embed_unsupported(struct provider_error *e, const char *param,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
embed_unsupported(struct provider_error *e, const char *param,
    const char *fmt, ...)
{
	char	 msg[sizeof(e->message)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	provider_error_set(e, "invalid_request_error", "unsupported_request",
	    "%s", msg);
	snprintf(e->param, sizeof(e->param), "%s", param);
}

/*
 * Embeddings: embedContent for one string, batchEmbedContents (one request
 * per string, each naming the model) for an array; dimensions becomes
 * outputDimensionality. The key goes in x-goog-api-key, never the URL.
 */
static int
embed_request(const struct candidate *c, struct json_object *req,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*in, *v, *body, *list;
	enum embeddings_input	 kind;
	const char		*id, *method;
	char			 model[MODEL_NAME_MAX + 8], path[MODEL_NAME_MAX + 64];
	int64_t			 dims = 0;
	size_t			 i;
	int			 rc = 0;

	if ((id = embed_model_id(c->upstream)) == NULL) {
		embed_unsupported(e, "model", "model id '%s' of provider '%s' "
		    "cannot be used in a Gemini URL", c->upstream,
		    c->provider->name);
		return -1;
	}
	json_object_object_get_ex(req, "input", &in);
	kind = embeddings_input_kind(in);
	if (kind == EMBEDDINGS_TOKENS || kind == EMBEDDINGS_TOKEN_LISTS) {
		embed_unsupported(e, "input", "provider '%s' (type gemini) "
		    "embeds text only, not token ids", c->provider->name);
		return -1;
	}
	if (json_object_object_get_ex(req, "dimensions", &v) &&
	    json_object_is_type(v, json_type_int))
		dims = json_object_get_int64(v);
	snprintf(model, sizeof(model), "models/%s", id);
	if (kind == EMBEDDINGS_TEXT) {
		body = embed_one(model, in, dims);
		method = "embedContent";
	} else {
		list = json_object_new_array();
		for (i = 0; i < json_object_array_length(in); i++)
			json_object_array_add(list, embed_one(model,
			    json_object_array_get_idx(in, i), dims));
		body = json_object_new_object();
		json_object_object_add(body, "requests", list);
		method = "batchEmbedContents";
	}
	snprintf(path, sizeof(path), "/models/%s:%s", id, method);
	if (provider_body(call, body) == -1 ||
	    provider_url(call, c->provider, path) == -1 ||
	    provider_headers(call, c->provider, "x-goog-api-key", "") == -1)
		rc = -1;
	json_object_put(body);
	return rc;
}

/* The values array of a ContentEmbedding, or NULL. */
static struct json_object *
embed_values(struct json_object *emb)
{
	struct json_object	*v;

	if (emb == NULL || !json_object_object_get_ex(emb, "values", &v) ||
	    !json_object_is_type(v, json_type_array))
		return NULL;
	return v;
}

/*
 * {"embedding":{"values":[...]}} or {"embeddings":[{"values":[...]}...]}
 * (one per input, in order) -> the OpenAI list of floats. Gemini reports
 * no token counts: u stays unknown.
 */
static int
embed_response(const struct candidate *c, struct json_object *req,
    const char *body, size_t len, struct json_object **out, struct usage *u,
    struct provider_error *e)
{
	struct json_object	*o, *in, *embs = NULL, *values, *data, *item;
	struct json_object	*res = NULL;
	size_t			 i, n;

	json_object_object_get_ex(req, "input", &in);
	n = embeddings_input_count(in);
	if ((o = provider_parse(body, len)) == NULL)
		goto bad;
	if (embeddings_input_kind(in) != EMBEDDINGS_TEXT &&
	    (!json_object_object_get_ex(o, "embeddings", &embs) ||
	    !json_object_is_type(embs, json_type_array) ||
	    json_object_array_length(embs) != n))
		goto bad;
	data = json_object_new_array();
	res = json_object_new_object();
	json_object_object_add(res, "object", json_object_new_string("list"));
	json_object_object_add(res, "data", data);
	for (i = 0; i < n; i++) {
		if (embs != NULL)
			values = embed_values(json_object_array_get_idx(embs,
			    i));
		else
			values = json_object_object_get_ex(o, "embedding",
			    &item) ? embed_values(item) : NULL;
		if (values == NULL)
			goto bad;
		item = json_object_new_object();
		json_object_object_add(item, "object",
		    json_object_new_string("embedding"));
		json_object_object_add(item, "index",
		    json_object_new_int64((int64_t)i));
		json_object_object_add(item, "embedding",
		    json_object_get(values));
		json_object_array_add(data, item);
	}
	u->known = 0;
	json_object_put(o);
	*out = res;
	return 0;
bad:
	json_object_put(res);
	json_object_put(o);
	provider_error_set(e, "upstream_error", "bad_upstream_response",
	    "provider '%s' returned malformed embeddings", c->provider->name);
	return -1;
}

const struct provider_ops provider_gemini = {
	.type = "gemini",
	.chat_request = chat_request,
	.chat_response = chat_response,
	.chat_event = chat_event,
	.error = error,
	.embeddings_request = embed_request,
	.embeddings_response = embed_response,
};
