-- mod_offline: offline messages (XEP-0160; docs/modules/offline.md).
--
-- A normal or chat message that finds no available resource (mod_message
-- fires "message/offline/handle") is stored, stamped with a XEP-0203
-- <delay/>, in the host's "offline" archive store: one item per message,
-- in arrival order, its with the sender's bare JID. The messages go, in
-- order, to the first resource that sends available presence with a
-- non-negative priority, and are deleted once they are queued to it (the
-- store commits before any of them is written to the socket).
--
-- Before, the messages were in the map store "offline" ("m%015d" keys and
-- "meta"); whatever is left there is moved into the archive, in order,
-- when the module loads.

local datetime = require "util.datetime"
local jid = require "util.jid"
local st = require "util.stanza"

local sort = table.sort

local NS_DELAY = "urn:xmpp:delay"
local NS_HINTS = "urn:xmpp:hints"
local NS_CHATSTATES = "http://jabber.org/protocol/chatstates"

local max_messages = module:get_option_integer("offline_max_messages", 500, 1)

local store = module:open_store("offline", "archive")

-- The map store of before: moved over (oldest first) and emptied. A user
-- whose messages cannot all be moved keeps the rest there for next time.
local function migrate()
	local old = module:open_store("offline", "map")
	local each, err = old:users()
	if not each then
		module:log("error", "cannot look for offline messages to move: %s", err)
		return
	end
	local users = {}
	for user in each do
		users[#users + 1] = user
	end
	for _, user in ipairs(users) do
		local all = old:get(user) or {}
		local keys = {}
		for key, message in pairs(all) do
			if key ~= "meta" and st.is_stanza(message) then
				keys[#keys + 1] = key
			end
		end
		sort(keys)
		for _, key in ipairs(keys) do
			local message = all[key]
			local ok, why = store:append(user, nil, message, nil, jid.bare(message.attr.from))
			if not ok then
				module:log("error", "offline messages of %s not moved: %s", user, why)
				return
			end
			old:set(user, key, nil)
		end
		old:set(user, "meta", nil)
		module:log("info", "moved %d offline messages of %s to the archive store", #keys, user)
	end
end

-- Children that carry no content of their own: a message with nothing
-- but chat states and these is not worth keeping (XEP-0160 section 3).
local CONTENTLESS = {
	[NS_CHATSTATES] = true,
	[NS_HINTS] = true,
	["urn:xmpp:sid:0"] = true,
}

local function only_chat_states(stanza)
	local states = false
	for child in stanza:children() do
		if type(child) ~= "string" then
			local ns = child.attr.xmlns
			if ns == NS_CHATSTATES then
				states = true
			elseif not (CONTENTLESS[ns] or child.name == "thread") then
				return false
			end
		end
	end
	return states
end

-- What to do with a message for an offline account: "store", "drop" (no
-- error), or "refuse" (mod_message answers service-unavailable).
local function disposition(stanza)
	local t = stanza.attr.type
	if t == "groupchat" or t == "headline" or t == "error" then
		return "refuse"
	end
	if stanza:get_child("no-store", NS_HINTS) then
		return "refuse" -- XEP-0334: not even for later delivery
	end
	if only_chat_states(stanza) and not stanza:get_child("store", NS_HINTS) then
		return "drop"
	end
	return "store"
end

-- The message goes back to its sender with err: it was not kept, so no
-- archive may keep it as delivered either (mod_mam listens).
local function bounce(event, err)
	module:fire_event("message/offline/bounced", {
		username = event.username, host = event.host, stanza = event.stanza,
	})
	module:reply(event, err)
	return true
end

local function handle_offline(event)
	local stanza, username = event.stanza, event.username
	local what = disposition(stanza)
	if what ~= "store" then
		return what == "drop" or nil
	end
	local items, count = store:find(username, { limit = 0, total = true })
	if not items then
		module:log("error", "cannot count the offline messages of %s: %s", username, count)
		return nil
	end
	if count >= max_messages then
		return bounce(event, st.error_reply(stanza, "cancel", "service-unavailable",
			"the recipient's offline message storage is full"))
	end
	local copy = stanza:clone()
	copy:tag("delay", { xmlns = NS_DELAY, from = module.host, stamp = datetime.datetime() })
		:text("Offline Storage"):up()
	local ok, err = store:append(username, nil, copy, nil, jid.bare(stanza.attr.from))
	if not ok then
		-- the sender learns it was not kept (RFC 6120 8.3.3.18), rather
		-- than believing it will be delivered
		module:log_store_error(err, "cannot store an offline message for %s", username)
		return bounce(event, st.store_error_reply(stanza, err))
	end
	return true
end

-- XEP-0160 section 2: delivered to the resource that sends non-negative
-- available presence, then removed.
local function deliver(event)
	local origin = event.origin
	if (origin.priority or 0) < 0 then
		return nil
	end
	local items, err = store:find(origin.username)
	if not items then
		module:log("error", "cannot read the offline messages of %s: %s", origin.username, err)
		return nil
	end
	local sent, all = {}, true
	for id, message in items do
		if not origin:send(message) then
			all = false
			break
		end
		sent[#sent + 1] = id
	end
	if all then
		store:delete(origin.username)
	elseif #sent > 0 then
		store:delete(origin.username, { ids = sent })
	end
	return nil
end

migrate()

module:add_feature("msgoffline")

module:hook("message/offline/handle", handle_offline)
module:hook("presence/available", deliver)
