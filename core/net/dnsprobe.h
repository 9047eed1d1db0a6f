/*
 * dnsprobe.h - blocking DNS lookups for `starlingctl check dns`: one
 * question at a time, answered through libunbound with the server's own
 * resolver settings (dns_resolver, dns_hosts_file, dns_trust_anchor,
 * dns_timeout), so the check sees what the server would see. Never used
 * inside the server's loop (core/net/dns.c is the loop's resolver).
 *
 * Words:
 *   answer   what one question (a name and a record type) got: records,
 *            or that the name does not exist, or an error.
 *   secure   the answer validated with DNSSEC against the trust anchor.
 */
#ifndef STARLING_DNSPROBE_H
#define STARLING_DNSPROBE_H

#include "dns.h"

#include <netinet/in.h>

#define DNS_T_A		1
#define DNS_T_AAAA	28
#define DNS_T_SRV	33

/* One record: an SRV's fields and target, or an address as text. */
struct dns_rr {
	uint16_t prio, weight, port;	/* SRV only */
	char text[256];			/* SRV target ("." for none), or
					 * "192.0.2.1", "2001:db8::1" */
};

struct dns_answer {
	int err;	/* 0 (n may be 0: the name has no such records),
			 * -ENOENT (the name does not exist), -ETIMEDOUT,
			 * -EAGAIN (SERVFAIL), -EBADMSG (DNSSEC-bogus),
			 * -EINVAL (not a domain name) */
	bool secure;
	size_t n;
	struct dns_rr *rr;	/* owned; dns_answer_free */
};

struct dns_probe;

/* A resolver set up from o, or NULL with err said. */
struct dns_probe *dns_probe_new(const struct dns_options *o, struct sbuf *err);
void dns_probe_free(struct dns_probe *p);

/* Asks for name's records of rrtype (DNS_T_*), waiting at most the
 * options' timeout. *a is filled in; free it with dns_answer_free. */
void dns_probe_ask(struct dns_probe *p, const char *name, int rrtype, struct dns_answer *a);
void dns_answer_free(struct dns_answer *a);

/* What an answer's err means, for people: "does not exist", "timed out". */
const char *dns_answer_strerror(int err);

#endif
