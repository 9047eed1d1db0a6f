/*
 * stanza.h - XML element trees: stanzas, stream features, stored values.
 *
 * doc:    one arena holding one tree, reference counted. Everything a node
 *         points to (names, namespaces, attribute values, text) lives in
 *         the doc's arena and dies with it.
 * node:   an element (name != NULL) or a text node (name == NULL).
 * ns:     every element has its namespace; a child that has no xmlns of
 *         its own inherits its parent's when parsed or built.
 * cursor: the builder's current element (st_doc.cursor), moved by the Lua
 *         builder's :tag() and :up(), as in Prosody's util.stanza.
 *
 * Attribute names: a plain name ("to"), or "xml:lang" for the XML
 * namespace. Other namespaced attributes keep "nsuri\1local" as their name.
 */
#ifndef STARLING_STANZA_H
#define STARLING_STANZA_H

#include "util.h"

#define NS_XML "http://www.w3.org/XML/1998/namespace"
#define NS_CLIENT "jabber:client"
#define NS_SERVER "jabber:server"
#define NS_STREAMS "http://etherx.jabber.org/streams"
#define NS_STANZAS "urn:ietf:params:xml:ns:xmpp-stanzas"

struct st_attr {
	struct st_attr *next;
	const char *name;
	const char *value;
};

struct st_node {
	struct st_node *parent;
	struct st_node *next;		/* next sibling */
	struct st_node *prev;		/* previous sibling */
	struct st_node *first;		/* first child */
	struct st_node *last;		/* last child */
	const char *name;		/* NULL for a text node */
	const char *ns;			/* element namespace; NULL for text */
	struct st_attr *attrs;		/* in document order */
	const char *text;		/* text nodes: the text (NUL-terminated) */
	size_t len;			/* text nodes: its length */
};

struct st_arena_chunk;

struct st_doc {
	int refs;
	struct st_node *root;
	struct st_node *cursor;		/* builder position, root by default */
	struct st_arena_chunk *chunks;	/* owned */
	size_t used;			/* bytes handed out, for limits */
};

/* A new doc with one reference and no root yet. */
struct st_doc *st_doc_new(void);
/* The same with first bytes of arena in the doc's own allocation. */
struct st_doc *st_doc_new_sized(size_t first);
/* Arena bytes a deep copy of src needs (an upper bound). */
size_t st_copy_size(const struct st_node *src);
/* A doc sized for a copy of src and a little more: a copy kept for long
 * (a session's presence) costs what it holds, not a whole first chunk. */
struct st_doc *st_doc_new_for_copy(const struct st_node *src);
struct st_doc *st_doc_ref(struct st_doc *d);
void st_doc_unref(struct st_doc *d);	/* frees at zero */
/* Frees the calling thread's pool of freed docs (stanza.c). */
void st_doc_pool_trim(void);

/* Arena allocation inside a doc. */
void *st_alloc(struct st_doc *d, size_t n);
const char *st_strdup(struct st_doc *d, const char *s, size_t n);

/* A new element appended to parent (or made the root when parent is NULL
 * and the doc has none). ns NULL inherits the parent's namespace. */
struct st_node *st_elem_new(struct st_doc *d, struct st_node *parent,
			    const char *name, const char *ns);
/* Appends text to parent (merged with a preceding text node). */
struct st_node *st_text_add(struct st_doc *d, struct st_node *parent,
			    const char *text, size_t len);
/* Sets (value != NULL) or removes (value == NULL) an attribute. */
void st_attr_set(struct st_doc *d, struct st_node *n, const char *name,
		 const char *value);
const char *st_attr_get(const struct st_node *n, const char *name);
/* Every element of n's tree in namespace from moves to to (a string that
 * outlives the tree): a server or component stream's stanzas become
 * jabber:client ones. */
void st_rename_ns(struct st_node *n, const char *from, const char *to);

/* First child element with this name (NULL: any) and ns (NULL: the
 * parent's namespace). */
struct st_node *st_child(const struct st_node *n, const char *name,
			 const char *ns);
/* The concatenated text of an element's direct text children; the result
 * lives in the doc (or is a static "" when there is none). */
const char *st_text(struct st_doc *d, const struct st_node *n);
const char *st_child_text(struct st_doc *d, const struct st_node *n,
			  const char *name, const char *ns);
/* Unlinks n from its parent (memory stays in the arena). */
void st_unlink(struct st_node *n);
/* Deep copy of src (from any doc) appended to parent in d. */
struct st_node *st_copy_into(struct st_doc *d, struct st_node *parent,
			     const struct st_node *src);
/* The same, where an element whose ns pointer is `inherit` takes its new
 * parent's namespace (the Lua builder's "no xmlns given" marker). */
struct st_node *st_copy_into_ns(struct st_doc *d, struct st_node *parent,
				const struct st_node *src, const char *inherit);
/* A new doc whose root is a deep copy of src. */
struct st_doc *st_clone(const struct st_node *src);

/* Serializes n. default_ns is the stream's content namespace: an element
 * whose ns equals its parent's (or default_ns at the top) gets no xmlns.
 * Text and attribute values are escaped (&amp; &lt; &gt; &quot; &apos;;
 * CR in text, and tab, LF, CR in attribute values as character references,
 * so that parsing the result gives back the same characters). */
void st_serialize(const struct st_node *n, const char *default_ns,
		  struct sbuf *out);
void xml_escape(struct sbuf *out, const char *s, size_t n);

/* A reply skeleton: swaps to/from, copies id and the element name, type
 * "result" for an iq. A new doc. */
struct st_doc *st_reply(const struct st_node *orig);
/* An error reply (RFC 6120 8.3): copy of the stanza with to/from swapped,
 * type="error", and <error type=...><condition xmlns=stanzas/>[<text>]
 * </error>. type: "cancel", "modify", "auth", "wait", "continue". For an
 * iq the payload is dropped. A new doc. */
struct st_doc *st_error_reply(const struct st_node *orig, const char *type,
			      const char *condition, const char *text);

#endif
