-- mod_cloud_notify: XEP-0357 push notifications (Prosody's module name).
--
-- A client registers an app server (any XMPP entity: a component, a
-- remote service, a full JID) and a node with <enable/>. While the client
-- cannot get its stanzas itself, the server publishes a notification to
-- that node, and the app server wakes the client's app:
--
--   * the client's session is hibernating (XEP-0198): every stanza queued
--     for it is told (the core fires "smacks-hibernation-stanza-queued",
--     core/features/sm.c), the first one and every important one pushed;
--   * the registration has no session at all (the app was closed, or the
--     phone is off while a desktop client stays online): every message
--     that the account keeps for it (offline storage or the archive) and
--     every subscription request is pushed.
--
-- The notification carries the XEP's summary form: message-count (since
-- the client last came back), pending-subscription-count, and the sender
-- and body of the last message only where allowed: the options
-- push_notification_with_sender / push_notification_with_body are false
-- (never), true (always) or "user" (the default: each user decides with
-- the ad-hoc command "Push notification settings", off until switched on).
-- An encrypted message's body is never sent. Important stanzas (a body,
-- an encrypted payload, a call) carry <priority>high</priority> of Tigase's
-- push priority extension (tigase:push:priority:0) for app servers that
-- want to wake the phone at once.
--
-- Answers from the app server: an error of type auth or cancel disables the
-- registration (the app server does not know it, or refuses us); type wait
-- is retried with a doubling delay (push_retry_delay, push_max_retries);
-- other errors and unanswered requests count, and push_max_errors of them
-- in a row disable the registration.

local core = require "starling.core"
local st = require "util.stanza"
local jid = require "util.jid"
local dataforms = require "util.dataforms"
local adhoc = require "util.adhoc"
local id = require "util.id"

local NS_PUSH = "urn:xmpp:push:0"
local NS_PRIORITY = "tigase:push:priority:0"
local NS_PUBSUB = "http://jabber.org/protocol/pubsub"
local NS_SUMMARY = "urn:xmpp:push:summary"
local NS_DATA = "jabber:x:data"
local NS_SETTINGS = "urn:starling:push:settings"

local function tristate(name)
	local v = module:get_option(name, "user")
	if v ~= true and v ~= false and v ~= "user" then
		module:log("error", "option %s must be true, false or \"user\"; using \"user\"", name)
		v = "user"
	end
	return v
end

local with_body = tristate("push_notification_with_body")
local with_sender = tristate("push_notification_with_sender")
local important_body = module:get_option_string("push_notification_important_body", "New message")
local max_devices = module:get_option_integer("push_max_devices", 5, 1, 100)
local max_errors = module:get_option_integer("push_max_errors", 16, 1, 1000)
local max_retries = module:get_option_integer("push_max_retries", 4, 0, 20)
local retry_delay = module:get_option_period("push_retry_delay", 2)
local answer_timeout = module:get_option_period("push_answer_timeout", 60)

-- Per account: { regs = { [key] = registration }, prefs = { body =, sender = } }.
-- A registration: { jid =, node =, options = <x/> or nil, at = time }.
local store = module:open_store("cloud_notify", "keyval")

-- In memory only: notifications since the client last came back, errors
-- in a row, per account and key.
local counts = module:shared("counts")
local errors = module:shared("errors")
-- Requests waiting for the app server's answer: iq id -> request.
local pending = module:shared("pending")

local function key_of(push_jid, node)
	return push_jid .. "<" .. (node or "")
end

local function load(username)
	local data, err = store:get(username)
	if err then
		module:log_store_error(err, "cannot read push registrations of %s", username)
		return nil, err
	end
	data = data or {}
	data.regs = data.regs or {}
	data.prefs = data.prefs or {}
	return data
end

local function save(username, data)
	if next(data.regs) == nil and next(data.prefs) == nil then
		data = nil
	end
	local ok, err = store:set(username, data)
	if not ok then
		module:log_store_error(err, "cannot store push registrations of %s", username)
	end
	return ok, err
end

local function bump(tbl, username, key, by)
	local t = tbl[username]
	if not t then
		t = {}
		tbl[username] = t
	end
	t[key] = by and (t[key] or 0) + by or nil
	if next(t) == nil then
		tbl[username] = nil
	end
	return t[key]
end

-- The live session a registration belongs to, if any.
local function session_of(username, key)
	for _, s in ipairs(core.sessions(username .. "@" .. module.host)) do
		if s.push_key == key then
			return s
		end
	end
	return nil
end

-- --- what a stanza means for a push -----------------------------------------

local function encrypted(stanza)
	return stanza:get_child("encrypted", "eu.siacs.conversations.axolotl")
		or stanza:get_child("encrypted", "urn:xmpp:omemo:2")
		or stanza:get_child("openpgp", "urn:xmpp:openpgp:0")
		or stanza:get_child("x", "jabber:x:encrypted")
end

-- Worth waking the phone for: a message someone wrote, a call, a
-- subscription request.
local function important(stanza)
	if stanza.name == "message" then
		if stanza.attr.type == "error" then
			return false
		end
		if stanza:get_child("body") or encrypted(stanza)
				or stanza:get_child("propose", "urn:xmpp:jingle-message:0") then
			return true
		end
		-- a carbon copy of one: its payload decides
		for _, ns in ipairs({ "urn:xmpp:carbons:2" }) do
			for _, which in ipairs({ "received", "sent" }) do
				local c = stanza:get_child(which, ns)
				local fwd = c and c:get_child("forwarded", "urn:xmpp:forward:0")
				local inner = fwd and fwd:get_child("message", "jabber:client")
				if inner then
					return important(inner)
				end
			end
		end
		return false
	end
	return stanza.name == "presence" and stanza.attr.type == "subscribe"
end

-- The message whose sender and body a summary may name (unwrapping
-- carbons), or nil.
local function payload_message(stanza)
	if stanza.name ~= "message" then
		return nil
	end
	for _, which in ipairs({ "received", "sent" }) do
		local c = stanza:get_child(which, "urn:xmpp:carbons:2")
		local fwd = c and c:get_child("forwarded", "urn:xmpp:forward:0")
		local inner = fwd and fwd:get_child("message", "jabber:client")
		if inner then
			return inner
		end
	end
	return stanza
end

local function allowed(option, pref)
	if option == "user" then
		return pref == true
	end
	return option
end

local function field(x, var, value)
	x:tag("field", { var = var }):text_tag("value", tostring(value)):up()
end

local function notification(username, reg, key, stanza, prefs)
	local count = bump(counts, username, key, 0) or 0
	local is_important = stanza and important(stanza)
	local n = st.stanza("notification", { xmlns = NS_PUSH })
	local x = st.stanza("x", { xmlns = NS_DATA, type = "submit" })
	field(x, "FORM_TYPE", NS_SUMMARY)
	field(x, "message-count", count)
	if stanza and stanza.name == "presence" then
		field(x, "pending-subscription-count", 1)
	end
	local msg = stanza and payload_message(stanza)
	if msg then
		if allowed(with_sender, prefs.sender) and msg.attr.from then
			field(x, "last-message-sender", msg.attr.from)
		end
		local body = msg:get_child_text("body")
		if body and not encrypted(msg) and allowed(with_body, prefs.body) then
			field(x, "last-message-body", body)
		elseif is_important and important_body ~= "" then
			field(x, "last-message-body", important_body)
		end
	end
	n:add_child(x)
	if is_important then
		n:text_tag("priority", "high", { xmlns = NS_PRIORITY })
	end
	local iq = st.iq({ type = "set", from = username .. "@" .. module.host, to = reg.jid,
		id = "push-" .. id.new() })
		:tag("pubsub", { xmlns = NS_PUBSUB })
		:tag("publish", { node = reg.node })
		:tag("item"):add_child(n):up():up()
	if reg.options then
		iq:tag("publish-options"):add_child(reg.options:clone()):up()
	end
	return iq
end

-- --- sending, answers, retries ------------------------------------------------

local send_request

local function disable(username, key, why)
	local data = load(username)
	if data and data.regs[key] then
		module:log("info", "push registration %s of %s disabled: %s", key,
			username .. "@" .. module.host, why)
		data.regs[key] = nil
		save(username, data)
	end
	bump(counts, username, key, nil)
	bump(errors, username, key, nil)
	local s = session_of(username, key)
	if s then
		s.push_key = nil
	end
end

local function count_error(req, why)
	if (bump(errors, req.username, req.key, 1) or 0) >= max_errors then
		disable(req.username, req.key, why .. " (" .. max_errors .. " errors in a row)")
	end
end

local function expire(request_id)
	local req = pending[request_id]
	if req then
		pending[request_id] = nil
		count_error(req, "no answer from the app server")
	end
end

function send_request(req)
	local request_id = req.iq.attr.id
	pending[request_id] = req
	module:send(req.iq)
	module:add_timer(answer_timeout, function()
		expire(request_id)
	end)
end

local function on_answer(event)
	local stanza = event.stanza
	local req = pending[stanza.attr.id]
	if not req or (stanza.attr.from and jid.prep(stanza.attr.from)) ~= req.iq.attr.to then
		return nil
	end
	pending[stanza.attr.id] = nil
	if stanza.attr.type == "result" then
		bump(errors, req.username, req.key, nil)
		return true
	end
	local etype, condition = stanza:get_error()
	if etype == "auth" or etype == "cancel" then
		disable(req.username, req.key, "the app server answered " .. etype .. "/"
			.. tostring(condition))
	elseif etype == "wait" and req.tries < max_retries then
		local again = {
			username = req.username, key = req.key, tries = req.tries + 1,
			iq = st.clone(req.iq),
		}
		again.iq.attr.id = "push-" .. id.new()
		module:add_timer(retry_delay * 2 ^ req.tries, function()
			local data = load(again.username)
			if data and data.regs[again.key] then
				send_request(again)
			end
		end)
	else
		count_error(req, "the app server answered " .. tostring(etype) .. "/"
			.. tostring(condition))
	end
	return true
end

local function push(username, key, reg, stanza, prefs)
	bump(counts, username, key, 1)
	send_request({
		username = username, key = key, tries = 0,
		iq = notification(username, reg, key, stanza, prefs),
	})
end

-- --- enable and disable -------------------------------------------------------

local function publish_options(enable)
	local x = enable:get_child("x", NS_DATA)
	if not x then
		return nil
	end
	local fields, form_type = dataforms.read(x)
	if not fields then
		return nil, form_type
	end
	if form_type ~= "http://jabber.org/protocol/pubsub#publish-options" then
		return nil, "the form's FORM_TYPE must be http://jabber.org/protocol/pubsub#publish-options"
	end
	return x:clone()
end

local function on_enable(event)
	local origin, stanza = event.origin, event.stanza
	local enable = stanza.tags[1]
	local push_jid = enable.attr.jid and jid.prep(enable.attr.jid)
	if not push_jid then
		return module:reply(event, st.error_reply(stanza, "modify", "bad-request",
			"enable needs the app server's jid"))
	end
	local node = enable.attr.node
	if node == "" then
		node = nil
	end
	local options, why = publish_options(enable)
	if why then
		return module:reply(event, st.error_reply(stanza, "modify", "bad-request", why))
	end
	local username = origin.username
	local data, err = load(username)
	if not data then
		return module:reply(event, st.store_error_reply(stanza, err))
	end
	local key = key_of(push_jid, node)
	data.regs[key] = { jid = push_jid, node = node, options = options, at = os.time() }
	-- the oldest go when there are too many
	local keys = {}
	for k in pairs(data.regs) do
		keys[#keys + 1] = k
	end
	table.sort(keys, function(a, b)
		return (data.regs[a].at or 0) > (data.regs[b].at or 0)
			or (data.regs[a].at == data.regs[b].at and a == key)
	end)
	for i = max_devices + 1, #keys do
		data.regs[keys[i]] = nil
	end
	local ok, serr = save(username, data)
	if not ok then
		return module:reply(event, st.store_error_reply(stanza, serr))
	end
	origin.push_key = key
	bump(counts, username, key, nil)
	bump(errors, username, key, nil)
	module:log("debug", "%s enabled push to %s", origin.full_jid, key)
	return module:reply(event, st.reply(stanza))
end

local function on_disable(event)
	local origin, stanza = event.origin, event.stanza
	local disable_el = stanza.tags[1]
	local push_jid = disable_el.attr.jid and jid.prep(disable_el.attr.jid)
	if not push_jid then
		return module:reply(event, st.error_reply(stanza, "modify", "bad-request",
			"disable needs the app server's jid"))
	end
	local node = disable_el.attr.node
	local username = origin.username
	local data, err = load(username)
	if not data then
		return module:reply(event, st.store_error_reply(stanza, err))
	end
	local gone = {}
	for key, reg in pairs(data.regs) do
		if reg.jid == push_jid and (node == nil or reg.node == node) then
			gone[#gone + 1] = key
		end
	end
	for _, key in ipairs(gone) do
		data.regs[key] = nil
		bump(counts, username, key, nil)
		local s = session_of(username, key)
		if s then
			s.push_key = nil
		end
	end
	local ok, serr = save(username, data)
	if not ok then
		return module:reply(event, st.store_error_reply(stanza, serr))
	end
	return module:reply(event, st.reply(stanza))
end

-- --- when to push -------------------------------------------------------------

-- A stanza queued for a hibernating session: the first one of the
-- hibernation and every important one go to its registration.
local function on_queued(event)
	local session, stanza = event.session, event.stanza
	local key = session.push_key
	if not key then
		return nil
	end
	local username = session.username
	local first = not session.push_told
	if not first and not important(stanza) then
		return nil
	end
	local data = load(username)
	local reg = data and data.regs[key]
	if reg then
		session.push_told = true
		push(username, key, reg, stanza, data.prefs)
	end
	return nil
end

local function on_hibernation_end(event)
	local session = event.session
	session.push_told = nil
	if session.push_key then
		bump(counts, session.username, session.push_key, nil)
	end
	return nil
end

-- Messages the account keeps while a registration has no session: pushed
-- to those registrations. Runs before delivery; delivery to hibernating
-- sessions is told by on_queued.
local function kept_for_later(stanza)
	local t = stanza.attr.type or "normal"
	return (t == "chat" or t == "normal") and important(stanza)
end

local function for_sessionless(username, stanza)
	local data = load(username)
	if not data or next(data.regs) == nil then
		return
	end
	for key, reg in pairs(data.regs) do
		if not session_of(username, key) then
			push(username, key, reg, stanza, data.prefs)
		end
	end
end

-- Which accounts have registrations at all, so that a message to an
-- account without any costs no storage read. Filled as accounts are seen.
local has_regs = module:shared("has_regs")
local has_regs_n = 0

local function may_have(username)
	local known = has_regs[username]
	if known == nil then
		local data = load(username)
		known = data ~= nil and next(data.regs) ~= nil
		if has_regs_n > 50000 then
			for k in pairs(has_regs) do
				has_regs[k] = nil
			end
			has_regs_n = 0
		end
		has_regs[username] = known
		has_regs_n = has_regs_n + 1
	end
	return known
end

local function on_message(event)
	local stanza = event.stanza
	local to = stanza.attr.to
	local username = to and jid.node(to) or (event.origin and event.origin.username)
	if not username or not kept_for_later(stanza) or not may_have(username)
			or not core.user_exists(username, module.host) then
		return nil
	end
	for_sessionless(username, stanza)
	return nil
end

local function on_subscribe(event)
	local stanza = event.stanza
	if stanza.attr.type ~= "subscribe" then
		return nil
	end
	local username = jid.node(stanza.attr.to or "")
	if username and may_have(username) then
		for_sessionless(username, stanza)
	end
	return nil
end

local function forget_known(event)
	has_regs[event.origin.username] = nil
	return nil
end

local function on_deleted(event)
	store:set(event.username, nil)
	has_regs[event.username] = nil
	counts[event.username] = nil
	errors[event.username] = nil
	return nil
end

-- --- the user's own settings --------------------------------------------------

local function settings_form(data)
	local prefs = data and data.prefs or {}
	return dataforms.form(NS_SETTINGS, {
		{ var = "body", type = "boolean",
		  label = "Include the text of messages in push notifications",
		  child = st.stanza("value"):text(prefs.body and "1" or "0") },
		{ var = "sender", type = "boolean",
		  label = "Include the sender of messages in push notifications",
		  child = st.stanza("value"):text(prefs.sender and "1" or "0") },
	})
end

local function truthy(values)
	local v = values and values[1]
	return v == "1" or v == "true"
end

module:provides("adhoc", adhoc.new("Push notification settings", NS_SETTINGS,
	adhoc.simple_form(function(data)
		local username = jid.node(data.from)
		return settings_form(username and load(username))
	end, function(fields, data)
		local username = jid.node(data.from)
		local stored, err = load(username)
		if not stored then
			return { status = "error", error = { type = "wait",
				condition = "internal-server-error", message = tostring(err) } }
		end
		stored.prefs = { body = truthy(fields.body) or nil, sender = truthy(fields.sender) or nil }
		local ok, serr = save(username, stored)
		if not ok then
			return { status = "error", error = { type = "wait",
				condition = "resource-constraint", message = tostring(serr) } }
		end
		local notes = {}
		if with_body ~= "user" then
			notes[#notes + 1] = "the server " .. (with_body and "always" or "never")
				.. " includes message text"
		end
		if with_sender ~= "user" then
			notes[#notes + 1] = "the server " .. (with_sender and "always" or "never")
				.. " includes the sender"
		end
		return { status = "completed", info = #notes > 0
			and ("Saved; " .. table.concat(notes, ", ") .. ".") or "Saved." }
	end), "local_user"))

-- A reload keeps which sessions belong to which registration: that lives
-- on the sessions themselves (push_key, push_told).

module:add_item("account-feature", NS_PUSH)
module:add_item("account-feature", NS_PRIORITY)
module:hook("iq-set/self/" .. NS_PUSH .. ":enable", on_enable)
module:hook("iq-set/self/" .. NS_PUSH .. ":disable", on_disable)
module:hook("iq-set/self/" .. NS_PUSH .. ":enable", forget_known, 10)
module:hook("iq-set/self/" .. NS_PUSH .. ":disable", forget_known, 10)
module:hook("iq/bare", on_answer, 10)
module:hook("iq/self", on_answer, 10)
module:hook("smacks-hibernation-stanza-queued", on_queued)
module:hook("smacks-hibernation-end", on_hibernation_end)
-- Behind C gates (core.gate): a stanza to an account without a record
-- in the store (no registration, no settings) passes without entering Lua.
local gated_message = core.gate(on_message, "record", "to", store)
module:hook("message/bare", gated_message, 5)
module:hook("message/full", gated_message, 5)
module:hook("presence/bare", core.gate(on_subscribe, "record", "to", store), 5)
module:hook("user-deleted", on_deleted)
