-- mod_ping: XEP-0199 XMPP Ping (docs/modules/ping.md).
--
-- Answers pings to the server (to the host's domain, or with no 'to') and,
-- on an account's behalf (RFC 6121 8.5.2.1.3), pings to its bare JID from
-- the account itself or a contact that sees its presence; anyone else
-- gets service-unavailable, so a ping does not tell strangers which
-- accounts exist.
--
-- Pings idle clients (XEP-0199 4.1): a bound session that sent nothing for
-- ping_idle_after seconds gets <ping/> at its full JID; anything it sends
-- within ping_timeout seconds (the pong, or any other data) keeps it, and
-- silence closes it with the stream error connection-timeout. A session
-- is pinged at most once per idle period.
--
-- Sessions wait for their next check in slots `tick` seconds wide, one
-- timer per slot that holds any, not one timer (and two closures) each:
-- an idle session costs an entry in `watched` and one in a slot.

local core = require "starling.core"
local id = require "util.id"
local jid = require "util.jid"
local presence_access = require "util.presence_access"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS = "urn:xmpp:ping"

local idle_after = module:get_option_period("ping_idle_after", 300)
local timeout = module:get_option_period("ping_timeout", 60)

local roster_store = roster_lib.open(module)

-- watched[session] = true, or { ping_id = id, ping_at = uptime } while a
-- ping waits for its answer
local watched = {}

-- slots[n] = { session, ... }: check them at uptime n * tick
local tick = math.min(1, idle_after / 4, timeout / 4)
local slots = {}

local function pong(event)
	return module:reply(event, st.reply(event.stanza))
end

local function pong_bare(event)
	local stanza = event.stanza
	local username, host = jid.split(stanza.attr.to)
	if core.user_exists(username, host)
	   and presence_access.may_see(roster_store, username, host, stanza.attr.from) then
		return pong(event)
	end
	return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
end

-- --- pinging idle clients -------------------------------------------------

-- One check of a session: returns the seconds until the next one, or
-- nil when the session is gone (or just closed).
local function check(session)
	local state = watched[session]
	if not state then
		return nil
	end
	if session.closed then
		watched[session] = nil
		return nil
	end
	local now = core.uptime()
	if state ~= true then
		local waited = now - state.ping_at
		if session.idle >= waited then
			if waited >= timeout then
				watched[session] = nil
				module:log("info", "%s did not answer a ping within %gs", session.full_jid, timeout)
				session:close("connection-timeout")
				return nil
			end
			return timeout - waited
		end
		watched[session] = true -- it spoke since the ping, or answered it
	end
	local idle = session.idle
	if idle < idle_after then
		return idle_after - idle
	end
	local ping_id = "ping-" .. id.new()
	watched[session] = { ping_id = ping_id, ping_at = now }
	session:send(st.iq({ type = "get", id = ping_id, from = session.host,
		to = session.full_jid }):tag("ping", { xmlns = NS }):up())
	return timeout
end

-- Puts session in the slot that is due after delay seconds (rounded up).
local function schedule(session, delay)
	local n = math.ceil((core.uptime() + delay) / tick)
	local slot = slots[n]
	if not slot then
		slot = {}
		slots[n] = slot
		module:add_timer(math.max(0, n * tick - core.uptime()), function()
			slots[n] = nil
			for i = 1, #slot do
				local s = slot[i]
				local again = check(s)
				if again then
					schedule(s, again)
				end
			end
		end)
	end
	slot[#slot + 1] = session
end

local function watch(session)
	if watched[session] or session.closed or idle_after == math.huge then
		return
	end
	watched[session] = true
	schedule(session, idle_after)
end

-- The session leaves its slot when the slot runs: the run finds no state.
local function unwatch(session)
	watched[session] = nil
end

local function on_bind(event)
	watch(event.session)
end

local function on_unbind(event)
	unwatch(event.session)
	return nil
end

-- The client's answer to our ping (a result, or an error from a client
-- without ping support: it is alive either way) ends there.
local function on_answer(event)
	local stanza, origin = event.stanza, event.origin
	local state = origin and watched[origin]
	local t = stanza.attr.type
	if state and state ~= true and state.ping_id and stanza.attr.id == state.ping_id
	   and (t == "result" or t == "error") then
		state.ping_id = nil
		return true
	end
	return nil
end

-- A reload keeps pinging the sessions the old instance watched.
function module.save()
	local sessions = {}
	for session in pairs(watched) do
		sessions[#sessions + 1] = session
	end
	return { sessions = sessions }
end

function module.restore(state)
	for _, session in ipairs(state and state.sessions or {}) do
		watch(session)
	end
end

module:add_feature(NS)
module:add_item("account-feature", NS)

module:hook("iq-get/host/urn:xmpp:ping:ping", pong)
module:hook("iq-get/self/urn:xmpp:ping:ping", pong)
module:hook("iq-get/bare/urn:xmpp:ping:ping", pong_bare)
module:hook("resource-bind", on_bind)
module:hook("resource-unbind", on_unbind)
module:hook("iq/host", on_answer, 10)
module:hook("iq/self", on_answer, 10)
