-- util.roster: rosters (RFC 6121 section 2) as the "roster" keyval store
-- of a host keeps them, one value per account:
--
--   { version = 7,               -- bumped by every change (roster versioning)
--     items = {
--       ["juliet@example.com"] = {
--         name = "Juliet",        -- or nil
--         subscription = "both",  -- "none" | "to" | "from" | "both"
--         ask = "subscribe",      -- or nil: a subscription request is pending out
--         groups = { "Friends" }, -- each group once
--       },
--     } }
--
--   load(store, username)         the roster (a new empty one when none is
--                                 stored), or nil, err
--   save(store, username, roster) bumps roster.version and stores it:
--                                 true, or nil, err
--   add_item_xml(st, jid, item)   adds <item/> with its <group/>s at the
--                                 builder cursor of stanza st
--   jids(roster)                  the item JIDs, sorted
--   count(roster)                 the number of items
--   is_subscribed(roster, jid)    jid receives the user's presence
--                                 (subscription "from" or "both")
--   is_subscribed_to(roster, jid) the user receives jid's presence
--                                 ("to" or "both")

local type, pairs, ipairs, tostring = type, pairs, ipairs, tostring
local sort = table.sort

local M = {}

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

function M.save(store, username, roster)
	roster.version = (roster.version or 0) + 1
	local ok, err = store:set(username, roster)
	if not ok then
		return nil, err
	end
	return true
end

function M.add_item_xml(stanza, jid, item)
	stanza:tag("item", {
		jid = jid,
		name = item.name,
		subscription = item.subscription or "none",
		ask = item.ask,
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
