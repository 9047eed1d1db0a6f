/*
 * lx_stanza.c - stanzas in Lua: the "starling.stanza" userdata.
 *
 * A stanza value is a view { doc, node }: a counted reference on the doc
 * and one node of its tree. Views of children hold their own reference, so
 * a child outlives a collected root. Nodes are never freed before their
 * doc, so a view of a node that was since removed stays safe to use.
 *
 * The builder cursor is st_doc.cursor. A view uses it while the cursor is
 * inside the view's own subtree, else the view's node itself (a child view
 * starts building at itself, as in Prosody's util.stanza).
 *
 * Namespaces: every element has one. A stanza made by new() without an
 * xmlns gets NS_CLIENT through the pointer lx_ns_default, which means "the
 * stream's namespace": copying it under another element (add_child) lets
 * it, and the children that inherited it, take that element's namespace,
 * as an xmlns-less table would in Prosody.
 *
 * attr proxy ("starling.stanza.attr"): a borrowed { doc, node } whose user
 * value is the view it came from; the view caches it in its user value.
 *
 * This file: the userdata, metatables, builder, properties, copies and
 * replies. The read-only queries are in lx_stanza_query.c.
 */
#include "lx_stanza_view.h"

#include <stdlib.h>

static const char STANZA_MT[] = "starling.stanza";
static const char ATTR_MT[] = "starling.stanza.attr";
#define METHODS_KEY "starling.stanza.methods"

static const char lx_ns_default[] = NS_CLIENT;

static void ensure_metatables(lua_State *L);

/* Validation: what goes into a tree must serialize to well-formed XML. */

/* Length of the valid UTF-8 XML character at s (0: invalid). */
static size_t xml_char_len(const unsigned char *s, size_t n)
{
	uint32_t c;
	size_t len = utf8_decode(s, n, &c);

	if (!len || (c < 0x20 && c != '\t' && c != '\n' && c != '\r') ||
	    c == 0xfffe || c == 0xffff)
		return 0;
	return len;
}

static bool valid_text(const char *s, size_t n)
{
	size_t i = 0, k;

	while (i < n) {
		if ((unsigned char)s[i] >= 0x20 && (unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		k = xml_char_len((const unsigned char *)s + i, n - i);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

/* An XML name, loosely: valid UTF-8, no markup or space characters. */
static bool valid_name(const char *s, size_t n)
{
	size_t i;

	if (n == 0 || !valid_text(s, n) || strchr("-.0123456789", s[0]))
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x80 && !(c == '-' || c == '.' || c == '_' || c == ':' ||
				  (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
				  (c >= 'A' && c <= 'Z')))
			return false;
	}
	return true;
}

static bool valid_attr_name(const char *s, size_t n)
{
	const char *sep = memchr(s, '\1', n);

	if (!sep)
		return valid_name(s, n);
	return sep > s && valid_text(s, (size_t)(sep - s)) &&
	       valid_name(sep + 1, n - (size_t)(sep - s) - 1);
}

static const char *check_name(lua_State *L, int idx, const char *what)
{
	size_t n;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "invalid %s name: expected string, got %s", what,
			   luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &n);
	if (!valid_name(s, n) || strlen(s) != n)
		luaL_error(L, "invalid %s name: '%s'", what, s);
	return s;
}

static const char *check_text(lua_State *L, int idx, const char *what,
			      size_t *len)
{
	size_t n;
	const char *s;

	if (lua_type(L, idx) != LUA_TSTRING)
		luaL_error(L, "invalid %s value: expected string, got %s", what,
			   luaL_typename(L, idx));
	s = lua_tolstring(L, idx, &n);
	if (!valid_text(s, n) || strlen(s) != n)
		luaL_error(L, "invalid %s value: not valid XML character data",
			   what);
	if (len)
		*len = n;
	return s;
}

/* Attribute tables: read, validated and sorted (for a stable output) before
 * anything is changed, so an error leaves the tree as it was. */

struct lx_kv {
	const char *k;
	const char *v;
};

/* The pairs of an attr proxy (the proxy at idx keeps them alive). */
static struct lx_kv *proxy_attrs(lua_State *L, int idx, size_t *count,
				 const char **ns)
{
	const struct lx_stanza *a = lua_touserdata(L, idx);
	const struct st_attr *at;
	struct lx_kv *kv;
	size_t n = 0;

	for (at = a->node->attrs; at; at = at->next)
		n++;
	kv = lua_newuserdatauv(L, n * sizeof(*kv) + 1, 0);
	for (n = 0, at = a->node->attrs; at; at = at->next, n++) {
		kv[n].k = at->name;
		kv[n].v = at->value;
	}
	*count = n;
	*ns = a->node->ns == lx_ns_default ? NULL : a->node->ns;
	return kv;
}

#define KV_STACK 16		/* attributes read without an allocation */

/* The pair at the top of a lua_next walk, checked, into kv[*i] (or *ns
 * for xmlns). */
static void read_pair(lua_State *L, struct lx_kv *kv, size_t *i,
		      const char **ns)
{
	const char *k;
	size_t len;

	if (lua_type(L, -2) != LUA_TSTRING)
		luaL_error(L, "invalid attribute name: expected string, got %s",
			   luaL_typename(L, -2));
	k = lua_tolstring(L, -2, &len);
	if (strcmp(k, "xmlns") == 0) {
		*ns = check_text(L, -1, "xmlns", NULL);
		return;
	}
	if (!valid_attr_name(k, len) || strlen(k) != len)
		luaL_error(L, "invalid attribute name: '%s'", k);
	kv[*i].k = k;
	kv[(*i)++].v = check_text(L, -1, "attribute", NULL);
}

/* The table's pairs, sorted by name, in stack (KV_STACK of them) or else
 * in an array it pushes; strings borrowed from the table (or the proxy).
 * *ns gets its xmlns (or NULL). idx may be nil. Pushes one value. */
static struct lx_kv *read_attrs(lua_State *L, int idx, struct lx_kv *stack,
				size_t *count, const char **ns)
{
	struct lx_kv *kv = stack;
	size_t n = 0, i = 0;

	*ns = NULL;
	*count = 0;
	if (lua_isnoneornil(L, idx)) {
		lua_pushnil(L);
		return NULL;
	}
	if (lx_testudata(L, idx, ATTR_MT))
		return proxy_attrs(L, idx, count, ns);
	if (!lua_istable(L, idx))
		luaL_error(L, "invalid attributes: expected table, got %s",
			   luaL_typename(L, idx));
	idx = lua_absindex(L, idx);
	lua_pushnil(L);			/* the anchor's place */
	for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1)) {
		if (i == KV_STACK) {		/* a big one: count, allocate */
			lua_pop(L, 2);
			for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
				n++;
			kv = lua_newuserdatauv(L, n * sizeof(*kv) + 1, 0);
			lua_replace(L, -2);
			i = 0;
			*ns = NULL;
			for (lua_pushnil(L); lua_next(L, idx); lua_pop(L, 1))
				read_pair(L, kv, &i, ns);
			break;
		}
		read_pair(L, kv, &i, ns);
	}
	for (size_t j = 1; j < i; j++) {	/* insertion sort: few */
		struct lx_kv t = kv[j];
		size_t m = j;
		for (; m > 0 && strcmp(kv[m - 1].k, t.k) > 0; m--)
			kv[m] = kv[m - 1];
		kv[m] = t;
	}
	*count = i;
	return kv;
}

static void apply_attrs(struct st_doc *d, struct st_node *n,
			const struct lx_kv *kv, size_t count)
{
	size_t i;

	for (i = 0; i < count; i++)
		st_attr_set(d, n, kv[i].k, kv[i].v);
}

/* Views. */

static void attach_metatable(lua_State *L)
{
	if (lua_rawgetp(L, LUA_REGISTRYINDEX, STANZA_MT) == LUA_TNIL) {
		lua_pop(L, 1);
		ensure_metatables(L);
		lua_rawgetp(L, LUA_REGISTRYINDEX, STANZA_MT);
	}
	lua_setmetatable(L, -2);
}

/* A view with no doc yet: fill it in (doc NULL is fine for __gc). User
 * values: 1 the attr proxy, 2 a table of the fields Lua code set on this
 * view (Prosody modules mark stanzas: `stanza._flush = true`). */
static struct lx_stanza *push_empty(lua_State *L)
{
	struct lx_stanza *s = lua_newuserdatauv(L, sizeof(*s), 2);

	s->doc = NULL;
	s->node = NULL;
	attach_metatable(L);
	return s;
}

void lx_stanza_push(lua_State *L, struct st_doc *doc, struct st_node *node)
{
	struct lx_stanza *s = push_empty(L);

	s->doc = st_doc_ref(doc);
	s->node = node;
	/* Lua's collector sees a few bytes of userdata, not the tree they keep
	 * alive: for a big one, collect as much as its size deserves, so big
	 * stanzas do not pile up waiting for a cycle. */
	if (doc->used >= 4096 && node == doc->root)
		lua_gc(L, LUA_GCSTEP, (int)MIN(doc->used >> 10, (size_t)1 << 20));
}

struct st_node *lx_stanza_test(lua_State *L, int idx, struct st_doc **doc)
{
	struct lx_stanza *s = lx_testudata(L, idx, STANZA_MT);

	if (!s || !s->doc)
		return NULL;
	if (doc)
		*doc = s->doc;
	return s->node;
}

struct lx_stanza *lx_stanza_view(lua_State *L, int idx)
{
	struct lx_stanza *s = lx_checkudata(L, idx, STANZA_MT);

	if (!s->doc)
		luaL_argerror(L, idx, "stanza already collected");
	return s;
}

struct st_node *lx_stanza_check(lua_State *L, int idx, struct st_doc **doc)
{
	struct lx_stanza *s = lx_stanza_view(L, idx);

	if (doc)
		*doc = s->doc;
	return s->node;
}

void lx_stanza_push_child(lua_State *L, const struct lx_stanza *s,
			  struct st_node *c)
{
	if (c->name)
		lx_stanza_push(L, s->doc, c);
	else
		lua_pushlstring(L, c->text, c->len);
}

static struct st_node *cursor_of(const struct lx_stanza *s)
{
	struct st_node *n;

	for (n = s->doc->cursor; n; n = n->parent)
		if (n == s->node)
			return s->doc->cursor;
	return s->node;
}

/* After removals: a cursor that left the tree goes back to the root. */
static void fix_cursor(struct st_doc *d)
{
	struct st_node *n = d->cursor;

	while (n && n->parent)
		n = n->parent;
	if (n != d->root)
		d->cursor = d->root;
}

/* Tree surgery. */

static void link_before(struct st_node *n, struct st_node *ref)
{
	n->parent = ref->parent;
	n->next = ref;
	n->prev = ref->prev;
	if (ref->prev)
		ref->prev->next = n;
	else
		ref->parent->first = n;
	ref->prev = n;
}

/* Deep copy of src under parent (NULL: as the root of d), keeping the
 * meaning of lx_ns_default. */
static struct st_node *copy_tree(struct st_doc *d, struct st_node *parent,
				 const struct st_node *src)
{
	return st_copy_into_ns(d, parent, src, lx_ns_default);
}

/* Copies the value at idx (a stanza, or a string as text) under parent. */
static void add_value(lua_State *L, int idx, struct st_doc *d,
		      struct st_node *parent)
{
	struct lx_stanza *c;
	const char *t;
	size_t len;

	if (lua_type(L, idx) == LUA_TSTRING) {
		t = check_text(L, idx, "text", &len);
		if (len)
			st_text_add(d, parent, t, len);
		return;
	}
	c = lx_testudata(L, idx, STANZA_MT);
	if (!c || !c->doc)
		luaL_argerror(L, idx, "stanza or string expected");
	copy_tree(d, parent, c->node);
}

/* Builder methods. */

static int m_tag(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = check_name(L, 2, "tag");
	const char *ns;
	size_t count;
	struct lx_kv stack[KV_STACK];
	struct lx_kv *kv = read_attrs(L, 3, stack, &count, &ns);
	struct st_node *n;

	n = st_elem_new(s->doc, cursor_of(s), name, ns);
	apply_attrs(s->doc, n, kv, count);
	s->doc->cursor = n;
	lua_settop(L, 1);
	return 1;
}

static int m_text(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *t;
	size_t len;

	if (!lua_isnoneornil(L, 2)) {
		t = check_text(L, 2, "text", &len);
		if (len)
			st_text_add(s->doc, cursor_of(s), t, len);
	}
	lua_settop(L, 1);
	return 1;
}

static int m_text_tag(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = check_name(L, 2, "tag");
	const char *t, *ns;
	size_t len, count;
	struct lx_kv stack[KV_STACK];
	struct lx_kv *kv = read_attrs(L, 4, stack, &count, &ns);
	struct st_node *n;

	t = lua_isnoneornil(L, 3) ? "" : check_text(L, 3, "text", &len);
	if (!*t)
		len = 0;
	n = st_elem_new(s->doc, cursor_of(s), name, ns);
	apply_attrs(s->doc, n, kv, count);
	if (len)
		st_text_add(s->doc, n, t, len);
	lua_settop(L, 1);
	return 1;
}

static int m_query(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	size_t len;
	const char *ns = check_text(L, 2, "xmlns", &len);
	struct st_node *n;

	n = st_elem_new(s->doc, cursor_of(s), "query", ns);
	s->doc->cursor = n;
	lua_settop(L, 1);
	return 1;
}

static int m_up(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_node *c = cursor_of(s);

	s->doc->cursor = c == s->node ? c : c->parent;
	lua_settop(L, 1);
	return 1;
}

static int m_reset(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	s->doc->cursor = s->node;
	lua_settop(L, 1);
	return 1;
}

static int m_at_top(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	lua_pushboolean(L, cursor_of(s) == s->node);
	return 1;
}

static int m_add_child(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	add_value(L, 2, s->doc, cursor_of(s));
	lua_settop(L, 1);
	return 1;
}

static int m_add_direct_child(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	add_value(L, 2, s->doc, s->node);
	lua_settop(L, 1);
	return 1;
}

static int m_remove_children(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = luaL_optstring(L, 2, NULL);
	const char *ns = luaL_optstring(L, 3, NULL);
	struct st_node *c, *next;

	if (!ns)
		ns = s->node->ns;
	for (c = s->node->first; c; c = next) {
		next = c->next;
		if (c->name && (!name || strcmp(c->name, name) == 0) &&
		    lx_ns_equal(c->ns, ns))
			st_unlink(c);
	}
	fix_cursor(s->doc);
	lua_settop(L, 1);
	return 1;
}

/* :maptags(fn): fn(child) for each child element (as they were when the
 * call began); nil removes the child, another stanza replaces it. */
static void map_result(lua_State *L, struct lx_stanza *s, struct st_node *c)
{
	struct lx_stanza *r;
	struct st_node *n;

	if (lua_isnil(L, -1)) {
		st_unlink(c);
		return;
	}
	r = lx_testudata(L, -1, STANZA_MT);
	if (!r || !r->doc)
		luaL_error(L, "maptags: the callback must return a stanza or nil");
	if (r->node == c)
		return;
	n = copy_tree(s->doc, c->parent, r->node);
	st_unlink(n);
	link_before(n, c);
	st_unlink(c);
}

static int m_maptags(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_node *c, **list;
	size_t n = 0, i;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	for (c = s->node->first; c; c = c->next)
		n += c->name != NULL;
	list = lua_newuserdatauv(L, n * sizeof(*list) + 1, 0);
	for (c = s->node->first, i = 0; c; c = c->next)
		if (c->name)
			list[i++] = c;
	for (i = 0; i < n; i++) {
		if (list[i]->parent != s->node)
			continue;
		lua_pushvalue(L, 2);
		lx_stanza_push(L, s->doc, list[i]);
		/* a callback, not an entry into Lua: its error goes on to our
		 * caller's protected call unchanged */
		if (lua_pcall(L, 1, 1, 0) != LUA_OK)
			return lua_error(L);
		if (list[i]->parent == s->node)
			map_result(L, s, list[i]);
		lua_pop(L, 1);
	}
	fix_cursor(s->doc);
	lua_settop(L, 1);
	return 1;
}

/* New docs. */

static int m_clone(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct lx_stanza *c = push_empty(L);

	c->doc = st_doc_new_for_copy(s->node);
	c->node = copy_tree(c->doc, NULL, s->node);
	if (!s->node->name)	/* a text node has no root to hold it */
		c->doc->root = c->node;
	c->doc->cursor = c->node;
	return 1;
}

static int m_reply(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct lx_stanza *r = push_empty(L);

	r->doc = st_reply(s->node);
	r->node = r->doc->root;
	if (s->node->ns == lx_ns_default)
		r->node->ns = lx_ns_default;
	return 1;
}

/* :error_reply(type, condition, text, by): the cursor is left on <error>,
 * ready for an application-specific condition. */
static int m_error_reply(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *type = check_name(L, 2, "error type");
	const char *cond = check_name(L, 3, "condition");
	const char *text = NULL, *by = NULL, *from;
	struct lx_stanza *r;
	struct st_node *err;

	if (!lua_isnoneornil(L, 4))
		text = check_text(L, 4, "text", NULL);
	if (!lua_isnoneornil(L, 5))
		by = check_text(L, 5, "attribute", NULL);
	r = push_empty(L);
	r->doc = st_error_reply(s->node, type, cond, text);
	r->node = r->doc->root;
	if (s->node->ns == lx_ns_default)
		r->node->ns = lx_ns_default;
	err = r->node->last;
	from = st_attr_get(r->node, "from");
	if (by && !(from && strcmp(from, by) == 0))
		st_attr_set(r->doc, err, "by", by);
	r->doc->cursor = err;
	return 1;
}

/* Serialization. */

static int m_top_tag(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_doc *tmp;
	struct st_node *n;
	const struct st_attr *a;
	struct sbuf b;

	if (!s->node->name)
		return luaL_error(L, "top_tag: not an element");
	tmp = st_doc_new();
	n = st_elem_new(tmp, NULL, s->node->name, s->node->ns);
	for (a = s->node->attrs; a; a = a->next)
		st_attr_set(tmp, n, a->name, a->value);
	sbuf_init(&b);
	st_serialize(n, NS_CLIENT, &b);
	st_doc_unref(tmp);
	lua_pushlstring(L, b.p, b.len - 2);	/* "/>" -> ">" */
	lua_pushliteral(L, ">");
	lua_concat(L, 2);
	sbuf_free(&b);
	return 1;
}

static int mm_tostring(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct sbuf b;

	sbuf_init(&b);
	st_serialize(s->node, NS_CLIENT, &b);
	lua_pushlstring(L, b.p ? b.p : "", b.len);
	sbuf_free(&b);
	return 1;
}

static int mm_gc(lua_State *L)
{
	struct lx_stanza *s = lx_checkudata(L, 1, STANZA_MT);

	st_doc_unref(s->doc);
	s->doc = NULL;
	s->node = NULL;
	return 0;
}

static int mm_eq(lua_State *L)
{
	struct lx_stanza *a = lx_testudata(L, 1, STANZA_MT);
	struct lx_stanza *b = lx_testudata(L, 2, STANZA_MT);

	lua_pushboolean(L, a && b && a->node == b->node);
	return 1;
}

static int mm_len(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_node *c;
	lua_Integer n = 0;

	for (c = s->node->first; c; c = c->next)
		n++;
	lua_pushinteger(L, n);
	return 1;
}

/* The attr proxy. */

static void push_attr_proxy(lua_State *L, int view_idx)
{
	struct lx_stanza *s = lua_touserdata(L, view_idx), *a;

	if (lua_getiuservalue(L, view_idx, 1) == LUA_TUSERDATA)
		return;
	lua_pop(L, 1);
	a = lua_newuserdatauv(L, sizeof(*a), 1);
	*a = *s;			/* borrowed: the user value holds s */
	lx_setmetatable(L, ATTR_MT);
	lua_pushvalue(L, view_idx);
	lua_setiuservalue(L, -2, 1);
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, view_idx, 1);
}

static int attr_index(lua_State *L)
{
	struct lx_stanza *a = lx_checkudata(L, 1, ATTR_MT);
	const char *k = lua_tostring(L, 2), *v;

	if (lua_type(L, 2) != LUA_TSTRING)
		return 0;
	v = strcmp(k, "xmlns") == 0 ? a->node->ns : st_attr_get(a->node, k);
	if (!v)
		return 0;
	lua_pushstring(L, v);
	return 1;
}

static void set_ns(struct st_doc *d, struct st_node *n, const char *ns)
{
	if (!ns)
		n->ns = n->parent ? n->parent->ns : lx_ns_default;
	else if (n->parent && lx_ns_equal(ns, n->parent->ns))
		n->ns = n->parent->ns;
	else if (n->ns == lx_ns_default || !lx_ns_equal(ns, n->ns))
		/* named, even as jabber:client: it keeps it under add_child */
		n->ns = st_strdup(d, ns, strlen(ns));
}

static int attr_newindex(lua_State *L)
{
	struct lx_stanza *a = lx_checkudata(L, 1, ATTR_MT);
	const char *k = check_name(L, 2, "attribute");
	const char *v = NULL;

	if (!lua_isnil(L, 3))
		v = check_text(L, 3, "attribute", NULL);
	if (strcmp(k, "xmlns") == 0)
		set_ns(a->doc, a->node, v);
	else
		st_attr_set(a->doc, a->node, k, v);
	return 0;
}

/* pairs(attr): xmlns first, then the attributes in order. */
static int attr_next(lua_State *L)
{
	struct lx_stanza *a = lx_checkudata(L, 1, ATTR_MT);
	const struct st_attr *at = a->node->attrs;
	const char *k = lua_tostring(L, 2);

	if (lua_isnil(L, 2)) {
		lua_pushliteral(L, "xmlns");
		lua_pushstring(L, a->node->ns);
		return 2;
	}
	if (!k)
		return 0;
	if (strcmp(k, "xmlns") != 0) {
		while (at && strcmp(at->name, k) != 0)
			at = at->next;
		if (!at)
			return 0;
		at = at->next;
	}
	if (!at)
		return 0;
	lua_pushstring(L, at->name);
	lua_pushstring(L, at->value);
	return 2;
}

static int attr_pairs(lua_State *L)
{
	lx_checkudata(L, 1, ATTR_MT);
	lua_pushcfunction(L, attr_next);
	lua_pushvalue(L, 1);
	lua_pushnil(L);
	return 3;
}

/* Properties: name, attr, tags (a fresh list of the child elements),
 * s[i] (the i-th child), then the methods (upvalue 1). */
static int mm_index(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_node *c;
	const char *k;

	if (lua_type(L, 2) == LUA_TNUMBER) {
		lua_Integer i = lua_tointeger(L, 2);

		for (c = s->node->first; c && i > 1; c = c->next)
			i--;
		if (!c || i != 1)
			return 0;
		lx_stanza_push_child(L, s, c);
		return 1;
	}
	if (lua_type(L, 2) != LUA_TSTRING)
		return 0;
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	k = lua_tostring(L, 2);
	if (strcmp(k, "name") == 0) {
		if (!s->node->name)
			return 0;
		lua_pushstring(L, s->node->name);
	} else if (strcmp(k, "attr") == 0) {
		push_attr_proxy(L, 1);
	} else if (strcmp(k, "tags") == 0) {
		lua_Integer i = 0;

		lua_newtable(L);
		for (c = s->node->first; c; c = c->next) {
			if (!c->name)
				continue;
			lx_stanza_push(L, s->doc, c);
			lua_rawseti(L, -2, ++i);
		}
	} else {
		if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE)
			return 0;
		lua_pushvalue(L, 2);
		lua_rawget(L, -2);
	}
	return 1;
}

/* A field Lua code sets on this view: kept in its user value 2. */
static int set_extra(lua_State *L)
{
	if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) {
		lua_pop(L, 1);
		if (lua_isnil(L, 3))
			return 0;
		lua_newtable(L);
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, 1, 2);
	}
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

static int mm_newindex(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *k = luaL_checkstring(L, 2);

	if (strcmp(k, "name") == 0) {
		const char *name = check_name(L, 3, "tag");

		s->node->name = st_strdup(s->doc, name, strlen(name));
	} else if (strcmp(k, "attr") == 0) {
		const char *ns;
		size_t count;
		struct lx_kv stack[KV_STACK];
		struct lx_kv *kv = read_attrs(L, 3, stack, &count, &ns);

		s->node->attrs = NULL;
		apply_attrs(s->doc, s->node, kv, count);
		set_ns(s->doc, s->node, ns);
	} else if (strcmp(k, "tags") == 0) {
		return luaL_error(L, "cannot set field '%s' of a stanza", k);
	} else {
		return set_extra(L);
	}
	return 0;
}

/* The library. */

static int l_new(lua_State *L)
{
	const char *name = check_name(L, 1, "tag");
	const char *ns;
	size_t count;
	struct lx_kv stack[KV_STACK];
	struct lx_kv *kv = read_attrs(L, 2, stack, &count, &ns);
	struct lx_stanza *s = push_empty(L);

	s->doc = st_doc_new();
	s->node = st_elem_new(s->doc, NULL, name, ns ? ns : "");
	if (!ns)
		s->node->ns = lx_ns_default;
	apply_attrs(s->doc, s->node, kv, count);
	return 1;
}

static int l_is_stanza(lua_State *L)
{
	lua_pushboolean(L, lx_stanza_test(L, 1, NULL) != NULL);
	return 1;
}

static int l_clone(lua_State *L)
{
	lua_settop(L, 1);
	return m_clone(L);
}

static const luaL_Reg stanza_methods[] = {
	{ "tag", m_tag },
	{ "text", m_text },
	{ "text_tag", m_text_tag },
	{ "query", m_query },
	{ "up", m_up },
	{ "reset", m_reset },
	{ "at_top", m_at_top },
	{ "add_child", m_add_child },
	{ "add_direct_child", m_add_direct_child },
	{ "remove_children", m_remove_children },
	{ "maptags", m_maptags },
	{ "clone", m_clone },
	{ "reply", m_reply },
	{ "error_reply", m_error_reply },
	{ "top_tag", m_top_tag },
	{ NULL, NULL },
};

static const luaL_Reg stanza_meta[] = {
	{ "__gc", mm_gc },
	{ "__tostring", mm_tostring },
	{ "__len", mm_len },
	{ "__eq", mm_eq },
	{ "__newindex", mm_newindex },
	{ NULL, NULL },
};

static const luaL_Reg attr_meta[] = {
	{ "__index", attr_index },
	{ "__newindex", attr_newindex },
	{ "__pairs", attr_pairs },
	{ NULL, NULL },
};

/* Both metatables, made once per state; lx_stanza_push works before
 * anyone has required starling.stanza. */
static void ensure_metatables(lua_State *L)
{
	if (!lx_newmetatable(L, STANZA_MT)) {
		lua_pop(L, 1);
		return;
	}
	luaL_setfuncs(L, stanza_meta, 0);
	lua_newtable(L);
	luaL_setfuncs(L, stanza_methods, 0);
	luaL_setfuncs(L, lx_stanza_queries, 0);
	lua_pushvalue(L, -1);
	lua_setfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
	lua_pushcclosure(L, mm_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	lx_newmetatable(L, ATTR_MT);
	luaL_setfuncs(L, attr_meta, 0);
	lua_pop(L, 1);
}

int luaopen_starling_stanza(lua_State *L)
{
	static const luaL_Reg lib[] = {
		{ "new", l_new },
		{ "is_stanza", l_is_stanza },
		{ "clone", l_clone },
		{ NULL, NULL },
	};

	ensure_metatables(L);
	luaL_newlib(L, lib);
	lua_getfield(L, LUA_REGISTRYINDEX, METHODS_KEY);
	lua_setfield(L, -2, "methods");
	lua_pushliteral(L, NS_STANZAS);
	lua_setfield(L, -2, "xmlns_stanzas");
	return 1;
}
