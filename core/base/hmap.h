/*
 * hmap.h - a string-keyed hash map (open addressing, linear probing).
 *
 * The map owns copies of its keys; values are borrowed pointers the caller
 * manages. Used for hosts, hook chains and the session directory.
 */
#ifndef STARLING_HMAP_H
#define STARLING_HMAP_H

#include "util.h"

struct hmap_slot {
	char *key;		/* NULL: empty; HMAP_TOMB: deleted */
	uint32_t hash;
	void *val;
};

struct hmap {
	struct hmap_slot *slots;
	size_t cap;		/* power of two, or 0 */
	size_t count;		/* live entries */
	size_t used;		/* live + tombstones */
};

void hmap_init(struct hmap *m);
void hmap_free(struct hmap *m);		/* frees keys, not values */
void *hmap_get(const struct hmap *m, const char *key);
void *hmap_getn(const struct hmap *m, const char *key, size_t len);
/* Sets key to val; returns the previous value or NULL. */
void *hmap_set(struct hmap *m, const char *key, void *val);
/* Removes key; returns its value or NULL. */
void *hmap_del(struct hmap *m, const char *key);
/* Iteration: *pos starts at 0; returns false at the end. */
bool hmap_next(const struct hmap *m, size_t *pos, const char **key, void **val);

#endif
