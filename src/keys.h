/* keys.h: client API keys: random secrets stored only as SHA-256 hashes, with owner, tier and limits. */
#ifndef LLMGATE_KEYS_H
#define LLMGATE_KEYS_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "money.h"

struct json_object;
struct store;

#define KEY_SECRET_LEN	51	/* "sk-" + 48 letters and digits */
#define KEY_PREFIX_LEN	10	/* "sk-" + 7: shown in listings */
#define KEY_NAME_MAX	64
#define KEY_AGENT_MAX	64
#define KEY_TIER_MAX	16
#define KEY_MODELS_MAX	512	/* models and policy together */
#define KEY_POLICY_MAX	32	/* a [policy] name and its NUL */
#define KEY_HASH_LEN	32
#define KEY_REASON_MAX	127	/* a ledger entry's reason */
#define KEY_CONCURRENT_MAX 1000000	/* largest max_concurrent */

/* One client key as stored (SDB_KEYS); fixed layout, version first. */
struct key_rec {
	uint8_t		 version;
	uint8_t		 disabled;	/* 1: disabled; KEY_DELETED: deleted */
	uint8_t		 prepaid;	/* balance enforced: 402 when short */
	uint8_t		 agent_header;	/* the key may name its agent (X-Agent) */
	/*
	 * Requests in flight at once; 0: no limit. It takes the four bytes
	 * that were alignment padding before id, which every writer zeroed:
	 * a key stored before it reads 0, and the layout is unchanged.
	 */
	int32_t		 max_concurrent;
	uint64_t	 id;
	int64_t		 created;	/* unix s */
	int64_t		 expires;	/* unix s; 0: never */
	int64_t		 rpm;		/* requests per minute; 0: the tier's */
	int64_t		 tpm;		/* tokens per minute; 0: the tier's */
	money_t		 daily_budget;	/* micro-USD per UTC day; 0: none */
	money_t		 monthly_budget;	/* micro-USD per UTC month; 0: none */
	unsigned char	 hash[KEY_HASH_LEN];
	char		 prefix[KEY_PREFIX_LEN + 1];
	char		 name[KEY_NAME_MAX];
	char		 agent[KEY_AGENT_MAX];	/* "": the key's name */
	char		 tier[KEY_TIER_MAX];	/* "": the agent's tier */
	/*
	 * The model globs and the key's [policy] share the 512 bytes the
	 * globs alone once had, so that the record's layout is unchanged:
	 * every writer zeroed the field, and a key stored before reads no
	 * policy (keys.c checks the policy bytes as it reads a record).
	 */
	char		 models[KEY_MODELS_MAX - KEY_POLICY_MAX];	/* globs;
						   "": every model */
	char		 policy[KEY_POLICY_MAX];	/* "": the agent's */
};

/*
 * A deleted key stays as a record (its id names its usage rows, ledger
 * and balance, which are kept) with disabled = KEY_DELETED and no secret:
 * its secrets are gone from the hash index, its name is free again, and
 * listings leave it out.
 */
#define KEY_DELETED	2
/* Longest grace period of a rotated secret: 30 days. */
#define KEY_GRACE_MAX	(30 * 86400)

/* Which field of a key breaks the rules, and why. */
struct keys_fault {
	const char	*field;		/* "name", "agent", "tier", "models",
					   "max_concurrent", "policy" */
	char		 why[200];	/* follows the field's name */
};

/*
 * The rules for a key's name, agent, tier and model globs, the same for
 * llmgate-admin and the admin routes: 0, or -1 with f filled. keys_create
 * refuses a key that breaks them.
 */
int	keys_check(const struct key_rec *, struct keys_fault *);
/* Add a glob to a space-separated list of len bytes; -1 when it won't fit. */
int	keys_models_add(char *, size_t, const char *);
/* NULL when the text may be a ledger reason, else why not. */
const char *keys_check_reason(const char *);

/* SHA-256 of a secret. */
void	keys_hash(const char *, unsigned char[KEY_HASH_LEN]);

/*
 * Create a key from the fields set in rec (name, agent, tier, models,
 * limits, expiry, flags); fills id, hash, prefix and created, and writes
 * the secret, shown once, to secret (KEY_SECRET_LEN + 1 bytes).
 */
int	keys_create(struct store *, struct key_rec *, char *, size_t);
/* The key whose secret this is: STORE_OK, STORE_NOTFOUND or an error. */
int	keys_authenticate(struct store *, const char *, struct key_rec *);
int	keys_get(struct store *, uint64_t, struct key_rec *);
/* A key by id ("12"), by name or by its listed prefix ("sk-AbC1234"). */
int	keys_find(struct store *, const char *, struct key_rec *);
/*
 * Replace a key's stored fields (id and hash unchanged): STORE_OK,
 * STORE_NOTFOUND (gone or deleted), STORE_EXISTS (another key has the
 * new name), or STORE_ERROR (also when the key was rotated meanwhile).
 */
int	keys_update(struct store *, const struct key_rec *);
/*
 * A new secret for key id, written to secret (KEY_SECRET_LEN + 1 bytes,
 * shown once); the id, and with it the books, stay. The secret replaced
 * stops at once when grace_s is 0, else it works grace_s seconds more;
 * older secrets still in a grace period stop at once. *out is the key
 * as rotated. STORE_OK, STORE_NOTFOUND (no such key, or deleted) or an
 * error.
 */
int	keys_rotate(struct store *, uint64_t, int64_t, struct key_rec *,
	    char *, size_t);
/* What stops a key from being deleted: money held or owed. */
struct keys_held {
	long		 requests;	/* reservations in flight */
	money_t		 reserved;	/* what they hold */
	money_t		 balance;	/* the key's balance */
	int		 prepaid;
};
/*
 * Delete key id, unless money is held: requests in flight (reservations),
 * a positive balance (money paid in), or a prepaid key overdrawn; then
 * STORE_EXISTS with *h saying which. Its usage rows, ledger and balance
 * stay; its secrets stop at once (401). STORE_OK, STORE_NOTFOUND, or an
 * error. The check and the deletion are one transaction, and admission
 * reads the key record in its own: no request is admitted after.
 */
int	keys_delete(struct store *, uint64_t, struct keys_held *);
typedef int (*keys_fn)(void *, const struct key_rec *);
/* Every key but deleted ones in id order; the callback returns 0 to go on. */
int	keys_list(struct store *, keys_fn, void *);
/* Nonzero when the key may use this model name. */
int	keys_model_allowed(const struct key_rec *, const char *);
/* "active", "disabled", "expired" or "deleted" at time now. */
const char *keys_state(const struct key_rec *, time_t);
/*
 * The key as the admin routes and llmgate-admin show it, never its hash
 * or secret; with its "state" at now unless now is 0. The caller owns
 * the result (NULL when out of memory).
 */
struct json_object *keys_to_json(const struct key_rec *, time_t);

#endif
