/* admin.c - the administration socket: request lines in, answers out. */
#include "admin.h"
#include "conn.h"
#include "log.h"
#include "store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#define READ_CHUNK 16384
#define MAX_ANSWER (64 * 1024 * 1024)

struct admin_client {
	ev_io rio, wio;
	int fd;
	void *state;		/* the commands' state of this connection */
	struct sbuf in;		/* bytes of requests not handled yet */
	struct sbuf out;	/* the answer being written, from out_off */
	size_t out_off;
	bool eof;		/* the peer will send nothing more */
	struct admin_client *next, **pprev;
};

static int listen_fd = -1;
static ev_io accept_w;
static ev_timer resume_w;	/* accepting again after running out of fds */
static char *sock_path;
static struct admin_client *clients;
static size_t n_clients;
static const struct admin_commands *commands;

const char *admin_path(void)
{
	return sock_path;
}

static void client_free(struct admin_client *c)
{
	struct ev_loop *loop = conn_loop();

	ev_io_stop(loop, &c->rio);
	ev_io_stop(loop, &c->wio);
	close(c->fd);
	commands->close(c->state);
	sbuf_free(&c->in);
	sbuf_free(&c->out);
	*c->pprev = c->next;
	if (c->next)
		c->next->pprev = c->pprev;
	n_clients--;
	free(c);
}

static void queue_answer(struct admin_client *c, const char *status,
			 const char *body, size_t len)
{
	static const char cut[] = "\n(answer cut: too long)\n";

	if (len > MAX_ANSWER) {
		sbuf_printf(&c->out, "%s %zu\n", status, (size_t)MAX_ANSWER + sizeof(cut) - 1);
		sbuf_add(&c->out, body, MAX_ANSWER);
		sbuf_add(&c->out, cut, sizeof(cut) - 1);
		return;
	}
	sbuf_printf(&c->out, "%s %zu\n", status, len);
	sbuf_add(&c->out, body, len);
}

static void queue_text(struct admin_client *c, const char *status, const char *text)
{
	queue_answer(c, status, text, strlen(text));
}

/* Hands one request line to the commands and queues their answer.
 * Storage writes they made are committed before the answer goes. */
static void handle_line(struct admin_client *c, const char *line, size_t len)
{
	struct sbuf body;
	const char *status;

	sbuf_init(&body);
	status = commands->run(c->state, line, len, &body);
	if (!status || (strcmp(status, "ok") && strcmp(status, "error") &&
			strcmp(status, "more")))
		status = "error";
	queue_answer(c, status, body.p ? body.p : "", body.len);
	sbuf_free(&body);
	if (store_commit() != 0)
		log_error("admin: the storage commit after a command failed");
}

/* Writes what it can of the answer. false when c was freed. */
static bool flush_out(struct admin_client *c)
{
	while (c->out_off < c->out.len) {
		ssize_t n = write(c->fd, c->out.p + c->out_off, c->out.len - c->out_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			ev_io_start(conn_loop(), &c->wio);
			ev_io_stop(conn_loop(), &c->rio);
			return true;
		}
		if (n <= 0) {
			client_free(c);
			return false;
		}
		c->out_off += (size_t)n;
	}
	sbuf_reset(&c->out);
	c->out_off = 0;
	ev_io_stop(conn_loop(), &c->wio);
	return true;
}

/* Handles complete lines, one answer at a time. false when c was freed. */
static bool process(struct admin_client *c)
{
	char *nl;

	while (c->out.len == 0 && c->in.len && (nl = memchr(c->in.p, '\n', c->in.len))) {
		size_t len = (size_t)(nl - c->in.p), rest = c->in.len - len - 1;
		size_t n = len;
		if (n && c->in.p[n - 1] == '\r')
			n--;
		if (n)
			handle_line(c, c->in.p, n);
		memmove(c->in.p, nl + 1, rest);
		c->in.len = rest;
		c->in.p[rest] = '\0';
		if (!flush_out(c))
			return false;
	}
	if (c->out.len == 0 && c->in.len > ADMIN_MAX_LINE) {
		queue_text(c, "error", "request line too long\n");
		c->eof = true;
		sbuf_reset(&c->in);
		if (!flush_out(c))
			return false;
	}
	if (c->out.len == 0) {
		if (c->eof) {
			client_free(c);
			return false;
		}
		ev_io_start(conn_loop(), &c->rio);
	}
	return true;
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_client *c = container_of(w, struct admin_client, rio);
	ssize_t n;

	sbuf_reserve(&c->in, READ_CHUNK);
	n = read(c->fd, c->in.p + c->in.len, READ_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		c->eof = true;
		ev_io_stop(loop, &c->rio);
	} else {
		c->in.len += (size_t)n;
		c->in.p[c->in.len] = '\0';
	}
	process(c);
}

static void on_writable(struct ev_loop *loop, ev_io *w, int revents)
{
	struct admin_client *c = container_of(w, struct admin_client, wio);

	if (flush_out(c) && c->out.len == 0)
		process(c);
}

/* A short answer on a connection we refuse, then the close. What the
 * peer already sent is read first: closing a Unix socket with unread
 * data makes the peer's next read fail with ECONNRESET instead of
 * showing it the answer. */
static void refuse(int fd, const char *why)
{
	char buf[4096];
	int n = snprintf(buf, sizeof(buf), "error %zu\n%s\n", strlen(why) + 1, why);

	if (n > 0 && write(fd, buf, (size_t)n) < 0)
		log_debug("admin: cannot send the refusal: %s", strerror(errno));
	for (int i = 0; i < 16 && read(fd, buf, sizeof(buf)) > 0; i++)
		;
	close(fd);
}

static void client_new(int fd)
{
	struct admin_client *c = xcalloc(1, sizeof(*c));

	c->fd = fd;
	sbuf_init(&c->in);
	sbuf_init(&c->out);
	c->state = commands->open();
	ev_io_init(&c->rio, on_read, fd, EV_READ);
	ev_io_init(&c->wio, on_writable, fd, EV_WRITE);
	c->next = clients;
	if (clients)
		clients->pprev = &c->next;
	c->pprev = &clients;
	clients = c;
	n_clients++;
	ev_io_start(conn_loop(), &c->rio);
}

static void on_resume(struct ev_loop *loop, ev_timer *w, int revents)
{
	ev_io_start(loop, &accept_w);
}

/* Out of descriptors or memory: the pending connection stays pending,
 * and trying again at once would spin; pause a second. */
static void pause_accepting(struct ev_loop *loop)
{
	log_warn("admin: accept: %s; pausing for a second", strerror(errno));
	ev_io_stop(loop, &accept_w);
	ev_timer_set(&resume_w, 1., 0.);
	ev_timer_start(loop, &resume_w);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	for (int i = 0; i < 16; i++) {
		struct ucred cr;
		socklen_t len = sizeof(cr);
		int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
			    errno == ENOMEM)
				pause_accepting(loop);
			else if (errno != EAGAIN && errno != EINTR)
				log_warn("admin: accept: %s", strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0) {
			refuse(fd, "cannot tell who you are");
			continue;
		}
		if (cr.uid != geteuid()) {
			log_warn("admin: refused a connection from uid %u (pid %d): not the "
				 "server's user", (unsigned)cr.uid, (int)cr.pid);
			refuse(fd, "permission denied: only the server's own user may administer it");
			continue;
		}
		if (n_clients >= ADMIN_MAX_CLIENTS) {
			refuse(fd, "too many admin connections");
			continue;
		}
		client_new(fd);
	}
}

/* A socket file left by a server that is gone is removed; one a server
 * answers on is not. */
static int clear_stale(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, r;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		log_error("admin socket %s: a file that is not a socket is in the way", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	r = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (r == 0) {
		log_error("admin socket %s: another server is running there", path);
		return -EADDRINUSE;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int admin_open(const char *path, const struct admin_commands *cmds)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mode_t old_mask;
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		log_error("admin socket %s: the path is longer than %zu bytes", path,
			  sizeof(sa.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((r = clear_stale(path, &sa)) != 0)
		return r;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	old_mask = umask(0077);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (r != 0 || chmod(path, 0600) != 0 || listen(fd, 16) != 0) {
		r = -errno;
		log_error("admin socket %s: %s", path, strerror(-r));
		close(fd);
		return r;
	}
	listen_fd = fd;
	sock_path = xstrdup(path);
	commands = cmds;
	ev_io_init(&accept_w, on_accept, fd, EV_READ);
	ev_io_start(conn_loop(), &accept_w);
	ev_timer_init(&resume_w, on_resume, 1., 0.);
	log_info("admin socket %s", path);
	return 0;
}

void admin_close(void)
{
	while (clients)
		client_free(clients);
	if (listen_fd >= 0) {
		ev_io_stop(conn_loop(), &accept_w);
		ev_timer_stop(conn_loop(), &resume_w);
		close(listen_fd);
		listen_fd = -1;
	}
	if (sock_path && unlink(sock_path) != 0 && errno != ENOENT)
		log_warn("cannot remove the admin socket %s: %s", sock_path, strerror(errno));
	free(sock_path);
	sock_path = NULL;
}
