/*
 * node_link.h - the links between the nodes of one machine (the workers
 * of one server): one XML stream per pair of nodes over a Unix socket,
 * on the shared stream layer (role "node"), carrying the directory's
 * changes and forwarded stanzas (node.h is what they serve).
 *
 * Node i listens on DIR/node-i.sock and connects to every node above it;
 * a link that goes is tried again every half second. The socket's
 * directory is the server's own (mode 0700) and each accepted peer must
 * run as our user (SO_PEERCRED): a link is authenticated by construction.
 *
 * What travels, after each side's stream header (from='node-i'), in the
 * namespace urn:xmpp:starling:node:0:
 *   <hello pid='P'/>                        first, once
 *   <bind id='ID' jid='FULL'/>              a session bound here
 *   <unbind jid='FULL'/>
 *   <field jid='FULL' name='N' type='T'>V</field>   boolean, number,
 *                                           string, stanza (a child) or nil
 *   <route to='FULL'>stanza</route>         for that session, as it is
 *   <close jid='FULL' condition='C'/>       close that session of yours
 * A new link first carries the binds and fields of every session of the
 * side that sends them (the dump), so a restarted node learns them all.
 */
#ifndef STARLING_NODE_LINK_H
#define STARLING_NODE_LINK_H

#include <stdbool.h>

#define NS_NODE "urn:xmpp:starling:node:0"
#define NODE_MAX 64

/* Node self of count, its links' sockets in dir (which exists). Starts
 * listening and connecting: 0 or -errno. */
int node_link_start(unsigned self, unsigned count, const char *dir);
void node_link_stop(void);
/* The iteration's storage batch is committed (core/pipeline.c): what
 * the links carry so far goes out now, or, when archive appends were
 * handed to the writer thread (handed), once node_link_landed() says
 * that hand-over is committed. A stanza never reaches another node
 * before what it caused is readable there. */
void node_link_committed(bool handed);
void node_link_landed(void);
/* How many of the other nodes have a link up now. */
unsigned node_link_up_count(void);

#endif
