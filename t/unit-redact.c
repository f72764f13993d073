/*
 * unit-redact.c: the placeholder map (same value, same placeholder; the
 * limits), redact_text, redact_restore, and the streamed window: texts
 * with findings and placeholders split at every byte, byte by byte and
 * in random pieces (fixed seed) must come out as the whole text does,
 * under each output mode, never holding more than DET_HOLD_MAX bytes and
 * never releasing a finding's value under REDACT_OUT_REDACT.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/redact.h"
#include "tap.h"

static struct det_rules *R;

#define ALL	DET_SPAN_MASK

static void
t_text(void)
{
	struct redact_map	 m;
	struct buf		 out, back;
	const char		*in = "mail a@b.io and a@b.io, card 4111 1111 1111 1111, "
	    "b@c.io; ИНН 7707083893.";
	unsigned		 found = 0;

	redact_map_init(&m);
	buf_init(&out, 1 << 20);
	buf_init(&back, 1 << 20);
	is_int(redact_text(R, ALL, &m, in, strlen(in), &out, &found), 0, "redact_text");
	is_str(out.data, "mail [EMAIL_1] and [EMAIL_1], card [CARD_1], [EMAIL_2]; "
	    "ИНН [INN_1].", "same value, same placeholder; numbered per kind");
	is_int(found, DET_BIT(DET_EMAIL) | DET_BIT(DET_CARD) | DET_BIT(DET_INN), "kinds found");
	is_int(m.n, 4, "four values held");
	is_int(redact_restore(&m, out.data, out.len, &back), 0, "restore");
	is_str(back.data, in, "restore gives the text back");
	buf_reset(&back);
	is_int(redact_restore(&m, "[EMAIL_2] [EMAIL_3] [CARD_1 [INN_01] [IN]N_1] [[CARD_1]]",
	    57, &back), 0, "restore, odd placeholders");
	is_str(back.data, "b@c.io [EMAIL_3] [CARD_1 [INN_01] [IN]N_1] [4111 1111 1111 1111]",
	    "unknown and malformed placeholders stay as they are");
	/* A second text of the same request keeps the numbering. */
	buf_reset(&out);
	is_int(redact_text(R, ALL, &m, "b@c.io, d@e.io", 14, &out, NULL), 0, "second text");
	is_str(out.data, "[EMAIL_2], [EMAIL_3]", "numbering goes on over the request");
	/* Only the kinds asked for. */
	buf_reset(&out);
	is_int(redact_text(R, DET_BIT(DET_INN), &m, in, strlen(in), &out, NULL), 0, "inn only");
	ok(strstr(out.data, "a@b.io") != NULL && strstr(out.data, "[INN_1]") != NULL,
	    "mask respected");
	buf_free(&out);
	buf_free(&back);
	redact_map_free(&m);
}

static void
t_limits(void)
{
	struct redact_map	 m;
	struct buf		 in, out;
	int			 k, rc;

	redact_map_init(&m);
	buf_init(&in, 1 << 22);
	buf_init(&out, 1 << 22);
	for (k = 0; k <= REDACT_MAX_ENTRIES; k++)
		buf_printf(&in, "u%d@x.io ", k);
	rc = redact_text(R, ALL, &m, in.data, in.len, &out, NULL);
	is_int(rc, BUF_TOOBIG, "more values than REDACT_MAX_ENTRIES: refused");
	is_int(m.n, REDACT_MAX_ENTRIES, "the map stopped at its limit");
	redact_map_free(&m);
	buf_free(&out);
	/* A value bigger than REDACT_MAX_BYTES: a private key of 300 KB. */
	buf_reset(&in);
	buf_init(&out, 1 << 22);
	buf_puts(&in, "-----BEGIN PRIVATE KEY-----\n");
	for (k = 0; k < 300 * 1024 / 64; k++)
		buf_puts(&in, "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n");
	buf_puts(&in, "-----END PRIVATE KEY-----\n");
	redact_map_init(&m);
	is_int(redact_text(R, ALL, &m, in.data, in.len, &out, NULL), BUF_TOOBIG,
	    "a value over REDACT_MAX_BYTES: refused");
	is_int(m.n, 0, "nothing held of it");
	redact_map_free(&m);
	buf_free(&out);
	/* Out's own cap. */
	buf_init(&out, 10);
	redact_map_init(&m);
	is_int(redact_text(R, ALL, &m, "a@b.io and more text", 20, &out, NULL),
	    BUF_TOOBIG, "out's cap");
	redact_map_free(&m);
	buf_free(&out);
	buf_free(&in);
}

/* ---- streams ---- */

static struct redact_map MAP;

/* The whole-text answer: findings of the raw text replaced (numbered per
   kind in order), or the text before the first one (STOP); the rest
   restored. */
static void
reference(const char *s, size_t n, enum redact_out mode, struct buf *out,
    unsigned *stops)
{
	struct det_span	 sp[64];
	unsigned	 count[DET__MAX] = { 0 };
	size_t		 k, got, pos = 0;

	*stops = 0;
	got = mode == REDACT_OUT_OFF ? 0 : det_scan(R, ALL, s, n, sp, 64);
	for (k = 0; k < got && k < 64; k++) {
		redact_restore(&MAP, s + pos, sp[k].off - pos, out);
		if (mode == REDACT_OUT_STOP) {
			*stops = 1;
			return;
		}
		buf_printf(out, "[%s_%u]", det_labels[sp[k].kind], ++count[sp[k].kind]);
		pos = sp[k].off + sp[k].len;
	}
	redact_restore(&MAP, s + pos, n - pos, out);
}

static int	 max_held;

/* The text through a stream in the pieces cut[]: 0, or -1 on a broken rule. */
static int
streamed(const char *s, size_t n, enum redact_out mode, const size_t *cuts,
    size_t ncut, struct buf *out, unsigned *stops)
{
	struct redact_stream	 st;
	size_t			 k, a = 0, b;
	int			 rc = 0;

	redact_stream_init(&st, R, &MAP, ALL, mode);
	*stops = 0;
	for (k = 0; k <= ncut; k++) {
		b = k < ncut ? cuts[k] : n;
		rc = redact_stream_feed(&st, s + a, b - a, out);
		if (rc < 0)
			goto done;
		if ((int)(st.held.len - st.ctx) > max_held)
			max_held = (int)(st.held.len - st.ctx);
		if (rc == 1) {
			*stops = 1;
			rc = 0;
			goto done;
		}
		a = b;
	}
	if ((rc = redact_stream_finish(&st, out)) == 1) {
		*stops = 1;
		rc = 0;
	}
done:
	redact_stream_free(&st);
	return rc;
}

static char	 pem[2048], longtok[700];

static const char *texts[] = {
	"Hi [EMAIL_1], your card 4111 1111 1111 1111 is on file; call +7 (912) "
	    "345-67-89 or write ivan.petrov@mail.ru. ИНН 7707083893, СНИЛС "
	    "112-233-445 95. Это коммерческая   тайна! [CARD_1] end",
	"Сервер 192.168.1.10 и fe80::1; паспорт 4508 123456; IBAN DE89 3704 0044 "
	    "0532 0130 00. [PHONE_1][PHONE_1] конец.",
	"key sk-proj-abcdefghijklmnopqrstuvwx12 and api_key=Zx81kQ0pLm2 and "
	    "Authorization: Bearer abcdef0123456789XYZ done",
	"Ordinary text with no findings at all, version 1.2.3.4.5, price 1 499 "
	    "руб., date 2024-12-07, [EMAIL_1] and [NOT_A_PLACEHOLDER_1].",
	"call 89123456789",
	"[CARD_1]",
	"45 08 123456 СТРОГО СЕКРЕТНО",
	"write Ivan@Почта.рф or 2001:db8::1, +44 20 7946 0958; AKIAIOSFODNN7EXAMPLE. "
	    "ПАСПОРТ 4508123456 — ok; token: \"Zx81kQ0pLm2\" для  служебного пользования",
	pem,
	longtok,
};

/* The values of the raw text's findings, none of which may be released. */
static int
leaks(const char *s, size_t n, const char *out)
{
	struct det_span	 sp[64];
	char		 v[2048];
	size_t		 k, got;

	got = det_scan(R, ALL, s, n, sp, 64);
	for (k = 0; k < got && k < 64; k++) {
		if (sp[k].len >= sizeof(v))
			continue;
		memcpy(v, s + sp[k].off, sp[k].len);
		v[sp[k].len] = '\0';
		if (strstr(out, v) != NULL)
			return 1;
	}
	return 0;
}

#ifndef FUZZ_N
#define FUZZ_N	2000
#endif

static uint32_t	 seed = 12345;

static uint32_t
rnd(void)
{
	seed = seed * 1103515245u + 12345u;
	return (seed >> 16) & 0x7FFF;
}

static void
t_stream_text(const char *s, int idx, enum redact_out mode)
{
	struct buf	 want, got;
	size_t		 n = strlen(s), k, cuts[4096], ncut;
	unsigned	 wstop, gstop;
	int		 bad = 0, leak = 0, round;
	const char	*mname[] = { "off", "redact", "stop" };

	buf_init(&want, 1 << 20);
	buf_init(&got, 1 << 20);
	reference(s, n, mode, &want, &wstop);
	/* Two pieces, cut at every byte. */
	for (k = 0; k <= n; k++) {
		buf_reset(&got);
		cuts[0] = k;
		if (streamed(s, n, mode, cuts, 1, &got, &gstop) != 0 ||
		    gstop != wstop || got.len != want.len ||
		    memcmp(got.data, want.data, want.len) != 0) {
			if (bad++ == 0)
				printf("# cut at %zu: got '%s'\n# want '%s'\n", k,
				    got.data ? got.data : "", want.data ? want.data : "");
		}
		if (mode == REDACT_OUT_REDACT && got.len && leaks(s, n, got.data))
			leak++;
	}
	ok(bad == 0, "text %d, %s: cut at every byte (%zu cuts) as whole", idx,
	    mname[mode], n + 1);
	/* Byte by byte. */
	buf_reset(&got);
	for (k = 0; k + 1 < n && k < 4096; k++)
		cuts[k] = k + 1;
	ncut = n > 0 ? n - 1 : 0;
	ok(streamed(s, n, mode, cuts, ncut, &got, &gstop) == 0 && gstop == wstop &&
	    got.len == want.len && memcmp(got.data, want.data, want.len) == 0,
	    "text %d, %s: byte by byte as whole", idx, mname[mode]);
	/* Random pieces of 1 to 40 bytes. */
	for (round = 0, bad = 0; round < 100; round++) {
		buf_reset(&got);
		for (ncut = 0, k = 0; ; ncut++) {
			k += 1 + rnd() % 40;
			if (k >= n)
				break;
			cuts[ncut] = k;
		}
		if (streamed(s, n, mode, cuts, ncut, &got, &gstop) != 0 ||
		    gstop != wstop || got.len != want.len ||
		    memcmp(got.data, want.data, want.len) != 0)
			bad++;
		if (mode == REDACT_OUT_REDACT && got.len && leaks(s, n, got.data))
			leak++;
	}
	ok(bad == 0, "text %d, %s: 100 random splits as whole", idx, mname[mode]);
	if (mode == REDACT_OUT_REDACT)
		ok(leak == 0, "text %d: no finding's value released", idx);
	buf_free(&want);
	buf_free(&got);
}

/*
 * Random texts built of pieces that make findings and near-findings
 * (digits, separators, '@', keyword words, placeholders, pieces of
 * UTF-8 and broken UTF-8), fixed seed:
 * each through the stream in random pieces, as the whole text.
 */
static void
t_stream_fuzz(void)
{
	static const char *const frag[] = {
		"4111", " ", "1111", "-", "8", "9123456789", "+7", "(912)", "@",
		"mail", ".", "ru", "a", "b@c.io", "коммерческая", "тайна", "  ",
		"\n", "[CARD_1]", "[EMA", "IL_1]", "7707083893", "192.168.", "0.1",
		"::", "fe80", "sk-", "abcdefghijklmnopqrstuvwxyz", "=", "token",
		"паспорт", "45 08 ", "123456", "CONFIDENTIAL", "ё", "Ж", "DE89",
		" 3704 0044 0532 0130 00", "-----BEGIN RSA PRIVATE KEY-----\nAB",
		"\n-----END RSA PRIVATE KEY-----", "112-233-445 95", ",", "!", "\xD0", "\xE2\x84", "\x96", "\xC2\xA0", "\xFF", "\xD1\x91", "а", "Т", "ТАЙНА", "строго", "секретно", "СЕРИЯ", "Bearer ", "abcdef0123456789XYZ", "api_key", ": ", "\"", "Zx81kQ0pLm2", "+44 20 ", "7946 0958", "AKIAIOSFODNN7EXAMPLE", "ivan@", "почта.рф", "GB82 WEST 1234 5698 7654 32", "2001:db8", "::1", "fe80::", "89", "12", "-", "--", "-----BEGIN PRIVATE KEY-----\n",
	};
	struct buf	 text, want, got;
	size_t		 cuts[2048], ncut, k;
	unsigned	 wstop, gstop;
	int		 t, mode, bad = 0, nf = sizeof(frag) / sizeof(*frag);

	buf_init(&text, 1 << 16);
	buf_init(&want, 1 << 20);
	buf_init(&got, 1 << 20);
	for (t = 0; t < FUZZ_N; t++) {
		buf_reset(&text);
		for (k = 0, ncut = 5 + rnd() % 60; k < ncut; k++)
			buf_puts(&text, frag[rnd() % nf]);
		mode = t % 3;
		buf_reset(&want);
		reference(text.data, text.len, (enum redact_out)mode, &want, &wstop);
		for (ncut = 0, k = 0; ; ncut++) {
			k += 1 + rnd() % 24;
			if (k >= text.len)
				break;
			cuts[ncut] = k;
		}
		buf_reset(&got);
		if (streamed(text.data, text.len, (enum redact_out)mode, cuts, ncut,
		    &got, &gstop) != 0 || gstop != wstop || got.len != want.len ||
		    memcmp(got.data, want.data, want.len) != 0) {
			if (bad++ < 3)
				printf("# mode %d text '%s'\n# got  '%s'\n# want '%s'\n",
				    mode, text.data, got.data ? got.data : "",
				    want.data ? want.data : "");
		}
	}
	ok(bad == 0, "%d random texts in random pieces as whole (%d differ)", FUZZ_N, bad);
	buf_free(&text);
	buf_free(&want);
	buf_free(&got);
}

static void
t_stream(void)
{
	struct redact_stream	 st;
	struct buf		 out;
	size_t			 k, n;
	int			 mode;

	redact_map_init(&MAP);
	buf_init(&out, 1 << 20);
	/* The request's map: what restore puts back. */
	redact_text(R, ALL, &MAP, "client@example.com 5555555555554444 +7 999 111-22-33",
	    52, &out, NULL);
	is_str(out.data, "[EMAIL_1] [CARD_1] [PHONE_1]", "the request's map");
	buf_reset(&out);

	/* A private key longer than the window, a token longer too. */
	n = (size_t)snprintf(pem, sizeof(pem), "key:\n-----BEGIN RSA PRIVATE KEY-----\n");
	for (k = 0; k < 12; k++)
		n += (size_t)snprintf(pem + n, sizeof(pem) - n,
		    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun%02zu\n", k);
	snprintf(pem + n, sizeof(pem) - n, "-----END RSA PRIVATE KEY-----\nthen 10.0.0.1 ok");
	n = (size_t)snprintf(longtok, sizeof(longtok), "tok sk-Ab3dE6gH9kXy3dE6gH9kZ");
	for (k = 0; k < 40; k++)
		n += (size_t)snprintf(longtok + n, sizeof(longtok) - n, "Ab3dE.6gH9k");
	snprintf(longtok + n, sizeof(longtok) - n, ".. Then a@b.io");

	{
		struct det_span	 sp[2];

		ok(det_scan(R, ALL, pem, strlen(pem), sp, 2) == 2 &&
		    sp[0].len > 2 * DET_HOLD_MAX, "a private key longer than the window");
		ok(det_scan(R, ALL, longtok, strlen(longtok), sp, 2) == 2 &&
		    sp[0].len > DET_HOLD_MAX && longtok[sp[0].off + sp[0].len] == '.',
		    "a token longer than the window, its sentence's dots not in it");
	}
	for (k = 0; k < sizeof(texts) / sizeof(*texts); k++)
		for (mode = REDACT_OUT_OFF; mode <= REDACT_OUT_STOP; mode++)
			t_stream_text(texts[k], (int)k, (enum redact_out)mode);
	t_stream_fuzz();
	ok(max_held <= DET_HOLD_MAX, "never held more than DET_HOLD_MAX (max %d)", max_held);

	/* A placeholder split over three events is restored. */
	redact_stream_init(&st, R, &MAP, 0, REDACT_OUT_OFF);
	redact_stream_feed(&st, "Mail [EMA", 9, &out);
	is_str(out.data ? out.data : "", "Mail ", "the placeholder's start held");
	redact_stream_feed(&st, "IL_", 3, &out);
	redact_stream_feed(&st, "1] now", 6, &out);
	redact_stream_finish(&st, &out);
	is_str(out.data, "Mail client@example.com now", "restored across events");
	redact_stream_free(&st);

	/* A placeholder's start at the end is released as it is. */
	buf_reset(&out);
	redact_stream_init(&st, R, &MAP, ALL, REDACT_OUT_REDACT);
	redact_stream_feed(&st, "see [EMAIL_", 11, &out);
	redact_stream_finish(&st, &out);
	is_str(out.data, "see [EMAIL_", "an unfinished placeholder at the end, as it is");
	redact_stream_free(&st);

	/* A card over three events is found (REDACT), the text before it
	   released at once. */
	buf_reset(&out);
	redact_stream_init(&st, R, &MAP, ALL, REDACT_OUT_REDACT);
	redact_stream_feed(&st, "Card: 4111 11", 13, &out);
	is_str(out.data ? out.data : "", "Card: ", "the card's start held");
	redact_stream_feed(&st, "11 1111 11", 10, &out);
	redact_stream_feed(&st, "11 ok. ", 7, &out);
	is_str(out.data, "Card: [CARD_1] ok. ", "the card replaced in flight");
	redact_stream_finish(&st, &out);
	ok((st.found & DET_BIT(DET_CARD)) != 0, "the card counted as found");
	redact_stream_free(&st);

	/* STOP: 1 at the finding, the text before it out, then 1 again. */
	buf_reset(&out);
	redact_stream_init(&st, R, &MAP, ALL, REDACT_OUT_STOP);
	is_int(redact_stream_feed(&st, "Your [CARD_1] and mine: 4111 1111 ", 34, &out), 0, "nothing yet");
	is_int(redact_stream_feed(&st, "1111 1111. And", 14, &out), 1, "stop at the card");
	is_str(out.data, "Your 5555555555554444 and mine: ", "the text before it, restored");
	is_int(redact_stream_feed(&st, "more", 4, &out), 1, "stopped stays stopped");
	is_int(redact_stream_finish(&st, &out), 1, "finish after stop");
	redact_stream_free(&st);

	/* Clean prose is released at once (nothing held after a blank). */
	buf_reset(&out);
	redact_stream_init(&st, R, &MAP, ALL, REDACT_OUT_REDACT);
	redact_stream_feed(&st, "The quick brown fox. ", 21, &out);
	is_str(out.data ? out.data : "", "The quick brown fox. ", "prose not held");
	redact_stream_finish(&st, &out);
	redact_stream_free(&st);

	buf_free(&out);
	redact_map_free(&MAP);
}

int
main(void)
{
	if ((R = det_rules_new()) == NULL)
		return 1;
	t_text();
	t_limits();
	t_stream();
	det_rules_free(R);
	return tap_done();
}
