/*
 * loopstat.h - how long the event loop's iterations take, for the
 * metrics (starling.metrics) and bench/perf25.py: one long iteration is
 * a delay for every connection at once, whatever the average says.
 *
 * iteration: the loop awake, from the poll's return to the next poll:
 *            the ready watchers' callbacks, the timers and the end of
 *            the iteration (pipeline.h: commit, release, writev).
 * busy:      the sum of the iterations' lengths, in seconds.
 * bucket:    iterations counted by length, each up to a bound of
 *            loopstat_bounds (the last one without bound).
 * longest:   the longest iteration of each whole second, kept for the
 *            last LOOPSTAT_SECONDS seconds.
 *
 * The clock is read twice per iteration (CLOCK_MONOTONIC, vDSO): no
 * system call, nothing allocated.
 */
#ifndef STARLING_LOOPSTAT_H
#define STARLING_LOOPSTAT_H

#include <ev.h>
#include <stdint.h>

#define LOOPSTAT_BUCKETS 14
#define LOOPSTAT_SECONDS 60

struct loopstat {
	uint64_t iterations;
	double busy;
	uint64_t buckets[LOOPSTAT_BUCKETS];	/* not cumulative */
};

/* Upper bounds of the buckets in seconds; the last is INFINITY. */
extern const double loopstat_bounds[LOOPSTAT_BUCKETS];

/* Starts timing loop's iterations (its release and acquire callbacks,
 * which nothing else in the server sets). */
void loopstat_start(struct ev_loop *loop);
/* The counts since loopstat_start. */
const struct loopstat *loopstat_get(void);
/* The longest iteration that ended in the last `seconds` whole seconds,
 * this one included (1..LOOPSTAT_SECONDS), in seconds; 0 when none. */
double loopstat_longest(unsigned seconds);

#endif
