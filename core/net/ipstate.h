/*
 * ipstate.h - what the server remembers per client address: how many of
 * its connections have not authenticated yet, and a decaying score of its
 * failed logins (which slows down password guessing from that address).
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
 * a second up to max_delay. */
double ipstate_auth_failed(const char *ip, double max_delay);

void ipstate_free_all(void);

#endif
