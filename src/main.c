/* main.c: options, config, then a FastCGI accept loop (elastic thread pool) or one CGI request. */
#define _GNU_SOURCE	/* pthread_timedjoin_np */
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <fcgiapp.h>

#include "alert.h"
#include "billing.h"
#include "config.h"
#include "store.h"
#include "log.h"
#include "metrics.h"
#include "provider.h"
#include "route.h"
#include "upstream.h"
#include "usage.h"

#define THREADS_MAX	4096	/* --threads; as [gateway] workers_max */

static const struct config	*cfg;
static struct store		*store;	/* shared by the threads, or NULL */
static pthread_mutex_t		 store_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 store_cond = PTHREAD_COND_INITIALIZER;
static int			 stopping;	/* the keeper stops */
static volatile sig_atomic_t	 hung;		/* a store call is stuck */

#define MODELS_MAX	32	/* --model names of one --check-config */
#define RECLAIM_S	2	/* dead processes' reservations are looked for */
#define STORE_RETRY_MS	1000	/* a missing or left store is reopened */
#define HUNG_EXIT_MS	2000	/* after a hang, other requests get this long */
#define FDS_RESERVED	64	/* descriptors kept for the store, logs, curl */
#define FDS_PER_WORKER	3	/* web server connection, upstream, resolver */
#define BUSY_WARN_S	60	/* "all workers busy" is said at most this often */
#define ACCEPT_BACKOFF_US 100000	/* after accept() failed (EMFILE...) */

/* An idle thread waiting for its turn to accept. */
struct waiter {
	pthread_cond_t	 cond;
	int		 turn;		/* it is this thread's turn */
	struct waiter	*prev, *next;	/* the stack, most recent first */
};

/*
 * The elastic pool. Idle threads wait for their turn to accept (a stack:
 * the most recently idle goes first); the one whose turn it is sits in
 * accept(). A thread that takes a connection starts new ones before it
 * serves, so that workers_spare stay idle while fewer than workers_max
 * run: a request never waits for a thread below the maximum. An idle
 * thread that waited workers_idle_timeout for its turn exits while more
 * than workers_spare are idle. Threads are detached; run_fastcgi waits
 * for the count to reach zero.
 */
static struct pool {
	pthread_mutex_t	 lock;
	pthread_cond_t	 gone;		/* a thread exited */
	pthread_attr_t	 attr;		/* detached, small stack */
	long		 max, spare, idle_s;
	long		 threads;	/* alive */
	long		 idle;		/* waiting for a connection */
	long		 peak;		/* most threads at once */
	long		 started;	/* ever: the next worker id */
	time_t		 busy_said;	/* last "all workers busy" */
	time_t		 accept_said;	/* last accept() failure said */
	int		 accepting;	/* a thread has the turn to accept */
	struct waiter	*waiters;	/* idle threads waiting for the turn */
	int		 draining;	/* shutting down: start none */
} pool = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.gone = PTHREAD_COND_INITIALIZER,
};

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: llmgate [--config FILE] [--threads N]\n"
	    "       llmgate [--config FILE] --check-config [--model NAME]...\n"
	    "\n"
	    "An OpenAI-compatible LLM gateway. A web server starts it as a\n"
	    "FastCGI responder (lighttpd, Apache mod_fcgid, spawn-fcgi) or\n"
	    "runs it as a CGI program for one request.\n"
	    "\n"
	    "  -c, --config FILE   configuration (default: $LLMGATE_CONFIG,\n"
	    "                      then %s/llmgate.ini)\n"
	    "  -t, --threads N     FastCGI: at most N worker threads, i.e.\n"
	    "                      requests at once; [gateway] workers_max\n"
	    "                      caps it too (the smaller wins). Threads\n"
	    "                      start as requests need them\n"
	    "      --check-config  validate the configuration and exit\n"
	    "      --model NAME    with --check-config: the provider, upstream\n"
	    "                      id and price (template) that serve NAME\n"
	    "      --help-config   list every configuration key and exit\n"
	    "  -V, --version       print the version and exit\n"
	    "  -h, --help          this text\n", SYSCONFDIR);
}

static struct store *open_store(enum store_mode);

/* Bill and release the reservations of processes that died (SIGKILL). */
static void
reclaim(struct store *s, void *arg)
{
	struct reclaim_result	 res;
	struct timespec		 now;

	(void)arg;
	store_wall(&now);
	if (billing_reclaim(s, now.tv_sec, &res, NULL, NULL) != STORE_OK)
		log_warn("reclaim: %s", store_error());
}

/* The store requests use now (NULL: none). */
static struct store *
current_store(void)
{
	struct store	*s;

	pthread_mutex_lock(&store_lock);
	s = store;
	pthread_mutex_unlock(&store_lock);
	return s;
}

/*
 * The keeper opens the store when the process has none (it could not be
 * opened yet) or has left a panicked one: the open runs recovery when
 * this process finds itself alone on it. Requests never wait for it:
 * meanwhile they get 503 store_unavailable (the master key is served,
 * its rows go to the fallback file) and /health answers.
 */
static void *
keeper_main(void *arg)
{
	struct timespec	 until;
	struct store	*cur, *s;

	(void)arg;
	pthread_mutex_lock(&store_lock);
	while (!stopping) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += STORE_RETRY_MS / 1000;
		pthread_cond_timedwait(&store_cond, &store_lock, &until);
		cur = store;
		if (stopping || (cur != NULL && !store_left(cur)))
			continue;
		pthread_mutex_unlock(&store_lock);
		s = open_store(STORE_WORKER);
		pthread_mutex_lock(&store_lock);
		if (s == NULL)
			continue;
		store = s;
		log_info("store opened%s", cur != NULL ? " again after a panic" :
		    " on a later try");
		/* Left: no call is in it and none can start; stop its threads. */
		pthread_mutex_unlock(&store_lock);
		store_close(cur);
		pthread_mutex_lock(&store_lock);
	}
	pthread_mutex_unlock(&store_lock);
	return NULL;
}

/* Serve one request; everything it allocated is gone when this returns. */
static void
serve(struct worker *w, FCGX_Request *fcgx)
{
	struct request	 r;

	if (w->id >= 0)
		w->store = current_store();
	http_request_init(&r, cfg, w, fcgx);
	store_owner(&r);
	metrics_busy(1);
	router_dispatch(&r);
	metrics_busy(-1);
	store_owner(NULL);
	http_flush(&r);
	http_request_free(&r);
}

/*
 * Exit path, for a request whose thread stays blocked in the store: a
 * client not yet answered gets 503 store_unavailable (to retry) instead
 * of the web server's own error for a vanished program. Its thread is
 * blocked for good inside Berkeley DB and writes nothing meanwhile.
 */
static void
answer_stuck(void *owner)
{
	struct request	*r = owner;

	if (r->headers_sent)
		return;
	http_header(r, "Retry-After", "1");
	http_error(r, 503, "service_unavailable_error", "store_unavailable",
	    NULL, "The accounting store is unavailable; retry the request.");
	if (r->fcgx != NULL)
		FCGX_Finish_r(r->fcgx);
}

/* Exit with calls stuck in the store: their rows and their clients. */
static void
exit_stuck(struct store *s)
{
	store_rescue(s);
	store_stuck_owners(s, answer_stuck);
	_exit(1);
}

/*
 * A store call stuck in a panicked environment cannot be taken back: the
 * process exits (the web server starts another), after the other
 * threads' requests had HUNG_EXIT_MS to finish into the fallback file.
 */
static void
on_hang(const char *why)
{
	log_error("store: %s: this process exits", why);
	hung = 1;
	kill(getpid(), SIGTERM);
}

static void
on_hang_cgi(const char *why)
{
	log_error("store: %s: exiting", why);
	exit_stuck(store);
}

/*
 * The store is opened once per process. Without it the gateway still
 * answers the master key (usage goes to the fallback file) and says why.
 */
static struct store *
open_store(enum store_mode mode)
{
	static char	 last[512];	/* the keeper's retries: said once */
	static time_t	 said;
	struct store	*s;
	char		 err[512];
	time_t		 now;

	if (!cfg->gw.accounting)
		return NULL;
	s = store_open(cfg->gw.data_dir, mode,
	    strcmp(cfg->gw.durability, "nosync") == 0,
	    cfg->gw.checkpoint_interval, err, sizeof(err));
	now = time(NULL);
	if (s == NULL && (strcmp(err, last) != 0 || now - said >= 300)) {
		log_error("store unavailable (%s): %s; only the master key is "
		    "served, usage goes to %s", store_health(NULL), err,
		    cfg->gw.fallback_file);
		snprintf(last, sizeof(last), "%s", err);
		said = now;
	}
	if (s != NULL)
		last[0] = '\0';
	if (s != NULL && mode == STORE_WORKER &&
	    store_every(s, RECLAIM_S, reclaim, NULL) == -1)
		log_error("cannot start the reclaim thread: reservations of "
		    "dead processes wait for another process");
	return s;
}

static void	*worker_main(void *);

/* Start one idle worker; the pool lock is held. 0 or -1. */
static int
spawn_locked(void)
{
	pthread_t	 tid;
	int		 rc;

	pool.threads++;
	pool.idle++;
	if ((rc = pthread_create(&tid, &pool.attr, worker_main,
	    (void *)pool.started)) != 0) {
		pool.threads--;
		pool.idle--;
		log_error("cannot start a worker thread: %s", strerror(rc));
		return -1;
	}
	pool.started++;
	if (pool.threads > pool.peak)
		pool.peak = pool.threads;
	return 0;
}

/* A connection was taken: keep workers_spare idle, up to workers_max. */
static void
grow_locked(void)
{
	time_t	 now;

	while (!pool.draining && pool.idle < pool.spare &&
	    pool.threads < pool.max)
		if (spawn_locked() == -1)
			return;
	if (pool.idle > 0 || pool.threads < pool.max)
		return;
	now = time(NULL);
	if (now - pool.busy_said >= BUSY_WARN_S) {
		log_warn("all %ld workers are busy: new requests wait for one "
		    "(workers_max, --threads)", pool.max);
		pool.busy_said = now;
	}
}

/* Wake the most recently idle waiter to accept next; pool lock held. */
static void
pass_turn_locked(void)
{
	struct waiter	*w;

	if ((w = pool.waiters) == NULL) {
		pool.accepting = 0;
		return;
	}
	pool.waiters = w->next;
	if (w->next != NULL)
		w->next->prev = NULL;
	w->next = w->prev = NULL;
	w->turn = 1;
	pool.accepting = 1;	/* reserved for w */
	pthread_cond_signal(&w->cond);
}

static void
unlink_waiter_locked(struct waiter *w)
{
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		pool.waiters = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	w->next = w->prev = NULL;
}

/*
 * Wait for this thread's turn to accept; 1: it has it, 0: the thread is
 * surplus (idle for idle_s while more than workers_spare are) and leaves,
 * -1: the process is shutting down. One thread accepts at a time; the
 * others wait on a stack, so the thread that finished last accepts next:
 * its upstream connection is warm, and the ones at the bottom time out.
 */
static int
wait_turn_locked(struct waiter *w)
{
	struct timespec	 until;

	if (!pool.accepting && !pool.draining) {
		pool.accepting = 1;
		return 1;
	}
	w->turn = 0;
	w->prev = NULL;
	w->next = pool.waiters;
	if (w->next != NULL)
		w->next->prev = w;
	pool.waiters = w;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += pool.idle_s;
	while (!w->turn && !pool.draining) {
		if (pthread_cond_timedwait(&w->cond, &pool.lock, &until) !=
		    ETIMEDOUT || w->turn)
			continue;
		if (pool.idle > pool.spare) {
			unlink_waiter_locked(w);
			pool.idle--;	/* decided here: no two leave for one */
			return 0;
		}
		until.tv_sec += pool.idle_s;
	}
	if (!w->turn) {		/* draining */
		unlink_waiter_locked(w);
		return -1;
	}
	return 1;
}

/*
 * Take the next request into req: 1, or 0 / -1 as wait_turn_locked (the
 * thread then leaves). The thread counts as idle until it has a request,
 * and starts others before it serves (grow_locked).
 */
static int
take_request(FCGX_Request *req, struct waiter *w)
{
	int	 rc, err;

	pthread_mutex_lock(&pool.lock);
	if ((rc = wait_turn_locked(w)) != 1) {
		pthread_mutex_unlock(&pool.lock);
		return rc;
	}
	pthread_mutex_unlock(&pool.lock);
	while ((rc = FCGX_Accept_r(req)) < 0) {
		err = errno;
		pthread_mutex_lock(&pool.lock);
		if (pool.draining) {
			pass_turn_locked();
			pthread_mutex_unlock(&pool.lock);
			return -1;
		}
		/* Out of descriptors or memory: not a reason to stop serving. */
		if (time(NULL) - pool.accept_said >= BUSY_WARN_S) {
			log_warn("accept: %s; trying again", strerror(err));
			pool.accept_said = time(NULL);
		}
		pthread_mutex_unlock(&pool.lock);
		usleep(ACCEPT_BACKOFF_US);
	}
	pthread_mutex_lock(&pool.lock);
	pass_turn_locked();
	pool.idle--;
	grow_locked();
	pthread_mutex_unlock(&pool.lock);
	return 1;
}

static void *
worker_main(void *arg)
{
	struct worker	 w;
	struct waiter	 me;
	FCGX_Request	 req;
	int		 rc = -1;

	pthread_setname_np(pthread_self(), "llmgate-worker");
	memset(&w, 0, sizeof(w));
	memset(&me, 0, sizeof(me));
	pthread_cond_init(&me.cond, NULL);
	w.id = (int)(long)arg;
	w.store = current_store();
	w.curl = upstream_handle_new();
	metrics_worker(1);
	FCGX_InitRequest(&req, 0, 0);
	while (w.curl != NULL && (rc = take_request(&req, &me)) == 1) {
		serve(&w, &req);
		FCGX_Finish_r(&req);
		pthread_mutex_lock(&pool.lock);
		pool.idle++;
		pthread_mutex_unlock(&pool.lock);
	}
	if (w.curl == NULL)
		log_error("cannot create a libcurl handle");
	FCGX_Free(&req, 1);
	metrics_worker(-1);
	upstream_handle_free(w.curl);
	pthread_mutex_lock(&pool.lock);
	if (rc != 0)		/* 0: take_request counted it out already */
		pool.idle--;
	pool.threads--;
	if (pool.threads == 0 && !pool.draining) {
		/* None left to accept: exit, so the web server starts another. */
		log_error("no worker thread left: this process exits");
		kill(getpid(), SIGTERM);
	}
	pthread_cond_broadcast(&pool.gone);
	pthread_mutex_unlock(&pool.lock);
	pthread_cond_destroy(&me.cond);
	return NULL;
}

/* Once a store call is stuck: exit when HUNG_EXIT_MS have passed. */
static void
exit_if_hung(void)
{
	static struct timespec	 hung_at;
	struct timespec		 now;

	if (!hung)
		return;
	if (hung_at.tv_sec == 0)
		clock_gettime(CLOCK_MONOTONIC, &hung_at);
	clock_gettime(CLOCK_MONOTONIC, &now);
	if ((now.tv_sec - hung_at.tv_sec) * 1000 >= HUNG_EXIT_MS) {
		log_error("store: a request stays blocked in the store: "
		    "exiting now");
		exit_stuck(current_store());
	}
}

/* Join a thread; once a store call is stuck, exit after HUNG_EXIT_MS. */
static void
join_bounded(pthread_t tid)
{
	struct timespec	 until;

	for (;;) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		if (pthread_timedjoin_np(tid, NULL, &until) == 0)
			return;
		exit_if_hung();
	}
}

/* Wait for every worker to leave, as join_bounded waits for one. */
static void
wait_workers_bounded(void)
{
	struct timespec	 until;

	pthread_mutex_lock(&pool.lock);
	while (pool.threads > 0) {
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_sec += 1;
		pthread_cond_timedwait(&pool.gone, &pool.lock, &until);
		pthread_mutex_unlock(&pool.lock);
		exit_if_hung();
		pthread_mutex_lock(&pool.lock);
	}
	pthread_mutex_unlock(&pool.lock);
}

/*
 * Each worker holds up to FDS_PER_WORKER descriptors: raise the soft
 * limit to the hard one, and keep workers_max within what it allows
 * (accept() failing with EMFILE would stall every connection).
 */
static long
fit_descriptors(long max)
{
	struct rlimit	 rl;
	long		 fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return max;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
			getrlimit(RLIMIT_NOFILE, &rl);
	}
	if (rl.rlim_cur == RLIM_INFINITY ||
	    (long)rl.rlim_cur >= FDS_RESERVED + max * FDS_PER_WORKER)
		return max;
	fit = ((long)rl.rlim_cur - FDS_RESERVED) / FDS_PER_WORKER;
	if (fit < 1)
		fit = 1;
	log_warn("%ld workers need %ld file descriptors, the limit is %ld: "
	    "at most %ld workers (raise LimitNOFILE / server.max-fds)", max,
	    FDS_RESERVED + max * FDS_PER_WORKER, (long)rl.rlim_cur, fit);
	return fit;
}

/*
 * FastCGI: an elastic pool of worker threads accepts on the inherited
 * socket (fd 0); the main thread waits for SIGTERM/SIGINT/SIGUSR1, then
 * lets busy workers finish their request and wakes idle ones from
 * accept().
 */
static int
run_fastcgi(long max)
{
	struct waiter	*w;
	pthread_t	 keeper;
	sigset_t	 set;
	long		 i, started;
	int		 sig = 0, keeping = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	/* After the mask: the store's threads inherit it. */
	store_set_hang_handler(on_hang);
	store = open_store(STORE_WORKER);
	if (cfg->gw.accounting &&
	    pthread_create(&keeper, NULL, keeper_main, NULL) == 0)
		keeping = 1;

	pool.max = fit_descriptors(max);
	pool.spare = cfg->gw.workers_spare < pool.max ?
	    cfg->gw.workers_spare : pool.max;
	pool.idle_s = cfg->gw.workers_idle;
	pthread_attr_init(&pool.attr);
	pthread_attr_setdetachstate(&pool.attr, PTHREAD_CREATE_DETACHED);
	if ((errno = pthread_attr_setstacksize(&pool.attr,
	    (size_t)cfg->gw.worker_stack * 1024)) != 0)
		log_warn("worker_stack %ld KiB: %s; the default stack is used",
		    cfg->gw.worker_stack, strerror(errno));
	pthread_mutex_lock(&pool.lock);
	for (i = 0; i < pool.spare; i++)
		if (spawn_locked() == -1)
			break;
	started = pool.threads;
	pthread_mutex_unlock(&pool.lock);
	if (started > 0) {
		log_info("FastCGI responder ready: %ld to %ld worker threads "
		    "(%ld KiB stacks, idle ones beyond %ld leave after %ld s), "
		    "config %s", pool.spare, pool.max, cfg->gw.worker_stack,
		    pool.spare, pool.idle_s, cfg->path);
		sigwait(&set, &sig);
		log_info("signal %d: finishing requests in progress", sig);
		pthread_mutex_lock(&pool.lock);
		pool.draining = 1;
		for (w = pool.waiters; w != NULL; w = w->next)
			pthread_cond_signal(&w->cond);
		pthread_mutex_unlock(&pool.lock);
		FCGX_ShutdownPending();
		shutdown(0, SHUT_RDWR);
		wait_workers_bounded();
		log_info("workers gone (at most %ld at once)", pool.peak);
	}
	if (keeping) {
		pthread_mutex_lock(&store_lock);
		stopping = 1;
		pthread_cond_signal(&store_cond);
		pthread_mutex_unlock(&store_lock);
		join_bounded(keeper);
	}
	pthread_attr_destroy(&pool.attr);
	store_close(store);
	return started > 0 ? 0 : 1;
}

/* CGI: exactly one request on stdin/stdout with the process environment. */
static int
run_cgi(void)
{
	struct worker	 w;
	int		 fd;

	if (getenv("REQUEST_METHOD") == NULL) {
		fprintf(stderr, "llmgate: not started by a web server (no "
		    "REQUEST_METHOD); see llmgate --help\n");
		return 2;
	}
	memset(&w, 0, sizeof(w));
	w.id = -1;	/* CGI: one open, no retry */
	if ((w.curl = upstream_handle_new()) == NULL) {
		log_error("cannot create a libcurl handle");
		return 1;
	}
	store_set_hang_handler(on_hang_cgi);
	w.store = store = open_store(STORE_ADMIN);
	/* No thread lives on to do it: each CGI request reclaims first. */
	if (store != NULL)
		reclaim(store, NULL);
	serve(&w, NULL);
	upstream_handle_free(w.curl);
	store_close(store);
	/*
	 * The answer is complete: end it for the web server, then let an
	 * open given up on leave the store before the exit cuts it.
	 */
	fflush(stdout);
	if ((fd = open("/dev/null", O_WRONLY | O_CLOEXEC)) != -1) {
		(void)dup2(fd, STDOUT_FILENO);
		close(fd);
	}
	store_wait_openers(STORE_LATE_OPEN_MS);
	return 0;
}

/* A broken configuration still answers a CGI request with a clear error. */
static void
cgi_config_error(void)
{
	fputs("Status: 500 Internal Server Error\r\n"
	    "Content-Type: application/json\r\n\r\n"
	    "{\"error\":{\"message\":\"the gateway configuration is invalid; "
	    "see the server error log\",\"type\":\"server_error\","
	    "\"param\":null,\"code\":\"config_error\"}}\n", stdout);
}

/*
 * A reservation that expires while its request still runs stops counting
 * against budgets and balances: say so when reservation_ttl is shorter
 * than the longest one request can take on one model.
 */
static void
warn_reservation_ttl(const struct config *c, int to_stdout)
{
	const char	*who = NULL;
	char		 msg[512];
	size_t		 i;
	long		 longest = 0;

	for (i = 0; i < c->nproviders; i++)
		if (c->providers[i].timeout * c->retry.attempts > longest) {
			longest = c->providers[i].timeout * c->retry.attempts;
			who = c->providers[i].name;
		}
	if (!c->gw.accounting || who == NULL || c->gw.reservation_ttl >= longest)
		return;
	snprintf(msg, sizeof(msg), "reservation_ttl %lds is shorter than a "
	    "request to provider %s can run (timeout x retry attempts = %lds): "
	    "a reservation may expire while its request runs",
	    c->gw.reservation_ttl, who, longest);
	if (to_stdout)
		printf("warning: %s\n", msg);
	else
		log_warn("%s", msg);
}

/* Every deployment of m (requests are spread among them by weight). */
static void
print_deployments(const struct model_cfg *m)
{
	const struct deployment_cfg	*d;
	char				 in[32], out[32];
	size_t				 i;

	for (i = 0; i < m->ndeploys; i++) {
		d = &m->deploys[i];
		money_format_usd(d->input_price >= 0 ? d->input_price :
		    m->input_price, in, sizeof(in));
		money_format_usd(d->output_price >= 0 ? d->output_price :
		    m->output_price, out, sizeof(out));
		printf("  deployment %s%s, upstream %s, weight %ld: input $%s, "
		    "output $%s per 1M tokens\n", d->provider->name,
		    d->provider->available ? "" : " (unavailable)",
		    d->upstream, d->weight, in, out);
	}
	if (m->context_fallback != NULL)
		printf("  context_fallback %s\n", m->context_fallback);
}

/* --check-config --model NAME: what serves the name and what prices it. */
static void
print_model(const struct config *c, const char *name)
{
	struct candidate	 k;
	char			 in[32], out[32];

	if (plan_lookup(c, name, &k) == -1) {
		printf("model %s: nothing serves it (404 model_not_found)\n",
		    name);
		return;
	}
	printf("model %s: provider %s%s, upstream %s, ", name,
	    k.provider->name, k.provider->available ? "" : " (unavailable)",
	    k.upstream);
	if (k.model == NULL) {
		printf("no price: %s\n", c->gw.unpriced_free ? "served free "
		    "(unpriced = free)" : "refused to client keys (unpriced = "
		    "refuse)");
		return;
	}
	money_format_usd(k.input_price, in, sizeof(in));
	money_format_usd(k.output_price, out, sizeof(out));
	printf("priced by [model %s]", k.model->name);
	if (strcmp(k.identity, k.model->name) != 0)
		printf(" (like %s)", k.identity);
	printf(": input $%s, output $%s per 1M tokens, at most %lld "
	    "completion tokens per choice\n", in, out,
	    (long long)k.max_tokens);
	print_deployments(k.model);
}

static void
print_summary(const struct config *c)
{
	size_t	 i, avail = 0, templates = 0;

	for (i = 0; i < c->nproviders; i++) {
		if (c->providers[i].available)
			avail++;
		else
			printf("warning: provider %s unavailable: %s\n",
			    c->providers[i].name, c->providers[i].unavailable);
	}
	for (i = 0; i < c->nmodels; i++)
		templates += c->models[i].is_template != 0;
	warn_reservation_ttl(c, 1);
	printf("%s: OK: %zu providers (%zu available), %zu models, %zu "
	    "templates\n", c->path, c->nproviders, avail,
	    c->nmodels - templates, templates);
}

int
main(int argc, char *argv[])
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "model", required_argument, NULL, 'M' },
		{ "help-config", no_argument, NULL, 'H' },
		{ "deliver-alert", required_argument, NULL, 'D' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct config	*c;
	const char	*path = NULL, *models[MODELS_MAX], *deliver = NULL;
	char		 err[1024], *end;
	long		 nthreads = 0;	/* 0: [gateway] workers_max */
	int		 ch, check = 0, cgi, rc;
	size_t		 nmodels = 0, i;
	enum log_level	 level;

	while ((ch = getopt_long(argc, argv, "c:t:Vh", longopts, NULL)) != -1)
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 't':
			nthreads = strtol(optarg, &end, 10);
			if (*end != '\0' || nthreads < 1 ||
			    nthreads > THREADS_MAX) {
				fprintf(stderr, "llmgate: --threads: expected "
				    "1..%d\n", THREADS_MAX);
				return 2;
			}
			break;
		case 'C':
			check = 1;
			break;
		case 'D':
			deliver = optarg;	/* started by alert.c */
			break;
		case 'M':
			if (nmodels == MODELS_MAX) {
				fprintf(stderr, "llmgate: at most %d --model\n",
				    MODELS_MAX);
				return 2;
			}
			models[nmodels++] = optarg;
			break;
		case 'H':
			config_print_help();
			return 0;
		case 'V':
			printf("llmgate %s\n", PACKAGE_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	if (optind != argc || (nmodels > 0 && !check)) {
		usage(stderr);
		return 2;
	}
	if (path == NULL && (path = getenv("LLMGATE_CONFIG")) == NULL)
		path = SYSCONFDIR "/llmgate.ini";

	cgi = !check && deliver == NULL && FCGX_IsCGI();
	signal(SIGPIPE, SIG_IGN);
	srandom((unsigned)time(NULL) ^ (unsigned)getpid());

	if ((c = config_load(path, err, sizeof(err))) == NULL) {
		fprintf(stderr, "llmgate: config error: %s\n", err);
		if (cgi && getenv("REQUEST_METHOD") != NULL)
			cgi_config_error();
		return 1;
	}
	provider_check(c);
	if (log_level_parse(c->gw.log_level, &level) == 0)
		log_threshold = level;
	log_json = c->gw.log_json;
	cfg = c;
	usage_set_rescue(c);
	if (deliver != NULL) {
		curl_global_init(CURL_GLOBAL_DEFAULT);
		rc = alert_deliver(c, deliver);
		curl_global_cleanup();
		config_free(c);
		return rc;
	}
	metrics_init(c, 1);
	alert_setup(c);
	if (check) {
		print_summary(c);
		for (i = 0; i < nmodels; i++)
			print_model(c, models[i]);
		config_free(c);
		return 0;
	}
	if (!cgi)
		warn_reservation_ttl(c, 0);
	if (c->gw.master_key == NULL && !cgi)
		log_warn("no master_key configured: only client keys from "
		    "llmgate-admin are admitted and the admin routes are closed");
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
		log_error("curl_global_init failed");
		config_free(c);
		return 1;
	}
	if (cgi)
		rc = run_cgi();
	else {
		FCGX_Init();
		rc = run_fastcgi(nthreads > 0 && nthreads < c->gw.workers_max ?
		    nthreads : c->gw.workers_max);
		store_wait_openers(STORE_LATE_OPEN_MS);
	}
	curl_global_cleanup();
	config_free(c);
	return rc;
}
