/*
 * log.h - the server's log.
 *
 * Every line carries a timestamp, a level and a source ("core", the host,
 * or "host:module" for a Lua module). Passwords never reach the log.
 *
 * destination: stderr, a file (appended to; log_reopen() opens it again,
 *              for logrotate), or syslog (facility daemon).
 * levels:      one global minimum, plus per-source minimums. A source
 *              "host:module" takes the first of "host:module", "module",
 *              "host" that has a level of its own, else the global one.
 */
#ifndef STARLING_LOG_H
#define STARLING_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the global minimum level and the destination: NULL, "stderr" or
 * "*console"; "syslog" or "*syslog"; or a file path. The new destination
 * is opened before the old one is closed: on failure (-EINVAL for an
 * unknown level, -errno when the file cannot be opened) nothing changes. */
int log_setup(const char *level, const char *dest);
/* Replaces every per-source level with these n pairs (n = 0 clears them).
 * -EINVAL (and nothing changes) for an unknown level or an empty or too
 * long source name, or more than 64 pairs. */
int log_set_source_levels(const char *const *sources,
			  const char *const *levels, size_t n);
/* Opens the log file again (after it was rotated): 0 or -errno (the old
 * file stays in use). A no-op for stderr and syslog. */
int log_reopen(void);
void log_close(void);
int log_level_parse(const char *name);	/* -1 when unknown */
/* Whether a line of this level could be written for some source. */
bool log_enabled(enum log_level level);
/* Whether a line of this level from source is written. */
bool log_source_enabled(enum log_level level, const char *source);

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, "core", __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, "core", __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, "core", __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, "core", __VA_ARGS__)

#endif
