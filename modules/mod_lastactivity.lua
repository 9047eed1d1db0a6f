-- mod_lastactivity: XEP-0012 Last Activity of accounts
-- (docs/modules/lastactivity.md).
--
-- When an account's last session ends, the time and the status of its
-- last unavailable presence go into the "lastactivity" keyval store
-- ({ time = seconds since the epoch, status = text or nil }). A query to
-- the account's bare JID is answered on its behalf (XEP-0012 section 3):
--   - 0 seconds while one of its resources is connected, available or
--     not: the account has not logged out (the XEP's Implementation
--     Notes: the time since it was last connected to its server);
--   - else the seconds since that logout, with the status as text;
--   - forbidden for anyone who may not see the account's presence (not
--     the account itself, no subscription "from"/"both" in its roster);
--   - service-unavailable when the account does not exist, or is not
--     connected and never logged out (nothing is known).
-- The server's own uptime is mod_uptime's.

local core = require "starling.core"
local jid = require "util.jid"
local presence_access = require "util.presence_access"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS = "jabber:iq:last"

local store = module:open_store("lastactivity", "keyval")
local roster_store = roster_lib.open(module)

-- A bound session that is not ending: with or without presence.
local function connected(bare)
	return #core.sessions(bare) > 0
end

local function answer(event, username, host)
	local stanza = event.stanza
	if not core.user_exists(username, host) then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	if not presence_access.may_see(roster_store, username, host, stanza.attr.from) then
		return module:reply(event, st.error_reply(stanza, "auth", "forbidden"))
	end
	local reply = st.reply(stanza)
	if connected(username .. "@" .. host) then
		reply:tag("query", { xmlns = NS, seconds = "0" })
		return module:reply(event, reply)
	end
	local last, err = store:get(username)
	if err then
		module:log("error", "cannot read the last activity of %s@%s: %s", username, host, err)
		return module:reply(event, st.error_reply(stanza, "wait", "internal-server-error"))
	end
	if type(last) ~= "table" or type(last.time) ~= "number" then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	local seconds = math.max(0, math.floor(core.now() - last.time))
	reply:tag("query", { xmlns = NS, seconds = tostring(seconds) })
	if last.status then
		reply:text(last.status)
	end
	return module:reply(event, reply)
end

local function handle_bare(event)
	local username, host = jid.split(event.stanza.attr.to)
	return answer(event, username, host)
end

local function handle_self(event)
	return answer(event, event.origin.username, event.origin.host)
end

-- The status of a session's unavailable presence, kept for its logout
-- (and forgotten when it becomes available again).
local function on_presence(event)
	local origin, t = event.origin, event.stanza.attr.type
	if origin and t == "unavailable" then
		origin.lastactivity_status = event.stanza:get_child_text("status")
	elseif origin and t == nil then
		origin.lastactivity_status = nil
	end
	return nil
end

-- The account's last session ended: record the logout. Nothing is
-- written for an account that no longer exists (deleted while online).
local function on_unbind(event)
	local session = event.session
	local username, host = session.username, session.host
	for _, s in ipairs(core.sessions(session.bare_jid)) do
		if s ~= session then
			return nil
		end
	end
	if not core.user_exists(username, host) then
		return nil
	end
	local ok, err = store:set(username, {
		time = core.now(),
		status = session.lastactivity_status,
	})
	if not ok then
		module:log_store_error(err, "cannot store the last activity of %s", session.bare_jid)
	end
	return nil
end

module:add_feature(NS)
module:add_item("account-feature", NS)

module:hook("iq-get/bare/jabber:iq:last:query", handle_bare)
module:hook("iq-get/self/jabber:iq:last:query", handle_self)
module:hook("presence/self", on_presence, 10)
module:hook("resource-unbind", on_unbind)
