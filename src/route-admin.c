/* route-admin.c: the master key's routes: list, create, show, disable and enable keys; top up and adjust balances. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "billing.h"
#include "config.h"
#include "keys.h"
#include "log.h"
#include "route.h"
#include "store.h"
#include "validate.h"

#define NRULES(a)	(sizeof(a) / sizeof((a)[0]))
#define NOBOUND		1, 0, 0
#define REF_MAX		256		/* longest key reference */
/* Latest expiry accepted: 9999-12-31T23:59:59Z. */
#define EXPIRES_MAX	253402300799.0

static const struct field_rule create_rules[] = {
	{ "name", J_STRING, 1, 1, KEY_NAME_MAX - 1, 0 },
	{ "agent", J_STRING | J_NULL, 0, 0, KEY_AGENT_MAX - 1, 0 },
	{ "tier", J_STRING | J_NULL, 0, 0, KEY_TIER_MAX - 1, 0 },
	{ "models", J_ARRAY | J_NULL, 0, 0, 64, 0 },
	{ "rpm", J_INT | J_NULL, 0, 0, 1000000000, 0 },
	{ "tpm", J_INT | J_NULL, 0, 0, 1000000000000.0, 0 },
	{ "max_concurrent", J_INT | J_NULL, 0, 0, KEY_CONCURRENT_MAX, 0 },
	{ "daily_budget_usd", J_STRING | J_NUMBER | J_NULL, 0, NOBOUND },
	{ "monthly_budget_usd", J_STRING | J_NUMBER | J_NULL, 0, NOBOUND },
	{ "expires", J_INT | J_NULL, 0, 0, EXPIRES_MAX, 0 },
	{ "prepaid", J_BOOL | J_NULL, 0, NOBOUND },
	{ "allow_agent_header", J_BOOL | J_NULL, 0, NOBOUND },
};

/* POST /admin/topup and /admin/adjust. */
static const struct field_rule money_rules[] = {
	{ "key", J_STRING | J_INT, 1, 1, REF_MAX - 1, J_STRING },
	{ "amount_usd", J_STRING | J_NUMBER, 1, NOBOUND },
	{ "reason", J_STRING | J_NULL, 0, 0, 127, 0 },
};

/* A store failure: logged with its cause, answered 503 without it. */
static int
store_failed(struct request *r, const char *what, int rc)
{
	return account_store_failed(r, "key", what, rc);
}

static int
key_not_found(struct request *r, const char *ref)
{
	return http_error(r, 404, "invalid_request_error", "key_not_found",
	    "key", "No key '%s'", ref);
}

/* The store, after checking the caller is the master key; NULL when answered. */
static struct store *
admin_store(struct request *r)
{
	if (r->who == NULL || !r->who->master) {
		http_error(r, 403, "permission_error", "admin_only", NULL,
		    "This route needs the master key");
		return NULL;
	}
	if (r->worker == NULL || r->worker->store == NULL) {
		account_store_failed(r, "key", NULL, 0);
		return NULL;
	}
	return r->worker->store;
}

/*
 * Parse the body as a JSON object whose fields all appear in rules and
 * pass them. The caller owns the result; NULL when a 400 was sent.
 */
static struct json_object *
parse_body(struct request *r, const struct field_rule *rules, size_t n)
{
	struct json_object	*o;
	struct verr		 e;
	size_t			 i;

	memset(&e, 0, sizeof(e));
	o = json_parse_strict(r->body.data, r->body.len,
	    (int)r->cfg->gw.max_json_depth, &e);
	if (o == NULL) {
		http_error(r, 400, "invalid_request_error", "invalid_json",
		    NULL, "%s", e.message);
		return NULL;
	}
	if (!json_object_is_type(o, json_type_object)) {
		http_error(r, 400, "invalid_request_error", "invalid_json",
		    NULL, "request body must be a JSON object, not %s",
		    json_type_label(o));
		goto fail;
	}
	json_object_object_foreach(o, name, v) {
		(void)v;
		for (i = 0; i < n; i++)
			if (strcmp(name, rules[i].name) == 0)
				break;
		if (i == n) {
			http_bad_param(r, name, "unknown field '%s'", name);
			goto fail;
		}
	}
	if (validate_fields(o, rules, n, "", &e) == -1) {
		http_bad_param(r, e.param[0] ? e.param : NULL, "%s", e.message);
		goto fail;
	}
	return o;
fail:
	json_object_put(o);
	return NULL;
}

/* The value of field, or NULL when absent or null. */
static struct json_object *
field(struct json_object *o, const char *name)
{
	struct json_object	*v;

	if (!json_object_object_get_ex(o, name, &v))
		return NULL;
	return v;
}

/*
 * An amount of dollars given as a decimal string ("10.50") or a JSON
 * number, at most six decimals; a sign only when signed_ok. -1 if bad.
 */
static int
parse_amount(struct json_object *v, int signed_ok, money_t *out)
{
	const char	*s;
	char		 num[32];
	int		 neg = 0;

	if (json_object_is_type(v, json_type_int)) {
		snprintf(num, sizeof(num), "%" PRId64, json_object_get_int64(v));
		s = num;
	} else
		s = json_object_get_string(v);	/* a double keeps its text */
	if (s == NULL)
		return -1;
	if (*s == '-' || *s == '+') {
		neg = *s == '-';
		if (neg && !signed_ok)
			return -1;
		s++;
	}
	if (money_parse_usd(s, out) == -1)
		return -1;
	if (neg)
		*out = -*out;
	return 0;
}

static int
send_key(struct request *r, int status, const struct key_rec *k)
{
	struct json_object	*o = keys_to_json(k, 0);

	http_send_json(r, status, o);
	json_object_put(o);
	return status;
}

/* The keys listed so far. */
struct key_list {
	struct json_object	*data;
	uint64_t		 last;
};

static int
list_one(void *arg, const struct key_rec *k)
{
	struct key_list	*l = arg;

	/* Ids come in order: a smaller one means a retried scan restarted. */
	if (k->id <= l->last)
		json_object_array_del_idx(l->data, 0,
		    json_object_array_length(l->data));
	l->last = k->id;
	json_object_array_add(l->data, keys_to_json(k, 0));
	return 0;
}

/* GET /admin/keys: every key in id order. */
int
route_admin_keys(struct request *r, const char *arg)
{
	struct store		*st;
	struct key_list		 l;
	struct json_object	*o;
	int			 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	l.data = json_object_new_array();
	l.last = 0;
	if ((rc = keys_list(st, list_one, &l)) != STORE_OK &&
	    rc != STORE_NOTFOUND && rc != STORE_STOP) {
		json_object_put(l.data);
		return store_failed(r, "keys_list", rc);
	}
	o = json_object_new_object();
	json_object_object_add(o, "object", json_object_new_string("list"));
	json_object_object_add(o, "data", l.data);
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/*
 * Copy the "models" array into the stored space-separated glob list;
 * keys_check() judges the globs.
 */
static int
take_models(struct request *r, struct json_object *a, char *dst, size_t len)
{
	struct json_object	*v;
	const char		*s;
	size_t			 i;
	char			 param[32];

	dst[0] = '\0';
	for (i = 0; a != NULL && i < json_object_array_length(a); i++) {
		v = json_object_array_get_idx(a, i);
		snprintf(param, sizeof(param), "models[%zu]", i);
		if (!json_object_is_type(v, json_type_string))
			return http_bad_param(r, param, "'%s' must be a "
			    "string, not %s", param, json_type_label(v));
		s = json_object_get_string(v);
		if (*s == '\0' || strchr(s, ' ') != NULL ||
		    strlen(s) != (size_t)json_object_get_string_len(v))
			return http_bad_param(r, param, "'%s' must be one "
			    "model glob", param);
		if (keys_models_add(dst, len, s) == -1)
			return http_bad_param(r, "models", "'models' is "
			    "longer than %zu characters in all", len - 1);
	}
	return 0;
}

/* A string field that must not be cut by a NUL. */
static const char *
whole_string(struct json_object *v)
{
	const char	*s = json_object_get_string(v);

	return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

/* A money field of the create body into *out (0 when absent). */
static int
take_budget(struct request *r, struct json_object *o, const char *name,
    money_t *out)
{
	struct json_object	*v;

	*out = 0;
	if ((v = field(o, name)) == NULL)
		return 0;
	if (parse_amount(v, 0, out) == -1)
		return http_bad_param(r, name, "'%s' must be an amount of USD "
		    "such as \"25.00\" (at most six decimals, not negative)",
		    name);
	return 0;
}

/* Fill k from a validated create body; 0 or the status sent. */
static int
take_key(struct request *r, struct json_object *o, struct key_rec *k)
{
	struct json_object	*v;
	const char		*s;
	int			 rc;

	struct keys_fault	 f;

	memset(k, 0, sizeof(*k));
	k->version = STORE_VERSION;
	if ((s = whole_string(field(o, "name"))) == NULL)
		return http_bad_param(r, "name", "'name' must not hold control "
		    "characters");
	snprintf(k->name, sizeof(k->name), "%s", s);
	if ((v = field(o, "agent")) != NULL) {
		if ((s = whole_string(v)) == NULL)
			return http_bad_param(r, "agent", "'agent' must not "
			    "hold control characters");
		snprintf(k->agent, sizeof(k->agent), "%s", s);
	}
	if ((v = field(o, "tier")) != NULL &&
	    *(s = json_object_get_string(v)) != '\0') {
		if (config_tier(r->cfg, s) == NULL)
			return http_bad_param(r, "tier", r->cfg->ntiers == 0 ?
			    "'tier': no tiers are configured" :
			    "'tier': no tier '%s' in the configuration", s);
		snprintf(k->tier, sizeof(k->tier), "%s", s);
	}
	if ((rc = take_models(r, field(o, "models"), k->models,
	    sizeof(k->models))) != 0)
		return rc;
	/* The same rules as llmgate-admin key create. */
	if (keys_check(k, &f) == -1)
		return http_bad_param(r, f.field, "'%s' %s", f.field, f.why);
	if ((v = field(o, "rpm")) != NULL)
		k->rpm = json_object_get_int64(v);
	if ((v = field(o, "tpm")) != NULL)
		k->tpm = json_object_get_int64(v);
	if ((v = field(o, "max_concurrent")) != NULL)
		k->max_concurrent = json_object_get_int(v);
	if ((rc = take_budget(r, o, "daily_budget_usd",
	    &k->daily_budget)) != 0 ||
	    (rc = take_budget(r, o, "monthly_budget_usd",
	    &k->monthly_budget)) != 0)
		return rc;
	/* A past expiry is allowed: the key is made already expired. */
	if ((v = field(o, "expires")) != NULL)
		k->expires = json_object_get_int64(v);
	if ((v = field(o, "prepaid")) != NULL)
		k->prepaid = (uint8_t)json_object_get_boolean(v);
	if ((v = field(o, "allow_agent_header")) != NULL)
		k->agent_header = (uint8_t)json_object_get_boolean(v);
	return 0;
}

/* POST /admin/keys: a new key; the one answer that shows its secret. */
int
route_admin_key_create(struct request *r, const char *arg)
{
	struct store		*st;
	struct json_object	*body, *o;
	struct key_rec		 k;
	char			 secret[KEY_SECRET_LEN + 1];
	int			 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	if ((body = parse_body(r, create_rules, NRULES(create_rules))) == NULL)
		return r->status;
	rc = take_key(r, body, &k);
	json_object_put(body);
	if (rc != 0)
		return rc;
	rc = keys_create(st, &k, secret, sizeof(secret));
	if (rc == STORE_EXISTS)
		return http_error(r, 409, "invalid_request_error", "key_exists",
		    "name", "A key named '%s' exists already", k.name);
	if (rc != STORE_OK)
		return store_failed(r, "keys_create", rc);
	log_info("%s: admin created key id=%" PRIu64 " name=%s prefix=%s",
	    r->id, k.id, k.name, k.prefix);
	o = keys_to_json(&k, 0);
	json_object_object_add(o, "key", json_object_new_string(secret));
	explicit_bzero(secret, sizeof(secret));
	http_send_json(r, 201, o);
	json_object_put(o);
	return 201;
}

/* GET /admin/keys/{id|name|prefix}. */
int
route_admin_key(struct request *r, const char *arg)
{
	struct store	*st;
	struct key_rec	 k;
	char		 ref[REF_MAX];
	int		 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	if (http_decode(arg, strlen(arg), ref, sizeof(ref), 0) == -1 ||
	    ref[0] == '\0')
		return key_not_found(r, arg);
	if ((rc = keys_find(st, ref, &k)) == STORE_NOTFOUND)
		return key_not_found(r, ref);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);
	return send_key(r, 200, &k);
}

/* POST /admin/keys/{ref}/disable and /enable; any body is ignored. */
int
route_admin_key_update(struct request *r, const char *arg)
{
	struct store	*st;
	struct key_rec	 k;
	const char	*slash;
	char		 ref[REF_MAX], name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	int		 disable, rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	if ((slash = strrchr(arg, '/')) == NULL || slash == arg)
		goto nothing;
	if (strcmp(slash + 1, "disable") == 0)
		disable = 1;
	else if (strcmp(slash + 1, "enable") == 0)
		disable = 0;
	else
		goto nothing;
	if (http_decode(arg, (size_t)(slash - arg), ref, sizeof(ref), 0) == -1)
		return key_not_found(r, arg);
	if ((rc = keys_find(st, ref, &k)) == STORE_NOTFOUND)
		return key_not_found(r, ref);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);
	if (k.disabled != disable) {
		k.disabled = (uint8_t)disable;
		if ((rc = keys_update(st, &k)) == STORE_NOTFOUND)
			return key_not_found(r, ref);
		if (rc != STORE_OK)
			return store_failed(r, "keys_update", rc);
		/* A key made before names had rules may need quotes. */
		log_info("%s: admin %s key id=%" PRIu64 " name=%s", r->id,
		    disable ? "disabled" : "enabled", k.id,
		    log_value(name, sizeof(name), k.name));
	}
	return send_key(r, 200, &k);
nothing:
	return http_error(r, 404, "invalid_request_error", "not_found", NULL,
	    "no route %s %s (use /admin/keys/KEY/disable or /enable)",
	    r->method_name, r->path);
}

/*
 * The ledger entry a credit wrote, with its key after the entry's id and
 * the balance it left at the end.
 */
static struct json_object *
entry_object(const struct key_rec *k, const struct ledger_rec *l)
{
	struct json_object	*e = ledger_to_json(l), *o;
	char			 s[32];

	o = json_object_new_object();
	json_object_object_foreach(e, name, v) {
		json_object_object_add(o, name, json_object_get(v));
		if (strcmp(name, "id") != 0)
			continue;
		json_object_object_add(o, "key_id",
		    json_object_new_uint64(k->id));
		json_object_object_add(o, "key_name",
		    json_object_new_string(k->name));
	}
	json_object_put(e);
	json_object_object_add(o, "balance_micro_usd",
	    json_object_new_int64(l->balance_after));
	money_format_usd(l->balance_after, s, sizeof(s));
	json_object_object_add(o, "balance_usd", json_object_new_string(s));
	return o;
}

/* POST /admin/topup and /admin/adjust: one ledger credit of a key. */
static int
credit(struct request *r, enum ledger_kind kind)
{
	struct store		*st;
	struct json_object	*body, *v, *o;
	struct key_rec		 k;
	struct ledger_rec	 l;
	money_t			 amount;
	char			 ref[REF_MAX], reason[KEY_REASON_MAX + 1];
	const char		*why = NULL;
	int			 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	if ((body = parse_body(r, money_rules, NRULES(money_rules))) == NULL)
		return r->status;
	v = field(body, "key");
	if (json_object_is_type(v, json_type_int))
		snprintf(ref, sizeof(ref), "%" PRId64, json_object_get_int64(v));
	else
		snprintf(ref, sizeof(ref), "%s", json_object_get_string(v));
	reason[0] = '\0';
	if ((v = field(body, "reason")) != NULL) {
		snprintf(reason, sizeof(reason), "%s", json_object_get_string(v));
		if (whole_string(v) == NULL)
			why = "must not hold control characters";
	}
	rc = parse_amount(field(body, "amount_usd"), kind == LEDGER_ADJUST,
	    &amount);
	json_object_put(body);

	if (rc == -1)
		return http_bad_param(r, "amount_usd", kind == LEDGER_ADJUST ?
		    "'amount_usd' must be a signed amount of USD such as "
		    "\"-2.50\" (at most six decimals)" :
		    "'amount_usd' must be an amount of USD such as \"10.00\" "
		    "(at most six decimals)");
	if (amount == 0 || (kind == LEDGER_TOPUP && amount < 0))
		return http_bad_param(r, "amount_usd", kind == LEDGER_ADJUST ?
		    "'amount_usd' must not be zero" :
		    "'amount_usd' must be greater than zero");
	/* The same rule as llmgate-admin topup and adjust. */
	if (why != NULL || (why = keys_check_reason(reason)) != NULL)
		return http_bad_param(r, "reason", "'reason' %s", why);
	if (kind == LEDGER_ADJUST && reason[0] == '\0')
		return http_bad_param(r, "reason", "an adjustment needs a "
		    "'reason'");
	if ((rc = keys_find(st, ref, &k)) == STORE_NOTFOUND)
		return key_not_found(r, ref);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);

	memset(&l, 0, sizeof(l));
	if ((rc = billing_credit(st, k.id, amount, kind, reason, &l)) ==
	    STORE_NOTFOUND)
		return key_not_found(r, ref);
	if (rc != STORE_OK)
		return store_failed(r, "billing_credit", rc);
	log_info("%s: admin %s key id=%" PRIu64 " amount_micro_usd=%" PRId64
	    " balance_micro_usd=%" PRId64, r->id, ledger_kind_names[kind],
	    k.id, amount, l.balance_after);
	o = entry_object(&k, &l);
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

int
route_admin_topup(struct request *r, const char *arg)
{
	return credit(r, LEDGER_TOPUP);
}

int
route_admin_adjust(struct request *r, const char *arg)
{
	return credit(r, LEDGER_ADJUST);
}
