/*
 * node_link.h - the links between nodes: one connection per pair of nodes
 * over a Unix socket (the workers of one server) or over TCP with TLS (the
 * nodes of a cluster, node_tcp.h), carrying the directory's changes and
 * forwarded stanzas in binary frames (node.h is what they serve).
 *
 * Node i listens on DIR/node-i.sock and connects to every node above it;
 * a link that goes is tried again every half second. The socket's
 * directory is the server's own (mode 0700) and each accepted peer must
 * run as our user (SO_PEERCRED): a link is authenticated by construction.
 *
 * frame:     u32 size (big-endian: the bytes after it), u8 type, body.
 *            Integers are big-endian; a string (str) is a u16 length and
 *            its bytes, without a NUL. A frame of an unknown type is
 *            skipped; one over NODE_FRAME_MAX closes the link.
 * types:
 *   HELLO  1  u16 version (1), u16 from node, u16 to node, u32 pid.
 *             The connecting side's first frame; the accepting side
 *             answers with its own. Nothing else before it.
 *   BIND   2  str session id, str full JID: a session bound there
 *   UNBIND 3  str full JID
 *   FIELD  4  str full JID, str name, u8 type, value: nil (nothing),
 *             boolean (u8), number (8 bytes, IEEE 754 binary64), string
 *             (the rest), stanza (the rest: serialized for jabber:client)
 *   ROUTE  5  u8 flags (NODE_ROUTE_F_*), str full JID, the rest: the
 *             stanza serialized for jabber:client, as session_send
 *             writes it on a plain stream (no xmlns of its own): the
 *             receiving node hands these bytes to the client as they are
 *   CLOSE  6  str full JID, str stream error condition: close that
 *             session of yours
 *   TELL   7  str host, str event, str username: fire event on that
 *             host with { username, host, node } (node_tell)
 *   ADMIN  8  str command: an operator's module command, done here
 *             already, to do there too (node_admin_others)
 * A new link first carries the binds and fields of every session of the
 * side that sends them (the dump), so a restarted node learns them all.
 * Across machines (a cluster, node_cluster.h) the same frames travel
 * on TCP once TLS is up (authenticated by the cluster's secret); the
 * node numbers are the cluster's (NODE_MAX at most), the HELLO's pid is
 * the peer's on its machine, and a node's death is its directory's word
 * (node_link_died), not its socket's.
 */
#ifndef STARLING_NODE_LINK_H
#define STARLING_NODE_LINK_H

#include <stdbool.h>
#include <stdint.h>

struct session;

#define NODE_MAX 64
#define NODE_LINK_VERSION 1
#define NODE_FRAME_MAX ((size_t)64 << 20)

enum node_frame {
	NODE_FRAME_HELLO = 1,
	NODE_FRAME_BIND,
	NODE_FRAME_UNBIND,
	NODE_FRAME_FIELD,
	NODE_FRAME_ROUTE,
	NODE_FRAME_CLOSE,
	NODE_FRAME_TELL,
	NODE_FRAME_ADMIN,
};

/* Node self of count, its links' sockets in dir (which exists). Starts
 * listening and connecting: 0 or -errno. */
int node_link_start(unsigned self, unsigned count, const char *dir);
/* Node self of a cluster, listening on address ("ip:port") for links
 * authenticated by secret: 0 or -errno. The other nodes come from
 * node_link_peer. */
int node_link_start_tcp(unsigned self, const char *address, const char *secret);
void node_link_stop(void);
/* A cluster's node is at address (the lower number of two connects), or
 * no longer listed (NULL). */
void node_link_peer(unsigned node, const char *address);
/* The cluster's node, its process pid, is dead (its key expired, or it
 * started again): its link closes and its sessions end, their contacts
 * told by the lowest-numbered node alive. */
void node_link_died(unsigned node, uint32_t pid);
bool node_link_is_up(unsigned node);
/* A local session was bound or unbound and the other nodes told (the
 * cluster's session directory). */
extern void (*node_link_dir_hook)(struct session *s, bool bound);
/* The iteration's storage batch is committed (core/pipeline.c): what
 * the links carry so far goes out now, or, when archive appends were
 * handed to the writer thread (handed), once node_link_landed() says
 * that hand-over is committed. A stanza never reaches another node
 * before what it caused is readable there. */
void node_link_committed(bool handed);
void node_link_landed(void);
/* After the release point, before the clients' output is written: the
 * links' bytes go first, so a client never hears of something (an
 * answer, a presence) before the other nodes could have: what it does
 * next, through another node, finds that node told. */
void node_link_flush(void);
/* How many of the other nodes have a link up now. */
unsigned node_link_up_count(void);

#endif
