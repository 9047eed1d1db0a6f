/* util.c - allocation, growable buffers, base64, randomness, UTF-8,
 * clocks. */
#include "util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

static void oom(void)
{
	fputs("starling: out of memory\n", stderr);
	abort();
}

void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

void *xrealloc(void *p, size_t n)
{
	p = realloc(p, n ? n : 1);
	if (!p)
		oom();
	return p;
}

char *xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
	char *p = xmalloc(n + 1);

	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

void sbuf_init(struct sbuf *b)
{
	b->p = NULL;
	b->len = 0;
	b->cap = 0;
}

void sbuf_free(struct sbuf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = 0;
}

void sbuf_recycle(struct sbuf *b, size_t keep)
{
	if (b->cap > keep)
		sbuf_free(b);
	else
		sbuf_reset(b);
}

void sbuf_reset(struct sbuf *b)
{
	b->len = 0;
	if (b->p)
		b->p[0] = '\0';
}

void sbuf_reserve(struct sbuf *b, size_t extra)
{
	size_t need = b->len + extra + 1;

	if (need <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 64;
	while (cap < need)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
	b->p[b->len] = '\0';	/* the first allocation, too */
}

void sbuf_add(struct sbuf *b, const void *data, size_t n)
{
	sbuf_reserve(b, n);
	if (n)
		memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void sbuf_adds(struct sbuf *b, const char *s)
{
	sbuf_add(b, s, strlen(s));
}

void sbuf_addc(struct sbuf *b, char c)
{
	sbuf_add(b, &c, 1);
}

void sbuf_printf(struct sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	sbuf_reserve(b, (size_t)n);
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

static const char b64chars[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void b64_encode(struct sbuf *out, const void *data, size_t n)
{
	const unsigned char *s = data;
	size_t i;

	sbuf_reserve(out, (n + 2) / 3 * 4);
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
		char q[4] = { b64chars[v >> 18], b64chars[(v >> 12) & 63],
			      b64chars[(v >> 6) & 63], b64chars[v & 63] };
		sbuf_add(out, q, 4);
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		char q[4] = { b64chars[v >> 18], b64chars[(v >> 12) & 63],
			      i + 1 < n ? b64chars[(v >> 6) & 63] : '=', '=' };
		sbuf_add(out, q, 4);
	}
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

int b64_decode(struct sbuf *out, const char *in, size_t n)
{
	uint32_t acc = 0;
	int bits = 0;
	size_t i, pad = 0, sig = 0;

	if (n == 1 && in[0] == '=')
		return 0;
	if (n % 4)
		return -EINVAL;
	for (i = 0; i < n; i++) {
		if (in[i] == '=') {
			pad++;
			continue;
		}
		if (pad)
			return -EINVAL;	/* data after padding */
		int v = b64_val(in[i]);
		if (v < 0)
			return -EINVAL;
		sig++;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			sbuf_addc(out, (char)((acc >> bits) & 0xff));
		}
	}
	if (pad > 2 || (sig + pad) % 4)
		return -EINVAL;
	if (bits && (acc & ((1u << bits) - 1)))
		return -EINVAL;	/* non-canonical trailing bits */
	return 0;
}

int ct_memcmp(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= x[i] ^ y[i];
	return d;
}

/* Bytes from OpenSSL's generator, drawn 512 at a time: one RAND_bytes
 * costs about 6,000 instructions and a getpid() (its fork check) however
 * few bytes it gives, and a login takes a few ids and a nonce. Bytes
 * handed out are wiped from the reserve; a forked worker throws away
 * what it inherited (random_forked), so no two processes share bytes. */
#define RANDOM_RESERVE 512

static unsigned char reserve[RANDOM_RESERVE];
static size_t left;

void random_forked(void)
{
	OPENSSL_cleanse(reserve, sizeof(reserve));
	left = 0;
}

void random_bytes(void *out, size_t n)
{
	unsigned char *o = out;

	while (n) {
		size_t k;

		if (!left) {
			if (RAND_bytes(reserve, sizeof(reserve)) != 1) {
				fputs("starling: RAND_bytes failed\n", stderr);
				abort();
			}
			left = sizeof(reserve);
		}
		k = MIN(n, left);
		memcpy(o, reserve + sizeof(reserve) - left, k);
		OPENSSL_cleanse(reserve + sizeof(reserve) - left, k);
		left -= k;
		o += k;
		n -= k;
	}
}

void random_id(char *out, size_t n)
{
	static const char cs[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
	unsigned char r[64];

	while (n) {
		size_t k = MIN(n, sizeof(r));
		random_bytes(r, k);
		for (size_t i = 0; i < k; i++)
			*out++ = cs[r[i] % 62];
		n -= k;
	}
	*out = '\0';
}

size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len, i;
	uint32_t c;

	if (n == 0)
		return 0;
	if (s[0] < 0x80) {
		*cp = s[0];
		return 1;
	}
	/* 0x80-0xc1 are continuation bytes or lead only overlong 2-byte
	 * forms; 0xf5 and up lead only values past U+10FFFF. */
	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (n < len)
		return 0;
	c = s[0] & (0x7f >> len);
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && c < 0x800) || (len == 4 && c < 0x10000) ||
	    c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
		return 0;
	*cp = c;
	return len;
}

bool utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k;
	uint32_t cp;

	while (i < n) {
		k = utf8_decode(p + i, n - i, &cp);
		if (!k)
			return false;
		i += k;
	}
	return true;
}

double now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double now_wall(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
