/* websocket.c - XMPP over WebSocket (RFC 7395, RFC 6455): the upgrade and
 * the session framing, with wslay reading and writing the frames. */
#include "websocket.h"
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <strings.h>
#include <openssl/sha.h>
#include <wslay/wslay.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

/* One queued message, read but not yet handed to the session. */
struct ws_msg {
	struct ws_msg *next;
	size_t len;
	char data[];
};

struct ws {
	wslay_event_context_ptr ctx;
	struct conn *c;
	const char *in;			/* bytes being read (wslay's recv) */
	size_t in_len;
	uint64_t msg_len;		/* of the message being read */
	size_t limit;			/* its largest */
	struct ws_msg *inbox, **inbox_tail;
	uint16_t close_code;		/* what our close frame says */
	bool too_big, binary, closing;
};

static const struct session_listen *c2s_listen;
static size_t n_ws;

void websocket_init(const struct session_listen *c2s)
{
	c2s_listen = c2s;
}

size_t websocket_count(void)
{
	return n_ws;
}

/* --- wslay's callbacks: bytes in and out, messages queued ------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
		       int flags, void *user)
{
	struct ws *ws = user;

	if (!ws->in_len) {
		wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
		return -1;
	}
	if (len > ws->in_len)
		len = ws->in_len;
	memcpy(buf, ws->in, len);
	ws->in += len;
	ws->in_len -= len;
	return (ssize_t)len;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
		       size_t len, int flags, void *user)
{
	struct ws *ws = user;

	if (!ws->c || conn_send(ws->c, data, len) != 0) {
		wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
		return -1;
	}
	return (ssize_t)len;
}

/* A frame begins: a message over the limit is refused before its
 * payload is read (RFC 7395 3.3.3's stanza size, RFC 6455's 1009). */
static void ws_frame_start(wslay_event_context_ptr ctx,
			   const struct wslay_event_on_frame_recv_start_arg *arg,
			   void *user)
{
	struct ws *ws = user;

	if (arg->opcode & 0x8)	/* control frames: wslay's */
		return;
	if (arg->opcode != WSLAY_CONTINUATION_FRAME)
		ws->msg_len = 0;
	ws->msg_len += arg->payload_length;
	if (ws->msg_len > ws->limit) {
		ws->too_big = true;
		wslay_event_shutdown_read(ctx);
	}
}

static void ws_message(wslay_event_context_ptr ctx,
		       const struct wslay_event_on_msg_recv_arg *arg, void *user)
{
	struct ws *ws = user;
	struct ws_msg *m;

	if (arg->opcode == WSLAY_BINARY_FRAME) {
		ws->binary = true;
		return;
	}
	if (arg->opcode != WSLAY_TEXT_FRAME || ws->too_big)
		return;		/* close, ping, pong: wslay answers them */
	m = xmalloc(sizeof(*m) + arg->msg_length);
	m->next = NULL;
	m->len = arg->msg_length;
	memcpy(m->data, arg->msg, arg->msg_length);
	*ws->inbox_tail = m;
	ws->inbox_tail = &m->next;
}

static const struct wslay_event_callbacks ws_callbacks = {
	.recv_callback = ws_recv,
	.send_callback = ws_send,
	.on_frame_recv_start_callback = ws_frame_start,
	.on_msg_recv_callback = ws_message,
};

/* --- the framing -------------------------------------------------------- */

static void flush(struct ws *ws)
{
	if (ws->c && wslay_event_want_write(ws->ctx))
		wslay_event_send(ws->ctx);
}

static int framing_send(struct session *s, void *data, const char *buf, size_t len)
{
	struct ws *ws = data;
	struct wslay_event_msg m = { WSLAY_TEXT_FRAME, (const uint8_t *)buf, len };

	if (!ws->c || ws->closing)
		return -EPIPE;
	if (wslay_event_queue_msg(ws->ctx, &m) != 0)
		return -EPIPE;
	flush(ws);
	return 0;
}

static void framing_close(struct session *s, void *data)
{
	struct ws *ws = data;

	if (ws->closing || !ws->c)
		return;
	ws->closing = true;
	if (!wslay_event_get_close_sent(ws->ctx))
		wslay_event_queue_close(ws->ctx, ws->close_code, NULL, 0);
	flush(ws);
}

static void drop_inbox(struct ws *ws)
{
	while (ws->inbox) {
		struct ws_msg *m = ws->inbox;
		ws->inbox = m->next;
		free(m);
	}
	ws->inbox_tail = &ws->inbox;
}

static void framing_free(void *data)
{
	struct ws *ws = data;

	drop_inbox(ws);
	wslay_event_context_free(ws->ctx);
	free(ws);
	n_ws--;
}

/* Hands the messages wslay read to the session, after wslay returned:
 * the session may enter Lua. The connection's owner is asked each time
 * (XEP-0198 may move the connection to another session). */
static void deliver(struct ws *ws, struct conn *c)
{
	while (ws->inbox) {
		struct ws_msg *m = ws->inbox;
		struct session *s = c->owner;
		ws->inbox = m->next;
		if (!ws->inbox)
			ws->inbox_tail = &ws->inbox;
		if (s && !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			session_input(s, m->data, m->len);
		free(m);
	}
}

static void framing_input(struct session *s, void *data, const char *buf, size_t len)
{
	struct ws *ws = data;
	struct conn *c = s->conn;

	ws->in = buf;
	ws->in_len = len;
	int r = wslay_event_recv(ws->ctx);
	ws->in_len = 0;
	if (ws->too_big) {
		drop_inbox(ws);
		ws->close_code = WSLAY_CODE_MESSAGE_TOO_BIG;
		session_close(s, "policy-violation", "the message is larger than "
			      "the stanza size limit");
		return;
	}
	if (ws->binary) {
		drop_inbox(ws);
		ws->close_code = WSLAY_CODE_UNSUPPORTED_DATA;
		session_close(s, "unsupported-encoding", "binary messages carry no XMPP");
		return;
	}
	flush(ws);	/* pongs, and the answer to a close */
	deliver(ws, c);
	if (r != 0 || wslay_event_get_close_received(ws->ctx)) {
		/* The client closed the WebSocket (with or without <close/>
		 * first), or broke its framing: the connection goes, as when
		 * a TCP stream ends (XEP-0198 may keep the session). */
		if (r != 0)
			log_debug("%s:%d: WebSocket framing error (%d)", c->ip,
				  c->port, r);
		ws->closing = true;
		if (!c->owner)
			return;
		conn_close(c, r != 0 ? "WebSocket protocol error" : "WebSocket closed");
	}
}

static const struct session_framing ws_framing = {
	.name = "websocket",
	.send = framing_send,
	.input = framing_input,
	.close = framing_close,
	.free = framing_free,
};

/* --- the upgrade ---------------------------------------------------------- */

/* Whether the comma-separated header value lists token (any case). */
static bool lists(const char *value, const char *token)
{
	size_t n = strlen(token);

	while (value && *value) {
		while (*value == ' ' || *value == '\t' || *value == ',')
			value++;
		const char *end = value;
		while (*end && *end != ',')
			end++;
		const char *e = end;
		while (e > value && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if ((size_t)(e - value) == n && strncasecmp(value, token, n) == 0)
			return true;
		value = end;
	}
	return false;
}

/* The Origin is ours (same authority as the Host asked for), allowed by
 * the list, or anything goes; no Origin: not a browser. */
static bool origin_allowed(const struct http_request *req, const struct ws_options *o)
{
	const char *origin = http_header(req, "origin");
	const char *host = http_header(req, "host");
	const char *authority;

	if (!origin || o->any_origin)
		return true;
	for (char **p = o->origins; p && *p; p++)
		if (strcasecmp(*p, origin) == 0)
			return true;
	authority = strstr(origin, "://");
	return authority && host && strcasecmp(authority + 3, host) == 0;
}

static void accept_key(const char *key, struct sbuf *out)
{
	unsigned char md[SHA_DIGEST_LENGTH];
	struct sbuf in;

	sbuf_init(&in);
	sbuf_adds(&in, key);
	sbuf_adds(&in, WS_GUID);
	SHA1((const unsigned char *)in.p, in.len, md);
	b64_encode(out, md, sizeof(md));
	sbuf_free(&in);
}

/* RFC 6455 4.2.1: what a handshake must have. NULL, or why not. */
static const char *bad_handshake(const struct http_request *req)
{
	const char *key = http_header(req, "sec-websocket-key");
	struct sbuf raw;
	bool ok;

	if (!lists(http_header(req, "upgrade"), "websocket"))
		return "Upgrade: websocket expected";
	if (!lists(http_header(req, "connection"), "upgrade"))
		return "Connection: Upgrade expected";
	if (!key)
		return "Sec-WebSocket-Key missing";
	sbuf_init(&raw);
	ok = b64_decode(&raw, key, strlen(key)) == 0 && raw.len == 16;
	sbuf_free(&raw);
	if (!ok)
		return "bad Sec-WebSocket-Key";
	if (!lists(http_header(req, "sec-websocket-protocol"), "xmpp"))
		return "the xmpp subprotocol (RFC 7395) is required";
	return NULL;
}

static struct ws *ws_new(struct conn *c, size_t limit)
{
	struct ws *ws = xcalloc(1, sizeof(*ws));

	if (wslay_event_context_server_init(&ws->ctx, &ws_callbacks, ws) != 0)
		abort();	/* only ENOMEM */
	ws->c = c;
	ws->limit = limit;
	ws->inbox_tail = &ws->inbox;
	ws->close_code = WSLAY_CODE_NORMAL_CLOSURE;
	n_ws++;
	return ws;
}

void websocket_serve(struct http_request *req, const char *rest,
		     const struct http_route *route, void *data)
{
	const struct ws_options *o = data;
	const char *why, *version, *left;
	size_t left_len;
	struct sbuf h;
	struct conn *c;

	if (!c2s_listen || strcmp(req->method, "GET") != 0) {
		http_respond_status(req, 405, NULL);
		return;
	}
	if (!http_header(req, "upgrade")) {
		http_respond(req, 426, "Upgrade: websocket\r\nConnection: Upgrade\r\n"
			     "Content-Type: text/plain; charset=utf-8\r\n",
			     "This is an XMPP over WebSocket endpoint (RFC 7395).\n", 52);
		return;
	}
	if ((why = bad_handshake(req))) {
		http_respond_status(req, 400, why);
		return;
	}
	version = http_header(req, "sec-websocket-version");
	if (!version || strcmp(version, "13") != 0) {
		http_respond(req, 426, "Sec-WebSocket-Version: 13\r\n", NULL, 0);
		return;
	}
	if (!origin_allowed(req, o)) {
		log_info("%s:%d: WebSocket from origin %s refused", req->ip, req->port,
			 http_header(req, "origin"));
		http_respond_status(req, 403, "this origin may not connect");
		return;
	}
	sbuf_init(&h);
	sbuf_adds(&h, "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
	accept_key(http_header(req, "sec-websocket-key"), &h);
	sbuf_adds(&h, "\r\nSec-WebSocket-Protocol: xmpp\r\n");
	bool secure = req->secure || o->consider_secure;
	c = http_upgrade(req, h.p, &left, &left_len);
	sbuf_free(&h);
	if (!c)
		return;
	struct ws *ws = ws_new(c, c2s_listen->cfg->limits.max_stanza);
	struct session *s = session_accept_conn(c, c2s_listen, &ws_framing, ws, secure);
	if (left_len && !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		framing_input(s, ws, left, left_len);
}

struct ws_options *websocket_options_new(bool consider_secure, bool any_origin,
					 const char *const *origins, size_t n)
{
	struct ws_options *o = xcalloc(1, sizeof(*o));

	o->consider_secure = consider_secure;
	o->any_origin = any_origin;
	o->origins = xcalloc(n + 1, sizeof(char *));
	for (size_t i = 0; i < n; i++)
		o->origins[i] = xstrdup(origins[i]);
	return o;
}

void websocket_options_free(void *options)
{
	struct ws_options *o = options;

	for (char **p = o->origins; p && *p; p++)
		free(*p);
	free(o->origins);
	free(o);
}
