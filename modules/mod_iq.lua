-- mod_iq: delivers iq stanzas addressed to local accounts (RFC 6121
-- section 8.5; docs/modules/iq.md).
--
-- An iq get/set whose payload some module handles never gets here: the
-- core fires "iq-<type>/<to>/<xmlns>:<name>" first. These handlers, at
-- priority -1, are the defaults after that.

local core = require "starling.core"
local st = require "util.stanza"
local jid = require "util.jid"

local function unavailable(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if t == "get" or t == "set" then
		local err = st.error_reply(stanza, "cancel", "service-unavailable")
		module:reply(event, err)
	end
	return true
end

-- 8.5.3.1: to a full JID with a bound session: that session gets it.
-- 8.5.3.2.3: otherwise get/set are answered service-unavailable and
-- result/error are dropped.
local function handle_full(event)
	local session = core.session(event.stanza.attr.to)
	if session then
		session:send(event.stanza)
		return true
	end
	return unavailable(event)
end

-- 8.5.2.1.3: an iq to an account's bare JID is the server's to answer on
-- the account's behalf (modules hook "iq-get/bare/..."). What is left:
-- result and error are dropped; get/set to an account that does not exist
-- are answered service-unavailable (8.5.2.3); other get/set fall through
-- to the core, which answers service-unavailable too.
local function handle_bare(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if t == "result" or t == "error" then
		return true
	end
	local username, host = jid.split(stanza.attr.to)
	if not core.user_exists(username, host) then
		return unavailable(event)
	end
	return nil
end

module:hook("iq/full", handle_full, -1)
module:hook("iq/bare", handle_bare, -1)
