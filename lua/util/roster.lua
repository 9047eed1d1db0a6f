-- util.roster: rosters (RFC 6121 section 2) as the "roster" map store of a
-- host keeps them, one record per contact, so that a change writes only
-- the item that changed and a small record of the roster's version:
--
--   key "@meta" (never a JID: a JID has no empty localpart)
--     { version = 7,          -- bumped by every change (roster versioning)
--       epoch = "5f0c9a1e",   -- random, made with the first versioned
--                             -- change: tells this roster's versions from
--                             -- those of an earlier account of that name
--       floor = 3,            -- the oldest version changes_since() can
--                             -- still answer for
--       count = 12,           -- the number of items
--       removals = 4 }        -- at least the number of removal records
--   key "juliet@example.com" (a contact's bare JID), an item:
--     { name = "Juliet",        -- or nil
--       subscription = "both",  -- "none" | "to" | "from" | "both"
--       ask = "subscribe",      -- or nil: a subscription request is pending out
--       approved = true,        -- or nil: subscription pre-approved (3.4)
--       groups = { "Friends" }, -- each group once
--       ver = 7 }               -- the version that last changed the item
--   or a removal record { removed = 6 } (the version of the removal)
--
-- Before, the whole roster was one value of the keyval store "roster"
-- ({ version, epoch, floor, items = { jid = item }, removed = { jid = ver } });
-- migrate() moves such a value into the map, and until it is moved every
-- read finds it there.
--
--   open(opener)                  the roster stores of a host: opener is a
--                                 module (its open_store) or a function
--                                 (name, kind) -> store; returns a handle
--                                 rs with rs:users() and the calls below
--   migrate(rs, username)         moves a keyval roster into the map:
--                                 true, or nil, err
--   migrate_all(rs, log)          migrate() for every user with a keyval
--                                 roster: the number moved
--   load(rs, username)            the roster, or nil, err. Items are read
--                                 when first looked at (roster.items[jid]),
--                                 all of them when iterated (pairs)
--   set_item(rs, username, roster, jid, item)
--                                 puts item (nil: removes jid), bumps the
--                                 version and writes that item and the
--                                 version record: true, or nil, err
--   save(rs, username, roster)    stores a roster changed in any other way
--                                 (bumps the version; older versions then
--                                 get the whole roster): true, or nil, err
--   replace(rs, username, roster) stores a plain roster (import) as it is
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

local type, pairs, ipairs, next, tostring, tonumber = type, pairs, ipairs, next, tostring, tonumber
local setmetatable, rawget = setmetatable, rawget
local sort = table.sort
local format, match, random = string.format, string.match, math.random

local M = {}

local META = "@meta"

-- Removal records kept for changes_since(); past twice as many, the
-- oldest go and raise the floor.
local MAX_REMOVED = 256

-- --- the stores ------------------------------------------------------------

function M.open(opener)
	local function open(name, kind)
		if type(opener) == "function" then
			return opener(name, kind)
		end
		return opener:open_store(name, kind)
	end
	local rs = { map = open("roster", "map"), old = open("roster", "keyval") }
	function rs.users(self)
		local seen, list = {}, {}
		for _, s in ipairs({ self.map, self.old }) do
			local each = s:users()
			for u in each do
				if not seen[u] then
					seen[u], list[#list + 1] = true, u
				end
			end
		end
		local i = 0
		return function()
			i = i + 1
			return list[i]
		end
	end
	return rs
end

local function is_removal(value)
	return type(value) == "table" and value.removed ~= nil
end

-- A keyval roster of before as map records.
local function records_of(old)
	local records, count, removals = {}, 0, 0
	for contact, item in pairs(type(old.items) == "table" and old.items or {}) do
		if type(contact) == "string" and type(item) == "table" then
			records[contact] = item
			count = count + 1
		end
	end
	for contact, ver in pairs(type(old.removed) == "table" and old.removed or {}) do
		if type(contact) == "string" and not records[contact] then
			records[contact] = { removed = ver }
			removals = removals + 1
		end
	end
	records[META] = {
		version = old.version or 0, epoch = old.epoch, floor = old.floor,
		count = count, removals = removals,
	}
	return records
end

local function old_roster(rs, username)
	local value, err = rs.old:get(username)
	if value == nil then
		return nil, err
	end
	if type(value) ~= "table" or type(value.items) ~= "table" then
		return nil, "stored roster of '" .. tostring(username) .. "' is not a roster"
	end
	return value
end

-- Writes the records into the map store, then drops the old-format roster
-- (the map is complete before the old copy goes).
local function write_records(rs, username, records)
	local ok, err = rs.map:set_keys(username, records)
	if ok then
		ok, err = rs.old:set(username, nil)
	end
	if not ok then
		return nil, err
	end
	return true
end

function M.migrate(rs, username)
	local old, err = old_roster(rs, username)
	if not old then
		return err == nil or nil, err
	end
	return write_records(rs, username, records_of(old))
end

function M.migrate_all(rs, log)
	local users = {}
	for u in rs.old:users() do
		users[#users + 1] = u
	end
	local moved = 0
	for _, u in ipairs(users) do
		local ok, err = M.migrate(rs, u)
		if ok then
			moved = moved + 1
		elseif log then
			log("error", "cannot move the roster of %s to the map store: %s", u, err)
		end
	end
	return moved
end

-- --- rosters in memory -----------------------------------------------------

-- Reads every record of the roster into its cache: items (what was set
-- since loading stays) and removals.
local function load_all(roster)
	local cache = roster._cache
	if roster._complete then
		return true
	end
	local all, err = roster._rs.map:get(roster._username)
	if not all then
		return nil, err
	end
	local removed = {}
	for key, value in pairs(all) do
		if key ~= META then
			if is_removal(value) then
				removed[key] = value.removed
			elseif cache[key] == nil and type(value) == "table" then
				cache[key] = value
			end
		end
	end
	roster.removed = removed
	roster._complete = true
	return true
end

local function items_proxy(roster)
	local cache = roster._cache
	return setmetatable({}, {
		__index = function(_, contact)
			local v = cache[contact]
			if v == nil and not roster._complete and type(contact) == "string"
			   and contact ~= META then
				local value = roster._rs.map:get(roster._username, contact)
				v = type(value) == "table" and not is_removal(value) and value or false
				cache[contact] = v
			end
			return v or nil
		end,
		__newindex = function(_, contact, item)
			cache[contact] = item or false
		end,
		__pairs = function()
			local ok, err = load_all(roster)
			if not ok then
				error("cannot read the roster of " .. tostring(roster._username) .. ": " .. tostring(err))
			end
			local function step(_, k)
				local v
				repeat
					k, v = next(cache, k)
				until k == nil or v
				return k, v
			end
			return step, nil, nil
		end,
	})
end

local function new_roster(rs, username, meta)
	local roster = {
		version = meta.version or 0, epoch = meta.epoch, floor = meta.floor,
		count = meta.count or 0, removals = meta.removals or 0,
		_rs = rs, _username = username, _cache = {}, _complete = false,
	}
	roster.items = items_proxy(roster)
	return roster
end

-- A keyval roster not yet moved, read as it would be once moved.
local function roster_from_old(rs, username, old)
	local records = records_of(old)
	local roster = new_roster(rs, username, records[META])
	roster.removed = {}
	for key, value in pairs(records) do
		if key ~= META then
			if is_removal(value) then
				roster.removed[key] = value.removed
			else
				roster._cache[key] = value
			end
		end
	end
	roster._complete = true
	roster._unmoved = true
	return roster
end

function M.new(rs, username)
	local roster = new_roster(rs, username, {})
	roster.removed = {}
	return roster
end

function M.load(rs, username)
	local meta, err = rs.map:get(username, META)
	if meta == nil then
		if err then
			return nil, err
		end
		local old
		old, err = old_roster(rs, username)
		if old then
			return roster_from_old(rs, username, old)
		elseif err then
			return nil, err
		end
		local roster = M.new(rs, username)
		roster._complete = true
		return roster
	end
	if type(meta) ~= "table" then
		return nil, "stored roster of '" .. tostring(username) .. "' is not a roster"
	end
	return new_roster(rs, username, meta)
end

-- --- changes ---------------------------------------------------------------

local function meta_of(roster)
	return {
		version = roster.version, epoch = roster.epoch, floor = roster.floor,
		count = roster.count, removals = roster.removals,
	}
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

-- Past 2 * MAX_REMOVED removal records, the oldest go (down to
-- MAX_REMOVED) and the floor rises to the newest of those that went.
local function prune_removals(rs, username, roster, records)
	if roster.removals <= 2 * MAX_REMOVED then
		return true
	end
	local all, err = rs.map:get(username)
	if not all then
		return nil, err
	end
	local list = {}
	for key, value in pairs(all) do
		if key ~= META and is_removal(value) and records[key] == nil then
			list[#list + 1] = { jid = key, ver = value.removed }
		end
	end
	for key, value in pairs(records) do
		if is_removal(value) then
			list[#list + 1] = { jid = key, ver = value.removed }
		end
	end
	sort(list, function(a, b) return a.ver < b.ver end)
	local drop = #list - MAX_REMOVED
	for i = 1, drop do
		local ok
		ok, err = rs.map:set(username, list[i].jid, nil)
		if not ok then
			return nil, err
		end
		records[list[i].jid] = nil
		if roster.removed then
			roster.removed[list[i].jid] = nil
		end
		if list[i].ver > (roster.floor or 0) then
			roster.floor = list[i].ver
		end
	end
	roster.removals = #list - (drop > 0 and drop or 0)
	return true
end

function M.set_item(rs, username, roster, contact, item)
	if roster._unmoved then
		local ok, err = M.migrate(rs, username)
		if not ok then
			return nil, err
		end
		roster._unmoved = nil
	end
	local existed = roster.items[contact] ~= nil
	local version = bump(roster)
	local records = {}
	if item then
		item.ver = version
		records[contact] = item
		roster.count = roster.count + (existed and 0 or 1)
		if roster.removed then
			roster.removed[contact] = nil
		end
	else
		records[contact] = { removed = version }
		roster.count = roster.count - (existed and 1 or 0)
		roster.removals = roster.removals + 1
		if roster.removed then
			roster.removed[contact] = version
		end
	end
	roster._cache[contact] = item or false
	local ok, err = prune_removals(rs, username, roster, records)
	if not ok then
		return nil, err
	end
	records[META] = meta_of(roster)
	ok, err = rs.map:set_keys(username, records)
	if not ok then
		return nil, err
	end
	return true
end

-- Writes every record of a complete roster, and deletes the user's
-- records that are not in it.
local function write_all(rs, username, items, removed, meta)
	local existing, err = rs.map:get(username)
	if not existing then
		return nil, err
	end
	local ok
	for key in pairs(existing) do
		if key ~= META and not items[key] and not (removed and removed[key]) then
			ok, err = rs.map:set(username, key, nil)
			if not ok then
				return nil, err
			end
		end
	end
	local records, count, removals = {}, 0, 0
	for contact, item in pairs(items) do
		records[contact], count = item, count + 1
	end
	for contact, ver in pairs(removed or {}) do
		if not records[contact] then
			records[contact], removals = { removed = ver }, removals + 1
		end
	end
	meta.count, meta.removals = count, removals
	records[META] = meta
	return write_records(rs, username, records)
end

function M.save(rs, username, roster)
	local ok, err = load_all(roster)
	if not ok then
		return nil, err
	end
	roster.floor = bump(roster)
	local items = {}
	for contact, item in pairs(roster.items) do
		items[contact] = item
	end
	ok, err = write_all(rs, username, items, nil, meta_of(roster))
	if not ok then
		return nil, err
	end
	roster.removed, roster._unmoved = {}, nil
	roster.count = 0
	for _ in pairs(items) do
		roster.count = roster.count + 1
	end
	return true
end

function M.replace(rs, username, plain)
	return write_all(rs, username, plain.items or {}, plain.removed, {
		version = plain.version or 0, epoch = plain.epoch, floor = plain.floor,
	})
end

-- --- reading ---------------------------------------------------------------

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
	if not load_all(roster) then
		return nil
	end
	local list = {}
	for contact, item in pairs(roster.items) do
		if (item.ver or 0) > n then
			list[#list + 1] = { jid = contact, item = item, ver = item.ver }
		end
	end
	for contact, v in pairs(roster.removed or {}) do
		if v > n then
			list[#list + 1] = { jid = contact, ver = v }
		end
	end
	sort(list, by_version)
	return list
end

function M.add_item_xml(stanza, contact, item)
	stanza:tag("item", {
		jid = contact,
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
	for contact in pairs(roster.items) do
		list[#list + 1] = contact
	end
	sort(list)
	return list
end

function M.count(roster)
	local n = rawget(roster, "count")
	if n then
		return n
	end
	n = 0
	for _ in pairs(roster.items) do
		n = n + 1
	end
	return n
end

function M.is_subscribed(roster, contact)
	local item = roster.items[contact]
	return item ~= nil and (item.subscription == "from" or item.subscription == "both")
end

function M.is_subscribed_to(roster, contact)
	local item = roster.items[contact]
	return item ~= nil and (item.subscription == "to" or item.subscription == "both")
end

return M
