/*
 * unit-gigachat-token.c: GigaChat's token cache under concurrency, against
 * a token endpoint in threads that holds chosen answers until released:
 * threads needing one expired token make one request between them; a
 * refresh under way never stops a still valid token from serving; an
 * endpoint that hangs delays no other provider, and its waiters are
 * bounded by the request's timeout.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../src/gigachat-token.h"
#include "../src/log.h"
#define FIXTURE_HEADERS_ONLY
#include "fixture.h"
#include "loopback.h"
#include "tap.h"

#define KEY		"Y2xpZW50OnNlY3JldA=="
#define THREADS		4
#define BOUND_MS	30000	/* what a loaded machine may take, at most */

/* The endpoint: one thread a connection; path /X/oauth serves provider X. */
static struct loopback	 endpoint;
static struct {
	pthread_mutex_t	 lock;
	pthread_cond_t	 change;
	int		 stop;		/* held answers go at once */
	int		 hits[26];	/* per letter of the path */
	int		 held[26];	/* answer only once released */
	long		 expires_in[26];	/* ms from now */
} srv = { .lock = PTHREAD_MUTEX_INITIALIZER,
    .change = PTHREAD_COND_INITIALIZER };

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
serve_one(int c)
{
	char		 in[4096], body[256];
	size_t		 n;
	int		 i, n_hit;

	n = loopback_read(c, in, sizeof(in));
	i = n > 7 && in[6] >= 'a' && in[6] <= 'z' ? in[6] - 'a' : 0;
	pthread_mutex_lock(&srv.lock);
	n_hit = ++srv.hits[i];
	pthread_cond_broadcast(&srv.change);
	while (srv.held[i] && !srv.stop)
		pthread_cond_wait(&srv.change, &srv.lock);
	snprintf(body, sizeof(body), "{\"access_token\":\"tok-%c-%d\","
	    "\"expires_at\":%lld}", 'a' + i, n_hit,
	    (long long)(now_ms() + srv.expires_in[i]));
	pthread_mutex_unlock(&srv.lock);
	loopback_reply(c, 200, body);
}

static int
hits(char x)
{
	int	 n;

	pthread_mutex_lock(&srv.lock);
	n = srv.hits[x - 'a'];
	pthread_mutex_unlock(&srv.lock);
	return n;
}

static void
set(char x, int held, long expires_in)
{
	pthread_mutex_lock(&srv.lock);
	srv.held[x - 'a'] = held;
	srv.expires_in[x - 'a'] = expires_in;
	pthread_cond_broadcast(&srv.change);
	pthread_mutex_unlock(&srv.lock);
}

/* A provider whose token endpoint is /x/oauth of the test server. */
struct prov {
	struct provider_cfg	 p;
	char			 name[32], url[128];
};

static void
prov_init(struct prov *pv, char x, long timeout)
{
	memset(pv, 0, sizeof(*pv));
	snprintf(pv->name, sizeof(pv->name), "giga-%c", x);
	snprintf(pv->url, sizeof(pv->url), "http://127.0.0.1:%d/%c/oauth",
	    endpoint.port, x);
	pv->p.name = pv->name;
	pv->p.type = PROVIDER_GIGACHAT;
	pv->p.api_key = (char *)KEY;
	pv->p.auth_url = pv->url;
	pv->p.connect_timeout = 5000;
	pv->p.timeout = timeout;
}

/* One request's token, in a thread of its own. */
struct ask {
	const struct provider_cfg *p;
	pthread_t		 t;
	int			 rc;
	int			 finished;	/* under srv.lock */
	char			 auth[128];	/* the header it got */
	struct provider_error	 e;
};

static void *
ask_run(void *arg)
{
	struct ask		*a = arg;
	struct provider_call	 call;

	provider_call_init(&call, 4096);
	a->rc = gigachat_token_bearer(a->p, &call, &a->e);
	snprintf(a->auth, sizeof(a->auth), "%s", call.headers ?
	    call.headers->data : "");
	provider_call_free(&call);
	pthread_mutex_lock(&srv.lock);
	a->finished = 1;
	pthread_cond_broadcast(&srv.change);
	pthread_mutex_unlock(&srv.lock);
	return NULL;
}

static void
ask_start(struct ask *a, const struct provider_cfg *p)
{
	memset(a, 0, sizeof(*a));
	a->p = p;
	if (pthread_create(&a->t, NULL, ask_run, a) != 0)
		abort();
}

/* Poll cond() every 5 ms for up to BOUND_MS; 1 when it held. */
static int
wait_until(int (*cond)(void *), void *arg)
{
	struct timespec	 ts = { 0, 5000000L };
	int		 i;

	for (i = 0; i < BOUND_MS / 5; i++) {
		if (cond(arg))
			return 1;
		nanosleep(&ts, NULL);
	}
	return cond(arg);
}

static int
finished(void *arg)
{
	struct ask	*a = arg;
	int		 f;

	pthread_mutex_lock(&srv.lock);
	f = a->finished;
	pthread_mutex_unlock(&srv.lock);
	return f;
}

/* The endpoint of a letter has had at least n requests. */
struct reach {
	char	 x;
	int	 n;
};

static int
reached(void *arg)
{
	struct reach	*r = arg;

	return hits(r->x) >= r->n;
}

static const struct provider_cfg *waits_of;
static unsigned long waits_want;

static int
enough_waits(void *arg)
{
	struct gigachat_token_stats	 st;

	gigachat_token_stats(waits_of, &st);
	return st.waits >= waits_want;
}

/* One token for the whole pack: no token, then an expired one. */
static void
test_one_fetch(void)
{
	struct gigachat_token_stats	 st;
	struct prov			 a, b;
	struct ask			 q[THREADS], qb;
	struct reach			 r2 = { 'a', 2 }, r4 = { 'a', 4 };
	char				 want[64];
	int				 i, same = 1, ok_all = 1;

	prov_init(&a, 'a', 30);
	prov_init(&b, 'b', 30);

	/* A token that has expired by the time anyone asks again. */
	set('a', 0, 1);
	ask_start(&q[0], &a.p);
	pthread_join(q[0].t, NULL);
	is_int(q[0].rc, 0, "first token");
	is_int(hits('a'), 1, "one request for it");

	/* THREADS requests for the expired token while the endpoint holds. */
	set('a', 1, 30 * 60 * 1000L);
	for (i = 0; i < THREADS; i++)
		ask_start(&q[i], &a.p);
	ok(wait_until(reached, &r2) && hits('a') == 2,
	    "the endpoint was asked once for the expired token");
	waits_of = &a.p;
	waits_want = THREADS - 1;
	ok(wait_until(enough_waits, NULL), "the %d others wait for its result",
	    THREADS - 1);

	/* Another provider is served while this endpoint holds. */
	set('b', 0, 30 * 60 * 1000L);
	ask_start(&qb, &b.p);
	ok(wait_until(finished, &qb), "another provider's token request "
	    "ends while the first endpoint holds");
	for (i = 0, same = 0; i < THREADS; i++)
		same += finished(&q[i]);
	is_int(same, 0, "and before any request waiting for the first");
	same = 1;
	pthread_join(qb.t, NULL);
	is_str(qb.auth, "Authorization: Bearer tok-b-1", "it has its token");
	is_int(hits('a'), 2, "the first endpoint still holds one request");
	ask_start(&qb, &b.p);
	ok(wait_until(finished, &qb), "a cached token is handed out while "
	    "the other endpoint holds");
	pthread_join(qb.t, NULL);
	is_int(hits('b'), 1, "without a request");

	set('a', 0, 30 * 60 * 1000L);
	for (i = 0; i < THREADS; i++) {
		pthread_join(q[i].t, NULL);
		ok_all &= q[i].rc == 0;
		same &= strcmp(q[i].auth, "Authorization: Bearer tok-a-2") == 0;
	}
	ok(ok_all, "every waiting request got a token");
	ok(same, "the one fetched: %s", q[0].auth);
	is_int(hits('a'), 2, "two token requests in all");
	gigachat_token_stats(&a.p, &st);
	is_int((int)st.fetches, 2, "the cache counted two fetches");

	/* A refresh under way: the token still valid serves at once. */
	gigachat_token_drop(&a.p);
	set('a', 0, 30 * 1000L);	/* within the 60 s refresh margin */
	ask_start(&q[0], &a.p);
	pthread_join(q[0].t, NULL);
	is_int(hits('a'), 3, "a token close to expiry");
	set('a', 1, 30 * 60 * 1000L);
	ask_start(&q[0], &a.p);		/* starts the refresh, held */
	ok(wait_until(reached, &r4) && hits('a') == 4 && !finished(&q[0]),
	    "its refresh holds at the endpoint");
	snprintf(want, sizeof(want), "Authorization: Bearer tok-a-3");
	for (i = 1; i < THREADS; i++) {
		ask_start(&q[i], &a.p);
		ok(wait_until(finished, &q[i]), "request %d ends during the "
		    "refresh", i);
		pthread_join(q[i].t, NULL);
		is_str(q[i].auth, want, "with the old token");
	}
	set('a', 0, 30 * 60 * 1000L);
	pthread_join(q[0].t, NULL);
	is_str(q[0].auth, "Authorization: Bearer tok-a-4",
	    "the refresher has the new one");
	is_int(hits('a'), 4, "one refresh");
}

/* An endpoint that never answers: one timeout shared by its waiters. */
static void
test_hung(void)
{
	struct prov	 c;
	struct ask	 q[THREADS];
	struct reach	 r1 = { 'c', 1 };
	int		 i, failed = 1;

	prov_init(&c, 'c', 1);
	set('c', 1, 30 * 60 * 1000L);
	for (i = 0; i < THREADS; i++)
		ask_start(&q[i], &c.p);
	ok(wait_until(reached, &r1), "the hung endpoint was asked");
	for (i = 0; i < THREADS; i++) {
		ok(wait_until(finished, &q[i]), "request %d gives up in time",
		    i);
		pthread_join(q[i].t, NULL);
		failed &= q[i].rc == -1 && strcmp(q[i].e.code,
		    "upstream_auth_error") == 0;
	}
	ok(failed, "each with upstream_auth_error: %s", q[0].e.message);
	is_int(hits('c'), 1, "one request to the hung endpoint");
	set('c', 0, 0);
}

int
main(void)
{
	log_threshold = LOG_ERROR;
	signal(SIGPIPE, SIG_IGN);
	if (loopback_start(&endpoint, serve_one, 1) == -1) {
		printf("Bail out! no test server\n");
		return 1;
	}
	test_one_fetch();
	test_hung();
	pthread_mutex_lock(&srv.lock);
	srv.stop = 1;
	pthread_cond_broadcast(&srv.change);
	pthread_mutex_unlock(&srv.lock);
	loopback_stop(&endpoint);
	return tap_done();
}
