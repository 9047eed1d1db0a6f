/*
 * lx_alloc.c - the Lua state's allocator: small blocks kept for reuse.
 *
 * Every stanza a Lua handler sees allocates a few dozen small objects
 * (the event table, strings, session lists, proxies) that die young and
 * are freed in bulk by the collector. Through malloc that pattern misses
 * glibc's per-thread cache (seven blocks a size) and lands in its bins:
 * _int_malloc, _int_free and consolidation were a fifth of the server's
 * CPU in open-loop chat (issue #25). Lua tells its allocator the size of
 * every block it frees or resizes, so blocks need no header: a freed block
 * of up to LXA_SMALL_MAX bytes goes on the free list of its size class
 * (16-byte steps) and the next allocation of that class takes it back.
 *
 * The lists hold at most LXA_CACHE_MAX bytes in all (beyond that, free()
 * as before); lx_alloc_trim() gives them all back to malloc, run with the
 * server's periodic and after-burst malloc_trim so idle memory is not
 * kept. Under AddressSanitizer nothing is kept: every block goes through
 * malloc so use after free is still caught.
 */
#include "lx.h"

#include <stdlib.h>
#include <string.h>

#define LXA_GRAIN 16
#define LXA_SMALL_MAX 512
#define LXA_CLASSES (LXA_SMALL_MAX / LXA_GRAIN)
#define LXA_CACHE_MAX ((size_t)8 << 20)

struct lxa_free {
	struct lxa_free *next;
};

static struct lxa_free *lxa_lists[LXA_CLASSES];
static size_t lxa_cached;	/* bytes on the lists */

/* The class of a block of n bytes (1 <= n <= LXA_SMALL_MAX): 0..31. */
static inline unsigned lxa_class(size_t n)
{
	return (unsigned)((n - 1) / LXA_GRAIN);
}

#ifdef __SANITIZE_ADDRESS__
#define LXA_KEEP 0
#else
#define LXA_KEEP 1
#endif

static void *small_get(size_t n)
{
	unsigned k = lxa_class(n);
	struct lxa_free *b = lxa_lists[k];

	if (LXA_KEEP && b) {
		/* the blocks were freed in bulk by the collector, long ago:
		 * fetch the next one's line now, so the next allocation of
		 * the class does not wait for memory to read its link */
		lxa_lists[k] = b->next;
		if (b->next)
			__builtin_prefetch(b->next, 1);
		lxa_cached -= (k + 1) * LXA_GRAIN;
		return b;
	}
	/* the class's full size, so any size of the class fits when reused */
	return malloc((k + 1) * LXA_GRAIN);
}

static void small_put(void *p, size_t n)
{
	unsigned k = lxa_class(n);
	size_t size = (k + 1) * LXA_GRAIN;
	struct lxa_free *b = p;

	if (!LXA_KEEP || lxa_cached + size > LXA_CACHE_MAX) {
		free(p);
		return;
	}
	b->next = lxa_lists[k];
	lxa_lists[k] = b;
	lxa_cached += size;
}

/* lua_Alloc: with ptr NULL, osize is the kind of object, not a size. */
void *lx_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	void *q;

	(void)ud;
	if (!ptr) {
		if (nsize == 0)
			return NULL;
		return nsize <= LXA_SMALL_MAX ? small_get(nsize) : malloc(nsize);
	}
	if (nsize == 0) {
		if (osize <= LXA_SMALL_MAX)
			small_put(ptr, osize);
		else
			free(ptr);
		return NULL;
	}
	if (osize > LXA_SMALL_MAX && nsize > LXA_SMALL_MAX)
		return realloc(ptr, nsize);
	if (osize <= LXA_SMALL_MAX && nsize <= LXA_SMALL_MAX &&
	    lxa_class(osize) == lxa_class(nsize))
		return ptr;	/* the block is the class's full size */
	q = nsize <= LXA_SMALL_MAX ? small_get(nsize) : malloc(nsize);
	if (!q)
		return NULL;	/* Lua keeps ptr */
	memcpy(q, ptr, osize < nsize ? osize : nsize);
	if (osize <= LXA_SMALL_MAX)
		small_put(ptr, osize);
	else
		free(ptr);
	return q;
}

void lx_alloc_trim(void)
{
	for (unsigned k = 0; k < LXA_CLASSES; k++) {
		while (lxa_lists[k]) {
			struct lxa_free *b = lxa_lists[k];

			lxa_lists[k] = b->next;
			free(b);
		}
	}
	lxa_cached = 0;
}
