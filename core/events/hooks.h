/*
 * hooks.h - events and their hook chains, kept in C, one set per host.
 *
 * event:    what one firing carries, as C values (struct event): the
 *           host, the session a stanza came from or the event is about,
 *           the stanza, and a few named extras. Lua handlers see these as
 *           the fields of one table that the Lua bridge builds from the
 *           struct the first time a Lua handler needs it (core/lua/
 *           lx_hooks.c); a firing with only C handlers builds nothing.
 * handler:  a function pointer with its data, a priority and its owner's
 *           name ("localhost:roster") for logs. C handlers and Lua
 *           handlers (the bridge's function with a Lua function as data)
 *           sit on the same chains.
 * chain:    the handlers of one event name on one host, highest priority
 *           first, equal priorities in registration order.
 * firing:   handlers run in order; the first returning HOOK_STOP stops
 *           the chain. A handler that fails (a Lua error) is logged and
 *           counted by its wrapper (hook_error()) and the chain goes on.
 *           Handlers added or removed while a chain fires take effect
 *           for the next firing.
 */
#ifndef STARLING_HOOKS_H
#define STARLING_HOOKS_H

#include "hmap.h"

struct host;
struct session;
struct st_doc;
struct st_node;
struct hook_handler;

struct event {
	struct host *host;		/* where it fires (may be NULL) */
	struct session *origin;		/* "origin": the stanza's sender */
	struct session *session;	/* "session": whom the event is about */
	struct st_doc *doc;		/* holds stanza and features */
	struct st_node *stanza;		/* "stanza" */
	struct st_node *features;	/* "features" (stream-features) */
	const char *error;		/* "error" (resource-unbind) */
	const char *account;		/* "account": the local account (bare JID) a
					 * module sends for when origin is none
					 * (XEP-0356); borrowed for the fire */
	struct st_doc **stanzas;	/* "stanzas" (smacks-unacked) */
	size_t n_stanzas;
	/* The Lua bridge's: where the handlers' table is (0 until made),
	 * where a stopping handler's value is kept (when keep_result), and
	 * what undoes both (event_release). */
	int lua_table;
	int lua_result;
	bool keep_result;
	void (*release)(struct event *ev);
};

#define HOOK_PASS 0
#define HOOK_STOP 1

struct hook_handler {
	/* HOOK_PASS to let the chain go on, HOOK_STOP to end it; h gives
	 * the handler's data and owner. */
	int (*fn)(struct event *ev, const struct hook_handler *h);
	void *data;
	void (*free_data)(void *data);	/* when the handler goes; may be NULL */
	int priority;
	char *owner;
	struct hook_handler *next_garbage;
};

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
/* Frees every chain and handler (free_data is called for each). */
void hook_set_free(struct hook_set *hs);
/* Whether one of the set's chains is firing now. */
bool hook_set_firing(struct hook_set *hs);

/* Adds a handler; the chain takes ownership of data (free_data). */
struct hook_handler *hook_add(struct hook_set *hs, const char *event,
			      int (*fn)(struct event *ev,
					const struct hook_handler *h),
			      void *data,
			      void (*free_data)(void *data), int priority,
			      const char *owner);
/* The first handler of event for which match(h, ctx) holds, or NULL. */
struct hook_handler *hook_find_handler(struct hook_set *hs, const char *event,
				       bool (*match)(const struct hook_handler *h,
						     void *ctx), void *ctx);
/* Removes handler h of event: 0 or -ENOENT. */
int hook_remove(struct hook_set *hs, const char *event, struct hook_handler *h);

/* The chain of event, or NULL when it has no handlers (one lookup). */
struct hook_chain *hook_find(struct hook_set *hs, const char *event);
static inline struct hook_chain *hook_findn(struct hook_set *hs,
					    const char *event, size_t len)
{
	struct hook_chain *c = hmap_getn(&hs->chains, event, len);
	return c && c->n ? c : NULL;
}

/* Calls the chain's handlers with ev: 1 when one stopped it, else 0. */
int hook_fire(struct hook_chain *ch, struct event *ev);

/* Frees what the Lua bridge made for ev's handlers; call once after the
 * last firing of ev (a firing may serve several chains). */
static inline void event_release(struct event *ev)
{
	if (ev->release)
		ev->release(ev);
}

/* A handler failed (its wrapper logged it). */
void hook_error(void);
/* Handler errors since start (for tests and status). */
unsigned long hook_error_count(void);

#endif
