/* http.c: request parsing and response writing over one FastCGI/CGI interface. */
#include <sys/random.h>

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "http.h"
#include "log.h"
#include "store.h"

#define HEADERS_MAX	16384
#define DRAIN_MAX	(64LL << 20)	/* refused CGI bodies read up to this */

static const char *const method_names[HTTP__MAX] = {
	"GET", "POST", "HEAD", "DELETE", "OTHER",
};

static const struct {
	int		 code;
	const char	*reason;
} reasons[] = {
	{ 200, "OK" }, { 201, "Created" }, { 400, "Bad Request" }, { 401, "Unauthorized" },
	{ 402, "Payment Required" }, { 403, "Forbidden" },
	{ 404, "Not Found" }, { 405, "Method Not Allowed" },
	{ 408, "Request Timeout" }, { 409, "Conflict" },
	{ 411, "Length Required" }, { 413, "Payload Too Large" },
	{ 415, "Unsupported Media Type" }, { 422, "Unprocessable Entity" },
	{ 429, "Too Many Requests" }, { 500, "Internal Server Error" },
	{ 502, "Bad Gateway" }, { 503, "Service Unavailable" },
	{ 504, "Gateway Timeout" }, { 529, "Site Overloaded" },
};

static void
new_request_id(char *dst)
{
	static const char	 alphabet[] =
	    "abcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char		 raw[REQUEST_ID_LEN];
	ssize_t			 got;
	size_t			 i;

	got = getrandom(raw, sizeof(raw), GRND_NONBLOCK);
	for (i = got > 0 ? (size_t)got : 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)random();
	memcpy(dst, "req_", 4);
	for (i = 4; i < REQUEST_ID_LEN; i++)
		dst[i] = alphabet[raw[i] % (sizeof(alphabet) - 1)];
	dst[REQUEST_ID_LEN] = '\0';
}

void
http_request_init(struct request *r, const struct config *cfg,
    struct worker *w, FCGX_Request *fcgx)
{
	memset(r, 0, sizeof(*r));
	r->cfg = cfg;
	r->worker = w;
	r->fcgx = fcgx;
	buf_init(&r->body, (size_t)cfg->gw.max_body);
	buf_init(&r->headers, HEADERS_MAX);
	clock_gettime(CLOCK_MONOTONIC, &r->start);
	store_wall(&r->wall);
	new_request_id(r->id);
	r->trace_in = trace_begin(&r->trace, http_header_in(r, "traceparent"));
}

void
http_request_free(struct request *r)
{
	buf_free(&r->body);
	buf_free(&r->headers);
}

/* A CGI/FastCGI variable such as REQUEST_METHOD or HTTP_AUTHORIZATION. */
const char *
http_param(const struct request *r, const char *name)
{
	if (r->fcgx != NULL)
		return FCGX_GetParam(name, r->fcgx->envp);
	return getenv(name);
}

/* A request header by its HTTP name ("Authorization"). */
const char *
http_header_in(const struct request *r, const char *name)
{
	char	 var[128];
	size_t	 i, n;

	n = strlen(name);
	if (n + 6 > sizeof(var))
		return NULL;
	memcpy(var, "HTTP_", 5);
	for (i = 0; i < n; i++)
		var[5 + i] = name[i] == '-' ? '_' :
		    (char)toupper((unsigned char)name[i]);
	var[5 + n] = '\0';
	return http_param(r, var);
}

/* Fill method, path (base_path stripped, query removed) and query. */
int
http_parse(struct request *r)
{
	const char	*m, *uri, *q, *base;
	size_t		 n, blen;
	int		 i;

	m = http_param(r, "REQUEST_METHOD");
	r->method = HTTP_OTHER;
	r->method_name = m ? m : "?";
	for (i = 0; m != NULL && i < HTTP_OTHER; i++)
		if (strcmp(m, method_names[i]) == 0)
			r->method = (enum http_method)i;

	if ((uri = http_param(r, "REQUEST_URI")) == NULL || *uri == '\0') {
		/* Plain CGI servers without REQUEST_URI. */
		uri = http_param(r, "PATH_INFO");
		if (uri == NULL || *uri == '\0')
			uri = "/";
	}
	q = strchr(uri, '?');
	n = q ? (size_t)(q - uri) : strlen(uri);
	r->query = q ? q + 1 : "";
	if (q == NULL && (q = http_param(r, "QUERY_STRING")) != NULL)
		r->query = q;	/* PATH_INFO carries no query */
	if (n >= sizeof(r->path))
		return -1;
	memcpy(r->path, uri, n);
	r->path[n] = '\0';
	base = r->cfg->gw.base_path;
	blen = base ? strlen(base) : 0;
	while (blen > 0 && base[blen - 1] == '/')
		blen--;
	if (blen > 0 && strncmp(r->path, base, blen) == 0 &&
	    (r->path[blen] == '/' || r->path[blen] == '\0')) {
		memmove(r->path, r->path + blen, n - blen + 1);
		if (r->path[0] == '\0')
			strcpy(r->path, "/");
	}
	return 0;
}

static ssize_t
raw_read(struct request *r, char *dst, size_t n)
{
	if (r->fcgx != NULL)
		return FCGX_GetStr(dst, (int)n, r->fcgx->in);
	return (ssize_t)fread(dst, 1, n, stdin);
}

/*
 * Read and drop up to n body bytes. A CGI program that answers before it
 * read its input gets its answer lost by some servers (mod_cgid resets the
 * connection when the pipe closes under it), so a refused body is drained.
 */
static void
drain(struct request *r, long long n)
{
	char	 chunk[16384];
	ssize_t	 got;

	while (n > 0 && (got = raw_read(r, chunk, sizeof(chunk))) > 0)
		n -= got;
}

/*
 * CONTENT_LENGTH: -1 when absent or empty (no length given), -2 when it
 * is not a length (anything but 1 to 18 decimal digits: no sign, no
 * blanks, no overflow), else the length.
 */
static long long
content_length(const struct request *r)
{
	const char	*cl = http_param(r, "CONTENT_LENGTH");
	long long	 n = 0;
	size_t		 i;

	if (cl == NULL || *cl == '\0')
		return -1;
	for (i = 0; cl[i] != '\0'; i++) {
		if (i == 18 || cl[i] < '0' || cl[i] > '9')
			return -2;
		n = n * 10 + (cl[i] - '0');
	}
	return n;
}

/* CGI: a body nobody read (refused before it was wanted) is drained. */
static void
unread_body(struct request *r)
{
	long long	 n = content_length(r);

	r->body_read = 1;
	if (n > 0 && n <= DRAIN_MAX)
		drain(r, n);
}

/*
 * Read the body up to max_body. A CONTENT_LENGTH that is no length is
 * refused before anything is read: a CGI cannot know where its body ends.
 */
enum http_body
http_read_body(struct request *r)
{
	char		 chunk[16384];
	long long	 want;
	ssize_t		 got;

	r->body_read = 1;
	if ((want = content_length(r)) == -2)
		return HTTP_BODY_BADLENGTH;
	if (want > (long long)r->body.max) {
		if (r->fcgx == NULL && want <= DRAIN_MAX)
			drain(r, want);
		return HTTP_BODY_TOOBIG;
	}
	for (;;) {
		got = raw_read(r, chunk, sizeof(chunk));
		if (got <= 0)
			break;
		if (buf_append(&r->body, chunk, (size_t)got) != BUF_OK) {
			if (r->fcgx == NULL)
				drain(r, want >= 0 ? want - (long long)r->body.len :
				    DRAIN_MAX);
			return HTTP_BODY_TOOBIG;
		}
		if (want >= 0 && (long long)r->body.len >= want)
			break;
	}
	if (want >= 0 && (long long)r->body.len < want)
		return HTTP_BODY_SHORT;
	return HTTP_BODY_OK;
}

/* Queue a response header; it goes out with http_begin(). */
void
http_header(struct request *r, const char *name, const char *fmt, ...)
{
	char	 value[1024];
	va_list	 ap;
	char	*p;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	/* Never let a value split the header block. */
	for (p = value; *p != '\0'; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	(void)buf_printf(&r->headers, "%s: %s\r\n", name, value);
}

static int
raw_write(struct request *r, const char *p, size_t n)
{
	if (r->client_gone)
		return -1;
	if (r->fcgx != NULL) {
		if (FCGX_PutStr(p, (int)n, r->fcgx->out) != (int)n) {
			r->client_gone = 1;
			return -1;
		}
	} else if (fwrite(p, 1, n, stdout) != n) {
		r->client_gone = 1;
		return -1;
	}
	r->bytes_out += n;
	return 0;
}

static const char *
reason(int code)
{
	size_t	 i;

	for (i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].reason;
	return code < 500 ? "Client Error" : "Server Error";
}

/* Send the status line and headers; the body follows with http_write(). */
int
http_begin(struct request *r, int status, const char *content_type)
{
	struct buf	 h;
	char		 tp[TRACEPARENT_LEN + 1];
	int		 rc;

	if (r->headers_sent)
		return 0;
	if (r->fcgx == NULL && !r->body_read)
		unread_body(r);
	r->status = status;
	r->headers_sent = 1;
	buf_init(&h, HEADERS_MAX * 2);
	buf_printf(&h, "Status: %d %s\r\nContent-Type: %s\r\n"
	    "X-Request-Id: %s\r\n", status, reason(status), content_type, r->id);
	trace_header(&r->trace, tp, sizeof(tp));
	if (tp[0] != '\0')
		buf_printf(&h, "Traceparent: %s\r\n", tp);
	if (strncmp(content_type, "text/event-stream", 17) == 0)
		buf_puts(&h, "Cache-Control: no-cache\r\n"
		    "X-Accel-Buffering: no\r\n");
	if (r->headers.len > 0)
		buf_append(&h, r->headers.data, r->headers.len);
	buf_puts(&h, "\r\n");
	rc = raw_write(r, h.data, h.len);
	buf_free(&h);
	return rc;
}

/* Body bytes; returns -1 once the client is known to be gone. */
int
http_write(struct request *r, const char *p, size_t n)
{
	if (r->method == HTTP_HEAD)
		return r->client_gone ? -1 : 0;
	return raw_write(r, p, n);
}

/* Push buffered output to the web server; -1 means the client is gone. */
int
http_flush(struct request *r)
{
	if (r->client_gone)
		return -1;
	if (r->fcgx != NULL) {
		if (FCGX_FFlush(r->fcgx->out) < 0) {
			r->client_gone = 1;
			return -1;
		}
	} else if (fflush(stdout) != 0) {
		r->client_gone = 1;
		return -1;
	}
	return 0;
}

/* Compact JSON without escaped slashes; owned by the object. */
const char *
http_json_string(struct json_object *o)
{
	return json_object_to_json_string_ext(o,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

int
http_send_raw_json(struct request *r, int status, const char *p, size_t n)
{
	if (r->headers_sent)
		return -1;
	http_header(r, "Content-Length", "%zu", n + 1);
	if (http_begin(r, status, "application/json") == -1)
		return -1;
	if (http_write(r, p, n) == -1 || http_write(r, "\n", 1) == -1)
		return -1;
	return http_flush(r);
}

/* Send o as the whole response; the caller keeps ownership of o. */
int
http_send_json(struct request *r, int status, struct json_object *o)
{
	const char	*s = http_json_string(o);

	return http_send_raw_json(r, status, s, strlen(s));
}

/* The OpenAI error envelope; the caller owns the returned object. */
struct json_object *
http_error_object(const char *message, const char *type, const char *code,
    const char *param)
{
	struct json_object	*err, *o;

	err = json_object_new_object();
	json_object_object_add(err, "message", json_object_new_string(message));
	json_object_object_add(err, "type", json_object_new_string(type));
	json_object_object_add(err, "param",
	    param ? json_object_new_string(param) : NULL);
	json_object_object_add(err, "code",
	    code ? json_object_new_string(code) : NULL);
	o = json_object_new_object();
	json_object_object_add(o, "error", err);
	return o;
}

/*
 * Answer with an OpenAI-shaped error. Returns status so a handler can
 * "return http_error(...)".
 */
int
http_error(struct request *r, int status, const char *type, const char *code,
    const char *param, const char *fmt, ...)
{
	char			 msg[1024];
	struct json_object	*o;
	va_list			 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->headers_sent) {
		log_warn("%s: error after response began: %d %s", r->id,
		    status, msg);
		return status;
	}
	o = r->error_object != NULL ?
	    r->error_object(status, msg, type, code, param) :
	    http_error_object(msg, type, code, param);
	http_send_json(r, status, o);
	json_object_put(o);
	return status;
}

/* The message is cut at 511 bytes (the billing and admin routes' cap). */
int
http_bad_param(struct request *r, const char *param, const char *fmt, ...)
{
	char	 msg[512];
	va_list	 ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	return http_error(r, 400, "invalid_request_error", "invalid_value",
	    param, "%s", msg);
}

double
http_elapsed_ms(const struct request *r)
{
	struct timespec	 now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - r->start.tv_sec) * 1000.0 +
	    (double)(now.tv_nsec - r->start.tv_nsec) / 1e6;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
http_decode(const char *src, size_t n, char *dst, size_t len, int plus)
{
	size_t	 i, o = 0;
	int	 hi, lo;

	for (i = 0; i < n; i++) {
		if (o + 1 >= len)
			return -1;
		if (src[i] == '%' && i + 2 < n &&
		    (hi = hexval(src[i + 1])) >= 0 &&
		    (lo = hexval(src[i + 2])) >= 0) {
			if ((dst[o++] = (char)(hi * 16 + lo)) == '\0')
				return -1;
			i += 2;
		} else
			dst[o++] = plus && src[i] == '+' ? ' ' : src[i];
	}
	dst[o] = '\0';
	return 0;
}

int
http_query(const struct request *r, const char *name, char *dst, size_t len)
{
	const char	*p = r->query, *v;
	size_t		 nlen = strlen(name);

	while (p != NULL && *p != '\0') {
		if (strncmp(p, name, nlen) == 0 &&
		    (p[nlen] == '=' || p[nlen] == '&' || p[nlen] == '\0')) {
			v = p[nlen] == '=' ? p + nlen + 1 : p + nlen;
			return http_decode(v, strcspn(v, "&"), dst, len, 1) == 0 ?
			    1 : -1;
		}
		if ((p = strchr(p, '&')) != NULL)
			p++;
	}
	return 0;
}
