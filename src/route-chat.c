/* route-chat.c: POST /v1/chat/completions, streamed or not, with retries and fallbacks. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "account.h"
#include "breaker.h"
#include "config.h"
#include "log.h"
#include "plan.h"
#include "provider.h"
#include "retry.h"
#include "route.h"
#include "sse.h"
#include "upstream.h"
#include "usage.h"
#include "validate.h"

/* Why a transfer was stopped from our side. */
enum stop {
	STOP_NONE,
	STOP_CLIENT,		/* the client went away */
	STOP_BAD_STREAM,	/* the upstream stream broke its protocol */
	STOP_BAD_REQUEST,	/* the request cannot be said to this provider */
	STOP_NO_AUTH,		/* no credentials for the provider right now */
};

/* What to do after a failed attempt. */
enum next {
	NEXT_RETRY,		/* same model again, after a backoff */
	NEXT_REAUTH,		/* same model at once: credentials were renewed */
	NEXT_FALLBACK,		/* the next model of the chain */
	NEXT_FINAL,		/* answer the client with this error */
};

/* One chat request in flight; lives on the handler's stack. */
struct chat {
	struct request		*r;
	const struct config	*cfg;
	const struct provider_ops *ops;
	const struct candidate	*cand;
	struct chat_in		 in;
	struct plan		 plan;
	struct stream_state	 st;
	struct account		 acct;
	struct sse_parser	 sse;
	enum stop		 stop;
	struct timespec		 last_out;	/* last byte to the client */
	double			 ttft_ms;
	int			 attempts;
	int			 reauthed;	/* credentials refreshed once */
	int64_t			 prompt_est;	/* billed when usage is missing */
	int64_t			 out_bytes;	/* generated text sent on */
	/* The last failure, answered when nothing else remains. */
	int			 err_status;
	long			 err_retry_after;	/* s, or -1 */
	struct provider_error	 err;
	struct breaker_ticket	 brk;	/* breaker: the candidate's admission */
};

static double
since_ms(const struct timespec *t)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - t->tv_sec) * 1000.0 +
	    (double)(now.tv_nsec - t->tv_nsec) / 1e6;
}

/* The served model and attempt count travel in headers, success or not. */

/* First byte of a stream: from here on there is no fallback. */
static int
begin_stream(struct chat *ch)
{
	if (ch->r->headers_sent)
		return ch->r->client_gone ? -1 : 0;
	account_served(ch->r, ch->cand, ch->attempts);
	snprintf(ch->r->served, sizeof(ch->r->served), "%s", ch->cand->name);
	return http_begin(ch->r, 200, "text/event-stream");
}

static int
send_sse(struct chat *ch, const char *a, size_t alen, const char *b,
    size_t blen, const char *c, size_t clen)
{
	if (begin_stream(ch) == -1 ||
	    http_write(ch->r, a, alen) == -1 ||
	    (blen > 0 && http_write(ch->r, b, blen) == -1) ||
	    (clen > 0 && http_write(ch->r, c, clen) == -1) ||
	    http_flush(ch->r) == -1) {
		ch->stop = STOP_CLIENT;
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &ch->last_out);
	return 0;
}

static int64_t
string_bytes(struct json_object *o, const char *member)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, member, &v) &&
	    json_object_is_type(v, json_type_string) ?
	    json_object_get_string_len(v) : 0;
}

/*
 * Bytes of generated text in each choice's member ("delta" of a chunk,
 * "message" of a reply): content, reasoning, refusal, and the names and
 * arguments of tool calls; by length, never strlen (a NUL cuts nothing).
 */
static int64_t
generated_bytes(struct json_object *choices, const char *member)
{
	struct json_object	*m, *calls, *fn;
	int64_t			 n = 0;
	size_t			 i, j;

	if (!json_object_is_type(choices, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(choices); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(
		    choices, i), member, &m) ||
		    !json_object_is_type(m, json_type_object))
			continue;
		n += string_bytes(m, "content") +
		    string_bytes(m, "reasoning_content") +
		    string_bytes(m, "refusal");
		if (!json_object_object_get_ex(m, "tool_calls", &calls) ||
		    !json_object_is_type(calls, json_type_array))
			continue;
		for (j = 0; j < json_object_array_length(calls); j++)
			if (json_object_object_get_ex(json_object_array_get_idx(
			    calls, j), "function", &fn))
				n += string_bytes(fn, "name") +
				    string_bytes(fn, "arguments");
	}
	return n;
}

/* stream_state.emit: one OpenAI chunk to the client, flushed. */
static int
emit_chunk(void *ctx, struct json_object *chunk)
{
	struct chat		*ch = ctx;
	struct json_object	*choices;
	const char		*s = http_json_string(chunk);

	if (json_object_object_get_ex(chunk, "choices", &choices))
		ch->out_bytes += generated_bytes(choices, "delta");
	if (ch->ttft_ms == 0)
		ch->ttft_ms = http_elapsed_ms(ch->r);
	/* Billed should this process die: every 2 s at most, one write. */
	billing_progress(ch->r->worker->store, &ch->acct.adm, ch->cand,
	    (ch->out_bytes + 3) / 4);
	return send_sse(ch, "data: ", 6, s, strlen(s), "\n\n", 2) == -1 ?
	    1 : 0;
}

static int
on_event(void *ctx, const struct sse_event *ev)
{
	struct chat	*ch = ctx;
	int		 rc;

	if (ev->comment) {
		/* Keep-alive comments pass once the stream has begun. */
		if (!ch->r->headers_sent)
			return 0;
		return send_sse(ch, ":", 1, ev->data, ev->data_len, "\n\n", 2)
		    == -1 ? 1 : 0;
	}
	rc = provider_chat_event(ch->ops, &ch->st, ev);
	if (rc == -1 && ch->stop == STOP_NONE)
		ch->stop = STOP_BAD_STREAM;
	return rc;
}

/* upstream_req.on_body for streams: bytes -> events -> chunks. */
static int
on_body(void *ctx, const char *p, size_t n)
{
	struct chat	*ch = ctx;
	int		 rc;

	rc = sse_feed(&ch->sse, p, n, on_event, ch);
	if (rc < 0 && ch->stop == STOP_NONE) {
		ch->stop = STOP_BAD_STREAM;
		provider_error_set(&ch->st.err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a stream "
		    "event larger than max_sse_event", ch->cand->provider->name);
	}
	return rc != 0;
}

/*
 * upstream_req.on_tick: heartbeat while the upstream is silent. Before the
 * response began, only once the upstream answered 2xx: a ping commits the
 * response, and until then a failure must stay free to retry or fall back.
 */
static int
on_tick(void *ctx, long status)
{
	struct chat	*ch = ctx;

	if (!ch->in.stream)
		return 0;
	if (!ch->r->headers_sent && (status < 200 || status > 299))
		return 0;
	if (since_ms(&ch->last_out) < (double)ch->cfg->gw.heartbeat * 1000.0)
		return 0;
	return send_sse(ch, ": ping\n\n", 8, NULL, 0, NULL, 0) == -1;
}

static void
set_error(struct chat *ch, int status, const char *code, const char *fmt,
    ...) __attribute__((format(printf, 4, 5)));

static void
set_error(struct chat *ch, int status, const char *code, const char *fmt,
    ...)
{
	char	 msg[sizeof(ch->err.message)];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ch->err_status = status;
	provider_error_set(&ch->err, "upstream_error", code, "%s", msg);
}

/* Decide what a failed attempt means; fills ch->err for the client. */
static enum next
judge(struct chat *ch, const struct upstream_resp *resp)
{
	struct retry_failure	 f;
	enum retry_next		 n;

	ch->err_retry_after = resp->retry_after;
	if (ch->stop == STOP_BAD_REQUEST)
		return NEXT_FINAL;
	if (ch->stop == STOP_NO_AUTH)
		/* A retry would only meet the adapter's cached failure. */
		return NEXT_FALLBACK;
	if (ch->stop == STOP_BAD_STREAM || ch->st.failed) {
		ch->err_status = 502;
		ch->err = ch->st.err;
		return NEXT_RETRY;
	}
	memset(&f, 0, sizeof(f));
	n = retry_judge(ch->cfg, ch->cand, resp, ch->r->id, &f);
	ch->err = f.err;
	ch->err_status = f.status;
	ch->err_retry_after = f.retry_after;
	if (f.upstream_status == 401 && ch->ops->auth_failed != NULL &&
	    !ch->reauthed && ch->ops->auth_failed(ch->cand->provider)) {
		/* Fresh credentials (an OAuth token): once more. */
		ch->reauthed = 1;
		return NEXT_REAUTH;
	}
	return n == RETRY_SAME ? NEXT_RETRY : n == RETRY_FALLBACK ?
	    NEXT_FALLBACK : NEXT_FINAL;
}

/* The stream failed after it began: tell the client in-band and end it. */
static void
end_stream_with_error(struct chat *ch, const struct provider_error *e)
{
	struct json_object	*o;
	const char		*s;

	o = http_error_object(e->message, e->type[0] ? e->type :
	    "upstream_error", e->code[0] ? e->code : NULL,
	    e->param[0] ? e->param : NULL);
	s = http_json_string(o);
	if (send_sse(ch, "data: ", 6, s, strlen(s), "\n\n", 2) == 0)
		send_sse(ch, "data: [DONE]\n\n", 14, NULL, 0, NULL, 0);
	json_object_put(o);
}

/*
 * One attempt against the current candidate. Returns 1 when the client
 * has its answer (success, or a stream that began), 0 when it failed
 * before the first byte; resp says how.
 */
static int
attempt(struct chat *ch, struct upstream_resp *resp)
{
	struct provider_call	 call;
	struct upstream_req	 req;
	struct json_object	*out = NULL, *choices;
	struct provider_error	 perr;
	int			 done = 0, rc;

	provider_call_init(&call, (size_t)ch->cfg->gw.max_body * 2 + 65536);
	memset(&perr, 0, sizeof(perr));
	rc = ch->ops->chat_request(ch->cand, &ch->in, &call, &perr);
	if (rc == -2) {
		/* The provider's credentials cannot be had right now. */
		ch->err_status = 502;
		ch->err = perr;
		if (ch->err.message[0] == '\0')
			set_error(ch, 502, "upstream_auth_error", "provider '%s' "
			    "did not grant the gateway a token",
			    ch->cand->provider->name);
		snprintf(ch->err.type, sizeof(ch->err.type), "upstream_error");
		snprintf(ch->err.code, sizeof(ch->err.code),
		    "upstream_auth_error");
		ch->stop = STOP_NO_AUTH;
		goto out;
	}
	if (rc == -1) {
		if (perr.message[0] != '\0') {
			ch->err = perr;
			ch->err_status = 400;
		} else
			set_error(ch, 500, "internal_error", "cannot build the "
			    "request for provider '%s'",
			    ch->cand->provider->name);
		ch->stop = STOP_BAD_REQUEST;
		goto out;
	}
	memset(&req, 0, sizeof(req));
	req.url = call.url.data;
	req.headers = call.headers;
	req.body = call.body.data;
	req.body_len = call.body.len;
	req.provider = ch->cand->provider;
	req.max_body = (size_t)ch->cfg->gw.max_upstream_body;
	req.on_tick = on_tick;
	req.ctx = ch;
	if (ch->in.stream)
		req.on_body = on_body;

	memset(&ch->st, 0, sizeof(ch->st));
	ch->st.emit = emit_chunk;
	ch->st.ctx = ch;
	ch->st.cand = ch->cand;
	ch->st.include_usage = ch->in.include_usage;
	sse_reset(&ch->sse);
	sse_set_ndjson(&ch->sse, ch->ops->framing == FRAMING_NDJSON);
	ch->stop = STOP_NONE;
	if (!ch->r->headers_sent)
		clock_gettime(CLOCK_MONOTONIC, &ch->last_out);

	ch->attempts++;
	ch->r->attempts = ch->attempts;
	upstream_perform(ch->r->worker->curl, &req, resp);
	if (ch->in.stream && resp->result == UP_OK)
		sse_finish(&ch->sse, on_event, ch);

	if (ch->in.stream) {
		if (resp->result == UP_OK && ch->stop == STOP_NONE &&
		    (ch->st.done || ch->st.finish[0] != '\0')) {
			send_sse(ch, "data: [DONE]\n\n", 14, NULL, 0, NULL, 0);
			done = 1;
		} else if (ch->r->headers_sent) {
			/* Too late to fall back: end the stream in-band. */
			if (ch->stop != STOP_CLIENT && !ch->r->client_gone) {
				if (ch->stop == STOP_BAD_STREAM)
					perr = ch->st.err;
				else
					provider_error_set(&perr,
					    "upstream_error", "upstream_broken",
					    "provider '%s' ended the stream "
					    "early: %s", ch->cand->provider->name,
					    resp->result == UP_OK ?
					    "no [DONE]" : resp->error);
				end_stream_with_error(ch, &perr);
			}
			done = 1;
		}
		goto out;
	}
	if (resp->result != UP_OK)
		goto out;
	if (provider_chat_response(ch->ops, ch->cand, resp->body.data,
	    resp->body.len, &out, &ch->st.usage, &ch->st.err) == -1) {
		ch->stop = STOP_BAD_STREAM;	/* judged like a broken stream */
		goto out;
	}
	if (json_object_object_get_ex(out, "choices", &choices))
		ch->out_bytes = generated_bytes(choices, "message");
	account_served(ch->r, ch->cand, ch->attempts);
	snprintf(ch->r->served, sizeof(ch->r->served), "%s", ch->cand->name);
	http_send_json(ch->r, 200, out);
	json_object_put(out);
	done = 1;
out:
	provider_call_free(&call);
	return done;
}

/* The completions asked for: n, 1 when absent or null. */
static int64_t
choices_asked(struct json_object *req)
{
	int64_t	 n = provider_json_int(req, "n");

	return n > 1 ? n : 1;
}

/* Images cost prompt tokens their bytes in the body do not show. */
#define IMAGE_TOKENS	1600
/* Tools cost prompt tokens of the provider's own (Anthropic's tool prompt). */
#define TOOLS_TOKENS	512

/* Content parts that are not text: images, audio, files. */
static int64_t
media_parts(struct json_object *req)
{
	struct json_object	*msgs, *c, *part, *type;
	int64_t			 n = 0;
	size_t			 i, j;

	if (!json_object_object_get_ex(req, "messages", &msgs))
		return 0;
	for (i = 0; i < json_object_array_length(msgs); i++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(msgs,
		    i), "content", &c) || !json_object_is_type(c,
		    json_type_array))
			continue;
		for (j = 0; j < json_object_array_length(c); j++) {
			part = json_object_array_get_idx(c, j);
			if (json_object_object_get_ex(part, "type", &type) &&
			    strcmp(json_object_get_string(type), "text") != 0)
				n++;
		}
	}
	return n;
}

/*
 * The prompt tokens reserved: a token is at least one byte of the text
 * the upstream reads, and the body carries all of it (messages, names,
 * tool calls, tool definitions), so its length in bytes bounds them;
 * images and tools add what their bytes do not show.
 */
static int64_t
prompt_bound(const struct request *r, struct json_object *req,
    int64_t media)
{
	struct json_object	*tools;

	return (int64_t)r->body.len + media * IMAGE_TOKENS +
	    (json_object_object_get_ex(req, "tools", &tools) &&
	    json_object_is_type(tools, json_type_array) &&
	    json_object_array_length(tools) > 0 ? TOOLS_TOKENS : 0);
}

/* Settle the request: real usage when the upstream gave it, else estimated. */
static void
record(struct chat *ch, const char *model)
{
	struct usage_row	 u;
	struct usage		 t = ch->st.usage;
	int			 served = ch->r->served[0] != '\0';

	account_row(ch->r, &u);
	snprintf(u.requested, sizeof(u.requested), "%s", model);
	snprintf(u.served, sizeof(u.served), "%s", ch->r->served);
	if (served && ch->cand != NULL)
		snprintf(u.provider, sizeof(u.provider), "%s",
		    ch->cand->provider->name);
	if (!t.known && served) {
		/*
		 * About four bytes a token, of the whole request and of all
		 * the text generated (tool calls too); bytes, never strlen.
		 */
		t.prompt = ch->prompt_est;
		t.completion = (ch->out_bytes + 3) / 4;
		u.estimated = 1;
	}
	u.prompt = t.prompt;
	u.completion = t.completion;
	u.cached = t.cached;
	u.cost = served ? account_cost(ch->cand, &t, &u.flags) : 0;
	u.status = (uint16_t)ch->r->status;
	u.attempts = (uint16_t)ch->attempts;
	u.stream = ch->in.stream != 0;
	u.ttft_ms = (int32_t)ch->ttft_ms;
	account_settle(ch->r, &ch->acct, &u);
}

static int
answer_error(struct chat *ch)
{
	struct provider_error	*e = &ch->err;

	account_served(ch->r, ch->cand, ch->attempts);
	if (ch->err_retry_after >= 0 &&
	    (ch->err_status == 429 || ch->err_status == 503))
		http_header(ch->r, "Retry-After", "%ld", ch->err_retry_after);
	return http_error(ch->r, ch->err_status ? ch->err_status : 502,
	    e->type[0] ? e->type : "upstream_error",
	    e->code[0] ? e->code : NULL, e->param[0] ? e->param : NULL,
	    "%s", e->message[0] ? e->message : "upstream failed");
}

/* Try each candidate of the plan, each up to retry.attempts times. */
static void
run(struct chat *ch)
{
	struct upstream_resp	 resp;
	enum next		 next;
	size_t			 i;
	int			 a, done, brk_stop;	/* breaker */

	for (i = 0; i < ch->plan.n; i++) {
		ch->cand = &ch->plan.c[i];
		ch->ops = provider_ops_for(ch->cand->provider->type);
		/* breaker: admit */
		if (breaker_admit(ch->cfg, ch->cand, &ch->brk) ==
		    BREAKER_SKIP) {
			if (ch->attempts == 0)
				breaker_refusal(&ch->brk, &ch->err,
				    &ch->err_status, &ch->err_retry_after);
			continue;
		}
		for (a = 1; a <= ch->cfg->retry.attempts; a++) {
			upstream_resp_init(&resp,
			    (size_t)ch->cfg->gw.max_upstream_body);
			done = attempt(ch, &resp);
			/* breaker: record */
			brk_stop = breaker_record(&ch->brk, &resp,
			    ch->stop == STOP_BAD_STREAM || ch->st.failed);
			if (done) {
				upstream_resp_free(&resp);
				return;
			}
			if (ch->stop == STOP_CLIENT || ch->r->client_gone) {
				upstream_resp_free(&resp);
				return;
			}
			next = judge(ch, &resp);
			log_warn("%s: model %s via %s attempt %d: %s (%d)",
			    ch->r->id, ch->cand->name,
			    ch->cand->provider->name, a, ch->err.message,
			    ch->err_status);
			if (next == NEXT_REAUTH) {
				/* Not the upstream's failure: no try is used up. */
				a--;
				upstream_resp_free(&resp);
				continue;
			}
			if (next == NEXT_FINAL) {
				upstream_resp_free(&resp);
				answer_error(ch);
				return;
			}
			if (next == NEXT_FALLBACK || brk_stop ||	/* breaker */
			    a == ch->cfg->retry.attempts ||
			    ch->err_retry_after > ch->cfg->retry.retry_after_max) {
				upstream_resp_free(&resp);
				break;
			}
			retry_pause(&ch->cfg->retry, a, ch->err_retry_after);
			upstream_resp_free(&resp);
		}
	}
	answer_error(ch);
}

int
route_chat(struct request *r, const char *arg)
{
	struct chat		 ch;
	struct admit_ask	 ask;
	struct json_object	*req, *v, *so;
	struct verr		 e;
	const char		*model;
	int64_t			 media;
	int			 rc;

	memset(&e, 0, sizeof(e));
	req = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (req == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	if (validate_chat(req, &e) == -1) {
		json_object_put(req);
		return http_error(r, 400, "invalid_request_error",
		    "invalid_value", e.param[0] ? e.param : NULL, "%s",
		    e.message);
	}

	memset(&ch, 0, sizeof(ch));
	memset(&ask, 0, sizeof(ask));
	ch.r = r;
	ch.cfg = r->cfg;
	ch.err_retry_after = -1;
	ch.in.req = req;
	ch.in.stream = json_object_object_get_ex(req, "stream", &v) &&
	    json_object_get_boolean(v);
	ch.in.include_usage = ch.in.stream &&
	    json_object_object_get_ex(req, "stream_options", &so) &&
	    json_object_object_get_ex(so, "include_usage", &v) &&
	    json_object_get_boolean(v);
	ch.in.client_max = provider_client_max(req);
	media = media_parts(req);
	ch.prompt_est = ((int64_t)r->body.len + 3) / 4 + media * IMAGE_TOKENS;
	ask.prompt = prompt_bound(r, req, media);
	ask.prompt_est = ch.prompt_est;
	ask.client_max = ch.in.client_max;
	ask.choices = choices_asked(req);
	json_object_object_get_ex(req, "model", &v);
	model = json_object_get_string(v);

	if ((rc = account_plan(r, model, &ch.plan)) != 0)
		goto out;
	if ((rc = account_admit(r, &ch.plan, &ask, &ch.acct)) != 0) {
		record(&ch, model);	/* refused: recorded at no cost */
		goto out;
	}
	sse_init(&ch.sse, (size_t)r->cfg->gw.max_sse_event);
	clock_gettime(CLOCK_MONOTONIC, &ch.last_out);
	run(&ch);
	sse_free(&ch.sse);
	record(&ch, model);
	rc = r->status;
out:
	json_object_put(req);
	return rc;
}
