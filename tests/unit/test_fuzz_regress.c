/*
 * test_fuzz_regress.c - replays the fuzz targets' inputs without libFuzzer:
 * every file of tests/fuzz/seed_<name>/ and tests/fuzz/regress_<target>/
 * (the inputs that once crashed a target, kept so the bug stays fixed)
 * goes through the target's entry point, checks included.
 *
 * The targets are compiled into this program (each with its entry point
 * renamed); a broken check aborts, and the file being replayed is named
 * on stderr first. Runs from the repository root (tests/run.py does).
 */
#include "harness.h"

#define FUZZ_ENTRY fuzz_xmlstream_one
#include "../fuzz/fuzz_xmlstream.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_sasl_one
#include "../fuzz/fuzz_sasl.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_jid_one
#include "../fuzz/fuzz_jid.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_value_one
#include "../fuzz/fuzz_value.c"
#undef FUZZ_ENTRY
#define FUZZ_ENTRY fuzz_config_one
#include "../fuzz/fuzz_config.c"
#undef FUZZ_ENTRY

#include <dirent.h>
#include <signal.h>

static char current[PATH_MAX];

/* A check that aborts: say which input it was. */
static void on_abort(int sig)
{
	static const char msg[] = "\ntest_fuzz_regress: crashed replaying ";

	if (write(2, msg, sizeof(msg) - 1) < 0 ||
	    write(2, current, strlen(current)) < 0 || write(2, "\n", 1) < 0)
		_exit(128 + sig);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool read_file(const char *path, struct sbuf *out)
{
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "rb");

	if (!f)
		return false;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sbuf_add(out, buf, n);
	fclose(f);
	return true;
}

/* Runs every regular file of dir (sorted) through fn: how many, or -1
 * when dir cannot be read. */
static int replay_dir(const char *dir,
		      int (*fn)(const uint8_t *data, size_t size))
{
	struct dirent *e;
	char **names = NULL;
	size_t n = 0, cap = 0;
	DIR *d = opendir(dir);
	int count = 0;

	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (n == cap) {
			cap = cap ? 2 * cap : 64;
			names = xrealloc(names, cap * sizeof(*names));
		}
		names[n++] = xstrdup(e->d_name);
	}
	closedir(d);
	qsort(names, n, sizeof(*names), name_cmp);
	for (size_t i = 0; i < n; i++) {
		struct sbuf data;

		snprintf(current, sizeof(current), "%s/%s", dir, names[i]);
		sbuf_init(&data);
		if (read_file(current, &data)) {
			fn((const uint8_t *)(data.p ? data.p : ""), data.len);
			count++;
		}
		sbuf_free(&data);
		free(names[i]);
	}
	free(names);
	return count;
}

/* The seeds must be there; the regression directory may be absent. */
static void replay(const char *seed, const char *target,
		   int (*fn)(const uint8_t *data, size_t size))
{
	char dir[256];
	int n;

	snprintf(dir, sizeof(dir), "tests/fuzz/seed_%s", seed);
	n = replay_dir(dir, fn);
	if (n <= 0)
		fprintf(stderr, "  no inputs in %s\n", dir);
	CHECK(n > 0);
	snprintf(dir, sizeof(dir), "tests/fuzz/regress_%s", target);
	replay_dir(dir, fn);
}

static void test_xmlstream(void)
{
	replay("xml", "xmlstream", fuzz_xmlstream_one);
}

static void test_sasl(void)
{
	replay("sasl", "sasl", fuzz_sasl_one);
}

static void test_jid(void)
{
	replay("jid", "jid", fuzz_jid_one);
}

static void test_value(void)
{
	replay("value", "value", fuzz_value_one);
}

static void test_config(void)
{
	replay("config", "config", fuzz_config_one);
}

int main(void)
{
	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	RUN(test_xmlstream);
	RUN(test_sasl);
	RUN(test_jid);
	RUN(test_value);
	RUN(test_config);
	lx_close();
	if (vf_L)
		lua_close(vf_L);
	TEST_END();
}
