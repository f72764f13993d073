/* unit-breaker.c: the circuit breaker state machine (injected clock), its shared file, and many processes at once with one killed holding the lock. */
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/breaker.h"
#include "../src/config.h"
#include "../src/log.h"
#include "../src/upstream.h"
#include "tap.h"

static int64_t	 fake_ms = 1700000000000LL;

static int64_t
fake_clock(void)
{
	return fake_ms;
}

static char	 dir[256], path[300];

static struct breaker_params
params(long failures, long open_s, long probes, long successes)
{
	struct breaker_params	 p;

	memset(&p, 0, sizeof(p));
	p.failures = failures;
	p.failure_rate = 0;
	p.window_ms = 60000;
	p.min_requests = 20;
	p.open_ms = open_s * 1000;
	p.probes = probes;
	p.successes = successes;
	p.lease_ms = 30000;
	return p;
}

/* The listing's entry for provider/model, or NULL. */
static const struct breaker_info *
info(struct breaker_region *r, const char *prov, const char *model)
{
	static struct breaker_info	 in[BREAKER_SLOTS];
	struct breaker_stats		 st;
	size_t				 i, n;

	n = breaker_region_list(r, in, BREAKER_SLOTS, &st);
	for (i = 0; i < n; i++)
		if (strcmp(in[i].provider, prov) == 0 &&
		    strcmp(in[i].model, model) == 0)
			return &in[i];
	return NULL;
}

static int
one(struct breaker_region *r, const struct breaker_params *p,
    const char *prov, const char *model, enum breaker_outcome o,
    enum breaker_verdict *v)
{
	struct breaker_ticket	 t;

	*v = breaker_region_admit(r, p, prov, model, &t);
	if (*v == BREAKER_SKIP)
		return -1;
	return breaker_region_record(&t, o, 10, o == BREAKER_FAILURE ?
	    "timeout: no first byte" : NULL);
}

static void
test_state_machine(struct breaker_region *r)
{
	struct breaker_params		 p = params(5, 60, 1, 3);
	struct breaker_ticket		 t, t2, late;
	const struct breaker_info	*in;
	enum breaker_verdict		 v;
	int				 i, stop;

	is_int(breaker_region_admit(r, &p, "prov", "m1", &t), BREAKER_ALLOW,
	    "an unknown deployment is allowed");
	ok(info(r, "prov", "m1") == NULL, "admitting alone takes no slot");
	for (i = 1; i <= 4; i++) {
		stop = one(r, &p, "prov", "m1", BREAKER_FAILURE, &v);
		ok(v == BREAKER_ALLOW && stop == 0, "failure %d of 5: still "
		    "allowed, retries too", i);
	}
	in = info(r, "prov", "m1");
	ok(in != NULL && in->state == BREAKER_CLOSED &&
	    in->consecutive_failures == 4, "4 failures: closed, counted");
	/* A success in between starts the count again. */
	one(r, &p, "prov", "m1", BREAKER_SUCCESS, &v);
	is_int(info(r, "prov", "m1")->consecutive_failures, 0,
	    "a success resets the consecutive failures");
	/* Neutral outcomes (the client's 4xx) count for nothing. */
	for (i = 0; i < 10; i++)
		one(r, &p, "prov", "m1", BREAKER_NEUTRAL, &v);
	for (i = 1; i <= 4; i++)
		one(r, &p, "prov", "m1", BREAKER_FAILURE, &v);
	one(r, &p, "prov", "m1", BREAKER_NEUTRAL, &v);
	in = info(r, "prov", "m1");
	ok(in->state == BREAKER_CLOSED && in->consecutive_failures == 4,
	    "neutral outcomes neither reset nor add");
	/* An attempt admitted now finishes after the breaker opened. */
	breaker_region_admit(r, &p, "prov", "m1", &late);
	stop = one(r, &p, "prov", "m1", BREAKER_FAILURE, &v);
	is_int(stop, 1, "the 5th failure opens: the caller stops trying");
	in = info(r, "prov", "m1");
	ok(in->state == BREAKER_OPEN && in->trips == 1 &&
	    in->opened_ms == fake_ms && in->next_probe_ms == fake_ms + 60000,
	    "open, opened now, next probe in open_s");
	ok(strstr(in->last_error, "no first byte") != NULL,
	    "the last error is kept");
	is_int(breaker_region_admit(r, &p, "prov", "m1", &t), BREAKER_SKIP,
	    "open: skipped");
	is_int(t.retry_after, 60, "Retry-After = 60 s to the next probe");
	fake_ms += 59001;
	breaker_region_admit(r, &p, "prov", "m1", &t);
	ok(t.verdict == BREAKER_SKIP && t.retry_after == 1,
	    "0.999 s before the probe: skipped, Retry-After 1");
	is_int(breaker_region_record(&late, BREAKER_SUCCESS, 5, NULL), 1,
	    "a late success while open changes nothing and says stop");
	is_int(info(r, "prov", "m1")->state, BREAKER_OPEN, "still open");
	is_int(breaker_region_admit(r, &p, "prov", "m2", &t), BREAKER_ALLOW,
	    "another model of the same provider is its own deployment");
	is_int(breaker_region_admit(r, &p, "prov2", "m1", &t), BREAKER_ALLOW,
	    "the same model at another provider too");

	fake_ms += 1000;
	is_int(breaker_region_admit(r, &p, "prov", "m1", &t), BREAKER_PROBE,
	    "after open_s: the first request is a probe");
	is_int(info(r, "prov", "m1")->state, BREAKER_HALF_OPEN, "half-open");
	is_int(breaker_region_admit(r, &p, "prov", "m1", &t2), BREAKER_SKIP,
	    "probes = 1: a second request meanwhile is skipped");
	is_int(t2.retry_after, 1, "with Retry-After 1");
	is_int(breaker_region_record(&t, BREAKER_FAILURE, 5000, "HTTP 503"), 1,
	    "a failed probe");
	in = info(r, "prov", "m1");
	ok(in->state == BREAKER_OPEN && in->trips == 2 &&
	    in->next_probe_ms == fake_ms + 60000, "reopens it for open_s");

	fake_ms += 60000;
	for (i = 1; i <= 3; i++) {
		is_int(breaker_region_admit(r, &p, "prov", "m1", &t),
		    BREAKER_PROBE, "probe %d", i);
		breaker_region_record(&t, BREAKER_SUCCESS, 20, NULL);
		in = info(r, "prov", "m1");
		if (i < 3)
			ok(in->state == BREAKER_HALF_OPEN &&
			    in->consecutive_successes == (uint32_t)i,
			    "probe %d succeeded: half-open, %d in a row", i, i);
	}
	in = info(r, "prov", "m1");
	ok(in->state == BREAKER_CLOSED && in->consecutive_failures == 0,
	    "3 probe successes close it");
	is_int(breaker_region_admit(r, &p, "prov", "m1", &t), BREAKER_ALLOW,
	    "closed: allowed");
	ok(in->requests > 0 && in->last_latency_ms == 20,
	    "requests and latency are kept");
}

/* A half-open breaker: only probes decide; leases of lost probes expire. */
static void
test_probes(struct breaker_region *r)
{
	struct breaker_params		 p = params(1, 10, 2, 2);
	struct breaker_ticket		 a, b, c, allowed;
	enum breaker_verdict		 v;

	breaker_region_admit(r, &p, "pp", "m", &allowed);
	one(r, &p, "pp", "m", BREAKER_FAILURE, &v);
	is_int(info(r, "pp", "m")->state, BREAKER_OPEN, "failures = 1: open");
	fake_ms += 10000;
	is_int(breaker_region_admit(r, &p, "pp", "m", &a), BREAKER_PROBE,
	    "probes = 2: first probe");
	is_int(breaker_region_admit(r, &p, "pp", "m", &b), BREAKER_PROBE,
	    "second probe at once");
	is_int(breaker_region_admit(r, &p, "pp", "m", &c), BREAKER_SKIP,
	    "a third waits");
	is_int(info(r, "pp", "m")->probes_in_flight, 2, "2 probes in flight");
	is_int(breaker_region_record(&allowed, BREAKER_SUCCESS, 1, NULL), 1,
	    "a request admitted before it opened does not decide");
	is_int(info(r, "pp", "m")->consecutive_successes, 0, "(not counted)");
	breaker_region_record(&a, BREAKER_NEUTRAL, 1, NULL);
	is_int(info(r, "pp", "m")->probes_in_flight, 1,
	    "a neutral probe gives its place back");
	is_int(breaker_region_admit(r, &p, "pp", "m", &a), BREAKER_PROBE,
	    "and another request probes");
	/* b and a are lost (their processes killed): leases run out. */
	fake_ms += p.lease_ms + 1;
	is_int(info(r, "pp", "m")->probes_in_flight, 0,
	    "probes never reported expire after their lease");
	is_int(breaker_region_admit(r, &p, "pp", "m", &c), BREAKER_PROBE,
	    "a new probe is let through");
	breaker_region_record(&c, BREAKER_SUCCESS, 1, NULL);
	breaker_region_record(&b, BREAKER_SUCCESS, 1, NULL);
	is_int(info(r, "pp", "m")->state, BREAKER_CLOSED,
	    "successes = 2 (one of them a late probe): closed");
}

static void
test_rate(struct breaker_region *r)
{
	struct breaker_params		 p = params(100, 30, 1, 1);
	enum breaker_verdict		 v;
	int				 i;

	p.failure_rate = 50;
	p.min_requests = 10;
	p.window_ms = 10000;
	for (i = 0; i < 9; i++)
		one(r, &p, "rate", "m", i % 2 ? BREAKER_FAILURE :
		    BREAKER_SUCCESS, &v);
	is_int(info(r, "rate", "m")->state, BREAKER_CLOSED,
	    "4 of 9 failed, below min_requests: closed");
	one(r, &p, "rate", "m", BREAKER_FAILURE, &v);
	is_int(info(r, "rate", "m")->state, BREAKER_OPEN,
	    "5 of 10 failed (50%%): open by rate, never 2 in a row");

	/* Old failures leave the window. */
	for (i = 0; i < 9; i++)
		one(r, &p, "rate2", "m", i % 2 ? BREAKER_FAILURE :
		    BREAKER_SUCCESS, &v);
	fake_ms += 11000;
	one(r, &p, "rate2", "m", BREAKER_FAILURE, &v);
	is_int(info(r, "rate2", "m")->window_requests, 1,
	    "after the window only the new attempt counts");
	is_int(info(r, "rate2", "m")->state, BREAKER_CLOSED,
	    "and the old failures no longer open it");
}

static void
test_reset(struct breaker_region *r)
{
	struct breaker_params	 p = params(1, 60, 1, 1);
	enum breaker_verdict	 v;

	one(r, &p, "rs", "a", BREAKER_FAILURE, &v);
	one(r, &p, "rs", "b", BREAKER_FAILURE, &v);
	one(r, &p, "rsx", "a", BREAKER_FAILURE, &v);
	is_int(breaker_region_reset(r, "rs/a"), 1, "reset PROVIDER/MODEL: one");
	ok(info(r, "rs", "a")->state == BREAKER_CLOSED &&
	    info(r, "rs", "b")->state == BREAKER_OPEN, "only that one closed");
	is_int(breaker_region_reset(r, "rs"), 2, "reset PROVIDER: its models "
	    "(not rsx's)");
	is_int(info(r, "rsx", "a")->state, BREAKER_OPEN, "rsx still open");
	ok(breaker_region_reset(r, NULL) >= 3, "reset all");
	is_int(info(r, "rsx", "a")->state, BREAKER_CLOSED, "all closed");
}

/* The wall clock going back an hour does not hold a breaker open. */
static void
test_clock_back(struct breaker_region *r)
{
	struct breaker_params	 p = params(1, 60, 1, 1);
	struct breaker_ticket	 t;
	enum breaker_verdict	 v;

	one(r, &p, "cb", "m", BREAKER_FAILURE, &v);
	is_int(breaker_region_admit(r, &p, "cb", "m", &t), BREAKER_SKIP,
	    "open");
	fake_ms -= 3600 * 1000;
	is_int(breaker_region_admit(r, &p, "cb", "m", &t), BREAKER_PROBE,
	    "the clock went back an hour: probed, not open for an hour more");
	breaker_region_record(&t, BREAKER_SUCCESS, 1, NULL);
	fake_ms += 3600 * 1000;
}

/* A fresh region file for the table tests. */
static struct breaker_region *
fresh(void)
{
	char	 err[512];

	unlink(path);
	return breaker_region_open(path, err, sizeof(err));
}

static void
test_full_table(void)
{
	struct breaker_region	*r = fresh();
	struct breaker_params	 p = params(1, 600, 1, 1);
	struct breaker_stats	 st;
	struct breaker_info	*in;
	struct breaker_ticket	 t;
	enum breaker_verdict	 v;
	char			 m[32];
	int			 i, bad = 0;

	in = calloc(BREAKER_SLOTS, sizeof(*in));
	for (i = 0; i < BREAKER_SLOTS; i++) {
		snprintf(m, sizeof(m), "m%d", i);
		fake_ms++;
		one(r, &p, "full", m, BREAKER_SUCCESS, &v);
	}
	breaker_region_list(r, in, BREAKER_SLOTS, &st);
	is_int(st.used, BREAKER_SLOTS, "every slot used by healthy deployments");
	fake_ms++;
	one(r, &p, "full", "newcomer", BREAKER_FAILURE, &v);
	breaker_region_list(r, in, BREAKER_SLOTS, &st);
	ok(st.evictions == 1 && info(r, "full", "newcomer") != NULL &&
	    info(r, "full", "m0") == NULL, "a newcomer takes the least "
	    "recently used healthy slot (m0)");
	is_int(info(r, "full", "newcomer")->state, BREAKER_OPEN,
	    "and its breaker works");
	/* Every slot open: nothing to evict. */
	for (i = 1; i < BREAKER_SLOTS; i++) {
		snprintf(m, sizeof(m), "m%d", i);
		one(r, &p, "full", m, BREAKER_FAILURE, &v);
	}
	breaker_region_list(r, in, BREAKER_SLOTS, &st);
	for (i = 0; i < (int)st.used; i++)
		bad += in[i].state != BREAKER_OPEN;
	is_int(bad, 0, "all %u slots open", st.used);
	is_int(breaker_region_admit(r, &p, "full", "stranger", &t),
	    BREAKER_ALLOW, "an untracked deployment is allowed (fail open)");
	is_int(breaker_region_record(&t, BREAKER_FAILURE, 1, "x"), 0,
	    "its failure cannot be kept: retries stay allowed");
	breaker_region_list(r, in, BREAKER_SLOTS, &st);
	ok(st.overflows >= 1, "the overflow is counted (%llu)",
	    (unsigned long long)st.overflows);
	free(in);
	breaker_region_close(r);
}

static void
test_file(void)
{
	struct breaker_region	*r, *r2;
	struct breaker_params	 p = params(1, 60, 1, 1);
	struct stat		 sb;
	enum breaker_verdict	 v;
	char			 err[512];
	int			 fd;

	r = fresh();
	ok(r != NULL, "a region is created");
	ok(stat(path, &sb) == 0 && (sb.st_mode & 0777) == 0660,
	    "mode 0660 like the store (got %o)", sb.st_mode & 0777);
	one(r, &p, "f", "m", BREAKER_FAILURE, &v);
	r2 = breaker_region_open(path, err, sizeof(err));
	ok(r2 != NULL && info(r2, "f", "m") != NULL &&
	    info(r2, "f", "m")->state == BREAKER_OPEN,
	    "a second opener sees the same state");
	breaker_region_close(r2);
	breaker_region_close(r);

	/* Garbage of another layout: rebuilt. */
	fd = open(path, O_WRONLY | O_TRUNC);
	ok(fd != -1 && write(fd, "LLMGBRK\0garbage", 15) == 15, "a file of "
	    "another layout (15 bytes)");
	close(fd);
	r = breaker_region_open(path, err, sizeof(err));
	ok(r != NULL && stat(path, &sb) == 0 && sb.st_size > 4096,
	    "is rebuilt to the right size");
	ok(r != NULL && info(r, "f", "m") == NULL, "with empty state");
	/* A header of another version (same magic). */
	if (r != NULL) {
		r2 = breaker_region_open(path, err, sizeof(err));
		breaker_region_close(r);
		fd = open(path, O_WRONLY);
		ok(pwrite(fd, "\x63\0\0\0", 4, 8) == 4, "version set to 99");
		close(fd);
		r = breaker_region_open(path, err, sizeof(err));
		ok(r != NULL && stat(path, &sb) == 0 && sb.st_size > 4096,
		    "another version: rebuilt");
		breaker_region_close(r);
		breaker_region_close(r2);
	}
	/* Unwritable place: an error, no crash. */
	r = breaker_region_open("/nonexistent-dir/breakers", err, sizeof(err));
	ok(r == NULL && strstr(err, "/nonexistent-dir") != NULL,
	    "an unusable data_dir gives an error naming it");
}

/* The config keys: [gateway] defaults, per-[provider] overrides. */
static void
test_config(void)
{
	struct config			*c;
	struct breaker_params		 p;
	const struct provider_cfg	*a, *b, *o;
	char				 ini[400], err[512];
	FILE				*fp;

	snprintf(ini, sizeof(ini), "%s/c.ini", dir);
	fp = fopen(ini, "w");
	fprintf(fp, "[gateway]\ndata_dir = %s\nbreaker_failures = 7\n"
	    "breaker_open_s = 30\n\n[provider a]\nbase_url = http://a/v1\n"
	    "api_key = none\nbreaker_open_s = 5\nbreaker_probes = 3\n"
	    "first_byte_timeout = 10\nconnect_timeout = 1000\n\n"
	    "[provider b]\nbase_url = http://b/v1\napi_key = none\n"
	    "breaker = off\n\n[provider o]\nbase_url = http://o/v1\n"
	    "api_key = none\n", dir);
	fclose(fp);
	c = config_load(ini, err, sizeof(err));
	ok(c != NULL, "a config with breaker keys loads (%s)", c ? "" : err);
	if (c == NULL)
		return;
	a = config_provider(c, "a");
	b = config_provider(c, "b");
	o = config_provider(c, "o");
	ok(c->gw.breaker.enabled && c->gw.breaker.failures == 7 &&
	    c->gw.breaker.successes == 3 && c->gw.breaker.failure_rate == 50,
	    "[gateway]: set keys and defaults (successes 3, rate 50)");
	breaker_params_of(a, &p);
	ok(a->breaker.enabled && p.failures == 7 && p.open_ms == 5000 &&
	    p.probes == 3 && p.successes == 3,
	    "[provider a]: its own open_s and probes, the gateway's failures");
	is_int(p.lease_ms, 1000 + 10000 + 5000,
	    "a probe's lease: connect + first byte timeouts + 5 s");
	ok(!b->breaker.enabled, "[provider b]: breaker = off");
	breaker_params_of(o, &p);
	ok(o->breaker.enabled && p.failures == 7 && p.open_ms == 30000,
	    "[provider o]: everything from [gateway]");
	config_free(c);
	fp = fopen(ini, "w");
	fprintf(fp, "[gateway]\ndata_dir = %s\nbreaker_probes = 9\n", dir);
	fclose(fp);
	c = config_load(ini, err, sizeof(err));
	ok(c == NULL && strstr(err, "breaker_probes") != NULL &&
	    strstr(err, ":3:") != NULL, "breaker_probes = 9 refused with "
	    "file:line (%s)", err);
	config_free(c);
	unlink(ini);
}

/* --- many processes ------------------------------------------------------- */

#define NCHILD	6
#define NREC	20000

/* Each child's count of records done, in memory the parent reads. */
static volatile uint64_t	*done_by;

static void
hammer(int idx)
{
	struct breaker_region	*r;
	struct breaker_params	 p = params(1000000, 60, 1, 1);
	struct breaker_ticket	 t;
	char			 err[512];
	int			 i;

	if ((r = breaker_region_open(path, err, sizeof(err))) == NULL)
		_exit(3);
	/* The last child runs until it is killed. */
	for (i = 0; i < NREC || idx == NCHILD - 1; i++) {
		breaker_region_admit(r, &p, "mp", "m", &t);
		breaker_region_record(&t, BREAKER_SUCCESS, 1, NULL);
		done_by[idx]++;
	}
	breaker_region_close(r);
	_exit(0);
}

static void
test_processes(void)
{
	struct breaker_region	*r = fresh();
	struct breaker_stats	 st;
	const struct breaker_info *in;
	pid_t			 holder, kids[NCHILD];
	int			 fds[2], i, status, clean = 0;
	uint64_t		 sum = 0, killed_done = 0;
	char			 c;

	breaker_set_clock(NULL);
	done_by = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED |
	    MAP_ANONYMOUS, -1, 0);
	memset((void *)done_by, 0, 4096);
	ok(r != NULL && pipe(fds) == 0, "region and pipe");

	/* A child takes the lock and keeps it until it is killed. */
	if ((holder = fork()) == 0) {
		struct breaker_region *hr;
		char e[256];

		hr = breaker_region_open(path, e, sizeof(e));
		if (hr == NULL || breaker_region_lock(hr) != 0)
			_exit(3);
		(void)!write(fds[1], "L", 1);
		for (;;)
			pause();
	}
	ok(read(fds[0], &c, 1) == 1 && c == 'L', "a child holds the lock");
	for (i = 0; i < NCHILD; i++)
		if ((kids[i] = fork()) == 0)
			hammer(i);
	usleep(100000);		/* they queue on the lock */
	kill(holder, SIGKILL);
	waitpid(holder, &status, 0);
	ok(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
	    "the holder was SIGKILLed holding the lock");
	/* The others finish; the last, still hammering, is killed then. */
	for (i = 0; i < NCHILD - 1; i++) {
		waitpid(kids[i], &status, 0);
		clean += WIFEXITED(status) && WEXITSTATUS(status) == 0;
	}
	for (i = 0; i < 10000 && done_by[NCHILD - 1] < NREC / 3; i++)
		usleep(1000);
	kill(kids[NCHILD - 1], SIGKILL);
	waitpid(kids[NCHILD - 1], &status, 0);
	is_int(clean, NCHILD - 1, "the other %d children finished",
	    NCHILD - 1);
	for (i = 0; i < NCHILD - 1; i++)
		sum += done_by[i];
	killed_done = done_by[NCHILD - 1];
	ok(WIFSIGNALED(status) && killed_done >= NREC / 3, "one child was "
	    "killed while hammering (after %llu records)",
	    (unsigned long long)killed_done);
	in = info(r, "mp", "m");
	breaker_region_list(r, NULL, 0, &st);
	ok(st.dead_owners >= 1, "the lock was taken over from its dead holder "
	    "(%llu time(s))", (unsigned long long)st.dead_owners);
	printf("# records: survivors %llu, killed child %llu, in the slot "
	    "%llu, lock timeouts %llu\n", (unsigned long long)sum,
	    (unsigned long long)killed_done,
	    in ? (unsigned long long)in->requests : 0ULL,
	    (unsigned long long)st.lock_timeouts);
	ok(in != NULL && in->requests + st.lock_timeouts >= sum +
	    killed_done && in->requests + st.lock_timeouts <= sum +
	    killed_done + 1, "the counts add up: every finished record is "
	    "in the slot (the killed child's last one at most in doubt)");
	ok(st.lock_timeouts == 0, "no caller gave up waiting for the lock");
	is_int(breaker_region_reset(r, "mp/m"), 1,
	    "the region still locks and works afterwards");
	breaker_region_close(r);
}

int
main(void)
{
	struct breaker_region	*r;
	char			 err[512];

	log_threshold = LOG_ERROR;
	snprintf(dir, sizeof(dir), "/tmp/unit-breaker.XXXXXX");
	if (mkdtemp(dir) == NULL) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, BREAKER_FILE);
	breaker_set_clock(fake_clock);
	r = breaker_region_open(path, err, sizeof(err));
	if (r == NULL) {
		printf("Bail out! %s\n", err);
		return 1;
	}
	test_state_machine(r);
	test_probes(r);
	test_rate(r);
	test_reset(r);
	test_clock_back(r);
	breaker_region_close(r);
	test_full_table();
	test_file();
	test_config();
	test_processes();
	unlink(path);
	rmdir(dir);
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
