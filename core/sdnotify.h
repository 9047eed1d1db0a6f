/* sdnotify.h - telling the service manager how the server is doing.
 *
 * systemd's notification protocol (sd_notify(3)): one datagram of
 * "NAME=value" lines to the Unix socket named by $NOTIFY_SOCKET ('@' at
 * its start for an abstract name). A unit with Type=notify waits for
 * READY=1; RELOADING=1 and STOPPING=1 say what the server is about to do.
 * Without $NOTIFY_SOCKET (not started by systemd) nothing is sent.
 */
#ifndef STARLING_SDNOTIFY_H
#define STARLING_SDNOTIFY_H

/* Sends state (lines, e.g. "READY=1\nSTATUS=..."). 0 when sent or when
 * there is no service manager to tell; -errno. */
int sdnotify(const char *state);

/* RELOADING=1 with the MONOTONIC_USEC systemd asks for. */
int sdnotify_reloading(void);

#endif
