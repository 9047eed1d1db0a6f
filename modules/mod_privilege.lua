-- mod_privilege: privileged entities (XEP-0356, urn:xmpp:privilege:2).
--
-- Loaded on a VirtualHost; `privileges` (or Prosody's name
-- `privileged_entities`) grants external components rights over the
-- host's accounts:
--   privileges = { ["gateway.example.org"] = { roster = "both",
--       message = "outgoing", presence = "roster",
--       iq = { ["jabber:iq:roster"] = "both" } } }
-- roster:   "get" | "set" | "both" (an iq to the account's bare JID)
-- message:  "outgoing" (a <privilege><forwarded><message/> sent as the account)
-- presence: "managed_entity" (the accounts' presence) | "roster" (and
--           their contacts')
-- iq:       namespace -> "get" | "set" | "both" (<privileged_iq/>)
-- The component learns what it has in a <privilege/> message when it
-- connects.

local core = require "starling.core"
local id = require "util.id"
local jid = require "util.jid"
local st = require "util.stanza"

local NS = "urn:xmpp:privilege:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_ROSTER = "jabber:iq:roster"

local roster_module = module:depends("roster")
local host = module.host

local ACCESS = {
	roster = { none = true, get = true, set = true, both = true },
	message = { none = true, outgoing = true },
	presence = { none = true, managed_entity = true, roster = true },
}
local IQ_TYPES = { get = true, set = true, both = true }

-- The configured grants, checked: domain -> { roster, message, presence,
-- iq = { ns -> type } }.
local function read_grants()
	local raw = module:get_option("privileges") or module:get_option("privileged_entities") or {}
	local grants = {}
	if type(raw) ~= "table" then
		error("option 'privileges' on " .. host .. ": a table of component domains expected")
	end
	for domain, perms in pairs(raw) do
		if type(domain) ~= "string" or type(perms) ~= "table" then
			error("option 'privileges' on " .. host .. ": { [\"domain\"] = { ... } } expected")
		end
		local g = { iq = {} }
		for access, values in pairs(ACCESS) do
			local v = perms[access] or "none"
			if not values[v] then
				error(string.format("option 'privileges' on %s: %s = %q for %s is not one of "
					.. "the XEP-0356 types", host, access, tostring(v), domain))
			end
			g[access] = v
		end
		for ns, t in pairs(perms.iq or {}) do
			if type(ns) ~= "string" or not IQ_TYPES[t] then
				error(string.format("option 'privileges' on %s: iq[%q] for %s must be "
					.. "\"get\", \"set\" or \"both\"", host, tostring(ns), domain))
			end
			g.iq[ns] = t
		end
		grants[jid.prep(domain) or domain] = g
	end
	return grants
end

local grants = read_grants()

-- The grant of the component a stanza comes from (nil: none).
local function grant_of(event)
	local origin, from = event.origin, event.stanza.attr.from
	if not from or (origin and origin.type ~= "component") then
		return nil
	end
	return grants[jid.host(from)], jid.host(from)
end

local function allows(kind, wanted)
	return kind == "both" or kind == wanted
end

-- --- the advertisement (XEP-0356 section 7) ----------------------------------

local function advertise(domain)
	local g = grants[domain]
	local m = st.message({ from = host, to = domain, id = id.new() })
		:tag("privilege", { xmlns = NS })
	for _, access in ipairs({ "roster", "message", "presence" }) do
		if g[access] ~= "none" then
			m:tag("perm", { access = access, type = g[access] }):up()
		end
	end
	if next(g.iq) then
		m:tag("perm", { access = "iq" })
		local names = {}
		for ns in pairs(g.iq) do
			names[#names + 1] = ns
		end
		table.sort(names)
		for _, ns in ipairs(names) do
			m:tag("namespace", { ns = ns, type = g.iq[ns] }):up()
		end
		m:up()
	end
	module:send(m)
end

-- An origin that stands for the account `bare` (Lua handlers read
-- username, host, bare_jid and send through it); replies go through wrap.
local function as_account(bare, wrap)
	local node, h = jid.split(bare)
	return {
		type = "c2s", username = node, host = h, bare_jid = bare, full_jid = bare,
		authenticated = true, privileged = true,
		send = function(_, s) module:send(wrap and wrap(s) or s) end,
		pause_reading = function() end,
	}
end

local function is_account(bare)
	local node, h, resource = jid.split(bare)
	return node and h == host and not resource and core.user_exists(node, h)
end

local function refuse(event, text)
	module:send(st.error_reply(event.stanza, "auth", "forbidden", text))
	return true
end

-- --- roster (section 5) -------------------------------------------------------

local function roster_access(wanted)
	return function(event)
		local g = grant_of(event)
		if not g then
			return nil -- mod_roster: forbidden
		end
		if not allows(g.roster, wanted) then
			return refuse(event, "no roster " .. wanted .. " permission")
		end
		local to = event.stanza.attr.to
		if not is_account(to) then
			module:send(st.error_reply(event.stanza, "cancel", "item-not-found"))
			return true
		end
		local handler = wanted == "get" and roster_module.handle_get or roster_module.handle_set
		return handler({ origin = as_account(to), stanza = event.stanza })
	end
end

-- --- message (section 6) ------------------------------------------------------

local function totype(to)
	local node, _, resource = jid.split(to)
	if resource then
		return "full"
	end
	return node and "bare" or "host"
end

local function privileged_message(event)
	local stanza = event.stanza
	local priv = stanza:get_child("privilege", NS)
	if not priv then
		return nil
	end
	local g = grant_of(event)
	if not g or g.message ~= "outgoing" then
		return refuse(event, "no message permission")
	end
	local fwd = priv:get_child("forwarded", NS_FORWARD)
	local inner = fwd and fwd:get_child("message", "jabber:client")
	if not inner or not inner.attr.from or not inner.attr.to then
		module:send(st.error_reply(stanza, "modify", "bad-request",
			"a <forwarded/> message with 'from' and 'to' is expected"))
		return true
	end
	local from = jid.prep(inner.attr.from)
	if not from or not is_account(jid.bare(from)) then
		return refuse(event, "the message is not from an account of " .. host)
	end
	local msg = inner:clone()
	msg.attr.xmlns = nil
	msg.attr.from = from
	local origin = as_account(jid.bare(from))
	origin.full_jid = from
	-- account: for the archiver (mod_mam's handler in C has no use for
	-- a Lua origin)
	if not module:fire_event("pre-message/" .. totype(msg.attr.to),
	    { origin = origin, stanza = msg, account = jid.bare(from) }) then
		module:send(msg)
	end
	return true
end

-- --- presence (section 8) -----------------------------------------------------

local function presence_to(wanted, stanza)
	local t = stanza.attr.type
	if t ~= nil and t ~= "unavailable" then
		return
	end
	for domain, g in pairs(grants) do
		-- (not its own presence back to a component)
		if (g.presence == "roster" or g.presence == wanted)
		    and jid.host(stanza.attr.from) ~= domain then
			local copy = stanza:clone()
			copy.attr.to = domain
			module:send(copy)
		end
	end
end

-- An account's own broadcast.
local function own_presence(event)
	local origin = event.origin
	if origin and origin.username and origin.full_jid and not origin.privileged then
		local copy = event.stanza:clone()
		copy.attr.from = origin.full_jid
		presence_to("managed_entity", copy)
	end
end

local function gone(event)
	local s = event.session
	if s and s.full_jid and s.username then
		presence_to("managed_entity", st.presence({ from = s.full_jid, type = "unavailable" }))
	end
end

-- A contact's presence to an account ("roster" only): from a contact
-- whose presence the account is subscribed to (to or both).
local SUBSCRIBED = { to = true, both = true }

local function contact_presence(event)
	local stanza = event.stanza
	local from, to = stanza.attr.from, stanza.attr.to
	local node = to and jid.node(to)
	if not (from and node) then
		return nil
	end
	local roster = roster_module.load_roster(node)
	local item = roster and roster.items[jid.bare(from)]
	if item and SUBSCRIBED[item.subscription] then
		presence_to("roster", stanza)
	end
	return nil
end

-- --- iq (section 9, v0.4) -----------------------------------------------------

local function wrap_reply(outer)
	return function(inner)
		local reply = st.reply(outer)
		if inner.attr.type == "error" then
			reply.attr.type = "error"
		end
		local copy = inner:clone()
		copy.attr.xmlns = "jabber:client" -- not the wrapper's namespace
		reply:tag("privileged_iq", { xmlns = NS }):add_child(copy):up()
		local err = inner:get_child("error")
		if err then
			reply:add_child(err:clone())
		end
		return reply
	end
end

local function privileged_iq(event)
	local stanza = event.stanza
	local g = grant_of(event)
	if not g then
		return refuse(event, "no iq permission")
	end
	local wrapper = stanza:get_child("privileged_iq", NS)
	local inner = wrapper and wrapper:get_child("iq", "jabber:client")
	local payload = inner and inner.tags[1]
	local t = inner and inner.attr.type
	if not payload or (t ~= "get" and t ~= "set") or not inner.attr.id then
		module:send(st.error_reply(stanza, "modify", "bad-request",
			"<privileged_iq/> holds one iq get or set with a payload"))
		return true
	end
	local user = stanza.attr.to
	local from = inner.attr.from and jid.prep(inner.attr.from)
	local to = inner.attr.to and jid.prep(inner.attr.to) or user
	if from ~= user or to ~= user or not is_account(user) then
		return refuse(event, "the inner iq must be from and to the account's bare JID")
	end
	local ns = payload.attr.xmlns
	if not (g.iq[ns] and allows(g.iq[ns], t)) then
		return refuse(event, "no iq " .. t .. " permission for " .. tostring(ns))
	end
	local iq = inner:clone()
	iq.attr.xmlns = nil
	local origin = as_account(user, wrap_reply(stanza))
	local ev = { origin = origin, stanza = iq }
	if module:fire_event("iq-" .. t .. "/self/" .. ns .. ":" .. payload.name, ev) then
		return true
	end
	origin:send(st.error_reply(iq, "cancel", "service-unavailable"))
	return true
end

-- --- hooks --------------------------------------------------------------------

local hosts = {}
for _, h in ipairs(core.hosts()) do
	hosts[h.name] = h.type
end
for domain in pairs(grants) do
	if hosts[domain] == "component" then
		module:context(domain):hook("component-connected", function()
			advertise(domain)
		end)
	else
		module:log("warn", "privileges: %s is not a Component of this server", domain)
	end
end

module:hook("iq-get/bare/" .. NS_ROSTER .. ":query", roster_access("get"), 1)
module:hook("iq-set/bare/" .. NS_ROSTER .. ":query", roster_access("set"), 1)
module:hook("message/host", privileged_message, 10)
module:hook("presence/self", own_presence, 10)
module:hook("resource-unbind", gone)
module:hook("presence/bare", contact_presence, 10)
module:hook("presence/full", contact_presence, 10)
module:hook("iq-get/bare/" .. NS .. ":privileged_iq", privileged_iq)
module:hook("iq-set/bare/" .. NS .. ":privileged_iq", privileged_iq)
