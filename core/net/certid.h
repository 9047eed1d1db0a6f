/*
 * certid.h - what a server's certificate says it is, and whether that is
 * the domain we mean (RFC 6125, RFC 6120 13.7.1.2, XEP-0178, RFC 7590),
 * and whether it is the one a TLSA record names (RFC 6698, RFC 7673).
 *
 * Words:
 *   reference   the domain we expect: the stream's 'from' of an incoming
 *               peer, the domain we connect to on an outgoing stream
 *               (RFC 6125 2.1); nameprepped, in U-labels or A-labels.
 *   SRV-ID      subjectAltName otherName id-on-dnsSRV, "_xmpp-server.
 *               example.com" (RFC 4985); no wildcards.
 *   XmppAddr    subjectAltName otherName id-on-xmppAddr, a UTF-8 JID;
 *               only a bare domain counts for a server; no wildcards.
 *   DNS-ID      subjectAltName dNSName, in A-labels; "*" may stand for the
 *               whole leftmost label (and only there) of a name with at
 *               least two more labels, and matches exactly one label.
 *   CN-ID       the subject's last commonName, consulted only when the
 *               certificate has none of the three above (RFC 6125 6.4.4).
 *
 * Comparison is case-insensitive over A-labels (a U-label reference is
 * converted with libidn's ToASCII); a trailing dot is ignored.
 */
#ifndef STARLING_CERTID_H
#define STARLING_CERTID_H

#include "util.h"

#include <openssl/x509.h>

enum certid_match {
	CERTID_NONE = 0,
	CERTID_SRV,		/* SRV-ID _xmpp-server.<domain> */
	CERTID_XMPPADDR,	/* id-on-xmppAddr <domain> */
	CERTID_DNS,		/* dNSName, exactly */
	CERTID_DNS_WILDCARD,	/* dNSName *.<parent> */
	CERTID_CN,		/* commonName, with no SAN of the kinds above */
};

/* Which of cert's identities names domain as an XMPP server; srv_ok:
 * whether SRV-IDs count (the server's own domain: yes; an SRV target
 * name, RFC 7673: no). CERTID_NONE when none does or domain is not a
 * domain name. */
enum certid_match certid_match(X509 *cert, const char *domain, bool srv_ok);
/* "SRV-ID", "XmppAddr", "DNS-ID", "DNS-ID (wildcard)", "CN", "none". */
const char *certid_match_name(enum certid_match m);

/* The string rules, for tests and certid_match: whether the presented
 * DNS-ID pattern[len] names the reference domain (A-labels, lowercase or
 * not): 1 exactly, 2 by its wildcard, 0 not. */
int certid_dns_id(const char *pattern, size_t len, const char *domain);
/* Whether the presented SRV-ID name[len] is "_xmpp-server." + domain. */
bool certid_srv_id(const char *name, size_t len, const char *domain);
/* domain in A-labels, lowercase, without a trailing dot, into out[n]:
 * 0, or -EINVAL (not a domain name, too long). */
int certid_ascii(const char *domain, char *out, size_t n);

/* Whether the TLSA association data[len] with selector (0 the whole
 * certificate, 1 its SubjectPublicKeyInfo) and matching type (0 exact,
 * 1 SHA-256, 2 SHA-512) names cert (RFC 6698 2.1). */
bool certid_tlsa_match(X509 *cert, uint8_t selector, uint8_t mtype,
		       const unsigned char *data, size_t len);

#endif
