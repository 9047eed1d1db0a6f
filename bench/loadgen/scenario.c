/*
 * scenario.c - what each scenario does when a connection comes online, a
 * stanza arrives, the phase changes or the pacing timer ticks.
 *
 *   login     slots cycle through the accounts: log in, (roster get and
 *             initial presence,) close, next account
 *   chat      every account online; messages to random online accounts,
 *             at a fixed aggregate rate or open loop with a window per sender;
 *             with two servers each account writes to its partner on the
 *             other one, and a warm-up message from every account opens the
 *             server-to-server streams before the measured part
 *   idle      every account online, then nothing
 *   presence  every account online; each sends --changes presence updates
 *   rosters   every account online; the subscription dance that makes each
 *             account a mutual contact of its K ring neighbours
 *
 * Messages and presence updates carry "LG <sender> <seq> <send time ns>"
 * in their body or status; the receiver turns that into a latency sample.
 */
#include "lg.h"

#include <stdlib.h>
#include <string.h>

#define OUT_HIGH 65536	/* queue no more on a connection holding this much */
#define SWEEP_TICKS 100	/* open loop: full refill sweep every so many ticks */

static const char pad[] =
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";

static int share(int total, int id)
{
	return total / g_opts.jobs + (id < total % g_opts.jobs ? 1 : 0);
}

static int conc_per_worker(void)
{
	int c = (g_opts.concurrency + g_opts.jobs - 1) / g_opts.jobs;

	return c < 1 ? 1 : c;
}

void lg_sc_setup(struct lg_worker *w)
{
	int n;

	if (g_opts.scenario == LG_SC_LOGIN) {
		w->quota = (uint64_t)share(g_opts.count, w->id);
		n = 2 * conc_per_worker();
		if ((uint64_t)n > w->quota)
			n = w->quota ? (int)w->quota : 1;
		w->conns = lg_xcalloc((size_t)n, sizeof(*w->conns));
		w->free_slots = lg_xcalloc((size_t)n, sizeof(int));
		w->nconns = n;
		for (int k = 0; k < n; k++) {
			lg_conn_init(&w->conns[k], w);
			w->free_slots[w->nfree++] = n - 1 - k;
		}
		w->next_user = g_opts.first + w->id;
		return;
	}
	n = share(g_opts.users, w->id);
	w->conns = lg_xcalloc((size_t)(n ? n : 1), sizeof(*w->conns));
	w->nconns = n;
	for (int k = 0; k < n; k++) {
		struct lg_conn *c = &w->conns[k];
		int idx = w->id + k * g_opts.jobs;

		lg_conn_init(c, w);
		c->user = g_opts.first + idx;
		g_user_conn[idx] = c;
	}
}

static void start_failed(struct lg_worker *w, int user, int err)
{
	lg_ctr_add(w, C_ERR_CONNECT, 1);
	lg_ctr_add(w, C_START_FAIL, 1);
	lg_ctr_add(w, C_LOGIN_FAIL, 1);
	if (!w->first_error[0])
		snprintf(w->first_error, sizeof(w->first_error), "%s%d: connect: %s",
			 g_opts.prefix, user, strerror(-err));
}

/* Starts connections while the ramp rate and the concurrency allow. */
static void start_more(struct lg_worker *w)
{
	int conc = conc_per_worker();
	uint64_t due = UINT64_MAX;

	if (atomic_load(&g_phase) != PH_CONNECT)
		return;
	if (g_opts.ramp_rate > 0)
		due = (uint64_t)((double)(lg_now_ns() - w->t_phase) / 1e9 *
				 g_opts.ramp_rate / g_opts.jobs) + 1;
	while (w->handshaking < conc && w->started < due) {
		struct lg_conn *c;
		int user, rc;

		if (g_opts.scenario == LG_SC_LOGIN) {
			if (w->logins >= w->quota || w->nfree == 0)
				return;
			c = &w->conns[w->free_slots[--w->nfree]];
			user = w->next_user;
			w->next_user += g_opts.jobs;
			if (w->next_user >= g_opts.first + g_opts.users)
				w->next_user -= g_opts.users;
			w->logins++;
		} else {
			if (w->rr >= w->nconns)
				return;
			c = &w->conns[w->rr++];
			user = c->user;
		}
		w->started++;
		lg_ctr_add(w, C_STARTED, 1);
		rc = lg_conn_start(c, user);
		if (rc < 0) {
			start_failed(w, user, rc);
			if (g_opts.scenario == LG_SC_LOGIN)
				w->free_slots[w->nfree++] = (int)(c - w->conns);
		}
	}
}

/* ---- chat ---- */

/* Two servers: the account at the same place in the other half. */
static int partner(int self)
{
	int half = g_opts.users / 2, idx = self - g_opts.first;
	int p = idx < half ? idx + half : idx - half;

	if (p >= half * 2 ||
	    !atomic_load_explicit(&g_online[p], memory_order_relaxed))
		return -1;
	return g_opts.first + p;
}

static int pick_peer(struct lg_worker *w, int self)
{
	if (g_opts.port2 > 0)
		return partner(self);
	if (g_opts.users < 2)
		return -1;
	for (int i = 0; i < 8; i++) {
		int r = (int)(lg_rand(&w->rng) % (uint64_t)g_opts.users);

		if (r == self - g_opts.first)
			continue;
		if (atomic_load_explicit(&g_online[r], memory_order_relaxed))
			return g_opts.first + r;
	}
	/* few online, or very few users: look for one in order */
	for (int i = 0, r = (int)(lg_rand(&w->rng) % (uint64_t)g_opts.users);
	     i < g_opts.users; i++, r = (r + 1) % g_opts.users)
		if (r != self - g_opts.first &&
		    atomic_load_explicit(&g_online[r], memory_order_relaxed))
			return g_opts.first + r;
	return -1;
}

/* Appends "LG <user> <seq> <now>" and padding up to --size bytes. */
static void add_stamp(struct lg_conn *c)
{
	struct lg_buf *b = &c->out;
	size_t start = b->len, have;

	lg_buf_adds(b, "LG ");
	lg_buf_addu(b, (uint64_t)c->user);
	lg_buf_adds(b, " ");
	lg_buf_addu(b, c->seq);
	lg_buf_adds(b, " ");
	lg_buf_addu(b, lg_now_ns());
	have = b->len - start;
	if (have + 1 < (size_t)g_opts.body_size) {
		size_t left = (size_t)g_opts.body_size - have - 1;

		lg_buf_adds(b, " ");
		while (left > 0) {
			size_t k = left < sizeof(pad) - 1 ? left : sizeof(pad) - 1;

			lg_buf_add(b, pad, k);
			left -= k;
		}
	}
}

static bool chat_send(struct lg_conn *c)
{
	struct lg_buf *b = &c->out;
	int to = g_opts.component ? c->user : pick_peer(c->w, c->user);

	if (to < 0)
		return false;
	lg_buf_adds(b, "<message type='chat' to='");
	if (g_opts.component) {		/* the account's contact at the echo */
		lg_buf_adds(b, g_opts.prefix);
		lg_buf_addu(b, (uint64_t)to);
		lg_buf_adds(b, "@");
		lg_buf_adds(b, g_opts.component);
	} else {
		lg_jid_add(b, to, g_opts.to_full);
	}
	lg_buf_adds(b, "'><body>");
	add_stamp(c);
	lg_buf_adds(b, "</body></message>");
	c->seq++;
	atomic_fetch_add_explicit(&c->inflight, 1, memory_order_relaxed);
	lg_ctr_add(c->w, C_MSG_SENT, 1);
	lg_conn_dirty(c);
	return true;
}

static bool can_send(const struct lg_conn *c)
{
	return c->state == ST_ONLINE && lg_conn_backlog(c) < OUT_HIGH;
}

/* Open loop: send until the sender's window is full. */
static void chat_fill(struct lg_conn *c)
{
	while (atomic_load_explicit(&g_phase, memory_order_relaxed) == PH_RUN &&
	       can_send(c) &&
	       atomic_load_explicit(&c->inflight, memory_order_relaxed) < g_opts.window)
		if (!chat_send(c))
			break;
}

static void refill_push(struct lg_worker *w, int idx)
{
	pthread_mutex_lock(&w->refill_lock);
	if (w->nrefill == w->caprefill) {
		w->caprefill = w->caprefill ? 2 * w->caprefill : 1024;
		w->refill = realloc(w->refill, (size_t)w->caprefill * sizeof(int));
		if (!w->refill)
			abort();
	}
	w->refill[w->nrefill++] = idx;
	pthread_mutex_unlock(&w->refill_lock);
}

static void refill_drain(struct lg_worker *w)
{
	int *list, n, cap;

	pthread_mutex_lock(&w->refill_lock);
	list = w->refill;
	n = w->nrefill;
	cap = w->caprefill;
	w->refill = w->refill_spare;
	w->caprefill = w->capspare;
	w->nrefill = 0;
	pthread_mutex_unlock(&w->refill_lock);
	for (int i = 0; i < n; i++)
		chat_fill(g_user_conn[list[i]]);
	w->refill_spare = list;
	w->capspare = cap;
}

void lg_sc_message(struct lg_conn *c, const char *body, size_t n)
{
	struct lg_worker *w = c->w;
	char *p;
	long from;
	uint64_t ts, now;

	if (n < 4 || memcmp(body, "LG ", 3) != 0)
		return;
	from = strtol(body + 3, &p, 10);
	strtoul(p, &p, 10);
	ts = strtoull(p, NULL, 10);
	now = lg_now_ns();
	/* the warm-up's messages wait for streams to be set up: not samples */
	if (ts && ts <= now &&
	    atomic_load_explicit(&g_phase, memory_order_relaxed) > PH_WARM_ALL)
		lg_hist_add(&w->lat_msg, now - ts);
	lg_ctr_add(w, C_MSG_RECV, 1);
	atomic_store_explicit(&w->ctr[C_LAST_RECV_NS], now, memory_order_relaxed);
	if (from < g_opts.first || from >= g_opts.first + g_opts.users || !g_user_conn)
		return;
	struct lg_conn *s = g_user_conn[from - g_opts.first];

	atomic_fetch_sub_explicit(&s->inflight, 1, memory_order_relaxed);
	if (g_opts.rate > 0 || atomic_load_explicit(&g_phase, memory_order_relaxed) != PH_RUN)
		return;
	if (s->w == w)
		chat_fill(s);
	else
		refill_push(s->w, (int)(from - g_opts.first));
}

/* ---- presence and rosters ---- */

static bool presence_send(struct lg_conn *c)
{
	struct lg_buf *b = &c->out;

	if (c->left == 0)
		return false;
	lg_buf_adds(b, (c->seq & 1) ? "<presence><status>" :
		    "<presence><show>away</show><status>");
	add_stamp(c);
	lg_buf_adds(b, "</status></presence>");
	c->seq++;
	c->left--;
	lg_ctr_add(c->w, C_PRES_SENT, 1);
	lg_conn_dirty(c);
	return true;
}

static void presence_open_loop(struct lg_worker *w)
{
	for (int k = 0; k < w->nconns; k++) {
		struct lg_conn *c = &w->conns[k];

		if (c->left && c->state == ST_ONLINE && lg_conn_backlog(c) == 0)
			presence_send(c);
	}
}

/* Ring distance from a to b, in [0, users). */
static int ring(int a, int b)
{
	int d = (b - a) % g_opts.users;

	return d < 0 ? d + g_opts.users : d;
}

static void send_sub(struct lg_conn *c, const char *type, int to)
{
	struct lg_buf *b = &c->out;

	lg_buf_adds(b, "<presence type='");
	lg_buf_adds(b, type);
	lg_buf_adds(b, "' to='");
	lg_jid_add(b, to, false);
	lg_buf_adds(b, "'/>");
	lg_conn_dirty(c);
}

static void subscribe_upper(struct lg_conn *c)
{
	for (int d = 1; d <= g_opts.contacts / 2; d++) {
		int to = g_opts.first + (c->user - g_opts.first + d) % g_opts.users;

		send_sub(c, "subscribe", to);
		lg_ctr_add(c->w, C_SUB_SENT, 1);
	}
}

void lg_sc_presence(struct lg_conn *c, const char *status, size_t n)
{
	struct lg_worker *w = c->w;
	uint32_t sf = c->sflags;
	int peer = c->peer;
	uint64_t ts, now;
	char *p;

	if (sf & SF_SUBSCRIBE) {
		if (peer < 0)
			return;
		send_sub(c, "subscribed", peer);
		if (g_opts.scenario == LG_SC_ROSTERS) {
			int d = ring(peer, c->user);	/* peer is below us */

			if (d >= 1 && d <= g_opts.contacts / 2) {
				send_sub(c, "subscribe", peer);
				lg_ctr_add(w, C_SUB_SENT, 1);
			}
		}
		return;
	}
	if (sf & SF_SUBSCRIBED) {
		lg_ctr_add(w, C_SUBS_DONE, 1);
		return;
	}
	if ((sf & (SF_TYPE_ERROR | SF_UNAVAILABLE | SF_OTHER_TYPE)) || peer < 0 ||
	    peer == c->user)
		return;
	if (n < 4 || memcmp(status, "LG ", 3) != 0)
		return;
	strtol(status + 3, &p, 10);
	strtoul(p, &p, 10);
	ts = strtoull(p, NULL, 10);
	now = lg_now_ns();
	if (ts && ts <= now)
		lg_hist_add(&w->lat_msg, now - ts);
	lg_ctr_add(w, C_PRES_RECV, 1);
	atomic_store_explicit(&w->ctr[C_LAST_RECV_NS], now, memory_order_relaxed);
}

/* ---- pacing ---- */

/* Fixed rate: as many sends as the clock says are due, round robin. */
static void pace(struct lg_worker *w, bool (*send_one)(struct lg_conn *))
{
	double rate = g_opts.rate / g_opts.jobs;
	uint64_t due = (uint64_t)((double)(lg_now_ns() - w->t_phase) / 1e9 * rate);
	uint64_t n, cap = (uint64_t)(rate * 0.01) + 16;	/* 10 ms worth */
	int misses = 0;

	if (due <= w->paced || w->nconns == 0)
		return;
	n = due - w->paced;
	if (n > cap) {
		lg_ctr_add(w, C_BEHIND, n - cap);
		w->paced += n - cap;
		n = cap;
	}
	while (n > 0 && misses < w->nconns) {
		struct lg_conn *c = &w->conns[w->rr++ % w->nconns];

		if (can_send(c) && send_one(c)) {
			n--;
			w->paced++;
			misses = 0;
		} else {
			misses++;
		}
	}
	if (n > 0) {
		lg_ctr_add(w, C_BEHIND, n);
		w->paced += n;
	}
}

void lg_sc_tick(struct lg_worker *w)
{
	int phase = atomic_load(&g_phase);

	w->ticks++;
	if (phase == PH_CONNECT) {
		start_more(w);
		return;
	}
	if (phase != PH_RUN)
		return;
	if (g_opts.scenario == LG_SC_CHAT) {
		if (g_opts.rate > 0) {
			pace(w, chat_send);
			return;
		}
		refill_drain(w);
		if (w->ticks % SWEEP_TICKS == 0)
			for (int k = 0; k < w->nconns; k++)
				chat_fill(&w->conns[k]);
	} else if (g_opts.scenario == LG_SC_PRESENCE) {
		if (g_opts.rate > 0)
			pace(w, presence_send);
		else
			presence_open_loop(w);
	}
}

double lg_sc_tick_interval(struct lg_worker *w)
{
	int phase = atomic_load(&g_phase);
	bool sends = g_opts.scenario == LG_SC_CHAT || g_opts.scenario == LG_SC_PRESENCE;

	return phase == PH_CONNECT || (phase == PH_RUN && sends) ? 0.001 : 0.05;
}

static void phase_run(struct lg_worker *w)
{
	for (int k = 0; k < w->nconns; k++) {
		struct lg_conn *c = &w->conns[k];

		if (c->state != ST_ONLINE)
			continue;
		switch (g_opts.scenario) {
		case LG_SC_CHAT:
			if (g_opts.rate <= 0)
				chat_fill(c);
			break;
		case LG_SC_PRESENCE:
			c->left = (uint32_t)g_opts.changes;
			break;
		case LG_SC_ROSTERS:
			subscribe_upper(c);
			break;
		default:
			break;
		}
	}
}

void lg_sc_phase(struct lg_worker *w, int phase)
{
	w->t_phase = lg_now_ns();
	w->started = 0;
	w->paced = 0;
	switch (phase) {
	case PH_CONNECT:
		start_more(w);
		break;
	case PH_WARM:
	case PH_WARM_ALL:
		/* one message from the first account of each server: the
		 * servers open their streams to each other (TLS, dialback)
		 * while it waits in their queues; then one from every other
		 * account, over the streams made */
		for (int k = 0; k < w->nconns; k++) {
			struct lg_conn *c = &w->conns[k];
			int idx = c->user - g_opts.first;
			bool opener = idx == 0 || (g_opts.port2 > 0 && idx == g_opts.users / 2);

			if (opener == (phase == PH_WARM) && can_send(c))
				chat_send(c);
		}
		break;
	case PH_RUN:
		phase_run(w);
		break;
	case PH_CLOSE:
		for (int k = 0; k < w->nconns; k++)
			if (w->conns[k].fd >= 0)
				lg_conn_close(&w->conns[k]);
		break;
	case PH_EXIT:
		ev_break(w->loop, EVBREAK_ALL);
		break;
	default:
		break;
	}
}

void lg_sc_online(struct lg_conn *c)
{
	if (g_opts.scenario != LG_SC_LOGIN || g_opts.session)
		lg_conn_sends(c, "<iq type='get' id='roster'><query xmlns='jabber:iq:roster'/>"
			      "</iq><presence/>");
	else
		lg_conn_close(c);
	start_more(c->w);
}

void lg_sc_session(struct lg_conn *c)
{
	if (g_opts.scenario == LG_SC_LOGIN)
		lg_conn_close(c);
}

void lg_sc_gone(struct lg_conn *c)
{
	struct lg_worker *w = c->w;

	if (g_opts.scenario == LG_SC_LOGIN)
		w->free_slots[w->nfree++] = (int)(c - w->conns);
	start_more(w);
}
