/*
 * unit-semantic.c: the semantic cache's vectors (int8 encoding, cosine,
 * and what the quantisation costs against float32 on 1536-dimension
 * vectors), the text a request is looked up by, the bucket (only the last
 * user message may differ), and against a real store: the closest vector
 * over the threshold wins, another bucket never matches, the cap evicts
 * the oldest, a vector stored again for the same answer replaces the old,
 * an expired one is never found.
 */
#include <sys/wait.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/semantic.h"
#include "../src/store.h"
#include "tap.h"

#define DIM	1536

static double
cos_f(const float *a, const float *b, size_t n)
{
	double	 d = 0, na = 0, nb = 0;
	size_t	 i;

	for (i = 0; i < n; i++) {
		d += (double)a[i] * b[i];
		na += (double)a[i] * a[i];
		nb += (double)b[i] * b[i];
	}
	return d / sqrt(na * nb);
}

/* A standard normal deviate (Box-Muller) from rand(). */
static double
gauss(void)
{
	double	 u = (rand() + 1.0) / (RAND_MAX + 2.0);
	double	 v = (rand() + 1.0) / (RAND_MAX + 2.0);

	return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

static void
test_encode(void)
{
	static struct sem_vec	 a, b;
	float			 x[8] = { 1, 2, 3, 4, -1, -2, -3, -4 };
	float			 y[8] = { 0 }, z[8], big[SEM_DIM_MAX + 1];
	struct json_object	*arr;
	size_t			 i;

	ok(semantic_encode_f(x, 8, &a) == 0 && a.dim == 8, "8 floats encode");
	ok(fabs(semantic_cosine(&a, &a) - 1) < 1e-6, "cosine with itself: 1");
	for (i = 0; i < 8; i++)
		z[i] = -x[i] * 0.001f;
	semantic_encode_f(z, 8, &b);
	ok(fabs(semantic_cosine(&a, &b) + 1) < 1e-6, "with its opposite "
	    "(any scale): -1");
	ok(semantic_encode_f(y, 8, &b) == -1, "all zeros: refused");
	y[3] = NAN;
	ok(semantic_encode_f(y, 8, &b) == -1, "a NaN: refused");
	memset(big, 0, sizeof(big));
	big[0] = 1;
	ok(semantic_encode_f(big, SEM_DIM_MAX, &b) == 0, "%d dimensions: "
	    "encoded", SEM_DIM_MAX);
	ok(semantic_encode_f(big, SEM_DIM_MAX + 1, &b) == -1, "%d: refused",
	    SEM_DIM_MAX + 1);
	ok(semantic_encode_f(x, 0, &b) == -1, "none: refused");
	semantic_encode_f(x, 4, &b);
	ok(semantic_cosine(&a, &b) == 0, "other dimensions: cosine 0");
	arr = json_tokener_parse("[0.5, -0.25, 1, 0]");
	ok(semantic_encode(arr, &b) == 0 && b.dim == 4 && b.q[2] == 127 &&
	    b.q[0] == 64 && b.q[1] == -32 && b.q[3] == 0,
	    "a JSON array: q = round(127 x / max |x|)");
	json_object_put(arr);
	arr = json_tokener_parse("[0.5, \"x\"]");
	ok(semantic_encode(arr, &b) == -1, "a JSON array with a string: "
	    "refused");
	json_object_put(arr);
}

/*
 * Pairs of random 1536-dimension vectors at known similarities around
 * the threshold: the int8 cosine against the float32 one.
 */
static void
test_accuracy(void)
{
	static float		 a[DIM], n[DIM], b[DIM];
	static struct sem_vec	 qa, qb;
	double			 target, s, cf, cq, err, max = 0, sum = 0;
	int			 k, trials = 0, flips = 0;
	size_t			 i;

	srand(12345);
	for (k = 0; k < 400; k++) {
		target = 0.80 + 0.195 * (k % 40) / 39.0;
		for (i = 0; i < DIM; i++) {
			a[i] = (float)gauss();
			n[i] = (float)gauss();
		}
		/* b = a cos t + n' sin t, n' the part of n orthogonal to a. */
		{
			double	 an = 0, aa = 0, nn = 0;

			for (i = 0; i < DIM; i++) {
				an += (double)a[i] * n[i];
				aa += (double)a[i] * a[i];
			}
			for (i = 0; i < DIM; i++)
				n[i] -= (float)(an / aa) * a[i];
			for (i = 0; i < DIM; i++)
				nn += (double)n[i] * n[i];
			s = sqrt(1 - target * target);
			for (i = 0; i < DIM; i++)
				b[i] = (float)(target * a[i] / sqrt(aa) +
				    s * n[i] / sqrt(nn));
			for (i = 0; i < DIM; i++)
				a[i] = (float)(a[i] / sqrt(aa));
		}
		cf = cos_f(a, b, DIM);
		semantic_encode_f(a, DIM, &qa);
		semantic_encode_f(b, DIM, &qb);
		cq = semantic_cosine(&qa, &qb);
		err = fabs(cq - cf);
		if (err > max)
			max = err;
		sum += err;
		trials++;
		if ((cf >= 0.95) != (cq >= 0.95) && fabs(cf - 0.95) > 0.001)
			flips++;
	}
	printf("# int8 against float32, %d pairs of %d dimensions at cosine "
	    "0.80..0.995: mean |error| %.5f, max %.5f; %d more than 0.001 "
	    "from 0.95 on its other side\n", trials, DIM, sum / trials, max, flips);
	ok(max < 0.005, "the int8 cosine is within 0.005 of float32's "
	    "(max %.5f)", max);
	ok(flips == 0, "none more than 0.001 from the threshold crosses it");
}

static void
test_text(void)
{
	static const struct {
		const char	*req;
		const char	*want;	/* NULL: none */
	} cases[] = {
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}",
		  "hi" },
		{ "{\"messages\":[{\"role\":\"system\",\"content\":\"s\"},"
		  "{\"role\":\"user\",\"content\":[{\"type\":\"text\","
		  "\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}]}",
		  "a\nb" },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":"
		  "\"text\",\"text\":\"a\"},{\"type\":\"image_url\","
		  "\"image_url\":{\"url\":\"x\"}}]}]}", NULL },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"q\"},"
		  "{\"role\":\"assistant\",\"content\":\"a\"}]}", NULL },
		{ "{\"messages\":[{\"role\":\"user\",\"content\":\"\"}]}",
		  NULL },
		{ "{\"messages\":[]}", NULL },
		{ "{\"prompt\":\"x\"}", NULL },
	};
	struct json_object	*o;
	char			*t, *big;
	size_t			 i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		o = json_tokener_parse(cases[i].req);
		t = semantic_text(o);
		if (cases[i].want == NULL)
			ok(t == NULL, "text of case %zu: none", i);
		else
			is_str(t ? t : "(null)", cases[i].want,
			    "text of case %zu", i);
		free(t);
		json_object_put(o);
	}
	big = malloc(SEM_TEXT_MAX + 2);
	memset(big, 'a', SEM_TEXT_MAX + 1);
	big[SEM_TEXT_MAX + 1] = '\0';
	o = json_object_new_object();
	json_object_object_add(o, "messages", json_tokener_parse(
	    "[{\"role\":\"user\",\"content\":\"\"}]"));
	json_object_object_add(json_object_array_get_idx(json_object_object_get(
	    o, "messages"), 0), "content", json_object_new_string(big));
	t = semantic_text(o);
	ok(t == NULL, "a text over %d bytes: none", SEM_TEXT_MAX);
	free(t);
	json_object_put(o);
	free(big);
}

static struct sem *
begin(const char *scope, const char *req, long max, long ttl)
{
	struct json_object	*o = json_tokener_parse(req);
	struct sem		*s;

	s = semantic_begin(scope, "m", o, 0.95, max, ttl);
	json_object_put(o);
	return s;
}

#define REQ(sys, user)	"{\"model\":\"m\",\"temperature\":0,\"messages\":[" \
	"{\"role\":\"system\",\"content\":\"" sys "\"},{\"role\":\"user\"," \
	"\"content\":\"" user "\"}]}"

static void
test_bucket(void)
{
	struct sem	*a, *b, *c, *d;

	a = begin("k:1", REQ("be brief", "one"), 10, 60);
	b = begin("k:1", REQ("be brief", "two"), 10, 60);
	c = begin("k:1", REQ("be long", "one"), 10, 60);
	d = begin("k:2", REQ("be brief", "one"), 10, 60);
	ok(a && b && c && d, "four states");
	if (a && b && c && d) {
		ok(memcmp(a->bucket, b->bucket, RCACHE_KEY_LEN) == 0,
		    "only the last user message differs: the same bucket");
		ok(memcmp(a->bucket, c->bucket, RCACHE_KEY_LEN) != 0,
		    "another system prompt: another bucket");
		ok(memcmp(a->bucket, d->bucket, RCACHE_KEY_LEN) != 0,
		    "another scope: another bucket");
	}
	semantic_free(a);
	semantic_free(b);
	semantic_free(c);
	semantic_free(d);
}

/* A unit vector along axis i, tilted by t towards axis i + 1. */
static void
axis(struct sem *s, int i, double t)
{
	float	 x[64];

	memset(x, 0, sizeof(x));
	x[i] = (float)cos(t);
	x[i + 1] = (float)sin(t);
	semantic_encode_f(x, 64, &s->vec);
	s->have_vec = 1;
}

static void
key_of(unsigned char k[RCACHE_KEY_LEN], int i)
{
	memset(k, 0, RCACHE_KEY_LEN);
	k[0] = (unsigned char)i;
}

/* Four processes store 30 vectors each into one bucket capped at 5. */
static void
test_concurrent(const char *dir)
{
	unsigned char	 k[RCACHE_KEY_LEN];
	struct store	*s;
	struct sem	*a;
	char		 err[256];
	int64_t		 recs, bytes;
	int		 p, i, status, all = 1;

	for (p = 0; p < 4; p++) {
		if (fork() != 0)
			continue;
		if ((s = store_open(dir, STORE_WORKER, 1, 30, err,
		    sizeof(err))) == NULL ||
		    (a = begin("k:9", REQ("sys", "q"), 5, 600)) == NULL)
			_exit(2);
		for (i = 0; i < 30; i++) {
			axis(a, (p * 30 + i) % 60, 0);
			key_of(k, p * 30 + i);
			semantic_put(a, s, k);
		}
		semantic_free(a);
		store_close(s);
		_exit(0);
	}
	for (p = 0; p < 4; p++)
		if (wait(&status) == -1 || !WIFEXITED(status) ||
		    WEXITSTATUS(status) != 0)
			all = 0;
	ok(all, "four processes stored 120 vectors into one bucket at once");
	s = store_open(dir, STORE_ADMIN, 1, 30, err, sizeof(err));
	if (s == NULL) {
		ok(0, "store reopened: %s", err);
		return;
	}
	semantic_stats(s, &recs, &bytes);
	/* Other buckets hold 3 + 1 (the expired one is kept until written). */
	is_int(recs - 4, 5, "... the bucket holds its cap of 5, no more");
	store_close(s);
}

static void
test_store(void)
{
	char		 dir[] = "/tmp/unit-semantic.XXXXXX", err[256], cmd[300];
	unsigned char	 k[RCACHE_KEY_LEN], got[RCACHE_KEY_LEN];
	struct store	*s;
	struct sem	*a, *o, *e;
	int64_t		 recs, bytes;
	int		 i;

	if (mkdtemp(dir) == NULL) {
		ok(0, "scratch directory");
		return;
	}
	s = store_open(dir, STORE_RECOVER, 1, 30, err, sizeof(err));
	ok(s != NULL, "store created: %s", s ? "ok" : err);
	if (s == NULL)
		return;
	a = begin("k:1", REQ("sys", "q"), 3, 600);
	o = begin("k:2", REQ("sys", "q"), 3, 600);
	/* Five answers along axes 0..4 in one bucket capped at 3. */
	for (i = 0; i < 5; i++) {
		axis(a, i * 2, 0);
		key_of(k, i);
		semantic_put(a, s, k);
		usleep(2000);
	}
	semantic_stats(s, &recs, &bytes);
	is_int(recs, 3, "a cap of 3: three vectors kept of five");
	axis(a, 8, 0.2);	/* cos 0.98 to answer 4 */
	ok(semantic_find(a, s, got) == 1 && got[0] == 4,
	    "the newest: found at cosine %.3f", a->similarity);
	axis(a, 0, 0);
	ok(semantic_find(a, s, got) == 0, "the oldest: evicted");
	axis(a, 8, 0.4);	/* cos 0.92 */
	ok(semantic_find(a, s, got) == 0, "cosine 0.92 < 0.95: not found");
	axis(o, 8, 0);
	ok(semantic_find(o, s, got) == 0, "another scope's bucket: not "
	    "found");
	/* Answer 4 again along axis 12: its old vector goes. */
	axis(a, 12, 0);
	key_of(k, 4);
	semantic_put(a, s, k);
	semantic_stats(s, &recs, &bytes);
	is_int(recs, 3, "the same answer stored again: 3 vectors still");
	ok(semantic_find(a, s, got) == 1 && got[0] == 4,
	    "... found by its new vector");
	axis(a, 4, 0);
	ok(semantic_find(a, s, got) == 1 && got[0] == 2,
	    "... answer 2 is still there");
	axis(a, 8, 0);
	ok(semantic_find(a, s, got) == 0, "... not found by the old vector");
	/* Of two close ones, the closer wins. */
	axis(a, 20, 0);
	key_of(k, 7);
	semantic_put(a, s, k);
	axis(a, 20, 0.25);
	key_of(k, 8);
	semantic_put(a, s, k);
	axis(a, 20, 0.2);
	ok(semantic_find(a, s, got) == 1 && got[0] == 8,
	    "two over the threshold: the closer wins");
	/* ttl 0: expired at once, never found. */
	e = begin("k:3", REQ("sys", "q"), 3, 0);
	axis(e, 30, 0);
	key_of(k, 9);
	semantic_put(e, s, k);
	ok(semantic_find(e, s, got) == 0, "an expired vector: never found");
	semantic_free(a);
	semantic_free(o);
	semantic_free(e);
	store_close(s);
	test_concurrent(dir);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		ok(0, "scratch directory removed");
}

int
main(void)
{
	test_encode();
	test_accuracy();
	test_text();
	test_bucket();
	test_store();
	return tap_done();
}
