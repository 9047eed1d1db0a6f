/* component.c - an echo component for the chat scenario (--component):
 * one XEP-0114 stream to the server's component port, on a thread of its
 * own with a blocking socket. Every <message/> it gets goes back to its
 * sender with 'from' and 'to' swapped and the body unchanged, so the
 * sender's "LG" stamp turns into a round-trip latency sample. */
#include "lg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <sys/socket.h>

static pthread_t thread;
static int sock = -1;
static _Atomic bool stopping;
static _Atomic uint64_t echoed;

struct echo {
	XML_Parser xp;
	int depth;
	bool header, handshake, failed, in_body;
	char id[128];
	char *from, *to, *type;
	struct lg_buf body, out;
};

static void write_all(const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(sock, p, n);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return;
		p += k;
		n -= (size_t)k;
	}
}

static const char *attr(const char **atts, const char *name)
{
	for (; atts[0]; atts += 2)
		if (strcmp(atts[0], name) == 0)
			return atts[1];
	return NULL;
}

/* Names arrive as "ns local" (namespace-aware parser). */
static const char *local(const char *name)
{
	const char *sp = strrchr(name, ' ');

	return sp ? sp + 1 : name;
}

static void on_start(void *ud, const char *name, const char **atts)
{
	struct echo *e = ud;
	const char *l = local(name);

	if (e->depth == 0) {
		const char *id = attr(atts, "id");
		snprintf(e->id, sizeof(e->id), "%s", id ? id : "");
		e->header = true;
	} else if (e->depth == 1 && strcmp(l, "message") == 0) {
		free(e->from);
		free(e->to);
		free(e->type);
		e->from = lg_xstrdup(attr(atts, "from") ? attr(atts, "from") : "");
		e->to = lg_xstrdup(attr(atts, "to") ? attr(atts, "to") : "");
		e->type = lg_xstrdup(attr(atts, "type") ? attr(atts, "type") : "chat");
		lg_buf_reset(&e->body);
	} else if (e->depth == 1 && strcmp(l, "handshake") == 0) {
		e->handshake = true;
	} else if (e->depth == 1 && strcmp(l, "error") == 0) {
		e->failed = true;
	} else if (e->depth == 2 && strcmp(l, "body") == 0) {
		e->in_body = true;
	}
	e->depth++;
}

static void on_end(void *ud, const char *name)
{
	struct echo *e = ud;
	const char *l = local(name);

	e->depth--;
	if (e->depth == 2 && strcmp(l, "body") == 0)
		e->in_body = false;
	if (e->depth != 1 || strcmp(l, "message") != 0 || strcmp(e->type, "error") == 0)
		return;
	lg_buf_add(&e->body, "", 1);
	lg_buf_adds(&e->out, "<message from='");
	lg_xml_escape(&e->out, e->to);
	lg_buf_adds(&e->out, "' to='");
	lg_xml_escape(&e->out, e->from);
	lg_buf_adds(&e->out, "' type='");
	lg_xml_escape(&e->out, e->type);
	lg_buf_adds(&e->out, "'><body>");
	lg_xml_escape(&e->out, e->body.p);
	lg_buf_adds(&e->out, "</body></message>");
	atomic_fetch_add_explicit(&echoed, 1, memory_order_relaxed);
}

static void on_text(void *ud, const char *s, int len)
{
	struct echo *e = ud;

	if (e->in_body)
		lg_buf_add(&e->body, s, (size_t)len);
}

/* Reads once and handles what came; false when the stream is over. */
static bool pump(struct echo *e)
{
	char buf[65536];
	ssize_t n = read(sock, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return !atomic_load(&stopping);
	if (n <= 0 || XML_Parse(e->xp, buf, (int)n, 0) != XML_STATUS_OK || e->failed)
		return false;
	if (lg_buf_pending(&e->out)) {
		write_all(e->out.p + e->out.off, lg_buf_pending(&e->out));
		lg_buf_reset(&e->out);
	}
	return true;
}

static void *run(void *arg)
{
	struct echo *e = arg;

	while (pump(e) && !atomic_load(&stopping))
		;
	if (!atomic_load(&stopping))
		fprintf(stderr, "loadgen: the echo component's stream ended\n");
	return NULL;
}

static void handshake_hex(const char *id, const char *secret, char out[41])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int len = 0;
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();

	EVP_DigestInit_ex(ctx, EVP_sha1(), NULL);
	EVP_DigestUpdate(ctx, id, strlen(id));
	EVP_DigestUpdate(ctx, secret, strlen(secret));
	EVP_DigestFinal_ex(ctx, md, &len);
	EVP_MD_CTX_free(ctx);
	for (unsigned int i = 0; i < 20 && i < len; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static struct echo state;

int lg_component_start(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET,
				  .sin_port = htons((uint16_t)(g_opts.component_port ? g_opts.component_port : 5347)) };
	struct timeval tv = { .tv_sec = 0, .tv_usec = 200000 };
	char hex[41], head[512];
	int one = 1;

	if (inet_pton(AF_INET, g_opts.host, &sa.sin_addr) != 1)
		return -1;
	sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		fprintf(stderr, "loadgen: component port %s:%d: %s\n", g_opts.host,
			g_opts.component_port, strerror(errno));
		return -1;
	}
	setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	state.xp = XML_ParserCreateNS(NULL, ' ');
	XML_SetUserData(state.xp, &state);
	XML_SetElementHandler(state.xp, on_start, on_end);
	XML_SetCharacterDataHandler(state.xp, on_text);
	snprintf(head, sizeof(head), "<?xml version='1.0'?><stream:stream "
		 "xmlns='jabber:component:accept' xmlns:stream="
		 "'http://etherx.jabber.org/streams' to='%s'>", g_opts.component);
	write_all(head, strlen(head));
	for (int i = 0; i < 50 && !state.header; i++)
		if (!pump(&state))
			break;
	if (!state.header || !state.id[0]) {
		fprintf(stderr, "loadgen: no stream header on the component port\n");
		return -1;
	}
	handshake_hex(state.id, g_opts.component_secret ? g_opts.component_secret : "", hex);
	snprintf(head, sizeof(head), "<handshake>%s</handshake>", hex);
	write_all(head, strlen(head));
	for (int i = 0; i < 50 && !state.handshake; i++)
		if (!pump(&state))
			break;
	if (!state.handshake) {
		fprintf(stderr, "loadgen: the component handshake failed\n");
		return -1;
	}
	if (pthread_create(&thread, NULL, run, &state) != 0)
		return -1;
	return 0;
}

void lg_component_stop(void)
{
	if (sock < 0)
		return;
	atomic_store(&stopping, true);
	pthread_join(thread, NULL);
	write_all("</stream:stream>", 16);
	close(sock);
	sock = -1;
	XML_ParserFree(state.xp);
	free(state.from);
	free(state.to);
	free(state.type);
	lg_buf_free(&state.body);
	lg_buf_free(&state.out);
}

uint64_t lg_component_echoed(void)
{
	return atomic_load(&echoed);
}
