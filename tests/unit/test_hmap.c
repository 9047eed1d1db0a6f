/* test_hmap.c - the string-keyed hash map (core/base/hmap.c): lookups
 * after growth and deletes, and a table whose entries come and go keeps
 * its size. */
#include "harness.h"
#include "hmap.h"

#include <stdio.h>

static void key_of(char *buf, size_t n, unsigned i)
{
	snprintf(buf, n, "user%u@example.com/res", i);
}

static void test_set_get_del(void)
{
	struct hmap m;
	char k[64];

	hmap_init(&m);
	for (unsigned i = 0; i < 5000; i++) {
		key_of(k, sizeof(k), i);
		CHECK(hmap_set(&m, k, (void *)(uintptr_t)(i + 1)) == NULL);
	}
	CHECK(m.count == 5000);
	for (unsigned i = 0; i < 5000; i += 2) {
		key_of(k, sizeof(k), i);
		CHECK(hmap_del(&m, k) == (void *)(uintptr_t)(i + 1));
	}
	for (unsigned i = 0; i < 5000; i++) {
		key_of(k, sizeof(k), i);
		CHECK(hmap_get(&m, k) == (i % 2 ? (void *)(uintptr_t)(i + 1) : NULL));
	}
	CHECK(hmap_getn(&m, "user1@example.com/resX", 21) == (void *)2);
	hmap_free(&m);
}

/* 1,000 live entries, 200,000 replaced one by one: the table stays at
 * the size 1,000 entries need, and every live one is found. */
static void test_churn_keeps_size(void)
{
	struct hmap m;
	char k[64];
	size_t cap_after_fill;

	hmap_init(&m);
	for (unsigned i = 0; i < 1000; i++) {
		key_of(k, sizeof(k), i);
		hmap_set(&m, k, (void *)(uintptr_t)(i + 1));
	}
	cap_after_fill = m.cap;
	for (unsigned i = 1000; i < 201000; i++) {
		key_of(k, sizeof(k), i - 1000);
		CHECK(hmap_del(&m, k) != NULL);
		key_of(k, sizeof(k), i);
		hmap_set(&m, k, (void *)(uintptr_t)(i + 1));
		if (m.cap > 2 * cap_after_fill)
			break;
	}
	CHECK(m.count == 1000);
	CHECK(m.cap <= 2 * cap_after_fill);
	for (unsigned i = 200000; i < 201000; i++) {
		key_of(k, sizeof(k), i);
		CHECK(hmap_get(&m, k) == (void *)(uintptr_t)(i + 1));
	}
	hmap_free(&m);
}

int main(void)
{
	RUN(test_set_get_del);
	RUN(test_churn_keeps_size);
	TEST_END();
}
