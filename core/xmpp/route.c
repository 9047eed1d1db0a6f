/* route.c - hosts, the session directory, and stanza routing into hooks. */
#include "route.h"
#include "component.h"
#include "jid.h"
#include "log.h"
#include "s2s.h"
#include "session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static struct hmap hosts;		/* name -> struct host */
static struct host *global_host;
static struct hmap by_full;		/* full JID -> struct session */
static struct hmap by_bare;		/* bare JID -> first struct session */
static size_t n_bound;

void (*route_directory_hook)(struct session *s, bool bound);

static struct host *host_new(const char *name, enum host_type type)
{
	struct host *h = xcalloc(1, sizeof(*h));

	h->name = xstrdup(name);
	h->type = type;
	hook_set_init(&h->hooks);
	return h;
}

static void host_free(struct host *h)
{
	hook_set_free(&h->hooks);
	free(h->name);
	free(h);
}

void route_init(void)
{
	hmap_init(&hosts);
	hmap_init(&by_full);
	hmap_init(&by_bare);
	global_host = host_new("*", HOST_GLOBAL);
}

void route_free(void)
{
	size_t pos = 0;
	const char *k;
	void *v;

	while (hmap_next(&hosts, &pos, &k, &v))
		host_free(v);
	hmap_free(&hosts);
	if (global_host)
		host_free(global_host);
	global_host = NULL;
	hmap_free(&by_full);
	hmap_free(&by_bare);
}

struct host *route_host_add(const char *name, enum host_type type)
{
	struct host *h = hmap_get(&hosts, name);

	if (!h) {
		h = host_new(name, type);
		hmap_set(&hosts, name, h);
	}
	return h;
}

int route_host_remove(const char *name)
{
	struct host *h = hmap_get(&hosts, name);

	if (!h)
		return -ENOENT;
	if (hook_set_firing(&h->hooks))
		return -EBUSY;
	hmap_del(&hosts, name);
	host_free(h);
	return 0;
}

struct host *route_host(const char *name)
{
	if (name[0] == '*' && name[1] == '\0')
		return global_host;
	return hmap_get(&hosts, name);
}

struct host *route_global(void)
{
	return global_host;
}

bool route_host_next(size_t *pos, struct host **h)
{
	const char *k;
	void *v;

	if (!hmap_next(&hosts, pos, &k, &v))
		return false;
	*h = v;
	return true;
}

/* --- directory ------------------------------------------------------------ */

void route_bind(struct session *s)
{
	struct session *old = hmap_get(&by_full, s->full_jid);

	if (old) {
		log_info("%s: resource conflict, replacing the old session", s->full_jid);
		session_close(old, "conflict", "replaced by a new session");
	}
	hmap_set(&by_full, s->full_jid, s);
	s->user_next = hmap_get(&by_bare, s->bare_jid);
	hmap_set(&by_bare, s->bare_jid, s);
	n_bound++;
	if (route_directory_hook)
		route_directory_hook(s, true);
}

void route_forget(struct session *s)
{
	struct session *head = hmap_get(&by_bare, s->bare_jid);

	if (hmap_get(&by_full, s->full_jid) == s)
		hmap_del(&by_full, s->full_jid);
	if (head == s) {
		if (s->user_next)
			hmap_set(&by_bare, s->bare_jid, s->user_next);
		else
			hmap_del(&by_bare, s->bare_jid);
	} else {
		for (struct session *p = head; p; p = p->user_next)
			if (p->user_next == s) {
				p->user_next = s->user_next;
				break;
			}
	}
	s->user_next = NULL;
	n_bound--;
	if (route_directory_hook)
		route_directory_hook(s, false);
}

void route_unbind(struct session *s)
{
	route_forget(s);

	struct event ev = { .session = s };
	if (s->conn && s->conn->close_reason[0] &&
	    strcmp(s->conn->close_reason, "closed") != 0)
		ev.error = s->conn->close_reason;
	route_fire(route_host(s->host), "resource-unbind", &ev);
}

struct session *route_find_full(const char *full_jid)
{
	return hmap_get(&by_full, full_jid);
}

struct session *route_find_bare(const char *bare_jid)
{
	return hmap_get(&by_bare, bare_jid);
}

size_t route_count_bare(const char *bare_jid)
{
	size_t n = 0;

	for (struct session *s = hmap_get(&by_bare, bare_jid); s; s = s->user_next)
		n++;
	return n;
}

size_t route_session_count(void)
{
	return n_bound;
}

/* --- routing ---------------------------------------------------------------- */

int route_fire(struct host *h, const char *event, struct event *ev)
{
	struct hook_chain *ch = h ? hook_find(&h->hooks, event) : NULL;
	int stopped;

	if (!ch)
		return 0;
	ev->host = h;
	stopped = hook_fire(ch, ev);
	event_release(ev);
	return stopped;
}

/* Fires the chain whose name is the concatenation of the NULL-ended
 * parts, if it has handlers: 1 when one stopped it. Names are joined on
 * the stack: no formatting, no allocation. */
static int fire_named(struct host *h, struct event *ev, ...)
{
	char name[512];
	size_t n = 0;
	const char *part;
	va_list ap;

	va_start(ap, ev);
	while ((part = va_arg(ap, const char *))) {
		size_t k = strlen(part);
		if (n + k >= sizeof(name)) {
			va_end(ap);
			return 0;
		}
		memcpy(name + n, part, k);
		n += k;
	}
	va_end(ap);
	struct hook_chain *ch = hook_findn(&h->hooks, name, n);
	if (!ch)
		return 0;
	ev->host = h;
	return hook_fire(ch, ev);
}

static bool is_type(const struct st_node *n, const char *type)
{
	const char *t = st_attr_get(n, "type");

	return t && strcmp(t, type) == 0;
}

void route_bounce(const struct st_node *node, const char *type,
		  const char *condition, const char *text)
{
	if (is_type(node, "error") || is_type(node, "result"))
		return;
	if (!st_attr_get(node, "from"))
		return;
	struct st_doc *e = st_error_reply(node, type, condition, text);
	route_stanza(e, e->root, NULL);
	st_doc_unref(e);
}

static struct st_node *first_child_elem(const struct st_node *n, bool *only)
{
	struct st_node *found = NULL;

	*only = true;
	for (struct st_node *c = n->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (found) {
			*only = false;
			break;
		}
		found = c;
	}
	return found;
}

/* Fires the delivery events for ev's stanza at host h, addressed as
 * totype, and releases ev. */
static void deliver_local(struct host *h, struct event *ev, const char *totype)
{
	struct st_node *node = ev->stanza;
	const char *kind = node->name;
	int handled = 0;

	if (kind[0] == 'i') {
		const char *type = st_attr_get(node, "type");
		bool getset = type && (strcmp(type, "get") == 0 || strcmp(type, "set") == 0);
		bool only;
		struct st_node *child = getset ? first_child_elem(node, &only) : NULL;
		if (child && only)
			handled = fire_named(h, ev, "iq-", type, "/", totype, "/",
					     child->ns, ":", child->name, NULL);
		if (!handled)
			handled = fire_named(h, ev, "iq/", totype, NULL);
		event_release(ev);
		if (!handled && h->external)
			component_deliver(h, node);
		else if (!handled && getset)
			route_bounce(node, "cancel", "service-unavailable", NULL);
	} else {
		handled = fire_named(h, ev, kind, "/", totype, NULL);
		event_release(ev);
		if (!handled && h->external)
			component_deliver(h, node);
		else if (!handled && kind[0] == 'm')
			route_bounce(node, "cancel", "service-unavailable", NULL);
	}
}

/* Works out where node goes; NULL host means remote. */
static int address(struct st_node *node, struct st_doc *doc,
		   struct session *origin, const char **totype, struct host **h)
{
	const char *to = st_attr_get(node, "to");
	struct jid j;
	char norm[3 * JID_PART_MAX];

	if (!to) {
		if (!origin)
			return -EINVAL;
		*totype = "self";
		*h = route_host(origin->host);
		return 0;
	}
	if (jid_parse(to, &j) != 0)
		return -EINVAL;
	*h = route_host(j.domain);
	/* RFC 6120 10.5.2: <domain/resource> of one of our VirtualHosts is
	 * the server itself, handled as <domain>; a component's domain keeps
	 * its resource, the component's to interpret. */
	if (!j.has_node && j.has_resource && *h && (*h)->type == HOST_LOCAL)
		j.has_resource = false;
	if (jid_format(&j, JID_FULL, norm, sizeof(norm)) < 0)
		return -EINVAL;
	if (strcmp(norm, to) != 0)
		st_attr_set(doc, node, "to", norm);
	*totype = !j.has_node ? "host" : j.has_resource ? "full" : "bare";
	if (origin && node->name[0] == 'i' && !j.has_resource &&
	    origin->bare_jid && strcmp(norm, origin->bare_jid) == 0)
		*totype = "self";
	return 0;
}

/* A stanza for a domain that is not ours (its 'to' is normalized). */
static void route_remote(struct st_doc *doc, struct st_node *node,
			 struct session *origin)
{
	const char *from = st_attr_get(node, "from");
	struct jid jf, jt;
	struct host *h;

	if (!from || jid_parse(from, &jf) != 0 || !(h = route_host(jf.domain)) ||
	    h->type == HOST_GLOBAL) {
		log_debug("not relaying a stanza from %s to %s", from ? from : "(none)",
			  st_attr_get(node, "to"));
		return;
	}
	if (jid_parse(st_attr_get(node, "to"), &jt) != 0)
		return;
	struct event ev = { .origin = origin, .doc = doc, .stanza = node };
	if (route_fire(h, "route/remote", &ev))
		return;
	s2s_route(doc, node, jf.domain, jt.domain);
}

void route_stanza(struct st_doc *doc, struct st_node *node,
		  struct session *origin)
{
	const char *totype;
	struct host *h = NULL;

	if (address(node, doc, origin, &totype, &h) != 0) {
		route_bounce(node, "modify", "jid-malformed", NULL);
		return;
	}
	if (!h || h->type == HOST_GLOBAL) {
		route_remote(doc, node, origin);
		return;
	}
	struct event ev = { .origin = origin, .doc = doc, .stanza = node };
	deliver_local(h, &ev, totype);
}

static bool iq_ok(const struct st_node *node)
{
	const char *type = st_attr_get(node, "type");

	return node->name[0] != 'i' || (st_attr_get(node, "id") && type &&
		(!strcmp(type, "get") || !strcmp(type, "set") ||
		 !strcmp(type, "result") || !strcmp(type, "error")));
}

void route_from_server(struct session *s, struct st_doc *doc)
{
	struct st_node *node = doc->root;
	const char *totype;
	struct host *h = NULL;

	if (!iq_ok(node)) {
		route_bounce(node, "modify", "bad-request", "an iq needs an id and a type");
		goto out;
	}
	if (address(node, doc, s, &totype, &h) != 0) {
		route_bounce(node, "modify", "jid-malformed", NULL);
		goto out;
	}
	if (!h || h->type == HOST_GLOBAL)
		goto out;	/* s2s_in.c let only our hosts through */
	/* One event serves route/s2sin and the delivery events: a handler
	 * of route/s2sin (blocking) sees every stanza from a remote server
	 * before any payload event does, as pre- events do for clients. */
	struct event ev = { .origin = s, .doc = doc, .stanza = node };
	if (fire_named(h, &ev, "route/s2sin", NULL)) {
		event_release(&ev);
		goto out;
	}
	deliver_local(h, &ev, totype);
out:
	st_doc_unref(doc);
}

void route_from_client(struct session *s, struct st_doc *doc)
{
	struct st_node *node = doc->root;
	const char *from = st_attr_get(node, "from");
	const char *type = st_attr_get(node, "type");
	const char *totype;
	struct host *h = NULL;

	if (from && strcmp(from, s->full_jid) != 0 && strcmp(from, s->bare_jid) != 0) {
		struct jid j;
		char norm[3 * JID_PART_MAX];
		if (jid_parse(from, &j) != 0 ||
		    jid_format(&j, j.has_resource ? JID_FULL : JID_BARE, norm, sizeof(norm)) < 0 ||
		    (strcmp(norm, s->full_jid) != 0 && strcmp(norm, s->bare_jid) != 0)) {
			session_close(s, "invalid-from", NULL);
			goto out;
		}
	}
	st_attr_set(doc, node, "from", s->full_jid);
	if (node->name[0] == 'i' && (!st_attr_get(node, "id") || !type ||
	    (strcmp(type, "get") && strcmp(type, "set") &&
	     strcmp(type, "result") && strcmp(type, "error")))) {
		route_bounce(node, "modify", "bad-request", "an iq needs an id and a type");
		goto out;
	}
	if (address(node, doc, s, &totype, &h) != 0) {
		route_bounce(node, "modify", "jid-malformed", NULL);
		goto out;
	}
	/* One event serves the pre- event and the delivery events. */
	struct host *own = route_host(s->host);
	struct event ev = { .origin = s, .doc = doc, .stanza = node };
	if (own && (fire_named(own, &ev, "pre-", node->name, "/", totype, NULL) ||
		    (s->flags & SESS_F_CLOSING))) {
		event_release(&ev);
		goto out;
	}
	if (!h || h->type == HOST_GLOBAL) {
		event_release(&ev);
		route_remote(doc, node, s);
	} else {
		deliver_local(h, &ev, totype);
	}
out:
	st_doc_unref(doc);
}
