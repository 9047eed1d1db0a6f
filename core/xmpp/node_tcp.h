/*
 * node_tcp.h - the byte stream of node links between machines: TCP with
 * TLS 1.3, both ends authenticated by the cluster's shared secret
 * (node_link.c carries its frames on it as on a Unix socket).
 *
 * psk:      TLS 1.3's external pre-shared key (RFC 8446 4.2.11): the key
 *           is HMAC-SHA256(secret, "starling node link psk 1"), offered
 *           under the identity "starling-node-link" with
 *           TLS_AES_128_GCM_SHA256 and an (EC)DHE exchange (psk_dhe_ke,
 *           so a secret that leaks later opens no recorded link). No
 *           certificate: a peer that does not know the secret fails the
 *           handshake's binder check (a wrong secret is refused there).
 * address:  "IPv4:port" or "[IPv6]:port", numeric.
 */
#ifndef STARLING_NODE_TCP_H
#define STARLING_NODE_TCP_H

#include <stdbool.h>
#include <sys/socket.h>
#include <openssl/ssl.h>

/* The two TLS contexts of the links, keyed by secret: 0 or -errno.
 * Until node_tcp_free they are node_tcp_server/_client. */
int node_tcp_init(const char *secret);
void node_tcp_free(void);
SSL_CTX *node_tcp_server(void);
SSL_CTX *node_tcp_client(void);

/* address parsed into sa: 0 or -EINVAL. */
int node_tcp_addr(const char *address, struct sockaddr_storage *sa, socklen_t *len);
/* A non-blocking listening socket on address: the fd or -errno. */
int node_tcp_listen(const char *address);

#endif
