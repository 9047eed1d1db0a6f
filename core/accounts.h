/*
 * accounts.h - user accounts: SCRAM credentials in the "accounts" db.
 *
 * A record holds, for SHA-1 and SHA-256 each, the salt, iteration count,
 * StoredKey and ServerKey (struct scram_creds); never a password. The
 * record starts with a version byte.
 */
#ifndef STARLING_ACCOUNTS_H
#define STARLING_ACCOUNTS_H

#include "sasl.h"

#define ACCOUNTS_DEFAULT_ITERATIONS 4096

/* user is a prepared localpart. 0 or -ENOENT. */
int accounts_get(const char *host, const char *user, enum sasl_hash hash,
		 struct scram_creds *out);
bool accounts_exists(const char *host, const char *user);
/* Creates or updates: 0, -EINVAL (password fails SASLprep). */
int accounts_set_password(const char *host, const char *user,
			  const char *password, unsigned iterations);
/* Deletes the account and every record of the user in every store. */
int accounts_delete(const char *host, const char *user);
int accounts_list(const char *host, int (*fn)(void *ctx, const char *user),
		  void *ctx);
/* PLAIN: checks password against the stored SHA-256 credentials
 * (constant time): 0, -EACCES, -ENOENT. */
int accounts_check_password(const char *host, const char *user,
			    const char *password);

#endif
