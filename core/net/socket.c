/* socket.c - the plain TCP transport of a connection. */
#include "transport.h"

#include <errno.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/uio.h>

static ssize_t plain_read(struct conn *c, void *buf, size_t len)
{
	ssize_t n = read(c->fd, buf, len);

	if (n >= 0)
		return n;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -EAGAIN;
	return -errno;
}

static ssize_t plain_writev(struct conn *c, const struct iovec *iov, int n)
{
	ssize_t w = writev(c->fd, iov, n);

	if (w >= 0)
		return w;
	if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
		return -EAGAIN;
	return -errno;
}

static void plain_shutdown(struct conn *c)
{
	shutdown(c->fd, SHUT_WR);
}

static bool plain_buffered(struct conn *c)
{
	return false;
}

const struct conn_ops conn_tcp_ops = {
	.name = "tcp",
	.read = plain_read,
	.writev = plain_writev,
	.shutdown = plain_shutdown,
	.buffered = plain_buffered,
};

