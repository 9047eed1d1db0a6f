/* util.c - the load generator's buffers, base64, clock and random numbers. */
#include "lg.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/evp.h>

#define BUF_KEEP 16384	/* an emptied buffer bigger than this gives its memory back */

static void oom(void)
{
	fputs("loadgen: out of memory\n", stderr);
	abort();
}

void *lg_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p)
		oom();
	return p;
}

void *lg_xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (!p)
		oom();
	return p;
}

char *lg_xstrdup(const char *s)
{
	char *p = strdup(s);

	if (!p)
		oom();
	return p;
}

void lg_buf_reserve(struct lg_buf *b, size_t extra)
{
	size_t need = b->len + extra + 1;
	size_t cap;
	char *p;

	if (need <= b->cap)
		return;
	if (b->off > 0 && need - b->off <= b->cap) {
		memmove(b->p, b->p + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		return;
	}
	cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		oom();
	b->p = p;
	b->cap = cap;
}

void lg_buf_add(struct lg_buf *b, const void *data, size_t n)
{
	lg_buf_reserve(b, n);
	memcpy(b->p + b->len, data, n);
	b->len += n;
	b->p[b->len] = '\0';
}

void lg_buf_adds(struct lg_buf *b, const char *s)
{
	lg_buf_add(b, s, strlen(s));
}

void lg_buf_addu(struct lg_buf *b, uint64_t v)
{
	char tmp[24];
	int i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	lg_buf_add(b, tmp + i, sizeof(tmp) - (size_t)i);
}

void lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n;

	lg_buf_reserve(b, 128);
	room = b->cap - b->len;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->len, room, fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->p[b->len] = '\0';
		return;
	}
	if ((size_t)n >= room) {
		lg_buf_reserve(b, (size_t)n);
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	b->len += (size_t)n;
}

void lg_buf_reset(struct lg_buf *b)
{
	if (b->cap > BUF_KEEP) {
		lg_buf_free(b);
		return;
	}
	b->len = 0;
	b->off = 0;
	if (b->p)
		b->p[0] = '\0';
}

void lg_buf_free(struct lg_buf *b)
{
	free(b->p);
	b->p = NULL;
	b->len = b->cap = b->off = 0;
}

void lg_b64_encode(struct lg_buf *out, const void *data, size_t n)
{
	size_t need = 4 * ((n + 2) / 3);

	lg_buf_reserve(out, need);
	EVP_EncodeBlock((unsigned char *)out->p + out->len, data, (int)n);
	out->len += need;
	out->p[out->len] = '\0';
}

int lg_b64_decode(unsigned char *out, size_t cap, const char *in, size_t n)
{
	int len, pad = 0;

	while (n > 0 && (in[n - 1] == ' ' || in[n - 1] == '\n' || in[n - 1] == '\r' ||
			 in[n - 1] == '\t'))
		n--;
	while (n > 0 && (*in == ' ' || *in == '\n' || *in == '\r' || *in == '\t')) {
		in++;
		n--;
	}
	if (n == 1 && in[0] == '=')
		return 0;
	if (n % 4 != 0 || (n / 4) * 3 > cap)
		return -1;
	if (n == 0)
		return 0;
	if (in[n - 1] == '=')
		pad++;
	if (in[n - 2] == '=')
		pad++;
	len = EVP_DecodeBlock(out, (const unsigned char *)in, (int)n);
	if (len < 0)
		return -1;
	return len - pad;
}

void lg_xml_escape(struct lg_buf *out, const char *s)
{
	const char *run = s;

	for (; *s; s++) {
		const char *rep;

		switch (*s) {
		case '&': rep = "&amp;"; break;
		case '<': rep = "&lt;"; break;
		case '>': rep = "&gt;"; break;
		case '\'': rep = "&apos;"; break;
		case '"': rep = "&quot;"; break;
		default: continue;
		}
		lg_buf_add(out, run, (size_t)(s - run));
		lg_buf_adds(out, rep);
		run = s + 1;
	}
	lg_buf_add(out, run, (size_t)(s - run));
}

uint64_t lg_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lg_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545F4914F6CDD1Dull;
}
