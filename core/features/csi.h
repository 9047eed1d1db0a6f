/*
 * csi.h - Client State Indication (XEP-0352) mechanics: while a client
 * says it is inactive, what it is sent passes a filter (session.h's
 * outgoing filters) that holds back, drops, or lets through. The policy
 * (which payloads matter) is mod_csi's, handed over as a csi_policy.
 *
 * held:    stanzas kept back, serialized, in order; presence is held
 *          under its sender's address, so only the newest per contact
 *          waits. Over the session's max_held_bytes all of it goes out.
 * flush:   everything held goes out, in order, then the stanza that
 *          caused it (a message that matters, an error, a subscription).
 * matters: a message with a body, a subject, or a payload the policy
 *          names (OMEMO, call invitations, MUC invitations, ...).
 */
#ifndef STARLING_CSI_H
#define STARLING_CSI_H

#include "util.h"

struct session;
struct csi_policy;

/* A policy: the namespaces of the payloads that matter (copied). The
 * caller holds one reference. */
struct csi_policy *csi_policy_new(const char *const *important, size_t n);
void csi_policy_ref(struct csi_policy *p);
void csi_policy_unref(struct csi_policy *p);

/* The client went inactive: hold by policy p from now on. Again while
 * inactive: the policy is replaced. */
void csi_inactive(struct session *s, struct csi_policy *p);
/* The client went active: everything held goes out, in order. */
void csi_active(struct session *s);
/* Bytes held back for s now. */
size_t csi_held_bytes(const struct session *s);

#endif
