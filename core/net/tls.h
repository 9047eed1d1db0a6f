/*
 * tls.h - TLS contexts: one per certificate, chosen by SNI.
 *
 * TLS 1.2 and 1.3 only, strong AEAD suites, server preference. The
 * default context serves connections that send no SNI or an unknown name.
 * Channel binding data for SASL -PLUS comes from here too.
 */
#ifndef STARLING_TLS_H
#define STARLING_TLS_H

#include <openssl/ssl.h>

#include "util.h"

/* Loads a certificate chain and key into a new context. On failure logs
 * why (naming the files) and returns NULL. */
SSL_CTX *tls_ctx_new(const char *cert_file, const char *key_file);
/* Registers ctx for host name (SNI). The first context registered is the
 * default. The registry takes ownership of ctx. */
void tls_register(const char *host, SSL_CTX *ctx);
SSL_CTX *tls_default_ctx(void);
SSL_CTX *tls_ctx_for(const char *host);	/* or the default */
void tls_free_all(void);
/* The context of outgoing connections (server-to-server): TLS 1.2+, the
 * system's trust store; the peer's certificate is checked by the caller
 * (tls_peer_verified), never by the handshake, so dialback still works
 * with a self-signed peer. Made on first use; NULL on failure. */
SSL_CTX *tls_client_ctx(void);
/* The client context of local host: it presents host's certificate
 * (the one tls_register gave it) to the peer, so the peer can
 * authenticate us with SASL EXTERNAL (XEP-0178); a host without a
 * certificate of its own presents none. Made on first use, freed by
 * tls_free_all (connections keep their own reference). */
SSL_CTX *tls_client_ctx_for(const char *host);
/* Asks the peer of a server-side ssl for its certificate, accepting
 * whatever comes (or nothing): the caller judges it after the handshake
 * (tls_peer_chain, certid.h). Servers' incoming streams only. */
void tls_request_peer_cert(SSL *ssl);

/* --- trust: what peers' certificates are checked against ------------------
 * A store per host (ssl = { cafile = ..., capath = ... }, on the host or
 * globally), else the global one, else the system's (OpenSSL's default
 * paths). */

/* A store of cafile (a PEM bundle) and capath (a hashed directory; NULL:
 * the system's default paths too): NULL with why in err. */
X509_STORE *tls_trust_new(const char *cafile, const char *capath, struct sbuf *err);
/* Registers store for host (NULL: the global default); takes a reference
 * (the caller keeps its own). Undone by tls_free_all. */
void tls_register_trust(const char *host, X509_STORE *store);
/* The peer's certificate (borrowed from ssl), or NULL. */
X509 *tls_peer_cert(SSL *ssl);
/* Whether the peer's chain leads to a CA host trusts (RFC 5280 path
 * validation, dates included; no key-usage purpose is asked, since a
 * server presents its one certificate in both directions): 0, -ENOENT (no
 * certificate) or -EKEYREJECTED, with why in why[n]. */
int tls_peer_chain(SSL *ssl, const char *host, char *why, size_t n);

/* DANE (RFC 6698, RFC 7671, RFC 7673) with the TLSA records of the
 * peer's target, given only when they validated. */
struct dns_tlsa;
enum tls_dane {
	TLS_DANE_UNUSABLE,	/* no record of usage 2 or 3 we can use */
	TLS_DANE_EE,		/* DANE-EE(3) matches the peer's certificate:
				 * no chain or name check follows */
	TLS_DANE_TA,		/* DANE-TA(2) matches a certificate of the
				 * chain and the chain leads to it: names
				 * are still checked */
	TLS_DANE_MISMATCH,	/* usable records, none matches: fail */
};
enum tls_dane tls_peer_dane(SSL *ssl, const struct dns_tlsa *recs, size_t n);

/* Channel binding data (RFC 9266 tls-exporter: TLS 1.3 only here;
 * RFC 5929 tls-server-end-point and tls-unique, see tls.c): 0, or
 * -ENOTSUP. *len in: capacity. */
/* Whether tls-unique is defined on ssl, and so offered (XEP-0440): TLS
 * 1.2 with the extended master secret. */
bool tls_unique_defined(SSL *ssl);
int tls_channel_binding(SSL *ssl, const char *type, unsigned char *out,
			size_t *len);
/* "TLSv1.3" etc. and the cipher name, for logs and admin. */
const char *tls_version(SSL *ssl);
const char *tls_cipher(SSL *ssl);

#endif
