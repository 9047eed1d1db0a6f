/*
 * lg.h - the load generator: declarations shared by its files.
 *
 * The generator is one process. Each worker is a thread with its own libev
 * loop and its own share of the connections; the main thread only steers
 * (it sets the phase, reads counters and prints the report).
 *
 * Words:
 *   worker  a thread, its loop, its connection slots and its counters
 *   slot    a struct lg_conn; one per concurrent connection, reused between
 *           logins in the login scenario
 *   user    an account number in [opts.first, opts.first + opts.users);
 *           the account's local part is opts.prefix followed by the number;
 *           with a second server (--port2) the upper half of the numbers
 *           are accounts of the second server's domain
 *   phase   what the whole run does now (connect, run, drain, close, exit);
 *           only the main thread changes it, workers learn of it through an
 *           ev_async and read it from g_phase
 *   online  bound to a resource and initial presence sent
 *
 * Ownership: workers own their slots and everything hanging off them;
 * g_user_conn[] is written once before the threads start and only read later.
 */
#ifndef LG_H
#define LG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <ev.h>
#include <expat.h>
#include <openssl/ssl.h>

#define LG_VERSION "1.0"

#define lg_container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* ---- options ---- */

enum lg_tls { LG_TLS_NONE, LG_TLS_STARTTLS, LG_TLS_DIRECT };
enum lg_transport { LG_TR_TCP, LG_TR_WS };	/* XMPP on TCP; over WebSocket */
enum lg_mech { LG_MECH_SCRAM_SHA256, LG_MECH_SCRAM_SHA1, LG_MECH_PLAIN };
enum lg_scenario {
	LG_SC_LOGIN, LG_SC_CHAT, LG_SC_IDLE, LG_SC_PRESENCE, LG_SC_ROSTERS,
	LG_SC_SERVE, LG_SC_SELFTEST,
};

struct lg_opts {
	enum lg_scenario scenario;
	const char *host;	/* server address (IPv4 dotted quad) */
	int port;
	const char *domain;	/* XMPP domain of the accounts */
	int users;		/* accounts used */
	int first;		/* number of the first account */
	const char *prefix;	/* local part = prefix + number */
	const char *password;
	const char *resource;
	enum lg_tls tls;
	enum lg_transport transport;
	const char *ws_path;	/* --transport ws: the HTTP path of the endpoint */
	enum lg_mech mech;
	double rate;		/* messages (or presence changes) per second; 0 = open loop */
	double duration;	/* seconds of the run phase */
	double drain;		/* seconds to wait for stragglers after the run */
	double ramp_rate;	/* new connections per second; 0 = unbounded */
	double settle;		/* idle: seconds to wait before reading RSS */
	double hold;		/* idle: seconds to hold the connections after that */
	double timeout;		/* seconds for one connection to get online */
	int server_pid;
	bool json;
	bool quiet;
	int concurrency;	/* handshakes in progress at once (all workers) */
	int window;		/* open loop: unanswered messages per sender */
	int jobs;		/* worker threads */
	int src_addrs;		/* loopback source addresses 127.0.0.2 .. */
	int body_size;		/* bytes of message body (at least the header) */
	int count;		/* login: how many logins in all */
	int contacts;		/* presence/rosters: roster size K (even) */
	int changes;		/* presence: changes per account */
	bool to_full;		/* chat: address the full JID, not the bare one */
	bool session;		/* login: roster get + presence before closing */
	bool print_pairs;	/* rosters: only print the contact pairs */
	bool smacks;		/* XEP-0198: <enable/> after bind, answer <r/> */
	const char *scram_cache;	/* file of derived SCRAM keys, or NULL */
	const char *resume;	/* file of TLS session tickets by account, or NULL */
	/* a second server (--port2): the upper half of the accounts are its
	 * users, and in chat each account sends to its partner on the other
	 * server (user +- users/2), so every message crosses server to server */
	const char *host2;
	int port2;		/* 0: one server */
	const char *domain2;
	int server_pid2;
	double warmup;		/* chat: seconds at most for one message from
				 * every account to arrive before measuring */
	/* chat through an echo component (--component, component.c): each
	 * account writes to <its own local part>@component, and the
	 * component sends every message back */
	const char *component;	/* its domain, or NULL */
	int component_port;
	const char *component_secret;
};

extern struct lg_opts g_opts;

/* Whether account `user` lives on the second server (--port2). */
static inline bool lg_on_second(int user)
{
	return g_opts.port2 > 0 && user - g_opts.first >= g_opts.users / 2;
}

/* The echo component (component.c): connects and authenticates on the
 * calling thread, then echoes on a thread of its own. 0 or -1 (said). */
int lg_component_start(void);
void lg_component_stop(void);
uint64_t lg_component_echoed(void);

static inline const char *lg_domain_of(int user)
{
	return lg_on_second(user) ? g_opts.domain2 : g_opts.domain;
}

/* ---- growable byte buffer ---- */

struct lg_buf {
	char *p;
	size_t len;	/* bytes used */
	size_t cap;
	size_t off;	/* bytes already consumed from the front */
};

void *lg_xmalloc(size_t n);
void *lg_xcalloc(size_t n, size_t size);
char *lg_xstrdup(const char *s);
void lg_buf_reserve(struct lg_buf *b, size_t extra);
void lg_buf_add(struct lg_buf *b, const void *data, size_t n);
void lg_buf_adds(struct lg_buf *b, const char *s);
void lg_buf_addu(struct lg_buf *b, uint64_t v);	/* decimal */
void lg_buf_printf(struct lg_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void lg_buf_reset(struct lg_buf *b);	/* empty; frees big blocks */
void lg_buf_free(struct lg_buf *b);
static inline size_t lg_buf_pending(const struct lg_buf *b)
{
	return b->len - b->off;
}

/* Base64 with padding; decode returns the length or -1. */
void lg_b64_encode(struct lg_buf *out, const void *data, size_t n);
int lg_b64_decode(unsigned char *out, size_t cap, const char *in, size_t n);
/* XML-escapes s into out (for attribute values and text). */
void lg_xml_escape(struct lg_buf *out, const char *s);

uint64_t lg_now_ns(void);	/* CLOCK_MONOTONIC */
uint64_t lg_rand(uint64_t *state);	/* xorshift64*; state never 0 */

/* ---- latency histogram (log buckets, ~3% wide; no allocation) ---- */

#define LG_HIST_SUB_BITS 5
#define LG_HIST_BUCKETS ((64 - LG_HIST_SUB_BITS + 1) << LG_HIST_SUB_BITS)

struct lg_hist {
	uint64_t n;
	uint64_t max;
	uint64_t c[LG_HIST_BUCKETS];
};

void lg_hist_add(struct lg_hist *h, uint64_t v);
void lg_hist_merge(struct lg_hist *into, const struct lg_hist *from);
/* The value at quantile q (0..1), upper bound of its bucket; 0 when empty. */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/* ---- SASL ---- */

struct lg_scram;	/* one SCRAM exchange in progress */

const char *lg_mech_name(enum lg_mech m);
/* The initial response (base64) for <auth>; *st is set for SCRAM. */
void lg_sasl_start(enum lg_mech m, const char *user, const char *password,
		   struct lg_scram **st, struct lg_buf *out);
/* Answers a challenge (base64 text); appends the response (base64) to out.
 * Returns 0 or -1 when the challenge is malformed or the server's
 * signature is wrong. */
int lg_sasl_step(struct lg_scram *st, const char *b64, struct lg_buf *out);
/* Checks the additional data of <success> (base64 "v=..."); 0 when good. */
int lg_sasl_finish(struct lg_scram *st, const char *b64);
void lg_sasl_free(struct lg_scram *st);
/* Self-test only: use this client nonce instead of a random one. */
void lg_sasl_set_nonce(const char *nonce);
/* PBKDF2 computations done so far (the rest were cache hits). */
uint64_t lg_sasl_pbkdf2_count(void);
/* The derived-key cache file: load returns entries read (0 when there is no
 * file), save the entries written (0 when nothing new) or -1. */
int lg_sasl_cache_load(const char *path);
int lg_sasl_cache_save(const char *path);
void lg_sasl_cache_free(void);

/* ---- connections ---- */

enum lg_state {
	ST_FREE, ST_CONNECTING, ST_TLS_HS, ST_WS_UPGRADE, ST_FEATURES, ST_TLS_WAIT, ST_SASL,
	ST_BIND, ST_ONLINE, ST_CLOSING,
};

enum {
	CF_TLS = 1 << 0,	/* TLS is on */
	CF_AUTHED = 1 << 1,	/* SASL succeeded */
	CF_DIRTY = 1 << 2,	/* on the worker's flush list */
	CF_COLLECT = 1 << 3,	/* collect character data into text */
	CF_SESSION = 1 << 4,	/* roster result received */
	CF_SHUT = 1 << 5,	/* we sent </stream:stream> */
	CF_TLS_WW = 1 << 6,	/* SSL_write wants a read */
	CF_SM = 1 << 7,		/* stream management enabled: count stanzas */
};

/* What kind of top-level element is being parsed. */
enum lg_skind {
	SK_NONE, SK_FEATURES, SK_PROCEED, SK_TLS_FAIL, SK_CHALLENGE, SK_SUCCESS,
	SK_SASL_FAIL, SK_MESSAGE, SK_PRESENCE, SK_IQ, SK_STREAM_ERROR, SK_OTHER,
	SK_SM_ENABLED, SK_SM_FAILED, SK_SM_R,	/* XEP-0198 (--smacks) */
	SK_WS_CLOSE,	/* RFC 7395 <close/> (--transport ws) */
};

/* Bits of what a stanza or the features carried. */
enum {
	SF_STARTTLS = 1 << 0, SF_BIND = 1 << 1, SF_M_PLAIN = 1 << 2,
	SF_M_SHA1 = 1 << 3, SF_M_SHA256 = 1 << 4, SF_IN_MECH = 1 << 5,
	SF_TYPE_ERROR = 1 << 6, SF_TYPE_RESULT = 1 << 7, SF_TYPE_SET = 1 << 8,
	SF_TYPE_GET = 1 << 9, SF_ROSTER = 1 << 10, SF_IN_BODY = 1 << 11,
	SF_IN_STATUS = 1 << 12, SF_SUBSCRIBE = 1 << 13, SF_SUBSCRIBED = 1 << 14,
	SF_UNAVAILABLE = 1 << 15, SF_OTHER_TYPE = 1 << 16, SF_HAVE_COND = 1 << 17,
};

struct lg_worker;

struct lg_conn {
	ev_io io;
	ev_timer timer;		/* handshake and close deadlines */
	struct lg_worker *w;
	int fd;
	int user;		/* account number; -1 when the slot is free */
	uint8_t state;		/* enum lg_state */
	uint8_t skind;		/* enum lg_skind of the element being parsed */
	uint16_t flags;		/* CF_* */
	uint32_t sflags;	/* SF_* of the element being parsed */
	int depth;		/* XML depth, 1 inside <stream:stream> */
	int peer;		/* account number of the stanza's sender, or -1 */
	SSL *ssl;
	XML_Parser xp;
	struct lg_scram *scram;
	struct lg_buf out;	/* bytes not yet written */
	struct lg_buf text;	/* character data being collected */
	struct lg_buf wsin;	/* --transport ws: bytes read, not yet a frame */
	struct lg_buf wsout;	/* --transport ws: frames not yet written */
	char ws_key[25];	/* --transport ws: our Sec-WebSocket-Key */
	char iq_id[40];		/* id of the iq being parsed */
	uint64_t t_start;	/* when connect() was called */
	uint32_t seq;		/* messages or presence changes sent */
	uint32_t left;		/* presence changes still to send */
	uint32_t sm_h;		/* --smacks: stanzas handled since <enabled/> */
	_Atomic int inflight;	/* messages sent and not yet received */
	struct lg_conn *dirty_next;
};

/* Counters; workers write their own, the main thread reads them all. */
enum lg_ctr {
	C_STARTED, C_START_FAIL, C_CONNECTING, C_ONLINE, C_LOGIN_OK, C_LOGIN_FAIL,
	C_ERR_CONNECT, C_ERR_IO, C_ERR_EOF, C_ERR_STREAM, C_ERR_AUTH, C_ERR_TLS,
	C_ERR_BIND, C_ERR_TIMEOUT, C_CLOSED,
	C_MSG_SENT, C_MSG_RECV, C_MSG_ERR, C_PRES_SENT, C_PRES_RECV,
	C_SUB_SENT, C_SUBS_DONE, C_BEHIND, C_BYTES_IN, C_BYTES_OUT,
	C_LAST_RECV_NS, C_SM_ACKS, C_TLS_RESUMED, C_NCTR,
};

struct lg_worker {
	int id;
	pthread_t thread;
	struct ev_loop *loop;
	ev_async wake;		/* the phase changed */
	ev_timer tick;		/* pacing: ramp-up, sends */
	ev_prepare flush;	/* writes out the dirty connections */
	struct lg_conn *conns;
	int nconns;
	struct lg_conn *dirty;	/* flush list */
	int last_phase;
	uint64_t rng;
	/* pacing */
	uint64_t t_phase;	/* when the current phase began here */
	uint64_t started;	/* connections started in this phase */
	uint64_t quota;		/* login: logins this worker does in all */
	uint64_t paced;		/* rate mode: sends done so far */
	int next_user;		/* login: next account */
	uint64_t logins;	/* login: logins started */
	int *free_slots;	/* login: slots not in use */
	int nfree;
	uint64_t ticks;
	int rr;			/* round-robin position over the slots */
	int handshaking;	/* slots between connect and online */
	/* open loop refills coming from other workers */
	pthread_mutex_t refill_lock;
	int *refill;
	int nrefill, caprefill;
	int *refill_spare;
	int capspare;
	/* results */
	_Atomic uint64_t ctr[C_NCTR];
	struct lg_hist lat_login;
	struct lg_hist lat_msg;
	char first_error[160];
	char tls_seen[96];	/* the first TLS handshake: version, suite, group, key */
	char rbuf[65536];
};

static inline void lg_ctr_add(struct lg_worker *w, enum lg_ctr i, uint64_t n)
{
	atomic_store_explicit(&w->ctr[i],
			      atomic_load_explicit(&w->ctr[i], memory_order_relaxed) + n,
			      memory_order_relaxed);
}

static inline uint64_t lg_ctr_get(struct lg_worker *w, enum lg_ctr i)
{
	return atomic_load_explicit(&w->ctr[i], memory_order_relaxed);
}

/* Phases, set by the main thread. */
/* PH_WARM: the first account of each server sends one message (it opens
 * the streams between servers); PH_WARM_ALL: every other account does. */
enum lg_phase {
	PH_INIT, PH_CONNECT, PH_WARM, PH_WARM_ALL, PH_RUN, PH_DRAIN, PH_CLOSE, PH_EXIT,
};

extern _Atomic int g_phase;
extern struct lg_worker *g_workers;
extern struct lg_conn **g_user_conn;	/* by user - first; NULL in login */
extern _Atomic unsigned char *g_online;	/* by user - first */
extern SSL_CTX *g_ssl_ctx;

/* net.c: sockets, TLS, reading and writing */
int lg_net_init(void);
int lg_conn_start(struct lg_conn *c, int user);	/* 0 or -errno */
void lg_conn_send(struct lg_conn *c, const void *data, size_t n);
void lg_conn_sends(struct lg_conn *c, const char *s);
void lg_conn_dirty(struct lg_conn *c);	/* out has new bytes: flush soon */
void lg_conn_flush_all(struct lg_worker *w);
void lg_conn_fail(struct lg_conn *c, enum lg_ctr why, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void lg_conn_close(struct lg_conn *c);	/* graceful: </stream:stream> */
void lg_conn_release(struct lg_conn *c);	/* closes the socket now */
void lg_conn_init(struct lg_conn *c, struct lg_worker *w);
void lg_conn_deinit(struct lg_conn *c);
int lg_tls_begin(struct lg_conn *c);
/* --resume FILE: the newest ticket of every account, kept between runs. */
int lg_tls_sessions_load(const char *path);	/* how many, or -1 */
int lg_tls_sessions_save(const char *path);	/* how many, or -1 */
void lg_tls_sessions_free(void);

/* xmpp.c: the client protocol */
void lg_expat_setup(XML_Parser p, void *ud);	/* after create or reset */
void lg_xmpp_reset(struct lg_conn *c);	/* new stream: parser reset */
void lg_xmpp_open(struct lg_conn *c);	/* sends the stream header */
int lg_xmpp_feed(struct lg_conn *c, const char *data, size_t n);
int lg_user_number(const char *jid);	/* account number of a JID or -1 */
void lg_jid_add(struct lg_buf *b, int user, bool full);

/* The bytes queued on c and not yet written (XML and, over WebSocket,
 * frames). */
static inline size_t lg_conn_backlog(const struct lg_conn *c)
{
	return lg_buf_pending(&c->out) + lg_buf_pending(&c->wsout);
}

/* ws.c: XMPP over WebSocket (RFC 7395 on RFC 6455 frames) */
extern const char lg_ws_root[];	/* the parser's stream root */
void lg_ws_upgrade(struct lg_conn *c);	/* sends the HTTP upgrade */
/* Bytes read: the upgrade answer, then frames whose text goes to
 * lg_xmpp_feed. 0, or -1 when the connection is gone. */
int lg_ws_feed(struct lg_conn *c, const char *data, size_t n);
void lg_ws_frame_out(struct lg_conn *c);	/* c->out becomes frames */
void lg_ws_close(struct lg_conn *c);	/* queues <close/> */
void lg_ws_frame(struct lg_buf *out, int opcode, const void *data, size_t n,
		 uint64_t *rng);
/* Length of the first whole top-level element of x[0..n), or 0. */
size_t lg_ws_element_len(const char *x, size_t n);
/* Sec-WebSocket-Accept for a Sec-WebSocket-Key (28 characters). */
void lg_ws_accept(const char *key, char out[29]);

/* scenario.c: what each scenario does on each event */
void lg_sc_phase(struct lg_worker *w, int phase);
void lg_sc_tick(struct lg_worker *w);
void lg_sc_online(struct lg_conn *c);
void lg_sc_session(struct lg_conn *c);	/* roster result arrived */
void lg_sc_gone(struct lg_conn *c);	/* the slot became free */
void lg_sc_message(struct lg_conn *c, const char *body, size_t n);
void lg_sc_presence(struct lg_conn *c, const char *status, size_t n);
void lg_sc_setup(struct lg_worker *w);	/* before the loop runs */
double lg_sc_tick_interval(struct lg_worker *w);

/* serve.c: a trivial XMPP server for measuring the generator itself */
int lg_serve(void);

/* selftest.c: checks of the parts that need no server; prints
 * "N passed, N failed" and returns the number failed */
int lg_selftest(void);

/* proc.c: CPU and memory accounting */
double lg_proc_cpu(int pid);	/* utime + stime seconds; -1 when unknown */
long lg_proc_rss_kb(int pid);	/* VmRSS; -1 when unknown */
double lg_self_cpu(void);	/* getrusage(RUSAGE_SELF) user + system */
void lg_sysinfo(struct lg_buf *out);	/* nproc, CPU, memory, kernel */

#endif
