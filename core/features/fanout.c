/* fanout.c - one stanza to many addressees, and the delivery of a
 * message to a bound full JID (fanout.h). */
#include "fanout.h"
#include "route.h"
#include "session.h"
#include "stanza.h"

#include <string.h>

/* What a copy's top level looks like before a delivery, to tell whether
 * a handler changed it: its children and its attributes other than
 * 'to' (which routing may rewrite in its normal form). */
#define SHAPE_ATTRS 16

struct shape {
	const struct st_node *first, *last;
	size_t children, attrs;
	const char *value[SHAPE_ATTRS];
};

static size_t count_children(const struct st_node *n)
{
	size_t k = 0;

	for (const struct st_node *c = n->first; c; c = c->next)
		k++;
	return k;
}

/* False when the top level has too many attributes to watch. */
static bool shape_take(struct shape *sh, const struct st_node *n)
{
	sh->first = n->first;
	sh->last = n->last;
	sh->children = count_children(n);
	sh->attrs = 0;
	for (const struct st_attr *a = n->attrs; a; a = a->next) {
		if (strcmp(a->name, "to") == 0)
			continue;
		if (sh->attrs == SHAPE_ATTRS)
			return false;
		sh->value[sh->attrs++] = a->value;
	}
	return true;
}

static bool shape_same(const struct shape *sh, const struct st_node *n)
{
	size_t i = 0;

	if (n->first != sh->first || n->last != sh->last ||
	    count_children(n) != sh->children)
		return false;
	for (const struct st_attr *a = n->attrs; a; a = a->next) {
		if (strcmp(a->name, "to") == 0)
			continue;
		if (i == sh->attrs || a->value != sh->value[i++])
			return false;
	}
	return i == sh->attrs;
}

static struct st_attr *to_attr(struct st_doc *d)
{
	for (struct st_attr *a = d->root->attrs; a; a = a->next)
		if (strcmp(a->name, "to") == 0)
			return a;
	st_attr_set(d, d->root, "to", "");
	return to_attr(d);
}

/* The copy being routed now (fanout_route), so that fanout_deliver_full
 * recognizes it and writes it from its bytes without 'to' (tail: what
 * follows "<message" when 'to' comes first), made once per copy. */
struct copy {
	const struct st_node *node;
	struct shape sh;
	bool watch;
	bool have_tail;
	struct sbuf tail;
	struct copy *outer;		/* a fan-out from a handler of another */
};

static struct copy *current;
static struct sbuf bytes;		/* one delivery's, reused */

static void copy_start(struct copy *c, struct st_doc *d)
{
	c->node = d->root;
	c->watch = shape_take(&c->sh, d->root);
	c->have_tail = false;
}

/* Serializes the copy without its 'to': "<message" then the tail. */
static void make_tail(struct copy *c, struct st_node *n)
{
	struct st_attr **pp, *to;

	for (pp = &n->attrs; (to = *pp); pp = &to->next)
		if (strcmp(to->name, "to") == 0)
			break;
	if (to)
		*pp = to->next;
	sbuf_reset(&c->tail);
	st_serialize(n, NS_CLIENT, &c->tail);
	if (to)
		*pp = to;
	c->have_tail = true;
}

/* The bytes of n for session_send_known(), or NULL when n is not the
 * copy under way as it was (a handler changed it). */
static const char *known_bytes(struct st_node *n, const char *to, size_t *len)
{
	struct copy *c = current;
	size_t skip;

	if (!c || c->node != n || !c->watch || !shape_same(&c->sh, n))
		return NULL;
	if (!c->have_tail)
		make_tail(c, n);
	skip = 1 + strlen(n->name);	/* "<message" */
	if (c->tail.len < skip)
		return NULL;
	sbuf_reset(&bytes);
	sbuf_addc(&bytes, '<');
	sbuf_adds(&bytes, n->name);
	sbuf_adds(&bytes, " to='");
	xml_escape(&bytes, to, strlen(to));
	sbuf_addc(&bytes, '\'');
	sbuf_add(&bytes, c->tail.p + skip, c->tail.len - skip);
	*len = bytes.len;
	return bytes.p;
}

/* A copy someone kept: its 'to' must not point at the caller's string. */
static void let_go(struct st_doc *d, const char *borrowed)
{
	for (struct st_attr *a = d->root->attrs; a; a = a->next)
		if (a->value == borrowed)
			a->value = st_strdup(d, borrowed, strlen(borrowed));
	st_doc_unref(d);
}

size_t fanout_route(const struct st_node *msg, const char *const *to, size_t n)
{
	struct st_doc *d = NULL;
	struct copy c = { .outer = current };
	size_t copies = 0;

	sbuf_init(&c.tail);
	current = &c;
	for (size_t i = 0; i < n; i++) {
		if (!d) {
			d = st_clone(msg);
			copies++;
			copy_start(&c, d);
		}
		to_attr(d)->value = to[i];
		route_stanza(d, d->root, NULL);
		if (d->refs > 1 || !c.watch || !shape_same(&c.sh, d->root)) {
			let_go(d, to[i]);
			d = NULL;
			c.node = NULL;
		}
	}
	if (d)
		st_doc_unref(d);
	current = c.outer;
	sbuf_free(&c.tail);
	return copies;
}

int fanout_deliver_full(struct event *ev, const struct hook_handler *h)
{
	struct st_node *m = ev->stanza;
	const char *to = m ? st_attr_get(m, "to") : NULL;
	struct session *s = to ? route_find_full(to) : NULL;

	const char *data;
	size_t len;

	(void)h;
	if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		return HOOK_PASS;
	data = s->framing ? NULL : known_bytes(m, to, &len);
	if (data)
		session_send_known(s, m, data, len);
	else
		session_send(s, m);
	return HOOK_STOP;
}
