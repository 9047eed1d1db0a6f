/* test_log.c - log levels per source, destinations, reopening. */
#include "harness.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static char dir[] = "/tmp/starling-test-log-XXXXXX";
static char path[128], rotated[160];

static char *slurp(const char *p)
{
	static char buf[16384];
	FILE *f = fopen(p, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (f) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void test_global_level(void)
{
	CHECK(log_setup("warn", path) == 0);
	CHECK(!log_enabled(LOG_INFO));
	CHECK(log_enabled(LOG_WARN));
	log_msg(LOG_INFO, "core", "hidden-info");
	log_msg(LOG_ERROR, "core", "shown-error %d", 42);
	char *text = slurp(path);
	CHECK(strstr(text, "hidden-info") == NULL);
	CHECK(strstr(text, "error core: shown-error 42") != NULL);
}

static void test_source_levels(void)
{
	const char *names[] = { "roster", "example.org", "localhost:ping", "core" };
	const char *levels[] = { "debug", "debug", "error", "error" };

	CHECK(log_setup("info", path) == 0);
	CHECK(log_set_source_levels(names, levels, 4) == 0);
	CHECK(log_enabled(LOG_DEBUG));			/* some source logs debug */
	CHECK(log_source_enabled(LOG_DEBUG, "localhost:roster"));	/* module */
	CHECK(log_source_enabled(LOG_DEBUG, "example.org:presence"));	/* host */
	CHECK(!log_source_enabled(LOG_DEBUG, "localhost:presence"));	/* global */
	CHECK(log_source_enabled(LOG_INFO, "localhost:presence"));
	CHECK(!log_source_enabled(LOG_WARN, "localhost:ping"));	/* exact */
	CHECK(log_source_enabled(LOG_DEBUG, "example.org:roster"));
	CHECK(!log_source_enabled(LOG_INFO, "core"));
	CHECK(!log_source_enabled(LOG_DEBUG, "admin"));
	CHECK(!log_source_enabled(LOG_DEBUG, "rost"));		/* no prefix match */
	log_msg(LOG_DEBUG, "localhost:roster", "roster-debug");
	log_msg(LOG_DEBUG, "localhost:presence", "presence-debug");
	log_msg(LOG_INFO, "core", "core-info");
	char *text = slurp(path);
	CHECK(strstr(text, "debug localhost:roster: roster-debug") != NULL);
	CHECK(strstr(text, "presence-debug") == NULL);
	CHECK(strstr(text, "core-info") == NULL);
	CHECK(log_set_source_levels(NULL, NULL, 0) == 0);
	CHECK(!log_enabled(LOG_DEBUG));
}

static void test_bad_settings_change_nothing(void)
{
	const char *names[] = { "roster" }, *bad[] = { "loud" }, *empty[] = { "" };
	const char *good[] = { "debug" };

	CHECK(log_setup("info", path) == 0);
	CHECK(log_setup("loud", "stderr") == -EINVAL);
	CHECK(log_setup("debug", "/nonexistent/dir/x.log") == -ENOENT);
	CHECK(!log_enabled(LOG_DEBUG));			/* level kept */
	log_msg(LOG_INFO, "core", "still-to-the-file");
	CHECK(strstr(slurp(path), "still-to-the-file") != NULL);
	CHECK(log_set_source_levels(names, bad, 1) == -EINVAL);
	CHECK(log_set_source_levels(empty, good, 1) == -EINVAL);
	CHECK(!log_source_enabled(LOG_DEBUG, "x:roster"));
}

static void test_reopen(void)
{
	CHECK(log_setup("info", path) == 0);
	log_msg(LOG_INFO, "core", "before-rotation");
	CHECK(rename(path, rotated) == 0);
	log_msg(LOG_INFO, "core", "into-the-old-file");
	CHECK(log_reopen() == 0);
	log_msg(LOG_INFO, "core", "after-rotation");
	CHECK(strstr(slurp(rotated), "into-the-old-file") != NULL);
	char *text = slurp(path);
	CHECK(strstr(text, "after-rotation") != NULL);
	CHECK(strstr(text, "before-rotation") == NULL);
	CHECK(log_setup("info", "stderr") == 0);
	CHECK(log_reopen() == 0);			/* a no-op for stderr */
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	snprintf(path, sizeof(path), "%s/test.log", dir);
	snprintf(rotated, sizeof(rotated), "%s/test.log.1", dir);
	RUN(test_global_level);
	RUN(test_source_levels);
	RUN(test_bad_settings_change_nothing);
	RUN(test_reopen);
	log_close();
	unlink(path);
	unlink(rotated);
	rmdir(dir);
	TEST_END();
}
