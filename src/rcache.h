/* rcache.h: the exact response cache of chat answers (opt-in per model). */
#ifndef LLMGATE_RCACHE_H
#define LLMGATE_RCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"
#include "provider.h"

struct json_object;
struct request;
struct plan;
struct store;
struct rc_asm;
struct sem;

#define RCACHE_KEY_LEN	32	/* SHA-256 */
/* The largest answer kept (bytes of its JSON); larger ones are not stored. */
#define RCACHE_ANSWER_MAX	(1L << 20)

/* What the cache does for one request. */
enum rcache_mode {
	RCACHE_OFF,	/* the model has no cache_ttl: no header either */
	RCACHE_BYPASS,	/* no-store, not deterministic, agent cache off */
	RCACHE_STORE,	/* Cache-Control: no-cache: fresh, then stored */
	RCACHE_USE,	/* read, and store on a miss */
};

/* One request's cache state, on the handler's stack. */
struct rcache {
	enum rcache_mode	 mode;
	int			 hit;		/* served from the cache */
	unsigned char		 key[RCACHE_KEY_LEN];
	long			 ttl;		/* s */
	money_t			 hit_price;	/* per 1M tokens */
	int64_t			 max_bytes;	/* the whole cache */
	struct usage		 usage;		/* a hit's: the original usage */
	int			 estimated;	/* a hit's usage was estimated */
	struct json_object	*reply;		/* a whole answer kept */
	struct rc_asm		*as;		/* a stream's, assembled */
	int			 unfit;		/* not kept: too big, n > 1... */
	struct sem		*sem;		/* semantic.c's, or NULL: off */
	int			 semantic;	/* the hit was by similarity */
};

/*
 * The canonical key of a request into out: SHA-256 of the scope, the
 * model and every member of req except model, stream, stream_options,
 * user, metadata and store, objects with their members sorted. 0, or -1
 * (out of memory, or nesting deeper than 64).
 */
int	rcache_key(const char *scope, const char *model, struct json_object *req,
	    unsigned char out[RCACHE_KEY_LEN]);

/*
 * Decide for a planned request (after the policy step: req is what goes
 * upstream) and set X-Llmgate-Cache when the model caches. Never fails:
 * trouble turns the cache off for the request.
 */
void	rcache_begin(struct rcache *, struct request *, const struct plan *,
	    struct json_object *req);
/*
 * Look the request up: 1 with the stored reply in *reply (caller owns it)
 * and rc->usage set, 0 on a miss (header "miss"), -1 when the store
 * failed (treated as a miss).
 */
int	rcache_get(struct rcache *, struct store *, struct json_object **);
/* X-Llmgate-Cache: hit or miss once the lookup is done. */
void	rcache_mark(struct rcache *, struct request *);
/* Keep a stream chunk (before the output guard changes it). */
void	rcache_chunk(struct rcache *, struct json_object *);
/* Keep a whole reply (before the output guard changes it). */
void	rcache_reply(struct rcache *, struct json_object *);
/*
 * Store what was kept with its usage: 0 when stored, -1 when not (not
 * kept, too big, or the store failed: logged, never fatal).
 */
int	rcache_put(struct rcache *, struct store *, const struct usage *,
	    int estimated);
/*
 * The chunks replaying a reply as a stream (a JSON array the caller owns):
 * role and content, tool calls, finish, and the usage chunk if asked.
 */
struct json_object *rcache_chunks(struct json_object *reply,
	    const struct usage *, int include_usage);
/* What a hit costs: hit_price per 1M tokens of the original usage. */
money_t	rcache_hit_cost(const struct rcache *);
void	rcache_free(struct rcache *);

/* What the cache holds: the totals record and a count of the databases. */
struct rcache_stats {
	int64_t	 total_bytes, total_entries;	/* the totals record */
	int64_t	 index_bytes, index_entries;	/* summed over the age index */
	int64_t	 heads;				/* records in rcache.db */
	int64_t	 orphans;	/* index entries without a head */
};
/* Walk the cache's databases (one read transaction): a store_rc. */
int	rcache_stats(struct store *, struct rcache_stats *);

#endif
