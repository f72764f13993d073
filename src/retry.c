/*
 * retry.c: one policy for every route that calls a provider: which
 * failures are retried, which move on to the next model, which go back to
 * the client, and how long to wait in between.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "retry.h"

/* Set the failure with an upstream_error of the gateway's own wording. */
void
retry_fail(struct retry_failure *f, int status, const char *code,
    const char *fmt, ...)
{
	char	 msg[sizeof(f->err.message)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	f->status = status;
	provider_error_set(&f->err, "upstream_error", code, "%s", msg);
}

/*
 * Judge a transfer that did not give a usable answer. Upstream statuses
 * in [retry] on_status, 408, 429, timeouts and broken connections are
 * retried; 401/403 (the gateway's key refused: a 502 for the client),
 * 404 (a model this provider lacks), odd statuses and oversized answers
 * move on; other 4xx are the client's and go back as they are.
 */
enum retry_next
retry_judge(const struct config *cfg, const struct candidate *c,
    const struct upstream_resp *resp, const char *request_id,
    struct retry_failure *f)
{
	const char	*name = c->provider->name;
	long		 s = resp->status;

	f->retry_after = resp->retry_after;
	f->upstream_status = 0;
	switch (resp->result) {
	case UP_HTTP:
		/* Redacted: the text may quote the gateway's key. */
		provider_error_body(c, s, resp->body.data, resp->body.len,
		    &f->err);
		/* Some providers say "bad key" or "retry later" in the body. */
		if (f->err.status >= 400 && f->err.status <= 599)
			s = f->err.status;
		if (f->retry_after < 0 && f->err.retry_after > 0)
			f->retry_after = f->err.retry_after;
		f->upstream_status = s;
		f->status = (int)s;
		if (s == 401 || s == 403) {
			/* Not the client's fault: it gets the gateway's words. */
			log_debug("%s: provider %s said: %s", request_id, name,
			    f->err.message);
			retry_fail(f, 502, "upstream_auth_error", "provider '%s' "
			    "refused the gateway's credentials (HTTP %ld)", name,
			    s);
			return RETRY_FALLBACK;
		}
		if (s < 400 || s > 599) {
			retry_fail(f, 502, "bad_upstream_response", "provider "
			    "'%s' answered with unexpected HTTP %ld", name, s);
			return RETRY_FALLBACK;
		}
		if (config_retry_status(cfg, (int)s) || s == 408 || s == 429)
			return RETRY_SAME;
		return s == 404 ? RETRY_FALLBACK : RETRY_FINAL;
	case UP_CONNECT:
		retry_fail(f, 502, "upstream_unreachable", "could not reach "
		    "provider '%s': %s", name, resp->error);
		return RETRY_SAME;
	case UP_TIMEOUT:
		retry_fail(f, 504, "upstream_timeout", "provider '%s' timed "
		    "out: %s", name, resp->error);
		return RETRY_SAME;
	case UP_TOOBIG:
		retry_fail(f, 502, "upstream_too_large", "provider '%s' sent a "
		    "response larger than max_upstream_body", name);
		return RETRY_FALLBACK;
	case UP_OK:
		/* A 2xx stream that ended before any event or [DONE]. */
		retry_fail(f, 502, "upstream_broken", "provider '%s' ended the "
		    "stream early", name);
		return RETRY_SAME;
	default:
		retry_fail(f, 502, "upstream_broken", "connection to provider "
		    "'%s' failed: %s", name, resp->error);
		return RETRY_SAME;
	}
}

/* Before a retry: Retry-After if given, else a doubling backoff, jittered. */
void
retry_pause(const struct retry_cfg *rc, int attempt, long retry_after)
{
	struct timespec	 ts;
	long		 ms = rc->backoff_ms;

	if (retry_after >= 0)
		ms = retry_after * 1000;
	else {
		for (; attempt > 1 && ms < rc->backoff_max_ms; attempt--)
			ms *= 2;
		if (ms > rc->backoff_max_ms)
			ms = rc->backoff_max_ms;
		/* Equal jitter: half fixed, half random. */
		if (ms > 1)
			ms = ms / 2 + random() % (ms / 2 + 1);
	}
	ts.tv_sec = ms / 1000;
	ts.tv_nsec = (ms % 1000) * 1000000L;
	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}
