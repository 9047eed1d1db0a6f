/*
 * node.h - nodes: several Starling processes serving the same hosts
 * (docs/ARCHITECTURE.md, "Nodes and workers").
 *
 * node:      a Starling process with its own loop and Lua state, numbered
 *            from 1 (node_self); 0 when the server is one process.
 * proxy:     a struct session (SESS_F_REMOTE) standing for a bound client
 *            session of another node. It is in the routing directory like
 *            a local one, so core.sessions() and every module see it; a
 *            stanza sent to it goes whole to its node (the role's forward),
 *            which hands it to the real session without routing it again.
 * field:     a value modules keep on a session that the other nodes need
 *            to route without asking (available, presence, priority,
 *            want_carbons, roster_requested): a change on the owning node
 *            is copied to the proxies.
 * backend:   how the directory's changes and forwarded stanzas reach the
 *            other nodes (struct node_backend): the node links of
 *            node_link.c; a shared directory (Redis) implements the same.
 */
#ifndef STARLING_NODE_H
#define STARLING_NODE_H

#include "session.h"

enum node_value_type { NV_NIL, NV_BOOLEAN, NV_NUMBER, NV_STRING, NV_STANZA };

/* A field's value; strings and stanzas borrowed for the call. */
struct node_value {
	enum node_value_type type;
	bool b;
	double n;
	const char *s;
	const struct st_node *stanza;
};

struct node_backend {
	/* A local session was bound / unbound / changed a shared field:
	 * tell every other node. */
	void (*bound)(struct session *s);
	void (*unbound)(struct session *s);
	void (*field)(struct session *s, const char *name,
		      const struct node_value *v);
	/* A stanza for the session full_jid of node: 0, or -errno (the node
	 * is not reachable). */
	int (*forward)(unsigned node, const char *full_jid,
		       const struct st_node *stanza);
	/* Ask node to close its session full_jid with a stream error. */
	void (*close)(unsigned node, const char *full_jid, const char *condition);
	/* This node reloaded its config (starlingctl reload): every other
	 * node reloads too. 0 or -errno. May be NULL. */
	int (*reload_others)(void);
	/* A notice to every other node (node_tell). */
	void (*tell)(const char *host, const char *event, const char *username);
	/* An operator's command for every other node (node_admin_others). */
	void (*admin)(const char *line);
};

extern unsigned node_self;		/* 0: a single process */

/* This process is node self of a server of several; b carries what the
 * others must hear. */
void node_init(unsigned self, const struct node_backend *b);
void node_free(void);
/* The node a session is on (node_self for our own). */
unsigned node_of(const struct session *s);

/* What the backend hears from node: */
/* A session was bound there: its proxy here (an older one of ours with
 * that full JID is closed, conflict). */
void node_remote_bind(unsigned node, const char *id, const char *full_jid);
void node_remote_unbind(unsigned node, const char *full_jid);
void node_remote_field(unsigned node, const char *full_jid, const char *name,
		       const struct node_value *v);
/* A stanza for our session full_jid, serialized by the sending node for
 * jabber:client (no xmlns of its own, as session_send writes it), with
 * the flags node_route_flags() gave it there: the bytes go to the client
 * as they are, through XEP-0198's queue, without a tree; parsed only when
 * the session has filters (CSI) or went meanwhile (then routed again
 * when the flags say so). data is borrowed. */
void node_deliver_bytes(unsigned node, const char *full_jid, unsigned flags,
			const char *data, size_t len);
/* What the receiving node does with a stanza whose session went. */
#define NODE_ROUTE_F_TO_FULL 0x01	/* its 'to' is that full JID: route again */
#define NODE_ROUTE_F_TO_BARE 0x02	/* a message to the account: again when
					 * the account has no session left */
unsigned node_route_flags(const char *full_jid, const struct st_node *stanza);
/* One serialized stanza (jabber:client) back into a tree (a field's
 * value, a stanza that needs one): the caller owns the doc; NULL when
 * the bytes are not one element. */
struct st_doc *node_parse(const char *data, size_t len);
/* Close our session full_jid (another node's directory replaced it). */
void node_close_local(const char *full_jid, const char *condition);
/* A link to node is up: it tells us its sessions again. Returns the
 * epoch of what it tells from now on. */
unsigned node_up(unsigned node);
/* What node told in epoch is void (its process died, or its link went
 * for good): those proxies end, unless a newer link told them again.
 * announce: this node speaks for the dead one's sessions, firing
 * "resource-unbind" for each (their contacts see them go offline). */
void node_gone(unsigned node, unsigned epoch, bool announce);
/* This node stops: its proxies end without a word to their nodes (the
 * sessions they stand for live on), while our clients' last presence
 * still reaches them on the way out. */
void node_leaving(void);
/* Calls fn for each of our bound client sessions (a new link's dump). */
void node_each_local(void (*fn)(struct session *s, void *ctx), void *ctx);

/* After an operator's reload here: the other nodes reload too (their
 * reports go to their logs). 0, -ENOTSUP (one process), or -errno. */
int node_reload_others(void);

/* A notice: event fires on host on every other node, with username
 * (what a module keeps of that account there is stale: its own event,
 * "mam/forget"). Goes with the iteration's output, after its commit, so
 * the other nodes read what was written. Nothing with one process. */
void node_tell(const char *host, const char *event, const char *username);
/* A notice from node (the backend's), and the bridge's way to fire it. */
void node_told(unsigned node, const char *host, const char *event,
	       const char *username);
extern void (*node_told_hook)(unsigned node, const char *host,
			      const char *event, const char *username);

/* An operator's module command (starlingctl module load|unload|reload),
 * done here: every other node does it too, reporting to its log. */
void node_admin_others(const char *line);
/* One from node (the backend's), and the bridge's way to run it. */
void node_admin(unsigned node, const char *line);
extern void (*node_admin_hook)(unsigned node, const char *line);

/* The fields of a session the other nodes see. */
bool node_field_shared(const char *name);
/* A module set a shared field of local session s (the Lua bridge). */
void node_field_changed(struct session *s, const char *name,
			const struct node_value *v);
/* The bridge's: set a field in a proxy's table; call emit for each
 * shared field a local session has. */
extern void (*node_field_set_hook)(struct session *proxy, const char *name,
				   const struct node_value *v);
extern void (*node_fields_hook)(struct session *s,
				void (*emit)(struct session *s, const char *name,
					     const struct node_value *v, void *ctx),
				void *ctx);

#endif
