/*
 * pipeline.h - the end of every loop iteration: the one place that keeps
 * the server's promise "acknowledged means durable".
 *
 * batch:     the storage writes of one loop iteration (records, accounts,
 *            offline messages), one LMDB transaction committed (synced)
 *            at the iteration's end (storage/store.h).
 * hand-over: the archive appends of an iteration, given to the archive
 *            writer thread after the batch's commit; it writes and
 *            commits them while the loop goes on. One at a time.
 * flight:    a hand-over under way, and/or PostgreSQL's commit sent
 *            (storage/store_pg.h); it lands when the writer says it
 *            committed and PostgreSQL answered, and only then do the
 *            acks that cover it go. A PostgreSQL commit also holds the
 *            output queued before it was sent (conn_mark_queued) until
 *            it lands (conn_release_marked).
 * point:     a mark closing each iteration's stanzas (features/sm.h); it
 *            is durable when its batch and hand-over are both committed.
 *            An XEP-0198 <a/> waits for the point of the last stanza it
 *            covers; deliveries do not wait for hand-overs.
 * release:   after the commit, what the connections queued so far may be
 *            written (net/conn.h's release point); output queued later in
 *            the iteration waits for the next commit.
 *
 * Per iteration, in order: land a flight that is done; commit the batch
 * and hand the archive's appends over (unless a flight is under way);
 * close the iteration's stanzas under a point; answer the <r/>s whose
 * point is durable; release and flush output; free the sessions and
 * connections that ended; end the iteration's read transaction.
 */
#ifndef STARLING_PIPELINE_H
#define STARLING_PIPELINE_H

#include <ev.h>

/* Starts the per-iteration work, the archive writer thread and the
 * archives' index job on loop (after the store is open). */
void pipeline_start(struct ev_loop *loop);
/* The loop ends at the first iteration without sessions (shutdown). */
void pipeline_stop_when_idle(void);
/* After the loop: everything committed, answered, flushed and freed. */
void pipeline_finish(void);

#endif
