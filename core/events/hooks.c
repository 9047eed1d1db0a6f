/* hooks.c - per-host hook chains of C handlers (Lua ones included). */
#include "hooks.h"

#include <errno.h>
#include <stdlib.h>

static unsigned long error_count;

void hook_error(void)
{
	error_count++;
}

unsigned long hook_error_count(void)
{
	return error_count;
}

void hook_set_init(struct hook_set *hs)
{
	hmap_init(&hs->chains);
}

static void handler_free(struct hook_handler *h)
{
	if (h->free_data)
		h->free_data(h->data);
	free(h->owner);
	free(h);
}

static void chain_collect(struct hook_chain *ch)
{
	while (ch->garbage) {
		struct hook_handler *h = ch->garbage;
		ch->garbage = h->next_garbage;
		handler_free(h);
	}
}

void hook_set_free(struct hook_set *hs)
{
	size_t pos = 0;
	const char *key;
	void *val;

	while (hmap_next(&hs->chains, &pos, &key, &val)) {
		struct hook_chain *ch = val;
		for (size_t i = 0; i < ch->n; i++)
			handler_free(ch->h[i]);
		chain_collect(ch);
		free(ch->h);
		free(ch);
	}
	hmap_free(&hs->chains);
}

bool hook_set_firing(struct hook_set *hs)
{
	size_t pos = 0;
	const char *k;
	void *v;

	while (hmap_next(&hs->chains, &pos, &k, &v))
		if (((struct hook_chain *)v)->firing)
			return true;
	return false;
}

/* A firing chain iterates over a snapshot taken up front, so changes
 * made meanwhile only need the handlers themselves to stay valid: one
 * removed while firing is freed when the outermost firing ends. */
struct hook_handler *hook_add(struct hook_set *hs, const char *event,
			      int (*fn)(struct event *ev,
					const struct hook_handler *h),
			      void *data, void (*free_data)(void *data),
			      int priority, const char *owner)
{
	struct hook_chain *ch = hmap_get(&hs->chains, event);
	struct hook_handler *h;
	size_t pos;

	if (!ch) {
		ch = xcalloc(1, sizeof(*ch));
		hmap_set(&hs->chains, event, ch);
	}
	h = xcalloc(1, sizeof(*h));
	h->fn = fn;
	h->data = data;
	h->free_data = free_data;
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
	return h;
}

struct hook_handler *hook_find_handler(struct hook_set *hs, const char *event,
				       bool (*match)(const struct hook_handler *h,
						     void *ctx), void *ctx)
{
	struct hook_chain *ch = hmap_get(&hs->chains, event);

	for (size_t i = 0; ch && i < ch->n; i++)
		if (match(ch->h[i], ctx))
			return ch->h[i];
	return NULL;
}

int hook_remove(struct hook_set *hs, const char *event, struct hook_handler *h)
{
	struct hook_chain *ch = hmap_get(&hs->chains, event);
	size_t i;

	if (!ch)
		return -ENOENT;
	for (i = 0; i < ch->n && ch->h[i] != h; i++)
		;
	if (i == ch->n)
		return -ENOENT;
	memmove(ch->h + i, ch->h + i + 1, (ch->n - i - 1) * sizeof(*ch->h));
	ch->n--;
	if (ch->firing) {
		h->next_garbage = ch->garbage;
		ch->garbage = h;
	} else {
		handler_free(h);
	}
	return 0;
}

struct hook_chain *hook_find(struct hook_set *hs, const char *event)
{
	struct hook_chain *c = hmap_get(&hs->chains, event);

	return c && c->n ? c : NULL;
}

static bool still_on(const struct hook_chain *ch, const struct hook_handler *h)
{
	for (size_t j = 0; j < ch->n; j++)
		if (ch->h[j] == h)
			return true;
	return false;
}

int hook_fire(struct hook_chain *ch, struct event *ev)
{
	struct hook_handler *small[16];
	struct hook_handler **snap = small;
	size_t n = ch->n;
	int stopped = 0;

	if (n > ARRAY_SIZE(small))
		snap = xmalloc(n * sizeof(*snap));
	memcpy(snap, ch->h, n * sizeof(*snap));
	ch->firing++;
	for (size_t i = 0; i < n; i++) {
		/* Skip handlers removed by an earlier handler of this firing
		 * (only then has the chain changed under the snapshot). */
		if (ch->garbage && !still_on(ch, snap[i]))
			continue;
		if (snap[i]->fn(ev, snap[i]) == HOOK_STOP) {
			stopped = 1;
			break;
		}
	}
	ch->firing--;
	if (!ch->firing)
		chain_collect(ch);
	if (snap != small)
		free(snap);
	return stopped;
}
