/*
 * main.c - the load generator's command line, its steering thread and its
 * report.
 *
 *   loadgen SCENARIO [options]     see usage() or bench/README.md
 *
 * The main thread sets up the workers, moves the run from phase to phase,
 * prints progress to stderr and, at the end, one report (text, or one JSON
 * line with --json). CPU seconds of the server (--server-pid; with two
 * servers, --server-pid2 too, both counted) and of the generator are taken
 * over the measured part of each scenario.
 */
#include "lg.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

struct lg_opts g_opts = {
	.host = "127.0.0.1", .port = 5222, .domain = "localhost", .users = 1000,
	.first = 1, .prefix = "u", .password = "p", .resource = "lg",
	.tls = LG_TLS_NONE, .mech = LG_MECH_SCRAM_SHA256, .duration = 20,
	.drain = 5, .settle = 3, .timeout = 30, .concurrency = 200, .window = 8,
	.jobs = 1, .src_addrs = 16, .count = -1, .contacts = 10, .changes = 10,
	.session = true, .transport = LG_TR_TCP, .ws_path = "/xmpp-websocket",
};

_Atomic int g_phase = PH_INIT;
struct lg_worker *g_workers;
struct lg_conn **g_user_conn;
_Atomic unsigned char *g_online;

static int g_fd_limit;
static int g_users_requested;
static volatile sig_atomic_t g_interrupted;

/* ---- report: "key value" lines, or one JSON object ---- */

static struct lg_buf g_json, g_text;

static void rep_num(const char *key, double v, const char *unit)
{
	char num[64];

	if (isnan(v) || isinf(v))
		snprintf(num, sizeof(num), "null");
	else if ((v == floor(v) || fabs(v) >= 1000) && fabs(v) < 1e15)
		snprintf(num, sizeof(num), "%.0f", v);
	else
		snprintf(num, sizeof(num), "%.4g", v);
	lg_buf_printf(&g_json, "%s\"%s\":%s", g_json.len > 1 ? "," : "", key, num);
	lg_buf_printf(&g_text, "  %-28s %s%s%s\n", key, num, unit ? " " : "",
		      unit ? unit : "");
}

static void rep_str(const char *key, const char *v)
{
	lg_buf_printf(&g_json, "%s\"%s\":\"", g_json.len > 1 ? "," : "", key);
	for (const char *p = v; *p; p++) {
		if (*p == '"' || *p == '\\')
			lg_buf_printf(&g_json, "\\%c", *p);
		else if ((unsigned char)*p < 0x20)
			lg_buf_printf(&g_json, "\\u%04x", *p);
		else
			lg_buf_add(&g_json, p, 1);
	}
	lg_buf_adds(&g_json, "\"");
	lg_buf_printf(&g_text, "  %-28s %s\n", key, v);
}

static void rep_hist(const char *name, const struct lg_hist *h)
{
	static const struct { const char *suffix; double q; } qs[] = {
		{ "p50", 0.5 }, { "p99", 0.99 }, { "p999", 0.999 },
	};
	char key[64];

	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		snprintf(key, sizeof(key), "%s_%s_ms", name, qs[i].suffix);
		rep_num(key, h->n ? (double)lg_hist_quantile(h, qs[i].q) / 1e6 : NAN, "ms");
	}
	snprintf(key, sizeof(key), "%s_max_ms", name);
	rep_num(key, h->n ? (double)h->max / 1e6 : NAN, "ms");
}

/* ---- counters across workers ---- */

static uint64_t sum(enum lg_ctr i)
{
	uint64_t s = 0;

	for (int k = 0; k < g_opts.jobs; k++)
		s += lg_ctr_get(&g_workers[k], i);
	return s;
}

static uint64_t max_ctr(enum lg_ctr i)
{
	uint64_t m = 0;

	for (int k = 0; k < g_opts.jobs; k++)
		if (lg_ctr_get(&g_workers[k], i) > m)
			m = lg_ctr_get(&g_workers[k], i);
	return m;
}

static void set_phase(int phase)
{
	atomic_store(&g_phase, phase);
	for (int k = 0; k < g_opts.jobs; k++)
		ev_async_send(g_workers[k].loop, &g_workers[k].wake);
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - floor(s)) * 1e9) };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR && !g_interrupted)
		;
}

static double now_s(void)
{
	return (double)lg_now_ns() / 1e9;
}

static void progress(const char *what, double t0)
{
	if (g_opts.quiet)
		return;
	fprintf(stderr, "[%6.1fs] %-8s online %llu  connecting %lld  failed %llu  "
		"msgs %llu/%llu  presence %llu/%llu  subscribed %llu\n",
		now_s() - t0, what, (unsigned long long)sum(C_ONLINE),
		(long long)sum(C_CONNECTING), (unsigned long long)sum(C_LOGIN_FAIL),
		(unsigned long long)sum(C_MSG_RECV), (unsigned long long)sum(C_MSG_SENT),
		(unsigned long long)sum(C_PRES_RECV), (unsigned long long)sum(C_PRES_SENT),
		(unsigned long long)sum(C_SUBS_DONE));
}

/* Waits until done() or no progress of progress_of() for stall seconds. */
static double wait_until(bool (*done)(void), uint64_t (*progress_of)(void),
			 double stall, double limit, const char *what, double t0)
{
	double start = now_s(), last_change = start, last_print = start;
	uint64_t last = progress_of();

	while (!done() && !g_interrupted) {
		double t = now_s();
		uint64_t p = progress_of();

		if (p != last) {
			last = p;
			last_change = t;
		}
		if (t - last_change > stall || (limit > 0 && t - start > limit))
			break;
		if (t - last_print >= 1) {
			progress(what, t0);
			last_print = t;
		}
		sleep_s(0.01);
	}
	return now_s() - start;
}

static uint64_t g_target;

static uint64_t logins_settled(void)
{
	return sum(C_LOGIN_OK) + sum(C_LOGIN_FAIL);
}

static bool all_settled(void)
{
	return logins_settled() >= g_target;
}

static bool all_closed(void)
{
	return sum(C_CLOSED) + sum(C_START_FAIL) >= sum(C_STARTED);
}

static uint64_t closed_count(void)
{
	return sum(C_CLOSED);
}

static uint64_t recv_count(void)
{
	return sum(C_MSG_RECV) + sum(C_PRES_RECV) + sum(C_SUBS_DONE);
}

static bool msgs_drained(void)
{
	return sum(C_MSG_RECV) + sum(C_MSG_ERR) >= sum(C_MSG_SENT);
}

static bool presence_done(void)
{
	return sum(C_PRES_RECV) >= g_target;
}

static bool subs_done(void)
{
	return sum(C_SUBS_DONE) >= g_target;
}

/* ---- the measured part ---- */

struct meter {
	double t, server_cpu, self_cpu;
	double cpu1, cpu2;	/* two servers: each one's share of server_cpu */
};

static void meter_read(struct meter *m)
{
	m->t = now_s();
	m->cpu1 = lg_proc_cpu(g_opts.server_pid);
	m->cpu2 = g_opts.port2 > 0 ? lg_proc_cpu(g_opts.server_pid2) : 0;
	m->server_cpu = m->cpu1 >= 0 && m->cpu2 >= 0 ? m->cpu1 + m->cpu2 : -1;
	m->self_cpu = lg_self_cpu();
}

/* Reports CPU over [a, b] and "what per server CPU-second". */
static void rep_cpu(const struct meter *a, const struct meter *b, const char *what,
		    double count)
{
	double scpu = (a->server_cpu >= 0 && b->server_cpu >= 0) ?
		      b->server_cpu - a->server_cpu : NAN;
	double wall = b->t - a->t;
	char key[80];

	rep_num("measured_s", wall, "s");
	rep_num("server_cpu_s", scpu, "s");
	rep_num("server_cpu_util", scpu / wall, "cores");
	if (g_opts.port2 > 0 && a->server_cpu >= 0 && b->server_cpu >= 0) {
		rep_num("server1_cpu_s", b->cpu1 - a->cpu1, "s");
		rep_num("server2_cpu_s", b->cpu2 - a->cpu2, "s");
	}
	rep_num("loadgen_cpu_s", b->self_cpu - a->self_cpu, "s");
	rep_num("loadgen_cpu_util", (b->self_cpu - a->self_cpu) / wall, "cores");
	if (what) {
		snprintf(key, sizeof(key), "%s_per_server_cpu_s", what);
		rep_num(key, scpu > 0 ? count / scpu : NAN, NULL);
		snprintf(key, sizeof(key), "%s_per_loadgen_cpu_s", what);
		rep_num(key, b->self_cpu > a->self_cpu ? count / (b->self_cpu - a->self_cpu)
			: NAN, NULL);
	}
}

static void rep_errors(void)
{
	static const struct { enum lg_ctr c; const char *name; } errs[] = {
		{ C_ERR_CONNECT, "err_connect" }, { C_ERR_IO, "err_io" },
		{ C_ERR_EOF, "err_eof" }, { C_ERR_STREAM, "err_stream" },
		{ C_ERR_AUTH, "err_auth" }, { C_ERR_TLS, "err_tls" },
		{ C_ERR_BIND, "err_bind" }, { C_ERR_TIMEOUT, "err_timeout" },
	};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++)
		if (sum(errs[i].c))
			rep_num(errs[i].name, (double)sum(errs[i].c), NULL);
	for (int k = 0; k < g_opts.jobs; k++)
		if (g_workers[k].tls_seen[0]) {
			rep_str("tls_negotiated", g_workers[k].tls_seen);
			break;
		}
	for (int k = 0; k < g_opts.jobs; k++)
		if (g_workers[k].first_error[0]) {
			rep_str("first_error", g_workers[k].first_error);
			break;
		}
}

/* Connects every account; returns the seconds it took. */
static double connect_all(double t0)
{
	double s;
	struct meter a, b;

	g_target = (uint64_t)g_opts.users;
	meter_read(&a);
	set_phase(PH_CONNECT);
	s = wait_until(all_settled, logins_settled, g_opts.timeout + 5, 0, "connect", t0);
	meter_read(&b);
	rep_num("online", (double)sum(C_ONLINE), NULL);
	rep_num("login_failed", (double)sum(C_LOGIN_FAIL), NULL);
	rep_num("connect_s", s, "s");
	rep_num("connect_rate", (double)sum(C_LOGIN_OK) / s, "logins/s");
	rep_num("connect_server_cpu_s", b.server_cpu >= 0 ? b.server_cpu - a.server_cpu
		: NAN, "s");
	return s;
}

static void close_all(double t0)
{
	set_phase(PH_CLOSE);
	wait_until(all_closed, closed_count, 5, 10, "close", t0);
}

static struct lg_hist *merged(size_t off)
{
	static struct lg_hist h;

	memset(&h, 0, sizeof(h));
	for (int k = 0; k < g_opts.jobs; k++)
		lg_hist_merge(&h, (struct lg_hist *)((char *)&g_workers[k] + off));
	return &h;
}

static void run_login(double t0)
{
	struct meter a, b;
	double s;

	g_target = (uint64_t)g_opts.count;
	meter_read(&a);
	set_phase(PH_CONNECT);
	s = wait_until(all_settled, logins_settled, g_opts.timeout + 5, 0, "login", t0);
	meter_read(&b);
	close_all(t0);
	rep_num("logins", (double)sum(C_LOGIN_OK), NULL);
	rep_num("login_failed", (double)sum(C_LOGIN_FAIL), NULL);
	rep_num("logins_per_s", (double)sum(C_LOGIN_OK) / s, NULL);
	rep_hist("login_latency", merged(offsetof(struct lg_worker, lat_login)));
	rep_cpu(&a, &b, "logins", (double)sum(C_LOGIN_OK));
}

/* The first account of each server sends one message and the run waits
 * (at most --warmup seconds) until it is in: with two servers it opens the
 * server-to-server streams. Then every other account sends one, and the
 * run waits for those. None of it is measured. */
static void warm_up(double t0)
{
	double s, start = now_s();
	uint64_t sent, recv, errs;

	set_phase(PH_WARM);
	sleep_s(0.1);	/* every worker has sent its accounts' messages */
	wait_until(msgs_drained, recv_count, g_opts.warmup, g_opts.warmup, "warm-up", t0);
	rep_num("warmup_open_s", now_s() - start, "s");
	set_phase(PH_WARM_ALL);
	sleep_s(0.1);
	wait_until(msgs_drained, recv_count, g_opts.warmup, g_opts.warmup, "warm-up", t0);
	s = now_s() - start;
	sent = sum(C_MSG_SENT);
	recv = sum(C_MSG_RECV);
	errs = sum(C_MSG_ERR);
	rep_num("warmup_sent", (double)sent, NULL);
	rep_num("warmup_received", (double)recv, NULL);
	rep_num("warmup_errors", (double)errs, NULL);
	rep_num("warmup_s", s, "s");
}

static void run_chat(double t0)
{
	struct meter a, b;
	uint64_t recv0, recv1, sent0 = 0, sent1, err0 = 0, recv_w = 0;
	double run_s, drain_s;

	if (g_opts.component && lg_component_start() != 0)
		exit(1);
	connect_all(t0);
	sleep_s(1);	/* let roster results and presence settle */
	if (g_opts.warmup > 0) {
		warm_up(t0);
		sent0 = sum(C_MSG_SENT);
		recv_w = sum(C_MSG_RECV);
		err0 = sum(C_MSG_ERR);
	}
	meter_read(&a);
	recv0 = sum(C_MSG_RECV);
	set_phase(PH_RUN);
	for (double end = now_s() + g_opts.duration; now_s() < end && !g_interrupted;) {
		sleep_s(fmin(1, end - now_s()));
		progress("chat", t0);
	}
	recv1 = sum(C_MSG_RECV);
	sent1 = sum(C_MSG_SENT);
	run_s = now_s() - a.t;
	set_phase(PH_DRAIN);
	drain_s = wait_until(msgs_drained, recv_count, g_opts.drain, g_opts.drain, "drain", t0);
	meter_read(&b);
	/* counts without the warm-up's (its stragglers may still be in) */
	rep_num("sent", (double)(sum(C_MSG_SENT) - sent0), NULL);
	rep_num("received", (double)(sum(C_MSG_RECV) - recv_w), NULL);
	rep_num("errors_received", (double)(sum(C_MSG_ERR) - err0), NULL);
	rep_num("lost", (double)sum(C_MSG_SENT) - (double)sum(C_MSG_RECV), NULL);
	rep_num("send_rate", (double)(sent1 - sent0) / run_s, "msgs/s");
	rep_num("delivered_per_s", (double)(recv1 - recv0) / run_s, "msgs/s");
	rep_num("sends_skipped", (double)sum(C_BEHIND), NULL);
	if (g_opts.smacks)
		rep_num("sm_acks", (double)sum(C_SM_ACKS), NULL);
	rep_num("drain_s", drain_s, "s");
	rep_hist("latency", merged(offsetof(struct lg_worker, lat_msg)));
	rep_cpu(&a, &b, "delivered", (double)(sum(C_MSG_RECV) - recv_w));
	if (g_opts.component) {
		rep_num("component_echoed", (double)lg_component_echoed(), NULL);
		lg_component_stop();
	}
	close_all(t0);
}

static void run_idle(double t0)
{
	long rss0 = lg_proc_rss_kb(g_opts.server_pid), rss1;
	uint64_t online;

	connect_all(t0);
	set_phase(PH_RUN);	/* nothing to send: the pacing timer slows down */
	sleep_s(g_opts.settle);
	rss1 = lg_proc_rss_kb(g_opts.server_pid);
	online = sum(C_ONLINE);
	rep_num("server_rss_before_kb", rss0 >= 0 ? (double)rss0 : NAN, "KiB");
	rep_num("server_rss_after_kb", rss1 >= 0 ? (double)rss1 : NAN, "KiB");
	rep_num("bytes_per_conn", rss0 >= 0 && rss1 >= 0 && online ?
		(double)(rss1 - rss0) * 1024.0 / (double)online : NAN, "B");
	rep_num("loadgen_rss_kb", (double)lg_proc_rss_kb(getpid()), "KiB");
	rep_hist("login_latency", merged(offsetof(struct lg_worker, lat_login)));
	if (g_opts.hold > 0) {
		double end = now_s() + g_opts.hold;

		while (now_s() < end && !g_interrupted) {
			sleep_s(fmin(1, end - now_s()));
			progress("hold", t0);
		}
		rep_num("online_after_hold", (double)sum(C_ONLINE), NULL);
	}
	close_all(t0);
}

static void run_presence(double t0)
{
	struct meter a, b;
	double run_s;
	uint64_t online;

	connect_all(t0);
	sleep_s(g_opts.settle);
	online = sum(C_ONLINE);
	g_target = online * (uint64_t)g_opts.changes * (uint64_t)g_opts.contacts;
	meter_read(&a);
	set_phase(PH_RUN);
	wait_until(presence_done, recv_count, g_opts.drain,
		   g_opts.duration + g_opts.drain, "presence", t0);
	meter_read(&b);
	set_phase(PH_DRAIN);
	run_s = (double)max_ctr(C_LAST_RECV_NS) / 1e9 - a.t;
	rep_num("presence_sent", (double)sum(C_PRES_SENT), NULL);
	rep_num("presence_received", (double)sum(C_PRES_RECV), NULL);
	rep_num("presence_expected", (double)g_target, NULL);
	rep_num("delivered_per_s", run_s > 0 ? (double)sum(C_PRES_RECV) / run_s : NAN,
		"presences/s");
	rep_num("sends_skipped", (double)sum(C_BEHIND), NULL);
	rep_hist("latency", merged(offsetof(struct lg_worker, lat_msg)));
	rep_cpu(&a, &b, "delivered", (double)sum(C_PRES_RECV));
	close_all(t0);
}

static void run_rosters(double t0)
{
	struct meter a, b;
	double s;

	connect_all(t0);
	g_target = sum(C_ONLINE) * (uint64_t)g_opts.contacts;
	meter_read(&a);
	set_phase(PH_RUN);
	/* a server may take long to answer the first subscription: every
	 * one changes two stored rosters; wait the whole --duration */
	s = wait_until(subs_done, recv_count, g_opts.duration, g_opts.duration,
		       "rosters", t0);
	meter_read(&b);
	rep_num("subscribe_sent", (double)sum(C_SUB_SENT), NULL);
	rep_num("subscribed_received", (double)sum(C_SUBS_DONE), NULL);
	rep_num("subscribed_expected", (double)g_target, NULL);
	rep_num("rosters_complete", sum(C_SUBS_DONE) >= g_target ? 1 : 0, NULL);
	rep_num("rosters_s", s, "s");
	rep_cpu(&a, &b, NULL, 0);
	close_all(t0);
}

static void print_pairs(void)
{
	int half = g_opts.contacts / 2;

	for (int i = 0; i < g_opts.users; i++)
		for (int d = 1; d <= half; d++) {
			int j = (i + d) % g_opts.users;

			if (j == i || (2 * d == g_opts.users && j < i))
				continue;
			printf("%s%d@%s %s%d@%s\n", g_opts.prefix, g_opts.first + i,
			       g_opts.domain, g_opts.prefix, g_opts.first + j, g_opts.domain);
		}
}

/* ---- workers ---- */

static void wake_cb(struct ev_loop *loop, ev_async *a, int revents)
{
	struct lg_worker *w = lg_container_of(a, struct lg_worker, wake);
	int phase = atomic_load(&g_phase);

	if (phase == w->last_phase)
		return;
	w->last_phase = phase;
	lg_sc_phase(w, phase);
	w->tick.repeat = lg_sc_tick_interval(w);
	ev_timer_again(loop, &w->tick);
}

static void tick_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
	lg_sc_tick(lg_container_of(t, struct lg_worker, tick));
}

static void flush_cb(struct ev_loop *loop, ev_prepare *p, int revents)
{
	lg_conn_flush_all(lg_container_of(p, struct lg_worker, flush));
}

static void *worker_main(void *arg)
{
	struct lg_worker *w = arg;

	ev_run(w->loop, 0);
	return NULL;
}

static void worker_init(struct lg_worker *w, int id)
{
	w->id = id;
	w->loop = ev_loop_new(EVBACKEND_EPOLL | EVFLAG_NOENV);
	if (!w->loop)
		w->loop = ev_loop_new(EVFLAG_AUTO);
	ev_async_init(&w->wake, wake_cb);
	ev_async_start(w->loop, &w->wake);
	ev_init(&w->tick, tick_cb);
	w->tick.repeat = 0.05;
	ev_timer_again(w->loop, &w->tick);
	ev_prepare_init(&w->flush, flush_cb);
	ev_prepare_start(w->loop, &w->flush);
	w->rng = (lg_now_ns() ^ (0x9E3779B97F4A7C15ull * (uint64_t)(id + 1))) | 1;
	pthread_mutex_init(&w->refill_lock, NULL);
	lg_sc_setup(w);
}

static void worker_free(struct lg_worker *w)
{
	for (int k = 0; k < w->nconns; k++)
		lg_conn_deinit(&w->conns[k]);
	free(w->conns);
	free(w->free_slots);
	free(w->refill);
	free(w->refill_spare);
	pthread_mutex_destroy(&w->refill_lock);
	ev_loop_destroy(w->loop);
}

/* ---- command line ---- */

static void usage(FILE *f)
{
	fputs("usage: loadgen SCENARIO [options]\n"
	      "scenarios: login chat idle presence rosters serve selftest\n"
	      "  --host ADDR (127.0.0.1)  --port N (5222)  --domain D (localhost)\n"
	      "  --users N (1000)  --first N (1)  --user-prefix P (u)  --password P (p)\n"
	      "  --resource R (lg)  --tls none|starttls|direct  --mech SCRAM-SHA-256|\n"
	      "  SCRAM-SHA-1|PLAIN  --rate R (0 = open loop)  --duration S (20)\n"
	      "  --drain S (5)  --ramp-rate CONNS/S (0 = no limit)  --concurrency N (200)\n"
	      "  --window N (8, open loop chat)  --size BYTES (message body)\n"
	      "  --count N (login: logins in all, default --users)  --no-session\n"
	      "  --contacts K (10)  --changes M (10)  --print-pairs (rosters)\n"
	      "  --settle S (3)  --hold S (0)  --timeout S (30)  --to-full\n"
	      "  --transport tcp|ws (ws: XMPP over WebSocket, RFC 7395; --port is\n"
	      "    then the HTTP port)  --ws-path PATH (/xmpp-websocket)\n"
	      "  --smacks (XEP-0198: <enable/> after bind, answer <r/>)\n"
	      "  -j, --jobs N (1 worker thread)  --src-addrs N (16)\n"
	      "  --scram-cache FILE (derived SCRAM keys, kept between runs)\n"
	      "  --resume FILE (TLS: offer each account's last session ticket,\n"
	      "    kept in FILE between runs)\n"
	      "  --server-pid PID  --json  --quiet\n"
	      "  --host2 ADDR --port2 N --domain2 D --server-pid2 PID: a second\n"
	      "    server; the upper half of --users are its accounts, and in chat\n"
	      "    each account writes to its partner on the other server\n"
	      "  --warmup S (chat: one message from every account, up to S seconds\n"
	      "    to arrive, before measuring; 0 = none)\n"
	      "  --component DOMAIN --component-port N --component-secret S (chat:\n"
	      "    an echo component, XEP-0114, on the server's component port;\n"
	      "    each account writes to uN@DOMAIN and gets its message back)\n", f);
}

static int parse_enum(const char *v, const char *const *names, int n)
{
	for (int i = 0; i < n; i++)
		if (strcasecmp(v, names[i]) == 0)
			return i;
	return -1;
}

enum { O_HOST = 256, O_PORT, O_DOMAIN, O_USERS, O_FIRST, O_PREFIX, O_PASSWORD,
       O_RESOURCE, O_TLS, O_MECH, O_RATE, O_DURATION, O_DRAIN, O_RAMP, O_SETTLE,
       O_HOLD, O_TIMEOUT, O_PID, O_JSON, O_QUIET, O_CONC, O_WINDOW, O_SRC,
       O_COMPONENT, O_COMPONENT_PORT, O_COMPONENT_SECRET,
       O_SIZE, O_COUNT, O_CONTACTS, O_CHANGES, O_TOFULL, O_NOSESSION, O_PAIRS,
       O_CACHE, O_SMACKS, O_RESUME, O_HOST2, O_PORT2, O_DOMAIN2, O_PID2, O_WARMUP,
       O_TRANSPORT, O_WS_PATH };

static const struct option long_opts[] = {
	{ "host", 1, NULL, O_HOST }, { "port", 1, NULL, O_PORT },
	{ "domain", 1, NULL, O_DOMAIN }, { "users", 1, NULL, O_USERS },
	{ "first", 1, NULL, O_FIRST }, { "user-prefix", 1, NULL, O_PREFIX },
	{ "password", 1, NULL, O_PASSWORD }, { "resource", 1, NULL, O_RESOURCE },
	{ "tls", 1, NULL, O_TLS }, { "mech", 1, NULL, O_MECH },
	{ "rate", 1, NULL, O_RATE }, { "duration", 1, NULL, O_DURATION },
	{ "drain", 1, NULL, O_DRAIN }, { "ramp-rate", 1, NULL, O_RAMP },
	{ "settle", 1, NULL, O_SETTLE }, { "hold", 1, NULL, O_HOLD },
	{ "timeout", 1, NULL, O_TIMEOUT }, { "server-pid", 1, NULL, O_PID },
	{ "json", 0, NULL, O_JSON }, { "quiet", 0, NULL, O_QUIET },
	{ "concurrency", 1, NULL, O_CONC }, { "window", 1, NULL, O_WINDOW },
	{ "jobs", 1, NULL, 'j' }, { "src-addrs", 1, NULL, O_SRC },
	{ "size", 1, NULL, O_SIZE }, { "count", 1, NULL, O_COUNT },
	{ "contacts", 1, NULL, O_CONTACTS }, { "changes", 1, NULL, O_CHANGES },
	{ "component", 1, NULL, O_COMPONENT },
	{ "component-port", 1, NULL, O_COMPONENT_PORT },
	{ "component-secret", 1, NULL, O_COMPONENT_SECRET },
	{ "to-full", 0, NULL, O_TOFULL }, { "no-session", 0, NULL, O_NOSESSION },
	{ "print-pairs", 0, NULL, O_PAIRS }, { "scram-cache", 1, NULL, O_CACHE },
	{ "smacks", 0, NULL, O_SMACKS }, { "resume", 1, NULL, O_RESUME },
	{ "host2", 1, NULL, O_HOST2 }, { "port2", 1, NULL, O_PORT2 },
	{ "domain2", 1, NULL, O_DOMAIN2 }, { "server-pid2", 1, NULL, O_PID2 },
	{ "warmup", 1, NULL, O_WARMUP },
	{ "transport", 1, NULL, O_TRANSPORT }, { "ws-path", 1, NULL, O_WS_PATH },
	{ "help", 0, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int set_option(int opt, const char *v)
{
	static const char *const tls[] = { "none", "starttls", "direct" };
	static const char *const mech[] = { "SCRAM-SHA-256", "SCRAM-SHA-1", "PLAIN" };
	static const char *const transport[] = { "tcp", "ws" };
	struct lg_opts *o = &g_opts;
	int e;

	switch (opt) {
	case O_HOST: o->host = v; break;
	case O_PORT: o->port = atoi(v); break;
	case O_DOMAIN: o->domain = v; break;
	case O_USERS: o->users = atoi(v); break;
	case O_FIRST: o->first = atoi(v); break;
	case O_PREFIX: o->prefix = v; break;
	case O_PASSWORD: o->password = v; break;
	case O_RESOURCE: o->resource = v; break;
	case O_TLS:
		if ((e = parse_enum(v, tls, 3)) < 0)
			return -1;
		o->tls = (enum lg_tls)e;
		break;
	case O_MECH:
		if ((e = parse_enum(v, mech, 3)) < 0)
			return -1;
		o->mech = (enum lg_mech)e;
		break;
	case O_RATE: o->rate = atof(v); break;
	case O_DURATION: o->duration = atof(v); break;
	case O_DRAIN: o->drain = atof(v); break;
	case O_RAMP: o->ramp_rate = atof(v); break;
	case O_SETTLE: o->settle = atof(v); break;
	case O_HOLD: o->hold = atof(v); break;
	case O_TIMEOUT: o->timeout = atof(v); break;
	case O_PID: o->server_pid = atoi(v); break;
	case O_JSON: o->json = true; break;
	case O_QUIET: o->quiet = true; break;
	case O_CONC: o->concurrency = atoi(v); break;
	case O_WINDOW: o->window = atoi(v); break;
	case 'j': o->jobs = atoi(v); break;
	case O_SRC: o->src_addrs = atoi(v); break;
	case O_SIZE: o->body_size = atoi(v); break;
	case O_COUNT: o->count = atoi(v); break;
	case O_CONTACTS: o->contacts = atoi(v); break;
	case O_CHANGES: o->changes = atoi(v); break;
	case O_TOFULL: o->to_full = true; break;
	case O_COMPONENT: o->component = optarg; break;
	case O_COMPONENT_PORT: o->component_port = atoi(optarg); break;
	case O_COMPONENT_SECRET: o->component_secret = optarg; break;
	case O_NOSESSION: o->session = false; break;
	case O_PAIRS: o->print_pairs = true; break;
	case O_CACHE: o->scram_cache = v; break;
	case O_SMACKS: o->smacks = true; break;
	case O_RESUME: o->resume = v; break;
	case O_HOST2: o->host2 = v; break;
	case O_PORT2: o->port2 = atoi(v); break;
	case O_DOMAIN2: o->domain2 = v; break;
	case O_PID2: o->server_pid2 = atoi(v); break;
	case O_WARMUP: o->warmup = atof(v); break;
	case O_TRANSPORT:
		if ((e = parse_enum(v, transport, 2)) < 0)
			return -1;
		o->transport = (enum lg_transport)e;
		break;
	case O_WS_PATH: o->ws_path = v; break;
	default: return -1;
	}
	return 0;
}

static int parse_args(int argc, char **argv)
{
	static const char *const names[] = {
		"login", "chat", "idle", "presence", "rosters", "serve", "selftest",
	};
	int opt, sc;

	while ((opt = getopt_long(argc, argv, "hj:", long_opts, NULL)) != -1) {
		if (opt == 'h') {
			usage(stdout);
			exit(0);
		}
		if (set_option(opt, optarg) != 0) {
			usage(stderr);
			return -1;
		}
	}
	if (optind != argc - 1 || (sc = parse_enum(argv[optind], names, 7)) < 0) {
		usage(stderr);
		return -1;
	}
	g_opts.scenario = (enum lg_scenario)sc;
	if (g_opts.count < 0)
		g_opts.count = g_opts.users;
	if (g_opts.users < 1 || g_opts.jobs < 1 || g_opts.jobs > 64 || g_opts.port < 1 ||
	    g_opts.port > 65535 || g_opts.concurrency < 1 || g_opts.window < 1 ||
	    g_opts.src_addrs < 0 || g_opts.src_addrs > 65000 || g_opts.contacts < 0 ||
	    g_opts.contacts % 2 != 0 || g_opts.timeout <= 0) {
		fputs("loadgen: an option is out of range (contacts must be even)\n", stderr);
		return -1;
	}
	if (g_opts.transport == LG_TR_WS && g_opts.tls == LG_TLS_STARTTLS) {
		fputs("loadgen: no STARTTLS over WebSocket (--tls direct for wss)\n", stderr);
		return -1;
	}
	if ((g_opts.scenario == LG_SC_ROSTERS || g_opts.scenario == LG_SC_PRESENCE) &&
	    g_opts.contacts >= g_opts.users) {
		fputs("loadgen: --contacts must be below --users\n", stderr);
		return -1;
	}
	if (g_opts.port2 != 0) {
		if (!g_opts.host2)
			g_opts.host2 = g_opts.host;
		if (!g_opts.domain2 || g_opts.port2 < 1 || g_opts.port2 > 65535 ||
		    g_opts.users % 2 != 0 || g_opts.warmup < 0 ||
		    (g_opts.scenario != LG_SC_LOGIN && g_opts.scenario != LG_SC_CHAT &&
		     g_opts.scenario != LG_SC_IDLE)) {
			fputs("loadgen: a second server needs --domain2, an even --users "
			      "and the login, chat or idle scenario\n", stderr);
			return -1;
		}
	}
	return 0;
}

/* Raises the soft descriptor limit to the hard one; caps what we hold. */
static void raise_nofile(void)
{
	struct rlimit rl;
	int need, spare = 32 + 8 * g_opts.jobs;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	g_fd_limit = rl.rlim_cur > 0x7fffffff ? 0x7fffffff : (int)rl.rlim_cur;
	if (g_opts.scenario == LG_SC_SERVE)
		return;
	if (g_opts.scenario == LG_SC_LOGIN) {
		need = 2 * g_opts.concurrency + spare;
		if (need > g_fd_limit)
			g_opts.concurrency = (g_fd_limit - spare) / 2;
		return;
	}
	need = g_opts.users + spare;
	g_users_requested = g_opts.users;
	if (need > g_fd_limit) {
		fprintf(stderr, "loadgen: descriptor limit %d: holding at most %d "
			"connections instead of %d\n", g_fd_limit, g_fd_limit - spare,
			g_opts.users);
		g_opts.users = g_fd_limit - spare;
		if (g_opts.port2 > 0) {	/* the halves would move */
			fputs("loadgen: two servers need every account held\n", stderr);
			exit(2);
		}
	}
}

static void on_signal(int sig)
{
	g_interrupted = 1;
}

static void report_header(void)
{
	static const char *const names[] = {
		"login", "chat", "idle", "presence", "rosters", "serve", "selftest",
	};
	struct lg_buf sys = { 0 };

	lg_buf_adds(&g_json, "{");
	rep_str("scenario", names[g_opts.scenario]);
	rep_str("tls", g_opts.tls == LG_TLS_NONE ? "none" :
		g_opts.tls == LG_TLS_STARTTLS ? "starttls" : "direct");
	rep_str("transport", g_opts.transport == LG_TR_WS ? "ws" : "tcp");
	rep_str("mech", lg_mech_name(g_opts.mech));
	rep_num("users", g_opts.users, NULL);
	if (g_opts.port2 > 0) {
		rep_str("domain", g_opts.domain);
		rep_str("domain2", g_opts.domain2);
	}
	if (g_users_requested > g_opts.users)
		rep_num("users_requested", g_users_requested, NULL);
	rep_num("jobs", g_opts.jobs, NULL);
	rep_num("rate", g_opts.rate, "/s");
	rep_num("fd_limit", g_fd_limit, NULL);
	lg_sysinfo(&sys);
	rep_str("machine", sys.p);
	lg_buf_free(&sys);
}

int main(int argc, char **argv)
{
	double t0;

	if (parse_args(argc, argv) != 0)
		return 2;
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	raise_nofile();
	if (g_opts.scenario == LG_SC_SERVE)
		return lg_serve() == 0 ? 0 : 1;
	if (g_opts.scenario == LG_SC_SELFTEST)
		return lg_selftest() == 0 ? 0 : 1;
	if (g_opts.scenario == LG_SC_ROSTERS && g_opts.print_pairs) {
		print_pairs();
		return 0;
	}
	if (lg_net_init() != 0) {
		fprintf(stderr, "loadgen: bad --host %s (an IPv4 address)\n", g_opts.host);
		return 2;
	}
	if (g_opts.scram_cache && lg_sasl_cache_load(g_opts.scram_cache) < 0)
		fprintf(stderr, "loadgen: cannot read %s\n", g_opts.scram_cache);
	if (g_opts.resume && g_opts.tls != LG_TLS_NONE &&
	    lg_tls_sessions_load(g_opts.resume) < 0)
		fprintf(stderr, "loadgen: cannot read %s\n", g_opts.resume);
	g_online = lg_xcalloc((size_t)g_opts.users, sizeof(*g_online));
	if (g_opts.scenario != LG_SC_LOGIN)
		g_user_conn = lg_xcalloc((size_t)g_opts.users, sizeof(*g_user_conn));
	g_workers = lg_xcalloc((size_t)g_opts.jobs, sizeof(*g_workers));
	for (int k = 0; k < g_opts.jobs; k++)
		worker_init(&g_workers[k], k);
	for (int k = 0; k < g_opts.jobs; k++)
		pthread_create(&g_workers[k].thread, NULL, worker_main, &g_workers[k]);

	report_header();
	t0 = now_s();
	switch (g_opts.scenario) {
	case LG_SC_LOGIN: run_login(t0); break;
	case LG_SC_CHAT: run_chat(t0); break;
	case LG_SC_IDLE: run_idle(t0); break;
	case LG_SC_PRESENCE: run_presence(t0); break;
	case LG_SC_ROSTERS: run_rosters(t0); break;
	default: break;
	}
	rep_num("pbkdf2_computed", (double)lg_sasl_pbkdf2_count(), NULL);
	if (g_opts.resume && g_opts.tls != LG_TLS_NONE)
		rep_num("tls_resumed", (double)sum(C_TLS_RESUMED), NULL);
	rep_num("bytes_out", (double)sum(C_BYTES_OUT), "B");
	rep_num("bytes_in", (double)sum(C_BYTES_IN), "B");
	rep_errors();
	if (g_interrupted)
		rep_str("interrupted", "yes");
	set_phase(PH_EXIT);
	for (int k = 0; k < g_opts.jobs; k++)
		pthread_join(g_workers[k].thread, NULL);
	for (int k = 0; k < g_opts.jobs; k++)
		worker_free(&g_workers[k]);
	if (g_opts.scram_cache && lg_sasl_cache_save(g_opts.scram_cache) < 0)
		fprintf(stderr, "loadgen: cannot write %s\n", g_opts.scram_cache);
	lg_sasl_cache_free();
	if (g_opts.resume && g_opts.tls != LG_TLS_NONE &&
	    lg_tls_sessions_save(g_opts.resume) < 0)
		fprintf(stderr, "loadgen: cannot write %s\n", g_opts.resume);
	lg_tls_sessions_free();
	lg_buf_adds(&g_json, "}");
	if (g_opts.json)
		printf("%s\n", g_json.p);
	else
		fputs(g_text.p, stdout);
	lg_buf_free(&g_json);
	lg_buf_free(&g_text);
	free(g_workers);
	free(g_user_conn);
	free((void *)g_online);
	if (g_ssl_ctx)
		SSL_CTX_free(g_ssl_ctx);
	return 0;
}
