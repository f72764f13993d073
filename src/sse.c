/* sse.c: incremental Server-Sent Events parser per the WHATWG grammar. */
#include <string.h>

#include "sse.h"

void
sse_init(struct sse_parser *p, size_t max)
{
	memset(p, 0, sizeof(*p));
	buf_init(&p->line, max);
	buf_init(&p->data, max);
}

void
sse_reset(struct sse_parser *p)
{
	buf_reset(&p->line);
	buf_reset(&p->data);
	p->event[0] = '\0';
	p->has_data = 0;
	p->last_cr = 0;
}

void
sse_free(struct sse_parser *p)
{
	buf_free(&p->line);
	buf_free(&p->data);
}

static int
dispatch(struct sse_parser *p, sse_cb cb, void *ctx)
{
	struct sse_event	 ev;
	int			 rc = 0;

	if (p->has_data) {
		ev.event = p->event;
		ev.data = p->data.data ? p->data.data : "";
		ev.data_len = p->data.len;
		ev.comment = 0;
		rc = cb(ctx, &ev);
	}
	buf_reset(&p->data);
	p->event[0] = '\0';
	p->has_data = 0;
	return rc;
}

/*
 * Newline-delimited JSON (Ollama native, Yandex): every non-empty line is
 * an event of its own. A "data:" prefix is tolerated, for upstreams whose
 * framing is documented either way.
 */
void
sse_set_ndjson(struct sse_parser *p, int on)
{
	p->ndjson = on;
}

static int
ndjson_line(const char *s, size_t n, sse_cb cb, void *ctx)
{
	struct sse_event	 ev;

	if (n >= 5 && memcmp(s, "data:", 5) == 0) {
		s += 5;
		n -= 5;
		if (n > 0 && *s == ' ') {
			s++;
			n--;
		}
	}
	while (n > 0 && (*s == ' ' || *s == '\t')) {
		s++;
		n--;
	}
	if (n == 0 || *s == ':')
		return 0;
	/* Other SSE fields of an upstream that frames NDJSON as SSE. */
	if ((n >= 6 && memcmp(s, "event:", 6) == 0) ||
	    (n >= 3 && memcmp(s, "id:", 3) == 0) ||
	    (n >= 6 && memcmp(s, "retry:", 6) == 0))
		return 0;
	ev.event = "";
	ev.data = s;
	ev.data_len = n;
	ev.comment = 0;
	return cb(ctx, &ev);
}

/* One complete line (without its terminator). */
static int
line(struct sse_parser *p, const char *s, size_t n, sse_cb cb, void *ctx)
{
	struct sse_event	 ev;
	const char		*colon, *v;
	size_t			 flen, vlen;

	if (p->ndjson)
		return ndjson_line(s, n, cb, ctx);
	if (n == 0)
		return dispatch(p, cb, ctx);
	if (s[0] == ':') {
		ev.event = "";
		ev.data = s + 1;
		ev.data_len = n - 1;
		ev.comment = 1;
		return cb(ctx, &ev);
	}
	colon = memchr(s, ':', n);
	flen = colon ? (size_t)(colon - s) : n;
	v = colon ? colon + 1 : s + n;
	vlen = n - (size_t)(v - s);
	if (vlen > 0 && *v == ' ') {
		v++;
		vlen--;
	}
	if (flen == 4 && memcmp(s, "data", 4) == 0) {
		if (p->has_data && buf_append(&p->data, "\n", 1) != BUF_OK)
			return SSE_TOOBIG;
		if (buf_append(&p->data, v, vlen) != BUF_OK)
			return SSE_TOOBIG;
		p->has_data = 1;
	} else if (flen == 5 && memcmp(s, "event", 5) == 0) {
		if (vlen >= sizeof(p->event))
			vlen = sizeof(p->event) - 1;
		memcpy(p->event, v, vlen);
		p->event[vlen] = '\0';
	}
	/* id, retry and unknown fields are ignored. */
	return 0;
}

/*
 * Feed bytes as they arrive; events may be split anywhere. Lines end in
 * LF, CRLF or CR. Returns 0, an sse_err, or the callback's non-zero value.
 */
int
sse_feed(struct sse_parser *p, const char *s, size_t n, sse_cb cb, void *ctx)
{
	const char	*lf, *cr;
	size_t		 i, start = 0, end;
	int		 rc;

	for (i = 0; i < n; i++) {
		if (s[i] != '\n' && s[i] != '\r') {
			/* To the next line end: memchr, not a byte loop. */
			lf = memchr(s + i, '\n', n - i);
			end = lf != NULL ? (size_t)(lf - s) : n;
			if ((cr = memchr(s + i, '\r', end - i)) != NULL)
				end = (size_t)(cr - s);
			p->last_cr = 0;
			if ((i = end) == n)
				break;
		}
		if (s[i] == '\n' && p->last_cr && i == start &&
		    p->line.len == 0) {
			/* The LF of a CRLF split across or within chunks. */
			p->last_cr = 0;
			start = i + 1;
			continue;
		}
		p->last_cr = s[i] == '\r';
		if (i - start > p->line.max - p->line.len)
			return SSE_TOOBIG;
		if (p->line.len > 0) {
			if (buf_append(&p->line, s + start, i - start) != BUF_OK)
				return SSE_TOOBIG;
			rc = line(p, p->line.data, p->line.len, cb, ctx);
			buf_reset(&p->line);
		} else
			rc = line(p, s + start, i - start, cb, ctx);
		start = i + 1;
		if (rc != 0)
			return rc;
	}
	if (start < n && buf_append(&p->line, s + start, n - start) != BUF_OK)
		return SSE_TOOBIG;
	return 0;
}

/* End of stream: a last line without terminator still counts. */
int
sse_finish(struct sse_parser *p, sse_cb cb, void *ctx)
{
	int	 rc = 0;

	if (p->line.len > 0) {
		rc = line(p, p->line.data, p->line.len, cb, ctx);
		buf_reset(&p->line);
	}
	if (rc == 0)
		rc = dispatch(p, cb, ctx);
	return rc;
}
