/*
 * util.h - small helpers shared by every subsystem of the core.
 *
 * sbuf:  a growable byte buffer (len bytes used of cap), always kept
 *        NUL-terminated so it can be handed to string functions.
 * x*:    allocation wrappers; allocation failure in the core aborts.
 * utf8:  the one check for well-formed UTF-8 (RFC 3629) in the tree.
 */
#ifndef STARLING_UTIL_H
#define STARLING_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#define STARLING_VERSION "0.1.0"
/* The config file read without -c (make DEFAULT_CONFIG=... sets it; the
 * Debian package's is /etc/starling/starling.cfg.lua). */
#ifndef STARLING_DEFAULT_CONFIG
#define STARLING_DEFAULT_CONFIG "starling.cfg"
#endif

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))
#define UNUSED(x) ((void)(x))

void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

struct sbuf {
	char *p;
	size_t len;
	size_t cap;
};

void sbuf_init(struct sbuf *b);
void sbuf_free(struct sbuf *b);
void sbuf_reset(struct sbuf *b);		/* len = 0, keeps memory */
/* Done with a scratch buffer kept between calls: len = 0, and its memory
 * freed when it grew past keep bytes (one big value does not stay). */
void sbuf_recycle(struct sbuf *b, size_t keep);
void sbuf_reserve(struct sbuf *b, size_t extra);
void sbuf_add(struct sbuf *b, const void *data, size_t n);
void sbuf_adds(struct sbuf *b, const char *s);
void sbuf_addc(struct sbuf *b, char c);
void sbuf_printf(struct sbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Base64 (RFC 4648, with padding). decode returns -EINVAL on bad input;
 * an empty input decodes to nothing. "=" alone is SASL's empty response
 * and decodes to nothing too. */
void b64_encode(struct sbuf *out, const void *data, size_t n);
int b64_decode(struct sbuf *out, const char *in, size_t n);

/* Constant-time comparison; 0 when equal. */
int ct_memcmp(const void *a, const void *b, size_t n);

/* In a process just forked: forget the random bytes the parent drew
 * ahead, so the two never hand out the same ones. */
void random_forked(void);
/* Cryptographically random bytes (OpenSSL RAND_bytes); aborts on failure. */
void random_bytes(void *out, size_t n);
/* n random characters from [A-Za-z0-9] followed by NUL (out has n+1). */
void random_id(char *out, size_t n);

/* The well-formed UTF-8 sequence at s (RFC 3629): its length (1-4) with
 * the code point in *cp, or 0 for a stray or invalid byte, an overlong
 * form, a surrogate (U+D800-DFFF), a value past U+10FFFF, or a sequence
 * longer than the n bytes left. ASCII (NUL included) is 1 byte. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);
/* True when all n bytes of s are well-formed UTF-8 sequences. */
bool utf8_valid(const char *s, size_t n);

/* Monotonic clock in seconds. */
double now_mono(void);
/* Wall clock in seconds since the epoch. */
double now_wall(void);

#endif
