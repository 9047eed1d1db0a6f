/*
 * bosh.h - XMPP over BOSH (XEP-0124, XEP-0206): client sessions whose
 * elements travel in the <body/> of HTTP requests and responses. The
 * session layer (core/xmpp/session.c) runs them as any client stream,
 * with the BOSH framing: what the session writes waits in the BOSH
 * session's queue for a held request to carry it; what a request's
 * <body/> holds is handed to the session one element at a time.
 *
 * sid:       the BOSH session's id, given at creation; each request names
 *            it. Unknown: the terminal error item-not-found.
 * rid:       each request's number, one more than the last. Requests are
 *            handled in rid order: one that arrives early waits for those
 *            before it (within the window of `requests`); a repeated rid
 *            is answered again with the response it had; anything else
 *            is item-not-found.
 * held:      handled requests waiting for something to carry; at most
 *            `hold` stay, the older ones are answered (empty when there is
 *            nothing), each after `wait` seconds at the latest.
 * detached:  the session's connection (conn_new_detached) names the
 *            client's address; when no request is held for `inactivity`
 *            seconds it is closed, as a TCP client's that dropped
 *            (XEP-0198 hibernates the session).
 * flush:     once per loop iteration, before the release point
 *            (core/pipeline.c), held requests are answered with what the
 *            iteration queued: the answers go out after the commit that
 *            covers them, as on any other connection.
 */
#ifndef STARLING_BOSH_H
#define STARLING_BOSH_H

#include "http_route.h"
#include "session.h"

#define NS_HTTPBIND "http://jabber.org/protocol/httpbind"
#define NS_XBOSH "urn:xmpp:xbosh"

/* Per endpoint (mod_bosh's options, Prosody's names). */
struct bosh_options {
	bool consider_secure;		/* consider_bosh_secure */
	unsigned max_wait;		/* bosh_max_wait, s */
	unsigned max_hold;		/* bosh_hold */
	unsigned max_inactivity;	/* bosh_max_inactivity, s */
	unsigned max_polling;		/* bosh_max_polling, s */
	unsigned max_requests;		/* bosh_max_requests */
};

/* The client streams' role and settings (main.c's c2s). */
void bosh_init(const struct session_listen *c2s);

/* The endpoint, as a route's handler function: data is a struct
 * bosh_options from bosh_options_new (freed with bosh_options_free). */
void bosh_serve(struct http_request *req, const char *rest,
		const struct http_route *route, void *data);
struct bosh_options *bosh_options_new(const struct bosh_options *o);
void bosh_options_free(void *options);

/* Answers held requests with what was queued; once per loop iteration,
 * before conn_release_queued(). */
void bosh_flush(void);

/* BOSH sessions open now. */
size_t bosh_count(void);

#endif
