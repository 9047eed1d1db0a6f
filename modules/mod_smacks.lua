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

local function failed_element(condition, text)
	local f = st.stanza("failed", { xmlns = NS }):tag(condition, { xmlns = NS_STANZAS }):up()
	if text then
		f:text_tag("text", text, { xmlns = NS_STANZAS })
	end
	return f
end

local function failed(origin, condition, text)
	origin:send_nonza(failed_element(condition, text))
	return true
end

local function advertise(event)
	if event.origin.authenticated then
		event.features:tag("sm", { xmlns = NS }):up()
	end
end

-- <enabled/> or <failed/> for a request to enable on a bound session.
local function enable_answer(origin, request)
	if not origin.full_jid then
		return failed_element("unexpected-request", "bind a resource first")
	end
	if origin.sm_id then
		return failed_element("unexpected-request", "already enabled")
	end
	local resume = request.attr.resume == "true" or request.attr.resume == "1"
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
	module:log("debug", "%s enabled stream management%s", origin.full_jid,
		resume and " with resumption" or "")
	return enabled
end

local function enable(event)
	event.origin:send_nonza(enable_answer(event.origin, event.stanza))
	return true
end

-- SASL2 (XEP-0388) and Bind2 (XEP-0386): resumption is offered inline in
-- SASL2 (the core resumes), enabling inline in Bind2, answered in <bound/>.
local function advertise_sasl2(event)
	event.features:tag("sm", { xmlns = NS }):up()
end

local function advertise_bind2(event)
	event.features:tag("feature", { var = NS }):up()
end

local function enable_bind2(event)
	local request = event.stanza:get_child("enable", NS)
	if request then
		event.features:add_child(enable_answer(event.session, request))
	end
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
module:hook("advertise-sasl-features", advertise_sasl2)
module:hook("advertise-bind-features", advertise_bind2)
module:hook("enable-bind-features", enable_bind2)
