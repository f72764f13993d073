/*
 * route-chat.c: the one chat pipeline, for POST /v1/chat/completions and
 * every other chat protocol a client speaks (client.h): policy step,
 * plan, admission, call.c's loop over the plan's models, output guard,
 * settlement. This file turns each answer or stream into the OpenAI
 * client's; a client_ops turns that into its own protocol.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "call.h"
#include "client.h"
#include "config.h"
#include "embeddings.h"
#include "log.h"
#include "metrics.h"
#include "outguard.h"
#include "plan.h"
#include "policy.h"
#include "provider.h"
#include "rcache.h"
#include "route.h"
#include "semantic.h"
#include "sse.h"
#include "stream-out.h"
#include "upstream.h"
#include "usage.h"
#include "validate.h"

/* One chat request in flight; lives on the handler's stack. */
struct chat {
	struct request		*r;
	const struct provider_ops *ops;		/* of the attempt in flight */
	const struct candidate	*cand;		/* of the attempt in flight */
	struct call		 call;
	struct chat_in		 in;
	struct plan		 plan;
	struct stream_state	 st;
	struct account		 acct;
	struct guard		 guard;		/* the policy's: redactions, findings */
	struct sse_parser	 sse;
	struct stream_out	 so;		/* the client's side of a stream */
	struct outguard		 og;		/* and the answer's side */
	struct json_object	*last;		/* last chunk sent (og's tail) */
	struct client		 cl;		/* the client's protocol */
	struct buf		 out;		/* its bytes of one event */
	int			 relay;		/* the attempt went natively: the
						   upstream's own answer is relayed */
	double			 ttft_ms;
	int64_t			 prompt_est;	/* billed when usage is missing */
	int64_t			 out_bytes;	/* generated text sent on */
	struct rcache		 rc;		/* the response cache's state */
};

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

/*
 * One OpenAI chunk (NULL: the stream's end) in the client's protocol to
 * its output buffer: 0, or -1 when the client is gone or out of memory.
 */
static int
send_client(struct chat *ch, struct json_object *chunk)
{
	int	 rc;

	buf_reset(&ch->out);
	rc = chunk != NULL ? ch->cl.ops->chunk(&ch->cl, chunk, &ch->out) :
	    ch->cl.ops->done(&ch->cl, &ch->out);
	if (rc == -1) {
		ch->so.stop = STOP_CLIENT;
		return -1;
	}
	if (ch->out.len == 0)
		return 0;
	return stream_write(&ch->so, ch->out.data, ch->out.len);
}

/* stream_state.emit: one OpenAI chunk to the client, flushed. */
static int
emit_chunk(void *ctx, struct json_object *chunk)
{
	struct chat		*ch = ctx;
	struct json_object	*choices;
	int			 rc = 0;

	if (json_object_object_get_ex(chunk, "choices", &choices))
		ch->out_bytes += generated_bytes(choices, "delta");
	if (ch->ttft_ms == 0)
		ch->ttft_ms = http_elapsed_ms(ch->r);
	/* Billed should this process die: every 2 s at most, one write. */
	billing_progress(ch->r->worker->store, &ch->acct.adm, ch->cand,
	    (ch->out_bytes + 3) / 4);
	rcache_chunk(&ch->rc, chunk);	/* rcache: kept as the upstream sent it */
	if (ch->relay)
		return 0;	/* counted; the upstream's event is sent */
	if (ch->og.active) {
		/* Restored and checked: what a later event may complete waits. */
		if ((rc = outguard_chunk(&ch->og, chunk)) == -1) {
			ch->so.stop = STOP_POLICY;
			return 1;
		}
		json_object_put(ch->last);
		ch->last = json_object_get(chunk);
	}
	if (send_client(ch, chunk) == -1)
		return 1;
	if (rc == 1) {
		/* The finding is not sent: stop. */
		ch->so.stop = STOP_POLICY;
		return 1;
	}
	return 0;
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
		return stream_event(&ch->so, ":", ev->data, ev->data_len)
		    == -1 ? 1 : 0;
	}
	rc = provider_chat_event(ch->ops, &ch->st, ev);
	if (rc == -1 && ch->so.stop == STOP_NONE)
		ch->so.stop = STOP_BAD_STREAM;
	if (rc == 0 && ch->relay) {
		/* Read by the adapter (usage, finish); sent as it came. */
		buf_reset(&ch->out);
		if (ch->cl.ops->relay(&ch->cl, ev, &ch->out) == -1) {
			ch->so.stop = STOP_CLIENT;
			return 1;
		}
		if (ch->out.len > 0 && stream_write(&ch->so, ch->out.data,
		    ch->out.len) == -1)
			return 1;
	}
	return rc;
}

/* upstream_req.on_body for streams: bytes -> events -> chunks. */
static int
on_body(void *ctx, const char *p, size_t n)
{
	struct chat	*ch = ctx;

	return stream_read(&ch->so, sse_feed(&ch->sse, p, n, on_event, ch),
	    &ch->st.err);
}

/* upstream_req.on_tick: heartbeat while the upstream is silent. */
static int
on_tick(void *ctx, long status)
{
	struct chat	*ch = ctx;

	return ch->in.stream ? stream_tick(&ch->so, status) : 0;
}

/* call_ops.build: the chat request in the candidate's protocol. */
static int
chat_build(struct call *c, const struct candidate *cand,
    const struct provider_ops *ops, struct provider_call *pc,
    struct provider_error *e)
{
	struct chat	*ch = c->ctx;
	int		 rc;

	/* The client's own protocol passes natively where cand speaks it. */
	ch->relay = 0;
	if (ch->cl.ops->native != NULL && (rc = ch->cl.ops->native(&ch->cl,
	    cand, ops, &ch->in, pc, e)) != 1) {
		ch->relay = rc == 0 && ch->cl.ops->relay != NULL &&
		    !ch->og.active;
		return rc;
	}
	return ops->chat_request(cand, &ch->in, pc, e);
}

/* call_ops.prepare: a fresh translation state and the stream's sinks. */
static void
chat_prepare(struct call *c, struct upstream_req *req)
{
	struct chat	*ch = c->ctx;

	ch->cand = c->cand;
	ch->ops = c->pops;
	req->on_tick = on_tick;
	req->ctx = ch;
	if (ch->in.stream)
		req->on_body = on_body;
	memset(&ch->st, 0, sizeof(ch->st));
	ch->st.emit = emit_chunk;
	ch->st.ctx = ch;
	ch->st.cand = ch->cand;
	ch->st.include_usage = ch->in.include_usage;
	ch->cl.usage = &ch->st.usage;
	sse_reset(&ch->sse);
	sse_set_ndjson(&ch->sse, ch->ops->framing == FRAMING_NDJSON);
	stream_attempt(&ch->so, ch->cand);
}

/* What the output guard still holds, as one more chunk: 0, or -1. */
static int
send_tail(struct chat *ch)
{
	struct json_object	*t;
	int			 rc;

	if ((t = outguard_tail(&ch->og, ch->last)) == NULL)
		return 0;
	rc = send_client(ch, t);
	json_object_put(t);
	return rc;
}

/* stream_ends.finish: what the guard holds, then the protocol's end. */
static int
send_end(void *ctx)
{
	struct chat	*ch = ctx;

	return send_tail(ch) == 0 && send_client(ch, NULL) == 0 ? 0 : -1;
}

/* stream_ends.fail: the error in-band, in the client's protocol. */
static int
send_error(void *ctx, const struct provider_error *e)
{
	struct chat	*ch = ctx;

	buf_reset(&ch->out);
	if (ch->cl.ops->fail(&ch->cl, e, &ch->out) == -1 || ch->out.len == 0)
		return -1;
	return stream_write(&ch->so, ch->out.data, ch->out.len);
}

static const struct stream_ends chat_ends = {
	.finish = send_end,
	.fail = send_error,
};

/* call_ops.deliver: the answer, or the stream's end, to the client. */
static enum call_delivery
chat_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	struct chat		*ch = c->ctx;
	struct json_object	*out = NULL, *choices, *reply;

	if (ch->in.stream) {
		if (resp->result == UP_OK)
			sse_finish(&ch->sse, on_event, ch);
		return stream_end(&ch->so, resp, ch->st.done ||
		    ch->st.finish[0] != '\0', ch->st.failed, &ch->st.err, e);
	}
	if (resp->result != UP_OK)
		return CALL_UNSENT;
	if (provider_chat_response(ch->ops, ch->cand, resp->body.data,
	    resp->body.len, &out, &ch->st.usage, e) == -1)
		return CALL_MALFORMED;
	if (json_object_object_get_ex(out, "choices", &choices))
		ch->out_bytes = generated_bytes(choices, "message");
	rcache_reply(&ch->rc, out);	/* rcache: kept before the guard */
	/* Restored and checked; a finding under output = stop cuts it. */
	if (outguard_reply(&ch->og, out) == -1) {
		json_object_put(out);
		provider_error_set(e, "server_error", "out_of_memory",
		    "out of memory checking the answer");
		return CALL_MALFORMED;
	}
	reply = NULL;
	if (ch->relay && ch->cl.ops->relay_reply != NULL)
		reply = ch->cl.ops->relay_reply(&ch->cl, resp->body.data,
		    resp->body.len);
	if (reply == NULL)
		reply = ch->cl.ops->reply != NULL ? ch->cl.ops->reply(&ch->cl,
		    out) : json_object_get(out);
	json_object_put(out);
	if (reply == NULL) {
		provider_error_set(e, "server_error", "out_of_memory",
		    "out of memory translating the answer");
		return CALL_MALFORMED;
	}
	stream_served(ch->r, ch->cand, c->attempts);
	http_send_json(ch->r, 200, reply);
	json_object_put(reply);
	return CALL_SENT;
}

static const struct call_ops chat_ops = {
	.build = chat_build,
	.prepare = chat_prepare,
	.deliver = chat_deliver,
};

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

	/* out_bytes: all the text generated (tool calls too), by length. */
	stream_row(ch->r, ch->cand, model, &ch->st.usage, ch->prompt_est,
	    ch->out_bytes, &u);
	u.cache_write = usage_cache_write(ch->st.usage.cache_write);
	u.attempts = (uint16_t)ch->call.attempts;
	u.stream = ch->in.stream != 0;
	u.ttft_ms = (int32_t)ch->ttft_ms;
	if (ch->rc.hit && ch->r->served[0] != '\0') {
		/* rcache: a hit is billed at cache_hit_price, not the model's. */
		u.estimated = (uint8_t)ch->rc.estimated;
		u.flags = (u.flags & ~(USAGE_COST_REPORTED | USAGE_UNPRICED)) |
		    USAGE_CACHE_HIT;
		u.cost = rcache_hit_cost(&ch->rc);
		if (ch->rc.semantic)
			u.flags |= USAGE_SEMANTIC;
	}
	policy_row(&ch->guard, &u);
	account_settle(ch->r, &ch->acct, &u);
}

/* client_openai.request: the body is the internal request. */
static int
openai_request(struct client *cl, struct json_object **out)
{
	struct request	*r = cl->r;
	struct verr	 e;

	memset(&e, 0, sizeof(e));
	*out = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (*out == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	return 0;
}

/* client_openai.chunk: "data: JSON". */
static int
openai_chunk(struct client *cl, struct json_object *chunk, struct buf *out)
{
	const char	*s = http_json_string(chunk);

	return buf_printf(out, "data: %s\n\n", s) == -1 ? -1 : 0;
}

static int
openai_done(struct client *cl, struct buf *out)
{
	return buf_puts(out, "data: [DONE]\n\n") == -1 ? -1 : 0;
}

/* client_openai.fail: the error object in-band, then [DONE]. */
static int
openai_fail(struct client *cl, const struct provider_error *e,
    struct buf *out)
{
	struct json_object	*o;
	int			 rc;

	o = http_error_object(e->message, e->type[0] ? e->type :
	    "upstream_error", e->code[0] ? e->code : NULL,
	    e->param[0] ? e->param : NULL);
	rc = buf_printf(out, "data: %s\n\ndata: [DONE]\n\n",
	    http_json_string(o));
	json_object_put(o);
	return rc == -1 ? -1 : 0;
}

const struct client_ops client_openai = {
	.name = "openai",
	.request = openai_request,
	.chunk = openai_chunk,
	.done = openai_done,
	.fail = openai_fail,
};

/*
 * rcache: on an exact miss, the semantic cache: the last user message
 * embedded through the gateway's own embeddings path (its own usage row;
 * a failure only means a miss), then the answer of the closest stored
 * prompt of the bucket at or over the threshold. 1 with *reply, else 0.
 */
static int
semantic_lookup(struct chat *ch, struct json_object **reply)
{
	struct sem		*s = ch->rc.sem;
	struct store		*st = ch->r->worker->store;
	struct json_object	*vec;
	unsigned char		 key[RCACHE_KEY_LEN], own[RCACHE_KEY_LEN];
	int			 rc;

	if (s == NULL)
		return 0;
	vec = embeddings_internal(ch->r, &ch->guard,
	    ch->plan.c[0].model->semantic_model, s->text);
	if (vec == NULL) {
		metrics_semantic(METRICS_SEMANTIC_ERROR);
		return 0;
	}
	rc = semantic_encode(vec, &s->vec);
	json_object_put(vec);
	if (rc == -1) {
		log_warn("%s: semantic cache: the embedding is not a vector of "
		    "1 to %d numbers", ch->r->id, SEM_DIM_MAX);
		metrics_semantic(METRICS_SEMANTIC_ERROR);
		return 0;
	}
	s->have_vec = 1;
	if (semantic_find(s, st, key) != 1) {
		metrics_semantic(METRICS_SEMANTIC_MISS);
		return 0;
	}
	/* The answer is the exact cache's: gone or expired, a miss. */
	memcpy(own, ch->rc.key, sizeof(own));
	memcpy(ch->rc.key, key, sizeof(key));
	if (rcache_get(&ch->rc, st, reply) == 1) {
		ch->rc.semantic = 1;
		http_header(ch->r, "X-Llmgate-Cache-Similarity", "%.4f",
		    s->similarity);
		metrics_semantic(METRICS_SEMANTIC_HIT);
		return 1;
	}
	memcpy(ch->rc.key, own, sizeof(own));
	metrics_semantic(METRICS_SEMANTIC_MISS);
	return 0;
}

/*
 * rcache: answer from the response cache, as a reply or replayed as a
 * stream through the same output guard. 1 when served (or the client
 * left), 0 on a miss.
 */
static int
serve_cached(struct chat *ch)
{
	struct json_object	*reply, *chunks, *out;
	size_t			 i;

	if (ch->rc.mode != RCACHE_USE ||
	    (rcache_get(&ch->rc, ch->r->worker->store, &reply) != 1 &&
	    semantic_lookup(ch, &reply) != 1)) {
		rcache_mark(&ch->rc, ch->r);
		return 0;
	}
	rcache_mark(&ch->rc, ch->r);
	ch->cand = &ch->plan.c[0];
	stream_attempt(&ch->so, ch->cand);
	ch->st.usage = ch->rc.usage;
	ch->cl.usage = &ch->st.usage;
	if (!ch->in.stream) {
		/* Checked and restored, then in the client's protocol. */
		out = NULL;
		if (outguard_reply(&ch->og, reply) != -1)
			out = ch->cl.ops->reply != NULL ?
			    ch->cl.ops->reply(&ch->cl, reply) :
			    json_object_get(reply);
		json_object_put(reply);
		if (out == NULL) {
			http_error(ch->r, 500, "server_error", "out_of_memory",
			    NULL, "out of memory checking the answer");
			return 1;
		}
		stream_served(ch->r, ch->cand, 0);
		http_send_json(ch->r, 200, out);
		json_object_put(out);
		return 1;
	}
	chunks = rcache_chunks(reply, &ch->rc.usage, ch->in.include_usage);
	json_object_put(reply);
	for (i = 0; i < json_object_array_length(chunks); i++)
		if (emit_chunk(ch, json_object_array_get_idx(chunks, i)) != 0)
			break;
	json_object_put(chunks);
	if (ch->so.stop == STOP_NONE)
		stream_close(&ch->so);
	else if (ch->so.stop == STOP_POLICY)
		stream_policy_stop(&ch->so);
	else
		stream_flush(&ch->so);
	return 1;
}

/* rcache: keep an answer served whole by the plan's first model. */
static void
store_cached(struct chat *ch)
{
	struct usage	 t = ch->st.usage;
	int		 est = 0;

	if (ch->rc.mode < RCACHE_STORE || ch->r->status != 200 ||
	    ch->so.stop != STOP_NONE || ch->r->client_gone ||
	    ch->cand == NULL ||
	    strcmp(ch->cand->name, ch->plan.c[0].name) != 0)
		return;
	if (!t.known) {
		t.prompt = ch->prompt_est;
		t.completion = (ch->out_bytes + 3) / 4;
		est = 1;
	}
	if (rcache_put(&ch->rc, ch->r->worker->store, &t, est) == 0 &&
	    ch->rc.sem != NULL)
		semantic_put(ch->rc.sem, ch->r->worker->store, ch->rc.key);
}

int
route_chat(struct request *r, const char *arg)
{
	return route_chat_as(r, &client_openai);
}

int
route_chat_as(struct request *r, const struct client_ops *cops)
{
	struct chat		 ch;
	struct admit_ask	 ask;
	struct json_object	*req = NULL, *v, *so;
	struct verr		 e;
	const char		*model;
	int64_t			 media;
	int			 rc;

	memset(&ch, 0, sizeof(ch));
	ch.cl.ops = cops;
	ch.cl.r = r;
	if ((rc = cops->request(&ch.cl, &req)) != 0)
		goto out;
	memset(&e, 0, sizeof(e));
	if (validate_chat(req, &e) == -1) {
		rc = http_error(r, 400, "invalid_request_error",
		    "invalid_value", e.param[0] ? e.param : NULL, "%s",
		    e.message);
		goto out;
	}

	memset(&ask, 0, sizeof(ask));
	ch.r = r;
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
	ch.cl.model = model;
	ch.cl.stream = ch.in.stream;
	ch.cl.prompt_est = ch.prompt_est;
	buf_init(&ch.out, (size_t)r->cfg->gw.max_sse_event + 65536);

	/* Guardrails: blocked or refused, recorded at no cost; never sent. */
	if ((rc = policy_request(r, POLICY_CHAT, req, &ch.guard)) != 0) {
		record(&ch, model);
		goto out;
	}
	if ((rc = account_plan(r, model, &ch.plan)) != 0)
		goto out;
	if ((rc = policy_plan(r, &ch.guard, &ch.plan)) != 0) {
		record(&ch, model);
		goto out;
	}
	/* The semantic cache's embedding is reserved with the request. */
	ask.extra = semantic_reserve(r->cfg, &ch.plan, ask.prompt);
	if ((rc = account_admit(r, &ch.plan, &ask, &ch.acct)) != 0) {
		record(&ch, model);	/* refused: recorded at no cost */
		goto out;
	}
	sse_init(&ch.sse, (size_t)r->cfg->gw.max_sse_event);
	outguard_init(&ch.og, &ch.guard);
	stream_init(&ch.so, r, &ch.call, &ch.guard, &chat_ends, &ch);
	/* rcache: lookup; a hit is served here without an upstream call. */
	rcache_begin(&ch.rc, r, &ch.plan, req);
	if (serve_cached(&ch) == 0) {
		call_init(&ch.call, r, &ch.plan, &chat_ops, &ch,
		    (size_t)r->cfg->gw.max_body * 2 + 65536);
		call_run(&ch.call);
	}
	sse_free(&ch.sse);
	record(&ch, model);
	store_cached(&ch);	/* rcache: store a served answer */
	rcache_free(&ch.rc);
	outguard_free(&ch.og);
	json_object_put(ch.last);
	rc = r->status;
out:
	guard_free(&ch.guard);
	buf_free(&ch.out);
	if (cops->free != NULL)
		cops->free(&ch.cl);
	json_object_put(ch.cl.body);
	json_object_put(req);
	return rc;
}
