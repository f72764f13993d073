/*
 * unit-books.c: books_check over a scratch store: balances, ledger and
 * usage that agree are clean (a deleted key's books too); then each kind
 * of disagreement, made by writing a record behind billing's back, is
 * found, and undoing it makes the books clean again.
 */
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/billing.h"
#include "../src/books.h"
#include "../src/keys.h"
#include "../src/store.h"
#include "../src/usage.h"
#include "tap.h"

/* ok() when the text matches the extended regular expression. */
#define like(text, ere, ...) ok(matches((text), (ere)), __VA_ARGS__)

static int
matches(const char *text, const char *ere)
{
	regex_t	 re;
	int	 m;

	if (regcomp(&re, ere, REG_EXTENDED | REG_NOSUB) != 0)
		return 0;
	m = regexec(&re, text, 0, NULL, 0) == 0;
	regfree(&re);
	return m;
}

static char	 dir[] = "/tmp/llmgate-unit-books.XXXXXX";
static struct store *st;

/* One usage row of key (0: the master key) settled through billing_apply. */
struct apply {
	struct usage_row	 row;
};

static int
apply_txn(struct store_txn *t, void *arg)
{
	return billing_apply(t, &((struct apply *)arg)->row);
}

static int64_t	 clock_us = INT64_C(1795000000) * 1000000;

static int
settle(const struct key_rec *k, money_t cost)
{
	struct apply	 a;

	memset(&a, 0, sizeof(a));
	a.row.version = USAGE_VERSION;
	a.row.time_us = (clock_us += 1000000);
	a.row.id = store_next_id(st);
	a.row.key_id = k != NULL ? k->id : 0;
	a.row.cost = cost;
	a.row.status = 200;
	a.row.prompt = 10;
	snprintf(a.row.key_name, sizeof(a.row.key_name), "%s",
	    k != NULL ? k->name : "master");
	snprintf(a.row.agent, sizeof(a.row.agent), "%s",
	    k != NULL ? k->name : "master");
	snprintf(a.row.request_id, sizeof(a.row.request_id), "req_%" PRId64,
	    a.row.time_us);
	return store_txn(st, apply_txn, &a);
}

/* A raw record read or written behind billing's back. */
struct raw {
	enum store_db	 db;
	unsigned char	 k[64];
	size_t		 klen;
	unsigned char	 v[STORE_VALUE_MAX];
	size_t		 vlen;
	int		 del;
};

static int
get_txn(struct store_txn *t, void *arg)
{
	struct raw	*r = arg;

	r->vlen = sizeof(r->v);
	return store_get(t, r->db, r->k, r->klen, r->v, &r->vlen, 0);
}

static int
put_txn(struct store_txn *t, void *arg)
{
	struct raw	*r = arg;

	if (r->del)
		return store_del(t, r->db, r->k, r->klen);
	return store_put(t, r->db, r->k, r->klen, r->v, r->vlen);
}

static void
balance_key(struct raw *r, uint64_t id)
{
	memset(r, 0, sizeof(*r));
	r->db = SDB_BALANCE;
	store_be64(r->k, id);
	r->klen = 8;
}

/* The newest usage row, for a raw copy. */
static int
newest(void *arg, const void *k, size_t klen, const void *v, size_t vlen)
{
	struct raw	*r = arg;

	memcpy(r->k, k, klen);
	r->klen = klen;
	memcpy(r->v, v, vlen);
	r->vlen = vlen;
	return STORE_STOP;
}

static int
newest_txn(struct store_txn *t, void *arg)
{
	return store_scan(t, SDB_USAGE, NULL, 0, NULL, 0, STORE_REVERSE,
	    newest, arg);
}

/* Problems (and warnings) found now; the first problem's text in why. */
static long
check(long *warnings, char *why, size_t len)
{
	struct books	 b;
	long		 n = -1;

	why[0] = '\0';
	if (books_check(st, &b) == STORE_OK) {
		n = (long)json_object_array_length(b.problems);
		if (warnings != NULL)
			*warnings = (long)json_object_array_length(b.warnings);
		if (n > 0)
			snprintf(why, len, "%s", json_object_get_string(
			    json_object_array_get_idx(b.problems, 0)));
	}
	books_free(&b);
	return n;
}

static void
make_key(struct key_rec *k, const char *name, int prepaid)
{
	char	 secret[KEY_SECRET_LEN + 1];

	memset(k, 0, sizeof(*k));
	snprintf(k->name, sizeof(k->name), "%s", name);
	k->prepaid = (uint8_t)prepaid;
	if (keys_create(st, k, secret, sizeof(secret)) != STORE_OK)
		printf("# keys_create %s failed\n", name);
}

int
main(void)
{
	struct key_rec		 a, b, c;
	struct balance_rec	 bal;
	struct books		 bk;
	struct keys_held	 held;
	struct raw		 r, saved;
	struct usage_row	 u;
	char			 err[512], why[512];
	long			 w;

	if (mkdtemp(dir) == NULL ||
	    (st = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err))) ==
	    NULL) {
		printf("Bail out! store: %s\n", err);
		return 1;
	}
	make_key(&a, "alice", 1);
	make_key(&b, "bob", 0);
	make_key(&c, "carol", 0);
	billing_credit(st, a.id, 5000000, LEDGER_TOPUP, "", NULL);
	billing_credit(st, b.id, 2000000, LEDGER_TOPUP, "", NULL);
	billing_credit(st, b.id, -500000, LEDGER_ADJUST, "fix", NULL);
	settle(&a, 100);
	settle(&a, 200);
	settle(&a, 300);
	settle(&b, 500);
	settle(NULL, 50);
	settle(&c, 70);

	/* Books that agree. */
	is_int(books_check(st, &bk), STORE_OK, "books_check reads the store");
	is_int((long)json_object_array_length(bk.problems), 0,
	    "books that agree: no problem");
	is_int((long)json_object_array_length(bk.warnings), 0, "nor a warning");
	is_int(bk.keys, 3, "3 keys");
	is_int(bk.usage_rows, 6, "6 usage rows (one of the master key)");
	is_int(bk.ledger_entries, 3 + 5, "3 credits and 5 debits");
	is_int(bk.usage_cost, 1170, "usage cost of the keys' rows");
	is_int(bk.ledger_debits, 1170, "ledger debits the same");
	is_int(bk.busy, 0, "no key written meanwhile");
	books_free(&bk);

	/* 1. balance != credited - debited. */
	balance_key(&r, b.id);
	store_read(st, get_txn, &r);
	saved = r;
	memcpy(&bal, r.v, sizeof(bal));
	bal.credited += 1;
	memcpy(r.v, &bal, sizeof(bal));
	store_txn(st, put_txn, &r);
	is_int(check(NULL, why, sizeof(why)), 1, "credited moved alone: found");
	like(why, "balance .* != credited .* - debited", "and said: %s", why);
	store_txn(st, put_txn, &saved);
	is_int(check(NULL, why, sizeof(why)), 0, "undone: clean");

	/* 2. balance != the sum of the ledger. */
	bal.credited += 6;
	bal.balance += 7;
	memcpy(r.v, &bal, sizeof(bal));
	store_txn(st, put_txn, &r);
	is_int(check(NULL, why, sizeof(why)), 1, "balance and credits moved "
	    "without a ledger entry: found");
	like(why, "balance .* != sum of its ledger", "and said: %s", why);
	store_txn(st, put_txn, &saved);

	/* 3. ledger debits != usage cost: a usage row lost (carol's, newest). */
	memset(&r, 0, sizeof(r));
	store_read(st, newest_txn, &r);
	r.db = SDB_USAGE;
	saved = r;
	r.del = 1;
	store_txn(st, put_txn, &r);
	is_int(check(NULL, why, sizeof(why)), 1, "a lost usage row: found");
	like(why, "ledger debits .* != usage cost", "and said: %s", why);
	store_txn(st, put_txn, &saved);
	is_int(check(NULL, why, sizeof(why)), 0, "put back: clean");

	/* 4. a usage row of a key that does not exist. */
	usage_rec(saved.v, saved.vlen, &u);
	u.key_id = 987654321;
	u.id = store_next_id(st);
	memset(&r, 0, sizeof(r));
	r.db = SDB_USAGE;
	r.klen = 16;
	store_be64(r.k, (uint64_t)u.time_us);
	store_be64(r.k + 8, u.id);
	memcpy(r.v, &u, sizeof(u));
	r.vlen = sizeof(u);
	store_txn(st, put_txn, &r);
	is_int(check(NULL, why, sizeof(why)), 1, "a row of no key: found");
	like(why, "of key 987654321, which does not exist", "and said: %s",
	    why);
	r.del = 1;
	store_txn(st, put_txn, &r);
	is_int(check(NULL, why, sizeof(why)), 0, "removed: clean");

	/* 5. a record of the wrong size. */
	balance_key(&r, c.id);
	store_read(st, get_txn, &r);
	saved = r;
	r.vlen = 5;
	store_txn(st, put_txn, &r);
	/* Unread, the balance counts as 0 against a ledger of -70. */
	is_int(check(NULL, why, sizeof(why)), 2, "a 5-byte balance: found, "
	    "and the balance no longer matches the ledger");
	like(why, "balance of key .*: 5 bytes", "and said: %s", why);
	store_txn(st, put_txn, &saved);

	/* 6. a prepaid key overdrawn: a warning, not a problem. */
	settle(&a, 6000000);
	is_int(check(&w, why, sizeof(why)), 0, "an overdrawn prepaid key: "
	    "no problem");
	is_int(w, 1, "but a warning");
	billing_credit(st, a.id, 1000000, LEDGER_TOPUP, "", NULL);

	/* 7. deleted keys keep books that agree. */
	is_int(keys_delete(st, b.id, &held), STORE_EXISTS, "bob, with money "
	    "paid in, is not deleted");
	is_int(held.balance, 1500000 - 500, "and the balance says why");
	billing_credit(st, b.id, -held.balance, LEDGER_ADJUST, "refund", NULL);
	is_int(keys_delete(st, b.id, &held), STORE_OK, "refunded: deleted");
	is_int(keys_delete(st, c.id, &held), STORE_OK, "carol, who owes, is "
	    "deleted");
	is_int(check(&w, why, sizeof(why)), 0, "deleted keys: books clean");
	is_int(keys_get(st, b.id, &a), STORE_OK,
	    "a deleted key's record stays");
	is_str(keys_state(&a, time(NULL)), "deleted", "in state deleted");

	store_close(st);
	(void)!system((snprintf(why, sizeof(why), "rm -rf %s", dir), why));
	return tap_done();
}
