/* validate.c: strict JSON parsing and checks of request bodies against tables. */
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "validate.h"

#define NRULES(a)	(sizeof(a) / sizeof((a)[0]))
#define NOBOUND		1, 0, 0

static const struct field_rule chat_rules[] = {
	{ "model", J_STRING, 1, 1, 255, 0 },
	{ "messages", J_ARRAY, 1, 1, 100000, 0 },
	{ "stream", J_BOOL | J_NULL, 0, NOBOUND },
	{ "stream_options", J_OBJECT | J_NULL, 0, NOBOUND },
	{ "max_tokens", J_INT | J_NULL, 0, 1, 100000000, 0 },
	{ "max_completion_tokens", J_INT | J_NULL, 0, 1, 100000000, 0 },
	{ "temperature", J_NUMBER | J_NULL, 0, 0, 2, 0 },
	{ "top_p", J_NUMBER | J_NULL, 0, 0, 1, 0 },
	{ "n", J_INT | J_NULL, 0, 1, 128, 0 },
	{ "presence_penalty", J_NUMBER | J_NULL, 0, -2, 2, 0 },
	{ "frequency_penalty", J_NUMBER | J_NULL, 0, -2, 2, 0 },
	{ "stop", J_STRING | J_ARRAY | J_NULL, 0, 0, 16, J_ARRAY },
	{ "tools", J_ARRAY | J_NULL, 0, 0, 512, 0 },
	{ "tool_choice", J_STRING | J_OBJECT | J_NULL, 0, NOBOUND },
	{ "parallel_tool_calls", J_BOOL | J_NULL, 0, NOBOUND },
	{ "response_format", J_OBJECT | J_NULL, 0, NOBOUND },
	{ "user", J_STRING | J_NULL, 0, 0, 512, 0 },
	{ "seed", J_INT | J_NULL, 0, NOBOUND },
	{ "logprobs", J_BOOL | J_NULL, 0, NOBOUND },
	{ "top_logprobs", J_INT | J_NULL, 0, 0, 20, 0 },
};

static const struct field_rule message_rules[] = {
	{ "role", J_STRING, 1, 1, 32, 0 },
	{ "content", J_STRING | J_ARRAY | J_NULL, 0, NOBOUND },
	{ "name", J_STRING | J_NULL, 0, 0, 256, 0 },
	{ "tool_calls", J_ARRAY | J_NULL, 0, NOBOUND },
	{ "tool_call_id", J_STRING | J_NULL, 0, 0, 256, 0 },
	/* Prompt caching (Anthropic): kept on the message's last block. */
	{ "cache_control", J_OBJECT | J_NULL, 0, NOBOUND },
};

static const struct field_rule stream_options_rules[] = {
	{ "include_usage", J_BOOL | J_NULL, 0, NOBOUND },
};

static const char *const roles[] = {
	"system", "developer", "user", "assistant", "tool", "function",
};

const char *
json_type_label(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:	return "null";
	case json_type_boolean:	return "a boolean";
	case json_type_int:	return "an integer";
	case json_type_double:	return "a number";
	case json_type_string:	return "a string";
	case json_type_array:	return "an array";
	case json_type_object:	return "an object";
	}
	return "unknown";
}

static unsigned
mask_of(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null:	return J_NULL;
	case json_type_boolean:	return J_BOOL;
	case json_type_int:	return J_INT;
	case json_type_double:	return J_DOUBLE;
	case json_type_string:	return J_STRING;
	case json_type_array:	return J_ARRAY;
	case json_type_object:	return J_OBJECT;
	}
	return 0;
}

static void
expected(unsigned types, char *dst, size_t len)
{
	static const struct { unsigned m; const char *s; } names[] = {
		{ J_STRING, "a string" }, { J_NUMBER, "a number" },
		{ J_INT, "an integer" }, { J_BOOL, "a boolean" },
		{ J_ARRAY, "an array" }, { J_OBJECT, "an object" },
		{ J_NULL, "null" },
	};
	size_t	 i, n = 0;

	dst[0] = '\0';
	for (i = 0; i < NRULES(names); i++) {
		if ((types & names[i].m) != names[i].m)
			continue;
		if (names[i].m == J_INT && (types & J_NUMBER) == J_NUMBER)
			continue;
		n += (size_t)snprintf(dst + n, len - n, "%s%s",
		    n ? " or " : "", names[i].s);
		if (n >= len)
			break;
	}
}

static int
verr_set(struct verr *e, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
verr_set(struct verr *e, const char *param, const char *fmt, ...)
{
	va_list	 ap;

	snprintf(e->param, sizeof(e->param), "%s", param);
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof(e->message), fmt, ap);
	va_end(ap);
	return -1;
}

/*
 * A strict RFC 8259 syntax check done before json-c sees the bytes:
 * json-c 0.16 accepts NaN, "1.", control characters in strings, single
 * quotes and some invalid UTF-8 even in strict mode, and whatever it
 * accepts would be forwarded upstream.
 */
struct jscan {
	const unsigned char	*p, *end;
	int			 depth, max_depth;
	const char		*why;
};

static int	scan_value(struct jscan *);

static int
scan_fail(struct jscan *j, const char *why)
{
	if (j->why == NULL)
		j->why = why;
	return -1;
}

static void
scan_ws(struct jscan *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' ||
	    *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static int
scan_cont(struct jscan *j, unsigned char lo, unsigned char hi, int more)
{
	int	 i;

	if (j->p >= j->end || *j->p < lo || *j->p > hi)
		return scan_fail(j, "invalid UTF-8");
	for (j->p++, i = 0; i < more; i++, j->p++)
		if (j->p >= j->end || (*j->p & 0xC0) != 0x80)
			return scan_fail(j, "invalid UTF-8");
	return 0;
}

/* One UTF-8 sequence of 2-4 bytes: no overlongs, surrogates or > U+10FFFF. */
static int
scan_utf8(struct jscan *j)
{
	unsigned char	 c = *j->p++;

	if (c >= 0xC2 && c <= 0xDF)
		return scan_cont(j, 0x80, 0xBF, 0);
	if (c == 0xE0)
		return scan_cont(j, 0xA0, 0xBF, 1);
	if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF)
		return scan_cont(j, 0x80, 0xBF, 1);
	if (c == 0xED)
		return scan_cont(j, 0x80, 0x9F, 1);
	if (c == 0xF0)
		return scan_cont(j, 0x90, 0xBF, 2);
	if (c >= 0xF1 && c <= 0xF3)
		return scan_cont(j, 0x80, 0xBF, 2);
	if (c == 0xF4)
		return scan_cont(j, 0x80, 0x8F, 2);
	j->p--;
	return scan_fail(j, "invalid UTF-8");
}

static int
scan_string(struct jscan *j)
{
	int	 i;

	for (j->p++; j->p < j->end;) {
		if (*j->p == '"') {
			j->p++;
			return 0;
		}
		if (*j->p < 0x20)
			return scan_fail(j, "control character in a string");
		if (*j->p >= 0x80) {
			if (scan_utf8(j) == -1)
				return -1;
			continue;
		}
		if (*j->p++ != '\\')
			continue;
		if (j->p >= j->end)
			break;
		if (strchr("\"\\/bfnrt", *j->p) != NULL && *j->p != '\0') {
			j->p++;
			continue;
		}
		if (*j->p++ != 'u')
			return scan_fail(j, "invalid escape in a string");
		for (i = 0; i < 4; i++, j->p++)
			if (j->p >= j->end || !isxdigit(*j->p))
				return scan_fail(j, "invalid \\u escape");
	}
	return scan_fail(j, "unexpected end of input in a string");
}

static int
scan_digits(struct jscan *j)
{
	const unsigned char	*start = j->p;

	while (j->p < j->end && isdigit(*j->p))
		j->p++;
	return j->p > start ? 0 : scan_fail(j, "invalid number");
}

static int
scan_number(struct jscan *j)
{
	if (*j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (scan_digits(j) == -1)
		return -1;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (scan_digits(j) == -1)
			return -1;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (scan_digits(j) == -1)
			return -1;
	}
	return 0;
}

static int
scan_literal(struct jscan *j, const char *word)
{
	size_t	 n = strlen(word);

	if ((size_t)(j->end - j->p) < n || memcmp(j->p, word, n) != 0)
		return scan_fail(j, "unexpected character");
	j->p += n;
	return 0;
}

/* An object or array: members separated by commas, then the closer. */
static int
scan_container(struct jscan *j, int object)
{
	unsigned char	 close = object ? '}' : ']';

	if (++j->depth > j->max_depth)
		return scan_fail(j, "nesting too deep");
	j->p++;
	scan_ws(j);
	if (j->p < j->end && *j->p == close) {
		j->p++;
		j->depth--;
		return 0;
	}
	for (;;) {
		if (object) {
			scan_ws(j);
			if (j->p >= j->end || *j->p != '"')
				return scan_fail(j, "expected a member name");
			if (scan_string(j) == -1)
				return -1;
			scan_ws(j);
			if (j->p >= j->end || *j->p++ != ':')
				return scan_fail(j, "expected ':'");
		}
		if (scan_value(j) == -1)
			return -1;
		scan_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == close) {
			j->p++;
			j->depth--;
			return 0;
		}
		return scan_fail(j, j->p >= j->end ? "unexpected end of input" :
		    object ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

static int
scan_value(struct jscan *j)
{
	scan_ws(j);
	if (j->p >= j->end)
		return scan_fail(j, "unexpected end of input");
	switch (*j->p) {
	case '{':
		return scan_container(j, 1);
	case '[':
		return scan_container(j, 0);
	case '"':
		return scan_string(j);
	case 't':
		return scan_literal(j, "true");
	case 'f':
		return scan_literal(j, "false");
	case 'n':
		return scan_literal(j, "null");
	default:
		if (*j->p == '-' || isdigit(*j->p))
			return scan_number(j);
		return scan_fail(j, "unexpected character");
	}
}

/*
 * Parse a whole body as one JSON value: strict RFC 8259 syntax, valid
 * UTF-8, nothing trailing, nesting at most depth levels. JSON null is
 * refused too (nothing to validate). The caller owns the result.
 */
struct json_object *
json_parse_strict(const char *s, size_t n, int depth, struct verr *e)
{
	struct jscan		 j;
	struct json_tokener	*tok;
	struct json_object	*o;
	enum json_tokener_error	 jerr;

	if (n == 0) {
		verr_set(e, "", "request body is empty; expected JSON");
		return NULL;
	}
	memset(&j, 0, sizeof(j));
	j.p = (const unsigned char *)s;
	j.end = j.p + n;
	j.max_depth = depth;
	if (scan_value(&j) == 0) {
		scan_ws(&j);
		if (j.p != j.end)
			scan_fail(&j, "trailing data");
	}
	if (j.why != NULL) {
		verr_set(e, "", "request body is not valid JSON: %s at byte %zu",
		    j.why, (size_t)(j.p - (const unsigned char *)s));
		return NULL;
	}
	/* Valid: json-c builds the objects (its depth counts one more). */
	if ((tok = json_tokener_new_ex(depth + 1)) == NULL) {
		verr_set(e, "", "out of memory");
		return NULL;
	}
	o = json_tokener_parse_ex(tok, s, (int)n);
	jerr = json_tokener_get_error(tok);
	if (o == NULL && jerr == json_tokener_continue) {
		/* A bare number ends only at the end of input. */
		o = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
	}
	json_tokener_free(tok);
	if (o == NULL) {
		verr_set(e, "", jerr == json_tokener_success ?
		    "request body must be a JSON object, not null" :
		    "request body could not be parsed");
		return NULL;
	}
	return o;
}

/* Check obj against rules; prefix names the object in messages ("messages[2]."). */
int
validate_fields(struct json_object *obj, const struct field_rule *rules,
    size_t n, const char *prefix, struct verr *e)
{
	struct json_object	*v;
	char			 param[128], want[96];
	double			 num;
	size_t			 i;
	unsigned		 m;

	for (i = 0; i < n; i++) {
		snprintf(param, sizeof(param), "%s%s", prefix, rules[i].name);
		if (!json_object_object_get_ex(obj, rules[i].name, &v)) {
			if (rules[i].required)
				return verr_set(e, param, "'%s' is required",
				    param);
			continue;
		}
		m = mask_of(v);
		/* An integral value is a fine number. */
		if ((m & rules[i].types) == 0 &&
		    !(m == J_INT && (rules[i].types & J_DOUBLE))) {
			expected(rules[i].types, want, sizeof(want));
			return verr_set(e, param, "'%s' must be %s, not %s",
			    param, want, json_type_label(v));
		}
		if (rules[i].min > rules[i].max ||
		    (rules[i].bounded != 0 && (m & rules[i].bounded) == 0))
			continue;
		switch (m) {
		case J_INT:
		case J_DOUBLE:
			num = json_object_get_double(v);
			if (!isfinite(num) || num < rules[i].min ||
			    num > rules[i].max)
				return verr_set(e, param, "'%s' must be between "
				    "%g and %g", param, rules[i].min,
				    rules[i].max);
			break;
		case J_STRING:
			num = (double)json_object_get_string_len(v);
			if (num < rules[i].min || num > rules[i].max)
				return verr_set(e, param, "'%s' must be %g to %g "
				    "characters long", param, rules[i].min,
				    rules[i].max);
			/* A name cut short at a NUL would be another name. */
			if (strlen(json_object_get_string(v)) != (size_t)num)
				return verr_set(e, param, "'%s' must not contain "
				    "a NUL character (\\u0000)", param);
			break;
		case J_ARRAY:
			num = (double)json_object_array_length(v);
			if (num < rules[i].min || num > rules[i].max)
				return verr_set(e, param, "'%s' must have %g to "
				    "%g items", param, rules[i].min,
				    rules[i].max);
			break;
		default:
			break;
		}
	}
	return 0;
}

static int
validate_message(struct json_object *msg, size_t idx, struct verr *e)
{
	struct json_object	*v;
	char			 prefix[48], param[80];
	const char		*role;
	size_t			 i;

	snprintf(prefix, sizeof(prefix), "messages[%zu].", idx);
	if (!json_object_is_type(msg, json_type_object)) {
		snprintf(param, sizeof(param), "messages[%zu]", idx);
		return verr_set(e, param, "'%s' must be an object, not %s",
		    param, json_type_label(msg));
	}
	if (validate_fields(msg, message_rules, NRULES(message_rules), prefix,
	    e) == -1)
		return -1;
	json_object_object_get_ex(msg, "role", &v);
	role = json_object_get_string(v);
	for (i = 0; i < NRULES(roles); i++)
		if (strcmp(role, roles[i]) == 0)
			break;
	if (i == NRULES(roles)) {
		snprintf(param, sizeof(param), "%srole", prefix);
		return verr_set(e, param, "'%s' must be system, developer, "
		    "user, assistant or tool, not '%s'", param, role);
	}
	if (strcmp(role, "assistant") != 0 &&
	    !json_object_object_get_ex(msg, "content", NULL)) {
		snprintf(param, sizeof(param), "%scontent", prefix);
		return verr_set(e, param, "'%s' is required", param);
	}
	if (strcmp(role, "tool") == 0 &&
	    !json_object_object_get_ex(msg, "tool_call_id", NULL)) {
		snprintf(param, sizeof(param), "%stool_call_id", prefix);
		return verr_set(e, param, "'%s' is required for role 'tool'",
		    param);
	}
	return 0;
}

/*
 * Model ids as providers spell them ("gpt-4o", "vendor/model:free",
 * "qwen2.5:7b"); nothing that could split a log line or a URL.
 */
int
validate_model_name(const char *s)
{
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("._-:/@+", *s) == NULL)
			return 0;
	return 1;
}

/* A chat completion request: the top level, every message, stream_options. */
int
validate_chat(struct json_object *req, struct verr *e)
{
	struct json_object	*msgs, *v;
	size_t			 i, n;

	if (!json_object_is_type(req, json_type_object))
		return verr_set(e, "", "request body must be a JSON object, "
		    "not %s", json_type_label(req));
	if (validate_fields(req, chat_rules, NRULES(chat_rules), "", e) == -1)
		return -1;
	json_object_object_get_ex(req, "model", &v);
	if (!validate_model_name(json_object_get_string(v)))
		return verr_set(e, "model", "'model' may hold only letters, "
		    "digits and . _ - : / @ +");
	json_object_object_get_ex(req, "messages", &msgs);
	n = json_object_array_length(msgs);
	for (i = 0; i < n; i++)
		if (validate_message(json_object_array_get_idx(msgs, i), i,
		    e) == -1)
			return -1;
	if (json_object_object_get_ex(req, "stream_options", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    validate_fields(v, stream_options_rules,
	    NRULES(stream_options_rules), "stream_options.", e) == -1)
		return -1;
	return 0;
}
