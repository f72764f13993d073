/*
 * alert.c: webhook alerts. An event is claimed once per period window
 * (period_s aligned to the epoch) per alert, event and subject with an
 * O_EXCL file in data_dir/alerts: exactly one of any number of processes
 * and threads wins it. The winner writes the payload to alerts/spool and
 * starts "llmgate --deliver-alert FILE" in its own session, which POSTs it
 * with bounded retries; a dead or hanging webhook costs requests nothing.
 */
#define _GNU_SOURCE	/* posix_spawn_file_actions_addclosefrom_np */
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "alert.h"
#include "log.h"
#include "upstream.h"

#define ALERT_DIR	"alerts"
#define SPOOL_DIR	"alerts/spool"
#define PAYLOAD_MAX	(64 * 1024)
#define BACKOFF_MAX_MS	60000

static const struct config	*alert_cfg;

void
alert_setup(const struct config *cfg)
{
	alert_cfg = cfg;
}

int
alert_wanted(enum alert_event e)
{
	size_t	 i;

	if (alert_cfg == NULL)
		return 0;
	for (i = 0; i < alert_cfg->nalerts; i++)
		if (alert_cfg->alerts[i].mask & (1u << e))
			return 1;
	return 0;
}

/* FNV-1a: a short stable file name for any subject. */
static uint64_t
subject_hash(const char *s)
{
	uint64_t	 h = 0xcbf29ce484222325ULL;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
	return h;
}

/* data_dir/sub; 0, or -1 when it does not fit. */
static int
dir_path(char *dst, size_t len, const char *sub)
{
	size_t	 n = strlen(alert_cfg->gw.data_dir);

	while (n > 1 && alert_cfg->gw.data_dir[n - 1] == '/')
		n--;
	return (size_t)snprintf(dst, len, "%.*s/%s", (int)n,
	    alert_cfg->gw.data_dir, sub) >= len ? -1 : 0;
}

static void
make_dirs(void)
{
	char	 d[1024];

	if (dir_path(d, sizeof(d), ALERT_DIR) == 0)
		(void)mkdir(d, 02770);
	if (dir_path(d, sizeof(d), SPOOL_DIR) == 0)
		(void)mkdir(d, 02770);
}

/*
 * Claim window w of (alert, event, subject): 1 when this caller won it,
 * 0 when someone did before, -1 on error. The previous window's file
 * goes (the directory holds at most one per subject).
 */
static int
claim(const struct alert_cfg *a, enum alert_event e, const char *subject,
    long long w, char *stem, size_t stemlen)
{
	char	 d[1024], path[1400], *q;
	int	 fd;

	if (dir_path(d, sizeof(d), ALERT_DIR) == -1)
		return -1;
	snprintf(stem, stemlen, "%.200s-%s-%016" PRIx64, a->name,
	    alert_event_names[e], subject_hash(subject));
	/* Section names may hold '/' and ':'. */
	for (q = stem; *q != '\0'; q++)
		if (*q == '/' || *q == ':')
			*q = '_';
	snprintf(path, sizeof(path), "%s/%s-%lld", d, stem, w);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	if (fd == -1 && errno == ENOENT) {
		make_dirs();
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0660);
	}
	if (fd == -1)
		return errno == EEXIST ? 0 : -1;
	(void)!write(fd, subject, strlen(subject));
	close(fd);
	snprintf(path, sizeof(path), "%s/%s-%lld", d, stem, w - 1);
	(void)unlink(path);
	return 1;
}

/* A claim whose event could not be spooled: the next event may try. */
static void
unclaim(const char *stem, long long w)
{
	char	 d[1024], path[1400];

	if (dir_path(d, sizeof(d), ALERT_DIR) == 0) {
		snprintf(path, sizeof(path), "%s/%s-%lld", d, stem, w);
		(void)unlink(path);
	}
}

/* Write text to dir/name whole (a temporary file renamed): 0 or -1. */
static int
spool_write(const char *path, const char *text)
{
	char	 tmp[1500];
	size_t	 n = strlen(text);
	int	 fd, rc = -1;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
	    0660)) == -1)
		return -1;
	if (write(fd, text, n) == (ssize_t)n && rename(tmp, path) == 0)
		rc = 0;
	close(fd);
	if (rc == -1)
		(void)unlink(tmp);
	return rc;
}

static void *
reap(void *arg)
{
	pid_t	 pid = (pid_t)(intptr_t)arg;

	while (waitpid(pid, NULL, 0) == -1 && errno == EINTR)
		;
	return NULL;
}

/*
 * The process environment without a CGI request's headers (HTTP_*: the
 * client's Authorization among them); the strings stay environ's. NULL
 * when out of memory.
 */
static char **
delivery_env(void)
{
	char	**env;
	size_t	  i, n = 0;

	for (i = 0; environ[i] != NULL; i++)
		;
	if ((env = calloc(i + 1, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; environ[i] != NULL; i++)
		if (strncmp(environ[i], "HTTP_", 5) != 0)
			env[n++] = environ[i];
	env[n] = NULL;
	return env;
}

/*
 * Start the delivery process in its own session with stdin and stdout on
 * /dev/null and no descriptor of ours but stderr (the log): a FastCGI
 * connection it held open would hold the client's answer. A detached
 * thread reaps it.
 */
static int
spawn_delivery(const char *file)
{
	posix_spawn_file_actions_t	 fa;
	posix_spawnattr_t		 at;
	pthread_attr_t			 ta;
	pthread_t			 t;
	sigset_t			 none, def;
	pid_t				 pid;
	char				*argv[6], **env;
	int				 rc;

	argv[0] = (char *)"llmgate";
	argv[1] = (char *)"--config";
	argv[2] = alert_cfg->path;
	argv[3] = (char *)"--deliver-alert";
	argv[4] = (char *)file;
	argv[5] = NULL;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	posix_spawnattr_init(&at);
	sigemptyset(&none);
	sigemptyset(&def);
	sigaddset(&def, SIGPIPE);
	sigaddset(&def, SIGTERM);
	sigaddset(&def, SIGINT);
	sigaddset(&def, SIGHUP);
	posix_spawnattr_setsigmask(&at, &none);
	posix_spawnattr_setsigdefault(&at, &def);
	posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSID |
	    POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	env = delivery_env();
	rc = posix_spawn(&pid, "/proc/self/exe", &fa, &at, argv,
	    env != NULL ? env : environ);
	free(env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	pthread_attr_init(&ta);
	pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&ta, 64 * 1024);
	if (pthread_create(&t, &ta, reap, (void *)(intptr_t)pid) != 0)
		log_warn("alert: cannot start a reaper for process %d",
		    (int)pid);
	pthread_attr_destroy(&ta);
	return 0;
}

/* One alert's copy of the event: claimed, spooled, handed over. */
static void
emit_one(const struct alert_cfg *a, enum alert_event e, const char *subject,
    struct json_object *fields, time_t now)
{
	struct json_object	*o = NULL;
	char			 stem[300], d[1024], file[1400], stamp[32];
	struct tm		 tm;
	long long		 w = (long long)now / a->period;
	int			 won;

	if ((won = claim(a, e, subject, w, stem, sizeof(stem))) <= 0) {
		if (won == -1)
			log_error("alert %s: %s: cannot claim the event in "
			    "%s/%s: %s", a->name, alert_event_names[e],
			    alert_cfg->gw.data_dir, ALERT_DIR, strerror(errno));
		return;
	}
	if (json_object_deep_copy(fields, &o, NULL) != 0) {
		log_error("alert %s: %s: out of memory", a->name,
		    alert_event_names[e]);
		unclaim(stem, w);
		return;
	}
	gmtime_r(&now, &tm);
	strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm);
	json_object_object_add(o, "event",
	    json_object_new_string(alert_event_names[e]));
	json_object_object_add(o, "time", json_object_new_string(stamp));
	json_object_object_add(o, "alert", json_object_new_string(a->name));
	json_object_object_add(o, "subject", json_object_new_string(subject));
	if (dir_path(d, sizeof(d), SPOOL_DIR) == -1)
		goto out;
	snprintf(file, sizeof(file), "%s/%s-%lld.json", d, stem, w);
	if (spool_write(file, json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN)) == -1) {
		log_error("alert %s: %s: cannot spool %s: %s", a->name,
		    alert_event_names[e], file, strerror(errno));
		unclaim(stem, w);
		goto out;
	}
	if (spawn_delivery(file) == -1)
		log_error("alert %s: %s: cannot start its delivery: %s "
		    "(spooled in %s)", a->name, alert_event_names[e],
		    strerror(errno), file);
	else
		log_info("alert %s: %s about %s: queued", a->name,
		    alert_event_names[e], subject);
out:
	json_object_put(o);
}

/* To every alert that wants e (and for balance_low, whose line is above balance). */
static void
emit(enum alert_event e, const char *subject, struct json_object *fields,
    money_t balance)
{
	const struct alert_cfg	*a;
	time_t			 now = time(NULL);
	size_t			 i;

	if (fields == NULL)
		return;
	for (i = 0; alert_cfg != NULL && i < alert_cfg->nalerts; i++) {
		a = &alert_cfg->alerts[i];
		if ((a->mask & (1u << e)) && (e != ALERT_BALANCE_LOW ||
		    balance < a->balance_below))
			emit_one(a, e, subject, fields, now);
	}
	json_object_put(fields);
}

void
alert_emit(enum alert_event e, const char *subject, struct json_object *fields)
{
	emit(e, subject, fields, 0);
}

void
alert_balance_low(const char *subject, struct json_object *fields,
    money_t balance)
{
	emit(ALERT_BALANCE_LOW, subject, fields, balance);
}

/* The spooled payload from fd, whole: malloc'ed text, or NULL. */
static char *
read_fd(int fd)
{
	char	*buf;
	ssize_t	 n;

	if ((buf = malloc(PAYLOAD_MAX + 1)) == NULL)
		return NULL;
	n = read(fd, buf, PAYLOAD_MAX);
	if (n <= 0) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	return buf;
}

/*
 * POST text to a's webhook: up to attempts tries, backoff doubling. 0
 * when a 2xx came back.
 */
static int
post(const struct alert_cfg *a, const char *event, const char *text)
{
	struct provider_cfg	 p;
	struct upstream_req	 req;
	struct upstream_resp	 resp;
	struct curl_slist	*h = NULL, *n;
	long			 i, wait_ms = a->backoff_ms;
	CURL			*curl;
	int			 rc = -1;

	memset(&p, 0, sizeof(p));
	p.connect_timeout = a->timeout * 1000;
	p.first_byte_timeout = (int)a->timeout;
	p.idle_timeout = (int)a->timeout;
	p.timeout = a->timeout;
	if ((h = curl_slist_append(NULL, "Content-Type: application/json")) ==
	    NULL)
		return -1;
	if (a->header != NULL) {
		if ((n = curl_slist_append(h, a->header)) == NULL) {
			curl_slist_free_all(h);
			return -1;
		}
		h = n;
	}
	if ((curl = upstream_handle_new()) == NULL) {
		curl_slist_free_all(h);
		return -1;
	}
	for (i = 1; i <= a->attempts && rc == -1; i++) {
		memset(&req, 0, sizeof(req));
		req.url = a->url;
		req.headers = h;
		req.body = text;
		req.body_len = strlen(text);
		req.provider = &p;
		req.max_body = 65536;
		upstream_resp_init(&resp, 65536);
		upstream_perform(curl, &req, &resp);
		if (resp.result == UP_OK) {
			log_info("alert %s: %s delivered (attempt %ld)", a->name,
			    event, i);
			rc = 0;
		} else {
			log_warn("alert %s: %s: attempt %ld of %ld failed: %s",
			    a->name, event, i, a->attempts, resp.error);
			if (i < a->attempts) {
				usleep((useconds_t)wait_ms * 1000);
				wait_ms = wait_ms * 2 > BACKOFF_MAX_MS ?
				    BACKOFF_MAX_MS : wait_ms * 2;
			}
		}
		upstream_resp_free(&resp);
	}
	upstream_handle_free(curl);
	curl_slist_free_all(h);
	return rc;
}

/*
 * Deliver one spool file unless another process holds it: its deliverer
 * keeps an flock on it for as long as it works, so a file nobody holds
 * is an orphan (its deliverer was killed) any deliverer may take. The
 * file is removed (delivered) or renamed .failed under the lock, and a
 * file gone or replaced since it was opened is left alone: each payload
 * is posted by one process. 0 done or not ours; 1 failed.
 */
static int
deliver_file(const struct config *cfg, const char *path)
{
	const struct alert_cfg	*a = NULL;
	struct json_object	*o = NULL, *v;
	struct stat		 st_fd, st_path;
	char			*text = NULL, failed[1500];
	const char		*name = "", *event = "";
	size_t			 i;
	int			 fd, rc = 1;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return errno == ENOENT ? 0 : 1;
	if (flock(fd, LOCK_EX | LOCK_NB) == -1 || fstat(fd, &st_fd) == -1 ||
	    stat(path, &st_path) == -1 || st_fd.st_ino != st_path.st_ino ||
	    st_fd.st_dev != st_path.st_dev) {
		close(fd);
		return 0;
	}
	if ((text = read_fd(fd)) == NULL ||
	    (o = json_tokener_parse(text)) == NULL) {
		log_error("alert: cannot read %s", path);
		goto fail;
	}
	if (json_object_object_get_ex(o, "alert", &v))
		name = json_object_get_string(v);
	if (json_object_object_get_ex(o, "event", &v))
		event = json_object_get_string(v);
	for (i = 0; i < cfg->nalerts; i++)
		if (strcmp(cfg->alerts[i].name, name) == 0)
			a = &cfg->alerts[i];
	if (a == NULL) {
		log_error("alert: %s: no [alert %s] in the config", path, name);
		goto fail;
	}
	if (post(a, event, text) == 0) {
		(void)unlink(path);
		rc = 0;
		goto out;
	}
	log_error("alert %s: %s: given up after %ld attempts", a->name, event,
	    a->attempts);
fail:
	snprintf(failed, sizeof(failed), "%s.failed", path);
	if (rename(path, failed) == 0)
		log_error("alert: the payload is kept in %s", failed);
out:
	close(fd);
	json_object_put(o);
	free(text);
	return rc;
}

/* At most this many orphans are taken by one delivery process. */
#define SWEEP_MAX	32

/* Orphaned spool files (their deliverer died) next to file: delivered too. */
static void
sweep(const struct config *cfg, const char *file)
{
	char		 dir[1400], path[1700];
	const char	*slash = strrchr(file, '/');
	struct dirent	*de;
	size_t		 n;
	DIR		*d;
	int		 taken = 0;

	if (slash == NULL || (size_t)(slash - file) >= sizeof(dir))
		return;
	memcpy(dir, file, (size_t)(slash - file));
	dir[slash - file] = '\0';
	if ((d = opendir(dir)) == NULL)
		return;
	while ((de = readdir(d)) != NULL && taken < SWEEP_MAX) {
		n = strlen(de->d_name);
		if (n < 6 || strcmp(de->d_name + n - 5, ".json") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (strcmp(path, file) == 0)
			continue;
		taken++;
		(void)deliver_file(cfg, path);
	}
	closedir(d);
}

int
alert_deliver(const struct config *cfg, const char *file)
{
	int	 rc;

	rc = deliver_file(cfg, file);
	sweep(cfg, file);
	return rc;
}
