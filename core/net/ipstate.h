/*
 * ipstate.h - what the server remembers per client address: how many of
 * its connections have not authenticated yet, and a decaying score of its
 * failed logins with the penalty it earned (which slows down password
 * guessing from that address, whatever the number of its connections).
 *
 * Entries are dropped once nothing is counted and the score has decayed.
 */
#ifndef STARLING_IPSTATE_H
#define STARLING_IPSTATE_H

#include "util.h"

/* Counts a new unauthenticated connection from ip; false (nothing
 * counted) when ip already has max of them (0 = no limit). */
bool ipstate_unauth_add(const char *ip, unsigned max);
/* The connection authenticated or went away. */
void ipstate_unauth_del(const char *ip);

/* Records a failed login from ip and returns how long, in seconds, to
 * wait before answering it: 0 for the first two, then doubling from half
 * a second up to max_delay. The address is under penalty until then. */
double ipstate_auth_failed(const char *ip, double max_delay);
/* Seconds until ip's penalty ends (0 when there is none): until then no
 * login from the address, on any connection, may be tried, so opening
 * more connections does not make guessing faster. */
double ipstate_auth_penalty(const char *ip);

void ipstate_free_all(void);

#endif
