/*
 * xmlstream.c - an XMPP XML stream parsed with expat.
 *
 * Words used here:
 *   depth   open elements, the stream root included: 0 before the header,
 *           1 between stanzas, >= 2 inside a stanza.
 *   fed     stream bytes handed to expat since the stream (re)started.
 *   mark    stream offset where the unfinished top-level unit begins: the
 *           start tag of the stanza being parsed, or else the end of the
 *           last complete event (header, stanza, whitespace between
 *           stanzas). fed - mark is what expat may be holding for it.
 *   slice   the part of the caller's buffer handed to one XML_Parse call.
 *           A slice never lets fed - mark exceed max_stanza, so expat never
 *           buffers more than that for one stanza or one unfinished token,
 *           while a buffer holding many small stanzas still goes through.
 *
 * Events: a callback that completes an event stores it and suspends the
 * parser (XML_StopParser(p, XML_TRUE)); xs_feed()/xs_next() return it
 * once expat has returned XML_STATUS_SUSPENDED. Errors stop the parser for
 * good (XML_StopParser(p, XML_FALSE)); every callback first checks the
 * failed flag, because expat finishes the current token (for <a/> both
 * the start and the end callback run) before it looks at its status.
 *
 * Limits: a zero field of struct xs_limits takes the default below.
 *
 * Expat's memory, and the struct xs itself, come from a pool of the
 * parser's own (xmlstream_mem.c); every call into expat runs between
 * xs_mem_enter() and xs_mem_leave().
 */
#include "xmlstream.h"
#include "xmlstream_mem.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <strings.h>
#include <expat.h>

/* Expat 2.6.0 added reparse deferral (on by default), and distributions
 * backport it into older versions without changing the version number:
 * find the switch at run time. */
XMLPARSEAPI(XML_Bool) XML_SetReparseDeferralEnabled(XML_Parser parser,
						    XML_Bool enabled);
#pragma weak XML_SetReparseDeferralEnabled

#define XS_SEP '\xff'			/* never valid in UTF-8 */
#define XS_DEFAULT_STANZA (256 * 1024)
#define XS_DEFAULT_DEPTH 64
#define XS_DEFAULT_ATTRS 64
#define XS_SCRATCH_KEEP 4096		/* buffers kept between stanzas */

struct xs {
	XML_Parser p;
	struct xs_limits lim;
	enum xs_event ev;		/* set by a callback, pending */
	bool suspended;			/* expat holds an event for us */
	bool close_pending;		/* <stream:stream/>: close after open */
	bool closed;
	bool failed;
	const char *err;		/* condition, static */
	const char *err_text;		/* static or expat's */
	unsigned depth;
	unsigned ns_decls;		/* on the element being started */
	size_t progress;		/* stream offset of the last callback */
	size_t rescans;			/* bytes expat re-read since then */
	size_t fed;
	size_t mark;
	size_t event_end;		/* stream offset after the last event */
	const char *buf;		/* the last buffer given to xs_feed */
	size_t len;
	size_t off;			/* bytes of buf handed to expat */
	size_t buf_base;		/* stream offset of buf[0] */
	const char *rest;		/* saved by xs_reset for xs_unparsed */
	size_t rest_len;
	struct st_doc *header;		/* owned; root is the header */
	struct st_doc *doc;		/* the stanza being built, owned */
	struct st_node *cur;		/* its open element */
	struct st_doc *ready;		/* a finished stanza, owned */
	struct sbuf root_ns;		/* default xmlns declared on the root, */
	struct sbuf root_decls;		/* its prefixed declarations as XML and */
	struct sbuf root_qname;		/* its name as written: only while the
					 * header is parsed, see save_context() */
	struct sbuf text_carry;		/* unfinished text between calls */
	char *context;			/* owned, see xs_take_context() */
	bool priming;			/* the header is xs_prime()'s */
	struct pool_chunk *pool;	/* expat's memory and this struct's,
					 * see xmlstream_mem.h */
};

/* Character data not yet in the stanza's tree, and names being joined:
 * one buffer each for all streams. A call that ends in the middle of a
 * text node hands the buffer to its stream (text_carry) and gets it back
 * on the next call (see settle()), so a stream holds text only while
 * such a stanza is half received. */
static struct sbuf xs_text, xs_scratch;

static void fail(struct xs *xs, const char *cond, const char *text)
{
	if (xs->failed)
		return;
	xs->failed = true;
	xs->err = cond;
	xs->err_text = text;
	XML_StopParser(xs->p, XML_FALSE);
}

static size_t event_end_offset(struct xs *xs)
{
	XML_Index i = XML_GetCurrentByteIndex(xs->p);
	int n = XML_GetCurrentByteCount(xs->p);

	return (size_t)(i < 0 ? 0 : i) + (size_t)(n < 0 ? 0 : n);
}

/* Ends the current callback's event: remember it and suspend. */
static void emit(struct xs *xs, enum xs_event ev)
{
	xs->event_end = event_end_offset(xs);
	xs->mark = xs->event_end;
	if (xs->ev != XS_NEED_MORE) {
		/* only <stream:stream/>: the open is still pending */
		xs->close_pending = true;
		return;
	}
	xs->ev = ev;
	XML_StopParser(xs->p, XML_TRUE);
}

/* Building trees. */

static struct st_node *elem_new(struct xs *xs, struct st_doc *d,
				struct st_node *parent, const char *name)
{
	const char *sep = strchr(name, XS_SEP);
	const char *ns;
	size_t nslen;

	if (!sep)
		return st_elem_new(d, parent, name, "");
	nslen = (size_t)(sep - name);
	if (parent && strncmp(parent->ns, name, nslen) == 0 &&
	    parent->ns[nslen] == '\0') {
		ns = parent->ns;
	} else {
		sbuf_reset(&xs_scratch);
		sbuf_add(&xs_scratch, name, nslen);
		ns = xs_scratch.p;
	}
	return st_elem_new(d, parent, sep + 1, ns);
}

static const char *attr_name(struct xs *xs, struct st_doc *d,
			     const char *name)
{
	const char *sep = strchr(name, XS_SEP);
	size_t nslen;

	if (!sep)
		return st_strdup(d, name, strlen(name));
	nslen = (size_t)(sep - name);
	sbuf_reset(&xs_scratch);
	if (nslen == sizeof(NS_XML) - 1 && memcmp(name, NS_XML, nslen) == 0) {
		sbuf_add(&xs_scratch, "xml:", 4);
	} else {
		sbuf_add(&xs_scratch, name, nslen);
		sbuf_addc(&xs_scratch, '\1');
	}
	sbuf_adds(&xs_scratch, sep + 1);
	return st_strdup(d, xs_scratch.p, xs_scratch.len);
}

/* Attributes in document order (expat already refused duplicates). */
static void add_attrs(struct xs *xs, struct st_doc *d, struct st_node *n,
		      const XML_Char **atts)
{
	struct st_attr **tail = &n->attrs;

	for (; *atts; atts += 2) {
		struct st_attr *a = st_alloc(d, sizeof(*a));

		a->next = NULL;
		a->name = attr_name(xs, d, atts[0]);
		a->value = st_strdup(d, atts[1], strlen(atts[1]));
		*tail = a;
		tail = &a->next;
	}
}

/* Also ends the count of the element's namespace declarations, which
 * on_ns_start() holds to the same limit. */
static bool too_many_attrs(struct xs *xs, const XML_Char **atts)
{
	unsigned n = 0;

	xs->ns_decls = 0;
	while (atts[2 * n])
		n++;
	if (n <= xs->lim.max_attrs)
		return false;
	fail(xs, "policy-violation", "too many attributes");
	return true;
}

static void flush_text(struct xs *xs)
{
	if (!xs_text.len)
		return;
	st_text_add(xs->doc, xs->cur, xs_text.p, xs_text.len);
	sbuf_reset(&xs_text);
}

static void trim_buffers(void)
{
	if (xs_text.cap > XS_SCRATCH_KEEP)
		sbuf_free(&xs_text);
	if (xs_scratch.cap > XS_SCRATCH_KEEP)
		sbuf_free(&xs_scratch);
}

/* Expat re-reads an unfinished token from its start on every parse call
 * (reparse deferral is off: it could hold a complete stanza back). A
 * token trickled in tiny pieces would cost the square of its size, so the
 * bytes re-read since the last callback are counted; see feed_slices(). */
#define XS_RESCAN_FACTOR 16
#define XS_RESCAN_FLOOR (1024 * 1024)

static void made_progress(struct xs *xs)
{
	xs->progress = event_end_offset(xs);
	xs->rescans = 0;
}

/* Expat callbacks. */

/* The root's qualified name as the client wrote it ("stream:stream"):
 * a parser primed later must see the same name, or the client's closing
 * tag would not match it. Expat's input context holds the start tag
 * while its callback runs; on_ns_start() left a fallback (the prefix
 * declared for the streams namespace) in root_qname. */
static void save_root_qname(struct xs *xs)
{
	int off = 0, size = 0;
	const char *ctx = XML_GetInputContext(xs->p, &off, &size);
	int end;

	if (!ctx || off < 0 || off >= size || ctx[off] != '<')
		return;
	for (end = off + 1; end < size; end++) {
		char ch = ctx[end];

		if (ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n' ||
		    ch == '/' || ch == '>')
			break;
	}
	if (end == size)
		return;
	sbuf_reset(&xs->root_qname);
	sbuf_add(&xs->root_qname, ctx + off + 1, (size_t)(end - off - 1));
}

/* The header that primes a new parser to this point of the stream: the
 * same root name, content namespace and prefixes (see xs_prime()). Built
 * once, when the header arrives; the pieces are dropped at once. */
static void save_context(struct xs *xs)
{
	struct sbuf ctx;

	sbuf_init(&ctx);
	sbuf_addc(&ctx, '<');
	if (xs->root_qname.len)
		sbuf_add(&ctx, xs->root_qname.p, xs->root_qname.len);
	else
		sbuf_adds(&ctx, "stream");
	sbuf_adds(&ctx, " xmlns='");
	if (xs->root_ns.p)
		xml_escape(&ctx, xs->root_ns.p, xs->root_ns.len);
	sbuf_addc(&ctx, '\'');
	if (xs->root_decls.len)
		sbuf_add(&ctx, xs->root_decls.p, xs->root_decls.len);
	sbuf_addc(&ctx, '>');
	free(xs->context);
	xs->context = ctx.p;
}

static void header_start(struct xs *xs, const XML_Char *name,
			 const XML_Char **atts)
{
	struct st_node *root;

	if (strcmp(name, NS_STREAMS "\xff" "stream") != 0) {
		fail(xs, "invalid-namespace",
		     "the root must be {" NS_STREAMS "}stream");
		return;
	}
	if (too_many_attrs(xs, atts))
		return;
	save_root_qname(xs);
	xs->header = st_doc_new();
	root = st_elem_new(xs->header, NULL, "stream",
			   xs->root_ns.p ? xs->root_ns.p : "");
	add_attrs(xs, xs->header, root, atts);
	if (!xs->priming)
		save_context(xs);
	sbuf_free(&xs->root_ns);
	sbuf_free(&xs->root_decls);
	sbuf_free(&xs->root_qname);
	xs->depth = 1;
	emit(xs, XS_STREAM_OPEN);
}

static void on_start(void *ud, const XML_Char *name, const XML_Char **atts)
{
	struct xs *xs = ud;

	if (xs->failed)
		return;
	made_progress(xs);
	if (xs->depth == 0) {
		header_start(xs, name, atts);
		return;
	}
	if (xs->depth == 1) {
		XML_Index i = XML_GetCurrentByteIndex(xs->p);

		/* A new stream only ever starts on a new parser (xs_reset):
		 * here the streams schema allows no such child. */
		if (strcmp(name, NS_STREAMS "\xff" "stream") == 0) {
			fail(xs, "invalid-xml",
			     "a stream header inside an open stream");
			return;
		}

		xs->mark = (size_t)(i < 0 ? 0 : i);
		xs->doc = st_doc_new();
		xs->cur = NULL;
	} else {
		flush_text(xs);
		if (xs->depth > xs->lim.max_depth) {
			fail(xs, "policy-violation", "stanza too deep");
			return;
		}
	}
	if (too_many_attrs(xs, atts))
		return;
	xs->cur = elem_new(xs, xs->doc, xs->cur, name);
	add_attrs(xs, xs->doc, xs->cur, atts);
	xs->depth++;
}

static void on_end(void *ud, const XML_Char *name)
{
	struct xs *xs = ud;

	if (xs->failed)
		return;
	made_progress(xs);
	if (xs->depth == 1) {
		xs->depth = 0;
		xs->closed = true;
		emit(xs, XS_STREAM_CLOSE);
		return;
	}
	flush_text(xs);
	xs->cur = xs->cur->parent;
	if (--xs->depth > 1)
		return;
	xs->doc->cursor = xs->doc->root;
	xs->ready = xs->doc;
	xs->doc = NULL;
	trim_buffers();
	emit(xs, XS_STANZA);
}

static bool is_xml_space(char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\r' || ch == '\n';
}

static bool all_space(const XML_Char *s, int len)
{
	for (int i = 0; i < len; i++)
		if (!is_xml_space(s[i]))
			return false;
	return true;
}

static void on_text(void *ud, const XML_Char *s, int len)
{
	struct xs *xs = ud;

	if (xs->failed)
		return;
	made_progress(xs);
	if (xs->depth >= 2) {
		sbuf_add(&xs_text, s, (size_t)len);
		return;
	}
	if (!all_space(s, len)) {
		fail(xs, "bad-format", "text between stanzas");
		return;
	}
	/* a whitespace keepalive: nothing is pending for it any more */
	xs->mark = event_end_offset(xs);
}

/* What no other handler takes. Before the stream header that is the
 * whitespace between the XML declaration and the header: like a
 * keepalive, nothing stays pending for it. */
static void on_default(void *ud, const XML_Char *s, int len)
{
	struct xs *xs = ud;

	if (xs->failed || xs->depth != 0 || !all_space(s, len))
		return;
	made_progress(xs);
	xs->mark = event_end_offset(xs);
}

static void on_ns_start(void *ud, const XML_Char *prefix, const XML_Char *uri)
{
	struct xs *xs = ud;

	if (xs->failed)
		return;
	/* expat keeps a binding for each until the element ends */
	if (++xs->ns_decls > xs->lim.max_attrs) {
		fail(xs, "policy-violation", "too many namespace declarations");
		return;
	}
	if (xs->depth != 0)
		return;
	if (prefix) {
		if (strcmp(uri ? uri : "", NS_STREAMS) == 0) {
			sbuf_reset(&xs->root_qname);
			sbuf_adds(&xs->root_qname, prefix);
			sbuf_adds(&xs->root_qname, ":stream");
		}
		sbuf_adds(&xs->root_decls, " xmlns:");
		sbuf_adds(&xs->root_decls, prefix);
		sbuf_adds(&xs->root_decls, "='");
		xml_escape(&xs->root_decls, uri ? uri : "", uri ? strlen(uri) : 0);
		sbuf_addc(&xs->root_decls, '\'');
		return;
	}
	sbuf_reset(&xs->root_ns);
	sbuf_adds(&xs->root_ns, uri ? uri : "");
}

static void on_xml_decl(void *ud, const XML_Char *version,
			const XML_Char *encoding, int standalone)
{
	struct xs *xs = ud;

	if (encoding && strcasecmp(encoding, "UTF-8") != 0)
		fail(xs, "unsupported-encoding", "only UTF-8 is supported");
}

/* Restricted XML (RFC 6120 11.1): each of these ends the stream. */

static void on_doctype(void *ud, const XML_Char *name, const XML_Char *sysid,
		       const XML_Char *pubid, int has_internal_subset)
{
	fail(ud, "restricted-xml", "DOCTYPE is not allowed");
}

static void on_entity_decl(void *ud, const XML_Char *name, int is_pe,
			   const XML_Char *value, int value_len,
			   const XML_Char *base, const XML_Char *sysid,
			   const XML_Char *pubid, const XML_Char *notation)
{
	fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static void on_unparsed_entity(void *ud, const XML_Char *name,
			       const XML_Char *base, const XML_Char *sysid,
			       const XML_Char *pubid, const XML_Char *notation)
{
	fail(ud, "restricted-xml", "entity declarations are not allowed");
}

static void on_notation(void *ud, const XML_Char *name, const XML_Char *base,
			const XML_Char *sysid, const XML_Char *pubid)
{
	fail(ud, "restricted-xml", "notation declarations are not allowed");
}

static int on_external_entity(XML_Parser p, const XML_Char *context,
			      const XML_Char *base, const XML_Char *sysid,
			      const XML_Char *pubid)
{
	fail(XML_GetUserData(p), "restricted-xml",
	     "external entities are not allowed");
	return XML_STATUS_ERROR;
}

static void on_skipped_entity(void *ud, const XML_Char *name, int is_pe)
{
	fail(ud, "restricted-xml", "undefined entity");
}

static void on_pi(void *ud, const XML_Char *target, const XML_Char *data)
{
	fail(ud, "restricted-xml", "processing instructions are not allowed");
}

static void on_comment(void *ud, const XML_Char *data)
{
	fail(ud, "restricted-xml", "comments are not allowed");
}

static void parser_setup(struct xs *xs)
{
	XML_Parser p = xs->p;

	XML_SetUserData(p, xs);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	XML_SetStartNamespaceDeclHandler(p, on_ns_start);
	XML_SetXmlDeclHandler(p, on_xml_decl);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity_decl);
	XML_SetUnparsedEntityDeclHandler(p, on_unparsed_entity);
	XML_SetNotationDeclHandler(p, on_notation);
	XML_SetExternalEntityRefHandler(p, on_external_entity);
	XML_SetSkippedEntityHandler(p, on_skipped_entity);
	XML_SetProcessingInstructionHandler(p, on_pi);
	XML_SetCommentHandler(p, on_comment);
	/* the Expand variant leaves internal entities to expat */
	XML_SetDefaultHandlerExpand(p, on_default);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
	/* Deferring the reparse of a partial token holds back a stanza whose
	 * last bytes arrived until more data comes; our slices bound the
	 * rescans instead. */
	if (XML_SetReparseDeferralEnabled)
		XML_SetReparseDeferralEnabled(p, XML_FALSE);
	/* The salt of expat's hash tables (against collision floods) from
	 * our random reserve: expat's own costs a getrandom() per parser
	 * and per stream restart. 0 would mean "pick one yourself". */
	unsigned long salt = 0;
	while (!salt)
		random_bytes(&salt, sizeof(salt));
	XML_SetHashSalt(p, salt);
}

/* Public API. */

struct xs *xs_new(const struct xs_limits *limits)
{
	struct pool_chunk *pool;
	struct xs *xs = xs_mem_new(sizeof(*xs), &pool);

	xs->pool = pool;
	if (limits)
		xs->lim = *limits;
	if (!xs->lim.max_stanza)
		xs->lim.max_stanza = XS_DEFAULT_STANZA;
	if (!xs->lim.max_depth)
		xs->lim.max_depth = XS_DEFAULT_DEPTH;
	if (!xs->lim.max_attrs)
		xs->lim.max_attrs = XS_DEFAULT_ATTRS;
	xs_mem_enter(&xs->pool);
	xs->p = xs_mem_parser_create(XS_SEP);
	xs_mem_leave();
	if (!xs->p) {
		fputs("starling: out of memory (expat)\n", stderr);
		abort();
	}
	sbuf_init(&xs->root_ns);
	sbuf_init(&xs->root_decls);
	sbuf_init(&xs->root_qname);
	parser_setup(xs);
	return xs;
}

static void drop_docs(struct xs *xs)
{
	st_doc_unref(xs->header);
	st_doc_unref(xs->doc);
	st_doc_unref(xs->ready);
	xs->header = xs->doc = xs->ready = NULL;
	xs->cur = NULL;
}

void xs_free(struct xs *xs)
{
	if (!xs)
		return;
	drop_docs(xs);
	xs_mem_enter(&xs->pool);
	XML_ParserFree(xs->p);
	xs_mem_leave();
	sbuf_free(&xs->root_ns);
	sbuf_free(&xs->root_decls);
	sbuf_free(&xs->root_qname);
	sbuf_free(&xs->text_carry);
	free(xs->context);
	xs_mem_free(xs, xs->pool);
}

/* The part of buf after the last event (nothing once all is parsed). */
static size_t unparsed_now(const struct xs *xs, const char **rest)
{
	size_t used;

	*rest = NULL;
	if (!xs->buf || xs->failed || !(xs->suspended || xs->closed))
		return 0;
	used = xs->event_end > xs->buf_base ? xs->event_end - xs->buf_base : 0;
	if (used > xs->len)
		used = xs->len;
	*rest = xs->buf + used;
	return xs->len - used;
}

void xs_reset(struct xs *xs)
{
	xs->rest_len = unparsed_now(xs, &xs->rest);
	xs_mem_enter(&xs->pool);
	XML_ParserReset(xs->p, "UTF-8");
	xs_mem_leave();
	parser_setup(xs);
	drop_docs(xs);
	xs->ev = XS_NEED_MORE;
	xs->suspended = xs->close_pending = xs->closed = xs->failed = false;
	xs->err = xs->err_text = NULL;
	xs->depth = xs->ns_decls = 0;
	xs->fed = xs->mark = xs->event_end = 0;
	xs->progress = xs->rescans = 0;
	xs->buf = NULL;
	xs->len = xs->off = xs->buf_base = 0;
	sbuf_reset(&xs_text);
	sbuf_free(&xs->text_carry);
	sbuf_free(&xs->root_ns);
	sbuf_free(&xs->root_decls);
	sbuf_free(&xs->root_qname);
	trim_buffers();
}

bool xs_quiet(const struct xs *xs)
{
	return xs->depth == 1 && !xs->suspended && !xs->failed && !xs->closed &&
	       !xs->doc && !xs->ready && xs->fed == xs->mark;
}

char *xs_take_context(struct xs *xs)
{
	char *ctx = xs->context;

	xs->context = NULL;
	return ctx;
}

int xs_prime(struct xs *xs, char *context)
{
	enum xs_event ev;
	int ret = -EINVAL;

	xs->priming = true;
	ev = xs_feed(xs, context, strlen(context));
	xs->priming = false;
	if (ev != XS_STREAM_OPEN || xs_next(xs) != XS_NEED_MORE)
		goto out;
	xs->buf = NULL;		/* nothing may point into context now */
	xs->len = xs->off = 0;
	free(xs->context);
	xs->context = context;
	context = NULL;
	ret = 0;
out:
	free(context);
	return ret;
}

/* Parked parsers (xmlstream.h). A few contexts cover nearly every
 * client. PARK_MAX of them wait (about 1 MiB), the one parked last
 * handed out first, so that a crowd of streams that went quiet together
 * (a busy server whose clients wait a few seconds for their replies)
 * comes back without a new parser each. A parser that grew past
 * PARK_POOL_MAX (an attacker's element names stay interned in expat's
 * tables) is freed, not shared. */
#define PARK_MAX 64
#define PARK_POOL_MAX (64 * 1024)

static struct xs *parked[PARK_MAX];
static size_t n_parked;

static bool same_limits(const struct xs_limits *a, const struct xs_limits *b)
{
	return a->max_stanza == b->max_stanza && a->max_depth == b->max_depth &&
	       a->max_attrs == b->max_attrs;
}

static struct xs *park_find(const char *context, const struct xs_limits *lim,
			    size_t *at)
{
	for (size_t i = n_parked; i-- > 0;) {
		if (strcmp(parked[i]->context, context) == 0 &&
		    same_limits(&parked[i]->lim, lim)) {
			*at = i;
			return parked[i];
		}
	}
	return NULL;
}

static void park_remove(size_t at)
{
	memmove(&parked[at], &parked[at + 1], (n_parked - at - 1) * sizeof(*parked));
	n_parked--;
}

void xs_park(struct xs *xs, const char *context)
{
	if (!xs)
		return;
	/* a parser that still has its context was primed by it, or read
	 * it: any other would be a stream that is somewhere else */
	if (!context || !xs_quiet(xs) || xs->text_carry.p ||
	    (xs->context && strcmp(xs->context, context) != 0) ||
	    xs_mem_pool_size(xs->pool) > PARK_POOL_MAX) {
		xs_free(xs);
		return;
	}
	if (!xs->context)
		xs->context = xstrdup(context);
	if (n_parked == PARK_MAX) {	/* the one parked longest goes */
		xs_free(parked[0]);
		park_remove(0);
	}
	xs->buf = NULL;
	xs->len = xs->off = 0;
	xs->rest = NULL;
	xs->rest_len = 0;
	parked[n_parked++] = xs;
}

struct xs *xs_unpark(const char *context, const struct xs_limits *limits)
{
	struct xs_limits lim = *limits;
	struct xs *xs;
	size_t at;

	if (!lim.max_stanza)
		lim.max_stanza = XS_DEFAULT_STANZA;
	if (!lim.max_depth)
		lim.max_depth = XS_DEFAULT_DEPTH;
	if (!lim.max_attrs)
		lim.max_attrs = XS_DEFAULT_ATTRS;
	if (!context || !(xs = park_find(context, &lim, &at)))
		return NULL;
	park_remove(at);
	/* the new stream's own counts: the slow-token guard starts afresh */
	xs->progress = xs->fed;
	xs->rescans = 0;
	return xs;
}

void xs_trim(void)
{
	while (n_parked)
		xs_free(parked[--n_parked]);
	xs_mem_trim();
}

/* What a return from XML_Parse/XML_ResumeParser means for us. */
static enum xs_event parse_result(struct xs *xs, enum XML_Status st)
{
	enum XML_Error code;

	if (xs->failed)
		return XS_ERROR;
	if (st == XML_STATUS_SUSPENDED) {
		if (xs->ev == XS_NEED_MORE) {
			fail(xs, "internal-server-error", "parser suspended");
			return XS_ERROR;
		}
		xs->suspended = true;
		return xs->ev;
	}
	if (st == XML_STATUS_OK)
		return XS_NEED_MORE;
	code = XML_GetErrorCode(xs->p);
	switch (code) {
	case XML_ERROR_UNDEFINED_ENTITY:
	case XML_ERROR_RECURSIVE_ENTITY_REF:
	case XML_ERROR_BINARY_ENTITY_REF:
	case XML_ERROR_ATTRIBUTE_EXTERNAL_ENTITY_REF:
	case XML_ERROR_EXTERNAL_ENTITY_HANDLING:
	case XML_ERROR_NOT_STANDALONE:
		fail(xs, "restricted-xml", XML_ErrorString(code));
		break;
	case XML_ERROR_UNKNOWN_ENCODING:
	case XML_ERROR_INCORRECT_ENCODING:
		fail(xs, "unsupported-encoding", XML_ErrorString(code));
		break;
	default:
		fail(xs, "not-well-formed", XML_ErrorString(code));
		break;
	}
	return XS_ERROR;
}

/* Hands the next slice of buf to expat until an event or the end. */
static enum xs_event feed_slices(struct xs *xs)
{
	enum xs_event ev;
	size_t left, pending, n;

	while ((left = xs->len - xs->off) > 0) {
		pending = xs->fed - xs->mark;
		if (pending >= xs->lim.max_stanza) {
			fail(xs, "policy-violation", "stanza too large");
			return XS_ERROR;
		}
		n = MIN(left, xs->lim.max_stanza - pending);
		n = MIN(n, (size_t)INT_MAX / 2);
		if (xs->fed > xs->progress) {
			xs->rescans += xs->fed - xs->progress;
			if (xs->rescans > MAX(XS_RESCAN_FACTOR * xs->lim.max_stanza,
					      (size_t)XS_RESCAN_FLOOR)) {
				fail(xs, "policy-violation",
				     "an unfinished element arrives too slowly");
				return XS_ERROR;
			}
		}
		xs->ev = XS_NEED_MORE;
		xs->fed += n;
		xs->off += n;
		xs_mem_enter(&xs->pool);
		enum XML_Status st = XML_Parse(xs->p, xs->buf + xs->off - n,
					       (int)n, XML_FALSE);
		xs_mem_leave();
		ev = parse_result(xs, st);
		if (ev != XS_NEED_MORE)
			return ev;
	}
	return XS_NEED_MORE;
}

/* Before expat runs for xs: its unfinished text goes back into the
 * shared buffer (empty between calls), and the header it reported has
 * been read. */
static void unsettle(struct xs *xs)
{
	if (xs->text_carry.p) {
		sbuf_free(&xs_text);
		xs_text = xs->text_carry;
		sbuf_init(&xs->text_carry);
	}
	st_doc_unref(xs->header);
	xs->header = NULL;
}

/* After: text of a text node that continues in the next bytes stays with
 * the stream. */
static enum xs_event settle(struct xs *xs, enum xs_event ev)
{
	if (ev == XS_ERROR) {
		sbuf_reset(&xs_text);
	} else if (xs_text.len) {
		xs->text_carry = xs_text;
		sbuf_init(&xs_text);
	}
	return ev;
}

/* Whitespace before a stream's first byte is not the document's: a
 * client sends a newline after the stanza that ends the old stream
 * (SASL success, STARTTLS) and then the new header, whose XML
 * declaration expat accepts only at the very start. A parser that has
 * had nothing yet never sees it; nothing of it is kept, so a peer that
 * sends only whitespace here costs no memory. */
static void skip_leading_space(struct xs *xs, const char **buf, size_t *len)
{
	if (xs->fed != 0 || xs->depth != 0 || xs->closed)
		return;
	while (*len && is_xml_space(**buf)) {
		(*buf)++;
		(*len)--;
	}
}

/* RFC 6120 11.6: UTF-8 only. Expat detects UTF-16 from a byte-order
 * mark or from NUL bytes among a document's first bytes even when told
 * the encoding is UTF-8, so those bytes are looked at before expat sees
 * them. A UTF-8 stream starts with '<' (leading whitespace is skipped),
 * and neither a NUL nor 0xFE/0xFF is ever part of UTF-8 XML: any of them
 * among a stream's first four bytes is UTF-16 or UTF-32, with or without
 * a byte-order mark. */
#define XS_SNIFF 4

static bool other_encoding(const struct xs *xs, const char *buf, size_t len)
{
	for (size_t i = 0; i < len && xs->fed + i < XS_SNIFF; i++) {
		unsigned char ch = (unsigned char)buf[i];

		if (ch == 0x00 || ch == 0xFE || ch == 0xFF)
			return true;
	}
	return false;
}

enum xs_event xs_feed(struct xs *xs, const char *buf, size_t len)
{
	if (xs->failed)
		return XS_ERROR;
	unsettle(xs);
	st_doc_unref(xs->ready);
	xs->ready = NULL;
	xs->rest = NULL;
	xs->rest_len = 0;
	if (xs->suspended && !xs->closed) {
		fail(xs, "internal-server-error", "fed before the events were read");
		return settle(xs, XS_ERROR);
	}
	skip_leading_space(xs, &buf, &len);
	if (xs->fed < XS_SNIFF && !xs->closed && other_encoding(xs, buf, len)) {
		fail(xs, "unsupported-encoding", "only UTF-8 is supported");
		return settle(xs, XS_ERROR);
	}
	xs->buf = buf;
	xs->len = len;
	xs->off = 0;
	xs->buf_base = xs->fed;
	if (xs->closed)
		return settle(xs, XS_NEED_MORE);	/* nothing may follow the close */
	return settle(xs, feed_slices(xs));
}

enum xs_event xs_next(struct xs *xs)
{
	enum xs_event ev;

	if (xs->failed)
		return XS_ERROR;
	unsettle(xs);
	st_doc_unref(xs->ready);
	xs->ready = NULL;
	if (xs->close_pending) {
		xs->close_pending = false;
		return settle(xs, XS_STREAM_CLOSE);
	}
	if (!xs->suspended || xs->closed)
		return settle(xs, XS_NEED_MORE);
	xs->suspended = false;
	xs->ev = XS_NEED_MORE;
	xs_mem_enter(&xs->pool);
	enum XML_Status st = XML_ResumeParser(xs->p);
	xs_mem_leave();
	ev = parse_result(xs, st);
	if (ev != XS_NEED_MORE)
		return settle(xs, ev);
	return settle(xs, feed_slices(xs));
}

const struct st_node *xs_header(struct xs *xs)
{
	return xs->header ? xs->header->root : NULL;
}

struct st_doc *xs_take_stanza(struct xs *xs)
{
	struct st_doc *d = xs->ready;

	xs->ready = NULL;
	return d;
}

const char *xs_error(const struct xs *xs, const char **text)
{
	if (text)
		*text = xs->err_text;
	return xs->err;
}

size_t xs_unparsed(const struct xs *xs, const char **rest)
{
	if (xs->rest) {
		*rest = xs->rest;
		return xs->rest_len;
	}
	return unparsed_now(xs, rest);
}
