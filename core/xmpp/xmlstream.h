/*
 * xmlstream.h - an XMPP XML stream parsed with expat.
 *
 * Bytes go in, events come out, one at a time: the parser suspends after
 * every stream header, stanza and stream close, so the caller dispatches
 * each stanza (into Lua) outside any expat callback and in order.
 *
 * Restricted XML (RFC 6120 section 11): a DOCTYPE, entity declaration,
 * processing instruction or comment is the stream error restricted-xml.
 * Limits: a stanza larger than max_stanza bytes, deeper than max_depth or
 * with an element of more than max_attrs attributes is policy-violation;
 * bytes that do not parse are not-well-formed; a root element other than
 * <stream:stream xmlns:stream='http://etherx.jabber.org/streams'> is
 * invalid-namespace.
 *
 * Usage:
 *   ev = xs_feed(xs, buf, len);
 *   while (ev != XS_NEED_MORE && ev != XS_ERROR) {
 *           handle ev (xs_header / xs_take_stanza);
 *           ev = xs_next(xs);
 *   }
 * buf must stay valid until XS_NEED_MORE or XS_ERROR. After a stream
 * restart (STARTTLS, SASL success) call xs_reset(); xs_unparsed() gives
 * the bytes of buf the old stream had not reached yet.
 *
 * Whitespace is taken wherever a client may send it, and none of it is
 * kept: before the header of a new or reset parser (skipped, so that an
 * XML declaration after it is still the document's first bytes), between
 * the declaration and the header, between top-level elements (keepalives)
 * and before the closing tag.
 */
#ifndef STARLING_XMLSTREAM_H
#define STARLING_XMLSTREAM_H

#include "stanza.h"

struct xs_limits {
	size_t max_stanza;	/* bytes, the stanza's whole text */
	unsigned max_depth;	/* element depth inside a stanza */
	unsigned max_attrs;	/* attributes on one element */
};

enum xs_event {
	XS_NEED_MORE,		/* buf consumed, feed more */
	XS_STREAM_OPEN,		/* xs_header() is the <stream:stream> */
	XS_STANZA,		/* xs_take_stanza() */
	XS_STREAM_CLOSE,	/* </stream:stream> */
	XS_ERROR,		/* xs_error(); the stream is dead */
};

struct xs;

struct xs *xs_new(const struct xs_limits *limits);
void xs_free(struct xs *xs);
/* Gives back the memory kept for the next parsers (see xmlstream_mem.h). */
void xs_trim(void);
void xs_reset(struct xs *xs);		/* a new stream on the same parser */

enum xs_event xs_feed(struct xs *xs, const char *buf, size_t len);
enum xs_event xs_next(struct xs *xs);

/* After XS_STREAM_OPEN: an element named "stream" with its attributes
 * (to, from, version, id, xml:lang) and as ns the stream's content
 * namespace (the default xmlns, e.g. "jabber:client", "" when absent).
 * Borrowed until the next xs_* call. */
const struct st_node *xs_header(struct xs *xs);

/* After XS_STANZA: the stanza; the caller owns the doc (root = stanza). */
struct st_doc *xs_take_stanza(struct xs *xs);

/* After XS_ERROR: the stream error condition (RFC 6120 4.9.3, e.g.
 * "not-well-formed") and an optional human-readable text (or NULL). */
const char *xs_error(const struct xs *xs, const char **text);

/* Between stanzas with nothing half-parsed: the parser may be freed and
 * a new one primed with xs_take_context() later (idle connections keep
 * no parser). */
bool xs_quiet(const struct xs *xs);
/* A stream header that puts a new parser where this one is: the root's
 * name as the client wrote it, the same content namespace and prefixes,
 * so later stanzas and the client's closing tag parse alike. The caller
 * owns it (free()); NULL before the stream header. */
char *xs_take_context(struct xs *xs);
/* Feeds a new parser that header (a string from xs_take_context(), whose
 * ownership passes to xs: it is the new parser's context) and takes its
 * XS_STREAM_OPEN: 0, or -EINVAL when it does not parse as one. */
int xs_prime(struct xs *xs, char *context);

/* Parked parsers: a quiet parser stands at depth 1 of its stream, and
 * everything expat then holds for the stream is the root's name and
 * namespace bindings, which its context spells out. So one parser can
 * serve every quiet stream with the same context and limits, one read
 * at a time, without being primed again. xs_park() gives a quiet
 * parser (xs_quiet) to a small shared cache, or frees it (not quiet,
 * or it grew large);
 * context: the stream's, borrowed (copied the first time a parser is
 * parked). xs_unpark() takes a parked parser back for a stream of that
 * context and limits, or NULL: then xs_new() and xs_prime(). xs_trim()
 * frees the parked ones. */
void xs_park(struct xs *xs, const char *context);
struct xs *xs_unpark(const char *context, const struct xs_limits *limits);

/* Bytes of the buffer given to the last xs_feed not yet parsed. */
size_t xs_unparsed(const struct xs *xs, const char **rest);

#endif
