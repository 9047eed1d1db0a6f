/*
 * lx_stanza_view.h - what the two files of the stanza binding share:
 * lx_stanza.c (the userdata, its metatables, the builder, properties and
 * the attr proxy) and lx_stanza_query.c (the read-only queries). Other
 * subsystems use lx.h.
 *
 * view: { doc, node }, a counted reference on doc and one of its nodes.
 */
#ifndef STARLING_LX_STANZA_VIEW_H
#define STARLING_LX_STANZA_VIEW_H

#include "lx.h"

struct lx_stanza {
	struct st_doc *doc;		/* a reference; NULL once collected */
	struct st_node *node;
};

/* The view at idx (luaL_checkudata; a Lua error when it is not one). */
struct lx_stanza *lx_stanza_view(lua_State *L, int idx);
/* Pushes child c of s: a new view, or the string of a text node. */
void lx_stanza_push_child(lua_State *L, const struct lx_stanza *s,
			  struct st_node *c);

static inline bool lx_ns_equal(const char *a, const char *b)
{
	return a == b || strcmp(a, b) == 0;
}

/* The query methods, added to the methods table by lx_stanza.c. */
extern const luaL_Reg lx_stanza_queries[];

#endif
