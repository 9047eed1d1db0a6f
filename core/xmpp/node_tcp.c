/* node_tcp.c - node links between machines: TCP with TLS 1.3 keyed by the
 * cluster's secret as an external PSK (node_tcp.h). */
#include "node_tcp.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/hmac.h>

#define PSK_LABEL "starling node link psk 1"
static const unsigned char psk_identity[] = "starling-node-link";
#define PSK_IDENTITY_LEN (sizeof(psk_identity) - 1)
/* TLS_AES_128_GCM_SHA256 (RFC 8446 B.4): its hash is the PSK's. */
static const unsigned char psk_suite[2] = { 0x13, 0x01 };

static unsigned char psk[32];
static SSL_CTX *server_ctx, *client_ctx;

/* The PSK as a resumable session of ssl's suite: the caller's. */
static SSL_SESSION *psk_session(SSL *ssl)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);
	SSL_SESSION *s;

	if (!cipher || !(s = SSL_SESSION_new()))
		return NULL;
	if (SSL_SESSION_set1_master_key(s, psk, sizeof(psk)) != 1 ||
	    SSL_SESSION_set_cipher(s, cipher) != 1 ||
	    SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION) != 1) {
		SSL_SESSION_free(s);
		return NULL;
	}
	return s;
}

/* Client: the PSK is offered with its identity. */
static int use_session(SSL *ssl, const EVP_MD *md, const unsigned char **id,
		       size_t *idlen, SSL_SESSION **sess)
{
	const SSL_CIPHER *cipher = SSL_CIPHER_find(ssl, psk_suite);

	*sess = NULL;
	if (!cipher || (md && md != SSL_CIPHER_get_handshake_digest(cipher)))
		return 1;	/* a retry for another hash: no PSK for it */
	if (!(*sess = psk_session(ssl)))
		return 0;
	*id = psk_identity;
	*idlen = PSK_IDENTITY_LEN;
	return 1;
}

/* Server: the identity names our PSK; another identity gets none (and
 * with no certificate, no handshake). */
static int find_session(SSL *ssl, const unsigned char *id, size_t idlen,
			SSL_SESSION **sess)
{
	*sess = NULL;
	if (idlen != PSK_IDENTITY_LEN || memcmp(id, psk_identity, idlen) != 0)
		return 1;
	return (*sess = psk_session(ssl)) ? 1 : 0;
}

static SSL_CTX *make_ctx(bool server)
{
	SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());

	if (!ctx)
		return NULL;
	if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) != 1 ||
	    SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256") != 1) {
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	if (server) {
		SSL_CTX_set_num_tickets(ctx, 0);
		SSL_CTX_set_psk_find_session_callback(ctx, find_session);
	} else {
		SSL_CTX_set_psk_use_session_callback(ctx, use_session);
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	return ctx;
}

int node_tcp_init(const char *secret)
{
	unsigned len = sizeof(psk);

	node_tcp_free();
	if (!HMAC(EVP_sha256(), secret, (int)strlen(secret),
		  (const unsigned char *)PSK_LABEL, strlen(PSK_LABEL), psk, &len) ||
	    !(server_ctx = make_ctx(true)) || !(client_ctx = make_ctx(false))) {
		ERR_clear_error();
		node_tcp_free();
		return -EIO;
	}
	return 0;
}

void node_tcp_free(void)
{
	SSL_CTX_free(server_ctx);
	SSL_CTX_free(client_ctx);
	server_ctx = client_ctx = NULL;
	OPENSSL_cleanse(psk, sizeof(psk));
}

SSL_CTX *node_tcp_server(void)
{
	return server_ctx;
}

SSL_CTX *node_tcp_client(void)
{
	return client_ctx;
}

int node_tcp_addr(const char *address, struct sockaddr_storage *sa, socklen_t *len)
{
	char host[64];
	const char *colon = strrchr(address, ':');
	const char *h = address;
	size_t hl;
	char *end;
	long port;

	if (!colon)
		return -EINVAL;
	hl = (size_t)(colon - address);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	port = strtol(colon + 1, &end, 10);
	if (hl == 0 || hl >= sizeof(host) || *end || port < 1 || port > 65535)
		return -EINVAL;
	memcpy(host, h, hl);
	host[hl] = '\0';
	memset(sa, 0, sizeof(*sa));
	struct sockaddr_in *v4 = (struct sockaddr_in *)sa;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)sa;
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)port);
		*len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*v6);
	} else {
		return -EINVAL;
	}
	return 0;
}

int node_tcp_listen(const char *address)
{
	struct sockaddr_storage sa;
	socklen_t len;
	int fd, one = 1, r;

	if ((r = node_tcp_addr(address, &sa, &len)) != 0)
		return r;
	fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&sa, len) != 0 || listen(fd, 64) != 0) {
		r = -errno;
		close(fd);
		return r;
	}
	return fd;
}
