/*
 * route.h - hosts, the session directory and stanza routing.
 *
 * host:      a domain this server serves (a VirtualHost, or a Component);
 *            each has its own hook set. The pseudo-host "*" holds the
 *            global hooks.
 * directory: bound sessions by full JID, and per bare JID the list of an
 *            account's sessions. All routing goes through route_find_*,
 *            so later the directory can live in another thread or node.
 * totype:    how a stanza is addressed: "full", "bare", "host" (no
 *            localpart; a VirtualHost's domain/resource is routed as its
 *            bare domain, 'to' rewritten), or "self" (a client's stanza
 *            without 'to'; for iq also 'to' its own bare JID). Event
 *            names are "<kind>/<totype>", see docs/ARCHITECTURE.md.
 * remote:    a 'to' outside our hosts: "route/remote" fires on the
 *            sender's host (a handler may take or veto the stanza), then
 *            the stanza goes to the server-to-server link (s2s.h). Only
 *            stanzas from one of our domains leave: we relay nothing.
 * external:  a Component host served by a component over its own stream
 *            (component.h): delivery events fire on its host as on any,
 *            and what no handler takes goes to the component.
 */
#ifndef STARLING_ROUTE_H
#define STARLING_ROUTE_H

#include "hooks.h"
#include "stanza.h"

struct session;

enum host_type { HOST_LOCAL, HOST_COMPONENT, HOST_GLOBAL };

/* How a local host's clients log in (its "authentication" option, read by
 * core/server.c): accounts with SCRAM credentials, SASL ANONYMOUS with
 * temporary accounts (XEP-0175), or the test-only backend that makes an
 * account on the first PLAIN login with any password. */
enum host_auth { HOST_AUTH_INTERNAL, HOST_AUTH_ANONYMOUS, HOST_AUTH_INSECURE };

struct host {
	char *name;
	enum host_type type;
	enum host_auth auth;
	/* A Component with no module of its own: an external component
	 * (XEP-0114, component.c) serves it. What no handler of its hooks
	 * takes goes to the component's stream. */
	bool external;
	struct hook_set hooks;
};

void route_init(void);
void route_free(void);

struct host *route_host_add(const char *name, enum host_type type);
struct host *route_host(const char *name);	/* NULL when not ours */
struct host *route_global(void);		/* the "*" hook set */
/* Forgets a host and frees its hooks (a reload removed it; its sessions
 * and modules are gone first). -ENOENT, or -EBUSY while one of its hook
 * chains is firing. */
int route_host_remove(const char *name);
bool route_host_next(size_t *pos, struct host **h);

/* Binds s under its full JID; an existing session with that full JID is
 * closed with <conflict/> first. */
void route_bind(struct session *s);
void route_unbind(struct session *s);
/* The same without the "resource-unbind" event (a session of another
 * node that its own node unbound). */
void route_forget(struct session *s);
/* Told of every bind and every unbind (core/xmpp/node.c tells the other
 * nodes of its own sessions). May be NULL. */
extern void (*route_directory_hook)(struct session *s, bool bound);
struct session *route_find_full(const char *full_jid);
/* The first session of an account (see struct session's user_next). */
struct session *route_find_bare(const char *bare_jid);
size_t route_session_count(void);
/* How many sessions an account has bound. */
size_t route_count_bare(const char *bare_jid);

/* A stanza from a bound client: validates and stamps 'from', fires the
 * pre- and delivery events. Takes ownership of doc. */
void route_from_client(struct session *s, struct st_doc *doc);
/* A stanza from an authenticated server stream (s2s_in.c checked its
 * addresses): fires "route/s2sin" on the destination host (a handler that
 * stops it takes or vetoes the stanza), then the delivery events. Takes
 * ownership of doc. */
void route_from_server(struct session *s, struct st_doc *doc);
/* Routes a stanza (a module's, or a reply) to its 'to'. origin may be
 * NULL. Does not take ownership (the caller keeps its reference). */
void route_stanza(struct st_doc *doc, struct st_node *node,
		  struct session *origin);
/* Answers node with an error of the given condition, unless node is an
 * error itself or a result. */
void route_bounce(const struct st_node *node, const char *type,
		  const char *condition, const char *text);

/* Fires event on host h (NULL: nothing) with ev, then releases ev:
 * 1 when a handler stopped the chain. */
int route_fire(struct host *h, const char *event, struct event *ev);

#endif
