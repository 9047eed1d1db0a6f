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
 * order, one at a time.
 *
 * This file knows the socket, the framing and the connections; what a
 * request means is up to the admin_commands it is opened with (the
 * server's are lx_admin_commands: lua/starling/admin.lua carries them
 * out, through the Lua bridge).
 *
 * Everything runs on the server's loop: sockets are non-blocking, a
 * request line is at most ADMIN_MAX_LINE bytes, and reading stops while
 * an answer is still being written.
 */
#ifndef STARLING_ADMIN_H
#define STARLING_ADMIN_H

#include "util.h"

#define ADMIN_MAX_LINE (1024 * 1024)
#define ADMIN_MAX_CLIENTS 16

/* What carries out the requests. */
struct admin_commands {
	/* The state of a new connection (a shell's variables, say): given
	 * to run, and to close when the connection goes. */
	void *(*open)(void);
	void (*close)(void *state);
	/* Carries out one request line (len bytes, without its newline;
	 * line[len] is not NUL): appends the answer's text to body and
	 * returns its status, "ok", "error" or "more" (anything else is
	 * sent as "error"). */
	const char *(*run)(void *state, const char *line, size_t len,
			   struct sbuf *body);
};

/* Listens on path, replacing a stale socket file; refuses (-EADDRINUSE)
 * when a server already answers there. cmds (borrowed until admin_close)
 * carries out the requests. 0 or -errno (logged). */
int admin_open(const char *path, const struct admin_commands *cmds);
/* Closes every admin connection and the socket, and removes the file. */
void admin_close(void);
/* The socket's path, or NULL when not open. */
const char *admin_path(void);

#endif
