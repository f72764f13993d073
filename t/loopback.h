/*
 * loopback.h: a small HTTP server on 127.0.0.1 for the unit tests that
 * drive the upstream code: an accept loop in a thread that hands each
 * connection to the test's handler (in the loop's thread, or in a thread
 * of its own), and closes it when the handler returns.
 */
#ifndef LLMGATE_LOOPBACK_H
#define LLMGATE_LOOPBACK_H

#include <sys/socket.h>

#include <netinet/in.h>
#include <arpa/inet.h>

#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct loopback {
	int		 fd;
	int		 port;
	pthread_t	 tid;
	int		 stop;		/* under lock */
	pthread_mutex_t	 lock;
	void		(*handle)(int);	/* answers one connection */
	int		 threaded;	/* a thread per connection */
};

/* Listen on a free loopback port; returns the fd (port in *port), or -1. */
static inline int
loopback_listen(int *port)
{
	struct sockaddr_in	 a;
	socklen_t		 len = sizeof(a);
	int			 fd, one = 1;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == -1 ||
	    listen(fd, 64) == -1 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) == -1) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

/*
 * Read one request, head and body (by Content-Length), into in (NUL
 * terminated); returns its length.
 */
static inline size_t
loopback_read(int c, char *in, size_t size)
{
	const char	*end, *cl;
	size_t		 n = 0;
	ssize_t		 r;

	in[0] = '\0';
	while (n < size - 1 && (r = read(c, in + n, size - 1 - n)) > 0) {
		n += (size_t)r;
		in[n] = '\0';
		if ((end = strstr(in, "\r\n\r\n")) != NULL &&
		    ((cl = strstr(in, "Content-Length: ")) == NULL ||
		    n >= (size_t)(end + 4 - in) + strtoul(cl + 16, NULL, 10)))
			break;
	}
	return n;
}

/* Answer status with a JSON body, and say the connection ends. */
static inline void
loopback_reply(int c, int status, const char *body)
{
	char	 out[2048];
	int	 n;

	n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nConnection: close\r\n"
	    "\r\n%s", status, strlen(body), body);
	if (n > 0)
		(void)!write(c, out, (size_t)n < sizeof(out) ? (size_t)n :
		    sizeof(out) - 1);
}

struct loopback_conn {
	struct loopback	*lb;
	int		 c;
};

static inline void *
loopback_conn_main(void *arg)
{
	struct loopback_conn	*k = arg;

	k->lb->handle(k->c);
	close(k->c);
	free(k);
	return NULL;
}

static inline void *
loopback_main(void *arg)
{
	struct loopback		*lb = arg;
	struct loopback_conn	*k;
	struct pollfd		 p;
	pthread_t		 t;
	int			 c, stop;

	for (;;) {
		pthread_mutex_lock(&lb->lock);
		stop = lb->stop;
		pthread_mutex_unlock(&lb->lock);
		if (stop)
			break;
		p.fd = lb->fd;
		p.events = POLLIN;
		if (poll(&p, 1, 50) <= 0 ||
		    (c = accept(lb->fd, NULL, NULL)) == -1)
			continue;
		if (!lb->threaded) {
			lb->handle(c);
			close(c);
		} else if ((k = malloc(sizeof(*k))) == NULL) {
			close(c);
		} else {
			k->lb = lb;
			k->c = c;
			if (pthread_create(&t, NULL, loopback_conn_main, k) ==
			    0)
				pthread_detach(t);
			else {
				close(c);
				free(k);
			}
		}
	}
	return NULL;
}

/* Listen and serve with handle; 0, or -1 when it cannot. */
static inline int
loopback_start(struct loopback *lb, void (*handle)(int), int threaded)
{
	memset(lb, 0, sizeof(*lb));
	pthread_mutex_init(&lb->lock, NULL);
	lb->handle = handle;
	lb->threaded = threaded;
	if ((lb->fd = loopback_listen(&lb->port)) == -1)
		return -1;
	if (pthread_create(&lb->tid, NULL, loopback_main, lb) != 0) {
		close(lb->fd);
		return -1;
	}
	return 0;
}

/* Stop accepting and close (threaded handlers still running go on). */
static inline void
loopback_stop(struct loopback *lb)
{
	pthread_mutex_lock(&lb->lock);
	lb->stop = 1;
	pthread_mutex_unlock(&lb->lock);
	pthread_join(lb->tid, NULL);
	close(lb->fd);
	pthread_mutex_destroy(&lb->lock);
}

#endif
