-- util.roster: rosters (RFC 6121 section 2) as the "roster" keyval store
-- of a host keeps them, one value per account:
--
--   { version = 7,               -- bumped by every change (roster versioning)
--     epoch = "5f0c9a1e",        -- random, made with the first versioned
--                                -- change: tells this roster's versions from
--                                -- those of an earlier account of that name
--     floor = 3,                 -- the oldest version changes_since() can
--                                -- still answer for
--     items = {
--       ["juliet@example.com"] = {
--         name = "Juliet",        -- or nil
--         subscription = "both",  -- "none" | "to" | "from" | "both"
--         ask = "subscribe",      -- or nil: a subscription request is pending out
--         approved = true,        -- or nil: subscription pre-approved (3.4)
--         groups = { "Friends" }, -- each group once
--         ver = 7,                -- the version that last changed the item
--       },
--     },
--     removed = { ["nurse@example.com"] = 6 },  -- version of each removal
--   }
--
--   load(store, username)         the roster (a new empty one when none is
--                                 stored), or nil, err
--   set_item(store, username, roster, jid, item)
--                                 puts item (nil: removes jid), bumps the
--                                 version and stores: true, or nil, err
--   save(store, username, roster) stores a roster changed in any other way
--                                 (bumps the version; older versions then
--                                 get the whole roster): true, or nil, err
--   ver(roster)                   the version string of 'ver' attributes
--   changes_since(roster, ver)    the changes after version string ver, in
--                                 order: a list of { jid =, item = (nil when
--                                 removed), ver = }; nil when ver is not a
--                                 version of this roster that is still known
--   add_item_xml(st, jid, item)   adds <item/> with its <group/>s at the
--                                 builder cursor of stanza st
--   jids(roster)                  the item JIDs, sorted
--   count(roster)                 the number of items
--   is_subscribed(roster, jid)    jid receives the user's presence
--                                 (subscription "from" or "both")
--   is_subscribed_to(roster, jid) the user receives jid's presence
--                                 ("to" or "both")

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local sort = table.sort
local format, match, random = string.format, string.match, math.random

local M = {}

-- Removals remembered for changes_since(); older ones raise the floor.
local MAX_REMOVED = 256

function M.new()
	return { version = 0, items = {} }
end

function M.load(store, username)
	local value, err = store:get(username)
	if value == nil then
		if err then
			return nil, err
		end
		return M.new()
	end
	if type(value) ~= "table" or type(value.items) ~= "table" then
		return nil, "stored roster of '" .. tostring(username) .. "' is not a roster"
	end
	value.version = value.version or 0
	return value
end

-- The next version; a roster without an epoch gets one, and no version
-- before it can be diffed.
local function bump(roster)
	roster.version = (roster.version or 0) + 1
	if not roster.epoch then
		roster.epoch = format("%08x", random(0, 0x7fffffff))
		roster.floor = roster.version
	end
	return roster.version
end

local function forget_oldest_removal(roster)
	local oldest_jid, oldest
	local n = 0
	for jid, ver in pairs(roster.removed) do
		n = n + 1
		if not oldest or ver < oldest then
			oldest_jid, oldest = jid, ver
		end
	end
	if n > MAX_REMOVED then
		roster.removed[oldest_jid] = nil
		if oldest > (roster.floor or 0) then
			roster.floor = oldest
		end
	end
end

function M.set_item(store, username, roster, jid, item)
	local version = bump(roster)
	roster.removed = roster.removed or {}
	if item then
		item.ver = version
		roster.items[jid] = item
		roster.removed[jid] = nil
	else
		roster.items[jid] = nil
		roster.removed[jid] = version
		forget_oldest_removal(roster)
	end
	local ok, err = store:set(username, roster)
	if not ok then
		return nil, err
	end
	return true
end

function M.save(store, username, roster)
	roster.floor = bump(roster)
	local ok, err = store:set(username, roster)
	if not ok then
		return nil, err
	end
	return true
end

function M.ver(roster)
	return format("%s-%d", roster.epoch or "0", roster.version or 0)
end

local function by_version(a, b)
	if a.ver ~= b.ver then
		return a.ver < b.ver
	end
	return a.jid < b.jid
end

function M.changes_since(roster, ver)
	local epoch, n = match(ver or "", "^(%x+)%-(%d+)$")
	n = tonumber(n)
	if not epoch or epoch ~= roster.epoch or n > roster.version or n < (roster.floor or 0) then
		return nil
	end
	local list = {}
	for jid, item in pairs(roster.items) do
		if (item.ver or 0) > n then
			list[#list + 1] = { jid = jid, item = item, ver = item.ver }
		end
	end
	for jid, v in pairs(roster.removed or {}) do
		if v > n then
			list[#list + 1] = { jid = jid, ver = v }
		end
	end
	sort(list, by_version)
	return list
end

function M.add_item_xml(stanza, jid, item)
	stanza:tag("item", {
		jid = jid,
		name = item.name,
		subscription = item.subscription or "none",
		ask = item.ask,
		approved = item.approved and "true" or nil,
	})
	for _, group in ipairs(item.groups or {}) do
		stanza:tag("group"):text(group):up()
	end
	return stanza:up()
end

function M.jids(roster)
	local list = {}
	for jid in pairs(roster.items) do
		list[#list + 1] = jid
	end
	sort(list)
	return list
end

function M.count(roster)
	local n = 0
	for _ in pairs(roster.items) do
		n = n + 1
	end
	return n
end

function M.is_subscribed(roster, jid)
	local item = roster.items[jid]
	return item ~= nil and (item.subscription == "from" or item.subscription == "both")
end

function M.is_subscribed_to(roster, jid)
	local item = roster.items[jid]
	return item ~= nil and (item.subscription == "to" or item.subscription == "both")
end

return M
