/* semantic.h: the semantic cache: exact-cache answers reused for similar prompts. */
#ifndef LLMGATE_SEMANTIC_H
#define LLMGATE_SEMANTIC_H

#include <stddef.h>
#include <stdint.h>

#include "money.h"
#include "rcache.h"

struct json_object;
struct store;

/* Dimensions a vector may have: one record stays under STORE_VALUE_MAX. */
#define SEM_DIM_MAX	4000
/* Bytes of prompt text embedded at most; a longer prompt is not looked up. */
#define SEM_TEXT_MAX	16384

/*
 * A vector as stored: normalised to unit length, then quantised to int8
 * against its largest component (q = round(127 x / max |x|)); norm is
 * the length of q, so the cosine of two is dot(q, q') / (norm norm').
 */
struct sem_vec {
	uint16_t	 dim;
	float		 norm;
	int8_t		 q[SEM_DIM_MAX];
};

/* One request's semantic state (rcache.sem), on the heap. */
struct sem {
	unsigned char	 bucket[RCACHE_KEY_LEN];	/* scope, model, context */
	char		*text;		/* the last user message */
	double		 threshold;
	long		 max_entries;
	long		 ttl;		/* s, the exact entry's */
	int		 have_vec;	/* vec holds the prompt's */
	struct sem_vec	 vec;
	double		 similarity;	/* of a hit */
};

struct config;
struct plan;

/*
 * What a request for plan may spend on the semantic cache's embedding, at
 * most (prompt: its tokens' bound; only the last message is embedded, at
 * most SEM_TEXT_MAX bytes): the dearest candidate of the embeddings
 * model's plan, reserved with the request so that a prepaid balance or a
 * budget holds the embedding too. 0 when the model has no semantic cache.
 */
money_t	semantic_reserve(const struct config *, const struct plan *,
	    int64_t);

/*
 * Quantise an array of numbers into v: 0, or -1 when it is empty, longer
 * than SEM_DIM_MAX, holds a non-number, or is all zeros.
 */
int	semantic_encode(struct json_object *, struct sem_vec *);
/* The same from floats (tests and the benchmark). */
int	semantic_encode_f(const float *, size_t, struct sem_vec *);
/* The cosine similarity of two encoded vectors (0 when dims differ). */
double	semantic_cosine(const struct sem_vec *, const struct sem_vec *);

/*
 * The text a request is looked up by: its last message, which must be
 * the user's, as text (string content, or its text parts joined by
 * newlines). NULL (no semantic lookup) when it is not the user's, holds
 * an image or other non-text part, is empty, or is longer than
 * SEM_TEXT_MAX. The caller owns the string.
 */
char	*semantic_text(struct json_object *req);

/*
 * The state of a request the exact cache reads (RCACHE_USE): bucket is
 * the SHA-256 of the scope, the model and the request without its last
 * message (system prompt, history, tools, parameters must match exactly;
 * only the last user message is compared by similarity). NULL when the
 * request has no text to look up, or out of memory.
 */
struct sem *semantic_begin(const char *scope, const char *model,
	    struct json_object *req, double threshold, long max_entries,
	    long ttl);
/*
 * Find the closest live vector of s's bucket with cosine >= threshold
 * (one read transaction over at most max_entries records): 1 with the
 * answer's exact key in key, 0 when none, -1 when the store failed.
 */
int	semantic_find(struct sem *, struct store *,
	    unsigned char key[RCACHE_KEY_LEN]);
/*
 * Store s's vector for the answer stored under key (one write
 * transaction): the bucket's expired vectors and any of the same answer
 * go, and the oldest beyond max_entries. Trouble is logged, never fatal.
 */
void	semantic_put(struct sem *, struct store *,
	    const unsigned char key[RCACHE_KEY_LEN]);
void	semantic_free(struct sem *);

/* Records and bytes of the semantic database (one read transaction). */
int	semantic_stats(struct store *, int64_t *records, int64_t *bytes);

#endif
