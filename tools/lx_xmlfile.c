/*
 * lx_xmlfile.c - the "starling.xmlfile" Lua module (lx_admin.h): XML
 * files read element by element and stanzas written for files, for
 * starlingctl's XEP-0227 import and export.
 *
 *   read(path, handler)        true | nil, err
 *        handler(event, depth, ...) gets, in document order:
 *          "open", depth, name, ns, attrs   an element starts; returning
 *                                           true captures it whole
 *          "element", depth, stanza         a captured element, complete
 *          "close", depth, name, ns         an element not captured ends
 *        depth 1 is the root. Text outside captured elements is ignored.
 *        XInclude (XEP-0227 section 5): an <include
 *        xmlns='http://www.w3.org/2001/XInclude' href='...'/> is replaced
 *        by the root element of the file it names (relative to the
 *        including file), at the include's depth, inside captured
 *        elements too; parse and xpointer attributes are refused.
 *        DOCTYPEs and entity declarations are refused.
 *   serialize(stanza[, parent_ns])   the XML text of stanza, with an xmlns
 *        wherever its namespace differs from the enclosing one
 *        (parent_ns, default "jabber:client")
 *   escape(s)                  s escaped for text and attribute values
 *
 * Lua is never called from inside expat: every event suspends the parser
 * (XML_StopParser), the handler runs after XML_Parse returned, and the
 * parse resumes (XML_ResumeParser).
 */
#include "lx_admin.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <expat.h>

XMLPARSEAPI(XML_Bool) XML_SetReparseDeferralEnabled(XML_Parser parser,
						    XML_Bool enabled);
#pragma weak XML_SetReparseDeferralEnabled

#define SEP '\xff'			/* never valid in UTF-8 */
#define NS_XINCLUDE "http://www.w3.org/2001/XInclude"
#define MAX_NEST 16			/* includes within includes */
#define MAX_DEPTH 1024
#define CHUNK 65536

enum ev { EV_OPEN, EV_CLOSE, EV_ELEMENT, EV_INCLUDE };

/* An event waiting for the parse to stop: expat may still call back
 * after a suspension (the end of an empty element comes right after its
 * start), so they queue. */
struct event {
	enum ev ev;
	int depth;			/* in this file */
	struct st_doc *doc;		/* the element (its name, attributes) */
};

#define MAX_EVENTS 8

struct reader {
	lua_State *L;
	int handler;			/* stack index; 0 while splicing */
	XML_Parser p;
	const char *path;
	int nest;
	int base;			/* depth of this file's root - 1 */
	int depth;			/* element depth in this file */
	int skip;			/* inside an include element */
	struct event q[MAX_EVENTS];	/* waiting for dispatch */
	int nq;
	struct st_doc *cap;		/* capturing into this doc */
	struct st_node *cur;		/* the capture's current element */
	int cap_depth;			/* depth of the captured element */
	char err[512];
};

static int read_file(struct reader *r);

static void fail(struct reader *r, const char *fmt, const char *arg)
{
	char msg[400];

	if (r->err[0])
		return;
	snprintf(msg, sizeof(msg), fmt, arg);
	snprintf(r->err, sizeof(r->err), "%s:%lu: %s", r->path,
		 r->p ? (unsigned long)XML_GetCurrentLineNumber(r->p) : 0UL, msg);
	if (r->p)
		XML_StopParser(r->p, XML_FALSE);
}

/* ---- building elements ---- */

static struct st_node *elem_new(struct st_doc *d, struct st_node *parent,
				const char *name)
{
	const char *sep = strchr(name, SEP);
	char *ns;
	struct st_node *n;

	if (!sep)
		return st_elem_new(d, parent, name, "");
	ns = xstrndup(name, (size_t)(sep - name));
	n = st_elem_new(d, parent, sep + 1, ns);
	free(ns);
	return n;
}

static void add_attrs(struct st_doc *d, struct st_node *n, const char **atts)
{
	struct sbuf name;

	sbuf_init(&name);
	for (; *atts; atts += 2) {
		const char *sep = strchr(atts[0], SEP);
		sbuf_reset(&name);
		if (!sep) {
			sbuf_adds(&name, atts[0]);
		} else if ((size_t)(sep - atts[0]) == sizeof(NS_XML) - 1 &&
			   memcmp(atts[0], NS_XML, sizeof(NS_XML) - 1) == 0) {
			sbuf_adds(&name, "xml:");
			sbuf_adds(&name, sep + 1);
		} else {
			sbuf_add(&name, atts[0], (size_t)(sep - atts[0]));
			sbuf_addc(&name, '\1');
			sbuf_adds(&name, sep + 1);
		}
		st_attr_set(d, n, name.p, atts[1]);
	}
	sbuf_free(&name);
}

static bool is_include(const struct st_node *n)
{
	return strcmp(n->name, "include") == 0 && strcmp(n->ns, NS_XINCLUDE) == 0;
}

/* ---- expat callbacks: record, suspend ---- */

static void queue(struct reader *r, enum ev ev, struct st_doc *doc)
{
	if (r->nq == MAX_EVENTS) {
		st_doc_unref(doc);
		fail(r, "%s", "too many events at once");
		return;
	}
	r->q[r->nq++] = (struct event){ ev, r->depth, doc };
	XML_StopParser(r->p, XML_TRUE);
}

static void on_start(void *ud, const char *name, const char **atts)
{
	struct reader *r = ud;
	struct st_doc *d;
	struct st_node *n;

	if (r->skip) {
		r->skip++;
		return;
	}
	if (++r->depth + r->base > MAX_DEPTH) {
		fail(r, "elements nested deeper than %s", "1024");
		return;
	}
	if (r->cap) {
		n = elem_new(r->cap, r->cur, name);
		add_attrs(r->cap, n, atts);
		if (!is_include(n)) {
			r->cur = n;
			return;
		}
		st_unlink(n);
	}
	d = st_doc_new();
	n = elem_new(d, NULL, name);
	add_attrs(d, n, atts);
	if (is_include(n))
		r->skip = 1;		/* its content (a fallback) is ignored */
	queue(r, r->skip ? EV_INCLUDE : EV_OPEN, d);
}

static void on_end(void *ud, const char *name)
{
	struct reader *r = ud;
	struct st_doc *d;

	if (r->skip) {
		if (--r->skip == 0)
			r->depth--;
		return;
	}
	if (r->cap) {
		if (r->depth == r->cap_depth)
			queue(r, EV_ELEMENT, NULL);
		else
			r->cur = r->cur->parent;
		r->depth--;
		return;
	}
	d = st_doc_new();
	elem_new(d, NULL, name);
	queue(r, EV_CLOSE, d);
	r->depth--;
}

static void on_text(void *ud, const char *s, int len)
{
	struct reader *r = ud;

	if (r->cap && !r->skip && len > 0)
		st_text_add(r->cap, r->cur, s, (size_t)len);
}

static void on_doctype(void *ud, const char *name, const char *sysid,
		       const char *pubid, int has_internal)
{
	fail(ud, "a DOCTYPE is not allowed (%s)", name);
}

static void on_entity(void *ud, const char *name, int is_param,
		      const char *value, int len, const char *base,
		      const char *sysid, const char *pubid, const char *notation)
{
	fail(ud, "entity declarations are not allowed (%s)", name);
}

/* ---- events into Lua ---- */

static void push_attrs(lua_State *L, const struct st_node *n)
{
	lua_newtable(L);
	for (const struct st_attr *a = n->attrs; a; a = a->next) {
		lua_pushstring(L, a->value);
		lua_setfield(L, -2, a->name);
	}
}

/* Calls the handler with what is on the stack above it: 0, or -1 with
 * r->err set. *truthy gets its result. */
static int call_handler(struct reader *r, int nargs, bool *truthy)
{
	lua_State *L = r->L;
	int rc;

	lua_pushvalue(L, r->handler);
	lua_insert(L, -nargs - 1);
	rc = lx_pcall(L, nargs, 1, "xmlfile handler");
	if (rc) {
		fail(r, "%s", "the handler failed (see the log)");
		return -1;
	}
	if (truthy)
		*truthy = lua_toboolean(L, -1);
	lua_pop(L, 1);
	return 0;
}

/* The path href names, relative to the including file. */
static char *resolve(const struct reader *r, const char *href)
{
	const char *slash = strrchr(r->path, '/');
	struct sbuf b;

	if (strncmp(href, "file://", 7) == 0)
		href += 7;
	if (href[0] == '/' || !slash)
		return xstrdup(href);
	sbuf_init(&b);
	sbuf_add(&b, r->path, (size_t)(slash - r->path) + 1);
	sbuf_adds(&b, href);
	return b.p;
}

static int do_include(struct reader *r, const struct event *e)
{
	const struct st_node *inc = e->doc->root;
	const char *href = st_attr_get(inc, "href");
	struct reader sub = { .L = r->L, .handler = r->handler };
	char *path;
	int rc;

	if (!href || !*href || st_attr_get(inc, "parse") ||
	    st_attr_get(inc, "xpointer") || strstr(href, "://")) {
		fail(r, "%s", "an XInclude needs a file href and no parse or "
			      "xpointer attribute");
		return -1;
	}
	if (r->nest >= MAX_NEST) {
		fail(r, "includes nested deeper than %s", "16");
		return -1;
	}
	path = resolve(r, href);
	sub.path = path;
	sub.nest = r->nest + 1;
	sub.base = r->base + e->depth - 1;
	if (r->cap) {		/* splice: the root goes into the capture */
		sub.handler = 0;
		sub.cap = r->cap;
		sub.cur = r->cur;
		sub.cap_depth = -1;
	}
	rc = read_file(&sub);
	if (rc)
		snprintf(r->err, sizeof(r->err), "%s", sub.err);
	free(path);
	return rc;
}

/* The captured element is complete: hand it over. */
static int deliver(struct reader *r, int depth)
{
	lua_State *L = r->L;

	lua_pushliteral(L, "element");
	lua_pushinteger(L, r->base + depth);
	lx_stanza_push(L, r->cap, r->cap->root);
	st_doc_unref(r->cap);
	r->cap = NULL;
	r->cur = NULL;
	return call_handler(r, 3, NULL);
}

static int dispatch_one(struct reader *r, struct event *e)
{
	lua_State *L = r->L;
	const struct st_node *n = e->doc ? e->doc->root : NULL;
	bool capture = false;
	int rc = 0;

	switch (e->ev) {
	case EV_OPEN:
		lua_pushliteral(L, "open");
		lua_pushinteger(L, r->base + e->depth);
		lua_pushstring(L, n->name);
		lua_pushstring(L, n->ns);
		push_attrs(L, n);
		rc = call_handler(r, 5, &capture);
		if (rc == 0 && capture) {
			r->cap = e->doc;
			e->doc = NULL;
			r->cur = r->cap->root;
			r->cap_depth = e->depth;
		}
		break;
	case EV_CLOSE:
		if (r->cap && e->depth == r->cap_depth) {
			rc = deliver(r, e->depth);	/* an empty element */
			break;
		}
		lua_pushliteral(L, "close");
		lua_pushinteger(L, r->base + e->depth);
		lua_pushstring(L, n->name);
		lua_pushstring(L, n->ns);
		rc = call_handler(r, 4, NULL);
		break;
	case EV_ELEMENT:
		rc = deliver(r, e->depth);
		break;
	case EV_INCLUDE:
		rc = do_include(r, e);
		break;
	}
	return rc;
}

/* Dispatches the queued events in order; frees them all. */
static int dispatch(struct reader *r)
{
	int rc = 0;

	for (int i = 0; i < r->nq; i++) {
		if (rc == 0)
			rc = dispatch_one(r, &r->q[i]);
		if (r->q[i].doc)
			st_doc_unref(r->q[i].doc);
	}
	r->nq = 0;
	return rc;
}

/* ---- the parse loop ---- */

/* Parses buf (final: the last of the file), dispatching each event. */
static int parse_chunk(struct reader *r, const char *buf, size_t len,
		       bool final)
{
	enum XML_Status st = XML_Parse(r->p, buf, (int)len, final);

	for (;;) {
		if (st == XML_STATUS_ERROR || r->err[0]) {
			if (!r->err[0])
				fail(r, "%s", XML_ErrorString(XML_GetErrorCode(r->p)));
			return -1;
		}
		if (dispatch(r) != 0)
			return -1;
		if (st != XML_STATUS_SUSPENDED)
			return 0;
		st = XML_ResumeParser(r->p);
	}
}

static XML_Parser parser_new(struct reader *r)
{
	XML_Parser p = XML_ParserCreateNS(NULL, SEP);

	if (!p)
		return NULL;
	XML_SetUserData(p, r);
	XML_SetElementHandler(p, on_start, on_end);
	XML_SetCharacterDataHandler(p, on_text);
	XML_SetStartDoctypeDeclHandler(p, on_doctype);
	XML_SetEntityDeclHandler(p, on_entity);
	XML_SetParamEntityParsing(p, XML_PARAM_ENTITY_PARSING_NEVER);
	if (XML_SetReparseDeferralEnabled)
		XML_SetReparseDeferralEnabled(p, XML_FALSE);
	return p;
}

static int read_file(struct reader *r)
{
	char *buf = NULL;
	FILE *f = fopen(r->path, "rb");
	int rc = -1;

	if (!f) {
		snprintf(r->err, sizeof(r->err), "%s: %s", r->path, strerror(errno));
		return -1;
	}
	r->p = parser_new(r);
	if (!r->p)
		goto out;
	buf = xmalloc(CHUNK);
	for (;;) {
		size_t n = fread(buf, 1, CHUNK, f);
		bool final = n < CHUNK;
		if (ferror(f)) {
			fail(r, "%s", strerror(errno));
			break;
		}
		if (parse_chunk(r, buf, n, final) != 0)
			break;
		if (final) {
			rc = 0;
			break;
		}
	}
out:
	free(buf);
	if (r->p)
		XML_ParserFree(r->p);
	r->p = NULL;
	for (int i = 0; i < r->nq; i++)
		if (r->q[i].doc)
			st_doc_unref(r->q[i].doc);
	r->nq = 0;
	if (r->cap && r->cap_depth >= 0)	/* not a splice's borrowed doc */
		st_doc_unref(r->cap);
	r->cap = NULL;
	fclose(f);
	return rc;
}

static int l_read(lua_State *L)
{
	struct reader r = { .L = L, .handler = 2 };

	r.path = luaL_checkstring(L, 1);
	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_settop(L, 2);
	if (read_file(&r) != 0) {
		lua_pushnil(L);
		lua_pushstring(L, r.err[0] ? r.err : "cannot read");
		return 2;
	}
	lua_pushboolean(L, 1);
	return 1;
}

static int l_serialize(lua_State *L)
{
	struct st_node *n = lx_stanza_check(L, 1, NULL);
	const char *ns = luaL_optstring(L, 2, NS_CLIENT);
	struct sbuf b;

	sbuf_init(&b);
	st_serialize(n, ns, &b);
	lua_pushlstring(L, b.p ? b.p : "", b.len);
	sbuf_free(&b);
	return 1;
}

static int l_escape(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	struct sbuf b;

	sbuf_init(&b);
	xml_escape(&b, s, len);
	lua_pushlstring(L, b.p ? b.p : "", b.len);
	sbuf_free(&b);
	return 1;
}

int luaopen_starling_xmlfile(lua_State *L)
{
	static const luaL_Reg lib[] = {
		{ "read", l_read },
		{ "serialize", l_serialize },
		{ "escape", l_escape },
		{ NULL, NULL },
	};

	luaL_newlib(L, lib);
	return 1;
}
