/*
 * provider-yandex.c: YandexGPT's native protocol (POST
 * /foundationModels/v1/completion). Its streams repeat the whole text so
 * far in every message; they become OpenAI deltas here.
 */
#include <sys/random.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "provider.h"

#define COMPLETION_PATH	"/foundationModels/v1/completion"

/*
 * Alternative statuses; NULL marks the ones that are not final. The index
 * is the enum's number, in case a gateway renders enums as numbers.
 */
static const struct finish_map finish_reasons[] = {
	{ "ALTERNATIVE_STATUS_UNSPECIFIED", NULL },
	{ "ALTERNATIVE_STATUS_PARTIAL", NULL },
	{ "ALTERNATIVE_STATUS_TRUNCATED_FINAL", "length" },
	{ "ALTERNATIVE_STATUS_FINAL", "stop" },
	{ "ALTERNATIVE_STATUS_CONTENT_FILTER", "content_filter" },
	{ "ALTERNATIVE_STATUS_TOOL_CALLS", "tool_calls" },
	{ NULL, NULL },
};

/* google.rpc codes, indexed by number, as OpenAI-style error codes. */
static const char *const grpc_codes[] = {
	"ok", "cancelled", "unknown", "invalid_argument", "deadline_exceeded",
	"not_found", "already_exists", "permission_denied",
	"resource_exhausted", "failed_precondition", "aborted", "out_of_range",
	"unimplemented", "internal", "unavailable", "data_loss",
	"unauthenticated",
};

/* How api_key is sent, by provider key auth_scheme (default the first). */
static const char *const auth_schemes[] = { "Api-Key", "Bearer" };

#define NELEM(a)	(sizeof(a) / sizeof((a)[0]))

/*
 * A token count: Yandex sends int64 as a JSON string ("28"); a number is
 * taken too. -1 when absent, negative, or anything but plain digits.
 */
static int64_t
json_count(struct json_object *o, const char *name)
{
	struct json_object	*v;
	const char		*s;
	int64_t			 n = 0;

	if (o == NULL || !json_object_object_get_ex(o, name, &v))
		return -1;
	if (json_object_is_type(v, json_type_int))
		return json_object_get_int64(v) >= 0 ?
		    json_object_get_int64(v) : -1;
	if (!json_object_is_type(v, json_type_string))
		return -1;
	s = json_object_get_string(v);
	if (*s == '\0' || strlen(s) > 18)
		return -1;
	for (; *s != '\0'; s++) {
		if (!isdigit((unsigned char)*s))
			return -1;
		n = n * 10 + (*s - '0');
	}
	return n;
}

/* ContentUsage -> struct usage when both counts are sound; set, never add. */
static void
read_usage(struct json_object *u, struct usage *out)
{
	int64_t	 in, c;

	if (u == NULL || !json_object_is_type(u, json_type_object))
		return;
	in = json_count(u, "inputTextTokens");
	c = json_count(u, "completionTokens");
	if (in < 0 || c < 0)
		return;
	/* As provider_json_tokens(): summed later, so bounded here. */
	if (in > MONEY_TOKENS_MAX)
		in = MONEY_TOKENS_MAX;
	if (c > MONEY_TOKENS_MAX)
		c = MONEY_TOKENS_MAX;
	out->prompt = in;
	out->completion = c;
	out->cached = 0;
	out->known = 1;
}

/*
 * The error in a body: {"error":{"grpcCode","httpCode","message",
 * "httpStatus"}} (Yandex's gateway) or {"code","message","details"}
 * (plain grpc-gateway). Returns 0 when o holds neither.
 */
static int
read_error(struct json_object *o, struct provider_error *e)
{
	struct json_object	*err;
	const char		*msg;
	int64_t			 code;

	if (json_object_object_get_ex(o, "error", &err) &&
	    json_object_is_type(err, json_type_string)) {
		snprintf(e->message, sizeof(e->message), "%s",
		    json_object_get_string(err));
		return 1;
	}
	if (!json_object_object_get_ex(o, "error", &err) ||
	    !json_object_is_type(err, json_type_object)) {
		if (provider_json_str(o, "message") == NULL)
			return 0;
		err = o;
	}
	if ((msg = provider_json_str(err, "message")) != NULL)
		snprintf(e->message, sizeof(e->message), "%s", msg);
	if ((code = provider_json_int(err, "grpcCode")) < 0)
		code = provider_json_int(err, "code");
	if (code >= 0 && (size_t)code < NELEM(grpc_codes))
		snprintf(e->code, sizeof(e->code), "%s", grpc_codes[code]);
	return 1;
}

/*
 * The OpenAI finish_reason of an alternative's status (a name or its
 * number); NULL while the alternative is not final.
 */
static const char *
alt_finish(struct json_object *alt)
{
	struct json_object	*v;
	int64_t			 n;

	if (!json_object_object_get_ex(alt, "status", &v) || v == NULL)
		return NULL;
	if (json_object_is_type(v, json_type_int)) {
		n = json_object_get_int64(v);
		if (n < 0 || (size_t)n >= NELEM(finish_reasons) - 1)
			return "stop";
		return finish_reasons[n].openai;
	}
	return provider_finish(finish_reasons, json_object_get_string(v));
}

/*
 * The first alternative of a completion, wrapped in "result" (streams and
 * the docs' examples) or not (the API reference); NULL when there is none.
 */
static struct json_object *
first_alt(struct json_object *o, struct json_object **result)
{
	struct json_object	*r, *alts;

	if (!json_object_object_get_ex(o, "result", &r) ||
	    !json_object_is_type(r, json_type_object))
		r = o;
	*result = r;
	if (!json_object_object_get_ex(r, "alternatives", &alts) ||
	    !json_object_is_type(alts, json_type_array) ||
	    json_object_array_length(alts) == 0)
		return NULL;
	return json_object_array_get_idx(alts, 0);
}

/*
 * Text of an OpenAI content value: a string, or its text parts joined by
 * newlines. -1 with e filled for parts Yandex cannot take (images).
 */
static int
content_text(struct json_object *c, struct buf *out, size_t at,
    struct provider_error *e)
{
	struct json_object	*part;
	const char		*type, *t;
	size_t			 i;

	buf_reset(out);
	if (c == NULL)
		return 0;
	if (json_object_is_type(c, json_type_string))
		return buf_puts(out, json_object_get_string(c)) == BUF_OK ?
		    0 : -1;
	for (i = 0; json_object_is_type(c, json_type_array) &&
	    i < json_object_array_length(c); i++) {
		part = json_object_array_get_idx(c, i);
		type = provider_json_str(part, "type");
		if (type == NULL || strcmp(type, "text") != 0) {
			provider_error_set(e, "invalid_request_error",
			    "invalid_value", "provider type yandex takes text "
			    "only, not '%s' content parts",
			    type ? type : "untyped");
			snprintf(e->param, sizeof(e->param),
			    "messages[%zu].content", at);
			return -1;
		}
		if ((t = provider_json_str(part, "text")) == NULL)
			continue;
		if ((out->len > 0 && buf_puts(out, "\n") != BUF_OK) ||
		    buf_puts(out, t) != BUF_OK)
			return -1;
	}
	return 0;
}

static struct json_object *
text_message(const char *role, const char *text)
{
	struct json_object	*m = json_object_new_object();

	json_object_object_add(m, "role", json_object_new_string(role));
	json_object_object_add(m, "text", json_object_new_string(text));
	return m;
}

/* OpenAI assistant tool_calls -> {"role":"assistant","toolCallList":...}. */
static struct json_object *
tool_call_message(struct json_object *calls, size_t at,
    struct provider_error *e)
{
	struct json_object	*list, *call, *fn, *args, *fc, *tc, *m, *l;
	const char		*a, *name;
	size_t			 i;

	list = json_object_new_array();
	for (i = 0; i < json_object_array_length(calls); i++) {
		call = json_object_array_get_idx(calls, i);
		if (!json_object_object_get_ex(call, "function", &fn))
			continue;
		/* No arguments at all ("" from some clients) is {}. */
		if ((a = provider_json_str(fn, "arguments")) == NULL ||
		    *a == '\0')
			a = "{}";
		if ((args = provider_parse(a, strlen(a))) == NULL) {
			provider_error_set(e, "invalid_request_error",
			    "invalid_value", "tool call arguments must be a "
			    "JSON object for this provider");
			snprintf(e->param, sizeof(e->param),
			    "messages[%zu].tool_calls", at);
			json_object_put(list);
			return NULL;
		}
		name = provider_json_str(fn, "name");
		fc = json_object_new_object();
		json_object_object_add(fc, "name",
		    json_object_new_string(name ? name : ""));
		json_object_object_add(fc, "arguments", args);
		tc = json_object_new_object();
		json_object_object_add(tc, "functionCall", fc);
		json_object_array_add(list, tc);
	}
	l = json_object_new_object();
	json_object_object_add(l, "toolCalls", list);
	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "toolCallList", l);
	return m;
}

/*
 * The function name of the tool call id answered by message at: Yandex
 * matches results by name, OpenAI by id. NULL when no earlier assistant
 * message made that call.
 */
static const char *
called_name(struct json_object *msgs, size_t at, const char *id)
{
	struct json_object	*m, *calls, *call, *fn;
	const char		*role, *cid;
	size_t			 i, k;

	for (i = at; id != NULL && i-- > 0;) {
		m = json_object_array_get_idx(msgs, i);
		role = provider_json_str(m, "role");
		if (role == NULL || strcmp(role, "assistant") != 0 ||
		    !json_object_object_get_ex(m, "tool_calls", &calls) ||
		    !json_object_is_type(calls, json_type_array))
			continue;
		for (k = 0; k < json_object_array_length(calls); k++) {
			call = json_object_array_get_idx(calls, k);
			cid = provider_json_str(call, "id");
			if (cid != NULL && strcmp(cid, id) == 0 &&
			    json_object_object_get_ex(call, "function", &fn))
				return provider_json_str(fn, "name");
		}
	}
	return NULL;
}

/*
 * A tool result joins the user toolResultList message before it, or
 * starts one: Yandex takes all results of one turn in one message.
 */
static void
add_tool_result(struct json_object *out, const char *name, const char *text)
{
	struct json_object	*last, *l, *list, *fr, *tr;
	size_t			 n = json_object_array_length(out);

	fr = json_object_new_object();
	json_object_object_add(fr, "name", json_object_new_string(name));
	json_object_object_add(fr, "content", json_object_new_string(text));
	tr = json_object_new_object();
	json_object_object_add(tr, "functionResult", fr);
	last = n > 0 ? json_object_array_get_idx(out, n - 1) : NULL;
	if (last != NULL && json_object_object_get_ex(last, "toolResultList",
	    &l) && json_object_object_get_ex(l, "toolResults", &list)) {
		json_object_array_add(list, tr);
		return;
	}
	list = json_object_new_array();
	json_object_array_add(list, tr);
	l = json_object_new_object();
	json_object_object_add(l, "toolResults", list);
	last = json_object_new_object();
	json_object_object_add(last, "role", json_object_new_string("user"));
	json_object_object_add(last, "toolResultList", l);
	json_object_array_add(out, last);
}

/* OpenAI messages -> Yandex messages (text, toolCallList, toolResultList). */
static int
convert_messages(struct json_object *in, struct json_object *out,
    struct provider_error *e)
{
	struct json_object	*m, *c, *calls, *tm;
	struct buf		 text;
	const char		*role, *name;
	size_t			 i;
	int			 rc = -1;

	buf_init(&text, 1 << 30);
	for (i = 0; i < json_object_array_length(in); i++) {
		m = json_object_array_get_idx(in, i);
		role = provider_json_str(m, "role");
		c = NULL;
		json_object_object_get_ex(m, "content", &c);
		if (content_text(c, &text, i, e) == -1)
			goto done;
		if (strcmp(role, "tool") == 0 || strcmp(role, "function") == 0) {
			name = called_name(in, i, provider_json_str(m,
			    "tool_call_id"));
			if (name == NULL)
				name = provider_json_str(m, "name");
			if (name == NULL) {
				provider_error_set(e, "invalid_request_error",
				    "invalid_value", "the tool message answers "
				    "no earlier tool call; provider type yandex "
				    "needs the function name");
				snprintf(e->param, sizeof(e->param),
				    "messages[%zu].tool_call_id", i);
				goto done;
			}
			add_tool_result(out, name, text.data ? text.data : "");
			continue;
		}
		if (strcmp(role, "assistant") != 0) {
			/* system, developer and user all carry text. */
			json_object_array_add(out, text_message(strcmp(role,
			    "user") == 0 ? "user" : "system",
			    text.data ? text.data : ""));
			continue;
		}
		/* One content per message: text first, then the calls. */
		if (text.len > 0)
			json_object_array_add(out, text_message("assistant",
			    text.data));
		if (json_object_object_get_ex(m, "tool_calls", &calls) &&
		    json_object_is_type(calls, json_type_array) &&
		    json_object_array_length(calls) > 0) {
			if ((tm = tool_call_message(calls, i, e)) == NULL)
				goto done;
			json_object_array_add(out, tm);
		}
	}
	rc = 0;
done:
	buf_free(&text);
	return rc;
}

/* OpenAI tools -> [{"function":{name, description, parameters, strict}}]. */
static struct json_object *
convert_tools(struct json_object *tools)
{
	struct json_object	*out, *t, *fn, *f, *v, *w;
	const char		*s;
	size_t			 i;

	out = json_object_new_array();
	for (i = 0; i < json_object_array_length(tools); i++) {
		t = json_object_array_get_idx(tools, i);
		if (!json_object_object_get_ex(t, "function", &fn))
			continue;
		f = json_object_new_object();
		s = provider_json_str(fn, "name");
		json_object_object_add(f, "name", json_object_new_string(s ? s :
		    ""));
		if ((s = provider_json_str(fn, "description")) != NULL)
			json_object_object_add(f, "description",
			    json_object_new_string(s));
		if (json_object_object_get_ex(fn, "parameters", &v) &&
		    json_object_is_type(v, json_type_object))
			json_object_object_add(f, "parameters",
			    json_object_get(v));
		if (json_object_object_get_ex(fn, "strict", &v) &&
		    json_object_is_type(v, json_type_boolean))
			json_object_object_add(f, "strict", json_object_get(v));
		w = json_object_new_object();
		json_object_object_add(w, "function", f);
		json_object_array_add(out, w);
	}
	return out;
}

/* OpenAI tool_choice -> {"mode": NONE|AUTO|REQUIRED} or {"functionName"}. */
static struct json_object *
convert_tool_choice(struct json_object *tc)
{
	static const char *const modes[][2] = {
		{ "none", "NONE" }, { "auto", "AUTO" },
		{ "required", "REQUIRED" },
	};
	struct json_object	*out, *fn;
	const char		*s, *name;
	size_t			 i;

	if (json_object_is_type(tc, json_type_string)) {
		s = json_object_get_string(tc);
		for (i = 0; i < NELEM(modes); i++)
			if (strcmp(s, modes[i][0]) == 0) {
				out = json_object_new_object();
				json_object_object_add(out, "mode",
				    json_object_new_string(modes[i][1]));
				return out;
			}
		return NULL;
	}
	if (json_object_object_get_ex(tc, "function", &fn) &&
	    (name = provider_json_str(fn, "name")) != NULL) {
		out = json_object_new_object();
		json_object_object_add(out, "functionName",
		    json_object_new_string(name));
		return out;
	}
	return NULL;
}

/* response_format -> jsonObject or jsonSchema, added to out. */
static void
add_response_format(struct json_object *out, struct json_object *rf)
{
	struct json_object	*js, *schema, *o;
	const char		*type = provider_json_str(rf, "type");

	if (type == NULL)
		return;
	if (strcmp(type, "json_object") == 0)
		json_object_object_add(out, "jsonObject",
		    json_object_new_boolean(1));
	else if (strcmp(type, "json_schema") == 0 &&
	    json_object_object_get_ex(rf, "json_schema", &js) &&
	    json_object_object_get_ex(js, "schema", &schema) &&
	    json_object_is_type(schema, json_type_object)) {
		o = json_object_new_object();
		json_object_object_add(o, "schema", json_object_get(schema));
		json_object_object_add(out, "jsonSchema", o);
	}
}

/* completionOptions: stream, temperature (0..1), maxTokens as a string. */
static struct json_object *
completion_options(const struct candidate *c, const struct chat_in *in)
{
	struct json_object	*o, *v, *r;
	const char		*s;
	char			 n[32];
	int64_t			 max;

	o = json_object_new_object();
	json_object_object_add(o, "stream", json_object_new_boolean(in->stream));
	if (json_object_object_get_ex(in->req, "temperature", &v) && v != NULL)
		/* Yandex accepts 0..1; OpenAI clients send up to 2. */
		json_object_object_add(o, "temperature",
		    json_object_get_double(v) > 1.0 ?
		    json_object_new_double(1.0) : json_object_get(v));
	max = plan_max_tokens(c, in->client_max);
	snprintf(n, sizeof(n), "%lld", (long long)max);
	json_object_object_add(o, "maxTokens", json_object_new_string(n));
	if ((s = provider_json_str(in->req, "reasoning_effort")) != NULL) {
		r = json_object_new_object();
		json_object_object_add(r, "mode", json_object_new_string(
		    strcmp(s, "none") == 0 ? "DISABLED" : "ENABLED_HIDDEN"));
		json_object_object_add(o, "reasoningOptions", r);
	}
	return o;
}

/*
 * modelUri: the upstream id as is when it is a URI (gpt://FOLDER/...,
 * ds://...), else gpt://FOLDER/ID. -1 when there is no folder for it.
 */
static int
model_uri(const struct candidate *c, struct buf *uri)
{
	if (strstr(c->upstream, "://") != NULL)
		return buf_puts(uri, c->upstream) == BUF_OK ? 0 : -1;
	if (c->provider->folder == NULL || *c->provider->folder == '\0')
		return -1;
	return buf_printf(uri, "gpt://%s/%s", c->provider->folder,
	    c->upstream) == BUF_OK ? 0 : -1;
}

/*
 * The folder for x-folder-id: that of a gpt:// modelUri, else the
 * provider's; "" when there is none. -1 when it is not a plain id (a
 * model name from the client must not smuggle in a header).
 */
static int
folder_of(const struct provider_cfg *p, const char *uri, char *dst,
    size_t len)
{
	const char	*f = p->folder ? p->folder : "";
	size_t		 n, i;

	if (strncmp(uri, "gpt://", 6) == 0)
		f = uri + 6;
	n = strcspn(f, "/");
	if (n >= len)
		return -1;
	for (i = 0; i < n; i++)
		if (!isalnum((unsigned char)f[i]) && strchr("-_.", f[i]) == NULL)
			return -1;
	memcpy(dst, f, n);
	dst[n] = '\0';
	return 0;
}

/* Authorization with the configured scheme, and x-folder-id. */
static int
auth_headers(struct provider_call *call, const struct provider_cfg *p,
    const char *folder)
{
	struct curl_slist	*n;
	const char		*scheme = auth_schemes[0];
	char			 h[320];
	size_t			 i;

	if (p->auth_scheme != NULL) {
		for (i = 0; i < NELEM(auth_schemes); i++)
			if (strcasecmp(p->auth_scheme, auth_schemes[i]) == 0)
				break;
		if (i == NELEM(auth_schemes))
			return -1;
		scheme = auth_schemes[i];
	}
	snprintf(h, sizeof(h), "%s ", scheme);
	if (provider_headers(call, p, "Authorization", h) == -1)
		return -1;
	/* A header line of the provider's own wins. */
	if (*folder == '\0' || provider_has_header(p, "x-folder-id"))
		return 0;
	snprintf(h, sizeof(h), "x-folder-id: %s", folder);
	if ((n = curl_slist_append(call->headers, h)) == NULL)
		return -1;
	call->headers = n;
	return 0;
}

static int
chat_request(const struct candidate *c, const struct chat_in *in,
    struct provider_call *call, struct provider_error *e)
{
	struct json_object	*out, *msgs, *v, *tc;
	struct buf		 uri;
	char			 folder[256];
	int			 rc = -1;

	out = json_object_new_object();
	buf_init(&uri, 4096);
	/* A missing folder or unknown auth_scheme is the gateway's fault. */
	if (model_uri(c, &uri) == -1)
		goto done;
	if (folder_of(c->provider, uri.data, folder, sizeof(folder)) == -1) {
		provider_error_set(e, "invalid_request_error", "invalid_value",
		    "model '%s' names no valid Yandex Cloud folder", c->name);
		snprintf(e->param, sizeof(e->param), "model");
		goto done;
	}
	json_object_object_add(out, "modelUri",
	    json_object_new_string(uri.data));
	json_object_object_add(out, "completionOptions",
	    completion_options(c, in));
	msgs = json_object_new_array();
	json_object_object_add(out, "messages", msgs);
	json_object_object_get_ex(in->req, "messages", &v);
	if (convert_messages(v, msgs, e) == -1)
		goto done;
	if (json_object_object_get_ex(in->req, "tools", &v) && v != NULL &&
	    json_object_array_length(v) > 0) {
		json_object_object_add(out, "tools", convert_tools(v));
		if (json_object_object_get_ex(in->req, "tool_choice", &v) &&
		    v != NULL && (tc = convert_tool_choice(v)) != NULL)
			json_object_object_add(out, "toolChoice", tc);
		if (json_object_object_get_ex(in->req, "parallel_tool_calls",
		    &v) && v != NULL)
			json_object_object_add(out, "parallelToolCalls",
			    json_object_get(v));
	}
	if (json_object_object_get_ex(in->req, "response_format", &v) &&
	    v != NULL)
		add_response_format(out, v);
	if (provider_body(call, out) == -1 ||
	    provider_url(call, c->provider, COMPLETION_PATH) == -1 ||
	    auth_headers(call, c->provider, folder) == -1)
		goto done;
	rc = 0;
done:
	buf_free(&uri);
	json_object_put(out);
	return rc;
}

/* One OpenAI tool call: a fresh id, the arguments object as a string. */
static struct json_object *
tool_call(struct json_object *fc)
{
	struct json_object	*args = NULL;
	char			 id[64];

	/* An object per the docs; a string is taken as the JSON itself. */
	json_object_object_get_ex(fc, "arguments", &args);
	provider_new_id(id, sizeof(id), "call_");
	return provider_tool_call(id, provider_json_str(fc, "name"), args);
}

/* The functionCall objects of a message's toolCallList, or NULL. */
static struct json_object *
tool_calls_of(struct json_object *msg)
{
	struct json_object	*l, *calls;

	if (!json_object_object_get_ex(msg, "toolCallList", &l) ||
	    !json_object_object_get_ex(l, "toolCalls", &calls) ||
	    !json_object_is_type(calls, json_type_array))
		return NULL;
	return calls;
}

static int
chat_response(const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct usage *u, struct provider_error *e)
{
	struct json_object	*o, *r, *alt, *msg = NULL, *calls, *fc, *m, *ch,
				*choices, *res, *v, *tcs;
	struct provider_error	 ue;
	const char		*text, *finish;
	char			 id[64];
	size_t			 i;

	if ((o = provider_parse(body, len)) == NULL)
		goto malformed;
	memset(&ue, 0, sizeof(ue));
	if ((alt = first_alt(o, &r)) == NULL && read_error(r, &ue)) {
		/* An error on a 200: the upstream's stream broke at once. */
		provider_error_set(e, "upstream_error", ue.code[0] ? ue.code :
		    "bad_upstream_response", "provider '%s': %s",
		    c->provider->name, ue.message);
		json_object_put(o);
		return -1;
	}
	if (alt == NULL || !json_object_object_get_ex(alt, "message", &msg) ||
	    !json_object_is_type(msg, json_type_object))
		goto malformed;
	if (json_object_object_get_ex(r, "usage", &v))
		read_usage(v, u);
	text = provider_json_str(msg, "text");
	tcs = json_object_new_array();
	calls = tool_calls_of(msg);
	for (i = 0; calls != NULL && i < json_object_array_length(calls);
	    i++)
		if (json_object_object_get_ex(json_object_array_get_idx(calls,
		    i), "functionCall", &fc))
			json_object_array_add(tcs, tool_call(fc));

	m = json_object_new_object();
	json_object_object_add(m, "role", json_object_new_string("assistant"));
	json_object_object_add(m, "content", text != NULL ?
	    json_object_new_string(text) : NULL);
	finish = alt_finish(alt);
	if (json_object_array_length(tcs) > 0) {
		json_object_object_add(m, "tool_calls", tcs);
		if (finish == NULL || strcmp(finish, "stop") == 0)
			finish = "tool_calls";
	} else
		json_object_put(tcs);
	ch = json_object_new_object();
	json_object_object_add(ch, "index", json_object_new_int(0));
	json_object_object_add(ch, "message", m);
	json_object_object_add(ch, "logprobs", NULL);
	json_object_object_add(ch, "finish_reason",
	    json_object_new_string(finish ? finish : "stop"));
	choices = json_object_new_array();
	json_object_array_add(choices, ch);

	res = json_object_new_object();
	provider_new_id(id, sizeof(id), "chatcmpl-");
	json_object_object_add(res, "id", json_object_new_string(id));
	json_object_object_add(res, "object",
	    json_object_new_string("chat.completion"));
	json_object_object_add(res, "created",
	    json_object_new_int64((int64_t)time(NULL)));
	json_object_object_add(res, "model", json_object_new_string(c->name));
	json_object_object_add(res, "choices", choices);
	json_object_object_add(res, "usage", provider_usage_object(u));
	if ((text = provider_json_str(r, "modelVersion")) != NULL)
		json_object_object_add(res, "system_fingerprint",
		    json_object_new_string(text));
	json_object_put(o);
	*out = res;
	return 0;
malformed:
	json_object_put(o);
	provider_error_set(e, "upstream_error", "bad_upstream_response",
	    "provider '%s' returned a malformed completion", c->provider->name);
	return -1;
}

/*
 * Stream bookkeeping in stream_state. st->chars is both the content
 * relayed and the length of the cumulative text already sent as deltas;
 * block_tool[PREFIX_HASH] keeps an FNV-1a hash of those bytes, to notice
 * an upstream that rewrites text it already streamed. st->tools counts
 * the tool calls sent, st->id set means the role chunk went out.
 */
#define PREFIX_HASH	0
#define FNV_BASIS	2166136261u
#define FNV_PRIME	16777619u

static uint32_t
fnv(uint32_t h, const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
	return h;
}

/*
 * The part of a cumulative text not sent yet. Returns 1 when the text no
 * longer starts with what was sent (the upstream revised it), else 0.
 */
static int
on_text(struct stream_state *st, const char *text, size_t len, int *rc)
{
	size_t		 sent = (size_t)st->chars;
	uint32_t	 h = (uint32_t)st->block_tool[PREFIX_HASH];

	*rc = 0;
	if (len < sent || (sent > 0 && fnv(FNV_BASIS, text, sent) != h))
		return 1;
	if (len == sent)
		return 0;
	h = fnv(sent > 0 ? h : FNV_BASIS, text + sent, len - sent);
	st->block_tool[PREFIX_HASH] = (int)h;
	st->chars = (int64_t)len;
	*rc = provider_emit_delta(st, "content",
	    json_object_new_string_len(text + sent,
	    (int)(len - sent)), NULL);
	return 0;
}

/*
 * The tool calls of the final message, one chunk each: partial messages
 * may carry them too, but only the final one is sure to have them all.
 */
static int
on_tool_calls(struct stream_state *st, struct json_object *calls)
{
	struct json_object	*fc, *tc, *arr, *d, *chunk;
	size_t			 i;
	int			 rc = 0;

	for (i = 0; rc == 0 &&
	    i < json_object_array_length(calls); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(calls,
		    i), "functionCall", &fc))
			continue;
		tc = tool_call(fc);
		json_object_object_add(tc, "index", json_object_new_int(
		    st->tools++));
		arr = json_object_new_array();
		json_object_array_add(arr, tc);
		d = json_object_new_object();
		json_object_object_add(d, "tool_calls", arr);
		chunk = provider_chunk(st, d, NULL);
		rc = st->emit(st->ctx, chunk);
		json_object_put(chunk);
	}
	return rc;
}

/* One alternative of a stream message: new text, then the end if final. */
static int
on_alternative(struct stream_state *st, struct json_object *alt)
{
	struct json_object	*msg = NULL, *v, *calls;
	const char		*finish = alt_finish(alt);
	int			 rc = 0, revised = 0;

	json_object_object_get_ex(alt, "message", &msg);
	if (json_object_object_get_ex(msg, "text", &v) &&
	    json_object_is_type(v, json_type_string))
		revised = on_text(st, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), &rc);
	if (rc != 0 || finish == NULL)
		return rc;	/* a revised partial may be set right later */
	if (revised && strcmp(finish, "content_filter") != 0) {
		/* Deltas cannot take back text: fail rather than garble. */
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' revised text it had "
		    "already streamed", st->cand->provider->name);
		return -1;
	}
	if ((calls = tool_calls_of(msg)) != NULL) {
		if ((rc = on_tool_calls(st, calls)) != 0)
			return rc;
		if (st->tools > 0 && strcmp(finish, "stop") == 0)
			finish = "tool_calls";
	}
	snprintf(st->finish, sizeof(st->finish), "%s", finish);
	st->done = 1;
	if ((rc = provider_emit_delta(st, NULL, NULL, st->finish)) != 0)
		return rc;
	return provider_emit_usage(st);
}

/*
 * One stream message {"result":{"alternatives":[...],"usage":...}} (the
 * data of an SSE event, or one line of NDJSON), or {"error":{...}}.
 */
static int
chat_event(struct stream_state *st, const struct sse_event *ev)
{
	struct json_object	*o, *r, *alt, *v;
	struct provider_error	 e;
	int			 rc = 0;

	if (st->done || (ev->data_len == 6 &&
	    memcmp(ev->data, "[DONE]", 6) == 0))
		return 0;
	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&st->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream message", st->cand->provider->name);
		return -1;
	}
	memset(&e, 0, sizeof(e));
	if ((alt = first_alt(o, &r)) == NULL && read_error(r, &e)) {
		provider_error_set(&st->err, "upstream_error", e.code[0] ?
		    e.code : NULL, "provider '%s': %s",
		    st->cand->provider->name, e.message[0] ? e.message :
		    "stream error");
		st->failed = 1;
		json_object_put(o);
		return -1;
	}
	if (json_object_object_get_ex(r, "usage", &v))
		read_usage(v, &st->usage);
	if (alt != NULL && st->id[0] == '\0') {
		provider_new_id(st->id, sizeof(st->id), "chatcmpl-");
		rc = provider_emit_role(st);
	}
	if (alt != NULL && rc == 0)
		rc = on_alternative(st, alt);
	json_object_put(o);
	return rc;
}

/* A non-2xx body in either of Yandex's error shapes. */
static void
error(long status, const char *body, size_t len, struct provider_error *e)
{
	struct json_object	*o;

	provider_error_set(e, status >= 500 ? "upstream_error" :
	    "invalid_request_error", NULL, "upstream answered HTTP %ld", status);
	if ((o = provider_parse(body, len)) == NULL)
		return;
	read_error(o, e);
	json_object_put(o);
}

/*
 * Streams are NDJSON by the one account there is of the REST framing;
 * the NDJSON splitter also takes SSE "data:" lines, so either reading works.
 */
const struct provider_ops provider_yandex = {
	.type = "yandex",
	.framing = FRAMING_NDJSON,
	.chat_request = chat_request,
	.chat_response = chat_response,
	.chat_event = chat_event,
	.error = error,
};
