/*
 * test_store_archive.c - archive stores (store_archive.c) on both engines
 * (LMDB in a temporary directory, memory), every query field, paging
 * through 10,000 items both ways, and the Lua binding
 * (lx_store_archive.c).
 */
#include "harness.h"
#include "store.h"
#include "store_both.h"
#include "log.h"
#include "lx.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

static char base[] = "/tmp/starling-test-archive-XXXXXX";
static char dir[256];
static int ndirs;

/* The archive store name of host "h" on the engine under test (a few
 * handles in turn, so a call may take two). */
static const struct store *arc_of(const char *name)
{
	static struct store hs[4];
	static int next;
	struct store *s = &hs[next++ % 4];

	CHECK(store_init(s, E, "h", name, STORE_KIND_ARCHIVE) == 0);
	return s;
}

#define ARC arc_of("arc")

#define S 1000000LL			/* a second in microseconds */

/* Opens a fresh LMDB environment (and clears memory): both engines start
 * empty. */
static void fresh(void)
{
	if (store_is_open())
		store_close();
	store_memory_clear();
	snprintf(dir, sizeof(dir), "%s/env%d", base, ++ndirs);
	CHECK(store_open(dir, 0) == 0);
	both_fresh();
}

static int append(const char *user, const char *id, int64_t when,
		  const char *with, const char *val, char *idout)
{
	struct store_arch_item it = {
		.when = when, .id = id, .id_len = id ? strlen(id) : 0,
		.with = with, .with_len = with ? strlen(with) : 0,
		.val = val, .val_len = strlen(val),
	};

	return store_archive_append(ARC, user, &it, idout);
}

/* Items found, as "id:value;" (with "@with" when asked). */
struct found {
	char buf[8192];
	bool show_with;
	int n;
};

static int collect(void *ctx, const struct store_arch_item *it)
{
	struct found *f = ctx;
	size_t n = strlen(f->buf);

	n += (size_t)snprintf(f->buf + n, sizeof(f->buf) - n, "%.*s:%.*s",
			      (int)it->id_len, it->id, (int)it->val_len,
			      (const char *)it->val);
	if (f->show_with && it->with)
		n += (size_t)snprintf(f->buf + n, sizeof(f->buf) - n, "@%.*s",
				      (int)it->with_len, it->with);
	snprintf(f->buf + n, sizeof(f->buf) - n, ";");
	f->n++;
	return 0;
}

static const char *find(const char *user, const struct store_arch_query *q,
			struct found *f, size_t *total)
{
	bool w = f->show_with;

	memset(f, 0, sizeof(*f));
	f->show_with = w;
	CHECK(store_archive_find(ARC, user, q, collect, f, total) == 0);
	return f->buf;
}

static struct store_arch_pos pos_of(const char *user, const char *id)
{
	struct store_arch_pos p = { 0 };

	CHECK(store_archive_locate(ARC, user, id, strlen(id), &p) == 0);
	return p;
}

/* Five items of u: a..e at 10..50 s; with x for a, c, e and y for b. */
static void five(void)
{
	CHECK(append("u", "c", 30 * S, "x", "3", NULL) == 0);
	CHECK(append("u", "a", 10 * S, "x", "1", NULL) == 0);
	CHECK(append("u", "e", 50 * S, "x", "5", NULL) == 0);
	CHECK(append("u", "b", 20 * S, "y", "2", NULL) == 0);
	CHECK(append("u", "d", 40 * S, NULL, "4", NULL) == 0);
	CHECK(append("v", "a", 10 * S, "x", "other user", NULL) == 0);
}

static void test_append_get(void)
{
	struct found f = { .show_with = true };
	char id[STORE_ID_MAX + 1], id2[STORE_ID_MAX + 1];
	struct store_arch_query all = { 0 };
	struct store_arch_pos p;

	fresh();
	five();
	CHECK(store_archive_get(ARC, "u", "b", 1, collect, &f) == 0);
	CHECK_STR(f.buf, "b:2@y;");
	CHECK(store_archive_get(ARC, "u", "z", 1, collect, &f) == -ENOENT);
	CHECK(store_archive_get(ARC, "w", "b", 1, collect, &f) == -ENOENT);
	CHECK(store_archive_locate(ARC, "u", "d", 1, &p) == 0 &&
	      p.when == 40 * S);
	CHECK_STR(find("u", &all, &f, NULL), "a:1@x;b:2@y;c:3@x;d:4;e:5@x;");
	/* generated ids: unique, of the documented length, sorted */
	CHECK(append("u", NULL, 60 * S, "x", "6", id) == 0);
	CHECK(append("u", NULL, 60 * S, "x", "7", id2) == 0);
	CHECK(strlen(id) == STORE_ID_GEN_LEN && strcmp(id, id2) < 0);
	/* an id that exists replaces the item, index entries too */
	CHECK(append("u", "b", 45 * S, "z", "2b", NULL) == 0);
	memset(&f, 0, sizeof(f));
	f.show_with = true;
	CHECK(store_archive_get(ARC, "u", "b", 1, collect, &f) == 0);
	CHECK_STR(f.buf, "b:2b@z;");
	struct store_arch_query qy = { .with = "y", .with_len = 1 };
	CHECK_STR(find("u", &qy, &f, NULL), "");
	struct store_arch_query qz = { .with = "z", .with_len = 1 };
	CHECK_STR(find("u", &qz, &f, NULL), "b:2b@z;");
	/* bad ids */
	CHECK(append("u", "", 1, NULL, "x", NULL) == -EINVAL);
	char big[STORE_ID_MAX + 2];
	memset(big, 'i', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	CHECK(append("u", big, 1, NULL, "x", NULL) == -ENAMETOOLONG);
	struct store nameless, empty;
	struct store_arch_item x = { .when = 1, .val = "x", .val_len = 1 };
	CHECK(store_init(&empty, E, "h", "", STORE_KIND_ARCHIVE) == -EINVAL);
	CHECK(store_init(&nameless, E, "h", NULL, STORE_KIND_ARCHIVE) == 0);
	CHECK(store_archive_append(&nameless, "u", &x, NULL) == -EINVAL);
	/* times before 1970 sort first */
	CHECK(append("u", "old", -5 * S, NULL, "0", NULL) == 0);
	struct store_arch_query first = { .has_limit = true, .limit = 1 };
	CHECK_STR(find("u", &first, &f, NULL), "old:0;");
}

/* A made id spells its item's time and gets no archive_id record; ids
 * given by a caller (even of a made id's shape) and made ids of items
 * appended with another time do, and all are found and replaced alike. */
static void test_made_ids(void)
{
	struct found f = { 0 };
	char id[STORE_ID_MAX + 1], id2[STORE_ID_MAX + 1], k[64];
	struct store_arch_pos p;
	struct sbuf v;
	size_t klen;

	fresh();
	sbuf_init(&v);
	CHECK(append("u", NULL, STORE_WHEN_NOW, "x", "now", id) == 0);
	CHECK(store_archive_locate(ARC, "u", id, strlen(id), &p) == 0);
	CHECK(p.when > 1700000000 * S);
	klen = (size_t)snprintf(k, sizeof(k), "h%cu%carc%c%s", 0, 0, 0, id);
	CHECK(E->get(STORE_ARCHIVE_ID, k, klen, &v) == -ENOENT);
	/* appended with a time of its own: indexed */
	CHECK(append("u", NULL, 5 * S, "x", "then", id2) == 0);
	klen = (size_t)snprintf(k, sizeof(k), "h%cu%carc%c%s", 0, 0, 0, id2);
	CHECK(E->get(STORE_ARCHIVE_ID, k, klen, &v) == 0);
	CHECK(store_archive_locate(ARC, "u", id2, strlen(id2), &p) == 0 &&
	      p.when == 5 * S);
	/* a caller's id of our shape whose spelt time is not its item's */
	CHECK(append("u", id, 7 * S, NULL, "copy", NULL) == 0);
	CHECK(store_archive_get(ARC, "u", id, strlen(id), collect,
				&f) == 0);
	CHECK(strstr(f.buf, ":copy;") != NULL);
	CHECK(store_archive_locate(ARC, "u", id, strlen(id), &p) == 0 &&
	      p.when == 7 * S);
	struct store_arch_query all = { 0 };
	CHECK(strstr(find("u", &all, &f, NULL), ":copy;") != NULL);
	CHECK(strstr(f.buf, ":now;") == NULL);	/* replaced, not doubled */
	CHECK(f.n == 2);
	/* deleting a made-id item leaves nothing behind */
	struct store_arch_query one = { .ids = (const char *const[]){ id2 },
					.id_lens = (const size_t[]){ strlen(id2) },
					.nids = 1 };
	size_t gone = 0;
	CHECK(store_archive_delete(ARC, "u", &one, 0, &gone) == 0 &&
	      gone == 1);
	CHECK(store_archive_locate(ARC, "u", id2, strlen(id2), &p) ==
	      -ENOENT);
	/* a made-looking id that names nothing */
	CHECK(store_archive_locate(ARC, "u", "-----------AAAA", 15,
				   &p) == -ENOENT);
	sbuf_free(&v);
}

static void test_query_fields(void)
{
	struct found f = { 0 };
	size_t total = 0;
	struct store_arch_pos pb, pd;

	fresh();
	five();
	pb = pos_of("u", "b");
	pd = pos_of("u", "d");
	struct store_arch_query q1 = { .has_start = true, .start = 20 * S,
				       .has_end = true, .end = 40 * S };
	CHECK_STR(find("u", &q1, &f, &total), "b:2;c:3;d:4;");
	CHECK(total == 3);
	struct store_arch_query q2 = { .has_start = true, .start = 20 * S + 1 };
	CHECK_STR(find("u", &q2, &f, NULL), "c:3;d:4;e:5;");
	struct store_arch_query q3 = { .has_end = true, .end = 20 * S - 1 };
	CHECK_STR(find("u", &q3, &f, NULL), "a:1;");
	struct store_arch_query q4 = { .with = "x", .with_len = 1 };
	CHECK_STR(find("u", &q4, &f, &total), "a:1;c:3;e:5;");
	CHECK(total == 3);
	struct store_arch_query q5 = { .with = "x", .with_len = 1, .reverse = true,
				       .has_limit = true, .limit = 2 };
	CHECK_STR(find("u", &q5, &f, &total), "e:5;c:3;");
	CHECK(total == 3);
	struct store_arch_query q6 = { .after = &pb };
	CHECK_STR(find("u", &q6, &f, &total), "c:3;d:4;e:5;");
	CHECK(total == 5);			/* after does not count */
	struct store_arch_query q7 = { .before = &pd };
	CHECK_STR(find("u", &q7, &f, NULL), "a:1;b:2;c:3;");
	struct store_arch_query q8 = { .after = &pb, .before = &pd };
	CHECK_STR(find("u", &q8, &f, NULL), "c:3;");
	struct store_arch_query q9 = { .before = &pd, .reverse = true,
				       .has_limit = true, .limit = 2 };
	CHECK_STR(find("u", &q9, &f, NULL), "c:3;b:2;");
	struct store_arch_query q10 = { .with = "x", .with_len = 1, .after = &pb };
	CHECK_STR(find("u", &q10, &f, NULL), "c:3;e:5;");
	struct store_arch_query q11 = { .has_limit = true, .limit = 0 };
	CHECK_STR(find("u", &q11, &f, &total), "");
	CHECK(total == 5);
	struct store_arch_query q12 = { .with = "nobody", .with_len = 6 };
	CHECK_STR(find("u", &q12, &f, &total), "");
	CHECK(total == 0);
	CHECK_STR(find("nobody", &q1, &f, &total), "");
	/* ids: any order, duplicates and unknown ids, filters apply */
	const char *ids[] = { "e", "a", "zz", "c", "a", "d" };
	size_t lens[] = { 1, 1, 2, 1, 1, 1 };
	struct store_arch_query q13 = { .ids = ids, .id_lens = lens, .nids = 6 };
	CHECK_STR(find("u", &q13, &f, &total), "a:1;c:3;d:4;e:5;");
	CHECK(total == 4);
	struct store_arch_query q14 = { .ids = ids, .id_lens = lens, .nids = 6,
					.with = "x", .with_len = 1,
					.has_start = true, .start = 20 * S,
					.reverse = true };
	CHECK_STR(find("u", &q14, &f, &total), "e:5;c:3;");
	CHECK(total == 2);
	struct store_arch_query q15 = { .ids = ids, .id_lens = lens, .nids = 6,
					.after = &pb, .before = &pd };
	CHECK_STR(find("u", &q15, &f, &total), "c:3;");
	CHECK(total == 4);
	struct store_arch_query q16 = { .ids = ids, .id_lens = lens, .nids = 6,
					.has_limit = true, .limit = 1,
					.reverse = true };
	CHECK_STR(find("u", &q16, &f, NULL), "e:5;");
	struct store_arch_query q17 = { .ids = ids, .id_lens = lens, .nids = 0 };
	CHECK_STR(find("u", &q17, &f, &total), "");
	CHECK(total == 0);
	/* the other user and another store are apart */
	struct store_arch_query all = { 0 };
	CHECK_STR(find("v", &all, &f, NULL), "a:other user;");
	struct store_arch_item q = { .when = 5, .id = "q", .id_len = 1,
				     .val = "q", .val_len = 1 };
	CHECK(store_archive_append(arc_of("arc2"), "u", &q, NULL) == 0);
	CHECK_STR(find("u", &all, &f, NULL), "a:1;b:2;c:3;d:4;e:5;");
}

/* 10,000 items paged 50 at a time forwards (after) and backwards
 * (before + reverse); with a with filter on every third. */
static void test_paging(void)
{
	enum { N = 10000, PAGE = 50 };
	char id[32], val[32], last[32] = "";
	size_t total = 0;
	int seen = 0, pages = 0;
	bool ok = true;

	fresh();
	for (int i = 0; i < N; i++) {
		/* times in shuffled order, so keys are not appended in order */
		int t = (i * 7919) % N;
		snprintf(id, sizeof(id), "id%05d", t);
		snprintf(val, sizeof(val), "%d", t);
		if (append("p", id, (int64_t)t * S, t % 3 == 0 ? "third" : "other",
			   val, NULL) != 0)
			ok = false;
	}
	CHECK(ok);
	CHECK(store_commit() == 0);
	for (;;) {			/* forwards */
		struct found f = { 0 };
		struct store_arch_pos p;
		struct store_arch_query q = { .has_limit = true, .limit = PAGE };
		if (*last) {
			p = pos_of("p", last);
			q.after = &p;
		}
		find("p", &q, &f, pages == 0 ? &total : NULL);
		if (f.n == 0)
			break;
		for (int i = 0; i < f.n; i++) {
			snprintf(id, sizeof(id), "id%05d:%d;", seen + i, seen + i);
			if (!strstr(f.buf, id))
				ok = false;
		}
		seen += f.n;
		pages++;
		snprintf(last, sizeof(last), "id%05d", seen - 1);
	}
	CHECK(ok && seen == N && pages == N / PAGE && total == N);
	seen = 0;
	*last = '\0';
	for (;;) {			/* backwards, only "third" */
		struct found f = { 0 };
		struct store_arch_pos p;
		struct store_arch_query q = { .has_limit = true, .limit = PAGE,
					      .reverse = true, .with = "third",
					      .with_len = 5 };
		if (*last) {
			p = pos_of("p", last);
			q.before = &p;
		}
		find("p", &q, &f, NULL);
		if (f.n == 0)
			break;
		int expect = N - 1 - (N - 1) % 3 - 3 * seen;
		snprintf(id, sizeof(id), "id%05d:%d;", expect, expect);
		if (strncmp(f.buf, id, strlen(id)) != 0)
			ok = false;
		seen += f.n;
		snprintf(last, sizeof(last), "id%05d", N - 1 - (N - 1) % 3 - 3 * (seen - 1));
	}
	CHECK(ok && seen == (N + 2) / 3);
}

static void test_delete(void)
{
	struct found f = { 0 };
	size_t n = 0;
	struct store_arch_pos pc;

	fresh();
	five();
	struct store_arch_query q1 = { .with = "x", .with_len = 1,
				       .has_end = true, .end = 30 * S };
	CHECK(store_archive_delete(ARC, "u", &q1, 0, &n) == 0 && n == 2);
	struct store_arch_query all = { 0 };
	CHECK_STR(find("u", &all, &f, NULL), "b:2;d:4;e:5;");
	CHECK(store_archive_get(ARC, "u", "a", 1, collect, &f) == -ENOENT);
	struct store_arch_query qx = { .with = "x", .with_len = 1 };
	CHECK_STR(find("u", &qx, &f, NULL), "e:5;");
	/* ids are free again */
	CHECK(append("u", "a", 60 * S, NULL, "1b", NULL) == 0);
	CHECK_STR(find("u", &all, &f, NULL), "b:2;d:4;e:5;a:1b;");
	/* truncate: keep the newest 2 */
	CHECK(store_archive_delete(ARC, "u", &all, 2, &n) == 0 && n == 2);
	CHECK_STR(find("u", &all, &f, NULL), "e:5;a:1b;");
	fresh();
	five();
	struct store_arch_query rev = { .reverse = true };
	CHECK(store_archive_delete(ARC, "u", &rev, 3, &n) == 0 && n == 2);
	CHECK_STR(find("u", &all, &f, NULL), "c:3;d:4;e:5;");
	pc = pos_of("u", "c");
	struct store_arch_query after = { .after = &pc, .has_limit = true,
					  .limit = 1 };
	CHECK(store_archive_delete(ARC, "u", &after, 0, &n) == 0 && n == 1);
	CHECK_STR(find("u", &all, &f, NULL), "c:3;e:5;");
	CHECK(store_archive_delete(ARC, "u", &all, 0, &n) == 0 && n == 2);
	CHECK_STR(find("u", &all, &f, NULL), "");
	CHECK_STR(find("v", &all, &f, NULL), "a:other user;");
	CHECK(store_archive_delete(ARC, "nobody", &all, 0, &n) == 0 && n == 0);
}

static int count_user(void *ctx, const char *user)
{
	strcat(ctx, user);
	strcat(ctx, ",");
	return 0;
}

static void test_trim_users_purge(void)
{
	struct found f = { 0 };
	char users[128] = "";
	size_t n = 0;

	fresh();
	five();
	CHECK(append("", "h1", 5 * S, NULL, "host", NULL) == 0);
	CHECK(append("w", "z", 100 * S, NULL, "new", NULL) == 0);
	struct store_arch_item o = { .when = 1, .id = "z", .id_len = 1,
				     .val = "o", .val_len = 1 };
	CHECK(store_archive_append(arc_of("other"), "w2", &o, NULL) == 0);
	CHECK(store_users(ARC, count_user, users) == 0);
	CHECK_STR(users, "u,v,w,");
	CHECK(store_archive_trim(ARC, "u", 30 * S, &n) == 0 && n == 2);
	struct store_arch_query all = { 0 };
	CHECK_STR(find("u", &all, &f, NULL), "c:3;d:4;e:5;");
	CHECK(store_archive_trim(ARC, NULL, 45 * S, &n) == 0 && n == 4);
	CHECK_STR(find("u", &all, &f, NULL), "e:5;");
	CHECK_STR(find("v", &all, &f, NULL), "");
	CHECK_STR(find("", &all, &f, NULL), "");
	CHECK_STR(find("w", &all, &f, NULL), "z:new;");
	*users = '\0';
	CHECK(store_users(ARC, count_user, users) == 0);
	CHECK_STR(users, "u,w,");
	/* purge removes the archives of a user, every store, every index */
	CHECK(store_purge_user("h", "u") == 0);
	CHECK_STR(find("u", &all, &f, NULL), "");
	CHECK(store_archive_get(ARC, "u", "e", 1, collect, &f) == -ENOENT);
	struct store_arch_query qx = { .with = "x", .with_len = 1 };
	CHECK_STR(find("u", &qx, &f, NULL), "");
	CHECK_STR(find("w", &all, &f, NULL), "z:new;");
}

struct sums {
	char buf[512];
};

static int add_sum(void *ctx, const char *with, size_t wlen, size_t count,
		   int64_t first, int64_t last)
{
	struct sums *s = ctx;
	size_t n = strlen(s->buf);

	snprintf(s->buf + n, sizeof(s->buf) - n, "%.*s=%zu[%lld,%lld];",
		 wlen > 20 ? 20 : (int)wlen, with, count,
		 (long long)(first / S), (long long)(last / S));
	return 0;
}

static int add_day(void *ctx, int64_t day)
{
	size_t n = strlen(ctx);

	snprintf((char *)ctx + n, 256 - n, "%lld,", (long long)(day / S / 86400));
	return 0;
}

static void test_summary_dates(void)
{
	struct sums s = { "" };
	char days[256] = "";
	char longwith[300];

	fresh();
	five();
	memset(longwith, 'L', sizeof(longwith) - 1);
	longwith[sizeof(longwith) - 1] = '\0';
	CHECK(append("u", "l1", 70 * S, longwith, "l", NULL) == 0);
	CHECK(append("u", "l2", 80 * S, longwith, "l", NULL) == 0);
	struct store_arch_query all = { 0 };
	CHECK(store_archive_summary(ARC, "u", &all, add_sum, &s) == 0);
	CHECK_STR(s.buf, "LLLLLLLLLLLLLLLLLLLL=2[70,80];x=3[10,50];y=1[20,20];");
	*s.buf = '\0';
	struct store_arch_query q = { .has_start = true, .start = 15 * S,
				      .has_end = true, .end = 75 * S };
	CHECK(store_archive_summary(ARC, "u", &q, add_sum, &s) == 0);
	CHECK_STR(s.buf, "LLLLLLLLLLLLLLLLLLLL=1[70,70];x=2[30,50];y=1[20,20];");
	*s.buf = '\0';
	struct store_arch_query qw = { .with = longwith, .with_len = strlen(longwith) };
	CHECK(store_archive_summary(ARC, "u", &qw, add_sum, &s) == 0);
	CHECK_STR(s.buf, "LLLLLLLLLLLLLLLLLLLL=2[70,80];");
	/* a long with is matched exactly in find too */
	struct found f = { 0 };
	size_t total;
	CHECK_STR(find("u", &qw, &f, &total), "l1:l;l2:l;");
	CHECK(total == 2);
	longwith[0] = 'M';
	CHECK_STR(find("u", &qw, &f, &total), "");
	CHECK(total == 0);
	/* dates */
	CHECK(append("u", "d2", 86400 * S * 2 + 5, NULL, "x", NULL) == 0);
	CHECK(append("u", "d2b", 86400 * S * 2 + 7, NULL, "x", NULL) == 0);
	CHECK(append("u", "d9", 86400 * S * 9, NULL, "x", NULL) == 0);
	CHECK(append("u", "dm", -1, NULL, "x", NULL) == 0);
	CHECK(store_archive_dates(ARC, "u", add_day, days) == 0);
	CHECK_STR(days, "-1,0,2,9,");
}

/* with index entries of h/user/arc */
static int count_entry(void *ctx, const void *k, size_t klen, const void *v,
		       size_t vlen)
{
	(*(int *)ctx)++;
	return 0;
}

static int with_entries(const char *user)
{
	char lo[32], hi[32];
	int n = 0, len = snprintf(lo, sizeof(lo), "h%c%s%carc%c", 0, user, 0, 0);

	memcpy(hi, lo, (size_t)len);
	hi[len - 1] = '\1';
	CHECK(E->scan(STORE_ARCHIVE_WITH, lo, (size_t)len, hi, (size_t)len,
		      false, count_entry, &n) == 0);
	return n;
}

/* What queries by with see, checked before and after the index job. */
static void check_with_queries(char ids[][STORE_ID_MAX + 1], const char *lw)
{
	struct found f = { 0 };
	struct sums s = { "" };
	char want[512];
	size_t total = 0;
	struct store_arch_query qx = { .with = "x", .with_len = 1 };

	snprintf(want, sizeof(want), "i1:old x;%s:n1;%s:n3;%s:n5;", ids[1],
		 ids[3], ids[5]);
	CHECK_STR(find("u", &qx, &f, &total), want);
	CHECK(total == 4);
	/* across the index's reach, both ways, with limits and positions */
	struct store_arch_query q2 = { .with = "x", .with_len = 1,
				       .has_limit = true, .limit = 2 };
	snprintf(want, sizeof(want), "i1:old x;%s:n1;", ids[1]);
	CHECK_STR(find("u", &q2, &f, &total), want);
	CHECK(total == 4);
	q2.reverse = true;
	snprintf(want, sizeof(want), "%s:n5;%s:n3;", ids[5], ids[3]);
	CHECK_STR(find("u", &q2, &f, &total), want);
	struct store_arch_pos p3 = pos_of("u", ids[3]), pi = pos_of("u", "i1");
	struct store_arch_query qb = { .with = "x", .with_len = 1,
				       .before = &p3, .reverse = true };
	snprintf(want, sizeof(want), "%s:n1;i1:old x;", ids[1]);
	CHECK_STR(find("u", &qb, &f, &total), want);
	struct store_arch_query qa = { .with = "x", .with_len = 1, .after = &pi,
				       .has_limit = true, .limit = 1 };
	snprintf(want, sizeof(want), "%s:n1;", ids[1]);
	CHECK_STR(find("u", &qa, &f, &total), want);
	struct store_arch_query qs = { .with = "x", .with_len = 1,
				       .has_start = true,
				       .start = pos_of("u", ids[3]).when };
	snprintf(want, sizeof(want), "%s:n3;%s:n5;", ids[3], ids[5]);
	CHECK_STR(find("u", &qs, &f, &total), want);
	CHECK(total == 2);
	struct store_arch_query ql = { .with = lw, .with_len = strlen(lw) };
	snprintf(want, sizeof(want), "%s:long;", ids[6]);
	CHECK_STR(find("u", &ql, &f, &total), want);
	struct store_arch_query qy = { .with = "y", .with_len = 1 };
	snprintf(want, sizeof(want), "i2:old y;%s:n2;", ids[2]);
	CHECK_STR(find("u", &qy, &f, &total), want);
	CHECK_STR(find("v", &qy, &f, &total), "");
	/* summary: the index's groups and the newer items merged */
	struct store_arch_query all = { 0 };
	CHECK(store_archive_summary(ARC, "u", &all, add_sum, &s) == 0);
	snprintf(want, sizeof(want), "LLLLLLLLLLLLLLLLLLLL=1[%lld,%lld];"
		 "x=4[10,%lld];y=2[20,%lld];z=1[%lld,%lld];",
		 (long long)(pos_of("u", ids[6]).when / S),
		 (long long)(pos_of("u", ids[6]).when / S),
		 (long long)(pos_of("u", ids[5]).when / S),
		 (long long)(pos_of("u", ids[2]).when / S),
		 (long long)(pos_of("u", "i3").when / S),
		 (long long)(pos_of("u", "i3").when / S));
	CHECK_STR(s.buf, want);
	*s.buf = '\0';
	CHECK(store_archive_summary(ARC, "u", &qy, add_sum, &s) == 0);
	CHECK(strncmp(s.buf, "y=2[20,", 7) == 0);
}

/* Items appended as they pass leave their with entries to the job;
 * queries see them all the same, before, during and after it. */
static void test_deferred_index(void)
{
	char ids[8][STORE_ID_MAX + 1], lw[200], id[STORE_ID_MAX + 1];
	static const char *const withs[] = { NULL, "x", "y", "x", NULL, "x", NULL };
	int steps = 0, rc;

	fresh();
	memset(lw, 'L', sizeof(lw) - 1);
	lw[sizeof(lw) - 1] = '\0';
	CHECK(append("u", "i1", 10 * S, "x", "old x", NULL) == 0);
	CHECK(append("u", "i2", 20 * S, "y", "old y", NULL) == 0);
	CHECK(with_entries("u") == 2);
	for (int i = 1; i <= 6; i++) {
		char val[8];
		snprintf(val, sizeof(val), i == 6 ? "long" : "n%d", i);
		CHECK(append("u", NULL, STORE_WHEN_NOW, i == 6 ? lw : withs[i],
			     val, ids[i]) == 0);
		CHECK(append("v", NULL, STORE_WHEN_NOW, "x", val, NULL) == 0);
	}
	CHECK(append("", NULL, STORE_WHEN_NOW, "x", "host's own", NULL) == 0);
	/* an explicit time is indexed at once, even among the new items */
	CHECK(append("u", "i3", pos_of("u", ids[4]).when, "z", "imported",
		     NULL) == 0);
	CHECK(with_entries("u") == 3 && with_entries("v") == 0);
	check_with_queries(ids, lw);
	struct store_arch_query qz = { .with = "z", .with_len = 1 };
	struct found f = { 0 };
	CHECK_STR(find("u", &qz, &f, NULL), "i3:imported;");
	/* not yet due: nothing to do */
	CHECK(store_archive_index_step(3600 * S, 100) == 0);
	CHECK(with_entries("u") == 3);
	/* due (up to ten seconds ahead), a few items per step */
	while ((rc = store_archive_index_step(-10 * S, 3)) == 1 && steps < 100) {
		steps++;
		check_with_queries(ids, lw);	/* half done: the same */
	}
	CHECK(rc == 0 && steps > 3);
	CHECK(with_entries("u") == 8 && with_entries("v") == 6 &&
	      with_entries("") == 1);
	check_with_queries(ids, lw);
	CHECK_STR(find("u", &qz, &f, NULL), "i3:imported;");
	/* before the new reach (ahead of now): indexed at once */
	CHECK(append("u", NULL, STORE_WHEN_NOW, "x", "n7", id) == 0);
	CHECK(with_entries("u") == 9);
	/* deleting an indexed item takes its entry along */
	struct store_arch_query one = { .ids = (const char *const[]){ id },
					.id_lens = (const size_t[]){ strlen(id) },
					.nids = 1 };
	size_t gone = 0;
	CHECK(store_archive_delete(ARC, "u", &one, 0, &gone) == 0 &&
	      gone == 1);
	CHECK(with_entries("u") == 8);
	check_with_queries(ids, lw);
}

/* A record whose bytes are not an archive record: find reports it. */
static void test_corrupt(void)
{
	struct found f = { 0 };
	struct store_arch_query all = { 0 };
	char key[64];
	size_t klen;

	fresh();
	CHECK(append("u", "a", 10 * S, NULL, "1", NULL) == 0);
	/* h \0 u \0 arc \0 T8 "b" with a value that claims a long with */
	klen = (size_t)snprintf(key, sizeof(key), "h%cu%carc%c", 0, 0, 0);
	memset(key + klen, 0x80, 8);
	key[klen + 7] = 1;
	key[klen + 8] = 'b';
	CHECK(E->put(STORE_ARCHIVE, key, klen + 9, "\x7f", 1) == 0);
	CHECK(store_archive_find(ARC, "u", &all, collect, &f, NULL) ==
	      -EILSEQ);
}

/* ---- the Lua binding ---- */

static const char lua_test[] =
	"local store = require 'starling.store'\n"
	"local a = assert(store.open('h', 'mam', 'archive', ENGINE))\n"
	"assert(tostring(a):match('archive'))\n"
	"local st = ...\n"
	"assert(a:append('u', 'a', 'one', 10, 'x@h') == 'a')\n"
	"assert(a:append('u', 'b', { 2, t = true }, 20.5, 'y@h') == 'b')\n"
	"assert(a:append('u', 'c', st, 30, 'x@h') == 'c')\n"
	"local gen = assert(a:append('u', nil, false, nil, nil))\n"
	"assert(#gen == 15)\n"
	"local v, when, with = a:get('u', 'b')\n"
	"assert(v[1] == 2 and v.t == true and when == 20.5 and with == 'y@h')\n"
	"v, when, with = a:get('u', 'c')\n"
	"assert(tostring(v) == tostring(st) and when == 30 and math.type(when) == 'integer')\n"
	"v, when, with = a:get('u', gen)\n"
	"assert(v == false and with == nil and when > 1.7e9)\n"
	"assert(a:get('u', 'nope') == nil)\n"
	"local function ids(iter, total)\n"
	"  local out = {}\n"
	"  for id, val, w, wi in iter do out[#out + 1] = id end\n"
	"  return table.concat(out, ','), total\n"
	"end\n"
	"assert(ids(a:find('u')) == 'a,b,c,' .. gen)\n"
	"assert(ids(a:find('u', { reverse = true, limit = 2 })) == gen .. ',c')\n"
	"assert(ids(a:find('u', { start = 20, ['end'] = 30 })) == 'b,c')\n"
	"assert(ids(a:find('u', { start = 20.6 })) == 'c,' .. gen)\n"
	"assert(ids(a:find('u', { with = 'x@h' })) == 'a,c')\n"
	"assert(ids(a:find('u', { after = 'a', before = 'c' })) == 'b')\n"
	"assert(ids(a:find('u', { before = true, reverse = true, limit = 1 })) == gen)\n"
	"assert(ids(a:find('u', { ids = { 'c', 'a', 'zz' } })) == 'a,c')\n"
	"assert(ids(a:find('u', { key = 'b' })) == 'b')\n"
	"local list, total = ids(a:find('u', { limit = 0, total = true }))\n"
	"assert(list == '' and total == 4)\n"
	"list, total = ids(a:find('u', { with = 'x@h', limit = 1, total = true }))\n"
	"assert(list == 'a' and total == 2)\n"
	"local it, err = a:find('u', { after = 'missing' })\n"
	"assert(it == nil and err == 'item-not-found')\n"
	"assert(not pcall(a.find, a, 'u', { limit = -1 }))\n"
	"assert(not pcall(a.find, a, 'u', { start = 'x' }))\n"
	"assert(not pcall(a.find, a, 'u', { ids = { 1 } }))\n"
	"assert(not pcall(a.find, a, 'u', { with = 5 }))\n"
	"local s = a:summary('u')\n"
	"assert(s.counts['x@h'] == 2 and s.counts['y@h'] == 1)\n"
	"assert(s.earliest['x@h'] == 10 and s.latest['x@h'] == 30)\n"
	"s = a:summary('u', { with = 'y@h' })\n"
	"assert(s.counts['x@h'] == nil and s.counts['y@h'] == 1)\n"
	"local d = a:dates('u')\n"
	"assert(d[1] == '1970-01-01' and #d == 2)\n"
	"local seen = {}\n"
	"for u in a:users() do seen[#seen + 1] = u end\n"
	"assert(table.concat(seen, ',') == 'u')\n"
	"assert(a:delete('u', { with = 'y@h' }) == 1)\n"
	"assert(a:get('u', 'b') == nil)\n"
	"assert(a:delete('u', { truncate = 1 }) == 2)\n"
	"assert(ids(a:find('u')) == gen)\n"
	"assert(a:append('v', 'x', 1, 5) and a:append('v', 'y', 2, 50))\n"
	"assert(a:trim(nil, 40) == 1)\n"
	"assert(ids(a:find('v')) == 'y')\n"
	"assert(a:trim('v', 60) == 1)\n"
	"assert(not pcall(a.set, a, 'u', 1))\n"
	"assert(not pcall(a.append, a, 'u', nil, 1, 0/0))\n"
	"local ok, e = a:append('u', nil, function() end)\n"
	"assert(ok == nil and e:match('cannot be stored'))\n"
	"ok, e = a:append('u', '', 1)\n"
	"assert(ok == nil)\n"
	/* iterating while writing: no repeats, no skips of what stays */
	"for i = 1, 600 do a:append('w', string.format('%04d', i), i, i) end\n"
	"local n, prev = 0, ''\n"
	"for id in a:find('w') do\n"
	"  assert(id > prev); prev = id; n = n + 1\n"
	"  if n == 300 then a:append('w', '9999', 0, 9999); a:delete('w', { key = '0001' }) end\n"
	"end\n"
	"assert(n == 601, n)\n"
	"n = 0\n"
	"for id in a:find('w', { reverse = true, limit = 555 }) do n = n + 1 end\n"
	"assert(n == 555)\n"
	/* an unknown engine, and engines from the config */
	"local bad, why = store.open('h', 'x', 'keyval', 'mongodb')\n"
	"assert(bad == nil and why:match('unknown storage engine'))\n"
	"return true\n";

static int run_lua(const char *engine)
{
	lua_State *L = lx_state();
	struct st_doc *d = st_doc_new();
	int rc;

	st_elem_new(d, NULL, "message", NS_CLIENT);
	lua_pushstring(L, engine);
	lua_setglobal(L, "ENGINE");
	rc = luaL_loadstring(L, lua_test);
	lx_stanza_push(L, d, d->root);
	st_doc_unref(d);
	if (rc == 0)
		rc = lua_pcall(L, 1, 1, 0);
	if (rc != 0)
		fprintf(stderr, "  lua (%s): %s\n", engine, lua_tostring(L, -1));
	lua_settop(L, 0);
	return rc;
}

/* The config's choice: storage per store, storage for all, default. */
static const char config_src[] =
	"local sections = { h = { storage = { roster = 'memory' } },"
	"                   g = { storage = 'memory' } }\n"
	"local global = { default_storage = 'lmdb' }\n"
	"return { get = function(self, host, key)\n"
	"  local s = sections[host]\n"
	"  if s and s[key] ~= nil then return s[key] end\n"
	"  return global[key]\n"
	"end }\n";

static void test_lua(void)
{
	fresh();
	CHECK(run_lua("lmdb") == 0);
	CHECK(store_commit() == 0);
	fresh();
	CHECK(run_lua("memory") == 0);
	CHECK(luaL_dostring(lx_state(), config_src) == 0);
	lua_setfield(lx_state(), LUA_REGISTRYINDEX, "starling.config");
	CHECK(luaL_dostring(lx_state(),
		"local s = require 'starling.store'\n"
		"assert(tostring(s.open('h', 'roster')):match('memory'))\n"
		"assert(tostring(s.open('h', 'vcard')):match('lmdb'))\n"
		"assert(tostring(s.open('g', 'vcard')):match('memory'))\n"
		"assert(tostring(s.open('g', 'vcard', 'keyval', 'lmdb')):match('lmdb'))\n"
		"assert(tostring(s.open('other', 'x', 'map')):match('lmdb'))\n") == 0);
	lua_pushnil(lx_state());
	lua_setfield(lx_state(), LUA_REGISTRYINDEX, "starling.config");
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	if (lx_init(".") != 0)
		return 1;
	luaL_requiref(lx_state(), "starling.store", luaopen_starling_store, 0);
	lua_pop(lx_state(), 1);
	RUN_BOTH(test_append_get);
	RUN_BOTH(test_made_ids);
	RUN_BOTH(test_query_fields);
	RUN_BOTH(test_paging);
	RUN_BOTH(test_delete);
	RUN_BOTH(test_trim_users_purge);
	RUN_BOTH(test_summary_dates);
	RUN_BOTH(test_corrupt);
	RUN_BOTH(test_deferred_index);
	RUN(test_lua);
	lx_close();
	store_close();
	store_memory_clear();
	h_rm_tree(base);
	TEST_END();
}
