/*
 * test_route.c - hosts, the session directory and stanza routing
 * (core/xmpp/route.c) into hook chains of C handlers, with no Lua state
 * and no connections: which event fires on which host for a stanza, how
 * 'to' is normalized, and the errors that come back to a sender.
 *
 * A recording handler's data is the name of the event it is on; it
 * writes "host:event" into a trace and keeps a copy of the stanza, so
 * an error reply routed back to the sender can be looked at.
 */
#include "harness.h"
#include "route.h"
#include "session.h"
#include "xmlstream.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static char trace[1024];
static struct st_doc *caught;		/* the last stanza a recorder saw */
static struct event *caught_ev;		/* compare only: it may be gone */
static const struct session *caught_origin;
static const struct session *caught_session;	/* copied while firing */
static const char *caught_ev_error;

static void trace_add(const char *host, const char *event)
{
	size_t n = strlen(trace);

	snprintf(trace + n, sizeof(trace) - n, "%s%s:%s", n ? " " : "", host,
		 event);
}

static void reset(void)
{
	trace[0] = '\0';
	if (caught)
		st_doc_unref(caught);
	caught = NULL;
	caught_ev = NULL;
	caught_origin = NULL;
	caught_session = NULL;
	caught_ev_error = NULL;
}

static int record(struct event *ev, const struct hook_handler *h)
{
	trace_add(ev->host ? ev->host->name : "(no host)", h->data);
	if (caught)
		st_doc_unref(caught);
	caught = ev->stanza ? st_clone(ev->stanza) : NULL;
	caught_ev = ev;
	caught_origin = ev->origin;
	caught_session = ev->session;
	caught_ev_error = ev->error;
	return HOOK_STOP;
}

static int record_pass(struct event *ev, const struct hook_handler *h)
{
	record(ev, h);
	return HOOK_PASS;
}

static void on(struct host *h, const char *event)
{
	hook_add(&h->hooks, event, record, (void *)event, NULL, 0, "test");
}

static void on_pass(struct host *h, const char *event)
{
	hook_add(&h->hooks, event, record_pass, (void *)event, NULL, 0, "test");
}

/* The stanza in xml (jabber:client) as a doc of its own. */
static struct st_doc *parse(const char *xml)
{
	static const char header[] = "<stream:stream xmlns='jabber:client' "
		"xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs *xs = xs_new(NULL);
	struct st_doc *d = NULL;

	if (xs_feed(xs, header, strlen(header)) == XS_STREAM_OPEN &&
	    xs_next(xs) == XS_NEED_MORE &&
	    xs_feed(xs, xml, strlen(xml)) == XS_STANZA)
		d = xs_take_stanza(xs);
	xs_free(xs);
	if (!d)
		fprintf(stderr, "  does not parse: %s\n", xml);
	return d;
}

/* Routes xml from origin (may be NULL); the trace says what fired. */
static const char *route(const char *xml, struct session *origin)
{
	struct st_doc *d = parse(xml);

	reset();
	if (!d)
		return "(unparsed)";
	route_stanza(d, d->root, origin);
	st_doc_unref(d);
	return trace;
}

/* The caught stanza's attribute, or "" when there is none. */
static const char *caught_attr(const char *name)
{
	const char *v = caught ? st_attr_get(caught->root, name) : NULL;

	return v ? v : "";
}

/* The caught stanza's error as "type condition", or "". */
static const char *caught_error(void)
{
	static char buf[128];
	struct st_node *e = caught ? st_child(caught->root, "error", NULL) : NULL;
	struct st_node *cond = e ? st_child(e, NULL, NS_STANZAS) : NULL;

	if (!cond)
		return "";
	snprintf(buf, sizeof(buf), "%s %s", st_attr_get(e, "type") ?
		 st_attr_get(e, "type") : "(no type)", cond->name);
	return buf;
}

static struct host *setup(void)
{
	route_init();
	return route_host_add("localhost", HOST_LOCAL);
}

static void teardown(void)
{
	reset();
	route_free();
}

/* --- hosts ------------------------------------------------------------- */

static int remove_rc;
static int frees;

static int remove_own_host(struct event *ev, const struct hook_handler *h)
{
	remove_rc = route_host_remove(ev->host->name);
	return HOOK_STOP;
}

static void count_free(void *data)
{
	frees++;
}

static void test_hosts(void)
{
	struct host *h = setup(), *c, *it;
	size_t pos = 0;
	int n = 0, seen = 0;

	CHECK(h && strcmp(h->name, "localhost") == 0 && h->type == HOST_LOCAL);
	CHECK(route_host_add("localhost", HOST_COMPONENT) == h);
	CHECK(h->type == HOST_LOCAL);
	CHECK(route_host("localhost") == h);
	CHECK(route_host("elsewhere.example") == NULL);
	CHECK(route_host("*") == route_global());
	CHECK(route_global() != NULL && route_global()->type == HOST_GLOBAL);
	CHECK_STR(route_global()->name, "*");
	c = route_host_add("conference.localhost", HOST_COMPONENT);
	CHECK(c && c != h && c->type == HOST_COMPONENT);
	while (route_host_next(&pos, &it)) {
		n++;
		seen |= it == h ? 1 : it == c ? 2 : 4;
	}
	CHECK(n == 2 && seen == 3);	/* ours, without "*" */
	CHECK(route_host_remove("elsewhere.example") == -ENOENT);
	teardown();
}

static void test_host_remove(void)
{
	struct host *h = setup();
	struct event ev = { 0 };

	/* a host whose chain is firing stays */
	hook_add(&h->hooks, "ping", remove_own_host, NULL, count_free, 0, "test");
	hook_add(&h->hooks, "other", record, (void *)"other", count_free, 0, "test");
	frees = 0;
	remove_rc = 0;
	CHECK(route_fire(h, "ping", &ev) == 1);
	CHECK(remove_rc == -EBUSY);
	CHECK(route_host("localhost") == h);
	CHECK(frees == 0);
	/* and goes, with its handlers, when none is */
	CHECK(route_host_remove("localhost") == 0);
	CHECK(route_host("localhost") == NULL);
	CHECK(frees == 2);
	CHECK(route_host_remove("localhost") == -ENOENT);
	teardown();
}

static int released;

static int set_release(struct event *ev, const struct hook_handler *h)
{
	ev->release = h->data;
	return HOOK_PASS;
}

static void count_release(struct event *ev)
{
	released++;
	ev->release = NULL;
}

static void test_fire(void)
{
	struct host *h = setup();
	struct event ev = { 0 };

	CHECK(route_fire(NULL, "ping", &ev) == 0);
	CHECK(route_fire(h, "ping", &ev) == 0);
	/* the bridge's part of an event is released after the firing */
	hook_add(&h->hooks, "ping", set_release, (void *)count_release, NULL,
		 10, "test");
	released = 0;
	reset();
	CHECK(route_fire(h, "ping", &ev) == 0);
	CHECK(released == 1);
	CHECK(ev.host == h);
	on(h, "ping");
	reset();
	CHECK(route_fire(h, "ping", &ev) == 1);
	CHECK_STR(trace, "localhost:ping");
	CHECK(caught_ev == &ev);
	CHECK(released == 2);
	teardown();
}

/* --- the directory -------------------------------------------------------- */

static void test_directory(void)
{
	struct host *h = setup();
	struct session one = { .host = "localhost", .bare_jid = "alice@localhost",
			       .full_jid = "alice@localhost/one" };
	struct session two = { .host = "localhost", .bare_jid = "alice@localhost",
			       .full_jid = "alice@localhost/two" };

	hook_add(&h->hooks, "resource-unbind", record_pass,
		 (void *)"resource-unbind", NULL, 0, "test");
	route_bind(&one);
	route_bind(&two);
	CHECK(route_session_count() == 2);
	CHECK(route_count_bare("alice@localhost") == 2);
	CHECK(route_count_bare("bob@localhost") == 0);
	CHECK(route_find_full("alice@localhost/one") == &one);
	CHECK(route_find_full("alice@localhost/two") == &two);
	CHECK(route_find_full("alice@localhost/three") == NULL);
	CHECK(route_find_bare("alice@localhost") == &two);
	CHECK(two.user_next == &one);
	reset();
	route_unbind(&two);
	CHECK_STR(trace, "localhost:resource-unbind");
	/* the event lived on route_unbind's stack: what it carried was
	 * copied while it fired */
	CHECK(caught_ev && caught_session == &two);
	CHECK(caught_ev && caught_ev_error == NULL);
	CHECK(route_find_full("alice@localhost/two") == NULL);
	CHECK(route_find_bare("alice@localhost") == &one);
	CHECK(route_session_count() == 1);
	route_unbind(&one);
	CHECK(route_find_bare("alice@localhost") == NULL);
	CHECK(route_count_bare("alice@localhost") == 0);
	CHECK(route_session_count() == 0);
	teardown();
}

/* --- routing ------------------------------------------------------------ */

static void test_totype(void)
{
	struct host *h = setup();
	struct host *muc = route_host_add("conference.localhost", HOST_COMPONENT);
	struct session alice = { .host = "localhost", .bare_jid = "alice@localhost",
				 .full_jid = "alice@localhost/phone" };
	static const char *const events[] = {
		"message/bare", "message/full", "message/host", "message/self",
		"presence/bare", "presence/full", "iq/bare", "iq/full",
		"iq/host", "iq/self", "iq-get/host/jabber:iq:version:query",
		"iq-get/self/vcard-temp:vCard", "iq-get/bare/vcard-temp:vCard",
	};

	for (size_t i = 0; i < ARRAY_SIZE(events); i++)
		on(h, events[i]);
	on(muc, "message/bare");
	on(muc, "presence/full");
	CHECK_STR(route("<message to='alice@localhost'><body>hi</body></message>",
			NULL), "localhost:message/bare");
	CHECK(caught_origin == NULL);
	CHECK_STR(route("<message to='alice@localhost/phone'/>", NULL),
		  "localhost:message/full");
	CHECK_STR(route("<message to='localhost'/>", NULL), "localhost:message/host");
	CHECK_STR(route("<presence to='alice@localhost'/>", NULL),
		  "localhost:presence/bare");
	CHECK_STR(route("<presence to='alice@localhost/phone' type='probe'/>",
			NULL), "localhost:presence/full");
	CHECK_STR(route("<iq type='get' id='1' to='localhost'>"
			"<query xmlns='jabber:iq:version'/></iq>", NULL),
		  "localhost:iq-get/host/jabber:iq:version:query");
	CHECK_STR(caught_attr("id"), "1");
	/* no chain for the payload: the general one */
	CHECK_STR(route("<iq type='set' id='2' to='alice@localhost'>"
			"<query xmlns='jabber:iq:roster'/></iq>", NULL),
		  "localhost:iq/bare");
	/* two payloads are no payload's */
	CHECK_STR(route("<iq type='get' id='3' to='localhost'>"
			"<query xmlns='jabber:iq:version'/><x xmlns='urn:x'/></iq>",
			NULL), "localhost:iq/host");
	/* a result has no payload event */
	CHECK_STR(route("<iq type='result' id='4' to='alice@localhost/phone'>"
			"<query xmlns='jabber:iq:version'/></iq>", NULL),
		  "localhost:iq/full");
	/* an iq to the sender's own bare JID, or without 'to', is "self" */
	CHECK_STR(route("<iq type='get' id='5' to='alice@localhost'>"
			"<vCard xmlns='vcard-temp'/></iq>", &alice),
		  "localhost:iq-get/self/vcard-temp:vCard");
	CHECK(caught_origin == &alice);
	CHECK_STR(route("<iq type='get' id='6' to='alice@localhost'>"
			"<vCard xmlns='vcard-temp'/></iq>", NULL),
		  "localhost:iq-get/bare/vcard-temp:vCard");
	CHECK_STR(route("<iq type='get' id='7'><vCard xmlns='vcard-temp'/></iq>",
			&alice), "localhost:iq-get/self/vcard-temp:vCard");
	CHECK_STR(route("<iq type='result' id='8'/>", &alice), "localhost:iq/self");
	/* a message to the sender's bare JID is an ordinary one */
	CHECK_STR(route("<message to='alice@localhost'/>", &alice),
		  "localhost:message/bare");
	CHECK_STR(route("<message/>", &alice), "localhost:message/self");
	/* a component's chains are its own */
	CHECK_STR(route("<message to='room@conference.localhost'/>", NULL),
		  "conference.localhost:message/bare");
	CHECK_STR(route("<presence to='room@conference.localhost/nick'/>", &alice),
		  "conference.localhost:presence/full");
	teardown();
}

static void test_passing_handlers(void)
{
	struct host *h = setup();

	on_pass(h, "iq-get/host/jabber:iq:last:query");
	on(h, "iq/host");
	/* a payload chain that lets the iq pass hands it to the general one */
	CHECK_STR(route("<iq type='get' id='1' to='localhost'>"
			"<query xmlns='jabber:iq:last'/></iq>", NULL),
		  "localhost:iq-get/host/jabber:iq:last:query localhost:iq/host");
	teardown();
}

static void test_normalize(void)
{
	struct host *h = setup();
	struct st_doc *d;

	on(h, "message/full");
	on(h, "message/host");
	CHECK_STR(route("<message to='Alice@LocalHost/Res'/>", NULL),
		  "localhost:message/full");
	CHECK_STR(caught_attr("to"), "alice@localhost/Res");
	CHECK_STR(route("<message to='LOCALHOST'/>", NULL), "localhost:message/host");
	CHECK_STR(caught_attr("to"), "localhost");
	/* the routed doc itself carries the normalized address */
	d = parse("<message to='ALICE@localhost/Phone'/>");
	if (d) {
		route_stanza(d, d->root, NULL);
		CHECK_STR(st_attr_get(d->root, "to"), "alice@localhost/Phone");
		st_doc_unref(d);
	}
	teardown();
}

static void test_unhandled_iq(void)
{
	struct host *h = setup();

	on(h, "iq/full");		/* bob's client, as the router sees it */
	CHECK_STR(route("<iq type='get' id='q1' from='bob@localhost/b' to='localhost'>"
			"<query xmlns='urn:nobody'/></iq>", NULL),
		  "localhost:iq/full");
	CHECK_STR(caught ? caught->root->name : NULL, "iq");
	CHECK_STR(caught_attr("type"), "error");
	CHECK_STR(caught_attr("id"), "q1");
	CHECK_STR(caught_attr("to"), "bob@localhost/b");
	CHECK_STR(caught_attr("from"), "localhost");
	CHECK_STR(caught_error(), "cancel service-unavailable");
	CHECK(caught && !st_child(caught->root, "query", "urn:nobody"));
	CHECK_STR(route("<iq type='set' id='q2' from='bob@localhost/b' to='alice@localhost'>"
			"<query xmlns='urn:nobody'/></iq>", NULL),
		  "localhost:iq/full");
	CHECK_STR(caught_attr("from"), "alice@localhost");
	CHECK_STR(caught_error(), "cancel service-unavailable");
	/* results and errors are never answered */
	CHECK_STR(route("<iq type='result' id='q3' from='bob@localhost/b' "
			"to='localhost'/>", NULL), "");
	CHECK_STR(route("<iq type='error' id='q4' from='bob@localhost/b' "
			"to='localhost'/>", NULL), "");
	/* nor is a stanza without a sender */
	CHECK_STR(route("<iq type='get' id='q5' to='localhost'>"
			"<query xmlns='urn:nobody'/></iq>", NULL), "");
	teardown();
}

static void test_unhandled_message(void)
{
	struct host *h = setup();

	on(h, "message/full");
	CHECK_STR(route("<message from='bob@localhost/b' to='alice@localhost'>"
			"<body>hi</body></message>", NULL), "localhost:message/full");
	CHECK_STR(caught_attr("to"), "bob@localhost/b");
	CHECK_STR(caught_attr("type"), "error");
	CHECK_STR(caught_error(), "cancel service-unavailable");
	/* a message's error keeps what was sent */
	CHECK(caught && st_child(caught->root, "body", NULL));
	/* presence nobody wants is dropped */
	CHECK_STR(route("<presence from='bob@localhost/b' to='alice@localhost'/>",
			NULL), "");
	teardown();
}

static void test_remote(void)
{
	struct host *h = setup();

	on(h, "message/full");
	on(h, "iq/bare");
	on(route_global(), "message/host");
	on(route_global(), "message/bare");
	CHECK_STR(route("<message from='bob@localhost/b' to='carol@elsewhere.example'>"
			"<body>hi</body></message>", NULL), "localhost:message/full");
	CHECK_STR(caught_attr("to"), "bob@localhost/b");
	CHECK_STR(caught_attr("from"), "carol@elsewhere.example");
	CHECK_STR(caught_error(), "cancel remote-server-not-found");
	CHECK_STR(route("<iq type='get' id='r1' from='bob@localhost' to='elsewhere.example'>"
			"<ping xmlns='urn:xmpp:ping'/></iq>", NULL), "localhost:iq/bare");
	CHECK_STR(caught_error(), "cancel remote-server-not-found");
	/* the global hooks' "*" is no address to deliver to */
	CHECK_STR(route("<message from='bob@localhost/b' to='*'/>", NULL),
		  "localhost:message/full");
	CHECK_STR(caught_error(), "modify jid-malformed");
	/* an error that cannot be delivered is not answered */
	CHECK_STR(route("<message type='error' from='bob@localhost/b' "
			"to='carol@elsewhere.example'/>", NULL), "");
	teardown();
}

static void test_malformed(void)
{
	struct host *h = setup();

	on(h, "message/full");
	on(h, "iq/full");
	CHECK_STR(route("<message from='bob@localhost/b' to='@localhost'/>", NULL),
		  "localhost:message/full");
	CHECK_STR(caught_attr("to"), "bob@localhost/b");
	CHECK_STR(caught_error(), "modify jid-malformed");
	CHECK_STR(route("<iq type='set' id='m1' from='bob@localhost/b' "
			"to='alice@localhost/'><x xmlns='urn:x'/></iq>", NULL),
		  "localhost:iq/full");
	CHECK_STR(caught_attr("id"), "m1");
	CHECK_STR(caught_error(), "modify jid-malformed");
	/* no 'to' and no session to be "self" of */
	CHECK_STR(route("<message from='bob@localhost/b'/>", NULL),
		  "localhost:message/full");
	CHECK_STR(caught_error(), "modify jid-malformed");
	teardown();
}

/* RFC 6120 10.5.2: <domainpart/resourcepart> of a VirtualHost is the
 * server itself: the host events fire, with 'to' the bare domain, so an
 * answer comes from the domain (8.1.2.1) as for <domainpart>. A
 * component's domain keeps the resource (the component's to interpret). */
static void test_domain_resource(void)
{
	struct host *h = setup();
	struct host *muc = route_host_add("conference.localhost", HOST_COMPONENT);

	on(h, "iq-get/host/http://jabber.org/protocol/disco#info:query");
	on(h, "message/host");
	on(h, "presence/host");
	on(h, "iq/full");
	on(muc, "iq/host");
	CHECK_STR(route("<iq type='get' id='d1' from='bob@localhost/b' "
			"to='localhost/mcabber'>"
			"<query xmlns='http://jabber.org/protocol/disco#info'/></iq>",
			NULL),
		  "localhost:iq-get/host/http://jabber.org/protocol/disco#info:query");
	CHECK_STR(caught_attr("to"), "localhost");
	CHECK_STR(caught_attr("id"), "d1");
	CHECK_STR(route("<message to='LocalHost/Some.Thing'><body>hi</body></message>",
			NULL), "localhost:message/host");
	CHECK_STR(caught_attr("to"), "localhost");
	CHECK_STR(route("<presence to='localhost/x' type='probe'/>", NULL),
		  "localhost:presence/host");
	CHECK_STR(caught_attr("to"), "localhost");
	/* nobody handles it: the server's own error, from the domain */
	CHECK_STR(route("<iq type='set' id='d3' from='bob@localhost/b' "
			"to='localhost/mcabber'><query xmlns='urn:nobody'/></iq>",
			NULL), "localhost:iq/full");
	CHECK_STR(caught_attr("id"), "d3");
	CHECK_STR(caught_attr("from"), "localhost");
	CHECK_STR(caught_attr("to"), "bob@localhost/b");
	CHECK_STR(caught_error(), "cancel service-unavailable");
	on(h, "iq/host");
	CHECK_STR(route("<iq type='result' id='d2' to='localhost/x'/>", NULL),
		  "localhost:iq/host");
	/* a component's domain with a resource: host events, 'to' as sent */
	CHECK_STR(route("<iq type='get' id='d4' to='conference.localhost/x'>"
			"<query xmlns='urn:nobody'/></iq>", NULL),
		  "conference.localhost:iq/host");
	CHECK_STR(caught_attr("to"), "conference.localhost/x");
	teardown();
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	RUN(test_hosts);
	RUN(test_host_remove);
	RUN(test_fire);
	RUN(test_directory);
	RUN(test_totype);
	RUN(test_passing_handlers);
	RUN(test_normalize);
	RUN(test_unhandled_iq);
	RUN(test_unhandled_message);
	RUN(test_remote);
	RUN(test_malformed);
	RUN(test_domain_resource);
	TEST_END();
}
