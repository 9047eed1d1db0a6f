/* node_link.c - the links between nodes: a Unix socket per pair of the
 * workers of one server, or TCP with TLS between the nodes of a cluster
 * (node_tcp.c), carrying binary frames; the backend of node.h
 * (node_link.h). */
#include "node_link.h"
#include "node.h"
#include "node_frame.h"
#include "node_tcp.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <arpa/inet.h>
#include <netinet/tcp.h>

#define HELLO_TIMEOUT 10.	/* an accepted link names itself by then */
#define LINK_QUEUE_MAX ((size_t)1 << 30)

/* One link to another node. */
struct link {
	struct conn *conn;	/* NULL once closed */
	unsigned peer;		/* 0 until its HELLO named it (accepted) */
	pid_t pid;		/* the peer's, from its HELLO */
	unsigned epoch;		/* node_up()'s, for what the peer tells */
	bool up;
	bool reading;		/* in link_data: a close only marks it dead */
	bool dead;
	double since;		/* accepted at */
	struct sbuf in;		/* the start of a frame read in part */
	/* Forwarded stanzas wait for the storage writes they may depend
	 * on: queued to the connection after the iteration's commit, or,
	 * when the commit handed archive appends to the writer, the first
	 * `mark` bytes once that hand-over is committed
	 * (node_link_committed/_landed). So whatever a session on another
	 * node is sent, it can read there (its archive, offline messages).
	 * The directory's changes go at once (with the iteration's output):
	 * they depend on no write, and the other node had better know a
	 * session's state before the client itself could tell anyone.
	 * Either way a link's bytes of an iteration go out in one writev. */
	struct sbuf pending;
	size_t mark;
	struct link *next;	/* every link, named or not */
};

static unsigned self, count;
static pid_t master;		/* the process that started us (workers.c) */
static char *sock_dir;
static struct link *links[NODE_MAX + 1];	/* by peer, when up or coming */
static struct link *all;
static int listen_fd = -1;
static ev_io accept_w;
static ev_timer retry_w;
static struct sbuf out;
/* A cluster's links (node_link_start_tcp): TCP with TLS to each node's
 * address as its directory tells it (node_link_peer). */
static bool tcp;
static char *peer_addr[NODE_MAX + 1];
void (*node_link_dir_hook)(struct session *s, bool bound);

static void sock_path(unsigned node, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/node-%u.sock", sock_dir, node);
}

static void link_close(struct link *l, const char *reason)
{
	if (l->conn)
		conn_close(l->conn, reason);
}

/* --- frames out --------------------------------------------------------- */

/* The frame in out to link l (NULL: every link up). */
static void send_out(struct link *l)
{
	if (l) {
		if (l->conn)
			conn_send(l->conn, out.p, out.len);
	} else {
		for (unsigned i = 1; i <= count; i++)
			if (links[i] && links[i]->up && links[i]->conn)
				conn_send(links[i]->conn, out.p, out.len);
	}
	sbuf_recycle(&out, 65536);
}

/* The first n pending bytes of l go to its connection, in pieces the
 * size of the write queue's pooled chunks (no large allocation per
 * iteration); the buffer keeps its memory for the next iteration. */
#define PIECE (16 * 1024)
#define PENDING_KEEP ((size_t)4 << 20)

static void release(struct link *l, size_t n)
{
	if (!n)
		return;
	for (size_t at = 0; at < n && l->conn; at += PIECE)
		conn_send(l->conn, l->pending.p + at, MIN((size_t)PIECE, n - at));
	memmove(l->pending.p, l->pending.p + n, l->pending.len - n);
	l->pending.len -= n;
	if (!l->pending.len)
		sbuf_recycle(&l->pending, PENDING_KEEP);
}

void node_link_committed(bool handed)
{
	for (unsigned i = 1; i <= count; i++) {
		struct link *l = links[i];
		if (!l)
			continue;
		if (handed)
			l->mark = l->pending.len;
		else
			release(l, l->pending.len);
	}
}

void node_link_landed(void)
{
	for (unsigned i = 1; i <= count; i++) {
		struct link *l = links[i];
		if (!l)
			continue;
		release(l, l->mark);
		l->mark = 0;
	}
}

void node_link_flush(void)
{
	for (unsigned i = 1; i <= count; i++)
		if (links[i] && links[i]->conn)
			conn_flush(links[i]->conn);
}

static void put_hello(struct link *l)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_HELLO);
	put_u16(&out, NODE_LINK_VERSION);
	put_u16(&out, self);
	put_u16(&out, l->peer);
	put_u32(&out, (uint32_t)getpid());
	frame_end(&out, at);
	send_out(l);
}

static void put_bind(struct session *s, struct link *l)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_BIND);
	put_str(&out, s->id);
	put_str(&out, s->full_jid);
	frame_end(&out, at);
	send_out(l);
}

static void put_field(struct session *s, const char *name,
		      const struct node_value *v, struct link *l)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_FIELD);
	put_str(&out, s->full_jid);
	put_str(&out, name);
	sbuf_addc(&out, (char)v->type);
	switch (v->type) {
	case NV_BOOLEAN:
		sbuf_addc(&out, (char)v->b);
		break;
	case NV_NUMBER: {
		uint64_t bits;
		memcpy(&bits, &v->n, sizeof(bits));
		put_u32(&out, (uint32_t)(bits >> 32));
		put_u32(&out, (uint32_t)bits);
		break;
	}
	case NV_STRING:
		sbuf_adds(&out, v->s);
		break;
	case NV_STANZA:
		st_serialize(v->stanza, NS_CLIENT, &out);
		break;
	case NV_NIL:
		break;
	}
	frame_end(&out, at);
	send_out(l);
}

static void emit_field(struct session *s, const char *name,
		       const struct node_value *v, void *l)
{
	put_field(s, name, v, l);
}

static void dump_one(struct session *s, void *l)
{
	put_bind(s, l);
	if (node_fields_hook)
		node_fields_hook(s, emit_field, l);
}

static void be_bound(struct session *s)
{
	dump_one(s, NULL);
	if (node_link_dir_hook)
		node_link_dir_hook(s, true);
}

static void be_unbound(struct session *s)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_UNBIND);
	put_str(&out, s->full_jid);
	frame_end(&out, at);
	send_out(NULL);
	if (node_link_dir_hook)
		node_link_dir_hook(s, false);
}

static void be_field(struct session *s, const char *name, const struct node_value *v)
{
	put_field(s, name, v, NULL);
}

/* Serialized straight into the link's pending bytes: no copy. */
static int be_forward(unsigned node, const char *full_jid, const struct st_node *stanza)
{
	struct link *l = node >= 1 && node <= count ? links[node] : NULL;
	size_t at;

	if (!l || !l->up || !l->conn)
		return -ENOTCONN;
	at = frame_begin(&l->pending, NODE_FRAME_ROUTE);
	sbuf_addc(&l->pending, (char)node_route_flags(full_jid, stanza));
	put_str(&l->pending, full_jid);
	st_serialize(stanza, NS_CLIENT, &l->pending);
	frame_end(&l->pending, at);
	return 0;
}

static void be_close(unsigned node, const char *full_jid, const char *condition)
{
	struct link *l = node >= 1 && node <= count ? links[node] : NULL;
	size_t at;

	if (!l || !l->up)
		return;
	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_CLOSE);
	put_str(&out, full_jid);
	put_str(&out, condition);
	frame_end(&out, at);
	send_out(l);
}

static void be_tell(const char *host, const char *event, const char *username)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_TELL);
	put_str(&out, host);
	put_str(&out, event);
	put_str(&out, username);
	frame_end(&out, at);
	send_out(NULL);
}

static void be_admin(const char *line)
{
	size_t at;

	sbuf_reset(&out);
	at = frame_begin(&out, NODE_FRAME_ADMIN);
	put_str(&out, line);
	frame_end(&out, at);
	send_out(NULL);
}

/* The master passes the reload on to the other workers and reads the
 * config again itself (core/workers.c). */
static int be_reload_others(void)
{
	if (tcp)
		return -ENOTSUP;	/* each machine's operator reloads its node */
	if (master <= 1 || getppid() != master)
		return -ESRCH;	/* the master is gone: we stop soon too */
	return kill(master, SIGHUP) == 0 ? 0 : -errno;
}

static const struct node_backend link_backend = {
	.bound = be_bound,
	.unbound = be_unbound,
	.field = be_field,
	.forward = be_forward,
	.close = be_close,
	.reload_others = be_reload_others,
	.tell = be_tell,
	.admin = be_admin,
};

/* --- frames in ---------------------------------------------------------- */

#define STR_MAX (3 * 1024 + 8)	/* a full JID's parts, separators, NUL */

static void link_up(struct link *l);

/* HELLO: the peer names itself (and, connecting to us, the link). */
static bool got_hello(struct link *l, struct cursor *c)
{
	unsigned version, from, to;
	uint32_t pid;

	if (!get_u16(c, &version) || !get_u16(c, &from) || !get_u16(c, &to) ||
	    !get_u32(c, &pid) || version != NODE_LINK_VERSION || to != self ||
	    from < 1 || from > count || from == self || (l->peer && from != l->peer)) {
		log_warn("node link: refusing a peer that is not a node of this server");
		return false;
	}
	l->pid = (pid_t)pid;
	if (!l->peer) {		/* accepted: it is node `from` */
		l->peer = from;
		if (links[from] && links[from] != l) {	/* it started again */
			struct link *old = links[from];
			links[from] = NULL;
			link_close(old, "a newer link");
		}
		links[from] = l;
		put_hello(l);
	}
	link_up(l);
	return true;
}

static void got_field(struct link *l, struct cursor *c)
{
	char jid[STR_MAX], name[256];
	unsigned type;
	struct node_value v = { .type = NV_NIL };
	struct st_doc *doc = NULL;
	struct sbuf text;

	if (!get_str(c, jid, sizeof(jid)) || !get_str(c, name, sizeof(name)) ||
	    !get_u8(c, &type))
		return;
	sbuf_init(&text);
	switch (type) {
	case NV_BOOLEAN: {
		unsigned b;
		if (!get_u8(c, &b))
			goto out;
		v.type = NV_BOOLEAN;
		v.b = b != 0;
		break;
	}
	case NV_NUMBER: {
		uint32_t hi, lo;
		uint64_t bits;
		if (!get_u32(c, &hi) || !get_u32(c, &lo))
			goto out;
		bits = (uint64_t)hi << 32 | lo;
		v.type = NV_NUMBER;
		memcpy(&v.n, &bits, sizeof(v.n));
		break;
	}
	case NV_STRING:
		sbuf_add(&text, c->p, (size_t)(c->end - c->p));
		sbuf_addc(&text, '\0');
		v.type = NV_STRING;
		v.s = text.p;
		break;
	case NV_STANZA:
		if (!(doc = node_parse((const char *)c->p, (size_t)(c->end - c->p))))
			goto out;
		v.type = NV_STANZA;
		v.stanza = doc->root;
		break;
	case NV_NIL:
		break;
	default:
		goto out;
	}
	node_remote_field(l->peer, jid, name, &v);
out:
	if (doc)
		st_doc_unref(doc);
	sbuf_free(&text);
}

/* One whole frame: false when the link must close. */
static bool got_frame(struct link *l, unsigned type, struct cursor *c)
{
	char jid[STR_MAX], arg[STR_MAX];
	unsigned flags;

	if (type == NODE_FRAME_HELLO)
		return !l->up && got_hello(l, c);
	if (!l->up)
		return false;	/* nothing before the HELLOs */
	switch (type) {
	case NODE_FRAME_ROUTE:
		if (get_u8(c, &flags) && get_str(c, jid, sizeof(jid)))
			node_deliver_bytes(l->peer, jid, flags, (const char *)c->p,
					   (size_t)(c->end - c->p));
		break;
	case NODE_FRAME_BIND:
		if (get_str(c, arg, sizeof(arg)) && get_str(c, jid, sizeof(jid)))
			node_remote_bind(l->peer, arg, jid);
		break;
	case NODE_FRAME_UNBIND:
		if (get_str(c, jid, sizeof(jid)))
			node_remote_unbind(l->peer, jid);
		break;
	case NODE_FRAME_FIELD:
		got_field(l, c);
		break;
	case NODE_FRAME_CLOSE:
		if (get_str(c, jid, sizeof(jid)) && get_str(c, arg, sizeof(arg)))
			node_close_local(jid, arg);
		break;
	case NODE_FRAME_ADMIN:
		if (get_str(c, arg, sizeof(arg)))
			node_admin(l->peer, arg);
		break;
	case NODE_FRAME_TELL: {
		char event[256];
		if (get_str(c, arg, sizeof(arg)) && get_str(c, event, sizeof(event)) &&
		    get_str(c, jid, sizeof(jid)))
			node_told(l->peer, arg, event, jid);
		break;
	}
	default:
		log_debug("node link %u: a frame of type %u skipped", l->peer, type);
		break;
	}
	return true;
}

/* The whole frames of buf: how many bytes they took (the rest starts a
 * frame), or -1 when the link must close. */
static ssize_t got_frames(struct link *l, const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t used = 0;

	while (!l->dead && len - used >= 4) {
		uint32_t n = frame_size(buf + used);
		if (n < 1 || n > NODE_FRAME_MAX) {
			log_warn("node link %u: a frame of %u bytes", l->peer, n);
			return -1;
		}
		if (len - used - 4 < n)
			break;
		struct cursor c = { p + used + 5, p + used + 4 + n };
		if (!got_frame(l, p[used + 4], &c))
			return -1;
		used += 4 + (size_t)n;
	}
	return (ssize_t)used;
}

static void link_free(struct link *l)
{
	for (struct link **pp = &all; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	sbuf_free(&l->in);
	sbuf_free(&l->pending);
	free(l);
}

/* Bytes read: a frame begun in an earlier read is completed in l->in
 * (taking only its own bytes: l->in stays the size of one frame), the
 * whole frames that follow are read where they are, and the start of
 * the next one is kept. */
static void link_data(struct conn *conn, const char *buf, size_t len)
{
	struct link *l = conn->owner;
	ssize_t used = 0;

	l->reading = true;
	if (l->in.len) {
		size_t take = l->in.len < 4 ? MIN(4 - l->in.len, len) : 0;
		sbuf_add(&l->in, buf, take);
		buf += take;
		len -= take;
		if (l->in.len >= 4) {
			uint32_t n = frame_size(l->in.p);
			take = n > NODE_FRAME_MAX ? 0 : MIN(4 + (size_t)n - l->in.len, len);
			sbuf_add(&l->in, buf, take);
			buf += take;
			len -= take;
			if (l->in.len == 4 + (size_t)n || n > NODE_FRAME_MAX) {
				used = got_frames(l, l->in.p, l->in.len);
				sbuf_recycle(&l->in, 65536);
			}
		}
	}
	if (used >= 0 && !l->dead && len) {
		used = got_frames(l, buf, len);
		if (used >= 0 && (size_t)used < len)
			sbuf_add(&l->in, buf + used, len - (size_t)used);
	}
	l->reading = false;
	if (l->dead)
		link_free(l);
	else if (used < 0)
		link_close(l, "not a node link");
}

/* The link to peer is up: every session of ours goes to it. */
static void link_up(struct link *l)
{
	l->up = true;
	l->epoch = node_up(l->peer);
	log_info("node link %u <-> %u up", self, l->peer);
	node_each_local(dump_one, l);
}

/* Across machines the HELLO goes once TLS is up (link_tls_ready). */
static void link_connected(struct conn *conn)
{
	if (tcp)
		conn_start_tls_client(conn, node_tcp_client(), NULL);
	else
		put_hello(conn->owner);
}

static void link_tls_ready(struct conn *conn)
{
	struct link *l = conn->owner;

	if (l->peer)		/* ours: we speak first */
		put_hello(l);
}

/* Whether process pid is gone (or only a zombie its parent has yet to
 * reap): its sessions died with it. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	if (pid <= 0 || tcp)
		return false;	/* a cluster's: its directory says (node_link_died) */
	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if (!(f = fopen(path, "r")))
		return true;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	return !p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X';
}

/* A link that went while its peer's process still ran: the process is
 * watched until it is gone (its sessions died with it: announced) or
 * WATCH_MAX passed (the link went, not the node: what it told is void
 * unless its next link tells it again). A process killed closes its
 * sockets before it becomes a zombie, so the first look is often too
 * early. */
#define WATCH_EVERY 0.02
#define WATCH_MAX 3.
#define WATCH_MAX_TCP 10.	/* a cluster's node: its key's life and more */
static struct watch {
	pid_t pid;
	unsigned epoch;
	double until;
} watches[NODE_MAX + 1];
static ev_timer watch_w;

static bool first_alive(unsigned dead);

static void on_watch(struct ev_loop *loop, ev_timer *w, int revents)
{
	bool more = false;

	for (unsigned i = 1; i <= count; i++) {
		struct watch *wa = &watches[i];
		if (!wa->epoch)
			continue;
		bool dead = process_gone(wa->pid);
		if (dead || now_mono() >= wa->until) {
			if (dead)
				log_info("node %u (pid %ld) died", i, (long)wa->pid);
			node_gone(i, wa->epoch, dead && first_alive(i));
			wa->epoch = 0;
		} else {
			more = true;
		}
	}
	if (!more)
		ev_timer_stop(loop, w);
}

static void watch(unsigned peer, pid_t pid, unsigned epoch)
{
	struct watch *wa = &watches[peer];

	if (wa->epoch)		/* an earlier life's, still watched */
		node_gone(peer, wa->epoch, process_gone(wa->pid) && first_alive(peer));
	wa->pid = pid;
	wa->epoch = epoch;
	wa->until = now_mono() + (tcp ? WATCH_MAX_TCP : WATCH_MAX);
	if (!ev_is_active(&watch_w)) {
		ev_timer_init(&watch_w, on_watch, WATCH_EVERY, WATCH_EVERY);
		ev_timer_start(conn_loop(), &watch_w);
	}
}

/* Whether no node below us is alive: then we speak for a dead one. */
static bool first_alive(unsigned dead)
{
	for (unsigned i = 1; i < self; i++)
		if (i != dead && links[i] && links[i]->up)
			return false;
	return true;
}

/* A cluster's link whose TLS failed: a peer without our secret. Said
 * once a minute per peer (0: the ones that connected to us), the
 * retries every half second in between at debug. */
#define REFUSED_LOG_EVERY 60.
static void refused(unsigned peer, struct conn *conn)
{
	static double said[NODE_MAX + 1];
	bool warn = !said[peer] || now_mono() - said[peer] >= REFUSED_LOG_EVERY;

	if (warn)
		said[peer] = now_mono();
	if (peer)
		log_msg(warn ? LOG_WARN : LOG_DEBUG, "core", "node link %u -> %u (%s): TLS "
			"handshake failed (not a node, or another cluster secret)",
			self, peer, peer_addr[peer] ? peer_addr[peer] : "?");
	else
		log_msg(warn ? LOG_WARN : LOG_DEBUG, "core", "node link from %s:%d refused: "
			"TLS handshake failed (not a node, or another cluster secret)",
			conn->ip, conn->port);
}

static void link_closed(struct conn *conn, const char *reason)
{
	struct link *l = conn->owner;

	l->conn = NULL;		/* the connection layer frees it */
	if (l->peer && links[l->peer] == l) {
		links[l->peer] = NULL;
		bool dead = process_gone(l->pid);
		if (l->up)
			log_info("node link %u <-> %u down (%s)%s", self, l->peer, reason,
				 dead ? ": the node died" : "");
		else if (tcp && strcmp(reason, "TLS handshake failed") == 0)
			refused(l->peer, conn);
		else
			log_debug("node link %u -> %u: %s", self, l->peer, reason);
		if (l->up && dead)
			node_gone(l->peer, l->epoch, first_alive(l->peer));
		else if (l->up)
			watch(l->peer, l->pid, l->epoch);
	}
	else if (tcp && !l->peer && strcmp(reason, "TLS handshake failed") == 0)
		refused(0, conn);
	l->up = false;
	if (l->reading)
		l->dead = true;	/* link_data frees it */
	else
		link_free(l);
}

static const struct conn_events link_events = {
	.data = link_data,
	.closed = link_closed,
	.connected = link_connected,
	.tls_ready = link_tls_ready,
};

/* --- listening and connecting ------------------------------------------ */

/* A link's reads come first in a loop iteration: what a node told us
 * (a session that became available) is known before a client's stanza
 * read in the same wake-up is routed by it. Its queue is never a reason
 * to stop reading: two nodes that both waited for the other to read
 * would wait for ever. */
static struct link *link_new(int fd, struct conn *conn)
{
	struct link *l = xcalloc(1, sizeof(*l));

	l->conn = conn ? conn : conn_new(fd, "node", 0, &link_events, l);
	l->conn->owner = l;
	l->conn->wq_limit = l->conn->wq_high = LINK_QUEUE_MAX;
	l->since = now_mono();
	sbuf_init(&l->in);
	sbuf_init(&l->pending);
	l->next = all;
	all = l;
	bool active = ev_is_active(&l->conn->rio);
	if (active)
		ev_io_stop(conn_loop(), &l->conn->rio);
	ev_set_priority(&l->conn->rio, EV_MAXPRI);
	if (active)
		ev_io_start(conn_loop(), &l->conn->rio);
	return l;
}

/* Across machines: TLS first; the peer names itself after it. */
static void accept_tcp(int fd)
{
	struct sockaddr_storage sa;
	socklen_t len = sizeof(sa);
	char ip[INET6_ADDRSTRLEN] = "?";
	int port = 0, one = 1;

	/* an iteration's frames go in one write: Nagle would only delay it */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (getpeername(fd, (struct sockaddr *)&sa, &len) == 0) {
		if (sa.ss_family == AF_INET) {
			struct sockaddr_in *v4 = (struct sockaddr_in *)&sa;
			inet_ntop(AF_INET, &v4->sin_addr, ip, sizeof(ip));
			port = ntohs(v4->sin_port);
		} else if (sa.ss_family == AF_INET6) {
			struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&sa;
			inet_ntop(AF_INET6, &v6->sin6_addr, ip, sizeof(ip));
			port = ntohs(v6->sin6_port);
		}
	}
	struct conn *conn = conn_new(fd, ip, port, &link_events, NULL);
	struct link *l = link_new(-1, conn);
	conn_start_tls(l->conn, node_tcp_server());
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (tcp) {
		accept_tcp(fd);
		return;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    cred.uid != getuid()) {
		log_warn("node link: refusing a peer of another user");
		close(fd);
		return;
	}
	link_new(fd, NULL);
}

static void connect_to(unsigned peer)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sa;
	struct conn *conn;
	socklen_t len = sizeof(sa);
	int err = 0;

	if (tcp) {
		if (!peer_addr[peer] || node_tcp_addr(peer_addr[peer], &ss, &len) != 0)
			return;
		conn = conn_connect((struct sockaddr *)&ss, len, &link_events, NULL, &err);
	} else {
		sock_path(peer, &sa);
		conn = conn_connect((struct sockaddr *)&sa, len, &link_events, NULL, &err);
	}
	if (!conn) {
		log_debug("node link: cannot reach node %u yet: %s", peer, strerror(-err));
		return;
	}
	struct link *l = link_new(-1, conn);
	l->peer = peer;
	links[peer] = l;
}

/* Every half second: the links to the nodes above us that are not up
 * are tried again; an accepted link that never said HELLO goes. */
static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	for (unsigned i = self + 1; i <= count; i++)
		if (!links[i] && (!tcp || peer_addr[i]))
			connect_to(i);
	for (struct link *l = all, *next; l; l = next) {
		next = l->next;		/* a close frees l */
		if (!l->peer && l->conn && now_mono() - l->since > HELLO_TIMEOUT)
			link_close(l, "no hello");
	}
}

static void start_links(void)
{
	ev_io_init(&accept_w, on_accept, listen_fd, EV_READ);
	ev_io_start(conn_loop(), &accept_w);
	ev_timer_init(&retry_w, on_retry, 0., .5);
	ev_timer_start(conn_loop(), &retry_w);
	ev_unref(conn_loop());		/* the retries keep nothing running */
	node_init(self, &link_backend);
}

int node_link_start(unsigned node, unsigned nodes, const char *dir)
{
	struct sockaddr_un sa;

	if (nodes > NODE_MAX || node < 1 || node > nodes)
		return -EINVAL;
	self = node;
	count = nodes;
	master = getppid();
	sock_dir = xstrdup(dir);
	sbuf_init(&out);
	sock_path(self, &sa);
	unlink(sa.sun_path);
	listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
	    listen(listen_fd, 64) != 0) {
		int r = -errno;
		log_error("node link: cannot listen on %s: %s", sa.sun_path, strerror(errno));
		node_link_stop();
		return r;
	}
	start_links();
	return 0;
}

int node_link_start_tcp(unsigned node, const char *address, const char *secret)
{
	int r;

	if (node < 1 || node > NODE_MAX)
		return -EINVAL;
	if ((r = node_tcp_init(secret)) != 0) {
		log_error("node link: cannot set up TLS");
		return r;
	}
	if ((listen_fd = node_tcp_listen(address)) < 0) {
		r = listen_fd;
		log_error("node link: cannot listen on %s: %s", address, strerror(-r));
		node_tcp_free();
		return r;
	}
	tcp = true;
	self = node;
	count = NODE_MAX;
	sbuf_init(&out);
	start_links();
	return 0;
}

void node_link_peer(unsigned node, const char *address)
{
	if (!tcp || node < 1 || node > NODE_MAX || node == self)
		return;
	if (address && peer_addr[node] && strcmp(address, peer_addr[node]) == 0)
		return;
	free(peer_addr[node]);
	peer_addr[node] = address ? xstrdup(address) : NULL;
}

void node_link_died(unsigned node, uint32_t pid)
{
	struct watch *wa = &watches[node];
	struct link *l;

	if (!tcp || node < 1 || node > NODE_MAX || node == self)
		return;
	if (wa->epoch && (uint32_t)wa->pid == pid) {
		node_gone(node, wa->epoch, first_alive(node));
		wa->epoch = 0;
	}
	l = links[node];
	if (l && l->up && (uint32_t)l->pid == pid) {
		unsigned epoch = l->epoch;
		links[node] = NULL;	/* closed here: no watch */
		l->up = false;
		log_info("node link %u <-> %u down: the node died", self, node);
		link_close(l, "node-gone");
		node_gone(node, epoch, first_alive(node));
	}
}

bool node_link_is_up(unsigned node)
{
	return node >= 1 && node <= NODE_MAX && links[node] && links[node]->up;
}

void node_link_stop(void)
{
	struct sockaddr_un sa;

	if (listen_fd >= 0) {
		ev_io_stop(conn_loop(), &accept_w);
		close(listen_fd);
		listen_fd = -1;
		if (!tcp) {
			sock_path(self, &sa);
			unlink(sa.sun_path);
		}
	}
	if (ev_is_active(&watch_w))
		ev_timer_stop(conn_loop(), &watch_w);
	memset(watches, 0, sizeof(watches));
	if (ev_is_active(&retry_w)) {
		ev_ref(conn_loop());
		ev_timer_stop(conn_loop(), &retry_w);
	}
	memset(links, 0, sizeof(links));
	while (all) {		/* leaving: the others see us go */
		struct link *l = all;
		l->up = false;
		/* our clients' last stanzas (their unavailable presence to
		 * contacts there) go before the close, not after a commit
		 * the link would not live to see */
		release(l, l->pending.len);
		if (l->conn)
			conn_close(l->conn, "system-shutdown");
		else
			link_free(l);
		if (all == l)	/* still listed: a close in a read */
			all = l->next;
	}
	node_free();
	sbuf_free(&out);
	free(sock_dir);
	sock_dir = NULL;
	for (unsigned i = 0; i <= NODE_MAX; i++) {
		free(peer_addr[i]);
		peer_addr[i] = NULL;
	}
	if (tcp)
		node_tcp_free();
	tcp = false;
}

unsigned node_link_up_count(void)
{
	unsigned n = 0;

	for (unsigned i = 1; i <= count; i++)
		n += links[i] && links[i]->up;
	return n;
}
