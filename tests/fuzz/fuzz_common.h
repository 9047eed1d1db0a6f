/*
 * fuzz_common.h - what the libFuzzer targets in tests/fuzz share.
 *
 * Each fuzz_<target>.c defines one entry point, FUZZ_ENTRY, which is
 * LLVMFuzzerTestOneInput unless the includer names it otherwise:
 * tests/unit/test_fuzz_regress.c includes every target into one program
 * (with FUZZ_ENTRY set to fuzz_<target>_one) to replay the seed corpora and
 * the regression inputs under plain gcc. So the targets' static names carry
 * a per-target prefix (xf_, sf_, jf_, vf_, cf_).
 *
 * A broken invariant is FUZZ_CHECK: print where and abort, which libFuzzer
 * reports as a crash (and the regression test as a failed program).
 */
#ifndef STARLING_FUZZ_COMMON_H
#define STARLING_FUZZ_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "stanza.h"

/* Whether two trees are the same: names, namespaces, attributes in order,
 * text. */
static inline bool fuzz_tree_equal(const struct st_node *a,
				   const struct st_node *b)
{
	const struct st_attr *x, *y;
	const struct st_node *c, *d;

	if (!a->name || !b->name)
		return !a->name && !b->name && a->len == b->len &&
		       memcmp(a->text, b->text, a->len) == 0;
	if (strcmp(a->name, b->name) != 0 || strcmp(a->ns, b->ns) != 0)
		return false;
	for (x = a->attrs, y = b->attrs; x && y; x = x->next, y = y->next)
		if (strcmp(x->name, y->name) != 0 ||
		    strcmp(x->value, y->value) != 0)
			return false;
	if (x || y)
		return false;
	for (c = a->first, d = b->first; c && d; c = c->next, d = d->next)
		if (!fuzz_tree_equal(c, d))
			return false;
	return !c && !d;
}

#define FUZZ_CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: fuzz check failed: %s\n", \
			__FILE__, __LINE__, #cond); \
		abort(); \
	} \
} while (0)

/* The server's log would drown the fuzzer's output: errors only, to
 * /dev/null, unless STARLING_FUZZ_LOG is set (then everything, stderr). */
static inline void fuzz_quiet_log(void)
{
	static int done;

	if (done)
		return;
	done = 1;
	if (getenv("STARLING_FUZZ_LOG"))
		log_setup("debug", "stderr");
	else
		log_setup("error", "/dev/null");
}

/* Input bytes read front to back: control bytes first, then the rest. */
struct fuzz_in {
	const uint8_t *p;
	size_t left;
};

/* The next control byte (0 once the input is used up). */
static inline uint8_t fuzz_byte(struct fuzz_in *in)
{
	if (!in->left)
		return 0;
	in->left--;
	return *in->p++;
}

#endif
