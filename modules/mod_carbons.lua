-- mod_carbons: Message Carbons (XEP-0280).
--
-- A resource that enabled carbons gets a copy of the chat messages its
-- account sends from other resources (<sent/>) and receives on other
-- resources (<received/>), so every device shows the whole conversation.

local core = require "starling.core"
local st = require "util.stanza"
local jid = require "util.jid"
local recipients = require "util.recipients"

local NS = "urn:xmpp:carbons:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_HINTS = "urn:xmpp:hints"

-- XEP-0280 section 6: which messages are copied.
local function eligible(stanza)
	local t = stanza.attr.type or "normal"
	if stanza:get_child("private", NS) or stanza:get_child("no-copy", NS_HINTS) then
		return false
	end
	if stanza:get_child("sent", NS) or stanza:get_child("received", NS) then
		return false -- no copies of copies
	end
	if t == "chat" then
		return true
	end
	if t == "normal" then
		return stanza:get_child("body") ~= nil
	end
	if t == "error" then
		return true
	end
	return false -- groupchat, headline
end

local function copy(direction, stanza, bare, to)
	local c = st.message({ from = bare, to = to, type = stanza.attr.type })
		:tag(direction, { xmlns = NS })
		:tag("forwarded", { xmlns = NS_FORWARD })
	c:add_child(stanza)
	return c
end

-- The account's sessions that enabled carbons, or nil when none did: one
-- look at the account's sessions, and nothing more for a message whose
-- account has no carbons-enabled session (most of them).
local function enabled_sessions(bare)
	local list
	for _, s in ipairs(core.sessions(bare)) do
		if s.want_carbons then
			list = list or {}
			list[#list + 1] = s
		end
	end
	return list
end

-- Copies to the sessions of `enabled` not in `skip` (a set of sessions
-- that get the message itself).
local function send_copies(direction, stanza, bare, enabled, skip)
	for _, s in ipairs(enabled) do
		if not skip[s] then
			s:send(copy(direction, stanza, bare, s.full_jid))
		end
	end
end

-- A message from one of the account's resources.
local function outgoing(event)
	local origin, stanza = event.origin, event.stanza
	local bare = origin and origin.bare_jid
	if not bare then
		return
	end
	local enabled = enabled_sessions(bare)
	if enabled and eligible(stanza) then
		send_copies("sent", stanza, bare, enabled, { [origin] = true })
	end
end

-- A message to the account: copies go to the enabled sessions that do not
-- get the message itself.
local function incoming(event)
	local stanza = event.stanza
	local to = stanza.attr.to
	local node, host, resource = jid.split(to)
	if not node or not core.is_local_host(host) then
		return
	end
	local bare = node .. "@" .. host
	local enabled = enabled_sessions(bare)
	if not enabled or not eligible(stanza) then
		return
	end
	local skip = {}
	if resource then
		local target = core.session(to)
		if not target then
			return -- not delivered to a session here: nothing to copy
		end
		skip[target] = true
	else
		local list = recipients.for_bare(bare, false)
		if #list == 0 then
			return -- goes offline
		end
		for _, s in ipairs(list) do
			skip[s] = true
		end
	end
	send_copies("received", stanza, bare, enabled, skip)
end

local function toggle(event)
	local origin, stanza = event.origin, event.stanza
	origin.want_carbons = stanza.tags[1].name == "enable"
	origin:send(st.reply(stanza))
	return true
end

-- Bind2 (XEP-0386): carbons enabled inline; it cannot fail, so <bound/>
-- says nothing about it.
local function advertise_bind2(event)
	event.features:tag("feature", { var = NS }):up()
end

local function enable_bind2(event)
	if event.stanza:get_child("enable", NS) then
		event.session.want_carbons = true
	end
end

module:add_feature(NS)
module:hook("advertise-bind-features", advertise_bind2)
module:hook("enable-bind-features", enable_bind2)
module:hook("iq-set/self/" .. NS .. ":enable", toggle)
module:hook("iq-set/self/" .. NS .. ":disable", toggle)
-- Behind C gates (core.gate): a message whose account (the sender's on
-- the way out, the recipient's on the way in) has no session with
-- want_carbons set passes without entering Lua.
local gated_outgoing = core.gate(outgoing, "carbons", "origin")
local gated_incoming = core.gate(incoming, "carbons", "to")
module:hook("pre-message/full", gated_outgoing, 1)
module:hook("pre-message/bare", gated_outgoing, 1)
module:hook("pre-message/host", gated_outgoing, 1)
module:hook("message/full", gated_incoming, 1)
module:hook("message/bare", gated_incoming, 1)
