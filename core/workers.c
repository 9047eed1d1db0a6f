/* workers.c - the master of `workers = N`: forks, restarts, passes
 * signals on (workers.h). */
#include "workers.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/wait.h>

#define WORKERS_MAX 64
#define BACKOFF_MIN 0.5
#define BACKOFF_MAX 30.
#define LONG_RUN 30.		/* a worker that ran this long restarts at once */
#define STOP_GRACE 10.

struct worker {
	pid_t pid;		/* 0 while not running */
	double started;		/* now_mono() of its start */
	double backoff;		/* delay before the next start */
	double start_at;	/* when it starts again (pid 0) */
};

static struct worker workers[WORKERS_MAX + 1];
static unsigned n_workers;
static sigset_t old_mask;

unsigned workers_count(const char *value, long number)
{
	if (value && strcmp(value, "auto") == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		return n < 1 ? 1 : n > WORKERS_MAX ? WORKERS_MAX : (unsigned)n;
	}
	if (number < 1)
		return 1;
	return number > WORKERS_MAX ? WORKERS_MAX : (unsigned)number;
}

/* Forks worker i: returns 0 in the child, the pid in the master (-1 and
 * a delay when fork failed). */
static pid_t start(unsigned i)
{
	pid_t pid = fork();

	if (pid == 0) {
		sigprocmask(SIG_SETMASK, &old_mask, NULL);
		random_forked();
		return 0;
	}
	if (pid < 0) {
		log_error("workers: cannot start worker %u: %s", i, strerror(errno));
		workers[i].start_at = now_mono() + BACKOFF_MAX;
		return -1;
	}
	workers[i].pid = pid;
	workers[i].started = now_mono();
	log_info("workers: worker %u started (pid %ld)", i, (long)pid);
	return pid;
}

static unsigned by_pid(pid_t pid)
{
	for (unsigned i = 1; i <= n_workers; i++)
		if (workers[i].pid == pid)
			return i;
	return 0;
}

/* Reaps every worker that ended; when restart, schedules its restart. */
static unsigned reap(bool restart)
{
	unsigned n = 0;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		unsigned i = by_pid(pid);
		if (!i)
			continue;
		struct worker *w = &workers[i];
		double ran = now_mono() - w->started;
		w->pid = 0;
		n++;
		if (!restart)
			continue;
		w->backoff = ran >= LONG_RUN ? 0. :
			     w->backoff < BACKOFF_MIN ? BACKOFF_MIN :
			     w->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : w->backoff * 2;
		w->start_at = now_mono() + w->backoff;
		if (WIFSIGNALED(status))
			log_warn("workers: worker %u (pid %ld) killed by signal %d after %.1f s; "
				 "starting it again in %.1f s", i, (long)pid,
				 WTERMSIG(status), ran, w->backoff);
		else
			log_warn("workers: worker %u (pid %ld) exited with %d after %.1f s; "
				 "starting it again in %.1f s", i, (long)pid,
				 WEXITSTATUS(status), ran, w->backoff);
	}
	return n;
}

/* sig to every worker but worker `except` (0: to all). */
static void signal_all_but(unsigned except, int sig)
{
	for (unsigned i = 1; i <= n_workers; i++)
		if (workers[i].pid > 0 && i != except)
			kill(workers[i].pid, sig);
}

static void signal_all(int sig)
{
	signal_all_but(0, sig);
}

static unsigned running(void)
{
	unsigned n = 0;

	for (unsigned i = 1; i <= n_workers; i++)
		n += workers[i].pid > 0;
	return n;
}

static void wait_for(const sigset_t *set, double seconds)
{
	struct timespec ts;

	if (seconds < 0)
		seconds = 0;
	ts.tv_sec = (time_t)seconds;
	ts.tv_nsec = (long)((seconds - (double)ts.tv_sec) * 1e9);
	sigtimedwait(set, NULL, &ts);
}

/* SIGTERM/SIGINT: every worker stops; those still running get SIGKILL after STOP_GRACE. */
static void stop_all(const sigset_t *set, int sig)
{
	double until = now_mono() + STOP_GRACE;

	log_info("workers: stopping (signal %d)", sig);
	signal_all(SIGTERM);
	while (reap(false), running() > 0) {
		if (now_mono() >= until) {
			log_warn("workers: %u did not stop in time; killing them", running());
			signal_all(SIGKILL);
			until = now_mono() + STOP_GRACE;
		}
		wait_for(set, .2);
	}
}

unsigned workers_run(unsigned n, const char *dir, void (*on_reload)(void),
		     void (*on_exit)(void))
{
	sigset_t set;

	if (n > WORKERS_MAX)
		n = WORKERS_MAX;
	n_workers = n;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		log_error("workers: cannot make %s: %s", dir, strerror(errno));
		exit(1);
	}
	chmod(dir, 0700);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, &old_mask);
	log_info("workers: starting %u workers", n);
	for (unsigned i = 1; i <= n; i++)
		if (start(i) == 0)
			return i;
	for (;;) {
		double next = 1.;
		for (unsigned i = 1; i <= n; i++) {
			if (workers[i].pid > 0)
				continue;
			double wait = workers[i].start_at - now_mono();
			if (wait <= 0) {
				if (start(i) == 0)
					return i;
			} else if (wait < next) {
				next = wait;
			}
		}
		struct timespec ts = { (time_t)next, (long)((next - (time_t)next) * 1e9) };
		siginfo_t si;
		int sig = sigtimedwait(&set, &si, &ts);
		if (sig == SIGCHLD) {
			reap(true);
		} else if (sig == SIGHUP) {
			/* From a worker: it reloaded (starlingctl reload)
			 * and the others follow. Our own config is read
			 * again too: a worker started later gets it. */
			unsigned from = si.si_code == SI_USER ? by_pid(si.si_pid) : 0;
			if (from)
				log_info("workers: worker %u reloaded; the others follow", from);
			else
				log_info("workers: reloading every worker");
			if (on_reload)
				on_reload();
			signal_all_but(from, SIGHUP);
		} else if (sig == SIGUSR1) {
			log_info("workers: passing signal %d on", sig);
			signal_all(sig);
		} else if (sig == SIGTERM || sig == SIGINT) {
			stop_all(&set, sig);
			break;
		}
	}
	log_info("workers: stopped");
	if (on_exit)
		on_exit();
	log_close();
	exit(0);
}
