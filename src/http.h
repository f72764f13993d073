/* http.h: one request and its response over FastCGI or CGI. */
#ifndef LLMGATE_HTTP_H
#define LLMGATE_HTTP_H

#include <stdint.h>
#include <time.h>

#include <fcgiapp.h>
#include <json-c/json.h>

#include "buf.h"
#include "trace.h"

struct config;
struct principal;
struct worker;

enum http_method {
	HTTP_GET,
	HTTP_POST,
	HTTP_HEAD,
	HTTP_DELETE,
	HTTP_OTHER,
	HTTP__MAX
};

/*
 * The error body of a client protocol: (status, message, type, code,
 * param) -> a new object. http_error_object is OpenAI's.
 */
typedef struct json_object *(*http_error_fn)(int, const char *, const char *,
    const char *, const char *);

#define REQUEST_ID_LEN	24
#define PATH_MAX_LEN	1024

/*
 * Everything one request owns; http_request_free() releases all of it at
 * the end of each accept iteration, whether the request succeeded or not.
 */
struct request {
	/* Set by the accept loop. */
	const struct config	*cfg;
	struct worker		*worker;
	FCGX_Request		*fcgx;		/* NULL in CGI mode */

	/* Parsed input. */
	enum http_method	 method;
	const char		*method_name;
	char			 path[PATH_MAX_LEN];
	const char		*query;
	struct buf		 body;
	int			 body_read;	/* read, or drained (CGI) */
	char			 id[REQUEST_ID_LEN + 1];
	struct timespec		 start;
	struct timespec		 wall;		/* store_wall() at start */
	const struct principal	*who;		/* set by the router's key check */
	struct trace		 trace;		/* W3C traceparent: the client's or new */
	int			 trace_in;	/* 1 taken, 0 none sent, -1 malformed */

	/* Response state. */
	int			 status;
	int			 headers_sent;
	int			 client_gone;
	struct buf		 headers;	/* extra "Name: value\r\n" */
	uint64_t		 bytes_out;
	const char		*route;		/* for the access log */
	char			 served[256];	/* for the access log */
	int			 attempts;
	int			 logged;	/* a usage line stands for the access line */
	http_error_fn		 error_object;	/* the route's error shape, or
						   NULL: OpenAI's */
};

void		 http_request_init(struct request *, const struct config *,
		    struct worker *, FCGX_Request *);
void		 http_request_free(struct request *);
const char	*http_param(const struct request *, const char *);
const char	*http_header_in(const struct request *, const char *);
int		 http_parse(struct request *);

/* What http_read_body() found. */
enum http_body {
	HTTP_BODY_OK,
	HTTP_BODY_TOOBIG,	/* larger than max_body: 413 */
	HTTP_BODY_SHORT,	/* shorter than CONTENT_LENGTH said: 400 */
	HTTP_BODY_BADLENGTH,	/* CONTENT_LENGTH is not a length: 400 */
};
enum http_body	 http_read_body(struct request *);

void		 http_header(struct request *, const char *, const char *, ...)
		    __attribute__((format(printf, 3, 4)));
int		 http_begin(struct request *, int, const char *);
int		 http_write(struct request *, const char *, size_t);
int		 http_flush(struct request *);
int		 http_send_json(struct request *, int, struct json_object *);
int		 http_send_raw_json(struct request *, int, const char *, size_t);
int		 http_error(struct request *, int, const char *, const char *,
		    const char *, const char *, ...)
		    __attribute__((format(printf, 6, 7)));
struct json_object *http_error_object(const char *, const char *,
		    const char *, const char *);
/* A 400 invalid_value naming the query parameter or body field; returns 400. */
int		 http_bad_param(struct request *, const char *, const char *,
		    ...) __attribute__((format(printf, 3, 4)));
const char	*http_json_string(struct json_object *);
double		 http_elapsed_ms(const struct request *);
/* Percent-decode n bytes into dst ('+' as a space when plus); -1 when too long or a NUL. */
int		 http_decode(const char *, size_t, char *, size_t, int);
/* The first value of a query parameter, decoded: 1 found, 0 absent, -1 bad. */
int		 http_query(const struct request *, const char *, char *,
		    size_t);

#endif
