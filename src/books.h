/* books.h: the check of the books: every key's balance against its credits and debits, its ledger and the cost of its usage rows, over a live store. */
#ifndef LLMGATE_BOOKS_H
#define LLMGATE_BOOKS_H

#include "money.h"

struct json_object;
struct store;

/* What a check found. */
struct books {
	long			 keys;
	long			 usage_rows;
	long			 ledger_entries;
	long			 busy;		/* keys written meanwhile, not compared */
	long			 over_reservation;	/* rows so flagged */
	money_t			 usage_cost;	/* rows of keys, not the master's */
	money_t			 ledger_debits;	/* of rows still there */
	money_t			 purged_debits;	/* of rows purged */
	struct json_object	*problems;	/* strings: the books disagree */
	/* Books that hold but say money went past a limit: strings too. */
	struct json_object	*warnings;
};

/*
 * For every key: balance == credited - debited == the sum of its ledger,
 * and its ledger debits == the cost of its usage rows (rows older than
 * the oldest one left, i.e. purged, aside). Reads in short transactions
 * beside a running gateway: a key written meanwhile is counted in busy,
 * not compared. A store_rc; the caller frees b with books_free, also on
 * failure. Reclaiming dead processes' reservations first is the caller's.
 */
int	books_check(struct store *, struct books *);
void	books_free(struct books *);

#endif
