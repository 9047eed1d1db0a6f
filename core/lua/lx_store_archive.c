/*
 * lx_store_archive.c - the archive methods of "starling.store" userdata
 * (lx_store.c makes the type), close to Prosody's archive store API.
 *
 *   append(user, id, value, when, with)   the item's id, or nil, err.
 *        id nil: a new unique id, sortable by when it was appended. An id
 *        that exists replaces that item. when: seconds since the epoch
 *        (fractions kept to the microsecond), nil = now. with: a string
 *        (a JID, by convention bare) or nil.
 *   find(user, query)       iterator, total | nil, err. The iterator gives
 *        id, value, when, with for each item, oldest first (newest first
 *        with reverse). total is the number of items matching start, end,
 *        with and ids (ignoring before, after and limit) when query.total
 *        is true, else nil. Items are read in chunks as the loop goes on.
 *   get(user, id)           value, when, with | nil (no such item) |
 *                           nil, err
 *   delete(user, query)     the number of items deleted | nil, err. query
 *        nil deletes all of the user's items; query.truncate = n keeps
 *        the newest n of those the query selects.
 *   summary(user, query)    { counts = { [with] = n }, earliest = { [with]
 *        = when }, latest = { [with] = when } } over items with a with;
 *        start, end and with apply.
 *   dates(user)             { "YYYY-MM-DD", ... }: the UTC days with items
 *   trim(user, to_when)     deletes every item older than to_when; user
 *        nil: of every user (the host's own included). The count.
 *   users()                 iterator over users with items
 *   usage(user[, cached])   items, bytes: how many items the archive
 *        holds and their bytes (ids, withs and values as stored), from a
 *        counter kept with every write, so O(1). cached: only what this
 *        process already knows, without a storage read; nil when it knows
 *        nothing yet. nil, err on failure.
 *   shrink(user, { items = n, bytes = b })   deletes the oldest items
 *        until at most n remain and they hold at most b bytes (a missing
 *        or 0 limit: none). The number deleted and the bytes freed.
 *
 * query fields (all optional): start, ["end"] (seconds, inclusive), with
 * (exact match), after, before (ids; the item itself is excluded; an id
 * that does not exist is nil, "item-not-found"; true means no bound, as
 * RSM's empty <before/>), ids (a list of ids), key (one id), limit (0 for
 * a count only), reverse, total.
 *
 * The iterator keeps its place by (when, id), so writes made while a loop
 * runs never make it repeat or skip an item that stays.
 */
#include "lx_store.h"
#include "log.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

static const char ITER_MT[] = "starling.store.archive_iter";
#define ITER_CHUNK 256
#define MAX_SECONDS 9.2e12		/* |when| in seconds that fits in µs */

/* ---- arguments ---- */

/* A time in seconds at idx as microseconds. */
static int64_t arg_when(lua_State *L, int idx)
{
	if (lua_isinteger(L, idx)) {
		lua_Integer i = lua_tointeger(L, idx);
		luaL_argcheck(L, i > -(lua_Integer)MAX_SECONDS &&
				 i < (lua_Integer)MAX_SECONDS, idx,
			      "time out of range");
		return (int64_t)i * 1000000;
	}
	lua_Number n = luaL_checknumber(L, idx);
	luaL_argcheck(L, isfinite(n) && fabs(n) < MAX_SECONDS, idx,
		      "time out of range");
	return (int64_t)llround(n * 1e6);
}

static void push_when(lua_State *L, int64_t us)
{
	if (us % 1000000 == 0)
		lua_pushinteger(L, (lua_Integer)(us / 1000000));
	else
		lua_pushnumber(L, (lua_Number)us / 1e6);
}

/* The parts of a query table that are copied (the iterator outlives the
 * call): owned strings. */
struct query {
	struct store_arch_query q;
	struct store_arch_pos after, before;
	char *with;
	char **ids;
	size_t *id_lens;
	char *after_id, *before_id;
	bool want_total;
	size_t truncate;
};

static void query_free(struct query *qq)
{
	for (size_t i = 0; i < qq->q.nids; i++)
		free(qq->ids[i]);
	free(qq->ids);
	free(qq->id_lens);
	free(qq->with);
	free(qq->after_id);
	free(qq->before_id);
	memset(qq, 0, sizeof(*qq));
}

static char *field_string(lua_State *L, int t, const char *name, size_t *len)
{
	char *copy = NULL;

	lua_getfield(L, t, name);
	if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tolstring(L, -1, len);
		copy = xmalloc(*len + 1);
		memcpy(copy, s, *len + 1);
	} else if (!lua_isnil(L, -1) && !(lua_isboolean(L, -1) &&
			(strcmp(name, "after") == 0 || strcmp(name, "before") == 0))) {
		luaL_error(L, "query.%s must be a string", name);
	}
	lua_pop(L, 1);
	return copy;
}

static bool field_time(lua_State *L, int t, const char *name, int64_t *us)
{
	bool has;

	lua_getfield(L, t, name);
	has = !lua_isnil(L, -1);
	if (has && !lua_isnumber(L, -1))
		luaL_error(L, "query.%s must be a number", name);
	if (has)
		*us = arg_when(L, lua_gettop(L));
	lua_pop(L, 1);
	return has;
}

static size_t field_count(lua_State *L, int t, const char *name, bool *has)
{
	lua_Integer n = 0;

	lua_getfield(L, t, name);
	*has = !lua_isnil(L, -1);
	if (*has) {
		if (!lua_isinteger(L, -1) || (n = lua_tointeger(L, -1)) < 0)
			luaL_error(L, "query.%s must be a whole number >= 0", name);
	}
	lua_pop(L, 1);
	return (size_t)n;
}

static void add_id(struct query *qq, const char *s, size_t len)
{
	size_t n = qq->q.nids;

	qq->ids = xrealloc(qq->ids, (n + 1) * sizeof(*qq->ids));
	qq->id_lens = xrealloc(qq->id_lens, (n + 1) * sizeof(*qq->id_lens));
	qq->ids[n] = xmalloc(len + 1);
	memcpy(qq->ids[n], s, len + 1);
	qq->id_lens[n] = len;
	qq->q.nids = n + 1;
}

static void field_ids(lua_State *L, int t, struct query *qq)
{
	bool listed = false;
	size_t len;

	lua_getfield(L, t, "key");
	if (lua_type(L, -1) == LUA_TSTRING) {
		const char *s = lua_tolstring(L, -1, &len);
		add_id(qq, s, len);
		listed = true;
	} else if (!lua_isnil(L, -1)) {
		luaL_error(L, "query.key must be a string");
	}
	lua_pop(L, 1);
	lua_getfield(L, t, "ids");
	if (lua_istable(L, -1)) {
		lua_Integer n = luaL_len(L, -1);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, -1, i);
			if (lua_type(L, -1) != LUA_TSTRING)
				luaL_error(L, "query.ids must be a list of strings");
			const char *s = lua_tolstring(L, -1, &len);
			add_id(qq, s, len);
			lua_pop(L, 1);
		}
		listed = true;
	} else if (!lua_isnil(L, -1)) {
		luaL_error(L, "query.ids must be a list of strings");
	}
	lua_pop(L, 1);
	if (!listed)
		return;
	if (!qq->ids) {			/* an empty list: nothing matches */
		qq->ids = xcalloc(1, sizeof(*qq->ids));
		qq->id_lens = xcalloc(1, sizeof(*qq->id_lens));
	}
	qq->q.ids = (const char *const *)qq->ids;
	qq->q.id_lens = qq->id_lens;
}

/* Reads the query table at idx (nil: the empty query). Raises on a field
 * of the wrong type; it does so before anything is allocated into qq
 * that is not freed by the __gc of the iterator holding it, so callers
 * parse into a struct owned by a userdata. */
static void query_parse(lua_State *L, int idx, struct query *qq)
{
	size_t len = 0;
	bool has;

	memset(qq, 0, sizeof(*qq));
	if (lua_isnoneornil(L, idx))
		return;
	luaL_checktype(L, idx, LUA_TTABLE);
	idx = lua_absindex(L, idx);
	qq->q.has_start = field_time(L, idx, "start", &qq->q.start);
	qq->q.has_end = field_time(L, idx, "end", &qq->q.end);
	qq->with = field_string(L, idx, "with", &len);
	qq->q.with = qq->with;
	qq->q.with_len = len;
	qq->after_id = field_string(L, idx, "after", &qq->after.id_len);
	qq->before_id = field_string(L, idx, "before", &qq->before.id_len);
	qq->q.limit = field_count(L, idx, "limit", &qq->q.has_limit);
	qq->truncate = field_count(L, idx, "truncate", &has);
	lua_getfield(L, idx, "reverse");
	qq->q.reverse = lua_toboolean(L, -1);
	lua_getfield(L, idx, "total");
	qq->want_total = lua_toboolean(L, -1);
	lua_pop(L, 2);
	field_ids(L, idx, qq);
}

/* Resolves after/before ids into positions: 0, or -ENOENT when one
 * names no item. */
static int query_locate(const struct store *s, const char *user,
			struct query *qq)
{
	int rc = 0;

	if (qq->after_id) {
		rc = store_archive_locate(s, user, qq->after_id,
					  qq->after.id_len, &qq->after);
		qq->q.after = rc == 0 ? &qq->after : NULL;
	}
	if (rc == 0 && qq->before_id) {
		rc = store_archive_locate(s, user, qq->before_id,
					  qq->before.id_len, &qq->before);
		qq->q.before = rc == 0 ? &qq->before : NULL;
	}
	if (rc == -EINVAL || rc == -ENAMETOOLONG)
		rc = -ENOENT;
	return rc;
}

/* ---- items ---- */

/* Items copied out of a find: int64 when, size_t id_len, size_t wlen + 1
 * (0: no with), size_t val_len, then the id, with and value bytes. */
static int copy_item(void *ctx, const struct store_arch_item *it)
{
	struct sbuf *b = ctx;
	size_t w = it->with ? it->with_len + 1 : 0;

	sbuf_add(b, &it->when, sizeof(it->when));
	sbuf_add(b, &it->id_len, sizeof(size_t));
	sbuf_add(b, &w, sizeof(size_t));
	sbuf_add(b, &it->val_len, sizeof(size_t));
	sbuf_add(b, it->id, it->id_len);
	if (it->with)
		sbuf_add(b, it->with, it->with_len);
	sbuf_add(b, it->val, it->val_len);
	return 0;
}

/* Reads the copied item at *off; advances *off. */
static void item_at(const struct sbuf *b, size_t *off,
		    struct store_arch_item *it)
{
	const char *p = b->p + *off;
	size_t w;

	memcpy(&it->when, p, sizeof(it->when));
	memcpy(&it->id_len, p + 8, sizeof(size_t));
	memcpy(&w, p + 8 + sizeof(size_t), sizeof(size_t));
	memcpy(&it->val_len, p + 8 + 2 * sizeof(size_t), sizeof(size_t));
	p += 8 + 3 * sizeof(size_t);
	it->id = p;
	it->with = w ? p + it->id_len : NULL;
	it->with_len = w ? w - 1 : 0;
	it->val = p + it->id_len + it->with_len;
	*off += 8 + 3 * sizeof(size_t) + it->id_len + it->with_len + it->val_len;
}

/* Pushes value, when, with of an item: 3, or 0 (-EILSEQ) when the value
 * does not decode. */
static int push_item(lua_State *L, const struct store *s,
		     const struct store_arch_item *it)
{
	if (lx_store_push_value(L, s, it->val, it->val_len) != 0)
		return 0;
	push_when(L, it->when);
	if (it->with)
		lua_pushlstring(L, it->with, it->with_len);
	else
		lua_pushnil(L);
	return 3;
}

/* ---- the iterator ---- */

struct arch_iter {
	struct query qq;
	char *user;			/* owned */
	struct store *s;		/* kept alive by upvalue 2 */
	size_t left;			/* with a limit: items still to give */
	bool done;			/* no more chunks */
	struct sbuf chunk;
	size_t off;
	int64_t pos_when;		/* the last item read */
	struct sbuf pos_id;
	bool has_pos;
};

static int iter_gc(lua_State *L)
{
	struct arch_iter *it = lx_checkudata(L, 1, ITER_MT);

	query_free(&it->qq);
	free(it->user);
	it->user = NULL;
	sbuf_free(&it->chunk);
	sbuf_free(&it->pos_id);
	return 0;
}

/* Reads the next chunk: 0 or -errno. */
static int iter_fill(struct arch_iter *it)
{
	struct store_arch_query q = it->qq.q;
	struct store_arch_pos pos;
	size_t n = 0, off = 0;
	int rc;

	q.has_limit = true;
	q.limit = it->qq.q.has_limit ? MIN(it->left, (size_t)ITER_CHUNK)
				     : ITER_CHUNK;
	if (it->has_pos) {
		pos = (struct store_arch_pos){ it->pos_when, it->pos_id.p,
					       it->pos_id.len };
		if (q.reverse)
			q.before = &pos;
		else
			q.after = &pos;
	}
	sbuf_reset(&it->chunk);
	it->off = 0;
	rc = store_archive_find(it->s, it->user, &q, copy_item, &it->chunk,
				NULL);
	if (rc)
		return rc;
	while (off < it->chunk.len) {
		struct store_arch_item item;
		item_at(&it->chunk, &off, &item);
		it->pos_when = item.when;
		sbuf_reset(&it->pos_id);
		sbuf_add(&it->pos_id, item.id, item.id_len);
		it->has_pos = true;
		n++;
	}
	if (it->qq.q.has_limit)
		it->left -= n;
	if (n < q.limit || (it->qq.q.has_limit && it->left == 0))
		it->done = true;
	return 0;
}

static int iter_next(lua_State *L)
{
	struct arch_iter *it = lx_checkudata(L, lua_upvalueindex(1), ITER_MT);
	struct store_arch_item item;

	for (;;) {
		if (it->off >= it->chunk.len) {
			if (it->done)
				return 0;
			int rc = iter_fill(it);
			if (rc) {
				it->done = true;
				return luaL_error(L, "archive %s/%s: %s", it->s->host,
						  it->s->name, strerror(-rc));
			}
			continue;
		}
		item_at(&it->chunk, &it->off, &item);
		lua_pushlstring(L, item.id, item.id_len);
		if (push_item(L, it->s, &item) == 3)
			return 4;
		lua_pop(L, 1);		/* a corrupt value: logged, skipped */
	}
}

static int l_find(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "find");
	const char *user = lx_store_arg_user(L, 2);
	struct arch_iter *it;
	size_t total = 0;
	int rc;

	lua_settop(L, 3);
	it = lua_newuserdatauv(L, sizeof(*it), 0);
	memset(it, 0, sizeof(*it));
	sbuf_init(&it->chunk);
	sbuf_init(&it->pos_id);
	lx_setmetatable(L, ITER_MT);
	query_parse(L, 3, &it->qq);
	if (!user)
		return lx_store_fail_user(L);
	it->user = xstrdup(user);
	it->s = s;
	it->left = it->qq.q.limit;
	rc = query_locate(s, user, &it->qq);
	if (rc == 0 && it->qq.want_total) {
		struct store_arch_query q = it->qq.q;
		q.has_limit = true;
		q.limit = 0;
		rc = store_archive_find(s, user, &q, copy_item, NULL, &total);
	}
	if (rc)
		return lx_store_fail(L, rc);
	if (it->qq.q.has_limit && it->left == 0)
		it->done = true;
	lua_pushvalue(L, 1);			/* upvalue 2: the store */
	lua_pushcclosure(L, iter_next, 2);
	if (!it->qq.want_total)
		return 1;
	lua_pushinteger(L, (lua_Integer)total);
	return 2;
}

/* ---- one item ---- */

static int l_append(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "append");
	const char *user = lx_store_arg_user(L, 2);
	struct store_arch_item it = { .when = STORE_WHEN_NOW };
	char idout[STORE_ID_MAX + 1];
	struct sbuf v;
	int rc;

	if (!lua_isnoneornil(L, 3))
		it.id = luaL_checklstring(L, 3, &it.id_len);
	luaL_checkany(L, 4);
	if (!lua_isnoneornil(L, 5))
		it.when = arg_when(L, 5);
	if (!lua_isnoneornil(L, 6))
		it.with = luaL_checklstring(L, 6, &it.with_len);
	if (!user)
		return lx_store_fail_user(L);
	if (it.id && (it.id_len == 0 || it.id_len > STORE_ID_MAX)) {
		lua_pushnil(L);
		lua_pushliteral(L, "invalid item id");
		return 2;
	}
	sbuf_init(&v);
	rc = lx_store_encode(L, 4, &v);
	it.val = v.p;
	it.val_len = v.len;
	if (rc == 0)
		rc = store_archive_append(s, user, &it, idout);
	sbuf_free(&v);
	if (rc)
		return lx_store_fail_put(L, rc);
	lua_pushstring(L, idout);
	return 1;
}

int lx_store_archive_get(lua_State *L, const struct store *s)
{
	const char *user = lx_store_arg_user(L, 2);
	struct store_arch_item item;
	struct sbuf b;
	size_t id_len, off = 0;
	const char *id = luaL_checklstring(L, 3, &id_len);
	int rc, n;

	if (!user)
		return lx_store_fail_user(L);
	if (id_len == 0 || id_len > STORE_ID_MAX) {
		lua_pushnil(L);
		return 1;
	}
	sbuf_init(&b);
	rc = store_archive_get(s, user, id, id_len, copy_item, &b);
	if (rc == 0) {
		item_at(&b, &off, &item);
		n = push_item(L, s, &item);
		rc = n ? 0 : -EILSEQ;
	}
	sbuf_free(&b);
	if (rc == -ENOENT) {
		lua_pushnil(L);
		return 1;
	}
	return rc ? lx_store_fail(L, rc) : 3;
}

/* ---- many items ---- */

/* A query parsed into a userdata so that errors raised while parsing
 * still free it (its __gc). */
static struct query *query_arg(lua_State *L, int idx)
{
	struct arch_iter *holder;

	lua_settop(L, idx);
	holder = lua_newuserdatauv(L, sizeof(*holder), 0);

	memset(holder, 0, sizeof(*holder));
	sbuf_init(&holder->chunk);
	sbuf_init(&holder->pos_id);
	lx_setmetatable(L, ITER_MT);
	query_parse(L, idx, &holder->qq);
	return &holder->qq;
}

static int l_delete(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "delete");
	const char *user = lx_store_arg_user(L, 2);
	struct query *qq = query_arg(L, 3);
	size_t n = 0;
	int rc;

	if (!user)
		return lx_store_fail_user(L);
	rc = query_locate(s, user, qq);
	if (rc == 0)
		rc = store_archive_delete(s, user, &qq->q, qq->truncate, &n);
	if (rc)
		return lx_store_fail(L, rc);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

static int add_summary(void *ctx, const char *with, size_t wlen,
		       size_t count, int64_t first, int64_t last)
{
	lua_State *L = ctx;		/* counts, earliest, latest at -3..-1 */

	lua_pushlstring(L, with, wlen);
	lua_pushinteger(L, (lua_Integer)count);
	lua_rawset(L, -5);
	lua_pushlstring(L, with, wlen);
	push_when(L, first);
	lua_rawset(L, -4);
	lua_pushlstring(L, with, wlen);
	push_when(L, last);
	lua_rawset(L, -3);
	return 0;
}

static int l_summary(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "summary");
	const char *user = lx_store_arg_user(L, 2);
	struct query *qq = query_arg(L, 3);
	int rc;

	if (!user)
		return lx_store_fail_user(L);
	lua_createtable(L, 0, 3);
	lua_newtable(L);
	lua_newtable(L);
	lua_newtable(L);
	rc = store_archive_summary(s, user, &qq->q, add_summary, L);
	if (rc)
		return lx_store_fail(L, rc);
	lua_setfield(L, -4, "latest");
	lua_setfield(L, -3, "earliest");
	lua_setfield(L, -2, "counts");
	return 1;
}

static int add_date(void *ctx, int64_t day)
{
	lua_State *L = ctx;
	time_t t = (time_t)(day / 1000000);
	struct tm tm;
	char buf[32];

	if (!gmtime_r(&t, &tm) || strftime(buf, sizeof(buf), "%Y-%m-%d", &tm) == 0)
		return 0;
	lua_pushstring(L, buf);
	lua_rawseti(L, -2, (lua_Integer)luaL_len(L, -2) + 1);
	return 0;
}

static int l_dates(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "dates");
	const char *user = lx_store_arg_user(L, 2);
	int rc;

	if (!user)
		return lx_store_fail_user(L);
	lua_newtable(L);
	rc = store_archive_dates(s, user, add_date, L);
	return rc ? lx_store_fail(L, rc) : 1;
}

static int l_trim(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "trim");
	const char *user = lua_isnoneornil(L, 2) ? NULL : lx_store_arg_user(L, 2);
	int64_t before = arg_when(L, 3);
	size_t n = 0;
	int rc;

	if (!lua_isnoneornil(L, 2) && !user)
		return lx_store_fail_user(L);
	rc = store_archive_trim(s, user, before, &n);
	if (rc)
		return lx_store_fail(L, rc);
	lua_pushinteger(L, (lua_Integer)n);
	return 1;
}

static int l_usage(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "usage");
	const char *user = lx_store_arg_user(L, 2);
	bool cached = lua_toboolean(L, 3);
	struct store_arch_usage u;
	int rc;

	if (!user)
		return lx_store_fail_user(L);
	rc = store_archive_usage(s, user, cached, &u);
	if (rc == -EAGAIN && cached) {
		lua_pushnil(L);
		return 1;
	}
	if (rc)
		return lx_store_fail(L, rc);
	lua_pushinteger(L, (lua_Integer)u.items);
	lua_pushinteger(L, (lua_Integer)u.bytes);
	return 2;
}

/* A limit of shrink's table: 0 when missing. */
static uint64_t limit_field(lua_State *L, int idx, const char *name)
{
	lua_Integer n;

	lua_getfield(L, idx, name);
	n = luaL_optinteger(L, -1, 0);
	lua_pop(L, 1);
	if (n < 0)
		luaL_error(L, "shrink: %s must not be negative", name);
	return (uint64_t)n;
}

static int l_shrink(lua_State *L)
{
	struct store *s = lx_store_check_kind(L, STORE_KIND_ARCHIVE, "shrink");
	const char *user = lx_store_arg_user(L, 2);
	uint64_t max_items, max_bytes, freed = 0;
	size_t n = 0;
	int rc;

	luaL_checktype(L, 3, LUA_TTABLE);
	max_items = limit_field(L, 3, "items");
	max_bytes = limit_field(L, 3, "bytes");
	if (!user)
		return lx_store_fail_user(L);
	rc = store_archive_shrink(s, user, max_items, max_bytes, &n, &freed);
	if (rc)
		return lx_store_fail(L, rc);
	lua_pushinteger(L, (lua_Integer)n);
	lua_pushinteger(L, (lua_Integer)freed);
	return 2;
}

void lx_store_archive_register(lua_State *L)
{
	static const luaL_Reg methods[] = {
		{ "append", l_append },
		{ "find", l_find },
		{ "delete", l_delete },
		{ "summary", l_summary },
		{ "dates", l_dates },
		{ "trim", l_trim },
		{ "usage", l_usage },
		{ "shrink", l_shrink },
		{ NULL, NULL },
	};

	luaL_setfuncs(L, methods, 0);
	lx_store_archiver_register(L);
	lx_gc_type(L, ITER_MT, iter_gc);
}
