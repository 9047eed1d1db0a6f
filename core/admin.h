/*
 * admin.h - the administration socket that starlingctl talks to.
 *
 * A Unix socket (option admin_socket, default <data_path>/starling.sock)
 * that only the server's own user may use: the socket file is mode 0600
 * and every connection's peer (SO_PEERCRED) must have the server's uid;
 * anyone else, root included, is refused with an error answer.
 *
 * Protocol (docs/ADMIN.md has the details): a request is one line of
 * words separated by single spaces, each word percent-encoded (%20 for a
 * space, %25 for '%', %0A for a newline). The answer is one line
 * "<status> <length>\n" followed by exactly length bytes of UTF-8 text;
 * status is "ok", "error", or "more" (the shell needs more lines to
 * complete a statement). Requests on one connection are answered in
 * order, one at a time; lua/starling/admin.lua carries them out.
 *
 * Everything runs on the server's loop: sockets are non-blocking, a
 * request line is at most ADMIN_MAX_LINE bytes, and reading stops while
 * an answer is still being written.
 */
#ifndef STARLING_ADMIN_H
#define STARLING_ADMIN_H

#define ADMIN_MAX_LINE (1024 * 1024)
#define ADMIN_MAX_CLIENTS 16

/* Listens on path, replacing a stale socket file; refuses (-EADDRINUSE)
 * when a server already answers there. 0 or -errno (logged). */
int admin_open(const char *path);
/* Closes every admin connection and the socket, and removes the file. */
void admin_close(void);
/* The socket's path, or NULL when not open. */
const char *admin_path(void);

#endif
