/* retry.h: what a failed upstream attempt means, and the pause before the next. */
#ifndef LLMGATE_RETRY_H
#define LLMGATE_RETRY_H

#include "config.h"
#include "plan.h"
#include "provider.h"
#include "upstream.h"

/* What to do after a failed attempt. */
enum retry_next {
	RETRY_SAME,		/* same model again, after a pause */
	RETRY_FALLBACK,		/* the next model of the chain */
	RETRY_FINAL,		/* answer the client with this error */
};

/* A failed attempt as the client would be told. */
struct retry_failure {
	int			 status;	/* for the client */
	long			 upstream_status; /* as judged; 0 if none */
	long			 retry_after;	/* s, or -1 */
	struct provider_error	 err;
};

enum retry_next	 retry_judge(const struct config *, const struct candidate *,
		    const struct upstream_resp *, const char *,
		    struct retry_failure *);
void		 retry_fail(struct retry_failure *, int, const char *,
		    const char *, ...) __attribute__((format(printf, 4, 5)));
void		 retry_pause(const struct retry_cfg *, int, long);

#endif
