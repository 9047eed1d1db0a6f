-- mod_version: XEP-0092 Software Version for the server
-- (docs/modules/version.md). A query to the host's domain is answered
-- with the name "Starling", the server's version and, when the option
-- version_os is set, that text as the operating system.

local core = require "starling.core"
local st = require "util.stanza"

local NS = "jabber:iq:version"

local os_name = module:get_option_string("version_os")

local function handle_version(event)
	local reply = st.reply(event.stanza):tag("query", { xmlns = NS })
		:text_tag("name", "Starling")
		:text_tag("version", core.version)
	if os_name then
		reply:text_tag("os", os_name)
	end
	module:reply(event, reply)
	return true
end

module:add_feature(NS)

module:hook("iq-get/host/jabber:iq:version:query", handle_version)
