/* anon.c - temporary accounts of SASL ANONYMOUS logins (see anon.h). */
#include "anon.h"
#include "accounts.h"
#include "log.h"
#include "route.h"
#include "store.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>

#define ANON_NAME_LEN 20	/* [a-z0-9], about 103 bits */
#define ANON_TRIES 8

static struct store marks_of(const char *host)
{
	struct store s;

	store_init(&s, &store_lmdb, host, "anonymous", STORE_KIND_KEYVAL);
	return s;
}

/* Credentials no password derives to: random keys and salt. */
static void unknowable_creds(struct scram_creds *c, enum sasl_hash hash)
{
	memset(c, 0, sizeof(*c));
	c->hash = hash;
	c->iterations = ACCOUNTS_DEFAULT_ITERATIONS;
	c->salt_len = 16;
	random_bytes(c->salt, c->salt_len);
	random_bytes(c->stored_key, sizeof(c->stored_key));
	random_bytes(c->server_key, sizeof(c->server_key));
}

/* A localpart that is free on host: no account, no session. */
static int free_name(const char *host, char *node)
{
	char bare[ANON_NAME_LEN + 1 + JID_PART_MAX + 1];

	for (int i = 0; i < ANON_TRIES; i++) {
		random_id(node, ANON_NAME_LEN);
		for (char *p = node; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		snprintf(bare, sizeof(bare), "%s@%s", node, host);
		if (!accounts_exists(host, node) && !route_find_bare(bare))
			return 0;
	}
	return -EAGAIN;
}

int anon_account_new(const char *host, char *node)
{
	struct store marks = marks_of(host);
	struct scram_creds c[2];
	int rc;

	if ((rc = free_name(host, node)) != 0) {
		log_error("%s: no free name for an anonymous login", host);
		return rc;
	}
	unknowable_creds(&c[0], SASL_HASH_SHA1);
	unknowable_creds(&c[1], SASL_HASH_SHA256);
	rc = store_put(&marks, node, NULL, 0, "1", 1);
	if (rc == 0)
		rc = accounts_set_creds(host, node, c, 2);
	OPENSSL_cleanse(c, sizeof(c));
	if (rc != 0) {
		log_error("%s: cannot make the temporary account %s: %d", host, node, rc);
		store_purge_user(host, node);
	}
	return rc;
}

void anon_account_end(const char *host, const char *node)
{
	int rc = accounts_delete(host, node);	/* the mark too: every store */

	if (rc != 0 && rc != -ENOENT)
		log_error("%s: cannot remove the temporary account %s: %d", host, node, rc);
	else
		log_debug("%s: temporary account %s removed", host, node);
}

struct left_over {
	const char *host;
	char **names;
	size_t n, cap;
};

static int collect(void *ctx, const char *user)
{
	struct left_over *lo = ctx;

	if (lo->n == lo->cap) {
		lo->cap = lo->cap ? lo->cap * 2 : 16;
		lo->names = xrealloc(lo->names, lo->cap * sizeof(*lo->names));
	}
	lo->names[lo->n++] = xstrdup(user);
	return 0;
}

int anon_cleanup(const char *host)
{
	struct store marks = marks_of(host);
	struct left_over lo = { host, NULL, 0, 0 };
	int rc = store_users(&marks, collect, &lo);

	/* Deleted after the walk: store_users' callback may write, but a
	 * purge touches every db. */
	for (size_t i = 0; i < lo.n; i++) {
		if (rc == 0)
			anon_account_end(host, lo.names[i]);
		free(lo.names[i]);
	}
	free(lo.names);
	if (rc != 0)
		return rc;
	if (lo.n) {
		log_info("%s: removed %zu temporary accounts of anonymous logins "
			 "left from the last run", host, lo.n);
		store_commit();
	}
	return (int)lo.n;
}
