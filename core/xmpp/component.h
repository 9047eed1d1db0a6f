/*
 * component.h - the external component role of a stream (XEP-0114): a
 * program (a gateway such as biboumi, a bot, a bridge) connects to
 * component_ports, names a Component host of the config in its stream
 * header, and proves component_secret with the handshake; from then on
 * it serves that domain. The stream itself is session.c's.
 *
 * external host: a Component section without a module (route.h's
 *            host->external). A Component with a Lua module is served by
 *            the module and refuses external connections.
 * link:      what this file keeps per external domain: its connected
 *            streams (one, or up to component_max_connections, stanzas
 *            spread among them by sender), and stanzas queued while none
 *            is connected (component_queue).
 *
 * Stanzas to the domain and to any JID at it go to a connected stream;
 * stanzas from it must be from the domain or a subdomain of it
 * (invalid-from otherwise), and fire "route/component" on the domain's
 * host before routing: a blocking handler vetoes one (where a later step
 * checks what a privileged component, XEP-0356, may send).
 */
#ifndef STARLING_COMPONENT_H
#define STARLING_COMPONENT_H

#include "session.h"

#define NS_COMPONENT "jabber:component:accept"

extern const struct session_role component_role;

struct host;

/* One external domain's options, as the config says now (asked at each
 * handshake and each stanza queued, so a reload applies at once). */
struct component_options {
	const char *secret;		/* component_secret; NULL: none set */
	unsigned max_connections;	/* component_max_connections, >= 1 */
	unsigned queue;			/* component_queue: stanzas held */
	double queue_timeout;		/* component_queue_timeout, s */
};

/* The server layer's reader of those options (core/server.c): false when
 * domain has no section. */
extern bool (*component_options_hook)(const char *domain,
				      struct component_options *out);
/* A stanza to h (external) that no handler took: to the component, or
 * queued, or bounced (service-unavailable) while none is connected. node
 * is borrowed. */
void component_deliver(struct host *h, struct st_node *node);

/* One connected component, for administration. */
struct component_info {
	const char *domain;
	const char *ip;
	int port;
	double since;		/* wall clock, s */
	unsigned long in, out;	/* stanzas from and to it */
};
/* Calls fn for each authenticated component stream until it returns
 * nonzero; returns that, or 0. */
int component_each(int (*fn)(void *ctx, const struct component_info *ci),
		   void *ctx);
/* Frees what the links hold (queued stanzas) at shutdown. */
void component_free_all(void);

#endif
