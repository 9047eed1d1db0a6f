/* tls.c - OpenSSL contexts, SNI selection, channel binding, and the TLS
 * transport of a connection. */
#include "tls.h"
#include "tls13.h"
#include "transport.h"
#include "certid.h"
#include "dns.h"
#include "hmap.h"
#include "log.h"

#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/evp.h>

static struct hmap by_host;
static SSL_CTX *default_ctx;
static SSL_CTX **all_ctx;
static size_t n_ctx;

static void log_ssl_error(const char *what, const char *file)
{
	unsigned long e = ERR_get_error();
	char msg[256];

	ERR_error_string_n(e, msg, sizeof(msg));
	log_error("%s %s: %s", what, file, e ? msg : "unknown error");
	ERR_clear_error();
}

static int on_sni(SSL *ssl, int *alert, void *arg)
{
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	SSL_CTX *ctx;
	char lower[256];
	size_t i;

	if (!name)
		return SSL_TLSEXT_ERR_OK;
	for (i = 0; name[i] && i < sizeof(lower) - 1; i++)
		lower[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	lower[i] = '\0';
	ctx = hmap_get(&by_host, lower);
	if (ctx && ctx != SSL_get_SSL_CTX(ssl))
		SSL_set_SSL_CTX(ssl, ctx);
	return SSL_TLSEXT_ERR_OK;
}

/* Session tickets for TLS 1.3 only, where a resumption still runs an
 * (EC)DHE exchange. A TLS 1.2 ticket carries the master secret itself,
 * sealed with a key that lives as long as the process: resumed TLS 1.2
 * sessions would lose forward secrecy. Runs before the extensions are
 * acted on, so the option applies to this handshake. */
static int on_client_hello(SSL *ssl, int *alert, void *arg)
{
	const unsigned char *p;
	size_t len;

	if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_supported_versions,
				      &p, &len) == 1 && len >= 1) {
		size_t end = MIN(len, (size_t)p[0] + 1);

		for (size_t i = 1; i + 1 < end; i += 2)
			if (p[i] == 0x03 && p[i + 1] == 0x04)
				return SSL_CLIENT_HELLO_SUCCESS;
	}
	SSL_set_options(ssl, SSL_OP_NO_TICKET);
	return SSL_CLIENT_HELLO_SUCCESS;
}

/* A private key anyone on the machine can read is refused; one its group
 * can read (Debian's ssl-cert group) is only worth a warning. */
static int check_key_mode(const char *key_file)
{
	struct stat st;

	if (stat(key_file, &st) != 0) {
		log_error("cannot read key %s: %s", key_file, strerror(errno));
		return -errno;
	}
	if (st.st_mode & S_IROTH) {
		log_error("key %s is readable by everyone: chmod o-r it", key_file);
		return -EPERM;
	}
	if (st.st_mode & S_IRGRP)
		log_warn("key %s is readable by its group", key_file);
	return 0;
}

SSL_CTX *tls_ctx_new(const char *cert_file, const char *key_file)
{
	SSL_CTX *ctx;

	if (check_key_mode(key_file) != 0)
		return NULL;
	ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx) {
		log_ssl_error("cannot create a TLS context for", cert_file);
		return NULL;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE |
				 SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS |
			      SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* One read takes all the socket holds (several records), not a
	 * record header and then its body. */
	SSL_CTX_set_read_ahead(ctx, 1);
	/* Resumption: one stateless ticket per handshake (a client
	 * reconnects with one connection, not the two a browser opens),
	 * sealed with this context's random key, so a reload or restart
	 * only costs the next handshake its shortcut. TLS 1.3 resumption
	 * still does an (EC)DHE exchange: OpenSSL takes no psk_ke without
	 * SSL_OP_ALLOW_NO_DHE_KEX, and no early data is accepted; TLS 1.2
	 * gets no tickets (on_client_hello). No server cache: with it off,
	 * stateful tickets (SSL_OP_NO_TICKET) could never be redeemed and
	 * were two wasted messages per handshake. */
	SSL_CTX_set_num_tickets(ctx, 1);
	SSL_CTX_set_client_hello_cb(ctx, on_client_hello, NULL);
	tls13_ctx_setup(ctx);
	SSL_CTX_set_cipher_list(ctx,
		"ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
		"ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"
		"ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256");
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (SSL_CTX_use_certificate_chain_file(ctx, cert_file) != 1) {
		log_ssl_error("cannot load certificate", cert_file);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(ctx, key_file, SSL_FILETYPE_PEM) != 1) {
		log_ssl_error("cannot load key", key_file);
		goto fail;
	}
	if (SSL_CTX_check_private_key(ctx) != 1) {
		log_ssl_error("key does not match certificate", cert_file);
		goto fail;
	}
	SSL_CTX_set_tlsext_servername_callback(ctx, on_sni);
	return ctx;
fail:
	SSL_CTX_free(ctx);
	return NULL;
}

void tls_register(const char *host, SSL_CTX *ctx)
{
	bool known = false;

	for (size_t i = 0; i < n_ctx; i++)
		known |= all_ctx[i] == ctx;
	if (!known) {
		all_ctx = xrealloc(all_ctx, (n_ctx + 1) * sizeof(*all_ctx));
		all_ctx[n_ctx++] = ctx;
	}
	if (!default_ctx)
		default_ctx = ctx;
	if (host)
		hmap_set(&by_host, host, ctx);
}

SSL_CTX *tls_default_ctx(void)
{
	return default_ctx;
}

SSL_CTX *tls_ctx_for(const char *host)
{
	SSL_CTX *ctx = host ? hmap_get(&by_host, host) : NULL;

	return ctx ? ctx : default_ctx;
}

static SSL_CTX *client_ctx;

SSL_CTX *tls_client_ctx(void)
{
	if (client_ctx)
		return client_ctx;
	client_ctx = SSL_CTX_new(TLS_client_method());
	if (!client_ctx) {
		log_ssl_error("cannot create a TLS context for", "outgoing connections");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(client_ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(client_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(client_ctx, SSL_MODE_RELEASE_BUFFERS |
				     SSL_MODE_ENABLE_PARTIAL_WRITE |
				     SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
	if (SSL_CTX_set_default_verify_paths(client_ctx) != 1)
		ERR_clear_error();
	return client_ctx;
}

/* --- client contexts per local host ---------------------------------------- */

static struct hmap client_by_host;
static bool client_by_host_ready;

SSL_CTX *tls_client_ctx_for(const char *host)
{
	SSL_CTX *base = tls_client_ctx(), *sctx, *ctx;
	STACK_OF(X509) *chain = NULL;
	X509 *cert;
	EVP_PKEY *key;

	if (!base || !host)
		return base;
	if (!client_by_host_ready) {
		hmap_init(&client_by_host);
		client_by_host_ready = true;
	}
	if ((ctx = hmap_get(&client_by_host, host)))
		return ctx;
	sctx = hmap_get(&by_host, host);
	cert = sctx ? SSL_CTX_get0_certificate(sctx) : NULL;
	key = sctx ? SSL_CTX_get0_privatekey(sctx) : NULL;
	if (!cert || !key)
		return base;	/* nothing of its own to present */
	ctx = SSL_CTX_new(TLS_client_method());
	if (!ctx) {
		log_ssl_error("cannot create a client TLS context for", host);
		return base;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
			      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_get0_chain_certs(sctx, &chain);
	if (SSL_CTX_use_cert_and_key(ctx, cert, key, chain, 1) != 1) {
		log_ssl_error("cannot present the certificate of", host);
		SSL_CTX_free(ctx);
		return base;
	}
	hmap_set(&client_by_host, host, ctx);
	return ctx;
}

/* The handshake takes any certificate: it is judged afterwards, so that
 * a peer without a valid one may still use dialback. */
static int accept_any(int ok, X509_STORE_CTX *x)
{
	return 1;
}

void tls_request_peer_cert(SSL *ssl)
{
	SSL_set_verify(ssl, SSL_VERIFY_PEER, accept_any);
}

/* --- trust ------------------------------------------------------------------ */

static struct hmap trust_by_host;
static bool trust_ready;
static X509_STORE *trust_default;	/* the global one */
static X509_STORE **all_trust;
static size_t n_trust;

X509_STORE *tls_trust_new(const char *cafile, const char *capath, struct sbuf *err)
{
	X509_STORE *st = X509_STORE_new();

	if (!st)
		abort();
	if (cafile && X509_STORE_load_file(st, cafile) != 1) {
		sbuf_printf(err, "ssl: cannot read cafile %s (not a PEM bundle of "
			    "certificates?)", cafile);
		goto fail;
	}
	if (capath && X509_STORE_load_path(st, capath) != 1) {
		sbuf_printf(err, "ssl: cannot use capath %s", capath);
		goto fail;
	}
	if (!capath && X509_STORE_set_default_paths(st) != 1)
		ERR_clear_error();
	ERR_clear_error();
	return st;
fail:
	ERR_clear_error();
	X509_STORE_free(st);
	return NULL;
}

void tls_register_trust(const char *host, X509_STORE *store)
{
	X509_STORE_up_ref(store);
	all_trust = xrealloc(all_trust, (n_trust + 1) * sizeof(*all_trust));
	all_trust[n_trust++] = store;
	if (!host) {
		trust_default = store;
		return;
	}
	if (!trust_ready) {
		hmap_init(&trust_by_host);
		trust_ready = true;
	}
	hmap_set(&trust_by_host, host, store);
}

static X509_STORE *trust_for(const char *host)
{
	X509_STORE *st = host && trust_ready ? hmap_get(&trust_by_host, host) : NULL;

	if (st)
		return st;
	if (!trust_default) {	/* no ssl.cafile anywhere: the system's */
		X509_STORE *sys = tls_trust_new(NULL, NULL, NULL);
		tls_register_trust(NULL, sys);
		X509_STORE_free(sys);
	}
	return trust_default;
}

X509 *tls_peer_cert(SSL *ssl)
{
	return ssl ? SSL_get0_peer_certificate(ssl) : NULL;
}

/* Verifies leaf with untrusted chain against store (flags: X509_V_FLAG_*):
 * 0 or -EKEYREJECTED, why said. */
static int verify_chain(X509_STORE *store, X509 *leaf, STACK_OF(X509) *chain,
			unsigned long flags, char *why, size_t n)
{
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	int r = -EKEYREJECTED;

	if (!x)
		abort();
	if (X509_STORE_CTX_init(x, store, leaf, chain) == 1) {
		if (flags)
			X509_STORE_CTX_set_flags(x, flags);
		if (X509_verify_cert(x) == 1) {
			r = 0;
		} else if (why) {
			int e = X509_STORE_CTX_get_error(x);
			snprintf(why, n, "%s", X509_verify_cert_error_string(e));
		}
	} else if (why) {
		snprintf(why, n, "cannot check the chain");
	}
	X509_STORE_CTX_free(x);
	ERR_clear_error();
	return r;
}

int tls_peer_chain(SSL *ssl, const char *host, char *why, size_t n)
{
	X509 *leaf = tls_peer_cert(ssl);

	if (!leaf) {
		snprintf(why, n, "no certificate");
		return -ENOENT;
	}
	return verify_chain(trust_for(host), leaf, SSL_get_peer_cert_chain(ssl), 0,
			    why, n);
}

/* DANE-TA: whether the chain leads from leaf to ta (a certificate the
 * peer sent), ta being the only trust anchor. */
static bool chain_to(X509 *leaf, STACK_OF(X509) *chain, X509 *ta)
{
	X509_STORE *st = X509_STORE_new();
	bool ok;

	if (!st)
		abort();
	X509_STORE_add_cert(st, ta);
	ok = verify_chain(st, leaf, chain, X509_V_FLAG_PARTIAL_CHAIN, NULL, 0) == 0;
	X509_STORE_free(st);
	return ok;
}

enum tls_dane tls_peer_dane(SSL *ssl, const struct dns_tlsa *recs, size_t n)
{
	X509 *leaf = tls_peer_cert(ssl);
	STACK_OF(X509) *chain = ssl ? SSL_get_peer_cert_chain(ssl) : NULL;
	bool usable = false;

	for (size_t i = 0; i < n; i++) {
		const struct dns_tlsa *t = &recs[i];

		/* RFC 7672 3.1.3 and RFC 7673: PKIX-TA(0) and PKIX-EE(1) are not
		 * for server-to-server; unknown selectors or types are unusable. */
		if ((t->usage != 2 && t->usage != 3) || t->selector > 1 || t->mtype > 2)
			continue;
		usable = true;
		if (!leaf)
			continue;
		if (t->usage == 3 &&
		    certid_tlsa_match(leaf, t->selector, t->mtype, t->data, t->len))
			return TLS_DANE_EE;
		if (t->usage != 2)
			continue;
		for (int k = 0; chain && k < sk_X509_num(chain); k++) {
			X509 *c = sk_X509_value(chain, k);
			if (certid_tlsa_match(c, t->selector, t->mtype, t->data, t->len) &&
			    chain_to(leaf, chain, c))
				return TLS_DANE_TA;
		}
	}
	return usable ? TLS_DANE_MISMATCH : TLS_DANE_UNUSABLE;
}

void tls_free_all(void)
{
	if (client_ctx)		/* connections keep their own reference */
		SSL_CTX_free(client_ctx);
	client_ctx = NULL;
	if (client_by_host_ready) {
		size_t pos = 0;
		const char *k;
		void *v;
		while (hmap_next(&client_by_host, &pos, &k, &v))
			SSL_CTX_free(v);
		hmap_free(&client_by_host);
		client_by_host_ready = false;
	}
	for (size_t i = 0; i < n_trust; i++)
		X509_STORE_free(all_trust[i]);
	free(all_trust);
	all_trust = NULL;
	n_trust = 0;
	trust_default = NULL;
	if (trust_ready) {
		hmap_free(&trust_by_host);
		trust_ready = false;
	}
	for (size_t i = 0; i < n_ctx; i++)
		SSL_CTX_free(all_ctx[i]);
	free(all_ctx);
	all_ctx = NULL;
	n_ctx = 0;
	default_ctx = NULL;
	hmap_free(&by_host);
}

static int server_end_point(SSL *ssl, unsigned char *out, size_t *len)
{
	X509 *cert = SSL_get_certificate(ssl);
	const EVP_MD *md;
	int nid = 0;
	unsigned int n = 0;

	if (!cert)
		return -ENOTSUP;
	/* RFC 5929 4.1: the certificate's signature hash, MD5/SHA-1 -> SHA-256. */
	if (!OBJ_find_sigid_algs(X509_get_signature_nid(cert), &nid, NULL))
		return -ENOTSUP;
	md = EVP_get_digestbynid(nid);
	if (!md || nid == NID_md5 || nid == NID_sha1)
		md = EVP_sha256();
	if (*len < (size_t)EVP_MD_get_size(md))
		return -ENOSPC;
	if (X509_digest(cert, md, out, &n) != 1)
		return -EIO;
	*len = n;
	return 0;
}

/* RFC 5929's tls-unique: the first Finished message of the handshake,
 * the client's in a full one and the server's in a resumed one. On TLS
 * 1.2 only with the extended master secret (RFC 7627), without which a
 * triple handshake can give two connections the same value. TLS 1.3 does
 * not define it (RFC 9266), but clients that ignore XEP-0440 ask for it
 * there too, computing it as for TLS 1.2 (CPython's ssl and pyOpenSSL:
 * slixmpp, aioxmpp): their value, the client's Finished of a full
 * handshake, covers the whole handshake transcript and so is this
 * connection's alone. Offered only where defined (tls_offers). */
static int tls_unique(SSL *ssl, unsigned char *out, size_t *len)
{
	size_t n;

	if (SSL_version(ssl) < TLS1_3_VERSION && SSL_get_extms_support(ssl) != 1)
		return -ENOTSUP;
	n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, out, *len)
				    : SSL_get_peer_finished(ssl, out, *len);
	if (n == 0 || n > *len)
		return -ENOTSUP;
	*len = n;
	return 0;
}

bool tls_unique_defined(SSL *ssl)
{
	return ssl && SSL_version(ssl) < TLS1_3_VERSION &&
	       SSL_get_extms_support(ssl) == 1;
}

int tls_channel_binding(SSL *ssl, const char *type, unsigned char *out,
			size_t *len)
{
	if (!ssl)
		return -ENOTSUP;
	if (strcmp(type, "tls-server-end-point") == 0)
		return server_end_point(ssl, out, len);
	if (strcmp(type, "tls-unique") == 0)
		return tls_unique(ssl, out, len);
	if (strcmp(type, "tls-exporter") == 0) {
		static const char label[] = "EXPORTER-Channel-Binding";
		if (SSL_version(ssl) != TLS1_3_VERSION || *len < 32)
			return -ENOTSUP;
		if (SSL_export_keying_material(ssl, out, 32, label,
					       sizeof(label) - 1, NULL, 0, 0) != 1) {
			ERR_clear_error();
			return -EIO;
		}
		*len = 32;
		return 0;
	}
	return -ENOTSUP;
}

const char *tls_version(SSL *ssl)
{
	return ssl ? SSL_get_version(ssl) : "none";
}

const char *tls_cipher(SSL *ssl)
{
	return ssl ? SSL_get_cipher_name(ssl) : "none";
}

/* --- TLS transport ------------------------------------------------------ */

static ssize_t tls_result(struct conn *c, int r, unsigned want_flag_read,
			  unsigned want_flag_write)
{
	int err = SSL_get_error(c->ssl, r);

	switch (err) {
	case SSL_ERROR_WANT_READ:
		if (want_flag_read)
			c->flags |= want_flag_read;
		return -EAGAIN;
	case SSL_ERROR_WANT_WRITE:
		if (want_flag_write) {
			c->flags |= want_flag_write;
			ev_io_start(conn_loop(), &c->wio);
		}
		return -EAGAIN;
	case SSL_ERROR_ZERO_RETURN:
		return 0;
	default:
		ERR_clear_error();
		return -EIO;
	}
}

static ssize_t tls_read(struct conn *c, void *buf, size_t len)
{
	int r;

	c->flags &= ~CONN_F_READ_WANTS_WRITE;
	ERR_clear_error();
	r = SSL_read(c->ssl, buf, (int)MIN(len, (size_t)INT32_MAX));
	if (r > 0)
		return r;
	return tls_result(c, r, 0, CONN_F_READ_WANTS_WRITE);
}

static ssize_t tls_writev(struct conn *c, const struct iovec *iov, int n)
{
	ssize_t total = 0;

	c->flags &= ~CONN_F_WRITE_WANTS_READ;
	for (int i = 0; i < n; i++) {
		ERR_clear_error();
		int r = SSL_write(c->ssl, iov[i].iov_base,
				  (int)MIN(iov[i].iov_len, (size_t)INT32_MAX));
		if (r <= 0) {
			ssize_t e = tls_result(c, r, CONN_F_WRITE_WANTS_READ, 0);
			if (total)
				return total;
			return e == 0 ? -EPIPE : e;
		}
		total += r;
		if ((size_t)r < iov[i].iov_len)
			break;
	}
	return total;
}

static void tls_shutdown(struct conn *c)
{
	if (!(c->flags & CONN_F_HANDSHAKE)) {
		ERR_clear_error();
		SSL_shutdown(c->ssl);
		ERR_clear_error();
	}
	shutdown(c->fd, SHUT_WR);
}

/* With read-ahead OpenSSL reads what the socket holds, several records
 * at once; SSL_read hands them out one by one. */
static bool tls_buffered(struct conn *c)
{
	return SSL_has_pending(c->ssl) == 1;
}

const struct conn_ops conn_tls_ops = {
	.name = "tls",
	.read = tls_read,
	.writev = tls_writev,
	.shutdown = tls_shutdown,
	.buffered = tls_buffered,
};

void conn_tls_handshake(struct conn *c)
{
	int r;

	ERR_clear_error();
	r = SSL_do_handshake(c->ssl);
	if (r == 1) {
		c->flags &= ~CONN_F_HANDSHAKE;
		ev_io_stop(conn_loop(), &c->wio);
		if (c->ev->tls_ready)
			c->ev->tls_ready(c);
		/* Application data may already sit in OpenSSL's buffer. */
		if (!(c->flags & CONN_F_CLOSING))
			ev_feed_event(conn_loop(), &c->rio, EV_READ);
		if (c->wq_bytes)
			conn_try_flush(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		ev_io_stop(conn_loop(), &c->wio);
		return;
	case SSL_ERROR_WANT_WRITE:
		ev_io_start(conn_loop(), &c->wio);
		return;
	default: {
		unsigned long e = ERR_get_error();
		char msg[128];
		ERR_error_string_n(e, msg, sizeof(msg));
		log_debug("%s:%d: TLS handshake failed: %s", c->ip, c->port,
			  e ? msg : "connection closed");
		ERR_clear_error();
		conn_close(c, "TLS handshake failed");
	}
	}
}
