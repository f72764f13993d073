/*
 * usage.c: price a request and record it. Until the Berkeley DB store
 * lands (issue #4) the record is one "usage" log line per request.
 */
#include <inttypes.h>

#include "log.h"
#include "usage.h"

/*
 * Cached prompt tokens are billed at the cached price, the rest at the
 * input price; the total is rounded up to the next micro-dollar once.
 */
money_t
usage_cost(const struct candidate *c, const struct usage *u)
{
	struct money_sum	 sum = { 0, 0 };
	int64_t			 cached = u->cached;

	if (c == NULL)
		return 0;
	if (cached > u->prompt)
		cached = u->prompt;
	money_sum_add(&sum, u->prompt - cached, c->input_price);
	money_sum_add(&sum, cached, c->cached_input_price);
	money_sum_add(&sum, u->completion, c->output_price);
	return money_sum_total(&sum);
}

void
usage_record(const struct usage_rec *u)
{
	log_info("usage id=%s model=%s served=%s provider=%s status=%d "
	    "attempts=%d stream=%d prompt=%" PRId64 " completion=%" PRId64
	    " cached=%" PRId64 " estimated=%d cost_micro_usd=%" PRId64
	    " latency_ms=%.0f ttft_ms=%.0f client_aborted=%d",
	    u->request_id, u->requested, u->served[0] ? u->served : "-",
	    u->provider[0] ? u->provider : "-", u->status, u->attempts,
	    u->stream, u->tokens.prompt, u->tokens.completion,
	    u->tokens.cached, u->estimated, u->cost, u->latency_ms,
	    u->ttft_ms, u->client_aborted);
}
