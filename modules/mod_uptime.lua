-- mod_uptime: XEP-0012 Last Activity of the server itself: a
-- jabber:iq:last query to the host's domain is answered with the number
-- of seconds the server has been running (docs/modules/uptime.md).
-- Queries to accounts are mod_lastactivity's.

local core = require "starling.core"
local st = require "util.stanza"

local NS = "jabber:iq:last"

local function handle_uptime(event)
	local seconds = math.floor(core.uptime())
	local reply = st.reply(event.stanza):tag("query", { xmlns = NS, seconds = tostring(seconds) })
	module:reply(event, reply)
	return true
end

module:add_feature(NS)

module:hook("iq-get/host/jabber:iq:last:query", handle_uptime)
