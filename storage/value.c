/* value.c - the stored-value byte format (value.h): its pieces, and
 * stanza trees as values. */
#include "value.h"

#include <errno.h>

#define CHILD_ELEM 'e'
#define CHILD_TEXT 't'

/* ---- writing ---- */

int value_put_item(struct value_writer *w)
{
	if (++w->items > VALUE_MAX_ITEMS || w->out->len > VALUE_MAX_BYTES)
		return -EINVAL;
	return 0;
}

void value_put_varint(struct sbuf *out, uint64_t v)
{
	unsigned char b[10];
	size_t n = 0;

	do {
		b[n] = v & 0x7f;
		v >>= 7;
		if (v)
			b[n] |= 0x80;
		n++;
	} while (v);
	sbuf_add(out, b, n);
}

void value_put_str(struct sbuf *out, const char *s, size_t len)
{
	value_put_varint(out, len);
	sbuf_add(out, s, len);
}

void value_put_float(struct sbuf *out, double d)
{
	unsigned char b[8];
	uint64_t u;

	memcpy(&u, &d, sizeof(u));
	for (int i = 7; i >= 0; i--) {
		b[i] = u & 0xff;
		u >>= 8;
	}
	sbuf_addc(out, VALUE_FLOAT);
	sbuf_add(out, b, sizeof(b));
}

void value_put_int(struct sbuf *out, int64_t i)
{
	uint64_t u = (uint64_t)i << 1;

	if (i < 0)
		u = ~u;
	sbuf_addc(out, VALUE_INT);
	value_put_varint(out, u);
}

static bool cstr_ok(const char *s)
{
	return s && strlen(s) < VALUE_MAX_BYTES;
}

/* Element n; parent_ns is the namespace of the element encoded around
 * it ("" at the top). */
static int put_elem(struct value_writer *w, const struct st_node *n,
		    const char *parent_ns, int depth)
{
	size_t count = 0;

	if (depth > VALUE_MAX_XML_DEPTH || !n->name || !*n->name)
		return -EINVAL;
	if (value_put_item(w))
		return -EINVAL;
	value_put_str(w->out, n->name, strlen(n->name));
	if (n->ns && strcmp(n->ns, parent_ns) != 0) {
		value_put_varint(w->out, (uint64_t)strlen(n->ns) + 1);
		sbuf_adds(w->out, n->ns);
	} else {
		value_put_varint(w->out, 0);
	}
	for (const struct st_attr *a = n->attrs; a; a = a->next)
		count++;
	if (count > VALUE_MAX_ATTRS)
		return -EINVAL;
	value_put_varint(w->out, count);
	for (const struct st_attr *a = n->attrs; a; a = a->next) {
		if (!cstr_ok(a->name) || !cstr_ok(a->value))
			return -EINVAL;
		value_put_str(w->out, a->name, strlen(a->name));
		value_put_str(w->out, a->value, strlen(a->value));
	}
	count = 0;
	for (const struct st_node *c = n->first; c; c = c->next)
		count++;
	value_put_varint(w->out, count);
	for (const struct st_node *c = n->first; c; c = c->next) {
		int rc;
		if (c->name) {
			sbuf_addc(w->out, CHILD_ELEM);
			rc = put_elem(w, c, n->ns ? n->ns : parent_ns, depth + 1);
			if (rc)
				return rc;
		} else {
			sbuf_addc(w->out, CHILD_TEXT);
			value_put_str(w->out, c->text ? c->text : "", c->text ? c->len : 0);
		}
	}
	return 0;
}

int value_put_element(struct value_writer *w, const struct st_node *n)
{
	return put_elem(w, n, "", 0);
}

int value_encode_stanza(const struct st_node *n, struct sbuf *out)
{
	struct value_writer w = { out, 1 };	/* the stanza is one item */
	size_t start = out->len;
	int rc;

	sbuf_addc(out, VALUE_VERSION);
	sbuf_addc(out, VALUE_STANZA);
	rc = value_put_element(&w, n);
	if (rc) {
		out->len = start;
		out->p[start] = '\0';
	}
	return rc;
}

/* ---- reading ---- */

void value_reader_init(struct value_reader *r, const void *data, size_t len)
{
	r->p = data;
	r->end = (const unsigned char *)data + len;
	sbuf_init(&r->scratch);
}

void value_reader_free(struct value_reader *r)
{
	sbuf_free(&r->scratch);
}

size_t value_left(const struct value_reader *r)
{
	return (size_t)(r->end - r->p);
}

int value_get_varint(struct value_reader *r, uint64_t *v)
{
	uint64_t u = 0;

	for (int shift = 0; shift < 70; shift += 7) {
		if (r->p >= r->end)
			return -EINVAL;
		unsigned char b = *r->p++;
		if (shift == 63 && b > 1)
			return -EINVAL;		/* more than 64 bits */
		u |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = u;
			return 0;
		}
	}
	return -EINVAL;
}

int value_get_count(struct value_reader *r, size_t min_each, size_t *n)
{
	uint64_t v;

	if (value_get_varint(r, &v) || v > value_left(r) / min_each)
		return -EINVAL;
	*n = (size_t)v;
	return 0;
}

int value_get_str(struct value_reader *r, const char **s, size_t *len)
{
	uint64_t v;

	if (value_get_varint(r, &v) || v > value_left(r))
		return -EINVAL;
	*s = (const char *)r->p;
	*len = (size_t)v;
	r->p += v;
	return 0;
}

int value_get_int(struct value_reader *r, int64_t *i)
{
	uint64_t u;

	if (value_get_varint(r, &u))
		return -EINVAL;
	u = (u >> 1) ^ (0 - (u & 1));
	*i = (int64_t)u;
	return 0;
}

int value_get_float(struct value_reader *r, double *d)
{
	uint64_t u = 0;

	if (value_left(r) < 8)
		return -EINVAL;
	for (int i = 0; i < 8; i++)
		u = u << 8 | r->p[i];
	r->p += 8;
	memcpy(d, &u, sizeof(*d));
	return 0;
}

/* A string that goes into the tree as a C string: appended to scratch
 * with its NUL; *off is where it starts. */
static int get_cstr(struct value_reader *r, size_t *off)
{
	const char *s;
	size_t len;

	if (value_get_str(r, &s, &len) || memchr(s, '\0', len))
		return -EINVAL;
	*off = r->scratch.len;
	sbuf_add(&r->scratch, s, len);
	sbuf_addc(&r->scratch, '\0');
	return 0;
}

static int get_elem(struct value_reader *r, struct st_doc *doc,
		    struct st_node *parent, int depth);

static int get_attrs(struct value_reader *r, struct st_doc *doc,
		     struct st_node *el)
{
	struct st_attr **tail = &el->attrs;
	size_t n, name, val;

	while (*tail)
		tail = &(*tail)->next;
	if (value_get_count(r, 2, &n) || n > VALUE_MAX_ATTRS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		struct st_attr *a;
		sbuf_reset(&r->scratch);
		if (get_cstr(r, &name) || get_cstr(r, &val))
			return -EINVAL;
		if (st_attr_get(el, r->scratch.p + name))
			return -EINVAL;		/* a duplicate */
		a = st_alloc(doc, sizeof(*a));
		a->next = NULL;
		a->name = st_strdup(doc, r->scratch.p + name, val - name - 1);
		a->value = st_strdup(doc, r->scratch.p + val,
				     r->scratch.len - val - 1);
		*tail = a;
		tail = &a->next;
	}
	return 0;
}

static int get_children(struct value_reader *r, struct st_doc *doc,
			struct st_node *el, int depth)
{
	const char *s;
	size_t n, len;

	if (value_get_count(r, 2, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		if (r->p >= r->end)
			return -EINVAL;
		switch (*r->p++) {
		case CHILD_ELEM:
			if (get_elem(r, doc, el, depth + 1))
				return -EINVAL;
			break;
		case CHILD_TEXT:
			if (value_get_str(r, &s, &len))
				return -EINVAL;
			if (len)
				st_text_add(doc, el, s, len);
			break;
		default:
			return -EINVAL;
		}
	}
	return 0;
}

static int get_elem(struct value_reader *r, struct st_doc *doc,
		    struct st_node *parent, int depth)
{
	size_t name, ns = 0;
	uint64_t nslen;
	struct st_node *el;

	if (depth > VALUE_MAX_XML_DEPTH)
		return -EINVAL;
	sbuf_reset(&r->scratch);
	if (get_cstr(r, &name) || r->scratch.p[name] == '\0')
		return -EINVAL;
	if (value_get_varint(r, &nslen) || nslen > value_left(r) + 1)
		return -EINVAL;
	if (nslen) {
		const char *s = (const char *)r->p;
		if (memchr(s, '\0', nslen - 1))
			return -EINVAL;
		ns = r->scratch.len;
		sbuf_add(&r->scratch, s, nslen - 1);
		sbuf_addc(&r->scratch, '\0');
		r->p += nslen - 1;
	}
	el = st_elem_new(doc, parent, r->scratch.p + name,
			 nslen ? r->scratch.p + ns : NULL);
	if (get_attrs(r, doc, el))
		return -EINVAL;
	return get_children(r, doc, el, depth);
}

int value_get_element(struct value_reader *r, struct st_doc **doc)
{
	struct st_doc *d = st_doc_new();
	int rc = get_elem(r, d, NULL, 0);

	if (rc) {
		st_doc_unref(d);
		return rc;
	}
	*doc = d;
	return 0;
}

int value_decode_stanza(const void *data, size_t len, struct st_doc **doc)
{
	const unsigned char *b = data;
	struct value_reader r;
	int rc;

	if (len < 2 || b[0] != VALUE_VERSION || b[1] != VALUE_STANZA)
		return -EINVAL;
	value_reader_init(&r, b + 2, len - 2);
	rc = value_get_element(&r, doc);
	if (rc == 0 && r.p != r.end) {
		st_doc_unref(*doc);
		rc = -EINVAL;
	}
	value_reader_free(&r);
	return rc;
}
