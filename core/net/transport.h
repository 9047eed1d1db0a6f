/*
 * transport.h - what connections and their transports share inside net/.
 *
 * transport: the ops of one kind of byte stream (struct conn_ops in
 *            conn.h): plain TCP in socket.c, TLS in tls.c. conn.c owns
 *            the queue and the watchers and calls the ops.
 */
#ifndef STARLING_TRANSPORT_H
#define STARLING_TRANSPORT_H

#include "conn.h"

extern const struct conn_ops conn_tcp_ops;	/* socket.c */
extern const struct conn_ops conn_tls_ops;	/* tls.c */

/* One step of a server-side TLS handshake on c (tls.c); on success the
 * owner hears tls_ready and reading and writing go on. */
void conn_tls_handshake(struct conn *c);
/* Writes what c has queued, as far as the socket takes it (conn.c). */
void conn_try_flush(struct conn *c);

#endif
