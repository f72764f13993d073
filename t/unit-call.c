/*
 * unit-call.c: the one call loop (src/call.c) against a scripted upstream
 * in a thread: what each kind of attempt counts as for a circuit breaker
 * (enum call_outcome), what the client is answered, retries, the one
 * re-authentication after a 401 that uses up no try, refusals that move
 * on without hiding an earlier model's outage, and fallbacks.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/call.h"
#include "../src/config.h"
#include "../src/log.h"
#include "../src/route.h"
#include "loopback.h"
#include "tap.h"

#define SCRIPT_MAX	8

/* One scripted answer: status and body, or a silence (a hang). */
struct answer {
	int		 status;	/* 0: say nothing until the client leaves */
	const char	*body;
};

/* The upstream: answers in script order, one connection each. */
static struct loopback	 up;
static struct {
	pthread_mutex_t	 lock;
	struct answer	 script[SCRIPT_MAX];
	int		 n, next;
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void
serve_one(int c)
{
	char		 in[8192];
	struct answer	 a = { 500, "{}" };
	struct pollfd	 p;

	loopback_read(c, in, sizeof(in));
	pthread_mutex_lock(&srv.lock);
	if (srv.next < srv.n)
		a = srv.script[srv.next];
	srv.next++;
	pthread_mutex_unlock(&srv.lock);
	if (a.status == 0) {
		/* Silent until the gateway gives up and closes. */
		p.fd = c;
		p.events = POLLIN;
		while (poll(&p, 1, 100) == 0 || read(c, in, sizeof(in)) > 0)
			;
		return;
	}
	loopback_reply(c, a.status, a.body);
}

/* The upstream's next answers, in order. */
static void
script(int n, const struct answer *a)
{
	pthread_mutex_lock(&srv.lock);
	if (n > 0)
		memcpy(srv.script, a, sizeof(*a) * (size_t)n);
	srv.n = n;
	srv.next = 0;
	pthread_mutex_unlock(&srv.lock);
}

static int
served_count(void)
{
	int	 n;

	pthread_mutex_lock(&srv.lock);
	n = srv.next;
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static struct config		 cfg;
static struct worker		 worker;
static struct provider_cfg	 prov_openai, prov_giga, prov_dead;
static char			 base_url[128], dead_url[128];

/* What the test route does with a candidate: per provider name. */
static int	 refuse_giga;		/* build refuses gigachat candidates */
static int	 no_token;		/* build has no credentials */

static int
test_build(struct call *c, const struct candidate *cand,
    const struct provider_ops *p, struct provider_call *pc,
    struct provider_error *e)
{
	if (refuse_giga && cand->provider == &prov_giga) {
		provider_error_set(e, "invalid_request_error",
		    "unsupported_content", "cannot say it to %s",
		    cand->provider->name);
		return -1;
	}
	if (no_token)
		return -2;
	if (provider_url(pc, cand->provider, "/x") == -1 ||
	    buf_puts(&pc->body, "{}") != BUF_OK)
		return -1;
	return 0;
}

/* A 2xx body {"ok":1} is an answer; any other 2xx is malformed. */
static enum call_delivery
test_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	if (resp->result != UP_OK)
		return CALL_UNSENT;
	if (resp->body.len != 8 || memcmp(resp->body.data, "{\"ok\":1}", 8)) {
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "malformed");
		return CALL_MALFORMED;
	}
	account_served(c->r, c->cand, c->attempts);
	http_send_raw_json(c->r, 200, resp->body.data, resp->body.len);
	return CALL_SENT;
}

static const struct call_ops test_ops = {
	.build = test_build,
	.deliver = test_deliver,
};

static void
provider(struct provider_cfg *p, const char *name, enum provider_type t,
    const char *url)
{
	memset(p, 0, sizeof(*p));
	p->name = (char *)name;
	p->type = t;
	p->base_url = (char *)url;
	p->api_key = (char *)"sk-test";
	p->available = 1;
	p->connect_timeout = 2000;
	p->first_byte_timeout = 1;
	p->idle_timeout = 5;
	p->timeout = 20;
	p->max_tokens_field = (char *)"max_tokens";
}

static void
add(struct plan *pl, struct provider_cfg *p, const char *name)
{
	struct candidate	*c = &pl->c[pl->n++];

	memset(c, 0, sizeof(*c));
	snprintf(c->name, sizeof(c->name), "%s", name);
	snprintf(c->upstream, sizeof(c->upstream), "%s", name);
	c->provider = p;
}

/* What one run of the loop did. */
struct run {
	int			 status;	/* the HTTP status answered */
	int			 attempts;
	enum call_outcome	 outcome;	/* of the last attempt */
	char			 out[4096];	/* what the client got */
};

/* Run the loop over pl with its output to a file instead of stdout. */
static void
run(struct plan *pl, struct run *res)
{
	struct request	 r;
	struct call	 c;
	char		 path[] = "/tmp/unit-call.XXXXXX";
	ssize_t		 n;
	int		 fd, saved;

	memset(res, 0, sizeof(*res));
	http_request_init(&r, &cfg, &worker, NULL);
	call_init(&c, &r, pl, &test_ops, NULL, 1 << 16);
	fflush(stdout);
	if ((fd = mkstemp(path)) == -1 || (saved = dup(1)) == -1)
		abort();
	unlink(path);
	dup2(fd, 1);
	call_run(&c);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	lseek(fd, 0, SEEK_SET);
	n = read(fd, res->out, sizeof(res->out) - 1);
	res->out[n > 0 ? n : 0] = '\0';
	close(fd);
	res->status = r.status;
	res->attempts = c.attempts;
	res->outcome = c.outcome;
	http_request_free(&r);
}

/* An internal call's deliver: the answer is kept, nothing is sent. */
static enum call_delivery
quiet_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	if (resp->result != UP_OK)
		return CALL_UNSENT;
	return CALL_SENT;
}

static const struct call_ops quiet_ops = {
	.build = test_build,
	.deliver = quiet_deliver,
};

/*
 * A quiet call (the semantic cache's embeddings): call_run returns the
 * status, the request answers nothing and keeps its attempts.
 */
static void
test_quiet(void)
{
	struct plan	 pl;
	struct request	 r;
	struct call	 c;
	struct answer	 a[2];
	char		 path[] = "/tmp/unit-call.XXXXXX";
	int		 fd, saved, st[2];
	off_t		 len;

	cfg.retry.attempts = 1;
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	add(&pl, &prov_openai, "n");
	a[0] = (struct answer){ 503, "{}" };
	a[1] = (struct answer){ 500, "{}" };
	fflush(stdout);
	if ((fd = mkstemp(path)) == -1 || (saved = dup(1)) == -1)
		abort();
	unlink(path);
	dup2(fd, 1);
	http_request_init(&r, &cfg, &worker, NULL);
	script(2, a);
	call_init(&c, &r, &pl, &quiet_ops, NULL, 1 << 16);
	c.quiet = 1;
	st[0] = call_run(&c);
	a[0] = (struct answer){ 200, "{\"ok\":1}" };
	script(1, a);
	call_init(&c, &r, &pl, &quiet_ops, NULL, 1 << 16);
	c.quiet = 1;
	st[1] = call_run(&c);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	len = lseek(fd, 0, SEEK_END);
	close(fd);
	is_int(st[0], 500, "quiet: both candidates fail: the last status "
	    "returned");
	is_int(st[1], 200, "quiet: an answer: 200 returned");
	ok(len == 0 && r.status == 0 && !r.headers_sent && r.attempts == 0,
	    "quiet: nothing sent, the request's status and attempts left "
	    "alone (%lld bytes, status %d, attempts %d)", (long long)len,
	    r.status, r.attempts);
	http_request_free(&r);
}

/* One candidate, one try: what one answer counts as. */
static void
classify(struct answer a, int status, enum call_outcome want,
    const char *what)
{
	struct plan	 pl;
	struct run	 res;

	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	script(1, &a);
	run(&pl, &res);
	is_int(res.status, status, "%s: answered %d", what, status);
	is_str(call_outcome_names[res.outcome], call_outcome_names[want],
	    "%s: counts as %s", what, call_outcome_names[want]);
}

static void
test_outcomes(void)
{
	struct plan	 pl;
	struct run	 res;

	cfg.retry.attempts = 1;
	classify((struct answer){ 200, "{\"ok\":1}" }, 200, CALL_SUCCESS,
	    "200");
	classify((struct answer){ 503, "{}" }, 503, CALL_FAILURE, "503");
	classify((struct answer){ 429, "{}" }, 429, CALL_FAILURE, "429");
	classify((struct answer){ 404, "{}" }, 404, CALL_FAILURE,
	    "404 (a model the deployment lacks)");
	classify((struct answer){ 403, "{}" }, 502, CALL_FAILURE,
	    "403 (the gateway's key)");
	classify((struct answer){ 400, "{\"error\":{\"message\":\"no\"}}" },
	    400, CALL_CLIENT_ERROR, "400 (the client's request)");
	classify((struct answer){ 422, "{}" }, 422, CALL_CLIENT_ERROR, "422");
	classify((struct answer){ 200, "{\"ok\":" }, 502, CALL_FAILURE,
	    "a malformed 2xx");
	classify((struct answer){ 0, NULL }, 504, CALL_TIMEOUT,
	    "no first byte");

	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_dead, "m");
	run(&pl, &res);
	is_int(res.status, 502, "nobody listening: 502");
	is_str(call_outcome_names[res.outcome], "failure",
	    "nobody listening counts as a failure");
	ok(strstr(res.out, "upstream_unreachable") != NULL,
	    "upstream_unreachable");

	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	no_token = 1;
	script(0, NULL);
	run(&pl, &res);
	no_token = 0;
	is_int(res.status, 502, "no credentials: 502");
	is_str(call_outcome_names[res.outcome], "failure",
	    "no credentials counts as a failure");
	ok(strstr(res.out, "upstream_auth_error") != NULL &&
	    res.attempts == 0 && served_count() == 0,
	    "upstream_auth_error, nothing sent");

	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_giga, "g");
	refuse_giga = 1;
	run(&pl, &res);
	refuse_giga = 0;
	is_int(res.status, 400, "a refusal alone: the client's 400");
	is_str(call_outcome_names[res.outcome], "client_error",
	    "a refusal is not counted against the deployment");
}

static void
test_loop(void)
{
	struct plan	 pl;
	struct run	 res;
	struct answer	 a[4];

	/* A 503, then the same model again. */
	cfg.retry.attempts = 2;
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	a[0] = (struct answer){ 503, "{}" };
	a[1] = (struct answer){ 200, "{\"ok\":1}" };
	script(2, a);
	run(&pl, &res);
	is_int(res.status, 200, "503 then 200: retried");
	is_int(res.attempts, 2, "two attempts");
	ok(strstr(res.out, "X-Llmgate-Attempts: 2") != NULL,
	    "X-Llmgate-Attempts: 2");

	/*
	 * A 401 from a protocol that renews its credentials: once more at
	 * once, using up no try (one allowed), on a route that is not chat.
	 */
	cfg.retry.attempts = 1;
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_giga, "g");
	a[0] = (struct answer){ 401, "{\"message\":\"expired\"}" };
	a[1] = (struct answer){ 200, "{\"ok\":1}" };
	script(2, a);
	run(&pl, &res);
	is_int(res.status, 200, "401 then 200: re-authenticated");
	is_int(res.attempts, 2, "the re-authenticated try used up no try");
	/* ... but only once. */
	a[0] = (struct answer){ 401, "{}" };
	a[1] = (struct answer){ 401, "{}" };
	a[2] = (struct answer){ 200, "{\"ok\":1}" };
	script(3, a);
	run(&pl, &res);
	is_int(res.status, 502, "401 twice: 502");
	is_int(served_count(), 2, "re-authenticated once only");
	ok(strstr(res.out, "upstream_auth_error") != NULL,
	    "upstream_auth_error");
	/* A 401 from a protocol with no credentials of its own moves on. */
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	add(&pl, &prov_openai, "m2");
	a[0] = (struct answer){ 401, "{}" };
	a[1] = (struct answer){ 200, "{\"ok\":1}" };
	script(2, a);
	run(&pl, &res);
	ok(res.status == 200 && strstr(res.out, "X-Llmgate-Model: m2") !=
	    NULL, "an OpenAI 401 falls back to the next model");

	/* A refusal moves on at once, without an attempt. */
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_giga, "g");
	add(&pl, &prov_openai, "m");
	refuse_giga = 1;
	a[0] = (struct answer){ 200, "{\"ok\":1}" };
	script(1, a);
	run(&pl, &res);
	ok(res.status == 200 && res.attempts == 1 &&
	    strstr(res.out, "X-Llmgate-Model: m") != NULL,
	    "a refusal moves on to the next model");

	/* ... and never hides an earlier model's outage. */
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	add(&pl, &prov_giga, "g");
	a[0] = (struct answer){ 503, "{\"error\":{\"message\":\"down\"}}" };
	script(1, a);
	run(&pl, &res);
	refuse_giga = 0;
	is_int(res.status, 503, "an outage, then a refusal: the outage");
	ok(strstr(res.out, "unsupported_content") == NULL,
	    "not the refusal");

	/* No credentials is an outage a later refusal does not hide. */
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	add(&pl, &prov_giga, "g");
	refuse_giga = 1;
	no_token = 1;
	script(0, NULL);
	run(&pl, &res);
	refuse_giga = 0;
	no_token = 0;
	ok(res.status == 502 && strstr(res.out, "upstream_auth_error") !=
	    NULL, "no credentials, then a refusal: the 502");

	/* A client's 400 is final: no fallback. */
	memset(&pl, 0, sizeof(pl));
	add(&pl, &prov_openai, "m");
	add(&pl, &prov_openai, "m2");
	a[0] = (struct answer){ 400, "{}" };
	a[1] = (struct answer){ 200, "{\"ok\":1}" };
	script(2, a);
	run(&pl, &res);
	is_int(res.status, 400, "a client's 400 goes back");
	is_int(served_count(), 1, "without trying the fallback");
}

/* The smooth weighted round robin deployments are spread by. */
static void
test_swrr(void)
{
	static const long	 w31[] = { 3, 1 }, w521[] = { 5, 2, 1 };
	char			 seq[16];
	size_t			 i, count[3], start;
	int			 exact = 1;

	for (i = 0; i < 4; i++)
		seq[i] = (char)('a' + call_swrr(w31, 2, i));
	seq[4] = '\0';
	is_str(seq, "aaba", "3:1 is a a b a: smooth, not a a a b");
	for (i = 0; i < 8; i++)
		seq[i] = (char)('a' + call_swrr(w521, 3, i));
	seq[8] = '\0';
	is_str(seq, "abaacaba", "5:2:1 in one cycle of 8");
	/* Any 8 consecutive turns (the cycle repeats): exactly 5, 2, 1. */
	for (start = 0; start < 8; start++) {
		memset(count, 0, sizeof(count));
		for (i = start; i < start + 8; i++)
			count[call_swrr(w521, 3, i % 8)]++;
		exact &= count[0] == 5 && count[1] == 2 && count[2] == 1;
	}
	ok(exact, "every window of 8 consecutive turns holds 5, 2 and 1");
}

int
main(void)
{
	int		 fd, port;

	log_threshold = LOG_ERROR;
	signal(SIGPIPE, SIG_IGN);
	if (loopback_start(&up, serve_one, 0) == -1) {
		printf("Bail out! no test server\n");
		return 1;
	}
	snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d/v1",
	    up.port);
	/* A port nobody listens on. */
	if ((fd = loopback_listen(&port)) != -1) {
		close(fd);
		snprintf(dead_url, sizeof(dead_url), "http://127.0.0.1:%d/v1",
		    port);
	}
	cfg.gw.max_body = 1 << 20;
	cfg.gw.max_upstream_body = 1 << 20;
	cfg.retry.backoff_ms = 1;
	cfg.retry.backoff_max_ms = 2;
	cfg.retry.retry_after_max = 30;
	cfg.retry.on_status[0] = 503;
	cfg.retry.non_status = 1;
	provider(&prov_openai, "oai", PROVIDER_OPENAI, base_url);
	provider(&prov_giga, "giga", PROVIDER_GIGACHAT, base_url);
	provider(&prov_dead, "dead", PROVIDER_OPENAI, dead_url);
	worker.curl = upstream_handle_new();

	test_outcomes();
	test_loop();
	test_quiet();
	test_swrr();

	upstream_handle_free(worker.curl);
	loopback_stop(&up);
	return tap_done();
}
