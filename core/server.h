/*
 * server.h - server-wide settings taken from the config: the log, the TLS
 * contexts of the hosts, the pid file. Applied at start-up and again on
 * every reload (SIGHUP, starlingctl reload).
 *
 * Each apply function is all or nothing: it checks everything first and
 * changes nothing when something is wrong, writing why into err.
 *
 * options hook: settings main.c keeps (the c2s session limits) are read
 * again on reload through the function it registers.
 */
#ifndef STARLING_SERVER_H
#define STARLING_SERVER_H

#include "util.h"

#include <time.h>

/* path relative to the config file's directory (absolute paths as they
 * are); buf holds the result when one is made. NULL when too long. */
const char *server_path(const char *path, char *buf, size_t n);

/* The log from the current config's option "log": a level ("debug"), a
 * destination ("syslog", "stderr", a file), or a table { level =, to =,
 * modules = { name = level } } (Prosody's { info = "file" } too). */
int server_apply_log(struct sbuf *err);

/* New TLS contexts for every VirtualHost of the config (its "ssl" option,
 * host first then global), swapped in for new connections; connections
 * already encrypted keep the context they have. Contexts are shared by
 * hosts with the same certificate and key. On any error the current
 * contexts stay. n_hosts (may be NULL) gets the number of hosts with a
 * certificate. A reload calls it while the new config is being tried
 * (lx_config_try), before that config becomes the server's. */
int server_load_tls(struct sbuf *err, int *n_hosts);

/* The certificate of each host as the last server_load_tls found it:
 * host, file, expiry time. Borrowed until the next load. */
struct server_cert {
	char *host, *file;
	time_t not_after;
};
const struct server_cert *server_certs(size_t *n);
void server_free_certs(void);

/* Each VirtualHost's option "authentication" (docs/ADMIN.md):
 * "internal_hashed" (the default), "anonymous" (SASL ANONYMOUS, temporary
 * accounts) or "insecure" (tests only: any password, the account made on
 * the first login), which needs SERVER_INSECURE_FLAG = true on the host.
 * Checks every host first; on an error (naming the host and the option)
 * nothing changes. Hosts must have been added to the router. */
#define SERVER_INSECURE_FLAG "insecure_authentication_on_purpose"
int server_apply_host_auth(struct sbuf *err);
/* The same checks, changing nothing (a reload tries the new config). */
int server_check_host_auth(struct sbuf *err);

/* Name resolution for s2s (core/net/dns.h) from the options
 * s2s_static_hosts, dns_resolver, dns_hosts_file, dns_trust_anchor and
 * dns_timeout (docs/ADMIN.md), on conn_loop(). All or nothing: on an error
 * (said in err) the resolver and static hosts stay as they were. Called
 * at start-up and by server_read_options() on reload. */
int server_apply_dns(struct sbuf *err);

/* Reading the c2s options again (main.c registers it); the DNS options
 * too. */
void server_set_options_reader(void (*fn)(void));
void server_read_options(void);

/* External components (XEP-0114, core/xmpp/component.h): their
 * per-domain options (component_secret, component_max_connections,
 * component_queue, component_queue_timeout) read from the Component
 * sections, and the listeners of component_ports (default 5347) on
 * component_interfaces (default 127.0.0.1 and ::1), opened when the
 * config has a Component without a module (at start, or when a reload
 * adds the first one). 0, or -1 when a port could not be opened. */
int server_listen_components(void);
/* Whether a host of the config is served by an external component. */
bool server_host_external(const char *type, const char *module);

/* The option "pidfile": written at start (after everything is set up),
 * removed at stop. 0 or -errno (logged). */
int server_write_pidfile(void);
/* A worker forked after the master wrote it: the file is not ours. */
void server_forget_pidfile(void);
void server_remove_pidfile(void);

#endif
