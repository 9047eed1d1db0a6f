/*
 * store_both.h - runs a store unit test on every engine: RUN_BOTH(fn)
 * calls fn with E set to LMDB, then to memory, then (when the
 * environment has STARLING_TEST_PG, a libpq conninfo of a scratch
 * database: tests/conversation/test_storage_pg.py starts one) to
 * PostgreSQL, and counts it once (a failure names the engine it failed
 * on). A test's fresh() calls both_fresh() after opening LMDB. Include
 * after harness.h and store.h.
 */
#ifndef STARLING_STORE_BOTH_H
#define STARLING_STORE_BOTH_H

#include <stdlib.h>

static const struct store_engine *E;	/* the engine under test */

/* PostgreSQL open (store_close closed it) and empty, when under test. */
static void both_fresh(void)
{
	const char *ci = getenv("STARLING_TEST_PG");

	if (!ci || !*ci)
		return;
	CHECK(store_pg_open(ci) == 0);
	CHECK(store_pg_clear() == 0);
}

static void run_both(void (*fn)(void), const char *name)
{
	const char *ci = getenv("STARLING_TEST_PG");

	E = &store_lmdb;
	fn();
	if (h_cur_failed)
		fprintf(stderr, "  (%s on lmdb)\n", name);
	E = &store_memory;
	fn();
	if (h_cur_failed)
		fprintf(stderr, "  (%s on memory)\n", name);
	if (!ci || !*ci)
		return;
	E = &store_pg;
	fn();
	if (h_cur_failed)
		fprintf(stderr, "  (%s on postgresql)\n", name);
}

#define RUN_BOTH(fn) do { \
	h_cur_failed = 0; \
	run_both(fn, #fn); \
	if (h_cur_failed) { h_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
	else { h_passed++; } \
} while (0)

#endif
