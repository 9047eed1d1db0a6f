/*
 * ws.c - the generator's WebSocket transport (--transport ws): XMPP over
 * WebSocket as RFC 7395 has it, on RFC 6455 frames.
 *
 * Words:
 *   upgrade  the HTTP/1.1 GET with Upgrade: websocket and the "xmpp"
 *            subprotocol; the server's 101 answer carries
 *            Sec-WebSocket-Accept = base64(SHA-1(key + GUID))
 *   frame    one RFC 6455 frame; ours are masked (a client's must be), the
 *            server's are not
 *   wsout    the connection's framed bytes, ready for the socket; c->out
 *            holds the XML the protocol code wrote, and every flush turns
 *            it into frames, one top-level element per text frame
 *   wsin     bytes read and not yet a whole frame (or, during the upgrade,
 *            the HTTP answer so far)
 *
 * The XML side (xmpp.c) is unchanged but for the stream header: the parser
 * is given a stream root of its own (lg_ws_root) so that each frame's
 * element parses at depth 2 like a stanza on TCP, <open/> replaces the
 * stream header and <close/> the stream's end.
 */
#include "lg.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/uio.h>
#include <openssl/sha.h>

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define WS_MAX_HTTP 8192		/* the server's 101 answer, at most */
#define WS_MAX_FRAME (16u << 20)	/* a server frame, at most */

enum { OP_CONT = 0x0, OP_TEXT = 0x1, OP_BIN = 0x2, OP_CLOSE = 0x8,
       OP_PING = 0x9, OP_PONG = 0xA };

const char lg_ws_root[] = "<stream:stream xmlns='jabber:client' "
	"xmlns:stream='http://etherx.jabber.org/streams'>";

/* Appends one masked frame (FIN set) to out, its payload the nv parts
 * of v one after the other. */
static void frame_parts(struct lg_buf *out, int opcode, const struct iovec *v,
			int nv, uint64_t *rng)
{
	unsigned char h[14];
	size_t hl = 2, n = 0, k = 0;
	uint32_t key = (uint32_t)lg_rand(rng);
	unsigned char mask[4] = { key >> 24, key >> 16, key >> 8, key };
	unsigned char *dst;

	for (int i = 0; i < nv; i++)
		n += v[i].iov_len;

	h[0] = (unsigned char)(0x80 | opcode);
	if (n < 126) {
		h[1] = (unsigned char)(0x80 | n);
	} else if (n <= 0xffff) {
		h[1] = 0x80 | 126;
		h[2] = (unsigned char)(n >> 8);
		h[3] = (unsigned char)n;
		hl = 4;
	} else {
		h[1] = 0x80 | 127;
		for (int i = 0; i < 8; i++)
			h[2 + i] = (unsigned char)((uint64_t)n >> (56 - 8 * i));
		hl = 10;
	}
	memcpy(h + hl, mask, 4);
	hl += 4;
	lg_buf_add(out, h, hl);
	lg_buf_reserve(out, n);
	dst = (unsigned char *)out->p + out->len;
	for (int i = 0; i < nv; i++) {
		const unsigned char *src = v[i].iov_base;

		for (size_t j = 0; j < v[i].iov_len; j++, k++)
			dst[k] = src[j] ^ mask[k & 3];
	}
	out->len += n;
}

void lg_ws_frame(struct lg_buf *out, int opcode, const void *data, size_t n,
		 uint64_t *rng)
{
	struct iovec v = { (void *)data, n };

	frame_parts(out, opcode, &v, 1, rng);
}

/* Length of the first top-level element of x[0..n), or 0 when it does not
 * end there. The generator writes the XML itself: no comments, CDATA or
 * processing instructions, '<' only as markup, quotes around attributes. */
size_t lg_ws_element_len(const char *x, size_t n)
{
	int depth = 0;
	size_t i = 0;

	while (i < n) {
		const char *lt = memchr(x + i, '<', n - i);
		bool closing, empty = false;
		char quote = 0;

		if (!lt)
			return 0;
		i = (size_t)(lt - x) + 1;
		closing = i < n && x[i] == '/';
		for (; i < n; i++) {
			if (quote) {
				if (x[i] == quote)
					quote = 0;
			} else if (x[i] == '\'' || x[i] == '"') {
				quote = x[i];
			} else if (x[i] == '>') {
				empty = x[i - 1] == '/';
				break;
			}
		}
		if (i == n)
			return 0;
		i++;
		if (closing)
			depth--;
		else if (!empty)
			depth++;
		if (depth <= 0)
			return i;
	}
	return 0;
}

/* Where the namespace declaration goes in element x (after its name), or
 * 0 when it needs none: RFC 7395 has every frame's element carry its
 * namespace, and the protocol code writes stanzas as on a TCP stream,
 * under the stream's default jabber:client. */
static size_t needs_ns(const char *x, size_t n)
{
	const char *gt = memchr(x, '>', n);
	size_t name = strcspn(x + 1, " />");

	if (!gt || name == 0 || 1 + name > (size_t)(gt - x))
		return 0;
	if (memmem(x, (size_t)(gt - x), "xmlns=", 6))
		return 0;
	return 1 + name;
}

/* The XML in c->out becomes text frames on c->wsout, one element each. */
void lg_ws_frame_out(struct lg_conn *c)
{
	static const char ns[] = " xmlns='jabber:client'";
	struct lg_buf *out = &c->out;

	while (lg_buf_pending(out) > 0) {
		const char *x = out->p + out->off;
		size_t n = lg_ws_element_len(x, lg_buf_pending(out)), at;

		if (n == 0)	/* not a whole element: send what there is */
			n = lg_buf_pending(out);
		if ((at = needs_ns(x, n)) != 0) {
			struct iovec v[3] = {
				{ (void *)x, at }, { (void *)ns, sizeof(ns) - 1 },
				{ (void *)(x + at), n - at },
			};

			frame_parts(&c->wsout, OP_TEXT, v, 3, &c->w->rng);
		} else {
			lg_ws_frame(&c->wsout, OP_TEXT, x, n, &c->w->rng);
		}
		out->off += n;
	}
	lg_buf_reset(out);
}

void lg_ws_upgrade(struct lg_conn *c)
{
	unsigned char nonce[16];
	struct lg_buf *b = &c->wsout;
	struct lg_buf key = { 0 };

	for (int i = 0; i < 16; i += 8) {
		uint64_t r = lg_rand(&c->w->rng);
		memcpy(nonce + i, &r, 8);
	}
	lg_b64_encode(&key, nonce, sizeof(nonce));
	snprintf(c->ws_key, sizeof(c->ws_key), "%.*s", (int)key.len, key.p);
	lg_buf_free(&key);
	lg_buf_printf(b, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
		      "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
		      "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: xmpp\r\n\r\n",
		      g_opts.ws_path, lg_domain_of(c->user), c->ws_key);
	lg_buf_reset(&c->wsin);
	c->state = ST_WS_UPGRADE;
	lg_conn_dirty(c);
}

void lg_ws_accept(const char *key, char out[29])
{
	char in[96];
	unsigned char md[SHA_DIGEST_LENGTH];
	struct lg_buf acc = { 0 };

	snprintf(in, sizeof(in), "%s%s", key, WS_GUID);
	SHA1((const unsigned char *)in, strlen(in), md);
	lg_b64_encode(&acc, md, sizeof(md));
	snprintf(out, 29, "%.*s", (int)acc.len, acc.p);
	lg_buf_free(&acc);
}

/* The value of header `name` in the HTTP head h (NUL-terminated), copied
 * to v; false when absent. */
static bool header(const char *h, const char *name, char *v, size_t cap)
{
	size_t nl = strlen(name);

	for (const char *p = strstr(h, "\r\n"); p; p = strstr(p, "\r\n")) {
		const char *e;
		size_t len;

		p += 2;
		if (strncasecmp(p, name, nl) != 0 || p[nl] != ':')
			continue;
		p += nl + 1;
		while (*p == ' ' || *p == '\t')
			p++;
		e = strstr(p, "\r\n");
		len = e ? (size_t)(e - p) : strlen(p);
		while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		snprintf(v, cap, "%.*s", (int)len, p);
		return true;
	}
	return false;
}

/* The 101 answer: status, Upgrade, the accept value and the subprotocol.
 * NULL when good, else what is wrong. */
static const char *check_answer(struct lg_conn *c, const char *h)
{
	char want[29], v[128];

	if (strncmp(h, "HTTP/1.1 101", 12) != 0)
		return "no 101 Switching Protocols";
	if (!header(h, "Upgrade", v, sizeof(v)) || strcasecmp(v, "websocket") != 0)
		return "no Upgrade: websocket";
	lg_ws_accept(c->ws_key, want);
	if (!header(h, "Sec-WebSocket-Accept", v, sizeof(v)) || strcmp(v, want) != 0)
		return "wrong Sec-WebSocket-Accept";
	if (!header(h, "Sec-WebSocket-Protocol", v, sizeof(v)) || strcmp(v, "xmpp") != 0)
		return "subprotocol xmpp not agreed";
	return NULL;
}

/* Bytes of the upgrade answer. 1: upgraded (the rest of wsin is frames),
 * 0: more to come, -1: gone. */
static int read_upgrade(struct lg_conn *c)
{
	struct lg_buf *in = &c->wsin;
	char *end, status[64];
	const char *bad;
	size_t head;

	lg_buf_reserve(in, 1);
	in->p[in->len] = '\0';
	end = strstr(in->p + in->off, "\r\n\r\n");
	if (!end) {
		if (lg_buf_pending(in) > WS_MAX_HTTP) {
			lg_conn_fail(c, C_ERR_STREAM, "WebSocket upgrade: answer too long");
			return -1;
		}
		return 0;
	}
	head = (size_t)(end - in->p) + 4;
	end[2] = '\0';
	if ((bad = check_answer(c, in->p + in->off)) != NULL) {
		snprintf(status, sizeof(status), "%.*s", (int)strcspn(in->p + in->off, "\r\n"),
			 in->p + in->off);
		lg_conn_fail(c, C_ERR_STREAM, "WebSocket upgrade: %s (%s)", bad, status);
		return -1;
	}
	in->off = head;
	lg_xmpp_reset(c);
	lg_xmpp_open(c);
	return 1;
}

/* A control frame from the server. 0 or -1 (gone). */
static int control(struct lg_conn *c, int op, const char *p, size_t n)
{
	switch (op) {
	case OP_PING:
		lg_ws_frame_out(c);	/* the pong goes after what was queued */
		lg_ws_frame(&c->wsout, OP_PONG, p, n, &c->w->rng);
		lg_conn_dirty(c);
		return 0;
	case OP_CLOSE:
		if (c->state == ST_CLOSING) {
			lg_conn_release(c);
		} else {
			unsigned code = n >= 2 ? ((unsigned char)p[0] << 8 | (unsigned char)p[1]) : 0;

			lg_conn_fail(c, C_ERR_EOF, "WebSocket closed by the server "
				     "(code %u, state %d)", code, c->state);
		}
		return -1;
	default:	/* pong */
		return 0;
	}
}

/* Frames in wsin: text payloads go to the XML parser. 0 or -1 (gone). */
static int read_frames(struct lg_conn *c)
{
	struct lg_buf *in = &c->wsin;

	while (lg_buf_pending(in) >= 2) {
		const unsigned char *h = (const unsigned char *)in->p + in->off;
		size_t avail = lg_buf_pending(in), hl = 2;
		uint64_t len = h[1] & 0x7f;
		int op = h[0] & 0x0f;
		const char *payload;

		if (h[1] & 0x80) {
			lg_conn_fail(c, C_ERR_STREAM, "WebSocket: masked server frame");
			return -1;
		}
		if (len == 126) {
			if (avail < 4)
				break;
			len = (uint64_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (len == 127) {
			if (avail < 10)
				break;
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | h[2 + i];
			hl = 10;
		}
		if (len > WS_MAX_FRAME) {
			lg_conn_fail(c, C_ERR_STREAM, "WebSocket: frame of %llu bytes",
				     (unsigned long long)len);
			return -1;
		}
		if (avail < hl + len)
			break;
		payload = in->p + in->off + hl;
		in->off += hl + (size_t)len;
		if (op >= OP_CLOSE) {
			if (control(c, op, payload, (size_t)len) != 0)
				return -1;
		} else if (op == OP_BIN) {
			lg_conn_fail(c, C_ERR_STREAM, "WebSocket: binary frame");
			return -1;
		} else if (len > 0 && lg_xmpp_feed(c, payload, (size_t)len) != 0) {
			return -1;
		}
	}
	if (lg_buf_pending(in) == 0)
		lg_buf_reset(in);
	return 0;
}

int lg_ws_feed(struct lg_conn *c, const char *data, size_t n)
{
	lg_buf_add(&c->wsin, data, n);
	if (c->state == ST_WS_UPGRADE) {
		int r = read_upgrade(c);

		if (r <= 0)
			return r;
	}
	return read_frames(c);
}

void lg_ws_close(struct lg_conn *c)
{
	lg_buf_adds(&c->out, "<close xmlns='urn:ietf:params:xml:ns:xmpp-framing'/>");
	lg_conn_dirty(c);
}
