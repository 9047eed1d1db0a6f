-- core.rostermanager: Prosody's roster functions over Starling's roster
-- store (util.roster, the "roster" map store of each host).
--
--   is_contact_subscribed(username, host, jid)  jid receives the user's
--                                               presence (from/both)
--   is_user_subscribed(username, host, jid)     the user receives jid's
--                                               presence (to/both)
--   is_contact_pending_out(username, host, jid)  the user asked to subscribe
--   load_roster(username, host)  --> { [jid] = { subscription, name,
--                                      groups = set, ask } }
--   get_subscription(username, host, jid)  --> "none" | "to" | "from" | "both"

local roster_lib = require "util.roster"
local storage = require "starling.store"

local M = {}

local stores = {}

local function rs_of(host)
	local rs = stores[host]
	if not rs then
		rs = roster_lib.open(function(name, kind)
			local s, err = storage.open(host, name, kind)
			if not s then
				error("cannot open the roster of " .. host .. ": " .. tostring(err), 0)
			end
			return s
		end)
		stores[host] = rs
	end
	return rs
end

local function item_of(username, host, jid)
	if not username or not host or not jid then
		return nil
	end
	local roster = roster_lib.load(rs_of(host), username)
	return roster and roster.items[jid], roster
end

function M.load_roster(username, host)
	local roster = roster_lib.load(rs_of(host), username)
	local out = {}
	if roster then
		for _, jid in ipairs(roster_lib.jids(roster)) do
			local item = roster.items[jid]
			local groups = {}
			for _, g in ipairs(item.groups or {}) do
				groups[g] = true
			end
			out[jid] = { subscription = item.subscription or "none", name = item.name,
				groups = groups, ask = item.ask }
		end
	end
	return out
end

function M.get_subscription(username, host, jid)
	local item = item_of(username, host, jid)
	return item and item.subscription or "none"
end

function M.is_contact_subscribed(username, host, jid)
	local s = M.get_subscription(username, host, jid)
	return s == "from" or s == "both"
end

function M.is_user_subscribed(username, host, jid)
	local s = M.get_subscription(username, host, jid)
	return s == "to" or s == "both"
end

function M.is_contact_pending_out(username, host, jid)
	local item = item_of(username, host, jid)
	return item ~= nil and item.ask == "subscribe"
end

return M
