/*
 * session.h - an XML stream of any role (RFC 6120): its connection, XML
 * parser, stream header, features, STARTTLS, stream errors and limits
 * (session.c), and the role's own negotiation (c2s.c for clients,
 * s2s_in.c and s2s_out.c for servers, component.c for XEP-0114's
 * external components).
 *
 * role:     what a kind of stream adds (struct session_role): its
 *           content namespace, which hosts its header may name, its
 *           features, its top-level elements, and what becomes of it when
 *           the connection goes.
 * framing:  how the stream's elements travel on the connection (struct
 *           session_framing). Without one (NULL) the stream is one XML
 *           document over the connection's bytes (RFC 6120). A framing
 *           carries each top-level element as a message of its own
 *           (RFC 7395: XMPP over WebSocket, core/http/websocket.c): the
 *           stream header becomes <open/>, its end <close/>, and every
 *           element declares its namespaces. The session layer asks the
 *           framing to write each element and hands it each message read;
 *           roles see no difference.
 *
 * A session owns its connection and its XML parser. It is freed at the
 * end of the loop iteration in which it ended (session_free_dead()), so
 * code in the middle of dispatching can always still look at it.
 */
#ifndef STARLING_SESSION_H
#define STARLING_SESSION_H

#include <ev.h>

#include "conn.h"
#include "xmlstream.h"
#include "sasl.h"
#include "route.h"

struct listener;
struct session;
struct sm_state;

#define SESS_F_TLS        0x0001	/* the stream is encrypted */
#define SESS_F_DIRECT_TLS 0x0002	/* accepted on a direct TLS port */
#define SESS_F_OPENED     0x0004	/* we sent our stream header */
#define SESS_F_AUTHED     0x0008
#define SESS_F_BOUND      0x0010
#define SESS_F_CLOSING    0x0020	/* no more stanzas in or out */
#define SESS_F_DEAD       0x0040	/* connection gone, free pending */
#define SESS_F_RESTART    0x0080	/* a stream restart is pending */
#define SESS_F_STARTTLS   0x0100	/* switch to TLS after <proceed/> */
#define SESS_F_COUNTED    0x0200	/* counted unauthenticated for its IP */
#define SESS_F_HIBERNATING 0x0400	/* XEP-0198: no connection, still bound */
#define SESS_F_INACTIVE   0x0800	/* XEP-0352: the client said inactive */
#define SESS_F_ANONYMOUS  0x1000	/* SASL ANONYMOUS: a temporary account */
#define SESS_F_OUTGOING   0x2000	/* we opened it (server-to-server) */
#define SESS_F_REMOTE     0x4000	/* stands for a session of another node */
#define SESS_F_CARBONS    0x8000	/* XEP-0280: its Lua field want_carbons
					 * is true (core/features/gate.h) */

/* Outgoing filters: every stanza session_send() gets passes through the
 * session's filters, in the order they were added, before it is
 * serialized (XEP-0352's hold queue is one, core/features/csi.c). */
#define SESSION_FILTER_PASS 0		/* on to the next filter, then out */
#define SESSION_FILTER_TAKEN 1		/* the filter kept or dropped it */

struct session_filter_ops {
	const char *name;
	/* SESSION_FILTER_PASS, SESSION_FILTER_TAKEN, or -errno (the stanza
	 * could not go out). */
	int (*filter)(struct session *s, const struct st_node *n, void *data);
	/* The filter is removed, or the session ends. May be NULL. */
	void (*detach)(struct session *s, void *data);
};

struct session_filter {
	const struct session_filter_ops *ops;
	void *data;
	struct session_filter *next;
};

/* The framing namespace of RFC 7395. */
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing"

struct session_framing {
	const char *name;		/* "websocket" */
	/* One whole top-level element to the peer, as one message. 0, or
	 * -errno (the connection is going). */
	int (*send)(struct session *s, void *data, const char *buf, size_t len);
	/* Bytes from the connection: the framing decodes them and hands
	 * each message to session_input(). */
	void (*input)(struct session *s, void *data, const char *buf, size_t len);
	/* The stream is closing: the framing's own goodbye (a WebSocket
	 * close frame), before the connection is closed. */
	void (*close)(struct session *s, void *data);
	/* The framing's data goes (the connection went, or the session). */
	void (*free)(void *data);
	/* The connection went without close() (lost, timed out, or closed
	 * under the session): the framing must not use it any more. May be
	 * NULL. */
	void (*conn_gone)(struct session *s, void *data);
};

struct session_role {
	const char *name;		/* "c2s", "s2sin", "s2sout" */
	const char *ns;			/* "jabber:client" */
	enum host_type host_type;	/* what the header's 'to' must be */
	/* Whether the header's 'to' may name a Component as well (server
	 * streams: a component's domain is reached over federation like
	 * one of ours). */
	bool components_too;
	/* More namespace declarations of our stream header (s2s: "xmlns:db"),
	 * written as they are; may be NULL. */
	const char *header_attrs;
	/* A stream of before RFC 6120 (XEP-0114's components): our header
	 * names no version and no features follow; the peer's needs none. */
	bool no_features;
	/* Whether "stream-features" fires for this role (client features:
	 * registration, CSI, stream management). */
	bool features_event;
	/* Whether a stanza a handler sends to such a session goes through the
	 * router instead (a server's inbound stream carries nothing back: the
	 * answer travels on our own stream to that server). */
	bool routes_sends;
	/* Whether TLS asks the peer for its certificate (servers: SASL
	 * EXTERNAL, XEP-0178). */
	bool peer_certificate;
	/* The peer's stream header arrived: true when the role took care of
	 * it (an outgoing stream), false for the checks of an incoming one.
	 * May be NULL. */
	bool (*header)(struct session *s, const struct st_node *hdr);
	/* An outgoing connection is up / a TLS handshake finished. May be
	 * NULL. */
	void (*connected)(struct session *s);
	void (*tls_ready)(struct session *s);
	/* Adds the role's stream features (after STARTTLS, before the
	 * "stream-features" event's handlers). */
	void (*features)(struct session *s, struct st_doc *d, struct st_node *f);
	/* A top-level element (STARTTLS is taken before); takes doc. */
	void (*element)(struct session *s, struct st_doc *doc);
	/* A serialized stanza is about to go out (or to wait for the
	 * connection while it has none): 0, or -ENOBUFS when it cannot
	 * (the session then ends). May be NULL. */
	int (*sending)(struct session *s, const char *data, size_t len);
	/* A session of another node (core/xmpp/node.h): what is sent to it
	 * goes there whole, to the session it stands for, instead of through
	 * filters and a connection. 0 or -errno. May be NULL. */
	int (*forward)(struct session *s, const struct st_node *node);
	/* The connection went away or fell silent: true when the role keeps
	 * the session without it (it then owns what follows). May be NULL. */
	bool (*lost)(struct session *s);
	/* The session ends: what the role must undo (the directory, ...).
	 * May be NULL. */
	void (*ended)(struct session *s, const char *reason);
};

/* What a listener hands session_accept(): role, settings, and whether the
 * port is direct TLS (XEP-0368). */
struct session_listen {
	const struct session_role *role;
	const struct session_config *cfg;
	bool direct_tls;
};

struct session_config {
	bool require_encryption;
	bool allow_plain_unencrypted;
	bool strict_channel_binding;	/* RFC 5802's "y" rule, see sasl.h */
	double preauth_timeout;
	double idle_timeout;
	struct xs_limits limits;
	size_t send_queue_limit;
	unsigned max_auth_failures;	/* per stream, then policy-violation */
	double auth_failure_delay;	/* longest delay of a failure, s */
	unsigned max_resources;		/* per account, 0 = unlimited */
	size_t max_held_bytes;		/* XEP-0352 held stanzas, then flush */
	double parser_release_after;	/* seconds quiet before the parser goes */
	bool tls_compact;		/* ... and TLS 1.3's SSL (tls13.h) */
	unsigned max_unauth_per_ip;	/* 0 = unlimited */
	double fast_token_ttl;		/* XEP-0484 tokens live this long, s */
	double fast_token_min_ttl;	/* ... and are renewed with less left */
	double rate;			/* read limit, bytes/s, 0 = none */
	double burst;			/* bytes */
};

struct session {
	const struct session_role *role;
	struct conn *conn;
	struct xs *xs;
	const struct session_config *cfg;
	unsigned flags;
	char id[20];
	char *host;			/* the stream's 'to', a local host */
	char *peer;			/* s2s: the other server's domain */
	void *role_data;		/* the role's own state (s2s) */
	char *username;
	char *resource;
	char *bare_jid;
	char *full_jid;
	struct sasl *sasl;
	unsigned auth_failures;
	bool plus_offered;
	ev_timer timer;			/* pre-auth, then idle timeout */
	ev_timer delay_timer;		/* a delayed SASL failure */
	ev_timer quiet_timer;		/* frees the parser of a quiet stream */
	ev_timer pause_timer;		/* reading paused (session_pause_reading) */
	char *xs_context;		/* how to prime a new one (see xs_prime) */
	const char *delayed_failure;	/* its condition (static) */
	double last_activity;
	double connected_at;
	int lua_ref;			/* the Lua bridge's userdata, 0 when none */
	struct sm_state *sm;		/* XEP-0198, NULL until enabled */
	struct session_filter *filters;	/* outgoing, in order */
	const struct session_framing *framing;	/* NULL: an XML stream */
	void *framing_data;		/* the framing's, with the connection */
	unsigned long wrote[2];		/* the last two storage batches its
					 * stanzas wrote into (store.h) */
	struct session *user_next;	/* next session of the same account */
	struct session *dead_next;
	struct session *all_next, *all_prev;	/* every session */
};

/* Takes ownership of fd: a new connection on a listener whose context is
 * a struct session_listen. */
void session_accept(int fd, const char *ip, int port, void *listen);
/* A session over a connection another layer accepted and negotiated
 * already (an HTTP upgrade to WebSocket): c becomes the session's (its
 * owner and events), framing and its data carry the elements; secure
 * says whether the stream counts as encrypted (TLS on c, or a proxy in
 * front that terminated it). Returns the session; it may be closing
 * already (too many unauthenticated connections from its address). */
struct session *session_accept_conn(struct conn *c, const struct session_listen *sl,
				    const struct session_framing *framing,
				    void *framing_data, bool secure);
/* One message of a framed session (the framing's input calls it): parsed
 * as the next piece of the stream. */
void session_input(struct session *s, const char *buf, size_t len);
/* An outgoing stream of role from our host to the peer domain, without
 * a connection yet (SESS_F_OUTGOING). */
struct session *session_new_outgoing(const struct session_role *role,
				     const struct session_config *cfg,
				     const char *host, const char *peer);
/* A session of role that stands for one on another node (node.h): no
 * connection, no parser, no timers; the role's forward carries what is
 * sent to it. */
struct session *session_new_remote(const struct session_role *role,
				   const struct session_config *cfg);
/* Connects s to sa; the role hears connected(), or the session ends with
 * the reason. 0, or -errno (s is unchanged: the caller ends it). */
int session_connect(struct session *s, const struct sockaddr *sa, socklen_t len);
/* Sends the stream's features now (SASL2: right after <success/>, with
 * no stream restart). */
void session_send_features(struct session *s);
/* Sends our stream header (again, after TLS or a restart). */
void session_open_stream(struct session *s);
/* Serializes node to the client, through the session's filters (no-op
 * once closing). 0 or -EPIPE. */
int session_send(struct session *s, const struct st_node *node);
/* session_send() of a node whose serialization for a stream without
 * framing is known already (data, len: a fan-out's, fanout.h): the
 * filters see node, then those bytes go out; a framed stream gets node
 * serialized. 0 or -errno. */
int session_send_known(struct session *s, const struct st_node *node,
		       const char *data, size_t len);
/* A stanza serialized already (a filter's held one) on its way out:
 * stream management, then the connection; no filters. 0 or -errno. */
int session_send_serialized(struct session *s, const char *data, size_t len);
/* A stanza serialized elsewhere (another node) for s, as session_send
 * would have written it: counted and on its way out like one of
 * session_send's. -EAGAIN when s has filters (they want a tree). */
int session_send_bytes(struct session *s, const char *data, size_t len);
/* Adds a filter with its data (owned by the filter: ops->detach). */
void session_filter_add(struct session *s, const struct session_filter_ops *ops,
			void *data);
/* The same, ahead of the filters the session has already. */
void session_filter_add_first(struct session *s, const struct session_filter_ops *ops,
			      void *data);
/* The data of the session's filter of ops, or NULL when it has none. */
void *session_filter_data(const struct session *s,
			  const struct session_filter_ops *ops);
/* Removes the filter of ops (calling its detach): 0 or -ENOENT. */
int session_filter_remove(struct session *s, const struct session_filter_ops *ops);
/* Sends an element that is not a stanza (a "nonza": XEP-0198's
 * <enabled/>, ...): never counted or queued by stream management. */
int session_send_nonza(struct session *s, const struct st_node *node);
/* Reads nothing more from the client for seconds (a module's budget of
 * costly requests ran out); a longer pause extends the current one. What
 * was read already is still handled. */
void session_pause_reading(struct session *s, double seconds);
/* Closes the stream: with a stream error when condition is not NULL. */
void session_close(struct session *s, const char *condition,
		   const char *text);
/* The storage batch numbered batch was lost (store_take_lost): every
 * session whose stanzas wrote into it is closed with the stream error
 * resource-constraint, its output since the last release dropped, so
 * nothing acknowledges what was not stored (an XEP-0198 client resends
 * what was never acked). Returns how many. */
size_t session_writes_lost(unsigned long batch);
/* Every session but those spare() is true for (spare may be NULL):
 * close with condition (shutdown). */
void session_close_all(const char *condition,
		       bool (*spare)(const struct session *s));
size_t session_count(void);
/* The first of every session (then s->all_next), for administration;
 * includes closing and dead ones (check s->flags). */
struct session *session_first(void);
/* Ends a session that has no connection (a hibernation ran out). */
void session_expire(struct session *s, const char *reason);
/* Ends the session now (no stream close is sent): out of the directory,
 * invisible to Lua, freed at the end of the loop iteration. */
void session_end(struct session *s, const char *reason);

/* A serialized stanza written to the connection as it is, past the role
 * (XEP-0198 resending its own copies after a resumption). 0 or -errno. */
int session_write_stanza(struct session *s, const char *data, size_t len);
/* s loses its connection to a newer stream (XEP-0198 resumption
 * elsewhere): the stream error condition goes to it, then the
 * connection closes and its framing goes; s keeps no connection. */
void session_drop_conn(struct session *s, const char *condition);

/* Stanzas in and out of every session since start, by kind. */
struct session_stats {
	uint64_t in[3], out[3];		/* message, presence, iq */
};
const struct session_stats *session_stats(void);

/* For roles: bytes and strings to the peer as they are (nothing once the
 * session is closing). */
void session_send_raw(struct session *s, const char *data, size_t len);
void session_send_str(struct session *s, const char *str);
/* A SASL <failure/> with condition and, unless NULL, a <text/>. ns is the
 * failure's namespace: NS_SASL, or another (XEP-0388's) that then carries
 * the condition in NS_SASL. */
void session_send_sasl_failure(struct session *s, const char *ns,
			       const char *condition, const char *text);
/* Fires name on the session's host with ev (then releases it): 1 when a
 * handler stopped the chain. */
int session_fire(struct session *s, const char *name, struct event *ev);
/* Fires the event named by fmt with a, b, c (a stanza of s in doc, as
 * { origin, stanza }): true when a handler took it. */
bool session_fire_stanza(struct session *s, struct st_doc *doc,
			 const char *fmt, const char *a, const char *b,
			 const char *c);
/* How logs name s: its full JID, address or id. */
const char *session_src(const struct session *s);

/* Called once for each session as it ends, after which nothing may refer
 * to it (the Lua bridge forgets its userdata). */
extern void (*session_forget_hook)(struct session *s);
/* Within the stream layer (session*.c): one element, or unframed any
 * bytes, to the connection or its framing; counting a stanza sent. */
int session_write(struct session *s, const char *data, size_t len);
void session_count_out(const char *name);

/* Frees the sessions that ended; called once per loop iteration. Returns
 * how many it freed. */
size_t session_free_dead(void);

#endif
