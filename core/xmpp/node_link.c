/* node_link.c - the links between the workers of one server: a stream of
 * role "node" per pair, the backend of node.h (node_link.h). */
#include "node_link.h"
#include "node.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/un.h>

/* A link's own state (role_data). */
struct link {
	unsigned peer;		/* 0 until its header named it */
	pid_t pid;		/* the peer's, from <hello/> */
	unsigned epoch;		/* node_up()'s, for what the peer tells */
	bool up;
	/* Forwarded stanzas wait for the storage writes they may depend
	 * on: queued to the connection after the iteration's commit, or,
	 * when the commit handed archive appends to the writer, the first
	 * `mark` bytes once that hand-over is committed
	 * (node_link_committed/_landed). So whatever a session on another
	 * node is sent, it can read there (its archive, offline messages).
	 * The directory's changes go at once (with the iteration's output):
	 * they depend on no write, and the other node had better know a
	 * session's state before the client itself could tell anyone. */
	struct sbuf pending;
	size_t mark;
};

static unsigned self, count;
static char *sock_dir;
static struct session *links[NODE_MAX + 1];	/* by peer, when up or coming */
static int listen_fd = -1;
static ev_io accept_w;
static ev_timer retry_w;
static struct sbuf out;

static const struct session_config link_cfg = {
	.preauth_timeout = 10.,
	.idle_timeout = 1e12,		/* a link is never idle out */
	.send_queue_limit = (size_t)1 << 30,
};

static struct link *link_of(struct session *s)
{
	return s->role_data;
}

static void sock_path(unsigned node, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/node-%u.sock", sock_dir, node);
}

/* "node-N" -> N within 1..count, or 0. */
static unsigned parse_node(const char *name)
{
	unsigned n;
	char tail;

	if (!name || sscanf(name, "node-%u%c", &n, &tail) != 1 || n < 1 || n > count)
		return 0;
	return n;
}

/* --- sending ---------------------------------------------------------- */

static void attr(struct sbuf *b, const char *name, const char *value)
{
	sbuf_addc(b, ' ');
	sbuf_adds(b, name);
	sbuf_adds(b, "='");
	xml_escape(b, value, strlen(value));
	sbuf_addc(b, '\'');
}

/* out to link (NULL: every link up); a forwarded stanza is held. */
static void send_to(struct session *link, bool held)
{
	if (held)
		sbuf_add(&link_of(link)->pending, out.p, out.len);
	else
		session_send_raw(link, out.p, out.len);
}

static void send_out(struct session *link)
{
	if (link)
		send_to(link, false);
	else
		for (unsigned i = 1; i <= count; i++)
			if (links[i] && link_of(links[i])->up)
				send_to(links[i], false);
	sbuf_recycle(&out, 65536);
}

/* The first n pending bytes of link s go to its connection. */
static void release(struct session *s, size_t n)
{
	struct link *l = link_of(s);

	if (!n)
		return;
	session_send_raw(s, l->pending.p, n);
	memmove(l->pending.p, l->pending.p + n, l->pending.len - n);
	l->pending.len -= n;
	if (!l->pending.len)
		sbuf_recycle(&l->pending, 65536);
}

void node_link_committed(bool handed)
{
	for (unsigned i = 1; i <= count; i++) {
		struct session *s = links[i];
		if (!s)
			continue;
		struct link *l = link_of(s);
		if (handed)
			l->mark = l->pending.len;
		else
			release(s, l->pending.len);
	}
}

void node_link_landed(void)
{
	for (unsigned i = 1; i <= count; i++) {
		struct session *s = links[i];
		if (!s)
			continue;
		release(s, link_of(s)->mark);
		link_of(s)->mark = 0;
	}
}

static void put_bind(struct session *s, struct session *link)
{
	sbuf_reset(&out);
	sbuf_adds(&out, "<bind");
	attr(&out, "id", s->id);
	attr(&out, "jid", s->full_jid);
	sbuf_adds(&out, "/>");
	send_out(link);
}

static const char *const type_names[] = {
	[NV_NIL] = "nil", [NV_BOOLEAN] = "boolean", [NV_NUMBER] = "number",
	[NV_STRING] = "string", [NV_STANZA] = "stanza",
};

static void put_field(struct session *s, const char *name,
		      const struct node_value *v, struct session *link)
{
	char num[64];

	sbuf_reset(&out);
	sbuf_adds(&out, "<field");
	attr(&out, "jid", s->full_jid);
	attr(&out, "name", name);
	attr(&out, "type", type_names[v->type]);
	sbuf_addc(&out, '>');
	switch (v->type) {
	case NV_BOOLEAN:
		sbuf_adds(&out, v->b ? "true" : "false");
		break;
	case NV_NUMBER:
		snprintf(num, sizeof(num), "%.17g", v->n);
		sbuf_adds(&out, num);
		break;
	case NV_STRING:
		xml_escape(&out, v->s, strlen(v->s));
		break;
	case NV_STANZA:
		st_serialize(v->stanza, NS_NODE, &out);
		break;
	case NV_NIL:
		break;
	}
	sbuf_adds(&out, "</field>");
	send_out(link);
}

static void emit_field(struct session *s, const char *name,
		       const struct node_value *v, void *link)
{
	put_field(s, name, v, link);
}

static void dump_one(struct session *s, void *link)
{
	put_bind(s, link);
	if (node_fields_hook)
		node_fields_hook(s, emit_field, link);
}

static void be_bound(struct session *s)
{
	dump_one(s, NULL);
}

static void be_unbound(struct session *s)
{
	sbuf_reset(&out);
	sbuf_adds(&out, "<unbind");
	attr(&out, "jid", s->full_jid);
	sbuf_adds(&out, "/>");
	send_out(NULL);
}

static void be_field(struct session *s, const char *name, const struct node_value *v)
{
	put_field(s, name, v, NULL);
}

static int be_forward(unsigned node, const char *full_jid, const struct st_node *stanza)
{
	struct session *link = node <= count ? links[node] : NULL;

	if (!link || !link_of(link)->up)
		return -ENOTCONN;
	sbuf_reset(&out);
	sbuf_adds(&out, "<route");
	attr(&out, "to", full_jid);
	sbuf_addc(&out, '>');
	st_serialize(stanza, NS_NODE, &out);
	sbuf_adds(&out, "</route>");
	send_to(link, true);
	sbuf_recycle(&out, 65536);
	return 0;
}

static void be_close(unsigned node, const char *full_jid, const char *condition)
{
	struct session *link = node <= count ? links[node] : NULL;

	if (!link || !link_of(link)->up)
		return;
	sbuf_reset(&out);
	sbuf_adds(&out, "<close");
	attr(&out, "jid", full_jid);
	attr(&out, "condition", condition);
	sbuf_adds(&out, "/>");
	send_out(link);
}

static const struct node_backend link_backend = {
	.bound = be_bound,
	.unbound = be_unbound,
	.field = be_field,
	.forward = be_forward,
	.close = be_close,
};

/* --- receiving -------------------------------------------------------- */

static struct st_node *first_elem(const struct st_node *n)
{
	for (struct st_node *c = n->first; c; c = c->next)
		if (c->name)
			return c;
	return NULL;
}

static void got_field(unsigned peer, struct st_doc *doc, struct st_node *n)
{
	const char *jid = st_attr_get(n, "jid"), *name = st_attr_get(n, "name");
	const char *type = st_attr_get(n, "type");
	const char *text = st_text(doc, n);
	struct node_value v = { .type = NV_NIL };

	if (!jid || !name || !type)
		return;
	if (strcmp(type, "boolean") == 0) {
		v.type = NV_BOOLEAN;
		v.b = strcmp(text, "true") == 0;
	} else if (strcmp(type, "number") == 0) {
		v.type = NV_NUMBER;
		v.n = strtod(text, NULL);
	} else if (strcmp(type, "string") == 0) {
		v.type = NV_STRING;
		v.s = text;
	} else if (strcmp(type, "stanza") == 0) {
		v.type = NV_STANZA;
		if (!(v.stanza = first_elem(n)))
			return;
	}
	node_remote_field(peer, jid, name, &v);
}

static void link_element(struct session *s, struct st_doc *doc)
{
	struct link *l = link_of(s);
	struct st_node *n = doc->root;
	const char *jid = st_attr_get(n, "jid");

	if (!l->up || strcmp(n->ns, NS_NODE) != 0) {
		session_close(s, "unsupported-stanza-type", NULL);
	} else if (strcmp(n->name, "route") == 0) {
		struct st_node *stanza = first_elem(n);
		const char *to = st_attr_get(n, "to");
		if (stanza && to)
			node_deliver(l->peer, to, doc, stanza);
	} else if (strcmp(n->name, "bind") == 0) {
		if (jid && st_attr_get(n, "id"))
			node_remote_bind(l->peer, st_attr_get(n, "id"), jid);
	} else if (strcmp(n->name, "unbind") == 0) {
		if (jid)
			node_remote_unbind(l->peer, jid);
	} else if (strcmp(n->name, "field") == 0) {
		got_field(l->peer, doc, n);
	} else if (strcmp(n->name, "close") == 0) {
		if (jid)
			node_close_local(jid, st_attr_get(n, "condition"));
	} else if (strcmp(n->name, "hello") == 0) {
		const char *pid = st_attr_get(n, "pid");
		l->pid = pid ? (pid_t)atol(pid) : 0;
	}
	st_doc_unref(doc);
}

/* The link to peer is up: hello, then every session of ours. */
static void link_up(struct session *s)
{
	struct link *l = link_of(s);
	char pid[32];

	l->up = true;
	l->epoch = node_up(l->peer);
	s->flags |= SESS_F_AUTHED | SESS_F_BOUND;
	log_info("node link %u <-> %u up", self, l->peer);
	snprintf(pid, sizeof(pid), "%ld", (long)getpid());
	sbuf_reset(&out);
	sbuf_adds(&out, "<hello");
	attr(&out, "pid", pid);
	sbuf_adds(&out, "/>");
	send_out(s);
	node_each_local(dump_one, s);
}

/* The peer's stream header: ours answers an incoming one. */
static bool link_header(struct session *s, const struct st_node *hdr)
{
	struct link *l = link_of(s);
	unsigned from = parse_node(st_attr_get(hdr, "from"));
	unsigned to = parse_node(st_attr_get(hdr, "to"));
	char name[32];

	if (strcmp(hdr->ns, NS_NODE) != 0 || from == 0 || from == self || to != self ||
	    ((s->flags & SESS_F_OUTGOING) && from != l->peer)) {
		session_close(s, "not-authorized", "not a node of this server");
		return true;
	}
	if (!(s->flags & SESS_F_OUTGOING)) {
		l->peer = from;
		if (links[from] && links[from] != s) {	/* it started again */
			struct session *old = links[from];
			links[from] = NULL;
			session_close(old, "conflict", "a newer link");
		}
		links[from] = s;
		snprintf(name, sizeof(name), "node-%u", self);
		s->host = xstrdup(name);
		snprintf(name, sizeof(name), "node-%u", from);
		s->peer = xstrdup(name);
		session_open_stream(s);
	}
	link_up(s);
	return true;
}

static void link_connected(struct session *s)
{
	session_open_stream(s);
}

/* Whether process pid is gone (or only a zombie its parent has yet to
 * reap): its sessions died with it. */
static bool process_gone(pid_t pid)
{
	char path[64], buf[256];
	FILE *f;

	if (pid <= 0)
		return false;
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
	wa->until = now_mono() + WATCH_MAX;
	if (!ev_is_active(&watch_w)) {
		ev_timer_init(&watch_w, on_watch, WATCH_EVERY, WATCH_EVERY);
		ev_timer_start(conn_loop(), &watch_w);
	}
}

/* Whether no node below us is alive: then we speak for a dead one. */
static bool first_alive(unsigned dead)
{
	for (unsigned i = 1; i < self; i++)
		if (i != dead && links[i] && link_of(links[i])->up)
			return false;
	return true;
}

static void link_ended(struct session *s, const char *reason)
{
	struct link *l = link_of(s);

	if (!l)
		return;
	if (l->peer && links[l->peer] == s) {
		links[l->peer] = NULL;
		bool dead = process_gone(l->pid);
		log_info("node link %u <-> %u down (%s)%s", self, l->peer, reason,
			 dead ? ": the node died" : "");
		if (l->up && dead)
			node_gone(l->peer, l->epoch, first_alive(l->peer));
		else if (l->up)
			watch(l->peer, l->pid, l->epoch);
	}
	sbuf_free(&l->pending);
	free(l);
	s->role_data = NULL;
}

static const struct session_role link_role = {
	.name = "node",
	.ns = NS_NODE,
	.host_type = HOST_GLOBAL,
	.header = link_header,
	.connected = link_connected,
	.element = link_element,
	.ended = link_ended,
};

/* --- listening and connecting ------------------------------------------ */

/* A link's reads come first in a loop iteration: what a node told us
 * (a session that became available) is known before a client's stanza
 * read in the same wake-up is routed by it. */
static void link_first(struct conn *c)
{
	bool active = ev_is_active(&c->rio);

	if (active)
		ev_io_stop(conn_loop(), &c->rio);
	ev_set_priority(&c->rio, EV_MAXPRI);
	if (active)
		ev_io_start(conn_loop(), &c->rio);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct session_listen sl = { &link_role, &link_cfg, false };
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(w->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
	    cred.uid != getuid()) {
		log_warn("node link: refusing a peer of another user");
		close(fd);
		return;
	}
	session_accept(fd, "node", 0, &sl);
	struct session *s = session_first();	/* the one just made */
	s->role_data = xcalloc(1, sizeof(struct link));
	if (s->conn)
		link_first(s->conn);
}

static void connect_to(unsigned peer)
{
	struct sockaddr_un sa;
	char from[32], to[32];

	snprintf(from, sizeof(from), "node-%u", self);
	snprintf(to, sizeof(to), "node-%u", peer);
	struct session *s = session_new_outgoing(&link_role, &link_cfg, from, to);
	struct link *l = xcalloc(1, sizeof(*l));
	l->peer = peer;
	s->role_data = l;
	links[peer] = s;
	sock_path(peer, &sa);
	int r = session_connect(s, (struct sockaddr *)&sa, sizeof(sa));
	if (r == 0)
		link_first(s->conn);
	if (r != 0) {
		l->peer = 0;		/* never up: nothing to tell */
		links[peer] = NULL;
		session_end(s, strerror(-r));
	}
}

static void on_retry(struct ev_loop *loop, ev_timer *w, int revents)
{
	for (unsigned i = self + 1; i <= count; i++)
		if (!links[i])
			connect_to(i);
}

int node_link_start(unsigned node, unsigned nodes, const char *dir)
{
	struct sockaddr_un sa;

	if (nodes > NODE_MAX || node < 1 || node > nodes)
		return -EINVAL;
	self = node;
	count = nodes;
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
	ev_io_init(&accept_w, on_accept, listen_fd, EV_READ);
	ev_io_start(conn_loop(), &accept_w);
	ev_timer_init(&retry_w, on_retry, 0., .5);
	ev_timer_start(conn_loop(), &retry_w);
	ev_unref(conn_loop());		/* the retries keep nothing running */
	node_init(self, &link_backend);
	return 0;
}

void node_link_stop(void)
{
	struct sockaddr_un sa;

	if (listen_fd >= 0) {
		ev_io_stop(conn_loop(), &accept_w);
		close(listen_fd);
		listen_fd = -1;
		sock_path(self, &sa);
		unlink(sa.sun_path);
	}
	if (ev_is_active(&watch_w))
		ev_timer_stop(conn_loop(), &watch_w);
	memset(watches, 0, sizeof(watches));
	if (ev_is_active(&retry_w)) {
		ev_ref(conn_loop());
		ev_timer_stop(conn_loop(), &retry_w);
	}
	for (unsigned i = 1; i <= count && i <= NODE_MAX; i++)
		if (links[i]) {
			struct session *s = links[i];
			link_of(s)->up = false;	/* leaving: the others see us go */
			links[i] = NULL;
			session_close(s, "system-shutdown", NULL);
		}
	node_free();
	sbuf_free(&out);
	free(sock_dir);
	sock_dir = NULL;
}

unsigned node_link_up_count(void)
{
	unsigned n = 0;

	for (unsigned i = 1; i <= count; i++)
		n += links[i] && link_of(links[i])->up;
	return n;
}
