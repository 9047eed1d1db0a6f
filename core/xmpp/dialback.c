/* dialback.c - Server Dialback keys (XEP-0220 with XEP-0185): what an
 * outgoing stream proves itself with, and what we answer a peer that asks
 * whether a key is ours. The streams are s2s_in.c's and s2s_out.c's. */
#include "s2s.h"

#include <stdio.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>

static unsigned char db_secret[SHA256_DIGEST_LENGTH];

/* XEP-0185 3: the HMAC key is the SHA-256 of the secret, so the secret
 * itself never meets the hashed data. Ours derives from the server's
 * secret, which is stored with the data and outlives restarts: a key
 * handed out before a restart still verifies after it. */
void dialback_init(const unsigned char secret[32])
{
	static const char label[] = "starling dialback";
	unsigned char k[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;

	HMAC(EVP_sha256(), secret, 32, (const unsigned char *)label,
	     sizeof(label) - 1, k, &n);
	SHA256(k, sizeof(k), db_secret);
	memset(k, 0, sizeof(k));
}

void dialback_key(const char *receiving, const char *originating,
		  const char *stream_id, char out[65])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char mac[SHA256_DIGEST_LENGTH];
	unsigned int n = 0;
	struct sbuf b;

	sbuf_init(&b);
	sbuf_printf(&b, "%s %s %s", receiving, originating, stream_id);
	HMAC(EVP_sha256(), db_secret, sizeof(db_secret),
	     (const unsigned char *)b.p, b.len, mac, &n);
	sbuf_free(&b);
	for (unsigned i = 0; i < SHA256_DIGEST_LENGTH; i++) {
		out[2 * i] = hex[mac[i] >> 4];
		out[2 * i + 1] = hex[mac[i] & 15];
	}
	out[64] = '\0';
}

bool dialback_key_ok(const char *receiving, const char *originating,
		     const char *stream_id, const char *key)
{
	char want[65];
	size_t n;

	if (!key)
		return false;
	while (*key == ' ' || *key == '\t' || *key == '\n' || *key == '\r')
		key++;
	for (n = 0; key[n] && key[n] != ' ' && key[n] != '\t' &&
	     key[n] != '\n' && key[n] != '\r'; n++)
		;
	if (n != 64)
		return false;
	dialback_key(receiving, originating, stream_id, want);
	return ct_memcmp(want, key, 64) == 0;
}
