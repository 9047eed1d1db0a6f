/*
 * listener.h - listening sockets: c2s ports (STARTTLS) and direct TLS
 * ports (XEP-0368), on the configured interfaces.
 */
#ifndef STARLING_LISTENER_H
#define STARLING_LISTENER_H

#include "session.h"

/* Opens a listener on addr:port ("*" = every IPv4 and IPv6 address).
 * 0, or -errno (logged). */
int listener_add(const char *addr, int port, bool direct_tls,
		 const struct session_config *cfg);
void listener_close_all(void);
size_t listener_count(void);

#endif
