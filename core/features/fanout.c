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
	struct shape sh;
	bool watch = false;
	size_t copies = 0;

	for (size_t i = 0; i < n; i++) {
		if (!d) {
			d = st_clone(msg);
			copies++;
			watch = shape_take(&sh, d->root);
		}
		to_attr(d)->value = to[i];
		route_stanza(d, d->root, NULL);
		if (d->refs > 1 || !watch || !shape_same(&sh, d->root)) {
			let_go(d, to[i]);
			d = NULL;
		}
	}
	if (d)
		st_doc_unref(d);
	return copies;
}

int fanout_deliver_full(struct event *ev, const struct hook_handler *h)
{
	struct st_node *m = ev->stanza;
	const char *to = m ? st_attr_get(m, "to") : NULL;
	struct session *s = to ? route_find_full(to) : NULL;

	(void)h;
	if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		return HOOK_PASS;
	session_send(s, m);
	return HOOK_STOP;
}
