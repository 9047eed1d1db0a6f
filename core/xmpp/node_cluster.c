/* node_cluster.c - the nodes of a cluster: registry, liveness and session
 * directory in Redis, links over TCP with TLS (node_cluster.h). */
#include "node_cluster.h"
#include "node.h"
#include "node_link.h"
#include "config.h"
#include "conn.h"
#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#include <hiredis/adapters/libev.h>

#define PREFIX "starling:"
#define TICK 1.			/* the key refreshed, the others looked at */
#define TTL 4			/* seconds a node's key outlives its last tick: a
				 * loop held up a moment (a slow disk) is no death */

static struct cluster_node nodes[NODE_MAX + 1];
static unsigned self;
static char *name, *address;
static char *redis_host, *redis_password;
static int redis_port = 6379, redis_db;
static double started;
static redisAsyncContext *ac;	/* NULL while not connected */
static bool connected, answered, leaving;
static bool redis_missed;	/* a connect failed since the last success */
static ev_timer tick_w;

/* Each registered node: name, its registry entry, its key (nil when
 * dead), the size of its directory. */
static const char poll_script[] =
	"local r = redis.call('hgetall', KEYS[1]) local out = {} "
	"for i = 1, #r, 2 do "
	"out[#out + 1] = r[i] out[#out + 1] = r[i + 1] "
	"out[#out + 1] = redis.call('get', ARGV[1] .. 'alive:' .. r[i]) or '' "
	"out[#out + 1] = redis.call('hlen', ARGV[1] .. 'sessions:' .. r[i]) "
	"end return out";
/* A dead node's directory goes, unless it lives again meanwhile. */
static const char forget_script[] =
	"if redis.call('exists', KEYS[1]) == 0 then redis.call('del', KEYS[2]) end "
	"return 0";

bool node_cluster_configured(void)
{
	return config_kind("*", "cluster", NULL) != CONFIG_UNSET;
}

/* "redis://[:password@]host[:port][/db]" or "host:port". */
static int parse_redis(const char *url)
{
	const char *p = url, *at, *slash, *colon;

	if (strncmp(p, "redis://", 8) == 0)
		p += 8;
	slash = strchr(p, '/');
	at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
	if (at) {
		const char *pw = memchr(p, ':', (size_t)(at - p));
		pw = pw ? pw + 1 : p;
		redis_password = strndup(pw, (size_t)(at - pw));
		p = at + 1;
	}
	size_t hl = slash ? (size_t)(slash - p) : strlen(p);
	colon = memchr(p, ':', hl);
	if (colon) {
		char *end;
		long port = strtol(colon + 1, &end, 10);
		if (end != p + hl || port < 1 || port > 65535)
			return -EINVAL;
		redis_port = (int)port;
		hl = (size_t)(colon - p);
	}
	if (!hl)
		return -EINVAL;
	redis_host = strndup(p, hl);
	if (slash && slash[1]) {
		char *end;
		long db = strtol(slash + 1, &end, 10);
		if (*end || db < 0)
			return -EINVAL;
		redis_db = (int)db;
	}
	return 0;
}

static const char *opt(const char *field)
{
	return config_field_string("*", "cluster", field);
}

/* --- the start: this node's id ----------------------------------------- */

static long reply_int(redisReply *r)
{
	if (!r)
		return -1;
	if (r->type == REDIS_REPLY_INTEGER)
		return (long)r->integer;
	if (r->type == REDIS_REPLY_STRING)
		return strtol(r->str, NULL, 10);
	return -1;
}

static bool reply_ok(redisContext *c, redisReply *r)
{
	bool ok = r && r->type != REDIS_REPLY_ERROR;

	if (!ok)
		log_error("cluster: redis %s:%d: %s", redis_host, redis_port,
			  r ? r->str : c->errstr);
	freeReplyObject(r);
	return ok;
}

/* The id of our name: kept from an earlier run, or the next free one. */
static long take_id(redisContext *c)
{
	redisReply *r = redisCommand(c, "HGET " PREFIX "ids %s", name);
	long id = r && r->type == REDIS_REPLY_STRING ? reply_int(r) : 0;

	if (!reply_ok(c, r))
		return -1;
	if (id > 0)
		return id;
	/* the next number no name has (a Redis that lost next-id but not
	 * the ids, which the live nodes write again each second) */
	bool taken[NODE_MAX + 2] = { false };
	r = redisCommand(c, "HVALS " PREFIX "ids");
	for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
		long v = reply_int(r->element[i]);
		if (v >= 1 && v <= NODE_MAX)
			taken[v] = true;
	}
	if (!reply_ok(c, r))
		return -1;
	do {
		r = redisCommand(c, "INCR " PREFIX "next-id");
		id = reply_int(r);
		if (!reply_ok(c, r) || id < 1)
			return -1;
	} while (id <= NODE_MAX && taken[id]);
	r = redisCommand(c, "HSETNX " PREFIX "ids %s %ld", name, id);
	if (!reply_ok(c, r))
		return -1;
	r = redisCommand(c, "HGET " PREFIX "ids %s", name);	/* a race's winner */
	id = reply_int(r);
	return reply_ok(c, r) ? id : -1;
}

/* Whether a live node elsewhere has our name: its key is there and its
 * registry entry names another address (our own earlier life, killed a
 * moment ago, had ours). */
static bool name_in_use(redisContext *c, char *where, size_t cap)
{
	redisReply *alive = redisCommand(c, "EXISTS " PREFIX "alive:%s", name);
	redisReply *entry = redisCommand(c, "HGET " PREFIX "nodes %s", name);
	unsigned id;
	char addr[80] = "";
	bool used = alive && alive->type == REDIS_REPLY_INTEGER && alive->integer == 1 &&
		    entry && entry->type == REDIS_REPLY_STRING &&
		    sscanf(entry->str, "%u %79s", &id, addr) == 2 && strcmp(addr, address) != 0;

	snprintf(where, cap, "%s", addr);
	freeReplyObject(alive);
	freeReplyObject(entry);
	return used;
}

static redisContext *connect_sync(void)
{
	struct timeval tv = { 3, 0 };
	redisContext *c = redisConnectWithTimeout(redis_host, redis_port, tv);

	if (!c || c->err) {
		log_error("cluster: cannot reach redis at %s:%d: %s", redis_host,
			  redis_port, c ? c->errstr : "out of memory");
		if (c)
			redisFree(c);
		return NULL;
	}
	if ((redis_password &&
	     !reply_ok(c, redisCommand(c, "AUTH %s", redis_password))) ||
	    !reply_ok(c, redisCommand(c, "SELECT %d", redis_db))) {
		redisFree(c);
		return NULL;
	}
	return c;
}

/* --- the directory ------------------------------------------------------ */

static void no_reply(redisAsyncContext *c, void *reply, void *data)
{
	redisReply *r = reply;

	if (r && r->type == REDIS_REPLY_ERROR)
		log_warn("cluster: redis: %s", r->str);
}

static void on_dir(struct session *s, bool bound)
{
	if (!ac || !connected || !s->full_jid)
		return;
	if (bound)
		redisAsyncCommand(ac, no_reply, NULL, "HSET " PREFIX "sessions:%s %s %s",
				  name, s->full_jid, s->id);
	else
		redisAsyncCommand(ac, no_reply, NULL, "HDEL " PREFIX "sessions:%s %s",
				  name, s->full_jid);
}

static void dir_one(struct session *s, void *ctx)
{
	on_dir(s, true);
}

static void registry_entry(char *buf, size_t cap)
{
	snprintf(buf, cap, "%u %s %ld %.3f", self, address, (long)getpid(), started);
}

/* Our key, our registry entry; after a connect, our directory whole. */
static void announce(bool whole)
{
	char entry[256], life[64];

	registry_entry(entry, sizeof(entry));
	snprintf(life, sizeof(life), "%ld %.3f", (long)getpid(), started);
	redisAsyncCommand(ac, no_reply, NULL, "SET " PREFIX "alive:%s %s EX %d",
			  name, life, TTL);
	redisAsyncCommand(ac, no_reply, NULL, "HSET " PREFIX "nodes %s %s", name, entry);
	redisAsyncCommand(ac, no_reply, NULL, "HSETNX " PREFIX "ids %s %u", name, self);
	if (whole) {
		redisAsyncCommand(ac, no_reply, NULL, "DEL " PREFIX "sessions:%s", name);
		node_each_local(dir_one, NULL);
	}
}

/* --- liveness: what the others' keys say --------------------------------- */

/* Node n's key is gone, or says another life: the life we knew died. */
static void node_died(struct cluster_node *n, const char *why)
{
	log_info("cluster: node %s (%u, pid %lu) %s", n->name, n->id,
		 (unsigned long)n->pid, why);
	node_link_died(n->id, n->pid);
	redisAsyncCommand(ac, no_reply, NULL, "EVAL %s 2 " PREFIX "alive:%s "
			  PREFIX "sessions:%s", forget_script, n->name, n->name);
}

static void look_at(const char *nm, const char *entry, const char *life, long count)
{
	unsigned id;
	char addr[80];
	unsigned long pid = 0;
	double start = 0;

	if (sscanf(entry, "%u %79s", &id, addr) != 2 || id < 1 || id > NODE_MAX)
		return;
	struct cluster_node *n = &nodes[id];
	bool alive = *life && sscanf(life, "%lu %lf", &pid, &start) == 2;
	if (id != self && n->alive && (!alive || pid != n->pid || start != n->start))
		node_died(n, alive ? "started again" : "is gone (its key expired or went)");
	if (id != self && alive && (!n->alive || pid != n->pid))
		log_info("cluster: node %s (%u) at %s is alive", nm, id, addr);
	n->id = id;
	snprintf(n->name, sizeof(n->name), "%s", nm);
	snprintf(n->address, sizeof(n->address), "%s", addr);
	n->alive = alive;
	n->pid = alive ? (uint32_t)pid : n->pid;
	n->start = alive ? start : n->start;
	n->sessions = count;
	if (id != self)
		node_link_peer(id, alive ? addr : NULL);
}

static void on_poll(redisAsyncContext *c, void *reply, void *data)
{
	redisReply *r = reply;

	if (!r || r->type != REDIS_REPLY_ARRAY) {
		if (r && r->type == REDIS_REPLY_ERROR)
			log_warn("cluster: redis: %s", r->str);
		answered = false;
		return;
	}
	answered = true;
	if (leaving)
		return;		/* our links are closing: nothing to connect */
	for (size_t i = 0; i + 3 < r->elements; i += 4) {
		redisReply **e = r->element + i;
		if (e[0]->type != REDIS_REPLY_STRING || e[1]->type != REDIS_REPLY_STRING ||
		    e[2]->type != REDIS_REPLY_STRING || e[3]->type != REDIS_REPLY_INTEGER)
			continue;
		look_at(e[0]->str, e[1]->str, e[2]->str, (long)e[3]->integer);
	}
}

/* --- the connection to Redis -------------------------------------------- */

static void on_connect(const redisAsyncContext *c, int status)
{
	if (status != REDIS_OK) {
		/* said once; the tries every second after it at debug */
		log_msg(redis_missed ? LOG_DEBUG : LOG_WARN, "core", "cluster: cannot "
			"reach redis at %s:%d: %s", redis_host, redis_port, c->errstr);
		redis_missed = true;
		ac = NULL;	/* hiredis frees it */
		return;
	}
	log_info("cluster: connected to redis at %s:%d", redis_host, redis_port);
	redis_missed = false;
	connected = true;
	if (redis_password)
		redisAsyncCommand(ac, no_reply, NULL, "AUTH %s", redis_password);
	redisAsyncCommand(ac, no_reply, NULL, "SELECT %d", redis_db);
	if (!leaving)
		announce(true);
}

static void on_disconnect(const redisAsyncContext *c, int status)
{
	if (status != REDIS_OK && !leaving)
		log_warn("cluster: lost redis at %s:%d: %s", redis_host, redis_port,
			 c->errstr);
	ac = NULL;
	connected = answered = false;
}

static void redis_connect(void)
{
	ac = redisAsyncConnect(redis_host, redis_port);
	if (!ac)
		return;
	if (ac->err) {
		log_warn("cluster: redis: %s", ac->errstr);
		redisAsyncFree(ac);
		ac = NULL;
		return;
	}
	redisLibevAttach(conn_loop(), ac);
	redisAsyncSetConnectCallback(ac, on_connect);
	redisAsyncSetDisconnectCallback(ac, on_disconnect);
}

static void on_tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	if (!ac) {
		redis_connect();	/* announce() once connected */
		return;
	}
	if (!connected)
		return;
	announce(false);
	redisAsyncCommand(ac, on_poll, NULL, "EVAL %s 1 " PREFIX "nodes " PREFIX,
			  poll_script);
}

/* --- start and stop ----------------------------------------------------- */

static int read_config(void)
{
	const char *url = opt("redis"), *secret = opt("secret");

	name = opt("node") ? xstrdup(opt("node")) : NULL;
	address = opt("address") ? xstrdup(opt("address")) : NULL;
	if (config_kind("*", "cluster", NULL) != CONFIG_TABLE || !name || !*name ||
	    strlen(name) >= sizeof(nodes[0].name) || strpbrk(name, " \t\n") ||
	    !address || !url || !secret || !*secret) {
		log_error("cluster: the option needs node (a name without spaces), "
			  "redis, address and secret: cluster = { node = \"a\"; redis = "
			  "\"redis://127.0.0.1:6379/0\"; address = \"10.0.0.1:5290\"; "
			  "secret = \"...\" }");
		return -1;
	}
	if (parse_redis(url) != 0) {
		log_error("cluster: redis = \"%s\" is not redis://host:port/db or "
			  "host:port", url);
		return -1;
	}
	if (strlen(secret) < 16)
		log_warn("cluster: the secret is short (%zu characters): anyone who "
			 "guesses it joins the cluster", strlen(secret));
	return 0;
}

int node_cluster_start(void)
{
	redisContext *c;
	long id;
	int r;

	if (read_config() != 0 || !(c = connect_sync()))
		return -1;
	char other[80];
	if (name_in_use(c, other, sizeof(other))) {
		log_error("cluster: node name %s is in use by a live node at %s (node "
			  "names are unique in a cluster)", name, other);
		redisFree(c);
		return -1;
	}
	id = take_id(c);
	redisFree(c);
	if (id < 1 || id > NODE_MAX) {
		log_error("cluster: no node id for %s (%ld; at most %d nodes)", name,
			  id, NODE_MAX);
		return -1;
	}
	self = (unsigned)id;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	started = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	r = node_link_start_tcp(self, address, opt("secret"));
	if (r != 0)
		return -1;
	node_link_dir_hook = on_dir;
	snprintf(nodes[self].name, sizeof(nodes[self].name), "%s", name);
	snprintf(nodes[self].address, sizeof(nodes[self].address), "%s", address);
	nodes[self].id = self;
	nodes[self].alive = true;
	nodes[self].pid = (uint32_t)getpid();
	nodes[self].start = started;
	log_info("cluster: node %s is node %u, links on %s, redis %s:%d/%d", name,
		 self, address, redis_host, redis_port, redis_db);
	redis_connect();
	ev_timer_init(&tick_w, on_tick, TICK, TICK);
	ev_timer_start(conn_loop(), &tick_w);
	ev_unref(conn_loop());
	return 0;
}

void node_cluster_stop(void)
{
	if (!self || leaving)
		return;
	leaving = true;
	node_link_dir_hook = NULL;
	if (ev_is_active(&tick_w)) {
		ev_ref(conn_loop());
		ev_timer_stop(conn_loop(), &tick_w);
	}
	if (ac && connected) {
		redisAsyncCommand(ac, no_reply, NULL, "DEL " PREFIX "alive:%s "
				  PREFIX "sessions:%s", name, name);
		redisAsyncDisconnect(ac);	/* after the replies */
	}
}

void node_cluster_free(void)
{
	node_cluster_stop();
	if (ac)
		redisAsyncFree(ac);
	ac = NULL;
	free(name);
	free(address);
	free(redis_host);
	free(redis_password);
	name = address = redis_host = redis_password = NULL;
	self = 0;
}

const struct cluster_node *node_cluster_node(unsigned id)
{
	return id >= 1 && id <= NODE_MAX && nodes[id].id ? &nodes[id] : NULL;
}

unsigned node_cluster_self(void)
{
	return self;
}

bool node_cluster_redis_up(void)
{
	return answered;
}
