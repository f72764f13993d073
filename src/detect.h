/*
 * detect.h: the guardrail detectors over UTF-8 text (Russian and English):
 * personal data and secrets found as spans, validated by their checksums
 * where they have one; confidentiality keywords (case-insensitive,
 * Cyrillic too); and a prompt-injection score. Pure functions of the text
 * and of immutable rules: no allocation per scan, no global state.
 */
#ifndef LLMGATE_DETECT_H
#define LLMGATE_DETECT_H

#include <stddef.h>

enum det_kind {
	/* Spans: each finding has an offset and a length. */
	DET_EMAIL,
	DET_PHONE,		/* Russian and international formats */
	DET_CARD,		/* payment card number, Luhn-checked */
	DET_IBAN,		/* ISO 13616, mod-97 checked */
	DET_PASSPORT,		/* Russian internal passport: series + number */
	DET_SNILS,		/* with its check number */
	DET_INN,		/* 10 or 12 digits, with its check digits */
	DET_IP,			/* IPv4 and IPv6 addresses */
	DET_SECRET,		/* API keys, tokens, private keys */
	DET_CONFIDENTIAL,	/* a confidentiality keyword of the rules */
	/* Scores and limits: the whole text, no span. */
	DET_INJECTION,		/* prompt-injection score >= threshold */
	DET_LENGTH,		/* max_prompt_chars / max_prompt_tokens */
	DET__MAX
};

#define DET_BIT(k)	(1u << (k))
/* The kinds det_scan finds as spans. */
#define DET_SPAN_MASK	(DET_BIT(DET_CONFIDENTIAL + 1) - 1u)
/* Personal data and secrets: what redaction replaces. */
#define DET_PII_MASK	(DET_BIT(DET_SECRET + 1) - 1u)

/* "email", "phone", "card", "iban", "passport", "snils", "inn", "ip",
   "secret", "confidential", "injection", "length". */
extern const char *const det_names[DET__MAX];
/* Placeholder stems: "EMAIL", "PHONE", "CARD", ..., "CONFIDENTIAL". */
extern const char *const det_labels[DET__MAX];

/* The name's kind, or -1. */
int	det_kind_byname(const char *);

struct det_span {
	enum det_kind	 kind;
	size_t		 off;
	size_t		 len;
};

/*
 * The rules a policy compiles once at configuration load: keywords and
 * injection patterns. Immutable after it is built; shared read-only by
 * every request of the process.
 */
struct det_rules;

/* The built-in rules: default keywords and injection patterns. NULL: no memory. */
struct det_rules *det_rules_new(void);
/* Replace the keyword list by none (before adding a configured list). */
void	det_rules_clear_keywords(struct det_rules *);
/* Add one keyword or phrase (UTF-8): 0, or -1 (empty, too long, no memory). */
int	det_rules_keyword(struct det_rules *, const char *);
/*
 * Add one injection pattern with its weight: 0, or -1 with err filled
 * (the pattern's syntax is inject.c's; see conf/llmgate.ini).
 */
int	det_rules_injection(struct det_rules *, const char *, int,
	    char *, size_t);
void	det_rules_free(struct det_rules *);

/*
 * The spans of the kinds in mask (DET_BIT bits) in s[0..n), in text
 * order and not overlapping. Stores at most max in out and returns how
 * many there are (which may be more than max).
 */
size_t	det_scan(const struct det_rules *, unsigned, const char *, size_t,
	    struct det_span *, size_t);
/*
 * The same for the spans that start at or after from, s[0..from) being
 * the text before (word boundaries, a passport's context word, the name
 * before a secret's value): what det_scan finds after from when no span
 * of it crosses from. A streamed text scans its new part with this.
 */
size_t	det_scan_from(const struct det_rules *, unsigned, const char *,
	    size_t, size_t, struct det_span *, size_t);

/*
 * How many bytes at the end of s[0..n) might be the start of a span of
 * the kinds in mask that more text could complete (a card number cut in
 * the middle, "ivan@exa", a keyword's first word): a streamed answer holds
 * them back until more arrives or the stream ends. 0 when the text ends
 * cleanly; never more than DET_HOLD_MAX.
 */
#define DET_HOLD_MAX	256
size_t	det_hold(const struct det_rules *, unsigned, const char *, size_t);

/* The injection score of s[0..n): the weights of the rules that matched,
   and at most nmax of their names (the rules' own, for the log). */
int	det_injection(const struct det_rules *, const char *, size_t,
	    const char **, size_t);

#endif
