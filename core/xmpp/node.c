/* node.c - the sessions of other nodes as proxies in the routing
 * directory, and what crosses to the other nodes about our own (node.h). */
#include "node.h"
#include "jid.h"
#include "log.h"
#include "xmlstream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

unsigned node_self;
void (*node_field_set_hook)(struct session *proxy, const char *name,
			    const struct node_value *v);
void (*node_fields_hook)(struct session *s,
			 void (*emit)(struct session *s, const char *name,
				      const struct node_value *v, void *ctx),
			 void *ctx);

void (*node_told_hook)(unsigned node, const char *host, const char *event,
		       const char *username);

void (*node_admin_hook)(unsigned node, const char *line);

static const struct node_backend *backend;
/* One parser for the stanzas that need a tree (node_parse), kept between
 * calls (its stream header fed once); a call that leaves it mid-element
 * throws it away. */
static struct xs *parser;
static unsigned epochs[256];	/* per node: how many times it came up */

/* A proxy's own state (role_data). */
struct proxy {
	unsigned node;
	unsigned epoch;		/* of the link that told us (node_up) */
	bool quiet;		/* its node unbound it: no event, nothing to tell */
	bool announce;		/* its node died: fire resource-unbind here */
};

/* The stanzas a node link hands over are handled one at a time; a stanza
 * that comes back here while one is delivered again (its session went)
 * counts a hop, so directories that disagree never bounce it forever. */
static unsigned rerouting;
#define REROUTE_MAX 2

static const char *const shared_fields[] = {
	"available", "presence", "priority", "want_carbons", "roster_requested",
};

/* Proxies take nothing from a connection: timeouts and limits are moot. */
static const struct session_config proxy_cfg = { .idle_timeout = 0 };

static int proxy_forward(struct session *s, const struct st_node *node)
{
	struct proxy *p = s->role_data;

	if (rerouting > REROUTE_MAX) {
		log_warn("%s: not forwarding a stanza to node %u again", s->full_jid,
			 p->node);
		return -ELOOP;
	}
	int r = backend->forward(p->node, s->full_jid, node);
	if (r != 0)
		log_info("%s: cannot forward a stanza to node %u: %s", s->full_jid,
			 p->node, strerror(-r));
	return r;
}

static void proxy_ended(struct session *s, const char *reason)
{
	struct proxy *p = s->role_data;

	if (s->flags & SESS_F_BOUND) {
		s->flags &= ~SESS_F_BOUND;
		if (p->announce)
			route_unbind(s);
		else
			route_forget(s);
		/* Closed here (a newer session took its resource, an admin,
		 * Bind2's replacement): the real session closes too. */
		if (!p->quiet && !p->announce)
			backend->close(p->node, s->full_jid,
				       reason && *reason ? reason : "conflict");
	}
	free(p);
	s->role_data = NULL;
}

/* What a proxy is: a client session whose stream is on another node. */
static const struct session_role proxy_role = {
	.name = "c2s",
	.ns = NS_CLIENT,
	.host_type = HOST_LOCAL,
	.forward = proxy_forward,
	.ended = proxy_ended,
};

static bool is_proxy(const struct session *s)
{
	return s->role == &proxy_role;
}

unsigned node_of(const struct session *s)
{
	return is_proxy(s) && s->role_data ? ((struct proxy *)s->role_data)->node
					   : node_self;
}

static void on_directory(struct session *s, bool bound)
{
	if (is_proxy(s) || !s->full_jid || strcmp(s->role->name, "c2s") != 0)
		return;
	if (bound)
		backend->bound(s);
	else
		backend->unbound(s);
}

void node_init(unsigned self, const struct node_backend *b)
{
	node_self = self;
	backend = b;
	route_directory_hook = on_directory;
}

void node_free(void)
{
	route_directory_hook = NULL;
	backend = NULL;
	if (parser)
		xs_free(parser);
	parser = NULL;
}

/* Our proxy of node's session full_jid, or NULL. */
static struct session *find_proxy(unsigned node, const char *full_jid)
{
	struct session *s = route_find_full(full_jid);

	if (!s || !is_proxy(s) || node_of(s) != node)
		return NULL;
	return s;
}

void node_remote_bind(unsigned node, const char *id, const char *full_jid)
{
	struct jid j;
	char bare[3 * JID_PART_MAX];

	if (jid_parse(full_jid, &j) != 0 || !j.has_node || !j.has_resource ||
	    jid_format(&j, JID_BARE, bare, sizeof(bare)) < 0 ||
	    !route_host(j.domain) || route_host(j.domain)->type != HOST_LOCAL) {
		log_warn("node %u: ignoring the session %s (not one of our clients)",
			 node, full_jid);
		return;
	}
	struct session *old = find_proxy(node, full_jid);
	if (old) {		/* the link came up again: it is the same one */
		if (strcmp(old->id, id) == 0) {
			((struct proxy *)old->role_data)->epoch = epochs[node & 255];
			return;
		}
		((struct proxy *)old->role_data)->quiet = true;
		session_end(old, "replaced");
	}
	struct session *s = session_new_remote(&proxy_role, &proxy_cfg);
	struct proxy *p = xcalloc(1, sizeof(*p));
	p->node = node;
	p->epoch = epochs[node & 255];
	s->role_data = p;
	s->flags |= SESS_F_REMOTE | SESS_F_OPENED | SESS_F_AUTHED | SESS_F_BOUND;
	snprintf(s->id, sizeof(s->id), "%s", id);
	s->host = xstrdup(j.domain);
	s->username = xstrdup(j.node);
	s->resource = xstrdup(j.resource);
	s->bare_jid = xstrdup(bare);
	s->full_jid = xstrdup(full_jid);
	route_bind(s);		/* a local one of that full JID: conflict */
	log_debug("node %u: %s bound there", node, full_jid);
}

void node_remote_unbind(unsigned node, const char *full_jid)
{
	struct session *s = find_proxy(node, full_jid);

	if (!s)
		return;
	((struct proxy *)s->role_data)->quiet = true;
	session_end(s, "unbound");
}

void node_remote_field(unsigned node, const char *full_jid, const char *name,
		       const struct node_value *v)
{
	struct session *s = find_proxy(node, full_jid);

	if (s && node_field_shared(name) && node_field_set_hook)
		node_field_set_hook(s, name, v);
}

unsigned node_route_flags(const char *full_jid, const struct st_node *stanza)
{
	const char *to = st_attr_get(stanza, "to");
	size_t n;

	if (!to)
		return 0;
	if (strcmp(to, full_jid) == 0)
		return NODE_ROUTE_F_TO_FULL;
	n = strlen(to);
	if (stanza->name && strcmp(stanza->name, "message") == 0 &&
	    strncmp(full_jid, to, n) == 0 && full_jid[n] == '/')
		return NODE_ROUTE_F_TO_BARE;
	return 0;
}

struct st_doc *node_parse(const char *data, size_t len)
{
	static const char header[] = "<stream:stream xmlns='" NS_CLIENT "' "
		"xmlns:stream='http://etherx.jabber.org/streams'>";
	static const struct xs_limits limits = {
		.max_stanza = (size_t)64 << 20, .max_depth = 256, .max_attrs = 1024,
	};
	struct st_doc *doc = NULL;
	enum xs_event ev;

	if (!parser) {
		parser = xs_new(&limits);
		for (ev = xs_feed(parser, header, sizeof(header) - 1);
		     ev == XS_STREAM_OPEN; ev = xs_next(parser))
			;
	}
	for (ev = xs_feed(parser, data, len); ev != XS_NEED_MORE && ev != XS_ERROR;
	     ev = xs_next(parser)) {
		if (ev != XS_STANZA)
			continue;
		struct st_doc *d = xs_take_stanza(parser);
		if (doc)
			st_doc_unref(d);
		else
			doc = d;
	}
	if (ev == XS_ERROR || !doc || !xs_quiet(parser)) {
		xs_free(parser);
		parser = NULL;
	}
	if (!doc)
		log_warn("node: a stanza from another node does not parse");
	return doc;
}

/* The session went before the stanza arrived. Addressed to it: as for
 * any stanza to a full JID that is not there (RFC 6121 8.5.3), the
 * handlers of its 'to' decide (another resource, offline storage, an
 * error). One copy of a stanza to the account: the other copies went to
 * its other sessions; a message none of them got goes to the account
 * again (offline storage). */
static void deliver_gone(unsigned node, const char *full_jid, unsigned flags,
			 const char *data, size_t len)
{
	char bare[3 * JID_PART_MAX];
	const char *slash = strchr(full_jid, '/');
	bool again = flags & NODE_ROUTE_F_TO_FULL;

	if (!again && (flags & NODE_ROUTE_F_TO_BARE) && slash &&
	    (size_t)(slash - full_jid) < sizeof(bare)) {
		memcpy(bare, full_jid, (size_t)(slash - full_jid));
		bare[slash - full_jid] = '\0';
		again = !route_find_bare(bare);
	}
	if (!again) {
		log_debug("node %u: %s is not here; its copy dropped", node, full_jid);
		return;
	}
	struct st_doc *doc = node_parse(data, len);
	if (!doc)
		return;
	log_debug("node %u: %s is not here; routing its stanza again", node, full_jid);
	rerouting++;
	route_stanza(doc, doc->root, NULL);
	rerouting--;
	st_doc_unref(doc);
}

void node_deliver_bytes(unsigned node, const char *full_jid, unsigned flags,
			const char *data, size_t len)
{
	struct session *s = route_find_full(full_jid);

	if (!s || is_proxy(s)) {
		deliver_gone(node, full_jid, flags, data, len);
		return;
	}
	if (session_send_bytes(s, data, len) != -EAGAIN)
		return;
	struct st_doc *doc = node_parse(data, len);	/* its filters want a tree */
	if (doc) {
		session_send(s, doc->root);
		st_doc_unref(doc);
	}
}

void node_close_local(const char *full_jid, const char *condition)
{
	struct session *s = route_find_full(full_jid);

	if (s && !is_proxy(s))
		session_close(s, condition, "replaced by a session on another node");
}

unsigned node_up(unsigned node)
{
	return ++epochs[node & 255];
}

void node_gone(unsigned node, unsigned epoch, bool announce)
{
	struct session *s, *next;
	size_t n = 0;

	for (s = session_first(); s; s = next) {
		next = s->all_next;
		if (!is_proxy(s) || !s->role_data || node_of(s) != node ||
		    (s->flags & SESS_F_DEAD))
			continue;
		struct proxy *p = s->role_data;
		if (p->epoch != epoch)
			continue;	/* told again by a newer link */
		p->quiet = !announce;
		p->announce = announce;
		session_end(s, "node-gone");
		n++;
	}
	if (n)
		log_info("node %u gone: %zu of its sessions dropped%s", node, n,
			 announce ? ", their contacts told" : "");
}

void node_leaving(void)
{
	for (struct session *s = session_first(); s; s = s->all_next)
		if (is_proxy(s) && s->role_data)
			((struct proxy *)s->role_data)->quiet = true;
}

void node_each_local(void (*fn)(struct session *s, void *ctx), void *ctx)
{
	for (struct session *s = session_first(); s; s = s->all_next)
		if (!is_proxy(s) && (s->flags & SESS_F_BOUND) && s->full_jid &&
		    !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)) &&
		    strcmp(s->role->name, "c2s") == 0)
			fn(s, ctx);
}

int node_reload_others(void)
{
	if (!backend || !backend->reload_others)
		return -ENOTSUP;
	return backend->reload_others();
}

void node_tell(const char *host, const char *event, const char *username)
{
	if (backend && backend->tell)
		backend->tell(host, event, username);
}

void node_told(unsigned node, const char *host, const char *event,
	       const char *username)
{
	struct host *h = route_host(host);

	if (!h || h->type != HOST_LOCAL || !node_told_hook) {
		log_debug("node %u: a notice for host %s ignored", node, host);
		return;
	}
	node_told_hook(node, host, event, username);
}

void node_admin_others(const char *line)
{
	if (backend && backend->admin)
		backend->admin(line);
}

void node_admin(unsigned node, const char *line)
{
	if (node_admin_hook)
		node_admin_hook(node, line);
}

bool node_field_shared(const char *name)
{
	for (size_t i = 0; i < sizeof(shared_fields) / sizeof(*shared_fields); i++)
		if (strcmp(name, shared_fields[i]) == 0)
			return true;
	return false;
}

void node_field_changed(struct session *s, const char *name,
			const struct node_value *v)
{
	if (!backend || is_proxy(s) || !(s->flags & SESS_F_BOUND) ||
	    (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)) ||
	    strcmp(s->role->name, "c2s") != 0 || !node_field_shared(name))
		return;
	backend->field(s, name, v);
}
