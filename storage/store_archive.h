/*
 * store_archive.h - what the archive files of storage/ share (not for
 * other subsystems; store.h is the API): the layout's keys and records
 * (store_archive.c), the with index's reach (store_archive_index.c) and
 * query helpers (store_archive_query.c).
 *
 * P:   an archive's key prefix, host \0 user \0 store \0.
 * T8:  a time in microseconds as 8 big-endian bytes, sign bit flipped,
 *      so keys sort by time.
 * W:   the with of an item as its index keys spell it (a long one as its
 *      hash); see store_archive.c.
 */
#ifndef STARLING_STORE_ARCHIVE_H
#define STARLING_STORE_ARCHIVE_H

#include "store.h"

/* An archive: engine, its names and key prefix P (owned). */
struct arch {
	const struct store_engine *e;
	const char *host, *store;	/* borrowed from the handle */
	struct sbuf p;
};

/* The archive of user in s: 0, -EINVAL (not an archive store, no name
 * or no user) or -ENAMETOOLONG. arch_free in any case. */
int arch_init(struct arch *a, const struct store *s, const char *user);
void arch_free(struct arch *a);

/* ---- layout (store_archive.c) ---- */

void arch_put_t8(struct sbuf *b, int64_t t);
int64_t arch_get_t8(const void *p);
/* The with and value of an item's record into it: -EILSEQ if corrupt. */
int arch_rec_parse(const void *v, size_t vlen, struct store_arch_item *it);
/* Whether W is the with itself (not its hash). */
bool arch_w_is_exact(const char *with, size_t wlen);
/* Keys into k (reset first): P T8 id; P W \0; P id. */
void arch_prim_key(const struct arch *a, struct sbuf *k, int64_t t,
		   const char *id, size_t id_len);
void arch_with_prefix(const struct arch *a, struct sbuf *k,
		      const char *with, size_t wlen);
void arch_id_key(const struct arch *a, struct sbuf *k, const char *id,
		 size_t id_len);
/* The least key above every key starting with prefix. */
void arch_prefix_end(struct sbuf *hi, const struct sbuf *prefix);
int arch_buf_cmp(const struct sbuf *a, const struct sbuf *b);
/* Records of a buffer that start with a length-prefixed key (size_t
 * len, len bytes) followed by tail bytes: compared by key, and listed
 * sorted (pointers into the buffer, *n of them; free the array). */
int arch_lenkey_cmp(const void *x, const void *y);
const char **arch_lenkey_sort(const struct sbuf *buf, size_t tail,
			      size_t *n);

/* The time of the item with this id: 0, -ENOENT, -EINVAL, -ENAMETOOLONG. */
int arch_locate(const struct arch *a, const char *id, size_t id_len,
		int64_t *t);
/* Reads item (t, id) into it, its bytes in v (k is scratch). */
int arch_item_read(const struct arch *a, int64_t t, const char *id,
		   size_t id_len, struct sbuf *k, struct sbuf *v,
		   struct store_arch_item *it);
/* Deletes the item (t, id) and its index entries. */
int arch_item_delete(const struct arch *a, int64_t t, const char *id,
		     size_t id_len);

/* ---- usage (store_archive_usage.c) ---- */

/* The bytes an item counts for: its id, with and value (rec is its
 * record in the archive db). */
uint64_t arch_item_bytes(size_t id_len, const void *rec, size_t rlen);
/* Adds to a's usage record, right after the write it accounts for (so
 * the two commit together). On failure the record is deleted (counted
 * again when read); an error only when that failed too. */
int arch_usage_add(const struct arch *a, int64_t items, int64_t bytes);

/* ---- the with index's reach (store_archive_index.c) ---- */

struct arch_meta {
	int64_t until, floor;
};

/* 0, or -ENOENT when nothing was ever deferred (the index is whole). */
int arch_meta_get(const struct store_engine *e, const char *host,
		  const char *store, struct arch_meta *m);
int arch_meta_set(const struct store_engine *e, const char *host,
		  const char *store, const struct arch_meta *m);
/* The time before which items have their with entries: INT64_MAX when
 * all have. */
int arch_indexed_until(const struct arch *a, int64_t *until);
/* Whether an item appended now at time t may leave its with entry to
 * the job. */
int arch_may_defer(const struct arch *a, int64_t t, bool *defer);

/* ---- queries (store_archive_query.c) ---- */

bool arch_with_matches(const struct store_arch_query *q,
		       const struct store_arch_item *it);
/* The key range [lo, hi) of a scan under base: the time range, and
 * (use_pos) narrowed by after and before. false when empty. */
bool arch_scan_bounds(const struct store_arch_query *q,
		      const struct sbuf *base, bool use_pos,
		      struct sbuf *lo, struct sbuf *hi);

#endif
