/*
 * net.c - the generator's connections: sockets, TLS, reading and writing.
 *
 * A connection binds to one of several loopback source addresses before it
 * connects, so 100,000 connections never run out of ephemeral ports.
 * Reads go through the worker's one read buffer straight into expat; writes
 * are queued on the connection and flushed once per loop iteration (an
 * ev_prepare), so a burst of stanzas costs one system call.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <openssl/err.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define READS_PER_WAKE 8	/* plain sockets: fairness between connections */
#define TLS_WRITE_CHUNK 65536

SSL_CTX *g_ssl_ctx;
static struct sockaddr_in g_dst, g_dst2;	/* the server; the second one */

/* --resume: each account's newest session (TLS 1.3 ticket), offered on
 * its next connection; by account number - first. */
static pthread_mutex_t sess_lock = PTHREAD_MUTEX_INITIALIZER;
static SSL_SESSION **g_sess;

static void io_cb(struct ev_loop *loop, ev_io *io, int revents);
static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents);

static SSL_SESSION **sess_slot(int user)
{
	int i = user - g_opts.first;

	return g_sess && i >= 0 && i < g_opts.users ? &g_sess[i] : NULL;
}

/* A ticket arrived: it replaces the account's older one. */
static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct lg_conn *c = SSL_get_app_data(ssl);
	SSL_SESSION **slot = c ? sess_slot(c->user) : NULL;

	if (!slot)
		return 0;
	pthread_mutex_lock(&sess_lock);
	if (*slot)
		SSL_SESSION_free(*slot);
	*slot = sess;
	pthread_mutex_unlock(&sess_lock);
	return 1;	/* the reference is ours */
}

int lg_tls_sessions_load(const char *path)
{
	static char line[8192];
	unsigned char der[4096];
	int user, n = 0;
	char hex[8000];
	FILE *f = fopen(path, "r");

	if (!f)
		return 0;	/* no file yet */
	while (fgets(line, sizeof(line), f)) {
		SSL_SESSION **slot, *sess;
		const unsigned char *p = der;
		size_t len = 0;

		if (sscanf(line, "%d %7999s", &user, hex) != 2 || !(slot = sess_slot(user)))
			continue;
		for (const char *h = hex; h[0] && h[1] && len < sizeof(der); h += 2) {
			unsigned v;
			if (sscanf(h, "%2x", &v) != 1)
				break;
			der[len++] = (unsigned char)v;
		}
		sess = d2i_SSL_SESSION(NULL, &p, (long)len);
		if (!sess)
			continue;
		if (*slot)
			SSL_SESSION_free(*slot);
		*slot = sess;
		n++;
	}
	fclose(f);
	return n;
}

int lg_tls_sessions_save(const char *path)
{
	char tmp[4096];
	FILE *f;
	int n = 0;

	snprintf(tmp, sizeof(tmp), "%s.tmp%d", path, (int)getpid());
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	for (int i = 0; g_sess && i < g_opts.users; i++) {
		unsigned char *der = NULL;
		int len = g_sess[i] ? i2d_SSL_SESSION(g_sess[i], &der) : 0;

		if (len <= 0)
			continue;
		fprintf(f, "%d ", g_opts.first + i);
		for (int k = 0; k < len; k++)
			fprintf(f, "%02x", der[k]);
		fputc('\n', f);
		OPENSSL_free(der);
		n++;
	}
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return -1;
	}
	return n;
}

void lg_tls_sessions_free(void)
{
	for (int i = 0; g_sess && i < g_opts.users; i++)
		SSL_SESSION_free(g_sess[i]);
	free(g_sess);
	g_sess = NULL;
}

int lg_net_init(void)
{
	memset(&g_dst, 0, sizeof(g_dst));
	g_dst.sin_family = AF_INET;
	g_dst.sin_port = htons((uint16_t)g_opts.port);
	if (inet_pton(AF_INET, g_opts.host, &g_dst.sin_addr) != 1)
		return -EINVAL;
	g_dst2 = g_dst;
	if (g_opts.port2 > 0) {
		g_dst2.sin_port = htons((uint16_t)g_opts.port2);
		if (inet_pton(AF_INET, g_opts.host2, &g_dst2.sin_addr) != 1)
			return -EINVAL;
	}
	if (g_opts.tls == LG_TLS_NONE)
		return 0;
	g_ssl_ctx = SSL_CTX_new(TLS_client_method());
	if (!g_ssl_ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(g_ssl_ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(g_ssl_ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(g_ssl_ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_mode(g_ssl_ctx, SSL_MODE_RELEASE_BUFFERS |
			 SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (g_opts.resume) {
		g_sess = lg_xcalloc((size_t)g_opts.users, sizeof(*g_sess));
		SSL_CTX_set_session_cache_mode(g_ssl_ctx, SSL_SESS_CACHE_CLIENT |
					       SSL_SESS_CACHE_NO_INTERNAL_STORE);
		SSL_CTX_sess_set_new_cb(g_ssl_ctx, on_new_session);
	}
	return 0;
}

void lg_conn_init(struct lg_conn *c, struct lg_worker *w)
{
	memset(c, 0, sizeof(*c));
	c->w = w;
	c->fd = -1;
	c->user = -1;
	c->peer = -1;
	ev_io_init(&c->io, io_cb, -1, 0);
	ev_init(&c->timer, timer_cb);
}

void lg_conn_deinit(struct lg_conn *c)
{
	if (c->fd >= 0)
		lg_conn_release(c);
	if (c->xp)
		XML_ParserFree(c->xp);
	c->xp = NULL;
	lg_buf_free(&c->out);
	lg_buf_free(&c->text);
	lg_buf_free(&c->wsin);
	lg_buf_free(&c->wsout);
}

static void set_events(struct lg_conn *c, int events)
{
	if ((c->io.events & (EV_READ | EV_WRITE)) == events)
		return;
	ev_io_stop(c->w->loop, &c->io);
	ev_io_set(&c->io, c->fd, events);
	ev_io_start(c->w->loop, &c->io);
}

/* Source address number k: 127.0.0.2, 127.0.0.3, ... */
static void source_addr(struct sockaddr_in *sa, int k)
{
	memset(sa, 0, sizeof(*sa));
	sa->sin_family = AF_INET;
	sa->sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)k);
}

int lg_conn_start(struct lg_conn *c, int user)
{
	struct sockaddr_in src;
	const struct sockaddr_in *dst;
	int fd, one = 1;

	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (g_opts.src_addrs > 0) {
		setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
		source_addr(&src, (user - g_opts.first) % g_opts.src_addrs);
		if (bind(fd, (struct sockaddr *)&src, sizeof(src)) != 0)
			goto fail;
	}
	dst = lg_on_second(user) ? &g_dst2 : &g_dst;
	if (connect(fd, (struct sockaddr *)dst, sizeof(*dst)) != 0 &&
	    errno != EINPROGRESS)
		goto fail;
	c->fd = fd;
	c->user = user;
	c->state = ST_CONNECTING;
	c->flags &= CF_DIRTY;	/* the slot may still be on the flush list */
	c->depth = 0;
	c->seq = 0;
	c->left = 0;
	atomic_store(&c->inflight, 0);
	c->t_start = lg_now_ns();
	ev_io_set(&c->io, fd, EV_WRITE);
	ev_io_start(c->w->loop, &c->io);
	ev_timer_set(&c->timer, g_opts.timeout, 0);
	ev_timer_start(c->w->loop, &c->timer);
	c->w->handshaking++;
	lg_ctr_add(c->w, C_CONNECTING, 1);
	return 0;
fail:
	one = -errno;
	close(fd);
	return one;
}

void lg_conn_dirty(struct lg_conn *c)
{
	if (c->flags & CF_DIRTY)
		return;
	c->flags |= CF_DIRTY;
	c->dirty_next = c->w->dirty;
	c->w->dirty = c;
}

void lg_conn_send(struct lg_conn *c, const void *data, size_t n)
{
	lg_buf_add(&c->out, data, n);
	lg_conn_dirty(c);
}

void lg_conn_sends(struct lg_conn *c, const char *s)
{
	lg_conn_send(c, s, strlen(s));
}

static bool handshaking(const struct lg_conn *c)
{
	return c->state >= ST_CONNECTING && c->state < ST_ONLINE;
}

void lg_conn_release(struct lg_conn *c)
{
	struct lg_worker *w = c->w;
	bool never_online = handshaking(c);

	if (c->fd < 0)
		return;
	ev_io_stop(w->loop, &c->io);
	ev_timer_stop(w->loop, &c->timer);
	if (c->ssl) {
		/* SSL_free of a connection not shut down throws its session
		 * away; a client that just hangs up keeps its ticket. */
		if (g_sess)
			SSL_set_shutdown(c->ssl, SSL_SENT_SHUTDOWN | SSL_RECEIVED_SHUTDOWN);
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	close(c->fd);
	c->fd = -1;
	lg_sasl_free(c->scram);
	c->scram = NULL;
	lg_buf_reset(&c->out);
	lg_buf_reset(&c->text);
	lg_buf_reset(&c->wsin);
	lg_buf_reset(&c->wsout);
	if (never_online) {
		w->handshaking--;
		lg_ctr_add(w, C_CONNECTING, (uint64_t)-1);
		lg_ctr_add(w, C_LOGIN_FAIL, 1);
	} else if (c->flags & CF_AUTHED) {
		lg_ctr_add(w, C_ONLINE, (uint64_t)-1);
		if (g_online)
			atomic_store_explicit(&g_online[c->user - g_opts.first], 0,
					      memory_order_relaxed);
	}
	c->flags &= CF_DIRTY;	/* it stays on the flush list; harmless */
	c->state = ST_FREE;
	lg_ctr_add(w, C_CLOSED, 1);
	lg_sc_gone(c);
}

void lg_conn_fail(struct lg_conn *c, enum lg_ctr why, const char *fmt, ...)
{
	struct lg_worker *w = c->w;
	va_list ap;

	lg_ctr_add(w, why, 1);
	if (!w->first_error[0]) {
		int n = snprintf(w->first_error, sizeof(w->first_error), "%s%d: ",
				 g_opts.prefix, c->user);

		va_start(ap, fmt);
		if (n > 0 && (size_t)n < sizeof(w->first_error))
			vsnprintf(w->first_error + n, sizeof(w->first_error) - (size_t)n,
				  fmt, ap);
		va_end(ap);
	}
	lg_conn_release(c);
}

void lg_conn_close(struct lg_conn *c)
{
	if (c->fd < 0 || c->state == ST_CLOSING)
		return;
	if (handshaking(c)) {
		lg_conn_release(c);
		return;
	}
	if (g_opts.transport == LG_TR_WS)
		lg_ws_close(c);
	else
		lg_conn_sends(c, "</stream:stream>");
	c->flags |= CF_SHUT;
	c->state = ST_CLOSING;
	ev_timer_stop(c->w->loop, &c->timer);
	ev_timer_set(&c->timer, 3.0, 0);
	ev_timer_start(c->w->loop, &c->timer);
}

static void tls_error(struct lg_conn *c, const char *what, int err)
{
	char buf[120];
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, buf, sizeof(buf));
	else
		snprintf(buf, sizeof(buf), "SSL error %d, errno %d", err, errno);
	ERR_clear_error();
	lg_conn_fail(c, C_ERR_TLS, "%s: %s", what, buf);
}

static void do_read(struct lg_conn *c);

/* The connection (and TLS, if any) is up: the stream header, or over
 * WebSocket the HTTP upgrade first. */
static void start_stream(struct lg_conn *c)
{
	if (g_opts.transport == LG_TR_WS) {
		lg_ws_upgrade(c);
		return;
	}
	c->state = ST_FEATURES;
	lg_xmpp_reset(c);
	lg_xmpp_open(c);
}

/* What the first handshake of this worker agreed on, for the report:
 * "TLSv1.3 TLS_AES_256_GCM_SHA384 X25519 EC-256". */
static void note_tls(struct lg_conn *c)
{
	char *out = c->w->tls_seen;
	X509 *cert;
	EVP_PKEY *key;
	int group;
	const char *gname;

	if (out[0])
		return;
	cert = SSL_get1_peer_certificate(c->ssl);
	key = cert ? X509_get0_pubkey(cert) : NULL;
	group = SSL_get_negotiated_group(c->ssl);
	gname = group ? OBJ_nid2sn(group & ~TLSEXT_nid_unknown) : NULL;
	snprintf(out, sizeof(c->w->tls_seen), "%s %s %s %s-%d", SSL_get_version(c->ssl),
		 SSL_get_cipher_name(c->ssl), gname ? gname : "?",
		 key ? EVP_PKEY_get0_type_name(key) : "?",
		 key ? EVP_PKEY_get_bits(key) : 0);
	X509_free(cert);
}

static void tls_handshake(struct lg_conn *c)
{
	int r = SSL_do_handshake(c->ssl);

	if (r == 1) {
		note_tls(c);
		if (SSL_session_reused(c->ssl))
			lg_ctr_add(c->w, C_TLS_RESUMED, 1);
		set_events(c, EV_READ);
		start_stream(c);
		do_read(c);
		return;
	}
	r = SSL_get_error(c->ssl, r);
	if (r == SSL_ERROR_WANT_READ)
		set_events(c, EV_READ);
	else if (r == SSL_ERROR_WANT_WRITE)
		set_events(c, EV_READ | EV_WRITE);
	else
		tls_error(c, "TLS handshake", r);
}

int lg_tls_begin(struct lg_conn *c)
{
	c->ssl = SSL_new(g_ssl_ctx);
	if (!c->ssl) {
		lg_conn_fail(c, C_ERR_TLS, "SSL_new failed");
		return -1;
	}
	SSL_set_fd(c->ssl, c->fd);
	SSL_set_connect_state(c->ssl);
	SSL_set_tlsext_host_name(c->ssl, lg_domain_of(c->user));
	SSL_set_app_data(c->ssl, c);
	if (g_sess) {
		SSL_SESSION **slot = sess_slot(c->user);

		pthread_mutex_lock(&sess_lock);
		if (slot && *slot)
			SSL_set_session(c->ssl, *slot);
		pthread_mutex_unlock(&sess_lock);
	}
	c->flags |= CF_TLS;
	c->state = ST_TLS_HS;
	tls_handshake(c);
	return 0;
}

/* Writes what it can; arms the write watcher for the rest. 0 or -1 (gone). */
static int flush(struct lg_conn *c)
{
	struct lg_worker *w = c->w;
	struct lg_buf *q = &c->out;

	if (g_opts.transport == LG_TR_WS) {
		if (c->state != ST_WS_UPGRADE)
			lg_ws_frame_out(c);
		q = &c->wsout;
	}
	while (lg_buf_pending(q) > 0) {
		size_t n = lg_buf_pending(q);
		ssize_t r;

		if (c->ssl) {
			int e;

			r = SSL_write(c->ssl, q->p + q->off,
				      (int)(n > TLS_WRITE_CHUNK ? TLS_WRITE_CHUNK : n));
			if (r <= 0) {
				e = SSL_get_error(c->ssl, (int)r);
				if (e == SSL_ERROR_WANT_WRITE) {
					set_events(c, EV_READ | EV_WRITE);
					return 0;
				}
				if (e == SSL_ERROR_WANT_READ) {
					c->flags |= CF_TLS_WW;
					return 0;
				}
				tls_error(c, "TLS write", e);
				return -1;
			}
			c->flags &= (uint16_t)~CF_TLS_WW;
		} else {
			r = send(c->fd, q->p + q->off, n, MSG_NOSIGNAL | MSG_DONTWAIT);
			if (r < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					set_events(c, EV_READ | EV_WRITE);
					return 0;
				}
				if (errno == EINTR)
					continue;
				lg_conn_fail(c, C_ERR_IO, "write: %s", strerror(errno));
				return -1;
			}
		}
		q->off += (size_t)r;
		lg_ctr_add(w, C_BYTES_OUT, (uint64_t)r);
	}
	lg_buf_reset(q);
	set_events(c, EV_READ);
	return 0;
}

void lg_conn_flush_all(struct lg_worker *w)
{
	struct lg_conn *c = w->dirty, *next;

	w->dirty = NULL;
	for (; c; c = next) {
		next = c->dirty_next;
		c->flags &= (uint16_t)~CF_DIRTY;
		if (c->fd >= 0 && c->state >= ST_WS_UPGRADE)
			flush(c);
	}
}

static void eof(struct lg_conn *c)
{
	if (c->state == ST_CLOSING)
		lg_conn_release(c);
	else
		lg_conn_fail(c, C_ERR_EOF, "server closed the connection (state %d)",
			     c->state);
}

/* One SSL_read; >0 bytes, 0 nothing more now, -1 the connection is gone. */
static ssize_t tls_read(struct lg_conn *c, char *buf, size_t cap)
{
	int r = SSL_read(c->ssl, buf, (int)cap);
	int e;

	if (r > 0)
		return r;
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ)
		return 0;
	if (e == SSL_ERROR_WANT_WRITE) {
		set_events(c, EV_READ | EV_WRITE);
		return 0;
	}
	if (e == SSL_ERROR_ZERO_RETURN ||
	    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
		ERR_clear_error();
		eof(c);
		return -1;
	}
	tls_error(c, "TLS read", e);
	return -1;
}

static void do_read(struct lg_conn *c)
{
	struct lg_worker *w = c->w;

	for (int i = 0; c->ssl || i < READS_PER_WAKE; i++) {
		ssize_t n;

		if (c->ssl) {
			n = tls_read(c, w->rbuf, sizeof(w->rbuf));
			if (n <= 0)
				return;
		} else {
			n = recv(c->fd, w->rbuf, sizeof(w->rbuf), 0);
			if (n == 0) {
				eof(c);
				return;
			}
			if (n < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK)
					return;
				if (errno == EINTR)
					continue;
				lg_conn_fail(c, C_ERR_IO, "read: %s", strerror(errno));
				return;
			}
		}
		lg_ctr_add(w, C_BYTES_IN, (uint64_t)n);
		if (g_opts.transport == LG_TR_WS) {
			if (lg_ws_feed(c, w->rbuf, (size_t)n) != 0)
				return;
		} else if (lg_xmpp_feed(c, w->rbuf, (size_t)n) != 0)
			return;	/* gone, or now in a TLS handshake */
		if (!c->ssl && (size_t)n < sizeof(w->rbuf))
			return;
	}
}

static void connected(struct lg_conn *c)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
		err = errno;
	if (err) {
		lg_conn_fail(c, C_ERR_CONNECT, "connect: %s", strerror(err));
		return;
	}
	if (g_opts.tls == LG_TLS_DIRECT) {
		lg_tls_begin(c);
		return;
	}
	set_events(c, EV_READ);
	start_stream(c);
}

static void io_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct lg_conn *c = lg_container_of(io, struct lg_conn, io);

	switch (c->state) {
	case ST_CONNECTING:
		connected(c);
		return;
	case ST_TLS_HS:
		tls_handshake(c);
		return;
	default:
		break;
	}
	if ((revents & EV_WRITE) || (c->flags & CF_TLS_WW)) {
		if (flush(c) != 0)
			return;
	}
	if (revents & EV_READ)
		do_read(c);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct lg_conn *c = lg_container_of(t, struct lg_conn, timer);

	if (c->state == ST_CLOSING)
		lg_conn_release(c);
	else
		lg_conn_fail(c, C_ERR_TIMEOUT, "not online after %g s (state %d)",
			     g_opts.timeout, c->state);
}
