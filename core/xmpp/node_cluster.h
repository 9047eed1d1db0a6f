/*
 * node_cluster.h - one domain served by Starling processes on several
 * machines: their registry, liveness and session directory in Redis,
 * their links over TCP with TLS (node_link.h), their data in PostgreSQL.
 *
 *   cluster = { node = "a"; redis = "redis://127.0.0.1:6379/0";
 *               address = "10.0.0.1:5290"; secret = "..." }
 *
 * node id:   the u16 a node has in HELLO frames and proxies: given to its
 *            name once by Redis (INCR), kept for that name after.
 * registry:  hash starling:nodes, name -> "id address pid start": every
 *            node that ever ran, rewritten each second by the live ones.
 * liveness:  key starling:alive:NAME = "pid start", set every second with
 *            a TTL of 4 s. A node whose key is gone is dead: its link
 *            closes, its proxies end and the lowest-numbered node alive
 *            fires resource-unbind for each (contacts see them go).
 *            A key whose pid changed is a node that started again.
 * directory: hash starling:sessions:NAME, full JID -> session id, of
 *            that node's bound client sessions (what `starlingctl cluster
 *            status` and a joining node read; routing itself goes by the
 *            proxies the links carry).
 * Redis is spoken asynchronously on the loop (hiredis and its libev
 * adapter); only the start (the node's id) waits for it.
 */
#ifndef STARLING_NODE_CLUSTER_H
#define STARLING_NODE_CLUSTER_H

#include <stdbool.h>
#include <stdint.h>

/* What the directory said of a node at the last look (a second ago). */
struct cluster_node {
	unsigned id;		/* 0: no such node */
	char name[64];
	char address[80];
	uint32_t pid;
	double start;		/* its start, Unix time */
	bool alive;
	long sessions;		/* in its directory */
};

/* Whether the config has a cluster option. */
bool node_cluster_configured(void);
/* Joins the cluster of the config: registers this node, takes its id,
 * starts its links and its liveness: 0, or -1 with the reason logged. */
int node_cluster_start(void);
/* Leaving (a clean stop): this node's key and directory go. */
void node_cluster_stop(void);
/* Last: what is left is freed. */
void node_cluster_free(void);
/* The node with id (1..NODE_MAX), NULL when none; this node is one. */
const struct cluster_node *node_cluster_node(unsigned id);
unsigned node_cluster_self(void);
/* Whether Redis answered the last look. */
bool node_cluster_redis_up(void);

#endif
