/*
 * listener.h - listening sockets on the configured interfaces; each hands
 * its new connections (non-blocking, TCP_NODELAY) to its owner's accept
 * function: c2s ports (STARTTLS), direct TLS ports (XEP-0368), and the
 * ports of roles to come.
 */
#ifndef STARLING_LISTENER_H
#define STARLING_LISTENER_H

#include "util.h"

/* Opens a listener on addr:port ("*" = every IPv4 and IPv6 address);
 * what names it in the log; accept takes ownership of fd.
 * 0, or -errno (logged). */
int listener_add(const char *addr, int port, const char *what,
		 void (*accept)(int fd, const char *ip, int port, void *ctx),
		 void *ctx);
void listener_close_all(void);
/* Listeners opened from now on share their port with other processes
 * that ask the same (SO_REUSEPORT): the workers of one server, among
 * which the kernel spreads the connections. */
void listener_set_reuseport(bool on);
size_t listener_count(void);

#endif
