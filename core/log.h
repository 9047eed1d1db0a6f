/*
 * log.h - the server's log.
 *
 * Every line carries a timestamp, a level and a source ("core", the host,
 * or "host:module" for a Lua module). Passwords never reach the log.
 */
#ifndef STARLING_LOG_H
#define STARLING_LOG_H

#include <stdbool.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/* Sets the minimum level and the destination ("stderr" or a file path). */
int log_setup(const char *level, const char *dest);
void log_close(void);
int log_level_parse(const char *name);	/* -1 when unknown */
bool log_enabled(enum log_level level);

void log_msg(enum log_level level, const char *source, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_debug(...) log_msg(LOG_DEBUG, "core", __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, "core", __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, "core", __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, "core", __VA_ARGS__)

#endif
