/*
 * fanout.h - one stanza to many addressees (a room's message to its
 * occupants), each copy routed as any stanza is, and the default delivery
 * of a message to a bound full JID as a C handler, so that such a
 * routing enters no Lua when no Lua handler waits on the chain.
 *
 * fan-out:    the stanza is copied once; the copy gets each addressee's
 *             'to' in turn and is routed (route_stanza: the addressee
 *             host's message/full chain, or the way to a remote server),
 *             so every policy of the recipient's side applies (blocking,
 *             CSI, XEP-0198's queue, the session's filters and write).
 * kept:       a handler that took a reference to the copy (a Lua handler
 *             that saw it, a queue) or changed its top level (added or
 *             removed a child, an attribute) keeps that copy: the next
 *             addressee gets a fresh one. A C handler that changes the
 *             stanza deeper must take a reference.
 * deliver_full: RFC 6121 8.5.3.1: a message to a full JID whose session
 *             is bound goes to that session; anything else passes on
 *             down the chain (mod_message holds the other rules).
 */
#ifndef STARLING_FANOUT_H
#define STARLING_FANOUT_H

#include "hooks.h"

struct st_node;

/* Routes a copy of msg to each of the n addressees in to[] (JIDs; the
 * strings are borrowed for the call), with no origin, in order. msg is
 * not changed. Returns how many fresh copies were made (at least 1 when
 * n > 0): 1 when every delivery could share the first. */
size_t fanout_route(const struct st_node *msg, const char *const *to, size_t n);

/* The hook handler for "message/full" (no data). */
int fanout_deliver_full(struct event *ev, const struct hook_handler *h);

#endif
