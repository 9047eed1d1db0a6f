/*
 * lx_session.h - sessions as Lua sees them: userdata "starling.session".
 *
 * One userdata per session for its whole life (kept in the registry while
 * the session lives), with a table of module-set fields as its user value
 * (s.presence, s.priority, ...). When the session ends the userdata stays
 * valid for Lua but reports s.closed = true and sends nothing.
 */
#ifndef STARLING_LX_SESSION_H
#define STARLING_LX_SESSION_H

#include "lx.h"

struct session;

void lx_session_push(lua_State *L, struct session *s);
/* The session of the userdata at idx, or NULL when closed; raises when
 * idx is not a session. */
struct session *lx_session_check(lua_State *L, int idx);
/* The session of the userdata at idx, or NULL when it is none or closed. */
struct session *lx_session_test(lua_State *L, int idx);
void lx_session_register(lua_State *L);

/* lx_session_out.c: session.send as Prosody modules use it. Pushes
 * session.send of the session userdata at idx. */
void lx_session_push_send(lua_State *L, int idx);
/* session.send = the value at value_idx (s: NULL once closed). */
int lx_session_set_send(lua_State *L, int idx, struct session *s, int value_idx);
/* session.log(level, fmt, ...), a function of its own as in Prosody. */
void lx_session_push_log(lua_State *L, int idx);
/* Adds s:set_outgoing(fn) to the methods table at methods_idx. */
void lx_session_out_register(lua_State *L, int methods_idx);

#endif
