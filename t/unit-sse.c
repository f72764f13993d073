/* unit-sse.c: the SSE parser over made-up streams and real provider streams. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/sse.h"
#include "tap.h"

#define MAX_EVENTS	64
#define EVENT_MAX	4096

/* One event as the callback saw it, copied. */
struct ev {
	char	 event[64];
	char	*data;
	size_t	 len;
	int	 comment;
};

/* What a parse delivered; stop_at makes the n-th callback return 7. */
struct rec {
	struct ev	 v[MAX_EVENTS];
	size_t		 n;
	size_t		 stop_at;
	int		 overflow;
};

static int
on_event(void *ctx, const struct sse_event *e)
{
	struct rec	*r = ctx;
	struct ev	*v;

	if (r->n == MAX_EVENTS) {
		r->overflow = 1;
		return -99;
	}
	v = &r->v[r->n++];
	snprintf(v->event, sizeof(v->event), "%s", e->event);
	v->data = malloc(e->data_len + 1);
	if (v->data != NULL) {
		memcpy(v->data, e->data, e->data_len);
		v->data[e->data_len] = '\0';
	}
	v->len = e->data_len;
	v->comment = e->comment;
	return r->stop_at != 0 && r->n == r->stop_at ? 7 : 0;
}

static void
rec_free(struct rec *r)
{
	size_t	 i;

	for (i = 0; i < r->n; i++)
		free(r->v[i].data);
	memset(r, 0, sizeof(*r));
}

/* Both parses delivered the same events. */
static int
rec_same(const struct rec *a, const struct rec *b)
{
	size_t	 i;

	if (a->n != b->n || a->overflow || b->overflow)
		return 0;
	for (i = 0; i < a->n; i++)
		if (strcmp(a->v[i].event, b->v[i].event) != 0 ||
		    a->v[i].len != b->v[i].len ||
		    a->v[i].comment != b->v[i].comment ||
		    a->v[i].data == NULL || b->v[i].data == NULL ||
		    memcmp(a->v[i].data, b->v[i].data, a->v[i].len) != 0)
			return 0;
	return 1;
}

/*
 * Parse s in pieces of step bytes (0: one piece), then finish. Returns the
 * first non-zero sse_feed() or sse_finish() value, or 0.
 */
static int
parse(const char *s, size_t n, size_t step, size_t max, struct rec *r)
{
	struct sse_parser	 p;
	size_t			 off, k;
	int			 rc = 0;

	sse_init(&p, max);
	if (step == 0)
		step = n > 0 ? n : 1;
	for (off = 0; off < n && rc == 0; off += k) {
		k = n - off < step ? n - off : step;
		rc = sse_feed(&p, s + off, k, on_event, r);
	}
	if (rc == 0)
		rc = sse_finish(&p, on_event, r);
	sse_free(&p);
	return rc;
}

/* Parse s split at every offset in two pieces; all match the whole parse. */
static int
every_split(const char *s, size_t n, const struct rec *whole)
{
	struct sse_parser	 p;
	struct rec		 r;
	size_t			 cut;
	int			 same = 1;

	for (cut = 0; cut <= n && same; cut++) {
		memset(&r, 0, sizeof(r));
		sse_init(&p, EVENT_MAX);
		if (sse_feed(&p, s, cut, on_event, &r) != 0 ||
		    sse_feed(&p, s + cut, n - cut, on_event, &r) != 0 ||
		    sse_finish(&p, on_event, &r) != 0)
			same = 0;
		sse_free(&p);
		if (!rec_same(&r, whole))
			same = 0;
		if (!same)
			printf("#   differs when cut at byte %zu\n", cut);
		rec_free(&r);
	}
	return same;
}

/* A copy of s with every "\n" replaced by eol; the caller frees it. */
static char *
with_eol(const char *s, const char *eol)
{
	size_t	 n = 0, el = strlen(eol);
	char	*out, *o;

	for (o = (char *)s; *o != '\0'; o++)
		n += *o == '\n' ? el : 1;
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	for (o = out; *s != '\0'; s++) {
		if (*s == '\n') {
			memcpy(o, eol, el);
			o += el;
		} else
			*o++ = *s;
	}
	*o = '\0';
	return out;
}

/*
 * A data file of the test suite, under $top_srcdir (as make check sets it),
 * else the current or the parent directory; the caller frees it.
 */
static char *
slurp(const char *name, size_t *len)
{
	const char	*top = getenv("top_srcdir");
	const char	*bases[] = { top ? top : ".", ".", ".." };
	char		 path[1024], *s = NULL;
	FILE		*fp = NULL;
	size_t		 i;
	long		 n;

	for (i = 0; i < 3 && fp == NULL; i++) {
		snprintf(path, sizeof(path), "%s/t/data/unit/%s", bases[i],
		    name);
		fp = fopen(path, "rb");
	}
	if (fp == NULL) {
		printf("# cannot find t/data/unit/%s\n", name);
		return NULL;
	}
	if (fseek(fp, 0, SEEK_END) == 0 && (n = ftell(fp)) >= 0 &&
	    fseek(fp, 0, SEEK_SET) == 0 &&
	    (s = malloc((size_t)n + 1)) != NULL) {
		*len = fread(s, 1, (size_t)n, fp);
		s[*len] = '\0';
	}
	fclose(fp);
	return s;
}

static const char basic[] =
	"data: one\n"
	"\n"
	"event: update\n"
	"data: two\n"
	"data: three\n"
	"\n"
	": keep-alive\n"
	"\n"
	"data:four\n"
	"\n"
	"id: 7\n"
	"retry: 100\n"
	"unknown: field\n"
	"data:  five\n"
	"\n";

static void
check_basic(const struct rec *r, const char *how)
{
	is_int(r->n, 5, "%s: five events", how);
	if (r->n != 5)
		return;
	is_str(r->v[0].data, "one", "%s: data after 'data: '", how);
	is_str(r->v[0].event, "", "%s: no event name", how);
	is_int(r->v[0].comment, 0, "%s: not a comment", how);
	is_str(r->v[1].event, "update", "%s: event name carried", how);
	is_str(r->v[1].data, "two\nthree", "%s: data lines joined by LF", how);
	is_int(r->v[1].len, 9, "%s: joined length", how);
	is_int(r->v[2].comment, 1, "%s: comment reported", how);
	is_str(r->v[2].data, " keep-alive", "%s: comment text", how);
	is_str(r->v[3].data, "four", "%s: 'data:' without a space", how);
	is_str(r->v[3].event, "", "%s: event name reset after dispatch", how);
	is_str(r->v[4].data, " five", "%s: only one space removed", how);
}

static void
test_basic(void)
{
	struct rec	 whole, bytes;
	size_t		 n = sizeof(basic) - 1;

	memset(&whole, 0, sizeof(whole));
	memset(&bytes, 0, sizeof(bytes));
	is_int(parse(basic, n, 0, EVENT_MAX, &whole), 0, "whole: parses");
	check_basic(&whole, "whole");
	is_int(parse(basic, n, 1, EVENT_MAX, &bytes), 0, "bytes: parses");
	check_basic(&bytes, "byte by byte");
	ok(rec_same(&whole, &bytes), "byte by byte gives identical events");
	ok(every_split(basic, n, &whole),
	    "every two-piece split gives identical events");
	rec_free(&whole);
	rec_free(&bytes);
}

static void
test_line_endings(void)
{
	static const char *const eols[] = { "\r\n", "\r" };
	static const char *const names[] = { "CRLF", "CR" };
	struct rec	 lf, r;
	const char	*mixed;
	char		*s;
	size_t		 i, n;

	memset(&lf, 0, sizeof(lf));
	parse(basic, sizeof(basic) - 1, 0, EVENT_MAX, &lf);
	for (i = 0; i < 2; i++) {
		if ((s = with_eol(basic, eols[i])) == NULL)
			continue;
		n = strlen(s);
		memset(&r, 0, sizeof(r));
		is_int(parse(s, n, 0, EVENT_MAX, &r), 0, "%s: parses",
		    names[i]);
		check_basic(&r, names[i]);
		ok(rec_same(&r, &lf), "%s: same events as LF", names[i]);
		rec_free(&r);
		parse(s, n, 1, EVENT_MAX, &r);
		ok(rec_same(&r, &lf), "%s byte by byte: same events", names[i]);
		rec_free(&r);
		ok(every_split(s, n, &lf), "%s: every split gives the same",
		    names[i]);
		free(s);
	}

	/* Mixed endings; every split also cuts CR LF pairs in two. */
	mixed = "data: a\r\ndata: b\r\rdata: c\n\ndata: d\r";
	memset(&r, 0, sizeof(r));
	parse(mixed, strlen(mixed), 0, EVENT_MAX, &r);
	is_int(r.n, 3, "mixed endings: three events");
	if (r.n == 3) {
		is_str(r.v[0].data, "a\nb", "mixed: CRLF then CR CR");
		is_str(r.v[1].data, "c", "mixed: LF LF");
		is_str(r.v[2].data, "d", "mixed: last line ended by CR");
	}
	ok(every_split(mixed, strlen(mixed), &r),
	    "mixed: every split gives the same");
	rec_free(&r);
	rec_free(&lf);
}

static void
test_fields(void)
{
	struct rec	 r;
	const char	*s;

	memset(&r, 0, sizeof(r));
	s = "event: ping\n\ndata: after\n\n";
	parse(s, strlen(s), 0, EVENT_MAX, &r);
	is_int(r.n, 1, "an event without data is not dispatched");
	if (r.n == 1)
		is_str(r.v[0].event, "",
		    "and its name does not leak into the next");
	rec_free(&r);

	s = "data:\n\ndata\n\n";
	parse(s, strlen(s), 0, EVENT_MAX, &r);
	is_int(r.n, 2, "'data:' and 'data' alone are events");
	if (r.n == 2)
		ok(r.v[0].len == 0 && r.v[1].len == 0 &&
		    strcmp(r.v[0].data, "") == 0, "with empty data");
	rec_free(&r);

	s = "data: a\ndata:\ndata: b\n\n";
	parse(s, strlen(s), 0, EVENT_MAX, &r);
	ok(r.n == 1 && strcmp(r.v[0].data, "a\n\nb") == 0,
	    "an empty data line in the middle adds an empty line");
	rec_free(&r);

	s = "\n\n\n: c1\n:c2\n\n";
	parse(s, strlen(s), 0, EVENT_MAX, &r);
	is_int(r.n, 2, "blank lines alone dispatch nothing; comments do");
	if (r.n == 2) {
		ok(r.v[0].comment && r.v[1].comment, "both are comments");
		is_str(r.v[1].data, "c2", "comment without a space");
	}
	rec_free(&r);

	s = "event: a-very-long-event-name-that-goes-on-and-on-past-sixty-"
	    "three-characters\ndata: x\n\n";
	parse(s, strlen(s), 0, EVENT_MAX, &r);
	ok(r.n == 1 && strlen(r.v[0].event) == 63,
	    "an over-long event name is cut, not overflowed");
	rec_free(&r);
}

static void
test_finish(void)
{
	struct sse_parser	 p;
	struct rec		 r;
	int			 rc;

	memset(&r, 0, sizeof(r));
	sse_init(&p, EVENT_MAX);
	rc = sse_feed(&p, "data: tail\n", 11, on_event, &r);
	ok(rc == 0 && r.n == 0, "data without a blank line waits");
	is_int(sse_finish(&p, on_event, &r), 0, "sse_finish returns 0");
	ok(r.n == 1 && strcmp(r.v[0].data, "tail") == 0,
	    "sse_finish delivers the pending event");
	is_int(sse_finish(&p, on_event, &r), 0, "a second sse_finish");
	is_int(r.n, 1, "delivers nothing more");
	sse_free(&p);
	rec_free(&r);

	sse_init(&p, EVENT_MAX);
	sse_feed(&p, "event: end\ndata: no newline", 27, on_event, &r);
	ok(r.n == 0, "an unterminated line waits");
	sse_finish(&p, on_event, &r);
	ok(r.n == 1 && strcmp(r.v[0].data, "no newline") == 0 &&
	    strcmp(r.v[0].event, "end") == 0,
	    "sse_finish completes the last line and the event");
	sse_free(&p);
	rec_free(&r);

	sse_init(&p, EVENT_MAX);
	sse_feed(&p, "data: half", 10, on_event, &r);
	sse_reset(&p);
	sse_feed(&p, "data: new\n\n", 11, on_event, &r);
	ok(r.n == 1 && strcmp(r.v[0].data, "new") == 0,
	    "sse_reset forgets a partial line");
	sse_feed(&p, "event: x\ndata: partial\n", 23, on_event, &r);
	sse_reset(&p);
	sse_feed(&p, "data: clean\n\n", 13, on_event, &r);
	ok(r.n == 2 && strcmp(r.v[1].data, "clean") == 0 &&
	    strcmp(r.v[1].event, "") == 0,
	    "sse_reset forgets pending data and event name");
	sse_free(&p);
	rec_free(&r);
}

static void
test_toobig(void)
{
	struct rec	 r;
	char		 s[4096];
	size_t		 i;

	memcpy(s, "data: ", 6);
	memset(s + 6, 'x', 2000);
	memcpy(s + 2006, "\n\n", 3);
	memset(&r, 0, sizeof(r));
	is_int(parse(s, 2008, 0, 1024, &r), SSE_TOOBIG,
	    "a 2000-byte line past a 1024 cap: SSE_TOOBIG");
	is_int(r.n, 0, "nothing delivered");
	rec_free(&r);
	is_int(parse(s, 2008, 1, 1024, &r), SSE_TOOBIG,
	    "the same fed byte by byte: SSE_TOOBIG");
	rec_free(&r);
	is_int(parse(s, 2008, 700, 1024, &r), SSE_TOOBIG,
	    "the same in 700-byte pieces: SSE_TOOBIG");
	rec_free(&r);

	/* Twenty 100-byte lines of one event pass the cap together. */
	for (i = 0; i < 20; i++) {
		memcpy(s + i * 106, "data: ", 6);
		memset(s + i * 106 + 6, 'y', 99);
		s[i * 106 + 105] = '\n';
	}
	s[20 * 106] = '\n';
	is_int(parse(s, 20 * 106 + 1, 0, 1024, &r), SSE_TOOBIG,
	    "an event of many lines past the cap: SSE_TOOBIG");
	rec_free(&r);

	/* A line passes the cap whatever it holds and however it arrives. */
	memcpy(s, ": ", 2);
	memset(s + 2, 'c', 2000);
	memcpy(s + 2002, "\n\n", 2);
	is_int(parse(s, 2004, 1, 1024, &r), SSE_TOOBIG,
	    "a 2000-byte comment byte by byte: SSE_TOOBIG");
	rec_free(&r);
	ok(parse(s, 2004, 0, 1024, &r) == SSE_TOOBIG,
	    "a 2000-byte comment in one piece: SSE_TOOBIG");
	rec_free(&r);

	/* 1000 bytes of data under a 1024 cap pass. */
	memcpy(s, "data: ", 6);
	memset(s + 6, 'z', 1000);
	memcpy(s + 1006, "\n\n", 2);
	is_int(parse(s, 1008, 1, 1024, &r), 0, "1000 bytes under a 1024 cap");
	ok(r.n == 1 && r.v[0].len == 1000, "delivered whole");
	rec_free(&r);
}

static void
test_stop(void)
{
	struct rec	 r;
	const char	*s = "data: 1\n\n: note\n\ndata: 2\n\ndata: 3\n\n";
	size_t		 step;

	for (step = 0; step <= 1; step++) {
		memset(&r, 0, sizeof(r));
		r.stop_at = 3;
		is_int(parse(s, strlen(s), step, EVENT_MAX, &r), 7,
		    "%s: the callback's 7 is returned",
		    step ? "byte by byte" : "whole");
		is_int(r.n, 3, "%s: no event after the stop",
		    step ? "byte by byte" : "whole");
		rec_free(&r);
	}
	memset(&r, 0, sizeof(r));
	r.stop_at = 2;
	is_int(parse(s, strlen(s), 0, EVENT_MAX, &r), 7,
	    "a comment's callback can stop parsing too");
	is_int(r.n, 2, "stopped at the comment");
	rec_free(&r);
	memset(&r, 0, sizeof(r));
	r.stop_at = 1;
	is_int(parse("data: only", 10, 0, EVENT_MAX, &r), 7,
	    "sse_finish returns the callback's value");
	rec_free(&r);
}

/* A fixture parses into want events, the same whole and byte by byte. */
static void
fixture(const char *name, size_t want, struct rec *whole)
{
	struct rec	 bytes;
	char		*s;
	size_t		 n = 0;

	memset(whole, 0, sizeof(*whole));
	memset(&bytes, 0, sizeof(bytes));
	if ((s = slurp(name, &n)) == NULL) {
		ok(0, "%s: readable", name);
		return;
	}
	is_int(parse(s, n, 0, EVENT_MAX, whole), 0, "%s: parses", name);
	is_int(whole->n, want, "%s: %zu events", name, want);
	parse(s, n, 1, EVENT_MAX, &bytes);
	ok(rec_same(whole, &bytes), "%s: byte by byte gives the same", name);
	rec_free(&bytes);
	parse(s, n, 7, EVENT_MAX, &bytes);
	ok(rec_same(whole, &bytes), "%s: 7-byte pieces give the same", name);
	rec_free(&bytes);
	free(s);
}

static void
test_fixtures(void)
{
	static const char *const anthropic[] = {
		"message_start", "content_block_start", "ping",
		"content_block_delta", "content_block_delta",
		"content_block_delta", "content_block_stop", "message_delta",
		"message_stop",
	};
	struct rec	 r;
	size_t		 i;
	int		 good;

	fixture("openai-stream-text.sse", 11, &r);
	if (r.n == 11) {
		is_str(r.v[10].data, "[DONE]", "openai: ends with [DONE]");
		for (good = 1, i = 0; i < 10; i++)
			if (r.v[i].data[0] != '{' || r.v[i].event[0] != '\0' ||
			    r.v[i].comment)
				good = 0;
		ok(good, "openai: ten unnamed JSON events first");
	}
	rec_free(&r);

	fixture("openai-stream-include-usage.sse", 11, &r);
	if (r.n == 11)
		ok(strstr(r.v[9].data, "\"choices\":[]") != NULL &&
		    strstr(r.v[9].data, "\"prompt_tokens\":12") != NULL,
		    "include_usage: usage chunk before [DONE]");
	rec_free(&r);

	fixture("anthropic-stream-text.sse", 9, &r);
	if (r.n == 9) {
		for (good = 1, i = 0; i < 9; i++)
			if (strcmp(r.v[i].event, anthropic[i]) != 0)
				good = 0;
		ok(good, "anthropic: event names in order");
		is_str(r.v[2].data, "{\"type\": \"ping\"}",
		    "anthropic: ping data");
	}
	rec_free(&r);

	fixture("gemini-stream.sse", 2, &r);
	if (r.n == 2) {
		ok(strncmp(r.v[0].data, "{\"candidates\"", 13) == 0,
		    "gemini: data is the JSON object");
		ok(strchr(r.v[0].data, '\r') == NULL &&
		    strchr(r.v[1].data, '\r') == NULL,
		    "gemini: no CR left in data");
		ok(r.v[1].data[r.v[1].len - 1] == '}',
		    "gemini: data ends at the closing brace");
	}
	rec_free(&r);
}

/* OpenRouter keeps a stream open with comments between events. */
static void
test_openrouter(void)
{
	struct rec	 r;
	const char	*s = ": OPENROUTER PROCESSING\n\n"
	    ": OPENROUTER PROCESSING\n\n"
	    "data: {\"choices\":[]}\n\n"
	    ": OPENROUTER PROCESSING\n\n"
	    "data: [DONE]\n\n";

	memset(&r, 0, sizeof(r));
	is_int(parse(s, strlen(s), 1, EVENT_MAX, &r), 0, "openrouter: parses");
	is_int(r.n, 5, "openrouter: three comments and two events");
	if (r.n == 5) {
		ok(r.v[0].comment && r.v[1].comment && r.v[3].comment,
		    "openrouter: comments reported as comments");
		ok(strstr(r.v[0].data, "OPENROUTER PROCESSING") != NULL,
		    "openrouter: comment text");
		ok(!r.v[2].comment && strcmp(r.v[2].data,
		    "{\"choices\":[]}") == 0, "openrouter: data between them");
		is_str(r.v[4].data, "[DONE]", "openrouter: [DONE]");
	}
	rec_free(&r);
}

/* NDJSON framing: every line an event, "data:" tolerated, blanks skipped. */
static void
test_ndjson(void)
{
	static const char	 in[] =
	    "{\"a\":1}\n\n{\"a\":2}\r\ndata: {\"a\":3}\n: note\n"
	    "event: x\nid: 7\n{\"a\":4}";
	struct sse_parser	 p;
	struct rec		 r;
	size_t			 i;

	memset(&r, 0, sizeof(r));
	sse_init(&p, EVENT_MAX);
	sse_set_ndjson(&p, 1);
	/* Byte by byte: lines split anywhere. */
	for (i = 0; i < sizeof(in) - 1; i++)
		sse_feed(&p, in + i, 1, on_event, &r);
	sse_finish(&p, on_event, &r);
	sse_free(&p);
	is_int(r.n, 4, "ndjson: four events; blank, comment and field lines "
	    "skipped");
	if (r.n == 4) {
		is_str(r.v[0].data, "{\"a\":1}", "ndjson: first line");
		is_str(r.v[2].data, "{\"a\":3}", "ndjson: data: prefix removed");
		is_str(r.v[3].data, "{\"a\":4}",
		    "ndjson: last line without newline delivered at finish");
	}
	rec_free(&r);
}

int
main(void)
{
	test_ndjson();
	test_basic();
	test_line_endings();
	test_fields();
	test_finish();
	test_toobig();
	test_stop();
	test_fixtures();
	test_openrouter();
	return tap_done();
}
