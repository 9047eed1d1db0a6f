/*
 * test_admin.c - the admin socket (admin.c) with commands written in C,
 * no Lua state: the socket file, request framing (pipelined lines, CRLF,
 * empty lines), answers in order with their status, a state per
 * connection opened and closed with it, and a second server refused.
 */
#include "harness.h"
#include "admin.h"
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

static char dir[] = "/tmp/starling-test-admin-XXXXXX";
static char path[96];
static struct ev_loop *loop;
static int opened, closed;

struct shell {
	int requests;
};

static void *t_open(void)
{
	opened++;
	return xcalloc(1, sizeof(struct shell));
}

static void t_close(void *state)
{
	closed++;
	free(state);
}

/* "<n>:<line>" where n counts this connection's requests; the line
 * "more" answers more, "odd" a status admin.c must not pass on. */
static const char *t_run(void *state, const char *line, size_t len,
			 struct sbuf *body)
{
	struct shell *sh = state;

	sbuf_printf(body, "%d:%.*s", ++sh->requests, (int)len, line);
	if (len == 4 && memcmp(line, "more", 4) == 0)
		return "more";
	if (len == 3 && memcmp(line, "odd", 3) == 0)
		return "maybe";
	return "ok";
}

static const struct admin_commands cmds = { t_open, t_close, t_run };

static int client(void)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		perror("connect");
		exit(1);
	}
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static void send_all(int fd, const char *s)
{
	CHECK(write(fd, s, strlen(s)) == (ssize_t)strlen(s));
}

/* Runs the loop until want bytes came back on fd (or two seconds). */
static void expect(int fd, const char *want)
{
	char buf[1024];
	size_t got = 0, n = strlen(want);

	for (int i = 0; i < 2000 && got < n; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		ssize_t r = read(fd, buf + got, MIN(sizeof(buf) - 1, n) - got);
		if (r > 0)
			got += (size_t)r;
		else
			usleep(1000);
	}
	buf[got] = '\0';
	CHECK_STR(buf, want);
}

/* Runs the loop until count reaches want (or two seconds). */
static void settle(const int *count, int want)
{
	for (int i = 0; i < 2000 && *count != want; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		usleep(1000);
	}
	CHECK(*count == want);
}

static void test_socket_file(void)
{
	struct stat st;

	CHECK_STR(admin_path(), path);
	CHECK(lstat(path, &st) == 0 && S_ISSOCK(st.st_mode));
	CHECK((st.st_mode & 0777) == 0600);
	/* a server answers there: a second one is refused */
	CHECK(admin_open(path, &cmds) == -EADDRINUSE);
	CHECK_STR(admin_path(), path);
}

static void test_requests(void)
{
	int a, b;

	/* the refused server's probe was a connection too: gone now */
	settle(&closed, 1);
	opened = closed = 0;
	a = client();

	send_all(a, "hello\n");
	expect(a, "ok 7\n1:hello");
	/* pipelined, CRLF, an empty line skipped: answered in order */
	send_all(a, "x y\r\n\nmore\nodd\n");
	expect(a, "ok 5\n2:x ymore 6\n3:moreerror 5\n4:odd");
	CHECK(opened == 1);
	/* a second connection has its own state */
	b = client();
	send_all(b, "other\n");
	expect(b, "ok 7\n1:other");
	send_all(a, "again\n");
	expect(a, "ok 7\n5:again");
	CHECK(opened == 2 && closed == 0);
	close(a);
	settle(&closed, 1);
	/* a line split over writes waits for its end */
	send_all(b, "par");
	expect(b, "");
	send_all(b, "ts\n");
	expect(b, "ok 7\n2:parts");
	close(b);
	settle(&closed, 2);
}

static void test_close(void)
{
	int a = client();

	send_all(a, "hi\n");
	expect(a, "ok 4\n1:hi");
	admin_close();
	CHECK(closed == opened);
	CHECK(admin_path() == NULL);
	CHECK(access(path, F_OK) != 0 && errno == ENOENT);
	close(a);
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/admin.sock", dir);
	loop = ev_loop_new(EVFLAG_AUTO);
	conn_global_init(loop);
	if (admin_open(path, &cmds) != 0) {
		fprintf(stderr, "cannot open %s\n", path);
		return 1;
	}
	RUN(test_socket_file);
	RUN(test_requests);
	RUN(test_close);
	conn_global_free();
	ev_loop_destroy(loop);
	rmdir(dir);
	TEST_END();
}
