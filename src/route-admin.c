/* route-admin.c: the master key's routes: list, create, show, set, rotate, delete, disable and enable keys; top up and adjust balances. */
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

#define KEY_FIELDS							\
	{ "agent", J_STRING | J_NULL, 0, 0, KEY_AGENT_MAX - 1, 0 },		\
	{ "tier", J_STRING | J_NULL, 0, 0, KEY_TIER_MAX - 1, 0 },		\
	{ "policy", J_STRING | J_NULL, 0, 0, KEY_POLICY_MAX - 1, 0 },	\
	{ "models", J_ARRAY | J_NULL, 0, 0, 64, 0 },			\
	{ "rpm", J_INT | J_NULL, 0, 0, 1000000000, 0 },			\
	{ "tpm", J_INT | J_NULL, 0, 0, 1000000000000.0, 0 },		\
	{ "max_concurrent", J_INT | J_NULL, 0, 0, KEY_CONCURRENT_MAX, 0 },	\
	{ "daily_budget_usd", J_STRING | J_NUMBER | J_NULL, 0, NOBOUND },	\
	{ "monthly_budget_usd", J_STRING | J_NUMBER | J_NULL, 0, NOBOUND },	\
	{ "daily_budget_micro_usd", J_INT | J_NULL, 0, 0, 1e15, 0 },	\
	{ "monthly_budget_micro_usd", J_INT | J_NULL, 0, 0, 1e15, 0 },	\
	{ "expires", J_INT | J_NULL, 0, 0, EXPIRES_MAX, 0 },		\
	{ "prepaid", J_BOOL | J_NULL, 0, NOBOUND },			\
	{ "allow_agent_header", J_BOOL | J_NULL, 0, NOBOUND }

/* POST /admin/keys: every field of a key, the name required. */
static const struct field_rule create_rules[] = {
	{ "name", J_STRING, 1, 1, KEY_NAME_MAX - 1, 0 },
	KEY_FIELDS,
};

/* POST /admin/keys/KEY: any of them, names as GET /admin/keys shows. */
static const struct field_rule set_rules[] = {
	{ "name", J_STRING, 0, 1, KEY_NAME_MAX - 1, 0 },
	KEY_FIELDS,
	{ "disabled", J_BOOL | J_NULL, 0, NOBOUND },
};

/* POST /admin/keys/KEY/rotate. */
static const struct field_rule rotate_rules[] = {
	{ "grace_s", J_INT | J_NULL, 0, 0, KEY_GRACE_MAX, 0 },
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
	return account_need_store(r, "key");
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

/* Nonzero when the body has the field, null or not. */
static int
has(struct json_object *o, const char *name)
{
	return json_object_object_get_ex(o, name, NULL);
}

/*
 * A budget given as name_usd (an amount of USD) or name_micro_usd (an
 * integer, as GET /admin/keys shows it) into *out; null clears it, and
 * absent leaves it. 0 or the status sent.
 */
static int
take_budget(struct request *r, struct json_object *o, const char *name,
    money_t *out)
{
	struct json_object	*v;
	char			 usd[48], micro[48];

	snprintf(usd, sizeof(usd), "%s_usd", name);
	snprintf(micro, sizeof(micro), "%s_micro_usd", name);
	if (has(o, usd) && has(o, micro))
		return http_bad_param(r, micro, "give '%s' or '%s', not both",
		    usd, micro);
	if (has(o, micro)) {
		v = field(o, micro);
		*out = v != NULL ? json_object_get_int64(v) : 0;
		return 0;
	}
	if (!has(o, usd))
		return 0;
	*out = 0;
	if ((v = field(o, usd)) == NULL)
		return 0;
	if (parse_amount(v, 0, out) == -1)
		return http_bad_param(r, usd, "'%s' must be an amount of USD "
		    "such as \"25.00\" (at most six decimals, not negative)",
		    usd);
	return 0;
}

/* A string field into a fixed one: null or "" clears it. */
static int
take_word(struct request *r, struct json_object *o, const char *name,
    char *dst, size_t len)
{
	struct json_object	*v;
	const char		*s;

	if (!has(o, name))
		return 0;
	if ((v = field(o, name)) == NULL) {
		dst[0] = '\0';
		return 0;
	}
	if ((s = whole_string(v)) == NULL)
		return http_bad_param(r, name, "'%s' must not hold control "
		    "characters", name);
	snprintf(dst, len, "%s", s);
	return 0;
}

/* An integer field: null clears it (0), absent leaves it. */
static void
take_int(struct json_object *o, const char *name, int64_t *dst)
{
	struct json_object	*v;

	if (has(o, name))
		*dst = (v = field(o, name)) != NULL ? json_object_get_int64(v) :
		    0;
}

/* A boolean field: null is false, absent leaves it. */
static void
take_bool(struct json_object *o, const char *name, uint8_t *dst)
{
	struct json_object	*v;

	if (has(o, name))
		*dst = (v = field(o, name)) != NULL &&
		    json_object_get_boolean(v);
}

/*
 * Apply the fields of a validated create or set body to k: an absent
 * field leaves k's, null clears it. 0 or the status sent.
 */
static int
take_key(struct request *r, struct json_object *o, struct key_rec *k)
{
	struct keys_fault	 f;
	int64_t			 n;
	int			 rc;

	if ((rc = take_word(r, o, "name", k->name, sizeof(k->name))) != 0 ||
	    (rc = take_word(r, o, "agent", k->agent, sizeof(k->agent))) != 0 ||
	    (rc = take_word(r, o, "tier", k->tier, sizeof(k->tier))) != 0)
		return rc;
	if (k->tier[0] != '\0' && has(o, "tier") &&
	    config_tier(r->cfg, k->tier) == NULL)
		return http_bad_param(r, "tier", r->cfg->ntiers == 0 ?
		    "'tier': no tiers are configured" :
		    "'tier': no tier '%s' in the configuration", k->tier);
	if ((rc = take_word(r, o, "policy", k->policy,
	    sizeof(k->policy))) != 0)
		return rc;
	if (k->policy[0] != '\0' && has(o, "policy") &&
	    config_policy(r->cfg, k->policy) == NULL)
		return http_bad_param(r, "policy", "'policy': no policy '%s' "
		    "in the configuration", k->policy);
	if (has(o, "models") && (rc = take_models(r, field(o, "models"),
	    k->models, sizeof(k->models))) != 0)
		return rc;
	/* The same rules as llmgate-admin key create and key set. */
	if (keys_check(k, &f) == -1)
		return http_bad_param(r, f.field, "'%s' %s", f.field, f.why);
	take_int(o, "rpm", &k->rpm);
	take_int(o, "tpm", &k->tpm);
	n = k->max_concurrent;
	take_int(o, "max_concurrent", &n);
	k->max_concurrent = (int32_t)n;
	if ((rc = take_budget(r, o, "daily_budget", &k->daily_budget)) != 0 ||
	    (rc = take_budget(r, o, "monthly_budget", &k->monthly_budget)) != 0)
		return rc;
	/* A past expiry is allowed: the key is made already expired. */
	take_int(o, "expires", &k->expires);
	take_bool(o, "prepaid", &k->prepaid);
	take_bool(o, "allow_agent_header", &k->agent_header);
	take_bool(o, "disabled", &k->disabled);
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
	memset(&k, 0, sizeof(k));
	k.version = STORE_VERSION;
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

/* The key a path names ("12", "alice", "sk-AbC1234"); 0 or the status sent. */
static int
path_key(struct request *r, struct store *st, const char *ref, size_t n,
    struct key_rec *k)
{
	char	 dec[REF_MAX];
	int	 rc;

	if (http_decode(ref, n, dec, sizeof(dec), 0) == -1 || dec[0] == '\0' ||
	    strchr(dec, '/') != NULL)
		return http_error(r, 404, "invalid_request_error", "not_found",
		    NULL, "no route %s %s", r->method_name, r->path);
	if ((rc = keys_find(st, dec, k)) == STORE_NOTFOUND)
		return key_not_found(r, dec);
	if (rc != STORE_OK)
		return store_failed(r, "keys_find", rc);
	return 0;
}

/* Write k back; 0 or the status sent. */
static int
save_key(struct request *r, struct store *st, const struct key_rec *k)
{
	int	 rc;

	if ((rc = keys_update(st, k)) == STORE_NOTFOUND)
		return http_error(r, 404, "invalid_request_error",
		    "key_not_found", "key", "No key %" PRIu64, k->id);
	if (rc == STORE_EXISTS)
		return http_error(r, 409, "invalid_request_error", "key_exists",
		    "name", "A key named '%s' exists already", k->name);
	if (rc == STORE_ERROR)
		return http_error(r, 409, "invalid_request_error",
		    "key_changed", NULL, "The key was rotated or deleted "
		    "meanwhile; read it again and retry");
	if (rc != STORE_OK)
		return store_failed(r, "keys_update", rc);
	return 0;
}

/* POST /admin/keys/KEY: set any of its fields. */
static int
key_set(struct request *r, struct store *st, struct key_rec *k)
{
	struct json_object	*body;
	char			 name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	int			 rc;

	if ((body = parse_body(r, set_rules, NRULES(set_rules))) == NULL)
		return r->status;
	rc = take_key(r, body, k);
	json_object_put(body);
	if (rc != 0 || (rc = save_key(r, st, k)) != 0)
		return rc;
	log_info("%s: admin set key id=%" PRIu64 " name=%s", r->id, k->id,
	    log_value(name, sizeof(name), k->name));
	return send_key(r, 200, k);
}

/* POST /admin/keys/KEY/disable and /enable; any body is ignored. */
static int
key_state(struct request *r, struct store *st, struct key_rec *k,
    int disable)
{
	char	 name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	int	 rc;

	if (k->disabled != disable) {
		k->disabled = (uint8_t)disable;
		if ((rc = save_key(r, st, k)) != 0)
			return rc;
		/* A key made before names had rules may need quotes. */
		log_info("%s: admin %s key id=%" PRIu64 " name=%s", r->id,
		    disable ? "disabled" : "enabled", k->id,
		    log_value(name, sizeof(name), k->name));
	}
	return send_key(r, 200, k);
}

/* POST /admin/keys/KEY/rotate {"grace_s": N}: the one answer with the new secret. */
static int
key_rotate(struct request *r, struct store *st, struct key_rec *k)
{
	struct json_object	*body = NULL, *o, *v;
	struct key_rec		 out;
	char			 secret[KEY_SECRET_LEN + 1];
	char			 name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	int64_t			 grace = 0;
	int			 rc;

	if (r->body.len > 0) {
		if ((body = parse_body(r, rotate_rules,
		    NRULES(rotate_rules))) == NULL)
			return r->status;
		if ((v = field(body, "grace_s")) != NULL)
			grace = json_object_get_int64(v);
		json_object_put(body);
	}
	rc = keys_rotate(st, k->id, grace, &out, secret, sizeof(secret));
	if (rc == STORE_NOTFOUND)
		return http_error(r, 404, "invalid_request_error",
		    "key_not_found", "key", "No key %" PRIu64, k->id);
	if (rc != STORE_OK)
		return store_failed(r, "keys_rotate", rc);
	log_info("%s: admin rotated key id=%" PRIu64 " name=%s prefix=%s "
	    "grace_s=%" PRId64, r->id, out.id, log_value(name, sizeof(name),
	    out.name), out.prefix, grace);
	o = keys_to_json(&out, 0);
	json_object_object_add(o, "key", json_object_new_string(secret));
	explicit_bzero(secret, sizeof(secret));
	json_object_object_add(o, "grace_s", json_object_new_int64(grace));
	json_object_object_add(o, "old_secret_until",
	    json_object_new_int64((int64_t)r->wall.tv_sec + grace));
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
}

/*
 * POST /admin/keys/KEY (set), /admin/keys/KEY/disable, /enable and
 * /rotate.
 */
int
route_admin_key_update(struct request *r, const char *arg)
{
	struct store	*st;
	struct key_rec	 k;
	const char	*slash, *verb = "";
	size_t		 n;
	int		 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	n = strlen(arg);
	if ((slash = strchr(arg, '/')) != NULL) {
		n = (size_t)(slash - arg);
		verb = slash + 1;
		if (strcmp(verb, "disable") != 0 && strcmp(verb, "enable") != 0 &&
		    strcmp(verb, "rotate") != 0)
			return http_error(r, 404, "invalid_request_error",
			    "not_found", NULL, "no route %s %s (use "
			    "/admin/keys/KEY, /KEY/disable, /KEY/enable or "
			    "/KEY/rotate)", r->method_name, r->path);
	}
	if ((rc = path_key(r, st, arg, n, &k)) != 0)
		return rc;
	if (strcmp(verb, "disable") == 0)
		return key_state(r, st, &k, 1);
	if (strcmp(verb, "enable") == 0)
		return key_state(r, st, &k, 0);
	if (strcmp(verb, "rotate") == 0)
		return key_rotate(r, st, &k);
	return key_set(r, st, &k);
}

/*
 * DELETE /admin/keys/KEY: 409 while money is held, saying which; the
 * key's usage, ledger and balance stay.
 */
int
route_admin_key_delete(struct request *r, const char *arg)
{
	struct store		*st;
	struct key_rec		 k;
	struct keys_held	 h;
	struct json_object	*o;
	char			 b[32], name[LOG_VALUE_SIZE(KEY_NAME_MAX)];
	int			 rc;

	if ((st = admin_store(r)) == NULL)
		return r->status;
	if ((rc = path_key(r, st, arg, strlen(arg), &k)) != 0)
		return rc;
	rc = keys_delete(st, k.id, &h);
	if (rc == STORE_NOTFOUND)
		return key_not_found(r, k.name);
	if (rc == STORE_EXISTS && h.requests > 0) {
		money_format_usd(h.reserved, b, sizeof(b));
		return http_error(r, 409, "invalid_request_error",
		    "key_in_use", NULL, "Key %" PRIu64 " has %ld requests in "
		    "flight holding $%s: wait for them to end (disable the key "
		    "to stop new ones), then delete it", k.id, h.requests, b);
	}
	if (rc == STORE_EXISTS && h.balance > 0) {
		money_format_usd(h.balance, b, sizeof(b));
		return http_error(r, 409, "invalid_request_error",
		    "key_has_balance", NULL, "Key %" PRIu64 " has a balance of "
		    "$%s paid in: refund it first (POST /admin/adjust with "
		    "amount_usd \"-%s\"), then delete it", k.id, b, b);
	}
	if (rc == STORE_EXISTS) {
		money_format_usd(-h.balance, b, sizeof(b));
		return http_error(r, 409, "invalid_request_error",
		    "key_overdrawn", NULL, "Prepaid key %" PRIu64 " is "
		    "overdrawn by $%s: settle it first (POST /admin/topup or "
		    "/admin/adjust), then delete it", k.id, b);
	}
	if (rc != STORE_OK)
		return store_failed(r, "keys_delete", rc);
	log_info("%s: admin deleted key id=%" PRIu64 " name=%s", r->id, k.id,
	    log_value(name, sizeof(name), k.name));
	k.disabled = KEY_DELETED;
	memset(k.hash, 0, sizeof(k.hash));
	o = keys_to_json(&k, 0);
	http_send_json(r, 200, o);
	json_object_put(o);
	return 200;
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
