/* upstream.h: one HTTP call to a provider with libcurl. */
#ifndef LLMGATE_UPSTREAM_H
#define LLMGATE_UPSTREAM_H

#include <time.h>

#include <curl/curl.h>

#include "buf.h"

struct provider_cfg;

enum upstream_result {
	UP_OK,		/* a complete 2xx response */
	UP_HTTP,	/* a complete non-2xx response; see status, body */
	UP_CONNECT,	/* could not connect (DNS, refused, TLS, proxy) */
	UP_TIMEOUT,	/* connect, first byte, idle or hard-cap timeout */
	UP_BROKEN,	/* connection reset or the response was cut */
	UP_TOOBIG,	/* the response passed max_body */
	UP_ABORTED,	/* the sink or tick asked to stop (client gone) */
	UP__MAX
};

extern const char *const upstream_result_names[UP__MAX];

struct upstream_req {
	const char			*url;
	struct curl_slist		*headers;	/* caller owns */
	const char			*body;
	size_t				 body_len;
	const struct provider_cfg	*provider;	/* proxy, CA, timeouts */
	size_t				 max_body;
	long				 timeout;	/* s cap below the provider's; 0: none */
	/* 2xx body bytes as they arrive; NULL buffers them in resp.body. */
	int				(*on_body)(void *, const char *, size_t);
	/*
	 * Called during the transfer and about once a second of silence,
	 * with the upstream's HTTP status so far (0 before its headers).
	 */
	int				(*on_tick)(void *, long);
	void				*ctx;
};

struct upstream_resp {
	enum upstream_result	 result;
	long			 status;
	long			 retry_after;	/* s, or -1 */
	struct buf		 body;		/* non-2xx or unsunk 2xx body */
	int			 got_bytes;	/* any body byte arrived */
	double			 first_byte_ms;
	char			 error[256];	/* says what happened; no secrets */
};

/* Milliseconds of CLOCK_MONOTONIC since t. */
double	 upstream_ms_since(const struct timespec *);

CURL	*upstream_handle_new(void);
void	 upstream_handle_free(CURL *);
void	 upstream_resp_init(struct upstream_resp *, size_t);
void	 upstream_resp_free(struct upstream_resp *);
int	 upstream_perform(CURL *, const struct upstream_req *,
	    struct upstream_resp *);

#endif
