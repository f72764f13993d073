/*
 * route-metrics.c: GET /metrics, the Prometheus text exposition of
 * metrics.c, for the master key, the metrics_key, or without a key from
 * the addresses of metrics_allow.
 */
#include <string.h>

#include "account.h"
#include "buf.h"
#include "config.h"
#include "metrics.h"
#include "route.h"

/* Largest exposition (1024 series with their histograms fit well under). */
#define EXPOSITION_MAX	(64u << 20)

/* 0 when the caller may read the metrics, else the status already sent. */
static int
guard(struct request *r)
{
	const struct gateway_cfg	*gw = &r->cfg->gw;
	struct principal		 who;
	const char			*key;
	int				 rc;

	if (gw->metrics_allow != NULL &&
	    metrics_addr_allowed(gw->metrics_allow,
	    http_param(r, "REMOTE_ADDR")))
		return 0;
	key = account_client_key(r);
	if (key != NULL && gw->metrics_key != NULL &&
	    account_secret_equal(key, gw->metrics_key))
		return 0;
	if ((rc = account_authenticate(r, &who)) != 0)
		return rc;
	r->who = NULL;		/* who lives on this stack only */
	if (!who.master)
		return http_error(r, 403, "permission_error", "metrics_only",
		    NULL, "GET /metrics needs the master key or the "
		    "metrics_key");
	return 0;
}

int
route_metrics(struct request *r, const char *arg)
{
	struct metrics_totals	 t;
	struct buf		 b;
	int			 rc;

	(void)arg;
	if ((rc = guard(r)) != 0)
		return rc;
	buf_init(&b, EXPOSITION_MAX);
	metrics_expose(r->cfg, r->worker->store, &b, &t);
	http_begin(r, 200, "text/plain; version=0.0.4; charset=utf-8");
	if (r->method != HTTP_HEAD && b.len > 0)
		http_write(r, b.data, b.len);
	buf_free(&b);
	return 200;
}
