/*
 * outguard.c: a chat answer's placeholders restored and its output
 * checked, whole or streamed; see outguard.h.
 */
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "outguard.h"

/* Choice slots: validate caps n at 128; any other index shares the last. */
#define OUTGUARD_CHOICES	129

/* The text an output stream releases at most: the body cap's order. */
#define OUTGUARD_BUF_MAX	(64u << 20)

void
outguard_init(struct outguard *og, struct guard *g)
{
	memset(og, 0, sizeof(*og));
	og->g = g;
	og->active = g != NULL && g->pol != NULL &&
	    (policy_out_mode(g) != REDACT_OUT_OFF ||
	    (policy_restore(g) && g->map.n > 0));
	buf_init(&og->out, OUTGUARD_BUF_MAX);
}

void
outguard_free(struct outguard *og)
{
	size_t	 i;

	for (i = 0; i < og->nc; i++) {
		redact_stream_free(&og->c[i].content);
		redact_stream_free(&og->c[i].args);
	}
	free(og->c);
	buf_free(&og->out);
	memset(og, 0, sizeof(*og));
}

/* One text of the answer, checked and restored as the guard says. */
static void
text_init(struct outguard *og, struct redact_stream *s)
{
	redact_stream_init(s, policy_rules(og->g),
	    policy_restore(og->g) ? &og->g->map : NULL,
	    policy_out_mask(og->g), policy_out_mode(og->g));
}

/* The slot of a choice index, made on first use; NULL: no memory. */
static struct outguard_choice *
choice(struct outguard *og, int64_t index)
{
	struct outguard_choice	*c;
	size_t			 i, want;

	i = index >= 0 && index < OUTGUARD_CHOICES - 1 ? (size_t)index :
	    OUTGUARD_CHOICES - 1;
	if (i >= og->nc) {
		want = i + 1;
		c = realloc(og->c, want * sizeof(*c));
		if (c == NULL)
			return NULL;
		memset(c + og->nc, 0, (want - og->nc) * sizeof(*c));
		og->c = c;
		og->nc = want;
	}
	c = &og->c[i];
	if (!c->used) {
		text_init(og, &c->content);
		text_init(og, &c->args);
		c->args_index = -1;
		c->used = 1;
	}
	return c;
}

/* What a stream found, into the guard's record. */
static void
note(struct outguard *og, const struct redact_stream *s)
{
	og->g->out_found |= s->found;
	if (s->found != 0)
		og->g->out_acted |= 1u << (s->stopped ? POLICY_BLOCK :
		    policy_out_mode(og->g) == REDACT_OUT_REDACT ?
		    POLICY_REDACT : POLICY_LOG);
}

/*
 * o's string member name through s: what may be released replaces it
 * (finish: everything held, after it). 0, 1 stopped, -1.
 */
static int
pass(struct outguard *og, struct redact_stream *s, struct json_object *o,
    const char *name, int finish)
{
	struct json_object	*v, *nv;
	int			 had, rc = 0;

	buf_reset(&og->out);
	had = json_object_object_get_ex(o, name, &v) &&
	    json_object_is_type(v, json_type_string);
	if (had)
		rc = redact_stream_feed(s, json_object_get_string(v),
		    (size_t)json_object_get_string_len(v), &og->out);
	else if (!finish)
		return 0;	/* nothing of this text in the event */
	if (rc == 0 && finish)
		rc = redact_stream_finish(s, &og->out);
	note(og, s);
	if (rc < 0)
		return -1;
	if (!had && og->out.len == 0)
		return rc;	/* nothing held: the event stays as it was */
	nv = json_object_new_string_len(og->out.data, (int)og->out.len);
	if (nv == NULL || json_object_object_add(o, name, nv) != 0) {
		json_object_put(nv);
		return -1;
	}
	return rc;
}

/* The choice stopped: its finish_reason says so. */
static void
stopped(struct outguard *og, struct json_object *ch)
{
	og->stopped = 1;
	json_object_object_add(ch, "finish_reason",
	    json_object_new_string("content_filter"));
}

/*
 * delta's tool_calls array with o (owned) inserted at i: the new array,
 * or NULL (o freed). json-c 0.16, Debian's, has no insert.
 */
static struct json_object *
insert(struct json_object *delta, struct json_object *calls, size_t i,
    struct json_object *o)
{
	struct json_object	*a;
	size_t			 j, n = json_object_array_length(calls);

	if ((a = json_object_new_array_ext((int)n + 1)) == NULL) {
		json_object_put(o);
		return NULL;
	}
	for (j = 0; j <= n; j++)
		if (json_object_array_add(a, j == i ? o :
		    json_object_get(json_object_array_get_idx(calls,
		    j < i ? j : j - 1))) != 0) {
			if (j <= i)	/* not in a yet */
				json_object_put(o);
			json_object_put(a);
			return NULL;
		}
	if (json_object_object_add(delta, "tool_calls", a) != 0) {
		json_object_put(a);
		return NULL;
	}
	return a;
}

/*
 * What tool call c->args_index still holds, released into an entry of its
 * own, {"index", "function": {"arguments"}}, in *entry (the caller's);
 * NULL when it held nothing. 0, 1 stopped, -1.
 */
static int
held_args(struct outguard *og, struct outguard_choice *c,
    struct json_object **entry)
{
	struct json_object	*tc, *fn;
	int			 rc;

	*entry = NULL;
	if ((tc = json_object_new_object()) == NULL)
		return -1;
	if ((fn = json_object_new_object()) == NULL) {
		json_object_put(tc);
		return -1;
	}
	json_object_object_add(tc, "index", json_object_new_int64(c->args_index));
	json_object_object_add(tc, "function", fn);
	rc = pass(og, &c->args, fn, "arguments", 1);
	if (rc < 0 || !json_object_object_get_ex(fn, "arguments", NULL)) {
		json_object_put(tc);
		return rc;
	}
	*entry = tc;
	return rc;
}

/*
 * A tool call's arguments, one call at a time: a new index releases what
 * the previous call held into an entry of its own, before the new one.
 */
static int
tool_args(struct outguard *og, struct outguard_choice *c,
    struct json_object *delta, struct json_object *calls)
{
	struct json_object	*tc, *fn, *v, *prev;
	int64_t			 idx;
	size_t			 i, n;
	int			 rc;

	n = json_object_is_type(calls, json_type_array) ?
	    json_object_array_length(calls) : 0;
	for (i = 0; i < n; i++) {
		tc = json_object_array_get_idx(calls, i);
		if (!json_object_object_get_ex(tc, "function", &fn) ||
		    !json_object_is_type(fn, json_type_object))
			continue;
		idx = json_object_object_get_ex(tc, "index", &v) ?
		    json_object_get_int64(v) : (int64_t)i;
		if (c->args_index >= 0 && idx != c->args_index) {
			if ((rc = held_args(og, c, &prev)) != 0) {
				json_object_put(prev);
				return rc;
			}
			if (prev != NULL) {
				if ((calls = insert(delta, calls, i, prev)) ==
				    NULL)
					return -1;
				i++, n++;
			}
			redact_stream_free(&c->args);
			text_init(og, &c->args);
		}
		c->args_index = idx;
		if ((rc = pass(og, &c->args, fn, "arguments", 0)) != 0) {
			/* Stopped: nothing after the finding goes out. */
			if (rc == 1 && i + 1 < n)
				json_object_array_del_idx(calls, i + 1,
				    n - i - 1);
			return rc;
		}
	}
	return 0;
}

/* A finishing choice: what its last tool call held, as one more entry. */
static int
tool_args_finish(struct outguard *og, struct outguard_choice *c,
    struct json_object *delta)
{
	struct json_object	*calls, *tc;
	int			 rc;

	rc = held_args(og, c, &tc);
	c->args_index = -1;
	if (tc == NULL)
		return rc;
	if (!json_object_object_get_ex(delta, "tool_calls", &calls) ||
	    !json_object_is_type(calls, json_type_array)) {
		if ((calls = json_object_new_array()) == NULL ||
		    json_object_object_add(delta, "tool_calls", calls) != 0) {
			json_object_put(calls);
			json_object_put(tc);
			return -1;
		}
	}
	if (json_object_array_add(calls, tc) != 0) {
		json_object_put(tc);
		return -1;
	}
	return rc;
}

int
outguard_chunk(struct outguard *og, struct json_object *chunk)
{
	struct json_object	*choices, *ch, *delta, *v, *calls;
	struct outguard_choice	*c;
	size_t			 i;
	int			 fin, rc, any = 0;

	if (!og->active || og->stopped ||
	    !json_object_object_get_ex(chunk, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array))
		return 0;
	/* Every choice of the event, even after one stopped: none passes raw. */
	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		if (!json_object_object_get_ex(ch, "delta", &delta) ||
		    !json_object_is_type(delta, json_type_object))
			continue;
		if ((c = choice(og, json_object_object_get_ex(ch, "index", &v) ?
		    json_object_get_int64(v) : (int64_t)i)) == NULL)
			return -1;
		fin = json_object_object_get_ex(ch, "finish_reason", &v) &&
		    v != NULL;
		rc = 0;
		if (json_object_object_get_ex(delta, "tool_calls", &calls))
			rc = tool_args(og, c, delta, calls);
		if (rc == 0 && c->args_index >= 0 && fin)
			rc = tool_args_finish(og, c, delta);
		if (rc == 0)
			rc = pass(og, &c->content, delta, "content", fin);
		else
			json_object_object_del(delta, "content");
		if (rc < 0)
			return -1;
		if (rc == 1) {
			stopped(og, ch);
			any = 1;
		}
	}
	return any;
}

struct json_object *
outguard_tail(struct outguard *og, struct json_object *last)
{
	struct json_object	*t, *choices, *ch, *delta, *v;
	size_t			 i;
	const char		*keep[] = { "id", "object", "created", "model",
				    "system_fingerprint" };

	if (!og->active || og->stopped)
		return NULL;
	for (i = 0; i < og->nc; i++)
		if (og->c[i].used && (og->c[i].content.held.len > 0 ||
		    (og->c[i].args_index >= 0 && og->c[i].args.held.len > 0)))
			break;
	if (i == og->nc)
		return NULL;
	if ((t = json_object_new_object()) == NULL)
		return NULL;
	for (i = 0; last != NULL && i < sizeof(keep) / sizeof(keep[0]); i++)
		if (json_object_object_get_ex(last, keep[i], &v))
			json_object_object_add(t, keep[i], json_object_get(v));
	choices = json_object_new_array();
	json_object_object_add(t, "choices", choices);
	for (i = 0; choices != NULL && i < og->nc; i++) {
		if (!og->c[i].used)
			continue;
		ch = json_object_new_object();
		delta = json_object_new_object();
		if (ch == NULL || delta == NULL) {
			json_object_put(ch);
			json_object_put(delta);
			break;
		}
		json_object_object_add(ch, "index", json_object_new_int64(
		    (int64_t)i));
		json_object_object_add(ch, "delta", delta);
		json_object_array_add(choices, ch);
		if ((og->c[i].args_index >= 0 &&
		    tool_args_finish(og, &og->c[i], delta) != 0) ||
		    pass(og, &og->c[i].content, delta, "content", 1) != 0)
			break;
	}
	return t;
}

/* One choice's message of a whole answer: 0, 1 (stopped), -1. */
static int
reply_choice(struct outguard *og, struct json_object *msg)
{
	struct json_object	*calls, *fn;
	struct redact_stream	 s;
	size_t			 j;
	int			 rc;

	text_init(og, &s);
	rc = pass(og, &s, msg, "content", 1);
	redact_stream_free(&s);
	if (rc != 0 || !json_object_object_get_ex(msg, "tool_calls", &calls) ||
	    !json_object_is_type(calls, json_type_array))
		return rc;
	for (j = 0; rc == 0 && j < json_object_array_length(calls); j++) {
		if (!json_object_object_get_ex(json_object_array_get_idx(calls,
		    j), "function", &fn) || !json_object_is_type(fn,
		    json_type_object))
			continue;
		text_init(og, &s);
		rc = pass(og, &s, fn, "arguments", 1);
		redact_stream_free(&s);
	}
	return rc;
}

int
outguard_reply(struct outguard *og, struct json_object *reply)
{
	struct json_object	*choices, *ch, *msg;
	size_t			 i;
	int			 rc, any = 0;

	if (!og->active ||
	    !json_object_object_get_ex(reply, "choices", &choices) ||
	    !json_object_is_type(choices, json_type_array))
		return 0;
	for (i = 0; i < json_object_array_length(choices); i++) {
		ch = json_object_array_get_idx(choices, i);
		if (!json_object_object_get_ex(ch, "message", &msg) ||
		    !json_object_is_type(msg, json_type_object))
			continue;
		if ((rc = reply_choice(og, msg)) < 0)
			return -1;
		if (rc == 1) {
			/* Cut before the finding; no call goes out of it. */
			json_object_object_del(msg, "tool_calls");
			stopped(og, ch);
			any = 1;
		}
	}
	return any;
}
