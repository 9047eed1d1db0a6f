-- mod_presence: a session's own presence and presence delivered to local
-- accounts (RFC 6121 sections 4 and 8.5; docs/modules/presence.md).
--
-- Session fields it keeps (other modules read them):
--   s.available  true between the session's initial available presence
--                and its unavailable presence (or its end)
--   s.presence   a copy of the session's last available presence, nil
--                when it is not available
--   s.priority   that presence's <priority/>, -128..127 (0 when absent)
--
-- Events it fires on the host:
--   "presence/initial"  { origin = s, stanza = presence }: s just became
--                       available (offline messages are delivered here)

local core = require "starling.core"
local jid = require "util.jid"
local st = require "util.stanza"

local math_type, tonumber = math.type, tonumber

-- <priority/>: an integer from -128 to 127 (RFC 6121 4.7.2.3); a missing
-- or malformed one counts as 0, an out-of-range one is clamped.
local function parse_priority(stanza)
	local text = stanza:get_child_text("priority")
	local n = text and text:match("^%s*[+-]?%d+%s*$") and tonumber(text)
	if not n or math_type(n) ~= "integer" then
		return 0
	end
	if n < -128 then
		return -128
	elseif n > 127 then
		return 127
	end
	return n
end

-- Sends stanza to each available session of the account, and to `also`
-- (the sending session) if it is not among them.
local function to_own_resources(bare, stanza, also)
	for _, s in ipairs(core.sessions(bare)) do
		if s.available and s ~= also then
			s:send(stanza)
		end
	end
	if also and not also.closed then
		also:send(stanza)
	end
end

-- Presence with no 'to' from a client: its broadcast presence (4.2, 4.4,
-- 4.5). The user's own available resources, the sender included, get it
-- addressed to the bare JID (an account is subscribed to itself).
local function handle_self(event)
	local origin, stanza = event.origin, event.stanza
	local t = stanza.attr.type
	if t ~= nil and t ~= "unavailable" then
		return true -- subscription, probe or error presence needs a 'to'
	end
	local was_available = origin.available
	local available = t == nil
	if not available and not was_available then
		return true
	end
	if available then
		origin.presence = stanza:clone()
		origin.priority = parse_priority(stanza)
	else
		origin.presence = nil
		origin.priority = nil
	end
	origin.available = available
	local copy = stanza:clone()
	copy.attr.to = origin.bare_jid
	to_own_resources(origin.bare_jid, copy, origin)
	if available and not was_available then
		module:fire_event("presence/initial", { origin = origin, stanza = stanza })
	end
	return true
end

local subscription_types = {
	subscribe = true, subscribed = true, unsubscribe = true, unsubscribed = true,
}

-- Available, unavailable and error presence to the bare JID go to all
-- available resources (8.5.2.1.2), with 'to' left as it is. Subscription
-- requests and answers are delivered to them as well. Probes are the
-- server's to answer on the account's behalf and never reach clients.
local function deliver_bare(stanza, bare)
	for _, s in ipairs(core.sessions(bare)) do
		if s.available then
			s:send(stanza)
		end
	end
	return true
end

local function handle_bare(event)
	local stanza = event.stanza
	if stanza.attr.type == "probe" then
		return true
	end
	return deliver_bare(stanza, stanza.attr.to)
end

-- Directed presence to a full JID: the bound session of that JID gets it
-- (8.5.3.1), none: dropped (8.5.3.2.2). Subscription stanzas are about
-- the account, so they go on as if sent to the bare JID.
local function handle_full(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if t == "probe" then
		return true
	end
	if subscription_types[t] then
		return deliver_bare(stanza, jid.bare(stanza.attr.to))
	end
	local session = core.session(stanza.attr.to)
	if session then
		session:send(stanza)
	end
	return true
end

-- A session that ends while available goes unavailable for the account's
-- other resources (4.5.3.1: the server does it on the client's behalf).
local function handle_unbind(event)
	local session = event.session
	if not session.available then
		return nil
	end
	session.available = false
	session.presence = nil
	local unavailable = st.presence({ type = "unavailable", from = session.full_jid,
		to = session.bare_jid })
	if event.error then
		unavailable:tag("status"):text("Disconnected: " .. event.error):up()
	end
	for _, s in ipairs(core.sessions(session.bare_jid)) do
		if s ~= session and s.available then
			s:send(unavailable)
		end
	end
	return nil
end

module:hook("presence/self", handle_self, -1)
module:hook("presence/bare", handle_bare, -1)
module:hook("presence/full", handle_full, -1)
module:hook("resource-unbind", handle_unbind)
