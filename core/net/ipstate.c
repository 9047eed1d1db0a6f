/* ipstate.c - per-address counters: unauthenticated connections, failures. */
#include "ipstate.h"
#include "hmap.h"

#include <math.h>
#include <stdlib.h>

#define FAIL_HALF_LIFE 300.0	/* seconds for a failure to count half */
#define FAIL_FREE 2.0		/* failures answered without delay */
#define PRUNE_AT 4096		/* entries before stale ones are dropped */
#define PENALTY_SLACK 0.1	/* seconds of a penalty not enforced */

struct ipstate {
	unsigned unauth;
	double fail_score;
	double fail_at;
	double penalty_until;	/* now_mono() time; see ipstate_auth_penalty */
};

static struct hmap states;

static double decayed(const struct ipstate *st, double now)
{
	if (!st->fail_score)
		return 0;
	return st->fail_score * exp2(-(now - st->fail_at) / FAIL_HALF_LIFE);
}

static void prune(double now)
{
	size_t pos = 0;
	const char *key;
	void *val;

	while (hmap_next(&states, &pos, &key, &val)) {
		struct ipstate *st = val;
		if (!st->unauth && decayed(st, now) < 0.1) {
			hmap_del(&states, key);
			free(st);
		}
	}
}

static struct ipstate *get(const char *ip)
{
	struct ipstate *st = hmap_get(&states, ip);

	if (!st) {
		if (states.count >= PRUNE_AT)
			prune(now_mono());
		st = xcalloc(1, sizeof(*st));
		hmap_set(&states, ip, st);
	}
	return st;
}

static void maybe_drop(const char *ip, struct ipstate *st)
{
	if (!st->unauth && decayed(st, now_mono()) < 0.1) {
		hmap_del(&states, ip);
		free(st);
	}
}

bool ipstate_unauth_add(const char *ip, unsigned max)
{
	struct ipstate *st = get(ip);

	if (max && st->unauth >= max)
		return false;
	st->unauth++;
	return true;
}

void ipstate_unauth_del(const char *ip)
{
	struct ipstate *st = hmap_get(&states, ip);

	if (!st)
		return;
	if (st->unauth)
		st->unauth--;
	maybe_drop(ip, st);
}

double ipstate_auth_failed(const char *ip, double max_delay)
{
	struct ipstate *st = get(ip);
	double now = now_mono();

	double delay;

	st->fail_score = decayed(st, now) + 1;
	st->fail_at = now;
	if (st->fail_score <= FAIL_FREE)
		return 0;
	delay = MIN(max_delay, 0.5 * exp2(st->fail_score - FAIL_FREE - 1));
	st->penalty_until = MAX(st->penalty_until, now + delay);
	return delay;
}

double ipstate_auth_penalty(const char *ip)
{
	struct ipstate *st = hmap_get(&states, ip);
	double now = now_mono();

	/* The delayed answer's timer runs on the loop's clock, which may be
	 * behind ours: a client answering at once must not find the penalty
	 * still in force. */
	if (!st || st->penalty_until - now < PENALTY_SLACK)
		return 0;
	return st->penalty_until - now;
}

void ipstate_free_all(void)
{
	size_t pos = 0;
	const char *key;
	void *val;

	while (hmap_next(&states, &pos, &key, &val))
		free(val);
	hmap_free(&states);
}
