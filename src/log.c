/* log.c: one-line log messages to stderr, never carrying secrets. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

enum log_level log_threshold = LOG_INFO;

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

/* Write the whole line with one call so threads do not interleave. */
void
log_msg(enum log_level level, const char *fmt, ...)
{
	char		 line[12288], stamp[32];
	struct tm	 tm;
	time_t		 now;
	va_list		 ap;
	int		 n, m;

	if (level > log_threshold)
		return;
	now = time(NULL);
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	n = snprintf(line, sizeof(line), "%s llmgate[%d] %s: ", stamp,
	    (int)getpid(), level_names[level]);
	va_start(ap, fmt);
	m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
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
