/*
 * archiver.h - the part of message archiving (XEP-0313) that every chat
 * message pays for, as two C hook handlers; the policy (preferences,
 * rosters) stays in mod_mam, asked through the wanted callback.
 *
 * incoming  for "message/full", "/bare" and "/self": a message to an
 *           account of the host, before delivery (so also what goes to
 *           offline storage), archived for the recipient.
 * outgoing  for "pre-message/full", "/bare" and "/host": a message one
 *           of the account's resources sends, archived for the sender
 *           (one to its own bare JID only as incoming).
 * payloads  namespaces of children that make a message without a body
 *           worth keeping (OMEMO, markers, reactions, ...).
 * wanted    whether messages with `other` (the 'from' of an incoming
 *           message, the 'to' of an outgoing one; `with` its bare JID) go
 *           to the archive of username@host; false for an account that
 *           does not exist. *uniform set says the answer holds for every
 *           contact of the account: it is then kept (an answer), for up
 *           to answers_max accounts (all forgotten when full), until
 *           archiver_forget().
 *
 * The mechanics, per message: what is archivable (XEP-0313 section
 * 5.1.1, the XEP-0334 hints), stanza-ids in our name that we did not add
 * (XEP-0359 section 4), the append, and the <stanza-id/> the recipient
 * sees.
 */
#ifndef STARLING_ARCHIVER_H
#define STARLING_ARCHIVER_H

#include "hooks.h"

struct store;
struct archiver;

struct archiver_policy {
	bool (*wanted)(void *ctx, const char *username, const char *host,
		       const char *other, const char *with, bool *uniform);
	void *ctx;
	void (*ctx_free)(void *ctx);	/* when the archiver goes */
};

/* An archiver appending to the archive store st (copied), with n payload
 * namespaces (copied) and policy (owned from now on). One reference, the
 * caller's. */
struct archiver *archiver_new(const struct store *st,
			      const char *const *payloads, size_t n,
			      size_t answers_max,
			      const struct archiver_policy *policy);
void archiver_ref(void *archiver);
void archiver_unref(void *archiver);

/* The hook handlers; their data is the archiver. */
int archiver_incoming(struct event *ev, const struct hook_handler *h);
int archiver_outgoing(struct event *ev, const struct hook_handler *h);

/* Forgets the kept answer of username (NULL: of every account). */
void archiver_forget(struct archiver *a, const char *username);

#endif
