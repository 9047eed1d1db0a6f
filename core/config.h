/*
 * config.h - the server's configuration, read from a Lua file by
 * lua/starling/config.lua and kept in the Lua state.
 *
 * Lookups go to the host's section first, then the global one ("*" or
 * NULL for global only). Strings returned are owned by the config and
 * valid until config_free() or config_replace().
 */
#ifndef STARLING_CONFIG_H
#define STARLING_CONFIG_H

#include "util.h"
#include "lx.h"

/* The registry field holding the config object (cfg:get, cfg.hosts). */
#define CONFIG_REGISTRY_KEY "starling.config"

/* Loads path into the Lua state. 0, or -1 with the error logged. */
int config_load(const char *path);
/* Makes the config object at idx (from starling.config's load) the
 * server's config: a reload. Strings the old one gave out are invalid
 * once it is collected. */
void config_replace(int idx);
void config_free(void);
const char *config_path(void);

/* Pushes the value of key (nil when unset). */
void config_push(const char *host, const char *key);
const char *config_string(const char *host, const char *key, const char *def);
/* Numbers: -ERANGE-style errors are logged and def returned. */
long config_int(const char *host, const char *key, long def);
bool config_bool(const char *host, const char *key, bool def);
/* Arrays of strings or numbers: calls fn for each item (as a string). */
int config_each(const char *host, const char *key,
		int (*fn)(void *ctx, const char *item), void *ctx);
/* Hosts in config order: 0 at the end. */
bool config_host_next(size_t *pos, const char **name, const char **type,
		      const char **module);

#endif
