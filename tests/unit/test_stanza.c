/* test_stanza.c - stanza trees: building, serializing, copying, replies. */
#include "stanza.h"
#include "harness.h"

#include <stdlib.h>

static char out_buf[8192];

/* Serializes n with default_ns into a static buffer. */
static const char *ser(const struct st_node *n, const char *default_ns)
{
	struct sbuf b;

	sbuf_init(&b);
	st_serialize(n, default_ns, &b);
	snprintf(out_buf, sizeof(out_buf), "%s", b.p ? b.p : "");
	sbuf_free(&b);
	return out_buf;
}

static void test_build_serialize(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *m = st_elem_new(d, NULL, "message", NS_CLIENT);
	struct st_node *b;

	CHECK(d->root == m && d->cursor == m && d->refs == 1);
	st_attr_set(d, m, "to", "juliet@example.com");
	st_attr_set(d, m, "type", "chat");
	b = st_elem_new(d, m, "body", NULL);
	CHECK(b->ns == m->ns);
	st_text_add(d, b, "Wherefore", 9);
	st_text_add(d, b, " art thou", 9);
	CHECK(b->first == b->last && b->first->len == 18);
	CHECK_STR(ser(m, NS_CLIENT),
		  "<message to='juliet@example.com' type='chat'>"
		  "<body>Wherefore art thou</body></message>");
	CHECK_STR(ser(m, NULL),
		  "<message xmlns='jabber:client' to='juliet@example.com' "
		  "type='chat'><body>Wherefore art thou</body></message>");
	CHECK_STR(st_child_text(d, m, "body", NULL), "Wherefore art thou");
	CHECK(st_child_text(d, m, "subject", NULL) == NULL);
	CHECK(st_child(m, "body", "urn:other") == NULL);
	CHECK(st_child(m, NULL, NULL) == b);
	st_attr_set(d, m, "type", "normal");
	CHECK_STR(st_attr_get(m, "type"), "normal");
	st_attr_set(d, m, "type", NULL);
	CHECK(st_attr_get(m, "type") == NULL);
	CHECK_STR(ser(m, NS_CLIENT),
		  "<message to='juliet@example.com'>"
		  "<body>Wherefore art thou</body></message>");
	st_doc_unref(d);
}

static void test_namespaces(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *iq = st_elem_new(d, NULL, "iq", NS_CLIENT);
	struct st_node *q = st_elem_new(d, iq, "query", "jabber:iq:roster");
	struct st_node *item = st_elem_new(d, q, "item", NULL);
	struct st_node *x;

	st_elem_new(d, item, "group", NULL);
	x = st_elem_new(d, q, "x", "jabber:x:data");
	st_elem_new(d, x, "field", NULL);
	st_elem_new(d, q, "back", "jabber:iq:roster");
	st_elem_new(d, q, "none", "");
	st_attr_set(d, item, "xml:lang", "en");
	st_attr_set(d, item, "urn:a\1foo", "1");
	st_attr_set(d, item, "urn:b\1bar", "2");
	CHECK_STR(ser(iq, NS_CLIENT),
		  "<iq><query xmlns='jabber:iq:roster'>"
		  "<item xml:lang='en' xmlns:ns1='urn:a' ns1:foo='1' "
		  "xmlns:ns2='urn:b' ns2:bar='2'><group/></item>"
		  "<x xmlns='jabber:x:data'><field/></x><back/>"
		  "<none xmlns=''/></query></iq>");
	CHECK_STR(ser(q, "jabber:iq:roster"),
		  "<query><item xml:lang='en' xmlns:ns1='urn:a' ns1:foo='1' "
		  "xmlns:ns2='urn:b' ns2:bar='2'><group/></item>"
		  "<x xmlns='jabber:x:data'><field/></x><back/>"
		  "<none xmlns=''/></query>");
	CHECK(st_child(q, "item", NULL) == item);
	CHECK(st_child(q, "x", NULL) == NULL);
	CHECK(st_child(q, "x", "jabber:x:data") == x);
	st_doc_unref(d);
}

static void test_escaping(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *m = st_elem_new(d, NULL, "message", NS_CLIENT);
	struct st_node *b = st_elem_new(d, m, "body", NULL);
	struct sbuf s;

	st_attr_set(d, m, "id", "a&b<c>d\"e'f");
	st_text_add(d, b, "x < y && z > \"w\" 'v'", 20);
	CHECK_STR(ser(m, NS_CLIENT),
		  "<message id='a&amp;b&lt;c&gt;d&quot;e&apos;f'>"
		  "<body>x &lt; y &amp;&amp; z &gt; \"w\" 'v'</body></message>");
	sbuf_init(&s);
	xml_escape(&s, "<&>\"'", 5);
	CHECK_STR(s.p, "&lt;&amp;&gt;&quot;&apos;");
	sbuf_free(&s);
	st_doc_unref(d);
}

static void test_arena(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *r = st_elem_new(d, NULL, "r", "");
	char *big = malloc(100000);
	size_t i;

	memset(big, 'x', 100000);
	for (i = 0; i < 2000; i++) {
		struct st_node *c = st_elem_new(d, r, "child", NULL);

		st_attr_set(d, c, "n", "value");
	}
	st_text_add(d, r, big, 100000);
	st_text_add(d, r, "y", 1);
	CHECK(r->last->len == 100001);
	CHECK(r->last->text[100000] == 'y' && r->last->text[100001] == '\0');
	for (i = 0; i < 5000; i++)
		st_text_add(d, r, "ab", 2);
	CHECK(r->last->len == 110001);
	CHECK(d->used >= 110001);
	void *p = st_alloc(d, 24);
	CHECK(((uintptr_t)p % sizeof(void *)) == 0);
	free(big);
	st_doc_unref(d);
}

static struct st_doc *sample_message(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *m = st_elem_new(d, NULL, "message", NS_CLIENT);

	st_attr_set(d, m, "from", "romeo@example.net/orchard");
	st_attr_set(d, m, "to", "juliet@example.com");
	st_attr_set(d, m, "id", "m1");
	st_attr_set(d, m, "type", "chat");
	st_text_add(d, st_elem_new(d, m, "body", NULL), "hi", 2);
	return d;
}

static void test_clone_independent(void)
{
	struct st_doc *a = sample_message(), *b;
	char first[1024];

	b = st_clone(a->root);
	CHECK(b->root != a->root && b->cursor == b->root);
	snprintf(first, sizeof(first), "%s", ser(a->root, NS_CLIENT));
	CHECK_STR(ser(b->root, NS_CLIENT), first);
	st_attr_set(b, b->root, "to", "other@example.org");
	st_text_add(b, st_child(b->root, "body", NULL), "!", 1);
	st_elem_new(b, b->root, "extra", "urn:x");
	CHECK_STR(ser(a->root, NS_CLIENT), first);
	st_doc_unref(a);
	CHECK_STR(ser(b->root, NS_CLIENT),
		  "<message from='romeo@example.net/orchard' "
		  "to='other@example.org' id='m1' type='chat'><body>hi!</body>"
		  "<extra xmlns='urn:x'/></message>");
	/* a subtree copied into itself */
	st_copy_into(b, st_child(b->root, "body", NULL), b->root);
	CHECK_STR(ser(st_child(b->root, "body", NULL), NS_CLIENT),
		  "<body>hi!<message from='romeo@example.net/orchard' "
		  "to='other@example.org' id='m1' type='chat'><body>hi!</body>"
		  "<extra xmlns='urn:x'/></message></body>");
	st_doc_unref(b);
}

/* A clone's arena is sized from its source: the copy fits the doc's
 * first chunk (st_copy_size is an upper bound) and a small stanza's copy
 * is smaller than a default doc. */
static void test_clone_sized(void)
{
	struct st_doc *a = sample_message(), *b;
	struct st_node *x = st_elem_new(a, a->root, "x", "urn:other");
	char want[1024];

	st_attr_set(a, x, "xml:lang", "en");
	st_text_add(a, x, "some text", 9);
	st_elem_new(a, x, "empty", NULL);
	b = st_clone(a->root);
	CHECK(b->used <= st_copy_size(a->root));
	CHECK(st_copy_size(a->root) < 1024);
	snprintf(want, sizeof(want), "%s", ser(a->root, NS_CLIENT));
	CHECK_STR(ser(b->root, NS_CLIENT), want);
	st_doc_unref(a);
	st_doc_unref(b);
}

static void test_unlink(void)
{
	struct st_doc *d = sample_message();
	struct st_node *m = d->root, *b = m->first;
	struct st_node *x = st_elem_new(d, m, "x", "urn:x");
	struct st_node *y = st_elem_new(d, m, "y", "urn:y");

	st_unlink(x);
	CHECK(b->next == y && y->prev == b && x->parent == NULL);
	st_unlink(b);
	CHECK(m->first == y && m->last == y);
	st_unlink(y);
	CHECK(m->first == NULL && m->last == NULL);
	CHECK_STR(ser(m, NS_CLIENT),
		  "<message from='romeo@example.net/orchard' "
		  "to='juliet@example.com' id='m1' type='chat'/>");
	st_doc_unref(d);
}

static void test_reply(void)
{
	struct st_doc *d = st_doc_new(), *r;
	struct st_node *iq = st_elem_new(d, NULL, "iq", NS_CLIENT);

	st_attr_set(d, iq, "from", "a@b/c");
	st_attr_set(d, iq, "id", "q1");
	st_attr_set(d, iq, "type", "get");
	st_elem_new(d, iq, "query", "jabber:iq:version");
	r = st_reply(iq);
	CHECK_STR(ser(r->root, NS_CLIENT), "<iq to='a@b/c' id='q1' type='result'/>");
	st_doc_unref(r);
	st_doc_unref(d);

	d = sample_message();
	r = st_reply(d->root);
	CHECK_STR(ser(r->root, NS_CLIENT),
		  "<message to='romeo@example.net/orchard' "
		  "from='juliet@example.com' id='m1' type='chat'/>");
	st_doc_unref(r);
	st_doc_unref(d);
}

static void test_error_reply(void)
{
	struct st_doc *d = sample_message(), *r;
	struct st_node *err;

	r = st_error_reply(d->root, "cancel", "service-unavailable", NULL);
	CHECK_STR(ser(r->root, NS_CLIENT),
		  "<message from='juliet@example.com' "
		  "to='romeo@example.net/orchard' id='m1' type='error'>"
		  "<body>hi</body><error type='cancel'><service-unavailable "
		  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></message>");
	err = st_child(r->root, "error", NULL);
	CHECK(err && strcmp(err->ns, NS_CLIENT) == 0);
	CHECK(st_child(err, "service-unavailable", NS_STANZAS) != NULL);
	st_doc_unref(r);
	st_doc_unref(d);

	d = st_doc_new();
	struct st_node *iq = st_elem_new(d, NULL, "iq", NS_CLIENT);

	st_attr_set(d, iq, "from", "a@b/c");
	st_attr_set(d, iq, "to", "b");
	st_attr_set(d, iq, "id", "q1");
	st_attr_set(d, iq, "type", "set");
	st_elem_new(d, iq, "query", "jabber:iq:private");
	r = st_error_reply(iq, "modify", "bad-request", "no <way> & 'never'");
	CHECK_STR(ser(r->root, NS_CLIENT),
		  "<iq from='b' to='a@b/c' id='q1' type='error'>"
		  "<error type='modify'><bad-request "
		  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
		  "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
		  "no &lt;way&gt; &amp; 'never'</text></error></iq>");
	st_doc_unref(r);
	st_doc_unref(d);
}

static void test_text_helpers(void)
{
	struct st_doc *d = st_doc_new();
	struct st_node *r = st_elem_new(d, NULL, "r", "urn:r");

	CHECK_STR(st_text(d, r), "");
	st_text_add(d, r, "a", 1);
	st_elem_new(d, r, "x", NULL);
	st_text_add(d, r, "b", 1);
	CHECK_STR(st_text(d, r), "ab");
	CHECK_STR(ser(r, "urn:r"), "<r>a<x/>b</r>");
	st_doc_unref(d);

	/* refcounts */
	d = st_doc_new();
	CHECK(st_doc_ref(d) == d && d->refs == 2);
	st_doc_unref(d);
	CHECK(d->refs == 1);
	st_doc_unref(d);
	st_doc_unref(NULL);
}

static void test_deep_tree(void)
{
	struct st_doc *d = st_doc_new(), *c;
	struct st_node *n = st_elem_new(d, NULL, "a", "");
	struct sbuf b;
	int i;

	for (i = 0; i < 200000; i++)
		n = st_elem_new(d, n, "a", NULL);
	c = st_clone(d->root);
	sbuf_init(&b);
	st_serialize(c->root, "", &b);
	CHECK(b.len == 200000 * 7 + 4);	/* <a>..</a> around <a/> */
	sbuf_free(&b);
	st_doc_unref(c);
	st_doc_unref(d);
}

int main(void)
{
	RUN(test_build_serialize);
	RUN(test_namespaces);
	RUN(test_escaping);
	RUN(test_arena);
	RUN(test_clone_independent);
	RUN(test_clone_sized);
	RUN(test_unlink);
	RUN(test_reply);
	RUN(test_error_reply);
	RUN(test_text_helpers);
	RUN(test_deep_tree);
	TEST_END();
}
