/*
 * selftest.c - "loadgen selftest": checks of what needs no server.
 *
 * SCRAM against the examples of RFC 5802 (SHA-1) and RFC 7677 (SHA-256),
 * the derived-key cache and its file, base64, XML escaping, JID numbers and
 * the histogram, WebSocket framing. The end-to-end check (a chat run against "loadgen serve")
 * is bench/selftest.sh.
 */
#include "lg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int passed, failed;

#define CHECK(cond) check((cond), #cond, __LINE__)

static void check(bool ok, const char *what, int line)
{
	if (ok) {
		passed++;
		return;
	}
	failed++;
	fprintf(stderr, "selftest.c:%d: failed: %s\n", line, what);
}

/* base64 of a C string */
static void b64(struct lg_buf *out, const char *s)
{
	lg_buf_reset(out);
	lg_b64_encode(out, s, strlen(s));
}

/* The decoded text of a base64 buffer (static storage). */
static const char *unb64(const struct lg_buf *in)
{
	static char text[512];
	int n = lg_b64_decode((unsigned char *)text, sizeof(text) - 1, in->p, in->len);

	text[n < 0 ? 0 : n] = '\0';
	return text;
}

struct vector {
	enum lg_mech mech;
	const char *password, *cnonce, *first, *sfirst, *final, *sfinal;
};

static const struct vector vectors[] = {
	{ LG_MECH_SCRAM_SHA1, "pencil", "fyko+d2lbbFgONRv9qkxdawL",
	  "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
	  "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
	  "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,"
	  "p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
	  "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=" },
	{ LG_MECH_SCRAM_SHA256, "pencil", "rOprNGfwEbeRWgbNEkqO",
	  "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
	  "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
	  "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
	  "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
	  "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" },
};

static void test_scram_vector(const struct vector *v)
{
	struct lg_buf out = { 0 }, in = { 0 };
	struct lg_scram *st;

	lg_sasl_set_nonce(v->cnonce);
	lg_sasl_start(v->mech, "user", v->password, &st, &out);
	CHECK(st != NULL);
	CHECK(strcmp(unb64(&out), v->first) == 0);
	b64(&in, v->sfirst);
	lg_buf_reset(&out);
	CHECK(lg_sasl_step(st, in.p, &out) == 0);
	CHECK(strcmp(unb64(&out), v->final) == 0);
	b64(&in, v->sfinal);
	CHECK(lg_sasl_finish(st, in.p) == 0);
	lg_sasl_free(st);

	/* a wrong server signature, and a server nonce not extending ours */
	lg_sasl_start(v->mech, "user", v->password, &st, &out);
	b64(&in, v->sfirst);
	lg_buf_reset(&out);
	lg_sasl_step(st, in.p, &out);
	b64(&in, "v=AAAAAAAAAAAAAAAAAAAAAAAAAAA=");
	CHECK(lg_sasl_finish(st, in.p) != 0);
	CHECK(lg_sasl_finish(st, "") != 0);
	lg_sasl_free(st);
	lg_sasl_start(v->mech, "user", v->password, &st, &out);
	b64(&in, "r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096");
	CHECK(lg_sasl_step(st, in.p, &out) != 0);
	lg_sasl_free(st);
	lg_sasl_set_nonce(NULL);
	lg_buf_free(&out);
	lg_buf_free(&in);
}

static void test_scram(void)
{
	struct lg_buf out = { 0 }, in = { 0 };
	struct lg_scram *st;
	uint64_t before;
	char path[] = "/tmp/lg-selftest-XXXXXX";
	int fd;

	for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++)
		test_scram_vector(&vectors[i]);
	/* the keys of both vectors are cached now: no PBKDF2 for a repeat */
	before = lg_sasl_pbkdf2_count();
	test_scram_vector(&vectors[1]);
	CHECK(lg_sasl_pbkdf2_count() == before);

	/* the cache survives a save and a load */
	fd = mkstemp(path);
	CHECK(fd >= 0);
	if (fd >= 0)
		close(fd);
	CHECK(lg_sasl_cache_save(path) == 2);
	lg_sasl_cache_free();
	CHECK(lg_sasl_cache_load(path) == 2);
	before = lg_sasl_pbkdf2_count();
	test_scram_vector(&vectors[0]);
	test_scram_vector(&vectors[1]);
	CHECK(lg_sasl_pbkdf2_count() == before);
	unlink(path);
	lg_sasl_cache_free();

	/* saslname escaping; PLAIN */
	lg_sasl_set_nonce("abc");
	lg_sasl_start(LG_MECH_SCRAM_SHA1, "a=b,c", "x", &st, &out);
	CHECK(strcmp(unb64(&out), "n,,n=a=3Db=2Cc,r=abc") == 0);
	lg_sasl_free(st);
	lg_sasl_set_nonce(NULL);
	lg_buf_reset(&out);
	lg_sasl_start(LG_MECH_PLAIN, "u1", "p", &st, &out);
	CHECK(st == NULL);
	CHECK(out.len == 8 && memcmp(out.p, "AHUxAHA=", 8) == 0);
	CHECK(lg_sasl_finish(NULL, "") == 0);
	lg_buf_free(&out);
	lg_buf_free(&in);
}

static void test_b64_xml(void)
{
	struct lg_buf b = { 0 };
	unsigned char dec[16];

	b64(&b, "");
	CHECK(b.len == 0);
	b64(&b, "f");
	CHECK(strcmp(b.p, "Zg==") == 0);
	b64(&b, "fo");
	CHECK(strcmp(b.p, "Zm8=") == 0);
	b64(&b, "foobar");
	CHECK(strcmp(b.p, "Zm9vYmFy") == 0);
	CHECK(lg_b64_decode(dec, sizeof(dec), "Zm8=", 4) == 2 && memcmp(dec, "fo", 2) == 0);
	CHECK(lg_b64_decode(dec, sizeof(dec), " Zg==\n", 6) == 1 && dec[0] == 'f');
	CHECK(lg_b64_decode(dec, sizeof(dec), "=", 1) == 0);
	CHECK(lg_b64_decode(dec, sizeof(dec), "Zm9", 3) < 0);
	CHECK(lg_b64_decode(dec, 2, "Zm9vYmFy", 8) < 0);

	lg_buf_reset(&b);
	lg_xml_escape(&b, "a<b>&'\"c");
	CHECK(strcmp(b.p, "a&lt;b&gt;&amp;&apos;&quot;c") == 0);
	lg_buf_reset(&b);
	lg_buf_addu(&b, 0);
	lg_buf_adds(&b, " ");
	lg_buf_addu(&b, 18446744073709551615ull);
	CHECK(strcmp(b.p, "0 18446744073709551615") == 0);
	lg_buf_reset(&b);
	lg_buf_printf(&b, "%s-%d", "x", 42);
	lg_buf_printf(&b, "%0300d", 7);
	CHECK(b.len == 4 + 300 && strncmp(b.p, "x-42000", 7) == 0 && b.p[b.len - 1] == '7');
	lg_buf_free(&b);
}

static void test_jids(void)
{
	struct lg_buf b = { 0 };

	CHECK(lg_user_number("u12@localhost") == 12);
	CHECK(lg_user_number("u12@localhost/lg") == 12);
	CHECK(lg_user_number("u@localhost") == -1);
	CHECK(lg_user_number("x12@localhost") == -1);
	CHECK(lg_user_number("u12x@localhost") == -1);
	CHECK(lg_user_number("u12") == -1);
	CHECK(lg_user_number(NULL) == -1);
	lg_jid_add(&b, 7, false);
	CHECK(strcmp(b.p, "u7@localhost") == 0);
	lg_buf_reset(&b);
	lg_jid_add(&b, 7, true);
	CHECK(strcmp(b.p, "u7@localhost/lg") == 0);
	lg_buf_free(&b);
}

static bool near(uint64_t got, uint64_t want)
{
	double r = (double)got / (double)want;

	return r > 0.96 && r < 1.04;
}

static void test_hist(void)
{
	static struct lg_hist h, h2;

	memset(&h, 0, sizeof(h));
	CHECK(lg_hist_quantile(&h, 0.5) == 0);
	for (uint64_t v = 1; v <= 1000000; v++)
		lg_hist_add(&h, v);
	CHECK(h.n == 1000000 && h.max == 1000000);
	CHECK(near(lg_hist_quantile(&h, 0.5), 500000));
	CHECK(near(lg_hist_quantile(&h, 0.99), 990000));
	CHECK(near(lg_hist_quantile(&h, 0.999), 999000));
	CHECK(lg_hist_quantile(&h, 1.0) == 1000000);
	memset(&h2, 0, sizeof(h2));
	for (uint64_t v = 0; v < 32; v++)
		lg_hist_add(&h2, v);
	CHECK(lg_hist_quantile(&h2, 0.5) == 15 || lg_hist_quantile(&h2, 0.5) == 16);
	lg_hist_add(&h2, UINT64_MAX);
	CHECK(lg_hist_quantile(&h2, 1.0) == UINT64_MAX);
	lg_hist_merge(&h, &h2);
	CHECK(h.n == 1000033 && h.max == UINT64_MAX);
}

/* RFC 6455: the accept value of its example, a masked frame read back,
 * the three length forms, and element boundaries for one frame each. */
static void test_ws(void)
{
	static const char *const els[] = {
		"<presence/>",
		"<message to='u2@localhost' id='a&gt;b'><body>x &lt; y / z</body></message>",
		"<iq type='set' id='bind'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
		"<resource>lg</resource></bind></iq>",
		"<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='a>b' version='1.0'/>",
	};
	static const size_t sizes[] = { 0, 125, 126, 65535, 65536 };
	struct lg_buf b = { 0 };
	uint64_t rng = 42;
	char acc[29];
	size_t off = 0;

	lg_ws_accept("dGhlIHNhbXBsZSBub25jZQ==", acc);
	CHECK(strcmp(acc, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") == 0);
	for (size_t k = 0; k < sizeof(els) / sizeof(els[0]); k++)
		lg_buf_adds(&b, els[k]);
	for (size_t k = 0; k < sizeof(els) / sizeof(els[0]); k++) {
		size_t n = lg_ws_element_len(b.p + off, b.len - off);

		CHECK(n == strlen(els[k]));
		off += n;
	}
	CHECK(lg_ws_element_len("<message><body>hi</body>", 24) == 0);
	CHECK(lg_ws_element_len("<iq id='a", 9) == 0);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		size_t n = sizes[k], hl, len;
		char *data = lg_xmalloc(n + 1);
		const unsigned char *h, *mask;
		bool same = true;

		for (size_t i = 0; i < n; i++)
			data[i] = (char)('a' + i % 26);
		lg_buf_reset(&b);
		lg_ws_frame(&b, 1, data, n, &rng);
		h = (const unsigned char *)b.p;
		CHECK(h[0] == 0x81 && (h[1] & 0x80));
		len = h[1] & 0x7f;
		hl = 2;
		if (len == 126) {
			len = (size_t)h[2] << 8 | h[3];
			hl = 4;
		} else if (len == 127) {
			len = 0;
			for (int i = 0; i < 8; i++)
				len = len << 8 | h[2 + i];
			hl = 10;
		}
		CHECK(len == n && hl == (n < 126 ? 2u : n <= 0xffff ? 4u : 10u));
		CHECK(b.len == hl + 4 + n);
		mask = h + hl;
		for (size_t i = 0; i < n; i++)
			same &= (char)(h[hl + 4 + i] ^ mask[i & 3]) == data[i];
		CHECK(same);
		free(data);
	}
	lg_buf_free(&b);
}

int lg_selftest(void)
{
	g_opts.prefix = "u";
	g_opts.domain = "localhost";
	g_opts.resource = "lg";
	test_scram();
	test_b64_xml();
	test_jids();
	test_hist();
	test_ws();
	printf("loadgen: %d passed, %d failed\n", passed, failed);
	return failed;
}
