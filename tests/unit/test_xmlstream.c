/* test_xmlstream.c - the XML stream parser: events, splits, limits,
 * restricted XML, stream restarts. */
#include "xmlstream.h"
#include "harness.h"

#include <stdlib.h>

#define STREAM "<stream:stream xmlns='jabber:client' " \
	"xmlns:stream='http://etherx.jabber.org/streams' to='example.com' " \
	"version='1.0' xml:lang='en'>"
#define HEADER "<?xml version='1.0'?>" STREAM

static const struct xs_limits small = { 1024, 8, 8 };

/* Events as text: "OPEN ns to|" "<stanza>|" "CLOSE|" "ERROR cond|". */
static bool record(struct xs *xs, enum xs_event ev, struct sbuf *log)
{
	const char *cond, *text;
	struct st_doc *d;

	while (ev != XS_NEED_MORE) {
		switch (ev) {
		case XS_STREAM_OPEN:
			sbuf_printf(log, "OPEN %s %s|", xs_header(xs)->ns,
				    st_attr_get(xs_header(xs), "to"));
			break;
		case XS_STANZA:
			d = xs_take_stanza(xs);
			st_serialize(d->root, "jabber:client", log);
			sbuf_addc(log, '|');
			st_doc_unref(d);
			break;
		case XS_STREAM_CLOSE:
			sbuf_adds(log, "CLOSE|");
			break;
		case XS_ERROR:
			cond = xs_error(xs, &text);
			sbuf_printf(log, "ERROR %s|", cond);
			return false;
		default:
			break;
		}
		ev = xs_next(xs);
	}
	return true;
}

/* Feeds data in pieces of chunk bytes (first piece: first bytes). */
static void feed_split(const char *data, size_t len, size_t first,
		       size_t chunk, const struct xs_limits *lim,
		       struct sbuf *log)
{
	struct xs *xs = xs_new(lim);
	size_t pos = 0, n;

	while (pos < len) {
		n = pos == 0 && first ? first : chunk;
		if (n > len - pos)
			n = len - pos;
		if (!record(xs, xs_feed(xs, data + pos, n), log))
			break;
		pos += n;
	}
	xs_free(xs);
}

static struct sbuf ev_log;

/* The events of data fed at once (valid until the next call). */
static const char *events(const char *data, const struct xs_limits *lim)
{
	sbuf_reset(&ev_log);
	feed_split(data, strlen(data), 0, strlen(data), lim, &ev_log);
	return ev_log.p ? ev_log.p : "";
}

static void test_client_stream(void)
{
	const char *s = HEADER
		"<message to='a@b' id='1'><body>hi &amp; bye &#x263A;</body></message> "
		"<presence/>\n"
		"<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>"
		"<stream:features><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"
		"</stream:features>"
		"<x xmlns:foo='urn:foo' foo:bar='1' xml:lang='de'>a<![CDATA[<b>]]>c</x>"
		"</stream:stream>";
	const char *expect = "OPEN jabber:client example.com|"
		"<message to='a@b' id='1'><body>hi &amp; bye \xe2\x98\xba</body></message>|"
		"<presence/>|"
		"<iq type='get' id='2'><query xmlns='jabber:iq:roster'/></iq>|"
		"<features xmlns='http://etherx.jabber.org/streams'><bind "
		"xmlns='urn:ietf:params:xml:ns:xmpp-bind'/></features>|"
		"<x xmlns:ns1='urn:foo' ns1:bar='1' xml:lang='de'>a&lt;b&gt;c</x>|"
		"CLOSE|";
	size_t len = strlen(s), i;
	struct sbuf log;

	sbuf_init(&log);
	CHECK_STR(events(s, NULL), expect);
	for (i = 1; i < len; i++) {
		sbuf_reset(&log);
		feed_split(s, len, i, len, NULL, &log);
		if (strcmp(log.p, expect) != 0) {
			CHECK_STR(log.p, expect);
			break;
		}
	}
	sbuf_reset(&log);
	feed_split(s, len, 0, 1, NULL, &log);
	CHECK_STR(log.p, expect);
	sbuf_reset(&log);
	feed_split(s, len, 0, 7, &small, &log);
	CHECK_STR(log.p, expect);
	sbuf_free(&log);
}

static void test_header(void)
{
	struct xs *xs = xs_new(NULL);
	const struct st_node *h;

	CHECK(xs_feed(xs, HEADER, strlen(HEADER)) == XS_STREAM_OPEN);
	h = xs_header(xs);
	CHECK(h != NULL);
	if (h) {
		CHECK_STR(h->name, "stream");
		CHECK_STR(h->ns, "jabber:client");
		CHECK_STR(st_attr_get(h, "version"), "1.0");
		CHECK_STR(st_attr_get(h, "xml:lang"), "en");
	}
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "<presence/><presence", 20) == XS_STANZA);
	/* a stanza not taken is freed by the parser */
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "/>", 2) == XS_STANZA);
	xs_free(xs);

	/* no default namespace: "" */
	xs = xs_new(NULL);
	const char *bare = "<s:stream xmlns:s='http://etherx.jabber.org/streams'>";

	CHECK(xs_feed(xs, bare, strlen(bare)) == XS_STREAM_OPEN);
	CHECK_STR(xs_header(xs)->ns, "");
	xs_free(xs);

	/* an empty root: open, then close */
	CHECK_STR(events("<stream:stream xmlns='jabber:server' "
			 "xmlns:stream='http://etherx.jabber.org/streams' to='x'/>",
			 NULL),
		  "OPEN jabber:server x|CLOSE|");
}

static void test_keepalives(void)
{
	struct xs *xs = xs_new(&small);
	char *ws = malloc(20000);
	int i;

	memset(ws, ' ', 20000);
	CHECK(xs_feed(xs, HEADER, strlen(HEADER)) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	for (i = 0; i < 5000; i++)
		if (xs_feed(xs, i % 2 ? " " : "\n", 1) != XS_NEED_MORE)
			break;
	CHECK(i == 5000);
	CHECK(xs_feed(xs, ws, 20000) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "<presence/>", 11) == XS_STANZA);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	free(ws);
	xs_free(xs);
	CHECK_STR(events(HEADER "hello", NULL),
		  "OPEN jabber:client example.com|ERROR bad-format|");
}

/* Whitespace before a stream's header: before the first one, and before
 * the header of a restarted stream (go-sendxmpp sends a newline after
 * SASL success); none of it counts toward the stanza limit. */
static void test_space_before_header(void)
{
	const char *open = "OPEN jabber:client example.com|";
	struct xs *xs = xs_new(&small);
	char *ws = malloc(100000);
	struct sbuf log;
	int i;

	memset(ws, ' ', 100000);
	for (i = 0; i < 100000; i += 7)
		ws[i] = i % 2 ? '\n' : '\t';
	CHECK_STR(events("\r\n \t" HEADER "<presence/>", NULL),
		  "OPEN jabber:client example.com|<presence/>|");
	CHECK_STR(events(" x" HEADER, NULL), "ERROR not-well-formed|");

	/* a megabyte of it in pieces, then the header: nothing kept */
	sbuf_init(&log);
	for (i = 0; i < 10; i++)
		if (xs_feed(xs, ws, 100000) != XS_NEED_MORE)
			break;
	CHECK(i == 10);
	CHECK(record(xs, xs_feed(xs, HEADER "<presence/>",
				 strlen(HEADER "<presence/>")), &log));
	CHECK_STR(log.p, "OPEN jabber:client example.com|<presence/>|");

	/* a restart: a newline alone, then one before the new header */
	CHECK(xs_feed(xs, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl'/>",
		      48) == XS_STANZA);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	xs_reset(xs);
	CHECK(xs_feed(xs, "\n", 1) == XS_NEED_MORE);
	sbuf_reset(&log);
	CHECK(record(xs, xs_feed(xs, "\r\n" HEADER "\n<iq type='set' id='b'/>",
				 strlen("\r\n" HEADER "\n<iq type='set' id='b'/>")),
		     &log));
	CHECK_STR(log.p, "OPEN jabber:client example.com|<iq type='set' id='b'/>|");

	/* between the declaration and the header, beyond max_stanza */
	sbuf_reset(&log);
	xs_reset(xs);
	CHECK(xs_feed(xs, "<?xml version='1.0'?>", 21) == XS_NEED_MORE);
	for (i = 0; i < 10; i++)
		if (xs_feed(xs, ws, 100000) != XS_NEED_MORE)
			break;
	CHECK(i == 10);
	CHECK(record(xs, xs_feed(xs, STREAM, strlen(STREAM)), &log));
	CHECK_STR(log.p, open);

	/* and before the close */
	sbuf_reset(&log);
	CHECK(xs_feed(xs, ws, 100000) == XS_NEED_MORE);
	CHECK(record(xs, xs_feed(xs, " \n</stream:stream>", 18), &log));
	CHECK_STR(log.p, "CLOSE|");
	sbuf_free(&log);
	free(ws);
	xs_free(xs);
}

static void test_restricted(void)
{
	const char *open = "OPEN jabber:client example.com|";
	char buf[512];

	CHECK_STR(events("<?xml version='1.0'?><!DOCTYPE stream:stream>" HEADER,
			 NULL), "ERROR restricted-xml|");
	CHECK_STR(events("<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>", NULL),
		  "ERROR restricted-xml|");
	CHECK_STR(events("<!-- hi -->" HEADER, NULL), "ERROR restricted-xml|");
	CHECK_STR(events("<?php echo 1; ?>" HEADER, NULL), "ERROR restricted-xml|");
	snprintf(buf, sizeof(buf), HEADER "<message><!-- hi --></message>");
	CHECK(strstr(events(buf, NULL), "ERROR restricted-xml|") != NULL);
	snprintf(buf, sizeof(buf), HEADER "<?target data?>");
	CHECK(strstr(events(buf, NULL), "ERROR restricted-xml|") != NULL);
	snprintf(buf, sizeof(buf), HEADER "<message><body>&foo;</body></message>");
	CHECK(strncmp(events(buf, NULL), open, strlen(open)) == 0);
	CHECK(strstr(events(buf, NULL), "ERROR restricted-xml|") != NULL);
	snprintf(buf, sizeof(buf), HEADER "<message to='&foo;'/>");
	CHECK(strstr(events(buf, NULL), "ERROR restricted-xml|") != NULL);
	snprintf(buf, sizeof(buf), HEADER "<m a='&lt;&gt;&amp;&apos;&quot;'>"
		 "&lt;&gt;&amp;&apos;&quot;</m>");
	CHECK_STR(events(buf, NULL), "OPEN jabber:client example.com|"
		  "<m a='&lt;&gt;&amp;&apos;&quot;'>&lt;&gt;&amp;'\"</m>|");
	CHECK_STR(events("<?xml version='1.0' encoding='ISO-8859-1'?>" STREAM, NULL),
		  "ERROR unsupported-encoding|");
	CHECK_STR(events("<?xml version='1.0' encoding='utf-8'?>" STREAM, NULL),
		  open);
	CHECK(strstr(events(HEADER "<?xml version='1.0'?>", NULL),
		     "ERROR not-well-formed|") != NULL);
}

static void test_not_well_formed(void)
{
	struct sbuf log;
	static const char nul[] = HEADER "<message>a\0b</message>";
	const char *cond, *text;
	struct xs *xs;

	CHECK(strstr(events(HEADER "<message><body>\xc3\x28</body></message>",
			    NULL), "ERROR not-well-formed|") != NULL);
	CHECK(strstr(events(HEADER "<message>\xff</message>", NULL),
		     "ERROR not-well-formed|") != NULL);
	sbuf_init(&log);
	feed_split(nul, sizeof(nul) - 1, 0, sizeof(nul) - 1, NULL, &log);
	CHECK(strstr(log.p, "ERROR not-well-formed|") != NULL);
	sbuf_free(&log);
	CHECK(strstr(events(HEADER "<a><b></a>", NULL),
		     "ERROR not-well-formed|") != NULL);
	CHECK(strstr(events(HEADER "<a x='1' x='2'/>", NULL),
		     "ERROR not-well-formed|") != NULL);
	CHECK(strstr(events(HEADER "<p:a/>", NULL),
		     "ERROR not-well-formed|") != NULL);
	/* the error text is expat's, and the stream stays dead */
	xs = xs_new(NULL);
	CHECK(xs_feed(xs, HEADER, strlen(HEADER)) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "<a></b>", 7) == XS_ERROR);
	cond = xs_error(xs, &text);
	CHECK_STR(cond, "not-well-formed");
	CHECK(text && strstr(text, "mismatched") != NULL);
	CHECK(xs_feed(xs, "<a/>", 4) == XS_ERROR);
	CHECK(xs_next(xs) == XS_ERROR);
	xs_free(xs);
}

static void test_namespace(void)
{
	CHECK_STR(events("<stream:stream xmlns:stream='urn:wrong'>", NULL),
		  "ERROR invalid-namespace|");
	CHECK_STR(events("<stream xmlns='jabber:client'>", NULL),
		  "ERROR invalid-namespace|");
	CHECK_STR(events("<stream:features xmlns:stream="
			 "'http://etherx.jabber.org/streams'>", NULL),
		  "ERROR invalid-namespace|");
}

/* Feeds one byte at a time; returns the bytes given when the error came. */
static size_t trickle_until_error(struct xs *xs, const char *prefix,
				  char filler, size_t max, const char **cond)
{
	size_t i, n = strlen(prefix);
	enum xs_event ev;

	for (i = 0; i < n + max; i++) {
		const char *c = i < n ? prefix + i : &filler;

		ev = xs_feed(xs, c, 1);
		while (ev != XS_NEED_MORE && ev != XS_ERROR)
			ev = xs_next(xs);
		if (ev == XS_ERROR) {
			*cond = xs_error(xs, NULL);
			return i + 1;
		}
	}
	*cond = NULL;
	return 0;
}

/* A start tag trickled a byte at a time makes expat re-read it on every
 * byte: refused long before the size limit. The same tag in network-sized
 * pieces is fine. */
static void test_trickled_start_tag(void)
{
	struct xs_limits lim = { 256 * 1024, 64, 64 };
	size_t hl = strlen(HEADER), n;
	const char *cond = NULL;
	struct xs *xs = xs_new(&lim);
	char *tag = malloc(100 * 1024 + 64);
	enum xs_event ev;
	size_t len, off;

	n = trickle_until_error(xs, HEADER "<message to='", 'a', 200000, &cond);
	CHECK_STR(cond, "policy-violation");
	CHECK(n > hl && n < hl + 16 * 1024);
	xs_free(xs);

	xs = xs_new(&lim);
	CHECK(xs_feed(xs, HEADER, hl) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	strcpy(tag, "<message to='");
	memset(tag + 13, 'a', 100 * 1024);
	strcpy(tag + 13 + 100 * 1024, "'/>");
	len = strlen(tag);
	for (off = 0, ev = XS_NEED_MORE; off < len && ev != XS_ERROR; off += 1400) {
		ev = xs_feed(xs, tag + off, MIN((size_t)1400, len - off));
		if (ev == XS_STANZA) {
			st_doc_unref(xs_take_stanza(xs));
			ev = xs_next(xs);
		}
	}
	CHECK(ev != XS_ERROR);
	xs_free(xs);
	free(tag);
}

static void test_size_limit(void)
{
	char *big = malloc(4096), *many;
	size_t hl = strlen(HEADER), n, i;
	const char *cond = NULL;
	struct xs *xs;
	struct sbuf log;

	/* in one chunk */
	snprintf(big, 4096, HEADER "<message><body>");
	memset(big + strlen(big), 'x', 2000);
	strcpy(big + hl + 15 + 2000, "</body></message>");
	CHECK_STR(events(big, &small),
		  "OPEN jabber:client example.com|ERROR policy-violation|");
	/* a stanza of exactly the limit passes */
	snprintf(big, 4096, HEADER "<m>");
	memset(big + hl + 3, 'x', 1024 - 7);
	strcpy(big + hl + 1024 - 4, "</m>");
	CHECK(strstr(events(big, &small), "ERROR") == NULL);
	/* trickled: refused as soon as the limit is passed */
	xs = xs_new(&small);
	n = trickle_until_error(xs, HEADER "<message><body>", 'x', 100000, &cond);
	CHECK_STR(cond, "policy-violation");
	CHECK(n == hl + 1025);
	xs_free(xs);
	/* a start tag that never ends */
	xs = xs_new(&small);
	n = trickle_until_error(xs, HEADER "<message to='", 'a', 100000, &cond);
	CHECK_STR(cond, "policy-violation");
	CHECK(n == hl + 1025);
	xs_free(xs);
	xs = xs_new(&small);
	memset(big, 'a', 4096);
	CHECK(xs_feed(xs, HEADER, hl) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "<message to='", 13) == XS_NEED_MORE);
	CHECK(xs_feed(xs, big, 4096) == XS_ERROR);
	CHECK_STR(xs_error(xs, NULL), "policy-violation");
	xs_free(xs);
	/* the header itself is limited */
	xs = xs_new(&small);
	n = trickle_until_error(xs, "<stream:stream xmlns:stream="
				"'http://etherx.jabber.org/streams' to='", 'a',
				100000, &cond);
	CHECK_STR(cond, "policy-violation");
	CHECK(n == 1025);
	xs_free(xs);
	/* many small stanzas in one big buffer are fine */
	many = malloc(hl + 200 * 20 + 1);
	strcpy(many, HEADER);
	for (i = 0; i < 200; i++)
		strcat(many, "<presence id='abc'/>");
	sbuf_init(&log);
	feed_split(many, strlen(many), 0, strlen(many), &small, &log);
	CHECK(strstr(log.p, "ERROR") == NULL);
	CHECK(strlen(log.p) == strlen("OPEN jabber:client example.com|") +
	      200 * strlen("<presence id='abc'/>|"));
	sbuf_free(&log);
	free(many);
	free(big);
}

static void test_depth_attrs(void)
{
	const struct xs_limits lim = { 4096, 3, 3 };
	const char *open = "OPEN jabber:client example.com|";
	char buf[512];

	snprintf(buf, sizeof(buf), HEADER "<a><b><c/></b></a>");
	CHECK(strstr(events(buf, &lim), "ERROR") == NULL);
	snprintf(buf, sizeof(buf), HEADER "<a><b><c><d/></c></b></a>");
	CHECK(strstr(events(buf, &lim), "ERROR policy-violation|") != NULL);
	snprintf(buf, sizeof(buf), HEADER "<a x='1' y='2' z='3'/>");
	CHECK(strstr(events(buf, &lim), "ERROR") == NULL);
	snprintf(buf, sizeof(buf), HEADER "<a><b x='1' y='2' z='3' w='4'/></a>");
	CHECK_STR(events(buf, &lim), "OPEN jabber:client example.com|"
		  "ERROR policy-violation|");
	snprintf(buf, sizeof(buf), HEADER "<a x='1' y='2' z='3' w='4'/>");
	CHECK(strncmp(events(buf, &lim), open, strlen(open)) == 0);
	CHECK(strstr(events(buf, &lim), "ERROR policy-violation|") != NULL);
	/* the header too: to, version, xml:lang and from are 4 */
	CHECK_STR(events("<stream:stream xmlns:stream='http://etherx.jabber.org/"
			 "streams' to='a' from='b' version='1.0' xml:lang='en'>",
			 &lim), "ERROR policy-violation|");
}

static void test_restart(void)
{
	const char *s = HEADER "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
		"mechanism='PLAIN'>AGEAYg==</auth>" HEADER "<iq type='set' id='b'/>";
	const char *second = strstr(s + 10, "<?xml");
	struct xs *xs = xs_new(NULL);
	const char *rest;
	size_t n;
	struct sbuf log;

	CHECK(xs_feed(xs, s, strlen(s)) == XS_STREAM_OPEN);
	n = xs_unparsed(xs, &rest);
	CHECK(rest == s + strlen(HEADER) && n == strlen(s) - strlen(HEADER));
	CHECK(xs_next(xs) == XS_STANZA);
	n = xs_unparsed(xs, &rest);
	CHECK(rest == second && n == strlen(second));
	xs_reset(xs);
	n = xs_unparsed(xs, &rest);
	CHECK(rest == second && n == strlen(second));
	sbuf_init(&log);
	CHECK(record(xs, xs_feed(xs, rest, n), &log));
	CHECK_STR(log.p, "OPEN jabber:client example.com|<iq type='set' id='b'/>|");
	/* the rest after a stanza is nothing once all is parsed */
	n = xs_unparsed(xs, &rest);
	CHECK(n == 0);
	xs_reset(xs);
	CHECK(xs_unparsed(xs, &rest) == 0);
	/* a second reset while suspended mid-buffer */
	sbuf_reset(&log);
	CHECK(xs_feed(xs, s, strlen(s)) == XS_STREAM_OPEN);
	xs_reset(xs);
	n = xs_unparsed(xs, &rest);
	CHECK(rest == s + strlen(HEADER));
	CHECK(xs_feed(xs, rest, n) == XS_ERROR);	/* <auth> is no header */
	CHECK_STR(xs_error(xs, NULL), "invalid-namespace");
	sbuf_free(&log);
	xs_free(xs);
}

static void test_close(void)
{
	struct xs *xs = xs_new(NULL);
	const char *s = HEADER "<presence/></stream:stream>  ";
	const char *rest;

	CHECK(xs_feed(xs, s, strlen(s)) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_STANZA);
	CHECK(xs_next(xs) == XS_STREAM_CLOSE);
	CHECK(xs_unparsed(xs, &rest) == 2 && rest[0] == ' ');
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_feed(xs, "<more/>", 7) == XS_NEED_MORE);
	xs_free(xs);
	CHECK(strstr(events(HEADER "<a></stream:stream>", NULL),
		     "ERROR not-well-formed|") != NULL);
}

/* A parser primed with xs_take_context() continues the stream: prefixes from
 * the header still resolve and the client's own closing tag matches. */
static void test_prime(void)
{
	const char *hdr = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
			  "xmlns='jabber:client' xmlns:x='urn:x' to='a'>";
	struct xs *xs = xs_new(NULL), *fresh = xs_new(NULL);
	struct st_doc *d;
	char *ctx;

	CHECK(xs_feed(xs, hdr, strlen(hdr)) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	CHECK(xs_quiet(xs));
	ctx = xs_take_context(xs);
	xs_free(xs);
	CHECK(ctx != NULL && xs_prime(fresh, ctx) == 0);
	CHECK(xs_feed(fresh, "<message><x:y/></message>", 25) == XS_STANZA);
	d = xs_take_stanza(fresh);
	CHECK(d && d->root->first && strcmp(d->root->first->ns, "urn:x") == 0);
	st_doc_unref(d);
	CHECK(xs_next(fresh) == XS_NEED_MORE);
	CHECK(xs_feed(fresh, "</s:stream>", 11) == XS_STREAM_CLOSE);
	ctx = xs_take_context(fresh);	/* the primed header, again */
	CHECK(ctx && strncmp(ctx, "<s:stream ", 10) == 0);
	free(ctx);
	xs_free(fresh);
}

/* The stanza xs has ready has this <body/> text. */
static void check_body(struct xs *xs, const char *want)
{
	struct st_doc *d = xs_take_stanza(xs);
	const char *t = d ? st_child_text(d, d->root, "body", NULL) : NULL;

	CHECK_STR(t ? t : "(none)", want);
	st_doc_unref(d);
}

/* Text split over several feeds, with another stream parsed in between:
 * the shared text buffer goes with the stream that has text pending. */
static void test_text_across_feeds(void)
{
	struct xs *a = xs_new(NULL), *b = xs_new(NULL);

	CHECK(xs_feed(a, HEADER, strlen(HEADER)) == XS_STREAM_OPEN);
	CHECK(xs_next(a) == XS_NEED_MORE);
	CHECK(xs_feed(b, HEADER, strlen(HEADER)) == XS_STREAM_OPEN);
	CHECK(xs_next(b) == XS_NEED_MORE);
	CHECK(xs_feed(a, "<message><body>hel", 18) == XS_NEED_MORE);
	CHECK(xs_feed(b, "<message><body>other</body></message>", 37) == XS_STANZA);
	check_body(b, "other");
	CHECK(xs_next(b) == XS_NEED_MORE);
	CHECK(xs_feed(b, "<message><body>x", 16) == XS_NEED_MORE);
	CHECK(xs_feed(a, "lo, ", 4) == XS_NEED_MORE);
	CHECK(xs_feed(a, "world</body></message>", 22) == XS_STANZA);
	check_body(a, "hello, world");
	CHECK(xs_next(a) == XS_NEED_MORE);
	CHECK(xs_feed(b, "y</body></message>", 18) == XS_STANZA);
	check_body(b, "xy");
	xs_free(a);
	xs_free(b);
}

/* Parked parsers: a quiet one is shared by streams of the same context
 * and limits only; one with half a stanza, another context or other
 * limits is never handed out; xs_trim empties the cache. */
static void test_park(void)
{
	const char *hdr = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
			  "xmlns='jabber:client' xmlns:x='urn:x'>";
	const char *other = "<s:stream xmlns:s='http://etherx.jabber.org/streams' "
			    "xmlns='jabber:client' xmlns:x='urn:other'>";
	struct xs_limits lim = { 0 }, tight = { .max_stanza = 100 };
	struct xs *xs = xs_new(&lim), *half = xs_new(&lim), *got;
	struct st_doc *d;
	char *ctx;

	CHECK(xs_feed(xs, hdr, strlen(hdr)) == XS_STREAM_OPEN);
	CHECK(xs_next(xs) == XS_NEED_MORE);
	ctx = xs_take_context(xs);
	CHECK(ctx != NULL);
	xs_park(xs, ctx);
	CHECK(xs_unpark(other, &lim) == NULL);
	CHECK(xs_unpark(ctx, &tight) == NULL);
	got = xs_unpark(ctx, &lim);
	CHECK(got == xs);
	CHECK(xs_unpark(ctx, &lim) == NULL);	/* taken: one stream each */
	CHECK(xs_feed(got, "<message><x:y/></message>", 25) == XS_STANZA);
	d = xs_take_stanza(got);
	CHECK(d && d->root->first && strcmp(d->root->first->ns, "urn:x") == 0);
	st_doc_unref(d);
	CHECK(xs_next(got) == XS_NEED_MORE);
	xs_park(got, ctx);
	/* half a stanza: freed, not parked (ASan sees the parser go) */
	CHECK(xs_feed(half, hdr, strlen(hdr)) == XS_STREAM_OPEN);
	CHECK(xs_next(half) == XS_NEED_MORE);
	CHECK(xs_feed(half, "<message><body>hel", 18) == XS_NEED_MORE);
	CHECK(!xs_quiet(half));
	xs_park(half, ctx);
	got = xs_unpark(ctx, &lim);
	CHECK(got == xs);	/* still the quiet one */
	CHECK(xs_feed(got, "<message><body>x</body></message>", 33) == XS_STANZA);
	check_body(got, "x");
	CHECK(xs_next(got) == XS_NEED_MORE);
	xs_park(got, ctx);
	xs_trim();
	CHECK(xs_unpark(ctx, &lim) == NULL);
	free(ctx);
}

int main(void)
{
	RUN(test_client_stream);
	RUN(test_header);
	RUN(test_keepalives);
	RUN(test_space_before_header);
	RUN(test_restricted);
	RUN(test_not_well_formed);
	RUN(test_namespace);
	RUN(test_size_limit);
	RUN(test_trickled_start_tag);
	RUN(test_depth_attrs);
	RUN(test_restart);
	RUN(test_close);
	RUN(test_prime);
	RUN(test_text_across_feeds);
	RUN(test_park);
	sbuf_free(&ev_log);
	TEST_END();
}
