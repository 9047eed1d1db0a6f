/*
 * lx_server.h - "starling.server": what the administration code in Lua
 * (lua/starling/admin.lua) needs from the core and starling.core does not
 * give modules: every session with its connection details, kicking,
 * adding and removing hosts, swapping the config, the TLS contexts and
 * the log settings of a reload.
 *
 * Not for modules: a module that closes other accounts' sessions or
 * removes hosts belongs in the admin code, not in a plugin.
 */
#ifndef STARLING_LX_SERVER_H
#define STARLING_LX_SERVER_H

#include "lx.h"

/* lx_server_register() (bridge.h) adds it to package.preload. */
int luaopen_starling_server(lua_State *L);

#endif
