/*
 * fuzz_xmlstream.c - the XML stream parser (xmlstream.c) as a session
 * drives it: bytes arrive in chunks, events come out one at a time, and
 * the stream restarts after STARTTLS and SASL success.
 *
 * Input: 4 control bytes, then the stream's bytes.
 *   byte 0  bits 0-1  limits: 0 the defaults, 1 max_stanza 200,
 *                     2 max_depth 3 and max_attrs 2, 3 all three tiny
 *           bit 2     restart order: xs_unparsed() then xs_reset() (as
 *                     session.c does), or xs_reset() then xs_unparsed()
 *           bit 3     leave every second stanza to xs_next() to free
 *           bit 4     also restart after every fourth stanza
 *           bit 5     after </stream:stream>, restart and go on
 *   bytes 1-3        chunk lengths, used in turn (0: all that is left);
 *                     each chunk is a malloc'd copy of exactly its bytes
 *
 * A stanza named "auth" restarts the stream as SASL success does (the
 * bytes after it in the same chunk are fed to the new stream); one named
 * "starttls" resets it and drops the rest of the chunk, as the TLS
 * handshake would take it.
 *
 * Checks: events come in a legal order (header first, nothing after the
 * close); errors name a stream error condition we define; every stanza is
 * a well-linked tree (no empty names, no adjacent or empty text nodes,
 * no deeper than the limit); serializing it and parsing that again gives
 * the same tree, whose serialization is the same bytes; st_clone()
 * serializes the same.
 */
#include "fuzz_common.h"
#include "xmlstream.h"

#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

int FUZZ_ENTRY(const uint8_t *data, size_t size);

#define XF_TAKE_SOME	0x08
#define XF_RESTART_MORE	0x10
#define XF_RESTART_CLOSE 0x20
#define XF_RESET_FIRST	0x04

struct xf_run {
	struct xs *xs;
	struct xs_limits lim;
	uint8_t flags;
	bool opened;		/* this stream's header came */
	bool closed;		/* and its close */
	unsigned stanzas;	/* since the start of the input */
	struct sbuf ns;		/* the stream's content namespace */
};

enum xf_action { XF_GO_ON, XF_RESTART, XF_STARTTLS };

static const char *const xf_conditions[] = {
	"restricted-xml", "policy-violation", "not-well-formed",
	"invalid-namespace", "bad-format", "unsupported-encoding",
	"invalid-xml",		/* a stream header inside an open stream */
};

static void xf_limits(uint8_t flags, struct xs_limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	switch (flags & 3) {
	case 1:
		lim->max_stanza = 200;
		break;
	case 2:
		lim->max_depth = 3;
		lim->max_attrs = 2;
		break;
	case 3:
		lim->max_stanza = 64;
		lim->max_depth = 2;
		lim->max_attrs = 1;
		break;
	}
}

/* The tree's links, names and text nodes; returns its element depth. */
static unsigned xf_check_tree(const struct st_node *n)
{
	unsigned deepest = 0;

	FUZZ_CHECK(n->name && n->name[0] && n->ns);
	for (const struct st_node *c = n->first; c; c = c->next) {
		FUZZ_CHECK(c->parent == n);
		FUZZ_CHECK(c->prev ? c->prev->next == c : n->first == c);
		FUZZ_CHECK(c->next || n->last == c);
		if (c->name) {
			unsigned d = xf_check_tree(c);
			if (d > deepest)
				deepest = d;
			continue;
		}
		FUZZ_CHECK(c->text && c->len > 0 && c->text[c->len] == '\0');
		FUZZ_CHECK(!c->first && !c->attrs);
		FUZZ_CHECK(!c->prev || c->prev->name);	/* merged */
	}
	for (const struct st_attr *a = n->attrs; a; a = a->next)
		FUZZ_CHECK(a->name && a->name[0] && a->value);
	return deepest + 1;
}

/* Parses text as one stanza of a stream whose content namespace is ns;
 * the stanza's doc, or NULL when it does not come out as exactly one. */
static struct st_doc *xf_reparse(const char *ns, const struct sbuf *text)
{
	struct xs_limits lim = { text->len * 2 + 1024, 1024, 1024 };
	struct xs *xs = xs_new(&lim);
	struct st_doc *doc = NULL;
	struct sbuf in;
	enum xs_event ev;

	sbuf_init(&in);
	sbuf_adds(&in, "<stream:stream xmlns:stream='" NS_STREAMS "'");
	if (ns[0]) {
		sbuf_adds(&in, " xmlns='");
		xml_escape(&in, ns, strlen(ns));
		sbuf_addc(&in, '\'');
	}
	sbuf_addc(&in, '>');
	sbuf_add(&in, text->p, text->len);
	ev = xs_feed(xs, in.p, in.len);
	if (ev != XS_STREAM_OPEN)
		goto out;
	if (xs_next(xs) != XS_STANZA)
		goto out;
	doc = xs_take_stanza(xs);
	if (xs_next(xs) != XS_NEED_MORE) {
		st_doc_unref(doc);
		doc = NULL;
	}
out:
	if (!doc) {
		const char *why, *cond = xs_error(xs, &why);
		fprintf(stderr, "reparse failed: %s (%s)\n%.*s\n",
			cond ? cond : "no error", why ? why : "",
			(int)MIN(in.len, (size_t)4096), in.p);
	}
	xs_free(xs);
	sbuf_free(&in);
	return doc;
}

static void xf_check_stanza(struct xf_run *r, struct st_doc *doc)
{
	struct sbuf out, again;
	struct st_doc *copy;
	unsigned depth;

	FUZZ_CHECK(doc && doc->root && !doc->root->parent);
	depth = xf_check_tree(doc->root);
	FUZZ_CHECK(depth <= (r->lim.max_depth ? r->lim.max_depth : 64) + 1);
	sbuf_init(&out);
	sbuf_init(&again);
	st_serialize(doc->root, r->ns.p ? r->ns.p : "", &out);
	copy = xf_reparse(r->ns.p ? r->ns.p : "", &out);
	FUZZ_CHECK(copy);
	if (!fuzz_tree_equal(doc->root, copy->root))
		fprintf(stderr, "serialized as: %.*s\n",
			(int)MIN(out.len, (size_t)4096), out.p);
	FUZZ_CHECK(fuzz_tree_equal(doc->root, copy->root));
	st_serialize(copy->root, r->ns.p ? r->ns.p : "", &again);
	FUZZ_CHECK(again.len == out.len && memcmp(again.p, out.p, out.len) == 0);
	st_doc_unref(copy);
	copy = st_clone(doc->root);
	sbuf_reset(&again);
	st_serialize(copy->root, r->ns.p ? r->ns.p : "", &again);
	FUZZ_CHECK(again.len == out.len && memcmp(again.p, out.p, out.len) == 0);
	st_doc_unref(copy);
	sbuf_free(&out);
	sbuf_free(&again);
}

static void xf_open(struct xf_run *r)
{
	const struct st_node *h = xs_header(r->xs);

	FUZZ_CHECK(!r->opened && !r->closed);
	FUZZ_CHECK(h && h->name && strcmp(h->name, "stream") == 0 && h->ns);
	r->opened = true;
	sbuf_reset(&r->ns);
	sbuf_adds(&r->ns, h->ns);
}

static enum xf_action xf_stanza(struct xf_run *r)
{
	enum xf_action act = XF_GO_ON;
	struct st_doc *doc;

	FUZZ_CHECK(r->opened && !r->closed);
	r->stanzas++;
	if ((r->flags & XF_TAKE_SOME) && (r->stanzas & 1))
		return XF_GO_ON;	/* xs_next() frees it */
	doc = xs_take_stanza(r->xs);
	xf_check_stanza(r, doc);
	FUZZ_CHECK(xs_take_stanza(r->xs) == NULL);
	if (strcmp(doc->root->name, "auth") == 0)
		act = XF_RESTART;
	else if (strcmp(doc->root->name, "starttls") == 0)
		act = XF_STARTTLS;
	else if ((r->flags & XF_RESTART_MORE) && r->stanzas % 4 == 0)
		act = XF_RESTART;
	st_doc_unref(doc);
	return act;
}

static void xf_error(struct xf_run *r)
{
	const char *text, *cond = xs_error(r->xs, &text);
	bool known = false;

	FUZZ_CHECK(cond);
	for (size_t i = 0; i < ARRAY_SIZE(xf_conditions); i++)
		if (strcmp(cond, xf_conditions[i]) == 0)
			known = true;
	if (!known)
		fprintf(stderr, "stream error %s (%s)\n", cond,
			text ? text : "");
	FUZZ_CHECK(known);
	FUZZ_CHECK(xs_next(r->xs) == XS_ERROR);
}

/* A stream restart: what the old stream had not parsed goes to the new
 * one. The next event, or XS_NEED_MORE when nothing was left. */
static enum xs_event xf_restart(struct xf_run *r)
{
	const char *rest = NULL;
	size_t n;

	if (r->flags & XF_RESET_FIRST) {
		xs_reset(r->xs);
		n = xs_unparsed(r->xs, &rest);
	} else {
		n = xs_unparsed(r->xs, &rest);
		xs_reset(r->xs);
	}
	r->opened = r->closed = false;
	sbuf_reset(&r->ns);
	if (!n)
		return XS_NEED_MORE;
	FUZZ_CHECK(rest);
	return xs_feed(r->xs, rest, n);
}

/* Feeds one chunk and handles its events: false once the stream died. */
static bool xf_chunk(struct xf_run *r, const char *buf, size_t len)
{
	enum xs_event ev = xs_feed(r->xs, buf, len);

	while (ev != XS_NEED_MORE && ev != XS_ERROR) {
		enum xf_action act = XF_GO_ON;

		FUZZ_CHECK(!r->closed);
		switch (ev) {
		case XS_STREAM_OPEN:
			xf_open(r);
			break;
		case XS_STANZA:
			act = xf_stanza(r);
			break;
		case XS_STREAM_CLOSE:
			FUZZ_CHECK(r->opened);
			r->closed = true;
			if (r->flags & XF_RESTART_CLOSE)
				act = XF_RESTART;
			break;
		default:
			FUZZ_CHECK(!"unknown event");
		}
		if (act == XF_RESTART) {
			ev = xf_restart(r);
			continue;
		}
		if (act == XF_STARTTLS) {
			xs_reset(r->xs);
			r->opened = r->closed = false;
			return true;
		}
		ev = xs_next(r->xs);
	}
	if (ev == XS_ERROR) {
		xf_error(r);
		return false;
	}
	return true;
}

int FUZZ_ENTRY(const uint8_t *data, size_t size)
{
	struct fuzz_in in = { data, size };
	struct xf_run r;
	uint8_t lens[3];
	unsigned turn = 0;

	fuzz_quiet_log();
	memset(&r, 0, sizeof(r));
	r.flags = fuzz_byte(&in);
	for (int i = 0; i < 3; i++)
		lens[i] = fuzz_byte(&in);
	xf_limits(r.flags, &r.lim);
	r.xs = xs_new(&r.lim);
	sbuf_init(&r.ns);
	while (in.left) {
		size_t n = lens[turn++ % 3];
		char *buf;
		bool alive;

		if (n == 0 || n > in.left)
			n = in.left;
		buf = xmalloc(n);
		memcpy(buf, in.p, n);
		in.p += n;
		in.left -= n;
		alive = xf_chunk(&r, buf, n);
		free(buf);
		if (!alive)
			break;
	}
	xs_free(r.xs);
	sbuf_free(&r.ns);
	return 0;
}
