/*
 * tls_mem - what OpenSSL keeps per idle server connection, by the line
 * of OpenSSL that allocated it.
 *
 *   build/tls_mem [-n CONNS] [-2] [-s SUITES] CERT KEY
 *
 * A server context made by tls_ctx_new (the server's own settings) and
 * CONNS default OpenSSL clients (-2: TLS 1.2 only; -s: the TLS 1.3
 * suites the client offers, e.g. TLS_CHACHA20_POLY1305_SHA256) talk over
 * memory BIO pairs in one thread. Each connection does what a c2s stream
 * does: the handshake, one record each way (the ticket goes out). All
 * CONNS stay open; then the bytes OpenSSL still holds for the server
 * side are listed per allocation site, divided by CONNS, with the heap
 * each takes (glibc's chunk: the request plus 8, rounded up to 16, at
 * least 32). The memory BIO pair's buffers are left out: a socket BIO
 * has none.
 *
 * Every OpenSSL allocation goes through CRYPTO_set_mem_functions: a
 * small header carries the site and which side allocated it (a flag set
 * around the server's calls), so what a client call frees of the
 * server's (nothing, normally) still counts right.
 */
#include "tls.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#define MAX_SITES 4096

struct site {
	const char *file;
	int line;
	long live, bytes, heap;		/* server side, still allocated */
};

struct hdr {
	size_t size;
	int site;		/* -1: not the server's */
	int pad;
};

static struct site sites[MAX_SITES];
static int n_sites;
static bool server_side;

static size_t chunk_of(size_t n)
{
	size_t c = (n + 8 + 15) & ~(size_t)15;

	return c < 32 ? 32 : c;
}

static int site_of(const char *file, int line)
{
	for (int i = 0; i < n_sites; i++)
		if (sites[i].line == line && strcmp(sites[i].file, file) == 0)
			return i;
	if (n_sites == MAX_SITES)
		return -1;
	sites[n_sites].file = file;
	sites[n_sites].line = line;
	return n_sites++;
}

static void account(struct hdr *h, long sign)
{
	struct site *s;

	if (h->site < 0)
		return;
	s = &sites[h->site];
	s->live += sign;
	s->bytes += sign * (long)h->size;
	s->heap += sign * (long)chunk_of(h->size);
}

static void *m_malloc(size_t n, const char *file, int line)
{
	struct hdr *h = malloc(sizeof(*h) + n);

	if (!h)
		return NULL;
	h->size = n;
	h->site = server_side ? site_of(file ? file : "?", line) : -1;
	account(h, 1);
	return h + 1;
}

static void m_free(void *p, const char *file, int line)
{
	struct hdr *h;

	if (!p)
		return;
	h = (struct hdr *)p - 1;
	account(h, -1);
	free(h);
}

static void *m_realloc(void *p, size_t n, const char *file, int line)
{
	void *q;

	if (!p)
		return m_malloc(n, file, line);
	q = m_malloc(n, file, line);
	if (!q)
		return NULL;
	memcpy(q, p, MIN(n, ((struct hdr *)p - 1)->size));
	m_free(p, file, line);
	return q;
}

struct pair {
	SSL *s, *c;
};

static int fail(const char *what)
{
	fprintf(stderr, "tls_mem: %s\n", what);
	ERR_print_errors_fp(stderr);
	return -1;
}

static int srv_step(SSL *s)
{
	int r;

	server_side = true;
	r = SSL_do_handshake(s);
	server_side = false;
	return r;
}

/* One connection up to idle. 0 or -1. */
static int open_one(SSL_CTX *sctx, SSL_CTX *cctx, struct pair *p)
{
	BIO *sb, *cb;
	bool s_done = false, c_done = false;
	char buf[64];

	server_side = true;
	if (BIO_new_bio_pair(&sb, 0, &cb, 0) != 1)
		return fail("BIO_new_bio_pair");
	p->s = SSL_new(sctx);
	SSL_set_bio(p->s, sb, sb);
	SSL_set_accept_state(p->s);
	server_side = false;
	p->c = SSL_new(cctx);
	SSL_set_bio(p->c, cb, cb);
	SSL_set_connect_state(p->c);
	SSL_set_tlsext_host_name(p->c, "localhost");
	while (!s_done || !c_done) {
		int r;

		if (!c_done) {
			r = SSL_do_handshake(p->c);
			c_done = r == 1;
			if (r != 1 && SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ)
				return fail("client handshake");
		}
		if (!s_done) {
			r = srv_step(p->s);
			s_done = r == 1;
			if (r != 1 && SSL_get_error(p->s, r) != SSL_ERROR_WANT_READ)
				return fail("server handshake");
		}
	}
	SSL_write(p->c, "<x/>", 4);
	server_side = true;
	if (SSL_read(p->s, buf, sizeof(buf)) <= 0)
		return fail("server read");
	SSL_write(p->s, "<y/>", 4);
	server_side = false;
	SSL_read(p->c, buf, sizeof(buf));	/* the ticket too */
	return 0;
}

static int by_heap(const void *a, const void *b)
{
	const struct site *x = a, *y = b;

	return (y->heap > x->heap) - (y->heap < x->heap);
}

static void report(long n)
{
	long bytes = 0, heap = 0, live = 0;

	qsort(sites, (size_t)n_sites, sizeof(*sites), by_heap);
	printf("%8s %8s %6s  %s\n", "heap/conn", "B/conn", "n/conn", "site");
	for (int i = 0; i < n_sites; i++) {
		struct site *s = &sites[i];

		if (s->live <= 0 || strstr(s->file, "bss_bio.c"))
			continue;	/* the pair's buffers: a socket has none */
		bytes += s->bytes;
		heap += s->heap;
		live += s->live;
		if (s->heap >= n * 16)
			printf("%8.0f %8.0f %6.1f  %s:%d\n", (double)s->heap / n,
			       (double)s->bytes / n, (double)s->live / n,
			       s->file, s->line);
	}
	printf("total: %.0f B of heap per connection (%.0f B asked, %.1f "
	       "allocations)\n", (double)heap / n, (double)bytes / n,
	       (double)live / n);
}

static void usage(void)
{
	fputs("usage: tls_mem [-n CONNS] [-2] [-s SUITES] CERT KEY\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct pair *pairs;
	SSL_CTX *sctx, *cctx;
	long n = 1000;
	const char *suites = NULL;
	bool tls12 = false;
	int opt;

	if (!CRYPTO_set_mem_functions(m_malloc, m_realloc, m_free))
		return fail("CRYPTO_set_mem_functions");
	while ((opt = getopt(argc, argv, "n:2s:")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case '2': tls12 = true; break;
		case 's': suites = optarg; break;
		default: usage();
		}
	}
	if (argc - optind != 2 || n < 1)
		usage();
	sctx = tls_ctx_new(argv[optind], argv[optind + 1]);
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx)
		return 1;
	if (tls12)
		SSL_CTX_set_max_proto_version(cctx, TLS1_2_VERSION);
	if (suites && SSL_CTX_set_ciphersuites(cctx, suites) != 1)
		return fail("no such TLS 1.3 suites");
	pairs = xcalloc((size_t)n, sizeof(*pairs));
	for (long i = 0; i < n; i++)
		if (open_one(sctx, cctx, &pairs[i]) != 0)
			return 1;
	printf("%ld idle server connections, %s, %s\n", n,
	       SSL_get_version(pairs[0].s), SSL_get_cipher_name(pairs[0].s));
	report(n);
	if (getenv("TLS_MEM_MAP")) {	/* which bytes of the SSL object are in use */
		const unsigned char *b = (const unsigned char *)pairs[n / 2].s;
		size_t len = ((struct hdr *)pairs[n / 2].s - 1)->size, run = 0;
		for (size_t i = 0; i <= len; i++) {
			if (i < len && b[i] == 0) {
				run++;
				continue;
			}
			if (run >= 256)
				printf("zero %zu..%zu (%zu)\n", i - run, i, run);
			run = 0;
		}
	}
	for (long i = 0; i < n; i++) {
		SSL_free(pairs[i].s);
		SSL_free(pairs[i].c);
	}
	free(pairs);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return 0;
}
