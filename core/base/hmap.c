/* hmap.c - string-keyed open-addressing hash map. */
#include "hmap.h"

#include <stdlib.h>

static char hmap_tomb_mark;
#define HMAP_TOMB (&hmap_tomb_mark)

static uint32_t hash_str(const char *s, size_t n)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

void hmap_init(struct hmap *m)
{
	m->slots = NULL;
	m->cap = m->count = m->used = 0;
}

void hmap_free(struct hmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slots[i].key && m->slots[i].key != HMAP_TOMB)
			free(m->slots[i].key);
	free(m->slots);
	hmap_init(m);
}

static struct hmap_slot *find(const struct hmap *m, const char *key, size_t len,
			      uint32_t h)
{
	if (!m->cap)
		return NULL;
	for (size_t i = h & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
		struct hmap_slot *s = &m->slots[i];
		if (!s->key)
			return NULL;
		if (s->key != HMAP_TOMB && s->hash == h &&
		    strncmp(s->key, key, len) == 0 && s->key[len] == '\0')
			return s;
	}
}

void *hmap_getn(const struct hmap *m, const char *key, size_t len)
{
	struct hmap_slot *s = find(m, key, len, hash_str(key, len));

	return s ? s->val : NULL;
}

void *hmap_get(const struct hmap *m, const char *key)
{
	return hmap_getn(m, key, strlen(key));
}

static void grow(struct hmap *m)
{
	struct hmap_slot *old = m->slots;
	size_t oldcap = m->cap;

	/* Sized for the live entries (at most half full), not for what the
	 * old table held: when tombstones filled it (a directory whose
	 * sessions come and go), it is rebuilt at the same size, so churn
	 * alone never doubles it (issue #25: the session directory grew
	 * with every login and logout, and its walks and misses with it). */
	m->cap = 16;
	while (m->count * 2 >= m->cap)
		m->cap *= 2;
	m->slots = xcalloc(m->cap, sizeof(*m->slots));
	m->used = m->count;
	for (size_t i = 0; i < oldcap; i++) {
		if (!old[i].key || old[i].key == HMAP_TOMB)
			continue;
		size_t j = old[i].hash & (m->cap - 1);
		while (m->slots[j].key)
			j = (j + 1) & (m->cap - 1);
		m->slots[j] = old[i];
	}
	free(old);
}

void *hmap_set(struct hmap *m, const char *key, void *val)
{
	size_t len = strlen(key);
	uint32_t h = hash_str(key, len);
	struct hmap_slot *s = find(m, key, len, h);

	if (s) {
		void *prev = s->val;
		s->val = val;
		return prev;
	}
	if ((m->used + 1) * 4 >= m->cap * 3)
		grow(m);
	size_t i = h & (m->cap - 1);
	while (m->slots[i].key && m->slots[i].key != HMAP_TOMB)
		i = (i + 1) & (m->cap - 1);
	if (!m->slots[i].key)
		m->used++;
	m->slots[i].key = xstrndup(key, len);
	m->slots[i].hash = h;
	m->slots[i].val = val;
	m->count++;
	return NULL;
}

void *hmap_del(struct hmap *m, const char *key)
{
	size_t len = strlen(key);
	struct hmap_slot *s = find(m, key, len, hash_str(key, len));
	void *val;

	if (!s)
		return NULL;
	val = s->val;
	free(s->key);
	s->key = HMAP_TOMB;
	s->val = NULL;
	m->count--;
	return val;
}

bool hmap_next(const struct hmap *m, size_t *pos, const char **key, void **val)
{
	while (*pos < m->cap) {
		struct hmap_slot *s = &m->slots[(*pos)++];
		if (s->key && s->key != HMAP_TOMB) {
			*key = s->key;
			*val = s->val;
			return true;
		}
	}
	return false;
}
