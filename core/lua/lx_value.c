/*
 * value.c - stored values: the binary encoding of Lua values that the
 * stores keep (declared in lx.h).
 *
 * Format, version 1:
 *   value   := 0x01 item                     (the version byte)
 *   item    := 0x00                          nil
 *            | 0x01 | 0x02                   false | true
 *            | 0x03 varint                   integer, zigzag encoded
 *            | 0x04 b8                       float, IEEE 754 binary64 BE
 *            | 0x05 str                      string (any bytes)
 *            | 0x06 varint (item item)*      table: count, then key/value
 *                                            pairs; keys are never nil or
 *                                            NaN, values never nil
 *            | 0x07 element                  stanza
 *   element := str(name) nsopt varint (str str)* varint child*
 *                                            name, namespace, attributes
 *                                            (name, value), children
 *   nsopt   := varint 0: the parent's namespace ("" at the top)
 *            | varint len+1, then len bytes
 *   child   := 'e' element | 't' str(text)
 *   str     := varint len, then len bytes
 *   varint  := unsigned LEB128, at most 10 bytes
 *
 * Tables are encoded raw (metatables are not stored) and at most
 * VALUE_MAX_DEPTH deep, which is also what stops a cycle; a table reached
 * twice through different paths is encoded twice, within a budget of
 * VALUE_MAX_ITEMS items and VALUE_MAX_BYTES bytes. Element names,
 * namespaces and attributes hold no NUL (they are C strings in the tree);
 * an element has at most VALUE_MAX_ATTRS attributes, no two of one name.
 * Decoding checks every count and length against the bytes left, so
 * corrupt input is -EINVAL, never an over-read.
 */
#include "lx.h"

#include <errno.h>
#include <math.h>

#define VALUE_VERSION 1
#define VALUE_MAX_DEPTH 64		/* nested tables */
#define VALUE_MAX_XML_DEPTH 512		/* nested elements in a stanza */
#define VALUE_MAX_ITEMS ((size_t)1 << 22)
#define VALUE_MAX_BYTES ((size_t)512 << 20)
#define VALUE_MAX_ATTRS 256		/* attributes on one element */
#define VALUE_PREALLOC 1024		/* table slots made before decoding */

enum value_tag {
	TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_FLOAT, TAG_STRING,
	TAG_TABLE, TAG_STANZA,
};

#define CHILD_ELEM 'e'
#define CHILD_TEXT 't'

/* ---- encoding ---- */

struct enc {
	lua_State *L;
	struct sbuf *out;
	size_t items;
};

static void put_varint(struct sbuf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	sbuf_add(out, b, n);
}

static void put_str(struct sbuf *out, const char *s, size_t len)
{
	put_varint(out, len);
	sbuf_add(out, s, len);
}

static void put_float(struct sbuf *out, double d)
{
	unsigned char b[8];
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	for (int i = 7; i >= 0; i--) {
		b[i] = u & 0xff;
		u >>= 8;
	}
	sbuf_add(out, b, sizeof(b));
}

static void put_integer(struct sbuf *out, lua_Integer i)
{
	uint64_t u = (uint64_t)i << 1;

	if (i < 0)
		u = ~u;
	sbuf_addc(out, TAG_INT);
	put_varint(out, u);
}

static bool cstr_ok(const char *s)
{
	return s && strlen(s) < VALUE_MAX_BYTES;
}

/* Element n; parent_ns is the namespace of the element encoded around
 * it ("" at the top). */
static int enc_elem(struct enc *e, const struct st_node *n,
		    const char *parent_ns, int depth)
{
	size_t count = 0;

	if (depth > VALUE_MAX_XML_DEPTH || !n->name || !*n->name)
		return -EINVAL;
	if (++e->items > VALUE_MAX_ITEMS || e->out->len > VALUE_MAX_BYTES)
		return -EINVAL;
	put_str(e->out, n->name, strlen(n->name));
	if (n->ns && strcmp(n->ns, parent_ns) != 0) {
		put_varint(e->out, (uint64_t)strlen(n->ns) + 1);
		sbuf_adds(e->out, n->ns);
	} else {
		put_varint(e->out, 0);
	}
	for (const struct st_attr *a = n->attrs; a; a = a->next)
		count++;
	if (count > VALUE_MAX_ATTRS)
		return -EINVAL;
	put_varint(e->out, count);
	for (const struct st_attr *a = n->attrs; a; a = a->next) {
		if (!cstr_ok(a->name) || !cstr_ok(a->value))
			return -EINVAL;
		put_str(e->out, a->name, strlen(a->name));
		put_str(e->out, a->value, strlen(a->value));
	}
	count = 0;
	for (const struct st_node *c = n->first; c; c = c->next)
		count++;
	put_varint(e->out, count);
	for (const struct st_node *c = n->first; c; c = c->next) {
		int rc;
		if (c->name) {
			sbuf_addc(e->out, CHILD_ELEM);
			rc = enc_elem(e, c, n->ns ? n->ns : parent_ns, depth + 1);
			if (rc)
				return rc;
		} else {
			sbuf_addc(e->out, CHILD_TEXT);
			put_str(e->out, c->text ? c->text : "", c->text ? c->len : 0);
		}
	}
	return 0;
}

static int enc_item(struct enc *e, int idx, int depth);

/* The table at idx (absolute): count, then the pairs. */
static int enc_table(struct enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	size_t count = 0;
	int rc;

	if (depth >= VALUE_MAX_DEPTH || !lua_checkstack(L, 4))
		return -EINVAL;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		count++;
		lua_pop(L, 1);
	}
	sbuf_addc(e->out, TAG_TABLE);
	put_varint(e->out, count);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int top = lua_gettop(L);
		rc = enc_item(e, top - 1, depth + 1);
		if (rc == 0)
			rc = enc_item(e, top, depth + 1);
		lua_pop(L, 1);
		if (rc) {
			lua_pop(L, 1);
			return rc;
		}
	}
	return 0;
}

static int enc_item(struct enc *e, int idx, int depth)
{
	lua_State *L = e->L;
	struct st_node *node;
	const char *s;
	size_t len;

	if (++e->items > VALUE_MAX_ITEMS || e->out->len > VALUE_MAX_BYTES)
		return -EINVAL;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		sbuf_addc(e->out, TAG_NIL);
		return 0;
	case LUA_TBOOLEAN:
		sbuf_addc(e->out, lua_toboolean(L, idx) ? TAG_TRUE : TAG_FALSE);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			put_integer(e->out, lua_tointeger(L, idx));
		} else {
			sbuf_addc(e->out, TAG_FLOAT);
			put_float(e->out, (double)lua_tonumber(L, idx));
		}
		return 0;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		sbuf_addc(e->out, TAG_STRING);
		put_str(e->out, s, len);
		return 0;
	case LUA_TTABLE:
		return enc_table(e, idx, depth);
	case LUA_TUSERDATA:
		node = lx_stanza_test(L, idx, NULL);
		if (!node)
			return -EINVAL;
		sbuf_addc(e->out, TAG_STANZA);
		return enc_elem(e, node, "", 0);
	default:
		return -EINVAL;
	}
}

int value_encode(lua_State *L, int idx, struct sbuf *out)
{
	struct enc e = { L, out, 0 };
	size_t start = out->len;
	int top = lua_gettop(L);
	int rc;

	idx = lua_absindex(L, idx);
	sbuf_addc(out, VALUE_VERSION);
	rc = enc_item(&e, idx, 0);
	lua_settop(L, top);
	if (rc) {
		out->len = start;
		out->p[start] = '\0';
	}
	return rc;
}

int value_encode_stanza(const struct st_node *n, struct sbuf *out)
{
	struct enc e = { NULL, out, 1 };
	size_t start = out->len;
	int rc;

	sbuf_addc(out, VALUE_VERSION);
	sbuf_addc(out, TAG_STANZA);
	rc = enc_elem(&e, n, "", 0);
	if (rc) {
		out->len = start;
		out->p[start] = '\0';
	}
	return rc;
}

/* ---- decoding ---- */

struct dec {
	lua_State *L;
	const unsigned char *p, *end;
	struct sbuf scratch;		/* NUL-terminated names for the tree */
};

static size_t dec_left(const struct dec *d)
{
	return (size_t)(d->end - d->p);
}

static int get_varint(struct dec *d, uint64_t *v)
{
	uint64_t r = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		if (d->p >= d->end)
			return -EINVAL;
		unsigned char b = *d->p++;
		if (shift == 63 && b > 1)
			return -EINVAL;		/* more than 64 bits */
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -EINVAL;
}

static int get_count(struct dec *d, size_t min_each, size_t *n)
{
	uint64_t v;

	if (get_varint(d, &v) || v > dec_left(d) / min_each)
		return -EINVAL;
	*n = (size_t)v;
	return 0;
}

static int get_str(struct dec *d, const char **s, size_t *len)
{
	uint64_t v;

	if (get_varint(d, &v) || v > dec_left(d))
		return -EINVAL;
	*s = (const char *)d->p;
	*len = (size_t)v;
	d->p += v;
	return 0;
}

/* A string that goes into the tree as a C string: appended to scratch
 * with its NUL; *off is where it starts. */
static int get_cstr(struct dec *d, size_t *off)
{
	const char *s;
	size_t len;

	if (get_str(d, &s, &len) || memchr(s, '\0', len))
		return -EINVAL;
	*off = d->scratch.len;
	sbuf_add(&d->scratch, s, len);
	sbuf_addc(&d->scratch, '\0');
	return 0;
}

static int dec_elem(struct dec *d, struct st_doc *doc, struct st_node *parent,
		    int depth);

static int dec_attrs_children(struct dec *d, struct st_doc *doc,
			      struct st_node *el, int depth)
{
	struct st_attr **tail = &el->attrs;
	size_t n, name, val;
	const char *s;
	size_t len;

	while (*tail)
		tail = &(*tail)->next;
	if (get_count(d, 2, &n))
		return -EINVAL;
	if (n > VALUE_MAX_ATTRS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct st_attr *a;
		sbuf_reset(&d->scratch);
		if (get_cstr(d, &name) || get_cstr(d, &val))
			return -EINVAL;
		if (st_attr_get(el, d->scratch.p + name))
			return -EINVAL;		/* a duplicate */
		a = st_alloc(doc, sizeof(*a));
		a->next = NULL;
		a->name = st_strdup(doc, d->scratch.p + name, val - name - 1);
		a->value = st_strdup(doc, d->scratch.p + val,
				     d->scratch.len - val - 1);
		*tail = a;
		tail = &a->next;
	}
	if (get_count(d, 2, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (d->p >= d->end)
			return -EINVAL;
		switch (*d->p++) {
		case CHILD_ELEM:
			if (dec_elem(d, doc, el, depth + 1))
				return -EINVAL;
			break;
		case CHILD_TEXT:
			if (get_str(d, &s, &len))
				return -EINVAL;
			if (len)
				st_text_add(doc, el, s, len);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static int dec_elem(struct dec *d, struct st_doc *doc, struct st_node *parent,
		    int depth)
{
	size_t name, ns = 0;
	uint64_t nslen;
	struct st_node *el;

	if (depth > VALUE_MAX_XML_DEPTH)
		return -EINVAL;
	sbuf_reset(&d->scratch);
	if (get_cstr(d, &name) || d->scratch.p[name] == '\0')
		return -EINVAL;
	if (get_varint(d, &nslen) || nslen > dec_left(d) + 1)
		return -EINVAL;
	if (nslen) {
		const char *s = (const char *)d->p;
		if (memchr(s, '\0', nslen - 1))
			return -EINVAL;
		ns = d->scratch.len;
		sbuf_add(&d->scratch, s, nslen - 1);
		sbuf_addc(&d->scratch, '\0');
		d->p += nslen - 1;
	}
	el = st_elem_new(doc, parent, d->scratch.p + name,
			 nslen ? d->scratch.p + ns : NULL);
	return dec_attrs_children(d, doc, el, depth);
}

static int dec_stanza(struct dec *d)
{
	struct st_doc *doc = st_doc_new();
	int rc = dec_elem(d, doc, NULL, 0);

	if (rc == 0)
		lx_stanza_push(d->L, doc, doc->root);
	st_doc_unref(doc);
	return rc;
}

static int dec_item(struct dec *d, int depth);

static int dec_table(struct dec *d, int depth)
{
	lua_State *L = d->L;
	size_t n;

	if (depth >= VALUE_MAX_DEPTH || !lua_checkstack(L, 4))
		return -EINVAL;
	if (get_count(d, 2, &n))
		return -EINVAL;
	lua_createtable(L, 0, (int)MIN(n, (size_t)VALUE_PREALLOC));
	for (size_t i = 0; i < n; i++) {
		if (dec_item(d, depth + 1))
			goto fail;
		int t = lua_type(L, -1);
		if (t == LUA_TNIL || (t == LUA_TNUMBER && !lua_isinteger(L, -1) &&
				      isnan(lua_tonumber(L, -1)))) {
			lua_pop(L, 1);
			goto fail;
		}
		if (dec_item(d, depth + 1)) {
			lua_pop(L, 1);
			goto fail;
		}
		if (lua_isnil(L, -1)) {
			lua_pop(L, 2);
			goto fail;
		}
		lua_rawset(L, -3);
	}
	return 0;
fail:
	lua_pop(L, 1);
	return -EINVAL;
}

static int dec_item(struct dec *d, int depth)
{
	lua_State *L = d->L;
	const char *s;
	size_t len;
	uint64_t u;

	if (d->p >= d->end || !lua_checkstack(L, 2))
		return -EINVAL;
	switch (*d->p++) {
	case TAG_NIL:
		lua_pushnil(L);
		return 0;
	case TAG_FALSE:
	case TAG_TRUE:
		lua_pushboolean(L, d->p[-1] == TAG_TRUE);
		return 0;
	case TAG_INT:
		if (get_varint(d, &u))
			return -EINVAL;
		u = (u >> 1) ^ (0 - (u & 1));
		lua_pushinteger(L, (lua_Integer)u);
		return 0;
	case TAG_FLOAT: {
		double f;
		if (dec_left(d) < 8)
			return -EINVAL;
		u = 0;
		for (int i = 0; i < 8; i++)
			u = u << 8 | d->p[i];
		d->p += 8;
		memcpy(&f, &u, sizeof(f));
		lua_pushnumber(L, (lua_Number)f);
		return 0;
	}
	case TAG_STRING:
		if (get_str(d, &s, &len))
			return -EINVAL;
		lua_pushlstring(L, s, len);
		return 0;
	case TAG_TABLE:
		return dec_table(d, depth);
	case TAG_STANZA:
		return dec_stanza(d);
	default:
		return -EINVAL;
	}
}

int value_decode(lua_State *L, const void *data, size_t len)
{
	struct dec d = { L, data, (const unsigned char *)data + len, { 0 } };
	int rc;

	if (len < 2 || d.p[0] != VALUE_VERSION)
		return -EINVAL;
	d.p++;
	sbuf_init(&d.scratch);
	rc = dec_item(&d, 0);
	if (rc == 0 && d.p != d.end) {
		lua_pop(L, 1);
		rc = -EINVAL;
	}
	sbuf_free(&d.scratch);
	return rc;
}
