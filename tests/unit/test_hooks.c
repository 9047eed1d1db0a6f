/*
 * test_hooks.c - hook chains of C handlers (core/events/hooks.c), with no
 * Lua state: priority order, stopping, removal and addition (also while a
 * chain fires), when handler data is freed, event_release and the error
 * count.
 *
 * Handlers write their name into a trace ("b e a"), so a test compares
 * what ran, in which order, with one string.
 */
#include "harness.h"
#include "hooks.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static char trace[512];

static void trace_add(const char *word)
{
	size_t n = strlen(trace);

	snprintf(trace + n, sizeof(trace) - n, "%s%s", n ? " " : "", word);
}

/* A handler's data: its name, what it returns, and what it does first. */
struct probe {
	const char *name;
	int ret;
	struct hook_set *hs;
	const char *event;
	struct probe *remove[2];	/* handlers (by their probe) to remove */
	struct probe *add;		/* a probe to add as a handler */
	int add_priority;
	int frees;			/* free_data calls */
	int freed_while_firing;		/* of those, during a firing */
	int seen_firing;		/* hook_set_firing() seen inside */
	struct event *seen_ev;
	const struct hook_handler *seen_h;
};

static int probe_fn(struct event *ev, const struct hook_handler *h);

static void probe_free(void *data)
{
	struct probe *p = data;

	p->frees++;
	if (p->hs && hook_set_firing(p->hs))
		p->freed_while_firing++;
}

static bool match_data(const struct hook_handler *h, void *ctx)
{
	return h->data == ctx;
}

static struct hook_handler *add(struct hook_set *hs, const char *event,
				struct probe *p, int priority)
{
	char owner[64];

	snprintf(owner, sizeof(owner), "test:%s", p->name);
	return hook_add(hs, event, probe_fn, p, probe_free, priority, owner);
}

static int probe_fn(struct event *ev, const struct hook_handler *h)
{
	struct probe *p = h->data;

	trace_add(p->name);
	p->seen_ev = ev;
	p->seen_h = h;
	if (p->hs)
		p->seen_firing = hook_set_firing(p->hs);
	for (size_t i = 0; i < ARRAY_SIZE(p->remove); i++) {
		struct hook_handler *r;
		if (!p->remove[i])
			continue;
		r = hook_find_handler(p->hs, p->event, match_data, p->remove[i]);
		if (!r || hook_remove(p->hs, p->event, r) != 0)
			trace_add("(remove failed)");
		else
			p->remove[i] = NULL;	/* once */
	}
	if (p->add) {
		add(p->hs, p->event, p->add, p->add_priority);
		p->add = NULL;		/* once */
	}
	return p->ret;
}

/* Fires event on hs with ev (a zeroed one when NULL): what hook_fire
 * returned, or -1 when the chain has no handlers. */
static int fire(struct hook_set *hs, const char *event, struct event *ev)
{
	struct event blank = { 0 };
	struct hook_chain *ch = hook_find(hs, event);

	trace[0] = '\0';
	return ch ? hook_fire(ch, ev ? ev : &blank) : -1;
}

static void test_priority_order(void)
{
	struct hook_set hs;
	struct probe a = { .name = "a" }, b = { .name = "b" }, c = { .name = "c" }, d = { .name = "d" },
		     e = { .name = "e" };

	hook_set_init(&hs);
	add(&hs, "message/bare", &a, 0);
	add(&hs, "message/bare", &b, 10);
	add(&hs, "message/bare", &c, 0);
	add(&hs, "message/bare", &d, -5);
	add(&hs, "message/bare", &e, 10);
	CHECK(fire(&hs, "message/bare", NULL) == 0);
	CHECK_STR(trace, "b e a c d");
	/* other chains of the set are other events */
	CHECK(fire(&hs, "message/full", NULL) == -1);
	hook_set_free(&hs);
}

static void test_many_handlers(void)
{
	/* more handlers than hook_fire's on-stack snapshot holds */
	struct hook_set hs;
	struct probe p[20];
	char names[20][4], want[128] = "";

	hook_set_init(&hs);
	for (int i = 0; i < 20; i++) {
		snprintf(names[i], sizeof(names[i]), "%d", i);
		p[i] = (struct probe){ .name = names[i] };
		add(&hs, "e", &p[i], i % 2 ? 1 : 0);	/* odd ones first */
	}
	for (int i = 1; i < 20; i += 2)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s ", names[i]);
	for (int i = 0; i < 20; i += 2)
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s ", names[i]);
	want[strlen(want) - 1] = '\0';
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, want);
	hook_set_free(&hs);
	for (int i = 0; i < 20; i++)
		CHECK(p[i].frees == 1);
}

static void test_stop(void)
{
	struct hook_set hs;
	struct probe a = { .name = "a" }, b = { .name = "b", .ret = HOOK_STOP }, c = { .name = "c" };
	struct event ev = { .error = "why" };
	struct hook_handler *hb;

	hook_set_init(&hs);
	add(&hs, "presence/full", &a, 5);
	hb = add(&hs, "presence/full", &b, 0);
	add(&hs, "presence/full", &c, -5);
	CHECK(fire(&hs, "presence/full", &ev) == 1);
	CHECK_STR(trace, "a b");
	CHECK(c.seen_ev == NULL);
	/* handlers get the event fired and themselves */
	CHECK(a.seen_ev == &ev && b.seen_ev == &ev);
	CHECK(b.seen_h == hb);
	CHECK_STR(hb->owner, "test:b");
	CHECK(hb->priority == 0);
	/* a stop at the head stops everything */
	a.ret = HOOK_STOP;
	CHECK(fire(&hs, "presence/full", &ev) == 1);
	CHECK_STR(trace, "a");
	hook_set_free(&hs);
}

static void test_remove(void)
{
	struct hook_set hs;
	struct probe a = { .name = "a" }, b = { .name = "b" }, c = { .name = "c" }, other = { .name = "x" };
	struct hook_handler *h;

	hook_set_init(&hs);
	add(&hs, "e", &a, 0);
	add(&hs, "e", &b, 0);
	add(&hs, "e", &c, 0);
	h = hook_find_handler(&hs, "e", match_data, &b);
	CHECK(h && h->data == &b);
	CHECK(hook_find_handler(&hs, "e", match_data, &other) == NULL);
	CHECK(hook_find_handler(&hs, "nothing", match_data, &b) == NULL);
	CHECK(hook_remove(&hs, "e", h) == 0);
	CHECK(b.frees == 1);		/* not firing: freed at once */
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "a c");
	CHECK(hook_find_handler(&hs, "e", match_data, &b) == NULL);
	/* a handler of another chain, or of none, is not there */
	h = hook_find_handler(&hs, "e", match_data, &a);
	CHECK(hook_remove(&hs, "nothing", h) == -ENOENT);
	add(&hs, "f", &other, 0);
	CHECK(hook_remove(&hs, "f", h) == -ENOENT);
	CHECK(a.frees == 0);
	CHECK(hook_remove(&hs, "e", h) == 0);
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "c");
	hook_set_free(&hs);
	CHECK(a.frees == 1 && b.frees == 1 && c.frees == 1 && other.frees == 1);
}

static void test_remove_while_firing(void)
{
	struct hook_set hs;
	struct probe self = { .name = "self" }, witness = { .name = "witness" },
		     later = { .name = "later" }, last = { .name = "last" };

	hook_set_init(&hs);
	self.hs = witness.hs = later.hs = last.hs = &hs;
	self.event = "e";
	/* self removes itself and a handler that has not run yet */
	self.remove[0] = &self;
	self.remove[1] = &later;
	add(&hs, "e", &self, 10);
	add(&hs, "e", &witness, 5);
	add(&hs, "e", &later, 0);
	add(&hs, "e", &last, -5);
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "self witness last");
	CHECK(later.seen_ev == NULL);
	CHECK(self.seen_firing && witness.seen_firing);
	/* freed once each, after the firing ended */
	CHECK(self.frees == 1 && later.frees == 1);
	CHECK(self.freed_while_firing == 0 && later.freed_while_firing == 0);
	CHECK(!hook_set_firing(&hs));
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "witness last");
	hook_set_free(&hs);
	CHECK(self.frees == 1 && later.frees == 1);
	CHECK(witness.frees == 1 && last.frees == 1);
}

/* A handler that fires its own chain again once, from inside. */
struct nest {
	struct hook_chain *ch;
	int depth;
};

static int nest_fn(struct event *ev, const struct hook_handler *h)
{
	struct nest *n = h->data;

	trace_add(n->depth ? "inner" : "outer");
	if (n->depth++ == 0)
		hook_fire(n->ch, ev);
	return HOOK_PASS;
}

static void test_remove_in_nested_firing(void)
{
	struct hook_set hs;
	struct nest n = { 0 };
	struct probe remover = { .name = "remover" }, victim = { .name = "victim" };

	hook_set_init(&hs);
	remover.hs = victim.hs = &hs;
	remover.event = "e";
	add(&hs, "e", &victim, -10);
	hook_add(&hs, "e", nest_fn, &n, NULL, 10, "test:nest");
	n.ch = hook_find(&hs, "e");
	/* the inner firing removes victim: it is freed when the outer
	 * firing ends, and neither firing calls it afterwards */
	remover.remove[0] = &victim;
	add(&hs, "e", &remover, 0);
	trace[0] = '\0';
	CHECK(hook_fire(n.ch, &(struct event){ 0 }) == 0);
	CHECK_STR(trace, "outer inner remover remover");
	CHECK(victim.seen_ev == NULL);
	CHECK(victim.frees == 1 && victim.freed_while_firing == 0);
	hook_set_free(&hs);
	CHECK(victim.frees == 1 && remover.frees == 1);
}

static void test_add_while_firing(void)
{
	struct hook_set hs;
	struct probe adder = { .name = "adder" }, high = { .name = "high" }, low = { .name = "low" },
		     tail = { .name = "tail" };

	hook_set_init(&hs);
	adder.hs = tail.hs = &hs;
	adder.event = "e";
	adder.add = &high;
	adder.add_priority = 100;
	add(&hs, "e", &adder, 0);
	add(&hs, "e", &tail, -10);
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "adder tail");		/* not in this firing */
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "high adder tail");	/* but in the next */
	/* a handler added behind the one running waits as well */
	adder.add = &low;
	adder.add_priority = -5;
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "high adder tail");
	CHECK(fire(&hs, "e", NULL) == 0);
	CHECK_STR(trace, "high adder low tail");
	hook_set_free(&hs);
	CHECK(high.frees == 1 && low.frees == 1 && adder.frees == 1);
}

static void test_set_free(void)
{
	struct hook_set hs;
	struct probe a = { .name = "a" }, b = { .name = "b" }, c = { .name = "c" };
	struct hook_handler *h;

	hook_set_init(&hs);
	add(&hs, "one", &a, 0);
	add(&hs, "one", &b, 1);
	add(&hs, "two", &c, 0);
	/* a handler without free_data leaves its data alone */
	h = hook_add(&hs, "two", probe_fn, &c, NULL, 5, NULL);
	CHECK_STR(h->owner, "?");
	CHECK(a.frees == 0 && b.frees == 0 && c.frees == 0);
	hook_set_free(&hs);
	CHECK(a.frees == 1 && b.frees == 1 && c.frees == 1);
}

static void test_find(void)
{
	struct hook_set hs;
	struct probe a = { .name = "a" };
	struct hook_handler *h;

	hook_set_init(&hs);
	CHECK(hook_find(&hs, "e") == NULL);
	CHECK(!hook_set_firing(&hs));
	h = add(&hs, "e", &a, 0);
	CHECK(hook_find(&hs, "e") != NULL);
	CHECK(hook_findn(&hs, "e-and-more", 1) == hook_find(&hs, "e"));
	CHECK(hook_findn(&hs, "e-and-more", 2) == NULL);
	CHECK(hook_find(&hs, "E") == NULL);
	/* a chain that lost its last handler is as good as none */
	CHECK(hook_remove(&hs, "e", h) == 0);
	CHECK(hook_find(&hs, "e") == NULL);
	CHECK(hook_findn(&hs, "e", 1) == NULL);
	hook_set_free(&hs);
}

static int released;

static void count_release(struct event *ev)
{
	released++;
	ev->lua_table = 0;
}

static void test_event_release(void)
{
	struct event ev = { .lua_table = 7, .release = count_release };
	struct event plain = { 0 };

	released = 0;
	event_release(&ev);
	CHECK(released == 1);
	CHECK(ev.lua_table == 0);
	event_release(&plain);		/* nothing to release: no call */
	CHECK(released == 1);
}

static void test_error_count(void)
{
	unsigned long before = hook_error_count();

	hook_error();
	CHECK(hook_error_count() == before + 1);
	hook_error();
	hook_error();
	CHECK(hook_error_count() == before + 3);
}

int main(void)
{
	RUN(test_priority_order);
	RUN(test_many_handlers);
	RUN(test_stop);
	RUN(test_remove);
	RUN(test_remove_while_firing);
	RUN(test_remove_in_nested_firing);
	RUN(test_add_while_firing);
	RUN(test_set_free);
	RUN(test_find);
	RUN(test_event_release);
	RUN(test_error_count);
	TEST_END();
}
