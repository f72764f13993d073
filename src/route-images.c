/*
 * route-images.c: POST /v1/images/generations, passed through to
 * OpenAI-compatible providers and priced per image returned.
 */
#include <string.h>

#include "call.h"
#include "config.h"
#include "route.h"
#include "validate.h"

#define NRULES(a)	(sizeof(a) / sizeof((a)[0]))

static const struct field_rule rules[] = {
	{ "model", J_STRING, 1, 1, 255, 0 },
	{ "prompt", J_STRING, 1, 1, 32000, 0 },
	{ "n", J_INT | J_NULL, 0, 1, 10, 0 },
	{ "size", J_STRING | J_NULL, 0, 0, 32, 0 },
	{ "quality", J_STRING | J_NULL, 0, 0, 32, 0 },
	{ "style", J_STRING | J_NULL, 0, 0, 32, 0 },
	{ "response_format", J_STRING | J_NULL, 0, 0, 32, 0 },
	{ "user", J_STRING | J_NULL, 0, 0, 512, 0 },
};

/* The request the JSON call carries, and what came back. */
struct images {
	struct json_object	*req;
	size_t			 n;	/* images returned */
};

/* The client's request with the upstream model id; OpenAI protocol only. */
static int
build(void *ctx, const struct candidate *c, const struct provider_ops *p,
    struct provider_call *call, struct provider_error *e)
{
	struct images		*im = ctx;

	if (c->provider->type != PROVIDER_OPENAI) {
		provider_error_set(e, "invalid_request_error",
		    "unsupported_request", "image generation is not supported "
		    "by provider type %s",
		    provider_type_names[c->provider->type]);
		snprintf(e->param, sizeof(e->param), "model");
		return -1;
	}
	return provider_openai_forward(c, im->req, "/images/generations", call);
}

/* The body goes back as it came; data[] says how many images to bill. */
static int
reply(void *ctx, const struct candidate *c, const char *body, size_t len,
    struct json_object **out, struct provider_error *e)
{
	struct images		*im = ctx;
	struct json_object	*o, *data;

	*out = NULL;
	if ((o = provider_parse(body, len)) == NULL ||
	    !json_object_object_get_ex(o, "data", &data) ||
	    !json_object_is_type(data, json_type_array)) {
		json_object_put(o);
		provider_error_set(e, "upstream_error", "bad_upstream_response",
		    "provider '%s' returned a malformed image response",
		    c->provider->name);
		return -1;
	}
	im->n = json_object_array_length(data);
	json_object_put(o);
	return 0;
}

static const struct jcall_ops images_ops = {
	.build = build,
	.reply = reply,
};

int
route_images(struct request *r, const char *arg)
{
	struct jcall		 jc;
	struct images		 im;
	struct json_object	*v;
	struct verr		 e;
	const char		*model;
	money_t			 cost = 0;
	int			 rc;

	memset(&e, 0, sizeof(e));
	memset(&im, 0, sizeof(im));
	im.req = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (im.req == NULL)
		return http_error(r, 400, "invalid_request_error",
		    "invalid_json", NULL, "%s", e.message);
	if (!json_object_is_type(im.req, json_type_object)) {
		rc = http_error(r, 400, "invalid_request_error",
		    "invalid_value", NULL, "request body must be a JSON "
		    "object, not %s", json_type_label(im.req));
		goto out;
	}
	if (validate_fields(im.req, rules, NRULES(rules), "", &e) == -1) {
		rc = http_error(r, 400, "invalid_request_error",
		    "invalid_value", e.param[0] ? e.param : NULL, "%s",
		    e.message);
		goto out;
	}
	json_object_object_get_ex(im.req, "model", &v);
	model = json_object_get_string(v);
	memset(&jc, 0, sizeof(jc));
	jc.r = r;
	jc.ops = &images_ops;
	jc.ctx = &im;
	jc.req = im.req;
	jc.proute = POLICY_IMAGES;
	jc.body_max = (size_t)r->cfg->gw.max_body * 2 + 65536;
	jc.prompt_est = (int64_t)r->body.len;	/* a bound: a token is a byte */
	/* The images asked for (n, default 1) are reserved. */
	jc.images = json_object_object_get_ex(im.req, "n", &v) &&
	    json_object_is_type(v, json_type_int) ?
	    json_object_get_int64(v) : 1;
	rc = jcall_run(&jc, model);
	/* A model nothing prices costs 0 (unpriced = free, master key). */
	if (r->served[0] != '\0' && jc.call.cand->model != NULL)
		cost = (money_t)im.n * jc.call.cand->model->image_price;
	else if (r->served[0] != '\0')
		jc.flags |= USAGE_UNPRICED;
	jcall_record(&jc, model, NULL, cost);
out:
	json_object_put(im.req);
	return rc;
}
