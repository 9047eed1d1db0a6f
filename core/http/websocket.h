/*
 * websocket.h - XMPP over WebSocket (RFC 7395): the HTTP endpoint that
 * upgrades a request (RFC 6455 handshake, the "xmpp" subprotocol, origin
 * checks) and the framing a client session then runs on. WebSocket
 * frames are read and written by wslay (libwslay); the session layer
 * (core/xmpp/session.c) sees one message per top-level element through
 * struct session_framing.
 *
 * options:  per endpoint (mod_websocket's): whether ws:// counts as
 *           encrypted (consider_websocket_secure, behind a proxy that
 *           terminates TLS), and which Origins may connect
 *           (cross_domain_websocket: only the server's own by default,
 *           any, or a list).
 * limits:   a message larger than the client stanza size limit is the
 *           stream error policy-violation and the close code 1009; a
 *           binary message is 1003; pings are answered with pongs.
 */
#ifndef STARLING_WEBSOCKET_H
#define STARLING_WEBSOCKET_H

#include "http_route.h"
#include "session.h"

struct ws_options {
	bool consider_secure;
	bool any_origin;
	char **origins;			/* allowed besides our own, NULL-ended */
};

/* The client streams' role and settings (main.c's c2s). */
void websocket_init(const struct session_listen *c2s);

/* The endpoint, as a route's handler function: data is a struct
 * ws_options from websocket_options_new (freed with
 * websocket_options_free). */
void websocket_serve(struct http_request *req, const char *rest,
		     const struct http_route *route, void *data);
struct ws_options *websocket_options_new(bool consider_secure, bool any_origin,
					 const char *const *origins, size_t n);
void websocket_options_free(void *options);

/* WebSocket connections open now, and since start. */
size_t websocket_count(void);

#endif
