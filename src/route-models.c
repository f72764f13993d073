/* route-models.c: GET /v1/models, GET /v1/models/{id} and GET /v1/providers. */
#include <string.h>

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

/* Whether the caller's key may use the model (a key's models list). */
static int
allowed(const struct request *r, const char *model)
{
	return r->who == NULL || r->who->master ||
	    keys_model_allowed(&r->who->key, model);
}

/*
 * Every [model] whose provider is available and that the caller's key may
 * use, in config order.
 */
int
route_models(struct request *r, const char *arg)
{
	const struct config	*cfg = r->cfg;
	struct json_object	*list, *data;
	size_t			 i;
	int			 rc;

	data = json_object_new_array();
	for (i = 0; i < cfg->nmodels; i++)
		if (cfg->models[i].provider->available &&
		    allowed(r, cfg->models[i].name))
			json_object_array_add(data, model_object(cfg,
			    cfg->models[i].name, cfg->models[i].provider->name));
	list = json_object_new_object();
	json_object_object_add(list, "object", json_object_new_string("list"));
	json_object_object_add(list, "data", data);
	rc = http_send_json(r, 200, list) == -1 ? 0 : 200;
	json_object_put(list);
	return rc;
}

/* One model by id; ids may contain '/' (openrouter/vendor/model). */
int
route_model(struct request *r, const char *arg)
{
	const struct model_cfg	*m;
	struct json_object	*o;
	char			 id[MODEL_NAME_MAX];

	if (http_decode(arg, strlen(arg), id, sizeof(id), 0) == -1)
		return http_error(r, 404, "invalid_request_error",
		    "model_not_found", "model", "The model does not exist");

	if ((m = config_model(r->cfg, id)) == NULL ||
	    !m->provider->available || !allowed(r, m->name))
		return http_error(r, 404, "invalid_request_error",
		    "model_not_found", "model", "The model '%s' does not exist "
		    "or is not available on this gateway", id);
	o = model_object(r->cfg, m->name, m->provider->name);
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
			if (cfg->models[j].provider == p)
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
