/* csi.c - XEP-0352's hold queue, as an outgoing filter of the session. */
#include "csi.h"
#include "session.h"

#include <stdlib.h>

#define NS_CHATSTATES "http://jabber.org/protocol/chatstates"
#define NS_CARBONS "urn:xmpp:carbons:2"
#define NS_FORWARD "urn:xmpp:forward:0"

struct csi_policy {
	unsigned refs;
	size_t n;
	char **important;
};

struct held {
	struct held *next;
	char *key;			/* NULL: never replaced */
	size_t len;
	char data[];
};

/* One per inactive session: the filter's data. */
struct csi_state {
	struct csi_policy *policy;
	struct held *head, *tail;
	size_t bytes;
};

enum verdict { V_SEND, V_FLUSH, V_HOLD, V_HOLD_KEYED, V_DROP };

static struct sbuf out_buf;		/* serialization scratch */

struct csi_policy *csi_policy_new(const char *const *important, size_t n)
{
	struct csi_policy *p = xcalloc(1, sizeof(*p));

	p->refs = 1;
	p->n = n;
	p->important = xcalloc(n ? n : 1, sizeof(*p->important));
	for (size_t i = 0; i < n; i++)
		p->important[i] = xstrdup(important[i]);
	return p;
}

void csi_policy_ref(struct csi_policy *p)
{
	p->refs++;
}

void csi_policy_unref(struct csi_policy *p)
{
	if (!p || --p->refs)
		return;
	for (size_t i = 0; i < p->n; i++)
		free(p->important[i]);
	free(p->important);
	free(p);
}

/* --- what a stanza is worth to an inactive client ------------------------- */

static bool is(const struct st_node *n, const char *name, const char *ns)
{
	return n->name && strcmp(n->name, name) == 0 &&
	       (!ns || strcmp(n->ns, ns) == 0);
}

static const struct st_node *child(const struct st_node *n, const char *name,
				   const char *ns)
{
	for (const struct st_node *c = n->first; c; c = c->next)
		if (is(c, name, ns))
			return c;
	return NULL;
}

static bool attr_is(const struct st_node *n, const char *attr, const char *v)
{
	const char *a = st_attr_get(n, attr);

	return a && strcmp(a, v) == 0;
}

/* A carbon copy (XEP-0280) carries the real message inside. */
static const struct st_node *inner_message(const struct st_node *m)
{
	static const char *const wrappers[] = { "received", "sent" };

	for (size_t i = 0; i < ARRAY_SIZE(wrappers); i++) {
		const struct st_node *c = child(m, wrappers[i], NS_CARBONS);
		if (c) {
			const struct st_node *fwd = child(c, "forwarded", NS_FORWARD);
			const struct st_node *in = fwd ? child(fwd, "message", NS_CLIENT) : NULL;
			return in ? in : m;
		}
	}
	return m;
}

static bool matters(const struct csi_policy *p, const struct st_node *m)
{
	for (const struct st_node *c = m->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (strcmp(c->ns, m->ns) == 0 &&
		    (strcmp(c->name, "body") == 0 || strcmp(c->name, "subject") == 0))
			return true;
		for (size_t i = 0; i < p->n; i++)
			if (strcmp(c->ns, p->important[i]) == 0)
				return true;
	}
	return false;
}

static bool only_chat_state(const struct st_node *m)
{
	bool any = false;

	for (const struct st_node *c = m->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (strcmp(c->ns, NS_CHATSTATES) != 0)
			return false;
		any = true;
	}
	return any;
}

static enum verdict classify(const struct csi_policy *p, const struct st_node *n)
{
	if (strcmp(n->name, "presence") == 0) {
		const char *t = st_attr_get(n, "type");
		if (t && (strcmp(t, "subscribe") == 0 || strcmp(t, "subscribed") == 0 ||
			  strcmp(t, "unsubscribe") == 0 ||
			  strcmp(t, "unsubscribed") == 0 || strcmp(t, "error") == 0))
			return V_FLUSH;
		return V_HOLD_KEYED;
	}
	if (strcmp(n->name, "message") != 0)
		return V_SEND;		/* iq: someone is waiting for an answer */
	const struct st_node *m = inner_message(n);
	if (attr_is(n, "type", "error"))
		return V_FLUSH;
	if (attr_is(m, "type", "groupchat"))
		return matters(p, m) ? V_HOLD : V_DROP;
	if (matters(p, m))
		return V_FLUSH;
	return only_chat_state(m) ? V_DROP : V_HOLD;
}

/* --- the hold queue --------------------------------------------------------- */

static void held_free(struct held *h)
{
	free(h->key);
	free(h);
}

/* Sends what st holds, in order (or drops it when nothing can go out). */
static int flush(struct session *s, struct csi_state *st)
{
	int r = 0;

	while (st->head) {
		struct held *h = st->head;
		st->head = h->next;
		st->bytes -= h->len;
		if (r == 0)
			r = session_send_serialized(s, h->data, h->len);
		held_free(h);
	}
	st->tail = NULL;
	st->bytes = 0;
	return r;
}

static void unlink_key(struct csi_state *st, const char *key)
{
	struct held *prev = NULL;

	for (struct held *h = st->head; h; prev = h, h = h->next) {
		if (!h->key || strcmp(h->key, key) != 0)
			continue;
		if (prev)
			prev->next = h->next;
		else
			st->head = h->next;
		if (st->tail == h)
			st->tail = prev;
		st->bytes -= h->len;
		held_free(h);
		return;
	}
}

static int hold(struct session *s, struct csi_state *st,
		const struct st_node *n, const char *key)
{
	struct held *h;

	if (key)
		unlink_key(st, key);
	sbuf_reset(&out_buf);
	st_serialize(n, NS_CLIENT, &out_buf);
	h = xmalloc(sizeof(*h) + out_buf.len);
	h->next = NULL;
	h->key = key ? xstrdup(key) : NULL;
	h->len = out_buf.len;
	memcpy(h->data, out_buf.p, out_buf.len);
	if (st->tail)
		st->tail->next = h;
	else
		st->head = h;
	st->tail = h;
	st->bytes += h->len;
	if (st->bytes > s->cfg->max_held_bytes)
		return flush(s, st);
	return 0;
}

static int csi_filter(struct session *s, const struct st_node *n, void *data)
{
	struct csi_state *st = data;
	const char *from;
	int r;

	switch (classify(st->policy, n)) {
	case V_SEND:
		return SESSION_FILTER_PASS;
	case V_FLUSH:
		r = flush(s, st);
		return r == 0 ? SESSION_FILTER_PASS : r;
	case V_DROP:
		return SESSION_FILTER_TAKEN;
	case V_HOLD_KEYED:
		from = st_attr_get(n, "from");
		r = hold(s, st, n, from ? from : "");
		break;
	default:
		r = hold(s, st, n, NULL);
		break;
	}
	return r == 0 ? SESSION_FILTER_TAKEN : r;
}

/* The filter goes (the client went active, or the session ended): what
 * is held goes out if it still can. */
static void csi_detach(struct session *s, void *data)
{
	struct csi_state *st = data;

	flush(s, st);
	csi_policy_unref(st->policy);
	free(st);
	sbuf_recycle(&out_buf, 16 * 1024);
}

static const struct session_filter_ops csi_ops = {
	.name = "csi",
	.filter = csi_filter,
	.detach = csi_detach,
};

void csi_inactive(struct session *s, struct csi_policy *p)
{
	struct csi_state *st = session_filter_data(s, &csi_ops);

	csi_policy_ref(p);
	if (st) {
		csi_policy_unref(st->policy);
		st->policy = p;
		return;
	}
	st = xcalloc(1, sizeof(*st));
	st->policy = p;
	session_filter_add(s, &csi_ops, st);
	s->flags |= SESS_F_INACTIVE;
}

void csi_active(struct session *s)
{
	s->flags &= ~SESS_F_INACTIVE;
	session_filter_remove(s, &csi_ops);
}

size_t csi_held_bytes(const struct session *s)
{
	const struct csi_state *st = session_filter_data(s, &csi_ops);

	return st ? st->bytes : 0;
}
