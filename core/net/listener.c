/* listener.c - accepting connections and handing them to their owner. */
#include "listener.h"
#include "conn.h"
#include "log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define ACCEPTS_PER_WAKEUP 64

struct listener {
	ev_io w;
	ev_timer pause;			/* out of descriptors: wait, don't spin */
	void (*accept)(int fd, const char *ip, int port, void *ctx);
	void *ctx;
	struct listener *next;
};

static struct listener *listeners;
static size_t n_listeners;
static bool reuseport;

void listener_set_reuseport(bool on)
{
	reuseport = on;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = container_of(w, struct listener, w);

	for (int i = 0; i < ACCEPTS_PER_WAKEUP; i++) {
		struct sockaddr_storage sa;
		socklen_t len = sizeof(sa);
		char ip[INET6_ADDRSTRLEN] = "?";
		int port = 0;
		int fd = accept4(w->fd, (struct sockaddr *)&sa, &len,
				 SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM) {
				/* The pending connection stays in the backlog and
				 * would wake us at once again: stop listening a
				 * moment instead of spinning. */
				log_warn("accept: %s; not accepting for a second",
					 strerror(errno));
				ev_io_stop(loop, w);
				ev_timer_set(&l->pause, 1., 0.);
				ev_timer_start(loop, &l->pause);
			} else if (errno != EAGAIN && errno != EWOULDBLOCK &&
				   errno != EINTR) {
				log_warn("accept: %s", strerror(errno));
			}
			return;
		}
		if (sa.ss_family == AF_INET) {
			struct sockaddr_in *in = (struct sockaddr_in *)&sa;
			inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
			port = ntohs(in->sin_port);
		} else if (sa.ss_family == AF_INET6) {
			struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
			inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
			port = ntohs(in6->sin6_port);
			if (strncmp(ip, "::ffff:", 7) == 0)
				memmove(ip, ip + 7, strlen(ip + 7) + 1);
		}
		/* Writes are already gathered (one writev per connection per
		 * loop iteration): Nagle would only hold a stanza back until
		 * the peer's delayed ACK, 40 ms on Linux. */
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		l->accept(fd, ip, port, l->ctx);
	}
}

static void on_pause_end(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct listener *l = container_of(t, struct listener, pause);

	ev_io_start(loop, &l->w);
}

static int open_socket(const char *addr, int port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST };
	struct addrinfo *res = NULL;
	char portstr[16];
	int fd = -1, one = 1, zero = 0, r;
	bool any = strcmp(addr, "*") == 0;

	snprintf(portstr, sizeof(portstr), "%d", port);
	r = getaddrinfo(any ? "::" : addr, portstr, &hints, &res);
	if (r != 0) {
		log_error("cannot listen on %s:%d: %s", addr, port, gai_strerror(r));
		return -EINVAL;
	}
	fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		goto fail;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (reuseport)
		setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
	if (any)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
	if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0)
		goto fail;
	freeaddrinfo(res);
	return fd;
fail:
	r = -errno;
	log_error("cannot listen on %s:%d: %s", addr, port, strerror(errno));
	if (fd >= 0)
		close(fd);
	freeaddrinfo(res);
	return r;
}

int listener_add(const char *addr, int port, const char *what,
		 void (*accept)(int fd, const char *ip, int port, void *ctx),
		 void *ctx)
{
	int fd = open_socket(addr, port);
	struct listener *l;

	if (fd < 0)
		return fd;
	l = xcalloc(1, sizeof(*l));
	l->accept = accept;
	l->ctx = ctx;
	ev_io_init(&l->w, on_accept, fd, EV_READ);
	ev_timer_init(&l->pause, on_pause_end, 1., 0.);
	ev_io_start(conn_loop(), &l->w);
	l->next = listeners;
	listeners = l;
	n_listeners++;
	log_info("listening on %s:%d (%s)", addr, port, what);
	return 0;
}

void listener_close_all(void)
{
	while (listeners) {
		struct listener *l = listeners;
		listeners = l->next;
		ev_io_stop(conn_loop(), &l->w);
		ev_timer_stop(conn_loop(), &l->pause);
		close(l->w.fd);
		free(l);
	}
	n_listeners = 0;
}

size_t listener_count(void)
{
	return n_listeners;
}
