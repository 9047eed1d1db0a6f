/*
 * bridge.h - the Lua bridge as the rest of the server sees it: starting
 * and stopping the one Lua state, and the bridge's pieces that C code is
 * handed (the admin socket's commands). No Lua types here: lx.h is the
 * bridge's own header, for files in core/lua/ and tools/ only.
 *
 * The config, which the bridge also keeps, has its own C header
 * (config.h).
 */
#ifndef STARLING_BRIDGE_H
#define STARLING_BRIDGE_H

#include <stdbool.h>

/* Creates the state, opens the libraries, sets package.path to the
 * server's lua/ directory. 0 or -1. */
int lx_init(const char *lua_dir);
void lx_close(void);
/* Where the shipped Lua libraries and modules are (core.lua_dir,
 * core.modules_dir); set before the first require of starling.core. */
void lx_core_set_dirs(const char *lua_dir, const char *modules_dir);
/* Makes "starling.server" (lx_server.h: sessions, hosts and reload for
 * the admin code) requirable; the server does, starlingctl does not. */
void lx_server_register(void);
/* Makes "starling.http" (lx_http.c: routes, the WebSocket endpoint, the
 * HTTP ports) requirable; the server does, starlingctl does not. */
void lx_http_register(void);

/* Calls starling.modulemanager's fn ("load_all", "unload_all"): 0, or
 * -1 when it failed (logged). */
int lx_modules(const char *fn);
/* The config again, as starlingctl reload does (admin.lua's reload, which
 * logs how it went). */
void lx_reload(void);
/* Lua's collector: incremental, or generational (the garbage of each
 * stanza dies young and is collected without walking the whole heap). */
void lx_gc_mode(bool incremental);
/* Keeps the young generation near a fixed size as the heap grows (lx.c);
 * called now and then from the loop. */
void lx_gc_tune(void);
/* Gives the small blocks the Lua allocator keeps for reuse back to malloc
 * (lx_alloc.c); run before malloc_trim. */
void lx_alloc_trim(void);

/* The admin socket's commands (admin.h): lua/starling/admin.lua carries
 * them out, with a shell state per connection (lx_admin_cmd.c). */
struct admin_commands;
extern const struct admin_commands lx_admin_commands;

#endif
