/*
 * dns.h - name resolution for server-to-server streams, inside the libev
 * loop: SRV (RFC 2782, RFC 6120 3.2, XEP-0368), A/AAAA and TLSA (RFC 7673)
 * through libunbound, which also validates DNSSEC. Nothing here blocks:
 * libunbound resolves in its own thread and wakes the loop through a pipe.
 *
 * Words:
 *   target     one address to try, with the name it was found under (the
 *              SRV target, or the domain itself) for TLS and DANE.
 *   static     a domain pinned to an address by the config
 *              (s2s_static_hosts): no DNS at all.
 *   secure     every answer on the way to a target (SRV and A/AAAA) was
 *              validated with DNSSEC against a configured trust anchor.
 *   bogus      an answer that failed validation: an error, never used.
 *
 * Callbacks run from the loop, never inside the call that started the
 * query and never inside a libunbound call, exactly once unless the query
 * is cancelled first. The query is freed after its callback returns (the
 * callback must not cancel it). Lua may be entered from a callback.
 */
#ifndef STARLING_DNS_H
#define STARLING_DNS_H

#include "util.h"

#include <ev.h>
#include <sys/socket.h>

#define DNS_XMPP_PORT 5269

struct dns_target {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	char *host;		/* the SRV target (or the domain itself on
				 * fallback), for TLS/DANE */
	uint16_t port;
	bool direct_tls;	/* from _xmpps-server._tcp (XEP-0368) */
	bool secure;		/* the whole chain to this address validated
				 * with DNSSEC */
};

/* One TLSA record (RFC 6698 2.1): the association data is data[len]. */
struct dns_tlsa {
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t len;
};

/* t[n] and everything in it is borrowed until the callback returns. */
typedef void (*dns_xmpp_fn)(void *arg, int err, const struct dns_target *t, size_t n);
/* recs[n] (borrowed until the callback returns) are given only when the
 * answer validated: n is 0 with err 0 when there are none or the answer
 * is insecure; err is -EBADMSG when it is bogus (RFC 7671 4: do not
 * connect), else as for dns_xmpp_fn. */
typedef void (*dns_tlsa_fn)(void *arg, int err, const struct dns_tlsa *recs, size_t n);

struct dns_query;

/* Targets for a server-to-server connection to domain, in the order to
 * try: a static host, or a domain that is an IP literal; then SRV records
 * of _xmpps-server._tcp and _xmpp-server._tcp together (XEP-0368), in
 * RFC 2782 order (priority ascending, weighted random within a priority;
 * a lone "." target means the service is not offered there), each
 * target's addresses interleaved IPv6 first (RFC 8305 4); then, when
 * there are no SRV records, the A/AAAA of the domain on port 5269.
 * err: 0 with n >= 1; -ENOENT (the domain does not exist, has no address,
 * or decidedly offers no service), -ETIMEDOUT (no answer within
 * dns_timeout), -EBADMSG (a DNSSEC-bogus answer), -EAGAIN (the resolver
 * failed: SERVFAIL), -EINVAL (not a domain name), -ENOTCONN (dns_start
 * was never called). Never NULL. */
struct dns_query *dns_resolve_xmpp_server(const char *domain, dns_xmpp_fn cb, void *arg);

/* TLSA records for _port._tcp.host (RFC 7673: host is the SRV target),
 * only when the answer is DNSSEC-secure. Never NULL. */
struct dns_query *dns_resolve_tlsa(const char *host, uint16_t port, dns_tlsa_fn cb, void *arg);

/* Stops a query: its callback never runs. NULL is allowed. */
void dns_cancel(struct dns_query *q);

/* --- configuration (core/server.c, from the config, again on reload) ---- */

struct dns_static_host {
	const char *domain;
	const char *addr;	/* "127.0.0.2", "127.0.0.2:5270", "::1",
				 * "[::1]:5269" */
};

/* Replaces the static hosts with h[n], or changes nothing and says why in
 * err when one is not a domain and an IP address with an optional port.
 * Strings are copied. 0 or -EINVAL. */
int dns_set_static_hosts(const struct dns_static_host *h, size_t n, struct sbuf *err);

struct dns_options {
	/* Where queries go: NULL for the nameservers of /etc/resolv.conf,
	 * else forwarders "addr", "addr@port" or "[addr]:port" */
	const char *const *resolvers;
	size_t n_resolvers;
	const char *hosts_file;		/* NULL: /etc/hosts; "" none */
	const char *trust_anchor;	/* a DS or DNSKEY file; NULL: no
					 * DNSSEC validation */
	double timeout;			/* seconds for a whole query; <= 0: 10 */
};

/* Checks o without changing anything: 0 or -errno with err said. */
int dns_check_options(const struct dns_options *o, struct sbuf *err);
/* Starts the resolver on loop with o, or (again, on reload) replaces it:
 * queries under way finish on the resolver they started on. 0, or -errno
 * with err said and nothing changed. */
int dns_start(struct ev_loop *loop, const struct dns_options *o, struct sbuf *err);
/* Cancels every query (no callback runs) and frees the resolver. */
void dns_stop(void);

/* Parses "addr", "addr:port" (IPv4) or "[addr]:port" into *ss (port
 * defport when none is given). 0 or -EINVAL. */
int dns_parse_addr(const char *s, uint16_t defport, struct sockaddr_storage *ss,
		   socklen_t *len);
/* addr (IPv6 in brackets) and port as text, for logs: "[::1]:5269". */
const char *dns_addr_str(const struct sockaddr_storage *ss, char *buf, size_t n);

/* --- shared with dnsprobe.c ------------------------------------------------ */

struct ub_ctx;
/* A libunbound context set up from o (async in a thread), or NULL with
 * err said. The caller deletes it with ub_ctx_delete. */
struct ub_ctx *dns_ctx_new(const struct dns_options *o, struct sbuf *err);
/* domain as DNS wants it (IDNA A-labels, no trailing dot), or NULL when
 * it is not a domain name. Freed by the caller. */
char *dns_ascii_domain(const char *domain);
/* A name in uncompressed wire format as text without the final dot ("."
 * for the root), or NULL when malformed. Freed by the caller. */
char *dns_wire_name(const unsigned char *p, size_t n);

#endif
