/* unit-validate.c: json_parse_strict and validate_chat, good and bad bodies. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/validate.h"
#include "tap.h"

#define DEPTH	64

/* got contains needle; on failure both are printed. */
#define like(got, needle, ...) do {					\
	const char *l_ = (got), *n_ = (needle);				\
	int f_ = l_ != NULL && strstr(l_, n_) != NULL;			\
	ok(f_, __VA_ARGS__);						\
	if (!f_)							\
		printf("#   '%s' lacks '%s'\n", l_ ? l_ : "(null)", n_); \
} while (0)

/* Parse and validate s; 0 when both pass, e filled otherwise. */
static int
run(const char *s, struct verr *e)
{
	struct json_object	*o;
	int			 rc;

	memset(e, 0, sizeof(*e));
	if ((o = json_parse_strict(s, strlen(s), DEPTH, e)) == NULL)
		return -2;
	rc = validate_chat(o, e);
	json_object_put(o);
	return rc;
}

/*
 * s parses but fails validation naming param (NULL: checked elsewhere),
 * with why in the message.
 */
static void
bad(const char *what, const char *s, const char *param, const char *why)
{
	struct verr	 e;

	is_int(run(s, &e), -1, "%s: refused by validate_chat", what);
	if (param != NULL)
		is_str(e.param, param, "%s: param", what);
	like(e.message, why, "%s: message says '%s'", what, why);
}

/* s is not JSON the gateway accepts; the message says why. */
static void
bad_json(const char *what, const char *s, size_t n, const char *why)
{
	struct json_object	*o;
	struct verr		 e;

	memset(&e, 0, sizeof(e));
	o = json_parse_strict(s, n, DEPTH, &e);
	ok(o == NULL, "%s: refused by json_parse_strict", what);
	is_str(e.param, "", "%s: no param", what);
	like(e.message, why, "%s: message says '%s'", what, why);
	json_object_put(o);
}

static void
test_valid(void)
{
	struct verr	 e;

	is_int(run("{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", &e), 0, "minimal chat is valid");
	is_int(run(" \n{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}\r\n\t ", &e), 0,
	    "whitespace around the body is fine");
	is_int(run("{\"model\":\"m\",\"messages\":["
	    "{\"role\":\"system\",\"content\":\"be brief\"},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
	    "\"text\":\"hi\"}]},"
	    "{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"c1\","
	    "\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{}\"}}]},"
	    "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"42\"}],"
	    "\"stream\":true,\"stream_options\":{\"include_usage\":true},"
	    "\"temperature\":0.7,\"top_p\":1,\"max_tokens\":100,\"n\":1,"
	    "\"stop\":[\"\\n\"],\"seed\":42,\"tools\":[],"
	    "\"tool_choice\":\"auto\",\"user\":\"u-1\","
	    "\"presence_penalty\":-2,\"frequency_penalty\":2,"
	    "\"logprobs\":false,\"top_logprobs\":0,"
	    "\"response_format\":{\"type\":\"json_object\"},"
	    "\"vendor_extension\":{\"anything\":true}}", &e), 0,
	    "a full chat with tools, bounds at their limits, unknown keys");
	is_int(run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}],\"stream\":null,\"temperature\":null,"
	    "\"max_tokens\":null}", &e), 0, "null optional fields are fine");
	is_int(run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"h\\u00e9 \\ud83d\\ude00\"}],\"temperature\":2}",
	    &e), 0, "escaped UTF-8 and a surrogate pair are fine");
	is_int(run("{\"model\":\"m\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"caf\xc3\xa9\"}]}", &e), 0, "raw UTF-8 is fine");
	is_int(run("{\"model\":\"m\",\"messages\":[{\"role\":\"assistant\","
	    "\"content\":null}]}", &e), 0, "assistant content may be null");
	is_int(run("{\"model\":\"m\",\"messages\":[{\"role\":\"system\","
	    "\"content\":\"s\",\"cache_control\":{\"type\":\"ephemeral\"}},"
	    "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":"
	    "\"hi\",\"cache_control\":{\"type\":\"ephemeral\",\"ttl\":"
	    "\"1h\"}}],\"cache_control\":null}],\"tools\":[{\"type\":"
	    "\"function\",\"function\":{\"name\":\"f\"},\"cache_control\":"
	    "{\"type\":\"ephemeral\"}}]}", &e), 0,
	    "cache_control on messages, parts and tools (prompt caching)");
}

static void
test_fields(void)
{
	static const char msg[] = "\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]";
	char	 s[512];

	bad("missing model", "{\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}", "model", "'model' is required");
	bad("missing messages", "{\"model\":\"m\"}", "messages",
	    "'messages' is required");
	bad("model a number", "{\"model\":4,\"messages\":[]}", "model",
	    "'model' must be a string, not an integer");
	bad("empty model", "{\"model\":\"\",\"messages\":[]}", "model",
	    "'model'");
	bad("messages an object", "{\"model\":\"m\",\"messages\":"
	    "{\"role\":\"user\"}}", "messages",
	    "'messages' must be an array, not an object");
	bad("messages empty", "{\"model\":\"m\",\"messages\":[]}", "messages",
	    "'messages' must have 1 to");
#define BAD_FIELD(what, field, param, why) do {				\
	snprintf(s, sizeof(s), "{\"model\":\"m\",%s,%s}", msg, field);	\
	bad(what, s, param, why);					\
} while (0)
	BAD_FIELD("stream a string", "\"stream\":\"yes\"", "stream",
	    "'stream' must be a boolean or null, not a string");
	BAD_FIELD("stream_options a string", "\"stream_options\":\"x\"",
	    "stream_options", "'stream_options' must be");
	BAD_FIELD("include_usage a string",
	    "\"stream_options\":{\"include_usage\":\"yes\"}",
	    "stream_options.include_usage", "must be a boolean");
	BAD_FIELD("temperature 3", "\"temperature\":3", "temperature",
	    "'temperature' must be between 0 and 2");
	BAD_FIELD("temperature -0.1", "\"temperature\":-0.1", "temperature",
	    "between 0 and 2");
	BAD_FIELD("temperature a string", "\"temperature\":\"hot\"",
	    "temperature", "must be a number or null, not a string");
	BAD_FIELD("temperature huge", "\"temperature\":1e999", "temperature",
	    "between 0 and 2");
	BAD_FIELD("top_p 1.5", "\"top_p\":1.5", "top_p", "between 0 and 1");
	BAD_FIELD("max_tokens 0", "\"max_tokens\":0", "max_tokens",
	    "'max_tokens' must be between 1 and");
	BAD_FIELD("max_tokens 1.5", "\"max_tokens\":1.5", "max_tokens",
	    "'max_tokens' must be an integer or null, not a number");
	BAD_FIELD("max_tokens negative", "\"max_tokens\":-5", "max_tokens",
	    "between 1 and");
	BAD_FIELD("max_completion_tokens 0", "\"max_completion_tokens\":0",
	    "max_completion_tokens", "between 1 and");
	BAD_FIELD("n 0", "\"n\":0", "n", "'n' must be between 1 and 128");
	BAD_FIELD("n 129", "\"n\":129", "n", "between 1 and 128");
	BAD_FIELD("presence_penalty 3", "\"presence_penalty\":3",
	    "presence_penalty", "between -2 and 2");
	BAD_FIELD("stop a number", "\"stop\":5", "stop",
	    "'stop' must be a string or an array or null");
	BAD_FIELD("stop 17 items", "\"stop\":[\"1\",\"2\",\"3\",\"4\",\"5\","
	    "\"6\",\"7\",\"8\",\"9\",\"a\",\"b\",\"c\",\"d\",\"e\",\"f\","
	    "\"g\",\"h\"]", "stop", "'stop' must have 0 to 16 items");
	BAD_FIELD("tools an object", "\"tools\":{}", "tools", "an array");
	BAD_FIELD("tool_choice a number", "\"tool_choice\":1", "tool_choice",
	    "a string or an object");
	BAD_FIELD("seed a string", "\"seed\":\"1\"", "seed", "an integer");
	BAD_FIELD("top_logprobs 21", "\"top_logprobs\":21", "top_logprobs",
	    "between 0 and 20");
#undef BAD_FIELD
	memset(s, 'a', sizeof(s));
	memcpy(s, "{\"model\":\"", 10);
	snprintf(s + 10 + 256, sizeof(s) - 10 - 256, "\",%s}", msg);
	bad("model of 256 characters", s, "model",
	    "'model' must be 1 to 255 characters long");
}

static void
test_messages(void)
{
	bad("message not an object", "{\"model\":\"m\",\"messages\":[\"hi\"]}",
	    NULL, "'messages[0]' must be an object, not a string");
	bad("message without role", "{\"model\":\"m\",\"messages\":"
	    "[{\"content\":\"hi\"}]}", "messages[0].role",
	    "'messages[0].role' is required");
	bad("role a number", "{\"model\":\"m\",\"messages\":"
	    "[{\"role\":1,\"content\":\"hi\"}]}", "messages[0].role",
	    "must be a string");
	bad("content a number", "{\"model\":\"m\",\"messages\":[{\"role\":"
	    "\"user\",\"content\":\"a\"},{\"role\":\"user\",\"content\":7}]}",
	    "messages[1].content",
	    "'messages[1].content' must be a string or an array or null");
	bad("user without content", "{\"model\":\"m\",\"messages\":"
	    "[{\"role\":\"user\"}]}", NULL,
	    "'messages[0].content' is required");
	bad("tool without tool_call_id", "{\"model\":\"m\",\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"a\"},{\"role\":\"tool\","
	    "\"content\":\"42\"}]}", NULL,
	    "'messages[1].tool_call_id' is required for role 'tool'");
	bad("cache_control a string", "{\"model\":\"m\",\"messages\":"
	    "[{\"role\":\"user\",\"content\":\"hi\",\"cache_control\":"
	    "\"ephemeral\"}]}", "messages[0].cache_control",
	    "'messages[0].cache_control' must be an object or null");
	bad("invalid role", "{\"model\":\"m\",\"messages\":"
	    "[{\"role\":\"wizard\",\"content\":\"hi\"}]}", NULL,
	    "'messages[0].role' must be system, developer, user, assistant "
	    "or tool, not 'wizard'");
}

/*
 * Checks of one message name the failing field in param, as the type
 * checks do ("messages[1].content"), not just "messages".
 */
static void
test_message_param(void)
{
	static const struct {
		const char	*what;
		const char	*s;
		const char	*param;
	} cases[] = {
		{ "invalid role", "{\"model\":\"m\",\"messages\":[{\"role\":"
		  "\"user\",\"content\":\"a\"},{\"role\":\"wizard\","
		  "\"content\":\"hi\"}]}", "messages[1].role" },
		{ "missing tool_call_id", "{\"model\":\"m\",\"messages\":"
		  "[{\"role\":\"tool\",\"content\":\"42\"}]}",
		  "messages[0].tool_call_id" },
		{ "missing content", "{\"model\":\"m\",\"messages\":"
		  "[{\"role\":\"user\"}]}", "messages[0].content" },
		{ "message not an object", "{\"model\":\"m\",\"messages\":"
		  "[\"hi\"]}", "messages[0]" },
	};
	struct verr	 e;
	size_t		 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		run(cases[i].s, &e);
		ok(strcmp(e.param, cases[i].param) == 0,
		    "%s: param is %s, not '%s'", cases[i].what,
		    cases[i].param, e.param);
	}
}

/* n arrays nested in each other; the caller frees. */
static char *
nested(size_t n)
{
	char	*s;

	if ((s = malloc(2 * n + 2)) == NULL)
		return NULL;
	memset(s, '[', n);
	s[n] = '1';
	memset(s + n + 1, ']', n);
	s[2 * n + 1] = '\0';
	return s;
}

static void
test_depth(void)
{
	struct json_object	*o;
	struct verr		 e;
	char			*s;

	s = nested(10);
	o = json_parse_strict(s, strlen(s), 8, &e);
	ok(o == NULL, "10 nested arrays under a limit of 8: refused");
	ok(strstr(e.message, "depth") != NULL ||
	    strstr(e.message, "nesting") != NULL,
	    "the message names the nesting ('%s')", e.message);
	free(s);

	s = nested(7);
	o = json_parse_strict(s, strlen(s), 8, &e);
	ok(o != NULL, "7 nested arrays under a limit of 8: accepted");
	json_object_put(o);
	free(s);

	s = nested(9);
	o = json_parse_strict(s, strlen(s), 8, &e);
	ok(o == NULL, "9 nested arrays under a limit of 8: refused");
	json_object_put(o);
	free(s);

	/* "nesting at most depth": the limit itself is allowed. */
	s = nested(8);
	o = json_parse_strict(s, strlen(s), 8, &e);
	ok(o != NULL, "8 nested arrays under a limit of 8: accepted");
	json_object_put(o);
	free(s);

	s = nested(100);
	o = json_parse_strict(s, strlen(s), DEPTH, &e);
	ok(o == NULL, "100 nested arrays under the default limit: refused");
	free(s);
}

static void
test_json(void)
{
	static const char nul[] = "{\"model\":\"m\"}\0{}";

	bad_json("empty body", "", 0, "empty");
	bad_json("trailing garbage", "{\"model\":\"m\"} x", 15, "at byte 14");
	bad_json("two objects", "{}{}", 4, "at byte 2");
	bad_json("a NUL after the object", nul, sizeof(nul) - 1,
	    "trailing data at byte 13");
	bad_json("truncated", "{\"model\":\"m\",\"messages\":[", 25,
	    "unexpected end of input");
	bad_json("truncated string", "{\"model\":\"gp", 12,
	    "unexpected end of input");
	bad_json("invalid UTF-8", "{\"model\":\"\xff\xfe\"}", 14,
	    "not valid JSON");
	bad_json("truncated UTF-8", "{\"model\":\"\xe2\x82\"}", 14,
	    "not valid JSON");
	bad_json("trailing comma", "{\"a\":1,}", 8, "not valid JSON");
	bad_json("comment", "{/* c */}", 9, "not valid JSON");
	bad_json("leading zero", "{\"a\":01}", 8, "not valid JSON");
	bad_json("lower-case nan", "{\"a\":nan}", 9, "not valid JSON");
	bad_json("upper-case TRUE", "{\"a\":TRUE}", 10, "not valid JSON");
	bad_json("\\x escape", "{\"a\":\"\\x41\"}", 11, "not valid JSON");
	bad_json("bare word", "hello", 5, "not valid JSON");
}

static void
test_top_level(void)
{
	struct json_object	*o;
	struct verr		 e;

	memset(&e, 0, sizeof(e));
	o = json_parse_strict("[1]", 3, DEPTH, &e);
	ok(o != NULL, "an array parses");
	is_int(validate_chat(o, &e), -1, "but is not a chat request");
	is_str(e.param, "", "no param for the whole body");
	like(e.message, "must be a JSON object, not an array",
	    "the message says what came");
	json_object_put(o);

	o = json_parse_strict("\"hi\"", 4, DEPTH, &e);
	ok(o != NULL && validate_chat(o, &e) == -1,
	    "a string is not a chat request");
	like(e.message, "not a string", "the message says a string came");
	json_object_put(o);

	/*
	 * A bare number or literal is valid JSON; it should reach
	 * validate_chat ("not an integer"), not fail as if cut short.
	 */
	memset(&e, 0, sizeof(e));
	o = json_parse_strict("42", 2, DEPTH, &e);
	ok(strstr(e.message, "unexpected end") == NULL,
	    "42: not 'unexpected end of input' ('%s')", e.message);
	json_object_put(o);
	memset(&e, 0, sizeof(e));
	o = json_parse_strict("null", 4, DEPTH, &e);
	ok(strstr(e.message, "unexpected end") == NULL &&
	    strstr(e.message, "null") != NULL,
	    "null: the message says null came ('%s')", e.message);
	json_object_put(o);
}

/*
 * Not JSON, yet json-c 0.16 takes it even with JSON_TOKENER_STRICT and
 * JSON_TOKENER_VALIDATE_UTF8. Some of it would reach the upstream as is
 * ("1." and NaN are serialised back unchanged).
 */
static void
test_lenient(void)
{
	static const struct {
		const char	*what;
		const char	*s;
	} notjson[] = {
		{ "a single-quoted key", "{'a':1}" },
		{ "NaN", "{\"a\":NaN}" },
		{ "-Infinity", "{\"a\":-Infinity}" },
		{ "a number ending in a dot", "{\"a\":1.}" },
		{ "a raw control character in a string", "{\"a\":\"x\001y\"}" },
		{ "overlong UTF-8 for '/'", "{\"a\":\"\xc0\xaf\"}" },
		{ "a UTF-16 surrogate in UTF-8", "{\"a\":\"\xed\xa0\x80\"}" },
		{ "UTF-8 past U+10FFFF", "{\"a\":\"\xf4\x90\x80\x80\"}" },
	};
	struct json_object	*o;
	struct verr		 e;
	size_t			 i;

	for (i = 0; i < sizeof(notjson) / sizeof(notjson[0]); i++) {
		memset(&e, 0, sizeof(e));
		o = json_parse_strict(notjson[i].s, strlen(notjson[i].s), DEPTH,
		    &e);
		ok(o == NULL, "%s: refused", notjson[i].what);
		json_object_put(o);
	}
}

static void
test_type_label(void)
{
	struct json_object	*o;

	o = json_object_new_double(1.5);
	is_str(json_type_label(o), "a number", "double label");
	json_object_put(o);
	o = json_object_new_int(1);
	is_str(json_type_label(o), "an integer", "integer label");
	json_object_put(o);
	is_str(json_type_label(NULL), "null", "NULL is null");
}

int
main(void)
{
	test_valid();
	test_fields();
	test_messages();
	test_message_param();
	test_depth();
	test_json();
	test_top_level();
	test_lenient();
	test_type_label();
	return tap_done();
}
