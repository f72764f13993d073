/*
 * stream-out.c: the client's side of a streamed answer for the model
 * routes (chat and its client protocols, completions): the stream begun
 * on its first byte, events flushed once per upstream read, heartbeats,
 * the in-band error and end, and the decision at the transfer's end.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "call.h"
#include "config.h"
#include "policy.h"
#include "provider.h"
#include "stream-out.h"
#include "upstream.h"
#include "usage.h"

void
stream_init(struct stream_out *so, struct request *r, const struct call *c,
    const struct guard *g, const struct stream_ends *ends, void *ctx)
{
	memset(so, 0, sizeof(*so));
	so->r = r;
	so->call = c;
	so->guard = g;
	so->ends = ends;
	so->ctx = ctx;
	clock_gettime(CLOCK_MONOTONIC, &so->last_out);
}

void
stream_attempt(struct stream_out *so, const struct candidate *c)
{
	so->cand = c;
	so->stop = STOP_NONE;
	if (!so->r->headers_sent)
		clock_gettime(CLOCK_MONOTONIC, &so->last_out);
}

/* The served model and attempt count travel in headers, success or not. */
void
stream_served(struct request *r, const struct candidate *c, int attempts)
{
	account_served(r, c, attempts);
	snprintf(r->served, sizeof(r->served), "%s", c->name);
}

/* First byte of a stream: from here on there is no fallback. */
static int
begin(struct stream_out *so)
{
	if (so->r->headers_sent)
		return so->r->client_gone ? -1 : 0;
	stream_served(so->r, so->cand, so->call->attempts);
	return http_begin(so->r, 200, "text/event-stream");
}

/*
 * Events go to the client's output buffer and are flushed by
 * stream_flush() once per upstream read (and after a heartbeat or the
 * last event): what arrived together leaves in one FastCGI write, and
 * nothing waits for more data.
 */
int
stream_write(struct stream_out *so, const char *p, size_t n)
{
	if (begin(so) == -1 || http_write(so->r, p, n) == -1) {
		so->stop = STOP_CLIENT;
		return -1;
	}
	so->unflushed = 1;
	return 0;
}

int
stream_event(struct stream_out *so, const char *prefix, const char *data,
    size_t len)
{
	if (stream_write(so, prefix, strlen(prefix)) == -1 ||
	    (len > 0 && stream_write(so, data, len) == -1))
		return -1;
	return stream_write(so, "\n\n", 2);
}

int
stream_flush(struct stream_out *so)
{
	if (!so->unflushed)
		return 0;
	so->unflushed = 0;
	if (http_flush(so->r) == -1) {
		so->stop = STOP_CLIENT;
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &so->last_out);
	return 0;
}

int
stream_read(struct stream_out *so, int rc, struct provider_error *err)
{
	if (stream_flush(so) == -1 && rc == 0)
		rc = 1;
	if (rc < 0 && so->stop == STOP_NONE) {
		so->stop = STOP_BAD_STREAM;
		provider_error_set(err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a stream "
		    "event larger than max_sse_event",
		    so->cand->provider->name);
	}
	return rc != 0;
}

/*
 * Before the response began, a ping only once the upstream answered 2xx:
 * it commits the response, and until then a failure must stay free to
 * retry or fall back.
 */
int
stream_tick(struct stream_out *so, long status)
{
	if (!so->r->headers_sent && (status < 200 || status > 299))
		return 0;
	if (upstream_ms_since(&so->last_out) <
	    (double)so->r->cfg->gw.heartbeat * 1000.0)
		return 0;
	return stream_write(so, ": ping\n\n", 8) == -1 ||
	    stream_flush(so) == -1;
}

void
stream_close(struct stream_out *so)
{
	if (so->ends->finish(so->ctx) == 0)
		stream_flush(so);
}

void
stream_fail(struct stream_out *so, const struct provider_error *e)
{
	if (so->ends->fail(so->ctx, e) == 0)
		stream_flush(so);
}

/* What was streamed is served and billed; no fallback. */
void
stream_policy_stop(struct stream_out *so)
{
	struct provider_error	 perr;

	provider_error_set(&perr, "invalid_request_error",
	    "policy_violation", "the answer was stopped by the output "
	    "policy: %s", so->guard->out_found != 0 ? "a finding of its "
	    "detectors" : "out of memory");
	stream_fail(so, &perr);
}

enum call_delivery
stream_end(struct stream_out *so, const struct upstream_resp *resp,
    int complete, int failed, const struct provider_error *err,
    struct provider_error *e)
{
	struct provider_error	 perr;

	stream_flush(so);	/* the events of the last read, or none */
	if (resp->result == UP_OK && so->stop == STOP_NONE && complete) {
		/* The upstream gave it all: served and billed, read or not. */
		stream_close(so);
		return CALL_SENT;
	}
	if (so->stop == STOP_CLIENT || so->r->client_gone)
		return CALL_GONE;
	if (so->stop == STOP_POLICY) {
		stream_policy_stop(so);
		return so->r->client_gone ? CALL_GONE : CALL_SENT;
	}
	failed = failed || so->stop == STOP_BAD_STREAM;
	if (so->r->headers_sent) {
		/* Too late to fall back: end the stream in-band. */
		if (failed)
			perr = *err;
		else
			provider_error_set(&perr, "upstream_error",
			    "upstream_broken", "provider '%s' ended the stream "
			    "early: %s", so->cand->provider->name,
			    resp->result == UP_OK ? "no [DONE]" : resp->error);
		stream_fail(so, &perr);
		return so->r->client_gone ? CALL_GONE : CALL_SENT_BROKEN;
	}
	if (failed) {
		*e = *err;
		return CALL_MALFORMED;
	}
	return CALL_UNSENT;
}

void
stream_row(struct request *r, const struct candidate *cand,
    const char *model, const struct usage *usage, int64_t prompt_est,
    int64_t out_bytes, struct usage_row *u)
{
	struct usage	 t = *usage;
	int		 served = r->served[0] != '\0';

	account_row(r, u);
	snprintf(u->requested, sizeof(u->requested), "%s", model);
	snprintf(u->served, sizeof(u->served), "%s", r->served);
	if (served && cand != NULL)
		snprintf(u->provider, sizeof(u->provider), "%s",
		    cand->provider->name);
	if (!t.known && served) {
		t.prompt = prompt_est;
		t.completion = (out_bytes + 3) / 4;
		u->estimated = 1;
	}
	u->prompt = t.prompt;
	u->completion = t.completion;
	u->cached = t.cached;
	u->cost = served ? account_cost(cand, &t, &u->flags) : 0;
	u->status = (uint16_t)r->status;
}
