/*
 * unit-rcache.c: the response cache's canonical key (members in any order,
 * 0 and 0.0 alike, the scope and the model in it, every parameter that
 * shapes the answer changes it, the transport's members do not) and the
 * replay of a reply as stream chunks.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../src/rcache.h"
#include "tap.h"

static const char *base =
    "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":10,"
    "\"messages\":[{\"role\":\"system\",\"content\":\"be brief\"},"
    "{\"role\":\"user\",\"content\":\"hello\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\","
    "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]}";

/* The key of a request text: 0, or -1. */
static int
key_of(const char *scope, const char *model, const char *text,
    unsigned char out[RCACHE_KEY_LEN])
{
	struct json_object	*o = json_tokener_parse(text);
	int			 rc;

	if (o == NULL)
		return -1;
	rc = rcache_key(scope, model, o, out);
	json_object_put(o);
	return rc;
}

static int
same(const char *a, const char *b)
{
	unsigned char	 ka[RCACHE_KEY_LEN], kb[RCACHE_KEY_LEN];

	if (key_of("k:1", "m", a, ka) == -1 || key_of("k:1", "m", b, kb) == -1)
		return -1;
	return memcmp(ka, kb, sizeof(ka)) == 0;
}

/* base with one member added (or replaced): a new string, caller frees. */
static char *
with(const char *member, const char *value)
{
	struct json_object	*o = json_tokener_parse(base);
	char			*s;

	json_object_object_add(o, member, json_tokener_parse(value));
	s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return s;
}

static void
test_key(void)
{
	unsigned char	 a[RCACHE_KEY_LEN], b[RCACHE_KEY_LEN];
	static const struct {
		const char	*member, *value;
	} changes[] = {
		{ "temperature", "0.5" }, { "max_tokens", "11" },
		{ "top_p", "0.9" }, { "stop", "[\"x\"]" }, { "seed", "7" },
		{ "tool_choice", "\"none\"" },
		{ "response_format", "{\"type\":\"json_object\"}" },
		{ "messages", "[{\"role\":\"user\",\"content\":\"hello!\"}]" },
		{ "tools", "[]" }, { "n", "1" }, { "logprobs", "true" },
		{ "frequency_penalty", "0.1" },
	};
	static const struct {
		const char	*member, *value;
	} ignored[] = {
		{ "model", "\"other\"" }, { "stream", "true" },
		{ "stream_options", "{\"include_usage\":true}" },
		{ "user", "\"u1\"" }, { "metadata", "{\"a\":\"b\"}" },
	};
	char		*s;
	size_t		 i;

	ok(key_of("k:1", "m", base, a) == 0, "a key is made");
	ok(key_of("k:1", "m", base, b) == 0 && memcmp(a, b, sizeof(a)) == 0,
	    "the same request: the same key");
	ok(same(base, "{\"max_tokens\":10,\"tools\":[{\"function\":"
	    "{\"parameters\":{\"properties\":{},\"type\":\"object\"},"
	    "\"name\":\"f\"},\"type\":\"function\"}],\"messages\":["
	    "{\"content\":\"be brief\",\"role\":\"system\"},{\"content\":"
	    "\"hello\",\"role\":\"user\"}],\"temperature\":0.0,"
	    "\"model\":\"m\"}") == 1,
	    "members in another order at every level, 0.0 for 0: the same key");
	ok(same(base, "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":10,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"hello\"},"
	    "{\"role\":\"system\",\"content\":\"be brief\"}],\"tools\":"
	    "[{\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"parameters\":{\"type\":\"object\",\"properties\":{}}}}]}") == 0,
	    "messages in another order: another key");
	for (i = 0; i < sizeof(changes) / sizeof(changes[0]); i++) {
		s = with(changes[i].member, changes[i].value);
		ok(same(base, s) == 0, "%s = %s changes the key",
		    changes[i].member, changes[i].value);
		free(s);
	}
	for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
		s = with(ignored[i].member, ignored[i].value);
		ok(same(base, s) == 1, "%s does not change the key",
		    ignored[i].member);
		free(s);
	}
	ok(key_of("k:2", "m", base, b) == 0 && memcmp(a, b, sizeof(a)) != 0,
	    "another key's scope: another key");
	ok(key_of("a:k:1", "m", base, b) == 0 && memcmp(a, b, sizeof(a)) != 0,
	    "another scope kind: another key");
	ok(key_of("k:1", "m2", base, b) == 0 && memcmp(a, b, sizeof(a)) != 0,
	    "another planned model: another key");
	/* Strings are length-prefixed: no two splits collide. */
	ok(same("{\"messages\":[\"ab\",\"c\"]}", "{\"messages\":[\"a\",\"bc\"]}")
	    == 0, "[\"ab\",\"c\"] and [\"a\",\"bc\"]: different keys");
	ok(same("{\"a\":\"1\"}", "{\"a\":1}") == 0,
	    "a string and a number: different keys");
	ok(key_of("k:1", "m", "[1]", a) == -1, "a request that is not an "
	    "object has no key");
}

static void
test_chunks(void)
{
	struct json_object	*reply, *chunks, *c;
	struct usage		 u = { 5, 3, 0, 1, 0, 0 };
	const char		*s;

	reply = json_tokener_parse("{\"id\":\"x\",\"object\":\"chat.completion\","
	    "\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"message\":"
	    "{\"role\":\"assistant\",\"content\":\"hi there\",\"tool_calls\":"
	    "[{\"id\":\"c1\",\"type\":\"function\",\"function\":{\"name\":\"f\","
	    "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"}]}");
	chunks = rcache_chunks(reply, &u, 1);
	is_int((int)json_object_array_length(chunks), 4,
	    "a reply with a tool call: 4 chunks (content, call, finish, usage)");
	s = json_object_to_json_string_ext(json_object_array_get_idx(chunks, 0),
	    JSON_C_TO_STRING_PLAIN);
	ok(strstr(s, "\"delta\":{\"role\":\"assistant\",\"content\":\"hi there\"}")
	    != NULL, "the first chunk: role and content (%s)", s);
	s = json_object_to_json_string_ext(json_object_array_get_idx(chunks, 1),
	    JSON_C_TO_STRING_PLAIN);
	ok(strstr(s, "\"index\":0") != NULL && strstr(s, "\"name\":\"f\"") != NULL,
	    "the second: the tool call with its index");
	s = json_object_to_json_string_ext(json_object_array_get_idx(chunks, 2),
	    JSON_C_TO_STRING_PLAIN);
	ok(strstr(s, "\"finish_reason\":\"tool_calls\"") != NULL,
	    "the third: the finish reason");
	c = json_object_array_get_idx(chunks, 3);
	s = json_object_to_json_string_ext(c, JSON_C_TO_STRING_PLAIN);
	ok(strstr(s, "\"choices\":[]") != NULL &&
	    strstr(s, "\"total_tokens\":8") != NULL,
	    "the last: usage with no choices (%s)", s);
	json_object_put(chunks);
	chunks = rcache_chunks(reply, &u, 0);
	is_int((int)json_object_array_length(chunks), 3,
	    "without include_usage: no usage chunk");
	json_object_put(chunks);
	json_object_put(reply);
}

int
main(void)
{
	test_key();
	test_chunks();
	return tap_done();
}
