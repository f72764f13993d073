/* trace.h: W3C Trace Context (traceparent) of one request. */
#ifndef LLMGATE_TRACE_H
#define LLMGATE_TRACE_H

#include <stdint.h>

#define TRACEPARENT_LEN	55	/* "00-" 32 hex "-" 16 hex "-" 2 hex */

/* The trace a request belongs to and the gateway's own span in it. */
struct trace {
	char	 trace_id[33];	/* 32 lowercase hex, never all zero */
	char	 parent_id[17];	/* the client's span; "" when generated */
	char	 span_id[17];	/* the gateway's span: upstreams' parent */
	char	 flags[3];	/* 2 hex, "01" when generated (sampled) */
};

/* A strictly valid version-00 traceparent header into t (span_id unset): 0, else -1. */
int	trace_parse(const char *, struct trace *);
/*
 * The trace of a request whose client sent header (NULL: none): its trace
 * id, parent and flags when header is valid, else a new random trace id;
 * always a new span id for the gateway. Returns 1 when the header was
 * taken, 0 when absent, -1 when malformed (and replaced).
 */
int	trace_begin(struct trace *, const char *);
/* "00-TRACE-SPAN-FLAGS" with the gateway's span as parent, into dst (at least 56 bytes). */
void	trace_header(const struct trace *, char *, size_t);

#endif
