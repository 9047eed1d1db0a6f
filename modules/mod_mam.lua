-- mod_mam: Message Archive Management (XEP-0313, with the extended
-- features; preferences as XEP-0441 describes them) and XEP-0359 stanza
-- ids (docs/modules/mam.md).
--
-- Chat messages are kept in the account's archive as they pass: those it
-- receives (before delivery, so also those that go to offline storage;
-- the archive id is put into the message as <stanza-id by='account'/>)
-- and those its resources send. Which messages, and for which contacts,
-- follows the account's preferences. The account queries its archive by
-- contact, time, or ids, a page at a time (XEP-0059).
--
-- Items live in the host's archive store "archive" (value: the message,
-- with: the contact's bare JID); preferences in the keyval store
-- "archive_prefs", cached in memory.

local core = require "starling.core"
local st = require "util.stanza"
local jid = require "util.jid"
local datetime = require "util.datetime"
local mam = require "util.mam"
local roster_lib = require "util.roster"
local set = require "util.set"
local cost = require "util.cost"

local ipairs, next, pairs, type = ipairs, next, pairs, type
local concat = table.concat
local huge = math.huge

local NS = "urn:xmpp:mam:2"
local NS_EXTENDED = "urn:xmpp:mam:2#extended"
local NS_SID = "urn:xmpp:sid:0"

-- The most a page may ever hold, whatever the configuration says.
local HARD_MAX = 250

local default_policy = module:get_option_enum("default_archive_policy", "always",
	"never", "roster", true, false)
if type(default_policy) == "boolean" then
	default_policy = default_policy and "always" or "never"
end
local page_size = module:get_option_integer("max_archive_query_results", 50, 1, HARD_MAX)
local expires_after = module:get_option_period("archive_expires_after", "1w")
local cleanup_interval = module:get_option_period("archive_cleanup_interval", "4h")
if cleanup_interval <= 0 or cleanup_interval == huge then
	error("option 'archive_cleanup_interval' on host '" .. module.host
		.. "': expected a period greater than 0 (got 'never' or 0)", 0)
end
local prefs_cache_size = module:get_option_integer("archive_prefs_cache_size", 10000, 0)
-- Each account keeps at most this many items and this many bytes (0: no
-- limit); the oldest go first (see the quota below).
local max_items = module:get_option_integer("archive_max_items", 10000, 0)
local max_size = module:get_option_size("archive_max_size", 0)
local quota_on = max_items > 0 or max_size > 0
-- Payloads that make a message without a body worth keeping.
local payloads = module:get_option_set("archive_payloads", {
	"eu.siacs.conversations.axolotl", -- OMEMO (legacy)
	"urn:xmpp:omemo:2",
	"urn:xmpp:eme:0",                 -- explicit encryption
	"jabber:x:conference",            -- direct MUC invitations
	"urn:xmpp:chat-markers:0",        -- read markers, synced between devices
	"urn:xmpp:message-retract:1",
	"urn:xmpp:reactions:0",
	"urn:xmpp:jingle-message:0",      -- call logs
})

local archive = module:open_store("archive", "archive")
local prefs_store = module:open_store("archive_prefs", "keyval")
local roster_store = roster_lib.open(module)
local budget = cost.budget(module)

local function fail(event, err_type, condition, text)
	return module:reply(event, st.error_reply(event.stanza, err_type, condition, text))
end

-- --- accounts and their preferences ---------------------------------------

-- Stored: { default = "roster", always = { jid, ... }, never = { jid, ... } }.
-- Cached per existing account: { default, always = set, never = set }, or
-- false for an account that never set any. An account in the cache exists
-- (creating and deleting accounts fire events that drop the entry); the
-- cache is emptied when full.
local cache, cached = {}, 0

local function compile(stored)
	return { default = stored.default, always = set.new(stored.always), never = set.new(stored.never) }
end

local function cache_put(username, value)
	if cache[username] == nil then
		if cached >= prefs_cache_size then
			cache, cached = {}, 0
		end
		cached = cached + 1
	end
	cache[username] = value
end

-- Whether username@host exists, and its preferences (nil: the defaults).
local function account(username, host)
	local p = cache[username]
	if p ~= nil then
		return true, p or nil
	end
	if not core.user_exists(username, host) then
		return false
	end
	local stored, err = prefs_store:get(username)
	if err then
		module:log("error", "cannot read the archive preferences of %s: %s", username, err)
		return true, nil
	end
	p = stored and compile(stored) or false
	cache_put(username, p)
	return true, p or nil
end

local function in_roster(username, bare)
	local roster = roster_lib.load(roster_store, username)
	return roster ~= nil and roster.items[bare] ~= nil
end

-- XEP-0441 section 2.4: whether messages with `other` (the 'to' of an
-- outgoing message, the 'from' of an incoming one; `bare` its bare JID) go
-- to the archive of username@host, whose preferences are p. A JID in both
-- lists is never archived.
local function wanted(username, host, p, other, bare)
	local policy = default_policy
	if p then
		if p.never[other] or p.never[bare] then
			return false
		elseif p.always[other] or p.always[bare] then
			return true
		end
		policy = p.default
	end
	if policy == "roster" then
		return bare == username .. "@" .. host or in_roster(username, bare)
	end
	return policy == "always"
end

-- --- archiving --------------------------------------------------------------

-- What is archivable (XEP-0313 section 5.1.1: chat and normal messages
-- with a body or a payload from `payloads`, not those the sender marked
-- no-store by XEP-0334), the stanza-ids in our name that a sender put in
-- (XEP-0359 section 4), the append and the <stanza-id/> the recipient
-- sees: the archiver's hook handlers, in C (docs/modules/mam.md). Which
-- contacts an account keeps follows its preferences, asked here; an
-- answer that holds for every contact (no lists, no roster policy) the
-- archiver keeps until forget_answer(username).
local function archive_wanted(username, host, other, bare)
	local exists, prefs = account(username, host)
	if not exists then
		return false
	end
	local policy = prefs and prefs.default or default_policy
	local uniform = policy ~= "roster"
		and (prefs == nil or (next(prefs.always) == nil and next(prefs.never) == nil))
	return wanted(username, host, prefs, other, bare), uniform
end

local incoming, outgoing, forget_answer = archive:archiver(payloads, archive_wanted,
	prefs_cache_size)

-- --- queries ----------------------------------------------------------------

local query_form = mam.form(true)

-- The earliest time a query may see: older items are expired (and go with
-- the next trim).
local function horizon()
	if expires_after == huge then
		return nil
	end
	return core.now() - expires_after
end

-- The store query of a MAM query (q.reverse: it pages backwards) and the
-- full JID to match (when 'with' has a resource); or nil, condition.
local function store_query(username, f, page, max)
	local q = { start = f.start, ["end"] = f["end"], ids = f.ids, reverse = page.before ~= nil }
	local lo = horizon()
	if lo and (q.start == nil or q.start < lo) then
		q.start = lo
	end
	local full
	if f.with then
		q.with = jid.bare(f.with)
		full = jid.resource(f.with) and f.with
	end
	local err
	q.after, err = mam.bound(archive, username, f.after_id, page.after, true)
	if err then
		return nil, err
	end
	q.before, err = mam.bound(archive, username, f.before_id, page.before ~= true and page.before or nil, false)
	if err then
		return nil, err
	end
	-- RSM <count/> when the store can count the same set: it counts
	-- ignoring after/before, which are only RSM's paging here.
	q.total = not (full or f.after_id or f.before_id)
	if not full then
		q.limit = max + 1
	end
	return q, full
end

-- Whether an archived message is to or from exactly this full JID.
local function matches_full(msg, full)
	return msg.attr.to == full or msg.attr.from == full
end

-- Reads the page: items oldest first, whether the set ends there (in the
-- direction of paging), and the count (nil when unknown).
local function fetch(username, q, full, max)
	local iter, total = archive:find(username, q)
	if not iter then
		return nil, total
	end
	local items, complete = mam.collect(iter, max, q.reverse, full and function(msg)
		return matches_full(msg, full)
	end)
	return items, complete, q.total and total or nil
end

-- The checks of a query before the store sees it (the form, the page
-- request, the ids): the filters, the page and its size; or nil and an
-- error { condition, text }.
local function read_query(username, query)
	local f, page, max = mam.read_query(query, page_size, true)
	if not f then
		return nil, { page, max }
	end
	if f.ids then
		local unique = set.new(f.ids):count()
		if unique > HARD_MAX then
			return nil, { "policy-violation", "at most " .. HARD_MAX .. " ids per query" }
		end
		local _, found = archive:find(username, { ids = f.ids, limit = 0, total = true })
		if found ~= unique then
			return nil, { "item-not-found", "no such item in the archive" }
		end
	end
	return f, page, max
end

local function query_failed(event, err)
	return fail(event, mam.error_type(err[1]), err[1], err[2])
end

-- The index of the first item, given only where it costs no counting: 0
-- for the first page forwards. (The last page, count - n, is left out:
-- slixmpp 1.8 takes first index + page size = count as the end of the
-- set in either direction, and would stop paging backwards at once.)
local function first_index(q, page, n)
	if n > 0 and not q.reverse and not page.after then
		return 0
	end
	return nil
end

-- --- the quota --------------------------------------------------------------

-- archive_max_items and archive_max_size: the oldest items of username
-- beyond either go. The store counts every archive's items and bytes as
-- it writes them (archive:usage, O(1)), so this is checked after every
-- append (the trim itself waits a moment, below, and then takes all that
-- came over at once), when the account logs in, before every query and
-- metadata request (so what they report is what is kept) and with the
-- expiry run for every account. Returns how many went, or nil.
local limits = { items = max_items, bytes = max_size }

local function quota_text()
	local parts = {}
	if max_items > 0 then
		parts[#parts + 1] = max_items .. " items"
	end
	if max_size > 0 then
		parts[#parts + 1] = max_size .. " bytes"
	end
	return concat(parts, " and ")
end

local function enforce_quota(username)
	if not quota_on then
		return 0
	end
	local n, freed = archive:shrink(username, limits)
	if not n then
		module:log("error", "cannot keep the archive of %s@%s within its quota: %s",
			username, module.host, freed)
		return nil
	end
	if n > 0 then
		module:log("info", "archive of %s@%s over its quota of %s: the %d oldest removed (%d bytes)",
			username, module.host, quota_text(), n, freed)
	end
	return n
end

-- Accounts an append took over the quota, trimmed together a moment
-- later: a trim deletes, and a delete waits for the archive writer, so
-- one per message would hold the loop up for every message of an account
-- that stays at its quota.
local TRIM_DELAY = 1
local over_quota, trim_armed = {}, false

local function trim_over_quota()
	local users = over_quota
	over_quota, trim_armed = {}, false
	for username in pairs(users) do
		enforce_quota(username)
	end
	return nil
end

-- After an append to username's archive: over the quota, or not known
-- yet (the first append since start), it is trimmed soon.
local function check_quota(username)
	local items, bytes = archive:usage(username, true)
	if items and (max_items == 0 or items <= max_items) and (max_size == 0 or bytes <= max_size) then
		return
	end
	over_quota[username] = true
	if not trim_armed then
		trim_armed = true
		module:add_timer(TRIM_DELAY, trim_over_quota)
	end
end

-- The archiver's handlers run at priority 2; these after them, on the
-- accounts they may have appended to: the recipient's (a local
-- account's, with the <stanza-id/> the archiver put in) and the sender's.
local function after_incoming(event)
	local stanza = event.stanza
	local to = stanza.attr.to
	if not to then
		return nil
	end
	local node, host = jid.split(to)
	if node and host == module.host and stanza:get_child("stanza-id", NS_SID) then
		check_quota(node)
	end
	return nil
end

local function after_outgoing(event)
	local origin = event.origin
	if origin and origin.username and origin.host == module.host then
		check_quota(origin.username)
	end
	return nil
end

local function handle_query(event)
	local origin, stanza = event.origin, event.stanza
	local query = stanza.tags[1]
	local username = origin.username
	local f, page, max = read_query(username, query)
	if not f then
		return query_failed(event, page)
	end
	-- a page costs 1 unit of the account's budget, and 1 more per 50 items
	if not budget:charge(event, 1 + max // 50) then
		return true
	end
	enforce_quota(username)
	local q, full = store_query(username, f, page, max)
	if not q then
		return query_failed(event, { full })
	end
	local items, complete, count = fetch(username, q, full, max)
	if not items then
		if complete ~= "item-not-found" then
			module:log("error", "archive query of %s failed: %s", username, complete)
			complete = "internal-server-error"
		end
		return query_failed(event, { complete })
	end
	for _, m in ipairs(mam.results(stanza.attr.from, stanza.attr.to, query, items)) do
		origin:send(m)
	end
	local fin = mam.fin(stanza, items, complete, first_index(q, page, #items), count)
	return module:reply(event, fin)
end

local function handle_form(event)
	return module:reply(event, st.reply(event.stanza):tag("query", { xmlns = NS }):add_child(query_form))
end

local function handle_metadata(event)
	local username = event.origin.username
	enforce_quota(username)
	local reply = st.reply(event.stanza):tag("metadata", { xmlns = NS })
	local lo = horizon()
	for _, which in ipairs({ "start", "end" }) do
		local iter, err = archive:find(username, { start = lo, limit = 1, reverse = which == "end" })
		if not iter then
			module:log("error", "archive metadata of %s: %s", username, err)
			return fail(event, "wait", "internal-server-error")
		end
		local id, _, when = iter()
		if id then
			reply:tag(which, { id = id, timestamp = datetime.datetime(when) }):up()
		end
	end
	return module:reply(event, reply)
end

-- --- preference requests ----------------------------------------------------

local function prefs_reply(stanza, default, always, never)
	local reply = st.reply(stanza):tag("prefs", { xmlns = NS, default = default })
	for _, list in ipairs({ { "always", always }, { "never", never } }) do
		reply:tag(list[1])
		for _, j in ipairs(list[2]) do
			reply:text_tag("jid", j)
		end
		reply:up()
	end
	return reply
end

local function handle_prefs_get(event)
	local _, p = account(event.origin.username, event.origin.host)
	if not p then
		return module:reply(event, prefs_reply(event.stanza, default_policy, {}, {}))
	end
	return module:reply(event, prefs_reply(event.stanza, p.default, p.always:to_array(), p.never:to_array()))
end

-- The prepared JIDs of <always/> or <never/>; nil when one is invalid.
local function jid_list(prefs, name)
	local list = set.new()
	local el = prefs:get_child(name, NS)
	for j in (el and el:childtags("jid", NS) or function() end) do
		local prepped = jid.prep(j:get_text())
		if not prepped then
			return nil
		end
		list:add(prepped)
	end
	return list
end

local function handle_prefs_set(event)
	local origin, prefs = event.origin, event.stanza.tags[1]
	local default = prefs.attr.default
	if default == nil then
		local _, p = account(origin.username, origin.host)
		default = p and p.default or default_policy
	elseif default ~= "always" and default ~= "never" and default ~= "roster" then
		return fail(event, "modify", "bad-request", "default must be always, never or roster")
	end
	local always, never = jid_list(prefs, "always"), jid_list(prefs, "never")
	if not (always and never) then
		return fail(event, "modify", "jid-malformed", "not a JID")
	end
	local stored = { default = default, always = (always - never):to_array(), never = never:to_array() }
	local ok, err = prefs_store:set(origin.username, stored)
	if not ok then
		module:log("error", "cannot store the archive preferences of %s: %s", origin.username, err)
		return fail(event, "wait", "internal-server-error")
	end
	cache_put(origin.username, compile(stored))
	forget_answer(origin.username)
	module:tell_nodes("mam/forget", origin.username)
	return module:reply(event, prefs_reply(event.stanza, default, stored.always, stored.never))
end

-- Another account's archive is not to be read.
local function forbidden(event)
	return fail(event, "auth", "forbidden", "only the account itself may use its archive")
end

-- What this worker keeps of an account (another worker changed it:
-- "mam/forget").
local function forget_here(event)
	if cache[event.username] ~= nil then
		cache[event.username] = nil
		cached = cached - 1
	end
	forget_answer(event.username)
end

local function forget(event)
	forget_here(event)
	module:tell_nodes("mam/forget", event.username)
end

-- --- expiry -----------------------------------------------------------------

local function trim()
	if expires_after < huge then
		local n, err = archive:trim(nil, core.now() - expires_after)
		if not n then
			module:log("error", "cannot remove expired archive items: %s", err)
		elseif n > 0 then
			module:log("debug", "removed %d expired archive items", n)
		end
	end
	if quota_on then
		local users = {}
		for user in archive:users() do
			users[#users + 1] = user
		end
		for _, user in ipairs(users) do
			enforce_quota(user)
		end
	end
	return cleanup_interval
end

if expires_after < huge or quota_on then
	module:add_timer(cleanup_interval, trim)
end

local function quota_at_login(event)
	local origin = event.session or event.origin
	if origin and origin.username then
		enforce_quota(origin.username)
	end
end

-- A message for an account without an available resource that nobody
-- keeps for it (mod_message then answers service-unavailable), or that
-- offline storage refused ("message/offline/bounced", fired by the module
-- that bounced it): the sender learns it was not delivered, so it is not
-- in the recipient's archive either. The archiver stamped the id it gave
-- the copy it archived as the <stanza-id/> by the recipient's bare JID.
local function unarchive_bounced(event)
	local stanza, username = event.stanza, event.username
	if not (stanza and username) then
		return nil
	end
	local bare = username .. "@" .. (event.host or module.host)
	for sid in stanza:childtags("stanza-id", NS_SID) do
		if sid.attr.by == bare and sid.attr.id then
			local n, err = archive:delete(username, { ids = { sid.attr.id } })
			if not n then
				module:log("error", "cannot remove a bounced message from the archive of %s: %s",
					bare, err)
			end
		end
	end
	return nil
end

for _, feature in ipairs({ NS, NS_EXTENDED, NS_SID }) do
	module:add_item("account-feature", feature)
end

for _, to in ipairs({ "full", "bare", "self" }) do
	module:hook("message/" .. to, incoming, 2)
end
for _, to in ipairs({ "full", "bare", "host" }) do
	module:hook("pre-message/" .. to, outgoing, 2)
end
if quota_on then
	-- Behind C gates (core.gate): an append that leaves a known usage
	-- within the limits passes without entering Lua.
	local gated_incoming = core.gate(after_incoming, "quota", "to", archive, limits)
	local gated_outgoing = core.gate(after_outgoing, "quota", "origin", archive, limits)
	for _, to in ipairs({ "full", "bare", "self" }) do
		module:hook("message/" .. to, gated_incoming, 1)
	end
	for _, to in ipairs({ "full", "bare", "host" }) do
		module:hook("pre-message/" .. to, gated_outgoing, 1)
	end
end
module:hook("iq-set/self/" .. NS .. ":query", handle_query)
module:hook("iq-get/self/" .. NS .. ":query", handle_form)
module:hook("iq-get/self/" .. NS .. ":metadata", budget:wrap(1, handle_metadata))
module:hook("iq-get/self/" .. NS .. ":prefs", budget:wrap(1, handle_prefs_get))
module:hook("iq-set/self/" .. NS .. ":prefs", budget:wrap(2, handle_prefs_set))
for _, what in ipairs({ "iq-set/bare/" .. NS .. ":query", "iq-get/bare/" .. NS .. ":query",
		"iq-get/bare/" .. NS .. ":metadata", "iq-get/bare/" .. NS .. ":prefs",
		"iq-set/bare/" .. NS .. ":prefs" }) do
	module:hook(what, forbidden)
end
module:hook("resource-bind", quota_at_login)
module:hook("message/offline/handle", unarchive_bounced, -1000)
module:hook("message/offline/bounced", unarchive_bounced)
module:hook("user-deleted", forget)
module:hook("mam/forget", forget_here)
module:hook("user-created", forget)
module:hook("user-registered", forget)
