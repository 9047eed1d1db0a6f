/*
 * store_both.h - runs a store unit test on both engines: RUN_BOTH(fn) calls
 * fn with E set to LMDB, then to memory, and counts it once (a failure
 * names the engine it failed on). Include after harness.h and store.h.
 */
#ifndef STARLING_STORE_BOTH_H
#define STARLING_STORE_BOTH_H

static const struct store_engine *E;	/* the engine under test */

static void run_both(void (*fn)(void), const char *name)
{
	E = &store_lmdb;
	fn();
	if (h_cur_failed)
		fprintf(stderr, "  (%s on lmdb)\n", name);
	E = &store_memory;
	fn();
	if (h_cur_failed)
		fprintf(stderr, "  (%s on memory)\n", name);
}

#define RUN_BOTH(fn) do { \
	h_cur_failed = 0; \
	run_both(fn, #fn); \
	if (h_cur_failed) { h_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
	else { h_passed++; } \
} while (0)

#endif
