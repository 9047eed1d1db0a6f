/*
 * test_session.c - the stream layer (core/xmpp/session.c) and the client
 * role (core/xmpp/c2s.c) over a socketpair, on a real libev loop, with
 * C handlers on the hook chains and no Lua state: stream headers and
 * features, SASL PLAIN, the stream restart, resource binding, stanzas
 * routed between the session and C handlers, and the stream errors.
 *
 * The test plays the client on one end of the socketpair; the server's
 * end is accepted as a listener would (session_accept). pump() runs one
 * loop iteration and the end-of-iteration work core/pipeline.c does.
 */
#include "harness.h"
#include "accounts.h"
#include "c2s.h"
#include "conn.h"
#include "ipstate.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "store.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl"
#define NS_STREAM_ERR "urn:ietf:params:xml:ns:xmpp-streams"
#define HEADER(to, ns) "<?xml version='1.0'?><stream:stream to='" to "' " \
	"xmlns='" ns "' xmlns:stream='http://etherx.jabber.org/streams' " \
	"version='1.0'>"
#define STREAM_ERROR(cond) "<stream:error><" cond " xmlns='" NS_STREAM_ERR \
	"'/></stream:error></stream:stream>"
/* PLAIN's "\0alice\0secret" and "\0alice\0wrong" in base64 */
#define AUTH_GOOD "<auth xmlns='" NS_SASL "' mechanism='PLAIN'>" \
	"AGFsaWNlAHNlY3JldA==</auth>"
#define AUTH_BAD "<auth xmlns='" NS_SASL "' mechanism='PLAIN'>" \
	"AGFsaWNlAHdyb25n</auth>"

static char base[] = "/tmp/starling-test-session-XXXXXX";
static struct ev_loop *loop;

static const struct session_config cfg = {
	.require_encryption = false,
	.allow_plain_unencrypted = true,
	.preauth_timeout = 30,
	.idle_timeout = 300,
	.send_queue_limit = 1 << 20,
	.max_auth_failures = 3,
	.auth_failure_delay = 0,
};
static struct session_listen listen_c2s = { &c2s_role, &cfg, false };

/* One iteration of the loop and what core/pipeline.c does at its end. */
static void pump(void)
{
	ev_run(loop, EVRUN_NOWAIT);
	store_commit();
	conn_release_queued();
	conn_flush_all();
	session_free_dead();
	store_end_read();
}

/* --- the client's end ------------------------------------------------------ */

struct client {
	int fd;
	char buf[65536];
	size_t len;
	size_t seen;		/* what wait_for() handed out already */
	bool eof;
};

static struct client *client_new(void)
{
	struct client *c = calloc(1, sizeof(*c));
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
		       sv) != 0) {
		perror("socketpair");
		exit(1);
	}
	session_accept(sv[0], "127.0.0.1", 1, &listen_c2s);
	c->fd = sv[1];
	return c;
}

static void client_free(struct client *c)
{
	close(c->fd);
	free(c);
}

static void client_send(struct client *c, const char *xml)
{
	size_t len = strlen(xml), off = 0;

	while (off < len) {
		ssize_t n = write(c->fd, xml + off, len - off);
		if (n < 0 && errno == EAGAIN) {
			pump();
			continue;
		}
		if (n <= 0) {
			perror("write");
			return;
		}
		off += n;
	}
}

/* Reads what has arrived: whether there was anything. */
static bool client_read(struct client *c)
{
	bool got = false;

	while (!c->eof && c->len < sizeof(c->buf) - 1) {
		ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len);
		if (n > 0) {
			c->len += n;
			c->buf[c->len] = '\0';
			got = true;
		} else {
			if (n == 0)
				c->eof = got = true;
			break;
		}
	}
	return got;
}

/* Pumps until the server sent want (or a second or so passed): what
 * arrived since the last call, up to and including want; NULL when it
 * did not come. */
static const char *wait_for(struct client *c, const char *want)
{
	static char out[sizeof(c->buf)];
	const char *at = NULL;

	for (int i = 0; i < 2000; i++) {
		pump();
		if (!client_read(c)) {
			at = strstr(c->buf + c->seen, want);
			if (at || c->eof)
				break;
			usleep(500);
		}
	}
	at = strstr(c->buf + c->seen, want);
	if (!at) {
		fprintf(stderr, "  waited for: %s\n  got: %s\n", want, c->buf + c->seen);
		return NULL;
	}
	size_t n = at + strlen(want) - (c->buf + c->seen);
	memcpy(out, c->buf + c->seen, n);
	out[n] = '\0';
	c->seen += n;
	return out;
}

/* Pumps until the server closed the connection: true when it did. */
static bool wait_eof(struct client *c)
{
	for (int i = 0; i < 2000 && !c->eof; i++) {
		pump();
		if (!client_read(c))
			usleep(500);
	}
	return c->eof;
}

/* Whether s is in text (NULL text: no). */
static bool has(const char *text, const char *s)
{
	return text && strstr(text, s);
}

/* --- C handlers -------------------------------------------------------------- */

/* Delivers a stanza to the bound session of its full JID. */
static int deliver(struct event *ev, const struct hook_handler *h)
{
	struct session *to = route_find_full(st_attr_get(ev->stanza, "to"));

	if (!to)
		return HOOK_PASS;
	session_send(to, ev->stanza);
	return HOOK_STOP;
}

/* What the session handlers saw. */
static struct {
	struct session *authed, *bound, *failed, *unbound;
	char authed_jid[64], bound_jid[64];
	unsigned authed_flags, bound_flags;
	int features;
} seen;

static int on_auth_success(struct event *ev, const struct hook_handler *h)
{
	seen.authed = ev->session;
	snprintf(seen.authed_jid, sizeof(seen.authed_jid), "%s",
		 ev->session->bare_jid ? ev->session->bare_jid : "(none)");
	seen.authed_flags = ev->session->flags;
	return HOOK_PASS;
}

static int on_auth_failure(struct event *ev, const struct hook_handler *h)
{
	seen.failed = ev->session;
	return HOOK_PASS;
}

static int on_bind(struct event *ev, const struct hook_handler *h)
{
	seen.bound = ev->session;
	snprintf(seen.bound_jid, sizeof(seen.bound_jid), "%s",
		 ev->session->full_jid ? ev->session->full_jid : "(none)");
	seen.bound_flags = ev->session->flags;
	return HOOK_PASS;
}

static int on_unbind(struct event *ev, const struct hook_handler *h)
{
	seen.unbound = ev->session;
	return HOOK_PASS;
}

/* A stream feature of a C handler's own. */
static int on_features(struct event *ev, const struct hook_handler *h)
{
	seen.features++;
	st_elem_new(ev->doc, ev->features, "test", "urn:test:feature");
	return HOOK_PASS;
}

/* In-band registration's place: an iq before authentication. */
static int on_preauth_iq(struct event *ev, const struct hook_handler *h)
{
	struct st_doc *r = st_reply(ev->stanza);

	session_send(ev->origin, r->root);
	st_doc_unref(r);
	return HOOK_STOP;
}

static struct host *setup(void)
{
	struct host *h;

	memset(&seen, 0, sizeof(seen));
	route_init();
	h = route_host_add("localhost", HOST_LOCAL);
	hook_add(&h->hooks, "message/full", deliver, NULL, NULL, 0, "test");
	hook_add(&h->hooks, "iq/full", deliver, NULL, NULL, 0, "test");
	hook_add(&h->hooks, "authentication-success", on_auth_success, NULL,
		 NULL, 0, "test");
	hook_add(&h->hooks, "authentication-failure", on_auth_failure, NULL,
		 NULL, 0, "test");
	hook_add(&h->hooks, "resource-bind", on_bind, NULL, NULL, 0, "test");
	hook_add(&h->hooks, "resource-unbind", on_unbind, NULL, NULL, 0, "test");
	hook_add(&h->hooks, "stream-features", on_features, NULL, NULL, 0, "test");
	return h;
}

/* Every session gone, then the hosts. */
static void teardown(void)
{
	session_close_all(NULL, NULL);
	for (int i = 0; i < 100 && session_count(); i++)
		pump();
	CHECK(session_count() == 0);
	route_free();
}

/* Opens a stream and authenticates as alice: the features after the
 * restart, or NULL. */
static const char *login(struct client *c)
{
	client_send(c, HEADER("localhost", "jabber:client"));
	if (!wait_for(c, "</stream:features>"))
		return NULL;
	client_send(c, AUTH_GOOD);
	if (!wait_for(c, "<success xmlns='" NS_SASL "'></success>"))
		return NULL;
	client_send(c, HEADER("localhost", "jabber:client"));
	return wait_for(c, "</stream:features>");
}

/* --- tests ------------------------------------------------------------------- */

static void test_login_bind_and_route(void)
{
	struct client *c;
	const char *got;

	setup();
	c = client_new();
	CHECK(session_count() == 1);
	/* the first stream: a header from us, SASL mechanisms, no STARTTLS
	 * without a TLS context, and the features of C handlers */
	client_send(c, HEADER("LocalHost", "jabber:client"));
	got = wait_for(c, "</stream:features>");
	CHECK(has(got, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
		  "xmlns:stream='http://etherx.jabber.org/streams' id='"));
	CHECK(has(got, "version='1.0' xml:lang='en' from='localhost'>"));
	CHECK(has(got, "<mechanisms xmlns='" NS_SASL "'>"
		  "<mechanism>SCRAM-SHA-256</mechanism>"
		  "<mechanism>SCRAM-SHA-1</mechanism>"
		  "<mechanism>PLAIN</mechanism></mechanisms>"));
	CHECK(has(got, "<test xmlns='urn:test:feature'/></stream:features>"));
	CHECK(!has(got, "starttls"));
	CHECK(!has(got, "-PLUS"));
	CHECK(!has(got, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'"));
	/* SASL2 with Bind2 inline; no FAST without TLS */
	CHECK(has(got, "<authentication xmlns='urn:xmpp:sasl:2'>"
		  "<mechanism>SCRAM-SHA-256</mechanism>"));
	CHECK(has(got, "<bind xmlns='urn:xmpp:bind:0'>"));
	CHECK(!has(got, "urn:xmpp:fast:0"));
	CHECK(seen.features == 1);

	client_send(c, AUTH_GOOD);
	CHECK_STR(wait_for(c, "</success>"), "<success xmlns='" NS_SASL "'></success>");
	CHECK(seen.authed != NULL);
	CHECK_STR(seen.authed_jid, "alice@localhost");
	CHECK(seen.authed_flags & SESS_F_AUTHED);
	CHECK(!(seen.authed_flags & SESS_F_BOUND));

	/* the restarted stream offers binding, not SASL */
	client_send(c, HEADER("localhost", "jabber:client"));
	got = wait_for(c, "</stream:features>");
	CHECK(has(got, "<stream:stream xmlns='jabber:client'"));
	CHECK(has(got, "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'/>"));
	CHECK(has(got, "<session xmlns='urn:ietf:params:xml:ns:xmpp-session'>"
		  "<optional/></session>"));
	CHECK(!has(got, "<mechanisms"));
	CHECK(seen.features == 2);

	client_send(c, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
		    "ns:xmpp-bind'><resource>phone</resource></bind></iq>");
	CHECK_STR(wait_for(c, "</iq>"), "<iq id='b1' type='result'>"
		  "<bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
		  "<jid>alice@localhost/phone</jid></bind></iq>");
	CHECK(seen.bound != NULL && seen.bound == seen.authed);
	CHECK_STR(seen.bound_jid, "alice@localhost/phone");
	CHECK(seen.bound_flags & SESS_F_BOUND);
	CHECK(route_find_full("alice@localhost/phone") == seen.bound);
	CHECK(route_session_count() == 1);

	/* a message to ourselves: stamped with our JID, through the router
	 * to the C handler, and back over the stream */
	client_send(c, "<message to='alice@localhost/phone' id='m1'>"
		    "<body>hello me</body></message>");
	CHECK_STR(wait_for(c, "</message>"),
		  "<message to='alice@localhost/phone' id='m1' "
		  "from='alice@localhost/phone'><body>hello me</body></message>");
	/* an iq nobody answers comes back as service-unavailable */
	client_send(c, "<iq type='get' id='q1' to='localhost'>"
		    "<query xmlns='urn:nobody'/></iq>");
	CHECK_STR(wait_for(c, "</iq>"),
		  "<iq type='error' id='q1' to='alice@localhost/phone' "
		  "from='localhost'><error type='cancel'><service-unavailable "
		  "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
	/* the RFC 3921 session is a no-op */
	client_send(c, "<iq type='set' id='s1'><session xmlns='urn:ietf:params:"
		    "xml:ns:xmpp-session'/></iq>");
	CHECK_STR(wait_for(c, "/>"), "<iq id='s1' type='result'/>");

	/* the client closes: we close too, and the session is unbound */
	client_send(c, "</stream:stream>");
	CHECK_STR(wait_for(c, "</stream:stream>"), "</stream:stream>");
	CHECK(wait_eof(c));
	CHECK(seen.unbound == seen.bound);
	CHECK(route_find_full("alice@localhost/phone") == NULL);
	CHECK(session_count() == 0);
	client_free(c);
	teardown();
}

static void test_wrong_password(void)
{
	struct client *c;

	setup();
	c = client_new();
	client_send(c, HEADER("localhost", "jabber:client"));
	CHECK(wait_for(c, "</stream:features>"));
	client_send(c, AUTH_BAD);
	CHECK_STR(wait_for(c, "</failure>"),
		  "<failure xmlns='" NS_SASL "'><not-authorized/></failure>");
	CHECK(seen.failed != NULL && seen.authed == NULL);
	CHECK(session_count() == 1);
	/* the stream goes on: the right password works */
	client_send(c, AUTH_GOOD);
	CHECK_STR(wait_for(c, "</success>"), "<success xmlns='" NS_SASL "'></success>");
	CHECK(seen.authed == seen.failed);
	client_free(c);
	teardown();
}

static void test_too_many_failures(void)
{
	struct client *c;

	setup();
	c = client_new();
	client_send(c, HEADER("localhost", "jabber:client"));
	CHECK(wait_for(c, "</stream:features>"));
	for (unsigned i = 1; i < cfg.max_auth_failures; i++) {
		client_send(c, AUTH_BAD);
		CHECK(wait_for(c, "<not-authorized/></failure>"));
	}
	client_send(c, AUTH_BAD);
	CHECK(has(wait_for(c, "</stream:stream>"), "<not-authorized/></failure>"
		  "<stream:error><policy-violation xmlns='" NS_STREAM_ERR "'/>"));
	CHECK(wait_eof(c));
	client_free(c);
	teardown();
}

static void test_host_unknown(void)
{
	struct client *c;
	const char *got;

	setup();
	c = client_new();
	client_send(c, HEADER("elsewhere.example", "jabber:client"));
	got = wait_for(c, "</stream:stream>");
	/* our header first, then the error */
	CHECK(has(got, "<stream:stream xmlns='jabber:client'"));
	CHECK(has(got, ">" STREAM_ERROR("host-unknown")));
	CHECK(!has(got, "<stream:features>"));
	CHECK(wait_eof(c));
	CHECK(session_count() == 0);
	client_free(c);
	teardown();
}

static void test_stanza_before_auth(void)
{
	struct client *c;

	setup();
	c = client_new();
	client_send(c, HEADER("localhost", "jabber:client"));
	CHECK(wait_for(c, "</stream:features>"));
	client_send(c, "<message to='alice@localhost/phone'><body>x</body></message>");
	CHECK_STR(wait_for(c, "</stream:stream>"), STREAM_ERROR("not-authorized"));
	CHECK(wait_eof(c));
	client_free(c);
	teardown();
}

static void test_stanza_before_bind(void)
{
	struct client *c;

	setup();
	c = client_new();
	CHECK(login(c));
	client_send(c, "<message to='alice@localhost'><body>x</body></message>");
	CHECK(has(wait_for(c, "</stream:stream>"), "<stream:error><not-authorized "
		  "xmlns='" NS_STREAM_ERR "'/><text xmlns='" NS_STREAM_ERR "'>"
		  "bind a resource first</text></stream:error>"));
	CHECK(wait_eof(c));
	CHECK(seen.bound == NULL);
	client_free(c);
	teardown();
}

static void test_preauth_iq(void)
{
	struct host *h = setup();
	struct client *c;

	/* only an iq a handler asked for gets through before auth */
	hook_add(&h->hooks, "pre-auth/iq-get/jabber:iq:register:query",
		 on_preauth_iq, NULL, NULL, 0, "test");
	c = client_new();
	client_send(c, HEADER("localhost", "jabber:client"));
	CHECK(wait_for(c, "</stream:features>"));
	client_send(c, "<iq type='get' id='r1'><query xmlns='jabber:iq:register'/></iq>");
	CHECK_STR(wait_for(c, "/>"), "<iq id='r1' type='result'/>");
	client_send(c, "<iq type='get' id='r2'><query xmlns='jabber:iq:version'/></iq>");
	CHECK_STR(wait_for(c, "</stream:stream>"), STREAM_ERROR("not-authorized"));
	client_free(c);
	teardown();
}

static void test_bad_namespace(void)
{
	struct client *c;
	const char *got;

	setup();
	/* a server stream on a client port */
	c = client_new();
	client_send(c, HEADER("localhost", "jabber:server"));
	got = wait_for(c, "</stream:stream>");
	CHECK(has(got, ">" STREAM_ERROR("invalid-namespace")));
	CHECK(wait_eof(c));
	client_free(c);
	/* a stream element in no stream namespace */
	c = client_new();
	client_send(c, "<?xml version='1.0'?><stream:stream to='localhost' "
		    "xmlns='jabber:client' xmlns:stream='urn:not-streams' "
		    "version='1.0'>");
	CHECK(has(wait_for(c, "</stream:stream>"), "<stream:error>"
		  "<invalid-namespace xmlns='" NS_STREAM_ERR "'/>"));
	CHECK(wait_eof(c));
	client_free(c);
	teardown();
}

static void test_unsupported_version(void)
{
	struct client *c;

	setup();
	c = client_new();
	client_send(c, "<?xml version='1.0'?><stream:stream to='localhost' "
		    "xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/"
		    "streams' version='2.0'>");
	CHECK(has(wait_for(c, "</stream:stream>"),
		  STREAM_ERROR("unsupported-version")));
	CHECK(wait_eof(c));
	client_free(c);
	teardown();
}

static void test_client_goes_away(void)
{
	struct client *c;

	setup();
	c = client_new();
	CHECK(login(c));
	client_send(c, "<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:"
		    "ns:xmpp-bind'/></iq>");
	CHECK(wait_for(c, "</jid></bind></iq>"));
	CHECK(seen.bound && route_session_count() == 1);
	/* the socket closes without a word: the session ends and is freed */
	client_free(c);
	for (int i = 0; i < 100 && session_count(); i++)
		pump();
	CHECK(session_count() == 0);
	CHECK(seen.unbound == seen.bound);
	CHECK(route_session_count() == 0);
	teardown();
}

int main(void)
{
	static const unsigned char secret[32] = "test secret, not a real one";
	int rc;

	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	signal(SIGPIPE, SIG_IGN);	/* as the server: a closed peer is EPIPE */
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	loop = ev_loop_new(EVFLAG_AUTO);
	conn_global_init(loop);
	c2s_global_init(secret);
	rc = store_open(base, 0);
	if (rc == 0)
		rc = accounts_set_password("localhost", "alice", "secret",
					   ACCOUNTS_DEFAULT_ITERATIONS);
	if (rc == 0)
		rc = store_commit();
	if (rc != 0) {
		fprintf(stderr, "store: %s\n", strerror(-rc));
		return 1;
	}
	RUN(test_login_bind_and_route);
	RUN(test_wrong_password);
	RUN(test_too_many_failures);
	RUN(test_host_unknown);
	RUN(test_stanza_before_auth);
	RUN(test_stanza_before_bind);
	RUN(test_preauth_iq);
	RUN(test_bad_namespace);
	RUN(test_unsupported_version);
	RUN(test_client_goes_away);
	session_free_dead();
	store_close();
	ipstate_free_all();
	xs_trim();
	conn_global_free();
	ev_loop_destroy(loop);
	h_rm_tree(base);
	TEST_END();
}
