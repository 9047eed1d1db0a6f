/*
 * stanza.c - XML element trees in per-document arenas.
 *
 * The arena is a list of chunks, newest first. The first chunk is
 * allocated together with the st_doc itself, so a small stanza costs one
 * malloc of DOC_BLOCK bytes: the most glibc serves from its per-thread
 * cache and small bins (a larger request first consolidates all fast bins,
 * which on the stanza path cost more than every other malloc); a clone's
 * first chunk is sized from its source instead (st_doc_new_sized). Later
 * chunks double in size up to ARENA_CHUNK_MAX, and an allocation larger
 * than a quarter of that gets a chunk of its own, linked behind the
 * current one so small allocations keep filling it.
 *
 * Docs of the standard block, freed, wait in a pool per thread for the
 * next stanza: a batch of stanzas in one loop iteration would
 * otherwise overflow glibc's thread cache and pay its slower bins.
 *
 * Walks over trees (copy, serialize) are iterative: a tree built from Lua
 * can be deeper than the C stack would like.
 */
#include "stanza.h"

#include <stdio.h>
#include <stdlib.h>

#define DOC_BLOCK 1000
#define ARENA_FIRST (DOC_BLOCK - sizeof(struct st_doc) - \
		     sizeof(struct st_arena_chunk))
#define ARENA_MIN 64
#define ARENA_CHUNK_MAX (64 * 1024)
#define ARENA_BIG (ARENA_CHUNK_MAX / 4)
#define ARENA_ALIGN sizeof(void *)

struct st_arena_chunk {
	struct st_arena_chunk *next;
	size_t size;			/* bytes of data[] */
	size_t used;			/* bytes of data[] handed out */
	char data[];
};

static struct st_arena_chunk *inline_chunk(struct st_doc *d)
{
	return (struct st_arena_chunk *)(d + 1);
}

/* Not under AddressSanitizer: a freed doc must stay poisoned there, so
 * that a use after the last unref is caught. */
#ifdef __SANITIZE_ADDRESS__
#define DOC_POOL_MAX 1
#define DOC_POOLING false
#else
/* Lua's collector frees the docs its stanza userdata held in bursts of
 * hundreds: half a MiB of them at most */
#define DOC_POOL_MAX 512
#define DOC_POOLING true
#endif
static __thread struct st_doc *doc_pool[DOC_POOL_MAX];
static __thread size_t doc_pool_len;

void st_doc_pool_trim(void)
{
	while (doc_pool_len)
		free(doc_pool[--doc_pool_len]);
}

struct st_doc *st_doc_new_sized(size_t first)
{
	struct st_doc *d;
	struct st_arena_chunk *c;

	first = (MAX(first, (size_t)ARENA_MIN) + ARENA_ALIGN - 1) & ~(ARENA_ALIGN - 1);
	if (first == ARENA_FIRST && doc_pool_len)
		d = doc_pool[--doc_pool_len];
	else
		d = xmalloc(sizeof(*d) + sizeof(struct st_arena_chunk) + first);
	c = inline_chunk(d);
	c->next = NULL;
	c->size = first;
	c->used = 0;
	d->refs = 1;
	d->root = NULL;
	d->cursor = NULL;
	d->chunks = c;
	d->used = 0;
	return d;
}

struct st_doc *st_doc_new(void)
{
	return st_doc_new_sized(ARENA_FIRST);
}

struct st_doc *st_doc_ref(struct st_doc *d)
{
	d->refs++;
	return d;
}

void st_doc_unref(struct st_doc *d)
{
	struct st_arena_chunk *c, *next;

	if (!d || --d->refs > 0)
		return;
	for (c = d->chunks; c; c = next) {
		next = c->next;
		if (c != inline_chunk(d))
			free(c);
	}
	if (DOC_POOLING && inline_chunk(d)->size == ARENA_FIRST &&
	    doc_pool_len < DOC_POOL_MAX)
		doc_pool[doc_pool_len++] = d;
	else
		free(d);
}

/* A chunk for an allocation of n bytes that does not fit the head. */
static struct st_arena_chunk *arena_grow(struct st_doc *d, size_t n)
{
	struct st_arena_chunk *head = d->chunks, *c;
	size_t size;

	if (n > ARENA_BIG) {
		c = xmalloc(sizeof(*c) + n);
		c->size = n;
		c->used = 0;
		c->next = head->next;
		head->next = c;
		return c;
	}
	size = head->size * 2;
	if (size > ARENA_CHUNK_MAX)
		size = ARENA_CHUNK_MAX;
	if (size < n)
		size = n;
	c = xmalloc(sizeof(*c) + size);
	c->size = size;
	c->used = 0;
	c->next = head;
	d->chunks = c;
	return c;
}

static void *arena_alloc(struct st_doc *d, size_t n, size_t align)
{
	struct st_arena_chunk *c = d->chunks;
	size_t off = (c->used + align - 1) & ~(align - 1);

	if (off > c->size || c->size - off < n) {
		c = arena_grow(d, n);
		off = c->used;
	}
	c->used = off + n;
	d->used += n;
	return c->data + off;
}

void *st_alloc(struct st_doc *d, size_t n)
{
	return arena_alloc(d, n, ARENA_ALIGN);
}

const char *st_strdup(struct st_doc *d, const char *s, size_t n)
{
	char *p = arena_alloc(d, n + 1, 1);

	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static void node_append(struct st_node *parent, struct st_node *n)
{
	n->parent = parent;
	n->prev = parent->last;
	n->next = NULL;
	if (parent->last)
		parent->last->next = n;
	else
		parent->first = n;
	parent->last = n;
}

struct st_node *st_elem_new(struct st_doc *d, struct st_node *parent,
			    const char *name, const char *ns)
{
	struct st_node *n = st_alloc(d, sizeof(*n));

	memset(n, 0, sizeof(*n));
	n->name = st_strdup(d, name, strlen(name));
	if (!ns)
		n->ns = parent ? parent->ns : "";
	else if (parent && (ns == parent->ns || strcmp(ns, parent->ns) == 0))
		n->ns = parent->ns;
	else
		n->ns = st_strdup(d, ns, strlen(ns));
	if (parent) {
		node_append(parent, n);
	} else if (!d->root) {
		d->root = n;
		d->cursor = n;
	}
	return n;
}

/* Extends text node t in place when its bytes end the head chunk. */
static bool text_extend(struct st_doc *d, struct st_node *t,
			const char *text, size_t len)
{
	struct st_arena_chunk *c = d->chunks;
	char *end = (char *)t->text + t->len;

	if (end + 1 != c->data + c->used || c->size - c->used < len)
		return false;
	memcpy(end, text, len);
	end[len] = '\0';
	c->used += len;
	d->used += len;
	t->len += len;
	return true;
}

struct st_node *st_text_add(struct st_doc *d, struct st_node *parent,
			    const char *text, size_t len)
{
	struct st_node *t = parent ? parent->last : NULL;
	char *p;

	if (t && !t->name) {
		if (len && !text_extend(d, t, text, len)) {
			p = arena_alloc(d, t->len + len + 1, 1);
			memcpy(p, t->text, t->len);
			memcpy(p + t->len, text, len);
			p[t->len + len] = '\0';
			t->text = p;
			t->len += len;
		}
		return t;
	}
	t = st_alloc(d, sizeof(*t));
	memset(t, 0, sizeof(*t));
	t->text = st_strdup(d, text, len);
	t->len = len;
	if (parent)
		node_append(parent, t);
	return t;
}

void st_attr_set(struct st_doc *d, struct st_node *n, const char *name,
		 const char *value)
{
	struct st_attr **pp, *a;

	for (pp = &n->attrs; (a = *pp); pp = &a->next)
		if (strcmp(a->name, name) == 0)
			break;
	if (!value) {
		if (a)
			*pp = a->next;
		return;
	}
	if (!a) {
		a = st_alloc(d, sizeof(*a));
		a->next = NULL;
		a->name = st_strdup(d, name, strlen(name));
		*pp = a;
	}
	a->value = st_strdup(d, value, strlen(value));
}

void st_rename_ns(struct st_node *n, const char *from, const char *to)
{
	for (struct st_node *c = n; c; ) {
		if (c->name && strcmp(c->ns, from) == 0)
			c->ns = to;
		if (c->first) {
			c = c->first;
			continue;
		}
		while (c != n && !c->next)
			c = c->parent;
		if (c == n)
			break;
		c = c->next;
	}
}

const char *st_attr_get(const struct st_node *n, const char *name)
{
	const struct st_attr *a;

	for (a = n->attrs; a; a = a->next)
		if (strcmp(a->name, name) == 0)
			return a->value;
	return NULL;
}

struct st_node *st_child(const struct st_node *n, const char *name,
			 const char *ns)
{
	struct st_node *c;

	if (!ns)
		ns = n->ns;
	for (c = n->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (name && strcmp(c->name, name) != 0)
			continue;
		if (c->ns == ns || strcmp(c->ns, ns) == 0)
			return c;
	}
	return NULL;
}

const char *st_text(struct st_doc *d, const struct st_node *n)
{
	const struct st_node *c, *only = NULL;
	size_t len = 0, count = 0;
	char *p;

	for (c = n->first; c; c = c->next) {
		if (c->name)
			continue;
		only = c;
		len += c->len;
		count++;
	}
	if (count == 0)
		return "";
	if (count == 1)
		return only->text;
	p = arena_alloc(d, len + 1, 1);
	len = 0;
	for (c = n->first; c; c = c->next) {
		if (c->name)
			continue;
		memcpy(p + len, c->text, c->len);
		len += c->len;
	}
	p[len] = '\0';
	return p;
}

const char *st_child_text(struct st_doc *d, const struct st_node *n,
			  const char *name, const char *ns)
{
	const struct st_node *c = st_child(n, name, ns);

	return c ? st_text(d, c) : NULL;
}

void st_unlink(struct st_node *n)
{
	struct st_node *p = n->parent;

	if (!p)
		return;
	if (n->prev)
		n->prev->next = n->next;
	else
		p->first = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		p->last = n->prev;
	n->parent = n->next = n->prev = NULL;
}

/* A shallow copy of s (name, ns, attributes; or the text) under parent. */
/* inherit: a namespace pointer meaning "the parent's" (or NULL). */
static struct st_node *copy_one(struct st_doc *d, struct st_node *parent,
				const struct st_node *s, const char *inherit)
{
	const struct st_attr *a;
	struct st_attr **tail;
	struct st_node *n;

	if (!s->name)
		return st_text_add(d, parent, s->text, s->len);
	if (inherit && s->ns == inherit) {
		n = st_elem_new(d, parent, s->name, NULL);
		if (!parent)
			n->ns = inherit;
	} else {
		n = st_elem_new(d, parent, s->name, s->ns);
	}
	tail = &n->attrs;
	for (a = s->attrs; a; a = a->next) {
		struct st_attr *c = st_alloc(d, sizeof(*c));

		c->next = NULL;
		c->name = st_strdup(d, a->name, strlen(a->name));
		c->value = st_strdup(d, a->value, strlen(a->value));
		*tail = c;
		tail = &c->next;
	}
	return n;
}

static bool is_inside(const struct st_node *n, const struct st_node *top)
{
	for (; n; n = n->parent)
		if (n == top)
			return true;
	return false;
}

struct st_node *st_copy_into_ns(struct st_doc *d, struct st_node *parent,
				const struct st_node *src, const char *inherit)
{
	const struct st_node *s;
	struct st_node *top, *dp, *c;

	if (parent && is_inside(parent, src)) {
		/* Copying a subtree into itself: go through a snapshot. */
		struct st_doc *tmp = st_doc_new();

		st_copy_into_ns(tmp, NULL, src, inherit);
		top = st_copy_into_ns(d, parent, tmp->root, inherit);
		st_doc_unref(tmp);
		return top;
	}
	top = copy_one(d, parent, src, inherit);
	if (!src->name)
		return top;
	dp = top;
	s = src->first;
	while (s) {
		c = copy_one(d, dp, s, inherit);
		if (s->name && s->first) {
			dp = c;
			s = s->first;
			continue;
		}
		while (!s->next) {
			s = s->parent;
			if (s == src)
				return top;
			dp = dp->parent;
		}
		s = s->next;
	}
	return top;
}

struct st_node *st_copy_into(struct st_doc *d, struct st_node *parent,
			     const struct st_node *src)
{
	return st_copy_into_ns(d, parent, src, NULL);
}

/* Arena bytes for the strings and structs of one node, padding
 * included (an upper bound: a namespace shared with the parent is not
 * copied). */
static size_t node_size(const struct st_node *n)
{
	const struct st_attr *a;
	size_t size = sizeof(*n) + ARENA_ALIGN;

	if (!n->name)
		return size + n->len + 1;
	size += strlen(n->name) + 1 + strlen(n->ns) + 1;
	for (a = n->attrs; a; a = a->next)
		size += sizeof(*a) + ARENA_ALIGN + strlen(a->name) + 1 +
			strlen(a->value) + 1;
	return size;
}

size_t st_copy_size(const struct st_node *src)
{
	const struct st_node *s = src;
	size_t size = node_size(src);

	if (!src->name || !src->first)
		return size;
	s = src->first;
	for (;;) {
		size += node_size(s);
		if (s->name && s->first) {
			s = s->first;
			continue;
		}
		while (!s->next) {
			s = s->parent;
			if (s == src)
				return size;
		}
		s = s->next;
	}
}

struct st_doc *st_doc_new_for_copy(const struct st_node *src)
{
	size_t need = st_copy_size(src);

	/* room for a few more attributes ('to' on a broadcast copy) */
	return st_doc_new_sized(need + need / 4 + 64);
}

struct st_doc *st_clone(const struct st_node *src)
{
	struct st_doc *d = st_doc_new_for_copy(src);

	st_copy_into(d, NULL, src);
	d->cursor = d->root;
	return d;
}

/* Serialization. */

/* A parser normalizes line ends (CR LF and CR become LF) everywhere and
 * turns tab, LF and CR in an attribute value into spaces (XML 1.0 2.11,
 * 3.3.3): written as character references they come back as they were. */
static const char *const esc_attr[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;",
	['"'] = "&quot;", ['\''] = "&apos;",
	['\t'] = "&#9;", ['\n'] = "&#10;", ['\r'] = "&#13;",
};
static const char *const esc_text[256] = {
	['&'] = "&amp;", ['<'] = "&lt;", ['>'] = "&gt;", ['\r'] = "&#13;",
};

static void escape_with(struct sbuf *out, const char *s, size_t n,
			const char *const table[256])
{
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		const char *e = table[(unsigned char)s[i]];

		if (!e)
			continue;
		sbuf_add(out, s + start, i - start);
		sbuf_adds(out, e);
		start = i + 1;
	}
	sbuf_add(out, s + start, n - start);
}

void xml_escape(struct sbuf *out, const char *s, size_t n)
{
	escape_with(out, s, n, esc_attr);
}

static void put_attr(struct sbuf *out, const char *prefix, size_t plen,
		     const char *name, const char *value)
{
	sbuf_addc(out, ' ');
	if (plen) {
		sbuf_add(out, prefix, plen);
		sbuf_addc(out, ':');
	}
	sbuf_adds(out, name);
	sbuf_add(out, "='", 2);
	xml_escape(out, value, strlen(value));
	sbuf_addc(out, '\'');
}

/* An "nsuri\1local" attribute: the k-th such attribute of an element gets
 * the prefix nsk, declared on the same element. (Two of them sharing a uri
 * get two prefixes; that is still well-formed XML.) */
static void put_ns_attr(struct sbuf *out, const struct st_attr *a,
			const char *sep, unsigned k)
{
	char prefix[16];
	int plen = snprintf(prefix, sizeof(prefix), "ns%u", k);

	sbuf_add(out, " xmlns:", 7);
	sbuf_add(out, prefix, (size_t)plen);
	sbuf_add(out, "='", 2);
	xml_escape(out, a->name, (size_t)(sep - a->name));
	sbuf_addc(out, '\'');
	put_attr(out, prefix, (size_t)plen, sep + 1, a->value);
}

/* An element in the XML namespace (<xml:x/> parses to one) may not make
 * that namespace the default (xmlns='...XML/1998/namespace' is not
 * well-formed): it keeps the predeclared prefix xml instead. */
static bool in_xml_ns(const struct st_node *n)
{
	return strcmp(n->ns, NS_XML) == 0;
}

static void open_tag(struct sbuf *out, const struct st_node *n,
		     const char *parent_ns)
{
	const struct st_attr *a;
	unsigned k = 0;
	bool xml_ns = in_xml_ns(n);

	sbuf_addc(out, '<');
	if (xml_ns)
		sbuf_add(out, "xml:", 4);
	sbuf_adds(out, n->name);
	if (!parent_ns)
		parent_ns = "";
	if (!xml_ns && n->ns != parent_ns && strcmp(n->ns, parent_ns) != 0) {
		sbuf_add(out, " xmlns='", 8);
		xml_escape(out, n->ns, strlen(n->ns));
		sbuf_addc(out, '\'');
	}
	for (a = n->attrs; a; a = a->next) {
		const char *sep = strchr(a->name, '\1');

		if (sep)
			put_ns_attr(out, a, sep, ++k);
		else
			put_attr(out, NULL, 0, a->name, a->value);
	}
	if (n->first)
		sbuf_addc(out, '>');
	else
		sbuf_add(out, "/>", 2);
}

static void close_tag(struct sbuf *out, const struct st_node *n)
{
	sbuf_add(out, "</", 2);
	if (in_xml_ns(n))
		sbuf_add(out, "xml:", 4);
	sbuf_adds(out, n->name);
	sbuf_addc(out, '>');
}

void st_serialize(const struct st_node *n, const char *default_ns,
		  struct sbuf *out)
{
	const struct st_node *s = n;

	for (;;) {
		if (!s->name) {
			escape_with(out, s->text, s->len, esc_text);
		} else {
			open_tag(out, s, s == n ? default_ns : s->parent->ns);
			if (s->first) {
				s = s->first;
				continue;
			}
		}
		while (s != n && !s->next) {
			s = s->parent;
			close_tag(out, s);
		}
		if (s == n)
			return;
		s = s->next;
	}
}

/* Replies. */

static void set_swapped_addrs(struct st_doc *d, struct st_node *r,
			      const struct st_node *orig)
{
	st_attr_set(d, r, "to", st_attr_get(orig, "from"));
	st_attr_set(d, r, "from", st_attr_get(orig, "to"));
}

struct st_doc *st_reply(const struct st_node *orig)
{
	struct st_doc *d = st_doc_new();
	struct st_node *r = st_elem_new(d, NULL, orig->name, orig->ns);
	const char *type = st_attr_get(orig, "type");

	set_swapped_addrs(d, r, orig);
	st_attr_set(d, r, "id", st_attr_get(orig, "id"));
	if (strcmp(orig->name, "iq") == 0)
		type = "result";
	st_attr_set(d, r, "type", type);
	return d;
}

struct st_doc *st_error_reply(const struct st_node *orig, const char *type,
			      const char *condition, const char *text)
{
	struct st_doc *d;
	struct st_node *r, *err, *t;
	const struct st_attr *a;

	if (strcmp(orig->name, "iq") == 0) {
		d = st_doc_new();
		r = st_elem_new(d, NULL, orig->name, orig->ns);
		for (a = orig->attrs; a; a = a->next)
			st_attr_set(d, r, a->name, a->value);
	} else {
		d = st_clone(orig);
		r = d->root;
	}
	set_swapped_addrs(d, r, orig);
	st_attr_set(d, r, "type", "error");
	err = st_elem_new(d, r, "error", NULL);
	st_attr_set(d, err, "type", type);
	st_elem_new(d, err, condition, NS_STANZAS);
	if (text && *text) {
		t = st_elem_new(d, err, "text", NS_STANZAS);
		st_text_add(d, t, text, strlen(text));
	}
	d->cursor = r;
	return d;
}
