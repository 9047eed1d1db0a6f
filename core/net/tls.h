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
/* Whether the peer presented a certificate that chains to a trusted CA. */
bool tls_peer_verified(SSL *ssl);

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
