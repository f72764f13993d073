/*
 * redact.h: replacing findings by typed placeholders ("[EMAIL_1]") before
 * a request leaves, and putting the originals back into the answer,
 * whole or streamed (a placeholder or a finding split across events
 * still found). One map per request, owned by the route.
 */
#ifndef LLMGATE_REDACT_H
#define LLMGATE_REDACT_H

#include <stddef.h>

#include "buf.h"
#include "detect.h"

/*
 * The limits of one map: a request with more findings, or more bytes of
 * found values, than this is refused (BUF_TOOBIG) rather than sent with
 * findings left in it.
 */
#define REDACT_MAX_ENTRIES	1024
#define REDACT_MAX_BYTES	(256 * 1024)

/* Placeholders of one request: the same value gets the same placeholder. */
struct redact_map {
	struct redact_entry	*e;	/* owned */
	size_t			 n;
	size_t			 cap;
	unsigned		 count[DET__MAX];	/* numbered per kind */
	size_t			 bytes;	/* of the values held, capped */
};

void	redact_map_init(struct redact_map *);
void	redact_map_free(struct redact_map *);

/*
 * s[0..n) with every span of the kinds in mask replaced by its
 * placeholder, appended to out; the kinds found are or-ed into *found.
 * 0, or a BUF_* error (out's cap, or out of memory; map limits too).
 */
int	redact_text(const struct det_rules *, unsigned, struct redact_map *,
	    const char *, size_t, struct buf *, unsigned *);

/* s[0..n) with every placeholder of map replaced by its value, to out. */
int	redact_restore(const struct redact_map *, const char *, size_t,
	    struct buf *);

/* What a stream's output check does with a finding. */
enum redact_out {
	REDACT_OUT_OFF,		/* nothing checked, placeholders restored */
	REDACT_OUT_REDACT,	/* findings replaced in flight */
	REDACT_OUT_STOP,	/* the stream stops at the first finding */
};

/*
 * One streamed text (one choice of an answer): deltas in, text out,
 * holding back what a later delta could still complete (a placeholder's
 * start, a finding's start), never more than DET_HOLD_MAX bytes.
 */
struct redact_stream {
	const struct det_rules	*rules;
	const struct redact_map	*map;		/* restore these; may be NULL */
	unsigned		 mask;		/* output detectors */
	enum redact_out		 mode;
	struct buf		 held;		/* not released yet */
	unsigned		 found;		/* kinds found in the output */
	int			 stopped;	/* REDACT_OUT_STOP fired */
	/* Private to redact.c. */
	size_t			 ctx;		/* held's first bytes: released
						   text kept as context */
	unsigned		 count[DET__MAX]; /* output findings numbered */
	int			 swallow;	/* inside a long secret */
};

void	redact_stream_init(struct redact_stream *, const struct det_rules *,
	    const struct redact_map *, unsigned, enum redact_out);
/*
 * One delta: what may be released now is appended to out (possibly
 * nothing). Returns 0, 1 when the stream must stop (REDACT_OUT_STOP and
 * a finding: out has the text before it), or a BUF_* error.
 */
int	redact_stream_feed(struct redact_stream *, const char *, size_t,
	    struct buf *);
/*
 * Output findings (REDACT_OUT_REDACT) get placeholders of their own,
 * numbered per kind from 1 in the order they appear, one per finding
 * (no map is kept of the answer's values): "[CARD_1]" in an answer is
 * the answer's first card, whatever the request's "[CARD_1]" was. The
 * check runs on the upstream's text before restore, so the request's
 * own values put back by restore are never flagged. A whole
 * (non-streamed) answer is one feed and the finish.
 */
/* The stream's end: everything held, checked and restored, to out. */
int	redact_stream_finish(struct redact_stream *, struct buf *);
void	redact_stream_free(struct redact_stream *);

#endif
