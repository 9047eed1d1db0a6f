/*
 * node_frame.h - the integers and strings of node link frames
 * (node_link.h's format), written into a buffer and read from a frame's
 * body. Integers are big-endian; a string is a u16 length and its bytes.
 */
#ifndef STARLING_NODE_FRAME_H
#define STARLING_NODE_FRAME_H

#include "node_link.h"
#include "util.h"

#include <stdint.h>
#include <string.h>

static inline void put_u16(struct sbuf *b, unsigned v)
{
	char p[2] = { (char)(v >> 8), (char)v };

	sbuf_add(b, p, 2);
}

static inline void put_u32(struct sbuf *b, uint32_t v)
{
	char p[4] = { (char)(v >> 24), (char)(v >> 16), (char)(v >> 8), (char)v };

	sbuf_add(b, p, 4);
}

static inline void put_str(struct sbuf *b, const char *s)
{
	size_t n = strlen(s);

	if (n > 0xffff)
		n = 0xffff;	/* JIDs, ids and names are far shorter */
	put_u16(b, (unsigned)n);
	sbuf_add(b, s, n);
}

/* Starts a frame of type in b: returns where, for frame_end. */
static inline size_t frame_begin(struct sbuf *b, enum node_frame type)
{
	size_t at = b->len;

	put_u32(b, 0);
	sbuf_addc(b, (char)type);
	return at;
}

static inline void frame_end(struct sbuf *b, size_t at)
{
	uint32_t n = (uint32_t)(b->len - at - 4);
	unsigned char *p = (unsigned char *)b->p + at;

	p[0] = (unsigned char)(n >> 24);
	p[1] = (unsigned char)(n >> 16);
	p[2] = (unsigned char)(n >> 8);
	p[3] = (unsigned char)n;
}

/* A frame's body being read. */
struct cursor {
	const unsigned char *p, *end;
};

static inline bool get_u8(struct cursor *c, unsigned *v)
{
	if (c->end - c->p < 1)
		return false;
	*v = *c->p++;
	return true;
}

static inline bool get_u16(struct cursor *c, unsigned *v)
{
	if (c->end - c->p < 2)
		return false;
	*v = (unsigned)c->p[0] << 8 | c->p[1];
	c->p += 2;
	return true;
}

static inline bool get_u32(struct cursor *c, uint32_t *v)
{
	if (c->end - c->p < 4)
		return false;
	*v = (uint32_t)c->p[0] << 24 | (uint32_t)c->p[1] << 16 |
	     (uint32_t)c->p[2] << 8 | c->p[3];
	c->p += 4;
	return true;
}

/* A string into buf (NUL-terminated); false when it does not fit. */
static inline bool get_str(struct cursor *c, char *buf, size_t cap)
{
	unsigned n;

	if (!get_u16(c, &n) || (size_t)(c->end - c->p) < n || n >= cap ||
	    memchr(c->p, '\0', n))
		return false;
	memcpy(buf, c->p, n);
	buf[n] = '\0';
	c->p += n;
	return true;
}

static inline uint32_t frame_size(const char *p)
{
	const unsigned char *u = (const unsigned char *)p;

	return (uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3];
}


#endif
