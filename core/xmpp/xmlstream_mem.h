/*
 * xmlstream_mem.h - the memory expat uses for a stream's parser; only
 * xmlstream.c uses it.
 *
 * A stream's parser is freed when the stream goes quiet, and its memory
 * must really leave the process then, not stay as holes between
 * long-lived allocations. So each parser allocates from a pool of its
 * own: chunks of mmap'd pages, unmapped whole when the parser goes. The
 * object that owns the parser (struct xs) lives in the pool's first
 * chunk, so freeing a parser leaves nothing behind on the heap either.
 *
 * Words used here:
 *   pool    a parser's chunks, a list its owner keeps (struct pool_chunk *)
 *   chunk   POOL_CHUNK bytes of pages, or more for one big block
 *   spare   standard chunks of freed parsers, kept for the next streams
 *           (xs_mem_trim() gives them back)
 *   inside  between xs_mem_enter() and xs_mem_leave(): expat's
 *           allocations go to that pool. Every call into expat for a
 *           parser (create, parse, resume, reset, free) runs inside.
 *
 * Under AddressSanitizer there are no pools: expat and the owner live on
 * the heap, where ASan can watch them.
 */
#ifndef STARLING_XMLSTREAM_MEM_H
#define STARLING_XMLSTREAM_MEM_H

#include <stddef.h>
#include <expat.h>

struct pool_chunk;

/* size zeroed bytes at the start of a new pool (stored in *pool); aborts
 * when out of memory. */
void *xs_mem_new(size_t size, struct pool_chunk **pool);
/* Frees obj (from xs_mem_new) and every chunk of its pool. */
void xs_mem_free(void *obj, struct pool_chunk *pool);

/* A namespace-aware parser (names joined with sep) whose memory comes
 * from the pool it is inside of; NULL when out of memory. Call inside. */
XML_Parser xs_mem_parser_create(XML_Char sep);

/* Bytes of pages the pool holds (0 under AddressSanitizer). */
size_t xs_mem_pool_size(const struct pool_chunk *pool);
/* Unmaps the spare chunks. */
void xs_mem_trim(void);

/* Expat's allocations go to *pool until xs_mem_leave(). */
void xs_mem_enter(struct pool_chunk **pool);
void xs_mem_leave(void);

#endif
