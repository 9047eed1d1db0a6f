/*
 * serve.c - a trivial XMPP server, to measure the generator itself.
 *
 *   loadgen serve --port N [--host 127.0.0.1] [--domain localhost]
 *
 * It accepts any PLAIN login, binds any resource, answers every iq with an
 * empty result, ignores presence and routes <message/> to the connection
 * bound to the local part of 'to'. No TLS, no rosters, no storage: just
 * enough for "loadgen chat --mech PLAIN" to find out how many messages one
 * generator process can push and take. It runs until SIGINT or SIGTERM.
 */
#include "lg.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUCKETS 65536
#define OUT_CAP (64u << 20)	/* a reader this far behind is dropped */

struct srv_conn {
	ev_io io;
	int fd;
	XML_Parser xp;
	int depth;
	bool authed, closed, dirty, restart, bye, in_bind, in_roster;
	int kind;		/* 1 auth, 2 iq, 3 message, 4 other */
	char *user;		/* local part once authenticated */
	char to[64];		/* message: local part of 'to' */
	char id[64];
	struct lg_buf text;
	struct lg_buf out;
	struct srv_conn *dirty_next, *hash_next;
};

static struct ev_loop *s_loop;
static struct srv_conn *s_dirty;
static struct srv_conn *s_users[BUCKETS];
static char s_rbuf[65536];
static uint64_t s_routed, s_dropped;

static unsigned bucket(const char *s)
{
	uint32_t h = 2166136261u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h % BUCKETS;
}

static struct srv_conn *find_user(const char *user)
{
	struct srv_conn *c = s_users[bucket(user)];

	while (c && strcmp(c->user, user) != 0)
		c = c->hash_next;
	return c;
}

static void unhash(struct srv_conn *c)
{
	struct srv_conn **pp = &s_users[bucket(c->user)];

	for (; *pp; pp = &(*pp)->hash_next)
		if (*pp == c) {
			*pp = c->hash_next;
			return;
		}
}

static void out_dirty(struct srv_conn *c)
{
	if (c->dirty || c->closed)
		return;
	c->dirty = true;
	c->dirty_next = s_dirty;
	s_dirty = c;
}

static void conn_free(struct srv_conn *c)
{
	XML_ParserFree(c->xp);
	free(c->user);
	lg_buf_free(&c->text);
	lg_buf_free(&c->out);
	free(c);
}

/* Closes now; the memory goes once the connection is off the flush list. */
static void conn_close(struct srv_conn *c)
{
	if (c->closed)
		return;
	c->closed = true;
	ev_io_stop(s_loop, &c->io);
	close(c->fd);
	if (c->user && find_user(c->user) == c)
		unhash(c);
	if (!c->dirty)
		conn_free(c);
}

static void conn_flush(struct srv_conn *c)
{
	while (lg_buf_pending(&c->out)) {
		ssize_t n = send(c->fd, c->out.p + c->out.off, lg_buf_pending(&c->out),
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0) {
			if (errno == EAGAIN) {
				ev_io_stop(s_loop, &c->io);
				ev_io_set(&c->io, c->fd, EV_READ | EV_WRITE);
				ev_io_start(s_loop, &c->io);
				return;
			}
			conn_close(c);
			return;
		}
		c->out.off += (size_t)n;
	}
	lg_buf_reset(&c->out);
	if (c->bye) {
		conn_close(c);
		return;
	}
	if (c->io.events & EV_WRITE) {
		ev_io_stop(s_loop, &c->io);
		ev_io_set(&c->io, c->fd, EV_READ);
		ev_io_start(s_loop, &c->io);
	}
}

static void flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	struct srv_conn *c = s_dirty, *next;

	s_dirty = NULL;
	for (; c; c = next) {
		next = c->dirty_next;
		c->dirty = false;
		if (c->closed)
			conn_free(c);
		else
			conn_flush(c);
	}
}

static void send_str(struct srv_conn *c, const char *s)
{
	lg_buf_adds(&c->out, s);
	out_dirty(c);
}

static const char *attr(const char **atts, const char *name)
{
	for (; atts[0]; atts += 2)
		if (strcmp(atts[0], name) == 0)
			return atts[1];
	return NULL;
}

static void stream_open(struct srv_conn *c)
{
	lg_buf_printf(&c->out, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		      "xmlns:stream='http://etherx.jabber.org/streams' id='lg' from='%s' "
		      "version='1.0'><stream:features>", g_opts.domain);
	if (c->authed)
		lg_buf_adds(&c->out, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>");
	else
		lg_buf_adds(&c->out, "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			    "<mechanism>PLAIN</mechanism></mechanisms>");
	send_str(c, "</stream:features>");
}

static void on_start(void *ud, const char *name, const char **atts)
{
	struct srv_conn *c = ud;
	int d = ++c->depth;
	const char *v;

	if (d == 1) {
		stream_open(c);
	} else if (d == 2) {
		lg_buf_reset(&c->text);
		c->in_bind = c->in_roster = false;
		if (strcmp(name, "urn:ietf:params:xml:ns:xmpp-sasl auth") == 0) {
			c->kind = 1;
		} else if (strcmp(name, "jabber:client iq") == 0) {
			c->kind = 2;
			v = attr(atts, "id");
			snprintf(c->id, sizeof(c->id), "%s", v ? v : "");
		} else if (strcmp(name, "jabber:client message") == 0) {
			c->kind = 3;
			v = attr(atts, "to");
			snprintf(c->to, sizeof(c->to), "%.*s", v ? (int)strcspn(v, "@/") : 0,
				 v ? v : "");
		} else {
			c->kind = 4;
		}
	} else if (d == 3 && c->kind == 2) {
		c->in_bind = strcmp(name, "urn:ietf:params:xml:ns:xmpp-bind bind") == 0;
		c->in_roster = strcmp(name, "jabber:iq:roster query") == 0;
	}
}

static void on_text(void *ud, const char *s, int len)
{
	struct srv_conn *c = ud;

	if ((c->kind == 1 && c->depth == 2) || (c->kind == 3 && c->depth == 3))
		lg_buf_add(&c->text, s, (size_t)len);
}

static void on_auth(struct srv_conn *c)
{
	unsigned char dec[512];
	int n = lg_b64_decode(dec, sizeof(dec) - 1, c->text.p ? c->text.p : "", c->text.len);
	const char *user;

	if (n <= 0 || c->authed) {
		send_str(c, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			 "<not-authorized/></failure>");
		return;
	}
	dec[n] = '\0';
	user = memchr(dec, '\0', (size_t)n);
	if (!user || user + 1 >= (const char *)dec + n) {
		send_str(c, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
			 "<malformed-request/></failure>");
		return;
	}
	c->user = lg_xstrdup(user + 1);
	c->authed = true;
	send_str(c, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
	c->restart = true;
	XML_StopParser(c->xp, XML_FALSE);
}

static void on_iq(struct srv_conn *c)
{
	struct lg_buf *b = &c->out;

	lg_buf_adds(b, "<iq type='result' id='");
	lg_xml_escape(b, c->id);
	if (c->in_bind && c->user) {
		struct srv_conn *old = find_user(c->user);

		if (old)
			unhash(old);
		c->hash_next = s_users[bucket(c->user)];
		s_users[bucket(c->user)] = c;
		lg_buf_adds(b, "'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><jid>");
		lg_xml_escape(b, c->user);
		lg_buf_printf(b, "@%s/lg</jid></bind></iq>", g_opts.domain);
	} else if (c->in_roster) {
		lg_buf_adds(b, "'><query xmlns='jabber:iq:roster'/></iq>");
	} else {
		lg_buf_adds(b, "'/>");
	}
	out_dirty(c);
}

static void on_message(struct srv_conn *c)
{
	struct srv_conn *to = c->to[0] && c->user ? find_user(c->to) : NULL;
	struct lg_buf *b;

	if (!to || lg_buf_pending(&to->out) > OUT_CAP) {
		s_dropped++;
		return;
	}
	b = &to->out;
	lg_buf_adds(b, "<message type='chat' from='");
	lg_xml_escape(b, c->user);
	lg_buf_printf(b, "@%s/lg' to='", g_opts.domain);
	lg_xml_escape(b, to->user);
	lg_buf_printf(b, "@%s/lg'><body>", g_opts.domain);
	lg_xml_escape(b, c->text.p ? c->text.p : "");
	lg_buf_adds(b, "</body></message>");
	out_dirty(to);
	s_routed++;
}

static void on_end(void *ud, const char *name)
{
	struct srv_conn *c = ud;
	int d = c->depth--;

	if (d == 1) {
		send_str(c, "</stream:stream>");
		c->bye = true;
		XML_StopParser(c->xp, XML_FALSE);
		return;
	}
	if (d != 2)
		return;
	if (c->kind == 1)
		on_auth(c);
	else if (c->kind == 2)
		on_iq(c);
	else if (c->kind == 3)
		on_message(c);
}

static void parser_init(struct srv_conn *c)
{
	if (!c->xp)
		c->xp = XML_ParserCreateNS(NULL, ' ');
	else
		XML_ParserReset(c->xp, NULL);
	if (!c->xp)
		abort();
	lg_expat_setup(c->xp, c);
	XML_SetElementHandler(c->xp, on_start, on_end);
	XML_SetCharacterDataHandler(c->xp, on_text);
	c->depth = 0;
}

static void conn_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	struct srv_conn *c = lg_container_of(io, struct srv_conn, io);

	if (revents & EV_WRITE) {
		conn_flush(c);
		if (c->closed)
			return;
	}
	if (!(revents & EV_READ))
		return;
	for (int i = 0; i < 8 && !c->closed; i++) {
		ssize_t n = recv(c->fd, s_rbuf, sizeof(s_rbuf), 0);

		if (n <= 0) {
			if (n < 0 && (errno == EAGAIN || errno == EINTR))
				return;
			conn_close(c);
			return;
		}
		if (XML_Parse(c->xp, s_rbuf, (int)n, XML_FALSE) == XML_STATUS_ERROR &&
		    XML_GetErrorCode(c->xp) != XML_ERROR_ABORTED) {
			conn_close(c);
			return;
		}
		if (c->bye)
			return;	/* closed once the goodbye is written */
		if (c->restart) {
			c->restart = false;
			parser_init(c);
		}
		if ((size_t)n < sizeof(s_rbuf))
			return;
	}
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(io->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct srv_conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE)
				fprintf(stderr, "loadgen serve: out of descriptors\n");
			return;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = lg_xcalloc(1, sizeof(*c));
		c->fd = fd;
		parser_init(c);
		ev_io_init(&c->io, conn_cb, fd, EV_READ);
		ev_io_start(s_loop, &c->io);
	}
}

static void stop_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

int lg_serve(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	ev_io lio;
	ev_prepare prep;
	ev_signal sint, sterm;
	int fd, one = 1;

	sa.sin_port = htons((uint16_t)g_opts.port);
	if (inet_pton(AF_INET, g_opts.host, &sa.sin_addr) != 1) {
		fprintf(stderr, "loadgen serve: bad --host %s\n", g_opts.host);
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 4096) != 0) {
		fprintf(stderr, "loadgen serve: %s:%d: %s\n", g_opts.host, g_opts.port,
			strerror(errno));
		close(fd);
		return -1;
	}
	s_loop = EV_DEFAULT;
	ev_io_init(&lio, accept_cb, fd, EV_READ);
	ev_io_start(s_loop, &lio);
	ev_prepare_init(&prep, flush_cb);
	ev_prepare_start(s_loop, &prep);
	ev_signal_init(&sint, stop_cb, SIGINT);
	ev_signal_start(s_loop, &sint);
	ev_signal_init(&sterm, stop_cb, SIGTERM);
	ev_signal_start(s_loop, &sterm);
	fprintf(stderr, "loadgen serve: listening on %s:%d\n", g_opts.host, g_opts.port);
	ev_run(s_loop, 0);
	fprintf(stderr, "loadgen serve: routed %llu, dropped %llu\n",
		(unsigned long long)s_routed, (unsigned long long)s_dropped);
	close(fd);
	return 0;
}
