/* session_out.c - a session's way out: stanzas through the role
 * (XEP-0198's copy) and the filters, serialized once, to the connection
 * or its framing (WebSocket, BOSH); raw bytes, nonzas and SASL failures.
 * The rest of the stream layer is session.c. */
#include "session.h"

#include <errno.h>
#include <string.h>

static struct sbuf out_buf;		/* serialization scratch, reused */

/* One element (or, unframed, any bytes) to the connection. */
int session_write(struct session *s, const char *data, size_t len)
{
	if (s->framing)
		return s->framing->send(s, s->framing_data, data, len);
	return conn_send(s->conn, data, len);
}

void session_send_raw(struct session *s, const char *data, size_t len)
{
	if (s->conn && !(s->flags & SESS_F_DEAD))
		session_write(s, data, len);
}

/* Whether the start tag at p declares a default namespace (xmlns=...):
 * the serializer's output, so attributes are name='value' or "value". */
static bool declares_ns(const char *p, const char *end)
{
	while (p < end && *p != ' ' && *p != '>' && *p != '/')
		p++;
	for (;;) {
		while (p < end && *p == ' ')
			p++;
		if (p >= end || *p == '>' || *p == '/')
			return false;
		const char *name = p;
		while (p < end && *p != '=')
			p++;
		if (p + 1 >= end)
			return false;
		if (p - name == 5 && memcmp(name, "xmlns", 5) == 0)
			return true;
		char q = p[1];
		const char *close = memchr(p + 2, q, (size_t)(end - p - 2));
		if (!close)
			return false;
		p = close + 1;
	}
}

/* A stanza serialized for a plain stream (its namespace inherited from
 * the stream header, no xmlns of its own: XEP-0198's copies made before
 * a resumption on a framed stream) gets one: a framed message stands
 * alone. */
static int write_stanza(struct session *s, const char *data, size_t len)
{
	struct sbuf b;
	const char *name_end;
	int r;

	if (!s->framing || len < 2 || data[0] != '<' || declares_ns(data + 1, data + len))
		return session_write(s, data, len);
	name_end = data + 1;
	while (name_end < data + len && *name_end != ' ' && *name_end != '>' &&
	       *name_end != '/')
		name_end++;
	sbuf_init(&b);
	sbuf_add(&b, data, (size_t)(name_end - data));
	sbuf_adds(&b, " xmlns='");
	sbuf_adds(&b, s->role->ns);
	sbuf_addc(&b, '\'');
	sbuf_add(&b, name_end, (size_t)(data + len - name_end));
	r = session_write(s, b.p, b.len);
	sbuf_free(&b);
	return r;
}

int session_write_stanza(struct session *s, const char *data, size_t len)
{
	if (!s->conn || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		return -EPIPE;
	return write_stanza(s, data, len);
}

void session_send_str(struct session *s, const char *str)
{
	session_send_raw(s, str, strlen(str));
}

void session_send_sasl_failure(struct session *s, const char *ns,
			       const char *condition, const char *text)
{
	struct sbuf b;

	sbuf_init(&b);
	if (strcmp(ns, NS_SASL) == 0)
		sbuf_printf(&b, "<failure xmlns='" NS_SASL "'><%s/>", condition);
	else
		sbuf_printf(&b, "<failure xmlns='%s'><%s xmlns='" NS_SASL "'/>",
			    ns, condition);
	if (text) {
		sbuf_adds(&b, "<text xml:lang='en'>");
		xml_escape(&b, text, strlen(text));
		sbuf_adds(&b, "</text>");
	}
	sbuf_adds(&b, "</failure>");
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
}

/* A serialized stanza on its way out: past the role (XEP-0198 keeps a
 * copy), then to the connection. */
static int send_stanza_bytes(struct session *s, const char *data, size_t len)
{
	if (s->role->sending && s->role->sending(s, data, len) != 0) {
		if (s->conn)
			session_close(s, "resource-constraint",
				      "too many unacknowledged stanzas");
		else
			session_expire(s, "too many stanzas while hibernating");
		return -ENOBUFS;
	}
	if (!s->conn)
		return 0;	/* hibernating: queued until it resumes */
	return write_stanza(s, data, len);
}

static bool can_send(const struct session *s)
{
	return !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)) &&
	       (s->conn || (s->flags & SESS_F_HIBERNATING));
}

int session_send_serialized(struct session *s, const char *data, size_t len)
{
	if (!can_send(s))
		return -EPIPE;
	return send_stanza_bytes(s, data, len);
}

int session_send_bytes(struct session *s, const char *data, size_t len)
{
	char name[16];
	size_t n = 0;

	if (s->filters || s->framing)
		return -EAGAIN;	/* the caller parses and sends a tree */
	if (!can_send(s))
		return -EPIPE;
	while (len > 1 && n + 1 < len && n < sizeof(name) - 1 &&
	       data[n + 1] != ' ' && data[n + 1] != '>' && data[n + 1] != '/') {
		name[n] = data[n + 1];
		n++;
	}
	name[n] = '\0';
	session_count_out(name);
	return send_stanza_bytes(s, data, len);
}

/* session_send(), with node's bytes for a stream without framing when
 * known (data), else serialized here. */
static int send_node(struct session *s, const struct st_node *node,
		     const char *data, size_t len)
{
	if (s->role->forward && !(s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
		return s->role->forward(s, node);
	if (!can_send(s))
		return -EPIPE;
	for (struct session_filter *f = s->filters; f; f = f->next) {
		int r = f->ops->filter(s, node, f->data);
		if (r != SESSION_FILTER_PASS)
			return r < 0 ? r : 0;
		if (!can_send(s))
			return -EPIPE;	/* what the filter flushed ended it */
	}
	/* Trees hold stanzas in jabber:client whatever stream they came
	 * from; written without xmlns they take the stream's namespace. A
	 * framed message stands alone: it names its namespace. */
	session_count_out(node->name);
	if (data && !s->framing)
		return send_stanza_bytes(s, data, len);
	sbuf_reset(&out_buf);
	st_serialize(node, s->framing ? NULL : NS_CLIENT, &out_buf);
	return send_stanza_bytes(s, out_buf.p, out_buf.len);
}

int session_send(struct session *s, const struct st_node *node)
{
	return send_node(s, node, NULL, 0);
}

int session_send_known(struct session *s, const struct st_node *node,
		       const char *data, size_t len)
{
	return send_node(s, node, data, len);
}

int session_send_nonza(struct session *s, const struct st_node *node)
{
	if (s->flags & (SESS_F_CLOSING | SESS_F_DEAD) || !s->conn)
		return -EPIPE;
	sbuf_reset(&out_buf);
	st_serialize(node, s->framing ? NULL : NS_CLIENT, &out_buf);
	return session_write(s, out_buf.p, out_buf.len);
}
