/* conn.c - connections: write queues, flow control, deferred free; the
 * transports are socket.c (plain TCP) and tls.c. */
#include "conn.h"
#include "log.h"
#include "tls.h"
#include "tls13.h"
#include "transport.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <openssl/err.h>

#define READ_BUF_SIZE (64 * 1024)
#define READ_BUDGET (256 * 1024)	/* bytes per connection per wake-up */
#define CHUNK_SIZE (16 * 1024)
/* The first chunk of an empty queue, when what is sent fits: one stanza
 * to each of a thousand connections in a loop iteration would otherwise
 * take a thousand 16 KiB chunks, more than the pool keeps. A chunk of
 * this size (header included, 1000 bytes) is the most glibc serves from
 * its thread cache and small bins. */
#define SMALL_CHUNK_SIZE (1000 - sizeof(struct wq_chunk))
#define MAX_IOV 64
#define CLOSE_GRACE 5.0			/* seconds to flush before a hard close */

struct wq_chunk {
	struct wq_chunk *next;
	size_t start, end, cap;
	char data[];
};

struct conn_priv {
	struct conn c;
	ev_timer close_timer;
	ev_timer throttle_timer;
	SSL_CTX *tls_pending;		/* STARTTLS waiting for the flush */
};

/* Drained write-queue chunks of the two standard sizes wait here for
 * reuse, so a busy server does not malloc and free per delivery (a
 * small chunk per stanza to an idle connection, 16 KiB ones for bulk);
 * an idle connection still holds none. */
#define CHUNK_POOL_MAX 256
#define SMALL_POOL_MAX 256
struct chunk_pool {
	struct wq_chunk *head;
	size_t len, max;
};
static struct chunk_pool big_pool = { NULL, 0, CHUNK_POOL_MAX };
static struct chunk_pool small_pool = { NULL, 0, SMALL_POOL_MAX };

static struct chunk_pool *pool_of(size_t cap)
{
	return cap == CHUNK_SIZE ? &big_pool : cap == SMALL_CHUNK_SIZE ? &small_pool : NULL;
}

static struct wq_chunk *chunk_get(size_t cap)
{
	struct chunk_pool *pool = pool_of(cap);
	struct wq_chunk *k;

	if (pool && pool->head) {
		k = pool->head;
		pool->head = k->next;
		pool->len--;
	} else {
		k = xmalloc(sizeof(*k) + cap);
	}
	k->next = NULL;
	k->start = k->end = 0;
	k->cap = cap;
	return k;
}

static void chunk_put(struct wq_chunk *k)
{
	struct chunk_pool *pool = pool_of(k->cap);

	if (pool && pool->len < pool->max) {
		k->next = pool->head;
		pool->head = k;
		pool->len++;
		return;
	}
	free(k);
}

static void pool_free(struct chunk_pool *pool)
{
	while (pool->head) {
		struct wq_chunk *k = pool->head;
		pool->head = k->next;
		free(k);
	}
	pool->len = 0;
}

static struct ev_loop *loop;
static char *read_buf;
static struct conn *flush_list;
static struct conn *dead_list;
static unsigned long hold_point;	/* see conn.h, release point */
static unsigned long mark_point;	/* the marks made so far */
static unsigned long released_mark;	/* the mark the last release freed */

static void conn_finalize(struct conn *c);
static void conn_abort(struct conn *c, const char *reason);

struct ev_loop *conn_loop(void)
{
	return loop;
}

void conn_global_init(struct ev_loop *l)
{
	loop = l;
	if (!read_buf)
		read_buf = xmalloc(READ_BUF_SIZE);
}

static void conn_free(struct conn *c)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);
	struct wq_chunk *k = c->wq_head;

	while (k) {
		struct wq_chunk *next = k->next;
		chunk_put(k);
		k = next;
	}
	if (c->ssl)
		SSL_free(c->ssl);
	tls13_free(c->tls13);
	if (p->tls_pending)
		SSL_CTX_free(p->tls_pending);
	free(p);
}

static void free_dead(void)
{
	while (dead_list) {
		struct conn *c = dead_list;
		dead_list = c->flush_next;
		conn_free(c);
	}
}

void conn_global_free(void)
{
	free_dead();
	pool_free(&big_pool);
	pool_free(&small_pool);
	free(read_buf);
	read_buf = NULL;
	tls13_free_shared();
}

int conn_start_tls(struct conn *c, SSL_CTX *ctx)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);

	if (c->wq_bytes) {
		/* After the flush of <proceed/>. Our own reference: a reload
		 * may free the registry's before then. */
		SSL_CTX_up_ref(ctx);
		if (p->tls_pending)
			SSL_CTX_free(p->tls_pending);
		p->tls_pending = ctx;
		return 0;
	}
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1) {
		ERR_clear_error();
		conn_close(c, "TLS setup failed");
		return -EIO;
	}
	SSL_set_accept_state(c->ssl);
	tls13_watch(c->ssl);
	if (c->flags & CONN_F_PEER_CERT)
		tls_request_peer_cert(c->ssl);
	c->ops = &conn_tls_ops;
	c->flags |= CONN_F_HANDSHAKE;
	conn_tls_handshake(c);
	return 0;
}

int conn_start_tls_client(struct conn *c, SSL_CTX *ctx, const char *sni)
{
	c->ssl = SSL_new(ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 ||
	    (sni && SSL_set_tlsext_host_name(c->ssl, sni) != 1)) {
		ERR_clear_error();
		conn_close(c, "TLS setup failed");
		return -EIO;
	}
	SSL_set_connect_state(c->ssl);
	c->ops = &conn_tls_ops;
	c->flags |= CONN_F_HANDSHAKE;
	conn_tls_handshake(c);
	return 0;
}

/* --- reading ------------------------------------------------------------ */

#define CONN_F_NOREAD (CONN_F_CLOSING | CONN_F_DEAD | CONN_F_PAUSED | \
		       CONN_F_THROTTLED | CONN_F_HELD | CONN_F_CONNECTING)

/* Starts or stops the read watcher to match the flags. Input the
 * transport already holds wakes no watcher: it gets an event of its own. */
static void update_reading(struct conn *c)
{
	if (c->fd < 0)
		return;		/* detached: nothing to read */
	if (c->flags & CONN_F_NOREAD) {
		ev_io_stop(loop, &c->rio);
		return;
	}
	ev_io_start(loop, &c->rio);
	if (!(c->flags & CONN_F_HANDSHAKE) && c->ops->buffered(c))
		ev_feed_event(loop, &c->rio, EV_READ);
}

void conn_set_owner(struct conn *c, const struct conn_events *ev, void *owner)
{
	c->ev = ev;
	c->owner = owner;
}

void conn_hold(struct conn *c, bool hold)
{
	if (hold)
		c->flags |= CONN_F_HELD;
	else
		c->flags &= ~CONN_F_HELD;
	update_reading(c);
}

void conn_set_rate(struct conn *c, double rate, double burst)
{
	c->rate = rate > 0 ? rate : 0;
	c->burst = burst > 0 ? burst : c->rate;
	c->tokens = c->burst;
	c->refilled_at = ev_now(loop);
}

static void on_throttle_end(struct ev_loop *l, ev_timer *t, int revents)
{
	struct conn_priv *p = container_of(t, struct conn_priv, throttle_timer);

	p->c.flags &= ~CONN_F_THROTTLED;
	update_reading(&p->c);
	if (!(p->c.flags & CONN_F_NOREAD))
		ev_feed_event(l, &p->c.rio, EV_READ);
}

/* How many bytes the rate allows now (SIZE_MAX without a limit); when
 * none, throttles the connection until the bucket has refilled. */
static size_t read_allowance(struct conn *c)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);
	double now;

	if (!c->rate)
		return SIZE_MAX;
	now = ev_now(loop);
	c->tokens = MIN(c->burst, c->tokens + (now - c->refilled_at) * c->rate);
	c->refilled_at = now;
	if (c->tokens >= 1)
		return (size_t)c->tokens;
	c->flags |= CONN_F_THROTTLED;
	update_reading(c);
	double wait = MIN(c->burst / 2, (double)READ_BUF_SIZE) / c->rate;
	ev_timer_set(&p->throttle_timer, wait, 0.);
	ev_timer_start(loop, &p->throttle_timer);
	return 0;
}

static void on_readable(struct ev_loop *l, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, rio);
	size_t budget = READ_BUDGET;

	if (c->flags & CONN_F_HANDSHAKE) {
		conn_tls_handshake(c);
		return;
	}
	if (c->flags & CONN_F_WRITE_WANTS_READ)
		conn_try_flush(c);
	while (!(c->flags & (CONN_F_NOREAD | CONN_F_HANDSHAKE))) {
		size_t allow = read_allowance(c);
		if (!allow)
			return;
		size_t want = MIN(allow, (size_t)READ_BUF_SIZE);
		ssize_t n = c->ops->read(c, read_buf, want);
		if (n == -EAGAIN)
			return;
		if (n <= 0) {
			conn_close(c, n == 0 ? "connection closed by peer"
					     : "read error");
			return;
		}
		c->bytes_in += (uint64_t)n;
		if (c->rate)
			c->tokens -= (double)n;
		c->ev->data(c, read_buf, (size_t)n);
		if ((size_t)n >= budget) {
			/* Fairness: continue on the next iteration. */
			if (!(c->flags & CONN_F_NOREAD))
				ev_feed_event(l, &c->rio, EV_READ);
			return;
		}
		budget -= (size_t)n;
		/* A short plain read emptied the socket: asking again would
		 * only cost a system call to hear EAGAIN (epoll is level
		 * triggered, so more bytes wake us). TLS may hold a record
		 * back, so it reads until EAGAIN. */
		if ((size_t)n < want && c->ops == &conn_tcp_ops)
			return;
	}
}

/* --- writing ------------------------------------------------------------ */

static void queue_for_flush(struct conn *c)
{
	if (c->flags & CONN_F_QUEUED)
		return;
	c->flags |= CONN_F_QUEUED;
	c->flush_next = flush_list;
	flush_list = c;
}

/* Brings c's marks to the current points: hold_mark, the bytes it had
 * queued at the mark the last release freed; mark_bytes, at the last
 * mark. Called before anything is queued, so whatever c queued since
 * its last call came before the points made since. */
static void hold_sync(struct conn *c)
{
	uint64_t queued = c->bytes_out + c->wq_bytes;

	if (c->hold_pt != hold_point) {
		/* a release since c last queued: up to the mark it freed,
		 * which c's own mark is when c queued after it was made;
		 * else c queued nothing since before it */
		c->hold_mark = c->mark_pt == released_mark ? c->mark_bytes
							   : queued;
		c->hold_pt = hold_point;
	}
	if (c->mark_pt != mark_point) {
		c->mark_bytes = queued;
		c->mark_pt = mark_point;
	}
}

/* How many of c's queued bytes may be written now. */
static size_t hold_writable(struct conn *c)
{
	hold_sync(c);
	return c->hold_mark > c->bytes_out ?
	       (size_t)(c->hold_mark - c->bytes_out) : 0;
}

void conn_release_queued(void)
{
	conn_mark_queued();
	conn_release_marked();
}

void conn_mark_queued(void)
{
	mark_point++;
}

void conn_release_marked(void)
{
	released_mark = mark_point;
	hold_point++;
}

size_t conn_discard_unreleased(struct conn *c)
{
	size_t keep = hold_writable(c), dropped = c->wq_bytes - keep;
	struct wq_chunk **pp = &c->wq_head, *last = NULL;

	if (!dropped)
		return 0;
	while (*pp) {
		struct wq_chunk *k = *pp;
		size_t n = k->end - k->start;
		if (keep) {
			if (n > keep)
				k->end = k->start + keep;
			keep -= MIN(n, keep);
			last = k;
			pp = &k->next;
			continue;
		}
		*pp = k->next;
		chunk_put(k);
	}
	c->wq_tail = last;
	c->wq_bytes -= dropped;
	return dropped;
}

int conn_send(struct conn *c, const void *data, size_t len)
{
	const char *d = data;

	if (c->flags & (CONN_F_CLOSING | CONN_F_DEAD))
		return -EPIPE;
	hold_sync(c);
	if (c->wq_bytes + len > c->wq_limit) {
		log_info("%s:%d: send queue over %zu bytes, closing", c->ip,
			 c->port, c->wq_limit);
		conn_close(c, "send queue full");
		return -ENOBUFS;
	}
	while (len) {
		struct wq_chunk *t = c->wq_tail;
		if (!t || t->end == t->cap) {
			t = chunk_get(!t && len <= SMALL_CHUNK_SIZE ? SMALL_CHUNK_SIZE
				      : MAX((size_t)CHUNK_SIZE,
					    MIN(len, (size_t)256 * 1024)));
			if (c->wq_tail)
				c->wq_tail->next = t;
			else
				c->wq_head = t;
			c->wq_tail = t;
		}
		size_t k = MIN(len, t->cap - t->end);
		memcpy(t->data + t->end, d, k);
		t->end += k;
		d += k;
		len -= k;
		c->wq_bytes += k;
	}
	if (c->wq_bytes > c->wq_high && !(c->flags & CONN_F_PAUSED)) {
		c->flags |= CONN_F_PAUSED;
		update_reading(c);
	}
	queue_for_flush(c);
	return 0;
}

/* Writes what it can: 0 when the queue is empty, -EAGAIN when the socket
 * is full, another -errno on a dead socket. */
int conn_flush(struct conn *c)
{
	size_t room;

	while (c->wq_head && (room = hold_writable(c)) > 0) {
		struct iovec iov[MAX_IOV];
		int n = 0;

		if (c->flags & (CONN_F_HANDSHAKE | CONN_F_DEAD | CONN_F_CONNECTING))
			return -EAGAIN;
		for (struct wq_chunk *k = c->wq_head; k && n < MAX_IOV && room;
		     k = k->next) {
			iov[n].iov_base = k->data + k->start;
			iov[n].iov_len = MIN(k->end - k->start, room);
			room -= iov[n].iov_len;
			n++;
		}
		ssize_t w = c->ops->writev(c, iov, n);
		if (w < 0)
			return (int)w;
		c->bytes_out += (uint64_t)w;
		c->wq_bytes -= (size_t)w;
		while (w > 0) {
			struct wq_chunk *k = c->wq_head;
			size_t avail = k->end - k->start;
			if ((size_t)w < avail) {
				k->start += (size_t)w;
				break;
			}
			w -= (ssize_t)avail;
			c->wq_head = k->next;
			if (!c->wq_head)
				c->wq_tail = NULL;
			chunk_put(k);
		}
	}
	return 0;
}

void conn_try_flush(struct conn *c)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);
	int r = conn_flush(c);

	if (r == -EAGAIN) {
		if (!(c->flags & (CONN_F_WRITE_WANTS_READ | CONN_F_DEAD)))
			ev_io_start(loop, &c->wio);
		return;
	}
	if (!(c->flags & CONN_F_READ_WANTS_WRITE))
		ev_io_stop(loop, &c->wio);
	if (r < 0) {
		conn_abort(c, "write error");
		return;
	}
	if ((c->flags & CONN_F_PAUSED) && c->wq_bytes <= c->wq_low) {
		c->flags &= ~CONN_F_PAUSED;
		update_reading(c);
	}
	if (c->ev->drained && c->wq_bytes <= c->wq_low && !(c->flags & CONN_F_CLOSING))
		c->ev->drained(c);
	if (p->tls_pending && !c->wq_bytes) {
		SSL_CTX *ctx = p->tls_pending;
		p->tls_pending = NULL;
		conn_start_tls(c, ctx);
		SSL_CTX_free(ctx);	/* the pending reference */
		return;
	}
	if ((c->flags & CONN_F_CLOSING) && !c->wq_bytes)
		conn_finalize(c);
}

/* The TCP handshake of an outgoing connection ended, one way or the
 * other. */
static void connect_done(struct conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err == EINPROGRESS || err == EALREADY)
		return;
	c->flags &= ~CONN_F_CONNECTING;
	if (err) {
		char reason[64];
		snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
		conn_abort(c, reason);
		return;
	}
	ev_io_stop(loop, &c->wio);
	update_reading(c);
	if (c->ev->connected)
		c->ev->connected(c);
	if (!(c->flags & CONN_F_DEAD) && c->wq_bytes)
		queue_for_flush(c);
}

static void on_writable(struct ev_loop *l, ev_io *w, int revents)
{
	struct conn *c = container_of(w, struct conn, wio);

	if (c->flags & CONN_F_CONNECTING) {
		connect_done(c);
		return;
	}
	if (c->flags & CONN_F_HANDSHAKE) {
		conn_tls_handshake(c);
		return;
	}
	conn_try_flush(c);
	if (!(c->flags & CONN_F_DEAD) && c->wq_bytes && !hold_writable(c))
		queue_for_flush(c);	/* the rest waits for its point */
	if ((c->flags & CONN_F_READ_WANTS_WRITE) && !(c->flags & CONN_F_DEAD))
		ev_feed_event(l, &c->rio, EV_READ);
}

void conn_flush_all(void)
{
	struct conn **pp = &flush_list;

	/* Connections queued while this runs go to the front: next call. */
	while (*pp) {
		struct conn *c = *pp;
		if (!(c->flags & CONN_F_DEAD))
			conn_try_flush(c);
		if (*pp != c)
			continue;		/* it died, or one went in front */
		if (!(c->flags & CONN_F_DEAD) && c->wq_bytes && !hold_writable(c)) {
			pp = &c->flush_next;	/* waits for its point */
			continue;
		}
		*pp = c->flush_next;
		c->flush_next = NULL;
		c->flags &= ~CONN_F_QUEUED;
	}
	free_dead();
}

/* --- lifetime ----------------------------------------------------------- */

static void on_close_timeout(struct ev_loop *l, ev_timer *t, int revents)
{
	struct conn_priv *p = container_of(t, struct conn_priv, close_timer);

	conn_finalize(&p->c);
}

struct conn *conn_new(int fd, const char *ip, int port,
		      const struct conn_events *ev, void *owner)
{
	struct conn_priv *p = xcalloc(1, sizeof(*p));
	struct conn *c = &p->c;

	c->fd = fd;
	c->ops = &conn_tcp_ops;
	c->ev = ev;
	c->owner = owner;
	c->wq_high = 256 * 1024;
	c->wq_low = 64 * 1024;
	c->wq_limit = 4 * 1024 * 1024;
	snprintf(c->ip, sizeof(c->ip), "%s", ip);
	c->port = port;
	ev_io_init(&c->rio, on_readable, fd, EV_READ);
	ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
	ev_timer_init(&p->close_timer, on_close_timeout, CLOSE_GRACE, 0.);
	ev_timer_init(&p->throttle_timer, on_throttle_end, 1., 0.);
	if (fd >= 0)
		ev_io_start(loop, &c->rio);
	return c;
}

static ssize_t detached_read(struct conn *c, void *buf, size_t len)
{
	return -EAGAIN;
}

static ssize_t detached_writev(struct conn *c, const struct iovec *iov, int n)
{
	return -EPIPE;
}

static void detached_shutdown(struct conn *c)
{
}

static bool detached_buffered(struct conn *c)
{
	return false;
}

static const struct conn_ops detached_ops = {
	.name = "detached",
	.read = detached_read,
	.writev = detached_writev,
	.shutdown = detached_shutdown,
	.buffered = detached_buffered,
};

struct conn *conn_new_detached(const char *ip, int port,
			       const struct conn_events *ev, void *owner)
{
	struct conn *c = conn_new(-1, ip, port, ev, owner);

	c->ops = &detached_ops;
	return c;
}

struct conn *conn_connect(const struct sockaddr *sa, socklen_t len,
			  const struct conn_events *ev, void *owner, int *err)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0, one = 1;
	int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	struct conn *c;

	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		port = ntohs(in6->sin6_port);
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, sa, len) != 0 && errno != EINPROGRESS) {
		*err = -errno;
		close(fd);
		return NULL;
	}
	c = conn_new(fd, ip, port, ev, owner);
	/* Nothing to read before the handshake; writable means it ended. */
	c->flags |= CONN_F_CONNECTING;
	ev_io_stop(loop, &c->rio);
	ev_io_start(loop, &c->wio);
	return c;
}

static void conn_finalize(struct conn *c)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);

	if (c->flags & CONN_F_DEAD)
		return;
	c->flags |= CONN_F_DEAD | CONN_F_CLOSING;
	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	ev_timer_stop(loop, &p->close_timer);
	ev_timer_stop(loop, &p->throttle_timer);
	if (c->fd >= 0) {
		c->ops->shutdown(c);
		close(c->fd);
		c->fd = -1;
	}
	if (!(c->flags & CONN_F_QUEUED)) {
		c->flush_next = dead_list;
		dead_list = c;
	} else {
		/* Still on the flush list: unlink it there first. */
		for (struct conn **pp = &flush_list; *pp; pp = &(*pp)->flush_next) {
			if (*pp == c) {
				*pp = c->flush_next;
				break;
			}
		}
		c->flags &= ~CONN_F_QUEUED;
		c->flush_next = dead_list;
		dead_list = c;
	}
}

/* The connection is unusable (a write failed): tell the owner if it
 * does not know yet, and drop it now, queue and all. */
static void conn_abort(struct conn *c, const char *reason)
{
	if (c->flags & CONN_F_DEAD)
		return;
	if (!(c->flags & CONN_F_CLOSING)) {
		c->flags |= CONN_F_CLOSING;
		snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
		if (c->ev->closed)
			c->ev->closed(c, reason);
	}
	conn_finalize(c);
}

void conn_close(struct conn *c, const char *reason)
{
	struct conn_priv *p = container_of(c, struct conn_priv, c);
	bool first = !(c->flags & CONN_F_CLOSING);

	if (c->flags & CONN_F_DEAD)
		return;
	c->flags |= CONN_F_CLOSING;
	ev_io_stop(loop, &c->rio);
	if (first) {
		snprintf(c->close_reason, sizeof(c->close_reason), "%s", reason);
		if (c->ev->closed)
			c->ev->closed(c, reason);
	}
	if (c->flags & CONN_F_DEAD)
		return;
	if (!c->wq_bytes || (c->flags & (CONN_F_HANDSHAKE | CONN_F_CONNECTING))) {
		conn_finalize(c);
		return;
	}
	ev_timer_start(loop, &p->close_timer);
	queue_for_flush(c);
}
