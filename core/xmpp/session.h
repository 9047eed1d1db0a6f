/*
 * session.h - a client-to-server stream (RFC 6120): negotiation
 * (STARTTLS, SASL, resource binding), then stanzas into the router.
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
	unsigned max_unauth_per_ip;	/* 0 = unlimited */
	double rate;			/* read limit, bytes/s, 0 = none */
	double burst;			/* bytes */
};

struct session {
	struct conn *conn;
	struct xs *xs;
	const struct session_config *cfg;
	unsigned flags;
	char id[20];
	char *host;			/* the stream's 'to', a local host */
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
	char *xs_context;		/* how to prime a new one (see xs_prime) */
	const char *delayed_failure;	/* its condition (static) */
	double last_activity;
	double connected_at;
	int lua_ref;			/* the Lua bridge's userdata, 0 when none */
	struct sm_state *sm;		/* XEP-0198, NULL until enabled */
	struct session_filter *filters;	/* outgoing, in order */
	struct session *user_next;	/* next session of the same account */
	struct session *dead_next;
	struct session *all_next, *all_prev;	/* every session */
};

void session_global_init(const unsigned char secret[32]);
/* Takes ownership of fd: a new client connection. */
void session_accept(int fd, const char *ip, int port,
		    const struct session_config *cfg, bool direct_tls);
/* Serializes node to the client, through the session's filters (no-op
 * once closing). 0 or -EPIPE. */
int session_send(struct session *s, const struct st_node *node);
/* A stanza serialized already (a filter's held one) on its way out:
 * stream management, then the connection; no filters. 0 or -errno. */
int session_send_serialized(struct session *s, const char *data, size_t len);
/* Adds a filter with its data (owned by the filter: ops->detach). */
void session_filter_add(struct session *s, const struct session_filter_ops *ops,
			void *data);
/* The data of the session's filter of ops, or NULL when it has none. */
void *session_filter_data(const struct session *s,
			  const struct session_filter_ops *ops);
/* Removes the filter of ops (calling its detach): 0 or -ENOENT. */
int session_filter_remove(struct session *s, const struct session_filter_ops *ops);
/* Sends an element that is not a stanza (a "nonza": XEP-0198's
 * <enabled/>, ...): never counted or queued by stream management. */
int session_send_nonza(struct session *s, const struct st_node *node);
/* Closes the stream: with a stream error when condition is not NULL. */
void session_close(struct session *s, const char *condition,
		   const char *text);
/* Every session: close with condition (shutdown). */
void session_close_all(const char *condition);
size_t session_count(void);
/* The first of every session (then s->all_next), for administration;
 * includes closing and dead ones (check s->flags). */
struct session *session_first(void);
/* Ends a session that has no connection (a hibernation ran out). */
void session_expire(struct session *s, const char *reason);
/* XEP-0198 resumption: o (hibernating, or with a connection that is
 * dropped) takes over n's connection and parser; n ends. */
void session_transplant(struct session *o, struct session *n);
/* Called once for each session as it ends, after which nothing may refer
 * to it (the Lua bridge forgets its userdata). */
extern void (*session_forget_hook)(struct session *s);
/* Frees the sessions that ended; called once per loop iteration. Returns
 * how many it freed. */
size_t session_free_dead(void);

#endif
