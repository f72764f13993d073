/* books.c: the check of the books: every key's balance against its credits and debits, its ledger and the cost of its usage rows, over a live store. */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "billing.h"
#include "books.h"
#include "keys.h"
#include "store.h"
#include "usage.h"

/* A fixed char array of a stored record for "%.*s" (may lack its NUL). */
#define FIX(f)	(int)strnlen((f), sizeof(f)), (f)

/* Dollars with two decimals at least ("2.50", "0.000123"), into buf. */
static const char *
usd(money_t m, char *buf, size_t len)
{
	char	*dot;
	size_t	 n;

	money_format_usd(m, buf, len);
	if ((dot = strchr(buf, '.')) == NULL)
		return buf;
	n = strlen(buf);
	while (n > (size_t)(dot - buf) + 3 && buf[n - 1] == '0')
		buf[--n] = '\0';
	return buf;
}

/*
 * The check reads the store in short batches, each its own read transaction,
 * like usage_scan: one transaction over every record would hold a lock
 * per page read and exhaust the lock table of a large store. The gateway
 * may write meanwhile, so each key's balance is read before and after:
 * a key whose credits or debits moved is not compared (every ledger
 * entry moves one of them).
 */
#define CHK_BATCH	256
#define CHK_KEY_MAX	64		/* longest key of the databases read */

/* One key's books as `check` adds them up. */
struct chk_key {
	uint64_t		 id;
	char			 name[KEY_NAME_MAX];
	int			 has_balance;
	int			 prepaid;
	int			 busy;		/* written during the check */
	struct balance_rec	 bal;
	money_t			 ledger_sum;
	money_t			 ledger_debits;	/* positive */
	money_t			 usage_cost;
};

struct chk {
	struct store		*st;
	struct chk_key		*keys;		/* sorted by id */
	size_t			 n, cap;
	int64_t			 oldest_us;	/* the oldest usage row */
	int			 again;		/* second balance pass */
	struct books		*out;
};

/* One record copied out of a batch. */
struct chk_rec {
	unsigned char	 k[CHK_KEY_MAX];
	size_t		 klen, vlen;
	unsigned char	 v[STORE_VALUE_MAX];
};

/* A walk over one database, CHK_BATCH records per transaction. */
struct batch {
	enum store_db	 db;
	struct chk_rec	*recs;
	size_t		 n;
	int		 more;
	unsigned char	 from[CHK_KEY_MAX];	/* the last key handled */
	size_t		 flen;
};

static void problem(struct chk *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void warning(struct chk *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
static void finding(struct json_object *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/* Up to this many warnings of one kind are listed one by one. */
#define CHK_WARN_MAX	20

/* One formatted finding added to a list of them. */
static void
finding(struct json_object *list, const char *fmt, va_list ap)
{
	char	 buf[512];

	vsnprintf(buf, sizeof(buf), fmt, ap);
	json_object_array_add(list, json_object_new_string(buf));
}

static void
problem(struct chk *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	finding(c->out->problems, fmt, ap);
	va_end(ap);
}

static void
warning(struct chk *c, const char *fmt, ...)
{
	va_list	 ap;

	va_start(ap, fmt);
	finding(c->out->warnings, fmt, ap);
	va_end(ap);
}

static int
batch_one(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct batch	*b = arg;
	struct chk_rec	*r;

	/* The scan resumes on the key the last batch ended with. */
	if (b->flen > 0 && klen == b->flen && memcmp(k, b->from, klen) == 0)
		return 0;
	if (b->n == CHK_BATCH) {
		b->more = 1;
		return STORE_STOP;
	}
	if (klen > CHK_KEY_MAX || vlen > STORE_VALUE_MAX)
		return STORE_ERROR;
	r = &b->recs[b->n++];
	memcpy(r->k, k, klen);
	r->klen = klen;
	memcpy(r->v, v, vlen);
	r->vlen = vlen;
	return 0;
}

static int
batch_txn(struct store_txn *txn, void *arg)
{
	struct batch	*b = arg;

	/* A deadlock runs this again: the batch starts over. */
	b->n = 0;
	b->more = 0;
	return store_scan(txn, b->db, NULL, 0, b->flen > 0 ? b->from : NULL,
	    b->flen, 0, batch_one, b);
}

/* Hand every record of db to fn, outside any transaction. */
static int
chk_walk(struct chk *c, struct batch *b, enum store_db db, store_scan_fn fn)
{
	struct chk_rec	*r;
	size_t		 i;
	int		 rc;

	b->db = db;
	b->flen = 0;
	do {
		if ((rc = store_read(c->st, batch_txn, b)) != STORE_OK)
			return rc;
		for (i = 0; i < b->n; i++) {
			r = &b->recs[i];
			if ((rc = fn(c, r->k, r->klen, r->v, r->vlen)) < 0)
				return rc;
		}
		if (b->n > 0) {
			r = &b->recs[b->n - 1];
			memcpy(b->from, r->k, r->klen);
			b->flen = r->klen;
		}
	} while (b->more);
	return STORE_OK;
}

static int
chk_cmp(const void *a, const void *b)
{
	const struct chk_key	*x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct chk_key *
chk_find(struct chk *c, uint64_t id)
{
	struct chk_key	 k;

	k.id = id;
	return c->n == 0 ? NULL :
	    bsearch(&k, c->keys, c->n, sizeof(k), chk_cmp);
}

/* A record of a key not read at the start: a problem unless it is new. */
static int
chk_unknown(struct chk *c, uint64_t id)
{
	struct key_rec	 k;

	return keys_get(c->st, id, &k) != STORE_OK;
}

/* The id in an 8-byte big-endian key, or 0. */
static uint64_t
key_id_of(const void *k, size_t klen)
{
	return klen >= 8 ? store_get_be64(k) : 0;
}

/* A stored value of the expected size and version, else a problem. */
static int
chk_value(struct chk *c, const char *what, uint64_t id, const void *v,
    size_t vlen, size_t size)
{
	if (vlen != size || ((const uint8_t *)v)[0] != STORE_VERSION) {
		problem(c, "%s of key %" PRIu64 ": %zu bytes, version %d "
		    "(expected %zu bytes, version %d)", what, id, vlen,
		    vlen > 0 ? ((const uint8_t *)v)[0] : -1, size,
		    STORE_VERSION);
		return -1;
	}
	return 0;
}

static int
chk_key_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk	*c = arg;
	struct key_rec	 r;
	struct chk_key	*ck, *keys;
	size_t		 cap;

	if (chk_value(c, "key record", key_id_of(k, klen), v, vlen,
	    sizeof(r)) != 0)
		return 0;
	memcpy(&r, v, sizeof(r));
	if (klen != 8 || r.id != store_get_be64(k))
		problem(c, "key record %" PRIu64 " is stored under another "
		    "id", r.id);
	if (c->n == c->cap) {
		cap = c->cap == 0 ? 64 : c->cap * 2;
		if ((keys = reallocarray(c->keys, cap, sizeof(*keys))) ==
		    NULL) {
			return STORE_ERROR;
		}
		c->keys = keys;
		c->cap = cap;
	}
	ck = &c->keys[c->n++];
	memset(ck, 0, sizeof(*ck));
	ck->id = r.id;
	ck->prepaid = r.prepaid;
	snprintf(ck->name, sizeof(ck->name), "%.*s", FIX(r.name));
	return 0;
}

/* First pass: the balance compared; second pass: has it moved since? */
static int
chk_balance_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct balance_rec	 b;
	uint64_t		 id = key_id_of(k, klen);

	if (c->again) {
		if (vlen != sizeof(b) || (ck = chk_find(c, id)) == NULL)
			return 0;
		memcpy(&b, v, sizeof(b));
		if (!ck->busy && (!ck->has_balance ||
		    b.credited != ck->bal.credited ||
		    b.debited != ck->bal.debited ||
		    b.balance != ck->bal.balance)) {
			ck->busy = 1;
			c->out->busy++;
		}
		return 0;
	}
	if (chk_value(c, "balance", id, v, vlen, sizeof(b)) != 0)
		return 0;
	if ((ck = chk_find(c, id)) == NULL) {
		if (chk_unknown(c, id))
			problem(c, "a balance of key %" PRIu64 ", which does "
			    "not exist", id);
		return 0;
	}
	memcpy(&ck->bal, v, sizeof(ck->bal));
	ck->has_balance = 1;
	return 0;
}

static int
chk_usage_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct usage_row	 u;
	char			 b1[32], b2[32];

	c->out->usage_rows++;
	if (usage_rec(v, vlen, &u) == -1) {
		problem(c, "usage row of %zu bytes, version %d (expected "
		    "%zu, version %d, or %d bytes, version 1)", vlen,
		    vlen > 0 ? ((const uint8_t *)v)[0] : -1, sizeof(u),
		    USAGE_VERSION, USAGE_V1_SIZE);
		return 0;
	}
	if (u.time_us < c->oldest_us)
		c->oldest_us = u.time_us;
	if ((u.flags & USAGE_OVER_RESERVATION) &&
	    c->out->over_reservation++ < CHK_WARN_MAX)
		warning(c, "usage row %.*s (key %.*s, model %.*s) cost %s, more "
		    "than the %s reserved: the upstream went past the limit it "
		    "was sent", FIX(u.request_id), FIX(u.key_name),
		    FIX(u.served), usd(u.cost, b1, sizeof(b1)),
		    usd(u.reserved, b2, sizeof(b2)));
	if (u.key_id == 0)
		return 0;
	if ((ck = chk_find(c, u.key_id)) == NULL) {
		if (chk_unknown(c, u.key_id))
			problem(c, "usage row %.*s of key %" PRIu64 ", which "
			    "does not exist", FIX(u.request_id), u.key_id);
		return 0;
	}
	ck->usage_cost += u.cost;
	c->out->usage_cost += u.cost;
	return 0;
}

static int
chk_ledger_cb(void *arg, const void *k, size_t klen, const void *v,
    size_t vlen)
{
	struct chk		*c = arg;
	struct chk_key		*ck;
	struct ledger_rec	 l;

	c->out->ledger_entries++;
	if (chk_value(c, "ledger entry", key_id_of(k, klen), v, vlen,
	    sizeof(l)) != 0)
		return 0;
	memcpy(&l, v, sizeof(l));
	if (klen < 8 || l.key_id != store_get_be64(k))
		problem(c, "ledger entry %" PRIu64 " of key %" PRIu64 " is "
		    "stored under another key", l.id, l.key_id);
	if ((ck = chk_find(c, l.key_id)) == NULL) {
		if (chk_unknown(c, l.key_id))
			problem(c, "ledger entry %" PRIu64 " of key %" PRIu64
			    ", which does not exist", l.id, l.key_id);
		return 0;
	}
	ck->ledger_sum += l.amount;
	if (l.kind != LEDGER_DEBIT)
		return 0;
	/* Purge deleted the oldest usage rows, never their debits. */
	if (l.usage_time_us < c->oldest_us) {
		c->out->purged_debits -= l.amount;
		return 0;
	}
	ck->ledger_debits -= l.amount;
	c->out->ledger_debits -= l.amount;
	return 0;
}

/* Keys and balances, usage, ledger, then balances again. */
static int
chk_read(struct chk *c)
{
	struct batch	 b;
	int		 rc;

	memset(&b, 0, sizeof(b));
	if ((b.recs = calloc(CHK_BATCH, sizeof(*b.recs))) == NULL) {
		return STORE_ERROR;
	}
	c->oldest_us = INT64_MAX;
	if ((rc = chk_walk(c, &b, SDB_KEYS, chk_key_cb)) != STORE_OK)
		goto done;
	if (c->n > 1)
		qsort(c->keys, c->n, sizeof(*c->keys), chk_cmp);
	if ((rc = chk_walk(c, &b, SDB_BALANCE, chk_balance_cb)) != STORE_OK)
		goto done;
	/* Usage first: debits older than its oldest row were purged. */
	if ((rc = chk_walk(c, &b, SDB_USAGE, chk_usage_cb)) != STORE_OK ||
	    (rc = chk_walk(c, &b, SDB_LEDGER, chk_ledger_cb)) != STORE_OK)
		goto done;
	c->again = 1;
	rc = chk_walk(c, &b, SDB_BALANCE, chk_balance_cb);
 done:
	free(b.recs);
	return rc;
}

/* Compare each quiet key's balance, ledger and usage (purged rows aside). */
static void
chk_books(struct chk *c)
{
	struct chk_key	*k;
	char		 b1[32], b2[32], b3[32];
	size_t		 i;

	for (i = 0; i < c->n; i++) {
		k = &c->keys[i];
		if (k->busy)
			continue;
		if (k->has_balance &&
		    k->bal.balance != k->bal.credited - k->bal.debited)
			problem(c, "key %" PRIu64 " (%s): balance %s != "
			    "credited %s - debited %s", k->id, k->name,
			    usd(k->bal.balance, b1, sizeof(b1)),
			    usd(k->bal.credited, b2, sizeof(b2)),
			    usd(k->bal.debited, b3, sizeof(b3)));
		if (k->bal.balance != k->ledger_sum)
			problem(c, "key %" PRIu64 " (%s): balance %s != sum "
			    "of its ledger %s", k->id, k->name,
			    usd(k->bal.balance, b1, sizeof(b1)),
			    usd(k->ledger_sum, b2, sizeof(b2)));
		if (k->ledger_debits != k->usage_cost)
			problem(c, "key %" PRIu64 " (%s): ledger debits %s != "
			    "usage cost %s", k->id, k->name,
			    usd(k->ledger_debits, b1, sizeof(b1)),
			    usd(k->usage_cost, b2, sizeof(b2)));
		if (k->prepaid && k->has_balance && k->bal.balance < 0)
			warning(c, "prepaid key %" PRIu64 " (%s) is overdrawn: "
			    "balance %s", k->id, k->name,
			    usd(k->bal.balance, b1, sizeof(b1)));
	}
	if (c->out->over_reservation > CHK_WARN_MAX)
		warning(c, "%ld more usage rows cost more than was reserved",
		    c->out->over_reservation - CHK_WARN_MAX);
}

int
books_check(struct store *st, struct books *out)
{
	struct chk	 c;
	int		 rc;

	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	c.st = st;
	c.out = out;
	if ((out->problems = json_object_new_array()) == NULL ||
	    (out->warnings = json_object_new_array()) == NULL) {
		rc = STORE_ERROR;
		goto done;
	}
	if ((rc = chk_read(&c)) != STORE_OK)
		goto done;
	chk_books(&c);
	out->keys = (long)c.n;
 done:
	free(c.keys);
	return rc;
}

void
books_free(struct books *b)
{
	json_object_put(b->problems);
	json_object_put(b->warnings);
	b->problems = b->warnings = NULL;
}
