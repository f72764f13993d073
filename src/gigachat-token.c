/*
 * gigachat-token.c: GigaChat's OAuth client-credentials tokens.
 *
 * api_key is the "authorization key" (base64 of client_id:client_secret),
 * traded at auth_url for an access token that every worker thread of the
 * process shares until 60 s before it expires. The table lock is held for
 * memory only, never across the token request: one thread asks the
 * endpoint (through upstream.c: the provider's proxy, CA and timeouts)
 * while the others needing that provider's token wait for its result,
 * bounded by the request's own timeout, and requests to every other
 * provider go on. A token still valid is handed out without any network
 * call, even while its refresh is under way. After a failed request the
 * endpoint is left alone for AUTH_RETRY_MS and requests fail at once.
 */
#include <sys/random.h>

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gigachat-token.h"
#include "log.h"
#include "upstream.h"

#define DEFAULT_AUTH_URL	"https://ngw.devices.sberbank.ru:9443/api/v2/oauth"
#define DEFAULT_SCOPE		"GIGACHAT_API_PERS"
#define TOKEN_SLOTS		16
#define TOKEN_MAX		8192		/* bytes of one access token */
#define TOKEN_BODY_MAX		16384		/* bytes of a token response */
#define TOKEN_TIMEOUT		15L		/* s for one token request */
#define TOKEN_EARLY_MS		60000		/* refresh this long before expiry */
#define TOKEN_LAST_MS		5000		/* an old token serves until then */
#define TOKEN_LIFETIME_MS	(30 * 60 * 1000)	/* when none is given */
#define AUTH_RETRY_MS		5000		/* after a failed token request */

/* One provider's access token, or why there is none. */
struct token_slot {
	char			 provider[128];	/* "" when the slot is free */
	uint64_t		 fingerprint;	/* of the key, scope and auth_url */
	int64_t			 expires_ms;	/* unix ms; 0 without a token */
	int64_t			 failed_ms;	/* last failed token request */
	struct provider_error	 why;		/* its error */
	int			 fetching;	/* a thread asks the endpoint */
	uint64_t		 generation;	/* bumped when a fetch ends or
						   the slot changes hands */
	struct gigachat_token_stats stats;
	char			 token[TOKEN_MAX];
};

/* The lock guards the table, never a network call; done wakes waiters. */
static struct token_slot	 slots[TOKEN_SLOTS];
static pthread_mutex_t		 lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t		 done;
static pthread_once_t		 once = PTHREAD_ONCE_INIT;

static void
init_cond(void)
{
	pthread_condattr_t	 a;

	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&done, &a);
	pthread_condattr_destroy(&a);
}

static int64_t
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* n random bytes as 2n lowercase hex digits; -1 when there is no entropy. */
static int
random_hex(char *dst, size_t n)
{
	static const char	 hex[] = "0123456789abcdef";
	unsigned char		 b[32];
	size_t			 i;

	if (n > sizeof(b) || getrandom(b, n, 0) != (ssize_t)n)
		return -1;
	for (i = 0; i < n; i++) {
		dst[2 * i] = hex[b[i] >> 4];
		dst[2 * i + 1] = hex[b[i] & 15];
	}
	dst[2 * n] = '\0';
	return 0;
}

/* A UUID version 4 in its 36-character form (dst holds 37 bytes). */
static int
uuid4(char *dst)
{
	char	 h[33];

	if (random_hex(h, 16) == -1)
		return -1;
	h[12] = '4';
	h[16] = "89ab"[h[16] % 4];
	snprintf(dst, 37, "%.8s-%.4s-%.4s-%.4s-%.12s", h, h + 8, h + 12,
	    h + 16, h + 20);
	return 0;
}

static uint64_t
fnv1a(uint64_t h, const char *s)
{
	for (; s != NULL && *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return (h ^ 0xff) * 0x100000001b3ULL;
}

/* What a token was issued for: a changed key or scope needs a new one. */
static uint64_t
fingerprint(const struct provider_cfg *p)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	h = fnv1a(h, p->api_key);
	h = fnv1a(h, p->scope);
	return fnv1a(h, p->auth_url);
}

static const char *
auth_url(const struct provider_cfg *p)
{
	return p->auth_url ? p->auth_url : DEFAULT_AUTH_URL;
}

/* The slot of provider name, or NULL. Call with the lock held. */
static struct token_slot *
slot_find(const char *name)
{
	size_t	 i;

	for (i = 0; i < TOKEN_SLOTS; i++)
		if (strcmp(slots[i].provider, name) == 0)
			return &slots[i];
	return NULL;
}

/* Forget s's token and failure, keeping whose slot it is. */
static void
slot_forget(struct token_slot *s)
{
	explicit_bzero(s->token, sizeof(s->token));
	s->expires_ms = 0;
	s->failed_ms = 0;
	memset(&s->why, 0, sizeof(s->why));
}

/* s now serves p from scratch; a fetch under way for it is disowned. */
static void
slot_assign(struct token_slot *s, const struct provider_cfg *p)
{
	uint64_t	 gen = s->generation + 1;

	explicit_bzero(s, sizeof(*s));
	snprintf(s->provider, sizeof(s->provider), "%s", p->name);
	s->fingerprint = fingerprint(p);
	s->generation = gen;
}

/*
 * p's slot, with a changed key, scope or endpoint (a new config) starting
 * afresh; else a free one, else the one expiring first that no thread is
 * filling. NULL when every slot is being filled. Call with the lock held.
 */
static struct token_slot *
slot_for(const struct provider_cfg *p)
{
	struct token_slot	*s = NULL;
	size_t			 i;

	if ((s = slot_find(p->name)) != NULL) {
		if (s->fingerprint != fingerprint(p))
			slot_assign(s, p);
		return s;
	}
	for (i = 0; i < TOKEN_SLOTS; i++) {
		if (slots[i].provider[0] == '\0') {
			s = &slots[i];
			break;
		}
		if (!slots[i].fetching &&
		    (s == NULL || slots[i].expires_ms < s->expires_ms))
			s = &slots[i];
	}
	if (s != NULL)
		slot_assign(s, p);
	return s;
}

/* A header value fit to send: printable ASCII, no spaces. */
static int
token_ok(const char *t)
{
	if (*t == '\0' || strlen(t) >= TOKEN_MAX)
		return 0;
	for (; *t != '\0'; t++)
		if (*t < 0x21 || *t > 0x7e)
			return 0;
	return 1;
}

/*
 * Milliseconds since the epoch from expires_at (or the legacy exp): an
 * integer or a numeric string, in ms as GigaChat sends it; values too
 * small for ms are read as seconds. 0 when absent or unreadable.
 */
static int64_t
read_expiry(struct json_object *o)
{
	struct json_object	*v;
	int64_t			 t = 0;

	if (!json_object_object_get_ex(o, "expires_at", &v) &&
	    !json_object_object_get_ex(o, "exp", &v))
		return 0;
	if (json_object_is_type(v, json_type_int) ||
	    json_object_is_type(v, json_type_string))
		t = json_object_get_int64(v);
	if (t > 0 && t < 100000000000LL)
		t *= 1000;
	return t > 0 ? t : 0;
}

/* Say why no token could be had, in the log and in e; never the key. */
static void
token_error(const struct provider_cfg *p, struct provider_error *e,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
token_error(const struct provider_cfg *p, struct provider_error *e,
    const char *fmt, ...)
{
	char	 why[256];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	provider_redact(why, sizeof(why), p);
	provider_error_set(e, "upstream_error", "upstream_auth_error",
	    "cannot get an access token for provider '%s' from %s: %s",
	    p->name, auth_url(p), why);
	log_warn("gigachat: %s", e->message);
}

static void
free_headers(struct curl_slist *h)
{
	struct curl_slist	*i;

	for (i = h; i != NULL; i = i->next)
		explicit_bzero(i->data, strlen(i->data));
	curl_slist_free_all(h);
}

/* Append one header line; -1 when out of memory. */
static int
add_header(struct curl_slist **hd, const char *line)
{
	struct curl_slist	*n;

	if ((n = curl_slist_append(*hd, line)) == NULL)
		return -1;
	*hd = n;
	return 0;
}

/* The seconds one token request may take. */
static long
fetch_timeout(const struct provider_cfg *p)
{
	return p->timeout > 0 && p->timeout < TOKEN_TIMEOUT ? p->timeout :
	    TOKEN_TIMEOUT;
}

/*
 * POST the authorization key to the token endpoint through upstream.c
 * with a handle of its own. Called without the lock. On success the token
 * goes in tok (TOKEN_MAX bytes) and its expiry in *exp; else e is filled.
 */
static int
fetch_token(const struct provider_cfg *p, char *tok, int64_t *exp,
    struct provider_error *e)
{
	CURL			*h = NULL;
	struct curl_slist	*hd = NULL;
	struct json_object	*o = NULL;
	struct upstream_req	 req;
	struct upstream_resp	 resp;
	struct buf		 form, line;
	char			 rquid[37], *scope = NULL;
	const char		*t, *msg;
	int			 ret = -1;

	upstream_resp_init(&resp, TOKEN_BODY_MAX);
	buf_init(&form, 4096);
	buf_init(&line, TOKEN_MAX + 64);
	if (p->api_key == NULL || *p->api_key == '\0') {
		token_error(p, e, "the provider has no api_key (the "
		    "authorization key)");
		goto done;
	}
	if (uuid4(rquid) == -1 || (h = upstream_handle_new()) == NULL ||
	    (scope = curl_easy_escape(h, p->scope ? p->scope : DEFAULT_SCOPE,
	    0)) == NULL) {
		token_error(p, e, "out of resources");
		goto done;
	}
	if (buf_printf(&form, "scope=%s", scope) != BUF_OK ||
	    buf_printf(&line, "Authorization: Basic %s", p->api_key) !=
	    BUF_OK || add_header(&hd, line.data) == -1)
		goto nomem;
	explicit_bzero(line.data, line.len);
	buf_reset(&line);
	if (buf_printf(&line, "RqUID: %s", rquid) != BUF_OK ||
	    add_header(&hd, line.data) == -1 ||
	    add_header(&hd, "Content-Type: "
	    "application/x-www-form-urlencoded") == -1 ||
	    add_header(&hd, "Accept: application/json") == -1 ||
	    add_header(&hd, "Expect:") == -1)
		goto nomem;

	memset(&req, 0, sizeof(req));
	req.url = auth_url(p);
	req.headers = hd;
	req.body = form.data;
	req.body_len = form.len;
	req.provider = p;
	req.max_body = TOKEN_BODY_MAX;
	req.timeout = fetch_timeout(p);
	upstream_perform(h, &req, &resp);
	if (resp.result != UP_OK && resp.result != UP_HTTP) {
		token_error(p, e, "%s", resp.error);
		goto done;
	}
	o = provider_parse(resp.body.data ? resp.body.data : "",
	    resp.body.len);
	if (resp.status != 200) {
		/* OAuth errors: {"code": 5, "message": "scope is empty"}. */
		msg = provider_json_str(o, "message");
		token_error(p, e, "it answered HTTP %ld%s%.120s%s", resp.status,
		    msg ? " (" : "", msg ? msg : "", msg ? ")" : "");
		goto done;
	}
	if ((t = provider_json_str(o, "access_token")) == NULL)
		t = provider_json_str(o, "tok");
	if (t == NULL || !token_ok(t)) {
		token_error(p, e, "its answer holds no usable access_token");
		goto done;
	}
	if ((*exp = read_expiry(o)) == 0)
		*exp = now_ms() + TOKEN_LIFETIME_MS;
	snprintf(tok, TOKEN_MAX, "%s", t);
	log_info("gigachat: provider %s has a new access token for %lld s",
	    p->name, (long long)((*exp - now_ms()) / 1000));
	ret = 0;
	goto done;
nomem:
	token_error(p, e, "out of memory");
done:
	json_object_put(o);
	if (resp.body.data != NULL)
		explicit_bzero(resp.body.data, resp.body.len);
	upstream_resp_free(&resp);
	if (line.data != NULL)
		explicit_bzero(line.data, line.len);
	buf_free(&form);
	buf_free(&line);
	free_headers(hd);
	curl_free(scope);
	upstream_handle_free(h);
	return ret;
}

/* Copy s's token to tok. Call with the lock held. */
static int
take(const struct token_slot *s, char *tok)
{
	memcpy(tok, s->token, TOKEN_MAX);
	return 0;
}

/*
 * The deadline of a wait for another thread's token request: as long as
 * that request may take, and a second.
 */
static void
wait_deadline(const struct provider_cfg *p, struct timespec *ts)
{
	long	 ms = p->connect_timeout + fetch_timeout(p) * 1000 + 1000;

	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

/*
 * The token of p into tok (TOKEN_MAX bytes): 0, or -1 with e filled.
 * Called with the lock held; drops it only around the token request.
 */
static int
token_get(const struct provider_cfg *p, char *tok, struct provider_error *e)
{
	struct token_slot	*s;
	struct timespec		 deadline;
	int64_t			 now, exp = 0;
	uint64_t		 gen, awaited = 0;
	int			 rc, waited = 0;

	for (;;) {
		if ((s = slot_for(p)) == NULL) {
			token_error(p, e, "more GigaChat providers than %d are "
			    "being authorized at once", TOKEN_SLOTS);
			return -1;
		}
		now = now_ms();
		if (s->expires_ms - TOKEN_EARLY_MS > now)
			return take(s, tok);
		if (waited && s->generation != awaited && !s->fetching &&
		    s->failed_ms == 0 && s->expires_ms > now)
			/* The request waited for gave this one: no other. */
			return take(s, tok);
		if (s->fetching) {
			/* Another thread asks: the old token, or its result. */
			if (s->expires_ms > now + TOKEN_LAST_MS)
				return take(s, tok);
			if (!waited) {
				wait_deadline(p, &deadline);
				waited = 1;
			}
			awaited = s->generation;
			s->stats.waits++;
			if (pthread_cond_timedwait(&done, &lock, &deadline) ==
			    ETIMEDOUT) {
				token_error(p, e, "another request for the "
				    "token did not end in time");
				return -1;
			}
			continue;
		}
		if (s->failed_ms != 0 && now - s->failed_ms < AUTH_RETRY_MS) {
			*e = s->why;
			if (s->expires_ms > now + TOKEN_LAST_MS)
				return take(s, tok);
			return -1;
		}
		break;
	}

	s->fetching = 1;
	s->stats.fetches++;
	gen = s->generation;
	pthread_mutex_unlock(&lock);
	rc = fetch_token(p, tok, &exp, e);
	pthread_mutex_lock(&lock);
	if (s->generation == gen) {
		/* Still p's slot as it was: the result is its. */
		if (rc == 0) {
			memcpy(s->token, tok, TOKEN_MAX);
			s->expires_ms = exp;
			s->failed_ms = 0;
		} else {
			s->failed_ms = now_ms();
			s->why = *e;
		}
		s->fetching = 0;
		s->generation++;
	}
	pthread_cond_broadcast(&done);
	if (rc == 0)
		return 0;
	/* A token about to expire serves while none better comes. */
	if (s->generation == gen + 1 && s->expires_ms > now_ms() +
	    TOKEN_LAST_MS)
		return take(s, tok);
	return -1;
}

int
gigachat_token_bearer(const struct provider_cfg *p, struct provider_call *call,
    struct provider_error *e)
{
	struct buf	 h;
	char		*tok;
	int		 rc = -1;

	pthread_once(&once, init_cond);
	if ((tok = malloc(TOKEN_MAX)) == NULL) {
		provider_error_set(e, "upstream_error", "internal_error",
		    "out of memory");
		return -1;
	}
	buf_init(&h, TOKEN_MAX + 64);
	pthread_mutex_lock(&lock);
	rc = token_get(p, tok, e);
	pthread_mutex_unlock(&lock);
	if (rc == 0 && (buf_printf(&h, "Authorization: Bearer %s", tok) !=
	    BUF_OK || add_header(&call->headers, h.data) == -1)) {
		provider_error_set(e, "upstream_error", "internal_error",
		    "out of memory");
		rc = -1;
	}
	explicit_bzero(tok, TOKEN_MAX);
	free(tok);
	if (h.data != NULL)
		explicit_bzero(h.data, h.len);
	buf_free(&h);
	return rc;
}

void
gigachat_token_drop(const struct provider_cfg *p)
{
	struct token_slot	*s;

	pthread_mutex_lock(&lock);
	/* While a thread fetches, a fresh token is on its way anyway. */
	if ((s = slot_find(p->name)) != NULL && !s->fetching)
		slot_forget(s);
	pthread_mutex_unlock(&lock);
}

void
gigachat_token_stats(const struct provider_cfg *p,
    struct gigachat_token_stats *st)
{
	struct token_slot	*s;

	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&lock);
	if ((s = slot_find(p->name)) != NULL)
		*st = s->stats;
	pthread_mutex_unlock(&lock);
}
