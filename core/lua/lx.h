/*
 * lx.h - the Lua bridge: one Lua 5.4 state for the whole server. This is
 * the bridge's own header, with Lua's: only files in core/lua/ and tools/
 * include it. The rest of the server uses bridge.h and config.h.
 *
 * Every entry into Lua goes through lx_pcall(), which adds a traceback
 * and logs the error with the source it is given. Types exposed to Lua
 * have one binding file each (lx_stanza.c, lx_session.c, lx_store.c,
 * lx_jid.c) with one metatable each.
 *
 * Lua modules (require names):
 *   starling.core    the server: hooks, routing, sessions, timers, log
 *   starling.stanza  stanza userdata constructors (util.stanza wraps it)
 *   starling.jid     JID split/prep (util.jid wraps it)
 *   starling.store   open_store for modules (keyval, map)
 */
#ifndef STARLING_LX_H
#define STARLING_LX_H

#include <lua.h>
#include <lauxlib.h>
#include <lualib.h>

#include "bridge.h"
#include "stanza.h"

lua_State *lx_state(void);
/* The state's lua_Alloc (lx_alloc.c): small blocks kept for reuse. */
void *lx_alloc(void *ud, void *ptr, size_t osize, size_t nsize);

/* Userdata types named by a static char array: the metatable is kept in
 * the registry under the array's address as well as under the name, so
 * the checks on the hot path hash a pointer (luaL_checkudata looks the
 * name up, comparing it as a string, on every call). */
int lx_newmetatable(lua_State *L, const char *tname);	/* as luaL_'s */
void lx_setmetatable(lua_State *L, const char *tname);
void *lx_testudata(lua_State *L, int idx, const char *tname);
void *lx_checkudata(lua_State *L, int idx, const char *tname);
/* A userdata type with only a finalizer (handles on C objects): its
 * metatable has __gc and a __metatable that hides it; made once. */
void lx_gc_type(lua_State *L, const char *tname, lua_CFunction gc);

/* lua_pcall with a traceback message handler. On error logs
 * "<source>: <message + traceback>", pops it and returns nonzero. */
int lx_pcall(lua_State *L, int nargs, int nresults, const char *source);

/* Stanza userdata ("starling.stanza"): a view of node in doc; takes a
 * new reference on doc. */
void lx_stanza_push(lua_State *L, struct st_doc *doc, struct st_node *node);
/* The node of the stanza at idx (raises a Lua error when it is not one);
 * *doc (if not NULL) gets its doc, borrowed. */
struct st_node *lx_stanza_check(lua_State *L, int idx, struct st_doc **doc);
/* Like check, but NULL instead of an error. */
struct st_node *lx_stanza_test(lua_State *L, int idx, struct st_doc **doc);

int luaopen_starling_stanza(lua_State *L);
int luaopen_starling_jid(lua_State *L);
int luaopen_starling_store(lua_State *L);
int luaopen_starling_core(lua_State *L);
int luaopen_starling_hashes(lua_State *L);

/* Stored Lua values (lx_value.c) in the byte format of value.h: nil,
 * booleans, numbers, strings, tables (no cycles, depth <= 64) and
 * stanzas. encode: 0, or -EINVAL (a function, userdata, cycle or too
 * deep) leaving the stack as it was. decode: pushes one value and
 * returns 0, or returns -EINVAL (corrupt bytes) pushing nothing. */
int value_encode(lua_State *L, int idx, struct sbuf *out);
int value_decode(lua_State *L, const void *data, size_t len);

#endif
