-- mod_delegation: namespace delegation (XEP-0355, urn:xmpp:delegation:2).
--
-- Loaded on a VirtualHost; `delegations` hands the iqs of a namespace
-- addressed to the server to an external component:
--   delegations = { ["urn:example:custom"] = { jid = "comp.example.org" } }
-- The iq goes to the component wrapped in <delegation><forwarded/>, its
-- answer comes back the same way and goes to the requester unwrapped. The
-- component learns its namespaces in a <delegation/> message when it
-- connects; the server's disco#info lists them. While the component is not
-- connected the requester gets service-unavailable.

local core = require "starling.core"
local id = require "util.id"
local jid = require "util.jid"
local st = require "util.stanza"

local NS = "urn:xmpp:delegation:2"
local NS_FORWARD = "urn:xmpp:forward:0"

local host = module.host
local timeout = module:get_option_number("delegation_timeout", 30, 1)

-- namespace -> component domain
local delegated = {}
do
	local raw = module:get_option("delegations") or {}
	if type(raw) ~= "table" then
		error("option 'delegations' on " .. host .. ": a table of namespaces expected")
	end
	for ns, d in pairs(raw) do
		local domain = type(d) == "table" and d.jid and jid.prep(d.jid)
		if type(ns) ~= "string" or not domain then
			error(string.format("option 'delegations' on %s: [%q] = { jid = \"component\" } "
				.. "expected", host, tostring(ns)))
		end
		delegated[ns] = domain
	end
end

-- Forwarded iqs waiting for the component: our id -> { stanza, domain, timer }.
local pending = {}

local function advertise(domain)
	local m = st.message({ from = host, to = domain, id = id.new() })
		:tag("delegation", { xmlns = NS })
	local names = {}
	for ns, d in pairs(delegated) do
		if d == domain then
			names[#names + 1] = ns
		end
	end
	table.sort(names)
	for _, ns in ipairs(names) do
		m:tag("delegated", { namespace = ns }):up()
	end
	module:send(m)
end

local function answer(p, reply)
	p.timer:stop()
	module:send(reply)
end

-- An iq get/set of a delegated namespace to the server.
local function forward(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	local payload = stanza.tags[1]
	local domain = payload and delegated[payload.attr.xmlns]
	if (t ~= "get" and t ~= "set") or not domain then
		return nil
	end
	local qid = id.new()
	local original = stanza:clone()
	if not original.attr.from then
		original.attr.from = event.origin and event.origin.full_jid or nil
	end
	original.attr.to = original.attr.to or host
	local iq = st.iq({ type = t, id = qid, from = host, to = domain })
		:tag("delegation", { xmlns = NS })
		:tag("forwarded", { xmlns = NS_FORWARD })
	local copy = original:clone()
	copy.attr.xmlns = "jabber:client" -- not the wrapper's namespace
	iq:add_child(copy)
	local p = { stanza = original, domain = domain }
	p.timer = module:add_timer(timeout, function()
		if pending[qid] == p then
			pending[qid] = nil
			module:send(st.error_reply(original, "wait", "remote-server-timeout",
				"the component did not answer"))
		end
	end)
	pending[qid] = p
	module:send(iq)
	return true
end

-- The component's answer (or the bounce of our iq while it is away).
local function returned(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	local p = pending[stanza.attr.id]
	if (t ~= "result" and t ~= "error") or not p or jid.bare(stanza.attr.from or "") ~= p.domain then
		return nil
	end
	pending[stanza.attr.id] = nil
	local fwd = stanza:find("{" .. NS .. "}delegation/{" .. NS_FORWARD .. "}forwarded")
	local inner = fwd and fwd:get_child("iq", "jabber:client")
	local reply
	if inner and (inner.attr.type == "result" or inner.attr.type == "error") then
		reply = st.reply(p.stanza)
		reply.attr.type = inner.attr.type
		for _, child in ipairs(inner.tags) do
			reply:add_child(child:clone())
		end
	elseif t == "error" then
		local err = stanza:get_child("error")
		reply = st.error_reply(p.stanza, "cancel", "service-unavailable")
		if err then
			reply = st.reply(p.stanza)
			reply.attr.type = "error"
			reply:add_child(err:clone())
		end
	else
		reply = st.error_reply(p.stanza, "cancel", "internal-server-error",
			"the component's answer held no forwarded iq")
	end
	answer(p, reply)
	return true
end

local hosts = {}
for _, h in ipairs(core.hosts()) do
	hosts[h.name] = h.type
end
local advertised = {}
for ns, domain in pairs(delegated) do
	module:add_feature(ns)
	if not advertised[domain] then
		advertised[domain] = true
		if hosts[domain] == "component" then
			module:context(domain):hook("component-connected", function()
				advertise(domain)
			end)
		else
			module:log("warn", "delegations: %s is not a Component of this server", domain)
		end
	end
end
if next(delegated) then
	module:add_feature(NS)
end

module:hook("iq/host", forward, 100)
module:hook("iq/host", returned, 101)
