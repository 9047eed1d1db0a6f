/* log.c - timestamped log lines to stderr or a file. */
#include "util.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>
#include <sys/time.h>

static enum log_level min_level = LOG_INFO;
static FILE *log_fp;

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

int log_setup(const char *level, const char *dest)
{
	int l = level ? log_level_parse(level) : LOG_INFO;

	if (l < 0)
		return -EINVAL;
	min_level = (enum log_level)l;
	if (log_fp && log_fp != stderr)
		fclose(log_fp);
	log_fp = NULL;
	if (dest && strcmp(dest, "stderr") != 0 && strcmp(dest, "*console") != 0) {
		log_fp = fopen(dest, "a");
		if (!log_fp)
			return -errno;
		setvbuf(log_fp, NULL, _IOLBF, 0);
	}
	return 0;
}

void log_close(void)
{
	if (log_fp && log_fp != stderr)
		fclose(log_fp);
	log_fp = NULL;
}

bool log_enabled(enum log_level level)
{
	return level >= min_level;
}

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
{
	char ts[32];
	struct timeval tv;
	struct tm tm;
	va_list ap;
	FILE *fp = log_fp ? log_fp : stderr;

	if (level < min_level)
		return;
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
	fprintf(fp, "%s.%03ldZ %-5s %s: ", ts, (long)(tv.tv_usec / 1000),
		level_names[level], source);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
}
