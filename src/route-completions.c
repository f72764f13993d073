/*
 * route-completions.c: POST /v1/completions, the legacy text completion
 * (prompt, suffix for fill-in-the-middle), streamed or not. Only
 * OpenAI-compatible providers configured with completions = on speak it:
 * every other candidate is left out of the plan, and the request is
 * forwarded as it came (the upstream model id, the gateway's limit)
 * through the one call loop, with the policy step, admission, the
 * answer's guard and settlement every model route has.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "call.h"
#include "config.h"
#include "outguard.h"
#include "plan.h"
#include "policy.h"
#include "provider.h"
#include "route.h"
#include "sse.h"
#include "stream-out.h"
#include "upstream.h"
#include "usage.h"
#include "validate.h"

/* One completions request in flight; lives on the handler's stack. */
struct comp {
	struct request		*r;
	const struct candidate	*cand;		/* of the attempt in flight */
	struct json_object	*req;		/* the client's; owned */
	struct call		 call;
	struct plan		 plan;
	struct account		 acct;
	struct guard		 guard;
	struct outguard		 og;
	struct sse_parser	 sse;
	struct json_object	*last;		/* last chunk's chat shadow */
	struct usage		 usage;
	struct provider_error	 err;		/* a stream's own error event */
	struct stream_out	 so;		/* the client's side of a stream */
	int			 stream;
	int			 include_usage;	/* the client asked for it */
	int			 done;		/* [DONE] seen */
	int			 finished;	/* a finish_reason seen */
	int			 failed;	/* an error event seen */
	double			 ttft_ms;
	int64_t			 client_max;
	int64_t			 prompt_est;
	int64_t			 out_bytes;
};

/* --- the request ------------------------------------------------------- */

static int
is_string(struct json_object *o, const char *member, int null_ok)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, member, &v))
		return 1;
	return (v == NULL && null_ok) || json_object_is_type(v,
	    json_type_string);
}

/*
 * What the route accepts: one prompt (a string, or an array of one
 * string), a suffix, and the sampling members passed on as they are.
 * -1 with e filled (the member named) when the request is refused.
 */
static int
validate(struct json_object *req, struct verr *e)
{
	struct json_object	*v;

	if (!json_object_is_type(req, json_type_object)) {
		snprintf(e->message, sizeof(e->message), "the body must be "
		    "a JSON object");
		return -1;
	}
	if (!json_object_object_get_ex(req, "model", &v) ||
	    !json_object_is_type(v, json_type_string) ||
	    json_object_get_string_len(v) == 0 ||
	    json_object_get_string_len(v) >= MODEL_NAME_MAX) {
		snprintf(e->param, sizeof(e->param), "model");
		snprintf(e->message, sizeof(e->message), "model: a model "
		    "name is required");
		return -1;
	}
	if (!json_object_object_get_ex(req, "prompt", &v) ||
	    !(json_object_is_type(v, json_type_string) ||
	    (json_object_is_type(v, json_type_array) &&
	    json_object_array_length(v) == 1 &&
	    json_object_is_type(json_object_array_get_idx(v, 0),
	    json_type_string)))) {
		snprintf(e->param, sizeof(e->param), "prompt");
		snprintf(e->message, sizeof(e->message), "prompt: a string "
		    "(or an array of one string) is required; token arrays "
		    "and batches of prompts are not accepted");
		return -1;
	}
	if (!is_string(req, "suffix", 1)) {
		snprintf(e->param, sizeof(e->param), "suffix");
		snprintf(e->message, sizeof(e->message), "suffix: expected a "
		    "string");
		return -1;
	}
	if (json_object_object_get_ex(req, "echo", &v) && v != NULL &&
	    (!json_object_is_type(v, json_type_boolean) ||
	    json_object_get_boolean(v))) {
		snprintf(e->param, sizeof(e->param), "echo");
		snprintf(e->message, sizeof(e->message), "echo: only false is "
		    "supported");
		return -1;
	}
	if (json_object_object_get_ex(req, "stream", &v) && v != NULL &&
	    !json_object_is_type(v, json_type_boolean)) {
		snprintf(e->param, sizeof(e->param), "stream");
		snprintf(e->message, sizeof(e->message), "stream: expected a "
		    "boolean");
		return -1;
	}
	if (json_object_object_get_ex(req, "max_tokens", &v) && v != NULL &&
	    (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 0)) {
		snprintf(e->param, sizeof(e->param), "max_tokens");
		snprintf(e->message, sizeof(e->message), "max_tokens: expected "
		    "an integer >= 0");
		return -1;
	}
	if (json_object_object_get_ex(req, "n", &v) && v != NULL &&
	    (!json_object_is_type(v, json_type_int) ||
	    json_object_get_int64(v) < 1 || json_object_get_int64(v) > 128)) {
		snprintf(e->param, sizeof(e->param), "n");
		snprintf(e->message, sizeof(e->message), "n: expected an "
		    "integer from 1 to 128");
		return -1;
	}
	if (json_object_object_get_ex(req, "best_of", &v) && v != NULL) {
		snprintf(e->param, sizeof(e->param), "best_of");
		snprintf(e->message, sizeof(e->message), "best_of is not "
		    "supported (it is billed for completions never seen)");
		return -1;
	}
	return 0;
}

/* Does candidate c serve the legacy completions? */
static int
offers_completions(const struct candidate *c)
{
	int	 on = c->provider->completions;

	if (c->model != NULL && c->model->completions >= 0)
		on = c->model->completions;
	return on && c->provider->type == PROVIDER_OPENAI;
}

/*
 * Leave out of pl every candidate that does not offer completions, a
 * group of deployments keeping its members that remain together. The
 * number left.
 */
static size_t
keep_completions(struct plan *pl)
{
	struct candidate	 keep[PLAN_MAX];
	size_t			 map[PLAN_MAX], i, j, n = 0, first, cnt;

	for (i = 0; i < pl->n; i++) {
		map[i] = PLAN_MAX;
		if (offers_completions(&pl->c[i])) {
			map[i] = n;
			keep[n++] = pl->c[i];
		}
	}
	for (i = 0; i < pl->n; i++) {
		if (map[i] == PLAN_MAX || pl->c[i].group_n == 0)
			continue;
		first = PLAN_MAX;
		cnt = 0;
		for (j = pl->c[i].group; j < pl->n &&
		    j < pl->c[i].group + pl->c[i].group_n; j++)
			if (map[j] != PLAN_MAX) {
				if (first == PLAN_MAX)
					first = map[j];
				cnt++;
			}
		keep[map[i]].group = first;
		keep[map[i]].group_n = cnt;
	}
	if (n > 0)
		memcpy(pl->c, keep, n * sizeof(keep[0]));
	pl->n = n;
	return n;
}

/* call_ops.build: the client's request with the upstream id and our limit. */
static int
comp_build(struct call *c, const struct candidate *cand,
    const struct provider_ops *ops, struct provider_call *pc,
    struct provider_error *e)
{
	struct comp		*cp = c->ctx;
	struct json_object	*out, *so;
	int			 rc = 0;

	if (cand->provider->type != PROVIDER_OPENAI) {
		provider_error_set(e, "invalid_request_error",
		    "unsupported_request", "provider '%s' does not offer "
		    "/v1/completions", cand->provider->name);
		return -1;
	}
	out = json_object_new_object();
	json_object_object_foreach(cp->req, key, val) {
		if (strcmp(key, "model") == 0 ||
		    strcmp(key, "max_tokens") == 0 ||
		    strcmp(key, "stream_options") == 0)
			continue;
		json_object_object_add(out, key, json_object_get(val));
	}
	json_object_object_add(out, "model",
	    json_object_new_string(cand->upstream));
	json_object_object_add(out, "max_tokens",
	    json_object_new_int64(plan_max_tokens(cand, cp->client_max)));
	if (cp->stream) {
		/* Usage in the stream: billed exactly, shown when asked for. */
		so = json_object_new_object();
		json_object_object_add(so, "include_usage",
		    json_object_new_boolean(1));
		json_object_object_add(out, "stream_options", so);
	}
	if (provider_body(pc, out) == -1 ||
	    provider_url(pc, cand->provider, "/completions") == -1 ||
	    provider_headers(pc, cand->provider, "Authorization",
	    "Bearer ") == -1)
		rc = -1;
	json_object_put(out);
	return rc;
}

/* --- the answer's guard: each choice's text as a chat choice's ------------ */

/*
 * A chat-shaped shadow of choices (member "delta" or "message" holding
 * each text as content), for the output guard, which knows chat.
 */
static struct json_object *
shadow(struct json_object *choices, const char *member)
{
	struct json_object	*o, *arr, *ch, *m, *v;
	size_t			 i;

	arr = json_object_new_array();
	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		o = json_object_new_object();
		m = json_object_new_object();
		if (json_object_object_get_ex(ch, "index", &v))
			json_object_object_add(o, "index", json_object_get(v));
		if (json_object_object_get_ex(ch, "text", &v))
			json_object_object_add(m, "content",
			    json_object_get(v));
		json_object_object_add(o, member, m);
		if (json_object_object_get_ex(ch, "finish_reason", &v))
			json_object_object_add(o, "finish_reason",
			    json_object_get(v));
		json_object_array_add(arr, o);
	}
	o = json_object_new_object();
	json_object_object_add(o, "choices", arr);
	return o;
}

/* The guarded texts and finish reasons back into choices. */
static void
unshadow(struct json_object *choices, struct json_object *sh,
    const char *member)
{
	struct json_object	*arr, *ch, *s, *m, *v;
	size_t			 i;

	if (!json_object_object_get_ex(sh, "choices", &arr))
		return;
	for (i = 0; i < json_object_array_length(choices) &&
	    i < json_object_array_length(arr); i++) {
		ch = json_object_array_get_idx(choices, i);
		s = json_object_array_get_idx(arr, i);
		if (json_object_object_get_ex(s, member, &m) &&
		    json_object_object_get_ex(m, "content", &v))
			json_object_object_add(ch, "text", json_object_is_type(
			    v, json_type_string) ? json_object_get(v) :
			    json_object_new_string(""));
		if (json_object_object_get_ex(s, "finish_reason", &v))
			json_object_object_add(ch, "finish_reason",
			    json_object_get(v));
	}
}

/* Bytes of generated text in choices. */
static int64_t
text_bytes(struct json_object *choices)
{
	struct json_object	*v;
	int64_t			 n = 0;
	size_t			 i;

	if (!json_object_is_type(choices, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(choices); i++)
		if (json_object_object_get_ex(json_object_array_get_idx(
		    choices, i), "text", &v) &&
		    json_object_is_type(v, json_type_string))
			n += json_object_get_string_len(v);
	return n;
}

/* --- streams -------------------------------------------------------------- */

static int
send_data(struct comp *cp, struct json_object *o)
{
	const char	*s = http_json_string(o);

	return stream_event(&cp->so, "data: ", s, strlen(s));
}

/* One text_completion chunk, guarded, to the client: 0, or 1 to stop. */
static int
relay_chunk(struct comp *cp, struct json_object *o)
{
	struct json_object	*choices, *sh, *v;
	size_t			 i;
	int			 rc = 0;

	if (!json_object_object_get_ex(o, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array))
		choices = NULL;
	if (choices != NULL) {
		cp->out_bytes += text_bytes(choices);
		for (i = 0; i < json_object_array_length(choices); i++)
			if (json_object_object_get_ex(json_object_array_get_idx(
			    choices, i), "finish_reason", &v) &&
			    json_object_is_type(v, json_type_string))
				cp->finished = 1;
	}
	if (cp->ttft_ms == 0)
		cp->ttft_ms = http_elapsed_ms(cp->r);
	billing_progress(cp->r->worker->store, &cp->acct.adm, cp->cand,
	    (cp->out_bytes + 3) / 4);
	if (cp->og.active && choices != NULL) {
		sh = shadow(choices, "delta");
		if ((rc = outguard_chunk(&cp->og, sh)) == -1) {
			json_object_put(sh);
			cp->so.stop = STOP_POLICY;
			return 1;
		}
		unshadow(choices, sh, "delta");
		json_object_put(cp->last);
		cp->last = sh;
	}
	if (send_data(cp, o) == -1)
		return 1;
	if (rc == 1) {
		cp->so.stop = STOP_POLICY;
		return 1;
	}
	return 0;
}

static int
on_event(void *ctx, const struct sse_event *ev)
{
	struct comp		*cp = ctx;
	struct json_object	*o, *v, *choices;
	int			 rc;

	if (ev->comment)
		return cp->r->headers_sent ? stream_event(&cp->so, ":",
		    ev->data, ev->data_len) == -1 : 0;
	if (ev->data_len == 6 && memcmp(ev->data, "[DONE]", 6) == 0) {
		cp->done = 1;
		return 0;
	}
	if ((o = provider_parse(ev->data, ev->data_len)) == NULL) {
		provider_error_set(&cp->err, "upstream_error",
		    "bad_upstream_response", "provider '%s' sent a malformed "
		    "stream event", cp->cand->provider->name);
		cp->so.stop = STOP_BAD_STREAM;
		return -1;
	}
	if (json_object_object_get_ex(o, "error", &v) && v != NULL) {
		provider_error_openai(502, ev->data, ev->data_len, &cp->err);
		cp->failed = 1;
		cp->so.stop = STOP_BAD_STREAM;
		json_object_put(o);
		return -1;
	}
	if (json_object_object_get_ex(o, "usage", &v) && v != NULL)
		provider_usage_openai(v, &cp->usage);
	/* The usage chunk (no choices) only for a client that asked. */
	if (!cp->include_usage && json_object_object_get_ex(o, "choices",
	    &choices) && json_object_is_type(choices, json_type_array) &&
	    json_object_array_length(choices) == 0) {
		json_object_put(o);
		return 0;
	}
	if (!cp->include_usage)
		json_object_object_del(o, "usage");
	json_object_object_add(o, "model",
	    json_object_new_string(cp->cand->name));
	rc = relay_chunk(cp, o);
	json_object_put(o);
	return rc;
}

static int
on_body(void *ctx, const char *p, size_t n)
{
	struct comp	*cp = ctx;

	return stream_read(&cp->so, sse_feed(&cp->sse, p, n, on_event, cp),
	    &cp->err);
}

static int
on_tick(void *ctx, long status)
{
	struct comp	*cp = ctx;

	return cp->stream ? stream_tick(&cp->so, status) : 0;
}

static void
comp_prepare(struct call *c, struct upstream_req *req)
{
	struct comp	*cp = c->ctx;

	cp->cand = c->cand;
	req->on_tick = on_tick;
	req->ctx = cp;
	if (cp->stream)
		req->on_body = on_body;
	memset(&cp->usage, 0, sizeof(cp->usage));
	memset(&cp->err, 0, sizeof(cp->err));
	cp->done = cp->finished = cp->failed = 0;
	sse_reset(&cp->sse);
	stream_attempt(&cp->so, cp->cand);
}

/* stream_ends.fail: the error in-band, then [DONE]. */
static int
send_error(void *ctx, const struct provider_error *e)
{
	struct comp		*cp = ctx;
	struct json_object	*o;
	int			 rc;

	o = http_error_object(e->message, e->type[0] ? e->type :
	    "upstream_error", e->code[0] ? e->code : NULL,
	    e->param[0] ? e->param : NULL);
	rc = send_data(cp, o) == 0 &&
	    stream_write(&cp->so, "data: [DONE]\n\n", 14) == 0 ? 0 : -1;
	json_object_put(o);
	return rc;
}

/* What the output guard still holds, as one more text_completion chunk. */
static int
send_tail(struct comp *cp)
{
	struct json_object	*t, *arr, *o, *c, *ch, *d, *v;
	size_t			 i;
	int			 rc;

	if (!cp->og.active || cp->last == NULL ||
	    (t = outguard_tail(&cp->og, cp->last)) == NULL)
		return 0;
	o = json_object_new_object();
	json_object_object_add(o, "object",
	    json_object_new_string("text_completion"));
	json_object_object_add(o, "model",
	    json_object_new_string(cp->cand->name));
	arr = json_object_new_array();
	if (json_object_object_get_ex(t, "choices", &c))
		for (i = 0; i < json_object_array_length(c); i++) {
			ch = json_object_new_object();
			v = json_object_array_get_idx(c, i);
			if (json_object_object_get_ex(v, "index", &d))
				json_object_object_add(ch, "index",
				    json_object_get(d));
			json_object_object_add(ch, "text",
			    json_object_new_string(json_object_object_get_ex(v,
			    "delta", &d) && json_object_object_get_ex(d,
			    "content", &d) && json_object_is_type(d,
			    json_type_string) ? json_object_get_string(d) : ""));
			json_object_object_add(ch, "finish_reason", NULL);
			json_object_array_add(arr, ch);
		}
	json_object_object_add(o, "choices", arr);
	rc = send_data(cp, o);
	json_object_put(o);
	json_object_put(t);
	return rc;
}

/* stream_ends.finish: what the guard holds, then [DONE]. */
static int
send_end(void *ctx)
{
	struct comp	*cp = ctx;

	return send_tail(cp) == 0 && stream_write(&cp->so, "data: [DONE]\n\n",
	    14) == 0 ? 0 : -1;
}

static const struct stream_ends comp_ends = {
	.finish = send_end,
	.fail = send_error,
};

/* call_ops.deliver: the answer, or the stream's end, to the client. */
static enum call_delivery
comp_deliver(struct call *c, const struct upstream_resp *resp,
    struct provider_error *e)
{
	struct comp		*cp = c->ctx;
	struct json_object	*o, *choices, *v, *sh;
	int			 rc;

	if (cp->stream) {
		if (resp->result == UP_OK)
			sse_finish(&cp->sse, on_event, cp);
		return stream_end(&cp->so, resp, cp->done || cp->finished,
		    cp->failed, &cp->err, e);
	}
	if (resp->result != UP_OK)
		return CALL_UNSENT;
	if ((o = provider_parse(resp->body.data, resp->body.len)) == NULL ||
	    !json_object_object_get_ex(o, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed text completion",
		    cp->cand->provider->name);
		return CALL_MALFORMED;
	}
	if (json_object_object_get_ex(o, "usage", &v) && v != NULL)
		provider_usage_openai(v, &cp->usage);
	cp->out_bytes = text_bytes(choices);
	json_object_object_add(o, "model",
	    json_object_new_string(cp->cand->name));
	if (cp->og.active) {
		sh = shadow(choices, "message");
		rc = outguard_reply(&cp->og, sh);
		if (rc != -1)
			unshadow(choices, sh, "message");
		json_object_put(sh);
		if (rc == -1) {
			json_object_put(o);
			provider_error_set(e, "server_error", "out_of_memory",
			    "out of memory checking the answer");
			return CALL_MALFORMED;
		}
	}
	stream_served(cp->r, cp->cand, c->attempts);
	http_send_json(cp->r, 200, o);
	json_object_put(o);
	return CALL_SENT;
}

static const struct call_ops comp_ops = {
	.build = comp_build,
	.prepare = comp_prepare,
	.deliver = comp_deliver,
};

/* --- settlement ------------------------------------------------------------ */

static void
record(struct comp *cp, const char *model)
{
	struct usage_row	 u;

	stream_row(cp->r, cp->cand, model, &cp->usage, cp->prompt_est,
	    cp->out_bytes, &u);
	u.attempts = (uint16_t)cp->call.attempts;
	u.stream = cp->stream != 0;
	u.ttft_ms = (int32_t)cp->ttft_ms;
	policy_row(&cp->guard, &u);
	account_settle(cp->r, &cp->acct, &u);
}

static int
member_true(struct json_object *o, const char *member)
{
	struct json_object	*v;

	return json_object_object_get_ex(o, member, &v) && v != NULL &&
	    json_object_get_boolean(v);
}

int
route_completions(struct request *r, const char *arg)
{
	struct comp		 cp;
	struct admit_ask	 ask;
	struct json_object	*req, *so, *v;
	struct verr		 e;
	const char		*model;
	int			 rc;

	memset(&e, 0, sizeof(e));
	req = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (req == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	if (validate(req, &e) == -1) {
		json_object_put(req);
		return http_error(r, 400, "invalid_request_error",
		    "invalid_value", e.param[0] ? e.param : NULL, "%s",
		    e.message);
	}

	memset(&cp, 0, sizeof(cp));
	memset(&ask, 0, sizeof(ask));
	cp.r = r;
	cp.req = req;
	cp.stream = member_true(req, "stream");
	cp.include_usage = cp.stream &&
	    json_object_object_get_ex(req, "stream_options", &so) &&
	    member_true(so, "include_usage");
	if (json_object_object_get_ex(req, "max_tokens", &v) && v != NULL)
		cp.client_max = json_object_get_int64(v);
	cp.prompt_est = ((int64_t)r->body.len + 3) / 4;
	ask.prompt = (int64_t)r->body.len;
	ask.prompt_est = cp.prompt_est;
	ask.client_max = cp.client_max;
	ask.choices = provider_json_int(req, "n") > 1 ?
	    provider_json_int(req, "n") : 1;
	json_object_object_get_ex(req, "model", &v);
	model = json_object_get_string(v);

	/* Guardrails over prompt and suffix: nothing refused is ever sent. */
	if ((rc = policy_request(r, POLICY_COMPLETIONS, req, &cp.guard)) != 0) {
		record(&cp, model);
		goto out;
	}
	if ((rc = account_plan(r, model, &cp.plan)) != 0)
		goto out;
	if (keep_completions(&cp.plan) == 0) {
		rc = http_error(r, 400, "invalid_request_error",
		    "unsupported_model", "model", "model '%s' does not offer "
		    "/v1/completions (no provider of it is configured with "
		    "completions = on); use /v1/chat/completions", model);
		goto out;
	}
	if ((rc = policy_plan(r, &cp.guard, &cp.plan)) != 0) {
		record(&cp, model);
		goto out;
	}
	if ((rc = account_admit(r, &cp.plan, &ask, &cp.acct)) != 0) {
		record(&cp, model);
		goto out;
	}
	sse_init(&cp.sse, (size_t)r->cfg->gw.max_sse_event);
	outguard_init(&cp.og, &cp.guard);
	stream_init(&cp.so, r, &cp.call, &cp.guard, &comp_ends, &cp);
	call_init(&cp.call, r, &cp.plan, &comp_ops, &cp,
	    (size_t)r->cfg->gw.max_body * 2 + 65536);
	call_run(&cp.call);
	sse_free(&cp.sse);
	record(&cp, model);
	outguard_free(&cp.og);
	json_object_put(cp.last);
	rc = r->status;
out:
	guard_free(&cp.guard);
	json_object_put(req);
	return rc;
}
