/* unit-keys.c: the rules for key names, agents, globs and reasons, and log_value(). */
#include <stdio.h>
#include <string.h>

#include "../src/keys.h"
#include "../src/log.h"
#include "tap.h"

/* A key with this name, agent and model list; the rest empty. */
static struct key_rec *
key(const char *name, const char *agent, const char *models)
{
	static struct key_rec	 k;

	memset(&k, 0, sizeof(k));
	snprintf(k.name, sizeof(k.name), "%s", name);
	snprintf(k.agent, sizeof(k.agent), "%s", agent);
	snprintf(k.models, sizeof(k.models), "%s", models);
	return &k;
}

static void
test_check(void)
{
	static const char *const bad_words[] = {
		"", "a b", "a=b", "x/y", "a\nb", "a\tb", "a\"b", "-lead",
		".dot", "a\x7f", "caf\xc3\xa9", "key=forged", "a\\b",
	};
	static const char *const good_words[] = {
		"alice", "bob-agent", "ok.name@x+y:z", "A1_b", "7up",
	};
	static const char *const bad_globs[] = {
		"gpt-4 x=y", "a\"", "m;rm", "m\x01", "m  n", " m", "m ",
	};
	struct keys_fault	 f;
	struct key_rec		*k;
	char			 list[16], q[64];
	size_t			 i;

	for (i = 0; i < sizeof(bad_words) / sizeof(bad_words[0]); i++) {
		ok(keys_check(key(bad_words[i], "", ""), &f) == -1 &&
		    strcmp(f.field, "name") == 0, "name %s refused",
		    log_value(q, sizeof(q), bad_words[i]));
		if (bad_words[i][0] != '\0')
			ok(keys_check(key("n", bad_words[i], ""), &f) == -1 &&
			    strcmp(f.field, "agent") == 0,
			    "agent %s refused", q);
	}
	for (i = 0; i < sizeof(good_words) / sizeof(good_words[0]); i++)
		ok(keys_check(key(good_words[i], good_words[i], ""), &f) == 0,
		    "name and agent '%s' accepted", good_words[i]);
	ok(keys_check(key("123", "", ""), &f) == -1, "an all-digit name "
	    "would read as an id");
	ok(keys_check(key("sk-mine", "", ""), &f) == -1, "an sk- name would "
	    "read as a prefix");
	for (i = 0; i < sizeof(bad_globs) / sizeof(bad_globs[0]); i++)
		ok(keys_check(key("n", "", bad_globs[i]), &f) == -1 &&
		    strcmp(f.field, "models") == 0, "models %s refused",
		    log_value(q, sizeof(q), bad_globs[i]));
	ok(keys_check(key("n", "", "gpt-4* vendor/m-[0-9]? !x"), &f) == 0,
	    "globs with * ? [ ] ! / accepted");
	k = key("n", "", "");
	k->max_concurrent = -1;
	ok(keys_check(k, &f) == -1 && strcmp(f.field, "max_concurrent") == 0,
	    "max_concurrent -1 refused");
	k->max_concurrent = KEY_CONCURRENT_MAX + 1;
	ok(keys_check(k, &f) == -1, "max_concurrent above %d refused",
	    KEY_CONCURRENT_MAX);
	k->max_concurrent = 3;
	ok(keys_check(k, &f) == 0, "max_concurrent 3 accepted");
	ok(keys_check(key("n", "", "x=y"), &f) == -1 &&
	    strstr(f.why, "'x=y'") != NULL, "the refusal names the glob");

	list[0] = '\0';
	ok(keys_models_add(list, sizeof(list), "gpt-4*") == 0 &&
	    keys_models_add(list, sizeof(list), "claude") == 0,
	    "models_add: two globs");
	is_str(list, "gpt-4* claude", "models_add: one space apart");
	ok(keys_models_add(list, sizeof(list), "xy") == -1, "models_add: "
	    "what would not fit is refused");
	is_str(list, "gpt-4* claude", "models_add: ... and changes nothing");

	ok(keys_check_reason("refund: 2026-01-02 outage, ticket #7 (50%)") ==
	    NULL, "reason: spaces and punctuation");
	ok(keys_check_reason("caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9") == NULL,
	    "reason: UTF-8 letters");
	ok(keys_check_reason("a\nforged=1") != NULL, "reason: a newline");
	ok(keys_check_reason("a\rb") != NULL, "reason: a carriage return");
	ok(keys_check_reason("a\x7f") != NULL, "reason: DEL");
	ok(keys_check_reason("a\xc2\x85z") != NULL, "reason: U+0085 (NEL)");
}

static void
test_log_value(void)
{
	char	 b[LOG_VALUE_SIZE(16)], small[8];

	is_str(log_value(b, sizeof(b), "alice"), "alice", "plain word as is");
	is_str(log_value(b, sizeof(b), "m@x=y:z/w"), "m@x=y:z/w",
	    "'=' and ':' need no quotes");
	is_str(log_value(b, sizeof(b), ""), "\"\"", "empty: quoted");
	is_str(log_value(b, sizeof(b), "a key=forged"), "\"a key=forged\"",
	    "a space: quoted");
	is_str(log_value(b, sizeof(b), "a\"b\\c"), "\"a\\\"b\\\\c\"",
	    "quote and backslash escaped");
	is_str(log_value(b, sizeof(b), "a\nb\x7f\xc3"), "\"a\\x0ab\\x7f\\xc3\"",
	    "control and non-ASCII bytes as \\xNN");
	is_str(log_value(small, sizeof(small), "a b c d e f"), "\"a b c\"",
	    "cut to fit, closing quote kept");
	is_str(log_value(small, sizeof(small), "\n\n\n"), "\"\\x0a\"",
	    "cut between escapes, not inside one");
}

int
main(void)
{
	test_check();
	test_log_value();
	return tap_done();
}
