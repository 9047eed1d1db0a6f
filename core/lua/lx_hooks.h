/*
 * lx_hooks.h - the one place Lua meets the hook chains (core/events/):
 * a Lua function becomes a handler, and an event's C fields become the
 * table Lua handlers get.
 *
 * event table: { origin =, session =, stanza =, features =, error =,
 *              stanzas = { ... } } with the fields the event has; made
 *              once per firing, the first time a Lua handler runs, and
 *              kept on the Lua stack until event_release().
 * native:      a C handler a feature offers to Lua ("starling.handler"
 *              userdata: function, data and the data's reference count),
 *              so a module hooks it like a function and unloading
 *              removes it; it runs without entering Lua.
 */
#ifndef STARLING_LX_HOOKS_H
#define STARLING_LX_HOOKS_H

#include "lx.h"
#include "hooks.h"

/* Pushes a native handler: fn with data. ref and unref count the data's
 * holders (the userdata is one, each chain entry another). */
void lx_native_push(lua_State *L,
		    int (*fn)(struct event *ev, const struct hook_handler *h),
		    void *data, void (*ref)(void *data),
		    void (*unref)(void *data));

/* Calls the Lua function with registry reference ref as a handler of
 * ev (owner names it in logs): HOOK_STOP when it returned a value. */
int lx_hooks_call(struct event *ev, int ref, const char *owner);

/* core.hook_add(host, event, fn_or_native, priority, owner),
 * core.hook_remove(host, event, fn_or_native), core.hook_count(host,
 * event), core.fire(host, event, data), core.hook_errors(). */
void lx_hooks_register(lua_State *L);	/* into the table at -1 */

/* core.gate(fn, kind, sides, ...): a Lua function behind a C gate
 * (core/lua/lx_gate.c, core/features/gate.h). */
void lx_gate_register(lua_State *L);	/* into the table at -1 */

#endif
