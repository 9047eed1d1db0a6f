/*
 * xmlstream_mem.c - expat's memory for stream parsers: a pool of mmap'd
 * chunks per parser (xmlstream_mem.h says why and the words used).
 */
#include "xmlstream_mem.h"
#include "xmlstream.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>

/* Blocks are never given back one by one: expat frees nothing we need
 * back before the parser itself (a realloc'd block's old space waits
 * too), and its buffers only grow up to the stanza size limit. */
#define POOL_CHUNK (16 * 1024)
#define POOL_MAGIC 0x5053u		/* from a pool */
#define HEAP_MAGIC 0x4845u		/* from malloc (outside any pool) */

struct pool_chunk {
	struct pool_chunk *next;
	size_t size, used;
};

struct block_hdr {
	size_t size;
	size_t magic;
};

static struct pool_chunk **mm_pool;	/* inside: the pool expat uses */

/* Standard chunks of parsers that went away wait here for the next
 * streams, at most SPARE_MAX (1 MiB): a login then costs no mmap,
 * munmap and page faults for its parser. xs_mem_trim, run with the periodic
 * and after-burst malloc_trim, gives them back. */
#define SPARE_MAX 64
static struct pool_chunk *spare;
static size_t n_spare;

/* A chunk of at least need bytes after its header, or NULL. */
static struct pool_chunk *pool_chunk_new(size_t need)
{
	size_t size = MAX((size_t)POOL_CHUNK, need + sizeof(struct pool_chunk));
	struct pool_chunk *c;

	size = (size + 4095) & ~(size_t)4095;
	if (size == POOL_CHUNK && spare) {
		c = spare;
		spare = c->next;
		n_spare--;
	} else {
		c = mmap(NULL, size, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (c == MAP_FAILED)
			return NULL;
	}
	c->next = NULL;
	c->size = size;
	c->used = (sizeof(*c) + 15) & ~(size_t)15;
	return c;
}

static void *pool_alloc(struct pool_chunk **pool, size_t n)
{
	size_t need = sizeof(struct block_hdr) + ((n + 15) & ~(size_t)15);
	struct pool_chunk *c = *pool;
	struct block_hdr *h;

	if (!c || c->size - c->used < need) {
		c = pool_chunk_new(need);
		if (!c)
			return NULL;
		c->next = *pool;
		*pool = c;
	}
	h = (struct block_hdr *)((char *)c + c->used);
	c->used += need;
	h->size = n;
	h->magic = POOL_MAGIC;
	return h + 1;
}

static void *mm_malloc(size_t n)
{
	struct block_hdr *h;

	if (mm_pool)
		return pool_alloc(mm_pool, n);
	h = malloc(sizeof(*h) + n);
	if (!h)
		return NULL;
	h->size = n;
	h->magic = HEAP_MAGIC;
	return h + 1;
}

static void mm_free(void *p)
{
	struct block_hdr *h = p ? (struct block_hdr *)p - 1 : NULL;

	if (h && h->magic == HEAP_MAGIC)
		free(h);
}

static void *mm_realloc(void *p, size_t n)
{
	struct block_hdr *h;
	void *q;

	if (!p)
		return mm_malloc(n);
	h = (struct block_hdr *)p - 1;
	if (n <= h->size && h->magic == POOL_MAGIC)
		return p;
	q = mm_malloc(n);
	if (!q)
		return NULL;
	memcpy(q, p, MIN(n, h->size));
	mm_free(p);
	return q;
}

static const XML_Memory_Handling_Suite mm_suite = {
	mm_malloc, mm_realloc, mm_free,
};

/* The chunks go, and with them the owner in the first one; one
 * standard chunk (all a login's parser uses) stays for the next stream,
 * so a parser that grew under an attack leaves no more behind than a
 * small one. */
static void pool_release(struct pool_chunk *c)
{
	bool kept = false;

	while (c) {
		struct pool_chunk *next = c->next;
		if (!kept && c->size == POOL_CHUNK && n_spare < SPARE_MAX) {
			c->next = spare;
			spare = c;
			n_spare++;
			kept = true;
		} else {
			munmap(c, c->size);
		}
		c = next;
	}
}

size_t xs_mem_pool_size(const struct pool_chunk *pool)
{
	size_t n = 0;

	for (; pool; pool = pool->next)
		n += pool->size;
	return n;
}

void xs_mem_trim(void)
{
	while (spare) {
		struct pool_chunk *c = spare;
		spare = c->next;
		munmap(c, c->size);
	}
	n_spare = 0;
}

void xs_mem_enter(struct pool_chunk **pool)
{
	mm_pool = pool;
}

void xs_mem_leave(void)
{
	mm_pool = NULL;
}

#ifdef __SANITIZE_ADDRESS__
void *xs_mem_new(size_t size, struct pool_chunk **pool)
{
	(void)mm_suite;
	*pool = NULL;
	return xcalloc(1, size);
}

XML_Parser xs_mem_parser_create(XML_Char sep)
{
	return XML_ParserCreateNS("UTF-8", sep);
}

void xs_mem_free(void *obj, struct pool_chunk *pool)
{
	pool_release(pool);	/* empty: expat used the heap */
	free(obj);
}
#else
void *xs_mem_new(size_t size, struct pool_chunk **pool)
{
	struct pool_chunk *c = pool_chunk_new(size + 16);
	void *obj;

	if (!c) {
		fputs("starling: out of memory (parser)\n", stderr);
		abort();
	}
	obj = (char *)c + c->used;
	c->used += (size + 15) & ~(size_t)15;
	memset(obj, 0, size);
	*pool = c;
	return obj;
}

XML_Parser xs_mem_parser_create(XML_Char sep)
{
	return XML_ParserCreate_MM("UTF-8", &mm_suite,
				   (const XML_Char[]){ sep, 0 });
}

void xs_mem_free(void *obj, struct pool_chunk *pool)
{
	(void)obj;		/* in the pool's first chunk */
	pool_release(pool);
}
#endif
