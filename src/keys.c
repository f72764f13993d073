/* keys.c: client API keys: random secrets stored only as SHA-256 hashes, with owner, tier and limits. */
#include <sys/random.h>

#include <ctype.h>
#include <stddef.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/evp.h>

#include "billing.h"
#include "keys.h"
#include "log.h"
#include "store.h"

static const char alnum[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

void
keys_hash(const char *secret, unsigned char out[KEY_HASH_LEN])
{
	unsigned int	 n = KEY_HASH_LEN;

	EVP_Digest(secret, strlen(secret), out, &n, EVP_sha256(), NULL);
}

/* "sk-" and 48 characters drawn without bias from the kernel's CSPRNG. */
static int
new_secret(char *out)
{
	unsigned char	 rnd[64];
	size_t		 n = 0, i;

	memcpy(out, "sk-", 3);
	while (n < KEY_SECRET_LEN - 3) {
		if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
			return -1;
		for (i = 0; i < sizeof(rnd) && n < KEY_SECRET_LEN - 3; i++)
			if (rnd[i] < 248)	/* 248 = 4 * 62 */
				out[3 + n++] = alnum[rnd[i] % 62];
	}
	out[KEY_SECRET_LEN] = '\0';
	explicit_bzero(rnd, sizeof(rnd));
	return 0;
}

struct by_name {
	const char	*name;
	const char	*prefix;
	struct key_rec	*out;
	int		 found;
};

static void	rec_fix(struct key_rec *);

static int
match_name(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct by_name	*b = arg;
	struct key_rec	 rec;

	(void)k;
	(void)klen;
	if (store_rec(v, vlen, &rec, sizeof(rec)) == -1)
		return STORE_ERROR;
	rec_fix(&rec);
	if (rec.disabled == KEY_DELETED)
		return 0;	/* its name is free again */
	if ((b->name != NULL && strcmp(rec.name, b->name) == 0) ||
	    (b->prefix != NULL && strcmp(rec.prefix, b->prefix) == 0)) {
		if (b->out != NULL)
			*b->out = rec;
		b->found = 1;
		return STORE_STOP;
	}
	return 0;
}

/*
 * The rules for what a key's fields may hold, for llmgate-admin and the
 * admin routes alike. Names and agents are printed in log lines
 * ("key=NAME agent=AGENT") and typed on command lines: one word of
 * letters, digits and . _ - @ + :, starting with a letter or digit, so
 * that no value can forge a "field=" or a line, nor read as an option.
 */
#define WORD_CHARS	"._-@+:"
#define GLOB_CHARS	"._-:/@+*?[]!"

static int
word_ok(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return 0;
	for (; *s != '\0'; s++)
		if (!isascii((unsigned char)*s) ||
		    (!isalnum((unsigned char)*s) && strchr(WORD_CHARS, *s) == NULL))
			return 0;
	return 1;
}

static int
fault(struct keys_fault *f, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int
fault(struct keys_fault *f, const char *field, const char *fmt, ...)
{
	va_list	 ap;

	f->field = field;
	va_start(ap, fmt);
	vsnprintf(f->why, sizeof(f->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* One model glob: letters, digits and the characters of model ids and globs. */
static int
glob_ok(const char *s, size_t n)
{
	size_t	 i;

	for (i = 0; i < n; i++)
		if (!isascii((unsigned char)s[i]) ||
		    (!isalnum((unsigned char)s[i]) &&
		    strchr(GLOB_CHARS, s[i]) == NULL))
			return 0;
	return n > 0;
}

/* max_concurrent lives in what was padding: stored keys keep their layout. */
_Static_assert(offsetof(struct key_rec, max_concurrent) == 4 &&
    offsetof(struct key_rec, id) == 8, "a key record keeps its layout");

/*
 * A record as read: the policy bytes were the tail of the model list in
 * records stored before keys had a policy. Zero there (every writer
 * zeroed the field) reads as no policy; a list that ran into them (over
 * 479 characters) loses its last, cut glob, never gaining a model, and
 * whatever else is there is not a policy name.
 */
static void
rec_fix(struct key_rec *k)
{
	char	*sp;
	size_t	 n = strnlen(k->policy, sizeof(k->policy));

	if (memchr(k->models, '\0', sizeof(k->models)) == NULL) {
		k->models[sizeof(k->models) - 1] = '\0';
		if ((sp = strrchr(k->models, ' ')) != NULL)
			*sp = '\0';
		else
			snprintf(k->models, sizeof(k->models), "-");
		memset(k->policy, 0, sizeof(k->policy));
	} else if (n == sizeof(k->policy) || (n > 0 && !word_ok(k->policy)))
		memset(k->policy, 0, sizeof(k->policy));
}

int
keys_check(const struct key_rec *k, struct keys_fault *f)
{
	const char	*p, *q;
	size_t		 n;

	n = strnlen(k->name, sizeof(k->name));
	if (n == 0 || n == sizeof(k->name))
		return fault(f, "name", "must be 1 to %zu characters",
		    sizeof(k->name) - 1);
	if (!word_ok(k->name))
		return fault(f, "name", "must start with a letter or digit "
		    "and hold only letters, digits and %s (no spaces, '=', "
		    "'/', quotes or control characters)", WORD_CHARS);
	if (k->name[strspn(k->name, "0123456789")] == '\0' ||
	    strncmp(k->name, "sk-", 3) == 0)
		return fault(f, "name", "must not be all digits or start with "
		    "'sk-' (keys are also found by id and prefix)");
	n = strnlen(k->agent, sizeof(k->agent));
	if (n == sizeof(k->agent))
		return fault(f, "agent", "must be at most %zu characters",
		    sizeof(k->agent) - 1);
	if (n > 0 && !word_ok(k->agent))
		return fault(f, "agent", "must start with a letter or digit "
		    "and hold only letters, digits and %s (no spaces, '=', "
		    "'/', quotes or control characters)", WORD_CHARS);
	if (k->max_concurrent < 0 || k->max_concurrent > KEY_CONCURRENT_MAX)
		return fault(f, "max_concurrent", "must be 0 (no limit) to %d",
		    KEY_CONCURRENT_MAX);
	if (strnlen(k->tier, sizeof(k->tier)) == sizeof(k->tier) ||
	    (k->tier[0] != '\0' && !word_ok(k->tier)))
		return fault(f, "tier", "is not a tier name");
	n = strnlen(k->policy, sizeof(k->policy));
	if (n == sizeof(k->policy) || (n > 0 && !word_ok(k->policy)))
		return fault(f, "policy", "is not a policy name (at most %zu "
		    "letters, digits and %s)", sizeof(k->policy) - 1,
		    WORD_CHARS);
	if (strnlen(k->models, sizeof(k->models)) == sizeof(k->models))
		return fault(f, "models", "is longer than %zu characters in "
		    "all", sizeof(k->models) - 1);
	for (p = k->models; *p != '\0'; p = q) {
		if ((q = strchr(p, ' ')) == NULL)
			q = p + strlen(p);
		if (!glob_ok(p, (size_t)(q - p)) || (*q == ' ' && q[1] == '\0'))
			return fault(f, "models", "'%.*s' is not a model glob: "
			    "it may hold only letters, digits, %s", (int)(q - p),
			    p, GLOB_CHARS);
		if (*q == ' ')
			q++;
	}
	return 0;
}

int
keys_models_add(char *list, size_t len, const char *glob)
{
	size_t	 n = strlen(list), l = strlen(glob);

	if (l == 0)
		return 0;
	if (n + (n > 0) + l + 1 > len)
		return -1;
	if (n > 0)
		list[n++] = ' ';
	memcpy(list + n, glob, l + 1);
	return 0;
}

/*
 * A ledger reason is free text (spaces allowed) but one line: no control
 * characters, C1 ones (UTF-8 U+0080..U+009F) included, and no DEL.
 */
const char *
keys_check_reason(const char *s)
{
	const unsigned char	*p = (const unsigned char *)s;

	if (strlen(s) > KEY_REASON_MAX)
		return "must be at most 127 characters";
	for (; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f ||
		    (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f))
			return "must not hold control characters";
	return NULL;
}

struct create {
	struct key_rec	*rec;
};

static int
create_txn(struct store_txn *t, void *arg)
{
	struct create	*c = arg;
	struct by_name	 b = { c->rec->name, NULL, NULL, 0 };
	unsigned char	 id[8];
	int		 rc;

	if ((rc = store_scan(t, SDB_KEYS, NULL, 0, NULL, 0, 0, match_name,
	    &b)) != STORE_OK)
		return rc;
	if (b.found)
		return STORE_EXISTS;
	store_be64(id, c->rec->id);
	if ((rc = store_put_new(t, SDB_KEYHASH, c->rec->hash, KEY_HASH_LEN,
	    id, sizeof(id))) != STORE_OK)
		return rc == STORE_EXISTS ? STORE_ERROR : rc;
	if ((rc = store_put_new(t, SDB_KEYS, id, sizeof(id), c->rec,
	    sizeof(*c->rec))) != STORE_OK)
		return rc == STORE_EXISTS ? STORE_ERROR : rc;
	return STORE_OK;
}

int
keys_create(struct store *s, struct key_rec *rec, char *secret,
    size_t secretlen)
{
	struct create	 c = { rec };
	int		 rc;

	struct keys_fault f;

	if (keys_check(rec, &f) == -1) {
		log_error("keys_create: %s %s", f.field, f.why);
		return STORE_ERROR;
	}
	if (secretlen < KEY_SECRET_LEN + 1 || new_secret(secret) == -1)
		return STORE_ERROR;
	rec->version = STORE_VERSION;
	if ((rec->id = store_next_id(s)) == 0)
		return STORE_ERROR;
	keys_hash(secret, rec->hash);
	memcpy(rec->prefix, secret, KEY_PREFIX_LEN);
	rec->prefix[KEY_PREFIX_LEN] = '\0';
	rec->created = (int64_t)time(NULL);
	if ((rc = store_txn(s, create_txn, &c)) != STORE_OK)
		explicit_bzero(secret, secretlen);
	return rc;
}

struct lookup {
	const unsigned char	*hash;
	uint64_t		 id;
	struct key_rec		*out;
};

/*
 * A hash index entry: the key's id (8 bytes, big-endian), and for the
 * secret a rotation replaced, the unix second its grace ends (8 more).
 */
#define HASH_ENTRY	8
#define HASH_GRACE	16

static int
lookup_txn(struct store_txn *t, void *arg)
{
	struct lookup	*l = arg;
	unsigned char	 v[HASH_GRACE];
	size_t		 n = sizeof(v);
	int		 rc;

	if (l->hash != NULL) {
		if ((rc = store_get(t, SDB_KEYHASH, l->hash, KEY_HASH_LEN, v,
		    &n, 0)) != STORE_OK)
			return rc;
		if (n != HASH_ENTRY && n != HASH_GRACE)
			return STORE_ERROR;
		/* A replaced secret past its grace: gone. */
		if (n == HASH_GRACE &&
		    (int64_t)store_get_be64(v + 8) <= (int64_t)time(NULL))
			return STORE_NOTFOUND;
	} else
		store_be64(v, l->id);
	if ((rc = store_get_rec(t, SDB_KEYS, v, 8, l->out, sizeof(*l->out),
	    0)) != STORE_OK)
		return rc;
	rec_fix(l->out);
	/* A secret of a deleted key (none should be left) opens nothing. */
	if (l->hash != NULL && l->out->disabled == KEY_DELETED)
		return STORE_NOTFOUND;
	return STORE_OK;
}

int
keys_authenticate(struct store *s, const char *secret, struct key_rec *out)
{
	unsigned char	 hash[KEY_HASH_LEN];
	struct lookup	 l = { hash, 0, out };

	keys_hash(secret, hash);
	return store_read(s, lookup_txn, &l);
}

int
keys_get(struct store *s, uint64_t id, struct key_rec *out)
{
	struct lookup	 l = { NULL, id, out };

	return store_read(s, lookup_txn, &l);
}

static int
find_txn(struct store_txn *t, void *arg)
{
	struct by_name	*b = arg;
	int		 rc;

	b->found = 0;
	if ((rc = store_scan(t, SDB_KEYS, NULL, 0, NULL, 0, 0, match_name,
	    b)) != STORE_OK)
		return rc;
	return b->found ? STORE_OK : STORE_NOTFOUND;
}

int
keys_find(struct store *s, const char *ref, struct key_rec *out)
{
	struct by_name	 b = { NULL, NULL, out, 0 };
	const char	*p;
	char		*end;
	unsigned long long id;

	for (p = ref; isdigit((unsigned char)*p); p++)
		;
	if (*ref != '\0' && *p == '\0') {
		errno = 0;
		id = strtoull(ref, &end, 10);
		if (errno != 0)
			return STORE_NOTFOUND;
		return keys_get(s, (uint64_t)id, out);
	}
	if (strncmp(ref, "sk-", 3) == 0 && strlen(ref) == KEY_SECRET_LEN)
		return keys_authenticate(s, ref, out);
	if (strncmp(ref, "sk-", 3) == 0 && strlen(ref) == KEY_PREFIX_LEN)
		b.prefix = ref;
	else
		b.name = ref;
	return store_read(s, find_txn, &b);
}

static int
update_txn(struct store_txn *t, void *arg)
{
	const struct key_rec	*rec = arg;
	struct key_rec		 old;
	struct by_name		 b = { NULL, NULL, NULL, 0 };
	unsigned char		 id[8];
	int			 rc;

	store_be64(id, rec->id);
	if ((rc = store_get_rec(t, SDB_KEYS, id, sizeof(id), &old,
	    sizeof(old), STORE_RMW)) != STORE_OK)
		return rc;
	if (old.disabled == KEY_DELETED)
		return STORE_NOTFOUND;
	if (memcmp(old.hash, rec->hash, KEY_HASH_LEN) != 0)
		return STORE_ERROR;
	if (rec->disabled == KEY_DELETED)
		return STORE_ERROR;	/* keys_delete's job */
	/* A new name must be free, as at creation. */
	if (strncmp(old.name, rec->name, sizeof(old.name)) != 0) {
		b.name = rec->name;
		if ((rc = store_scan(t, SDB_KEYS, NULL, 0, NULL, 0, 0,
		    match_name, &b)) != STORE_OK)
			return rc;
		if (b.found)
			return STORE_EXISTS;
	}
	return store_put(t, SDB_KEYS, id, sizeof(id), rec, sizeof(*rec));
}

int
keys_update(struct store *s, const struct key_rec *rec)
{
	return store_txn(s, update_txn, (void *)rec);
}

/* Hash index entries of one key, other than the current secret's. */
struct old_hashes {
	uint64_t	 id;
	unsigned char	 keep[KEY_HASH_LEN];
};

static int
drop_old(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct old_hashes	*o = arg;

	if (vlen < 8 || store_get_be64(v) != o->id)
		return 0;
	if (klen == KEY_HASH_LEN && memcmp(k, o->keep, KEY_HASH_LEN) == 0)
		return 0;
	return STORE_SCAN_DELETE;
}

/* Delete every hash index entry of key id but keep's; keep may be NULL. */
static int
drop_hashes(struct store_txn *t, uint64_t id, const unsigned char *keep)
{
	struct old_hashes	 o;

	memset(&o, 0, sizeof(o));
	o.id = id;
	if (keep != NULL)
		memcpy(o.keep, keep, KEY_HASH_LEN);
	return store_scan(t, SDB_KEYHASH, NULL, 0, NULL, 0, 0, drop_old, &o);
}

struct rotate {
	uint64_t	 id;
	int64_t		 grace_s;
	unsigned char	 hash[KEY_HASH_LEN];
	char		 prefix[KEY_PREFIX_LEN + 1];
	struct key_rec	*out;
};

static int
rotate_txn(struct store_txn *t, void *arg)
{
	struct rotate	*r = arg;
	struct key_rec	 k;
	unsigned char	 id[8], v[HASH_GRACE];
	int		 rc;

	store_be64(id, r->id);
	if ((rc = store_get_rec(t, SDB_KEYS, id, sizeof(id), &k, sizeof(k),
	    STORE_RMW)) != STORE_OK)
		return rc;
	if (k.disabled == KEY_DELETED)
		return STORE_NOTFOUND;
	/* Older secrets still in a grace period end now. */
	if ((rc = drop_hashes(t, r->id, k.hash)) != STORE_OK)
		return rc;
	if (r->grace_s > 0) {
		store_be64(v, r->id);
		store_be64(v + 8, (uint64_t)((int64_t)time(NULL) + r->grace_s));
		rc = store_put(t, SDB_KEYHASH, k.hash, KEY_HASH_LEN, v,
		    HASH_GRACE);
	} else
		rc = store_del(t, SDB_KEYHASH, k.hash, KEY_HASH_LEN);
	if (rc != STORE_OK && rc != STORE_NOTFOUND)
		return rc;
	if ((rc = store_put_new(t, SDB_KEYHASH, r->hash, KEY_HASH_LEN, id,
	    sizeof(id))) != STORE_OK)
		return rc == STORE_EXISTS ? STORE_ERROR : rc;
	memcpy(k.hash, r->hash, KEY_HASH_LEN);
	memcpy(k.prefix, r->prefix, sizeof(k.prefix));
	if ((rc = store_put(t, SDB_KEYS, id, sizeof(id), &k, sizeof(k))) !=
	    STORE_OK)
		return rc;
	*r->out = k;
	return STORE_OK;
}

int
keys_rotate(struct store *s, uint64_t id, int64_t grace_s,
    struct key_rec *out, char *secret, size_t secretlen)
{
	struct rotate	 r;
	int		 rc;

	if (grace_s < 0 || grace_s > KEY_GRACE_MAX ||
	    secretlen < KEY_SECRET_LEN + 1 || new_secret(secret) == -1)
		return STORE_ERROR;
	memset(&r, 0, sizeof(r));
	r.id = id;
	r.grace_s = grace_s;
	r.out = out;
	keys_hash(secret, r.hash);
	memcpy(r.prefix, secret, KEY_PREFIX_LEN);
	r.prefix[KEY_PREFIX_LEN] = '\0';
	if ((rc = store_txn(s, rotate_txn, &r)) != STORE_OK)
		explicit_bzero(secret, secretlen);
	explicit_bzero(r.hash, sizeof(r.hash));
	return rc;
}

struct delete {
	uint64_t		 id;
	struct keys_held	*held;
};

static int
delete_txn(struct store_txn *t, void *arg)
{
	struct delete		*d = arg;
	struct keys_held	*h = d->held;
	struct balance_rec	 bal;
	struct key_rec		 k;
	unsigned char		 id[8];
	int			 rc;

	memset(h, 0, sizeof(*h));
	store_be64(id, d->id);
	/* Written below: admissions of this key wait for this transaction. */
	if ((rc = store_get_rec(t, SDB_KEYS, id, sizeof(id), &k, sizeof(k),
	    STORE_RMW)) != STORE_OK)
		return rc;
	if (k.disabled == KEY_DELETED)
		return STORE_NOTFOUND;
	if ((rc = billing_key_holds(t, d->id, &h->reserved, &h->requests,
	    &bal)) != STORE_OK)
		return rc;
	h->balance = bal.balance;
	h->prepaid = k.prepaid;
	if (h->requests > 0 || h->balance > 0 || (k.prepaid && h->balance < 0))
		return STORE_EXISTS;
	if ((rc = drop_hashes(t, d->id, NULL)) != STORE_OK)
		return rc;
	k.disabled = KEY_DELETED;
	memset(k.hash, 0, sizeof(k.hash));
	return store_put(t, SDB_KEYS, id, sizeof(id), &k, sizeof(k));
}

int
keys_delete(struct store *s, uint64_t id, struct keys_held *held)
{
	struct delete	 d = { id, held };

	return store_txn(s, delete_txn, &d);
}

/* Keys are collected in the read transaction and handed out after it. */
struct list {
	struct key_rec	*v;
	size_t		 n, cap;
};

static int
list_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct list	*l = arg;
	struct key_rec	*nv;

	(void)k;
	(void)klen;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		if ((nv = reallocarray(l->v, l->cap, sizeof(*l->v))) == NULL)
			return STORE_ERROR;
		l->v = nv;
	}
	if (store_rec(v, vlen, &l->v[l->n], sizeof(l->v[0])) == -1)
		return STORE_ERROR;
	rec_fix(&l->v[l->n]);
	if (l->v[l->n].disabled != KEY_DELETED)
		l->n++;
	return 0;
}

static int
list_txn(struct store_txn *t, void *arg)
{
	struct list	*l = arg;

	l->n = 0;	/* a deadlock retry reads them again */
	return store_scan(t, SDB_KEYS, NULL, 0, NULL, 0, 0, list_one, arg);
}

int
keys_list(struct store *s, keys_fn fn, void *arg)
{
	struct list	 l = { NULL, 0, 0 };
	size_t		 i;
	int		 rc;

	if ((rc = store_read(s, list_txn, &l)) == STORE_OK)
		for (i = 0; i < l.n; i++)
			if (fn(arg, &l.v[i]) != 0)
				break;
	free(l.v);
	return rc;
}

int
keys_model_allowed(const struct key_rec *k, const char *model)
{
	char		 glob[KEY_MODELS_MAX];
	const char	*p = k->models, *q;
	size_t		 n;

	while (*p == ' ' || *p == ',')
		p++;
	if (*p == '\0')
		return 1;
	for (; *p != '\0'; p = q) {
		while (*p == ' ' || *p == ',')
			p++;
		for (q = p; *q != '\0' && *q != ' ' && *q != ','; q++)
			;
		if ((n = (size_t)(q - p)) == 0)
			continue;
		memcpy(glob, p, n);
		glob[n] = '\0';
		if (fnmatch(glob, model, 0) == 0)
			return 1;
	}
	return 0;
}

const char *
keys_state(const struct key_rec *k, time_t now)
{
	if (k->disabled == KEY_DELETED)
		return "deleted";
	if (k->disabled)
		return "disabled";
	if (k->expires != 0 && k->expires <= now)
		return "expired";
	return "active";
}

/* A fixed field of the record (it may lack its NUL) as a JSON string. */
static struct json_object *
field_json(const char *s, size_t size)
{
	return json_object_new_string_len(s, (int)strnlen(s, size));
}

/* The same, or null when it is empty. */
static struct json_object *
field_or_null(const char *s, size_t size)
{
	return s[0] != '\0' ? field_json(s, size) : NULL;
}

/* The stored glob list ("gpt-* claude-*") as a JSON array. */
static struct json_object *
models_json(const char *models, size_t size)
{
	struct json_object	*a;
	size_t			 i, j, len = strnlen(models, size);

	if ((a = json_object_new_array()) == NULL)
		return NULL;
	for (i = 0; i < len; i = j + 1) {
		for (j = i; j < len && strchr(" \t,", models[j]) == NULL; j++)
			continue;
		if (j > i)
			json_object_array_add(a, json_object_new_string_len(
			    models + i, (int)(j - i)));
	}
	return a;
}

struct json_object *
keys_to_json(const struct key_rec *k, time_t now)
{
	struct json_object	*o;

	if ((o = json_object_new_object()) == NULL)
		return NULL;
	json_object_object_add(o, "object", json_object_new_string("api_key"));
	json_object_object_add(o, "id", json_object_new_uint64(k->id));
	json_object_object_add(o, "prefix",
	    field_json(k->prefix, sizeof(k->prefix)));
	json_object_object_add(o, "name", field_json(k->name, sizeof(k->name)));
	json_object_object_add(o, "agent",
	    field_or_null(k->agent, sizeof(k->agent)));
	json_object_object_add(o, "tier",
	    field_or_null(k->tier, sizeof(k->tier)));
	json_object_object_add(o, "models",
	    models_json(k->models, sizeof(k->models)));
	json_object_object_add(o, "policy",
	    field_or_null(k->policy, sizeof(k->policy)));
	json_object_object_add(o, "rpm", json_object_new_int64(k->rpm));
	json_object_object_add(o, "tpm", json_object_new_int64(k->tpm));
	json_object_object_add(o, "max_concurrent",
	    json_object_new_int(k->max_concurrent));
	json_object_object_add(o, "daily_budget_micro_usd",
	    json_object_new_int64(k->daily_budget));
	json_object_object_add(o, "monthly_budget_micro_usd",
	    json_object_new_int64(k->monthly_budget));
	json_object_object_add(o, "prepaid",
	    json_object_new_boolean(k->prepaid));
	json_object_object_add(o, "allow_agent_header",
	    json_object_new_boolean(k->agent_header));
	json_object_object_add(o, "disabled",
	    json_object_new_boolean(k->disabled));
	if (k->disabled == KEY_DELETED)
		json_object_object_add(o, "deleted",
		    json_object_new_boolean(1));
	json_object_object_add(o, "created", json_object_new_int64(k->created));
	json_object_object_add(o, "expires", k->expires != 0 ?
	    json_object_new_int64(k->expires) : NULL);
	if (now != 0)
		json_object_object_add(o, "state",
		    json_object_new_string(keys_state(k, now)));
	return o;
}
