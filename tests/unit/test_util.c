/* test_util.c - base64, ct_memcmp, sbuf, random_id and UTF-8
 * (core/base/util.c). */
#include "harness.h"
#include "util.h"

#include <errno.h>
#include <stdlib.h>

/* RFC 4648 section 10 */
static const struct {
	const char *raw, *b64;
} vectors[] = {
	{ "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

static void test_b64_vectors(void)
{
	struct sbuf b;

	sbuf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(vectors); i++) {
		sbuf_reset(&b);
		b64_encode(&b, vectors[i].raw, strlen(vectors[i].raw));
		CHECK_STR(b.p ? b.p : "", vectors[i].b64);
		CHECK(b.len == strlen(vectors[i].b64));
		sbuf_reset(&b);
		CHECK(b64_decode(&b, vectors[i].b64,
				 strlen(vectors[i].b64)) == 0);
		CHECK(b.len == strlen(vectors[i].raw));
		CHECK(b.len == 0 || memcmp(b.p, vectors[i].raw, b.len) == 0);
	}
	sbuf_free(&b);
}

static void test_b64_binary(void)
{
	unsigned char all[256];
	struct sbuf e, d;

	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	sbuf_init(&e);
	sbuf_init(&d);
	for (size_t n = 0; n <= 256; n += 1 + n / 8) {
		sbuf_reset(&e);
		sbuf_reset(&d);
		b64_encode(&e, all + 256 - n, n);
		CHECK(e.len == (n + 2) / 3 * 4);
		CHECK(b64_decode(&d, e.p, e.len) == 0);
		CHECK(d.len == n && (n == 0 || memcmp(d.p, all + 256 - n, n) == 0));
	}
	/* both extra characters of the alphabet */
	sbuf_reset(&e);
	b64_encode(&e, "\xfb\xff\xbf", 3);
	CHECK_STR(e.p, "+/+/");
	/* encode appends */
	b64_encode(&e, "f", 1);
	CHECK_STR(e.p, "+/+/Zg==");
	sbuf_free(&e);
	sbuf_free(&d);
}

static void test_b64_invalid(void)
{
	static const char *const bad[] = {
		"Z", "Zg", "Zg=", "Zm9", "Zg===", "====", "Z===", "Zg==Zg==",
		"Zm=v", "Zm9v Yg==", "Zm9v\nYg==", "Zm9-", "Zm9_", "Zm9v*A==",
		"Zh==",		/* non-zero bits after the last byte */
		"Zm9=",		/* the same, with one '=' */
		"=Zg=", "==", "AAAAA",
	};
	struct sbuf b;

	sbuf_init(&b);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		sbuf_reset(&b);
		if (b64_decode(&b, bad[i], strlen(bad[i])) != -EINVAL) {
			fprintf(stderr, "  accepted: \"%s\"\n", bad[i]);
			h_cur_failed = 1;
		}
	}
	/* SASL's empty response */
	sbuf_reset(&b);
	CHECK(b64_decode(&b, "=", 1) == 0 && b.len == 0);
	/* a NUL in the input is not base64 */
	CHECK(b64_decode(&b, "Zg\0=", 4) == -EINVAL);
	/* only n bytes are read */
	sbuf_reset(&b);
	CHECK(b64_decode(&b, "Zm9vXXXX", 4) == 0 && b.len == 3);
	sbuf_free(&b);
}

static void test_ct_memcmp(void)
{
	unsigned char a[64], b[64];

	for (int i = 0; i < 64; i++)
		a[i] = b[i] = (unsigned char)(i * 7);
	CHECK(ct_memcmp(a, b, 64) == 0);
	CHECK(ct_memcmp(a, b, 0) == 0);
	for (int i = 0; i < 64; i++) {
		b[i] ^= 0x80;
		CHECK(ct_memcmp(a, b, 64) != 0);
		b[i] ^= 0x80;
		b[i] ^= 0x01;
		CHECK(ct_memcmp(a, b, 64) != 0);
		CHECK(ct_memcmp(a, b, (size_t)i) == 0);
		b[i] ^= 0x01;
	}
}

static void test_sbuf(void)
{
	struct sbuf b;

	sbuf_init(&b);
	CHECK(b.len == 0);
	sbuf_adds(&b, "abc");
	sbuf_addc(&b, 'd');
	sbuf_add(&b, "e\0f", 3);
	CHECK(b.len == 7 && memcmp(b.p, "abcde\0f", 7) == 0 && b.p[7] == '\0');
	sbuf_reset(&b);
	CHECK(b.len == 0 && b.p[0] == '\0');
	for (int i = 0; i < 1000; i++)
		sbuf_printf(&b, "%d,", i);
	CHECK(b.len == strlen(b.p) && b.cap > b.len);
	CHECK(strncmp(b.p, "0,1,2,", 6) == 0);
	CHECK(strcmp(b.p + b.len - 4, "999,") == 0);
	sbuf_free(&b);
	CHECK(b.p == NULL && b.len == 0 && b.cap == 0);
}

static void test_random_id(void)
{
	char a[41], b[41];

	random_id(a, 40);
	random_id(b, 40);
	CHECK(strlen(a) == 40 && strlen(b) == 40);
	CHECK(strcmp(a, b) != 0);
	for (int i = 0; i < 40; i++)
		CHECK((a[i] >= 'a' && a[i] <= 'z') || (a[i] >= 'A' && a[i] <= 'Z') ||
		      (a[i] >= '0' && a[i] <= '9'));
	random_id(a, 0);
	CHECK(a[0] == '\0');
}

/* A byte string with its length (embedded NULs count). */
struct bytes {
	const char *s;
	size_t n;
};
#define B(lit) { lit, sizeof(lit) - 1 }

static void test_utf8_valid_sequences(void)
{
	static const struct {
		struct bytes in;
		size_t len;
		uint32_t cp;
	} ok[] = {
		{ B("\0"), 1, 0 },
		{ B("A"), 1, 0x41 },
		{ B("\x7f"), 1, 0x7f },
		{ B("\xc2\x80"), 2, 0x80 },		/* smallest 2-byte */
		{ B("\xc3\xa9"), 2, 0xe9 },
		{ B("\xdf\xbf"), 2, 0x7ff },
		{ B("\xe0\xa0\x80"), 3, 0x800 },		/* smallest 3-byte */
		{ B("\xe2\x82\xac"), 3, 0x20ac },
		{ B("\xed\x9f\xbf"), 3, 0xd7ff },		/* just below surrogates */
		{ B("\xee\x80\x80"), 3, 0xe000 },		/* just above */
		{ B("\xef\xbf\xbf"), 3, 0xffff },
		{ B("\xf0\x90\x80\x80"), 4, 0x10000 },	/* smallest 4-byte */
		{ B("\xf0\x9f\x98\x80"), 4, 0x1f600 },
		{ B("\xf4\x8f\xbf\xbf"), 4, 0x10ffff },	/* the last code point */
	};
	uint32_t cp;

	for (size_t i = 0; i < ARRAY_SIZE(ok); i++) {
		cp = 0xdeadbeef;
		CHECK(utf8_decode((const unsigned char *)ok[i].in.s, ok[i].in.n,
				  &cp) == ok[i].len);
		CHECK(cp == ok[i].cp);
		CHECK(utf8_valid(ok[i].in.s, ok[i].in.n));
	}
	/* A decode reads one sequence and leaves what follows. */
	CHECK(utf8_decode((const unsigned char *)"\xc3\xa9z", 3, &cp) == 2);
	CHECK(cp == 0xe9);
	CHECK(utf8_valid("", 0));
	CHECK(utf8_valid("a\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\0b", 12));
}

static void test_utf8_invalid_sequences(void)
{
	static const struct bytes bad[] = {
		/* overlong forms */
		B("\xc0\x80"), B("\xc1\xbf"), B("\xe0\x80\x80"),
		B("\xe0\x9f\xbf"), B("\xf0\x80\x80\x80"),
		B("\xf0\x8f\xbf\xbf"),
		/* surrogates, alone and as a CESU-8 pair */
		B("\xed\xa0\x80"), B("\xed\xbf\xbf"),
		B("\xed\xa0\xbd\xed\xb8\x80"),
		/* past U+10FFFF */
		B("\xf4\x90\x80\x80"), B("\xf5\x80\x80\x80"),
		B("\xf7\xbf\xbf\xbf"), B("\xf8\x88\x80\x80\x80"),
		B("\xfc\x84\x80\x80\x80\x80"), B("\xfe"), B("\xff"),
		/* truncated */
		B("\xc3"), B("\xe2\x82"), B("\xe2"), B("\xf0\x9f\x98"),
		B("\xf0"),
		/* stray or missing continuation bytes */
		B("\x80"), B("\xbf"), B("\xc3\x41"), B("\xe2\x28\xac"),
		B("\xe2\x82\x28"), B("\xf0\x9f\x28\x80"),
	};
	uint32_t cp;

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		CHECK(utf8_decode((const unsigned char *)bad[i].s, bad[i].n,
				  &cp) == 0);
		CHECK(!utf8_valid(bad[i].s, bad[i].n));
	}
	/* n cuts a good sequence short; a bad one after good text. */
	CHECK(utf8_decode((const unsigned char *)"\xe2\x82\xac", 2, &cp) == 0);
	CHECK(utf8_decode((const unsigned char *)"a", 0, &cp) == 0);
	CHECK(utf8_valid("ok \xe2\x82\xac \xf0\x9f\x98\x80", 11));
	CHECK(!utf8_valid("ok \xe2\x82\xac \xf0\x9f\x98\x80", 10));
	CHECK(!utf8_valid("ok \xc0\xaf", 5));
	CHECK(utf8_valid("ok \xc0\xaf", 3));
}

int main(void)
{
	RUN(test_b64_vectors);
	RUN(test_b64_binary);
	RUN(test_b64_invalid);
	RUN(test_ct_memcmp);
	RUN(test_sbuf);
	RUN(test_random_id);
	RUN(test_utf8_valid_sequences);
	RUN(test_utf8_invalid_sequences);
	TEST_END();
}
