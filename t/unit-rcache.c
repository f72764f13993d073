/*
 * unit-rcache.c: the response cache's canonical key (members in any order,
 * 0 and 0.0 alike, the scope and the model in it, every parameter that
 * shapes the answer changes it, the transport's members do not) and the
 * replay of a reply as stream chunks; against a real store: the size cap
 * evicts the oldest, the totals record stays exact, and so it does when
 * four processes store overlapping keys at once.
 */
#include <sys/wait.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/rcache.h"
#include "../src/store.h"
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

static char	 dir[] = "/tmp/llmgate-unit-rcache.XXXXXX";

static void
entry(struct rcache *rc, int i, size_t len, int64_t max_bytes)
{
	char		 req[64], *text;
	struct json_object *o;

	memset(rc, 0, sizeof(*rc));
	rc->mode = RCACHE_USE;
	rc->ttl = 600;
	rc->max_bytes = max_bytes;
	snprintf(req, sizeof(req), "{\"i\":%d}", i);
	o = json_tokener_parse(req);
	rcache_key("k:1", "m", o, rc->key);
	json_object_put(o);
	text = malloc(len + 1);
	memset(text, 'a' + i % 26, len);
	text[len] = '\0';
	rc->reply = json_object_new_object();
	json_object_object_add(rc->reply, "content",
	    json_object_new_string(text));
	free(text);
}

static void
put(struct store *s, int i, size_t len, int64_t max_bytes)
{
	struct rcache	 rc;
	struct usage	 u = { 10, 20, 0, 1, 0, 0 };

	entry(&rc, i, len, max_bytes);
	rcache_put(&rc, s, &u, 0);
	rcache_free(&rc);
}

/* 1: entry i is served (with usage 10 + 20), 0: a miss. */
static int
get(struct store *s, int i)
{
	struct rcache		 rc;
	struct json_object	*reply = NULL;
	int			 hit;

	entry(&rc, i, 1, 1 << 20);
	json_object_put(rc.reply);
	rc.reply = NULL;
	hit = rcache_get(&rc, s, &reply) == 1 && reply != NULL &&
	    rc.usage.prompt == 10 && rc.usage.completion == 20;
	json_object_put(reply);
	rcache_free(&rc);
	return hit;
}

static int
consistent(struct store *s, int64_t max_bytes, const char *what)
{
	struct rcache_stats	 st;
	int			 rc;

	rc = rcache_stats(s, &st);
	ok(rc == STORE_OK, "%s: stats read", what);
	ok(st.total_bytes == st.index_bytes && st.total_entries ==
	    st.index_entries && st.index_entries == st.heads &&
	    st.orphans == 0, "%s: totals exact (%lld bytes, %lld entries; "
	    "index %lld, %lld; heads %lld, orphans %lld)", what,
	    (long long)st.total_bytes, (long long)st.total_entries,
	    (long long)st.index_bytes, (long long)st.index_entries,
	    (long long)st.heads, (long long)st.orphans);
	ok(st.total_bytes <= max_bytes, "%s: within the cap (%lld <= %lld)",
	    what, (long long)st.total_bytes, (long long)max_bytes);
	return (int)st.heads;
}

static void
test_store(void)
{
	struct store	*s;
	char		 err[256], cmd[300];
	int		 i, p, n, status, all = 1;
	pid_t		 pid;
	const int64_t	 cap = 8000;

	if (mkdtemp(dir) == NULL) {
		ok(0, "scratch directory");
		return;
	}
	s = store_open(dir, STORE_RECOVER, 1, 30, err, sizeof(err));
	ok(s != NULL, "store created: %s", s ? "ok" : err);
	if (s == NULL)
		return;
	store_close(s);
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	/* Entries of about 1 kB under a cap of 8000 bytes: seven fit. */
	for (i = 0; i < 20; i++) {
		put(s, i, 900, cap);
		usleep(2000);	/* distinct times: a known eviction order */
	}
	ok(get(s, 19) && get(s, 13), "the newest entries are served");
	ok(!get(s, 0) && !get(s, 12), "the oldest were evicted");
	n = consistent(s, cap, "after 20 puts");
	ok(n == 7, "seven entries of 1042 bytes fit in 8000 (%d)", n);
	put(s, 19, 2000, cap);
	ok(get(s, 19), "an entry replaced by a larger answer is served");
	consistent(s, cap, "after a replacement");
	put(s, 30, 9000, cap);
	ok(!get(s, 30), "an answer larger than the whole cap is not stored");
	store_close(s);

	/* Four processes store 40 entries each over 12 keys at once. */
	for (p = 0; p < 4; p++) {
		if ((pid = fork()) != 0)
			continue;
		s = store_open(dir, STORE_WORKER, 1, 30, err, sizeof(err));
		if (s == NULL)
			_exit(2);
		for (i = 0; i < 40; i++)
			put(s, (p * 7 + i) % 12, 300 + (size_t)((p + i) % 5) *
			    200, cap);
		store_close(s);
		_exit(0);
	}
	for (p = 0; p < 4; p++) {
		if (wait(&status) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			all = 0;
	}
	ok(all, "four processes stored 160 entries");
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	n = consistent(s, cap, "after 160 concurrent puts");
	ok(n > 0, "some entries are kept (%d)", n);
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		ok(0, "scratch directory removed");
}

int
main(void)
{
	test_key();
	test_chunks();
	test_store();
	return tap_done();
}
