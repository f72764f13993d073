/*
 * streambench.c: the two ends of the streaming benchmark (make bench), one
 * epoll loop each, so that neither is the bottleneck at thousands of
 * concurrent streams on a small machine.
 *
 *   streambench upstream PORT-FILE EVENTS INTERVAL-MS FIRST-MS
 *	An OpenAI-compatible chat upstream on 127.0.0.1 (an ephemeral port,
 *	written to PORT-FILE once it listens): every POST is answered with a
 *	stream of EVENTS content chunks, the first FIRST-MS after the request
 *	arrived, then one every INTERVAL-MS, then a usage chunk and [DONE].
 *	Any other request gets 404. HTTP/1.1 keep-alive.
 *
 *   streambench client [-v] PORT N PATH BODY-FILE KEY [TIMEOUT-S [RAMP-MS]]
 *	N concurrent POSTs of BODY-FILE to 127.0.0.1:PORT/PATH with KEY as
 *	bearer token, all started at once, or the i-th at i * RAMP-MS / N ms
 *	(answers are read meanwhile). For each stream it takes the
 *	time at recv() of the first byte that carries "data:" and of the
 *	end. Prints one line per stream (status, ttfb ms, total ms, bytes)
 *	to stderr with -v, and one summary line to stdout:
 *	  n=N ok=COUNT-200 wall_ms=W startup_ms=S ttfb_p50=P ttfb_p99=Q
 *	  ttfb_max=M total_p50=T
 *	startup_ms is how long the client took to open all N connections.
 *
 * Only loopback, no TLS: a benchmark tool, not a test of HTTP.
 */
#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX		65536	/* a request head and body, upstream side */

static double
now_ms(void)
{
	struct timespec	 ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void
raise_nofile(void)
{
	struct rlimit	 rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int
nonblock(int fd)
{
	return fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Write all of p or fail: loopback buffers are large, events small. */
static int
send_all(int fd, const char *p, size_t n)
{
	ssize_t	 w;

	while (n > 0) {
		w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* --- upstream ------------------------------------------------------------ */

struct up_conn {
	int		 fd;
	char		*buf;
	size_t		 len;
	int		 streaming;	/* answering: events left to send */
	int		 sent;
	int		 close_after;	/* the request said Connection: close */
	double		 due;		/* next event, ms */
	struct up_conn	*next;		/* list of all connections */
};

static int	 up_events, up_interval, up_first;

/* A complete request in c->buf: its total length, 0 if not yet. */
static size_t
up_request_len(struct up_conn *c, int *is_post)
{
	char	*end, *cl;
	size_t	 head, body = 0;

	c->buf[c->len] = '\0';
	if ((end = strstr(c->buf, "\r\n\r\n")) == NULL)
		return 0;
	head = (size_t)(end - c->buf) + 4;
	if ((cl = strcasestr(c->buf, "\r\ncontent-length:")) != NULL && cl < end)
		body = strtoul(cl + 17, NULL, 10);
	*is_post = strncmp(c->buf, "POST ", 5) == 0;
	c->close_after = (cl = strcasestr(c->buf, "\r\nconnection: close")) !=
	    NULL && cl < end;
	return head + body <= c->len ? head + body : 0;
}

static int
up_send_event(struct up_conn *c)
{
	char	 ev[512], chunk[600];
	int	 n, m;

	if (c->sent < up_events)
		n = snprintf(ev, sizeof(ev), "data: {\"id\":\"chatcmpl-bench\","
		    "\"object\":\"chat.completion.chunk\",\"created\":0,"
		    "\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":"
		    "{\"content\":\"tok%d \"},\"finish_reason\":null}]}\n\n",
		    c->sent);
	else
		n = snprintf(ev, sizeof(ev), "data: {\"id\":\"chatcmpl-bench\","
		    "\"object\":\"chat.completion.chunk\",\"created\":0,"
		    "\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},"
		    "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":5,"
		    "\"completion_tokens\":%d,\"total_tokens\":%d}}\n\n"
		    "data: [DONE]\n\n", up_events, up_events + 5);
	m = snprintf(chunk, sizeof(chunk), "%x\r\n%s\r\n%s", n, ev,
	    c->sent < up_events ? "" : "0\r\n\r\n");
	c->sent++;
	return send_all(c->fd, chunk, (size_t)m);
}

static void
up_close(int ep, struct up_conn *c)
{
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
}

static void
up_read(int ep, struct up_conn *c)
{
	static const char notfound[] = "HTTP/1.1 404 Not Found\r\n"
	    "Content-Length: 0\r\n\r\n";
	static const char head[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Type: text/event-stream\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n";
	ssize_t	 r;
	size_t	 need;
	int	 post = 0;

	for (;;) {
		if (c->len >= REQ_MAX) {
			up_close(ep, c);
			return;
		}
		r = recv(c->fd, c->buf + c->len, REQ_MAX - c->len, 0);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0) {
			up_close(ep, c);
			return;
		}
		c->len += (size_t)r;
	}
	if (c->streaming || (need = up_request_len(c, &post)) == 0)
		return;
	memmove(c->buf, c->buf + need, c->len - need);
	c->len -= need;
	if (!post) {
		if (send_all(c->fd, notfound, sizeof(notfound) - 1) == -1)
			up_close(ep, c);
		return;
	}
	if (send_all(c->fd, head, sizeof(head) - 1) == -1) {
		up_close(ep, c);
		return;
	}
	c->streaming = 1;
	c->sent = 0;
	c->due = now_ms() + up_first;
}

static int
run_upstream(int argc, char **argv)
{
	struct epoll_event	 ev, evs[256];
	struct sockaddr_in	 sa;
	struct up_conn		*all = NULL, *c, **pp;
	socklen_t		 sl = sizeof(sa);
	FILE			*fp;
	double			 t, next;
	int			 ls, ep, n, i, fd, one = 1, wait;

	if (argc != 6)
		return 2;
	up_events = atoi(argv[3]);
	up_interval = atoi(argv[4]);
	up_first = atoi(argv[5]);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	ls = socket(AF_INET, SOCK_STREAM, 0);
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(ls, 4096) == -1 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) == -1) {
		perror("streambench upstream: listen");
		return 1;
	}
	nonblock(ls);
	if ((fp = fopen(argv[2], "w")) == NULL)
		return 1;
	fprintf(fp, "%d\n", ntohs(sa.sin_port));
	fclose(fp);
	ep = epoll_create1(0);
	ev.events = EPOLLIN;
	ev.data.ptr = NULL;
	epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
	for (;;) {
		/* Sleep until the next event is due (or a socket wakes us). */
		t = now_ms();
		next = t + 1000;
		for (c = all; c != NULL; c = c->next)
			if (c->fd >= 0 && c->streaming && c->due < next)
				next = c->due;
		wait = next <= t ? 0 : (int)(next - t) + 1;
		n = epoll_wait(ep, evs, 256, wait);
		for (i = 0; i < n; i++) {
			if (evs[i].data.ptr != NULL) {
				up_read(ep, evs[i].data.ptr);
				continue;
			}
			while ((fd = accept4(ls, NULL, NULL,
			    SOCK_NONBLOCK)) >= 0) {
				setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one,
				    sizeof(one));
				if ((c = calloc(1, sizeof(*c))) == NULL ||
				    (c->buf = malloc(REQ_MAX + 1)) == NULL) {
					close(fd);
					free(c);
					continue;
				}
				c->fd = fd;
				c->next = all;
				all = c;
				ev.events = EPOLLIN;
				ev.data.ptr = c;
				epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
			}
		}
		t = now_ms();
		for (c = all; c != NULL; c = c->next) {
			if (c->fd < 0 || !c->streaming || c->due > t)
				continue;
			if (up_send_event(c) == -1) {
				up_close(ep, c);
				continue;
			}
			if (c->sent > up_events && c->close_after)
				up_close(ep, c);
			else if (c->sent > up_events)
				c->streaming = 0;	/* keep-alive */
			else
				c->due += up_interval;
		}
		for (pp = &all; (c = *pp) != NULL;) {
			if (c->fd >= 0) {
				pp = &c->next;
				continue;
			}
			*pp = c->next;
			free(c->buf);
			free(c);
		}
	}
}

/* --- client -------------------------------------------------------------- */

struct cl_conn {
	int		 fd;
	int		 status;	/* HTTP status, 0 before the head */
	double		 start, first, end;	/* ms; 0: not yet */
	size_t		 bytes;
	char		 tail[8];	/* last bytes: "data:" across reads */
};

static int
cmp_double(const void *a, const void *b)
{
	double	 x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static double
pct(double *v, int n, double p)
{
	int	 i;

	if (n == 0)
		return -1;
	i = (int)(p / 100.0 * n + 0.999999) - 1;
	return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

static void
cl_read(struct cl_conn *c, double t)
{
	char	 buf[16384 + 8];
	ssize_t	 r;
	size_t	 k;

	for (;;) {
		r = recv(c->fd, buf + 8, sizeof(buf) - 8, 0);
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			c->end = t;
			close(c->fd);
			c->fd = -1;
			return;
		}
		if (c->bytes == 0 && r > 12 && memcmp(buf + 8, "HTTP/1.", 7) == 0)
			c->status = atoi(buf + 8 + 9);
		memcpy(buf, c->tail, 8);
		if (c->first == 0 && memmem(buf, (size_t)r + 8, "data:", 5))
			c->first = t;
		k = (size_t)r + 8;
		memcpy(c->tail, buf + k - 8, 8);
		c->bytes += (size_t)r;
	}
}

static int
run_client(int argc, char **argv)
{
	struct epoll_event	 ev, *evs;
	struct sockaddr_in	 sa;
	struct cl_conn		*cs, *c;
	struct stat		 st;
	double			 t0, t, ramp, started, deadline, *ttfb, *tot;
	double			 wall = 0;
	char			*body, *req;
	size_t			 reqlen;
	int			 port, n, i, j, k, ep, open_n, ok = 0, nt = 0;
	int			 nl = 0;
	int			 verbose, one = 1, fd;

	verbose = argc > 2 && strcmp(argv[2], "-v") == 0;
	if (verbose) {
		argv++;
		argc--;
	}
	if (argc < 7 || argc > 9)
		return 2;
	port = atoi(argv[2]);
	n = atoi(argv[3]);
	raise_nofile();
	signal(SIGPIPE, SIG_IGN);
	if ((fd = open(argv[5], O_RDONLY)) == -1 || fstat(fd, &st) == -1)
		return 1;
	body = malloc((size_t)st.st_size + 1);
	if (body == NULL || read(fd, body, (size_t)st.st_size) != st.st_size)
		return 1;
	close(fd);
	req = malloc((size_t)st.st_size + 1024);
	reqlen = (size_t)snprintf(req, 1024, "POST %s HTTP/1.1\r\nHost: "
	    "127.0.0.1\r\nAuthorization: Bearer %s\r\nContent-Type: "
	    "application/json\r\nContent-Length: %lld\r\nConnection: close"
	    "\r\n\r\n", argv[4], argv[6], (long long)st.st_size);
	memcpy(req + reqlen, body, (size_t)st.st_size);
	reqlen += (size_t)st.st_size;

	cs = calloc((size_t)n, sizeof(*cs));
	evs = calloc((size_t)n, sizeof(*evs));
	ttfb = calloc((size_t)n, sizeof(*ttfb));
	tot = calloc((size_t)n, sizeof(*tot));
	ep = epoll_create1(0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = htons((uint16_t)port);
	t0 = now_ms();
	deadline = t0 + 1000.0 * (argc >= 8 ? atoi(argv[7]) : 120);
	ramp = argc >= 9 ? atof(argv[8]) : 0;
	/* Blocking connect and send: loopback, the request fits the buffer. */
	for (i = 0; i < n; i++) {
		c = &cs[i];
		while ((t = now_ms()) < t0 + ramp * i / n) {
			k = epoll_wait(ep, evs, n, (int)(t0 + ramp * i / n - t));
			for (j = 0; j < k; j++)
				cl_read(evs[j].data.ptr, now_ms());
		}
		c->start = now_ms();
		c->fd = socket(AF_INET, SOCK_STREAM, 0);
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
		    send_all(c->fd, req, reqlen) == -1) {
			close(c->fd);
			c->fd = -1;
			c->end = now_ms();
			continue;
		}
		nonblock(c->fd);
		ev.events = EPOLLIN;
		ev.data.ptr = c;
		epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	}
	started = now_ms();
	for (open_n = n; open_n > 0 && now_ms() < deadline;) {
		k = epoll_wait(ep, evs, n, 100);
		for (i = 0; i < k; i++) {
			c = evs[i].data.ptr;
			cl_read(c, now_ms());
		}
		for (open_n = 0, i = 0; i < n; i++)
			open_n += cs[i].fd >= 0;
	}
	for (i = 0; i < n; i++) {
		c = &cs[i];
		if (c->fd >= 0) {	/* timed out */
			close(c->fd);
			c->status = -1;
		}
		if (verbose)
			fprintf(stderr, "%d %.1f %.1f %zu\n", c->status,
			    c->first ? c->first - c->start : -1,
			    c->end ? c->end - c->start : -1, c->bytes);
		if (c->status == 200 && c->first > 0) {
			ok++;
			ttfb[nt++] = c->first - c->start;
			tot[nl++] = c->end - c->start;
		}
		if (c->end - t0 > wall)
			wall = c->end - t0;
	}
	qsort(ttfb, (size_t)nt, sizeof(*ttfb), cmp_double);
	qsort(tot, (size_t)nl, sizeof(*tot), cmp_double);
	printf("n=%d ok=%d wall_ms=%.0f startup_ms=%.0f ttfb_p50=%.1f "
	    "ttfb_p99=%.1f ttfb_max=%.1f total_p50=%.0f\n", n, ok, wall,
	    started - t0, pct(ttfb, nt, 50), pct(ttfb, nt, 99),
	    nt ? ttfb[nt - 1] : -1, pct(tot, nl, 50));
	return ok == n ? 0 : 1;
}

int
main(int argc, char **argv)
{
	int	 rc = 2;

	if (argc > 1 && strcmp(argv[1], "upstream") == 0)
		rc = run_upstream(argc, argv);
	else if (argc > 1 && strcmp(argv[1], "client") == 0)
		rc = run_client(argc, argv);
	if (rc == 2)
		fprintf(stderr, "usage: streambench upstream PORT-FILE EVENTS "
		    "INTERVAL-MS FIRST-MS\n"
		    "       streambench client [-v] PORT N PATH BODY-FILE KEY "
		    "[TIMEOUT-S [RAMP-MS]]\n");
	return rc;
}
