/*
 * test_store_usage.c - archive usage (store_archive_usage.c): the counter
 * kept with every append and delete on both engines, through the LMDB
 * archive writer's hand-overs, across a reopen and a crash (a child
 * killed with SIGKILL in the middle of hand-overs), for archives written
 * before the counter existed, and shrinking to a quota oldest first.
 */
#include "harness.h"
#include "store.h"
#include "store_both.h"
#include "log.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static char base[] = "/tmp/starling-test-usage-XXXXXX";
static char dir[256];
static int ndirs;
static struct store arc;

#define S 1000000LL

static void fresh(void)
{
	if (store_is_open())
		store_close();
	store_memory_clear();
	snprintf(dir, sizeof(dir), "%s/env%d", base, ++ndirs);
	CHECK(store_open(dir, 0) == 0);
	both_fresh();
	CHECK(store_init(&arc, E, "h", "arc", STORE_KIND_ARCHIVE) == 0);
}

static int append(const char *user, const char *id, int64_t when,
		  const char *with, const char *val)
{
	struct store_arch_item it = {
		.when = when, .id = id, .id_len = id ? strlen(id) : 0,
		.with = with, .with_len = with ? strlen(with) : 0,
		.val = val, .val_len = strlen(val),
	};

	return store_archive_append(&arc, user, &it, NULL);
}

/* What the archive holds, counted item by item (the oracle). */
static int add_item(void *ctx, const struct store_arch_item *it)
{
	struct store_arch_usage *u = ctx;

	u->items++;
	u->bytes += it->id_len + it->with_len + it->val_len;
	return 0;
}

static struct store_arch_usage counted(const char *user)
{
	struct store_arch_query all = { 0 };
	struct store_arch_usage u = { 0 };

	CHECK(store_archive_find(&arc, user, &all, add_item, &u, NULL) == 0);
	return u;
}

/* The usage read from storage (not what this process knows) equals the
 * oracle, and so does what it knows. */
static bool usage_right(const char *user)
{
	struct store_arch_usage o = counted(user), u = { 0 }, k = { 0 };

	store_archive_usage_forget(NULL, NULL);
	if (store_archive_usage(&arc, user, false, &u) != 0)
		return false;
	if (store_archive_usage(&arc, user, true, &k) != 0)
		return false;
	if (u.items != o.items || u.bytes != o.bytes ||
	    k.items != o.items || k.bytes != o.bytes) {
		fprintf(stderr, "  usage %llu/%llu, known %llu/%llu, "
			"counted %llu/%llu\n",
			(unsigned long long)u.items, (unsigned long long)u.bytes,
			(unsigned long long)k.items, (unsigned long long)k.bytes,
			(unsigned long long)o.items, (unsigned long long)o.bytes);
		return false;
	}
	return true;
}

static void test_counts(void)
{
	struct store_arch_usage u;
	struct store_arch_query qa = { .has_end = true, .end = 15 * S };
	size_t n;

	fresh();
	CHECK(store_archive_usage(&arc, "u", true, &u) == -EAGAIN);
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 &&
	      u.items == 0 && u.bytes == 0);
	CHECK(append("u", "a", 10 * S, "x@h", "12345") == 0);
	/* known now, and kept up to date by the append */
	CHECK(store_archive_usage(&arc, "u", true, &u) == 0 &&
	      u.items == 1 && u.bytes == 1 + 3 + 5);
	CHECK(append("u", "b", 20 * S, NULL, "123") == 0);
	CHECK(append("u", NULL, STORE_WHEN_NOW, "y@h", "made id") == 0);
	CHECK(append("v", "a", 10 * S, "x@h", "other user") == 0);
	CHECK(usage_right("u") && usage_right("v"));
	/* a replaced item counts once, with its new size */
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 && u.items == 3);
	CHECK(append("u", "b", 25 * S, "z@h", "longer value") == 0);
	CHECK(store_archive_usage(&arc, "u", true, &u) == 0 && u.items == 3);
	CHECK(usage_right("u"));
	CHECK(store_archive_delete(&arc, "u", &qa, 0, &n) == 0 && n == 1);
	CHECK(usage_right("u"));
	size_t trimmed;
	CHECK(store_archive_trim(&arc, NULL, 30 * S, &trimmed) == 0 &&
	      trimmed == 2);
	CHECK(usage_right("u") && usage_right("v"));
	CHECK(store_archive_usage(&arc, "v", false, &u) == 0 && u.items == 0);
	/* a purge takes the counter with the items */
	CHECK(append("u", "c", 40 * S, NULL, "c") == 0);
	CHECK(store_purge_user("h", "u") == 0);
	CHECK(store_archive_usage(&arc, "u", true, &u) == -EAGAIN);
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 && u.items == 0);
	CHECK(store_commit() == 0);
}

/* An archive written before the counter existed (no record), and one
 * whose record was made by adds alone, are counted when read. */
static void test_before_the_counter(void)
{
	struct store_arch_usage u;
	char k[64];
	size_t klen = (size_t)snprintf(k, sizeof(k), "h%cu%carc%c", 0, 0, 0);

	fresh();
	for (int i = 0; i < 50; i++) {
		char id[16];
		snprintf(id, sizeof(id), "i%02d", i);
		CHECK(append("u", id, (10 + i) * S, i % 2 ? "x@h" : NULL,
			     "some value") == 0);
	}
	CHECK(store_commit() == 0);
	CHECK(E->del(STORE_ARCHIVE_USAGE, k, klen) == 0);	/* "old" */
	store_archive_usage_forget(NULL, NULL);
	CHECK(append("u", "late", 100 * S, NULL, "v") == 0);	/* adds: 1 */
	CHECK(usage_right("u"));
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 && u.items == 51);
	/* an old archive that only lost items */
	CHECK(E->del(STORE_ARCHIVE_USAGE, k, klen) == 0);
	store_archive_usage_forget(NULL, NULL);
	size_t n;
	struct store_arch_query first = { .has_limit = true, .limit = 5 };
	CHECK(store_archive_delete(&arc, "u", &first, 0, &n) == 0 && n == 5);
	CHECK(usage_right("u"));
	CHECK(store_commit() == 0);
}

/* Shrinking: oldest first, by items, by bytes, and both. */
static void test_shrink(void)
{
	struct store_arch_usage u;
	struct store_arch_query all = { 0 };
	uint64_t freed;
	size_t n, total;

	fresh();
	for (int i = 0; i < 20; i++) {
		char id[16];
		snprintf(id, sizeof(id), "s%02d", i);
		CHECK(append("u", id, (10 + i) * S, "x@h", "0123456789") == 0);
	}
	/* each item: 3 + 3 + 10 bytes */
	CHECK(store_archive_shrink(&arc, "u", 0, 0, &n, &freed) == 0 && n == 0);
	CHECK(store_archive_shrink(&arc, "u", 15, 0, &n, &freed) == 0 &&
	      n == 5 && freed == 5 * 16);
	struct store_arch_query first = { .has_limit = true, .limit = 1 };
	struct store_arch_usage one = { 0 };
	CHECK(store_archive_find(&arc, "u", &first, add_item, &one, &total) == 0);
	CHECK(store_archive_locate(&arc, "u", "s05", 3,
				   &(struct store_arch_pos){ 0 }) == 0);
	CHECK(store_archive_locate(&arc, "u", "s04", 3,
				   &(struct store_arch_pos){ 0 }) == -ENOENT);
	CHECK(store_archive_shrink(&arc, "u", 0, 10 * 16 + 15, &n, &freed) == 0 &&
	      n == 5 && freed == 5 * 16);
	CHECK(store_archive_usage(&arc, "u", true, &u) == 0 &&
	      u.items == 10 && u.bytes == 160);
	CHECK(store_archive_shrink(&arc, "u", 8, 4 * 16, &n, &freed) == 0 &&
	      n == 6);
	CHECK(store_archive_find(&arc, "u", &all, add_item,
				 &(struct store_arch_usage){ 0 }, &total) == 0 &&
	      total == 4);
	CHECK(store_archive_locate(&arc, "u", "s16", 3,
				   &(struct store_arch_pos){ 0 }) == 0);
	CHECK(usage_right("u"));
	/* a quota below one item empties the archive */
	CHECK(store_archive_shrink(&arc, "u", 0, 1, &n, &freed) == 0 && n == 4);
	CHECK(usage_right("u"));
	CHECK(store_commit() == 0);
}

static void writer_done(void)
{
}

/* Appends of user through the archive writer: n items, a hand-over per
 * batch of 10 (as the server commits once per loop iteration). */
static void appends_handed(const char *user, int n)
{
	for (int i = 0; i < n; i++) {
		CHECK(append(user, NULL, STORE_WHEN_NOW, "x@h",
			     "a chat message of some length") == 0);
		if (i % 10 == 9) {
			bool handed;
			CHECK(store_commit_async(&handed) == 0 && handed);
		}
	}
}

/* Through the writer, and after the environment is opened again. */
static void test_writer_and_reopen(void)
{
	struct store_arch_usage u;
	size_t n;

	fresh();
	CHECK(store_writer_start(writer_done) == 0);
	appends_handed("u", 50);
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 && u.items == 50);
	appends_handed("u", 50);
	/* a delete between hand-overs: joins the batch, the counter too */
	struct store_arch_query first = { .has_limit = true, .limit = 3 };
	CHECK(store_archive_delete(&arc, "u", &first, 0, &n) == 0 && n == 3);
	appends_handed("u", 30);
	CHECK(store_archive_usage(&arc, "u", true, &u) == 0 && u.items == 127);
	store_writer_stop();
	CHECK(store_commit() == 0);
	store_close();
	CHECK(store_open(dir, 0) == 0);
	CHECK(store_archive_usage(&arc, "u", true, &u) == -EAGAIN);
	CHECK(usage_right("u"));
	CHECK(store_archive_usage(&arc, "u", false, &u) == 0 && u.items == 127);
	store_close();
	CHECK(store_open(dir, 0) == 0);
}

/* A child appends through the writer and is killed (SIGKILL) in the
 * middle; whatever of it is on disk, the counter agrees with it. */
static void test_crash(void)
{
	for (int round = 0; round < 5; round++) {
		int ready[2];
		char c;

		fresh();
		store_close();
		CHECK(pipe(ready) == 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(ready[0]);
			if (store_open(dir, 0) != 0 ||
			    store_writer_start(writer_done) != 0)
				_exit(2);
			for (int i = 0;; i++) {
				struct store_arch_item it = {
					.when = STORE_WHEN_NOW,
					.with = "x@h", .with_len = 3,
					.val = "crash test", .val_len = 10,
				};
				size_t n;
				store_archive_append(&arc, "u", &it, NULL);
				if (i % 50 == 49) {
					struct store_arch_query q = {
						.has_limit = true, .limit = 7 };
					store_archive_delete(&arc, "u", &q, 0, &n);
				}
				if (i % 10 == 9) {
					bool handed;
					store_commit_async(&handed);
				}
				if (i == 100) {	/* some hand-overs landed */
					store_writer_join();
					if (write(ready[1], "r", 1) != 1)
						_exit(3);
				}
			}
		}
		CHECK(pid > 0);
		close(ready[1]);
		CHECK(read(ready[0], &c, 1) == 1);
		close(ready[0]);
		usleep(20000 + 30000 * round);
		kill(pid, SIGKILL);
		int st;
		CHECK(waitpid(pid, &st, 0) == pid && WIFSIGNALED(st));
		CHECK(store_open(dir, 0) == 0);
		CHECK(counted("u").items > 0);
		CHECK(usage_right("u"));
	}
}

int main(void)
{
	log_setup(getenv("TEST_LOG") ? getenv("TEST_LOG") : "error", "stderr");
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	RUN_BOTH(test_counts);
	RUN_BOTH(test_before_the_counter);
	RUN_BOTH(test_shrink);
	E = &store_lmdb;
	RUN(test_writer_and_reopen);
	RUN(test_crash);
	store_close();
	store_memory_clear();
	h_rm_tree(base);
	TEST_END();
}
