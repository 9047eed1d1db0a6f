/*
 * lx_stanza_query.c - the read-only queries of the stanza userdata:
 * get_child, get_child_text, get_text, child_with_name/ns, childtags,
 * children, find, get_error. The userdata itself, the builder and the
 * properties are in lx_stanza.c.
 */
#include "lx_stanza_view.h"

static int m_get_child(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = luaL_optstring(L, 2, NULL);
	const char *ns = luaL_optstring(L, 3, NULL);
	struct st_node *c = st_child(s->node, name, ns);

	if (!c)
		return 0;
	lx_stanza_push(L, s->doc, c);
	return 1;
}

static int m_get_child_text(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = luaL_optstring(L, 2, NULL);
	const char *ns = luaL_optstring(L, 3, NULL);
	const char *t = st_child_text(s->doc, s->node, name, ns);

	if (!t)
		return 0;
	lua_pushstring(L, t);
	return 1;
}

static int m_get_child_attr(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = luaL_optstring(L, 2, NULL);
	const char *ns = luaL_optstring(L, 3, NULL);
	const char *attr = luaL_checkstring(L, 4);
	struct st_node *c = st_child(s->node, name, ns);
	const char *v = c ? st_attr_get(c, attr) : NULL;

	if (!v)
		return 0;
	lua_pushstring(L, v);
	return 1;
}

static int m_get_text(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	lua_pushstring(L, st_text(s->doc, s->node));
	return 1;
}

static int m_child_with_name(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *name = luaL_checkstring(L, 2);
	struct st_node *c;

	for (c = s->node->first; c; c = c->next) {
		if (c->name && strcmp(c->name, name) == 0) {
			lx_stanza_push(L, s->doc, c);
			return 1;
		}
	}
	return 0;
}

static int m_child_with_ns(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	const char *ns = luaL_checkstring(L, 2);
	struct st_node *c;

	for (c = s->node->first; c; c = c->next) {
		if (c->name && lx_ns_equal(c->ns, ns)) {
			lx_stanza_push(L, s->doc, c);
			return 1;
		}
	}
	return 0;
}

/* Iterators: upvalue 1 the view (keeps the doc alive), 2 name, 3 xmlns,
 * 4 the next node to look at (light userdata). The next node is taken
 * before the loop body runs, so removing the current child is safe. */
static int childtags_iter(lua_State *L)
{
	struct lx_stanza *s = lua_touserdata(L, lua_upvalueindex(1));
	const char *name = lua_tostring(L, lua_upvalueindex(2));
	const char *ns = lua_tostring(L, lua_upvalueindex(3));
	struct st_node *c = lua_touserdata(L, lua_upvalueindex(4));

	if (!ns)
		ns = s->node->ns;
	for (; c && c->parent == s->node; c = c->next) {
		if (!c->name || (name && strcmp(c->name, name) != 0) ||
		    !lx_ns_equal(c->ns, ns))
			continue;
		lua_pushlightuserdata(L, c->next);
		lua_replace(L, lua_upvalueindex(4));
		lx_stanza_push(L, s->doc, c);
		return 1;
	}
	lua_pushlightuserdata(L, NULL);
	lua_replace(L, lua_upvalueindex(4));
	return 0;
}

static int m_childtags(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	luaL_optstring(L, 2, NULL);
	luaL_optstring(L, 3, NULL);
	lua_settop(L, 3);
	lua_pushlightuserdata(L, s->node->first);
	lua_pushcclosure(L, childtags_iter, 4);
	return 1;
}

static int children_iter(lua_State *L)
{
	struct lx_stanza *s = lua_touserdata(L, lua_upvalueindex(1));
	struct st_node *c = lua_touserdata(L, lua_upvalueindex(2));

	if (!c || c->parent != s->node)
		return 0;
	lua_pushlightuserdata(L, c->next);
	lua_replace(L, lua_upvalueindex(2));
	lx_stanza_push_child(L, s, c);
	return 1;
}

static int m_children(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);

	lua_settop(L, 1);
	lua_pushlightuserdata(L, s->node->first);
	lua_pushcclosure(L, children_iter, 2);
	return 1;
}

/* :find(path), Prosody's syntax: steps "name", "{ns}name", separated by
 * "/"; a final "@attr" gives an attribute, a final "#" the text. */
static int m_find(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	size_t len;
	const char *path = luaL_checklstring(L, 2, &len);
	const char *p = path, *end = path + len, *close;
	struct st_node *n = s->node;
	int base = lua_gettop(L);

	if (strlen(path) != len)
		return luaL_error(L, "invalid path: contains a NUL byte");
	while (n) {
		const char *ns = NULL, *name = NULL;
		size_t nl;
		char sep;

		lua_settop(L, base);
		if (*p == '@') {
			const char *v = st_attr_get(n, p + 1);

			if (strcmp(p + 1, "xmlns") == 0)
				v = n->ns;
			if (!v)
				return 0;
			lua_pushstring(L, v);
			return 1;
		}
		if (*p == '{') {
			close = memchr(p + 1, '}', (size_t)(end - p - 1));
			if (!close || close == p + 1)
				return luaL_error(L, "invalid path: %s", path);
			ns = lua_pushlstring(L, p + 1, (size_t)(close - p - 1));
			p = close + 1;
		}
		nl = strcspn(p, "@/#");
		if (nl)
			name = lua_pushlstring(L, p, nl);
		p += nl;
		sep = (*p == '/' || *p == '#') ? *p++ : '\0';
		if (p >= end) {
			if (sep == '#') {
				const char *t = st_child_text(s->doc, n, name, ns);

				if (!t)
					return 0;
				lua_pushstring(L, t);
				return 1;
			}
			n = st_child(n, name, ns);
			break;
		}
		n = st_child(n, name, ns);
	}
	if (!n)
		return 0;
	lx_stanza_push(L, s->doc, n);
	return 1;
}

/* :get_error() -> type, condition, text, extra (an application-specific
 * condition element); nothing when there is no <error/>. */
static int m_get_error(lua_State *L)
{
	struct lx_stanza *s = lx_stanza_view(L, 1);
	struct st_node *err = st_child(s->node, "error", NULL), *c, *extra = NULL;
	const char *cond = NULL, *text = NULL;

	if (!err)
		return 0;
	for (c = err->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (strcmp(c->ns, NS_STANZAS) != 0) {
			if (!extra)
				extra = c;
		} else if (!text && strcmp(c->name, "text") == 0) {
			text = st_text(s->doc, c);
		} else if (!cond) {
			cond = c->name;
		}
	}
	lua_pushstring(L, st_attr_get(err, "type"));
	lua_pushstring(L, cond ? cond : "undefined-condition");
	lua_pushstring(L, text);
	if (extra)
		lx_stanza_push(L, s->doc, extra);
	else
		lua_pushnil(L);
	return 4;
}

const luaL_Reg lx_stanza_queries[] = {
	{ "get_child", m_get_child },
	{ "get_child_text", m_get_child_text },
	{ "get_child_attr", m_get_child_attr },
	{ "get_text", m_get_text },
	{ "child_with_name", m_child_with_name },
	{ "child_with_ns", m_child_with_ns },
	{ "childtags", m_childtags },
	{ "children", m_children },
	{ "find", m_find },
	{ "get_error", m_get_error },
	{ NULL, NULL },
};
