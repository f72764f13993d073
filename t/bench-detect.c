/*
 * bench-detect.c: what the guardrails cost. For realistic prompts
 * (English and Russian prose, code, JSON; with and without personal
 * data) the microseconds per KB of det_scan with every span kind plus
 * det_injection (the policy step's detection), and of redact_text (the
 * step when it redacts); then the microseconds per streamed event of
 * redact_stream_feed with ~20-byte deltas (output check and restore).
 * Not a test: it prints figures (contrib/bench/guard.sh builds and runs
 * it). Best of several runs, each at least RUN_NS long.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../src/redact.h"

#define RUN_NS	200000000.0	/* one timed run */
#define RUNS	5
#define TARGET	4096		/* prompt bytes */

static const char *const para[][2] = {
	{ "en-prose",
	  "The quarterly report shows that revenue grew by twelve percent while "
	  "operating costs stayed flat. Please summarise the main drivers, list "
	  "the risks the board should know about, and suggest three questions "
	  "for the next meeting. Keep the tone neutral and avoid jargon; the "
	  "audience is the whole company, not only the finance team.\n" },
	{ "ru-prose",
	  "Подготовьте, пожалуйста, краткое резюме отчёта за квартал: выручка "
	  "выросла на двенадцать процентов, а операционные расходы остались на "
	  "прежнем уровне. Перечислите основные риски и предложите три вопроса "
	  "к следующему заседанию совета директоров. Пишите нейтрально.\n" },
	{ "code",
	  "static int\nparse_header(const char *line, size_t n, struct hdr *h)\n{\n"
	  "\tsize_t\t i;\n\n\tfor (i = 0; i < n && line[i] != ':'; i++)\n"
	  "\t\tif (!isprint((unsigned char)line[i]))\n\t\t\treturn -1;\n"
	  "\th->name_len = i; /* version 1.2.3, see RFC 9110 */\n"
	  "\treturn i < n ? 0 : -1;\n}\n" },
	{ "json",
	  "{\"model\":\"gpt-4o-mini\",\"temperature\":0.2,\"max_tokens\":512,"
	  "\"messages\":[{\"role\":\"system\",\"content\":\"You are a helpful "
	  "assistant.\"},{\"role\":\"user\",\"content\":\"Order 100234 of "
	  "2024-12-07, total 4990.00, 3 items, id 9f86d081884c7d65\"}]}\n" },
	{ "en-pii",
	  "Customer John Smith (john.smith@example.com, +1-202-555-0143) paid "
	  "with card 4111 1111 1111 1111 from 192.168.10.24; his IBAN is DE89 "
	  "3704 0044 0532 0130 00 and the key sk-proj-abcdefghijklmnopqrstuv12. "
	  "This is confidential. Please draft a polite reply.\n" },
	{ "ru-pii",
	  "Клиент Иванов Иван, паспорт 4508 123456, СНИЛС 112-233-445 95, ИНН "
	  "7707083893, телефон +7 (912) 345-67-89, почта ivan.petrov@mail.ru. "
	  "Коммерческая тайна: не пересылать. Составьте вежливый ответ клиенту "
	  "о сроках возврата.\n" },
};

static double
now(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* A prompt of about TARGET bytes of one paragraph. */
static size_t
prompt(const char *p, char *out, size_t max)
{
	size_t	 n = 0, l = strlen(p);

	while (n + l < max && n < TARGET) {
		memcpy(out + n, p, l);
		n += l;
	}
	out[n] = '\0';
	return n;
}

static volatile size_t sink;

/* Nanoseconds per call of the policy step's detection over s. */
static double
time_scan(const struct det_rules *r, const char *s, size_t n)
{
	struct det_span	 sp[64];
	const char	*names[8];
	double		 t0, best = 1e30, t;
	long		 it, iters;
	int		 run;

	for (run = 0; run < RUNS; run++) {
		iters = 0;
		t0 = now();
		do {
			for (it = 0; it < 100; it++) {
				sink += det_scan(r, DET_SPAN_MASK, s, n, sp, 64);
				sink += (size_t)det_injection(r, s, n, names, 8);
			}
			iters += 100;
		} while ((t = now() - t0) < RUN_NS);
		if (t / iters < best)
			best = t / iters;
	}
	return best;
}

static double
time_redact(const struct det_rules *r, const char *s, size_t n)
{
	struct redact_map	 m;
	struct buf		 out;
	double			 t0, best = 1e30, t;
	long			 iters;
	int			 run;

	buf_init(&out, 1 << 20);
	for (run = 0; run < RUNS; run++) {
		iters = 0;
		t0 = now();
		do {
			redact_map_init(&m);
			buf_reset(&out);
			redact_text(r, DET_SPAN_MASK, &m, s, n, &out, NULL);
			redact_map_free(&m);
			iters++;
		} while ((t = now() - t0) < RUN_NS);
		if (t / iters < best)
			best = t / iters;
	}
	buf_free(&out);
	return best;
}

/* Nanoseconds per redact_stream_feed of ~20 bytes (finish included). */
static double
time_stream(const struct det_rules *r, const struct redact_map *m,
    enum redact_out mode, const char *s, size_t n, long *events)
{
	struct redact_stream	 st;
	struct buf		 out;
	double			 t0, best = 1e30, t;
	long			 iters, ev;
	size_t			 k, d;
	int			 run;

	buf_init(&out, 1 << 22);
	for (run = 0; run < RUNS; run++) {
		iters = 0;
		t0 = now();
		do {
			redact_stream_init(&st, r, m, DET_SPAN_MASK, mode);
			buf_reset(&out);
			for (k = 0, ev = 0; k < n; k += d, ev++) {
				d = 17 + (k / 7) % 7;	/* 17 to 23 bytes */
				if (d > n - k)
					d = n - k;
				if (redact_stream_feed(&st, s + k, d, &out) != 0)
					break;
			}
			redact_stream_finish(&st, &out);
			redact_stream_free(&st);
			iters += ev;
		} while ((t = now() - t0) < RUN_NS);
		if (t / iters < best)
			best = t / iters;
		*events = ev;
	}
	buf_free(&out);
	return best;
}

int
main(void)
{
	static char		 text[TARGET + 1024];
	struct det_rules	*r;
	struct redact_map	 m;
	struct buf		 tmp;
	size_t			 k, n, nf;
	struct det_span		 sp[64];
	double			 ns, sum = 0;
	long			 ev;

	if ((r = det_rules_new()) == NULL)
		return 1;
	printf("# policy step over a prompt: det_scan (all span kinds) + "
	    "det_injection; redact_text\n");
	printf("%-10s %6s %8s %14s %14s\n", "prompt", "bytes", "findings",
	    "detect us/KB", "redact us/KB");
	for (k = 0; k < sizeof(para) / sizeof(*para); k++) {
		n = prompt(para[k][1], text, sizeof(text) - 1);
		nf = det_scan(r, DET_SPAN_MASK, text, n, sp, 64);
		ns = time_scan(r, text, n);
		sum += ns / (n / 1024.0);
		printf("%-10s %6zu %8zu %14.2f %14.2f\n", para[k][0], n, nf,
		    ns / 1000.0 / (n / 1024.0),
		    time_redact(r, text, n) / 1000.0 / (n / 1024.0));
	}
	printf("# mean detect: %.2f us/KB (target < 20)\n",
	    sum / 1000.0 / (sizeof(para) / sizeof(*para)));

	/* The answer's side: a request map to restore, ~20-byte deltas. */
	redact_map_init(&m);
	buf_init(&tmp, 1 << 20);
	redact_text(r, DET_SPAN_MASK, &m, "john.smith@example.com 4111111111111111",
	    39, &tmp, NULL);
	printf("# streamed answer: redact_stream_feed, 17-23 byte deltas\n");
	printf("%-10s %-7s %7s %14s\n", "answer", "mode", "events", "ns/event");
	for (k = 0; k < sizeof(para) / sizeof(*para); k++) {
		if (k != 0 && k != 1 && k != 4 && k != 5)
			continue;
		n = prompt(para[k][1], text, sizeof(text) - 1);
		ns = time_stream(r, &m, REDACT_OUT_OFF, text, n, &ev);
		printf("%-10s %-7s %7ld %14.0f\n", para[k][0], "off", ev, ns);
		ns = time_stream(r, &m, REDACT_OUT_REDACT, text, n, &ev);
		printf("%-10s %-7s %7ld %14.0f\n", para[k][0], "redact", ev, ns);
	}
	buf_free(&tmp);
	redact_map_free(&m);
	det_rules_free(r);
	return (int)(sink & 0);
}
