/*
 * provider-keys.c: a provider's pool of API keys. Keys are taken in turn
 * (round robin: the caller's turn, counted by every process); a key the provider refuses (401, 403,
 * quota exhausted) is set aside for key_cooldown_s, then one request
 * probes it again. The set-aside is shared by every process: each key of
 * a pool is a breaker slot (breaker.c) named "#key:FINGERPRINT" under its
 * provider, opened by one refusal and closed by one success, so a revoked
 * key is sent once per cooldown, whatever process asks. A provider with
 * one key keeps no state: there is nothing to choose.
 */
#include <stdio.h>
#include <string.h>

#include "breaker.h"
#include "log.h"
#include "provider.h"

/* The breaker slot name of key i of p. */
static void
slot_name(const struct provider_cfg *p, size_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s%s", PROVIDER_KEY_SLOT, p->key_fp[i]);
}

/* A key's breaker: one refusal opens it, one success closes it. */
static void
key_params(const struct provider_cfg *p, struct breaker_params *bp)
{
	breaker_params_of(p, bp);
	bp->failures = 1;
	bp->failure_rate = 0;
	bp->open_ms = p->key_cooldown * 1000;
	bp->probes = 1;
	bp->successes = 1;
}

int
provider_key_pool(const struct provider_cfg *p)
{
	return p->nkeys > 1;
}

int
provider_key_pick(const struct config *cfg, const struct provider_cfg *p,
    uint32_t tried, uint64_t turn, struct provider_key *k)
{
	struct breaker_region	*region;
	struct breaker_params	 bp;
	char			 name[BREAKER_MODEL_MAX];
	size_t			 n = p->nkeys, start, j, i;
	long			 soonest = 0;

	memset(k, 0, sizeof(*k));
	k->provider = p;
	k->index = -1;
	if (!provider_key_pool(p))
		return 0;
	region = breaker_process_region(cfg);
	key_params(p, &bp);
	start = (size_t)(turn % n);
	for (j = 0; j < n; j++) {
		i = (start + j) % n;
		if (i < 32 && (tried & (1u << i)))
			continue;
		slot_name(p, i, name, sizeof(name));
		if (breaker_region_admit(region, &bp, p->name, name,
		    &k->brk) != BREAKER_SKIP) {
			k->brk.provider = p;
			k->index = (int)i;
			return 0;
		}
		if (soonest == 0 || k->brk.retry_after < soonest)
			soonest = k->brk.retry_after;
	}
	memset(&k->brk, 0, sizeof(k->brk));
	k->retry_after = soonest;
	return -1;
}

const char *
provider_key_secret(const struct provider_key *k)
{
	return k->index >= 0 ? k->provider->keys[k->index] : NULL;
}

void
provider_key_report(struct provider_key *k, enum provider_key_outcome o,
    const char *why)
{
	static const enum breaker_outcome map[] = {
		[KEY_OK] = BREAKER_SUCCESS,
		[KEY_REFUSED] = BREAKER_FAILURE,
		[KEY_NEUTRAL] = BREAKER_NEUTRAL,
	};
	const struct provider_cfg	*p = k->provider;

	if (k->index < 0)
		return;
	if (o == KEY_REFUSED)
		log_warn("provider %s: key %d (%s) refused (%s): set aside for "
		    "%ld s", p->name, k->index + 1, p->key_fp[k->index],
		    why != NULL ? why : "refused", p->key_cooldown);
	(void)breaker_record(&k->brk, map[o], 0, why);
	k->index = -1;
}

int
provider_key_slot(const struct provider_cfg *p, const char *slot)
{
	size_t	 i, n = strlen(PROVIDER_KEY_SLOT);

	if (strncmp(slot, PROVIDER_KEY_SLOT, n) != 0)
		return -2;
	for (i = 0; i < p->nkeys; i++)
		if (strcmp(slot + n, p->key_fp[i]) == 0)
			return (int)i;
	return -1;
}
