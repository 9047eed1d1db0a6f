/*
 * workers.h - `workers = N`: the process started is a master that forks
 * N workers, each a whole server (its own loop, Lua state and modules:
 * node 1..N of core/xmpp/node.h), and supervises them.
 *
 * The master holds no socket and no storage. A worker that dies is
 * started again (at once after a long run, else after a delay doubling
 * from 0.5 s to 30 s); SIGHUP and SIGUSR1 go on to every worker; SIGTERM
 * or SIGINT stops them all (SIGKILL after 10 s) and then the master.
 * A worker that reloaded on `starlingctl reload` sends the master SIGHUP
 * (node.h's node_reload_others): the master reads the config again (so
 * a worker it starts later runs the new one) and passes SIGHUP on to the
 * other workers.
 */
#ifndef STARLING_WORKERS_H
#define STARLING_WORKERS_H

/* Forks n workers: returns in each of them its node number (1..n); the
 * master supervises them and exits (never returns). dir: the directory
 * for the node links' sockets (made here, mode 0700). In the master,
 * on_reload runs on SIGHUP before the workers get it (the config read
 * again), on_exit before it exits (the pid file). */
unsigned workers_run(unsigned n, const char *dir, void (*on_reload)(void),
		     void (*on_exit)(void));
/* "workers = N": 0 (or absent) is one process, "auto" the number of
 * cores. */
unsigned workers_count(const char *value, long number);

#endif
