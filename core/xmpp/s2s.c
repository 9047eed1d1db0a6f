/* s2s.c - what both directions of server-to-server streams share: the
 * settings, module events, dialback elements, administration. The roles
 * are s2s_in.c and s2s_out.c; keys are dialback.c's. */
#include "s2s.h"
#include "log.h"

static struct s2s_config config = {
	.queue_max = 1000,
	.connect_timeout = 10,
};

static bool federating;

void s2s_init(const unsigned char secret[32])
{
	dialback_init(secret);
	federating = true;
}

bool s2s_enabled(void)
{
	return federating;
}

void s2s_configure(const struct s2s_config *cfg)
{
	config = *cfg;
}

const struct s2s_config *s2s_config(void)
{
	return &config;
}

void s2s_free_all(void)
{
	s2s_out_free_all();
}

bool s2s_is(const struct session *s)
{
	return s->role == &s2s_in_role || s->role == &s2s_out_role;
}

void s2s_fire(struct session *s, const char *local, const char *name,
	      const char *reason)
{
	struct event ev = { .session = s, .error = reason };

	route_fire(local ? route_host(local) : NULL, name, &ev);
}

static void add_attr(struct sbuf *b, const char *name, const char *value)
{
	if (!value)
		return;
	sbuf_printf(b, " %s='", name);
	xml_escape(b, value, strlen(value));
	sbuf_addc(b, '\'');
}

void s2s_send_db(struct session *s, const char *name, const char *from,
		 const char *to, const char *id, const char *type,
		 const char *text)
{
	struct sbuf b;

	sbuf_init(&b);
	sbuf_printf(&b, "<db:%s", name);
	add_attr(&b, "from", from);
	add_attr(&b, "to", to);
	add_attr(&b, "id", id);
	add_attr(&b, "type", type);
	if (text) {
		sbuf_addc(&b, '>');
		sbuf_adds(&b, text);	/* a key (hex) or an <error/> we made */
		sbuf_printf(&b, "</db:%s>", name);
	} else {
		sbuf_adds(&b, "/>");
	}
	session_send_raw(s, b.p, b.len);
	sbuf_free(&b);
}

size_t s2s_close_domain(const char *domain)
{
	size_t n = 0;

	for (struct session *s = session_first(); s; s = s->all_next) {
		if (!s2s_is(s) || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			continue;
		if ((s->peer && strcmp(s->peer, domain) == 0) ||
		    (s->role == &s2s_in_role && s2s_in_has(s, domain))) {
			log_info("s2s %s %s: closed by the administrator",
				 s->role == &s2s_in_role ? "incoming" : "outgoing",
				 domain);
			session_close(s, "policy-violation", "closed by the administrator");
			n++;
		}
	}
	return n;
}
