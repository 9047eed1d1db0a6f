/* archiver.c - XEP-0313's per-message archiving step (see archiver.h). */
#include "archiver.h"
#include "hmap.h"
#include "jid.h"
#include "log.h"
#include "route.h"
#include "session.h"
#include "stanza.h"
#include "store.h"
#include "value.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define NS_SID "urn:xmpp:sid:0"
#define NS_HINTS "urn:xmpp:hints"
#define NS_MUC_USER "http://jabber.org/protocol/muc#user"

struct archiver {
	unsigned refs;
	struct store st;		/* host and name: ours, below */
	char *host, *name;
	struct hmap payloads;		/* namespace -> &answer_yes */
	struct hmap answers;		/* localpart -> &answer_yes or _no */
	size_t answers_max;
	struct archiver_policy policy;
};

static char answer_yes, answer_no;

struct archiver *archiver_new(const struct store *st,
			      const char *const *payloads, size_t n,
			      size_t answers_max,
			      const struct archiver_policy *policy)
{
	struct archiver *a = xcalloc(1, sizeof(*a));

	a->refs = 1;
	a->host = xstrdup(st->host);
	a->name = xstrdup(st->name);
	store_init(&a->st, st->engine, a->host, a->name, STORE_KIND_ARCHIVE);
	hmap_init(&a->payloads);
	for (size_t i = 0; i < n; i++)
		hmap_set(&a->payloads, payloads[i], &answer_yes);
	hmap_init(&a->answers);
	a->answers_max = answers_max;
	a->policy = *policy;
	return a;
}

void archiver_ref(void *archiver)
{
	((struct archiver *)archiver)->refs++;
}

void archiver_unref(void *archiver)
{
	struct archiver *a = archiver;

	if (!a || --a->refs)
		return;
	if (a->policy.ctx_free)
		a->policy.ctx_free(a->policy.ctx);
	hmap_free(&a->payloads);
	hmap_free(&a->answers);
	free(a->host);
	free(a->name);
	free(a);
}

void archiver_forget(struct archiver *a, const char *username)
{
	if (username) {
		hmap_del(&a->answers, username);
		return;
	}
	hmap_free(&a->answers);
	hmap_init(&a->answers);
}

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
static bool payload(const struct archiver *a, const struct st_node *c)
{
	if (is(c, "x", NS_MUC_USER))
		return st_child(c, "invite", NS_MUC_USER) != NULL;
	return c->ns && hmap_get(&a->payloads, c->ns) != NULL;
}

/* XEP-0313 section 5.1.1 and XEP-0334: chat and normal messages with a
 * body or a payload that carries a conversation; never errors,
 * headlines, groupchat, or what the sender asked not to keep. */
static bool archivable(const struct archiver *a, const struct st_node *m,
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
		keep = c->name && payload(a, c);
	return keep;
}

/* The policy's answer for user and with, or the kept one. */
static bool wanted(struct archiver *a, const struct bare *user,
		   const char *host, const char *other, const struct bare *with)
{
	char username[JID_PART_MAX];
	void *known = hmap_getn(&a->answers, user->s, user->node_len);
	bool ok, uniform = false;

	if (known)
		return known == &answer_yes;
	memcpy(username, user->s, user->node_len);
	username[user->node_len] = '\0';
	ok = a->policy.wanted(a->policy.ctx, username, host, other, with->s,
			      &uniform);
	if (uniform && a->answers_max) {
		if (a->answers.count >= a->answers_max)
			archiver_forget(a, NULL);
		hmap_set(&a->answers, username, ok ? &answer_yes : &answer_no);
	}
	return ok;
}

/* Appends m to the archive of user (its localpart) with `with`; the new
 * id in id. 0, or -errno after logging why not (at debug level while
 * storage is failing: that state is logged when it begins and ends). */
static int append(struct archiver *a, const struct st_node *m,
		   const struct bare *user, const struct bare *with,
		   char id[STORE_ID_MAX + 1])
{
	static struct sbuf v;		/* scratch, kept between messages */
	char username[JID_PART_MAX];
	int rc;

	memcpy(username, user->s, user->node_len);
	username[user->node_len] = '\0';
	rc = value_encode_stanza(m, &v);
	if (rc == 0) {
		struct store_arch_item it = {
			.when = STORE_WHEN_NOW, .with = with->s,
			.with_len = with->len, .val = v.p, .val_len = v.len,
		};
		rc = store_archive_append(&a->st, username, &it, id);
	}
	sbuf_recycle(&v, 65536);
	if (rc)
		log_msg(store_health()->err ? LOG_DEBUG : LOG_ERROR, "mam",
			"cannot archive a message for %s: %s", user->s,
			strerror(-rc));
	return rc;
}

/* An archive append failed with rc: while storage refuses writes the
 * message goes no further and its sender is told to try again later
 * (HOOK_STOP); any other failure lets it through unarchived. */
static int not_archived(struct st_node *m)
{
	if (!store_health()->err)
		return HOOK_PASS;
	route_bounce(m, "wait", "resource-constraint",
		     "the server cannot archive this message now; try again "
		     "later");
	return HOOK_STOP;
}

/* The event's message, or NULL for anything else. */
static struct st_node *event_message(const struct event *ev)
{
	struct st_node *m = ev->stanza;

	return m && m->name && strcmp(m->name, "message") == 0 ? m : NULL;
}

/* The session the message came from while it is still open. */
static struct session *live(struct session *s)
{
	return s && !(s->flags & SESS_F_DEAD) ? s : NULL;
}

int archiver_incoming(struct event *ev, const struct hook_handler *hh)
{
	struct archiver *a = hh->data;
	struct jid_span res = { NULL, 0 };
	struct bare user, with;
	struct session *origin = live(ev->origin);
	struct st_node *m = event_message(ev);
	const char *to, *from, *type, *h;
	char id[STORE_ID_MAX + 1];

	if (!m)
		return HOOK_PASS;
	to = st_attr_get(m, "to");
	type = st_attr_get(m, "type");
	if (to ? !bare_of(&user, to, &res) || !user.node_len
	       : !origin || !origin->username || !bare_of_account(&user, origin))
		return HOOK_PASS;
	h = user.s + user.node_len + 1;
	if (has_our_id(m, user.s)) {
		if (!ev->origin)
			return HOOK_PASS;	/* the server routes what it archived */
		strip_our_ids(m, user.s);
	}
	if (!archivable(a, m, type))
		return HOOK_PASS;
	if (res.p && (!type || strcmp(type, "chat") != 0)) {
		struct session *s = route_find_full(to);
		if (!s || (s->flags & (SESS_F_CLOSING | SESS_F_DEAD)))
			return HOOK_PASS;	/* bounces (RFC 6121 8.5.3.2.1) */
	}
	from = st_attr_get(m, "from");
	if (!from)
		from = h;
	if (!bare_of(&with, from, NULL))
		return HOOK_PASS;
	if (!wanted(a, &user, h, from, &with))
		return HOOK_PASS;
	int rc = append(a, m, &user, &with, id);
	if (rc)
		return not_archived(m);
	struct st_node *sid = st_elem_new(ev->doc, m, "stanza-id", NS_SID);
	st_attr_set(ev->doc, sid, "by", user.s);
	st_attr_set(ev->doc, sid, "id", id);
	return HOOK_PASS;
}

int archiver_outgoing(struct event *ev, const struct hook_handler *hh)
{
	struct archiver *a = hh->data;
	struct bare user, with;
	struct session *origin = live(ev->origin);
	struct st_node *m = event_message(ev);
	const char *to;
	char id[STORE_ID_MAX + 1];

	if (!m)
		return HOOK_PASS;
	/* A local client's message, or one a module sends for an account
	 * (event.account, mod_privilege's): the account's archive. */
	if (origin && origin->username) {
		if (!bare_of_account(&user, origin))
			return HOOK_PASS;
	} else if (ev->origin || !ev->account || !ev->host ||
		   !bare_of(&user, ev->account, NULL) || !user.node_len ||
		   strcmp(user.s + user.node_len + 1, ev->host->name) != 0) {
		return HOOK_PASS;
	}
	to = st_attr_get(m, "to");
	if (!to || !bare_of(&with, to, NULL) || strcmp(user.s, with.s) == 0 ||
	    !archivable(a, m, st_attr_get(m, "type")) ||
	    !wanted(a, &user, user.s + user.node_len + 1, to, &with))
		return HOOK_PASS;
	int rc;
	if (has_our_id(m, user.s)) {
		struct st_doc *copy = st_clone(m);
		strip_our_ids(copy->root, user.s);
		rc = append(a, copy->root, &user, &with, id);
		st_doc_unref(copy);
	} else {
		rc = append(a, m, &user, &with, id);
	}
	return rc ? not_archived(m) : HOOK_PASS;
}
