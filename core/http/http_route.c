/* http_route.c - routes by host, method and path (see http_route.h). */
#include "http_route.h"
#include "log.h"

#include <stdlib.h>
#include <strings.h>

struct http_route {
	char *host;			/* "*" for every host */
	char *method;
	char *path;			/* a wildcard's without its "/" and "*" */
	bool wildcard;
	size_t path_len;
	struct http_handler h;
	struct route_cors *cors;	/* NULL: same origin only */
	char *owner;
	struct http_route *next;
};

/* A route's copy of its struct http_cors. */
struct route_cors {
	bool any_origin, credentials;
	char **origins;
	char *methods, *headers;
	unsigned max_age;
};

static struct http_route *routes;
static char *default_host;

const char *http_route_host(const struct http_route *r)
{
	return r->host;
}

const char *http_route_owner(const struct http_route *r)
{
	return r->owner;
}

void http_route_set_default_host(const char *host)
{
	free(default_host);
	default_host = host && *host ? xstrdup(host) : NULL;
}

static bool same(const struct http_route *r, const char *host, const char *method,
		 const char *path, bool wildcard)
{
	return r->wildcard == wildcard && strcmp(r->host, host) == 0 &&
	       strcmp(r->method, method) == 0 && strcmp(r->path, path) == 0;
}

struct http_route *http_route_add(const char *host, const char *method,
				  const char *path, const struct http_handler *h,
				  const char *owner)
{
	size_t len = strlen(path);
	bool wildcard = len >= 2 && strcmp(path + len - 2, "/*") == 0;
	struct http_route *r;
	char *p;

	if (path[0] != '/') {
		log_error("%s: HTTP route '%s %s': the path must start with /",
			  owner, method, path);
		return NULL;
	}
	p = wildcard ? xstrndup(path, len - 2) : xstrdup(path);
	for (r = routes; r; r = r->next) {
		if (same(r, host, method, p, wildcard)) {
			log_error("%s: HTTP route '%s %s' on %s is %s's already", owner,
				  method, path, host, r->owner);
			free(p);
			return NULL;
		}
	}
	r = xcalloc(1, sizeof(*r));
	r->host = xstrdup(host);
	r->method = xstrdup(method);
	r->path = p;
	r->path_len = strlen(p);
	r->wildcard = wildcard;
	r->h = *h;
	r->owner = xstrdup(owner ? owner : "?");
	r->next = routes;
	routes = r;
	log_debug("%s: HTTP route %s %s%s on %s", r->owner, method, p,
		  wildcard ? "/*" : "", host);
	return r;
}

static void cors_free(struct route_cors *c)
{
	if (!c)
		return;
	for (char **p = c->origins; p && *p; p++)
		free(*p);
	free(c->origins);
	free(c->methods);
	free(c->headers);
	free(c);
}

void http_route_set_cors(struct http_route *r, const struct http_cors *cors)
{
	struct route_cors *c;
	size_t n = 0;

	cors_free(r->cors);
	r->cors = NULL;
	if (!cors)
		return;
	c = xcalloc(1, sizeof(*c));
	c->any_origin = cors->any_origin;
	c->credentials = cors->credentials;
	c->max_age = cors->max_age;
	c->methods = xstrdup(cors->methods ? cors->methods : "GET, OPTIONS");
	c->headers = xstrdup(cors->headers ? cors->headers : "Content-Type");
	while (cors->origins && cors->origins[n])
		n++;
	c->origins = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		c->origins[i] = xstrdup(cors->origins[i]);
	r->cors = c;
}

static void route_free(struct http_route *r)
{
	cors_free(r->cors);
	if (r->h.free)
		r->h.free(r->h.data);
	free(r->host);
	free(r->method);
	free(r->path);
	free(r->owner);
	free(r);
}

void http_route_remove(struct http_route *r)
{
	for (struct http_route **pp = &routes; *pp; pp = &(*pp)->next) {
		if (*pp == r) {
			*pp = r->next;
			route_free(r);
			return;
		}
	}
}

size_t http_route_remove_owner(const char *owner)
{
	size_t n = 0;

	for (struct http_route **pp = &routes; *pp;) {
		struct http_route *r = *pp;
		if (strcmp(r->owner, owner) == 0) {
			*pp = r->next;
			route_free(r);
			n++;
		} else {
			pp = &r->next;
		}
	}
	return n;
}

void http_route_free_all(void)
{
	while (routes) {
		struct http_route *r = routes;
		routes = r->next;
		route_free(r);
	}
	http_route_set_default_host(NULL);
}

/* How well r's path takes path: 0 not at all; an exact match beats
 * any wildcard, a longer wildcard a shorter one. *rest: a wildcard's. */
static size_t path_score(const struct http_route *r, const char *path,
			 const char **rest)
{
	if (!r->wildcard)
		return strcmp(r->path, path) == 0 ? (size_t)-1 : 0;
	/* "/files/..." takes "/files/x/y" (rest "x/y"); "/..." takes all. */
	if (strncmp(path, r->path, r->path_len) != 0 || path[r->path_len] != '/')
		return 0;
	*rest = path + r->path_len + 1;
	return r->path_len + 1;
}

static bool method_ok(const struct http_route *r, const char *method)
{
	return strcmp(r->method, method) == 0 ||
	       (strcmp(method, "HEAD") == 0 && strcmp(r->method, "GET") == 0);
}

/* The best route of host for req's path: with the method, or (in *other)
 * one without it. */
static struct http_route *find(const char *host, const struct http_request *req,
			       const char **rest, struct http_route **other)
{
	struct http_route *best = NULL;
	size_t best_score = 0;

	for (struct http_route *r = routes; r; r = r->next) {
		const char *rr = NULL;
		size_t score;
		if (strcmp(r->host, host) != 0 || !(score = path_score(r, req->path, &rr)))
			continue;
		if (!method_ok(r, req->method)) {
			*other = r;
			continue;
		}
		if (score > best_score) {
			best = r;
			best_score = score;
			*rest = rr;
		}
	}
	return best;
}

bool http_route_exists(const char *host, const char *method, const char *path)
{
	struct http_request req = { .path = (char *)path };
	struct http_route *other = NULL;
	const char *rest;

	snprintf(req.method, sizeof(req.method), "%s", method);
	return find(host, &req, &rest, &other) || find("*", &req, &rest, &other);
}

/* The 405's Allow: the methods the path has on host. */
static void allowed(const char *host, const char *path, struct sbuf *b)
{
	const char *rest;

	sbuf_adds(b, "Allow: ");
	size_t start = b->len;
	for (struct http_route *r = routes; r; r = r->next) {
		if (strcmp(r->host, host) != 0 || !path_score(r, path, &rest))
			continue;
		if (b->len > start)
			sbuf_adds(b, ", ");
		sbuf_adds(b, r->method);
	}
	sbuf_adds(b, "\r\n");
}

/* The request's Origin when r allows it cross-origin, else NULL. */
static const char *cors_origin(const struct http_route *r,
			       const struct http_request *req)
{
	const char *origin = http_header(req, "origin");

	if (!r->cors || !origin || strpbrk(origin, "\r\n"))
		return NULL;
	if (r->cors->any_origin)
		return origin;
	for (char **p = r->cors->origins; *p; p++)
		if (strcasecmp(*p, origin) == 0)
			return origin;
	return NULL;
}

/* An allowed Origin's headers on whatever answers req. */
static void cors_answer(const struct http_route *r, struct http_request *req)
{
	const char *origin = cors_origin(r, req);
	struct sbuf b;

	if (!origin)
		return;
	sbuf_init(&b);
	sbuf_printf(&b, "Access-Control-Allow-Origin: %s\r\nVary: Origin\r\n", origin);
	if (r->cors->credentials)
		sbuf_adds(&b, "Access-Control-Allow-Credentials: true\r\n");
	free(req->extra_headers);
	req->extra_headers = b.p;
}

/* OPTIONS on a path whose routes have other methods: a CORS preflight
 * when r allows the Origin, else just what the path allows. */
static void preflight(const struct http_route *r, struct http_request *req)
{
	struct sbuf b;

	sbuf_init(&b);
	allowed(r->host, req->path, &b);
	if (cors_origin(r, req)) {
		cors_answer(r, req);
		sbuf_printf(&b, "Access-Control-Allow-Methods: %s\r\n"
			    "Access-Control-Allow-Headers: %s\r\n"
			    "Access-Control-Max-Age: %u\r\n", r->cors->methods,
			    r->cors->headers, r->cors->max_age);
	}
	http_respond(req, 204, b.p, NULL, 0);
	sbuf_free(&b);
}

/* The route that answers req, or NULL (with *other a route of the path
 * for another method, if any). */
static struct http_route *lookup(const struct http_request *req, const char **rest,
				 struct http_route **other)
{
	const char *hosts[3] = { req->host, "*", default_host };
	struct http_route *r = NULL;

	for (size_t i = 0; i < 3 && !r; i++)
		if (hosts[i])
			r = find(hosts[i], req, rest, other);
	/* The first host that has the path; a CORS preflight (OPTIONS) finds
	 * it with any method, as the request it asks for would. */
	bool asks = strcmp(req->method, "OPTIONS") == 0;
	if (!r && !*other) {
		for (struct http_route *x = routes; x && !r && !*other; x = x->next) {
			const char *rr = NULL;
			if (path_score(x, req->path, &rr) &&
			    (asks || method_ok(x, req->method)))
				r = find(x->host, req, rest, other);
		}
	}
	return r;
}

bool http_route_wants_head(const struct http_request *req)
{
	struct http_route *other = NULL;
	const char *rest = NULL;
	struct http_route *r = lookup(req, &rest, &other);

	return r && r->h.head;
}

void http_route_dispatch_head(struct http_request *req)
{
	struct http_route *other = NULL;
	const char *rest = NULL;
	struct http_route *r = lookup(req, &rest, &other);

	if (r && r->h.head)
		r->h.head(req, rest, r, r->h.data);
}

void http_route_dispatch(struct http_request *req)
{
	struct http_route *r, *other = NULL;
	const char *rest = NULL;

	r = lookup(req, &rest, &other);
	if (r) {
		cors_answer(r, req);
		r->h.fn(req, rest, r, r->h.data);
		return;
	}
	if (other && strcmp(req->method, "OPTIONS") == 0) {
		preflight(other, req);
		return;
	}
	if (other) {
		struct sbuf b;
		sbuf_init(&b);
		allowed(other->host, req->path, &b);
		sbuf_adds(&b, "Content-Type: text/plain; charset=utf-8\r\n");
		http_respond(req, 405, b.p, "405 Method Not Allowed\n", 23);
		sbuf_free(&b);
		return;
	}
	http_respond_status(req, 404, NULL);
}
