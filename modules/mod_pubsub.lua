-- mod_pubsub: a XEP-0060 publish-subscribe service as a component
-- (`Component "pubsub.example.org" "pubsub"`, docs/modules/pubsub.md),
-- on the engine util.pubsub with its XMPP side util.pubsub_iq.
--
-- Nodes and items are kept in the host's "pubsub_nodes" and "pubsub_items"
-- map stores. Whoever creates a node owns it; pubsub_admins (bare JIDs)
-- own every node. Who may create nodes: everyone, or with
-- pubsub_creators set, only those JIDs and the admins. The presence and
-- roster access models read the rosters of the node's owners that are
-- accounts on a host of this server.
--
-- Options: pubsub_max_items (the cap on max_items, and what "max"
-- means), pubsub_max_nodes, pubsub_max_item_size (bytes),
-- pubsub_default_max_items, pubsub_creators, pubsub_admins.

local core = require "starling.core"
local storagemanager = require "core.storagemanager"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local set = require "util.set"
local st = require "util.stanza"
local pubsub = require "util.pubsub"
local pubsub_iq = require "util.pubsub_iq"
local cost = require "util.cost"

local max_items = module:get_option_integer("pubsub_max_items", 256, 1)
local max_nodes = module:get_option_integer("pubsub_max_nodes", 10000, 1)
local max_item_size = module:get_option_size("pubsub_max_item_size", "64 KiB")
local default_max = module:get_option_integer("pubsub_default_max_items", 20, 1, max_items)
local creators = module:get_option_set("pubsub_creators", nil)
local admins = module:get_option_set("pubsub_admins", {})

local nodes_store = module:open_store("pubsub_nodes", "map")
local items_store = module:open_store("pubsub_items", "map")

local rosters = {}

-- The roster stores of a local host, or nil for a JID served elsewhere.
local function roster_store(host)
	if rosters[host] == nil then
		local ok = false
		for _, h in ipairs(core.hosts()) do
			ok = ok or (h.name == host and h.type == "local")
		end
		rosters[host] = ok and roster_lib.open(function(name, kind)
			return storagemanager.open(host, name, kind)
		end) or false
	end
	return rosters[host] or nil
end

-- The node's owners that are local accounts, each with its roster.
local function owner_rosters(record)
	local list = {}
	for owner, aff in pairs(record.affiliations) do
		local username, host = jid.split(owner)
		local rs = aff == "owner" and username and roster_store(host)
		local roster = rs and roster_lib.load(rs, username)
		if roster then
			list[#list + 1] = roster
		end
	end
	return list
end

local service

local function access_hooks(record)
	return {
		presence_subscribed = function(bare)
			for _, roster in ipairs(owner_rosters(record)) do
				if roster_lib.is_subscribed(roster, bare) then
					return true
				end
			end
			return false
		end,
		roster_groups = function(bare)
			local groups = set.new()
			for _, roster in ipairs(owner_rosters(record)) do
				local item = roster.items[bare]
				for _, g in ipairs(item and item.groups or {}) do
					groups:add(g)
				end
			end
			return groups
		end,
	}
end

service = pubsub.new({
	nodes = nodes_store, items = items_store, owner = "", jid = module.host,
	max_items = max_items, max_nodes = max_nodes,
	defaults = { max_items = default_max },
	may_create = function(bare)
		return creators == nil or creators:contains(bare) or admins:contains(bare)
	end,
})

-- The access models look at the record being checked.
local base_access = service.may_access
function service.may_access(self, record, actor)
	local hooks = access_hooks(record)
	self.presence_subscribed, self.roster_groups = hooks.presence_subscribed, hooks.roster_groups
	return base_access(self, record, actor)
end

local base_affiliation = service.affiliation
function service.affiliation(self, record, bare)
	if bare and admins:contains(bare) then
		return "owner"
	end
	return base_affiliation(self, record, bare)
end

local ctx = {
	send = function(stanza) module:send(stanza) end,
	reply = function(event, stanza) return module:reply(event, stanza) end,
	instant = true,
	max_item_size = max_item_size,
}

local function handle(event)
	return pubsub_iq.handle(service, event, ctx)
end

-- --- disco ------------------------------------------------------------------

local NS_INFO = "http://jabber.org/protocol/disco#info"
local NS_ITEMS = "http://jabber.org/protocol/disco#items"

local function node_info(event)
	local record = service:get_node(event.node)
	if not record or not service:may_access(record, event.stanza.attr.from) then
		return nil
	end
	event.reply:tag("identity", { category = "pubsub", type = "leaf" }):up()
		:tag("feature", { var = pubsub_iq.xmlns }):up()
	local meta = service:config_form(record.config, "result")
	event.reply:add_child(meta)
	return true
end

local function node_items(event)
	local record = service:get_node(event.node)
	if not record or not service:may_access(record, event.stanza.attr.from) then
		return nil
	end
	for _, it in ipairs(service:items_of(event.node) or {}) do
		event.reply:tag("item", { jid = module.host, name = it.id }):up()
	end
	return true
end

local function list_nodes(event)
	local names = service:node_names() or {}
	for _, name in ipairs(names) do
		local record = service:get_node(name)
		if record and service:may_access(record, event.stanza.attr.from) then
			event.reply:tag("item", { jid = module.host, node = name,
				name = record.config.title }):up()
		end
	end
end

module:add_identity("pubsub", "service", "Publish-Subscribe")
module:add_feature(pubsub_iq.xmlns)
for _, f in ipairs(pubsub_iq.FEATURES) do
	module:add_feature(pubsub_iq.xmlns .. "#" .. f)
end
module:add_feature(NS_INFO)
module:add_feature(NS_ITEMS)

local budget = cost.budget(module)
for _, kind in ipairs({ "iq-get", "iq-set" }) do
	module:hook(kind .. "/host/" .. pubsub_iq.xmlns .. ":pubsub", budget:wrap(1, handle))
	module:hook(kind .. "/host/" .. pubsub_iq.xmlns_owner .. ":pubsub", budget:wrap(1, handle))
end
module:hook("host-disco-info-node", node_info)
module:hook("host-disco-items-node", node_items)
module:hook("host-disco-items", list_nodes)

-- mod_disco answers disco on the component when it is loaded there (at
-- priority 0); the component answers its own otherwise.
local function own_disco(event)
	local stanza = event.stanza
	local q = stanza:get_child("query", NS_INFO) or stanza:get_child("query", NS_ITEMS)
	local reply = st.reply(stanza):tag("query", { xmlns = q.attr.xmlns, node = q.attr.node })
	local data = { origin = event.origin, stanza = stanza, reply = reply, node = q.attr.node }
	if q.attr.xmlns == NS_INFO then
		if q.attr.node then
			if not node_info(data) then
				return module:reply(event, st.error_reply(stanza, "cancel", "item-not-found"))
			end
		else
			for _, i in ipairs(module:get_identities()) do
				reply:tag("identity", { category = i.category, type = i.type, name = i.name }):up()
			end
			for _, var in ipairs(module:get_features()) do
				reply:tag("feature", { var = var }):up()
			end
		end
	elseif q.attr.node then
		if not node_items(data) then
			return module:reply(event, st.error_reply(stanza, "cancel", "item-not-found"))
		end
	else
		list_nodes(data)
	end
	return module:reply(event, reply)
end
module:hook("iq-get/host/" .. NS_INFO .. ":query", own_disco, -10)
module:hook("iq-get/host/" .. NS_ITEMS .. ":query", own_disco, -10)
