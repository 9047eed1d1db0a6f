/*
 * hooks.h - event hook chains, kept in C, one set per host.
 *
 * chain:    the handlers of one event name on one host, highest priority
 *           first, equal priorities in registration order.
 * handler:  a Lua function (a registry reference owned by the chain) and
 *           its owner's name ("localhost:roster") for logs.
 * firing:   each handler runs protected; an error is logged with the
 *           owner and counted, and the chain goes on. The first handler
 *           returning a non-nil value stops the chain. Handlers added or
 *           removed while a chain fires take effect for the next firing.
 */
#ifndef STARLING_HOOKS_H
#define STARLING_HOOKS_H

#include "lx.h"
#include "hmap.h"

struct hook_handler;

struct hook_chain {
	struct hook_handler **h;	/* sorted, owned */
	size_t n, cap;
	int firing;			/* nesting depth of hook_fire */
	struct hook_handler *garbage;	/* removed while firing */
};

struct hook_set {
	struct hmap chains;		/* event name -> struct hook_chain */
};

void hook_set_init(struct hook_set *hs);
void hook_set_free(struct hook_set *hs, lua_State *L);

/* Adds the function at fn_idx. -EEXIST when it is already there. */
int hook_add(struct hook_set *hs, lua_State *L, const char *event, int fn_idx,
	     int priority, const char *owner);
/* Removes the function at fn_idx: 0 or -ENOENT. */
int hook_remove(struct hook_set *hs, lua_State *L, const char *event,
		int fn_idx);

/* The chain of event, or NULL when it has no handlers (one lookup). */
struct hook_chain *hook_find(struct hook_set *hs, const char *event);
static inline struct hook_chain *hook_findn(struct hook_set *hs,
					    const char *event, size_t len)
{
	struct hook_chain *c = hmap_getn(&hs->chains, event, len);
	return c && c->n ? c : NULL;
}

/* Calls the handlers with the value at data_idx as their argument.
 * Returns 1 and leaves the stopping value on the stack when a handler
 * returned non-nil; 0 (nothing pushed) otherwise. */
int hook_fire(lua_State *L, struct hook_chain *ch, int data_idx);

/* Handler errors since start (for tests and status). */
unsigned long hook_error_count(void);

#endif
