/*
 * unit-detect.c: each detector of detect.c on true and false cases:
 * checksums valid and not, ordinary numbers (prices, dates, order
 * numbers, versions, timestamps), Cyrillic context and case, boundaries
 * (text start and end, punctuation, inside words); overlaps; det_hold on
 * every kind of unfinished tail and on text that ends cleanly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../src/detect.h"
#include "tap.h"

static struct det_rules *R;

/* The spans of text as "kind=value|kind=value", or "" for none. */
static const char *
spans(unsigned mask, const char *text)
{
	static char	 out[4096];
	struct det_span	 sp[32];
	size_t		 n, k, len = 0;

	n = det_scan(R, mask, text, strlen(text), sp, 32);
	out[0] = '\0';
	for (k = 0; k < n && k < 32; k++)
		len += (size_t)snprintf(out + len, sizeof(out) - len, "%s%s=%.*s",
		    k ? "|" : "", det_names[sp[k].kind], (int)sp[k].len,
		    text + sp[k].off);
	return out;
}

#define ALL	DET_SPAN_MASK
#define found(text, want)	is_str(spans(ALL, (text)), (want), "%s", (text))
#define none(text)		is_str(spans(ALL, (text)), "", "nothing in: %s", (text))

static void
t_names(void)
{
	int	 k;

	for (k = 0; k < DET__MAX; k++)
		is_int(det_kind_byname(det_names[k]), k, "name %s", det_names[k]);
	is_int(det_kind_byname("nope"), -1, "unknown name");
	is_str(det_labels[DET_CARD], "CARD", "label CARD");
	is_str(det_names[DET_CONFIDENTIAL], "confidential", "name confidential");
}

static void
t_email(void)
{
	found("ivan.petrov@mail.ru", "email=ivan.petrov@mail.ru");
	found("Пишите на ivan_p+tag@example.co.uk.", "email=ivan_p+tag@example.co.uk");
	found("(a@b.io)", "email=a@b.io");
	found("почта: Ivan@Почта.рф, спасибо", "email=Ivan@Почта.рф");
	found("x@y.com,z@w.org", "email=x@y.com|email=z@w.org");
	none("user@localhost");
	none("@mention and foo@ bar");
	none("a@b.c");
	none("hash@1.2.3.4x");
	none("name@domain.");
}

static void
t_phone(void)
{
	found("Звоните +7 (912) 345-67-89!", "phone=+7 (912) 345-67-89");
	found("тел. 8-912-345-67-89", "phone=8-912-345-67-89");
	found("89123456789", "phone=89123456789");
	found("+79123456789.", "phone=+79123456789");
	found("8 (495) 123 45 67", "phone=8 (495) 123 45 67");
	found("8 800 555-35-35", "phone=8 800 555-35-35");
	found("+44 20 7946 0958", "phone=+44 20 7946 0958");
	found("call +1-202-555-0143 now", "phone=+1-202-555-0143");
	none("+7 (123) 345-67-89");		/* no such Russian area */
	none("81234567890");
	none("8912345678");			/* 10 digits */
	none("+7 912 345 67 8");
	none("a+79123456789");
	none("Итого 8 912 руб.");
	none("+12345");
}

static void
t_card(void)
{
	found("карта 4111 1111 1111 1111.", "card=4111 1111 1111 1111");
	found("4111-1111-1111-1111", "card=4111-1111-1111-1111");
	found("5555555555554444", "card=5555555555554444");
	found("Amex 378282246310005", "card=378282246310005");
	found("Мир 2200 7001 1234 5672", "card=2200 7001 1234 5672");
	none("4111 1111 1111 1112");		/* Luhn */
	none("4276138012345678");		/* Luhn */
	none("order 1111111111111111117");	/* IIN: starts with 1 */
	none("41111111111111111");		/* 17 digits, Luhn-bad */
	none("x4111111111111111");
	none("4111111111111111x");
	none("1.4111111111111111");
}

static void
t_iban(void)
{
	found("IBAN DE89 3704 0044 0532 0130 00 ok", "iban=DE89 3704 0044 0532 0130 00");
	found("DE89370400440532013000", "iban=DE89370400440532013000");
	found("GB82 WEST 1234 5698 7654 32", "iban=GB82 WEST 1234 5698 7654 32");
	none("DE89 3704 0044 0532 0130 02");	/* mod 97 */
	none("DE88 3704 0044 0532 0130 00");
	none("DE89370400440532013000X");
	none("de89370400440532013000");
	none("DE8937040044053201300");		/* too short for DE */
}

static void
t_passport(void)
{
	found("45 08 123456", "passport=45 08 123456");
	found("Паспорт: 4508 123456", "passport=4508 123456");
	found("паспорт серия 4508 № 123456 выдан", "passport=4508 № 123456");
	found("ПАСПОРТ 4508123456", "passport=4508123456");
	found("passport series 4508 123456", "passport=4508 123456");
	none("4508 123456");			/* no context */
	none("заказ 4508 123456 от 12.03.2024");
	none("45 08 1234567");
	none("ID 4508 12345");
}

static void
t_snils(void)
{
	found("СНИЛС 112-233-445 95", "snils=112-233-445 95");
	found("112-233-445-95", "snils=112-233-445-95");
	found("11223344595", "snils=11223344595");
	found("112 233 445 95", "snils=112 233 445 95");
	none("112-233-445 96");
	none("11223344596");
	none("112-233-445 950");
}

static void
t_inn(void)
{
	found("ИНН 7707083893", "inn=7707083893");
	found("ИНН:7707083893;", "inn=7707083893");
	found("ИНН 500100732259", "inn=500100732259");
	none("ИНН 7707083894");			/* check digit */
	none("500100732258");
	none("ts 1701234567 and 1733580000");	/* timestamps */
	none("77070838931");
	none("ИНН7707083893");
}

static void
t_ip(void)
{
	found("host 192.168.1.10:8080", "ip=192.168.1.10");
	found("10.0.0.1", "ip=10.0.0.1");
	found("(8.8.8.8).", "ip=8.8.8.8");
	found("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip=2001:0db8:85a3:0000:0000:8a2e:0370:7334");
	found("addr fe80::1 up", "ip=fe80::1");
	found("[2001:db8::8a2e:370:7334]", "ip=2001:db8::8a2e:370:7334");
	found("::1", "ip=::1");
	found("::ffff:192.0.2.1", "ip=::ffff:192.0.2.1");
	found("allow 10.0.0.0/8, 2001:db8::/32.", "ip=10.0.0.0/8|ip=2001:db8::/32");
	none("10.0.0.0/8/9");
	none("version 1.2.3");
	none("1.2.3.4.5");
	none("v1.2.3.4");
	none("256.1.1.1");
	none("1.2.3.4-rc1");
	none("12:30:45");
	none("00:1A:2B:3C:4D:5E");
	none("std::vector and Foo::bar");
	none("1:2:3:4:5:6:7:8:9");
	none("x[1::2] and a[::2] and b[10::20]");
}

static void
t_secret(void)
{
	const char	*pem = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAA=\n"
	    "-----END RSA PRIVATE KEY-----\nafter";

	found("key sk-proj-abcdefghijklmnopqrstuvwx12 ok", "secret=sk-proj-abcdefghijklmnopqrstuvwx12");
	found("sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ.", "secret=sk-ant-api03-ABCDEFGHIJKLMNOPQRSTUVWXYZ");
	found("AKIAIOSFODNN7EXAMPLE", "secret=AKIAIOSFODNN7EXAMPLE");
	found("ghp_abcdefghijklmnopqrstuvwxyz0123456789", "secret=ghp_abcdefghijklmnopqrstuvwxyz0123456789");
	found("github_pat_11ABCDEFG0123456789_abcdefghijkl", "secret=github_pat_11ABCDEFG0123456789_abcdefghijkl");
	found("AIzaSyA1234567890abcdefghijklmnopqrstuv", "secret=AIzaSyA1234567890abcdefghijklmnopqrstuv");
	found("xoxb-1234567890-abcdefghij", "secret=xoxb-1234567890-abcdefghij");
	found("t=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123", "secret=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.sig_Abc-123");
	found("Authorization: Bearer abcdef0123456789XYZ", "secret=abcdef0123456789XYZ");
	found("api_key=Zx81kQ0pLm2", "secret=Zx81kQ0pLm2");
	found("OPENAI_API_KEY = \"k3yV4lue9xyz\"", "secret=k3yV4lue9xyz");
	found("{\"password\": \"hunter2hunter\"}", "secret=hunter2hunter");
	found("пароль: Qwerty123!", "secret=Qwerty123!");
	found(pem, "secret=-----BEGIN RSA PRIVATE KEY-----\nMIIEow\nAAA=\n-----END RSA PRIVATE KEY-----");
	found("-----BEGIN PRIVATE KEY-----\nMIIE", "secret=-----BEGIN PRIVATE KEY-----\nMIIE");
	none("-----BEGIN CERTIFICATE-----\nMIIE\n-----END CERTIFICATE-----");
	none("/* \"-----BEGIN ... PRIVATE KEY-----\" through its END line */");
	none("the -----BEGIN RSA PRIVATE KEY-----line");
	found("-----BEGIN OPENSSH PRIVATE KEY----- b3Blbn -----END OPENSSH PRIVATE KEY-----",
	    "secret=-----BEGIN OPENSSH PRIVATE KEY----- b3Blbn -----END OPENSSH PRIVATE KEY-----");
	none("secret = secret_resolve(ref, why);");
	none("pc.api_key = provider_key_secret(&c->key);");
	none("token = token_ok(handler)");
	none("Authorization: Bearer $LLMGATE_MASTER_KEY");
	none("password = correcthorse");
	none("sk-short");
	none("ask-abcdefghijklmnopqrstuvwxyz12");
	none("the token: a word");
	none("password=aaaaaaaaaa");
	none("Bearer short");
	none("AKIAIOSFODNN7EXAMPLEX");
	none("keyword=Zx81kQ0pLm2");
}

static void
t_confidential(void)
{
	struct det_rules	*r;
	struct det_span		 sp[4];

	found("Это КОНФИДЕНЦИАЛЬНО.", "confidential=КОНФИДЕНЦИАЛЬНО");
	found("Коммерческая   тайна: да", "confidential=Коммерческая   тайна");
	found("Для служебного\nпользования", "confidential=Для служебного\nпользования");
	found("CONFIDENTIAL", "confidential=CONFIDENTIAL");
	found("a Trade Secret.", "confidential=Trade Secret");
	found("For Internal Use Only!", "confidential=Internal Use Only");
	found("«строго секретно»", "confidential=строго секретно");
	none("confidentiality");
	none("неконфиденциально");
	none("коммерческая информация");
	none("trade secrets");
	/* Configured lists: ё folds to е, '*' is a stem. */
	r = det_rules_new();
	det_rules_clear_keywords(r);
	ok(det_rules_keyword(r, "") == -1, "empty keyword refused");
	ok(det_rules_keyword(r, "   ") == -1, "blank keyword refused");
	ok(det_rules_keyword(r, "-x") == -1, "keyword starting with punctuation refused");
	ok(det_rules_keyword(r, "ещё  секрет") == 0, "keyword added");
	ok(det_rules_keyword(r, "персональн*") == 0, "stem added");
	is_int(det_scan(r, ALL, "ЕЩЕ секрет", strlen("ЕЩЕ секрет"), sp, 4), 1, "ё folds to е");
	is_int(det_scan(r, ALL, "Персональные данные", strlen("Персональные данные"), sp, 4), 1, "stem");
	is_int(sp[0].len, 24, "stem takes the whole word");
	is_int(det_scan(r, ALL, "конфиденциально", strlen("конфиденциально"), sp, 4), 0, "cleared defaults");
	det_rules_free(r);
}

static void
t_ordinary(void)
{
	none("Цена 1 499 руб., скидка 15%, итого 12 345,67 ₽.");
	none("Order #100234 shipped 2024-12-07 at 12:30:45Z");
	none("Дата: 07.12.2024, заказ № 4567891, версия 1.2.3.4.5");
	none("pip install foo==1.2.3 && curl http://example.com/a?id=12345");
	none("timestamp 1733580000123 and id 9f86d081884c7d659a2feaa0c55ad015");
	none("for (int i = 0; i < 100; i++) x[i] = i * 31337;");
	none("{\"id\": 123456789, \"price\": 4990.00, \"qty\": 3}");
	none("The system prompt says ignore, then continue.");
	none("");
}

static void
t_overlap(void)
{
	/* The card's digits would also make a phone's start; one span. */
	found("4111111111111111 и 89123456789", "card=4111111111111111|phone=89123456789");
	/* An e-mail whose local part is a keyword is an e-mail. */
	found("confidential@corp.com", "email=confidential@corp.com");
	/* A secret after a name is the value, the name stays. */
	found("token=sk-abcdefghijklmnopqrstuvwxyz", "secret=sk-abcdefghijklmnopqrstuvwxyz");
	/* Adjacent findings, punctuation between. */
	found("a@b.io;10.0.0.1;7707083893", "email=a@b.io|ip=10.0.0.1|inn=7707083893");
	/* Only the kinds asked for. */
	is_str(spans(DET_BIT(DET_IP), "a@b.io 10.0.0.1"), "ip=10.0.0.1", "mask: ip only");
	is_str(spans(0, "a@b.io 10.0.0.1"), "", "mask: nothing");
}

static void
t_many(void)
{
	char		 text[8192];
	struct det_span	 sp[4];
	size_t		 n = 0, k;

	for (k = 0; k < 100; k++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, "u%zu@x.io ", k);
	is_int(det_scan(R, ALL, text, n, sp, 4), 100, "count beyond max");
	is_int(sp[3].off, 24, "the first max stored");
}

/* det_hold: the tail held back. */
static size_t
hold(const char *s)
{
	return det_hold(R, ALL, s, strlen(s));
}

static void
t_hold(void)
{
	char	 big[600];

	is_int(hold("Hello world. "), 0, "clean end: nothing held");
	is_int(hold(""), 0, "empty");
	is_int(hold("Hello wor"), 3, "a word may go on");
	is_int(hold("write to ivan@exa"), 8, "an e-mail's start");
	is_int(hold("card 4276 1234 "), 10, "a grouped number with its blank");
	is_int(hold("call +7 (912) 345-"), 13, "a phone's start");
	is_int(hold("серия 4508 № "), 9, "a passport's series and sign");
	is_int(hold("Это коммерческая "), 25, "a keyword phrase's first word");
	is_int(hold("Это для служебного "), 28, "two words of a phrase");
	is_int(hold("Это коммерческий "), 0, "not a keyword's start");
	is_int(hold("x -----BEGIN RSA PRIVATE KEY-----\nMIIE\nAB "), 40, "a private key not ended");
	is_int(hold("-----BEGIN RSA PRIVATE KEY-----\nA\n-----END RSA PRIVATE KEY-----\n"), 0, "a private key ended");
	is_int(det_hold(R, 0, "Hello wor", 9), 0, "no kinds: nothing held");
	memset(big, 'a', sizeof(big));
	is_int(det_hold(R, ALL, big, sizeof(big)), DET_HOLD_MAX, "never more than DET_HOLD_MAX");
	memcpy(big + 300, "ж", 2);
	ok(det_hold(R, ALL, big, 301 + DET_HOLD_MAX) <= DET_HOLD_MAX, "capped on a character");
}

/*
 * Random bytes (digits, separators, letters, UTF-8 pieces and broken
 * UTF-8) in buffers of their exact size, so that valgrind sees any read
 * past the end: spans in order, not overlapping, inside the text; the
 * hold never more than the text nor DET_HOLD_MAX.
 */
static void
t_random(void)
{
	static const char alpha[] = "0123456789 -+().:@_=\"'/abcdefxyzABCDEFKX\n";
	static const unsigned char hi[] = { 0xD0, 0xD1, 0xB0, 0x9F, 0xE2, 0x84,
	    0x96, 0xC2, 0xA0, 0xF0, 0xFF, 0x80 };
	struct det_span	 sp[64];
	unsigned char	*buf;
	uint32_t	 seed = 7;
	size_t		 n, k, got, h;
	int		 t, bad = 0;

	for (t = 0; t < 3000; t++) {
		seed = seed * 1103515245u + 12345u;
		n = (seed >> 16) % 300;
		if ((buf = malloc(n ? n : 1)) == NULL)
			break;
		for (k = 0; k < n; k++) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 5 == 0)
				buf[k] = hi[(seed >> 20) % sizeof(hi)];
			else
				buf[k] = (unsigned char)alpha[(seed >> 20) %
				    (sizeof(alpha) - 1)];
		}
		got = det_scan(R, ALL, (const char *)buf, n, sp, 64);
		for (k = 0; k < got && k < 64; k++)
			if (sp[k].len == 0 || sp[k].off + sp[k].len > n ||
			    (k > 0 && sp[k].off < sp[k - 1].off + sp[k - 1].len))
				bad++;
		h = det_hold(R, ALL, (const char *)buf, n);
		if (h > n || h > DET_HOLD_MAX)
			bad++;
		free(buf);
	}
	ok(bad == 0, "3000 random texts: spans in order and inside, holds bounded");
}

int
main(void)
{
	const char	*names[4];

	if ((R = det_rules_new()) == NULL)
		return 1;
	t_names();
	t_email();
	t_phone();
	t_card();
	t_iban();
	t_passport();
	t_snils();
	t_inn();
	t_ip();
	t_secret();
	t_confidential();
	t_ordinary();
	t_overlap();
	t_many();
	t_hold();
	t_random();
	ok(det_injection(R, "hello", 5, names, 4) >= 0, "det_injection answers");
	det_rules_free(R);
	return tap_done();
}
