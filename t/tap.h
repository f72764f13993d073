/* tap.h: a minimal TAP producer for the C unit tests. */
#ifndef LLMGATE_TAP_H
#define LLMGATE_TAP_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

#define ok(cond, ...) do {						\
	int ok_ = (cond) ? 1 : 0;					\
	printf("%sok %d - ", ok_ ? "" : "not ", ++tap_n);		\
	printf(__VA_ARGS__);						\
	printf("\n");							\
	if (!ok_) {							\
		tap_failed++;						\
		printf("#   failed at %s:%d\n", __FILE__, __LINE__);	\
	}								\
} while (0)

#define is_int(got, want, ...) do {					\
	long long g_ = (long long)(got), w_ = (long long)(want);	\
	ok(g_ == w_, __VA_ARGS__);					\
	if (g_ != w_)							\
		printf("#   got %lld, want %lld\n", g_, w_);		\
} while (0)

#define is_str(got, want, ...) do {					\
	const char *g_ = (got), *w_ = (want);				\
	int eq_ = g_ != NULL && w_ != NULL && strcmp(g_, w_) == 0;	\
	ok(eq_, __VA_ARGS__);						\
	if (!eq_)							\
		printf("#   got '%s', want '%s'\n", g_ ? g_ : "(null)",	\
		    w_ ? w_ : "(null)");				\
} while (0)

/*
 * Read t/data/DIR/NAME, found from $top_srcdir (set by make check) or the
 * current directory; NUL-terminated, length in *len. The caller frees it.
 */
static inline char *
tap_slurp(const char *dir, const char *name, size_t *len)
{
	const char	*top = getenv("top_srcdir");
	char		 path[1024];
	FILE		*fp;
	char		*buf;
	long		 n;

	snprintf(path, sizeof(path), "%s/t/data/%s/%s", top ? top : ".", dir,
	    name);
	if ((fp = fopen(path, "rb")) == NULL)
		return NULL;
	fseek(fp, 0, SEEK_END);
	n = ftell(fp);
	rewind(fp);
	buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (buf != NULL && fread(buf, 1, (size_t)n, fp) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(fp);
	if (buf != NULL) {
		buf[n] = '\0';
		if (len != NULL)
			*len = (size_t)n;
	}
	return buf;
}

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif
