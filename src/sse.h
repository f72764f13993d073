/* sse.h: incremental Server-Sent Events parser (bytes in, events out). */
#ifndef LLMGATE_SSE_H
#define LLMGATE_SSE_H

#include "buf.h"

struct sse_event {
	const char	*event;		/* "" when the stream named none */
	const char	*data;		/* data lines joined by "\n" */
	size_t		 data_len;
	int		 comment;	/* a ": ..." line; data is its text */
};

/* Return non-zero to stop parsing; sse_feed() passes the value back. */
typedef int (*sse_cb)(void *, const struct sse_event *);

struct sse_parser {
	struct buf	 line;
	struct buf	 data;
	char		 event[64];
	int		 has_data;
	int		 last_cr;
	int		 ndjson;	/* each line is one event's data */
};

enum sse_err {
	SSE_OK = 0,
	SSE_TOOBIG = -1,	/* a line or event passed max */
	SSE_NOMEM = -2,
};

void	sse_init(struct sse_parser *, size_t max);
int	sse_feed(struct sse_parser *, const char *, size_t, sse_cb, void *);
int	sse_finish(struct sse_parser *, sse_cb, void *);
void	sse_reset(struct sse_parser *);
void	sse_set_ndjson(struct sse_parser *, int);
void	sse_free(struct sse_parser *);

#endif
