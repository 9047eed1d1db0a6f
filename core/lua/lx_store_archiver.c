/*
 * lx_store_archiver.c - archive:archiver(payloads, wanted): the part of
 * message archiving (XEP-0313) that every chat message pays for, as two
 * hook handlers in C for mod_mam (docs/modules/mam.md).
 *
 *   local incoming, outgoing, forget =
 *           archive:archiver(payloads, wanted[, answers_max])
 *
 * payloads  { [namespace] = true }: children that make a message without
 *           a body worth keeping (OMEMO, markers, reactions, ...).
 * wanted    wanted(username, host, other, bare): whether messages with
 *           `other` (the 'from' of an incoming message, the 'to' of an
 *           outgoing one; `bare` its bare JID) go to the archive of
 *           username@host. Falsy for an account that does not exist. A
 *           second result true says the answer holds for every contact
 *           (no per-contact preferences): it is then kept, for up to
 *           answers_max accounts (default 10000; all forgotten when
 *           full), and wanted is not asked again for that account.
 * forget    forget(username): the kept answer of that account goes (its
 *           preferences changed, it was deleted or created); forget()
 *           forgets them all.
 *
 * The module keeps the policy (preferences, who is in whose roster) in
 * `wanted`; the handlers do the mechanics, which cost 4-5 µs per message
 * as Lua: what is archivable (XEP-0313 section 5.1.1, the XEP-0334
 * hints), stanza-ids in our name that we did not add (XEP-0359 section
 * 4), the append, and the <stanza-id/> the recipient sees.
 *
 * incoming  for "message/full", "/bare" and "/self": a message to an
 *           account of the host, before delivery (so also what goes to
 *           offline storage), archived for the recipient.
 * outgoing  for "pre-message/full", "/bare" and "/host": a message one
 *           of the account's resources sends, archived for the sender
 *           (one to its own bare JID only as incoming).
 */
#include "lx_store.h"
#include "lx_session.h"
#include "hmap.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "stanza.h"

#include <errno.h>
#include <string.h>

#define NS_SID "urn:xmpp:sid:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

#define UP_STORE lua_upvalueindex(1)
#define UP_PAYLOADS lua_upvalueindex(2)
#define UP_WANTED lua_upvalueindex(3)
#define UP_ANSWERS lua_upvalueindex(4)

static const char ANSWERS_MT[] = "starling.archiver";

/* The kept answers of wanted() (see the top), per localpart. */
struct answers {
	struct hmap map;	/* localpart -> &answer_yes or &answer_no */
	size_t max;
};

static char answer_yes, answer_no;

/* An account's bare JID, or a contact's, NUL-terminated. */
struct bare {
	char s[2 * JID_PART_MAX + 2];
	size_t len;
	size_t node_len;	/* the localpart: s[0, node_len) */
};

static bool bare_set(struct bare *b, const struct jid_span *node,
		     const struct jid_span *host)
{
	size_t n = node->p ? node->len + 1 : 0;

	if (node->len >= JID_PART_MAX || host->len >= JID_PART_MAX)
		return false;		/* no such JID (RFC 7622 3.1) */
	if (node->p) {
		memcpy(b->s, node->p, node->len);
		b->s[node->len] = '@';
	}
	memcpy(b->s + n, host->p, host->len);
	b->len = n + host->len;
	b->s[b->len] = '\0';
	b->node_len = node->p ? node->len : 0;
	return true;
}

/* The bare JID of jid, split as Prosody splits (unprepared), and its
 * resource in *res when res is not NULL. False when malformed. */
static bool bare_of(struct bare *b, const char *jid, struct jid_span *res)
{
	struct jid_span node, host, r;

	if (!jid_split_raw(jid, strlen(jid), &node, &host, &r) ||
	    !bare_set(b, &node, &host))
		return false;
	if (res)
		*res = r;
	return true;
}

/* The bare JID of the account of session s. */
static bool bare_of_account(struct bare *b, const struct session *s)
{
	struct jid_span node = { s->username, strlen(s->username) };
	struct jid_span host = { s->host, strlen(s->host) };

	return bare_set(b, &node, &host);
}

static bool is(const struct st_node *n, const char *name, const char *ns)
{
	return n->name && strcmp(n->name, name) == 0 && n->ns &&
	       strcmp(n->ns, ns) == 0;
}

static bool is_our_id(const struct st_node *c, const char *by)
{
	const char *v;

	return is(c, "stanza-id", NS_SID) && (v = st_attr_get(c, "by")) &&
	       strcmp(v, by) == 0;
}

static bool has_our_id(const struct st_node *m, const char *by)
{
	for (const struct st_node *c = m->first; c; c = c->next)
		if (is_our_id(c, by))
			return true;
	return false;
}

/* XEP-0359 section 4: stanza-ids claiming to be ours that we did not
 * add go. */
static void strip_our_ids(struct st_node *m, const char *by)
{
	struct st_node *c = m->first, *next;

	for (; c; c = next) {
		next = c->next;
		if (is_our_id(c, by))
			st_unlink(c);
	}
}

/* A payload that carries a conversation without a body: a namespace in
 * the module's list, or a MUC invitation. */
static bool payload(lua_State *L, const struct st_node *c)
{
	bool yes;

	if (is(c, "x", NS_MUC_USER))
		return st_child(c, "invite", NS_MUC_USER) != NULL;
	if (!c->ns)
		return false;
	lua_pushstring(L, c->ns);
	yes = lua_rawget(L, UP_PAYLOADS) != LUA_TNIL;
	lua_pop(L, 1);
	return yes;
}

/* XEP-0313 section 5.1.1 and XEP-0334: chat and normal messages with a
 * body or a payload that carries a conversation; never errors,
 * headlines, groupchat, or what the sender asked not to keep. */
static bool archivable(lua_State *L, const struct st_node *m,
		       const char *type)
{
	bool keep = false;

	if (type && strcmp(type, "chat") != 0 && strcmp(type, "normal") != 0)
		return false;
	for (const struct st_node *c = m->first; c; c = c->next) {
		if (!c->name)
			continue;
		if (c->ns && strcmp(c->ns, NS_HINTS) == 0) {
			if (strcmp(c->name, "no-store") == 0 ||
			    strcmp(c->name, "no-permanent-store") == 0)
				return false;
			keep |= strcmp(c->name, "store") == 0;
		} else if (strcmp(c->name, "body") == 0 && c->ns && m->ns &&
			   strcmp(c->ns, m->ns) == 0) {
			keep = true;
		}
	}
	for (const struct st_node *c = m->first; c && !keep; c = c->next)
		keep = c->name && payload(L, c);
	return keep;
}

/* The module's wanted(username, host, other, bare), or its kept answer. */
static bool wanted(lua_State *L, const struct bare *user, const char *host,
		   const char *other, const struct bare *with)
{
	struct answers *a = lua_touserdata(L, UP_ANSWERS);
	void *known = hmap_getn(&a->map, user->s, user->node_len);
	char username[JID_PART_MAX];
	bool ok;

	if (known)
		return known == &answer_yes;
	lua_pushvalue(L, UP_WANTED);
	lua_pushlstring(L, user->s, user->node_len);
	lua_pushstring(L, host);
	lua_pushstring(L, other);
	lua_pushlstring(L, with->s, with->len);
	if (lx_pcall(L, 4, 2, "mam: wanted") != 0)
		return false;
	ok = lua_toboolean(L, -2);
	if (lua_toboolean(L, -1) && a->max) {
		if (a->map.count >= a->max) {
			hmap_free(&a->map);
			hmap_init(&a->map);
		}
		memcpy(username, user->s, user->node_len);
		username[user->node_len] = '\0';
		hmap_set(&a->map, username, ok ? &answer_yes : &answer_no);
	}
	lua_pop(L, 2);
	return ok;
}

/* Appends m to the archive of user (its localpart) with `with`; the new
 * id in id, or 0 after logging why not. */
static bool append(lua_State *L, const struct st_node *m,
		   const struct bare *user, const struct bare *with,
		   char id[STORE_ID_MAX + 1])
{
	struct lx_store *ls = lua_touserdata(L, UP_STORE);
	static struct sbuf v;		/* scratch, kept between messages */
	char username[JID_PART_MAX];
	int rc;

	memcpy(username, user->s, user->node_len);
	username[user->node_len] = '\0';
	rc = value_encode_stanza(m, &v);
	struct store_arch_item it = { .when = STORE_WHEN_NOW, .with = with->s,
				      .with_len = with->len, .val = v.p,
				      .val_len = v.len };
	if (rc == 0)
		rc = store_archive_append(&ls->st, username, &it, id);
	sbuf_recycle(&v, 65536);
	if (rc)
		log_msg(LOG_ERROR, "mam", "cannot archive a message for %s: %s",
			user->s, strerror(-rc));
	return rc == 0;
}

/* The event's stanza (a message) and whether it has an origin (the
 * session, when it is open, in *origin). NULL for anything else. */
static struct st_node *event_message(lua_State *L, struct st_doc **doc,
				     bool *has_origin,
				     struct session **origin)
{
	struct st_node *m;

	luaL_checktype(L, 1, LUA_TTABLE);
	lua_getfield(L, 1, "stanza");
	m = lx_stanza_test(L, -1, doc);
	*has_origin = lua_getfield(L, 1, "origin") != LUA_TNIL;
	*origin = *has_origin ? lx_session_check(L, -1) : NULL;
	lua_pop(L, 2);
	return m && m->name && strcmp(m->name, "message") == 0 ? m : NULL;
}

static int archive_incoming(lua_State *L)
{
	struct jid_span res = { NULL, 0 };
	struct bare user, with;
	struct session *origin;
	struct st_doc *doc;
	bool has_origin;
	struct st_node *m = event_message(L, &doc, &has_origin, &origin);
	const char *to, *from, *type, *h;
	char id[STORE_ID_MAX + 1];

	if (!m)
		return 0;
	to = st_attr_get(m, "to");
	type = st_attr_get(m, "type");
	if (to ? !bare_of(&user, to, &res) || !user.node_len
	       : !origin || !origin->username || !bare_of_account(&user, origin))
		return 0;
	h = user.s + user.node_len + 1;
	if (has_our_id(m, user.s)) {
		if (!has_origin)
			return 0;	/* the server routes what it archived */
		strip_our_ids(m, user.s);
	}
	if (!archivable(L, m, type))
		return 0;
	if (res.p && (!type || strcmp(type, "chat") != 0)) {
		struct session *s = route_find_full(to);
		if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			return 0;	/* bounces (RFC 6121 8.5.3.2.1) */
	}
	from = st_attr_get(m, "from");
	if (!from)
		from = h;
	if (!bare_of(&with, from, NULL))
		return 0;
	if (wanted(L, &user, h, from, &with) && append(L, m, &user, &with, id)) {
		struct st_node *sid = st_elem_new(doc, m, "stanza-id", NS_SID);
		st_attr_set(doc, sid, "by", user.s);
		st_attr_set(doc, sid, "id", id);
	}
	return 0;
}

static int archive_outgoing(lua_State *L)
{
	struct bare user, with;
	struct session *origin;
	struct st_doc *doc;
	bool has_origin;
	struct st_node *m = event_message(L, &doc, &has_origin, &origin);
	const char *to;
	char id[STORE_ID_MAX + 1];

	if (!m || !origin || !origin->username)
		return 0;
	to = st_attr_get(m, "to");
	if (!to || !bare_of(&with, to, NULL) || !bare_of_account(&user, origin) ||
	    strcmp(user.s, with.s) == 0 ||
	    !archivable(L, m, st_attr_get(m, "type")) ||
	    !wanted(L, &user, origin->host, to, &with))
		return 0;
	if (has_our_id(m, user.s)) {
		struct st_doc *copy = st_clone(m);
		strip_our_ids(copy->root, user.s);
		append(L, copy->root, &user, &with, id);
		st_doc_unref(copy);
	} else {
		append(L, m, &user, &with, id);
	}
	return 0;
}

static int archive_forget(lua_State *L)
{
	struct answers *a = lua_touserdata(L, lua_upvalueindex(1));

	if (lua_isnoneornil(L, 1)) {
		hmap_free(&a->map);
		hmap_init(&a->map);
	} else {
		hmap_del(&a->map, luaL_checkstring(L, 1));
	}
	return 0;
}

static int answers_gc(lua_State *L)
{
	struct answers *a = lx_checkudata(L, 1, ANSWERS_MT);

	hmap_free(&a->map);
	return 0;
}

static int l_archiver(lua_State *L)
{
	lua_Integer max = luaL_optinteger(L, 4, 10000);
	struct answers *a;

	lx_store_check_kind(L, STORE_KIND_ARCHIVE, "archiver");
	luaL_checktype(L, 2, LUA_TTABLE);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	luaL_argcheck(L, max >= 0, 4, "expected a count of 0 or more");
	lua_settop(L, 3);
	a = lua_newuserdatauv(L, sizeof(*a), 0);
	hmap_init(&a->map);
	a->max = (size_t)max;
	lx_setmetatable(L, ANSWERS_MT);
	for (int i = 1; i <= 4; i++)
		lua_pushvalue(L, i);
	lua_pushcclosure(L, archive_incoming, 4);
	for (int i = 1; i <= 4; i++)
		lua_pushvalue(L, i);
	lua_pushcclosure(L, archive_outgoing, 4);
	lua_pushvalue(L, 4);
	lua_pushcclosure(L, archive_forget, 1);
	return 3;
}

void lx_store_archiver_register(lua_State *L)
{
	if (lx_newmetatable(L, ANSWERS_MT)) {
		lua_pushcfunction(L, answers_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushstring(L, ANSWERS_MT);
		lua_setfield(L, -2, "__metatable");
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, l_archiver);
	lua_setfield(L, -2, "archiver");
}
