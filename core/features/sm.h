/*
 * sm.h - Stream Management (XEP-0198) mechanics; the policy (when to ask
 * for acks, how long to hibernate, what becomes of unacked stanzas) is a
 * Lua module's (modules/mod_smacks.lua).
 *
 * h_in:        stanzas received from the client since <enable/> (mod 2^32)
 * sent:        stanzas queued for the client since <enable/> (mod 2^32)
 * queue:       copies of the serialized stanzas the client has not acked
 *              yet, oldest first; sent - queued is what it has acked
 * hibernating: the connection is gone but the session stays bound for a
 *              while; stanzas to it queue up until it resumes on a new
 *              connection or the time runs out
 */
#ifndef STARLING_SM_H
#define STARLING_SM_H

#include <ev.h>

#include "util.h"

struct session;
struct st_doc;

#define NS_SM "urn:xmpp:sm:3"

struct sm_policy {
	bool resume;
	uint32_t max_queue;		/* unacked stanzas, then the stream ends */
	uint32_t ack_every;		/* ask for an ack after this many */
	double ack_after;		/* ... or this many seconds */
	double hibernate;		/* seconds a lost session waits */
};

struct sm_item;

struct sm_state {
	char id[25];
	struct sm_policy pol;
	uint32_t h_in;
	uint32_t sent;
	uint32_t queued;
	uint32_t since_request;		/* queued since the last <r/> */
	struct sm_item *head, *tail;
	ev_timer timer;			/* ack-after, or hibernation */
	struct session *s;
	uint32_t h_m0, h_m1;		/* h_in at points h_pt - 1, h_pt */
	unsigned long h_pt;
	uint32_t acks_owed;		/* <r/>s not answered yet */
	uint32_t ack_upto;		/* h_in at the last of them */
	struct sm_state *owed_next;	/* on the list of those that owe */
	bool owed_listed;
	/* News for the modules while hibernating (sm_fire_news). */
	struct sm_state *news_next;
	bool news_listed, news_start, news_end;
	uint32_t news_from;		/* sent, at the first untold stanza */
	uint32_t news_count;		/* stanzas queued and not told yet */
};

void sm_global_free(void);

/* Enables SM on s: 0, or -EALREADY. */
int sm_enable(struct session *s, const struct sm_policy *pol);
/* s sent a stanza that counts (message, presence, iq). */
void sm_count_in(struct sm_state *sm);

/* Points: the server closes each loop iteration's stanzas under a point
 * (sm_point_next) and says when a point is durable: everything those
 * stanzas wrote is on disk, the archive writer's appends included
 * (core/main.c). An <r/> is answered once every stanza handled before it
 * is durable (sm_answer_owed), so an <a/> never covers a write a crash
 * could lose; stanzas themselves go on to their recipients at once. At
 * most one point is pending: durable is the newest point or the one
 * before. */
unsigned long sm_point_next(void);
void sm_point_durable(unsigned long point);
/* Queues the <a/> answers that have become durable. */
void sm_answer_owed(void);
/* A stanza for the client (serialized): keeps a copy until acked and asks
 * for acks by the policy. 0, or -ENOBUFS when the queue is full. */
int sm_outgoing(struct session *s, const char *data, size_t len);
/* <r/> and <a/>: true when handled; may close the session on a bad h. */
bool sm_handle(struct session *s, const char *name, const char *h);
/* The session lost its connection: hibernate (true), or not resumable. */
bool sm_hibernate(struct session *s);
/* On the new, authenticated session n: resume the session previd with the
 * client's h. 0 (n is gone, the resumed session has the connection and
 * has been sent <resumed/> and every unacked stanza), -ENOENT (no such
 * session for this account), -ERANGE (h acks more than was sent). */
int sm_resume(struct session *n, const char *previd, const char *h);
/* The same, where answer (when not NULL) sends the <resumed/> element,
 * given serialized, on the resumed session o before the unacked stanzas
 * go again (SASL2 wraps it in its <success/>). */
int sm_resume_with(struct session *n, const char *previd, const char *h,
		   void (*answer)(struct session *o, const char *resumed, void *ctx),
		   void *ctx);
/* Unacked stanzas as parsed docs, oldest first (the caller owns them and
 * the array); empties the queue. */
struct st_doc **sm_take_unacked(struct session *s, size_t *count);
/* Tells the modules what happened to hibernating sessions since the
 * last call: "smacks-hibernation-start" (session), one
 * "smacks-hibernation-stanza-queued" (session, stanza) per stanza queued
 * for a hibernating session, "smacks-hibernation-end" (session) when it
 * resumed. Called once per loop iteration, before the commit, so what
 * the handlers write joins this iteration's batch. */
void sm_fire_news(void);
/* Frees the state (the session is going away). */
void sm_free(struct session *s);

#endif
