/*
 * ctl_admin.h - starlingctl's commands for a running server, over its
 * admin socket (core/admin.h has the protocol): status, reload, module,
 * sessions, kick, user, log, shell; and check, which validates a config
 * file without starting anything.
 *
 * user create|password|delete act on the live server when it runs (so a
 * deleted account's sessions are closed), and on the data directory
 * directly when it does not.
 */
#ifndef STARLING_CTL_ADMIN_H
#define STARLING_CTL_ADMIN_H

#include <stdbool.h>
#include <stdio.h>

void ctl_admin_usage(FILE *f);

/* A line from stdin without its newline, prompted and not echoed on a
 * terminal; NULL at end of input. The caller frees it. (starlingctl.c) */
char *ctl_read_password(const char *prompt);

/* Whether host (nameprepped) is a VirtualHost of the loaded config (not
 * a Component): the hosts whose accounts starlingctl may touch.
 * (starlingctl.c) */
bool ctl_local_host(const char *host);

/* check [config|certs|dns] [CONFIG]: runs before any config is loaded (a
 * config that does not load is what it reports); without a part, all of
 * them. cfg_file: the -c file. Exit code: 0 when there is no error
 * (warnings allowed), 1 otherwise, 2 for bad usage. */
int ctl_check(int argc, char **argv, const char *cfg_file);

struct lua_State;
/* Sets resolver and local_addresses, the DNS helpers of check, in the
 * table on top of L's stack. (ctl_dns.c) */
void ctl_dns_helpers(struct lua_State *L);

/* Whether argv[0] is a command ctl_admin_run() handles. */
bool ctl_admin_handles(const char *cmd);
/* Runs it, with the config loaded (the data directory is opened only
 * when needed). Returns the exit code: 0 done, 1 failed or refused, 2
 * bad usage. */
int ctl_admin_run(int argc, char **argv);

/* Asks a running server to reload (its config and certificates): over
 * the admin socket when it is ours, else SIGHUP to the pidfile's process
 * (root importing certificates for the server's user). 0 asked, 1 failed,
 * -ENOENT when no server runs. */
int ctl_admin_reload(void);

/* cert import DIR...: each configured host's certificate and key found in
 * the directories, copied into the certificates directory
 * (tools/ctl_cert.c). Exit code. */
int ctl_cert(int argc, char **argv);

#endif
