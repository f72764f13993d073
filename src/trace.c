/*
 * trace.c: W3C Trace Context. A client's traceparent is taken only when
 * it is exactly version 00 (lowercase hex, ids not all zero); anything
 * else is ignored and a new trace begins, as the specification asks.
 */
#include <sys/random.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace.h"

/* n lowercase hex digits at s, not all '0' when nonzero is set. */
static int
hex_run(const char *s, size_t n, int nonzero)
{
	size_t	 i;
	int	 any = 0;

	for (i = 0; i < n; i++) {
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return -1;
		any |= s[i] != '0';
	}
	return nonzero && !any ? -1 : 0;
}

int
trace_parse(const char *h, struct trace *t)
{
	if (h == NULL || strlen(h) != TRACEPARENT_LEN ||
	    strncmp(h, "00-", 3) != 0 || h[35] != '-' || h[52] != '-' ||
	    hex_run(h + 3, 32, 1) == -1 || hex_run(h + 36, 16, 1) == -1 ||
	    hex_run(h + 53, 2, 0) == -1)
		return -1;
	memset(t, 0, sizeof(*t));
	memcpy(t->trace_id, h + 3, 32);
	memcpy(t->parent_id, h + 36, 16);
	memcpy(t->flags, h + 53, 2);
	return 0;
}

/* n random lowercase hex digits, not all zero, NUL-terminated. */
static void
random_hex(char *dst, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 raw[16];
	ssize_t			 got;
	size_t			 i;

	do {
		got = getrandom(raw, n / 2, GRND_NONBLOCK);
		for (i = got > 0 ? (size_t)got : 0; i < n / 2; i++)
			raw[i] = (unsigned char)random();
		for (i = 0; i < n / 2; i++) {
			dst[2 * i] = hex[raw[i] >> 4];
			dst[2 * i + 1] = hex[raw[i] & 15];
		}
		dst[n] = '\0';
	} while (hex_run(dst, n, 1) == -1);
}

int
trace_begin(struct trace *t, const char *h)
{
	int	 rc = 1;

	if (h == NULL || *h == '\0')
		rc = 0;
	else if (trace_parse(h, t) == -1)
		rc = -1;
	if (rc != 1) {
		memset(t, 0, sizeof(*t));
		random_hex(t->trace_id, 32);
		memcpy(t->flags, "01", 3);
	}
	random_hex(t->span_id, 16);
	return rc;
}

void
trace_header(const struct trace *t, char *dst, size_t len)
{
	if (t->trace_id[0] == '\0') {
		if (len > 0)
			dst[0] = '\0';
		return;
	}
	snprintf(dst, len, "00-%s-%s-%s", t->trace_id, t->span_id, t->flags);
}
