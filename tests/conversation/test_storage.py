"""The store API through a running server: archive queries (every field,
paging 10,000 items both ways), the memory engine chosen per store in the
config, and data that outlives a restart.

A test module (PLUGIN, loaded as mod_storetest) exposes the stores of the
logged-in user over iq, in the namespace urn:starling:test:store:

  <fill n= start= step= every=/>        appends items i00000.. (value: a
                                        <message/> whose body is the number;
                                        when = start + k*step; with
                                        third@example.com when k % every == 0,
                                        else other@example.com)
  <append id= when= with=>text</append> one item (value: the text)
  <query start= end= with= after= before= ids= limit= reverse= total=/>
                                        -> <items total=><item id= when= with=>
                                           value</item>...</items>
  <delete (query attributes) truncate=/>  -> <deleted n=/>
  <summary .../>  <dates/>  <trim to=/>  <users/>
  <kv-set>text</kv-set>  <kv-get/>      the keyval store "storetest_kv"
"""

import re

from harness import check, fixture, time_limit
from xmpp import esc, find, find_all, new_id

NS = "urn:starling:test:store"

PLUGIN = r'''
local st = require "util.stanza"
local NS = "urn:starling:test:store"
local archive = module:open_store("storetest", "archive")
local kv = module:open_store("storetest_kv", "keyval")

local function num(s) return s and tonumber(s) or nil end

local function query_of(el)
	local a = el.attr
	local ids
	if a.ids then
		ids = {}
		for id in a.ids:gmatch("[^,]+") do ids[#ids + 1] = id end
	end
	return {
		start = num(a.start), ["end"] = num(a["end"]), with = a.with,
		after = a.after, before = a.before, ids = ids, limit = num(a.limit),
		reverse = a.reverse == "true", total = a.total == "true",
		truncate = num(a.truncate),
	}
end

local function value_text(v)
	if st.is_stanza(v) then return v:get_child_text("body") end
	return tostring(v)
end

local function answer(event, build)
	local reply = st.reply(event.stanza)
	local ok, err = pcall(build, reply)
	if not ok then
		event.origin:send(st.error_reply(event.stanza, "cancel", "bad-request", tostring(err)))
	else
		event.origin:send(reply)
	end
	return true
end

local handlers = {}

function handlers.fill(event, el, user)
	return answer(event, function(reply)
		local n, start = num(el.attr.n), num(el.attr.start) or 0
		local step, every = num(el.attr.step) or 1, num(el.attr.every) or 3
		for k = 0, n - 1 do
			local msg = st.message({ to = "x@example.com", type = "chat" }, tostring(k))
			assert(archive:append(user, string.format("i%05d", k), msg, start + k * step,
				k % every == 0 and "third@example.com" or "other@example.com"))
		end
		reply:tag("filled", { xmlns = NS, n = tostring(n) })
	end)
end

function handlers.append(event, el, user)
	return answer(event, function(reply)
		local id = assert(archive:append(user, el.attr.id, el:get_text(), num(el.attr.when),
			el.attr.with))
		reply:tag("appended", { xmlns = NS, id = id })
	end)
end

function handlers.query(event, el, user)
	return answer(event, function(reply)
		local iter, total = archive:find(user, query_of(el))
		assert(iter, total)
		reply:tag("items", { xmlns = NS, total = total and tostring(total) or nil })
		for id, value, when, with in iter do
			reply:text_tag("item", value_text(value), { id = id, when = tostring(when),
				with = with })
		end
	end)
end

function handlers.delete(event, el, user)
	return answer(event, function(reply)
		local n = assert(archive:delete(user, query_of(el)))
		reply:tag("deleted", { xmlns = NS, n = tostring(n) })
	end)
end

function handlers.summary(event, el, user)
	return answer(event, function(reply)
		local s = assert(archive:summary(user, query_of(el)))
		reply:tag("summary", { xmlns = NS })
		for with, n in pairs(s.counts) do
			reply:tag("with", { jid = with, n = tostring(n), first = tostring(s.earliest[with]),
				last = tostring(s.latest[with]) }):up()
		end
	end)
end

function handlers.dates(event, el, user)
	return answer(event, function(reply)
		reply:tag("dates", { xmlns = NS })
		for _, d in ipairs(assert(archive:dates(user))) do reply:text_tag("date", d) end
	end)
end

function handlers.trim(event, el, user)
	return answer(event, function(reply)
		local who = el.attr.all == "true" and nil or user
		local n = assert(archive:trim(who, num(el.attr.to)))
		reply:tag("trimmed", { xmlns = NS, n = tostring(n) })
	end)
end

function handlers.users(event, el, user)
	return answer(event, function(reply)
		reply:tag("users", { xmlns = NS })
		for u in archive:users() do reply:text_tag("user", u) end
	end)
end

handlers["kv-set"] = function(event, el, user)
	return answer(event, function(reply)
		assert(kv:set(user, el:get_text()))
		reply:tag("stored", { xmlns = NS, engine = tostring(kv):match(", (%a+)%)$") })
	end)
end

handlers["kv-get"] = function(event, el, user)
	return answer(event, function(reply)
		reply:text_tag("value", kv:get(user) or "", { xmlns = NS })
	end)
end

for name, fn in pairs(handlers) do
	local function handle(event)
		local el = event.stanza.tags[1]
		return fn(event, el, event.origin.username)
	end
	module:hook("iq-set/self/" .. NS .. ":" .. name, handle)
	module:hook("iq-get/self/" .. NS .. ":" .. name, handle)
end
'''


def call(c, name, attrs=None, text=None, type="get"):
    """Sends <name xmlns=NS attrs>text</name> in an iq; the result."""
    iq_id = new_id("st")
    a = "".join(" %s='%s'" % (k, esc(v)) for k, v in (attrs or {}).items()
                if v is not None)
    inner = "<%s xmlns='%s'%s>%s</%s>" % (name, NS, a, esc(text or ""), name)
    c.send("<iq type='%s' id='%s'>%s</iq>" % (type, iq_id, inner))
    return c.expect("iq", attrs={"id": iq_id, "type": "result"})


def query(c, **attrs):
    """(ids, total) of a query."""
    attrs = {k.rstrip("_"): (str(v).lower() if isinstance(v, bool) else str(v))
             for k, v in attrs.items() if v is not None}
    el = call(c, "query", attrs)
    items = find(el, "{%s}items" % NS)
    ids = [i.get("id") for i in find_all(items, "{%s}item" % NS)]
    total = items.get("total")
    return ids, (int(total) if total is not None else None)


def items_of(el):
    items = find(el, "{%s}items" % NS)
    return [(i.get("id"), i.text or "", i.get("when"), i.get("with"))
            for i in find_all(items, "{%s}item" % NS)]


@fixture
def server(scope):
    return scope.server(plugins={"storetest": PLUGIN})


def five(c):
    for id_, when, with_ in (("c", 30, "x@h"), ("a", 10, "x@h"), ("e", 50, "x@h"),
                             ("b", 20, "y@h"), ("d", 40, None)):
        call(c, "append", {"id": id_, "when": str(when), "with": with_}, id_.upper(),
             type="set")


def test_archive_append_and_every_query_field(server):
    c = server.login("arch")
    five(c)
    el = call(c, "query", {})
    check(items_of(el) == [("a", "A", "10", "x@h"), ("b", "B", "20", "y@h"),
                           ("c", "C", "30", "x@h"), ("d", "D", "40", None),
                           ("e", "E", "50", "x@h")], items_of(el))
    check(query(c, start=20, end_=40) == (["b", "c", "d"], None))
    check(query(c, start=20, end_=40, total=True) == (["b", "c", "d"], 3))
    check(query(c, with_="x@h") == (["a", "c", "e"], None))
    check(query(c, with_="x@h", reverse=True, limit=2, total=True) == (["e", "c"], 3))
    check(query(c, after="b") == (["c", "d", "e"], None))
    check(query(c, before="d") == (["a", "b", "c"], None))
    check(query(c, after="a", before="e", limit=2) == (["b", "c"], None))
    check(query(c, before="d", reverse=True, limit=2) == (["c", "b"], None))
    check(query(c, ids="e,a,zz,c") == (["a", "c", "e"], None))
    check(query(c, ids="e,a,c", with_="x@h", start=20, reverse=True, total=True)
          == (["e", "c"], 2))
    check(query(c, limit=0, total=True) == ([], 5))
    check(query(c, with_="nobody@h", total=True) == ([], 0))
    # an after/before id that does not exist is an error
    iq_id = new_id("st")
    c.send("<iq type='get' id='%s'><query xmlns='%s' after='missing'/></iq>" % (iq_id, NS))
    c.expect_error("iq", "bad-request", attrs={"id": iq_id})
    # a generated id is returned and sorts after earlier generated ones
    g1 = find(call(c, "append", {}, "G1", type="set"), "{%s}appended" % NS).get("id")
    g2 = find(call(c, "append", {}, "G2", type="set"), "{%s}appended" % NS).get("id")
    check(len(g1) == 15 and g1 < g2, (g1, g2))
    check(query(c, ids=g2) == ([g2], None))
    # another user sees none of it
    other = server.login("arch")
    check(query(other, total=True) == ([], 0))


def test_archive_delete_summary_dates_users_trim(server):
    c = server.login("arch")
    five(c)
    s = call(c, "summary", {})
    got = {w.get("jid"): (w.get("n"), w.get("first"), w.get("last"))
           for w in find_all(find(s, "{%s}summary" % NS), "{%s}with" % NS)}
    check(got == {"x@h": ("3", "10", "50"), "y@h": ("1", "20", "20")}, got)
    d = call(c, "dates", {})
    check([e.text for e in find_all(find(d, "{%s}dates" % NS), "{%s}date" % NS)]
          == ["1970-01-01"])
    u = call(c, "users", {})
    check(c.account.user in [e.text for e in find_all(find(u, "{%s}users" % NS),
                                                        "{%s}user" % NS)])
    n = find(call(c, "delete", {"with": "x@h", "end": "30"}, type="set"),
             "{%s}deleted" % NS).get("n")
    check(n == "2", n)
    check(query(c) == (["b", "d", "e"], None))
    n = find(call(c, "delete", {"truncate": "1"}, type="set"), "{%s}deleted" % NS).get("n")
    check(n == "2" and query(c) == (["e"], None), n)
    n = find(call(c, "trim", {"to": "60"}, type="set"), "{%s}trimmed" % NS).get("n")
    check(n == "1" and query(c, total=True) == ([], 0), n)


@time_limit(120)
def test_archive_paging_10000_items_both_ways(server):
    N, PAGE = 10000, 50
    c = server.login("pager")
    call(c, "fill", {"n": str(N), "start": "1000000", "step": "1", "every": "3"},
         type="set")
    seen, after, pages = [], None, 0
    while True:
        ids, total = query(c, limit=PAGE, after=after, total=(pages == 0))
        if pages == 0:
            check(total == N, total)
        if not ids:
            break
        seen += ids
        after = ids[-1]
        pages += 1
    check(pages == N // PAGE and seen == ["i%05d" % k for k in range(N)],
          "forward paging: %d pages, %d ids" % (pages, len(seen)))
    seen, before = [], None
    while True:
        ids, _ = query(c, limit=PAGE, before=before, reverse=True)
        if not ids:
            break
        seen += ids
        before = ids[-1]
    check(seen == ["i%05d" % k for k in reversed(range(N))], "backward paging")
    # backwards through one 'with' only, from a time window's end
    seen, before = [], None
    while True:
        ids, _ = query(c, limit=PAGE, before=before, reverse=True,
                       with_="third@example.com", end_=1000000 + 8999)
        if not ids:
            break
        seen += ids
        before = ids[-1]
    check(seen == ["i%05d" % k for k in reversed(range(0, 9000, 3))],
          "with + end paging: %d" % len(seen))


@time_limit(60)
def test_memory_engine_per_store_and_lmdb_survive_restart(ctx):
    srv = ctx.server(plugins={"storetest": PLUGIN},
                     options={"storage": {"storetest_kv": "memory"}})
    alice = srv.account("alice")
    c = srv.login(alice)
    el = call(c, "kv-set", {}, "kept in memory", type="set")
    check(find(el, "{%s}stored" % NS).get("engine") == "memory")
    check(find(call(c, "kv-get"), "{%s}value" % NS).text == "kept in memory")
    call(c, "append", {"id": "durable"}, "on disk", type="set")
    c.send("<iq type='set' id='rs'><query xmlns='jabber:iq:roster'>"
           "<item jid='friend@example.com'/></query></iq>")
    c.expect("iq", attrs={"id": "rs", "type": "result"})
    srv.crash()
    srv.restart()
    c = srv.login(alice)
    check(find(call(c, "kv-get"), "{%s}value" % NS).text is None,
          "a memory store outlived the process")
    check(query(c) == (["durable"], None))
    c.send("<iq type='get' id='rg'><query xmlns='jabber:iq:roster'/></iq>")
    c.expect("iq", attrs={"id": "rg", "type": "result"},
             child="roster:query/roster:item")


@time_limit(60)
def test_default_storage_memory(ctx):
    srv = ctx.server(plugins={"storetest": PLUGIN},
                     options={"default_storage": "memory"})
    alice = srv.account("alice")
    c = srv.login(alice)
    el = call(c, "kv-set", {}, "x", type="set")
    check(find(el, "{%s}stored" % NS).get("engine") == "memory")
    call(c, "append", {"id": "volatile"}, "v", type="set")
    srv.crash()
    srv.restart()
    c = srv.login(alice)            # accounts are always on LMDB
    check(query(c, total=True) == ([], 0))


def test_unknown_engine_fails_the_module(ctx):
    srv = ctx.server(plugins={"storetest": PLUGIN},
                     options={"storage": {"storetest": "sql"}})
    srv.wait_log(r"unknown storage engine 'sql'")
