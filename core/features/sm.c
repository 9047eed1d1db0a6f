/* sm.c - XEP-0198 counters, the unacked queue, hibernation, resumption. */
#include "sm.h"
#include "conn.h"
#include "hmap.h"
#include "log.h"
#include "c2s.h"
#include "store.h"
#include "xmlstream.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

struct sm_item {
	struct sm_item *next;
	size_t len;
	char data[];
};

static struct hmap resumable;		/* id -> struct session */
static void send_text(struct session *s, const char *text)
{
	if (s->conn)
		session_send_raw(s, text, strlen(text));
}

static unsigned long point, durable;	/* see sm.h */
static struct sm_state *owed;		/* sessions with <r/>s to answer */
static struct sm_state *news;		/* hibernation news to fire */

static void news_add(struct sm_state *sm)
{
	if (sm->news_listed)
		return;
	sm->news_next = news;
	news = sm;
	sm->news_listed = true;
}

static void news_remove(struct sm_state *sm)
{
	for (struct sm_state **pp = &news; *pp; pp = &(*pp)->news_next) {
		if (*pp == sm) {
			*pp = sm->news_next;
			break;
		}
	}
	sm->news_listed = false;
}

/* Brings sm's marks to the current point; called before h_in moves, so
 * whatever it counted since its last mark came before the points passed
 * since. */
static void h_sync(struct sm_state *sm)
{
	if (sm->h_pt == point)
		return;
	sm->h_m0 = sm->h_pt + 1 == point ? sm->h_m1 : sm->h_in;
	sm->h_m1 = sm->h_in;
	sm->h_pt = point;
}

/* The stanzas of sm's client handled and durable. */
static uint32_t h_durable(struct sm_state *sm)
{
	h_sync(sm);
	return durable == point ? sm->h_m1 : sm->h_m0;
}

void sm_count_in(struct sm_state *sm)
{
	h_sync(sm);
	sm->h_in++;
}

unsigned long sm_point_next(void)
{
	return ++point;
}

void sm_point_durable(unsigned long p)
{
	durable = p;
}

void sm_answer_owed(void)
{
	struct sm_state **pp = &owed;

	while (*pp) {
		struct sm_state *sm = *pp;
		uint32_t h = h_durable(sm);
		char buf[64];

		if ((int32_t)(h - sm->ack_upto) < 0) {	/* counters wrap */
			pp = &sm->owed_next;
			continue;
		}
		snprintf(buf, sizeof(buf), "<a xmlns='" NS_SM "' h='%u'/>", h);
		for (; sm->acks_owed; sm->acks_owed--)
			send_text(sm->s, buf);
		*pp = sm->owed_next;
		sm->owed_listed = false;
	}
}

static void owed_remove(struct sm_state *sm)
{
	for (struct sm_state **pp = &owed; *pp; pp = &(*pp)->owed_next) {
		if (*pp == sm) {
			*pp = sm->owed_next;
			break;
		}
	}
	sm->owed_listed = false;
}

void sm_global_free(void)
{
	hmap_free(&resumable);
}

static void request_ack(struct sm_state *sm)
{
	send_text(sm->s, "<r xmlns='" NS_SM "'/>");
	sm->since_request = 0;
	ev_timer_stop(conn_loop(), &sm->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct sm_state *sm = container_of(t, struct sm_state, timer);
	struct session *s = sm->s;

	if (s->flags & SESS_F_HIBERNATING) {
		log_info("%s: hibernation timed out", s->full_jid);
		session_expire(s, "hibernation timed out");
		return;
	}
	if (sm->queued && s->conn)
		request_ack(sm);
}

int sm_enable(struct session *s, const struct sm_policy *pol)
{
	struct sm_state *sm;

	if (s->sm)
		return -EALREADY;
	sm = xcalloc(1, sizeof(*sm));
	sm->pol = *pol;
	sm->s = s;
	random_id(sm->id, sizeof(sm->id) - 1);
	ev_timer_init(&sm->timer, on_timer, 1., 0.);
	s->sm = sm;
	if (pol->resume)
		hmap_set(&resumable, sm->id, s);
	return 0;
}

int sm_outgoing(struct session *s, const char *data, size_t len)
{
	struct sm_state *sm = s->sm;
	struct sm_item *it;

	if (sm->queued >= sm->pol.max_queue)
		return -ENOBUFS;
	it = xmalloc(sizeof(*it) + len);
	it->next = NULL;
	it->len = len;
	memcpy(it->data, data, len);
	if (sm->tail)
		sm->tail->next = it;
	else
		sm->head = it;
	sm->tail = it;
	sm->queued++;
	sm->sent++;
	sm->since_request++;
	if (s->flags & SESS_F_HIBERNATING) {
		if (!sm->news_count++)
			sm->news_from = sm->sent - 1;
		news_add(sm);
		return 0;
	}
	if (sm->pol.ack_every && sm->since_request >= sm->pol.ack_every)
		request_ack(sm);
	else if (sm->pol.ack_after > 0 && !ev_is_active(&sm->timer)) {
		ev_timer_set(&sm->timer, sm->pol.ack_after, 0.);
		ev_timer_start(conn_loop(), &sm->timer);
	}
	return 0;
}

/* The client says it has handled h stanzas: drop those from the queue.
 * -ERANGE when h counts stanzas never sent. */
static int ack(struct sm_state *sm, uint32_t h)
{
	uint32_t acked = sm->sent - sm->queued;
	uint32_t n = h - acked;		/* mod 2^32 */

	if (n > sm->queued)
		return -ERANGE;
	while (n--) {
		struct sm_item *it = sm->head;
		sm->head = it->next;
		if (!sm->head)
			sm->tail = NULL;
		free(it);
		sm->queued--;
	}
	if (!sm->queued)
		ev_timer_stop(conn_loop(), &sm->timer);
	return 0;
}

static int parse_h(const char *h, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!h || !*h || *h == '-')
		return -EINVAL;
	v = strtoull(h, &end, 10);
	if (*end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

bool sm_handle(struct session *s, const char *name, const char *h)
{
	struct sm_state *sm = s->sm;
	char buf[64];
	uint32_t v;

	if (!sm)
		return false;
	if (strcmp(name, "r") == 0) {
		sm->acks_owed++;
		sm->ack_upto = sm->h_in;
		if (!sm->owed_listed) {
			sm->owed_next = owed;
			owed = sm;
			sm->owed_listed = true;
		}
		return true;
	}
	if (strcmp(name, "a") != 0)
		return false;
	if (parse_h(h, &v) != 0) {
		session_close(s, "bad-format", "<a/> needs a number h");
		return true;
	}
	if (ack(sm, v) != 0) {
		send_text(s, "<stream:error><undefined-condition xmlns='urn:ietf:params:xml:ns:xmpp-streams'/>"
			     "<handled-count-too-high xmlns='" NS_SM "' h='");
		snprintf(buf, sizeof(buf), "%u' send-count='%u'/>", v, sm->sent);
		send_text(s, buf);
		send_text(s, "</stream:error>");
		session_close(s, NULL, NULL);
	}
	return true;
}

bool sm_hibernate(struct session *s)
{
	struct sm_state *sm = s->sm;

	if (!sm || !sm->pol.resume || sm->pol.hibernate <= 0 ||
	    !(s->flags & SESS_F_BOUND))
		return false;
	s->flags |= SESS_F_HIBERNATING;
	ev_timer_stop(conn_loop(), &sm->timer);
	ev_timer_set(&sm->timer, sm->pol.hibernate, 0.);
	ev_timer_start(conn_loop(), &sm->timer);
	sm->news_start = true;
	sm->news_end = false;
	/* What the client never acked counts as queued while hibernating. */
	sm->news_count = sm->queued;
	sm->news_from = sm->sent - sm->queued;
	news_add(sm);
	log_info("%s: connection lost, hibernating for %.0f s (%u unacked)",
		 s->full_jid, sm->pol.hibernate, sm->queued);
	return true;
}

int sm_resume(struct session *n, const char *previd, const char *h)
{
	return sm_resume_with(n, previd, h, NULL, NULL);
}

int sm_resume_with(struct session *n, const char *previd, const char *h,
		   void (*answer)(struct session *o, const char *resumed, void *ctx),
		   void *ctx)
{
	struct session *o = previd ? hmap_get(&resumable, previd) : NULL;
	char buf[160];
	uint32_t v;

	if (!o || (o->flags & SESS_F_DEAD) || !o->bare_jid || !n->bare_jid ||
	    strcmp(o->bare_jid, n->bare_jid) != 0)
		return -ENOENT;
	if (parse_h(h, &v) != 0)
		return -EINVAL;
	if (ack(o->sm, v) != 0)
		return -ERANGE;
	session_transplant(o, n);
	ev_timer_stop(conn_loop(), &o->sm->timer);
	o->sm->since_request = 0;
	o->sm->news_count = 0;		/* sent again below */
	o->sm->news_end = true;
	news_add(o->sm);
	/* h says what the client need not send again: all of it on disk
	 * first (the archive writer's hand-over and queue too). Rare. */
	if (store_commit() != 0)
		log_warn("%s: resuming after a failed commit", o->full_jid);
	snprintf(buf, sizeof(buf), "<resumed xmlns='" NS_SM "' previd='%s' h='%u'/>",
		 o->sm->id, o->sm->h_in);
	if (answer)
		answer(o, buf, ctx);
	else
		send_text(o, buf);
	for (struct sm_item *it = o->sm->head; it; it = it->next)
		session_write_stanza(o, it->data, it->len);
	if (o->sm->queued)
		request_ack(o->sm);
	log_info("%s: resumed, %u stanzas sent again", o->full_jid, o->sm->queued);
	return 0;
}

/* Parses up to max serialized items from it on into docs (as many as
 * there are slots); returns how many. */
static size_t parse_items(struct sm_item *it, struct st_doc **docs, size_t max)
{
	static const char header[] = "<stream:stream xmlns='jabber:client' "
		"xmlns:stream='http://etherx.jabber.org/streams'>";
	struct xs *xs = xs_new(&(struct xs_limits){ 0 });
	enum xs_event ev = xs_feed(xs, header, sizeof(header) - 1);
	size_t n = 0;

	while (ev == XS_STREAM_OPEN)
		ev = xs_next(xs);
	for (; it && n < max && ev != XS_ERROR; it = it->next) {
		ev = xs_feed(xs, it->data, it->len);
		while (ev != XS_NEED_MORE && ev != XS_ERROR) {
			if (ev == XS_STANZA && n < max)
				docs[n++] = xs_take_stanza(xs);
			ev = xs_next(xs);
		}
	}
	xs_free(xs);
	return n;
}

static void free_items(struct sm_state *sm)
{
	while (sm->head) {
		struct sm_item *it = sm->head;
		sm->head = it->next;
		free(it);
	}
	sm->tail = NULL;
	sm->queued = 0;
}

struct st_doc **sm_take_unacked(struct session *s, size_t *count)
{
	struct sm_state *sm = s->sm;
	struct st_doc **docs;

	*count = 0;
	if (!sm || !sm->queued)
		return NULL;
	docs = xcalloc(sm->queued, sizeof(*docs));
	*count = parse_items(sm->head, docs, sm->queued);
	free_items(sm);
	return docs;
}

/* The stanzas queued for sm's session and not told yet, parsed. */
static struct st_doc **untold(struct sm_state *sm, size_t *count)
{
	uint32_t first = sm->sent - sm->queued;	/* of the oldest queued */
	uint32_t skip = sm->news_from - first;	/* mod 2^32 */
	struct sm_item *it = sm->head;
	struct st_doc **docs;

	*count = 0;
	if (!sm->news_count || skip >= sm->queued)
		return NULL;
	while (skip--)
		it = it->next;
	docs = xcalloc(sm->news_count, sizeof(*docs));
	*count = parse_items(it, docs, sm->news_count);
	sm->news_count = 0;
	return docs;
}

/* s is still the session the news were about. */
static bool same(struct session *s, struct sm_state *sm)
{
	return s->sm == sm && !(s->flags & SESS_F_DEAD);
}

static void fire_one(struct sm_state *sm)
{
	struct session *s = sm->s;
	bool start = sm->news_start, end = sm->news_end;
	size_t n = 0;
	struct st_doc **docs = NULL;

	sm->news_start = sm->news_end = false;
	if (s->flags & SESS_F_HIBERNATING)
		docs = untold(sm, &n);
	sm->news_count = 0;
	if (start && same(s, sm))
		session_fire(s, "smacks-hibernation-start",
			     &(struct event){ .session = s, .origin = s });
	for (size_t i = 0; i < n; i++) {
		if (same(s, sm) && (s->flags & SESS_F_HIBERNATING)) {
			struct event ev = { .session = s, .origin = s, .doc = docs[i],
					    .stanza = docs[i]->root };
			session_fire(s, "smacks-hibernation-stanza-queued", &ev);
		}
		st_doc_unref(docs[i]);
	}
	free(docs);
	if (end && same(s, sm))
		session_fire(s, "smacks-hibernation-end",
			     &(struct event){ .session = s, .origin = s });
}

void sm_fire_news(void)
{
	/* Handlers may queue stanzas for other hibernating sessions (or
	 * this one): those are told in a later round, a few at most. A
	 * handler may also end sessions of the list: their sessions live
	 * until the iteration's end, and same() tells a freed state. */
	for (int round = 0; news && round < 4; round++) {
		size_t n = 0, i = 0;
		for (struct sm_state *sm = news; sm; sm = sm->news_next)
			n++;
		struct { struct session *s; struct sm_state *sm; } *list =
			xcalloc(n, sizeof(*list));
		while (news) {
			struct sm_state *sm = news;
			news = sm->news_next;
			sm->news_listed = false;
			list[i].s = sm->s;
			list[i++].sm = sm;
		}
		for (i = 0; i < n; i++) {
			if (same(list[i].s, list[i].sm))
				fire_one(list[i].sm);
		}
		free(list);
	}
}

void sm_free(struct session *s)
{
	struct sm_state *sm = s->sm;

	if (!sm)
		return;
	if (sm->owed_listed)
		owed_remove(sm);
	if (sm->news_listed)
		news_remove(sm);
	ev_timer_stop(conn_loop(), &sm->timer);
	if (sm->pol.resume && hmap_get(&resumable, sm->id) == s)
		hmap_del(&resumable, sm->id);
	free_items(sm);
	free(sm);
	s->sm = NULL;
}
