-- mod_message: delivers messages addressed to local accounts, following
-- the server rules of RFC 6121 section 8.5 (docs/modules/message.md).
--
-- Handlers run at priority -1: modules that want to see or take messages
-- first (carbons, archiving, blocking) hook the same events above it.

local core = require "starling.core"
local st = require "util.stanza"
local jid = require "util.jid"
local recipients = require "util.recipients".for_bare

-- Error replies never answer errors.
local function bounce(event, condition)
	local stanza = event.stanza
	if stanza.attr.type ~= "error" then
		module:reply(event, st.error_reply(stanza, "cancel", condition or "service-unavailable"))
	end
	return true
end

-- 8.5.2: a message to localpart@domainpart (also used for chat messages to
-- a resource that is not there, and for messages with no 'to'). bare is
-- the JID (normalized: the router wrote it); username and host are split
-- from it only when no session takes the message (an account with a
-- session exists).
local function to_bare(event, bare, username, host)
	local stanza = event.stanza
	local t = stanza.attr.type or "normal"
	if t == "error" then
		return true
	end
	if t == "groupchat" then
		return bounce(event)
	end
	local list = recipients(bare, t == "headline")
	if #list > 0 then
		for _, s in ipairs(list) do
			s:send(stanza)
		end
		return true
	end
	if not username then
		username, host = jid.split(bare)
	end
	if not core.user_exists(username, host) then
		return bounce(event)
	end
	if t == "headline" then
		return true
	end
	local offline = module:fire_event("message/offline/handle", {
		origin = event.origin, stanza = stanza, username = username, host = host,
	})
	if offline then
		return true
	end
	return bounce(event)
end

local function handle_bare(event)
	return to_bare(event, event.stanza.attr.to)
end

local function handle_self(event)
	local origin = event.origin
	return to_bare(event, origin.username .. "@" .. origin.host, origin.username, origin.host)
end

-- 8.5.3: to a full JID. A bound session of that JID gets it; otherwise
-- chat goes on as if sent to the bare JID, headline and error are
-- dropped, normal and groupchat (and unknown types) bounce (8.5.3.2.1).
local function handle_full(event)
	local stanza = event.stanza
	local session = core.session(stanza.attr.to)
	if session then
		session:send(stanza)
		return true
	end
	local t = stanza.attr.type or "normal"
	if t == "chat" then
		local username, host = jid.split(stanza.attr.to)
		return to_bare(event, username .. "@" .. host, username, host)
	elseif t == "headline" or t == "error" then
		return true
	end
	return bounce(event)
end

-- a bound session of the full JID gets it in C (fanout.h); the rest of
-- 8.5.3 is handle_full's, next on the chain
module:hook("message/full", core.deliver_full, -1)
module:hook("message/full", handle_full, -1)
module:hook("message/bare", handle_bare, -1)
module:hook("message/self", handle_self, -1)
