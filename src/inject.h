/*
 * inject.h: the prompt-injection scorer behind det_injection(): weighted
 * patterns and heuristics (instruction override, role play as system,
 * prompt exfiltration, encoded payloads, tool-call hijack), Russian and
 * English. detect.c's rules own one set; nothing else calls this.
 */
#ifndef LLMGATE_INJECT_H
#define LLMGATE_INJECT_H

#include <stddef.h>

struct inject_set;

/* The built-in patterns and heuristics; NULL: no memory. */
struct inject_set *inject_new(void);
/* Drop the built-in patterns (the heuristics stay; see inject.c). */
void	inject_clear(struct inject_set *);
/* Add one configured pattern with its weight: 0, or -1 with err filled. */
int	inject_add(struct inject_set *, const char *, int, char *, size_t);
/* The score of s[0..n) (0 or more) and at most nmax names of what
   matched, each once (static strings or the set's; unused slots NULL). */
int	inject_score(const struct inject_set *, const char *, size_t,
	    const char **, size_t);
void	inject_free(struct inject_set *);

#endif
