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

#endif
