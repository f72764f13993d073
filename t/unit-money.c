/* unit-money.c: micro-dollar arithmetic, parsing, printing and usage_cost. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "../src/money.h"
#include "../src/usage.h"
#include "tap.h"

#define USD(d)	((money_t)(d) * MONEY_PER_USD)

static void
test_cost(void)
{
	is_int(money_cost(1, 150000), 1,
	    "1 token at $0.15/1M rounds up to 1 micro-USD");
	is_int(money_cost(1000000, 2500000), 2500000,
	    "1M tokens at $2.50 cost $2.50 exactly");
	is_int(money_cost(1000, 2500000), 2500, "1000 tokens at $2.50");
	is_int(money_cost(1, 1000000), 1, "1 token at $1/1M is 1 micro-USD");
	is_int(money_cost(1000001, 1000000), 1000001, "exact, no rounding");
	is_int(money_cost(3, 333333), 1, "999999 micro-micro rounds up to 1");
	is_int(money_cost(3, 333334), 2, "1000002 micro-micro rounds up to 2");
	is_int(money_cost(7, 1), 1, "the smallest price still costs 1");
	is_int(money_cost(0, 2500000), 0, "zero tokens cost nothing");
	is_int(money_cost(1000, 0), 0, "a free model costs nothing");
	is_int(money_cost(-5, 2500000), 0, "negative tokens cost nothing");
	is_int(money_cost(1000, -1), 0, "a negative price costs nothing");
	is_int(money_cost(INT64_MIN, 2500000), 0, "INT64_MIN tokens: 0");
	is_int(money_cost(MONEY_TOKENS_MAX, MONEY_PRICE_MAX),
	    MONEY_TOKENS_MAX / 1000000 * MONEY_PRICE_MAX,
	    "the largest tokens at the largest price fit in int64");
	is_int(money_cost(INT64_MAX, MONEY_PRICE_MAX),
	    money_cost(MONEY_TOKENS_MAX, MONEY_PRICE_MAX),
	    "INT64_MAX tokens are priced as MONEY_TOKENS_MAX");
	is_int(money_cost(INT64_MAX, 1), MONEY_TOKENS_MAX / 1000000,
	    "INT64_MAX tokens at 1 micro-USD/1M");
}

static void
test_parse(void)
{
	static const struct {
		const char	*s;
		money_t		 want;
	} good[] = {
		{ "2.50", 2500000 }, { "2.5", 2500000 }, { "0", 0 },
		{ "0.15", 150000 }, { "10", USD(10) }, { "0.000001", 1 },
		{ "1.123456", 1123456 }, { ".5", 500000 }, { "5.", USD(5) },
		{ "007", USD(7) }, { "10000", MONEY_PRICE_MAX },
		{ "0.000000", 0 },
	};
	static const char *const bad[] = {
		"", ".", "-1", "+1", "1.2345678", "1.0000000", "abc", "1e3",
		" 1", "1 ", "1,5", "1.2.3", "$1", "0x10", "1.-5",
		"99999999999999999999999999",
	};
	money_t	 m;
	size_t	 i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		m = -7;
		is_int(money_parse_usd(good[i].s, &m), 0, "\"%s\" parses",
		    good[i].s);
		is_int(m, good[i].want, "\"%s\" is %lld micro-USD", good[i].s,
		    (long long)good[i].want);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		m = -7;
		is_int(money_parse_usd(bad[i], &m), -1, "\"%s\" refused",
		    bad[i]);
		is_int(m, -7, "\"%s\" leaves the output alone", bad[i]);
	}
}

static void
test_format(void)
{
	static const struct {
		money_t		 m;
		const char	*want;
	} cases[] = {
		{ 0, "0.000000" }, { 1, "0.000001" }, { 2500000, "2.500000" },
		{ 1123456, "1.123456" }, { -1, "-0.000001" },
		{ -2500000, "-2.500000" }, { USD(10000), "10000.000000" },
		{ INT64_MAX, "9223372036854.775807" },
		{ INT64_MIN + 1, "-9223372036854.775807" },
	};
	char	 buf[64], small[5];
	size_t	 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		money_format_usd(cases[i].m, buf, sizeof(buf));
		is_str(buf, cases[i].want, "%lld prints as %s",
		    (long long)cases[i].m, cases[i].want);
	}
	money_format_usd(2500000, small, sizeof(small));
	is_str(small, "2.50", "a small buffer is cut, not overrun");
}

/*
 * INT64_MIN has no positive counterpart: negating it is undefined. An -O2
 * build happens to print it right; -O0 prints "--9223372036854.-775808"
 * and --enable-asan stops at money.c's "m = -m".
 */
static void
test_format_min(void)
{
	char	 buf[64];

	money_format_usd(INT64_MIN, buf, sizeof(buf));
	is_str(buf, "-9223372036854.775808", "INT64_MIN prints as itself");
}

/* Printing every parsed price gives the same amount back. */
static void
test_round_trip(void)
{
	static const money_t amounts[] = {
		0, 1, 999999, 1000000, 2500000, 150000, 1234567,
		MONEY_PRICE_MAX,
	};
	char	 buf[64];
	money_t	 m;
	size_t	 i;
	int	 same = 1;

	for (i = 0; i < sizeof(amounts) / sizeof(amounts[0]); i++) {
		money_format_usd(amounts[i], buf, sizeof(buf));
		if (money_parse_usd(buf, &m) != 0 || m != amounts[i]) {
			printf("#   %lld -> '%s' -> %lld\n",
			    (long long)amounts[i], buf, (long long)m);
			same = 0;
		}
	}
	ok(same, "format then parse gives the amount back");
}

static void
test_usage_cost(void)
{
	struct candidate	 c;
	struct usage		 u;

	memset(&c, 0, sizeof(c));
	c.input_price = 2500000;		/* $2.50 */
	c.cached_input_price = 1250000;		/* $1.25 */
	c.output_price = 10000000;		/* $10 */

	memset(&u, 0, sizeof(u));
	u.prompt = 1000;
	u.completion = 500;
	is_int(usage_cost(&c, &u), 2500 + 5000, "no cached tokens");

	u.cached = 400;
	is_int(usage_cost(&c, &u), 600 * 25 / 10 + 400 * 125 / 100 + 5000,
	    "400 of 1000 prompt tokens at the cached price");

	u.cached = 5000;
	is_int(usage_cost(&c, &u), 1250 + 5000,
	    "cached tokens beyond the prompt count as the whole prompt");

	u.prompt = 1;
	u.cached = 0;
	u.completion = 1;
	is_int(usage_cost(&c, &u), 3 + 10,
	    "1 prompt token at $2.50/1M rounds up to 3, 1 completion is 10");
	u.cached = 1;
	is_int(usage_cost(&c, &u), 2 + 10,
	    "1 cached token at $1.25/1M rounds up to 2");
	u.prompt = 2;
	is_int(usage_cost(&c, &u), 14,
	    "parts are summed before one rounding up (2.5 + 1.25 + 10 -> 14)");

	memset(&u, 0, sizeof(u));
	is_int(usage_cost(&c, &u), 0, "no tokens cost nothing");
	u.prompt = 1000000;
	u.completion = 1000000;
	is_int(usage_cost(NULL, &u), 0, "no candidate costs nothing");

	c.cached_input_price = c.input_price;
	u.cached = 300000;
	is_int(usage_cost(&c, &u), 2500000 + 10000000,
	    "with cached price = input price, caching changes nothing");

	u.prompt = -5;
	u.cached = 0;
	u.completion = 0;
	is_int(usage_cost(&c, &u), 0, "negative counts cost nothing");
}

int
main(void)
{
	test_cost();
	test_parse();
	test_format();
	test_format_min();
	test_round_trip();
	test_usage_cost();
	return tap_done();
}
