/* fixture.h: what the adapter unit tests share: one provider, model and candidate, and a header lookup. */
#ifndef LLMGATE_FIXTURE_H
#define LLMGATE_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "../src/plan.h"

/* Whether the upstream request carries exactly this header line. */
static inline int
has_header(struct curl_slist *h, const char *want)
{
	for (; h != NULL; h = h->next)
		if (strcmp(h->data, want) == 0)
			return 1;
	return 0;
}

/* Tests with fixtures of their own define FIXTURE_HEADERS_ONLY first. */
#ifndef FIXTURE_HEADERS_ONLY
static struct provider_cfg	 prov;
static struct model_cfg		 model;
static struct candidate		 cand;

/*
 * prov, model and cand for one adapter: the candidate is served as name,
 * sent upstream as upstream, with one extra header line from the config.
 */
static inline void
fixture_candidate(enum provider_type type, const char *provider,
    const char *base_url, const char *key, const char *name,
    const char *upstream, long max_tokens, const char *header)
{
	static char	*hdr[1];

	hdr[0] = (char *)header;
	memset(&prov, 0, sizeof(prov));
	prov.name = (char *)provider;
	prov.type = type;
	prov.base_url = (char *)base_url;
	prov.api_key = (char *)key;
	prov.headers.v = hdr;
	prov.headers.n = 1;
	prov.max_tokens_field = (char *)"max_tokens";
	memset(&model, 0, sizeof(model));
	model.name = (char *)name;
	model.max_tokens = max_tokens;
	memset(&cand, 0, sizeof(cand));
	snprintf(cand.name, sizeof(cand.name), "%s", name);
	snprintf(cand.upstream, sizeof(cand.upstream), "%s", upstream);
	cand.provider = &prov;
	cand.model = &model;
	/* As plan_lookup sets it, with the default default_max_tokens. */
	cand.max_tokens = max_tokens > 0 ? max_tokens : 4096;
}
#endif /* FIXTURE_HEADERS_ONLY */

#endif
