/*
 * tls13.c - the TLS 1.3 record layer a quiet connection keeps once its
 * SSL is freed (tls13.h; RFC 8446 sections 4.6.3, 5, 6 and 7.1).
 */
#include "tls13.h"
#include "transport.h"
#include "log.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#define REC_MAX    16384		/* plaintext per record (2^14) */
#define CT_MAX     (REC_MAX + 256)	/* TLSCiphertext.length limit */
#define HDR        5
#define TAG        16
#define REC_SPACE  (HDR + REC_MAX + 1 + TAG)
#define W_RECORDS  4			/* records sealed per write */
#define R_BUF      (64 * 1024 + HDR + CT_MAX)
/* AES-GCM: a key seals at most 2^24.5 full records (RFC 8446 5.5); ours
 * is renewed with a KeyUpdate well before. */
#define SEAL_LIMIT (1ull << 24)

enum { CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APP = 23, MT_KEY_UPDATE = 24 };
enum { AL_CLOSE = 0, AL_UNEXPECTED = 10, AL_BAD_MAC = 20, AL_OVERFLOW = 22,
       AL_ILLEGAL = 47, AL_DECODE = 50, AL_USER_CANCELED = 90 };

struct suite {
	uint32_t id;
	const char *cipher, *md;
	size_t key_len, hash_len;
	EVP_CIPHER *c;
	EVP_MD *m;
};

static struct suite suites[] = {
	{ 0x03001301, "AES-128-GCM", "SHA256", 16, 32, NULL, NULL },
	{ 0x03001302, "AES-256-GCM", "SHA384", 32, 48, NULL, NULL },
	{ 0x03001303, "ChaCha20-Poly1305", "SHA256", 32, 32, NULL, NULL },
};

struct dir {
	uint8_t secret[48];
	uint8_t key[32];
	uint8_t iv[12];
	uint64_t seq;
	EVP_CIPHER_CTX *x;		/* while the stream is busy; NULL when quiet */
	bool keyed;			/* x holds key */
};

struct tls13 {
	const struct suite *suite;
	const char *cipher_name;	/* OpenSSL's static name */
	struct dir rd, wr;
	uint8_t *raw;			/* a record not yet whole */
	size_t raw_len;
	uint8_t *plain;			/* opened, not yet read */
	size_t plain_off, plain_len;
	uint8_t *pend;			/* sealed, not yet written */
	size_t pend_off, pend_len, pend_plain;
	uint8_t hs[5];			/* a KeyUpdate split across records */
	uint8_t hs_len;
	bool eof, key_update_owed;
	bool dead;			/* a fatal alert went either way: silence */
};

/* What OpenSSL's callbacks note while it still has the connection. */
struct watch {
	uint8_t csec[48], ssec[48];
	uint8_t have;			/* 1: client secret, 2: server secret */
	uint8_t slen;
	bool app_r, app_w, key_update;
	uint64_t rseq, wseq;
};

static int watch_idx = -1;
static uint8_t *rbuf, *wbuf;

/* --- watching OpenSSL ---------------------------------------------------- */

static void watch_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
		       long argl, void *argp)
{
	if (ptr) {
		OPENSSL_cleanse(ptr, sizeof(struct watch));
		free(ptr);
	}
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* "CLIENT_TRAFFIC_SECRET_0 <client random> <secret>", in hex. */
static void on_keylog(const SSL *ssl, const char *line)
{
	struct watch *w = watch_idx >= 0 ? SSL_get_ex_data(ssl, watch_idx) : NULL;
	uint8_t *dst;
	const char *p;
	size_t n = 0;
	uint8_t bit;

	if (!w)
		return;
	if (strncmp(line, "CLIENT_TRAFFIC_SECRET_0 ", 24) == 0) {
		dst = w->csec;
		bit = 1;
	} else if (strncmp(line, "SERVER_TRAFFIC_SECRET_0 ", 24) == 0) {
		dst = w->ssec;
		bit = 2;
	} else {
		return;
	}
	p = strchr(line + 24, ' ');
	if (!p)
		return;
	for (p++; p[0] && p[1] && n < sizeof(w->csec); p += 2, n++) {
		int hi = hexval(p[0]), lo = hexval(p[1]);
		if (hi < 0 || lo < 0)
			return;
		dst[n] = (uint8_t)(hi << 4 | lo);
	}
	if (*p || (w->slen && w->slen != n))
		return;
	w->slen = (uint8_t)n;
	w->have |= bit;
}

/* Records are counted from the Finished of each side: the record headers
 * OpenSSL reports after it are the application keys' records. A header
 * is reported before the message it carries. */
static void on_msg(int write_p, int version, int content_type,
		   const void *buf, size_t len, SSL *ssl, void *arg)
{
	struct watch *w = SSL_get_ex_data(ssl, watch_idx);
	const uint8_t *p = buf;

	if (!w)
		return;
	if (content_type == SSL3_RT_HEADER) {
		if (write_p && w->app_w)
			w->wseq++;
		else if (!write_p && w->app_r)
			w->rseq++;
		return;
	}
	if (content_type != SSL3_RT_HANDSHAKE || len < 1)
		return;
	if (p[0] == SSL3_MT_FINISHED) {
		if (write_p)
			w->app_w = true;
		else
			w->app_r = true;
	} else if (p[0] == SSL3_MT_KEY_UPDATE) {
		w->key_update = true;
	}
}

void tls13_ctx_setup(SSL_CTX *ctx)
{
	if (watch_idx < 0)
		watch_idx = SSL_get_ex_new_index(0, NULL, NULL, NULL, watch_free);
	SSL_CTX_set_keylog_callback(ctx, on_keylog);
}

void tls13_watch(SSL *ssl)
{
	struct watch *w;

	if (watch_idx < 0)
		return;
	w = xcalloc(1, sizeof(*w));
	if (SSL_set_ex_data(ssl, watch_idx, w) != 1) {
		free(w);
		return;
	}
	SSL_set_msg_callback(ssl, on_msg);
}

/* --- keys --------------------------------------------------------------- */

static const struct suite *suite_of(uint32_t id)
{
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
		struct suite *s = &suites[i];
		if (s->id != id)
			continue;
		if (!s->c)
			s->c = EVP_CIPHER_fetch(NULL, s->cipher, NULL);
		if (!s->m)
			s->m = EVP_MD_fetch(NULL, s->md, NULL);
		return s->c && s->m ? s : NULL;
	}
	return NULL;
}

/* HKDF-Expand-Label(secret, label, "", len) (RFC 8446 7.1); len is at
 * most the hash's length, so one HMAC block is the whole expansion. */
static int expand_label(const struct suite *s, const uint8_t *secret,
			const char *label, uint8_t *out, size_t len)
{
	uint8_t info[2 + 1 + 6 + 16 + 1 + 1];
	uint8_t mac[EVP_MAX_MD_SIZE];
	size_t ll = strlen(label), n = 0;
	unsigned int mlen = 0;

	info[n++] = (uint8_t)(len >> 8);
	info[n++] = (uint8_t)len;
	info[n++] = (uint8_t)(6 + ll);
	memcpy(info + n, "tls13 ", 6);
	n += 6;
	memcpy(info + n, label, ll);
	n += ll;
	info[n++] = 0;			/* empty context */
	info[n++] = 1;			/* T(1) */
	if (!HMAC(s->m, secret, (int)s->hash_len, info, n, mac, &mlen) ||
	    mlen < len) {
		ERR_clear_error();
		return -EIO;
	}
	memcpy(out, mac, len);
	OPENSSL_cleanse(mac, sizeof(mac));
	return 0;
}

static int set_keys(const struct suite *s, struct dir *d)
{
	d->seq = 0;
	d->keyed = false;
	if (expand_label(s, d->secret, "key", d->key, s->key_len) != 0 ||
	    expand_label(s, d->secret, "iv", d->iv, sizeof(d->iv)) != 0)
		return -EIO;
	return 0;
}

/* application_traffic_secret_N+1 and its key and IV (4.6.3, 7.2). */
static int next_keys(const struct suite *s, struct dir *d)
{
	uint8_t next[48];

	if (expand_label(s, d->secret, "traffic upd", next, s->hash_len) != 0)
		return -EIO;
	memcpy(d->secret, next, s->hash_len);
	OPENSSL_cleanse(next, sizeof(next));
	return set_keys(s, d);
}

/* A cipher context costs 1.2 KB (the provider's AES-GCM state with its
 * key schedule and GHASH table): a busy stream keeps one per direction,
 * a quiet one none (tls13_quiet). */
static void drop_context(struct dir *d)
{
	EVP_CIPHER_CTX_free(d->x);	/* the provider wipes its key */
	d->x = NULL;
	d->keyed = false;
}

/* Seals (enc 1) or opens (enc 0) len bytes at p in place under d's key
 * and next sequence number; the tag follows p[len - 1]. */
static int aead(const struct tls13 *t, struct dir *d, int enc,
		 const uint8_t *hdr, uint8_t *p, size_t len)
{
	EVP_CIPHER_CTX *x = d->x;
	uint8_t nonce[12], *tag = p + len, end[16];
	int n;

	if (!x && !(x = d->x = EVP_CIPHER_CTX_new()))
		return -ENOMEM;
	if (!d->keyed) {
		if (EVP_CipherInit_ex(x, t->suite->c, NULL, d->key, NULL, enc) != 1)
			goto fail;
		d->keyed = true;
	}
	memcpy(nonce, d->iv, sizeof(nonce));
	for (int i = 0; i < 8; i++)
		nonce[4 + i] ^= (uint8_t)(d->seq >> (56 - 8 * i));
	if (EVP_CipherInit_ex(x, NULL, NULL, NULL, nonce, enc) != 1 ||
	    EVP_CipherUpdate(x, NULL, &n, hdr, HDR) != 1 ||
	    (len && EVP_CipherUpdate(x, p, &n, p, (int)len) != 1))
		goto fail;
	if (!enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_SET_TAG, TAG, tag) != 1)
		goto fail;
	if (EVP_CipherFinal_ex(x, end, &n) != 1)
		goto fail;
	if (enc && EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_AEAD_GET_TAG, TAG, tag) != 1)
		goto fail;
	d->seq++;
	return 0;
fail:
	ERR_clear_error();
	d->keyed = false;
	return -EBADMSG;
}

/* Seals one record whose len bytes of content already sit at rec + HDR;
 * returns the record's size. */
static ssize_t seal(struct tls13 *t, uint8_t type, uint8_t *rec, size_t len)
{
	size_t clen = len + 1 + TAG;

	rec[HDR + len] = type;
	rec[0] = CT_APP;
	rec[1] = 0x03;
	rec[2] = 0x03;
	rec[3] = (uint8_t)(clen >> 8);
	rec[4] = (uint8_t)clen;
	if (aead(t, &t->wr, 1, rec, rec + HDR, len + 1) != 0)
		return -EIO;
	return (ssize_t)(HDR + clen);
}

/* An alert of ours, sent now if nothing sealed waits before it. */
static void send_alert(struct conn *c, struct tls13 *t, uint8_t desc)
{
	uint8_t rec[HDR + 2 + 1 + TAG];
	ssize_t n;

	if (t->pend || t->dead)
		return;
	rec[HDR] = desc == AL_CLOSE ? 1 : 2;
	rec[HDR + 1] = desc;
	n = seal(t, CT_ALERT, rec, 2);
	if (n > 0 && send(c->fd, rec, (size_t)n, MSG_NOSIGNAL) < 0)
		log_debug("%s:%d: TLS alert not sent: %s", c->ip, c->port,
			  strerror(errno));
}

/* --- reading ------------------------------------------------------------ */

static int fail(struct conn *c, struct tls13 *t, uint8_t alert, const char *why)
{
	log_debug("%s:%d: TLS record layer: %s", c->ip, c->port, why);
	send_alert(c, t, alert);
	t->eof = t->dead = true;
	return -EIO;
}

/* A handshake record's content: only KeyUpdate may come now (the server
 * never asks for a certificate after the handshake, 4.6.2), and it must
 * end its record, since the keys change after it (5.1). */
static int handshake(struct conn *c, struct tls13 *t, const uint8_t *p,
		     size_t len)
{
	while (len) {
		size_t take = MIN(len, sizeof(t->hs) - t->hs_len);

		memcpy(t->hs + t->hs_len, p, take);
		t->hs_len = (uint8_t)(t->hs_len + take);
		p += take;
		len -= take;
		if (t->hs[0] != MT_KEY_UPDATE)
			return fail(c, t, AL_UNEXPECTED, "handshake message after the handshake");
		if (t->hs_len >= 4 && (t->hs[1] || t->hs[2] || t->hs[3] != 1))
			return fail(c, t, AL_DECODE, "bad KeyUpdate length");
		if (t->hs_len < sizeof(t->hs))
			return 0;	/* the rest comes in the next record */
		if (t->hs[4] > 1)
			return fail(c, t, AL_ILLEGAL, "bad KeyUpdate request");
		if (len)
			return fail(c, t, AL_UNEXPECTED, "KeyUpdate not at the end of its record");
		if (t->hs[4] == 1)
			t->key_update_owed = true;
		t->hs_len = 0;
		if (next_keys(t->suite, &t->rd) != 0)
			return fail(c, t, AL_UNEXPECTED, "key derivation failed");
	}
	return 0;
}

/* Opens the whole records of buf[0, len) in place, moving their
 * application data to the front: *used bytes of records were taken,
 * *out bytes of data are at buf. */
static int open_records(struct conn *c, struct tls13 *t, uint8_t *buf,
			size_t len, size_t *used, size_t *out)
{
	size_t off = 0, o = 0;

	while (!t->eof && len - off >= HDR) {
		uint8_t *rec = buf + off, *body = rec + HDR;
		size_t clen = (size_t)rec[3] << 8 | rec[4], n;

		if (rec[0] != CT_APP)
			return fail(c, t, AL_UNEXPECTED, "unprotected record after the handshake");
		if (clen > CT_MAX)
			return fail(c, t, AL_OVERFLOW, "record too long");
		if (clen < 1 + TAG)
			return fail(c, t, AL_DECODE, "record too short");
		if (len - off < HDR + clen)
			break;
		off += HDR + clen;
		n = clen - TAG;
		if (aead(t, &t->rd, 0, rec, body, n) != 0)
			return fail(c, t, AL_BAD_MAC, "record does not authenticate");
		while (n && !body[n - 1])
			n--;		/* padding */
		if (!n)
			return fail(c, t, AL_UNEXPECTED, "record without a content type");
		n--;
		if (n > REC_MAX)
			return fail(c, t, AL_OVERFLOW, "plaintext too long");
		if (t->hs_len && body[n] != CT_HANDSHAKE)
			return fail(c, t, AL_UNEXPECTED, "handshake message interrupted");
		switch (body[n]) {
		case CT_APP:
			memmove(buf + o, body, n);
			o += n;
			break;
		case CT_HANDSHAKE:
			if (!n)
				return fail(c, t, AL_UNEXPECTED, "empty handshake record");
			if (handshake(c, t, body, n) != 0)
				return -EIO;
			break;
		case CT_ALERT:
			if (n != 2)
				return fail(c, t, AL_DECODE, "bad alert");
			if (body[1] == AL_CLOSE)
				t->eof = true;
			else if (body[1] != AL_USER_CANCELED) {
				log_debug("%s:%d: TLS alert %u from the peer",
					  c->ip, c->port, body[1]);
				t->eof = t->dead = true;
				return -EIO;
			}
			break;
		default:
			return fail(c, t, AL_UNEXPECTED, "unexpected record type");
		}
	}
	*used = off;
	*out = o;
	return 0;
}

static ssize_t t13_read(struct conn *c, void *buf, size_t len)
{
	struct tls13 *t = c->tls13;

	if (t->plain) {
		size_t m = MIN(len, t->plain_len - t->plain_off);
		memcpy(buf, t->plain + t->plain_off, m);
		t->plain_off += m;
		if (t->plain_off == t->plain_len) {
			free(t->plain);
			t->plain = NULL;
		}
		return (ssize_t)m;
	}
	if (!rbuf)
		rbuf = xmalloc(R_BUF);
	for (;;) {
		size_t have = t->raw_len, used, out;
		ssize_t k;

		if (t->eof)
			return 0;
		if (have)
			memcpy(rbuf, t->raw, have);
		k = read(c->fd, rbuf + have, R_BUF - have);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		if (k == 0)
			return have ? -EIO : 0;	/* cut in a record: truncated */
		free(t->raw);
		t->raw = NULL;
		t->raw_len = 0;
		if (open_records(c, t, rbuf, have + (size_t)k, &used, &out) != 0)
			return -EIO;
		if (used < have + (size_t)k) {
			t->raw_len = have + (size_t)k - used;
			t->raw = xmalloc(t->raw_len);
			memcpy(t->raw, rbuf + used, t->raw_len);
		}
		if (!out)
			continue;
		size_t m = MIN(out, len);
		memcpy(buf, rbuf, m);
		if (m < out) {
			t->plain_len = out - m;
			t->plain_off = 0;
			t->plain = xmalloc(t->plain_len);
			memcpy(t->plain, rbuf + m, t->plain_len);
		}
		return (ssize_t)m;
	}
}

/* --- writing ------------------------------------------------------------ */

static int push_pending(struct conn *c, struct tls13 *t)
{
	while (t->pend_off < t->pend_len) {
		ssize_t k = send(c->fd, t->pend + t->pend_off,
				 t->pend_len - t->pend_off, MSG_NOSIGNAL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		t->pend_off += (size_t)k;
	}
	free(t->pend);
	t->pend = NULL;
	return 0;
}

/* Seals up to W_RECORDS records of what iov holds and writes them. What
 * the socket does not take waits sealed (t->pend), and the bytes it
 * stands for are reported written only once it has gone out: conn.c
 * offers the same bytes again, as with SSL_write. */
static ssize_t t13_writev(struct conn *c, const struct iovec *iov, int n)
{
	struct tls13 *t = c->tls13;
	size_t wl = 0, taken = 0, ioff = 0;
	int i = 0, r;

	if (t->pend) {
		r = push_pending(c, t);
		if (r < 0)
			return r;
		if (t->pend_plain) {
			size_t k = t->pend_plain;
			t->pend_plain = 0;
			return (ssize_t)k;
		}
	}
	while (i < n && !iov[i].iov_len)
		i++;
	if (i == n)
		return 0;
	if (!wbuf)
		wbuf = xmalloc(HDR + 5 + 1 + TAG + W_RECORDS * REC_SPACE);
	if (t->key_update_owed || t->wr.seq >= SEAL_LIMIT) {
		static const uint8_t ku[5] = { MT_KEY_UPDATE, 0, 0, 1, 0 };
		ssize_t k;

		memcpy(wbuf + HDR, ku, sizeof(ku));
		k = seal(t, CT_HANDSHAKE, wbuf, sizeof(ku));
		if (k < 0 || next_keys(t->suite, &t->wr) != 0)
			return -EIO;
		wl = (size_t)k;
		t->key_update_owed = false;
	}
	for (int rec = 0; rec < W_RECORDS && i < n; rec++) {
		uint8_t *body = wbuf + wl + HDR;
		size_t pl = 0;
		ssize_t k;

		while (pl < REC_MAX && i < n) {
			size_t m = MIN(iov[i].iov_len - ioff, REC_MAX - pl);
			memcpy(body + pl, (const uint8_t *)iov[i].iov_base + ioff, m);
			pl += m;
			ioff += m;
			if (ioff == iov[i].iov_len) {
				i++;
				ioff = 0;
			}
		}
		k = seal(t, CT_APP, wbuf + wl, pl);
		if (k < 0)
			return -EIO;
		wl += (size_t)k;
		taken += pl;
	}
	ssize_t k;
	do
		k = send(c->fd, wbuf, wl, MSG_NOSIGNAL);
	while (k < 0 && errno == EINTR);
	if (k == (ssize_t)wl)
		return (ssize_t)taken;
	if (k < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		k = 0;
	}
	t->pend_len = wl - (size_t)k;
	t->pend_off = 0;
	t->pend = xmalloc(t->pend_len);
	memcpy(t->pend, wbuf + k, t->pend_len);
	t->pend_plain = taken;
	return -EAGAIN;
}

static void t13_shutdown(struct conn *c)
{
	send_alert(c, c->tls13, AL_CLOSE);
	shutdown(c->fd, SHUT_WR);
}

static bool t13_buffered(struct conn *c)
{
	return c->tls13->plain || c->tls13->eof;
}

static const struct conn_ops conn_tls13_ops = {
	.name = "tls",
	.read = t13_read,
	.writev = t13_writev,
	.shutdown = t13_shutdown,
	.buffered = t13_buffered,
};

/* --- letting OpenSSL go ------------------------------------------------ */

int tls13_compact(struct conn *c)
{
	const unsigned busy = CONN_F_HANDSHAKE | CONN_F_CLOSING | CONN_F_DEAD |
			      CONN_F_READ_WANTS_WRITE | CONN_F_WRITE_WANTS_READ;
	SSL *ssl = c->ssl;
	const struct suite *s;
	struct watch *w;
	struct tls13 *t;

	if (!ssl || c->ops != &conn_tls_ops || watch_idx < 0 ||
	    (c->flags & CONN_F_PEER_CERT))
		return -ENOTSUP;
	if ((c->flags & busy) || c->wq_bytes || SSL_has_pending(ssl) ||
	    SSL_get_shutdown(ssl))
		return -EAGAIN;
	w = SSL_get_ex_data(ssl, watch_idx);
	if (!SSL_is_server(ssl) || SSL_version(ssl) != TLS1_3_VERSION ||
	    SSL_get0_peer_certificate(ssl) || !w || w->key_update ||
	    w->have != 3 || !w->app_r || !w->app_w)
		return -ENOTSUP;
	s = suite_of(SSL_CIPHER_get_id(SSL_get_current_cipher(ssl)));
	if (!s || w->slen != s->hash_len)
		return -ENOTSUP;
	t = xcalloc(1, sizeof(*t));
	t->suite = s;
	t->cipher_name = SSL_CIPHER_get_name(SSL_get_current_cipher(ssl));
	memcpy(t->rd.secret, w->csec, s->hash_len);
	memcpy(t->wr.secret, w->ssec, s->hash_len);
	if (set_keys(s, &t->rd) != 0 || set_keys(s, &t->wr) != 0) {
		tls13_free(t);
		return -ENOTSUP;
	}
	t->rd.seq = w->rseq;
	t->wr.seq = w->wseq;
	SSL_free(ssl);
	c->ssl = NULL;
	c->tls13 = t;
	c->ops = &conn_tls13_ops;
	return 0;
}

void tls13_free(struct tls13 *t)
{
	if (!t)
		return;
	drop_context(&t->rd);
	drop_context(&t->wr);
	free(t->raw);
	if (t->plain)
		OPENSSL_clear_free(t->plain, t->plain_len);
	free(t->pend);
	OPENSSL_cleanse(t, sizeof(*t));
	free(t);
}

void tls13_quiet(struct conn *c)
{
	if (c->tls13 && !c->tls13->pend) {
		drop_context(&c->tls13->rd);
		drop_context(&c->tls13->wr);
	}
}

void tls13_free_shared(void)
{
	for (size_t i = 0; i < ARRAY_SIZE(suites); i++) {
		EVP_CIPHER_free(suites[i].c);
		EVP_MD_free(suites[i].m);
		suites[i].c = NULL;
		suites[i].m = NULL;
	}
	free(rbuf);
	free(wbuf);
	rbuf = wbuf = NULL;
}

const char *conn_tls_version(const struct conn *c)
{
	if (c->tls13)
		return "TLSv1.3";
	if (c->ssl && !(c->flags & CONN_F_HANDSHAKE))
		return SSL_get_version(c->ssl);
	return NULL;
}

const char *conn_tls_cipher(const struct conn *c)
{
	if (c->tls13)
		return c->tls13->cipher_name;
	if (c->ssl && !(c->flags & CONN_F_HANDSHAKE))
		return SSL_get_cipher_name(c->ssl);
	return NULL;
}
