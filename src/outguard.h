/*
 * outguard.h: the answer's side of a request's policy, for chat: the
 * placeholders redact put in the request put back into the answer, and
 * the output detectors run over it (redacted in flight, or the answer
 * stopped), whole or streamed. Each choice's content and each tool
 * call's arguments are checked as one text, whatever the events cut.
 */
#ifndef LLMGATE_OUTGUARD_H
#define LLMGATE_OUTGUARD_H

#include "buf.h"
#include "policy.h"
#include "redact.h"

struct json_object;

/* One choice's texts in a stream. */
struct outguard_choice {
	struct redact_stream	 content;
	struct redact_stream	 args;		/* of tool call args_index */
	long			 args_index;	/* -1: none yet */
	int			 used;
};

/* One chat answer's output guard; lives in the route's own struct. */
struct outguard {
	struct guard		*g;
	int			 active;	/* anything to restore or check */
	struct outguard_choice	*c;		/* by choice index; owned */
	size_t			 nc;
	int			 stopped;	/* a finding stopped the answer */
	struct buf		 out;		/* scratch */
};

/* Nothing to do (inactive) unless g's policy restores or checks output. */
void	outguard_init(struct outguard *, struct guard *);
void	outguard_free(struct outguard *);

/*
 * A streamed chunk, rewritten in place: each choice's delta content and
 * tool call arguments as far as they may be released; a choice that
 * finishes releases what it held. 0; 1 when a finding stopped the
 * answer (the chunk carries the text before it and finish_reason
 * "content_filter"; send it, then end the stream); -1 out of memory.
 */
int	outguard_chunk(struct outguard *, struct json_object *);

/*
 * The stream's end: a chunk like last (id, model, created) carrying what
 * every choice still holds, or NULL when nothing is held.
 */
struct json_object *outguard_tail(struct outguard *, struct json_object *);

/* A whole answer's choices, rewritten in place: 0, 1 (stopped), -1. */
int	outguard_reply(struct outguard *, struct json_object *);

#endif
