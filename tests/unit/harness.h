/*
 * harness.h - the C unit test harness: CHECK() records a failure and goes
 * on; TEST_MAIN() runs the listed tests and prints "N passed, N failed";
 * h_rm_tree() removes a test's temporary directory.
 */
#ifndef STARLING_HARNESS_H
#define STARLING_HARNESS_H

#include <ftw.h>
#include <stdio.h>
#include <string.h>

static int h_passed, h_failed, h_cur_failed;

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "  %s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
		h_cur_failed = 1; \
	} \
} while (0)

#define CHECK_STR(a, b) do { \
	const char *h_a = (a), *h_b = (b); \
	if (!h_a || !h_b || strcmp(h_a, h_b) != 0) { \
		fprintf(stderr, "  %s:%d: %s\n    got:      %s\n    expected: %s\n", \
			__FILE__, __LINE__, #a, h_a ? h_a : "(null)", h_b ? h_b : "(null)"); \
		h_cur_failed = 1; \
	} \
} while (0)

#define RUN(fn) do { \
	h_cur_failed = 0; \
	fn(); \
	if (h_cur_failed) { h_failed++; fprintf(stderr, "FAIL %s\n", #fn); } \
	else { h_passed++; } \
} while (0)

#define TEST_END() do { \
	printf("%s: %d passed, %d failed\n", __FILE__, h_passed, h_failed); \
	return h_failed ? 1 : 0; \
} while (0)

static inline int h_rm_one(const char *path, const struct stat *sb, int flag,
			   struct FTW *ftw)
{
	return remove(path);
}

/* Removes the tree at path and all below it (a test's temporary
 * directory); what cannot be removed stays. */
static inline void h_rm_tree(const char *path)
{
	nftw(path, h_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
