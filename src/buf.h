/* buf.h: growable byte buffers that always carry a size cap. */
#ifndef LLMGATE_BUF_H
#define LLMGATE_BUF_H

#include <stddef.h>

/* A buffer owns data; len excludes the NUL that is always kept after it. */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 cap;
	size_t	 max;	/* appends that would pass this fail with BUF_TOOBIG */
};

enum buf_err {
	BUF_OK = 0,
	BUF_TOOBIG = -1,
	BUF_NOMEM = -2,
};

void	buf_init(struct buf *, size_t max);
int	buf_append(struct buf *, const void *, size_t);
int	buf_puts(struct buf *, const char *);
int	buf_printf(struct buf *, const char *, ...)
	    __attribute__((format(printf, 2, 3)));
void	buf_reset(struct buf *);
void	buf_free(struct buf *);

#endif
