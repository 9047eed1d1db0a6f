-- mod_csi: Client State Indication (XEP-0352).
--
-- While a client says it is inactive (a phone in a pocket), the core holds
-- back what this module calls unimportant: presence is held with only the
-- newest per sender kept, chat states are dropped, other messages without
-- content wait. A message that matters (a body, an encrypted payload, a
-- call) sends everything held at once, in order, then itself; going active
-- does the same. Held bytes are capped by csi_max_held_bytes (core option).

local csi = require "starling.csi"

local NS = "urn:xmpp:csi:0"

-- Payloads that make a message worth waking the device for.
local important = module:get_option_set("csi_important_payloads", {
	"eu.siacs.conversations.axolotl", -- OMEMO (legacy)
	"urn:xmpp:omemo:2",
	"urn:xmpp:jingle-message:0",       -- call invitations
	"jabber:x:conference",             -- MUC invitations
	"http://jabber.org/protocol/muc#user",
})

-- The core's hold queue (core/features/csi.c) sorts each stanza by this
-- policy: what it holds, drops or lets through is said at the top.
local function list(set)
	local t = {}
	for item in set:items() do
		t[#t + 1] = item
	end
	table.sort(t)
	return t
end
local policy = csi.policy(list(important))

local function advertise(event)
	if event.origin.authenticated then
		event.features:tag("csi", { xmlns = NS }):up()
	end
end

module:hook("stream-features", advertise)
-- Other modules hear the change as Prosody's mod_csi tells it:
-- "csi-client-inactive" / "csi-client-active" with { origin = session },
-- after the core's hold queue changed; session.state says which.
module:hook("stream-element/" .. NS .. ":inactive", function(event)
	local session = event.origin
	session:set_inactive(true, policy)
	session.state = "inactive"
	module:fire_event("csi-client-inactive", { origin = session })
	return true
end)
module:hook("stream-element/" .. NS .. ":active", function(event)
	local session = event.origin
	session:set_inactive(false)
	session.state = "active"
	module:fire_event("csi-client-active", { origin = session })
	return true
end)

-- Bind2 (XEP-0386): the session starts in the state the client asks for.
module:hook("advertise-bind-features", function(event)
	event.features:tag("feature", { var = NS }):up()
end)
module:hook("enable-bind-features", function(event)
	if event.stanza:get_child("inactive", NS) then
		event.session:set_inactive(true, policy)
	elseif event.stanza:get_child("active", NS) then
		event.session:set_inactive(false)
	end
end)
