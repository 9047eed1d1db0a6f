/* hooks.c - per-host hook chains of Lua handlers. */
#include "hooks.h"
#include "log.h"

#include <errno.h>
#include <stdlib.h>

struct hook_handler {
	int ref;		/* LUA_REGISTRYINDEX reference to the function */
	int priority;
	char *owner;
	struct hook_handler *next_garbage;
};

static unsigned long error_count;

unsigned long hook_error_count(void)
{
	return error_count;
}

void hook_set_init(struct hook_set *hs)
{
	hmap_init(&hs->chains);
}

static void handler_free(struct hook_handler *h, lua_State *L)
{
	luaL_unref(L, LUA_REGISTRYINDEX, h->ref);
	free(h->owner);
	free(h);
}

static void chain_collect(struct hook_chain *ch, lua_State *L)
{
	while (ch->garbage) {
		struct hook_handler *h = ch->garbage;
		ch->garbage = h->next_garbage;
		handler_free(h, L);
	}
}

void hook_set_free(struct hook_set *hs, lua_State *L)
{
	size_t pos = 0;
	const char *key;
	void *val;

	while (hmap_next(&hs->chains, &pos, &key, &val)) {
		struct hook_chain *ch = val;
		for (size_t i = 0; i < ch->n; i++)
			handler_free(ch->h[i], L);
		chain_collect(ch, L);
		free(ch->h);
		free(ch);
	}
	hmap_free(&hs->chains);
}

static ssize_t chain_index(struct hook_chain *ch, lua_State *L, int fn_idx)
{
	for (size_t i = 0; i < ch->n; i++) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, ch->h[i]->ref);
		bool same = lua_rawequal(L, -1, fn_idx);
		lua_pop(L, 1);
		if (same)
			return (ssize_t)i;
	}
	return -1;
}

/* Copy-on-write while firing: a firing chain iterates over a snapshot, so
 * changes only need the array itself to stay valid, which they do since we
 * never free the array while firing (the snapshot is taken up front). */
int hook_add(struct hook_set *hs, lua_State *L, const char *event, int fn_idx,
	     int priority, const char *owner)
{
	struct hook_chain *ch = hmap_get(&hs->chains, event);
	struct hook_handler *h;
	size_t pos;

	fn_idx = lua_absindex(L, fn_idx);
	if (!ch) {
		ch = xcalloc(1, sizeof(*ch));
		hmap_set(&hs->chains, event, ch);
	}
	if (chain_index(ch, L, fn_idx) >= 0)
		return -EEXIST;
	h = xcalloc(1, sizeof(*h));
	lua_pushvalue(L, fn_idx);
	h->ref = luaL_ref(L, LUA_REGISTRYINDEX);
	h->priority = priority;
	h->owner = xstrdup(owner ? owner : "?");
	if (ch->n == ch->cap) {
		ch->cap = ch->cap ? ch->cap * 2 : 4;
		ch->h = xrealloc(ch->h, ch->cap * sizeof(*ch->h));
	}
	for (pos = 0; pos < ch->n && ch->h[pos]->priority >= priority; pos++)
		;
	memmove(ch->h + pos + 1, ch->h + pos, (ch->n - pos) * sizeof(*ch->h));
	ch->h[pos] = h;
	ch->n++;
	return 0;
}

int hook_remove(struct hook_set *hs, lua_State *L, const char *event,
		int fn_idx)
{
	struct hook_chain *ch = hmap_get(&hs->chains, event);
	ssize_t i;

	if (!ch)
		return -ENOENT;
	i = chain_index(ch, L, lua_absindex(L, fn_idx));
	if (i < 0)
		return -ENOENT;
	struct hook_handler *h = ch->h[i];
	memmove(ch->h + i, ch->h + i + 1, (ch->n - (size_t)i - 1) * sizeof(*ch->h));
	ch->n--;
	if (ch->firing) {
		h->next_garbage = ch->garbage;
		ch->garbage = h;
	} else {
		handler_free(h, L);
	}
	return 0;
}

struct hook_chain *hook_find(struct hook_set *hs, const char *event)
{
	struct hook_chain *c = hmap_get(&hs->chains, event);

	return c && c->n ? c : NULL;
}

int hook_fire(lua_State *L, struct hook_chain *ch, int data_idx)
{
	struct hook_handler *small[16];
	struct hook_handler **snap = small;
	size_t n = ch->n;
	int handled = 0;

	data_idx = lua_absindex(L, data_idx);
	if (n > ARRAY_SIZE(small))
		snap = xmalloc(n * sizeof(*snap));
	memcpy(snap, ch->h, n * sizeof(*snap));
	ch->firing++;
	for (size_t i = 0; i < n; i++) {
		struct hook_handler *h = snap[i];
		bool removed = true;

		/* Skip handlers removed by an earlier handler of this firing. */
		for (size_t j = 0; j < ch->n; j++)
			if (ch->h[j] == h) {
				removed = false;
				break;
			}
		if (removed)
			continue;
		lua_rawgeti(L, LUA_REGISTRYINDEX, h->ref);
		lua_pushvalue(L, data_idx);
		if (lx_pcall(L, 1, 1, h->owner) != 0) {
			error_count++;
			continue;
		}
		if (!lua_isnil(L, -1)) {
			handled = 1;
			break;
		}
		lua_pop(L, 1);
	}
	ch->firing--;
	if (!ch->firing)
		chain_collect(ch, L);
	if (snap != small)
		free(snap);
	return handled;
}
