/* stream-out.h: the client's side of a streamed answer, for the routes. */
#ifndef LLMGATE_STREAM_OUT_H
#define LLMGATE_STREAM_OUT_H

#include <time.h>

#include "call.h"

/* Why a transfer was stopped from our side. */
enum stream_stop {
	STOP_NONE,
	STOP_CLIENT,		/* the client went away */
	STOP_BAD_STREAM,	/* the upstream stream broke its protocol */
	STOP_POLICY,		/* an output check stopped the answer */
};

/*
 * A route's last events in its client's shape, written with stream_write()
 * or stream_event(): 0, or -1 when nothing more can be sent.
 */
struct stream_ends {
	int	(*finish)(void *);	/* of a whole answer: tail, end */
	int	(*fail)(void *, const struct provider_error *);
					/* the error in-band, then the end */
};

/*
 * One streamed answer's output: begun with the served model's headers on
 * its first byte, flushed once per upstream read, kept alive by a
 * heartbeat, ended in-band on failure.
 */
struct stream_out {
	struct request		*r;
	const struct call	*call;		/* its attempts: a header */
	const struct guard	*guard;		/* its findings name a stop */
	const struct stream_ends *ends;
	void			*ctx;		/* the ends' */
	const struct candidate	*cand;		/* served once it begins */
	enum stream_stop	 stop;
	int			 unflushed;	/* written, not flushed */
	struct timespec		 last_out;	/* last flush to the client */
};

void	stream_init(struct stream_out *, struct request *, const struct call *,
	    const struct guard *, const struct stream_ends *, void *);
/* A new attempt on candidate c: nothing stopped, the heartbeat's clock. */
void	stream_attempt(struct stream_out *, const struct candidate *);
/* Candidate c served the request: its headers (attempts as given). */
void	stream_served(struct request *, const struct candidate *, int);
/* Bytes to the client's output, the stream begun first: 0, or -1. */
int	stream_write(struct stream_out *, const char *, size_t);
/* One event: prefix, data, a blank line: 0, or -1. */
int	stream_event(struct stream_out *, const char *, const char *, size_t);
/* Push what was written since the last flush: 0, or -1. */
int	stream_flush(struct stream_out *);
/* After one upstream read fed to the parser (rc its result): on_body's. */
int	stream_read(struct stream_out *, int, struct provider_error *);
/* upstream_req.on_tick's heartbeat for an upstream status: 0, or 1. */
int	stream_tick(struct stream_out *, long);
/* The answer's last events, flushed. */
void	stream_close(struct stream_out *);
/* The failure in-band, flushed. */
void	stream_fail(struct stream_out *, const struct provider_error *);
/* The output policy's stop in-band. */
void	stream_policy_stop(struct stream_out *);
/*
 * call_ops.deliver for a stream whose events went out already: complete
 * when the upstream gave it all, failed when it sent its own error
 * (err). When no byte was sent, a broken stream is *e's to retry.
 */
enum call_delivery stream_end(struct stream_out *, const struct upstream_resp *,
	    int, int, const struct provider_error *, struct provider_error *);
/*
 * The usage row of an answer to model, streamed or not, served by cand:
 * its usage as the upstream gave it, else about four bytes a token of the
 * request (prompt_est) and of the text generated (out_bytes); its cost
 * and status. Attempts, stream and time to first token are the route's.
 */
void	stream_row(struct request *, const struct candidate *, const char *,
	    const struct usage *, int64_t, int64_t, struct usage_row *);

#endif
