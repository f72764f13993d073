/*
 * unit-outguard.c: the answer's side of a policy over OpenAI chunks as a
 * provider adapter emits them: two choices interleaved, each cut at every
 * byte into two events, restored and checked as whole texts; tool calls
 * of two indexes; a stop that lets no byte of the finding through, in
 * either choice; the tail of a stream that never said finish; whole
 * answers with one choice stopped and the other restored.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../src/config.h"
#include "../src/outguard.h"
#include "../src/policy.h"
#include "../src/redact.h"
#include "tap.h"

#define CARD	"4111 1111 1111 1111"

static struct policy_cfg	 pol;
static struct guard		 g;

/* A guard whose map holds what redact made of the client's e-mail. */
static void
guard_setup(enum redact_out mode, int restore)
{
	struct buf	 b;
	unsigned	 found = 0;
	const char	*req = "write to ivan.petrov@example.ru please";

	memset(&g, 0, sizeof(g));
	pol.restore = restore;
	pol.output = mode;
	pol.out_mask = DET_PII_MASK;
	g.pol = &pol;
	redact_map_init(&g.map);
	buf_init(&b, 1 << 20);
	redact_text(pol.rules, DET_PII_MASK, &g.map, req, strlen(req), &b,
	    &found);
	buf_free(&b);
}

static struct json_object *
delta_chunk(int index, const char *member, const char *text, const char *fin)
{
	char		 buf[4096];
	struct json_object *d;

	d = json_object_new_object();
	json_object_object_add(d, member, json_object_new_string(text));
	snprintf(buf, sizeof(buf), "{\"id\":\"c1\",\"object\":"
	    "\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":"
	    "%d,\"finish_reason\":%s%s%s}]}", index, fin ? "\"" : "",
	    fin ? fin : "null", fin ? "\"" : "");
	{
		struct json_object *o = json_tokener_parse(buf), *ch;

		ch = json_object_array_get_idx(json_object_object_get(o,
		    "choices"), 0);
		json_object_object_add(ch, "delta", d);
		return o;
	}
}

/* Each choice's content as the client would put it together. */
static void
collect(struct json_object *chunk, char out[2][4096], int *stops)
{
	struct json_object	*choices, *ch, *d, *v;
	size_t			 i;
	int			 idx;

	if (!json_object_object_get_ex(chunk, "choices", &choices))
		return;
	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		idx = json_object_get_int(json_object_object_get(ch, "index"));
		if (idx < 0 || idx > 1)
			continue;
		if (json_object_object_get_ex(ch, "delta", &d) &&
		    json_object_object_get_ex(d, "content", &v) &&
		    json_object_is_type(v, json_type_string))
			strncat(out[idx], json_object_get_string(v),
			    4095 - strlen(out[idx]));
		if (json_object_object_get_ex(ch, "finish_reason", &v) &&
		    v != NULL && strcmp(json_object_get_string(v),
		    "content_filter") == 0)
			(*stops)++;
	}
}

/*
 * text0 and text1 (choices 0 and 1) each cut at cut into two events,
 * interleaved, then a finish for each; what each choice's client got.
 */
static int
run_split(const char *t0, const char *t1, size_t cut, char out[2][4096],
    int *stops)
{
	struct outguard		 og;
	struct json_object	*c;
	const char		*t[2] = { t0, t1 };
	char			 piece[4096];
	int			 rc = 0, i, k;

	memset(out, 0, 2 * 4096);
	*stops = 0;
	outguard_init(&og, &g);
	for (k = 0; k < 3 && rc == 0; k++)
		for (i = 0; i < 2 && rc == 0; i++) {
			size_t n = strlen(t[i]), at = cut < n ? cut : n;

			if (k == 0)
				snprintf(piece, sizeof(piece), "%.*s", (int)at, t[i]);
			else if (k == 1)
				snprintf(piece, sizeof(piece), "%s", t[i] + at);
			else
				piece[0] = '\0';
			c = delta_chunk(i, "content", piece, k == 2 ? "stop" :
			    NULL);
			rc = outguard_chunk(&og, c);
			collect(c, out, stops);
			json_object_put(c);
		}
	outguard_free(&og);
	return rc;
}

static void
test_stream_restore_redact(void)
{
	const char	*a = "Mail [EMAIL_1] now, card " CARD " ok";
	const char	*b = "Пишите на [EMAIL_1], карта " CARD ".";
	char		 out[2][4096];
	size_t		 cut, bad_restore = 0, bad_redact = 0, n;
	int		 stops;

	guard_setup(REDACT_OUT_REDACT, 1);
	n = strlen(b);
	for (cut = 0; cut <= n; cut++) {
		run_split(a, b, cut, out, &stops);
		if (strcmp(out[0], "Mail ivan.petrov@example.ru now, card "
		    "[CARD_1] ok") != 0)
			bad_restore++, printf("# cut %zu: '%s'\n", cut, out[0]);
		if (strcmp(out[1], "Пишите на ivan.petrov@example.ru, карта "
		    "[CARD_1].") != 0)
			bad_redact++, printf("# cut %zu: '%s'\n", cut, out[1]);
	}
	is_int(bad_restore, 0, "two choices interleaved, cut at each of %zu "
	    "bytes: choice 0 restored and its card redacted", n + 1);
	is_int(bad_redact, 0, "... and choice 1 (Cyrillic around) the same");
	is_int(g.out_found, DET_BIT(DET_CARD), "the guard names the card "
	    "found in the answer");
	ok(g.out_acted == 1u << POLICY_REDACT, "... and the action redact");
	redact_map_free(&g.map);
}

static void
test_stream_stop(void)
{
	const char	*a = "Fine text then " CARD " and more";
	const char	*b = "Other choice, clean";
	char		 out[2][4096];
	size_t		 cut, bad = 0, n = strlen(a);
	int		 stops, rc;

	guard_setup(REDACT_OUT_STOP, 1);
	for (cut = 0; cut <= n; cut++) {
		rc = run_split(a, b, cut, out, &stops);
		if (rc != 1 || stops != 1 || strstr(out[0], "4111") != NULL ||
		    strncmp(out[0], "Fine text then ", strlen(out[0])) != 0)
			bad++, printf("# cut %zu: rc %d stops %d '%s'\n", cut,
			    rc, stops, out[0]);
	}
	is_int(bad, 0, "stop, cut at each of %zu bytes: stops once, with "
	    "content_filter, no digit of the card out", n + 1);
	ok(g.out_acted == 1u << POLICY_BLOCK, "the action recorded is block");
	redact_map_free(&g.map);
}

/* Tool calls 0 and 1, their arguments cut in pieces of 3 bytes. */
static void
test_tool_args(void)
{
	struct outguard		 og;
	struct json_object	*c, *calls, *tc, *fn, *v;
	const char		*args[2] = { "{\"to\":\"[EMAIL_1]\"}",
				    "{\"note\":\"copy [EMAIL_1] twice\"}" };
	char			 got[2][256], piece[8];
	size_t			 i, j, k, n;
	int			 idx;

	guard_setup(REDACT_OUT_OFF, 1);
	memset(got, 0, sizeof(got));
	outguard_init(&og, &g);
	ok(og.active, "restore alone makes the guard active");
	for (i = 0; i < 2; i++)
		for (j = 0; j < strlen(args[i]); j += 3) {
			snprintf(piece, sizeof(piece), "%.3s", args[i] + j);
			c = delta_chunk(0, "content", "", NULL);
			json_object_object_del(json_object_object_get(
			    json_object_array_get_idx(json_object_object_get(c,
			    "choices"), 0), "delta"), "content");
			calls = json_object_new_array();
			tc = json_object_new_object();
			fn = json_object_new_object();
			json_object_object_add(fn, "arguments",
			    json_object_new_string(piece));
			json_object_object_add(tc, "index", json_object_new_int(
			    (int)i));
			json_object_object_add(tc, "function", fn);
			json_object_array_add(calls, tc);
			json_object_object_add(json_object_object_get(
			    json_object_array_get_idx(json_object_object_get(c,
			    "choices"), 0), "delta"), "tool_calls", calls);
			outguard_chunk(&og, c);
			calls = json_object_object_get(json_object_object_get(
			    json_object_array_get_idx(json_object_object_get(c,
			    "choices"), 0), "delta"), "tool_calls");
			n = json_object_array_length(calls);
			for (k = 0; k < n; k++) {
				tc = json_object_array_get_idx(calls, k);
				idx = json_object_get_int(json_object_object_get(
				    tc, "index"));
				v = json_object_object_get(json_object_object_get(
				    tc, "function"), "arguments");
				if (idx >= 0 && idx < 2 && v != NULL)
					strncat(got[idx], json_object_get_string(v),
					    255 - strlen(got[idx]));
			}
			json_object_put(c);
		}
	c = delta_chunk(0, "content", "", "tool_calls");
	outguard_chunk(&og, c);
	calls = NULL;
	json_object_object_get_ex(json_object_object_get(
	    json_object_array_get_idx(json_object_object_get(c, "choices"), 0),
	    "delta"), "tool_calls", &calls);
	for (k = 0; calls != NULL && k < json_object_array_length(calls); k++) {
		tc = json_object_array_get_idx(calls, k);
		idx = json_object_get_int(json_object_object_get(tc, "index"));
		v = json_object_object_get(json_object_object_get(tc, "function"),
		    "arguments");
		if (idx >= 0 && idx < 2 && v != NULL)
			strncat(got[idx], json_object_get_string(v),
			    255 - strlen(got[idx]));
	}
	json_object_put(c);
	outguard_free(&og);
	is_str(got[0], "{\"to\":\"ivan.petrov@example.ru\"}", "tool call 0's "
	    "arguments, cut in 3-byte pieces, restored");
	is_str(got[1], "{\"note\":\"copy ivan.petrov@example.ru twice\"}",
	    "tool call 1's too, its index kept");
	redact_map_free(&g.map);
}

/* A stream that ends without a finish: the tail carries what was held. */
static void
test_tail(void)
{
	struct outguard		 og;
	struct json_object	*c, *t;
	char			 out[2][4096];
	int			 stops = 0;

	guard_setup(REDACT_OUT_REDACT, 1);
	memset(out, 0, sizeof(out));
	outguard_init(&og, &g);
	c = delta_chunk(0, "content", "see [EMAIL_1", NULL);
	outguard_chunk(&og, c);
	collect(c, out, &stops);
	t = outguard_tail(&og, c);
	ok(t != NULL, "a held placeholder makes a tail chunk");
	if (t != NULL) {
		collect(t, out, &stops);
		is_str(json_object_get_string(json_object_object_get(t, "id")),
		    "c1", "the tail keeps the stream's id");
	}
	is_str(out[0], "see [EMAIL_1", "an unfinished placeholder is "
	    "released as it is at the end");
	json_object_put(t);
	json_object_put(c);
	ok(outguard_tail(&og, NULL) == NULL, "nothing held: no tail");
	outguard_free(&og);
	redact_map_free(&g.map);
}

static void
test_reply(void)
{
	struct outguard		 og;
	struct json_object	*r, *ch;
	int			 rc;

	guard_setup(REDACT_OUT_STOP, 1);
	r = json_tokener_parse("{\"choices\":["
	    "{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"pay with " CARD " now\",\"tool_calls\":[{\"function\":{"
	    "\"arguments\":\"{}\"}}]},\"finish_reason\":\"tool_calls\"},"
	    "{\"index\":1,\"message\":{\"role\":\"assistant\",\"content\":"
	    "\"hello [EMAIL_1]\"},\"finish_reason\":\"stop\"}]}");
	outguard_init(&og, &g);
	rc = outguard_reply(&og, r);
	outguard_free(&og);
	is_int(rc, 1, "a whole answer with a finding under stop: stopped");
	ch = json_object_array_get_idx(json_object_object_get(r, "choices"), 0);
	is_str(json_object_get_string(json_object_object_get(
	    json_object_object_get(ch, "message"), "content")), "pay with ",
	    "choice 0 is cut before the card");
	is_str(json_object_get_string(json_object_object_get(ch,
	    "finish_reason")), "content_filter", "... finish_reason content_filter");
	ok(!json_object_object_get_ex(json_object_object_get(ch, "message"),
	    "tool_calls", NULL), "... and its tool calls dropped");
	ch = json_object_array_get_idx(json_object_object_get(r, "choices"), 1);
	is_str(json_object_get_string(json_object_object_get(
	    json_object_object_get(ch, "message"), "content")),
	    "hello ivan.petrov@example.ru", "choice 1 restored, not stopped");
	is_str(json_object_get_string(json_object_object_get(ch,
	    "finish_reason")), "stop", "... its finish_reason kept");
	json_object_put(r);
	redact_map_free(&g.map);
}

int
main(void)
{
	struct outguard	 og;

	memset(&pol, 0, sizeof(pol));
	pol.name = "t";
	pol.rules = det_rules_new();
	memset(&g, 0, sizeof(g));
	outguard_init(&og, &g);
	ok(!og.active, "no policy: the guard does nothing");
	outguard_free(&og);
	test_stream_restore_redact();
	test_stream_stop();
	test_tool_args();
	test_tail();
	test_reply();
	det_rules_free(pol.rules);
	printf("1..%d\n", tap_n);
	return tap_failed != 0;
}
