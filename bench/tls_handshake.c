/*
 * tls_handshake - the server's CPU per TLS handshake, nothing else.
 *
 *   build/tls_handshake [-n HANDSHAKES] [-r] CERT KEY
 *
 * A server context made by tls_ctx_new (the server's own settings) and a
 * default OpenSSL client talk over a memory BIO pair in one thread: no
 * sockets, no XMPP. Only the server's calls are timed (thread CPU clock):
 * SSL_new, the handshake, one record each way (so the ticket goes out and
 * the client reads it) and SSL_free. With -r every other handshake offers
 * the ticket of the one before (TLS 1.3 resumption), and full and resumed
 * handshakes are reported apart.
 *
 * Compare with `openssl speed ecdsap256 ecdhx25519`: a full handshake
 * signs once and does two X25519 operations (key share, agreement).
 */
#include "tls.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>

struct totals {
	double full_s, resumed_s;
	long full, resumed;
};

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fail(const char *what)
{
	fprintf(stderr, "tls_handshake: %s\n", what);
	ERR_print_errors_fp(stderr);
	return -1;
}

/* One connection; adds the server's CPU time to t. 0 or -1. */
static int one(SSL_CTX *sctx, SSL_CTX *cctx, SSL_SESSION **ticket,
	       bool resume, struct totals *t)
{
	BIO *sb, *cb;
	SSL *s, *c;
	double used = 0, t0;
	bool s_done = false, c_done = false, reused;
	char buf[64];
	int rc = -1;

	if (BIO_new_bio_pair(&sb, 0, &cb, 0) != 1)
		return fail("BIO_new_bio_pair");
	t0 = cpu_now();
	s = SSL_new(sctx);
	SSL_set_bio(s, sb, sb);
	SSL_set_accept_state(s);
	used += cpu_now() - t0;
	c = SSL_new(cctx);
	SSL_set_bio(c, cb, cb);
	SSL_set_connect_state(c);
	SSL_set_tlsext_host_name(c, "localhost");
	if (resume && *ticket)
		SSL_set_session(c, *ticket);
	while (!s_done || !c_done) {
		int r;

		if (!c_done) {
			r = SSL_do_handshake(c);
			c_done = r == 1;
			if (r != 1 && SSL_get_error(c, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
		if (!s_done) {
			t0 = cpu_now();
			r = SSL_do_handshake(s);
			used += cpu_now() - t0;
			s_done = r == 1;
			if (r != 1 && SSL_get_error(s, r) != SSL_ERROR_WANT_READ)
				goto out;
		}
	}
	SSL_write(c, "x", 1);
	t0 = cpu_now();
	SSL_read(s, buf, sizeof(buf));
	SSL_write(s, "y", 1);
	used += cpu_now() - t0;
	SSL_read(c, buf, sizeof(buf));	/* takes the ticket in too */
	reused = SSL_session_reused(s) == 1;
	t0 = cpu_now();
	SSL_free(s);
	used += cpu_now() - t0;
	s = NULL;
	if (reused) {
		t->resumed++;
		t->resumed_s += used;
	} else {
		t->full++;
		t->full_s += used;
	}
	if (!SSL_session_reused(c)) {
		SSL_SESSION *next = SSL_get1_session(c);

		if (next && SSL_SESSION_is_resumable(next)) {
			SSL_SESSION_free(*ticket);
			*ticket = next;
		} else {
			SSL_SESSION_free(next);
		}
	}
	SSL_shutdown(c);	/* else SSL_free marks the session unusable */
	rc = 0;
out:
	if (rc)
		fail("handshake failed");
	SSL_free(s);
	SSL_free(c);
	return rc;
}

static void usage(void)
{
	fputs("usage: tls_handshake [-n HANDSHAKES] [-r] CERT KEY\n", stderr);
	exit(2);
}

int main(int argc, char **argv)
{
	struct totals t = { 0 };
	SSL_SESSION *ticket = NULL;
	SSL_CTX *sctx, *cctx;
	long n = 2000;
	bool resume = false;
	int opt;

	while ((opt = getopt(argc, argv, "n:r")) != -1) {
		switch (opt) {
		case 'n': n = atol(optarg); break;
		case 'r': resume = true; break;
		default: usage();
		}
	}
	if (argc - optind != 2 || n < 1)
		usage();
	sctx = tls_ctx_new(argv[optind], argv[optind + 1]);
	cctx = SSL_CTX_new(TLS_client_method());
	if (!sctx || !cctx)
		return 1;
	SSL_CTX_set_session_cache_mode(cctx, SSL_SESS_CACHE_CLIENT |
					     SSL_SESS_CACHE_NO_INTERNAL_STORE);
	for (long i = 0; i < n; i++)
		if (one(sctx, cctx, &ticket, resume && (i & 1), &t) != 0)
			return 1;
	printf("full handshakes: %ld, server CPU %.1f us each\n", t.full,
	       t.full ? t.full_s / (double)t.full * 1e6 : 0.0);
	if (resume)
		printf("resumed handshakes: %ld, server CPU %.1f us each\n",
		       t.resumed, t.resumed ? t.resumed_s / (double)t.resumed * 1e6 : 0.0);
	SSL_SESSION_free(ticket);
	SSL_CTX_free(cctx);
	SSL_CTX_free(sctx);
	return 0;
}
