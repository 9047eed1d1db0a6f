/*
 * lx_value.c - stored values: Lua values in the byte format of value.h
 * (declared in lx.h), for the stores' Lua bindings.
 *
 * Tables are encoded raw (metatables are not stored) and at most
 * VALUE_MAX_DEPTH deep, which is also what stops a cycle; a table reached
 * twice through different paths is encoded twice, within the writer's
 * budget of items and bytes. Stanzas are the userdata of lx_stanza.c,
 * encoded and decoded as trees by value.c.
 */
#include "lx.h"
#include "value.h"

#include <errno.h>
#include <math.h>

#define VALUE_PREALLOC 1024		/* table slots made before decoding */

/* ---- encoding ---- */

struct enc {
	lua_State *L;
	struct value_writer w;
};

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
	sbuf_addc(e->w.out, VALUE_TABLE);
	value_put_varint(e->w.out, count);
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
	struct sbuf *out = e->w.out;
	struct st_node *node;
	const char *s;
	size_t len;

	if (value_put_item(&e->w))
		return -EINVAL;
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		sbuf_addc(out, VALUE_NIL);
		return 0;
	case LUA_TBOOLEAN:
		sbuf_addc(out, lua_toboolean(L, idx) ? VALUE_TRUE : VALUE_FALSE);
		return 0;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx))
			value_put_int(out, (int64_t)lua_tointeger(L, idx));
		else
			value_put_float(out, (double)lua_tonumber(L, idx));
		return 0;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		sbuf_addc(out, VALUE_STRING);
		value_put_str(out, s, len);
		return 0;
	case LUA_TTABLE:
		return enc_table(e, idx, depth);
	case LUA_TUSERDATA:
		node = lx_stanza_test(L, idx, NULL);
		if (!node)
			return -EINVAL;
		sbuf_addc(out, VALUE_STANZA);
		return value_put_element(&e->w, node);
	default:
		return -EINVAL;
	}
}

int value_encode(lua_State *L, int idx, struct sbuf *out)
{
	struct enc e = { L, { out, 0 } };
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

/* ---- decoding ---- */

struct dec {
	lua_State *L;
	struct value_reader r;
};

static int dec_stanza(struct dec *d)
{
	struct st_doc *doc;
	int rc = value_get_element(&d->r, &doc);

	if (rc)
		return rc;
	lx_stanza_push(d->L, doc, doc->root);
	st_doc_unref(doc);
	return 0;
}

static int dec_item(struct dec *d, int depth);

static int dec_table(struct dec *d, int depth)
{
	lua_State *L = d->L;
	size_t n;

	if (depth >= VALUE_MAX_DEPTH || !lua_checkstack(L, 4))
		return -EINVAL;
	if (value_get_count(&d->r, 2, &n))
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
	int64_t i;
	double f;

	if (d->r.p >= d->r.end || !lua_checkstack(L, 2))
		return -EINVAL;
	switch (*d->r.p++) {
	case VALUE_NIL:
		lua_pushnil(L);
		return 0;
	case VALUE_FALSE:
	case VALUE_TRUE:
		lua_pushboolean(L, d->r.p[-1] == VALUE_TRUE);
		return 0;
	case VALUE_INT:
		if (value_get_int(&d->r, &i))
			return -EINVAL;
		lua_pushinteger(L, (lua_Integer)i);
		return 0;
	case VALUE_FLOAT:
		if (value_get_float(&d->r, &f))
			return -EINVAL;
		lua_pushnumber(L, (lua_Number)f);
		return 0;
	case VALUE_STRING:
		if (value_get_str(&d->r, &s, &len))
			return -EINVAL;
		lua_pushlstring(L, s, len);
		return 0;
	case VALUE_TABLE:
		return dec_table(d, depth);
	case VALUE_STANZA:
		return dec_stanza(d);
	default:
		return -EINVAL;
	}
}

int value_decode(lua_State *L, const void *data, size_t len)
{
	const unsigned char *b = data;
	struct dec d = { .L = L };
	int rc;

	if (len < 2 || b[0] != VALUE_VERSION)
		return -EINVAL;
	value_reader_init(&d.r, b + 1, len - 1);
	rc = dec_item(&d, 0);
	if (rc == 0 && d.r.p != d.r.end) {
		lua_pop(L, 1);
		rc = -EINVAL;
	}
	value_reader_free(&d.r);
	return rc;
}
