/* log.c - timestamped log lines to stderr, a file or syslog. */

/* syslog.h names its priorities LOG_DEBUG and LOG_INFO too: take what we
 * need from it before log.h defines ours. */
#include <syslog.h>
static const int syslog_prio[] = { LOG_DEBUG, LOG_INFO, LOG_WARNING, LOG_ERR };
#undef LOG_DEBUG
#undef LOG_INFO

#include "util.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <sys/time.h>

#define MAX_SOURCE_LEVELS 64
#define SOURCE_NAME_MAX 96

enum log_dest { DEST_STDERR, DEST_FILE, DEST_SYSLOG };

struct source_level {
	char name[SOURCE_NAME_MAX];
	enum log_level level;
};

static enum log_level min_level = LOG_INFO;
static enum log_level floor_level = LOG_INFO;	/* lowest of all levels */
static struct source_level sources[MAX_SOURCE_LEVELS];
static size_t n_sources;
static enum log_dest dest_kind = DEST_STDERR;
static FILE *log_fp;				/* DEST_FILE only */
static char *log_path;				/* DEST_FILE only */

static const char *const level_names[] = { "debug", "info", "warn", "error" };

int log_level_parse(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(level_names); i++)
		if (strcmp(name, level_names[i]) == 0)
			return (int)i;
	if (strcmp(name, "warning") == 0)
		return LOG_WARN;
	return -1;
}

static void update_floor(void)
{
	floor_level = min_level;
	for (size_t i = 0; i < n_sources; i++)
		floor_level = MIN(floor_level, sources[i].level);
}

static FILE *open_file(const char *path)
{
	FILE *fp = fopen(path, "a");

	if (fp)
		setvbuf(fp, NULL, _IOLBF, 0);
	return fp;
}

static void close_dest(void)
{
	if (log_fp)
		fclose(log_fp);
	log_fp = NULL;
	free(log_path);
	log_path = NULL;
	if (dest_kind == DEST_SYSLOG)
		closelog();
	dest_kind = DEST_STDERR;
}

int log_setup(const char *level, const char *dest)
{
	int l = level ? log_level_parse(level) : LOG_INFO;
	FILE *fp = NULL;

	if (l < 0)
		return -EINVAL;
	if (!dest || strcmp(dest, "stderr") == 0 || strcmp(dest, "*console") == 0) {
		close_dest();
	} else if (strcmp(dest, "syslog") == 0 || strcmp(dest, "*syslog") == 0) {
		if (dest_kind != DEST_SYSLOG) {
			close_dest();
			openlog("starling", LOG_PID | LOG_NDELAY, LOG_DAEMON);
			dest_kind = DEST_SYSLOG;
		}
	} else {
		if (!(fp = open_file(dest)))
			return -errno;
		close_dest();
		log_fp = fp;
		log_path = xstrdup(dest);
		dest_kind = DEST_FILE;
	}
	min_level = (enum log_level)l;
	update_floor();
	return 0;
}

int log_set_source_levels(const char *const *names, const char *const *levels,
			  size_t n)
{
	struct source_level next[MAX_SOURCE_LEVELS];

	if (n > MAX_SOURCE_LEVELS)
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		int l = log_level_parse(levels[i]);
		size_t len = strlen(names[i]);
		if (l < 0 || len == 0 || len >= SOURCE_NAME_MAX)
			return -EINVAL;
		memcpy(next[i].name, names[i], len + 1);
		next[i].level = (enum log_level)l;
	}
	memcpy(sources, next, n * sizeof(next[0]));
	n_sources = n;
	update_floor();
	return 0;
}

int log_reopen(void)
{
	FILE *fp;

	if (dest_kind != DEST_FILE)
		return 0;
	if (!(fp = open_file(log_path)))
		return -errno;
	fclose(log_fp);
	log_fp = fp;
	return 0;
}

void log_close(void)
{
	close_dest();
	n_sources = 0;
	update_floor();
}

bool log_enabled(enum log_level level)
{
	return level >= floor_level;
}

static const struct source_level *find_source(const char *name, size_t len)
{
	for (size_t i = 0; i < n_sources; i++)
		if (strncmp(sources[i].name, name, len) == 0 && sources[i].name[len] == '\0')
			return &sources[i];
	return NULL;
}

/* The level that applies to source: see log.h. */
static enum log_level source_min(const char *source)
{
	const struct source_level *sl;
	const char *colon;

	if (!n_sources || !source)
		return min_level;
	if ((sl = find_source(source, strlen(source))))
		return sl->level;
	if ((colon = strchr(source, ':'))) {
		if ((sl = find_source(colon + 1, strlen(colon + 1))) ||
		    (sl = find_source(source, (size_t)(colon - source))))
			return sl->level;
	}
	return min_level;
}

bool log_source_enabled(enum log_level level, const char *source)
{
	return level >= floor_level && level >= source_min(source);
}

static void write_syslog(enum log_level level, const char *source,
			 const char *fmt, va_list ap)
{
	char *msg = NULL;

	if (vasprintf(&msg, fmt, ap) < 0)
		return;
	syslog(syslog_prio[level], "%s: %s", source, msg);
	free(msg);
}

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
{
	char ts[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	FILE *fp = log_fp ? log_fp : stderr;

	if (!log_source_enabled(level, source))
		return;
	va_start(ap, fmt);
	if (dest_kind == DEST_SYSLOG) {
		write_syslog(level, source, fmt, ap);
		va_end(ap);
		return;
	}
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(fp, "%s.%03ldZ %-5s %s: ", ts, (long)(tv.tv_usec / 1000),
		level_names[level], source);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
}
