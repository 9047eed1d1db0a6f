/*
 * storage_bench - archive store throughput and latency (store_archive.c
 * on LMDB, or on the memory engine).
 *
 *   build/storage_bench [-n ITEMS] [-b BATCH] [-q QUERIES] [-c CONTACTS]
 *                       [-s VALUE_BYTES] [-e lmdb|memory] [-d DIR]
 *
 * 1. Appends ITEMS items (default 1,000,000) to one user's archive with
 *    generated ids, 1 ms apart, 'with' cycling through CONTACTS contacts
 *    (default 1000), a VALUE_BYTES value (default 300, about an encoded
 *    chat message), committing (fsync) every BATCH appends (default 1000,
 *    the server's one commit per loop iteration under load). Reports
 *    appends per second, commits included.
 * 2. Fetches QUERIES pages of 50 (default 2000 each): by time range
 *    (start at a random time, oldest first), by with (a random contact
 *    from a random time, newest first, as a MAM query with RSM <before/>
 *    does), and after a random id (RSM <after/>). Each page is copied out
 *    as the Lua binding does. Reports median, p99 and max in microseconds.
 *
 * DIR (default: a new directory under /tmp, removed at the end) holds the
 * LMDB environment.
 */
#include "store.h"
#include "log.h"

#include <errno.h>
#include <ftw.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define PAGE 50
#define T0 INT64_C(1700000000000000)	/* microseconds */

struct opts {
	long items, batch, queries, contacts, value_bytes;
	const struct store_engine *e;
	const char *dir;
	struct store arc;	/* localhost's "archive" on e */
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void contact(char *buf, size_t n, long k)
{
	snprintf(buf, n, "contact%04ld@example.com", k);
}

static int fail(const char *what, int rc)
{
	fprintf(stderr, "storage_bench: %s: %s\n", what, strerror(-rc));
	return 1;
}

/* Appends the items; ids[i] gets item i's id (for the RSM queries). */
static int fill(const struct opts *o, char (*ids)[STORE_ID_GEN_LEN + 1])
{
	char *val = xmalloc((size_t)o->value_bytes), with[64];
	char id[STORE_ID_MAX + 1];
	double t = now_s();
	int rc = 0;

	for (long i = 0; i < o->value_bytes; i++)
		val[i] = (char)('a' + i % 26);
	for (long i = 0; i < o->items && rc == 0; i++) {
		contact(with, sizeof(with), i % o->contacts);
		struct store_arch_item it = {
			.when = T0 + i * 1000, .with = with,
			.with_len = strlen(with), .val = val,
			.val_len = (size_t)o->value_bytes,
		};
		rc = store_archive_append(&o->arc, "bench", &it, id);
		memcpy(ids[i], id, sizeof(ids[i]));
		if (rc == 0 && (i + 1) % o->batch == 0 && o->e == &store_lmdb)
			rc = store_commit();
	}
	if (rc == 0 && o->e == &store_lmdb)
		rc = store_commit();
	free(val);
	if (rc)
		return fail("append", rc);
	t = now_s() - t;
	printf("appends: %ld items of %ld bytes, %ld per commit: %.2f s, %.0f appends/s\n",
	       o->items, o->value_bytes, o->batch, t, (double)o->items / t);
	return 0;
}

/* A page copied out, as lx_store_archive.c does. */
struct page {
	struct sbuf buf;
	int n;
};

static int copy_item(void *ctx, const struct store_arch_item *it)
{
	struct page *p = ctx;

	sbuf_add(&p->buf, &it->when, sizeof(it->when));
	sbuf_add(&p->buf, it->id, it->id_len);
	if (it->with)
		sbuf_add(&p->buf, it->with, it->with_len);
	sbuf_add(&p->buf, it->val, it->val_len);
	p->n++;
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *us, long n, long short_pages)
{
	qsort(us, (size_t)n, sizeof(*us), cmp_double);
	printf("page of %d %-22s median %6.1f us, p99 %6.1f us, max %7.1f us"
	       " (%ld pages%s)\n", PAGE, what, us[n / 2], us[n * 99 / 100],
	       us[n - 1], n, short_pages ? ", some short" : "");
}

enum query_kind { Q_TIME, Q_WITH, Q_AFTER };

/* One query of kind k: its latency in microseconds, or -1. */
static double one_query(const struct opts *o, enum query_kind k,
			char (*ids)[STORE_ID_GEN_LEN + 1], struct page *p)
{
	struct store_arch_query q = { .has_limit = true, .limit = PAGE };
	struct store_arch_pos pos;
	char with[64];
	long r = random() % o->items;
	double t;
	int rc = 0;

	p->n = 0;
	sbuf_reset(&p->buf);
	t = now_s();
	if (k == Q_TIME) {
		q.has_start = true;
		q.start = T0 + r * 1000;
	} else if (k == Q_WITH) {
		contact(with, sizeof(with), random() % o->contacts);
		q.with = with;
		q.with_len = strlen(with);
		q.has_end = true;
		q.end = T0 + r * 1000;
		q.reverse = true;
	} else {
		rc = store_archive_locate(&o->arc, "bench", ids[r],
					  strlen(ids[r]), &pos);
		q.after = &pos;
	}
	if (rc == 0)
		rc = store_archive_find(&o->arc, "bench", &q, copy_item, p,
					NULL);
	t = (now_s() - t) * 1e6;
	if (o->e == &store_lmdb)
		store_end_read();	/* as the server does once per iteration */
	return rc ? -1 : t;
}

static int queries(const struct opts *o, char (*ids)[STORE_ID_GEN_LEN + 1])
{
	static const char *const names[] = { "by time range:", "by with (reverse):",
					     "after an id (RSM):" };
	double *us = xcalloc((size_t)o->queries, sizeof(*us));
	struct page p = { .n = 0 };

	sbuf_init(&p.buf);
	srandom(227);
	for (int k = Q_TIME; k <= Q_AFTER; k++) {
		long short_pages = 0;
		for (long i = 0; i < o->queries; i++) {
			us[i] = one_query(o, (enum query_kind)k, ids, &p);
			if (us[i] < 0) {
				free(us);
				sbuf_free(&p.buf);
				return fail("find", -EIO);
			}
			short_pages += p.n < PAGE;
		}
		report(names[k], us, o->queries, short_pages);
	}
	free(us);
	sbuf_free(&p.buf);
	return 0;
}

static int rm_one(const char *path, const struct stat *sb, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static int parse(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "n:b:q:c:s:e:d:h")) != -1) {
		switch (c) {
		case 'n': o->items = atol(optarg); break;
		case 'b': o->batch = atol(optarg); break;
		case 'q': o->queries = atol(optarg); break;
		case 'c': o->contacts = atol(optarg); break;
		case 's': o->value_bytes = atol(optarg); break;
		case 'e': o->e = store_engine_find(optarg); break;
		case 'd': o->dir = optarg; break;
		default:
			fprintf(stderr, "usage: storage_bench [-n ITEMS] [-b BATCH] "
				"[-q QUERIES] [-c CONTACTS] [-s VALUE_BYTES] "
				"[-e lmdb|memory] [-d DIR]\n");
			return -1;
		}
	}
	if (!o->e || o->items < PAGE || o->batch < 1 || o->queries < 1 ||
	    o->contacts < 1 || o->value_bytes < 1) {
		fprintf(stderr, "storage_bench: bad arguments\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct opts o = { 1000000, 1000, 2000, 1000, 300, &store_lmdb, NULL,
			  { 0 } };
	char tmp[] = "/tmp/starling-bench-XXXXXX";
	char (*ids)[STORE_ID_GEN_LEN + 1];
	int rc;

	if (parse(argc, argv, &o) != 0)
		return 2;
	store_init(&o.arc, o.e, "localhost", "archive", STORE_KIND_ARCHIVE);
	log_setup("warn", "stderr");
	if (!o.dir && !(o.dir = mkdtemp(tmp)))
		return fail("mkdtemp", -errno);
	rc = store_open(o.dir, (size_t)64 << 30);
	if (rc)
		return fail("store_open", rc);
	printf("engine %s, %s\n", o.e->name, o.e == &store_lmdb ? o.dir : "memory");
	ids = xcalloc((size_t)o.items, sizeof(*ids));
	rc = fill(&o, ids);
	if (rc == 0)
		rc = queries(&o, ids);
	free(ids);
	store_close();
	store_memory_clear();
	if (o.dir == tmp)
		nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return rc;
}
