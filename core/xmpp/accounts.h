/*
 * accounts.h - user accounts: SCRAM credentials in the "accounts" db.
 *
 * A record holds, for SHA-1, SHA-256 or both, the salt, iteration count,
 * StoredKey and ServerKey (struct scram_creds); never a password. Accounts
 * made here have both; an imported account may have SHA-1 only (what
 * Prosody keeps), and then SCRAM-SHA-256 fails for it like a wrong
 * password while SCRAM-SHA-1 and PLAIN work. The record starts with a
 * version byte.
 */
#ifndef STARLING_ACCOUNTS_H
#define STARLING_ACCOUNTS_H

#include "sasl.h"

#define ACCOUNTS_DEFAULT_ITERATIONS 4096

/* user is a prepared localpart. 0, -ENOENT (no account, or none for this
 * hash), -EIO (a corrupt record). */
int accounts_get(const char *host, const char *user, enum sasl_hash hash,
		 struct scram_creds *out);
bool accounts_exists(const char *host, const char *user);
/* Creates or updates: 0, -EINVAL (password fails SASLprep). Like
 * accounts_set_creds, revokes the account's FAST tokens (fast.h). */
int accounts_set_password(const char *host, const char *user,
			  const char *password, unsigned iterations);
/* Creates or replaces an account with the n credentials given as they
 * are (import): each for a different hash, iterations 1..2^31-1, salt
 * 1..SASL_MAX_SALT bytes. 0 or -EINVAL. Every FAST token of the
 * account is revoked (XEP-0484: a changed password ends them). */
int accounts_set_creds(const char *host, const char *user,
		       const struct scram_creds *creds, size_t n);
/* Deletes the account and every record of the user in every store. */
int accounts_delete(const char *host, const char *user);
int accounts_list(const char *host, int (*fn)(void *ctx, const char *user),
		  void *ctx);
/* PLAIN: checks password against the stored SHA-256 credentials, or the
 * SHA-1 ones when the account has no others (constant time): 0, -EACCES,
 * -ENOENT. */
int accounts_check_password(const char *host, const char *user,
			    const char *password);

#endif
