-- mod_csi: Client State Indication (XEP-0352).
--
-- While a client says it is inactive (a phone in a pocket), the core holds
-- back what this module calls unimportant: presence is held with only the
-- newest per sender kept, chat states are dropped, other messages without
-- content wait. A message that matters (a body, an encrypted payload, a
-- call) sends everything held at once, in order, then itself; going active
-- does the same. Held bytes are capped by csi_max_held_bytes (core option).

local st = require "util.stanza"

local NS = "urn:xmpp:csi:0"

local NS_CHATSTATES = "http://jabber.org/protocol/chatstates"
local NS_CARBONS = "urn:xmpp:carbons:2"
local NS_FORWARD = "urn:xmpp:forward:0"

-- Payloads that make a message worth waking the device for.
local important = module:get_option_set("csi_important_payloads", {
	"eu.siacs.conversations.axolotl", -- OMEMO (legacy)
	"urn:xmpp:omemo:2",
	"urn:xmpp:jingle-message:0",       -- call invitations
	"jabber:x:conference",             -- MUC invitations
	"http://jabber.org/protocol/muc#user",
})

local function inner_message(stanza)
	-- A carbon copy (XEP-0280) carries the real message inside.
	for _, wrapper in ipairs({ "received", "sent" }) do
		local c = stanza:get_child(wrapper, NS_CARBONS)
		if c then
			local fwd = c:get_child("forwarded", NS_FORWARD)
			return fwd and fwd:get_child("message", "jabber:client") or stanza
		end
	end
	return stanza
end

local function matters(message)
	if message:get_child("body") or message:get_child("subject") then
		return true
	end
	for child in st.elements(message) do
		if important:contains(child.attr.xmlns) then
			return true
		end
	end
	return false
end

local function only_chat_state(message)
	local any = false
	for child in st.elements(message) do
		if child.attr.xmlns ~= NS_CHATSTATES then
			return false
		end
		any = true
	end
	return any
end

local function classify(event)
	local stanza = event.stanza
	if stanza.name == "presence" then
		local t = stanza.attr.type
		if t == "subscribe" or t == "subscribed" or t == "unsubscribe"
				or t == "unsubscribed" or t == "error" then
			return "flush"
		end
		return "hold:" .. (stanza.attr.from or "")
	elseif stanza.name == "message" then
		local m = inner_message(stanza)
		if stanza.attr.type == "error" then
			return "flush"
		end
		if m.attr.type == "groupchat" then
			return matters(m) and "hold" or "drop"
		end
		if matters(m) then
			return "flush"
		end
		if only_chat_state(m) then
			return "drop"
		end
		return "hold"
	end
	return "send" -- iq: someone is waiting for an answer
end

local function advertise(event)
	if event.origin.authenticated then
		event.features:tag("csi", { xmlns = NS }):up()
	end
end

module:hook("stream-features", advertise)
module:hook("stream-element/" .. NS .. ":inactive", function(event)
	event.origin:set_inactive(true)
	return true
end)
module:hook("stream-element/" .. NS .. ":active", function(event)
	event.origin:set_inactive(false)
	return true
end)
module:hook("csi-outgoing", classify)
