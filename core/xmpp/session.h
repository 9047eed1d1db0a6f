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
struct sm_state;
struct held;

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
	int ud_ref;			/* Lua userdata, LUA_NOREF when none */
	struct sm_state *sm;		/* XEP-0198, NULL until enabled */
	struct held *held, *held_tail;	/* XEP-0352: stanzas held back */
	size_t held_bytes;
	struct session *user_next;	/* next session of the same account */
	struct session *dead_next;
	struct session *all_next, *all_prev;	/* every session */
};

void session_global_init(const unsigned char secret[32]);
/* Takes ownership of fd: a new client connection. */
void session_accept(int fd, const char *ip, int port,
		    const struct session_config *cfg, bool direct_tls);
/* Serializes node to the client (no-op once closing). 0 or -EPIPE. */
int session_send(struct session *s, const struct st_node *node);
/* XEP-0352: keeps a stanza back (serialized) until session_flush_held();
 * a held stanza with the same key (e.g. presence from one contact) is
 * replaced. Over max_held_bytes everything is flushed. */
int session_hold(struct session *s, const struct st_node *node, const char *key);
/* Sends what was held, in order. */
int session_flush_held(struct session *s);
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
/* Frees the sessions that ended; called once per loop iteration. Returns
 * how many it freed. */
size_t session_free_dead(void);

#endif
