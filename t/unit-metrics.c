/* unit-metrics.c: the shared metrics file: exact counts from many processes at once, a full table folding into "other", gauges of a SIGKILLed process, key names as labels, the metrics_allow matcher. */
#include <sys/wait.h>

#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../src/buf.h"
#include "../src/config.h"
#include "../src/metrics.h"
#include "../src/usage.h"
#include "tap.h"

#define PROCS	8
#define EACH	5000

static char	 dir[256];

static struct config *
load(const char *extra)
{
	struct config	*c;
	char		 ini[300], err[512];
	FILE		*fp;

	snprintf(ini, sizeof(ini), "%s/c.ini", dir);
	fp = fopen(ini, "w");
	fprintf(fp, "[gateway]\ndata_dir = %s\naccounting = off\n%s\n"
	    "[provider p]\nbase_url = http://p/v1\napi_key = none\n", dir,
	    extra);
	fclose(fp);
	if ((c = config_load(ini, err, sizeof(err))) == NULL)
		printf("# %s\n", err);
	return c;
}

static void
row(struct usage_row *u, const char *model, int status, int ms)
{
	memset(u, 0, sizeof(*u));
	snprintf(u->route, sizeof(u->route), "chat");
	snprintf(u->provider, sizeof(u->provider), "p");
	snprintf(u->served, sizeof(u->served), "%s", model);
	snprintf(u->agent, sizeof(u->agent), "a\"b\\c");	/* escaped */
	u->status = (uint16_t)status;
	u->prompt = 3;
	u->completion = 5;
	u->cost = 1234567;	/* 1.234567 USD */
	u->latency_ms = ms;
	u->stream = 1;
	u->ttft_ms = ms / 2;
}

/* The sum of every sample of name whose line holds want (may be NULL). */
static double
sum(const struct buf *b, const char *name, const char *want)
{
	const char	*p = b->data, *e, *end = b->data + b->len;
	size_t		 n = strlen(name);
	double		 s = 0;
	char		 line[2048];

	for (; p < end; p = e + 1) {
		if ((e = memchr(p, '\n', (size_t)(end - p))) == NULL)
			break;
		if ((size_t)(e - p) >= sizeof(line))
			continue;
		memcpy(line, p, (size_t)(e - p));
		line[e - p] = '\0';
		if (strncmp(line, name, n) != 0 || (line[n] != '{' &&
		    line[n] != ' '))
			continue;
		if (want != NULL && strstr(line, want) == NULL)
			continue;
		s += strtod(strrchr(line, ' ') + 1, NULL);
	}
	return s;
}

static void
expose(const struct config *c, struct buf *b, struct metrics_totals *t)
{
	buf_reset(b);
	metrics_expose(c, NULL, b, t);
}

static void
test_processes(const struct config *c)
{
	struct metrics_totals	 t;
	struct usage_row	 u;
	struct buf		 b;
	pid_t			 pids[PROCS];
	char			 model[32];
	int			 i, j, st, bad = 0, fast;
	double			 base_req, base_dur;

	buf_init(&b, 64u << 20);
	expose(c, &b, &t);	/* what test_key_label left */
	base_req = sum(&b, "llm_requests_total", NULL);
	base_dur = sum(&b, "llm_request_duration_seconds_count", NULL);
	for (i = 0; i < PROCS; i++) {
		if ((pids[i] = fork()) == 0) {
			for (j = 0; j < EACH; j++) {
				snprintf(model, sizeof(model), "m%d", j % 4);
				row(&u, model, j % 10 == 0 ? 503 : 200,
				    j % 700);
				metrics_record(&u);
			}
			_exit(0);
		}
	}
	for (i = 0; i < PROCS; i++)
		if (waitpid(pids[i], &st, 0) == -1 || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			bad++;
	is_int(bad, 0, "%d processes recorded %d rows each", PROCS, EACH);
	expose(c, &b, &t);
	is_int(t.requests - (uint64_t)base_req, PROCS * EACH,
	    "no increment lost");
	is_int((long long)(sum(&b, "llm_requests_total", NULL) - base_req),
	    PROCS * EACH, "llm_requests_total sums to it");
	is_int((long long)sum(&b, "llm_requests_total", "model=\"m1\""),
	    PROCS * EACH / 4, "a quarter of them for m1");
	is_int((long long)sum(&b, "llm_requests_errors_total", NULL),
	    PROCS * EACH / 10, "every tenth an error (503)");
	is_int((long long)sum(&b, "llm_requests_total", "status=\"503\""),
	    PROCS * EACH / 10, "the status label says 503");
	is_int((long long)sum(&b, "llm_tokens_total", "type=\"completion\""),
	    PROCS * EACH * 5, "completion tokens exact");
	/* m0 and 200: j % 4 == 0 but not j % 20 == 0, 1000 per process. */
	ok(strstr(b.data, "llm_cost_usd_total{route=\"chat\",provider=\"p\","
	    "model=\"m0\",status=\"200\",agent=\"a\\\"b\\\\c\"} 9876.536000\n")
	    != NULL, "cost exact in USD (8000 x 1.234567), label value "
	    "escaped");
	is_int((long long)(sum(&b, "llm_request_duration_seconds_count", NULL) -
	    base_dur), PROCS * EACH, "the duration histogram counts every row");
	is_int((long long)(sum(&b, "llm_request_duration_seconds_bucket",
	    "le=\"+Inf\"") - base_dur), PROCS * EACH, "its +Inf buckets too");
	for (fast = 0, j = 0; j < EACH; j++)
		fast += j % 700 <= 50;
	is_int((long long)(sum(&b, "llm_request_duration_seconds_bucket",
	    "le=\"0.050\"") - base_dur), PROCS * fast,
	    "le 0.050: the rows of 0..50 ms");
	is_int((long long)sum(&b, "llm_time_to_first_token_seconds_count",
	    NULL), PROCS * EACH * 9 / 10, "time to first token: the 200 "
	    "streams");
	buf_free(&b);
}

static void
test_overflow(const struct config *c)
{
	struct metrics_totals	 t, t0;
	struct usage_row	 u;
	struct buf		 b;
	char			 model[32];
	int			 i;

	buf_init(&b, 64u << 20);
	expose(c, &b, &t0);
	for (i = 0; i < METRICS_SERIES + 100; i++) {
		snprintf(model, sizeof(model), "many-%d", i);
		row(&u, model, 200, 1);
		metrics_record(&u);
	}
	expose(c, &b, &t);
	is_int(t.requests - t0.requests, METRICS_SERIES + 100,
	    "a full table loses no count");
	ok(t.series == METRICS_SERIES, "every slot in use (%" PRIu64 ")",
	    t.series);
	ok(t.overflows > 0 && sum(&b, "llmgate_metrics_series_overflow_total",
	    NULL) == (double)t.overflows, "the overflow is said (%" PRIu64
	    ")", t.overflows);
	is_int((long long)sum(&b, "llm_requests_total", "model=\"other\""),
	    (long long)t.overflows, "the rest went to model=\"other\"");
	row(&u, "m1", 200, 1);
	metrics_record(&u);
	expose(c, &b, &t0);
	is_int((long long)t0.overflows, (long long)t.overflows,
	    "a label set with a slot still counts in it");
	buf_free(&b);
}

static void
test_gauges(const struct config *c)
{
	struct metrics_totals	 t, t0;
	struct buf		 b;
	pid_t			 pid;
	int			 fd[2], st;
	char			 x;

	buf_init(&b, 64u << 20);
	expose(c, &b, &t0);
	if (pipe(fd) == -1)
		return;
	if ((pid = fork()) == 0) {
		metrics_worker(1);
		metrics_worker(1);
		metrics_busy(1);
		metrics_inflight(1);
		(void)write(fd[1], "x", 1);
		pause();
		_exit(0);
	}
	(void)read(fd[0], &x, 1);
	expose(c, &b, &t);
	is_int(t.inflight - t0.inflight, 1, "a child's request in flight");
	is_int(t.busy - t0.busy, 1, "its busy worker");
	is_int(t.workers - t0.workers, 2, "its two workers");
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	expose(c, &b, &t);
	is_int(t.inflight, t0.inflight, "SIGKILLed: its request is no "
	    "longer in flight");
	is_int(t.workers, t0.workers, "nor its workers");
	is_int((long long)sum(&b, "llm_requests_in_flight", NULL),
	    t0.inflight, "llm_requests_in_flight says so");
	metrics_inflight(1);
	expose(c, &b, &t);
	is_int(t.inflight - t0.inflight, 1, "this process's own");
	metrics_inflight(-1);
	close(fd[0]);
	close(fd[1]);
	buf_free(&b);
}

/* metrics_key_label = on: the key's name is a label too. */
static void
test_key_label(void)
{
	struct metrics_totals	 t;
	struct usage_row	 u;
	struct config		*c = load("metrics_key_label = on\n");
	struct buf		 b;

	ok(c != NULL && c->gw.metrics_key_label, "metrics_key_label = on");
	if (c == NULL)
		return;
	metrics_init(c, 1);
	row(&u, "mk", 201, 1);	/* apart from test_processes' rows */
	u.stream = 0;
	u.completion = 0;
	snprintf(u.key_name, sizeof(u.key_name), "k1");
	metrics_record(&u);
	metrics_record(&u);
	snprintf(u.key_name, sizeof(u.key_name), "k2");
	metrics_record(&u);
	buf_init(&b, 64u << 20);
	expose(c, &b, &t);
	is_int((long long)sum(&b, "llm_requests_total", "key=\"k1\""), 2,
	    "two rows of key k1 in their own series");
	is_int((long long)sum(&b, "llm_requests_total", "key=\"k2\""), 1,
	    "one of k2 in another");
	c->gw.metrics_key_label = 0;
	metrics_init(c, 1);
	u.key_name[0] = '\0';
	metrics_record(&u);
	expose(c, &b, &t);
	is_int((long long)sum(&b, "llm_requests_total", "model=\"mk\""), 4,
	    "turned off: a row without the label, the keys' series kept");
	ok(strstr(b.data, "llm_requests_total{route=\"chat\",provider=\"p\","
	    "model=\"mk\",status=\"201\",agent=\"a\\\"b\\\\c\"} 1\n") != NULL,
	    "no duplicate label set: the keyless series is apart");
	buf_free(&b);
	config_free(c);
}

static void
test_allow(void)
{
	const char	*list = "127.0.0.1, 10.0.0.0/8,192.168.1.128/25 ::1 "
			    "fd00::/8";
	char		 why[128];

	ok(metrics_addr_allowed(list, "127.0.0.1"), "127.0.0.1");
	ok(!metrics_addr_allowed(list, "127.0.0.2"), "not 127.0.0.2");
	ok(metrics_addr_allowed(list, "10.200.3.4"), "10.200.3.4 in /8");
	ok(!metrics_addr_allowed(list, "11.0.0.1"), "not 11.0.0.1");
	ok(metrics_addr_allowed(list, "192.168.1.200"), "in a /25");
	ok(!metrics_addr_allowed(list, "192.168.1.127"), "below the /25");
	ok(metrics_addr_allowed(list, "::1"), "::1");
	ok(metrics_addr_allowed(list, "fd12::5"), "fd12::5 in fd00::/8");
	ok(!metrics_addr_allowed(list, "fe80::1"), "not fe80::1");
	ok(!metrics_addr_allowed(list, "::ffff:10.0.0.1") ||
	    metrics_addr_allowed(list, "::ffff:10.0.0.1"),
	    "a mapped address is judged (either way)");
	ok(!metrics_addr_allowed(list, NULL), "no REMOTE_ADDR: no");
	ok(!metrics_addr_allowed(list, "10.0.0.0/8"), "a block is no address");
	ok(!metrics_addr_allowed(list, "garbage"), "garbage: no");
	ok(metrics_addr_allowed("0.0.0.0/0", "8.8.8.8"), "0.0.0.0/0: any IPv4");
	ok(metrics_allow_valid(list, why, sizeof(why)), "the list is valid");
	ok(!metrics_allow_valid("10.0.0.0/33", why, sizeof(why)) &&
	    strstr(why, "10.0.0.0/33") != NULL, "a /33 is not (%s)", why);
	ok(!metrics_allow_valid("10.0.0.1, host.example", why, sizeof(why)),
	    "a host name is not (%s)", why);
}

int
main(void)
{
	struct config	*c;

	snprintf(dir, sizeof(dir), "/tmp/unit-metrics.XXXXXX");
	if (mkdtemp(dir) == NULL)
		return 1;
	c = load("");
	ok(c != NULL && !c->gw.metrics_key_label, "metrics_key_label: off by "
	    "default");
	ok(c != NULL, "a config loads");
	test_key_label();	/* first: the table fills up below */
	if (c != NULL) {
		metrics_init(c, 1);
		test_processes(c);
		test_overflow(c);
		test_gauges(c);
	}
	test_allow();
	config_free(c);
	{
		char	 cmd[512];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		(void)system(cmd);
	}
	return tap_done();
}
