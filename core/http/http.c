/* http.c - HTTP/1.1 connections: parsing with http-parser, one request at
 * a time, answers, keep-alive, limits and timeouts (see http.h). */
#include "http.h"
#include "http_route.h"
#include "listener.h"
#include "log.h"
#include "tls.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <unistd.h>

/* A file answer keeps at most this much queued on its connection. */
#define FILE_WINDOW (192 * 1024)
#define FILE_PIECE (64 * 1024)
/* A request refused before its body was read: what the client still
 * sends is read and dropped for a while, so that the answer reaches it
 * rather than a reset (a close with unread bytes sends RST). */
#define LINGER_SECONDS 5.
#define LINGER_BYTES (4 * 1024 * 1024)

enum hc_state {
	HC_IDLE,		/* between requests (keep-alive) */
	HC_HEAD,		/* reading a request's head */
	HC_BODY,		/* reading its body */
	HC_ANSWERING,		/* the request waits for its answer */
	HC_SENDING,		/* a file answer is being sent */
	HC_LINGER,		/* answered and closing: input is dropped */
};

struct http_conn {
	struct conn *c;			/* NULL once gone or taken */
	http_parser parser;
	enum hc_state state;
	struct http_request req;
	struct sbuf url, field, value;	/* pieces as the parser hands them */
	bool in_value;			/* the last piece was a value */
	bool complete;			/* the request is whole */
	bool head_pending;		/* its head waits for the head handler */
	bool in_head;			/* the head handler runs */
	bool expect_continue;		/* the client waits for "100 Continue" */
	bool secure;
	int error;			/* a status to refuse the request with */
	size_t head_bytes;
	struct sbuf pending;		/* bytes after the answered request */
	ev_timer timer;			/* the state's timeout */
	ev_timer later;			/* 0 s: pending input, or the free */
	bool dead;
	unsigned long served;		/* requests answered */
	int file_fd;			/* a file answer's, or -1 */
	uint64_t file_off, file_left;
	bool file_keep;			/* keep-alive after it */
	size_t lingered;		/* bytes dropped in HC_LINGER */
	struct http_conn *next, *prev;
};

static struct http_config cfg = {
	.max_header_size = 16 * 1024,
	.max_headers = 100,
	.max_content_size = 10 * 1024 * 1024,
	.header_timeout = 10,
	.request_timeout = 60,
	.keepalive_timeout = 20,
};
static struct http_stats stats;
static struct http_conn *all_conns;
static const bool plain_port = false, tls_port = true;

struct opened {
	char *iface;
	int port;
	struct opened *next;
};
static struct opened *opened_ports;

static void on_data(struct conn *c, const char *buf, size_t len);
static void on_closed(struct conn *c, const char *reason);
static void on_drained(struct conn *c);
static void fill_peer(struct http_conn *hc);

static const struct conn_events http_conn_events = {
	.data = on_data,
	.closed = on_closed,
	.drained = on_drained,
};

const struct http_stats *http_stats(void)
{
	return &stats;
}

const struct http_config *http_config(void)
{
	return &cfg;
}

void http_configure(const struct http_config *c)
{
	cfg = *c;
}

const char *http_reason(int status)
{
	switch (status) {
	case 101: return "Switching Protocols";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 206: return "Partial Content";
	case 301: return "Moved Permanently";
	case 302: return "Found";
	case 304: return "Not Modified";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 415: return "Unsupported Media Type";
	case 416: return "Range Not Satisfiable";
	case 426: return "Upgrade Required";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 507: return "Insufficient Storage";
	case 503: return "Service Unavailable";
	default: return status < 300 ? "OK" : status < 400 ? "Redirect" :
		 status < 500 ? "Client Error" : "Server Error";
	}
}

const char *http_header(const struct http_request *req, const char *name)
{
	for (size_t i = 0; i < req->n_headers; i++)
		if (strcmp(req->headers[i].name, name) == 0)
			return req->headers[i].value;
	return NULL;
}

/* --- the request ------------------------------------------------------- */

/* The request is over: its holder is told, its memory goes. */
static void request_clear(struct http_conn *hc)
{
	struct http_request *r = &hc->req;

	if (r->done) {
		void (*done)(struct http_request *, void *) = r->done;
		r->done = NULL;
		done(r, r->done_data);
	}
	for (size_t i = 0; i < r->n_headers; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->target);
	free(r->path);
	free(r->query);
	free(r->host);
	free(r->extra_headers);
	sbuf_free(&r->body);
	if (r->body_fd >= 0)
		close(r->body_fd);
	if (r->body_path && !r->body_keep && unlink(r->body_path) != 0 && errno != ENOENT)
		log_warn("HTTP: cannot remove %s: %s", r->body_path, strerror(errno));
	free(r->body_path);
	memset(r, 0, sizeof(*r));
	r->hc = hc;
	r->body_fd = -1;
	sbuf_reset(&hc->url);
	sbuf_reset(&hc->field);
	sbuf_reset(&hc->value);
	hc->in_value = false;
	hc->complete = false;
	hc->head_pending = false;
	hc->expect_continue = false;
	hc->error = 0;
	hc->head_bytes = 0;
	fill_peer(hc);
}

static void set_timer(struct http_conn *hc, double seconds)
{
	ev_timer_stop(conn_loop(), &hc->timer);
	if (seconds > 0) {
		ev_timer_set(&hc->timer, seconds, 0.);
		ev_timer_start(conn_loop(), &hc->timer);
	}
}

static int head_grows(struct http_conn *hc, size_t len)
{
	hc->head_bytes += len;
	if (hc->head_bytes > cfg.max_header_size) {
		hc->error = 431;
		return -1;
	}
	return 0;
}

static int on_message_begin(http_parser *p)
{
	struct http_conn *hc = p->data;

	if (hc->state == HC_IDLE) {
		hc->state = HC_HEAD;
		if (hc->served)	/* a new connection's clock runs already */
			set_timer(hc, cfg.header_timeout);
	}
	return 0;
}

static int on_url(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;

	sbuf_add(&hc->url, at, len);
	return head_grows(hc, len);
}

static int header_done(struct http_conn *hc)
{
	struct http_request *r = &hc->req;

	if (!hc->in_value)
		return 0;
	if (r->n_headers >= cfg.max_headers) {
		hc->error = 431;
		return -1;
	}
	if (!r->n_headers || !(r->n_headers & (r->n_headers - 1)))
		r->headers = xrealloc(r->headers, (r->n_headers ? r->n_headers * 2 : 8) *
				      sizeof(*r->headers));
	struct http_header *h = &r->headers[r->n_headers++];
	h->name = xstrndup(hc->field.p ? hc->field.p : "", hc->field.len);
	for (char *c = h->name; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	h->value = xstrndup(hc->value.p ? hc->value.p : "", hc->value.len);
	sbuf_reset(&hc->field);
	sbuf_reset(&hc->value);
	hc->in_value = false;
	return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;

	if (header_done(hc) != 0)
		return -1;
	sbuf_add(&hc->field, at, len);
	return head_grows(hc, len);
}

static int on_header_value(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;

	hc->in_value = true;
	sbuf_add(&hc->value, at, len);
	return head_grows(hc, len);
}

/* Host without the port ("[::1]:5280" -> "::1"), lowercased. */
static char *host_of(const char *v)
{
	const char *end;
	char *h;

	if (!v)
		return xstrdup("");
	if (*v == '[') {
		end = strchr(v, ']');
		v++;
		if (!end)
			end = v + strlen(v);
	} else {
		end = strchr(v, ':');
		if (!end)
			end = v + strlen(v);
	}
	h = xstrndup(v, (size_t)(end - v));
	for (char *c = h; *c; c++)
		*c = (char)tolower((unsigned char)*c);
	return h;
}

static int parse_target(struct http_request *r, const char *url, size_t len, bool connect)
{
	struct http_parser_url u;

	http_parser_url_init(&u);
	if (http_parser_parse_url(url, len, connect, &u) != 0)
		return -1;
	if (u.field_set & (1 << UF_PATH))
		r->path = xstrndup(url + u.field_data[UF_PATH].off, u.field_data[UF_PATH].len);
	else
		r->path = xstrdup("/");
	if (u.field_set & (1 << UF_QUERY))
		r->query = xstrndup(url + u.field_data[UF_QUERY].off, u.field_data[UF_QUERY].len);
	return 0;
}

/* The announced body fits where it goes; the client may send it. */
static int body_may_come(struct http_conn *hc)
{
	const struct http_request *r = &hc->req;
	uint64_t limit = r->body_fd >= 0 ? r->body_limit : cfg.max_content_size;

	if ((hc->parser.flags & F_CONTENTLENGTH) && hc->parser.content_length > limit) {
		hc->error = 413;
		return -1;
	}
	if (hc->expect_continue && hc->c)
		conn_send(hc->c, "HTTP/1.1 100 Continue\r\n\r\n", 25);
	return 0;
}

static int write_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int on_headers_complete(http_parser *p)
{
	struct http_conn *hc = p->data;
	struct http_request *r = &hc->req;

	if (header_done(hc) != 0)
		return -1;
	snprintf(r->method, sizeof(r->method), "%s",
		 http_method_str((enum http_method)p->method));
	r->target = xstrndup(hc->url.p ? hc->url.p : "", hc->url.len);
	if (parse_target(r, r->target, hc->url.len, p->method == HTTP_CONNECT) != 0) {
		hc->error = 400;
		return -1;
	}
	r->host = host_of(http_header(r, "host"));
	r->http_minor = p->http_minor;
	r->keep_alive = http_should_keep_alive(p) && !p->upgrade;
	const char *expect = http_header(r, "expect");
	hc->expect_continue = expect && strcasecmp(expect, "100-continue") == 0;
	hc->state = HC_BODY;
	set_timer(hc, cfg.request_timeout);
	if (http_route_wants_head(r)) {	/* run_head, once the parser returned */
		hc->head_pending = true;
		http_parser_pause(p, 1);
		return 0;
	}
	return body_may_come(hc);
}

static int on_body(http_parser *p, const char *at, size_t len)
{
	struct http_conn *hc = p->data;
	struct http_request *r = &hc->req;
	uint64_t limit = r->body_fd >= 0 ? r->body_limit : cfg.max_content_size;
	int e;

	if (r->body_length + len > limit) {
		hc->error = 413;
		return -1;
	}
	r->body_length += len;
	if (r->body_fd < 0) {
		sbuf_add(&r->body, at, len);
		return 0;
	}
	if ((e = write_all(r->body_fd, at, len)) != 0) {
		log_warn("HTTP: cannot write %s: %s", r->body_path, strerror(-e));
		hc->error = e == -ENOSPC || e == -EDQUOT ? 507 : 500;
		return -1;
	}
	/* a body going to a file may take long: it must keep moving */
	set_timer(hc, cfg.request_timeout);
	return 0;
}

static int on_message_complete(http_parser *p)
{
	struct http_conn *hc = p->data;

	hc->complete = true;
	if (hc->req.body_fd >= 0) {
		close(hc->req.body_fd);
		hc->req.body_fd = -1;
	}
	http_parser_pause(p, 1);	/* the rest waits for the answer */
	return 0;
}

static const http_parser_settings parser_settings = {
	.on_message_begin = on_message_begin,
	.on_url = on_url,
	.on_header_field = on_header_field,
	.on_header_value = on_header_value,
	.on_headers_complete = on_headers_complete,
	.on_body = on_body,
	.on_message_complete = on_message_complete,
};

/* --- answers ------------------------------------------------------------- */

/* The connection goes: the HTTP side forgets it; hc is freed from the
 * loop, never under a caller. */
static void hc_kill(struct http_conn *hc)
{
	if (hc->dead)
		return;
	hc->dead = true;
	ev_timer_stop(conn_loop(), &hc->timer);
	ev_timer_stop(conn_loop(), &hc->later);
	if (hc->file_fd >= 0)
		close(hc->file_fd);
	hc->file_fd = -1;
	request_clear(hc);
	ev_timer_set(&hc->later, 0., 0.);
	ev_timer_start(conn_loop(), &hc->later);
}

static void answer_sent(struct http_conn *hc, bool keep);

static void put_head(struct sbuf *b, struct http_request *req, int status,
		     const char *headers, size_t len, bool keep)
{
	sbuf_printf(b, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
	if (status >= 200 && status != 204 && status != 304)
		sbuf_printf(b, "Content-Length: %zu\r\n", len);
	if (status != 101) {
		if (!keep)
			sbuf_adds(b, "Connection: close\r\n");
		else if (req->http_minor == 0)
			sbuf_adds(b, "Connection: keep-alive\r\n");
	}
	if (headers)
		sbuf_adds(b, headers);
	if (req->extra_headers)
		sbuf_adds(b, req->extra_headers);
	sbuf_adds(b, "\r\n");
}

int http_respond(struct http_request *req, int status, const char *headers,
		 const char *body, size_t len)
{
	struct http_conn *hc = req->hc;
	struct conn *c = hc ? hc->c : NULL;
	bool keep = req->keep_alive && hc && !hc->error && !hc->in_head;
	struct sbuf b;

	if (req->answered)
		return -EALREADY;
	if (!c || hc->dead)
		return -EPIPE;
	req->answered = true;
	if (status < 100 || status > 999)
		status = 500;
	stats.responses[status / 100 <= 5 ? status / 100 : 5]++;
	sbuf_init(&b);
	put_head(&b, req, status, headers, len, keep);
	if (strcmp(req->method, "HEAD") != 0 && len)
		sbuf_add(&b, body, len);
	conn_send(c, b.p, b.len);
	sbuf_free(&b);
	log_debug("%s:%d: HTTP %s %s -> %d", req->ip, req->port, req->method,
		  req->target ? req->target : "?", status);
	/* refused with its body unread: linger before closing */
	bool linger = !keep && hc->state == HC_BODY && !hc->complete && hc->error != 408;
	request_clear(hc);
	if (linger) {
		hc->state = HC_LINGER;
		hc->lingered = 0;
		conn_hold(c, false);
		set_timer(hc, LINGER_SECONDS);
		return 0;
	}
	answer_sent(hc, keep);
	return 0;
}

/* Queues the file answer's next pieces, up to FILE_WINDOW queued; the
 * rest when the connection has drained (on_drained). */
static void pump(struct http_conn *hc)
{
	static char buf[FILE_PIECE];

	while (hc->file_left && hc->c && !hc->dead && hc->c->wq_bytes < FILE_WINDOW) {
		size_t want = hc->file_left < sizeof(buf) ? (size_t)hc->file_left : sizeof(buf);
		ssize_t n = pread(hc->file_fd, buf, want, (off_t)hc->file_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			log_warn("HTTP: a file answer could not be read: %s",
				 n < 0 ? strerror(errno) : "it is shorter than announced");
			conn_close(hc->c, "file read error");
			return;
		}
		hc->file_off += (uint64_t)n;
		hc->file_left -= (uint64_t)n;
		conn_send(hc->c, buf, (size_t)n);
		set_timer(hc, cfg.request_timeout);	/* the peer must keep reading */
	}
	if (hc->file_left || !hc->c || hc->dead)
		return;
	close(hc->file_fd);
	hc->file_fd = -1;
	answer_sent(hc, hc->file_keep);
}

int http_respond_file(struct http_request *req, int status, const char *headers,
		      int fd, uint64_t offset, uint64_t len)
{
	struct http_conn *hc = req->hc;
	struct conn *c = hc ? hc->c : NULL;
	bool keep = req->keep_alive && hc && !hc->error && !hc->in_head;
	struct sbuf b;

	if (req->answered || !c || hc->dead) {
		close(fd);
		return req->answered ? -EALREADY : -EPIPE;
	}
	req->answered = true;
	stats.responses[status / 100 <= 5 ? status / 100 : 5]++;
	stats.files_sent++;
	sbuf_init(&b);
	put_head(&b, req, status, headers, (size_t)len, keep);
	conn_send(c, b.p, b.len);
	sbuf_free(&b);
	log_debug("%s:%d: HTTP %s %s -> %d (a file, %llu bytes)", req->ip, req->port,
		  req->method, req->target ? req->target : "?", status,
		  (unsigned long long)len);
	if (strcmp(req->method, "HEAD") == 0)
		len = 0;
	request_clear(hc);
	hc->state = HC_SENDING;
	hc->file_fd = fd;
	hc->file_off = offset;
	hc->file_left = len;
	hc->file_keep = keep;
	posix_fadvise(fd, (off_t)offset, (off_t)len, POSIX_FADV_SEQUENTIAL);
	pump(hc);
	return 0;
}

int http_body_to_file(struct http_request *req, const char *path, uint64_t limit)
{
	struct http_conn *hc = req->hc;
	int fd;

	if (!hc || !hc->in_head || req->body_fd >= 0 || req->answered)
		return -EINVAL;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
	if (fd < 0)
		return -errno;
	req->body_fd = fd;
	req->body_path = xstrdup(path);
	req->body_limit = limit;
	stats.bodies_to_file++;
	return 0;
}

void http_body_keep(struct http_request *req)
{
	req->body_keep = true;
}

/* An answer went out whole: the next request, or the close. */
static void answer_sent(struct http_conn *hc, bool keep)
{
	struct conn *c = hc->c;

	hc->served++;
	if (!keep) {
		conn_close(c, "HTTP request answered");
		return;
	}
	hc->state = HC_IDLE;
	set_timer(hc, cfg.keepalive_timeout);
	http_parser_pause(&hc->parser, 0);
	if (hc->pending.len) {	/* a pipelined request: from the loop */
		ev_timer_set(&hc->later, 0., 0.);
		ev_timer_start(conn_loop(), &hc->later);
	} else {
		conn_hold(c, false);
	}
}

int http_respond_status(struct http_request *req, int status, const char *text)
{
	struct sbuf b;
	int r;

	sbuf_init(&b);
	sbuf_printf(&b, "%d %s%s%s\n", status, http_reason(status),
		    text ? ": " : "", text ? text : "");
	r = http_respond(req, status, "Content-Type: text/plain; charset=utf-8\r\n",
			 b.p, b.len);
	sbuf_free(&b);
	return r;
}

void http_watch(struct http_request *req)
{
	struct http_conn *hc = req->hc;

	if (hc && hc->c && !hc->dead && !req->answered &&
	    hc->pending.len < cfg.max_header_size)
		conn_hold(hc->c, false);
}

struct conn *http_upgrade(struct http_request *req, const char *headers,
			  const char **rest, size_t *rest_len)
{
	struct http_conn *hc = req->hc;
	struct conn *c = hc ? hc->c : NULL;
	struct sbuf b;

	if (!c || hc->dead || req->answered)
		return NULL;
	req->answered = true;
	stats.responses[1]++;
	stats.upgrades++;
	sbuf_init(&b);
	put_head(&b, req, 101, headers, 0, true);
	conn_send(c, b.p, b.len);
	sbuf_free(&b);
	log_debug("%s:%d: HTTP %s %s -> 101", req->ip, req->port, req->method,
		  req->target);
	*rest = hc->pending.p;
	*rest_len = hc->pending.len;
	hc->c = NULL;
	conn_hold(c, false);
	hc_kill(hc);	/* pending stays until the loop frees hc */
	return c;
}

/* --- input --------------------------------------------------------------- */

/* Refuses what could not be read as a request, and closes. */
static void refuse(struct http_conn *hc, int status, const char *text)
{
	struct http_request *req = &hc->req;

	req->keep_alive = false;
	if (!hc->error)
		hc->error = status;
	if (!req->answered)
		http_respond_status(req, status, text);
	else if (hc->c)
		conn_close(hc->c, text);
}

static int parse_error_status(struct http_conn *hc)
{
	enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);

	if (hc->error)
		return hc->error;
	if (e == HPE_HEADER_OVERFLOW)
		return 431;
	if (e == HPE_INVALID_METHOD)
		return 501;
	return 400;
}

static void dispatch(struct http_conn *hc)
{
	struct http_request *req = &hc->req;

	hc->state = HC_ANSWERING;
	ev_timer_stop(conn_loop(), &hc->timer);
	stats.requests++;
	http_route_dispatch(req);
}

static void feed(struct http_conn *hc, const char *buf, size_t len);

/* The head is in: its route's head handler may refuse the request or
 * direct its body; then the parser goes on with the bytes after the
 * head (rest: valid for this call). */
static void run_head(struct http_conn *hc, const char *rest, size_t len)
{
	struct http_request *req = &hc->req;

	hc->head_pending = false;
	hc->in_head = true;
	http_route_dispatch_head(req);
	hc->in_head = false;
	if (hc->dead || !hc->c || req->answered || hc->state != HC_BODY)
		return;		/* refused (and lingering), or gone */
	if (body_may_come(hc) != 0) {
		refuse(hc, hc->error, "the request body is too large");
		return;
	}
	http_parser_pause(&hc->parser, 0);
	feed(hc, rest, len);
}

/* Parses what came; a whole request is dispatched once the parser has
 * returned (handlers may enter Lua). */
static void feed(struct http_conn *hc, const char *buf, size_t len)
{
	size_t n = http_parser_execute(&hc->parser, &parser_settings, buf, len);
	enum http_errno e = HTTP_PARSER_ERRNO(&hc->parser);

	if (hc->dead || !hc->c)
		return;
	if (e != HPE_OK && e != HPE_PAUSED) {
		int status = parse_error_status(hc);
		log_debug("%s:%d: bad HTTP request (%s): %d", hc->c->ip, hc->c->port,
			  http_errno_name(e), status);
		refuse(hc, status, status == 431 ? "the request head is too large" :
		       status == 413 ? "the request body is too large" :
		       http_errno_description(e));
		return;
	}
	if (hc->head_pending) {
		run_head(hc, buf + n, len - n);
		return;
	}
	if (!hc->complete) {
		if (hc->parser.upgrade) {	/* upgrade without a whole request */
			refuse(hc, 400, "bad upgrade request");
		}
		return;
	}
	sbuf_reset(&hc->pending);
	if (n < len)
		sbuf_add(&hc->pending, buf + n, len - n);
	conn_hold(hc->c, true);
	dispatch(hc);
}

static void on_data(struct conn *c, const char *buf, size_t len)
{
	struct http_conn *hc = c->owner;

	if (!hc || hc->dead)
		return;
	if (hc->state == HC_ANSWERING || hc->state == HC_SENDING) {
		/* watched: it waits its turn */
		sbuf_add(&hc->pending, buf, len);
		if (hc->pending.len >= cfg.max_header_size)
			conn_hold(c, true);
		return;
	}
	if (hc->state == HC_LINGER) {
		hc->lingered += len;
		if (hc->lingered > LINGER_BYTES)
			conn_close(c, "HTTP refused request: too much body after the answer");
		return;
	}
	feed(hc, buf, len);
}

/* The loop's turn: free a dead connection, or parse what waited. */
static void on_later(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conn *hc = container_of(t, struct http_conn, later);
	struct sbuf in;

	if (hc->dead) {
		if (hc->prev)
			hc->prev->next = hc->next;
		else
			all_conns = hc->next;
		if (hc->next)
			hc->next->prev = hc->prev;
		stats.connections--;
		sbuf_free(&hc->url);
		sbuf_free(&hc->field);
		sbuf_free(&hc->value);
		sbuf_free(&hc->pending);
		free(hc);
		return;
	}
	if (hc->state == HC_SENDING && hc->c) {
		pump(hc);
		return;
	}
	if (hc->state != HC_IDLE || !hc->c)
		return;
	in = hc->pending;
	sbuf_init(&hc->pending);
	conn_hold(hc->c, false);
	feed(hc, in.p, in.len);
	sbuf_free(&in);
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct http_conn *hc = container_of(t, struct http_conn, timer);

	if (!hc->c || hc->dead)
		return;
	if (hc->state == HC_IDLE && hc->served) {
		conn_close(hc->c, "HTTP keep-alive timeout");
		return;
	}
	if (hc->state == HC_LINGER) {
		conn_close(hc->c, "HTTP request refused");
		return;
	}
	if (hc->state == HC_SENDING) {
		log_info("%s:%d: HTTP peer not reading a file answer", hc->c->ip, hc->c->port);
		conn_close(hc->c, "HTTP answer not read in time");
		return;
	}
	log_info("%s:%d: HTTP request not received in time", hc->c->ip, hc->c->port);
	refuse(hc, 408, "the request did not arrive in time");
}

/* The peer took what was queued: a file answer goes on from the loop. */
static void on_drained(struct conn *c)
{
	struct http_conn *hc = c->owner;

	if (hc && !hc->dead && hc->state == HC_SENDING && !ev_is_active(&hc->later)) {
		ev_timer_set(&hc->later, 0., 0.);
		ev_timer_start(conn_loop(), &hc->later);
	}
}

static void on_closed(struct conn *c, const char *reason)
{
	struct http_conn *hc = c->owner;

	if (!hc)
		return;
	c->owner = NULL;
	hc->c = NULL;
	hc_kill(hc);
}

static void http_accept(int fd, const char *ip, int port, void *ctx)
{
	bool tls = *(const bool *)ctx;
	struct http_conn *hc = xcalloc(1, sizeof(*hc));

	hc->c = conn_new(fd, ip, port, &http_conn_events, hc);
	hc->secure = tls;
	http_parser_init(&hc->parser, HTTP_REQUEST);
	hc->parser.data = hc;
	hc->req.hc = hc;
	hc->req.body_fd = -1;
	hc->file_fd = -1;
	fill_peer(hc);
	ev_timer_init(&hc->timer, on_timeout, 0., 0.);
	ev_timer_init(&hc->later, on_later, 0., 0.);
	hc->state = HC_IDLE;
	/* A new connection must send a request head in time. */
	set_timer(hc, cfg.header_timeout);
	hc->next = all_conns;
	if (all_conns)
		all_conns->prev = hc;
	all_conns = hc;
	stats.connections++;
	stats.accepted++;
	log_debug("%s:%d: HTTP connection%s", ip, port, tls ? " (TLS)" : "");
	if (tls) {
		SSL_CTX *ctx_tls = tls_default_ctx();
		if (!ctx_tls) {
			conn_close(hc->c, "no certificate for HTTPS");
			return;
		}
		conn_start_tls(hc->c, ctx_tls);
	}
}

/* The request's view of its connection, filled when a request starts. */
static void fill_peer(struct http_conn *hc)
{
	hc->req.ip = hc->c ? hc->c->ip : "";
	hc->req.port = hc->c ? hc->c->port : 0;
	hc->req.secure = hc->secure;
}

/* --- listeners ------------------------------------------------------------ */

int http_listen_port(const char *iface, int port, bool tls)
{
	int r;

	for (struct opened *o = opened_ports; o; o = o->next)
		if (o->port == port && strcmp(o->iface, iface) == 0)
			return 0;
	r = listener_add(iface, port, tls ? "HTTPS" : "HTTP", http_accept,
			 (void *)(tls ? &tls_port : &plain_port));
	if (r == 0) {
		struct opened *o = xcalloc(1, sizeof(*o));
		o->iface = xstrdup(iface);
		o->port = port;
		o->next = opened_ports;
		opened_ports = o;
	}
	return r;
}

void http_close_all(void)
{
	for (struct http_conn *hc = all_conns; hc; hc = hc->next)
		if (hc->c && !hc->dead)
			conn_close(hc->c, "shutdown");
	while (opened_ports) {
		struct opened *o = opened_ports;
		opened_ports = o->next;
		free(o->iface);
		free(o);
	}
}
