/*
 * unit-fallback.c: the usage fallback file under a full disk. A file
 * size limit (RLIMIT_FSIZE) makes write() come back short the way a full
 * disk does: every line of the file must still be a whole row, and every
 * row must be either in the file or in a LOST-STORE log line, never both,
 * never neither. t0870 does the same on a full tmpfs under real servers.
 */
#define _GNU_SOURCE	/* F_SETPIPE_SZ */
#include <sys/resource.h>
#include <sys/stat.h>

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "../src/config.h"
#include "../src/store.h"
#include "../src/usage.h"
#include "tap.h"

#define ROWS	60
#define LIMIT	20000	/* bytes the file may grow to */

static void
make_row(struct usage_row *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->version = STORE_VERSION;
	r->time_us = 1773100800000000LL + i;
	r->id = (uint64_t)i + 1;
	r->status = 200;
	r->attempts = 1;
	r->prompt = 10 + i;
	r->completion = 20;
	r->cost = 1000 + i;
	snprintf(r->request_id, sizeof(r->request_id), "req-%03d", i);
	snprintf(r->key_name, sizeof(r->key_name), "k");
	snprintf(r->route, sizeof(r->route), "chat");
	/* Rows of unequal length: the limit cuts them at many offsets. */
	memset(r->requested, 'm', (size_t)(1 + i * 7 % 200));
	snprintf(r->served, sizeof(r->served), "mock");
}

/* Request ids found in path, one JSON row a line after prefix (or none). */
static int
collect(const char *path, const char *prefix, int seen[ROWS], int *bad)
{
	struct json_object	*o;
	struct usage_row	 r;
	char			*line = NULL, *p;
	size_t			 cap = 0;
	FILE			*fp;
	int			 n = 0, i;

	if ((fp = fopen(path, "r")) == NULL)
		return 0;
	while (getline(&line, &cap, fp) != -1) {
		p = line;
		if (prefix != NULL) {
			if ((p = strstr(line, prefix)) == NULL)
				continue;
			p += strlen(prefix);
		}
		o = json_tokener_parse(p);
		if (o == NULL || usage_from_json(o, &r) == -1 ||
		    sscanf(r.request_id, "req-%d", &i) != 1 || i < 0 ||
		    i >= ROWS) {
			(*bad)++;
			json_object_put(o);
			continue;
		}
		json_object_put(o);
		seen[i]++;
		n++;
	}
	free(line);
	fclose(fp);
	return n;
}

int
main(void)
{
	struct config		 cfg;
	struct usage_row	 row;
	struct rlimit		 rl;
	struct stat		 st;
	char			 dir[] = "/tmp/unit-fallback.XXXXXX";
	char			 file[256], errlog[256];
	int			 infile[ROWS] = { 0 }, lost[ROWS] = { 0 };
	int			 rc[ROWS], i, fd, saved, bad = 0, badlost = 0;
	int			 nfile, nlost, whole = 1, once = 1;
	int			 logpipe[2];
	char			 buf[4096];
	ssize_t			 n;

	printf("1..8\n");
	if (mkdtemp(dir) == NULL)
		return 1;
	snprintf(file, sizeof(file), "%s/fallback.jsonl", dir);
	snprintf(errlog, sizeof(errlog), "%s/err.log", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.gw.fallback_file = file;

	/* A row cut short before this code (a crash mid-line) is left alone. */
	fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	(void)!write(fd, "{\"v\":1,\"time_us\":17", 19);
	close(fd);

	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &rl);
	rl.rlim_cur = LIMIT;
	/*
	 * The log goes to a pipe, which the file size limit does not cut:
	 * the LOST-STORE lines must be whole however long the rows are.
	 */
	saved = dup(STDERR_FILENO);
	if (pipe(logpipe) == -1 ||
	    fcntl(logpipe[1], F_SETPIPE_SZ, 1 << 20) == -1)
		return 1;
	dup2(logpipe[1], STDERR_FILENO);
	close(logpipe[1]);
	if (setrlimit(RLIMIT_FSIZE, &rl) == -1)
		return 1;
	for (i = 0; i < ROWS; i++) {
		make_row(&row, i);
		rc[i] = usage_fallback_write(&cfg, &row);
	}
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_FSIZE, &rl);
	dup2(saved, STDERR_FILENO);
	close(saved);
	fd = open(errlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	while ((n = read(logpipe[0], buf, sizeof(buf))) > 0)
		(void)!write(fd, buf, (size_t)n);
	close(fd);
	close(logpipe[0]);

	nfile = collect(file, NULL, infile, &bad);
	nlost = collect(errlog, "LOST-STORE row=", lost, &badlost);
	is_int(bad, 1, "the one line cut before is the only bad line");
	is_int(badlost, 0, "every LOST-STORE line holds a whole row");
	ok(nfile > 5 && nlost > 5, "the limit was reached: %d rows in the "
	    "file, %d in the log", nfile, nlost);
	for (i = 0; i < ROWS; i++) {
		if (infile[i] + lost[i] != 1) {
			printf("# req-%03d: %d in the file, %d lost, rc %d\n",
			    i, infile[i], lost[i], rc[i]);
			whole = 0;
		}
		if ((rc[i] == 0) != (infile[i] == 1))
			once = 0;
	}
	ok(whole, "every row is in the file or in a LOST-STORE line, once");
	ok(once, "usage_fallback_write returned 0 exactly for rows in the file");
	ok(stat(file, &st) == 0 && st.st_size <= LIMIT, "the file stayed "
	    "within the limit (%lld bytes)", (long long)st.st_size);
	/* The file ends with a newline: nothing half-written is left. */
	fd = open(file, O_RDONLY);
	{
		char	 c = 0;

		ok(pread(fd, &c, 1, st.st_size - 1) == 1 && c == '\n',
		    "the file ends with a whole row");
	}
	close(fd);
	/* Room again: the next row is appended whole after the others. */
	make_row(&row, 0);
	snprintf(row.request_id, sizeof(row.request_id), "req-%03d", ROWS - 1);
	memset(infile, 0, sizeof(infile));
	bad = 0;
	if (usage_fallback_write(&cfg, &row) == 0)
		nfile = collect(file, NULL, infile, &bad);
	ok(bad == 1 && infile[ROWS - 1] == 1 + (rc[ROWS - 1] == 0),
	    "with room again a row is appended whole");

	unlink(file);
	unlink(errlog);
	rmdir(dir);
	return tap_failed ? 1 : 0;
}
