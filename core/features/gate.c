/* gate.c - C-side "nothing to do" answers for Lua handlers (see gate.h). */
#include "gate.h"
#include "jid.h"
#include "route.h"
#include "session.h"
#include "stanza.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* An account of one of our hosts: "node@host" in bare, NUL-terminated,
 * with the node and the host as NUL-terminated copies. */
struct account {
	char bare[2 * JID_PART_MAX + 2];
	char node[JID_PART_MAX];
	char host[JID_PART_MAX];
};

void gate_init(struct gate *g, enum gate_kind kind, unsigned sides,
	       const struct store *st)
{
	memset(g, 0, sizeof(*g));
	g->kind = kind;
	g->sides = sides;
	if (st) {
		g->host = xstrdup(st->host);
		g->name = xstrdup(st->name);
		store_init(&g->st, st->engine, g->host, g->name, st->kind);
	}
}

void gate_deinit(struct gate *g)
{
	free(g->host);
	g->host = NULL;
	free(g->name);
	g->name = NULL;
}

static bool account_set(struct account *a, const struct jid_span *node,
			const struct jid_span *host)
{
	if (!node->p || !node->len || node->len >= JID_PART_MAX ||
	    !host->len || host->len >= JID_PART_MAX)
		return false;
	memcpy(a->node, node->p, node->len);
	a->node[node->len] = '\0';
	memcpy(a->host, host->p, host->len);
	a->host[host->len] = '\0';
	memcpy(a->bare, a->node, node->len);
	a->bare[node->len] = '@';
	memcpy(a->bare + node->len + 1, a->host, host->len + 1);
	return true;
}

/* Whether a is an account of one of our hosts (the gate's store's host
 * is, without a lookup). */
static bool ours(const struct gate *g, const struct account *a)
{
	return (g->host && strcmp(a->host, g->host) == 0) ||
	       route_host(a->host) != NULL;
}

/* The account a JID names, when it is one of ours. */
static bool account_of_jid(struct account *a, const char *jid)
{
	struct jid_span node, host, res;

	return jid && jid_split_raw(jid, strlen(jid), &node, &host, &res) &&
	       account_set(a, &node, &host);
}

static bool account_of_session(struct account *a, const struct session *s)
{
	struct jid_span node, host;

	if (!s || (s->flags & SESS_F_DEAD) || !s->username || !s->host)
		return false;
	node.p = s->username;
	node.len = strlen(s->username);
	host.p = s->host;
	host.len = strlen(s->host);
	return account_set(a, &node, &host);
}

static bool has_record(const struct gate *g, const struct account *a)
{
	static struct sbuf v;		/* scratch, kept between calls */
	int rc;

	if (strcmp(a->host, g->st.host) != 0)
		return true;		/* the handler opens that host's store */
	rc = store_get(&g->st, a->node, NULL, 0, &v);
	sbuf_recycle(&v, 4096);
	return rc != -ENOENT;		/* a failed read: the handler logs it */
}

static bool has_carbons(const struct account *a)
{
	for (struct session *s = route_find_bare(a->bare); s; s = s->user_next)
		if ((s->flags & SESS_F_CARBONS) && !(s->flags & SESS_F_DEAD))
			return true;
	return false;
}

static bool over_quota(const struct gate *g, const struct account *a)
{
	struct store_arch_usage u;

	if (strcmp(a->host, g->st.host) != 0)
		return false;		/* the handler keeps its own host's */
	if (store_archive_usage(&g->st, a->node, true, &u) != 0)
		return true;		/* not known yet, or failed */
	return (g->max_items && u.items > g->max_items) ||
	       (g->max_bytes && u.bytes > g->max_bytes);
}

static bool account_open(const struct gate *g, const struct account *a)
{
	if (!ours(g, a))
		return false;
	switch (g->kind) {
	case GATE_RECORD:
		return has_record(g, a);
	case GATE_CARBONS:
		return has_carbons(a);
	case GATE_QUOTA:
		return over_quota(g, a);
	}
	return true;
}

bool gate_open(const struct gate *g, const struct event *ev)
{
	struct account a;

	if (!ev->stanza)
		return true;		/* not a stanza event: the handler's call */
	/* origin: the session, or the account a module sends for (its Lua
	 * origin is then a table of its own: event.account, XEP-0356) */
	if ((g->sides & GATE_ORIGIN) &&
	    (ev->origin ? account_of_session(&a, ev->origin)
			: account_of_jid(&a, ev->account)) &&
	    account_open(g, &a))
		return true;
	if ((g->sides & GATE_TO) &&
	    account_of_jid(&a, st_attr_get(ev->stanza, "to")) &&
	    account_open(g, &a))
		return true;
	if ((g->sides & GATE_FROM) &&
	    account_of_jid(&a, st_attr_get(ev->stanza, "from")) &&
	    account_open(g, &a))
		return true;
	return false;
}
