/*
 * metrics.h: the gateway's Prometheus counters, shared by every process
 * through one mapped file in data_dir, and their text exposition.
 */
#ifndef LLMGATE_METRICS_H
#define LLMGATE_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct buf;
struct config;
struct store;
struct usage_row;

/* The file in data_dir. */
#define METRICS_FILE		"metrics"
/* Label sets counted at once; the rest fold into one "other" series. */
#define METRICS_SERIES		1024
/* Processes whose workers and requests in flight are shown at once. */
#define METRICS_PROCS		512
/* Upper bounds of the latency histograms, in ms (+Inf follows). */
#define METRICS_BUCKETS		12

/*
 * The data_dir (and whether key names are labels) of cfg for this
 * process; set once at start, before any other call. NULL: metrics off.
 * create: the file may be made here (the gateway); 0 uses one the
 * gateway made (llmgate-admin, maybe run as another user).
 */
void	metrics_init(const struct config *, int create);

/*
 * Count one request as recorded in its usage row: called exactly where
 * the row is written once (account_settle, and the reclaim of a dead
 * process's request). Never fails; a missing file only loses counts.
 */
void	metrics_record(const struct usage_row *);

/* The response cache's answer to a request (rcache.c): X-Llmgate-Cache. */
enum metrics_cache { METRICS_CACHE_HIT, METRICS_CACHE_MISS,
	METRICS_CACHE_BYPASS, METRICS_CACHE__MAX };
void	metrics_cache(enum metrics_cache);
/* The semantic cache's lookups after an exact miss (semantic.c). */
enum metrics_semantic { METRICS_SEMANTIC_HIT, METRICS_SEMANTIC_MISS,
	METRICS_SEMANTIC_ERROR, METRICS_SEMANTIC__MAX };
void	metrics_semantic(enum metrics_semantic);

/* The calling process's worker threads: one started (+1) or left (-1). */
void	metrics_worker(int);
/* A worker took (+1) or finished (-1) a request. */
void	metrics_busy(int);
/* A model request (chat, embeddings, images) began (+1) or ended (-1). */
void	metrics_inflight(int);

/* Totals of the file read at a scrape (for tests and the exposition). */
struct metrics_totals {
	uint64_t	 requests;
	uint64_t	 series, overflows;
	int64_t		 workers, busy, inflight;
	uint32_t	 procs;
};

/*
 * The exposition of every series into out (text format 0.0.4): the
 * shared counters, the breakers, the agents' budgets read from st (may
 * be NULL), the store's and fallback file's health. 0, or -1 when the
 * file cannot be had (out then holds the process's own gauges only).
 */
int	metrics_expose(const struct config *, struct store *, struct buf *,
	    struct metrics_totals *);

/*
 * Is addr (an IPv4 or IPv6 address as text) within one of the
 * comma-separated addresses or CIDR blocks of list?
 */
int	metrics_addr_allowed(const char *list, const char *addr);
/* Is every item of list an address or CIDR block? 0 with the bad one in why. */
int	metrics_allow_valid(const char *list, char *why, size_t whylen);

#endif
