/*
 * value.h - the byte format of stored values: what a store keeps for a
 * module's value (keyval, map, archive). The Lua bridge encodes and
 * decodes Lua values in it (lx_value.c); this file has the format's
 * pieces and what C needs without Lua: a stanza tree as a stored value
 * and back (the archiver stores messages this way).
 *
 * Format, version 1:
 *   value   := 0x01 item                     (the version byte)
 *   item    := 0x00                          nil
 *            | 0x01 | 0x02                   false | true
 *            | 0x03 varint                   integer, zigzag encoded
 *            | 0x04 b8                       float, IEEE 754 binary64 BE
 *            | 0x05 str                      string (any bytes)
 *            | 0x06 varint (item item)*      table: count, then key/value
 *                                            pairs; keys are never nil or
 *                                            NaN, values never nil
 *            | 0x07 element                  stanza
 *   element := str(name) nsopt varint (str str)* varint child*
 *                                            name, namespace, attributes
 *                                            (name, value), children
 *   nsopt   := varint 0: the parent's namespace ("" at the top)
 *            | varint len+1, then len bytes
 *   child   := 'e' element | 't' str(text)
 *   str     := varint len, then len bytes
 *   varint  := unsigned LEB128, at most 10 bytes
 *
 * Limits: tables at most VALUE_MAX_DEPTH deep (which is also what stops a
 * cycle), elements VALUE_MAX_XML_DEPTH deep, a value at most
 * VALUE_MAX_ITEMS items and VALUE_MAX_BYTES bytes. Element names,
 * namespaces and attributes hold no NUL (they are C strings in the tree);
 * an element has at most VALUE_MAX_ATTRS attributes, no two of one name.
 * Reading checks every count and length against the bytes left, so
 * corrupt input is -EINVAL, never an over-read.
 *
 * Words:
 *   writer  an encoding under way: the output and its item budget
 *   reader  a decoding under way: the bytes left, and scratch space for
 *           the C strings of a tree
 */
#ifndef STARLING_VALUE_H
#define STARLING_VALUE_H

#include "stanza.h"
#include "util.h"

#include <stdint.h>

#define VALUE_VERSION 1
#define VALUE_MAX_DEPTH 64		/* nested tables */
#define VALUE_MAX_XML_DEPTH 512		/* nested elements in a stanza */
#define VALUE_MAX_ITEMS ((size_t)1 << 22)
#define VALUE_MAX_BYTES ((size_t)512 << 20)
#define VALUE_MAX_ATTRS 256		/* attributes on one element */

enum value_tag {
	VALUE_NIL, VALUE_FALSE, VALUE_TRUE, VALUE_INT, VALUE_FLOAT,
	VALUE_STRING, VALUE_TABLE, VALUE_STANZA,
};

/* --- writing: each appends to w->out ----------------------------------- */

struct value_writer {
	struct sbuf *out;
	size_t items;		/* items written so far (the budget) */
};

/* Counts one more item: 0, or -EINVAL past VALUE_MAX_ITEMS items or
 * VALUE_MAX_BYTES bytes. */
int value_put_item(struct value_writer *w);
void value_put_varint(struct sbuf *out, uint64_t v);
void value_put_str(struct sbuf *out, const char *s, size_t len);
/* Tag and value. */
void value_put_int(struct sbuf *out, int64_t i);
void value_put_float(struct sbuf *out, double d);
/* The element n, after its VALUE_STANZA tag: 0, or -EINVAL (too deep,
 * too big, a nameless element, too many attributes). */
int value_put_element(struct value_writer *w, const struct st_node *n);

/* The whole value for the stanza n, appended to out. 0, or -EINVAL with
 * out as it was. */
int value_encode_stanza(const struct st_node *n, struct sbuf *out);

/* --- reading ----------------------------------------------------------- */

struct value_reader {
	const unsigned char *p, *end;	/* the bytes left */
	struct sbuf scratch;		/* NUL-terminated names for the tree */
};

/* Over len bytes of data (borrowed while reading); value_reader_free
 * frees the scratch space. */
void value_reader_init(struct value_reader *r, const void *data, size_t len);
void value_reader_free(struct value_reader *r);
size_t value_left(const struct value_reader *r);
/* Each 0, or -EINVAL when the bytes are not what they should be. */
int value_get_varint(struct value_reader *r, uint64_t *v);
/* A count of things at least min_each bytes each: one that cannot fit in
 * the bytes left is -EINVAL. */
int value_get_count(struct value_reader *r, size_t min_each, size_t *n);
/* A str: *s points into the data. */
int value_get_str(struct value_reader *r, const char **s, size_t *len);
/* After their tags. */
int value_get_int(struct value_reader *r, int64_t *i);
int value_get_float(struct value_reader *r, double *d);
/* An element, after its VALUE_STANZA tag, as a new tree: *doc gets its
 * reference (st_doc_unref), the element is (*doc)->root. */
int value_get_element(struct value_reader *r, struct st_doc **doc);

/* The stanza a whole value holds: *doc as value_get_element's. -EINVAL
 * for corrupt bytes and for a value that is not a stanza. */
int value_decode_stanza(const void *data, size_t len, struct st_doc **doc);

#endif
