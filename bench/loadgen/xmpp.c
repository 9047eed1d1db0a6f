/*
 * xmpp.c - the client side of an XMPP stream, on expat.
 *
 * One namespace-aware parser per connection, reset on every stream restart.
 * Handlers look only at what the generator needs (features, SASL, iq ids,
 * message bodies, presence status and type) and never collect text they do
 * not use. Anything that ends or restarts the stream is only noted inside a
 * handler (c->after) and done once XML_Parse has returned.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NS_STREAMS "http://etherx.jabber.org/streams "
#define NS_TLS "urn:ietf:params:xml:ns:xmpp-tls "
#define NS_SASL "urn:ietf:params:xml:ns:xmpp-sasl "
#define NS_BIND "urn:ietf:params:xml:ns:xmpp-bind "
#define NS_CLIENT "jabber:client "
#define NS_SM "urn:xmpp:sm:3 "
#define NS_FRAMING "urn:ietf:params:xml:ns:xmpp-framing "

/* Expat 2.6.0 added reparse deferral (on by default): a token cut in two by
 * a read is not parsed again until "enough" new bytes arrive, which on a
 * live stream holds stanzas back for milliseconds. Distributions backport
 * it without changing the version number, so the switch is found at run
 * time. */
XMLPARSEAPI(XML_Bool) XML_SetReparseDeferralEnabled(XML_Parser parser,
						    XML_Bool enabled);
#pragma weak XML_SetReparseDeferralEnabled

enum { AFTER_NONE, AFTER_RESTART, AFTER_STARTTLS, AFTER_CLOSE, AFTER_FAIL };

/* What to do once XML_Parse returns, and for AFTER_FAIL which counter. */
struct after {
	int what;
	enum lg_ctr why;
};

static __thread struct after t_after;
static uint32_t g_hash_salt;

static void on_start(void *ud, const char *name, const char **atts);
static void on_end(void *ud, const char *name);
static void on_text(void *ud, const char *s, int len);

static void stop(struct lg_conn *c, int what, enum lg_ctr why, const char *msg)
{
	if (t_after.what != AFTER_NONE)
		return;
	t_after.what = what;
	t_after.why = why;
	if (msg) {
		lg_buf_reset(&c->text);
		lg_buf_adds(&c->text, msg);
	}
	XML_StopParser(c->xp, XML_FALSE);
}

void lg_expat_setup(XML_Parser p, void *ud)
{
	if (XML_SetReparseDeferralEnabled)
		XML_SetReparseDeferralEnabled(p, XML_FALSE);
	XML_SetUserData(p, ud);
}

void lg_xmpp_reset(struct lg_conn *c)
{
	if (!g_hash_salt) {
		uint64_t seed = lg_now_ns() | 1;

		g_hash_salt = (uint32_t)lg_rand(&seed) | 1;
	}
	if (!c->xp)
		c->xp = XML_ParserCreateNS(NULL, ' ');
	else
		XML_ParserReset(c->xp, NULL);
	if (!c->xp) {
		fputs("loadgen: out of memory (expat)\n", stderr);
		abort();
	}
	XML_SetHashSalt(c->xp, g_hash_salt);
	lg_expat_setup(c->xp, c);
	XML_SetElementHandler(c->xp, on_start, on_end);
	XML_SetCharacterDataHandler(c->xp, on_text);
	c->depth = 0;
	c->skind = SK_NONE;
	c->flags &= (uint16_t)~CF_COLLECT;
	/* over WebSocket every frame is one element: under a root of our
	 * own they parse as the children of a stream */
	if (g_opts.transport == LG_TR_WS &&
	    XML_Parse(c->xp, lg_ws_root, (int)strlen(lg_ws_root), XML_FALSE) !=
	    XML_STATUS_OK) {
		fputs("loadgen: the WebSocket stream root does not parse\n", stderr);
		abort();
	}
}

void lg_xmpp_open(struct lg_conn *c)
{
	struct lg_buf *b = &c->out;

	if (g_opts.transport == LG_TR_WS) {
		lg_buf_adds(b, "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='");
		lg_buf_adds(b, lg_domain_of(c->user));
		lg_buf_adds(b, "' version='1.0'/>");
	} else {
		lg_buf_adds(b, "<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
			    "xmlns:stream='http://etherx.jabber.org/streams' to='");
		lg_buf_adds(b, lg_domain_of(c->user));
		lg_buf_adds(b, "' version='1.0'>");
	}
	lg_conn_dirty(c);
	c->state = ST_FEATURES;
}

int lg_user_number(const char *jid)
{
	size_t plen = strlen(g_opts.prefix);
	const char *p;
	long v = 0;

	if (!jid || strncmp(jid, g_opts.prefix, plen) != 0)
		return -1;
	p = jid + plen;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (*p - '0');
		if (v > 1000000000)
			return -1;
	}
	if (*p != '@')
		return -1;
	return (int)v;
}

void lg_jid_add(struct lg_buf *b, int user, bool full)
{
	lg_buf_adds(b, g_opts.prefix);
	lg_buf_addu(b, (uint64_t)user);
	lg_buf_adds(b, "@");
	lg_buf_adds(b, lg_domain_of(user));
	if (full) {
		lg_buf_adds(b, "/");
		lg_buf_adds(b, g_opts.resource);
	}
}

static const char *attr(const char **atts, const char *name)
{
	for (; atts[0]; atts += 2)
		if (strcmp(atts[0], name) == 0)
			return atts[1];
	return NULL;
}

static uint32_t type_flags(const char *type)
{
	if (!type)
		return 0;
	if (strcmp(type, "error") == 0) return SF_TYPE_ERROR;
	if (strcmp(type, "result") == 0) return SF_TYPE_RESULT;
	if (strcmp(type, "set") == 0) return SF_TYPE_SET;
	if (strcmp(type, "get") == 0) return SF_TYPE_GET;
	if (strcmp(type, "subscribe") == 0) return SF_SUBSCRIBE;
	if (strcmp(type, "subscribed") == 0) return SF_SUBSCRIBED;
	if (strcmp(type, "unavailable") == 0) return SF_UNAVAILABLE;
	return SF_OTHER_TYPE;
}

static void collect(struct lg_conn *c)
{
	lg_buf_reset(&c->text);
	c->flags |= CF_COLLECT;
}

/* XEP-0198 elements: <r/> is answered, <enabled/> starts the count,
 * <failed/> ends the connection; <a/> (for our own <r/>, never sent) and
 * anything else are passed over. */
static void start_sm(struct lg_conn *c, const char *local)
{
	if (strcmp(local, "r") == 0)
		c->skind = SK_SM_R;
	else if (strcmp(local, "enabled") == 0)
		c->skind = SK_SM_ENABLED;
	else if (strcmp(local, "failed") == 0)
		c->skind = SK_SM_FAILED;
	else
		c->skind = SK_OTHER;
}

/* A top-level element begins: what is it? */
static void start_stanza(struct lg_conn *c, const char *name, const char **atts)
{
	const char *id;

	c->sflags = 0;
	c->peer = -1;
	c->flags &= (uint16_t)~CF_COLLECT;
	if (strcmp(name, NS_CLIENT "message") == 0) {
		c->skind = SK_MESSAGE;
		c->sflags = type_flags(attr(atts, "type"));
	} else if (strcmp(name, NS_CLIENT "presence") == 0) {
		c->skind = SK_PRESENCE;
		c->sflags = type_flags(attr(atts, "type"));
		c->peer = lg_user_number(attr(atts, "from"));
		lg_buf_reset(&c->text);
	} else if (strcmp(name, NS_CLIENT "iq") == 0) {
		c->skind = SK_IQ;
		c->sflags = type_flags(attr(atts, "type"));
		id = attr(atts, "id");
		snprintf(c->iq_id, sizeof(c->iq_id), "%s", id ? id : "");
	} else if (strcmp(name, NS_STREAMS "features") == 0) {
		c->skind = SK_FEATURES;
	} else if (strncmp(name, NS_SASL, sizeof(NS_SASL) - 1) == 0) {
		const char *local = name + sizeof(NS_SASL) - 1;

		if (strcmp(local, "challenge") == 0)
			c->skind = SK_CHALLENGE;
		else if (strcmp(local, "success") == 0)
			c->skind = SK_SUCCESS;
		else if (strcmp(local, "failure") == 0)
			c->skind = SK_SASL_FAIL;
		else
			c->skind = SK_OTHER;
		collect(c);
	} else if (strcmp(name, NS_TLS "proceed") == 0) {
		c->skind = SK_PROCEED;
	} else if (strcmp(name, NS_TLS "failure") == 0) {
		c->skind = SK_TLS_FAIL;
	} else if (strcmp(name, NS_STREAMS "error") == 0) {
		c->skind = SK_STREAM_ERROR;
		lg_buf_reset(&c->text);
	} else if (strncmp(name, NS_SM, sizeof(NS_SM) - 1) == 0) {
		start_sm(c, name + sizeof(NS_SM) - 1);
	} else if (strcmp(name, NS_FRAMING "close") == 0) {
		c->skind = SK_WS_CLOSE;	/* RFC 7395: the stream's end */
	} else {
		c->skind = SK_OTHER;
	}
}

static void start_child(struct lg_conn *c, const char *name)
{
	const char *local = strchr(name, ' ');

	local = local ? local + 1 : name;
	switch (c->skind) {
	case SK_FEATURES:
		if (strcmp(name, NS_TLS "starttls") == 0)
			c->sflags |= SF_STARTTLS;
		else if (strcmp(name, NS_BIND "bind") == 0)
			c->sflags |= SF_BIND;
		else if (strcmp(name, NS_SASL "mechanisms") == 0)
			c->sflags |= SF_IN_MECH;
		break;
	case SK_MESSAGE:
		if (strcmp(name, NS_CLIENT "body") == 0) {
			c->sflags |= SF_IN_BODY;
			collect(c);
		}
		break;
	case SK_PRESENCE:
		if (strcmp(name, NS_CLIENT "status") == 0)
			collect(c);
		break;
	case SK_IQ:
		if (strcmp(name, "jabber:iq:roster query") == 0)
			c->sflags |= SF_ROSTER;
		break;
	case SK_SASL_FAIL:
	case SK_STREAM_ERROR:
	case SK_TLS_FAIL:
		c->flags &= (uint16_t)~CF_COLLECT;
		if (!(c->sflags & SF_HAVE_COND) && strcmp(local, "text") != 0) {
			lg_buf_reset(&c->text);
			lg_buf_adds(&c->text, local);
			c->sflags |= SF_HAVE_COND;
		}
		break;
	default:
		break;
	}
}

static void on_start(void *ud, const char *name, const char **atts)
{
	struct lg_conn *c = ud;
	int d = ++c->depth;

	if (t_after.what != AFTER_NONE)
		return;
	if (d == 1) {
		if (strcmp(name, NS_STREAMS "stream") != 0)
			stop(c, AFTER_FAIL, C_ERR_STREAM, "not an XMPP stream");
	} else if (d == 2) {
		start_stanza(c, name, atts);
	} else if (d == 3) {
		start_child(c, name);
	} else if (d == 4 && c->skind == SK_MESSAGE && (c->sflags & SF_TYPE_ERROR) &&
		   !c->w->first_error[0] &&
		   strncmp(name, "urn:ietf:params:xml:ns:xmpp-stanzas ", 36) == 0 &&
		   strcmp(name + 36, "text") != 0) {
		/* the first bounce's condition says why messages come back */
		snprintf(c->w->first_error, sizeof(c->w->first_error),
			 "%s%d: message bounced: %s", g_opts.prefix, c->user, name + 36);
	} else if (d == 4 && c->skind == SK_FEATURES && (c->sflags & SF_IN_MECH) &&
		   strcmp(name, NS_SASL "mechanism") == 0) {
		collect(c);
	}
}

static void on_text(void *ud, const char *s, int len)
{
	struct lg_conn *c = ud;

	if (c->flags & CF_COLLECT)
		lg_buf_add(&c->text, s, (size_t)len);
}

static void on_mechanism(struct lg_conn *c)
{
	const char *m = c->text.p ? c->text.p : "";

	if (strcmp(m, "PLAIN") == 0)
		c->sflags |= SF_M_PLAIN;
	else if (strcmp(m, "SCRAM-SHA-1") == 0)
		c->sflags |= SF_M_SHA1;
	else if (strcmp(m, "SCRAM-SHA-256") == 0)
		c->sflags |= SF_M_SHA256;
}

static void send_auth(struct lg_conn *c)
{
	static const uint32_t need[] = {
		[LG_MECH_SCRAM_SHA256] = SF_M_SHA256,
		[LG_MECH_SCRAM_SHA1] = SF_M_SHA1,
		[LG_MECH_PLAIN] = SF_M_PLAIN,
	};
	struct lg_buf *b = &c->out;
	char user[64];

	if (!(c->sflags & need[g_opts.mech])) {
		char msg[120];

		snprintf(msg, sizeof(msg), "%s not offered (PLAIN %d, SCRAM-SHA-1 %d, "
			 "SCRAM-SHA-256 %d)", lg_mech_name(g_opts.mech),
			 !!(c->sflags & SF_M_PLAIN), !!(c->sflags & SF_M_SHA1),
			 !!(c->sflags & SF_M_SHA256));
		stop(c, AFTER_FAIL, C_ERR_AUTH, msg);
		return;
	}
	snprintf(user, sizeof(user), "%s%d", g_opts.prefix, c->user);
	lg_buf_adds(b, "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='");
	lg_buf_adds(b, lg_mech_name(g_opts.mech));
	lg_buf_adds(b, "'>");
	lg_sasl_start(g_opts.mech, user, g_opts.password, &c->scram, b);
	lg_buf_adds(b, "</auth>");
	lg_conn_dirty(c);
	c->state = ST_SASL;
}

static void on_features(struct lg_conn *c)
{
	if (g_opts.tls == LG_TLS_STARTTLS && !(c->flags & CF_TLS)) {
		if (!(c->sflags & SF_STARTTLS)) {
			stop(c, AFTER_FAIL, C_ERR_TLS, "STARTTLS not offered");
			return;
		}
		lg_conn_sends(c, "<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>");
		c->state = ST_TLS_WAIT;
	} else if (!(c->flags & CF_AUTHED)) {
		send_auth(c);
	} else if (!(c->sflags & SF_BIND)) {
		stop(c, AFTER_FAIL, C_ERR_BIND, "no bind feature after SASL");
	} else {
		struct lg_buf *b = &c->out;

		lg_buf_adds(b, "<iq type='set' id='bind'><bind xmlns='urn:ietf:params:"
			    "xml:ns:xmpp-bind'><resource>");
		lg_xml_escape(b, g_opts.resource);
		lg_buf_adds(b, "</resource></bind></iq>");
		lg_conn_dirty(c);
		c->state = ST_BIND;
	}
}

static void on_sasl(struct lg_conn *c)
{
	const char *t = c->text.p ? c->text.p : "";
	char msg[100];

	if (c->state != ST_SASL) {
		stop(c, AFTER_FAIL, C_ERR_AUTH, "SASL element out of order");
		return;
	}
	if (c->skind == SK_CHALLENGE) {
		struct lg_buf *b = &c->out;

		lg_buf_adds(b, "<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
		if (lg_sasl_step(c->scram, t, b) != 0) {
			b->len -= strlen("<response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>");
			stop(c, AFTER_FAIL, C_ERR_AUTH, "bad SCRAM challenge");
			return;
		}
		lg_buf_adds(b, "</response>");
		lg_conn_dirty(c);
	} else if (c->skind == SK_SUCCESS) {
		if (lg_sasl_finish(c->scram, t) != 0) {
			stop(c, AFTER_FAIL, C_ERR_AUTH, "server signature is wrong");
			return;
		}
		lg_sasl_free(c->scram);
		c->scram = NULL;
		c->flags |= CF_AUTHED;
		stop(c, AFTER_RESTART, C_ERR_STREAM, NULL);
	} else {
		snprintf(msg, sizeof(msg), "SASL failure: %s", t);
		stop(c, AFTER_FAIL, C_ERR_AUTH, msg);
	}
}

static void went_online(struct lg_conn *c)
{
	struct lg_worker *w = c->w;

	c->state = ST_ONLINE;
	ev_timer_stop(w->loop, &c->timer);
	lg_hist_add(&w->lat_login, lg_now_ns() - c->t_start);
	w->handshaking--;
	lg_ctr_add(w, C_CONNECTING, (uint64_t)-1);
	lg_ctr_add(w, C_LOGIN_OK, 1);
	lg_ctr_add(w, C_ONLINE, 1);
	if (g_online)
		atomic_store_explicit(&g_online[c->user - g_opts.first], 1,
				      memory_order_relaxed);
	if (g_opts.smacks)	/* as mobile clients do: right after bind */
		lg_conn_sends(c, "<enable xmlns='urn:xmpp:sm:3' resume='true'/>");
	lg_sc_online(c);
}

/* An iq from the server: answer gets and sets (roster pushes get a result). */
static void answer_iq(struct lg_conn *c)
{
	struct lg_buf *b = &c->out;

	lg_buf_adds(b, "<iq id='");
	lg_xml_escape(b, c->iq_id);
	if ((c->sflags & SF_ROSTER) && (c->sflags & SF_TYPE_SET)) {
		lg_buf_adds(b, "' type='result'/>");
	} else {
		lg_buf_adds(b, "' type='error'><error type='cancel'><service-unavailable "
			    "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>");
	}
	lg_conn_dirty(c);
}

static void on_iq(struct lg_conn *c)
{
	if (c->sflags & (SF_TYPE_GET | SF_TYPE_SET)) {
		answer_iq(c);
		return;
	}
	if (c->state == ST_BIND && strcmp(c->iq_id, "bind") == 0) {
		if (c->sflags & SF_TYPE_RESULT)
			went_online(c);
		else
			stop(c, AFTER_FAIL, C_ERR_BIND, "bind refused");
		return;
	}
	if (strcmp(c->iq_id, "roster") == 0 && (c->sflags & SF_TYPE_RESULT)) {
		c->flags |= CF_SESSION;
		lg_sc_session(c);
	}
}

/* The end of a XEP-0198 element (--smacks). */
static void end_sm(struct lg_conn *c)
{
	char ack[64];

	switch (c->skind) {
	case SK_SM_ENABLED:
		c->flags |= CF_SM;
		c->sm_h = 0;
		break;
	case SK_SM_R:
		snprintf(ack, sizeof(ack), "<a xmlns='urn:xmpp:sm:3' h='%u'/>", c->sm_h);
		lg_conn_sends(c, ack);
		lg_ctr_add(c->w, C_SM_ACKS, 1);
		break;
	case SK_SM_FAILED:
		stop(c, AFTER_FAIL, C_ERR_STREAM, "stream management refused");
		break;
	default:
		break;
	}
}

static void end_stanza(struct lg_conn *c)
{
	char msg[100];

	c->flags &= (uint16_t)~CF_COLLECT;
	if ((c->flags & CF_SM) &&
	    (c->skind == SK_MESSAGE || c->skind == SK_PRESENCE || c->skind == SK_IQ))
		c->sm_h++;
	switch (c->skind) {
	case SK_MESSAGE:
		if (c->sflags & SF_TYPE_ERROR)
			lg_ctr_add(c->w, C_MSG_ERR, 1);
		else if (c->sflags & SF_IN_BODY)
			lg_sc_message(c, c->text.p ? c->text.p : "", c->text.len);
		break;
	case SK_PRESENCE:
		lg_sc_presence(c, c->text.p ? c->text.p : "", c->text.len);
		break;
	case SK_IQ:
		on_iq(c);
		break;
	case SK_FEATURES:
		on_features(c);
		break;
	case SK_CHALLENGE:
	case SK_SUCCESS:
	case SK_SASL_FAIL:
		on_sasl(c);
		break;
	case SK_PROCEED:
		if (c->state == ST_TLS_WAIT)
			stop(c, AFTER_STARTTLS, C_ERR_TLS, NULL);
		else
			stop(c, AFTER_FAIL, C_ERR_TLS, "unexpected <proceed/>");
		break;
	case SK_TLS_FAIL:
		stop(c, AFTER_FAIL, C_ERR_TLS, "STARTTLS refused");
		break;
	case SK_STREAM_ERROR:
		snprintf(msg, sizeof(msg), "stream error: %s", c->text.p ? c->text.p : "");
		stop(c, AFTER_FAIL, C_ERR_STREAM, msg);
		break;
	case SK_SM_ENABLED:
	case SK_SM_FAILED:
	case SK_SM_R:
		end_sm(c);
		break;
	case SK_WS_CLOSE:
		stop(c, AFTER_CLOSE, C_ERR_EOF, NULL);
		break;
	default:
		break;
	}
	c->skind = SK_NONE;
}

static void on_end(void *ud, const char *name)
{
	struct lg_conn *c = ud;
	int d = c->depth--;

	if (t_after.what != AFTER_NONE)
		return;
	if (d == 1) {
		stop(c, AFTER_CLOSE, C_ERR_EOF, NULL);
	} else if (d == 2) {
		end_stanza(c);
	} else if (d == 3) {
		if (c->skind == SK_MESSAGE || c->skind == SK_PRESENCE)
			c->flags &= (uint16_t)~CF_COLLECT;
		else if (c->skind == SK_FEATURES)
			c->sflags &= ~(uint32_t)SF_IN_MECH;
	} else if (d == 4 && c->skind == SK_FEATURES && (c->flags & CF_COLLECT)) {
		on_mechanism(c);
		c->flags &= (uint16_t)~CF_COLLECT;
	}
}

int lg_xmpp_feed(struct lg_conn *c, const char *data, size_t n)
{
	struct after a;

	t_after.what = AFTER_NONE;
	if (XML_Parse(c->xp, data, (int)n, XML_FALSE) == XML_STATUS_ERROR &&
	    XML_GetErrorCode(c->xp) != XML_ERROR_ABORTED) {
		lg_conn_fail(c, C_ERR_STREAM, "XML: %s",
			     XML_ErrorString(XML_GetErrorCode(c->xp)));
		return -1;
	}
	a = t_after;
	t_after.what = AFTER_NONE;
	switch (a.what) {
	case AFTER_RESTART:
		lg_xmpp_reset(c);
		lg_xmpp_open(c);
		return 0;
	case AFTER_STARTTLS:
		lg_buf_reset(&c->out);	/* nothing may be sent in the clear now */
		return lg_tls_begin(c) == 0 ? 1 : -1;
	case AFTER_CLOSE:
		if (c->state == ST_CLOSING)
			lg_conn_release(c);
		else
			lg_conn_fail(c, C_ERR_EOF, "server closed the stream (state %d)",
				     c->state);
		return -1;
	case AFTER_FAIL:
		lg_conn_fail(c, a.why, "%s", c->text.p ? c->text.p : "?");
		return -1;
	default:
		return 0;
	}
}
