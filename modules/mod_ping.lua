-- mod_ping: answers XEP-0199 pings addressed to the server (and pings
-- with no 'to', which a client's server handles). docs/modules/ping.md.

local st = require "util.stanza"

local function pong(event)
	local reply = st.reply(event.stanza)
	if event.origin then
		event.origin:send(reply)
	else
		module:send(reply)
	end
	return true
end

module:add_feature("urn:xmpp:ping")

module:hook("iq-get/host/urn:xmpp:ping:ping", pong)
module:hook("iq-get/self/urn:xmpp:ping:ping", pong)
