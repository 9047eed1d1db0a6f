/* certid.c - a certificate's identities against a reference domain
 * (RFC 6125 6, XEP-0178, RFC 7590) and TLSA matching (RFC 6698). Only
 * string work over what OpenSSL parsed; chains and trust are tls.c's. */
#include "certid.h"

#include <errno.h>
#include <stdlib.h>
#include <idna.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#define OID_XMPPADDR "1.3.6.1.5.5.7.8.5"	/* id-on-xmppAddr */
#define OID_DNSSRV "1.3.6.1.5.5.7.8.7"		/* id-on-dnsSRV */
#define NAME_MAX_LEN 254

static bool is_ascii(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80 || s[i] == '\0')
			return false;
	return true;
}

static char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
}

/* A name of labels of letters, digits and hyphens (and '_' for SRV
 * labels), none empty, none over 63. */
static bool valid_name(const char *s, size_t n, bool underscore)
{
	size_t label = 0;

	if (n == 0 || n > NAME_MAX_LEN - 1)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = lower(s[i]);
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
		      (underscore && c == '_')))
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0;
}

int certid_ascii(const char *domain, char *out, size_t n)
{
	size_t len = domain ? strlen(domain) : 0;
	char *ace = NULL;
	int r = -EINVAL;

	if (len && domain[len - 1] == '.')
		len--;
	if (!len || len >= NAME_MAX_LEN)
		return -EINVAL;
	if (is_ascii(domain, len)) {
		if (len >= n || !valid_name(domain, len, false))
			return -EINVAL;
		for (size_t i = 0; i < len; i++)
			out[i] = lower(domain[i]);
		out[len] = '\0';
		return 0;
	}
	{
		char buf[NAME_MAX_LEN];
		memcpy(buf, domain, len);
		buf[len] = '\0';
		if (idna_to_ascii_8z(buf, &ace, IDNA_ALLOW_UNASSIGNED) != IDNA_SUCCESS)
			goto out;
	}
	len = strlen(ace);
	if (len && ace[len - 1] == '.')
		len--;
	if (len >= n || !valid_name(ace, len, false))
		goto out;
	for (size_t i = 0; i < len; i++)
		out[i] = lower(ace[i]);
	out[len] = '\0';
	r = 0;
out:
	free(ace);
	return r;
}

static bool same_name(const char *a, size_t an, const char *b)
{
	size_t bn = strlen(b);

	if (an && a[an - 1] == '.')
		an--;
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (lower(a[i]) != b[i])
			return false;
	return true;
}

int certid_dns_id(const char *pattern, size_t len, const char *domain)
{
	char ref[NAME_MAX_LEN];
	const char *dot, *rest;
	size_t rest_len;

	if (!pattern || certid_ascii(domain, ref, sizeof(ref)) != 0 ||
	    !is_ascii(pattern, len))
		return 0;
	if (len && pattern[len - 1] == '.')
		len--;
	if (len >= 2 && pattern[0] == '*' && pattern[1] == '.') {
		/* "*" is the whole leftmost label; at least two labels follow
		 * ("*.com" names no one); it stands for one label, never none. */
		rest = pattern + 2;
		rest_len = len - 2;
		if (!valid_name(rest, rest_len, false) || !memchr(rest, '.', rest_len))
			return 0;
		dot = strchr(ref, '.');
		if (!dot || dot == ref)
			return 0;
		return same_name(rest, rest_len, dot + 1) ? 2 : 0;
	}
	/* A '*' anywhere else ("f*o.example", "a.*.example") is no wildcard
	 * (RFC 6125 6.4.3 allowed them; RFC 9525 does not): such names never
	 * match, since a reference never holds a '*'. */
	if (!valid_name(pattern, len, false))
		return 0;
	return same_name(pattern, len, ref) ? 1 : 0;
}

bool certid_srv_id(const char *name, size_t len, const char *domain)
{
	static const char *const services[] = { "_xmpp-server.", "_xmpps-server." };
	char ref[NAME_MAX_LEN];

	if (!name || !is_ascii(name, len) || certid_ascii(domain, ref, sizeof(ref)) != 0)
		return false;
	for (size_t i = 0; i < sizeof(services) / sizeof(*services); i++) {
		size_t k = strlen(services[i]);
		if (len <= k || strncasecmp(name, services[i], k) != 0)
			continue;
		if (memchr(name + k, '*', len - k))
			return false;	/* no wildcards in SRV-IDs */
		return same_name(name + k, len - k, ref);
	}
	return false;
}

/* An XmppAddr: a UTF-8 JID; only a bare domain names a server. */
static bool xmppaddr_id(const ASN1_STRING *v, const char *ref)
{
	char buf[NAME_MAX_LEN], ace[NAME_MAX_LEN];
	int n = ASN1_STRING_length(v);

	if (ASN1_STRING_type(v) != V_ASN1_UTF8STRING || n <= 0 || n >= (int)sizeof(buf))
		return false;
	memcpy(buf, ASN1_STRING_get0_data(v), (size_t)n);
	buf[n] = '\0';
	if (strlen(buf) != (size_t)n || strpbrk(buf, "@/*"))
		return false;
	return certid_ascii(buf, ace, sizeof(ace)) == 0 && strcmp(ace, ref) == 0;
}

static bool oid_is(const ASN1_OBJECT *o, const char *dotted)
{
	char txt[64];

	return OBJ_obj2txt(txt, sizeof(txt), o, 1) > 0 && strcmp(txt, dotted) == 0;
}

/* The subject's last CN against ref, as a DNS-ID (RFC 6125 6.4.4). */
static enum certid_match cn_id(X509 *cert, const char *ref)
{
	X509_NAME *subj = X509_get_subject_name(cert);
	int i = -1, last = -1;
	unsigned char *utf8 = NULL;
	enum certid_match m = CERTID_NONE;
	int n, k;

	while ((i = X509_NAME_get_index_by_NID(subj, NID_commonName, i)) >= 0)
		last = i;
	if (last < 0)
		return CERTID_NONE;
	n = ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(
					X509_NAME_get_entry(subj, last)));
	if (n <= 0)
		return CERTID_NONE;
	if (is_ascii((const char *)utf8, (size_t)n)) {
		k = certid_dns_id((const char *)utf8, (size_t)n, ref);
		m = k ? CERTID_CN : CERTID_NONE;
	} else {
		char ace[NAME_MAX_LEN];
		if (strlen((char *)utf8) == (size_t)n &&
		    certid_ascii((const char *)utf8, ace, sizeof(ace)) == 0 &&
		    strcmp(ace, ref) == 0)
			m = CERTID_CN;
	}
	OPENSSL_free(utf8);
	return m;
}

enum certid_match certid_match(X509 *cert, const char *domain, bool srv_ok)
{
	char ref[NAME_MAX_LEN];
	GENERAL_NAMES *names;
	enum certid_match best = CERTID_NONE;
	bool has_ids = false;

	if (!cert || certid_ascii(domain, ref, sizeof(ref)) != 0)
		return CERTID_NONE;
	names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
	for (int i = 0; names && i < sk_GENERAL_NAME_num(names); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
		enum certid_match m = CERTID_NONE;

		if (g->type == GEN_DNS) {
			has_ids = true;
			int k = certid_dns_id((const char *)ASN1_STRING_get0_data(g->d.dNSName),
					      (size_t)ASN1_STRING_length(g->d.dNSName), ref);
			m = k == 1 ? CERTID_DNS : k == 2 ? CERTID_DNS_WILDCARD : CERTID_NONE;
		} else if (g->type == GEN_URI) {
			has_ids = true;		/* a URI-ID: no CN fallback */
		} else if (g->type == GEN_OTHERNAME) {
			const ASN1_TYPE *v = g->d.otherName->value;
			if (oid_is(g->d.otherName->type_id, OID_XMPPADDR)) {
				has_ids = true;
				if (v->type == V_ASN1_UTF8STRING &&
				    xmppaddr_id(v->value.utf8string, ref))
					m = CERTID_XMPPADDR;
			} else if (oid_is(g->d.otherName->type_id, OID_DNSSRV)) {
				has_ids = true;
				if (srv_ok && v->type == V_ASN1_IA5STRING &&
				    certid_srv_id((const char *)ASN1_STRING_get0_data(v->value.ia5string),
						  (size_t)ASN1_STRING_length(v->value.ia5string), ref))
					m = CERTID_SRV;
			}
		}
		/* the most specific kind wins: SRV-ID, XmppAddr, DNS-ID */
		if (m != CERTID_NONE && (best == CERTID_NONE || m < best))
			best = m;
	}
	GENERAL_NAMES_free(names);
	if (best == CERTID_NONE && !has_ids)
		best = cn_id(cert, ref);
	return best;
}

const char *certid_match_name(enum certid_match m)
{
	switch (m) {
	case CERTID_SRV: return "SRV-ID";
	case CERTID_XMPPADDR: return "XmppAddr";
	case CERTID_DNS: return "DNS-ID";
	case CERTID_DNS_WILDCARD: return "DNS-ID (wildcard)";
	case CERTID_CN: return "CN";
	default: return "none";
	}
}

bool certid_tlsa_match(X509 *cert, uint8_t selector, uint8_t mtype,
		       const unsigned char *data, size_t len)
{
	unsigned char *der = NULL, md[SHA512_DIGEST_LENGTH];
	int n;
	bool ok = false;

	if (!cert || !data)
		return false;
	if (selector == 0)
		n = i2d_X509(cert, &der);
	else if (selector == 1)
		n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	else
		return false;
	if (n <= 0)
		return false;
	switch (mtype) {
	case 0:
		ok = len == (size_t)n && memcmp(der, data, len) == 0;
		break;
	case 1:
		SHA256(der, (size_t)n, md);
		ok = len == SHA256_DIGEST_LENGTH && memcmp(md, data, len) == 0;
		break;
	case 2:
		SHA512(der, (size_t)n, md);
		ok = len == SHA512_DIGEST_LENGTH && memcmp(md, data, len) == 0;
		break;
	}
	OPENSSL_free(der);
	return ok;
}
