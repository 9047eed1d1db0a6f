/*
 * conn.h - one client or server socket: transport, write queue, flow
 * control and lifetime.
 *
 * transport:   an ops struct (plain TCP, TLS); STARTTLS swaps one for the
 *              other on a live connection.
 * write queue: a chain of chunks appended by conn_send(); flushed with
 *              writev once per loop iteration (conn_flush_all(), after the
 *              storage batch is committed), so nothing a client sees is
 *              sent before what it depends on is on disk.
 * release point: conn_release_queued(), right after the iteration's
 *              commit, lets what was queued so far be written; output a
 *              callback queues later in the iteration (a socket that
 *              became writable) waits for the next one, so it never goes
 *              out before the commit that covers it. When the commit is
 *              only sent (PostgreSQL's, answered later), the point is
 *              made in two steps: conn_mark_queued() when it is sent,
 *              conn_release_marked() when it is answered; what was
 *              queued between the two waits for the next commit.
 * watermarks:  when the queue holds more than wq_high bytes the connection
 *              stops reading (its peer is not reading what it asked for)
 *              and resumes below wq_low; above wq_limit it is closed.
 * lifetime:    conn_close() marks it closing and queues the free to the
 *              end of the loop iteration (a Lua handler may close a
 *              connection in the middle of dispatching its stanza).
 */
#ifndef STARLING_CONN_H
#define STARLING_CONN_H

#include <ev.h>
#include <sys/uio.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

#include "util.h"

struct conn;

struct conn_ops {
	const char *name;
	/* > 0 bytes, 0 at EOF, -EAGAIN, or another -errno. */
	ssize_t (*read)(struct conn *c, void *buf, size_t len);
	/* bytes written (possibly fewer), -EAGAIN, or another -errno. */
	ssize_t (*writev)(struct conn *c, const struct iovec *iov, int n);
	/* Orderly close of the transport (TLS close_notify). */
	void (*shutdown)(struct conn *c);
	/* Whether bytes read from the socket wait inside the transport (TLS
	 * records read ahead), so that a quiet socket does not mean no input. */
	bool (*buffered)(struct conn *c);
};

/* What the owner of a connection (a session) is told. */
struct conn_events {
	/* Bytes arrived; they are only valid during the call. */
	void (*data)(struct conn *c, const char *buf, size_t len);
	/* The connection is gone (EOF, error, or conn_close); called once,
	 * then the owner must forget c. */
	void (*closed)(struct conn *c, const char *reason);
	/* The TLS handshake finished (STARTTLS or direct TLS). */
	void (*tls_ready)(struct conn *c);
	/* An outgoing connection (conn_connect) is established; until then
	 * nothing is read and what is queued waits. May be NULL. */
	void (*connected)(struct conn *c);
	/* The write queue was written down to wq_low bytes or fewer: the
	 * owner may queue more (a file sent piece by piece). Called from
	 * the flush; the owner should only note it and queue from the loop.
	 * May be NULL. */
	void (*drained)(struct conn *c);
};

#define CONN_F_CLOSING    0x01	/* no more reads; free after flush */
#define CONN_F_PAUSED     0x02	/* reading paused at the high watermark */
#define CONN_F_QUEUED     0x04	/* on the flush list */
#define CONN_F_HANDSHAKE  0x08	/* TLS handshake in progress */
#define CONN_F_READ_WANTS_WRITE 0x10	/* SSL_read needs the socket writable */
#define CONN_F_WRITE_WANTS_READ 0x20	/* SSL_write needs the socket readable */
#define CONN_F_DEAD       0x40	/* closed callback done, free pending */
#define CONN_F_THROTTLED  0x80	/* over the read rate, waiting for tokens */
#define CONN_F_HELD       0x100	/* the owner paused reading */
#define CONN_F_CONNECTING 0x200	/* outgoing, TCP handshake under way */
#define CONN_F_PEER_CERT  0x400	/* server-side TLS asks for the peer's
				 * certificate (servers' incoming streams) */

struct wq_chunk;

struct conn {
	int fd;
	unsigned flags;
	ev_io rio;
	ev_io wio;
	const struct conn_ops *ops;
	SSL *ssl;			/* owned; NULL for plain */
	struct tls13 *tls13;		/* owned: TLS 1.3 without its SSL (tls13.h) */
	const struct conn_events *ev;
	void *owner;
	struct wq_chunk *wq_head, *wq_tail;
	size_t wq_bytes;
	size_t wq_high, wq_low, wq_limit;
	uint64_t bytes_in, bytes_out;
	uint64_t hold_mark;		/* bytes queued at release point hold_pt */
	unsigned long hold_pt;
	uint64_t mark_bytes;		/* bytes queued at mark mark_pt */
	unsigned long mark_pt;
	double rate;			/* read limit, bytes/s; 0 = none */
	double burst;			/* bucket size, bytes */
	double tokens;
	double refilled_at;
	struct conn *flush_next;	/* flush list / dead list */
	char ip[46];
	int port;
	char close_reason[64];
};

void conn_global_init(struct ev_loop *loop);
void conn_global_free(void);
struct ev_loop *conn_loop(void);

/* Takes ownership of fd, which is non-blocking already (accept4 with
 * SOCK_NONBLOCK: no fcntl per connection). */
struct conn *conn_new(int fd, const char *ip, int port,
		      const struct conn_events *ev, void *owner);

/* A connection without a socket: it names a peer (ip, port) and lives
 * and closes like any other, but reads nothing and writes nothing (a
 * BOSH session's, whose bytes travel on HTTP requests: its framing
 * carries them, core/http/bosh.c). */
struct conn *conn_new_detached(const char *ip, int port,
			       const struct conn_events *ev, void *owner);

/* An outgoing connection to sa (non-blocking connect): ev->connected
 * when it is up, ev->closed when it fails ("connection refused", ...).
 * NULL with -errno in *err when no socket could even be made. */
struct conn *conn_connect(const struct sockaddr *sa, socklen_t len,
			  const struct conn_events *ev, void *owner, int *err);

/* Hands c to another owner with its own events (an HTTP connection
 * upgraded to a WebSocket becomes a session's). */
void conn_set_owner(struct conn *c, const struct conn_events *ev, void *owner);

/* Queues bytes for the peer. Returns -ENOBUFS (and closes) when the
 * queue would exceed wq_limit. */
int conn_send(struct conn *c, const void *data, size_t len);
/* Tries to write the queue now (used before a STARTTLS switch). */
int conn_flush(struct conn *c);
/* Flushes every connection that has queued data; called once per loop
 * iteration by the main loop, then frees dead connections. Connections
 * whose output waits for the next release stay queued for the next call. */
void conn_flush_all(void);
/* What every connection has queued so far may be written (see the top). */
void conn_release_queued(void);
/* A commit covering what every connection queued so far is sent ... */
void conn_mark_queued(void);
/* ... and answered: what was queued up to the last mark may be written. */
void conn_release_marked(void);
/* Drops what c queued since the last release (the commit that covered
 * it failed, so it must not go out); returns how many bytes. */
size_t conn_discard_unreleased(struct conn *c);

/* Starts server-side TLS on c with ctx (direct TLS, or after STARTTLS's
 * <proceed/> has been flushed). */
int conn_start_tls(struct conn *c, SSL_CTX *ctx);

/* Starts client-side TLS on c with ctx, naming sni (the server's name,
 * RFC 6066) in the handshake; c's queue must be empty (after the peer's
 * <proceed/>). */
int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni);

/* Limits reading to rate bytes per second with a bucket of burst bytes
 * (a token bucket); rate 0 removes the limit. */
void conn_set_rate(struct conn *c, double rate, double burst);
/* The owner stops (hold = true) or resumes reading. */
void conn_hold(struct conn *c, bool hold);

/* Closes after the queue is flushed (or at once when it cannot be).
 * Calls ev->closed. Safe to call more than once. */
void conn_close(struct conn *c, const char *reason);

#endif
