/*
 * http_route.h - which handler answers a request: routes by host, method
 * and path, as Prosody's modules mount them (module:provides("http")).
 *
 * route:    host ("*" for every host), method ("GET", ...; a GET route
 *           answers HEAD too) and path; a path ending in a slash and a star is a
 *           wildcard: it matches whatever follows the prefix's "/", and
 *           the handler gets that rest.
 * handler:  a C function with its data (the WebSocket endpoint), or a Lua
 *           function wrapped by the bridge (core/lua/lx_http.c); routes
 *           name their owner ("host:module") for logs and removal.
 * choosing: the request's Host names a host; its routes are tried, then
 *           those of "*", then those of http_default_host, then of the
 *           first host with the path. The exact path wins over wildcards,
 *           the longest wildcard over shorter ones. A path with routes
 *           but not for the method: 405 with Allow (OPTIONS: 204 with
 *           Allow, and CORS's headers where allowed); no route: 404.
 */
#ifndef STARLING_HTTP_ROUTE_H
#define STARLING_HTTP_ROUTE_H

#include "http.h"

struct http_route;

struct http_handler {
	/* Answers req now or later (http_respond), or takes its connection
	 * (http_upgrade). rest: what a wildcard matched, else NULL. */
	void (*fn)(struct http_request *req, const char *rest,
		   const struct http_route *route, void *data);
	void *data;
	/* Optional: the request's head is in, its body not read yet. It may
	 * answer now (a refusal: the body is never read), or direct the body
	 * (http_body_to_file); else the body is read into memory. It must
	 * not keep req for later: fn is called once the body is in. */
	void (*head)(struct http_request *req, const char *rest,
		     const struct http_route *route, void *data);
	/* The route is removed: its data goes. May be NULL. */
	void (*free)(void *data);
};

/* Cross-origin requests a route allows (CORS; mod_http's options):
 * enabled with any Origin or those listed; what a preflight (OPTIONS)
 * is told. */
struct http_cors {
	bool any_origin;
	const char *const *origins;	/* NULL-ended; may be NULL */
	const char *methods;		/* "GET, POST, OPTIONS" */
	const char *headers;		/* "Content-Type" */
	unsigned max_age;		/* s */
	bool credentials;
};

/* Adds a route; copies the strings. NULL (logged) when the same host,
 * method and path has a route already. */
struct http_route *http_route_add(const char *host, const char *method,
				  const char *path, const struct http_handler *h,
				  const char *owner);
void http_route_remove(struct http_route *r);
/* The route answers cross-origin requests as cors says (copied); NULL:
 * none (the default). An allowed Origin gets Access-Control-Allow-Origin
 * (and -Credentials) on every answer; OPTIONS on the route's path is a
 * preflight answered 204 with -Methods, -Headers and -Max-Age. */
void http_route_set_cors(struct http_route *r, const struct http_cors *cors);
/* Removes every route of owner; how many. */
size_t http_route_remove_owner(const char *owner);
const char *http_route_host(const struct http_route *r);
const char *http_route_owner(const struct http_route *r);
/* Whether host (or "*") has a route for path with method. */
bool http_route_exists(const char *host, const char *method, const char *path);

/* Finds the route of req and calls it, or answers 404/405. */
void http_route_dispatch(struct http_request *req);
/* Whether req's route has a head handler. */
bool http_route_wants_head(const struct http_request *req);
/* Calls the head handler of req's route, if it still has one. */
void http_route_dispatch_head(struct http_request *req);

/* The host whose routes answer a Host we do not know (http_default_host),
 * or NULL. */
void http_route_set_default_host(const char *host);

void http_route_free_all(void);

#endif
