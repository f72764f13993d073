/* usage.h: the record of one request: tokens, cost, outcome. */
#ifndef LLMGATE_USAGE_H
#define LLMGATE_USAGE_H

#include "money.h"
#include "provider.h"

struct usage_rec {
	const char	*request_id;
	const char	*requested;	/* model the client asked for */
	const char	*served;	/* model that answered, or "" */
	const char	*provider;
	struct usage	 tokens;
	int		 estimated;	/* tokens estimated, not reported */
	money_t		 cost;
	int		 status;
	int		 attempts;
	int		 stream;
	int		 client_aborted;
	double		 latency_ms;
	double		 ttft_ms;
};

money_t	usage_cost(const struct candidate *, const struct usage *);
void	usage_record(const struct usage_rec *);

#endif
