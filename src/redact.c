/*
 * redact.c: typed placeholders for findings (redact.h), the request's map
 * of them, restore, and the streamed answer's window: released text is
 * final, held text (a placeholder's start, a finding's possible start)
 * waits for the next delta, never more than DET_HOLD_MAX bytes of it.
 */
#define _GNU_SOURCE	/* memmem */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redact.h"

struct redact_entry {
	enum det_kind	 kind;
	unsigned	 num;
	char		*val;		/* owned, NUL-terminated */
	size_t		 len;
};

#define SPANS		32	/* spans per det_scan_from call */
#define CTX_KEEP	64	/* released bytes kept as context */
#define PH_MAX		32	/* "[CONFIDENTIAL_4294967295]" fits */
#define HELD_MAX	((size_t)1 << 26)

enum { SW_NONE, SW_TOKEN, SW_PEM, SW_PEM_END, SW_ALL };

void
redact_map_init(struct redact_map *m)
{
	memset(m, 0, sizeof(*m));
}

void
redact_map_free(struct redact_map *m)
{
	size_t	 k;

	for (k = 0; k < m->n; k++)
		free(m->e[k].val);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* The entry for this value, added if new; NULL past the limits. */
static const struct redact_entry *
map_get(struct redact_map *m, enum det_kind kind, const char *v, size_t len,
    int *err)
{
	struct redact_entry	*e;
	size_t			 k, cap;

	for (k = 0; k < m->n; k++)
		if (m->e[k].kind == kind && m->e[k].len == len &&
		    memcmp(m->e[k].val, v, len) == 0)
			return &m->e[k];
	*err = BUF_TOOBIG;
	if (m->n >= REDACT_MAX_ENTRIES || len > REDACT_MAX_BYTES - m->bytes)
		return NULL;
	*err = BUF_NOMEM;
	if (m->n == m->cap) {
		cap = m->cap ? m->cap * 2 : 8;
		if ((e = realloc(m->e, cap * sizeof(*e))) == NULL)
			return NULL;
		m->e = e;
		m->cap = cap;
	}
	e = &m->e[m->n];
	if ((e->val = malloc(len + 1)) == NULL)
		return NULL;
	memcpy(e->val, v, len);
	e->val[len] = '\0';
	e->len = len;
	e->kind = kind;
	e->num = ++m->count[kind];
	m->n++;
	m->bytes += len;
	return e;
}

static int
placeholder(struct buf *out, enum det_kind kind, unsigned num)
{
	char	 ph[PH_MAX + 8];
	int	 len;

	len = snprintf(ph, sizeof(ph), "[%s_%u]", det_labels[kind], num);
	return buf_append(out, ph, (size_t)len);
}

int
redact_text(const struct det_rules *r, unsigned mask, struct redact_map *m,
    const char *s, size_t n, struct buf *out, unsigned *found)
{
	struct det_span			 sp[SPANS];
	const struct redact_entry	*e;
	size_t				 pos = 0, k, got, i;
	int				 rc, err;

	mask &= DET_SPAN_MASK;
	for (;;) {
		got = det_scan_from(r, mask, s, n, pos, sp, SPANS);
		k = got < SPANS ? got : SPANS;
		for (i = 0; i < k; i++) {
			if ((rc = buf_append(out, s + pos, sp[i].off - pos)) != 0)
				return rc;
			if ((e = map_get(m, sp[i].kind, s + sp[i].off, sp[i].len,
			    &err)) == NULL)
				return err;
			if ((rc = placeholder(out, e->kind, e->num)) != 0)
				return rc;
			if (found != NULL)
				*found |= DET_BIT(sp[i].kind);
			pos = sp[i].off + sp[i].len;
		}
		if (got <= SPANS)
			break;
	}
	return buf_append(out, s + pos, n - pos);
}

/* "[LABEL_N]" at s[0..n): its kind and number and length, or 0. */
static size_t
parse_ph(const char *s, size_t n, enum det_kind *kind, unsigned *num)
{
	size_t		 j, l;
	unsigned long	 v;
	int		 k;

	for (k = 0; k < DET__MAX; k++) {
		l = strlen(det_labels[k]);
		if (n < l + 4 || memcmp(s + 1, det_labels[k], l) != 0 ||
		    s[l + 1] != '_')
			continue;
		j = l + 2;
		if (s[j] < '1' || s[j] > '9')
			return 0;
		for (v = 0; j < n && j < PH_MAX && s[j] >= '0' && s[j] <= '9';
		    j++)
			v = v * 10 + (unsigned long)(s[j] - '0');
		if (j >= n || s[j] != ']' || v > 0xFFFFFFFFul)
			return 0;
		*kind = (enum det_kind)k;
		*num = (unsigned)v;
		return j + 1;
	}
	return 0;
}

static const struct redact_entry *
map_find(const struct redact_map *m, enum det_kind kind, unsigned num)
{
	size_t	 k;

	for (k = 0; k < m->n; k++)
		if (m->e[k].kind == kind && m->e[k].num == num)
			return &m->e[k];
	return NULL;
}

int
redact_restore(const struct redact_map *m, const char *s, size_t n,
    struct buf *out)
{
	const struct redact_entry	*e;
	const char			*p;
	size_t				 pos = 0, i, len;
	enum det_kind			 kind;
	unsigned			 num;
	int				 rc;

	if (m == NULL || m->n == 0)
		return buf_append(out, s, n);
	for (i = 0; i < n; i = (size_t)(p - s) + 1) {
		if ((p = memchr(s + i, '[', n - i)) == NULL)
			break;
		if ((len = parse_ph(p, n - (size_t)(p - s), &kind, &num)) == 0 ||
		    (e = map_find(m, kind, num)) == NULL)
			continue;
		if ((rc = buf_append(out, s + pos, (size_t)(p - s) - pos)) != 0 ||
		    (rc = buf_append(out, e->val, e->len)) != 0)
			return rc;
		pos = (size_t)(p - s) + len;
		p += len - 1;
	}
	return buf_append(out, s + pos, n - pos);
}

/* ---- streams ---- */

void
redact_stream_init(struct redact_stream *st, const struct det_rules *r,
    const struct redact_map *m, unsigned mask, enum redact_out mode)
{
	memset(st, 0, sizeof(*st));
	st->rules = r;
	st->map = m;
	st->mode = mode;
	st->mask = mode == REDACT_OUT_OFF || r == NULL ? 0 :
	    mask & DET_SPAN_MASK;
	buf_init(&st->held, HELD_MAX);
}

void
redact_stream_free(struct redact_stream *st)
{
	buf_free(&st->held);
}

/*
 * The bytes at the end of s[from..n) that could be the start of one of
 * the map's placeholders ("[EMA", "[CARD_1").
 */
static size_t
ph_hold(const struct redact_map *m, const char *s, size_t n, size_t from)
{
	const char	*p;
	size_t		 b, j, l;
	int		 k;

	if (m == NULL || m->n == 0)
		return 0;
	b = n - from > PH_MAX ? n - PH_MAX : from;
	if ((p = memrchr(s + b, '[', n - b)) == NULL)
		return 0;
	b = (size_t)(p - s);
	for (k = 0; k < DET__MAX; k++) {
		l = strlen(det_labels[k]);
		j = n - b - 1;	/* bytes after '[' */
		if (j <= l) {
			if (memcmp(p + 1, det_labels[k], j) == 0)
				return n - b;
			continue;
		}
		if (memcmp(p + 1, det_labels[k], l) != 0 || p[l + 1] != '_')
			continue;
		for (j = b + l + 2; j < n && s[j] >= '0' && s[j] <= '9'; j++)
			;
		if (j == n)
			return n - b;
	}
	return 0;
}

/*
 * The cut moved past a placeholder it would split: a hold capped at
 * DET_HOLD_MAX (a long run without blanks) may end inside one.
 */
static size_t
ph_whole(const struct redact_map *m, const char *s, size_t from, size_t cut,
    size_t n)
{
	const char	*p;
	size_t		 b, len;
	enum det_kind	 kind;
	unsigned	 num;

	if (m == NULL || m->n == 0)
		return cut;
	b = cut - from > PH_MAX ? cut - PH_MAX : from;
	if ((p = memrchr(s + b, '[', cut - b)) == NULL)
		return cut;
	len = parse_ph(p, n - (size_t)(p - s), &kind, &num);
	if (len > 0 && (size_t)(p - s) + len > cut && map_find(m, kind, num))
		return (size_t)(p - s) + len;
	return cut;
}

/* A secret's value continues (detect.c's tok_ch). */
static int
tok_ch(unsigned char c)
{
	return c > ' ' && c < 0x7F && strchr("\"'`,;:<>&()[]{}\\|", c) == NULL;
}

/*
 * Keep held[at..len) and up to CTX_KEEP bytes before it as context: the
 * text detect.c looks back at (word boundaries, a passport's "серия", a
 * secret's name) though it was released or dropped already.
 */
static void
held_ctx(struct redact_stream *st, size_t at)
{
	char	*s = st->held.data;
	size_t	 c0;

	c0 = at > CTX_KEEP ? at - CTX_KEEP : 0;
	while (c0 < at && (s[c0] & 0xC0) == 0x80)
		c0++;
	memmove(s, s + c0, st->held.len - c0);
	st->held.len -= c0;
	s[st->held.len] = '\0';
	st->ctx = at - c0;
}

/*
 * Inside a secret too long to hold (SW_TOKEN: a token; SW_PEM: a private
 * key, until "-----END ...-----"): drop it. held[ctx..) are the bytes not
 * looked at yet; on leaving, the text after the secret.
 */
static void
swallow(struct redact_stream *st)
{
	struct buf	*h = &st->held;
	const char	*p;
	size_t		 k, b, lim, nl;

	switch (st->swallow) {
	case SW_TOKEN:
		/* Up to the token's end; its trailing dots are the sentence's
		   (detect.c's tok_end), so they wait for what follows them. */
		for (k = st->ctx; k < h->len && tok_ch((unsigned char)h->data[k]);
		    k++)
			;
		for (nl = k; nl > st->ctx && h->data[nl - 1] == '.'; nl--)
			;
		if (k < h->len)		/* the token ended in held */
			st->swallow = SW_NONE;
		held_ctx(st, nl);
		return;
	case SW_PEM:
		/* The marker may have begun in the last bytes looked at. */
		b = st->ctx > 8 ? st->ctx - 8 : 0;
		if ((p = memmem(h->data + b, h->len - b, "-----END ", 9)) ==
		    NULL) {
			held_ctx(st, h->len);
			return;
		}
		held_ctx(st, (size_t)(p - h->data) + 9);
		st->swallow = SW_PEM_END;
		/* FALLTHROUGH */
	case SW_PEM_END:
		/* detect.c's m_pem: "-----" within 80 bytes of the END marker,
		   on its line, or the key runs to the text's end. held[ctx..)
		   starts right after the marker until this is decided. */
		b = st->ctx;
		p = memchr(h->data + b, '\n', h->len - b);
		nl = p != NULL ? (size_t)(p - h->data) - b : h->len - b;
		lim = nl < 71 ? nl : 71;
		for (k = 0; k < lim && b + k + 5 <= h->len; k++)
			if (memcmp(h->data + b + k, "-----", 5) == 0) {
				st->swallow = SW_NONE;
				held_ctx(st, b + k + 5);
				return;
			}
		if (p != NULL || h->len - b >= 75)
			st->swallow = SW_ALL;
		return;
	case SW_ALL:
		held_ctx(st, h->len);
		return;
	}
}

/* s[end..n) is empty or dots: a token may go on after them. */
static int
dots_to_end(const char *s, size_t end, size_t n)
{
	while (end < n && s[end] == '.')
		end++;
	return end == n;
}

/* Released raw text, its placeholders restored. */
static int
release(struct redact_stream *st, const char *s, size_t n, struct buf *out)
{
	return redact_restore(st->map, s, n, out);
}

/*
 * Check and release what can be released of held (all of it when
 * final). 0, 1 at a finding under REDACT_OUT_STOP, or a BUF_* error.
 */
static int
process(struct redact_stream *st, struct buf *out, int final)
{
	struct det_span	 sp[SPANS];
	const char	*s;
	const char	*p;
	size_t		 n, from, hold, h2, cut, pos, scan, got, k, i, end;
	size_t		 foff = 0;
	int		 rc, forced = 0;

	if (st->swallow != SW_NONE) {
		swallow(st);
		if (st->swallow != SW_NONE)
			return 0;
	}
	s = st->held.data;
	n = st->held.len;
	from = st->ctx;
	if (n == from)
		return 0;
	hold = 0;
	if (!final) {
		hold = det_hold(st->rules, st->mask, s, n);
		h2 = ph_hold(st->map, s, n, from);
		if (h2 > hold)
			hold = h2;
		if (hold > n - from)
			hold = n - from;
	}
	cut = n - hold;
	if (cut < n)
		cut = ph_whole(st->map, s, from, cut, n);
	pos = scan = from;
	for (;;) {
		got = st->mask ? det_scan_from(st->rules, st->mask, s, n, scan,
		    sp, SPANS) : 0;
		k = got < SPANS ? got : SPANS;
		for (i = 0; i < k; i++) {
			end = sp[i].off + sp[i].len;
			if (sp[i].off >= cut)
				goto done;
			/* A span that reaches the end may grow with more text. */
			if (end > cut || (end == n && !final)) {
				if (n - sp[i].off <= DET_HOLD_MAX) {
					cut = sp[i].off;
					goto done;
				}
				/* Too long to hold: it is what it is now. */
				cut = end;
				forced = sp[i].kind == DET_SECRET &&
				    dots_to_end(s, end, n);
				foff = sp[i].off;
			}
			if ((rc = release(st, s + pos, sp[i].off - pos, out)) != 0)
				return rc;
			st->found |= DET_BIT(sp[i].kind);
			if (st->mode == REDACT_OUT_STOP) {
				st->stopped = 1;
				buf_reset(&st->held);
				st->ctx = 0;
				return 1;
			}
			if ((rc = placeholder(out, sp[i].kind,
			    ++st->count[sp[i].kind])) != 0)
				return rc;
			pos = end;
		}
		if (got <= SPANS)
			break;
		scan = pos;
	}
done:
	if ((rc = release(st, s + pos, cut - pos, out)) != 0)
		return rc;
	if (forced) {
		/* The rest of the secret is dropped as it comes. */
		if (s[foff] != '-') {
			st->swallow = SW_TOKEN;
			held_ctx(st, cut);
		} else if ((p = memmem(s + foff + 11, cut - foff - 11,
		    "-----END ", 9)) != NULL) {
			st->swallow = SW_PEM_END;
			held_ctx(st, (size_t)(p - s) + 9);
		} else {
			st->swallow = SW_PEM;
			held_ctx(st, cut);
		}
		return 0;
	}
	held_ctx(st, cut);
	return 0;
}

int
redact_stream_feed(struct redact_stream *st, const char *s, size_t n,
    struct buf *out)
{
	int	 rc;

	if (st->stopped)
		return 1;
	if (n == 0)
		return 0;
	if ((rc = buf_append(&st->held, s, n)) != 0)
		return rc;
	return process(st, out, 0);
}

int
redact_stream_finish(struct redact_stream *st, struct buf *out)
{
	int	 rc;

	if (st->stopped)
		return 1;
	rc = process(st, out, 1);
	buf_reset(&st->held);
	st->ctx = 0;
	return rc;
}
