/* test_node_tcp.c - the TLS of a cluster's node links (node_tcp.c): two
 * processes over a socket pair, each keyed by a secret; the same secret
 * makes a TLS 1.3 session on the PSK without certificates, another one
 * fails on both ends. And the link addresses' syntax. */
#include "node_tcp.h"
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/wait.h>
#include <openssl/err.h>

/* One end of a handshake on fd, keyed by secret: 1 when it made a TLS
 * 1.3 session resumed from the PSK, both ways a record through; 0 when
 * the handshake failed. */
static int handshake(int fd, const char *secret, bool server)
{
	SSL *ssl;
	char buf[5] = "";
	int ok = 0;

	if (node_tcp_init(secret) != 0)
		return -1;
	ssl = SSL_new(server ? node_tcp_server() : node_tcp_client());
	SSL_set_fd(ssl, fd);
	if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) == 1 &&
	    SSL_version(ssl) == TLS1_3_VERSION && SSL_session_reused(ssl) &&
	    !SSL_get0_peer_certificate(ssl) &&
	    SSL_write(ssl, server ? "srv!" : "cli!", 4) == 4 &&
	    SSL_read(ssl, buf, 4) == 4)
		ok = strcmp(buf, server ? "cli!" : "srv!") == 0;
	ERR_clear_error();
	SSL_free(ssl);
	node_tcp_free();
	return ok;
}

/* What each end says of a handshake, the server in a child process. */
static void both_ends(const char *server_secret, const char *client_secret,
		      int *server_ok, int *client_ok)
{
	int sv[2], status = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
		abort();
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(handshake(sv[1], server_secret, true) == 1 ? 0 : 1);
	}
	close(sv[1]);
	*client_ok = handshake(sv[0], client_secret, false);
	close(sv[0]);
	waitpid(pid, &status, 0);
	*server_ok = WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_same_secret(void)
{
	int s, c;

	both_ends("the cluster's secret", "the cluster's secret", &s, &c);
	CHECK(s == 1);
	CHECK(c == 1);
}

static void test_other_secret_refused(void)
{
	int s, c;

	both_ends("the cluster's secret", "the cluster's secreT", &s, &c);
	CHECK(s == 0);
	CHECK(c == 0);
}

static void test_addresses(void)
{
	struct sockaddr_storage sa;
	socklen_t len;
	char ip[INET6_ADDRSTRLEN];

	CHECK(node_tcp_addr("127.0.0.2:5290", &sa, &len) == 0);
	CHECK(sa.ss_family == AF_INET && len == sizeof(struct sockaddr_in));
	CHECK(ntohs(((struct sockaddr_in *)&sa)->sin_port) == 5290);
	inet_ntop(AF_INET, &((struct sockaddr_in *)&sa)->sin_addr, ip, sizeof(ip));
	CHECK_STR(ip, "127.0.0.2");
	CHECK(node_tcp_addr("[::1]:65535", &sa, &len) == 0);
	CHECK(sa.ss_family == AF_INET6 && len == sizeof(struct sockaddr_in6));
	CHECK(ntohs(((struct sockaddr_in6 *)&sa)->sin6_port) == 65535);
	CHECK(node_tcp_addr("127.0.0.2", &sa, &len) == -EINVAL);
	CHECK(node_tcp_addr("127.0.0.2:0", &sa, &len) == -EINVAL);
	CHECK(node_tcp_addr("127.0.0.2:65536", &sa, &len) == -EINVAL);
	CHECK(node_tcp_addr("127.0.0.2:52x", &sa, &len) == -EINVAL);
	CHECK(node_tcp_addr(":5290", &sa, &len) == -EINVAL);
	CHECK(node_tcp_addr("node-b.example:5290", &sa, &len) == -EINVAL);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_same_secret);
	RUN(test_other_secret_refused);
	RUN(test_addresses);
	TEST_END();
}
