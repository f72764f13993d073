/* money.h: money as integer micro-dollars (int64); never a double. */
#ifndef LLMGATE_MONEY_H
#define LLMGATE_MONEY_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t money_t;		/* micro-USD */

#define MONEY_PER_USD	((money_t)1000000)
#define TOKENS_PER_PRICE ((money_t)1000000)	/* prices are per 1M tokens */

/* Largest price accepted in config: $10,000 per 1M tokens. */
#define MONEY_PRICE_MAX	(10000LL * MONEY_PER_USD)
/* Largest token count priced; keeps tokens * price inside int64. */
#define MONEY_TOKENS_MAX 900000000LL

/*
 * Cost of tokens at price (micro-USD per 1M tokens), rounded up to the
 * next micro-dollar so that a request is never billed at less than cost.
 */
static inline money_t
money_cost(int64_t tokens, money_t price_per_m)
{
	if (tokens <= 0 || price_per_m <= 0)
		return 0;
	if (tokens > MONEY_TOKENS_MAX)
		tokens = MONEY_TOKENS_MAX;
	return (tokens * price_per_m + TOKENS_PER_PRICE - 1) / TOKENS_PER_PRICE;
}

/*
 * A sum of several tokens * price products rounded up once, so that a
 * request priced in parts (prompt, cached prompt, completion) costs the
 * same as the exact total rounded up.
 */
struct money_sum {
	money_t	 whole;		/* micro-USD */
	int64_t	 frac;		/* millionths of a micro-USD */
};

static inline void
money_sum_add(struct money_sum *s, int64_t tokens, money_t price_per_m)
{
	if (tokens <= 0 || price_per_m <= 0)
		return;
	if (tokens > MONEY_TOKENS_MAX)
		tokens = MONEY_TOKENS_MAX;
	s->whole += tokens * price_per_m / TOKENS_PER_PRICE;
	s->frac += tokens * price_per_m % TOKENS_PER_PRICE;
}

static inline money_t
money_sum_total(const struct money_sum *s)
{
	return s->whole + (s->frac + TOKENS_PER_PRICE - 1) / TOKENS_PER_PRICE;
}

int	money_parse_usd(const char *, money_t *);
void	money_format_usd(money_t, char *, size_t);

#endif
