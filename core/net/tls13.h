/*
 * tls13.h - a quiet TLS 1.3 stream without its OpenSSL object.
 *
 * OpenSSL 3.0 keeps about 14.5 KB per idle TLS 1.3 connection (the SSL
 * object, its session, cipher and digest contexts, handshake leftovers),
 * none of which its API gives back short of SSL_free. Once a stream's
 * handshake is long done, all a TLS 1.3 connection still needs is its
 * record layer (RFC 8446 section 5): a traffic secret, key, IV and
 * sequence number per direction, and KeyUpdate (4.6.3). tls13_compact
 * moves a quiet server-side connection onto that (conn_tls13_ops) and
 * frees the SSL; the connection then keeps 344 bytes of TLS state
 * (struct tls13).
 *
 * watch:   every server-side SSL gets a small watch (ex_data) that learns
 *          the application traffic secrets from OpenSSL's key log
 *          callback and counts the records each way since the Finished
 *          messages (the message callback), so the sequence numbers are
 *          known when OpenSSL lets go.
 * when:    only TLS 1.3 with AES-GCM or ChaCha20-Poly1305, no peer
 *          certificate, nothing pending inside OpenSSL or in the queue,
 *          no KeyUpdate handled by OpenSSL; otherwise the SSL stays.
 * ciphers: a cipher context per direction while the stream is busy,
 *          made on its first record and dropped when it is quiet again
 *          (tls13_quiet), so an idle connection keeps none.
 */
#ifndef STARLING_TLS13_H
#define STARLING_TLS13_H

#include <openssl/ssl.h>

struct conn;
struct tls13;

/* Sets a server context up for watching (key log callback). */
void tls13_ctx_setup(SSL_CTX *ctx);
/* Watches a server-side ssl from its first handshake message on. */
void tls13_watch(SSL *ssl);
/* Moves c onto the record layer of its own and frees its SSL: 0, -EAGAIN
 * (not now: something is pending) or -ENOTSUP (never for this one). */
int tls13_compact(struct conn *c);
void tls13_free(struct tls13 *t);
/* A released stream went quiet again: its cipher contexts go. */
void tls13_quiet(struct conn *c);
/* The ciphers fetched and the buffers shared by all released streams,
 * at exit (not on reload: released streams go on using them). */
void tls13_free_shared(void);

/* What a connection's TLS is, either way: "TLSv1.3" and the suite, or
 * NULL for a plain connection (or one still in its handshake). */
const char *conn_tls_version(const struct conn *c);
const char *conn_tls_cipher(const struct conn *c);

#endif
