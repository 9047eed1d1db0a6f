/*
 * config.h - the server's configuration, as C reads it.
 *
 * The config is a Lua file (example.cfg) that lua/starling/config.lua
 * loads; the bridge keeps the result (core/lua/lx_config.c) and C sees it
 * only through the lookups below, never as a Lua value.
 *
 * Words:
 *   host    a VirtualHost or Component name; "*" (or NULL) is the global
 *           section. A lookup goes to the host's section first, then to
 *           the global one.
 *   key     an option's name ("c2s_ports", "ssl").
 *   field   a name inside an option that is a table ("certificate" of
 *           ssl), or a path of names joined by dots ("c2s.rate" of
 *           limits). NULL means the option itself.
 *
 * Strings handed out are owned by the config: valid until config_free()
 * or until a reload replaces the config (lx_config_replace).
 */
#ifndef STARLING_CONFIG_H
#define STARLING_CONFIG_H

#include "util.h"

/* What an option (or a field of one) holds. */
enum config_kind {
	CONFIG_UNSET,		/* not set (a field of a non-table too) */
	CONFIG_BOOLEAN,
	CONFIG_NUMBER,
	CONFIG_STRING,
	CONFIG_TABLE,
	CONFIG_OTHER,		/* a function or anything else Lua allows */
};

/* Loads path as the server's config. 0, or -1 with the error logged. */
int config_load(const char *path);
void config_free(void);
/* The file the config was loaded from (NULL before config_load). */
const char *config_path(void);

enum config_kind config_kind(const char *host, const char *key, const char *field);
const char *config_string(const char *host, const char *key, const char *def);
/* Numbers: a value of another kind is logged and def returned. */
long config_int(const char *host, const char *key, long def);
bool config_bool(const char *host, const char *key, bool def);
/* Arrays of strings or numbers: calls fn for each item (as a string,
 * borrowed until fn returns) until fn returns nonzero; returns that, or
 * 0. A single string or number counts as an array of one. */
int config_each(const char *host, const char *key,
		int (*fn)(void *ctx, const char *item), void *ctx);

/* An item of a ports option (c2s_ports, http_ports) as a TCP port: 1 to
 * 65535, or 0 with "bad port" logged under key. */
int config_port(const char *key, const char *item);

/* A field's string, or NULL when it is unset or not a string. */
const char *config_field_string(const char *host, const char *key, const char *field);
/* A field's number into *v: true, or false (and *v untouched) when it is
 * unset or not a number. */
bool config_field_number(const char *host, const char *key, const char *field,
			 double *v);
/* The pairs of a table (the option when field is NULL, or its field), in
 * no particular order: fn(ctx, name, value) until fn returns nonzero;
 * returns that, or 0 (also when it is not a table). name or value is
 * NULL when that side is not a string. */
int config_each_pair(const char *host, const char *key, const char *field,
		     int (*fn)(void *ctx, const char *name, const char *value),
		     void *ctx);

/* Hosts in config order: *pos starts at 0; false after the last. type is
 * "local" or "component"; module is a component's module (or NULL). */
bool config_host_next(size_t *pos, const char **name, const char **type,
		      const char **module);

#endif
