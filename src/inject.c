/*
 * inject.c: a STUB of the prompt-injection scorer so that detect.c links
 * and its tests run; the real scorer (patterns and heuristics) is another
 * helper's and replaces this file whole when the branches are merged.
 */
#include <stdio.h>
#include <stdlib.h>

#include "inject.h"

struct inject_set {
	int	 npat;
};

struct inject_set *
inject_new(void)
{
	return calloc(1, sizeof(struct inject_set));
}

void
inject_clear(struct inject_set *is)
{
	is->npat = 0;
}

int
inject_add(struct inject_set *is, const char *pat, int weight, char *err,
    size_t errsz)
{
	if (pat == NULL || *pat == '\0') {
		snprintf(err, errsz, "empty pattern");
		return -1;
	}
	is->npat++;
	return 0;
}

int
inject_score(const struct inject_set *is, const char *s, size_t n,
    const char **names, size_t nmax)
{
	return 0;
}

void
inject_free(struct inject_set *is)
{
	free(is);
}
