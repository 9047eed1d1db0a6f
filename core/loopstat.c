/* loopstat.c - the lengths of the loop's iterations (see loopstat.h). */
#include "loopstat.h"
#include "util.h"

#include <math.h>

const double loopstat_bounds[LOOPSTAT_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1., INFINITY,
};

static struct loopstat counts;
static double woke_at;
/* The longest iteration of each second: slot second % LOOPSTAT_SECONDS
 * belongs to second slot_second[slot]. */
static int64_t slot_second[LOOPSTAT_SECONDS];
static double slot_longest[LOOPSTAT_SECONDS];

/* After the poll: the iteration begins. */
static void on_acquire(struct ev_loop *loop)
{
	woke_at = now_mono();
}

/* Before the poll: the iteration ends. */
static void on_release(struct ev_loop *loop)
{
	double now = now_mono(), len = now - woke_at;
	int64_t second = (int64_t)now;
	unsigned slot = (unsigned)(second % LOOPSTAT_SECONDS), b = 0;

	if (len < 0)
		len = 0;
	counts.iterations++;
	counts.busy += len;
	while (len > loopstat_bounds[b])
		b++;
	counts.buckets[b]++;
	if (slot_second[slot] != second) {
		slot_second[slot] = second;
		slot_longest[slot] = 0;
	}
	if (len > slot_longest[slot])
		slot_longest[slot] = len;
}

void loopstat_start(struct ev_loop *loop)
{
	woke_at = now_mono();
	ev_set_loop_release_cb(loop, on_release, on_acquire);
}

const struct loopstat *loopstat_get(void)
{
	return &counts;
}

double loopstat_longest(unsigned seconds)
{
	int64_t now = (int64_t)now_mono();
	double longest = 0;

	if (seconds > LOOPSTAT_SECONDS)
		seconds = LOOPSTAT_SECONDS;
	for (unsigned i = 0; i < LOOPSTAT_SECONDS; i++) {
		if (now - slot_second[i] < (int64_t)seconds && slot_longest[i] > longest)
			longest = slot_longest[i];
	}
	return longest;
}
