-- mod_disco: XEP-0030 service discovery for the server and for accounts,
-- with XEP-0128 extended information (docs/modules/disco.md).
--
-- What it lists comes from the items loaded modules contribute:
--   "identity", "feature", "extension"   the host (module:add_identity,
--                                        add_feature, add_extension)
--   "disco-item"  { jid =, name =, node = }  the host's disco#items
--   "account-feature", "account-identity", "account-extension"
--                                        every account's bare JID
-- plus the XEP-0157 contact addresses of the option contact_info (a
-- serverinfo form in the host's disco#info), and from events other
-- modules may hook (each gets { origin, stanza, reply, node, username?,
-- host? }; reply is the result being built):
--   "host-disco-info-node", "host-disco-items-node",
--   "account-disco-info-node", "account-disco-items-node"
--                        a query for a node: return true to send reply
--                        (else item-not-found)
--   "host-disco-items", "account-disco-items"
--                        add items to reply and return nil

local core = require "starling.core"
local jid = require "util.jid"
local presence_access = require "util.presence_access"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS_INFO = "http://jabber.org/protocol/disco#info"
local NS_ITEMS = "http://jabber.org/protocol/disco#items"
local NS_DATA = "jabber:x:data"
local NS_SERVERINFO = "http://jabber.org/network/serverinfo"

-- XEP-0157: the kinds of contact address; option key -> form field.
local contact_kinds = {
	abuse = "abuse-addresses", admin = "admin-addresses",
	feedback = "feedback-addresses", sales = "sales-addresses",
	security = "security-addresses", status = "status-addresses",
	support = "support-addresses",
}

local server_name = module:get_option_string("disco_name", "Starling")
local contact_info = module:get_option("contact_info")

local roster_store = roster_lib.open(module)

local function unique_sorted(list)
	local seen, out = {}, {}
	for _, v in ipairs(list) do
		if not seen[v] then
			seen[v] = true
			out[#out + 1] = v
		end
	end
	table.sort(out)
	return out
end

local function add_info(reply, identities, features, extensions)
	for _, i in ipairs(identities) do
		reply:tag("identity", { category = i.category, type = i.type, name = i.name }):up()
	end
	for _, var in ipairs(features) do
		reply:tag("feature", { var = var }):up()
	end
	for _, form in ipairs(extensions) do
		reply:add_child(form)
	end
	return reply
end

-- Answers a query for a node through the named event, or item-not-found.
local function node_query(event, ns, name, node, extra)
	local reply = st.reply(event.stanza):tag("query", { xmlns = ns, node = node })
	local data = { origin = event.origin, stanza = event.stanza, reply = reply, node = node }
	for k, v in pairs(extra or {}) do
		data[k] = v
	end
	if module:fire_event(name, data) then
		return module:reply(event, reply)
	end
	return module:reply(event, st.error_reply(event.stanza, "cancel", "item-not-found"))
end

-- --- the server ---------------------------------------------------------

-- The XEP-0157 form for contact_info = { abuse = { "mailto:..." }, ... }
-- (a single string counts as a list of one); nil when there is none.
-- A value of the wrong shape stops the module from loading.
local function serverinfo_form(info)
	if info == nil then
		return nil
	end
	local function bad(what)
		error("option 'contact_info' on host '" .. module.host .. "': " .. what, 0)
	end
	if type(info) ~= "table" then
		bad("expected a table such as { abuse = { \"mailto:abuse@example.com\" } }")
	end
	local kinds, lists = {}, {}
	for kind, addresses in pairs(info) do
		if not contact_kinds[kind] then
			bad("unknown kind '" .. tostring(kind) .. "' (abuse, admin, feedback, sales, "
				.. "security, status, support)")
		end
		if type(addresses) == "string" then
			addresses = { addresses }
		elseif type(addresses) ~= "table" then
			bad("the addresses of '" .. kind .. "' must be a list of URIs")
		end
		for _, uri in ipairs(addresses) do
			if type(uri) ~= "string" then
				bad("the addresses of '" .. kind .. "' must be strings")
			end
		end
		kinds[#kinds + 1], lists[kind] = kind, addresses
	end
	table.sort(kinds)
	local form = st.stanza("x", { xmlns = NS_DATA, type = "result" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" })
		:text_tag("value", NS_SERVERINFO):up()
	for _, kind in ipairs(kinds) do
		form:tag("field", { var = contact_kinds[kind], type = "list-multi" })
		for _, uri in ipairs(lists[kind]) do
			form:text_tag("value", uri)
		end
		form:up()
	end
	return form
end

local function host_info(event)
	local node = event.stanza:get_child("query", NS_INFO).attr.node
	if node then
		return node_query(event, NS_INFO, "host-disco-info-node", node)
	end
	local reply = st.reply(event.stanza):tag("query", { xmlns = NS_INFO })
	add_info(reply, module:get_identities(), module:get_features(),
		module:get_host_items("extension"))
	return module:reply(event, reply)
end

-- Every Component host of the config (XEP-0114 external ones and those a
-- module serves), named by its section's option "name" when it has one,
-- as Prosody lists them.
local function component_items()
	local cfg, items = core.config(), {}
	for _, h in ipairs(core.hosts()) do
		if h.type == "component" then
			items[#items + 1] = { jid = h.name, name = cfg and cfg:get(h.name, "name") or nil }
		end
	end
	return items
end

local function host_items(event)
	local node = event.stanza:get_child("query", NS_ITEMS).attr.node
	if node then
		return node_query(event, NS_ITEMS, "host-disco-items-node", node)
	end
	local reply = st.reply(event.stanza):tag("query", { xmlns = NS_ITEMS })
	local listed = {}
	for _, item in ipairs(module:get_host_items("disco-item")) do
		if not item.node then
			listed[item.jid] = true
		end
		reply:tag("item", { jid = item.jid, name = item.name, node = item.node }):up()
	end
	for _, item in ipairs(component_items()) do
		if not listed[item.jid] then
			reply:tag("item", { jid = item.jid, name = item.name }):up()
		end
	end
	module:fire_event("host-disco-items", { origin = event.origin, stanza = event.stanza,
		reply = reply })
	return module:reply(event, reply)
end

-- --- accounts -------------------------------------------------------------

-- The account itself, and contacts subscribed to its presence, may look.
local function may_see(stanza, username, host)
	return presence_access.may_see(roster_store, username, host, stanza.attr.from)
end

local function account_identities()
	local list = { { category = "account", type = "registered" } }
	for _, i in ipairs(module:get_host_items("account-identity")) do
		list[#list + 1] = i
	end
	return list
end

local function account_info(event, username, host)
	local stanza = event.stanza
	if not (core.user_exists(username, host) and may_see(stanza, username, host)) then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	local node = stanza:get_child("query", NS_INFO).attr.node
	if node then
		return node_query(event, NS_INFO, "account-disco-info-node", node,
			{ username = username, host = host })
	end
	local reply = st.reply(stanza):tag("query", { xmlns = NS_INFO })
	add_info(reply, account_identities(),
		unique_sorted(module:get_host_items("account-feature")),
		module:get_host_items("account-extension"))
	return module:reply(event, reply)
end

local function account_items(event, username, host)
	local stanza = event.stanza
	if not (core.user_exists(username, host) and may_see(stanza, username, host)) then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	local node = stanza:get_child("query", NS_ITEMS).attr.node
	if node then
		return node_query(event, NS_ITEMS, "account-disco-items-node", node,
			{ username = username, host = host })
	end
	local reply = st.reply(stanza):tag("query", { xmlns = NS_ITEMS })
	module:fire_event("account-disco-items", { origin = event.origin, stanza = stanza,
		reply = reply, username = username, host = host })
	return module:reply(event, reply)
end

local function bare_info(event)
	local username, host = jid.split(event.stanza.attr.to)
	return account_info(event, username, host)
end

local function self_info(event)
	return account_info(event, event.origin.username, event.origin.host)
end

local function bare_items(event)
	local username, host = jid.split(event.stanza.attr.to)
	return account_items(event, username, host)
end

local function self_items(event)
	return account_items(event, event.origin.username, event.origin.host)
end

if module:get_host_type() ~= "component" then	-- a component names its own
	module:add_identity("server", "im", server_name)
end
module:add_feature(NS_INFO)
module:add_feature(NS_ITEMS)
module:add_item("account-feature", NS_INFO)
module:add_item("account-feature", NS_ITEMS)
local serverinfo = serverinfo_form(contact_info)
if serverinfo then
	module:add_extension(serverinfo)
end

module:hook("iq-get/host/" .. NS_INFO .. ":query", host_info)
module:hook("iq-get/host/" .. NS_ITEMS .. ":query", host_items)
module:hook("iq-get/bare/" .. NS_INFO .. ":query", bare_info)
module:hook("iq-get/bare/" .. NS_ITEMS .. ":query", bare_items)
module:hook("iq-get/self/" .. NS_INFO .. ":query", self_info)
module:hook("iq-get/self/" .. NS_ITEMS .. ":query", self_items)
