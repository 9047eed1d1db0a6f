/*
 * c2s.h - the client role of a stream (RFC 6120, 6121): SASL (SCRAM with
 * channel binding, PLAIN over TLS), resource binding, the RFC 3921
 * session no-op, and the client's stanzas into the router (SASL2, Bind2
 * and FAST: sasl2.c, fast.c); XEP-0198 and
 * XEP-0352 elements go to their features. A c2s stream is a struct
 * session with role c2s_role.
 */
#ifndef STARLING_C2S_H
#define STARLING_C2S_H

#include "session.h"

extern const struct session_role c2s_role;

/* The server's secret for SASL's answers about unknown users. */
void c2s_global_init(const unsigned char secret[32]);

/* XEP-0198 resumption: o (hibernating, or with a connection that is
 * dropped) takes over n's connection and parser; n ends. */
void session_transplant(struct session *o, struct session *n);

#endif
