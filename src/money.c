/* money.c: parse and print amounts of US dollars as micro-dollars. */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>

#include "money.h"

/*
 * Parse a plain decimal such as "2.50" or "0.000001" into micro-USD.
 * No sign, exponent or more than six decimals: returns -1 on any of them.
 */
int
money_parse_usd(const char *s, money_t *out)
{
	money_t	 whole = 0, frac = 0;
	int	 digits = 0, fdigits = 0;

	for (; isdigit((unsigned char)*s); s++, digits++) {
		if (whole > (MONEY_PRICE_MAX / MONEY_PER_USD))
			return -1;
		whole = whole * 10 + (*s - '0');
	}
	if (*s == '.') {
		for (s++; isdigit((unsigned char)*s); s++, fdigits++) {
			if (fdigits == 6)
				return -1;
			frac = frac * 10 + (*s - '0');
		}
	}
	if (*s != '\0' || digits + fdigits == 0)
		return -1;
	for (; fdigits < 6; fdigits++)
		frac *= 10;
	*out = whole * MONEY_PER_USD + frac;
	return 0;
}

/* Print micro-USD as dollars with six decimals ("2.500000"). */
void
money_format_usd(money_t m, char *dst, size_t len)
{
	/* The magnitude as unsigned: -INT64_MIN does not fit an int64. */
	uint64_t	 u = m < 0 ? 0 - (uint64_t)m : (uint64_t)m;

	snprintf(dst, len, "%s%" PRIu64 ".%06" PRIu64, m < 0 ? "-" : "",
	    u / (uint64_t)MONEY_PER_USD, u % (uint64_t)MONEY_PER_USD);
}
