/*
 * http.h - the HTTP/1.1 server (RFC 9112) on the connection layer:
 * http_ports (plain) and https_ports (TLS) of http_interfaces, parsed by
 * http-parser (libhttp-parser), one request at a time per connection,
 * keep-alive, limits on the request head and body, chunked request
 * bodies, and timeouts against slow senders. What answers a request is a
 * route (http_route.h): a C handler or, through the Lua bridge, a
 * module's function.
 *
 * request:   one parsed request with its head, its body (chunked bodies
 *            come decoded) and its connection's address; it lives until
 *            it is answered (http_respond), taken (http_upgrade) or its
 *            connection goes. A handler may answer later (a held BOSH
 *            request): it then watches `done`.
 * answering: while a request waits for its answer the connection reads
 *            nothing more; bytes that came after it (a pipelined
 *            request) wait and are parsed once it is answered.
 * upgrade:   a handler takes the connection away from HTTP (WebSocket):
 *            the answer (101) is queued and the connection is the
 *            handler's, with whatever bytes followed the request.
 * timeouts:  a request's head must arrive within http_header_timeout
 *            (from the connection, or from its first byte), the whole
 *            request within http_request_timeout; an idle keep-alive
 *            connection closes after http_keepalive_timeout. Answered 408
 *            and closed.
 * head:      a route with a head handler (http_route.h) sees the request
 *            once its head is in, before the body is read: it may refuse
 *            it (the body is never read: what the client still sends is
 *            dropped for a few seconds so that it sees the answer, then
 *            the connection closes) or send
 *            the body to a file (http_body_to_file) instead of memory.
 * files:     an answer may be a file's bytes (http_respond_file), read
 *            and queued a window at a time as the peer takes them.
 * limits:    the request line and headers over http_max_header_size
 *            bytes, or more than http_max_headers lines: 431; a body over
 *            http_max_content_size: 413; anything that does not parse:
 *            400. Each then closes the connection.
 */
#ifndef STARLING_HTTP_H
#define STARLING_HTTP_H

#include "conn.h"
#include "util.h"

struct http_conn;

struct http_header {
	char *name;			/* lowercased */
	char *value;
};

struct http_request {
	char method[16];		/* "GET", "POST", ... */
	char *target;			/* the request-target as sent */
	char *path;			/* its path ("/" when empty) */
	char *query;			/* after '?', or NULL */
	char *host;			/* the Host header, lowercased, without
					 * the port; "" when absent */
	struct http_header *headers;
	size_t n_headers;
	struct sbuf body;		/* empty when it goes to a file */
	/* The body in a file (http_body_to_file): -1, or open while the
	 * body arrives; the file is removed when the request is over unless
	 * its handler kept it (http_body_keep). */
	int body_fd;
	char *body_path;
	uint64_t body_limit;		/* bytes the file may take */
	uint64_t body_length;		/* bytes of body received */
	bool body_keep;
	unsigned http_minor;		/* HTTP/1.x */
	bool secure;			/* TLS on the connection */
	bool keep_alive;		/* the connection may carry another */
	bool answered;
	/* Header lines every answer carries ("Name: value\r\n"; CORS,
	 * http_route.c), or NULL. Owned; freed with the request. */
	char *extra_headers;
	const char *ip;			/* the peer's address and port */
	int port;
	/* The request is over (answered, taken, or its connection went):
	 * whoever kept it for later lets go. Set by a handler that answers
	 * later; called once. */
	void (*done)(struct http_request *req, void *data);
	void *done_data;
	struct http_conn *hc;		/* private */
};

struct http_config {
	size_t max_header_size;		/* bytes: the request line and headers */
	unsigned max_headers;
	size_t max_content_size;	/* bytes of body */
	double header_timeout;		/* s */
	double request_timeout;		/* s */
	double keepalive_timeout;	/* s */
};

/* The limits and timeouts for connections accepted from now on (the
 * Lua bridge reads them from the config: http_max_header_size, ...). */
void http_configure(const struct http_config *cfg);
/* Listens on iface:port, plain or TLS (with the default certificate and
 * SNI); a port opened already is left as it is. 0, or -errno (logged). */
int http_listen_port(const char *iface, int port, bool tls);
const struct http_config *http_config(void);

/* The value of the request's header name (lowercase), or NULL; with
 * several lines of it, the first. */
const char *http_header(const struct http_request *req, const char *name);

/* Answers req: status, extra header lines (each "Name: value\r\n", may
 * be NULL), and the body (not sent for HEAD). Content-Length and
 * Connection are ours. 0, or -EALREADY when it was answered, -EPIPE when
 * its connection is gone. */
int http_respond(struct http_request *req, int status, const char *headers,
		 const char *body, size_t len);
/* For a request answered later (a held BOSH request): its connection
 * is read on while it waits, so that the client's going away ends the
 * request (done) at once; what the client sends meanwhile (a pipelined
 * request, up to http_max_header_size bytes) waits for the answer. */
void http_watch(struct http_request *req);
/* A status with its reason as a short text/plain body. */
int http_respond_status(struct http_request *req, int status, const char *text);
/* Answers with the file fd (taken: closed when sent or when the
 * connection goes) from offset, len bytes, as the body; the status and
 * header lines as for http_respond. The file is read a window at a
 * time as the peer takes it, never whole. 0, -EALREADY or -EPIPE. */
int http_respond_file(struct http_request *req, int status, const char *headers,
		      int fd, uint64_t offset, uint64_t len);

/* From a head handler: the body goes to a new file at path (created,
 * never an existing one; mode 0640) and may be at most limit bytes
 * (more: 413, the file removed). 0 or -errno. */
int http_body_to_file(struct http_request *req, const char *path, uint64_t limit);
/* The handler takes the body's file: it is not removed. */
void http_body_keep(struct http_request *req);

/* Answers 101 with the header lines, and hands the connection over: the
 * caller becomes its owner (conn_set_owner) before the next loop
 * iteration. *rest gets the bytes that followed the request (valid until
 * the caller returns). NULL when the connection is gone. */
struct conn *http_upgrade(struct http_request *req, const char *headers,
			  const char **rest, size_t *rest_len);
/* "Not Found" for 404, ... */
const char *http_reason(int status);

/* Counts for metrics. */
struct http_stats {
	uint64_t connections;		/* open now */
	uint64_t accepted;		/* since start */
	uint64_t requests;
	uint64_t upgrades;
	uint64_t responses[6];		/* by class: [1] 1xx ... [5] 5xx */
	uint64_t files_sent;		/* answers from a file */
	uint64_t bodies_to_file;	/* request bodies written to a file */
};
const struct http_stats *http_stats(void);

/* Closes every HTTP connection (shutdown). */
void http_close_all(void);

#endif
