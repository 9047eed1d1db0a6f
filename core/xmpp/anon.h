/*
 * anon.h - the temporary accounts of SASL ANONYMOUS (RFC 4505, XEP-0175)
 * on a host with authentication = "anonymous".
 *
 * temporary account: what one anonymous login gets: a random localpart
 *         that is no account's and no session's, an account record with
 *         credentials nobody knows (so modules see an account like any
 *         other, and starlingctl lists it), and a mark in the host's
 *         "anonymous" store. It lives as long as the login's session.
 *
 * When the session ends, the account and everything stored under it
 * (roster, offline messages, archive, private XML, vCard: every store)
 * are removed. A server that stopped without ending its sessions (a
 * crash) removes the marked accounts left over when it starts again.
 */
#ifndef STARLING_ANON_H
#define STARLING_ANON_H

#include "jid.h"

/* Makes a temporary account on host; its localpart into node (size
 * JID_PART_MAX). 0, or -EAGAIN (no free name found) or a store error. */
int anon_account_new(const char *host, char *node);
/* The login's session ended: removes the account and its data. */
void anon_account_end(const char *host, const char *node);
/* Removes the temporary accounts a previous run left on host (start-up):
 * how many, or a negative error. */
int anon_cleanup(const char *host);

#endif
