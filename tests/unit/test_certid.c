/* test_certid.c - a server certificate's identities against a domain
 * (RFC 6125, XEP-0178) and TLSA matching (RFC 6698), on certificates made
 * here in memory. */
#include "certid.h"
#include "harness.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509v3.h>

#define XMPPADDR "otherName:1.3.6.1.5.5.7.8.5;UTF8:"
#define SRVNAME "otherName:1.3.6.1.5.5.7.8.7;IA5STRING:"

static EVP_PKEY *key;

/* A self-signed certificate with subject CN cn (or none) and
 * subjectAltName san (OpenSSL's config syntax, or NULL for none). */
static X509 *make_cert(const char *cn, const char *san)
{
	X509 *x = X509_new();
	X509_NAME *name = X509_get_subject_name(x);

	if (!key)
		key = EVP_EC_gen("P-256");
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600);
	X509_set_pubkey(x, key);
	if (cn)
		X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
					   (const unsigned char *)cn, -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (san) {
		X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, NULL,
							  NID_subject_alt_name, san);
		if (!ext) {
			fprintf(stderr, "bad SAN %s\n", san);
			abort();
		}
		X509_add_ext(x, ext, -1);
		X509_EXTENSION_free(ext);
	}
	X509_sign(x, key, EVP_sha256());
	return x;
}

/* A certificate whose only SAN is an XmppAddr of utf8 (as UTF-8 bytes). */
static enum certid_match match_xmppaddr_utf8(const char *utf8, const char *domain)
{
	X509 *x = make_cert(NULL, NULL);
	GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
	GENERAL_NAME *g = GENERAL_NAME_new();
	ASN1_TYPE *v = ASN1_TYPE_new();
	ASN1_UTF8STRING *str = ASN1_UTF8STRING_new();
	enum certid_match m;

	ASN1_STRING_set(str, utf8, -1);
	ASN1_TYPE_set(v, V_ASN1_UTF8STRING, str);
	GENERAL_NAME_set0_othername(g, OBJ_txt2obj("1.3.6.1.5.5.7.8.5", 1), v);
	sk_GENERAL_NAME_push(names, g);
	X509_add1_ext_i2d(x, NID_subject_alt_name, names, 0, 0);
	GENERAL_NAMES_free(names);
	m = certid_match(x, domain, true);
	X509_free(x);
	return m;
}

static enum certid_match match(const char *cn, const char *san, const char *domain)
{
	X509 *x = make_cert(cn, san);
	enum certid_match m = certid_match(x, domain, true);

	X509_free(x);
	return m;
}

static int dns(const char *pattern, const char *domain)
{
	return certid_dns_id(pattern, strlen(pattern), domain);
}

static void test_dns_id_exact_and_case(void)
{
	CHECK(dns("example.com", "example.com") == 1);
	CHECK(dns("EXAMPLE.Com", "example.com") == 1);
	CHECK(dns("example.com", "EXAMPLE.COM") == 1);
	CHECK(dns("example.com.", "example.com") == 1);
	CHECK(dns("example.com", "example.com.") == 1);
	CHECK(dns("example.com", "www.example.com") == 0);
	CHECK(dns("www.example.com", "example.com") == 0);
	CHECK(dns("example.co", "example.com") == 0);
	CHECK(dns("", "example.com") == 0);
	CHECK(certid_dns_id("example.com\0evil.org", 20, "example.com") == 0);
}

static void test_dns_id_wildcards(void)
{
	CHECK(dns("*.example.com", "chat.example.com") == 2);
	CHECK(dns("*.EXAMPLE.com", "Chat.Example.COM") == 2);
	/* one label only, never none, never two */
	CHECK(dns("*.example.com", "example.com") == 0);
	CHECK(dns("*.example.com", "a.b.example.com") == 0);
	/* only the whole leftmost label */
	CHECK(dns("c*.example.com", "chat.example.com") == 0);
	CHECK(dns("*t.example.com", "chat.example.com") == 0);
	CHECK(dns("chat.*.com", "chat.example.com") == 0);
	CHECK(dns("*.*.com", "a.example.com") == 0);
	CHECK(dns("**.example.com", "a.example.com") == 0);
	/* at least two labels after the wildcard */
	CHECK(dns("*.com", "example.com") == 0);
	CHECK(dns("*", "example") == 0);
	/* a reference never holds a '*' */
	CHECK(dns("*.example.com", "*.example.com") == 0);
}

static void test_idn_in_a_labels(void)
{
	char ace[256];

	CHECK(certid_ascii("münchen.example", ace, sizeof(ace)) == 0);
	CHECK_STR(ace, "xn--mnchen-3ya.example");
	CHECK(certid_ascii("MÜNCHEN.example", ace, sizeof(ace)) == 0);
	CHECK_STR(ace, "xn--mnchen-3ya.example");
	CHECK(certid_ascii("bad_name.example", ace, sizeof(ace)) != 0);
	CHECK(certid_ascii("a..example", ace, sizeof(ace)) != 0);
	CHECK(certid_ascii("", ace, sizeof(ace)) != 0);
	/* a U-label reference against A-label DNS-IDs */
	CHECK(dns("xn--mnchen-3ya.example", "münchen.example") == 1);
	CHECK(dns("XN--MNCHEN-3YA.example", "münchen.example") == 1);
	CHECK(dns("*.xn--mnchen-3ya.example", "chat.münchen.example") == 2);
	/* a DNS-ID is ASCII: a U-label in one is not a name */
	CHECK(dns("münchen.example", "münchen.example") == 0);
}

static void test_srv_id(void)
{
	const char *s = "_xmpp-server.example.com";

	CHECK(certid_srv_id(s, strlen(s), "example.com"));
	CHECK(certid_srv_id("_XMPP-Server.Example.com", 24, "example.com"));
	CHECK(certid_srv_id("_xmpps-server.example.com", 25, "example.com"));
	CHECK(!certid_srv_id("_xmpp-client.example.com", 24, "example.com"));
	CHECK(!certid_srv_id(s, strlen(s), "chat.example.com"));
	CHECK(!certid_srv_id("_xmpp-server.*.com", 18, "example.com"));
	CHECK(!certid_srv_id("example.com", 11, "example.com"));
}

static void test_certificates(void)
{
	CHECK(match(NULL, "DNS:example.com", "example.com") == CERTID_DNS);
	CHECK(match(NULL, "DNS:*.example.com", "chat.example.com") == CERTID_DNS_WILDCARD);
	CHECK(match(NULL, XMPPADDR "example.com", "example.com") == CERTID_XMPPADDR);
	CHECK(match(NULL, XMPPADDR "Example.COM", "example.com") == CERTID_XMPPADDR);
	CHECK(match(NULL, SRVNAME "_xmpp-server.example.com", "example.com") == CERTID_SRV);
	/* the most specific kind is reported */
	CHECK(match(NULL, "DNS:example.com," XMPPADDR "example.com," SRVNAME
		    "_xmpp-server.example.com", "example.com") == CERTID_SRV);
	/* an XmppAddr of a user, or with a wildcard, names no server */
	CHECK(match(NULL, XMPPADDR "juliet@example.com", "example.com") == CERTID_NONE);
	CHECK(match(NULL, XMPPADDR "*.example.com", "chat.example.com") == CERTID_NONE);
	/* an internationalized XmppAddr in U-labels */
	CHECK(match_xmppaddr_utf8("münchen.example", "xn--mnchen-3ya.example") ==
	      CERTID_XMPPADDR);
	CHECK(match_xmppaddr_utf8("münchen.example", "münchen.example") == CERTID_XMPPADDR);
	CHECK(match_xmppaddr_utf8("xn--mnchen-3ya.example", "münchen.example") ==
	      CERTID_XMPPADDR);
	CHECK(match_xmppaddr_utf8("munchen.example", "münchen.example") == CERTID_NONE);
	/* another domain */
	CHECK(match("example.com", "DNS:example.org", "example.com") == CERTID_NONE);
	CHECK(match(NULL, "DNS:www.example.com", "example.com") == CERTID_NONE);
}

static void test_cn_only_without_san(void)
{
	CHECK(match("example.com", NULL, "example.com") == CERTID_CN);
	CHECK(match("EXAMPLE.com", NULL, "example.com") == CERTID_CN);
	CHECK(match("*.example.com", NULL, "a.example.com") == CERTID_CN);
	CHECK(match("example.org", NULL, "example.com") == CERTID_NONE);
	/* any DNS-ID, SRV-ID, XmppAddr or URI-ID: the CN is not looked at */
	CHECK(match("example.com", "DNS:other.example", "example.com") == CERTID_NONE);
	CHECK(match("example.com", XMPPADDR "other.example", "example.com") == CERTID_NONE);
	CHECK(match("example.com", "URI:xmpp:other.example", "example.com") == CERTID_NONE);
	/* an email SAN is none of those: the CN counts */
	CHECK(match("example.com", "email:admin@example.com", "example.com") == CERTID_CN);
	CHECK(match(NULL, NULL, "example.com") == CERTID_NONE);
}

static void test_srv_ids_only_for_the_domain(void)
{
	X509 *x = make_cert(NULL, SRVNAME "_xmpp-server.example.com");

	/* an SRV target (RFC 7673) is matched by DNS-ID only */
	CHECK(certid_match(x, "example.com", false) == CERTID_NONE);
	CHECK(certid_match(x, "example.com", true) == CERTID_SRV);
	X509_free(x);
}

static void test_tlsa(void)
{
	X509 *x = make_cert("example.com", NULL);
	unsigned char *der = NULL, *spki = NULL, h256[32], h512[64];
	int n = i2d_X509(x, &der), k = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);

	CHECK(certid_tlsa_match(x, 0, 0, der, (size_t)n));
	CHECK(certid_tlsa_match(x, 1, 0, spki, (size_t)k));
	SHA256(der, (size_t)n, h256);
	CHECK(certid_tlsa_match(x, 0, 1, h256, 32));
	CHECK(!certid_tlsa_match(x, 1, 1, h256, 32));	/* the selector counts */
	SHA256(spki, (size_t)k, h256);
	CHECK(certid_tlsa_match(x, 1, 1, h256, 32));
	CHECK(!certid_tlsa_match(x, 1, 1, h256, 31));
	CHECK(!certid_tlsa_match(x, 1, 2, h256, 32));	/* the type counts */
	SHA512(spki, (size_t)k, h512);
	CHECK(certid_tlsa_match(x, 1, 2, h512, 64));
	h512[63] ^= 1;
	CHECK(!certid_tlsa_match(x, 1, 2, h512, 64));
	CHECK(!certid_tlsa_match(x, 2, 1, h256, 32));	/* no selector 2 */
	CHECK(!certid_tlsa_match(x, 1, 3, h256, 32));	/* no type 3 */
	CHECK(!certid_tlsa_match(NULL, 1, 1, h256, 32));
	OPENSSL_free(der);
	OPENSSL_free(spki);
	X509_free(x);
}

int main(void)
{
	RUN(test_dns_id_exact_and_case);
	RUN(test_dns_id_wildcards);
	RUN(test_idn_in_a_labels);
	RUN(test_srv_id);
	RUN(test_certificates);
	RUN(test_cn_only_without_san);
	RUN(test_srv_ids_only_for_the_domain);
	RUN(test_tlsa);
	EVP_PKEY_free(key);
	TEST_END();
}
