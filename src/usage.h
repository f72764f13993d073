/* usage.h: the record of one request (tokens, cost, outcome), its price, the usage log and its JSONL fallback. */
#ifndef LLMGATE_USAGE_H
#define LLMGATE_USAGE_H

#include <stdint.h>
#include <time.h>

#include "money.h"
#include "provider.h"

struct config;
struct store;
struct store_txn;
struct json_object;

/*
 * One request as stored (SDB_USAGE); fixed layout, version first. Version
 * 1 rows end after route (USAGE_V1_SIZE bytes), version 2 rows after
 * reserved (USAGE_V2_SIZE), version 3 after spare3 (USAGE_V3_SIZE); all
 * read as current rows with every later field zero.
 */
#define USAGE_VERSION	4
#define USAGE_V1_SIZE	848
#define USAGE_V2_SIZE	864
#define USAGE_V3_SIZE	952
/* Guardrail kinds a row has room for (DET__MAX of detect.h, at most). */
#define USAGE_GUARD_KINDS	16
/*
 * The policy_action taken on kind k, four bits a kind. A row stays under
 * Berkeley DB's overflow size for 4 KiB pages (1009 bytes): a larger row
 * would take a page of its own, four times the disk.
 */
#define USAGE_GUARD_ACTION(u, k)	\
	((unsigned)((u)->guard_actions >> (4 * (k))) & 0xfu)
#define USAGE_GUARD_SET(u, k, a)	\
	((u)->guard_actions |= (uint64_t)((a) & 0xfu) << (4 * (k)))

/* usage_row.flags */
#define USAGE_OVER_RESERVATION	0x01u	/* cost more than was reserved */
#define USAGE_COST_REPORTED	0x02u	/* the provider priced it */
#define USAGE_UNPRICED		0x04u	/* no [model] priced it (cost 0) */
#define USAGE_CACHE_HIT		0x08u	/* served from the response cache (rcache.c) */
#define USAGE_SEMANTIC		0x10u	/* the semantic cache's: its embeddings
					   call, or a hit by similarity */

struct usage_row {
	uint8_t		 version;
	uint8_t		 stream;
	uint8_t		 client_aborted;
	uint8_t		 estimated;	/* tokens estimated, not reported */
	uint16_t	 status;
	uint16_t	 attempts;
	int64_t		 time_us;	/* when the request started */
	uint64_t	 id;		/* unique with time_us */
	uint64_t	 key_id;	/* 0: the master key */
	uint64_t	 reservation;	/* released when settled; 0: none */
	int64_t		 prompt;
	int64_t		 completion;
	int64_t		 cached;
	money_t		 cost;
	int32_t		 latency_ms;
	int32_t		 ttft_ms;	/* streams: time to first token */
	char		 request_id[32];
	char		 key_name[64];
	char		 agent[64];
	char		 tier[16];
	char		 requested[256];	/* model the client asked for */
	char		 served[256];	/* model that answered, or "" */
	char		 provider[64];
	char		 route[16];	/* chat, embeddings, images */
	/* Version 2. */
	uint8_t		 worker_died;	/* billed by a reclaim: the process died */
	uint8_t		 spare[3];	/* zero */
	uint32_t	 flags;		/* USAGE_* */
	money_t		 reserved;	/* the worst case admitted; 0: none */
	/* Version 3. */
	char		 traceparent[56];	/* as sent upstream: the trace id
						   and the gateway's span; "" */
	char		 trace_parent[17];	/* the client's span id, or "" */
	char		 key_prefix[11];	/* the key's listed prefix ("sk-" + 7) */
	uint8_t		 spare3[4];	/* zero */
	/* Version 4: the guardrails (policy.c); names, never the text. */
	char		 policy[24];	/* the [policy] applied, or "" */
	uint16_t	 guard_found;	/* DET_BIT kinds found in the request */
	uint16_t	 guard_acted;	/* 1 << policy_action taken on them */
	uint16_t	 guard_out_found;	/* DET_BIT kinds in the answer */
	uint16_t	 guard_out_acted;	/* 1 << policy_action on those */
	uint64_t	 guard_actions;	/* per kind found: USAGE_GUARD_ACTION */
	int32_t		 injection;	/* the prompt's injection score */
	/*
	 * Prompt tokens written to the provider's prompt cache (part of
	 * prompt, like cached). In what was spare4, zero in the rows written
	 * before: they read as 0, so no version of its own.
	 */
	int32_t		 cache_write;
};

money_t	usage_cost(const struct candidate *, const struct usage *);

/* The cache-write count a row holds (clamped to 0..INT32_MAX). */
int32_t	usage_cache_write(int64_t);

/* The one "usage" log line of a request. */
void	usage_log(const struct usage_row *);

/*
 * Insert a row in a transaction, as the current version; STORE_EXISTS
 * when (time_us, id) is taken.
 */
int	usage_put(struct store_txn *, const struct usage_row *);

/* A stored row of either version as the current one: 0, or -1. */
int	usage_rec(const void *, size_t, struct usage_row *);

/* The row as one JSON object (caller owns it) and back. */
struct json_object *usage_to_json(const struct usage_row *);
int	usage_from_json(struct json_object *, struct usage_row *);

/* The usage row of a transaction stuck when the process exits goes to
 * cfg's fallback file (store_rescue); set once at start. */
void	usage_set_rescue(const struct config *);
/* The "usage LOST-STORE row={...}" error log line. */
void	usage_lost(const struct usage_row *);

/* Append the row to the JSONL fallback file whole (a short write is cut
 * back); -1 when even that fails, and the row is then a LOST-STORE line. */
int	usage_fallback_write(const struct config *, const struct usage_row *);

/* Counts of one replay of the fallback file. */
struct replay_result {
	long	 imported;	/* rows settled into the store */
	long	 duplicate;	/* already there: skipped */
	long	 bad;		/* lines that are not a usage row */
	char	 error[512];	/* why it stopped, when it did */
};
/*
 * Settle every row of the fallback file into the store exactly once
 * (ledger debit, spend, usage row in one transaction per row), then
 * rename the file aside. Returns a store_rc.
 */
int	usage_replay(struct store *, const struct config *, const char *,
	    struct replay_result *);

typedef int (*usage_fn)(void *, const struct usage_row *);
/* Rows with from_us <= time_us < to_us, oldest first. */
int	usage_scan(struct store *, int64_t, int64_t, usage_fn, void *);
/* Delete usage rows older than before_us (ledger and spend stay); count in *n. */
int	usage_purge(struct store *, int64_t, long *);

#endif
