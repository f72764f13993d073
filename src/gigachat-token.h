/* gigachat-token.h: GigaChat's OAuth access tokens, cached per process. */
#ifndef LLMGATE_GIGACHAT_TOKEN_H
#define LLMGATE_GIGACHAT_TOKEN_H

#include "config.h"
#include "provider.h"

/* What the cache did for one provider, for tests and health pages. */
struct gigachat_token_stats {
	unsigned long	 fetches;	/* token requests made */
	unsigned long	 waits;		/* waits for another thread's request */
};

/*
 * Add "Authorization: Bearer <token>" for provider p to call's headers:
 * a cached token without any network call, else one token request for
 * all the threads that need it (the others wait for its result, bounded
 * by its timeout). Returns 0, or -1 with e filled when no token can be
 * had now. Neither the key nor a token is ever logged or put in e.
 */
int	gigachat_token_bearer(const struct provider_cfg *,
	    struct provider_call *, struct provider_error *);

/* GigaChat refused p's token (401): the next request asks for a new one. */
void	gigachat_token_drop(const struct provider_cfg *);

/* The counts of provider p's slot (zeros when it has none). */
void	gigachat_token_stats(const struct provider_cfg *,
	    struct gigachat_token_stats *);

#endif
