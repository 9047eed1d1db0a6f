/*
 * nullserver.c - the least an XMPP server can do for build/loadgen, so the
 * generator's own latency floor can be measured at a given load.
 *
 *   build/nullserver [--host 127.0.0.1] --port N [--domain localhost]
 *
 * It speaks only what `loadgen chat --mech PLAIN` sends, with canned
 * answers: the stream header and features, SASL PLAIN (any password),
 * resource bind, the roster get (an empty roster); initial presence is
 * passed over. Each <message/> is forwarded byte for byte to the connection
 * of its addressee, found by the number at the end of the 'to' local part
 * (loadgen's accounts are PREFIX<number>), without parsing its content.
 * One thread, one epoll set, level-triggered; what a read produced is
 * written once per wake-up (as Starling and the generator do). No TLS, no
 * storage, no XML parser: it exists so that bench/perf25.py can compare
 * Starling's p99 with what the generator measures against nothing.
 *
 * Runs until SIGINT or SIGTERM; prints what it forwarded and dropped.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK 65536
#define OUT_CAP (64u << 20)	/* a reader this far behind is dropped */
#define EVENTS 1024

struct ns_buf {
	char *p;
	size_t len, cap;
};

struct ns_conn {
	int fd;
	bool authed, dirty, want_out;
	long user;		/* account number once authenticated, else -1 */
	struct ns_buf in, out;
	struct ns_conn *dirty_next;
};

static const char *s_domain = "localhost";
static int s_ep;
static struct ns_conn **s_conns;	/* by descriptor */
static struct ns_conn **s_users;	/* by account number */
static long s_users_cap;
static struct ns_conn *s_dirty;
static volatile sig_atomic_t s_stop;
static uint64_t s_forwarded, s_dropped;

static void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		perror("nullserver: realloc");
		abort();
	}
	return p;
}

static void buf_add(struct ns_buf *b, const char *s, size_t n)
{
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;

		while (cap < b->len + n)
			cap *= 2;
		b->p = xrealloc(b->p, cap);
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

static void buf_adds(struct ns_buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void out_dirty(struct ns_conn *c)
{
	if (c->dirty)
		return;
	c->dirty = true;
	c->dirty_next = s_dirty;
	s_dirty = c;
}

static void conn_close(struct ns_conn *c)
{
	if (c->fd < 0)
		return;
	if (c->user >= 0 && c->user < s_users_cap && s_users[c->user] == c)
		s_users[c->user] = NULL;
	epoll_ctl(s_ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	s_conns[c->fd] = NULL;
	c->fd = -1;		/* freed after the wake-up: it may be on s_dirty */
}

static void conn_free(struct ns_conn *c)
{
	free(c->in.p);
	free(c->out.p);
	free(c);
}

static void set_out_interest(struct ns_conn *c, bool want)
{
	struct epoll_event ev = { .events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c };

	if (c->want_out == want)
		return;
	c->want_out = want;
	epoll_ctl(s_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_flush(struct ns_conn *c)
{
	size_t done = 0;

	while (done < c->out.len) {
		ssize_t n = write(c->fd, c->out.p + done, c->out.len - done);

		if (n > 0) {
			done += (size_t)n;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			conn_close(c);
			return;
		}
	}
	memmove(c->out.p, c->out.p + done, c->out.len - done);
	c->out.len -= done;
	set_out_interest(c, c->out.len > 0);
}

/* The value of attribute name (name=' or name=") inside a start tag. */
static bool tag_attr(const char *tag, size_t len, const char *name,
		     const char **val, size_t *vlen)
{
	size_t nl = strlen(name);
	const char *end = tag + len, *p = tag;

	while ((p = memmem(p, (size_t)(end - p), name, nl)) != NULL) {
		const char *q = p + nl, *close;

		if (p > tag && p[-1] == ' ' && q + 1 < end && q[0] == '=' &&
		    (q[1] == '\'' || q[1] == '"')) {
			close = memchr(q + 2, q[1], (size_t)(end - q - 2));
			if (!close)
				return false;
			*val = q + 2;
			*vlen = (size_t)(close - q - 2);
			return true;
		}
		p = q;
	}
	return false;
}

/* The number that ends a JID's local part (u123@host/r: 123), or -1. */
static long local_number(const char *s, size_t len)
{
	const char *at = memchr(s, '@', len);
	const char *p = at ? at : s + len;
	long v = 0, mul = 1;

	if (p == s || p[-1] < '0' || p[-1] > '9')
		return -1;
	while (p > s && p[-1] >= '0' && p[-1] <= '9' && mul <= 100000000) {
		v += (p[-1] - '0') * mul;
		mul *= 10;
		p--;
	}
	return v;
}

static int b64_value(char ch)
{
	if (ch >= 'A' && ch <= 'Z')
		return ch - 'A';
	if (ch >= 'a' && ch <= 'z')
		return ch - 'a' + 26;
	if (ch >= '0' && ch <= '9')
		return ch - '0' + 52;
	return ch == '+' ? 62 : ch == '/' ? 63 : -1;
}

/* SASL PLAIN: base64 of authzid NUL authcid NUL password; the authcid. */
static long plain_user(const char *s, size_t len)
{
	char raw[512], *nul;
	size_t n = 0;
	unsigned acc = 0;
	int bits = 0, v;

	for (size_t i = 0; i < len && n < sizeof(raw); i++) {
		if ((v = b64_value(s[i])) < 0)
			continue;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			raw[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	nul = memchr(raw, '\0', n);
	if (!nul)
		return -1;
	nul++;
	return local_number(nul, strnlen(nul, n - (size_t)(nul - raw)));
}

static void bind_user(struct ns_conn *c, long user)
{
	if (user >= s_users_cap) {
		long cap = s_users_cap ? s_users_cap : 1024;

		while (cap <= user)
			cap *= 2;
		s_users = xrealloc(s_users, (size_t)cap * sizeof(*s_users));
		memset(s_users + s_users_cap, 0, (size_t)(cap - s_users_cap) * sizeof(*s_users));
		s_users_cap = cap;
	}
	c->user = user;
	s_users[user] = c;
}

static void stream_open(struct ns_conn *c)
{
	buf_adds(&c->out, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		 "xmlns:stream='http://etherx.jabber.org/streams' version='1.0' from='");
	buf_adds(&c->out, s_domain);
	buf_adds(&c->out, "' id='null'><stream:features>");
	buf_adds(&c->out, c->authed ?
		 "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>" :
		 "<mechanisms xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
		 "<mechanism>PLAIN</mechanism></mechanisms>");
	buf_adds(&c->out, "</stream:features>");
	out_dirty(c);
}

static void on_iq(struct ns_conn *c, const char *tag, size_t tlen)
{
	const char *id;
	size_t idlen;
	char jid[160];

	if (!tag_attr(tag, tlen, "id", &id, &idlen))
		return;
	if (idlen == 4 && memcmp(id, "bind", 4) == 0 && c->user >= 0) {
		snprintf(jid, sizeof(jid), "u%ld@%s/lg", c->user, s_domain);
		buf_adds(&c->out, "<iq type='result' id='bind'><bind xmlns='urn:ietf:params:"
			 "xml:ns:xmpp-bind'><jid>");
		buf_adds(&c->out, jid);
		buf_adds(&c->out, "</jid></bind></iq>");
	} else {
		buf_adds(&c->out, "<iq type='result' id='");
		buf_add(&c->out, id, idlen);
		buf_adds(&c->out, idlen == 6 && memcmp(id, "roster", 6) == 0 ?
			 "'><query xmlns='jabber:iq:roster'/></iq>" : "'/>");
	}
	out_dirty(c);
}

static void on_message(const char *el, size_t len, const char *tag, size_t tlen)
{
	const char *to;
	size_t tolen;
	long user;
	struct ns_conn *d;

	if (!tag_attr(tag, tlen, "to", &to, &tolen) ||
	    (user = local_number(to, tolen)) < 0 || user >= s_users_cap ||
	    !(d = s_users[user]) || d->fd < 0 || d->out.len > OUT_CAP) {
		s_dropped++;
		return;
	}
	buf_add(&d->out, el, len);
	out_dirty(d);
	s_forwarded++;
}

/* One top-level element el[0..len) whose start tag is tag[0..tlen). */
static void on_element(struct ns_conn *c, const char *name, size_t nlen,
		       const char *el, size_t len, const char *tag, size_t tlen)
{
	if (nlen == 7 && memcmp(name, "message", 7) == 0) {
		if (c->authed)
			on_message(el, len, tag, tlen);
	} else if (nlen == 2 && memcmp(name, "iq", 2) == 0) {
		if (c->authed)
			on_iq(c, tag, tlen);
	} else if (nlen == 4 && memcmp(name, "auth", 4) == 0 && !c->authed) {
		long user = plain_user(tag + tlen, len - tlen - strlen("</auth>"));

		if (user < 0) {
			buf_adds(&c->out, "<failure xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
				 "<not-authorized/></failure>");
		} else {
			bind_user(c, user);
			c->authed = true;
			buf_adds(&c->out, "<success xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>");
		}
		out_dirty(c);
	}
	/* presence and anything else: passed over */
}

/* Takes every complete top-level element off the front of c->in. */
static void conn_scan(struct ns_conn *c)
{
	char *p = c->in.p, *end = c->in.p + c->in.len;

	while (p < end && c->fd >= 0) {
		char *gt, *name, *close;
		size_t nlen;

		while (p < end && *p != '<')
			p++;
		if (p + 2 > end || !(gt = memchr(p, '>', (size_t)(end - p))))
			break;
		if (p[1] == '?') {			/* <?xml ...?> */
			p = gt + 1;
			continue;
		}
		if (p[1] == '/') {			/* </stream:stream> */
			buf_adds(&c->out, "</stream:stream>");
			conn_flush(c);
			conn_close(c);
			return;
		}
		name = p + 1;
		nlen = strcspn(name, " />");
		if (nlen == 13 && memcmp(name, "stream:stream", 13) == 0) {
			stream_open(c);
			p = gt + 1;
			continue;
		}
		if (gt[-1] == '/') {
			close = gt + 1;
		} else {
			char etag[64];
			int n = snprintf(etag, sizeof(etag), "</%.*s>", (int)nlen, name);
			char *e = memmem(gt, (size_t)(end - gt), etag, (size_t)n);

			if (!e)
				break;
			close = e + n;
		}
		on_element(c, name, nlen, p, (size_t)(close - p), p, (size_t)(gt + 1 - p));
		p = close;
	}
	if (c->fd >= 0) {
		c->in.len = (size_t)(end - p);
		memmove(c->in.p, p, c->in.len);
	}
}

static void conn_read(struct ns_conn *c)
{
	for (;;) {
		ssize_t n;

		if (c->in.cap - c->in.len < READ_CHUNK) {
			c->in.cap = c->in.len + READ_CHUNK;
			c->in.p = xrealloc(c->in.p, c->in.cap);
		}
		n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
		if (n > 0) {
			c->in.len += (size_t)n;
			conn_scan(c);
			if (c->fd < 0 || (size_t)n < READ_CHUNK)
				return;
		} else if (n < 0 && errno == EINTR) {
			continue;
		} else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		} else {
			conn_close(c);
			return;
		}
	}
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;
		struct epoll_event ev = { .events = EPOLLIN };
		struct ns_conn *c;

		if (fd < 0)
			return;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c = calloc(1, sizeof(*c));
		if (!c)
			abort();
		c->fd = fd;
		c->user = -1;
		s_conns[fd] = c;
		ev.data.ptr = c;
		epoll_ctl(s_ep, EPOLL_CTL_ADD, fd, &ev);
	}
}

static void on_signal(int sig)
{
	(void)sig;
	s_stop = 1;
}

static int listen_on(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0 || inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	const char *host = "127.0.0.1";
	int port = 0, lfd;
	struct rlimit rl;
	struct epoll_event ev = { .events = EPOLLIN }, evs[EVENTS];
	struct ns_conn listener_tag;

	for (int i = 1; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--host") == 0)
			host = argv[i + 1];
		else if (strcmp(argv[i], "--port") == 0)
			port = atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--domain") == 0)
			s_domain = argv[i + 1];
	}
	if (port <= 0) {
		fputs("usage: nullserver [--host A] --port N [--domain D]\n", stderr);
		return 2;
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	s_conns = calloc((size_t)rl.rlim_cur + 1, sizeof(*s_conns));
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	if ((lfd = listen_on(host, port)) < 0 || (s_ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
	    !s_conns) {
		perror("nullserver");
		return 1;
	}
	ev.data.ptr = &listener_tag;
	epoll_ctl(s_ep, EPOLL_CTL_ADD, lfd, &ev);
	while (!s_stop) {
		int n = epoll_wait(s_ep, evs, EVENTS, 1000);
		struct ns_conn *c, *dead = NULL;

		for (int i = 0; i < n; i++) {
			c = evs[i].data.ptr;
			if (c == &listener_tag) {
				on_accept(lfd);
				continue;
			}
			if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
				conn_flush(c);
			if (c->fd >= 0 && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)))
				conn_read(c);
			if (c->fd < 0 && !c->dirty) {
				c->dirty = true;	/* freed below, once */
				c->dirty_next = dead;
				dead = c;
			}
		}
		while ((c = s_dirty) != NULL) {
			s_dirty = c->dirty_next;
			c->dirty = false;
			if (c->fd >= 0)
				conn_flush(c);
			if (c->fd < 0) {
				c->dirty = true;
				c->dirty_next = dead;
				dead = c;
			}
		}
		while ((c = dead) != NULL) {
			dead = c->dirty_next;
			conn_free(c);
		}
	}
	fprintf(stderr, "nullserver: %llu forwarded, %llu dropped\n",
		(unsigned long long)s_forwarded, (unsigned long long)s_dropped);
	return 0;
}
