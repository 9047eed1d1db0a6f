/* pipeline.c - the end of every loop iteration (see pipeline.h). */
#include "pipeline.h"
#include "bridge.h"
#include "bosh.h"
#include "config.h"
#include "conn.h"
#include "log.h"
#include "node_link.h"
#include "session.h"
#include "sm.h"
#include "sqlstore.h"
#include "store.h"
#include "xmlstream.h"

#include <errno.h>
#include <malloc.h>
#include <string.h>

/* The archives' with index, written behind the traffic in batches
 * (storage/): a slice at a time while a pass is under way, so stanzas
 * keep flowing between slices. */
#define INDEX_SLICE 1024

static ev_prepare prepare_w;
static ev_async writer_w;
static ev_timer index_timer;
static ev_timer burst_trim_timer;
static ev_timer health_timer;
/* While storage writes fail: when the next probe is due, and the wait
 * after it (doubling, up to PROBE_MAX). */
#define PROBE_FIRST 0.5
#define PROBE_MAX 30.
static double probe_at, probe_wait;
static bool probe_due;
/* The point the writer's hand-over covers; 0 when none is in flight. */
static unsigned long flight_point;
static bool stop_when_idle;
static bool handed_now;		/* this iteration's commit made the flight */
/* The flight holds a PostgreSQL commit: the output queued before it was
 * sent is marked (conn.h) and goes when it is answered. */
static bool pg_held;
/* A step of the index job on PostgreSQL's archives is due: it runs in
 * the iteration's commit, between an answer and the next send, so its
 * reads never wait behind a commit in flight (pg_index_step). */
static bool pg_index_due;
static int pg_index_more;		/* what the last step returned */
static int64_t pg_index_delay;
static size_t pg_index_budget;

/* The writer's thread: a hand-over is committed. */
static void writer_done(void)
{
	ev_async_send(conn_loop(), &writer_w);
}

/* Batches whose writes are lost: whoever wrote into them is closed
 * before any point covering them becomes durable, so they never see an
 * ack of it (session_writes_lost). */
static void writes_lost(void)
{
	unsigned long nos[16];
	size_t n = store_take_lost(nos, 16);

	for (size_t i = 0; i < n; i++)
		session_writes_lost(nos[i]);
}

/* The writer's hand-over is done (or redone here): acks covering it may
 * go, unless it is lost. */
static void flight_land(void)
{
	store_writer_join();
	writes_lost();
	sm_point_durable(flight_point);
	flight_point = 0;
	node_link_landed();
	if (pg_held)
		conn_release_marked();
	pg_held = false;
}

/* Both the writer and PostgreSQL answered what the flight holds. */
static bool flight_done(void)
{
	return flight_point && !store_writer_busy() && !store_pg_flight();
}

static void on_writer(struct ev_loop *loop, ev_async *w, int revents)
{
	if (flight_done()) {
		flight_land();
		sm_answer_owed();	/* written at this iteration's end */
	}
}

/* A step of PostgreSQL's index job (pg_index_due), when nothing is in
 * flight. */
static void pg_index_step(void)
{
	pg_index_due = false;
	if (!store_pg_indexer()) {
		pg_index_more = 0;
		return;
	}
	pg_index_more = store_archive_index_step_on(&store_pg, pg_index_delay,
						    pg_index_budget, INT64_MAX);
	if (pg_index_more < 0)
		log_warn("archive index: %s", strerror(-pg_index_more));
}

/* The batch is committed before anything it covers is sent. The
 * archive's appends go to the writer, one hand-over at a time (while it
 * is at one, this iteration's wait for the next; and no batch is open
 * then: beginning one waits for the writer). PostgreSQL's commit is sent
 * and answered later: the flight holds it too, and with it every output
 * queued so far (marked), so nothing it covers goes before the answer. */
static void commit(void)
{
	bool handed;

	if (flight_done())
		flight_land();
	if (flight_point || store_writer_busy())
		return;			/* a flight, or the writer at the index job */
	if (pg_index_due)
		pg_index_step();	/* its writes join this batch */
	store_commit_async(&handed);
	bool pg_sent = store_pg_flight();
	writes_lost();
	unsigned long point = sm_point_next();
	handed_now = handed || pg_sent;
	if (handed_now)
		flight_point = point;
	else
		sm_point_durable(point);
	if (pg_sent) {
		conn_mark_queued();
		pg_held = true;
	}
}

/* glibc keeps freed memory: when many sessions ended (a flood went
 * away), give whole free pages back soon. */
static void on_burst_trim(struct ev_loop *loop, ev_timer *w, int revents)
{
	xs_trim();
	st_doc_pool_trim();
	lx_alloc_trim();
	malloc_trim(0);
}

static void trim_after_burst(struct ev_loop *loop, size_t freed)
{
	static size_t recent;

	recent += freed;
	if (recent >= 64 && !ev_is_active(&burst_trim_timer)) {
		recent = 0;
		ev_timer_set(&burst_trim_timer, 1., 0.);
		ev_timer_start(loop, &burst_trim_timer);
	}
}

/* While writes fail, a probe now and then (store_probe), after the
 * iteration's commit, when no batch or flight is open. */
static void on_health(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (!store_health()->err) {
		probe_wait = 0;
		return;
	}
	if (!probe_wait) {
		probe_wait = PROBE_FIRST;
		probe_at = ev_now(loop) + probe_wait;
	} else if (ev_now(loop) >= probe_at) {
		probe_due = true;
	}
}

static void probe(struct ev_loop *loop)
{
	if (!probe_due || flight_point || store_writer_busy())
		return;
	probe_due = false;
	if (store_probe() == 0) {
		probe_wait = 0;
		return;
	}
	probe_wait = MIN(probe_wait * 2, PROBE_MAX);
	probe_at = ev_now(loop) + probe_wait;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	sm_fire_news();
	handed_now = false;
	commit();
	/* Node links: forwarded stanzas go with this iteration's output
	 * unless a flight is out; the ones before a flight made now go when
	 * it lands (node_link.h). A commit skipped while the writer is at
	 * the index job left no write behind: nothing to wait for. */
	if (!flight_point)
		node_link_committed(false);
	else if (handed_now)
		node_link_committed(true);
	probe(loop);
	sm_answer_owed();
	bosh_flush();		/* held BOSH requests carry the iteration's output */
	/* not while PostgreSQL holds some: its commit, or writes that no
	 * commit covers yet (the writer was at the index job) */
	if (!pg_held && !store_pg_pending())
		conn_release_queued();
	node_link_flush();
	conn_flush_all();
	trim_after_burst(loop, session_free_dead());
	store_end_read();
	sqlstore_watch();
	if (stop_when_idle && session_count() == 0)
		ev_break(loop, EVBREAK_ALL);
}

static void on_index(struct ev_loop *loop, ev_timer *w, int revents)
{
	long delay = config_int("*", "archive_index_delay", 600);
	int64_t delay_us = (int64_t)MAX(delay, 0) * 1000000;
	size_t budget = store_archive_index_budget(INDEX_SLICE);
	int rc;

	rc = store_archive_index_step_on(&store_memory, delay_us, budget,
					 INT64_MAX);
	if (rc >= 0 && store_is_open() && store_indexer()) {
		/* LMDB's archives on the writer's thread, with its flights */
		int more = store_writer_index(delay_us, budget);
		if (more == -ENXIO)
			more = store_archive_index_step_on(&store_lmdb, delay_us,
							   budget, INT64_MAX);
		rc = more < 0 ? more : (rc > 0 || more > 0);
	}
	if (store_pg_is_open()) {
		pg_index_due = true;
		pg_index_delay = delay_us;
		pg_index_budget = budget;
		rc = rc < 0 ? rc : (rc > 0 || pg_index_more > 0);
	}
	if (rc < 0)
		log_warn("archive index: %s", strerror(-rc));
	w->repeat = rc > 0 ? 0.001 : 1.;
	ev_timer_again(loop, w);
}

void pipeline_start(struct ev_loop *loop)
{
	ev_prepare_init(&prepare_w, on_prepare);
	ev_prepare_start(loop, &prepare_w);
	ev_async_init(&writer_w, on_writer);
	ev_async_start(loop, &writer_w);
	ev_unref(loop);		/* the writer's wake-up keeps nothing running */
	if (store_writer_start(writer_done) != 0)
		log_warn("archive writer thread not started: archives commit "
			 "with the batch");
	ev_init(&burst_trim_timer, on_burst_trim);
	ev_timer_init(&health_timer, on_health, 0.25, 0.25);
	ev_timer_start(loop, &health_timer);
	ev_unref(loop);		/* nor the health watch */
	ev_init(&index_timer, on_index);
	index_timer.repeat = 1.;
	ev_timer_again(loop, &index_timer);
	ev_unref(loop);		/* nor the index job */
	sqlstore_start(loop);
}

void pipeline_stop_when_idle(void)
{
	stop_when_idle = true;
}

void pipeline_finish(void)
{
	sqlstore_stop();	/* PostgreSQL's commits are waited for now */
	store_commit();		/* the writer's hand-over too */
	store_pg_commit();	/* and the flights of PostgreSQL before it */
	writes_lost();
	pg_held = false;
	sm_point_durable(sm_point_next());
	flight_point = 0;
	sm_answer_owed();
	bosh_flush();		/* held BOSH requests carry the iteration's output */
	conn_release_queued();
	conn_flush_all();
	session_free_dead();
}
