/*
 * lx_config.h - the config as the bridge holds it: a Lua object made by
 * lua/starling/config.lua's load (cfg:get, cfg.hosts, cfg.path), kept in
 * the registry. config.h is the C side; this is what only the bridge's
 * own files (starling.core, starling.server, starling.store) need.
 */
#ifndef STARLING_LX_CONFIG_H
#define STARLING_LX_CONFIG_H

#include "config.h"
#include "lx.h"

/* The registry field holding the config object (starling.core's
 * core.config(), the store's engine choice). */
#define CONFIG_REGISTRY_KEY "starling.config"

/* Pushes the value of key on host, or nil when it is unset or there is no
 * config. */
void lx_config_push(const char *host, const char *key);
/* Makes the config object at idx the server's config: a reload. Strings
 * the old one gave out are invalid once it is collected. */
void lx_config_replace(lua_State *L, int idx);
/* Runs fn(ctx) with the config object at idx answering the lookups of
 * config.h in place of the server's, then puts the server's back: how a
 * reload tries a new config (its TLS contexts) before it is the server's.
 * Only C's lookups see it: starling.core's config() and the registry
 * field stay. Returns what fn returns. */
int lx_config_try(lua_State *L, int idx, int (*fn)(void *ctx), void *ctx);

#endif
