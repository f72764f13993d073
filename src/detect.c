/*
 * detect.c: the guardrail detectors (detect.h). One left-to-right pass
 * over the text: at each position where a span may start (a word start,
 * '+', "-----BEGIN", "::") the detectors that can start with that
 * character are tried, the best candidate is kept and the pass resumes
 * after it; a word where nothing starts is skipped whole. No allocation,
 * no regular expressions, no global state.
 *
 * Overlaps: the span that starts first wins; at the same start the
 * longer; at the same start and length the more specific kind, in the
 * order of prio[] below (secret, email, IBAN, card, SNILS, INN,
 * passport, phone, IP, keyword).
 *
 * Boundaries: a span never starts or ends inside a word (letters of any
 * script, digits, '_'), and a number never starts right after "digit."
 * / "digit-" / "digit/" nor ends before ".digit" / "-digit" / "/digit"
 * (so "1.2.3.4.5", "2024-12-07" and "12/2024" give nothing).
 */
#define _GNU_SOURCE	/* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "detect.h"
#include "inject.h"

const char *const det_names[DET__MAX] = {
	"email", "phone", "card", "iban", "passport", "snils", "inn", "ip",
	"secret", "confidential", "injection", "length",
};

const char *const det_labels[DET__MAX] = {
	"EMAIL", "PHONE", "CARD", "IBAN", "PASSPORT", "SNILS", "INN", "IP",
	"SECRET", "CONFIDENTIAL", "INJECTION", "LENGTH",
};

/* Tie-break at equal start and length: lower wins. */
static const unsigned char prio[DET__MAX] = {
	[DET_SECRET] = 0, [DET_EMAIL] = 1, [DET_IBAN] = 2, [DET_CARD] = 3,
	[DET_SNILS] = 4, [DET_INN] = 5, [DET_PASSPORT] = 6, [DET_PHONE] = 7,
	[DET_IP] = 8, [DET_CONFIDENTIAL] = 9, [DET_INJECTION] = 10,
	[DET_LENGTH] = 11,
};

#define KW_MAX		64	/* code points of one keyword */
#define KW_COUNT_MAX	256	/* keywords of one rule set */
#define CTX_BACK	48	/* bytes looked back for a context word */

struct kw {
	uint32_t	 cp[KW_MAX];	/* folded; ' ' stands for any blank run */
	unsigned char	 n;
	unsigned char	 stem;		/* "word*": any ending of the word */
	unsigned char	 words;
};

struct det_rules {
	struct kw		*kw;
	size_t			 nkw;
	unsigned		 maxwords;
	struct inject_set	*inj;
};

static const char *const default_keywords[] = {
	"конфиденциально", "коммерческая тайна", "для служебного пользования",
	"строго секретно", "не для распространения",
	"confidential", "trade secret", "internal use only",
};

int
det_kind_byname(const char *name)
{
	int	 k;

	for (k = 0; k < DET__MAX; k++)
		if (strcmp(det_names[k], name) == 0)
			return k;
	return -1;
}

/* ---- characters ---- */

/* The code point at s[i] (1 to 4 bytes in *len); a bad byte is itself. */
static uint32_t
dec(const unsigned char *s, size_t n, size_t i, size_t *len)
{
	uint32_t	 c = s[i];
	size_t		 k, need;

	*len = 1;
	if (c < 0x80)
		return c;
	if (c >= 0xC2 && c <= 0xDF)
		need = 1, c &= 0x1F;
	else if (c >= 0xE0 && c <= 0xEF)
		need = 2, c &= 0x0F;
	else if (c >= 0xF0 && c <= 0xF4)
		need = 3, c &= 0x07;
	else
		return 0xFFFD;
	if (i + need >= n)
		return 0xFFFD;
	for (k = 1; k <= need; k++) {
		if ((s[i + k] & 0xC0) != 0x80)
			return 0xFFFD;
		c = (c << 6) | (s[i + k] & 0x3F);
	}
	*len = need + 1;
	return c;
}

/* s[j] starts a character that the text's end cuts short. */
static int
utf8_cut(const unsigned char *s, size_t n, size_t j)
{
	size_t	 need, k;

	if (s[j] >= 0xC2 && s[j] <= 0xDF)
		need = 1;
	else if (s[j] >= 0xE0 && s[j] <= 0xF4)
		need = s[j] >= 0xF0 ? 3 : 2;
	else
		return 0;
	if (j + need < n)
		return 0;
	for (k = j + 1; k < n; k++)
		if ((s[k] & 0xC0) != 0x80)
			return 0;
	return 1;
}

/* Letters of the scripts a prompt is written in, digits and '_'. */
static int
word_cp(uint32_t c)
{
	if (c < 0x80)
		return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
		    (c >= 'A' && c <= 'Z') || c == '_';
	if (c == 0xD7 || c == 0xF7 || c == 0xFFFD)
		return 0;
	return (c >= 0xC0 && c <= 0x2AF) || (c >= 0x370 && c <= 0x52F) ||
	    (c >= 0x3040 && c <= 0xD7FF) || (c >= 0xF900 && c <= 0xFDFF);
}

static int
isdig(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static int
isup(unsigned char c)
{
	return c >= 'A' && c <= 'Z';
}

static int
isalnum_(unsigned char c)
{
	return isdig(c) || isup(c) || (c >= 'a' && c <= 'z');
}

static int
ishex(unsigned char c)
{
	return isdig(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
isblank_(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	    c == '\v';
}

/* Whether the code point before s[i] is a word character. */
static int
word_before(const unsigned char *s, size_t n, size_t i)
{
	size_t	 j, len;

	if (i == 0)
		return 0;
	if (s[i - 1] < 0x80)
		return word_cp(s[i - 1]);
	j = i - 1;
	while (j > 0 && i - j < 4 && (s[j] & 0xC0) == 0x80)
		j--;
	return word_cp(dec(s, n, j, &len));
}

static int
word_at(const unsigned char *s, size_t n, size_t i)
{
	size_t	 len;

	if (i >= n)
		return 0;
	if (s[i] < 0x80)
		return word_cp(s[i]);
	return word_cp(dec(s, n, i, &len));
}

/* A number may start at i: no word before it, nor "digit." etc. */
static int
num_start_ok(const unsigned char *s, size_t n, size_t i)
{
	if (word_before(s, n, i))
		return 0;
	if (i >= 2 && (s[i - 1] == '.' || s[i - 1] == '-' ||
	    s[i - 1] == '/') && isdig(s[i - 2]))
		return 0;
	return 1;
}

/* A number may end at e. */
static int
num_end_ok(const unsigned char *s, size_t n, size_t e)
{
	if (e >= n)
		return 1;
	if (word_at(s, n, e))
		return 0;
	if ((s[e] == '.' || s[e] == '-' || s[e] == '/') && e + 1 < n &&
	    isdig(s[e + 1]))
		return 0;
	return 1;
}

/* Case folding for keywords: ASCII and Cyrillic; ё is е. */
static uint32_t
fold(uint32_t c)
{
	if (c >= 'A' && c <= 'Z')
		return c + 32;
	if (c >= 0x410 && c <= 0x42F)
		return c + 0x20;
	if (c == 0x401 || c == 0x451)
		return 0x435;
	if (c >= 0x400 && c <= 0x40F)
		return c + 0x50;
	return c;
}

/* A blank of a phrase: ASCII white space or NO-BREAK SPACE. */
static size_t
blank_len(const unsigned char *s, size_t n, size_t i)
{
	if (i < n && isblank_(s[i]))
		return 1;
	if (i + 1 < n && s[i] == 0xC2 && s[i + 1] == 0xA0)
		return 2;
	return 0;
}

/* ---- rules ---- */

struct det_rules *
det_rules_new(void)
{
	struct det_rules	*r;
	size_t			 i;

	if ((r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	if ((r->kw = calloc(KW_COUNT_MAX, sizeof(*r->kw))) == NULL)
		goto fail;
	if ((r->inj = inject_new()) == NULL)
		goto fail;
	for (i = 0; i < sizeof(default_keywords) / sizeof(*default_keywords);
	    i++)
		if (det_rules_keyword(r, default_keywords[i]) == -1)
			goto fail;
	return r;
fail:
	det_rules_free(r);
	return NULL;
}

void
det_rules_clear_keywords(struct det_rules *r)
{
	r->nkw = 0;
	r->maxwords = 0;
}

int
det_rules_keyword(struct det_rules *r, const char *str)
{
	const unsigned char	*s = (const unsigned char *)str;
	size_t			 n = strlen(str), i = 0, len;
	struct kw		 k;
	uint32_t		 c;
	int			 blank = 0;

	if (r->nkw >= KW_COUNT_MAX)
		return -1;
	memset(&k, 0, sizeof(k));
	while (i < n) {
		if ((len = blank_len(s, n, i)) > 0) {
			blank = k.n > 0;
			i += len;
			continue;
		}
		c = dec(s, n, i, &len);
		if (c == 0xFFFD)
			return -1;
		i += len;
		if (c == '*' && i == n && k.n > 0 && !blank) {
			k.stem = 1;
			break;
		}
		if (k.n + (blank ? 2 : 1) > KW_MAX)
			return -1;
		if (blank) {
			k.cp[k.n++] = ' ';
			k.words++;
			blank = 0;
		}
		if (k.n == 0 && !word_cp(c))
			return -1;
		k.cp[k.n++] = fold(c);
	}
	if (k.n == 0)
		return -1;
	k.words++;
	r->kw[r->nkw++] = k;
	if (k.words > r->maxwords)
		r->maxwords = k.words;
	return 0;
}

int
det_rules_injection(struct det_rules *r, const char *pat, int weight,
    char *err, size_t errsz)
{
	return inject_add(r->inj, pat, weight, err, errsz);
}

void
det_rules_free(struct det_rules *r)
{
	if (r == NULL)
		return;
	if (r->inj != NULL)
		inject_free(r->inj);
	free(r->kw);
	free(r);
}

int
det_injection(const struct det_rules *r, const char *s, size_t n,
    const char **names, size_t nmax)
{
	return inject_score(r->inj, s, n, names, nmax);
}

/* ---- keywords ---- */

enum { KW_NO, KW_MATCH, KW_PARTIAL };

/* Keyword k at s[i]: KW_MATCH with *end, KW_NO, or KW_PARTIAL when the
   text ends while it still matches (more text could complete it). */
static int
kw_match(const struct kw *k, const unsigned char *s, size_t n, size_t i,
    size_t *end)
{
	size_t	 j = i, len, b;
	unsigned m;

	for (m = 0; m < k->n; m++) {
		if (k->cp[m] == ' ') {
			if ((b = blank_len(s, n, j)) == 0)
				return j >= n ? KW_PARTIAL : KW_NO;
			while ((b = blank_len(s, n, j)) > 0)
				j += b;
			continue;
		}
		if (j >= n || utf8_cut(s, n, j))
			return KW_PARTIAL;
		if (fold(dec(s, n, j, &len)) != k->cp[m])
			return KW_NO;
		j += len;
	}
	if (k->stem)
		while (j < n && word_at(s, n, j)) {
			dec(s, n, j, &len);
			j += len;
		}
	else if (word_at(s, n, j))
		return KW_NO;
	*end = j;
	return KW_MATCH;
}

/* ---- candidates ---- */

struct best {
	size_t		 off, len;
	int		 kind;		/* -1: none */
};

static void
cand(struct best *b, int kind, size_t off, size_t len)
{
	if (len == 0)
		return;
	if (b->kind >= 0) {
		if (off > b->off)
			return;
		if (off == b->off && len < b->len)
			return;
		if (off == b->off && len == b->len &&
		    prio[kind] >= prio[b->kind])
			return;
	}
	b->off = off;
	b->len = len;
	b->kind = kind;
}

/* ---- numbers: card, SNILS, INN, passport ---- */

#define DG_MAX	24

/* Digit groups from s[i] joined by one ' ' or '-'. */
struct dgroups {
	char	 d[DG_MAX];	/* the first DG_MAX digits */
	size_t	 end[DG_MAX];	/* byte offset after group g */
	int	 cnt[DG_MAX];	/* digits up to the end of group g */
	int	 size[DG_MAX];	/* digits of group g */
	char	 sep[DG_MAX];	/* the separator after group g, or 0 */
	int	 ng;
};

static void
dgroups(const unsigned char *s, size_t n, size_t i, struct dgroups *g)
{
	int	 nd = 0, sz;

	g->ng = 0;
	while (g->ng < DG_MAX) {
		sz = 0;
		while (i < n && isdig(s[i])) {
			if (nd < DG_MAX)
				g->d[nd] = (char)(s[i] - '0');
			nd++, sz++, i++;
		}
		g->end[g->ng] = i;
		g->cnt[g->ng] = nd;
		g->size[g->ng] = sz;
		g->sep[g->ng] = 0;
		g->ng++;
		if (nd > DG_MAX)
			break;
		if (i + 1 < n && (s[i] == ' ' || s[i] == '-') &&
		    isdig(s[i + 1])) {
			g->sep[g->ng - 1] = (char)s[i];
			i++;
			continue;
		}
		break;
	}
}

static int
luhn(const char *d, int n)
{
	int	 sum = 0, k, v;

	for (k = 0; k < n; k++) {
		v = d[n - 1 - k];
		if (k & 1) {
			v *= 2;
			if (v > 9)
				v -= 9;
		}
		sum += v;
	}
	return sum % 10 == 0;
}

static size_t
m_card(const unsigned char *s, size_t n, size_t i, const struct dgroups *g)
{
	int	 k;

	if (g->d[0] < 2 || g->d[0] > 6)
		return 0;
	for (k = g->ng - 1; k >= 0; k--) {
		if (g->cnt[k] < 13 || g->cnt[k] > 19)
			continue;
		if (luhn(g->d, g->cnt[k]) && num_end_ok(s, n, g->end[k]))
			return g->end[k] - i;
	}
	return 0;
}

static int
snils_ok(const char *d)
{
	int	 sum = 0, k, chk;

	for (k = 0; k < 9; k++)
		sum += d[k] * (9 - k);
	if (sum < 100)
		chk = sum;
	else if (sum == 100 || sum == 101)
		chk = 0;
	else {
		chk = sum % 101;
		if (chk == 100)
			chk = 0;
	}
	return chk == d[9] * 10 + d[10];
}

static size_t
m_snils(const unsigned char *s, size_t n, size_t i, const struct dgroups *g)
{
	size_t	 e;

	if (g->size[0] == 11)
		e = g->end[0];
	else if (g->ng >= 4 && g->size[0] == 3 && g->size[1] == 3 &&
	    g->size[2] == 3 && g->size[3] == 2 && g->sep[0] == g->sep[1] &&
	    g->sep[1] == '-')
		e = g->end[3];
	else if (g->ng >= 4 && g->size[0] == 3 && g->size[1] == 3 &&
	    g->size[2] == 3 && g->size[3] == 2 && g->sep[0] == ' ' &&
	    g->sep[1] == ' ' && g->sep[2] == ' ')
		e = g->end[3];
	else
		return 0;
	if (!snils_ok(g->d) || !num_end_ok(s, n, e))
		return 0;
	return e - i;
}

static int
inn_sum(const char *d, const int *w, int nw)
{
	int	 sum = 0, k;

	for (k = 0; k < nw; k++)
		sum += d[k] * w[k];
	return sum % 11 % 10;
}

static size_t
m_inn(const unsigned char *s, size_t n, size_t i, const struct dgroups *g)
{
	static const int w10[] = { 2, 4, 10, 3, 5, 9, 4, 6, 8 };
	static const int w11[] = { 7, 2, 4, 10, 3, 5, 9, 4, 6, 8 };
	static const int w12[] = { 3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8 };

	if (!num_end_ok(s, n, g->end[0]))
		return 0;
	if (g->size[0] == 10 && inn_sum(g->d, w10, 9) == g->d[9])
		return g->end[0] - i;
	if (g->size[0] == 12 && inn_sum(g->d, w11, 10) == g->d[10] &&
	    inn_sum(g->d, w12, 11) == g->d[11])
		return g->end[0] - i;
	return 0;
}

/* Case-insensitive (ASCII, Cyrillic) match of stem at s[j]. */
static int
stem_at(const unsigned char *s, size_t n, size_t j, const char *stem)
{
	const unsigned char	*p = (const unsigned char *)stem;
	size_t			 pn = strlen(stem), k = 0, l1, l2;

	while (k < pn) {
		if (j >= n)
			return 0;
		if (fold(dec(s, n, j, &l1)) != fold(dec(p, pn, k, &l2)))
			return 0;
		j += l1, k += l2;
	}
	return 1;
}

/* A passport's context word in the CTX_BACK bytes before i. */
static int
passport_context(const unsigned char *s, size_t n, size_t i)
{
	static const char *const words[] = {
		"паспорт", "серия", "серии", "passport", "series",
	};
	size_t	 j, k;

	j = i > CTX_BACK ? i - CTX_BACK : 0;
	for (; j < i; j++) {
		if ((s[j] & 0xC0) == 0x80 || word_before(s, n, j))
			continue;
		for (k = 0; k < sizeof(words) / sizeof(*words); k++)
			if (stem_at(s, n, j, words[k]))
				return 1;
	}
	return 0;
}

/*
 * Russian internal passport: series (2+2 digits) and number (6). Without
 * a checksum ten digits are too common to flag alone, so "45 08 123456"
 * (the printed layout, rarely anything else) stands alone, while
 * "4508 123456", "4508123456" and "серия 4508 № 123456" need a context
 * word (паспорт, серия, passport, series) within CTX_BACK bytes before.
 */
static size_t
m_passport(const unsigned char *s, size_t n, size_t i, const struct dgroups *g)
{
	size_t	 j, e;
	int	 spaced = 0;

	if (g->size[0] == 2 && g->ng >= 2 && g->size[1] == 2 &&
	    g->sep[0] == ' ') {
		spaced = 1;
		j = g->end[1];
	} else if (g->size[0] == 4)
		j = g->end[0];
	else if (g->size[0] == 10) {
		if (!num_end_ok(s, n, g->end[0]) || !passport_context(s, n, i))
			return 0;
		return g->end[0] - i;
	} else
		return 0;
	/* j: after the series; then " № ", " N ", " " and six digits. */
	if (j < n && s[j] == ' ')
		j++;
	else
		return 0;
	if (j + 2 < n && s[j] == 0xE2 && s[j + 1] == 0x84 && s[j + 2] == 0x96) {
		j += 3;
		spaced = 0;
		if (j < n && s[j] == ' ')
			j++;
	} else if (j + 1 < n && (s[j] == 'N' || s[j] == 'n') &&
	    s[j + 1] == ' ') {
		j += 2;
		spaced = 0;
	}
	for (e = j; e < n && isdig(s[e]); e++)
		;
	if (e - j != 6 || !num_end_ok(s, n, e))
		return 0;
	if (!spaced && !passport_context(s, n, i))
		return 0;
	return e - i;
}

/* ---- phone ---- */

/*
 * "+7 (912) 345-67-89", "8-912-345-67-89", "89123456789", "+44 20 7946
 * 0958", "+1-202-555-0143": digit groups, one in parentheses at most,
 * joined by one ' ' or '-'. Russian (+7 or 8, then 10 digits of which
 * the first is 3, 4, 8 or 9) or international with '+' (8 to 15 digits).
 * The longest prefix ending at a group's end wins.
 */
static size_t
m_phone(const unsigned char *s, size_t n, size_t i)
{
	char	 d[2];
	size_t	 j = i, best = 0;
	int	 plus = 0, nd = 0, paren = 0, sz;

	if (s[j] == '+') {
		plus = 1;
		j++;
	}
	for (;;) {
		if (j < n && s[j] == '(' && !paren) {
			paren = 1;
			j++;
			for (sz = 0; j < n && isdig(s[j]); j++, sz++, nd++)
				if (nd < 2)
					d[nd] = (char)s[j];
			if (sz < 1 || sz > 5 || j >= n || s[j] != ')')
				break;
			j++;
		} else if (j < n && isdig(s[j])) {
			for (sz = 0; j < n && isdig(s[j]); j++, sz++, nd++)
				if (nd < 2)
					d[nd] = (char)s[j];
		} else
			break;
		if (nd > 15)
			break;
		if (nd >= 2 && num_end_ok(s, n, j) && !(j < n && s[j] == ')')) {
			if (plus && d[0] == '7') {
				if (nd == 11 && strchr("3489", d[1]) != NULL)
					best = j;
			} else if (plus) {
				if (nd >= 8 && d[0] != '0')
					best = j;
			} else if (d[0] == '8' && nd == 11 &&
			    strchr("3489", d[1]) != NULL)
				best = j;
		}
		if (j < n && s[j] == '(')
			continue;
		if (j + 1 < n && (s[j] == ' ' || s[j] == '-') &&
		    (isdig(s[j + 1]) || s[j + 1] == '('))
			j++;
		else
			break;
	}
	return best ? best - i : 0;
}

/* ---- IP ---- */

static size_t
ipv4_at(const unsigned char *s, size_t n, size_t i)
{
	size_t	 j = i;
	int	 part, v, k;

	for (part = 0; part < 4; part++) {
		if (part > 0) {
			if (j >= n || s[j] != '.')
				return 0;
			j++;
		}
		for (k = 0, v = 0; k < 3 && j < n && isdig(s[j]); k++, j++)
			v = v * 10 + s[j] - '0';
		if (k == 0 || v > 255 || (j < n && isdig(s[j])))
			return 0;
	}
	return j - i;
}

/* "/24" after an address: its prefix length, part of the span. */
static size_t
cidr(const unsigned char *s, size_t n, size_t j)
{
	size_t	 k;

	if (j + 1 >= n || s[j] != '/' || !isdig(s[j + 1]))
		return 0;
	for (k = j + 1; k < n && isdig(s[k]) && k - j <= 3; k++)
		;
	return k - j <= 3 && num_end_ok(s, n, k) ? k - j : 0;
}

static size_t
m_ipv4(const unsigned char *s, size_t n, size_t i)
{
	size_t	 len = ipv4_at(s, n, i);

	if (len > 0 && cidr(s, n, i + len) > 0)
		return len + cidr(s, n, i + len);
	if (len == 0 || !num_end_ok(s, n, i + len))
		return 0;
	if (i + len + 1 < n && (s[i + len] == '.' || s[i + len] == '-') &&
	    isalnum_(s[i + len + 1]))
		return 0;
	return len + cidr(s, n, i + len);
}

/* Full (8 groups) and compressed ("::") forms, an IPv4 tail allowed. */
static size_t
m_ipv6(const unsigned char *s, size_t n, size_t i)
{
	size_t	 j = i, h, v4 = 0;
	int	 ng = 0, dbl = 0, digit = 0, long_group = 0;

	if (i > 0 && s[i - 1] == ':')
		return 0;
	if (s[j] == ':') {
		if (j + 1 >= n || s[j + 1] != ':')
			return 0;
		dbl = 1;
		j += 2;
	}
	while (j < n && ng < 8) {
		if (ng <= 6 && (dbl || ng == 6) && isdig(s[j]) &&
		    (v4 = ipv4_at(s, n, j)) > 0) {
			ng += 2;
			j += v4;
			digit = 1;
			break;
		}
		for (h = 0; j + h < n && ishex(s[j + h]); h++)
			if (isdig(s[j + h]))
				digit = 1;
		if (h == 0 || h > 4)
			return 0;
		if (h == 4)
			long_group = 1;
		j += h;
		ng++;
		if (j + 1 < n && s[j] == ':' && s[j + 1] == ':') {
			if (dbl)
				return 0;
			dbl = 1;
			j += 2;
			if (j >= n || !ishex(s[j]))
				break;
		} else if (j + 1 < n && s[j] == ':' && ishex(s[j + 1]) &&
		    ng < 8)
			j++;
		else
			break;
	}
	if (dbl ? ng > 7 || (ng == 0 && j - i < 3) : ng != 8)
		return 0;
	if (!digit && ng < 2)
		return 0;
	/* "x[1::2]" is a slice: a short compressed form needs a group of
	   four ("fe80::1") or is the loopback "::1". */
	if (dbl && ng <= 2 && !long_group && v4 == 0 &&
	    !(j - i == 3 && s[i] == ':' && s[i + 2] == '1'))
		return 0;
	if (j < n && (s[j] == ':' || word_at(s, n, j)))
		return 0;
	if (cidr(s, n, j) > 0)
		return j - i + cidr(s, n, j);
	if (!num_end_ok(s, n, j))
		return 0;
	return j - i;
}

/* ---- email ---- */

static int
local_ch(unsigned char c)
{
	return isalnum_(c) || c == '.' || c == '_' || c == '%' || c == '+' ||
	    c == '-';
}

/* s[j] starts a domain label character: ASCII alnum, '-' or a letter. */
static size_t
label_ch(const unsigned char *s, size_t n, size_t j, int *letter)
{
	size_t	 len;
	uint32_t c;

	if (isalnum_(s[j]) || s[j] == '-') {
		*letter = !isdig(s[j]) && s[j] != '-';
		return 1;
	}
	if (s[j] < 0x80)
		return 0;
	c = dec(s, n, j, &len);
	if (c == 0xFFFD || !word_cp(c))
		return 0;
	*letter = 1;
	return len;
}

/* i starts the local part, at the '@'. */
static size_t
m_email(const unsigned char *s, size_t n, size_t i, size_t at)
{
	size_t	 j = at + 1, lstart, last_end = 0, len;
	int	 labels = 0, letters, nonletter, l;

	if (at - i > 64 || s[at - 1] == '.')
		return 0;
	for (;;) {
		lstart = j;
		letters = 1;
		nonletter = 0;
		while (j < n && (len = label_ch(s, n, j, &l)) > 0) {
			if (!l)
				nonletter = 1;
			j += len;
		}
		if (j == lstart || j - lstart > 63 || s[lstart] == '-' ||
		    s[j - 1] == '-')
			break;
		letters = !nonletter;
		labels++;
		if (labels >= 2 && letters && j - lstart >= 2)
			last_end = j;
		if (j + 1 < n && s[j] == '.' && label_ch(s, n, j + 1, &l) > 0)
			j++;
		else
			break;
	}
	if (last_end == 0)
		return 0;
	if (last_end < n && (s[last_end] == '@' || word_at(s, n, last_end)))
		return 0;
	return last_end - i;
}

/* ---- IBAN ---- */

static int
iban_len(const unsigned char *cc)
{
	static const char tab[] =
	    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24"
	    "DE22DK18DO28EE20EG29ES24FI18FO18FR27GB22GE22GI23GL18GR27GT28"
	    "HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32LI21LT20LU20"
	    "LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29"
	    "RO24RS22RU33SA24SC31SE24SI19SK24SM27ST25SV28TL23TN24TR26UA29"
	    "VA22VG24XK20";
	size_t	 k;

	for (k = 0; k + 4 <= sizeof(tab) - 1; k += 4)
		if (tab[k] == cc[0] && tab[k + 1] == cc[1])
			return (tab[k + 2] - '0') * 10 + tab[k + 3] - '0';
	return 0;
}

static unsigned
mod97(unsigned m, unsigned char c)
{
	if (isdig(c))
		return (m * 10 + c - '0') % 97;
	return (m * 100 + c - 'A' + 10) % 97;
}

static size_t
m_iban(const unsigned char *s, size_t n, size_t i)
{
	unsigned char	 ch[34];
	size_t		 end[34], j = i;
	unsigned	 m, mm;
	int		 nc = 0, want, k, best = 0;

	if (i + 4 > n || !isup(s[i]) || !isup(s[i + 1]) || !isdig(s[i + 2]) ||
	    !isdig(s[i + 3]))
		return 0;
	while (nc < 34 && j < n) {
		if (isdig(s[j]) || isup(s[j])) {
			ch[nc] = s[j];
			end[nc++] = ++j;
		} else if (s[j] == ' ' && nc >= 4 && j + 1 < n &&
		    (isdig(s[j + 1]) || isup(s[j + 1])))
			j++;
		else
			break;
	}
	want = iban_len(s + i);
	m = 0;
	for (k = 4; k < nc; k++) {
		m = mod97(m, ch[k]);
		if (k + 1 < 15 || (want && k + 1 != want))
			continue;
		mm = mod97(mod97(mod97(mod97(m, ch[0]), ch[1]), ch[2]), ch[3]);
		if (mm == 1 && !word_at(s, n, end[k]))
			best = k + 1;
	}
	return best ? end[best - 1] - i : 0;
}

/* ---- secrets ---- */

/* A secret's value runs over these; a trailing '.' is the sentence's. */
static int
tok_ch(unsigned char c)
{
	return c > ' ' && c < 0x7F && strchr("\"'`,;:<>&()[]{}\\|", c) == NULL;
}

static size_t
tok_end(const unsigned char *s, size_t n, size_t j)
{
	while (j < n && tok_ch(s[j]))
		j++;
	while (j > 0 && s[j - 1] == '.')
		j--;
	return j;
}

static size_t
count_set(const unsigned char *s, size_t n, size_t j, const char *extra,
    int upper_only)
{
	size_t	 k = j;

	while (k < n && (upper_only ? isdig(s[k]) || isup(s[k]) :
	    isalnum_(s[k]) || (extra != NULL && s[k] != '\0' &&
	    strchr(extra, s[k]) != NULL)))
		k++;
	return k - j;
}

static int
has(const unsigned char *s, size_t n, size_t i, const char *p)
{
	size_t	 pn = strlen(p);

	return i + pn <= n && memcmp(s + i, p, pn) == 0;
}

/* The value of a prefixed key or token at a word start, or 0. */
static size_t
m_prefixed(const unsigned char *s, size_t n, size_t i)
{
	size_t	 k, e;

	switch (s[i]) {
	case 's':
		if (has(s, n, i, "sk-") && count_set(s, n, i + 3, "_-", 0) >= 20)
			break;
		return 0;
	case 'A':
		if ((has(s, n, i, "AKIA") || has(s, n, i, "ASIA")) &&
		    count_set(s, n, i + 4, NULL, 1) == 16 &&
		    !word_at(s, n, i + 20))
			return 20;
		if (has(s, n, i, "AIza") &&
		    count_set(s, n, i + 4, "_-", 0) >= 35)
			break;
		return 0;
	case 'g':
		if (i + 4 < n && s[i + 1] == 'h' && strchr("pousr", s[i + 2]) &&
		    s[i + 3] == '_' && count_set(s, n, i + 4, NULL, 0) >= 30)
			break;
		if (has(s, n, i, "github_pat_") &&
		    count_set(s, n, i + 11, "_", 0) >= 22)
			break;
		if (has(s, n, i, "glpat-") &&
		    count_set(s, n, i + 6, "_-", 0) >= 20)
			break;
		return 0;
	case 'x':
		if (i + 4 < n && s[i + 1] == 'o' && s[i + 2] == 'x' &&
		    strchr("abposr", s[i + 3]) && s[i + 4] == '-' &&
		    count_set(s, n, i + 5, "-", 0) >= 10)
			break;
		return 0;
	case 'e':
		/* JWT: header.payload[.signature], both JSON objects. */
		if (!has(s, n, i, "eyJ"))
			return 0;
		k = count_set(s, n, i, "_-", 0);
		if (k < 10 || i + k >= n || s[i + k] != '.' ||
		    !has(s, n, i + k + 1, "eyJ") ||
		    count_set(s, n, i + k + 1, "_-", 0) < 10)
			return 0;
		break;
	default:
		return 0;
	}
	e = tok_end(s, n, i);
	return e > i ? e - i : 0;
}

/*
 * A value after "password=" that looks like a secret, not like code or
 * a word: 8 bytes or more, letters and digits mixed (or upper and lower
 * case), not a shell variable, not a function called.
 */
static int
secret_value(const unsigned char *s, size_t n, size_t i, size_t e)
{
	int	 lo = 0, up = 0, dg = 0;
	size_t	 k;

	if (e - i < 8 || s[i] == '$' || (e < n && s[e] == '('))
		return 0;
	for (k = i; k < e; k++) {
		if (s[k] >= 'a' && s[k] <= 'z')
			lo = 1;
		else if (isup(s[k]))
			up = 1;
		else if (isdig(s[k]))
			dg = 1;
	}
	return (dg && (lo || up)) || (lo && up);
}

/* The name before "=" / ":" ends at e (exclusive): a secret's name? */
static int
secret_name(const unsigned char *s, size_t n, size_t e)
{
	static const char *const names[] = {
		"api_key", "apikey", "api-key", "api_token", "access_token",
		"auth_token", "token", "secret", "secret_key", "client_secret",
		"password", "passwd", "pwd", "private_key", "access_key",
		"secret_access_key", "пароль",
	};
	size_t	 b = e, k, nl, len;

	/* The name's start: back over word characters and '-'. */
	while (b > 0 && e - b < 64) {
		if (s[b - 1] == '-' || (s[b - 1] < 0x80 && word_cp(s[b - 1])))
			b--;
		else if (s[b - 1] >= 0x80) {
			k = b - 1;
			while (k > 0 && b - k < 4 && (s[k] & 0xC0) == 0x80)
				k--;
			if (!word_cp(dec(s, n, k, &len)))
				break;
			b = k;
		} else
			break;
	}
	if (b == e)
		return 0;
	for (k = 0; k < sizeof(names) / sizeof(*names); k++) {
		nl = strlen(names[k]);
		/* The whole name, or its end after '_' / '-' (DB_PASSWORD). */
		if (nl > e - b)
			continue;
		if (e - b > nl && s[e - nl - 1] != '_' && s[e - nl - 1] != '-')
			continue;
		if (stem_at(s, n, e - nl, names[k]))
			return 1;
	}
	return 0;
}

/*
 * A value at i after "api_key=", "password: ", "\"token\": \"" or
 * "Bearer ": looked for backwards from the value, so that the name may
 * already have been streamed out.
 */
static size_t
m_keyvalue(const unsigned char *s, size_t n, size_t i)
{
	size_t	 j = i, e, sp;

	if (i == 0 || !tok_ch(s[i]))
		return 0;
	if (s[j - 1] == '"' || s[j - 1] == '\'')
		j--;
	for (sp = 0; j > 0 && s[j - 1] == ' ' && sp < 4; sp++)
		j--;
	if (sp > 0 && j >= 6 && (s[j - 1] | 0x20) == 'r' &&
	    !word_before(s, n, j - 6) && stem_at(s, n, j - 6, "bearer")) {
		e = tok_end(s, n, i);
		return e >= i + 16 && s[i] != '$' ? e - i : 0;
	}
	if (j == 0 || (s[j - 1] != '=' && s[j - 1] != ':'))
		return 0;
	if ((e = tok_end(s, n, i)) <= i)
		return 0;
	j--;
	while (j > 0 && s[j - 1] == ' ' && i - j < 16)
		j--;
	if (j > 0 && (s[j - 1] == '"' || s[j - 1] == '\''))
		j--;
	if (!secret_name(s, n, j) || !secret_value(s, n, i, e))
		return 0;
	return e - i;
}

/*
 * "-----BEGIN [A-Z ]*PRIVATE KEY-----" (or "... PRIVATE KEY BLOCK-----")
 * ending its line, through its END line, or to the text's end when the
 * END line is missing (a key pasted in part is still a key).
 */
static size_t
m_pem(const unsigned char *s, size_t n, size_t i)
{
	const unsigned char	*p, *q;
	size_t			 j;

	if (!has(s, n, i, "-----BEGIN "))
		return 0;
	for (j = i + 11; j < n && j - i < 64 && !has(s, n, j, "PRIVATE KEY");
	    j++)
		if (!isup(s[j]) && s[j] != ' ')
			return 0;
	if (!has(s, n, j, "PRIVATE KEY"))
		return 0;
	j += 11;
	if (has(s, n, j, " BLOCK"))
		j += 6;
	if (!has(s, n, j, "-----"))
		return 0;
	j += 5;
	if (j < n && !isblank_(s[j]))
		return 0;
	p = memmem(s + j, n - j, "-----END ", 9);
	if (p == NULL)
		return n - i;
	for (q = p + 9; q < s + n && q - p < 80 && *q != '\n'; q++)
		if (q + 5 <= s + n && memcmp(q, "-----", 5) == 0)
			return (size_t)(q + 5 - s) - i;
	return n - i;
}

/* ---- the pass ---- */

#define M_NUM	(DET_BIT(DET_CARD) | DET_BIT(DET_SNILS) | DET_BIT(DET_INN) | \
		 DET_BIT(DET_PASSPORT) | DET_BIT(DET_PHONE) | DET_BIT(DET_IP))

static void
try_keywords(const struct det_rules *r, const unsigned char *s, size_t n,
    size_t i, struct best *b)
{
	size_t	 k, len, end;
	uint32_t c0 = fold(dec(s, n, i, &len));

	for (k = 0; k < r->nkw; k++)
		if (r->kw[k].cp[0] == c0 &&
		    kw_match(&r->kw[k], s, n, i, &end) == KW_MATCH)
			cand(b, DET_CONFIDENTIAL, i, end - i);
}

/* The candidates at a word start i. */
static void
try_word(const struct det_rules *r, unsigned mask, const unsigned char *s,
    size_t n, size_t i, size_t at, struct best *b)
{
	struct dgroups	 g;
	unsigned char	 c = s[i];
	size_t		 j;

	if (c >= 0x80) {
		if (mask & DET_BIT(DET_CONFIDENTIAL))
			try_keywords(r, s, n, i, b);
		return;
	}
	if ((mask & DET_BIT(DET_EMAIL)) && at < n && at - i <= 64) {
		for (j = i; j < at && local_ch(s[j]); j++)
			;
		if (j == at && j > i)
			cand(b, DET_EMAIL, i, m_email(s, n, i, at));
	}
	if (mask & DET_BIT(DET_SECRET)) {
		cand(b, DET_SECRET, i, m_prefixed(s, n, i));
		if (b->kind < 0)
			cand(b, DET_SECRET, i, m_keyvalue(s, n, i));
	}
	if (isdig(c) && (mask & M_NUM) && num_start_ok(s, n, i)) {
		dgroups(s, n, i, &g);
		if (mask & DET_BIT(DET_CARD))
			cand(b, DET_CARD, i, m_card(s, n, i, &g));
		if (mask & DET_BIT(DET_SNILS))
			cand(b, DET_SNILS, i, m_snils(s, n, i, &g));
		if (mask & DET_BIT(DET_INN))
			cand(b, DET_INN, i, m_inn(s, n, i, &g));
		if (mask & DET_BIT(DET_PASSPORT))
			cand(b, DET_PASSPORT, i, m_passport(s, n, i, &g));
		if ((mask & DET_BIT(DET_PHONE)) && c == '8')
			cand(b, DET_PHONE, i, m_phone(s, n, i));
		if (mask & DET_BIT(DET_IP))
			cand(b, DET_IP, i, m_ipv4(s, n, i));
	}
	if ((mask & DET_BIT(DET_IP)) && ishex(c))
		cand(b, DET_IP, i, m_ipv6(s, n, i));
	if ((mask & DET_BIT(DET_IBAN)) && isup(c))
		cand(b, DET_IBAN, i, m_iban(s, n, i));
	if (mask & DET_BIT(DET_CONFIDENTIAL))
		try_keywords(r, s, n, i, b);
}

/* The candidates at a punctuation byte i. */
static void
try_punct(unsigned mask, const unsigned char *s, size_t n, size_t i,
    struct best *b)
{
	switch (s[i]) {
	case '+':
		if ((mask & DET_BIT(DET_PHONE)) && i + 1 < n && isdig(s[i + 1]) &&
		    !word_before(s, n, i) && !(i > 0 && isdig(s[i - 1])))
			cand(b, DET_PHONE, i, m_phone(s, n, i));
		break;
	case '-':
		if (mask & DET_BIT(DET_SECRET))
			cand(b, DET_SECRET, i, m_pem(s, n, i));
		break;
	case ':':
		if ((mask & DET_BIT(DET_IP)) && !word_before(s, n, i))
			cand(b, DET_IP, i, m_ipv6(s, n, i));
		break;
	}
	if ((mask & DET_BIT(DET_SECRET)) && b->kind < 0 && tok_ch(s[i]) &&
	    i > 0 && strchr("=:\"' ", s[i - 1]) != NULL && s[i] != '-')
		cand(b, DET_SECRET, i, m_keyvalue(s, n, i));
}

size_t
det_scan_from(const struct det_rules *r, unsigned mask, const char *text,
    size_t n, size_t from, struct det_span *out, size_t max)
{
	const unsigned char	*s = (const unsigned char *)text;
	const unsigned char	*p;
	struct best		 b;
	size_t			 i = from, at = n, cnt = 0, len;

	mask &= DET_SPAN_MASK;
	if (mask == 0)
		return 0;
	if (mask & DET_BIT(DET_EMAIL)) {
		p = memchr(s + i, '@', n - i);
		at = p != NULL ? (size_t)(p - s) : n;
	}
	while (i < n) {
		if (at < i) {
			p = memchr(s + i, '@', n - i);
			at = p != NULL ? (size_t)(p - s) : n;
		}
		b.kind = -1;
		if (word_at(s, n, i)) {
			if (!word_before(s, n, i))
				try_word(r, mask, s, n, i, at, &b);
		} else if (s[i] < 0x80 && s[i] > ' ')
			try_punct(mask, s, n, i, &b);
		if (b.kind >= 0) {
			if (cnt < max) {
				out[cnt].kind = (enum det_kind)b.kind;
				out[cnt].off = b.off;
				out[cnt].len = b.len;
			}
			cnt++;
			i = b.off + b.len;
			continue;
		}
		/* Nothing starts here: skip the rest of the word. */
		if (word_at(s, n, i)) {
			do {
				if (s[i] < 0x80)
					i++;
				else {
					dec(s, n, i, &len);
					i += len;
				}
			} while (i < n && word_at(s, n, i));
		} else
			i++;
	}
	return cnt;
}

size_t
det_scan(const struct det_rules *r, unsigned mask, const char *s, size_t n,
    struct det_span *out, size_t max)
{
	return det_scan_from(r, mask, s, n, 0, out, max);
}

/* ---- holding back a stream's tail ---- */

/* A token of a number being written: digits, "()+-.", '№', or an
   upper-case group with a digit (an IBAN's). */
static int
numberish(const unsigned char *s, size_t b, size_t e)
{
	size_t	 k;
	int	 dg = 0, up = 0;

	for (k = b; k < e; k++) {
		if (isdig(s[k]))
			dg = 1;
		else if (isup(s[k]))
			up = 1;
		else if (k + 2 < e && s[k] == 0xE2 &&
		    s[k + 1] == 0x84 && s[k + 2] == 0x96)
			k += 2, dg = 1;
		else if (strchr("()+-.", s[k]) == NULL || s[k] == '\0')
			return 0;
	}
	/* "+" or "(" alone: a phone's start. */
	return dg || (!up && e - b == 1 && (s[b] == '+' || s[b] == '('));
}

/* Token [b, e) is one to four capital letters. */
static int
upper_group(const unsigned char *s, size_t b, size_t e)
{
	size_t	 k;

	if (e - b > 4)
		return 0;
	for (k = b; k < e; k++)
		if (!isup(s[k]))
			return 0;
	return 1;
}

/* Where the number ending token [b, e) starts ("ИНН:7707" -> "7707"), or e. */
static size_t
numtail(const unsigned char *s, size_t b, size_t e)
{
	size_t	 q = e;

	while (q > b) {
		if (isdig(s[q - 1]) || isup(s[q - 1]) ||
		    strchr("()+-.", s[q - 1]) != NULL)
			q--;
		else if (q - b >= 3 && s[q - 3] == 0xE2 && s[q - 2] == 0x84 &&
		    s[q - 1] == 0x96)
			q -= 3;
		else
			break;
	}
	while (q < e && !numberish(s, q, e))
		q++;
	return q;
}

/*
 * The tail a stream holds back: from the earliest of (a) the last token
 * when the text does not end with a blank (any word may still become an
 * e-mail's local part, a card's last group, a longer word); (b) a number
 * written in groups joined by single spaces ("4276 1234 ", "+7 (912) ",
 * "GB82 WEST "), which the next group may continue; (c) the first words
 * of a keyword phrase ("коммерческая "); (d) a private key's BEGIN line
 * without its END. Whatever a longer text could still make a span starts
 * at or after this point, so a stream that releases only the text before
 * it releases what the whole text would. Context that is not part of a
 * span (a passport's "серия", a secret's "password=") is not held: the
 * stream keeps some released text to look back at.
 */
size_t
det_hold(const struct det_rules *r, unsigned mask, const char *text,
    size_t n)
{
	const unsigned char	*s = (const unsigned char *)text;
	size_t			 p = n, j, b, e, lo, k, end, len;
	unsigned		 nst = 0;
	const unsigned char	*q, *qq;

	mask &= DET_SPAN_MASK;
	if (mask == 0 || n == 0)
		return 0;
	lo = n > DET_HOLD_MAX ? n - DET_HOLD_MAX : 0;
	/* (a) The last token, unless the text ends with a blank. */
	for (j = n; j > lo && !isblank_(s[j - 1]); j--)
		;
	if (j < n)
		p = j;
	/* (b) A number written in groups: "4276 1234 ", "+7 (912) 345-". */
	if (mask & (M_NUM | DET_BIT(DET_IBAN))) {
		e = j == n && s[n - 1] == ' ' ? n - 1 : n;
		for (;;) {
			for (b = e; b > lo && !isblank_(s[b - 1]); b--)
				;
			/* An IBAN's letter group ("GB82 WEST 1234") goes on
			   the chain; it holds nothing by itself. */
			if ((k = numtail(s, b, e)) == e) {
				if (!upper_group(s, b, e))
					break;
				k = b;
			} else if (k < p)
				p = k;
			if (k > b || b < 2 || s[b - 1] != ' ' || isblank_(s[b - 2]))
				break;
			e = b - 1;
		}
	}
	/* (c) The first words of a keyword phrase: the words of the last
	   maxwords blank-separated tokens, each a possible start. */
	if ((mask & DET_BIT(DET_CONFIDENTIAL)) && r->nkw > 0) {
		for (j = n; j > lo && nst < r->maxwords; nst++) {
			while (j > lo && isblank_(s[j - 1]))
				j--;
			while (j > lo && !isblank_(s[j - 1]))
				j--;
		}
		while (j < n && (s[j] & 0xC0) == 0x80)
			j++;
		for (; j < p; j += len) {
			if (s[j] < 0x80)
				len = 1;
			else
				dec(s, n, j, &len);
			if (!word_at(s, n, j) && !utf8_cut(s, n, j))
				continue;
			if (word_before(s, n, j))
				continue;
			for (k = 0; k < r->nkw; k++)
				if (kw_match(&r->kw[k], s, n, j, &end) ==
				    KW_PARTIAL)
					break;
			if (k < r->nkw) {
				p = j;
				break;
			}
		}
	}
	/* (d) A private key not ended yet. */
	if (mask & DET_BIT(DET_SECRET)) {
		qq = NULL;
		for (q = s + lo; (q = memmem(q, s + n - q, "-----BEGIN", 10))
		    != NULL; q++)
			qq = q;
		if (qq != NULL && memmem(qq, s + n - qq, "-----END", 8) == NULL &&
		    (size_t)(qq - s) < p)
			p = (size_t)(qq - s);
	}
	if (n - p > DET_HOLD_MAX)
		p = n - DET_HOLD_MAX;
	while (p < n && (s[p] & 0xC0) == 0x80)
		p++;
	return n - p;
}
