-- mod_smacks: XEP-0198 Stream Management.
--
-- The core keeps the counters, the queue of unacknowledged stanzas, the
-- hibernation of a lost session and its resumption (core/features/sm.c). This
-- module decides the policy: who may enable it, how big the queue may get,
-- when to ask the client for acks, how long a lost session waits, and what
-- becomes of stanzas the client never acknowledged.

local st = require "util.stanza"
local jid = require "util.jid"

local NS = "urn:xmpp:sm:3"
local NS_STANZAS = "urn:ietf:params:xml:ns:xmpp-stanzas"

local hibernation = module:get_option_period("smacks_hibernation_time", 600)
local max_queue = module:get_option_number("smacks_max_unacked_stanzas", 500, 1, 100000)
local ack_every = module:get_option_number("smacks_max_ack_delay_stanzas", 5, 1, 10000)
local ack_after = module:get_option_period("smacks_max_ack_delay", 30)

local function failed(origin, condition, text)
	local f = st.stanza("failed", { xmlns = NS }):tag(condition, { xmlns = NS_STANZAS }):up()
	if text then
		f:text_tag("text", text, { xmlns = NS_STANZAS })
	end
	origin:send_nonza(f)
	return true
end

local function advertise(event)
	if event.origin.authenticated then
		event.features:tag("sm", { xmlns = NS }):up()
	end
end

local function enable(event)
	local origin, stanza = event.origin, event.stanza
	if not origin.full_jid then
		return failed(origin, "unexpected-request", "bind a resource first")
	end
	if origin.sm_id then
		return failed(origin, "unexpected-request", "already enabled")
	end
	local resume = stanza.attr.resume == "true" or stanza.attr.resume == "1"
	local id = origin:sm_enable({
		resume = resume, max_queue = max_queue, ack_every = ack_every,
		ack_after = ack_after, hibernate = hibernation,
	})
	local enabled = st.stanza("enabled", { xmlns = NS })
	if resume then
		enabled.attr.id = id
		enabled.attr.resume = "true"
		enabled.attr.max = tostring(math.floor(hibernation))
	end
	origin:send_nonza(enabled)
	module:log("debug", "%s enabled stream management%s", origin.full_jid,
		resume and " with resumption" or "")
	return true
end

local function resume(event)
	local origin, stanza = event.origin, event.stanza
	if origin.full_jid then
		return failed(origin, "unexpected-request", "resume instead of binding, not after")
	end
	local previd, h = stanza.attr.previd, stanza.attr.h
	if not previd or not h then
		return failed(origin, "bad-request", "previd and h are required")
	end
	local ok, err = origin:sm_resume(previd, h)
	if not ok then
		return failed(origin, err)
	end
	return true
end

-- Stanzas the client never acknowledged when its session ended: messages
-- go to the account again (other resources, else offline storage); an iq
-- that asked something is answered with an error; presence is dropped.
local function unacked(event)
	local session = event.session
	for _, stanza in ipairs(event.stanzas) do
		local t = stanza.attr.type
		if stanza.name == "message" and t ~= "error" and t ~= "groupchat"
				and t ~= "headline" then
			stanza.attr.to = jid.bare(stanza.attr.to or session.bare_jid)
			module:send(stanza)
		elseif stanza.name == "iq" and (t == "get" or t == "set") then
			module:send(st.error_reply(stanza, "wait", "recipient-unavailable",
				"the recipient's connection was lost"))
		end
	end
end

module:add_feature(NS)
module:hook("stream-features", advertise)
module:hook("stream-element/" .. NS .. ":enable", enable)
module:hook("stream-element/" .. NS .. ":resume", resume)
module:hook("smacks-unacked", unacked)
