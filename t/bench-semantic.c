/*
 * bench-semantic.c: what a semantic cache lookup costs at the cap: a
 * bucket filled with N random vectors of D dimensions (int8, as stored),
 * then R lookups of a vector that matches none (every record is read and
 * compared: the worst case), and R puts at the cap (each evicts the
 * oldest). Usage: t/bench-semantic [DIM [CAP [REPS]]] (1536 1000 200).
 * contrib/bench/semantic.sh runs it for the README's figures.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../src/semantic.h"
#include "../src/store.h"

static double
now_us(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void
random_vec(struct sem *s, int dim)
{
	static float	 x[SEM_DIM_MAX];
	int		 i;

	for (i = 0; i < dim; i++)
		x[i] = (float)(rand() / (double)RAND_MAX - 0.5);
	semantic_encode_f(x, (size_t)dim, &s->vec);
	s->have_vec = 1;
}

int
main(int argc, char **argv)
{
	char		 dir[] = "/tmp/bench-semantic.XXXXXX", err[256], cmd[300];
	unsigned char	 k[RCACHE_KEY_LEN], got[RCACHE_KEY_LEN];
	int		 dim = argc > 1 ? atoi(argv[1]) : 1536;
	long		 cap = argc > 2 ? atol(argv[2]) : 1000;
	int		 reps = argc > 3 ? atoi(argv[3]) : 200, i;
	struct json_object *req;
	struct store	*s;
	struct sem	*sem;
	double		 t0, find_us, put_us;
	int64_t		 recs, bytes;

	if (dim < 1 || dim > SEM_DIM_MAX || cap < 1 || reps < 1 ||
	    mkdtemp(dir) == NULL)
		return 2;
	if ((s = store_open(dir, STORE_RECOVER, 1, 30, err,
	    sizeof(err))) == NULL) {
		fprintf(stderr, "bench-semantic: %s\n", err);
		return 1;
	}
	req = json_tokener_parse("{\"model\":\"m\",\"temperature\":0,"
	    "\"messages\":[{\"role\":\"user\",\"content\":\"q\"}]}");
	sem = semantic_begin("k:1", "m", req, 0.95, cap, 3600);
	srand(1);
	for (i = 0; i < cap; i++) {
		random_vec(sem, dim);
		memset(k, 0, sizeof(k));
		memcpy(k, &i, sizeof(i));
		semantic_put(sem, s, k);
	}
	semantic_stats(s, &recs, &bytes);
	random_vec(sem, dim);
	t0 = now_us();
	for (i = 0; i < reps; i++)
		if (semantic_find(sem, s, got) != 0)
			fprintf(stderr, "bench-semantic: unexpected match\n");
	find_us = (now_us() - t0) / reps;
	t0 = now_us();
	for (i = 0; i < reps; i++) {
		random_vec(sem, dim);
		memset(k, 0xee, sizeof(k));
		memcpy(k, &i, sizeof(i));
		semantic_put(sem, s, k);
	}
	put_us = (now_us() - t0) / reps;
	printf("dim %d cap %ld: %lld records, %lld bytes (%.0f a record); "
	    "lookup %.0f us, put at the cap %.0f us\n", dim, cap,
	    (long long)recs, (long long)bytes, recs ? (double)bytes / recs : 0,
	    find_us, put_us);
	semantic_free(sem);
	json_object_put(req);
	store_close(s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : 1;
}
