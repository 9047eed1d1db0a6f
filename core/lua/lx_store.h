/*
 * lx_store.h - internals shared by the "starling.store" binding files:
 * lx_store.c (the type, open, keyval and map) and lx_store_archive.c
 * (archive methods). Not for other subsystems.
 */
#ifndef STARLING_LX_STORE_H
#define STARLING_LX_STORE_H

#include "lx.h"
#include "store.h"

extern const char lx_store_mt[];	/* the store userdata's type */
#define STORE_MT lx_store_mt

/* The userdata is a store handle (store.h) followed by its host and
 * name, which it owns: the handle lives as long as the userdata. */
struct lx_store {
	struct store st;
	char names[];			/* host \0 name \0 */
};

/* The store at index 1 (raises when it is not one). */
struct store *lx_store_check(lua_State *L);
/* The store at index 1, which must be of kind (raises otherwise). */
struct store *lx_store_check_kind(lua_State *L, enum store_kind kind,
				  const char *method);
/* nil, "message" for a failed operation (-errno); returns 2. */
int lx_store_fail(lua_State *L, int rc);
/* The user argument at idx: nil is the host itself (""); a string with a
 * NUL gives NULL (answer lx_store_fail_user); other types raise. */
const char *lx_store_arg_user(lua_State *L, int idx);
int lx_store_fail_user(lua_State *L);
/* Decodes stored bytes and pushes the value: 0, or -EILSEQ (logged)
 * pushing nothing. */
int lx_store_push_value(lua_State *L, const struct store *s,
			const void *data, size_t len);
/* Encodes the value at idx: 0, or -EDOM (it cannot be stored). */
int lx_store_encode(lua_State *L, int idx, struct sbuf *out);
/* nil, "message" for a put that failed (-EDOM: the value); returns 2. */
int lx_store_fail_put(lua_State *L, int rc);

/* Archive methods (lx_store_archive.c), dispatched to by get and users
 * or registered as methods. */
int lx_store_archive_get(lua_State *L, const struct store *s);
void lx_store_archive_register(lua_State *L);	/* methods table at -1 */
/* archive:archiver() (lx_store_archiver.c), registered by the above. */
void lx_store_archiver_register(lua_State *L);

#endif
