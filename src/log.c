/* log.c: one-line log messages to stderr (text or JSON), never carrying secrets. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_level log_threshold = LOG_INFO;
int log_json;

static const char *const level_names[LOG__MAX] = {
	"error", "warn", "info", "debug",
};

int
log_level_parse(const char *s, enum log_level *out)
{
	int	 i;

	for (i = 0; i < LOG__MAX; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (enum log_level)i;
			return 0;
		}
	return -1;
}

/*
 * s as the value of a "field=value" in a log line: as it is when it is
 * printable ASCII without spaces, quotes or backslashes, else in double
 * quotes with " and \ escaped and other bytes as \xNN, so that no value
 * can forge another field or line. Written to dst (cut to fit len, at
 * least 3); returns dst.
 */
const char *
log_value(char *dst, size_t len, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = 0;

	for (; *p != '\0'; p++)
		if (*p <= ' ' || *p >= 0x7f || *p == '"' || *p == '\\')
			break;
	if (*p == '\0' && p != (const unsigned char *)s) {
		snprintf(dst, len, "%s", s);
		return dst;
	}
	dst[n++] = '"';
	for (p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p >= ' ' && *p < 0x7f && *p != '"' && *p != '\\') {
			if (n + 1 + 2 > len)	/* the byte, '"', NUL */
				break;
			dst[n++] = (char)*p;
		} else if (*p == '"' || *p == '\\') {
			if (n + 2 + 2 > len)
				break;
			dst[n++] = '\\';
			dst[n++] = (char)*p;
		} else {
			if (n + 4 + 2 > len)
				break;
			dst[n++] = '\\';
			dst[n++] = 'x';
			dst[n++] = hex[*p >> 4];
			dst[n++] = hex[*p & 15];
		}
	}
	dst[n++] = '"';
	dst[n] = '\0';
	return dst;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when invalid. */
static size_t
utf8_len(const unsigned char *p)
{
	size_t	 n, i;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		n = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		n = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		n = 4, cp = p[0] & 0x07;
	else
		return 0;
	for (i = 1; i < n; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (p[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

int
log_json_string(char *dst, size_t len, const char *s)
{
	static const char	 hex[] = "0123456789abcdef";
	const unsigned char	*p = (const unsigned char *)s;
	size_t			 n = 0, u;
	char			 esc[8];
	const char		*add;
	size_t			 alen;

	if (len < 3)
		return -1;
	dst[n++] = '"';
	while (*p != '\0') {
		add = esc;
		alen = 2;
		u = 1;
		esc[0] = '\\';
		switch (*p) {
		case '"':  esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		default:
			if (*p < 0x20 || *p == 0x7f) {
				memcpy(esc, "\\u00", 4);
				esc[4] = hex[*p >> 4];
				esc[5] = hex[*p & 15];
				alen = 6;
			} else if ((u = utf8_len(p)) == 0) {
				add = "\\ufffd";
				alen = 6;
				u = 1;
			} else {
				add = (const char *)p;
				alen = u;
			}
		}
		if (n + alen + 2 > len)
			return -1;
		memcpy(dst + n, add, alen);
		n += alen;
		p += u;
	}
	dst[n++] = '"';
	dst[n] = '\0';
	return (int)n;
}

void
log_fields_init(struct log_fields *f)
{
	f->n = 0;
	f->buf[0] = '\0';
}

/* Append ,"name":value (value already JSON) whole, or nothing. */
static void
field_raw(struct log_fields *f, const char *name, const char *v, size_t vlen)
{
	size_t	 nlen = strlen(name);

	if (f->n + nlen + vlen + 5 > sizeof(f->buf))
		return;
	f->buf[f->n++] = ',';
	f->buf[f->n++] = '"';
	memcpy(f->buf + f->n, name, nlen);
	f->n += nlen;
	f->buf[f->n++] = '"';
	f->buf[f->n++] = ':';
	memcpy(f->buf + f->n, v, vlen);
	f->n += vlen;
	f->buf[f->n] = '\0';
}

void
log_field_str(struct log_fields *f, const char *name, const char *v)
{
	char	 js[2048];
	int	 n;

	if ((n = log_json_string(js, sizeof(js), v != NULL ? v : "")) > 0)
		field_raw(f, name, js, (size_t)n);
}

void
log_field_int(struct log_fields *f, const char *name, long long v)
{
	char	 num[32];
	int	 n;

	n = snprintf(num, sizeof(num), "%lld", v);
	field_raw(f, name, num, (size_t)n);
}

/* One JSON object per line; the whole line with one write(). */
static void __attribute__((noinline))
emit_json(enum log_level level, const struct log_fields *f, const char *fmt,
    va_list ap)
{
	char		 line[16384], msg[8192], stamp[40];
	struct timespec	 ts;
	struct tm	 tm;
	size_t		 room;
	int		 n, m;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	n = snprintf(line, sizeof(line), "{\"time\":\"%s.%03ldZ\",\"level\":"
	    "\"%s\",\"pid\":%d,\"message\":", stamp, ts.tv_nsec / 1000000,
	    level_names[level], (int)getpid());
	room = sizeof(line) - (size_t)n - (f != NULL ? f->n : 0) - 2;
	/* A message too long for the line is cut on a character boundary. */
	m = (int)strlen(msg);
	while (log_json_string(line + n, room, msg) == -1 && m > 0) {
		m = m > 64 ? m - 64 : 0;
		while (m > 0 && ((unsigned char)msg[m] & 0xc0) == 0x80)
			m--;
		msg[m] = '\0';
	}
	n += (int)strlen(line + n);
	if (f != NULL && f->n > 0) {
		memcpy(line + n, f->buf, f->n);
		n += (int)f->n;
	}
	line[n++] = '}';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

/* "TIME llmgate[PID] LEVEL: message"; the whole line with one write(). */
static void __attribute__((noinline))
emit_text(enum log_level level, const char *fmt, va_list ap)
{
	char		 line[12288], stamp[32];
	struct tm	 tm;
	time_t		 now;
	int		 n, m;

	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s llmgate[%d] %s: ", stamp,
	    (int)getpid(), level_names[level]);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	if (m < 0)
		m = 0;
	n += m;
	if ((size_t)n > sizeof(line) - 2)
		n = sizeof(line) - 2;
	/* Client-supplied text must not forge log lines. */
	for (m = 0; m < n; m++)
		if ((unsigned char)line[m] < 0x20)
			line[m] = ' ';
	line[n++] = '\n';
	(void)!write(STDERR_FILENO, line, (size_t)n);
}

static void
emit(enum log_level level, const struct log_fields *f, const char *fmt,
    va_list ap)
{
	if (log_json)
		emit_json(level, f, fmt, ap);
	else
		emit_text(level, fmt, ap);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list	 ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	emit(level, NULL, fmt, ap);
	va_end(ap);
}

void
log_msg_fields(enum log_level level, const struct log_fields *f,
    const char *fmt, ...)
{
	va_list	 ap;

	if (level > log_threshold)
		return;
	va_start(ap, fmt);
	emit(level, f, fmt, ap);
	va_end(ap);
}
