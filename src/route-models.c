/* route-models.c: GET /v1/models, GET /v1/models/{id} and GET /v1/providers. */
#include <string.h>

#include "account.h"
#include "billing.h"
#include "config.h"
#include "keys.h"
#include "plan.h"
#include "route.h"

static struct json_object *
model_object(const struct config *cfg, const char *id, const char *owner)
{
	struct json_object	*o = json_object_new_object();

	json_object_object_add(o, "id", json_object_new_string(id));
	json_object_object_add(o, "object", json_object_new_string("model"));
	json_object_object_add(o, "created",
	    json_object_new_int64((int64_t)cfg->mtime));
	json_object_object_add(o, "owned_by", json_object_new_string(owner));
	return o;
}

/* Whether the caller's key may use the model (list and price rules). */
static int
allowed(const struct request *r, const struct candidate *c)
{
	return c->provider->available &&
	    account_policy(r, c) == PLAN_SKIP_NONE;
}

/*
 * Every deployment of a [model] that has them: provider, upstream name,
 * weight, whether its provider can serve, its prices. Requests are spread
 * among the available ones by weight (their breakers: /health).
 */
static struct json_object *
deployments_array(const struct model_cfg *m)
{
	const struct deployment_cfg	*d;
	struct json_object		*a = json_object_new_array(), *o;
	char				 usd[32];
	size_t				 i;

	for (i = 0; i < m->ndeploys; i++) {
		d = &m->deploys[i];
		o = json_object_new_object();
		json_object_object_add(o, "provider",
		    json_object_new_string(d->provider->name));
		json_object_object_add(o, "upstream",
		    json_object_new_string(d->upstream));
		json_object_object_add(o, "weight",
		    json_object_new_int64(d->weight));
		json_object_object_add(o, "available",
		    json_object_new_boolean(d->provider->available));
		money_format_usd(d->input_price, usd, sizeof(usd));
		json_object_object_add(o, "input_price_usd",
		    json_object_new_string(usd));
		money_format_usd(d->output_price, usd, sizeof(usd));
		json_object_object_add(o, "output_price_usd",
		    json_object_new_string(usd));
		json_object_array_add(a, o);
	}
	return a;
}

/*
 * What llmgate knows of a model beyond OpenAI's fields: the [model] (own
 * section or template) that prices it, the model it is like, its prices,
 * and its deployments when it has several.
 */
static struct json_object *
gateway_object(const struct candidate *c)
{
	struct json_object	*o = json_object_new_object();
	char			 usd[32];

	json_object_object_add(o, "provider",
	    json_object_new_string(c->provider->name));
	json_object_object_add(o, "priced_by", c->model != NULL ?
	    json_object_new_string(c->model->name) : NULL);
	json_object_object_add(o, "identity",
	    json_object_new_string(c->identity));
	money_format_usd(c->input_price, usd, sizeof(usd));
	json_object_object_add(o, "input_price_usd", json_object_new_string(usd));
	money_format_usd(c->output_price, usd, sizeof(usd));
	json_object_object_add(o, "output_price_usd",
	    json_object_new_string(usd));
	money_format_usd(c->cached_input_price, usd, sizeof(usd));
	json_object_object_add(o, "cached_input_price_usd",
	    json_object_new_string(usd));
	money_format_usd(c->cache_write_price, usd, sizeof(usd));
	json_object_object_add(o, "cache_write_price_usd",
	    json_object_new_string(usd));
	json_object_object_add(o, "max_tokens",
	    json_object_new_int64(c->max_tokens));
	if (c->model != NULL && c->model->ndeploys > 0)
		json_object_object_add(o, "deployments",
		    deployments_array(c->model));
	return o;
}

/*
 * Every [model] whose provider is available and that the caller's key may
 * use, in config order.
 */
int
route_models(struct request *r, const char *arg)
{
	const struct config	*cfg = r->cfg;
	struct json_object	*list, *data, *o;
	struct candidate	 c;
	size_t			 i;
	int			 rc;

	data = json_object_new_array();
	for (i = 0; i < cfg->nmodels; i++) {
		/* Templates are not names a client can send as they are. */
		if (cfg->models[i].is_template ||
		    plan_lookup(cfg, cfg->models[i].name, &c) == -1 ||
		    !allowed(r, &c))
			continue;
		o = model_object(cfg, c.name, c.provider->name);
		json_object_object_add(o, "llmgate", gateway_object(&c));
		json_object_array_add(data, o);
	}
	list = json_object_new_object();
	json_object_object_add(list, "object", json_object_new_string("list"));
	json_object_object_add(list, "data", data);
	rc = http_send_json(r, 200, list) == -1 ? 0 : 200;
	json_object_put(list);
	return rc;
}

/*
 * One model by id: any name the gateway prices (its own [model] or a
 * template: a dated snapshot too) that the caller may use; ids may
 * contain '/' (openrouter/vendor/model).
 */
int
route_model(struct request *r, const char *arg)
{
	struct candidate	 c;
	struct json_object	*o;
	char			 id[MODEL_NAME_MAX];

	if (http_decode(arg, strlen(arg), id, sizeof(id), 0) == -1)
		return http_error(r, 404, "invalid_request_error",
		    "model_not_found", "model", "The model does not exist");

	if (plan_lookup(r->cfg, id, &c) == -1 || c.model == NULL ||
	    !allowed(r, &c))
		return http_error(r, 404, "invalid_request_error",
		    "model_not_found", "model", "The model '%s' does not exist "
		    "or is not available on this gateway", id);
	o = model_object(r->cfg, c.name, c.provider->name);
	json_object_object_add(o, "llmgate", gateway_object(&c));
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/* Base URL without any user:password@ part. */
static struct json_object *
public_url(const char *url)
{
	const char	*scheme, *at, *slash;
	char		 out[1024];
	size_t		 n;

	scheme = strstr(url, "://");
	if (scheme == NULL)
		return json_object_new_string(url);
	scheme += 3;
	at = strchr(scheme, '@');
	slash = strchr(scheme, '/');
	if (at == NULL || (slash != NULL && at > slash))
		return json_object_new_string(url);
	n = (size_t)(scheme - url);
	snprintf(out, sizeof(out), "%.*s%s", (int)n, url, at + 1);
	return json_object_new_string(out);
}

/* Providers with type, availability and model count; never a key. */
int
route_providers(struct request *r, const char *arg)
{
	const struct config		*cfg = r->cfg;
	const struct provider_cfg	*p;
	struct json_object		*list, *data, *o;
	size_t				 i, j, n;

	data = json_object_new_array();
	for (i = 0; i < cfg->nproviders; i++) {
		p = &cfg->providers[i];
		for (n = 0, j = 0; j < cfg->nmodels; j++)
			if (cfg->models[j].provider == p &&
			    !cfg->models[j].is_template)
				n++;
		o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(p->name));
		json_object_object_add(o, "type",
		    json_object_new_string(provider_type_names[p->type]));
		json_object_object_add(o, "base_url", public_url(p->base_url));
		json_object_object_add(o, "available",
		    json_object_new_boolean(p->available));
		json_object_object_add(o, "reason", p->available ? NULL :
		    json_object_new_string(p->unavailable));
		json_object_object_add(o, "residency",
		    json_object_new_string(p->residency));
		json_object_object_add(o, "models",
		    json_object_new_int64((int64_t)n));
		json_object_object_add(o, "default", json_object_new_boolean(
		    cfg->gw.default_prov == p));
		json_object_array_add(data, o);
	}
	list = json_object_new_object();
	json_object_object_add(list, "object", json_object_new_string("list"));
	json_object_object_add(list, "data", data);
	http_send_json(r, 200, list);
	json_object_put(list);
	return 200;
}
