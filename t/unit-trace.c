/* unit-trace.c: traceparent parsing and generation, JSON log strings, usage rows of every version. */
#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#include "../src/log.h"
#include "../src/trace.h"
#include "../src/usage.h"
#include "tap.h"

#define TID	"4bf92f3577b34da6a3ce929d0e0e4736"
#define PID	"00f067aa0ba902b7"

static void
test_parse(void)
{
	static const char *const bad[] = {
		"", "00", "garbage",
		"00-" TID "-" PID "-1",			/* flags too short */
		"00-" TID "-" PID "-011",		/* too long */
		"00-" TID "-" PID "-01-",		/* trailing */
		"01-" TID "-" PID "-01",		/* another version */
		"ff-" TID "-" PID "-01",		/* the forbidden one */
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", /* uppercase */
		"00-00000000000000000000000000000000-" PID "-01",
		"00-" TID "-0000000000000000-01",
		"00_" TID "_" PID "_01",
		"00-" TID "-" PID "-0g",
		"00-4bf92f3577b34da6a3ce929d0e0e473-" PID "-01x",
		" 00-" TID "-" PID "-01",
	};
	struct trace	 t;
	size_t		 i;
	int		 rejected = 0;

	ok(trace_parse("00-" TID "-" PID "-01", &t) == 0, "a valid one parses");
	is_str(t.trace_id, TID, "its trace id");
	is_str(t.parent_id, PID, "its parent id");
	is_str(t.flags, "01", "its flags");
	ok(trace_parse("00-" TID "-" PID "-00", &t) == 0, "flags 00 parse");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (trace_parse(bad[i], &t) == -1)
			rejected++;
		else
			printf("# accepted: '%s'\n", bad[i]);
	is_int(rejected, (int)(sizeof(bad) / sizeof(bad[0])),
	    "every malformed traceparent is rejected");
	ok(trace_parse(NULL, &t) == -1, "NULL is rejected");
}

static void
test_begin(void)
{
	struct trace	 t, u;
	char		 h[64];

	is_int(trace_begin(&t, "00-" TID "-" PID "-01"), 1, "a client's is taken");
	is_str(t.trace_id, TID, "same trace id");
	ok(strcmp(t.span_id, PID) != 0 && strlen(t.span_id) == 16,
	    "the gateway's own span id");
	trace_header(&t, h, sizeof(h));
	ok(strncmp(h, "00-" TID "-", 36) == 0 && strcmp(h + 52, "-01") == 0 &&
	    strncmp(h + 36, t.span_id, 16) == 0, "the header sent upstream: %s", h);
	is_int(trace_begin(&u, "00-" TID "-" PID "-0x"), -1, "malformed: -1");
	ok(strcmp(u.trace_id, TID) != 0 && strlen(u.trace_id) == 32 &&
	    u.parent_id[0] == '\0', "... and a new trace");
	trace_header(&u, h, sizeof(h));
	ok(trace_parse(h, &t) == 0, "a generated header is valid: %s", h);
	is_int(trace_begin(&u, NULL), 0, "none sent: 0");
	is_int(trace_begin(&t, ""), 0, "empty: 0");
	ok(strcmp(t.trace_id, u.trace_id) != 0, "two new traces differ");
}

static void
test_json_string(void)
{
	char		 buf[256];
	struct json_object *o;

	ok(log_json_string(buf, sizeof(buf), "plain") == 7 &&
	    strcmp(buf, "\"plain\"") == 0, "plain text: quoted");
	log_json_string(buf, sizeof(buf), "a\"b\\c\nd\x01\x7f");
	is_str(buf, "\"a\\\"b\\\\c\\nd\\u0001\\u007f\"", "escapes");
	log_json_string(buf, sizeof(buf), "caf\xc3\xa9 \xff\xfe \xc3\x28 \xe2\x82");
	is_str(buf, "\"caf\xc3\xa9 \\ufffd\\ufffd \\ufffd( \\ufffd\\ufffd\"",
	    "valid UTF-8 kept, invalid bytes as U+FFFD");
	log_json_string(buf, sizeof(buf), "\xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf");
	o = json_tokener_parse(buf);
	ok(o != NULL, "surrogates, out of range and overlong: still JSON (%s)", buf);
	json_object_put(o);
	ok(log_json_string(buf, 8, "0123456789") == -1, "too long: -1");
}

static void
test_rows(void)
{
	struct usage_row	 r, back;
	unsigned char		 raw[sizeof(r)];
	struct json_object	*o;

	memset(&r, 0, sizeof(r));
	r.version = 2;
	r.id = 7;
	r.reserved = 99;
	memcpy(raw, &r, sizeof(r));
	ok(usage_rec(raw, USAGE_V2_SIZE, &back) == 0 && back.reserved == 99 &&
	    back.traceparent[0] == '\0' && back.version == USAGE_VERSION,
	    "a version 2 row reads, with an empty traceparent");
	raw[0] = 1;
	ok(usage_rec(raw, USAGE_V1_SIZE, &back) == 0, "a version 1 row reads");
	ok(usage_rec(raw, USAGE_V2_SIZE, &back) == -1,
	    "a version 1 tag with a version 2 size is refused");
	r.version = USAGE_VERSION;
	r.time_us = 1700000000000000LL;
	snprintf(r.traceparent, sizeof(r.traceparent), "00-%s-%s-01", TID, PID);
	snprintf(r.trace_parent, sizeof(r.trace_parent), "%s", PID);
	snprintf(r.key_prefix, sizeof(r.key_prefix), "sk-AbCdEfG");
	o = usage_to_json(&r);
	ok(usage_from_json(o, &back) == 0 && strcmp(back.traceparent,
	    r.traceparent) == 0 && strcmp(back.trace_parent, PID) == 0 &&
	    strcmp(back.key_prefix, "sk-AbCdEfG") == 0,
	    "JSON round trip keeps traceparent, parent id, key prefix");
	json_object_put(o);
}

int
main(void)
{
	test_parse();
	test_begin();
	test_json_string();
	test_rows();
	return tap_done();
}
