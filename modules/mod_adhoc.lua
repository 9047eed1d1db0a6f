-- mod_adhoc: XEP-0050 ad-hoc commands (docs/modules/adhoc.md).
--
-- Modules provide commands with module:provides("adhoc", adhoc.new(...))
-- (util.adhoc says what a command is and what its handler returns). This
-- module lists them in the host's disco#items at the commands node (only
-- those the requester may run), describes each at its own node, and runs
-- them: <command action='execute'/> starts a session, later stages carry
-- its sessionid, and a session that has not moved for adhoc_session_timeout
-- seconds is forgotten.
--
-- Who may run what: "any" anyone; "user" and "local_user" an account of
-- this host; "admin" a JID the option admins names. Anyone else gets
-- forbidden, and a command they may not run is not listed for them.

local core = require "starling.core"
local id = require "util.id"
local jid = require "util.jid"
local st = require "util.stanza"

local NS = "http://jabber.org/protocol/commands"
local NS_DATA = "jabber:x:data"

local timeout = module:get_option_period("adhoc_session_timeout", 600)

-- sessions[sessionid] = { command =, state =, owner = full JID, actions =,
-- touched = uptime }
local sessions = {}

local function admins()
	local set = {}
	for _, a in ipairs(module:get_option_array("admins", {})) do
		local bare = jid.prep(a)
		if bare then
			set[jid.bare(bare)] = true
		end
	end
	return set
end

-- Whether the requester (a full JID; origin its session when local) may
-- run command.
local function may_run(command, from, origin)
	local p = command.permission
	if p == "any" then
		return true
	end
	local bare = jid.bare(from or "")
	local _, host = jid.split(bare)
	local local_user = origin ~= nil and origin.username ~= nil and host == module.host
	if p == "admin" then
		return local_user and admins()[bare] == true
	end
	return local_user
end

local function commands()
	local out = {}
	for _, c in ipairs(module:get_host_items("adhoc-provider")) do
		if c.node then
			out[#out + 1] = c
		end
	end
	return out
end

local function find(node)
	for _, c in ipairs(commands()) do
		if c.node == node then
			return c
		end
	end
	return nil
end

-- --- disco ------------------------------------------------------------------

module:add_feature(NS)

module:hook("host-disco-items-node", function(event)
	if event.node ~= NS then
		return nil
	end
	local from = event.stanza.attr.from
	for _, c in ipairs(commands()) do
		if may_run(c, from, event.origin) then
			event.reply:tag("item", { jid = module.host, node = c.node, name = c.name }):up()
		end
	end
	return true
end)

module:hook("host-disco-info-node", function(event)
	if event.node == NS then
		event.reply:tag("identity", { category = "automation", type = "command-list",
			name = "Ad-hoc commands" }):up()
		return true
	end
	local c = find(event.node)
	if not c or not may_run(c, event.stanza.attr.from, event.origin) then
		return nil
	end
	event.reply:tag("identity", { category = "automation", type = "command-node", name = c.name }):up()
		:tag("feature", { var = NS }):up()
		:tag("feature", { var = NS_DATA }):up()
	return true
end)

-- --- running ----------------------------------------------------------------

local valid_actions = { execute = true, cancel = true, prev = true, next = true, complete = true }

-- An iq error with a XEP-0050 specific condition under the stanza one.
local function fail(event, type_, condition, specific, text)
	local reply = st.error_reply(event.stanza, type_, condition, text)
	if specific then
		reply:get_child("error"):tag(specific, { xmlns = NS }):up()
	end
	return module:reply(event, reply)
end

local function respond(event, c, sessionid, result)
	local status = result.status or "completed"
	local reply = st.reply(event.stanza):tag("command", { xmlns = NS, node = c.node,
		sessionid = sessionid, status = status })
	if status == "executing" then
		local actions = result.actions or { "complete", default = "complete" }
		reply:tag("actions", { execute = actions.default or actions[#actions] })
		for _, a in ipairs(actions) do
			reply:tag(a):up()
		end
		reply:up()
	end
	for _, kind in ipairs({ "info", "warn", "error" }) do
		local text = result[kind]
		if type(text) == "string" then
			reply:text_tag("note", text, { type = kind })
		end
	end
	local form = result.form
	if type(form) == "table" and type(form.form) == "function" then
		form = form:form()
	end
	if form then
		reply:add_child(form)
	end
	return module:reply(event, reply)
end

local function run(event)
	local stanza = event.stanza
	local cmd = stanza:get_child("command", NS)
	local action = cmd.attr.action or "execute"
	if not valid_actions[action] then
		return fail(event, "modify", "bad-request", "malformed-action")
	end
	local c = find(cmd.attr.node or "")
	if not c then
		return fail(event, "cancel", "item-not-found")
	end
	local from = stanza.attr.from
	if not may_run(c, from, event.origin) then
		return fail(event, "auth", "forbidden", nil, "you may not run this command")
	end
	local sessionid, s = cmd.attr.sessionid, nil
	if sessionid then
		s = sessions[sessionid]
		if not s or s.owner ~= from or s.command ~= c then
			return fail(event, "modify", "bad-request", "bad-sessionid")
		end
		if action == "execute" then
			action = s.actions and s.actions.default or "complete"
		elseif action ~= "cancel" and s.actions then
			local offered = false
			for _, a in ipairs(s.actions) do
				offered = offered or a == action
			end
			if not offered then
				return fail(event, "modify", "bad-request", "bad-action")
			end
		end
	else
		sessionid = id.new()
	end
	local data = { action = action, form = cmd:get_child("x", NS_DATA), from = from,
		to = stanza.attr.to or module.host, origin = event.origin, stanza = stanza }
	local ok, result, state = pcall(c.handler, c, data, s and s.state)
	if not ok then
		module:log("error", "command %s failed: %s", c.node, tostring(result))
		sessions[sessionid] = nil
		return fail(event, "cancel", "internal-server-error")
	end
	if type(result) ~= "table" then
		result = { status = "completed" }
	end
	if result.status == "error" then
		sessions[sessionid] = nil
		local e = result.error or {}
		return fail(event, e.type or "cancel", e.condition or "undefined-condition", nil, e.message)
	end
	if result.status == "executing" then
		sessions[sessionid] = { command = c, state = state, owner = from,
			actions = result.actions or { "complete", default = "complete" }, touched = core.uptime() }
	else
		sessions[sessionid] = nil
	end
	return respond(event, c, sessionid, result)
end

module:hook("iq-set/host/" .. NS .. ":command", run)

module:add_timer(60, function()
	local now = core.uptime()
	for sid, s in pairs(sessions) do
		if now - s.touched > timeout then
			sessions[sid] = nil
		end
	end
	return 60
end)

function module.save()
	return { sessions = sessions }
end

function module.restore(state)
	sessions = state and state.sessions or sessions
end
