/*
 * hist.c - latency histogram with logarithmic buckets.
 *
 * Values below 2^SUB_BITS have a bucket each; above, every power of two is
 * split into 2^SUB_BITS equal sub-buckets, so a bucket is at most ~3% wide.
 * Adding a sample is a few instructions and never allocates.
 */
#include "lg.h"

#include <string.h>

#define SUB (1u << LG_HIST_SUB_BITS)

static unsigned bucket_of(uint64_t v)
{
	unsigned e;

	if (v < SUB)
		return (unsigned)v;
	e = 63u - (unsigned)__builtin_clzll(v);	/* e >= SUB_BITS */
	return ((e - LG_HIST_SUB_BITS + 1) << LG_HIST_SUB_BITS) +
	       (unsigned)((v >> (e - LG_HIST_SUB_BITS)) & (SUB - 1));
}

/* The largest value that falls into bucket i. */
static uint64_t bucket_top(unsigned i)
{
	unsigned e, sub;
	uint64_t lo;

	if (i < SUB)
		return i;
	e = (i >> LG_HIST_SUB_BITS) + LG_HIST_SUB_BITS - 1;
	sub = i & (SUB - 1);
	lo = ((uint64_t)(SUB + sub)) << (e - LG_HIST_SUB_BITS);
	return lo + (1ull << (e - LG_HIST_SUB_BITS)) - 1;
}

void lg_hist_add(struct lg_hist *h, uint64_t v)
{
	h->c[bucket_of(v)]++;
	h->n++;
	if (v > h->max)
		h->max = v;
}

void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from)
{
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++)
		into->c[i] += from->c[i];
	into->n += from->n;
	if (from->max > into->max)
		into->max = from->max;
}

uint64_t lg_hist_quantile(const struct lg_hist *h, double q)
{
	uint64_t want, seen = 0;

	if (h->n == 0)
		return 0;
	want = (uint64_t)(q * (double)h->n + 0.5);
	if (want < 1)
		want = 1;
	if (want > h->n)
		want = h->n;
	for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
		seen += h->c[i];
		if (seen >= want) {
			uint64_t top = bucket_top(i);

			return top < h->max ? top : h->max;
		}
	}
	return h->max;
}
