/* upstream.c: libcurl calls with one reused handle per worker, timeouts, abort. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "upstream.h"

const char *const upstream_result_names[UP__MAX] = {
	"ok", "http_error", "connect_error", "timeout", "broken", "too_big",
	"aborted",
};

/* State of one transfer, seen by the curl callbacks. */
struct xfer {
	CURL				*h;
	const struct upstream_req	*req;
	struct upstream_resp		*resp;
	struct timespec			 start, last;
	int				 ok2xx;		/* -1 unknown */
	int				 aborted;	/* by sink or tick */
	int				 toobig;
	int				 idle_timeout;
};

double
upstream_ms_since(const struct timespec *t)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1000.0 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

CURL *
upstream_handle_new(void)
{
	return curl_easy_init();
}

void
upstream_handle_free(CURL *h)
{
	if (h != NULL)
		curl_easy_cleanup(h);
}

void
upstream_resp_init(struct upstream_resp *r, size_t max)
{
	memset(r, 0, sizeof(*r));
	r->retry_after = -1;
	buf_init(&r->body, max);
}

void
upstream_resp_free(struct upstream_resp *r)
{
	buf_free(&r->body);
}

static size_t
on_header(char *p, size_t size, size_t n, void *user)
{
	struct xfer	*x = user;
	size_t		 len = size * n;
	char		 v[64];
	size_t		 i, j;

	if (len > 5 && strncmp(p, "HTTP/", 5) == 0) {
		x->resp->retry_after = -1;
		return len;
	}
	if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
		for (i = 12; i < len && p[i] == ' '; i++)
			;
		for (j = 0; i < len && j < sizeof(v) - 1 &&
		    isdigit((unsigned char)p[i]); i++)
			v[j++] = p[i];
		v[j] = '\0';
		/* An HTTP-date is not honoured: the backoff applies. */
		if (j > 0 && j < 9)
			x->resp->retry_after = atol(v);
	}
	return len;
}

static size_t
on_write(char *p, size_t size, size_t n, void *user)
{
	struct xfer	*x = user;
	size_t		 len = size * n;
	long		 code = 0;

	clock_gettime(CLOCK_MONOTONIC, &x->last);
	if (!x->resp->got_bytes) {
		x->resp->got_bytes = 1;
		x->resp->first_byte_ms = upstream_ms_since(&x->start);
	}
	if (x->ok2xx == -1) {
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
		x->ok2xx = code >= 200 && code < 300;
	}
	if (x->ok2xx && x->req->on_body != NULL) {
		if (x->req->on_body(x->req->ctx, p, len) != 0) {
			x->aborted = 1;
			return 0;
		}
		return len;
	}
	if (buf_append(&x->resp->body, p, len) != BUF_OK) {
		x->toobig = 1;
		return 0;
	}
	return len;
}

/* Runs often during a transfer and about once a second of silence. */
static int
on_progress(void *user, curl_off_t dlt, curl_off_t dln, curl_off_t ult,
    curl_off_t uln)
{
	struct xfer			*x = user;
	const struct provider_cfg	*p = x->req->provider;
	long				 limit, code = 0;

	limit = x->resp->got_bytes ? p->idle_timeout : p->first_byte_timeout;
	/* 0 (a provider built by hand, not from config) sets no limit. */
	if (limit > 0 && upstream_ms_since(&x->last) > (double)limit * 1000.0) {
		x->idle_timeout = 1;
		return 1;
	}
	if (x->req->on_tick != NULL) {
		code = 0;
		curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
	}
	if (x->req->on_tick != NULL && x->req->on_tick(x->req->ctx, code) != 0) {
		x->aborted = 1;
		return 1;
	}
	return 0;
}

static void
classify(struct xfer *x, CURLcode rc)
{
	struct upstream_resp	*r = x->resp;
	const char		*what;

	curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &r->status);
	if (rc == CURLE_OK) {
		r->result = r->status >= 200 && r->status < 300 ? UP_OK :
		    UP_HTTP;
		if (r->result == UP_HTTP)
			snprintf(r->error, sizeof(r->error),
			    "upstream answered HTTP %ld", r->status);
		return;
	}
	what = curl_easy_strerror(rc);
	if (x->aborted) {
		r->result = UP_ABORTED;
		what = "client went away";
	} else if (x->toobig) {
		r->result = UP_TOOBIG;
		what = "response too large";
	} else if (x->idle_timeout) {
		r->result = UP_TIMEOUT;
		what = r->got_bytes ? "upstream went silent (idle timeout)" :
		    "no response from upstream (first byte timeout)";
	} else if (rc == CURLE_OPERATION_TIMEDOUT) {
		r->result = UP_TIMEOUT;
	} else if (rc == CURLE_COULDNT_CONNECT ||
	    rc == CURLE_COULDNT_RESOLVE_HOST ||
	    rc == CURLE_COULDNT_RESOLVE_PROXY ||
	    rc == CURLE_SSL_CONNECT_ERROR ||
	    rc == CURLE_PEER_FAILED_VERIFICATION ||
	    rc == CURLE_SSL_CACERT_BADFILE) {
		r->result = UP_CONNECT;
	} else
		r->result = UP_BROKEN;
	snprintf(r->error, sizeof(r->error), "%s", what);
}

/*
 * Perform one request on the worker's handle. The handle keeps its
 * connections between calls. Returns 0 when the transfer completed with
 * any HTTP status, -1 otherwise; resp->result tells which.
 */
int
upstream_perform(CURL *h, const struct upstream_req *req,
    struct upstream_resp *resp)
{
	const struct provider_cfg	*p = req->provider;
	struct xfer			 x;
	CURLcode			 rc;

	memset(&x, 0, sizeof(x));
	x.h = h;
	x.req = req;
	x.resp = resp;
	x.ok2xx = -1;
	clock_gettime(CLOCK_MONOTONIC, &x.start);
	x.last = x.start;

	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, req->url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_POST, 1L);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE,
	    (curl_off_t)req->body_len);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(h, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, req->timeout > 0 &&
	    (p->timeout <= 0 || req->timeout < p->timeout) ? req->timeout :
	    p->timeout);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "llmgate/" PACKAGE_VERSION);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Only the configured proxy; never *_proxy from the environment. */
	curl_easy_setopt(h, CURLOPT_PROXY, p->proxy ? p->proxy : "");
	if (p->ca_file != NULL)
		curl_easy_setopt(h, CURLOPT_CAINFO, p->ca_file);

	rc = curl_easy_perform(h);
	classify(&x, rc);
	return rc == CURLE_OK ? 0 : -1;
}
