-- mod_offline: offline messages (XEP-0160; docs/modules/offline.md).
--
-- A normal or chat message that finds no available resource (mod_message
-- fires "message/offline/handle") is stored, stamped with a XEP-0203
-- <delay/>, in the host's "offline" map store: per account, keys "m" and a
-- zero-padded sequence number (so they sort in arrival order) hold the
-- stanzas, and the key "meta" holds { next = n, count = c }. Appending is
-- one write of two keys. The messages go, in order, to the first resource
-- that sends available presence with a non-negative priority, and are
-- deleted once they are queued to it (the store commits before any of them
-- is written to the socket).

local datetime = require "util.datetime"
local st = require "util.stanza"

local format, sort = string.format, table.sort

local NS_DELAY = "urn:xmpp:delay"
local NS_HINTS = "urn:xmpp:hints"
local NS_CHATSTATES = "http://jabber.org/protocol/chatstates"

local max_messages = module:get_option_integer("offline_max_messages", 500, 1)

local store = module:open_store("offline", "map")

local META = "meta"

local function message_key(seq)
	return format("m%015d", seq)
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

local function bounce(event, text)
	local err = st.error_reply(event.stanza, "cancel", "service-unavailable", text)
	module:reply(event, err)
	return true
end

local function handle_offline(event)
	local stanza, username = event.stanza, event.username
	local what = disposition(stanza)
	if what ~= "store" then
		return what == "drop" or nil
	end
	local meta = store:get(username, META) or { next = 1, count = 0 }
	if meta.count >= max_messages then
		return bounce(event, "the recipient's offline message storage is full")
	end
	local copy = stanza:clone()
	copy:tag("delay", { xmlns = NS_DELAY, from = module.host, stamp = datetime.datetime() })
		:text("Offline Storage"):up()
	local ok, err = store:set_keys(username, {
		[message_key(meta.next)] = copy,
		[META] = { next = meta.next + 1, count = meta.count + 1 },
	})
	if not ok then
		module:log("error", "cannot store an offline message for %s: %s", username, err)
		return nil
	end
	return true
end

-- XEP-0160 section 2: delivered to the resource that sends non-negative
-- available presence, then removed.
local function deliver(event)
	local origin = event.origin
	if (origin.priority or 0) < 0 or not store:get(origin.username, META) then
		return nil
	end
	local all = store:get(origin.username) or {}
	local keys = {}
	for key in pairs(all) do
		if key ~= META then
			keys[#keys + 1] = key
		end
	end
	sort(keys)
	local sent = 0
	for _, key in ipairs(keys) do
		if not origin:send(all[key]) then
			break
		end
		store:set(origin.username, key, nil)
		sent = sent + 1
	end
	local meta = all[META]
	if sent == #keys then
		store:set(origin.username, META, nil)
	else
		store:set(origin.username, META, { next = meta.next, count = #keys - sent })
	end
	return nil
end

module:add_feature("msgoffline")

module:hook("message/offline/handle", handle_offline)
module:hook("presence/available", deliver)
