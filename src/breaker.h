/*
 * breaker.h: circuit breakers per deployment (provider + upstream model),
 * shared by every process through one mmap'd file in data_dir.
 */
#ifndef LLMGATE_BREAKER_H
#define LLMGATE_BREAKER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct candidate;
struct provider_error;
struct upstream_resp;

/* The region's file in data_dir. */
#define BREAKER_FILE		"breakers"
/* Deployments tracked at once (the table is fixed; see breaker.c). */
#define BREAKER_SLOTS		512
#define BREAKER_PROBES_MAX	8
#define BREAKER_PROVIDER_MAX	64
#define BREAKER_MODEL_MAX	192
#define BREAKER_ERROR_MAX	160
/* "PROVIDER/MODEL" as listings print it. */
#define BREAKER_DEPLOYMENT_MAX	(BREAKER_PROVIDER_MAX + BREAKER_MODEL_MAX + 2)

enum breaker_state {
	BREAKER_CLOSED,		/* requests flow; failures are counted */
	BREAKER_OPEN,		/* skipped until next_probe */
	BREAKER_HALF_OPEN,	/* a few probe requests decide */
	BREAKER__MAX
};

extern const char *const breaker_state_names[BREAKER__MAX];

/* What breaker_admit says about one deployment. */
enum breaker_verdict {
	BREAKER_ALLOW,		/* closed or untracked: go on, retries too */
	BREAKER_PROBE,		/* half-open: one probe, one try */
	BREAKER_SKIP,		/* open: go straight to the next candidate */
};

/* How one attempt went, as the breaker counts it. */
enum breaker_outcome {
	BREAKER_SUCCESS,	/* the upstream answered (2xx) */
	BREAKER_FAILURE,	/* timeout, connection error, 5xx, 408, 429 */
	BREAKER_NEUTRAL,	/* the client's 4xx, our credentials, no call */
};

/* The effective thresholds of one deployment (its provider's, resolved). */
struct breaker_params {
	long	 failures;	/* consecutive failures that open */
	long	 failure_rate;	/* percent of the window that opens; 0: off */
	long	 window_ms;	/* the failure-rate window */
	long	 min_requests;	/* the window counts from this many requests */
	long	 open_ms;	/* open this long before probes */
	long	 probes;	/* probes in flight at once when half-open */
	long	 successes;	/* probe successes in a row that close */
	long	 lease_ms;	/* a probe that never reports frees its place */
};

struct breaker_region;

/* One admission: carried from breaker_admit to each breaker_record. */
struct breaker_ticket {
	struct breaker_region	*region;	/* NULL: breakers off here */
	struct breaker_params	 p;
	const struct provider_cfg *provider;	/* for redaction and logs */
	enum breaker_verdict	 verdict;
	uint64_t		 hash;
	int			 slot;		/* hint; -1 none */
	uint32_t		 probe;		/* the probe's id; 0: none */
	long			 retry_after;	/* SKIP: s to the next probe */
	char			 prov[BREAKER_PROVIDER_MAX];
	char			 model[BREAKER_MODEL_MAX];
	int64_t			 t_ms;		/* when admitted (clock) */
};

/* A copy of one slot, for listings. */
struct breaker_info {
	char			 provider[BREAKER_PROVIDER_MAX];
	char			 model[BREAKER_MODEL_MAX];
	enum breaker_state	 state;		/* as a caller meets it now */
	uint32_t		 consecutive_failures;
	uint32_t		 consecutive_successes;	/* half-open probes */
	uint32_t		 probes_in_flight;
	uint32_t		 trips;
	uint64_t		 requests, failures;
	uint32_t		 window_requests, window_failures;
	int64_t			 opened_ms;	/* 0: never */
	int64_t			 next_probe_ms;	/* open: when probes begin */
	int64_t			 changed_ms;
	int64_t			 used_ms;
	int64_t			 last_latency_ms, avg_latency_ms; /* -1: none */
	int64_t			 last_error_ms;	/* 0: none */
	char			 last_error[BREAKER_ERROR_MAX];
};

/* Totals of the region's header. */
struct breaker_stats {
	uint32_t	 slots, used;
	uint64_t	 evictions;	/* closed slots reused for others */
	uint64_t	 overflows;	/* records dropped: every slot open */
	uint64_t	 dead_owners;	/* locks taken over from dead holders */
	uint64_t	 lock_timeouts;	/* calls that passed the breaker over */
};

/*
 * Map the open file fd (named path in messages) shared, size bytes, group
 * read-write and its blocks reserved, so that a full disk fails here and
 * not as SIGBUS later. MAP_FAILED with why in err. The breakers and the
 * deployments' turn counters (call.c) live in such files.
 */
void		*shared_file_map(int, const char *, size_t, char *, size_t);

/* The clock in ms since the epoch; tests inject their own (NULL: real). */
void		 breaker_set_clock(int64_t (*)(void));
int64_t		 breaker_now_ms(void);

/* The effective parameters of a provider (its own, over [gateway]'s). */
void		 breaker_params_of(const struct provider_cfg *,
		    struct breaker_params *);

/*
 * Open (create, or rebuild when its layout is not this build's) the
 * region at path; NULL with why in err. The caller owns it; close with
 * breaker_region_close.
 */
struct breaker_region *breaker_region_open(const char *path, char *err,
		    size_t errlen);
void		 breaker_region_close(struct breaker_region *);
/* The process's own region in cfg's data_dir, attached once; NULL: off. */
struct breaker_region *breaker_process_region(const struct config *);

/* The state machine on a region, clock from breaker_now_ms. */
enum breaker_verdict breaker_region_admit(struct breaker_region *,
		    const struct breaker_params *, const char *provider,
		    const char *model, struct breaker_ticket *);
/*
 * Count one attempt of an admitted ticket; error is a short redacted
 * text (may be NULL). Returns 1 when the request must not try this
 * deployment again (it is open, or the ticket was its one probe).
 */
int		 breaker_region_record(struct breaker_ticket *,
		    enum breaker_outcome, int64_t latency_ms,
		    const char *error);
/* Copies of the used slots (at most max) into out; returns how many. */
size_t		 breaker_region_list(struct breaker_region *,
		    struct breaker_info *, size_t max, struct breaker_stats *);
/*
 * Close the breakers of deployment "PROVIDER/MODEL" or of every model of
 * "PROVIDER" (NULL: all); returns how many slots were reset, -1 on error.
 */
int		 breaker_region_reset(struct breaker_region *, const char *);
/* Tests: take the lock and keep it (a holder about to be killed). */
int		 breaker_region_lock(struct breaker_region *);
void		 breaker_region_unlock(struct breaker_region *);

/* What the route loops call (the hooks). */
enum breaker_verdict breaker_admit(const struct config *,
		    const struct candidate *, struct breaker_ticket *);
/*
 * Count one attempt as the call loop judged it (call.c); first_byte_ms
 * is the upstream's time to its first byte (0: none), error the
 * gateway's own short words for a failure (redacted here; may be NULL).
 * Returns as breaker_region_record.
 */
int		 breaker_record(struct breaker_ticket *, enum breaker_outcome,
		    double first_byte_ms, const char *error);
/*
 * After a SKIP: the 503 circuit_open the client gets when no candidate
 * was tried; keeps the shortest Retry-After of the skipped candidates.
 */
void		 breaker_refusal(const struct breaker_ticket *,
		    struct provider_error *, int *status, long *retry_after);

#endif
