-- util.pubsub: the publish-subscribe engine (XEP-0060) under both the
-- pubsub component (mod_pubsub) and PEP (mod_pep, XEP-0163): nodes, their
-- configuration, affiliations, subscriptions and items, kept in two map
-- stores, and the rules that say who may do what. The XMPP side (parsing
-- requests, answering, notifications) is util.pubsub_iq.
--
-- Words used here:
--   service  one pubsub service: the component's host, or one account's PEP
--   owner    the store user of a service's nodes: "" for a component, the
--            account's username for PEP
--   record   a node as stored: { config = {...}, affiliations = { [bare
--            JID] = "owner" | "publisher" | "member" | "outcast" },
--            subscriptions = { [JID] = { subid = "...", deliver = bool } },
--            created = time }
--   item     { id =, seq =, publisher =, payload = <item/> element, time = }
--
-- Stores: nodes (map: owner -> node name -> record); items (map: owner ..
-- "/" .. node -> item id -> item). One publish writes one item record (and
-- deletes the one it pushes out); the node record is not rewritten.
--
--   new(opts)  a service: opts = {
--     nodes, items      the two map stores
--     owner             store user ("" or a username)
--     jid               the service's address (the 'from' of notifications)
--     defaults          node configuration defaults (a table of the keys
--                       of CONFIG below)
--     max_items         the cap on any node's max_items ("max" means it)
--     max_nodes         nodes per service, max_item_size bytes per item
--     owner_jid         PEP: the account's bare JID, owner of every node
--     presence_subscribed(bare)  true when bare receives the owner's presence
--     roster_groups(bare)        the groups bare is in, a set, or nil
--     may_create(bare)           true when bare may create nodes
--   }

local st = require "util.stanza"
local id = require "util.id"

local pairs, ipairs, type, tostring, tonumber = pairs, ipairs, type, tostring, tonumber
local sort, os_time, math_type = table.sort, os.time, math.type

local M = {}

-- The node configuration: form var, key in record.config, field type,
-- and for a list the values allowed.
M.CONFIG = {
	{ var = "pubsub#title", key = "title", type = "text-single" },
	{ var = "pubsub#description", key = "description", type = "text-single" },
	{ var = "pubsub#type", key = "type", type = "text-single" },
	{ var = "pubsub#access_model", key = "access_model", type = "list-single",
		options = { "open", "presence", "roster", "whitelist" } },
	{ var = "pubsub#roster_groups_allowed", key = "roster_groups_allowed", type = "list-multi" },
	{ var = "pubsub#publish_model", key = "publish_model", type = "list-single",
		options = { "publishers", "subscribers", "open" } },
	{ var = "pubsub#max_items", key = "max_items", type = "text-single" },
	{ var = "pubsub#persist_items", key = "persist_items", type = "boolean" },
	{ var = "pubsub#deliver_notifications", key = "deliver_notifications", type = "boolean" },
	{ var = "pubsub#deliver_payloads", key = "deliver_payloads", type = "boolean" },
	{ var = "pubsub#notify_config", key = "notify_config", type = "boolean" },
	{ var = "pubsub#notify_delete", key = "notify_delete", type = "boolean" },
	{ var = "pubsub#notify_retract", key = "notify_retract", type = "boolean" },
	{ var = "pubsub#notification_type", key = "notification_type", type = "list-single",
		options = { "normal", "headline" } },
	{ var = "pubsub#send_last_published_item", key = "send_last_published_item",
		type = "list-single", options = { "never", "on_sub", "on_sub_and_presence" } },
	{ var = "pubsub#itemreply", key = "itemreply", type = "list-single",
		options = { "owner", "publisher" } },
}
local CONFIG_BY_VAR = {}
for _, f in ipairs(M.CONFIG) do
	CONFIG_BY_VAR[f.var] = f
end

M.DEFAULTS = {
	access_model = "open", publish_model = "publishers", max_items = 10,
	persist_items = true, deliver_notifications = true, deliver_payloads = true,
	notify_config = false, notify_delete = true, notify_retract = true,
	notification_type = "headline", send_last_published_item = "never",
	itemreply = "owner", roster_groups_allowed = {},
}

-- PEP's node defaults over those (XEP-0163: presence access, the last
-- item to contacts that come online), and its caps per account; mod_pep
-- and starlingctl import-prosody use them.
M.PEP_DEFAULTS = {
	access_model = "presence", max_items = 1, send_last_published_item = "on_sub_and_presence",
	notify_delete = true, notify_retract = true,
}
M.PEP_MAX_ITEMS, M.PEP_MAX_NODES = 256, 256

local AFFILIATIONS = { owner = true, publisher = true, member = true, none = true, outcast = true }
M.AFFILIATIONS = AFFILIATIONS

-- An error as util.stanza's error_reply takes it, with a pubsub#errors
-- condition (and the feature, for unsupported).
local NS_ERRORS = "http://jabber.org/protocol/pubsub#errors"
function M.err(etype, condition, app, feature, text)
	local e = { type = etype, condition = condition, text = text }
	if app then
		e.extra = { tag = st.stanza(app, { xmlns = NS_ERRORS, feature = feature }) }
	end
	return e
end
local err = M.err

local service_mt = {}
service_mt.__index = service_mt

function M.new(opts)
	local s = setmetatable({}, service_mt)
	for k, v in pairs(opts) do
		s[k] = v
	end
	local defaults = {}
	for k, v in pairs(M.DEFAULTS) do
		defaults[k] = v
	end
	for k, v in pairs(opts.defaults or {}) do
		defaults[k] = v
	end
	s.defaults = defaults
	return s
end

-- --- configuration -----------------------------------------------------------

local function copy(t)
	local out = {}
	for k, v in pairs(t) do
		out[k] = type(v) == "table" and copy(v) or v
	end
	return out
end

local function bool(text)
	if text == "1" or text == "true" then
		return true
	elseif text == "0" or text == "false" then
		return false
	end
	return nil
end

-- The effective max_items of a config: a number, capped.
function service_mt:item_cap(config)
	local n = config.max_items
	if n == "max" or type(n) ~= "number" or n > self.max_items then
		return self.max_items
	end
	return n
end

function service_mt:default_config()
	return copy(self.defaults)
end

-- Reads submitted fields ({ var = { values } }) into a copy of config.
-- Returns the new config, or nil, error. Unknown fields are refused.
function service_mt:apply_fields(config, fields)
	local new = copy(config)
	for var, values in pairs(fields) do
		local f = CONFIG_BY_VAR[var]
		if not f then
			return nil, err("modify", "not-acceptable", nil, nil, "unknown field " .. var)
		end
		local v = values[1]
		if f.type == "boolean" then
			local b = bool(v)
			if b == nil then
				return nil, err("modify", "not-acceptable", nil, nil, var .. " must be a boolean")
			end
			new[f.key] = b
		elseif f.type == "list-multi" then
			new[f.key] = copy(values)
		elseif f.key == "max_items" then
			local n = v and tonumber(v)
			if v == "max" then
				new.max_items = "max"
			elseif not n or math_type(n) ~= "integer" or n < 1 then
				return nil, err("modify", "not-acceptable", nil, nil, "max_items must be a whole number or max")
			elseif n > self.max_items then
				return nil, err("modify", "not-acceptable", nil, nil,
					"max_items may be at most " .. self.max_items)
			else
				new.max_items = n
			end
		elseif f.options then
			local ok = false
			for _, o in ipairs(f.options) do
				ok = ok or o == v
			end
			if not ok then
				local e = err("modify", "not-acceptable", nil, nil, var .. ": unsupported value")
				if f.key == "access_model" then
					e = err("modify", "not-acceptable", "unsupported-access-model")
				end
				return nil, e
			end
			new[f.key] = v
		else
			new[f.key] = v
		end
	end
	return new
end

-- XEP-0060 7.1.5: every field of the preconditions matches config.
function service_mt:preconditions_met(config, fields)
	for var, values in pairs(fields) do
		local f = CONFIG_BY_VAR[var]
		if not f then
			return false
		end
		local have, want = config[f.key], values[1]
		if f.type == "boolean" then
			if bool(want) ~= have then
				return false
			end
		elseif f.type == "list-multi" then
			local a, b = copy(have or {}), copy(values)
			sort(a)
			sort(b)
			if #a ~= #b then
				return false
			end
			for i = 1, #a do
				if a[i] ~= b[i] then
					return false
				end
			end
		elseif f.key == "max_items" then
			if tostring(have) ~= want and not (want == "max" and self:item_cap(config) == self.max_items
					and have == self.max_items) then
				return false
			end
		elseif have ~= want then
			return false
		end
	end
	return true
end

-- The config as a form (type "form" to fill, "result" to show).
function service_mt:config_form(config, form_type)
	local x = st.stanza("x", { xmlns = "jabber:x:data", type = form_type or "form" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" })
		:text_tag("value", "http://jabber.org/protocol/pubsub#node_config"):up()
	for _, f in ipairs(M.CONFIG) do
		x:tag("field", { var = f.var, type = f.type })
		local v = config[f.key]
		if f.type == "boolean" then
			x:text_tag("value", v and "1" or "0")
		elseif f.type == "list-multi" then
			for _, g in ipairs(v or {}) do
				x:text_tag("value", g)
			end
		elseif v ~= nil then
			x:text_tag("value", tostring(v))
		end
		for _, o in ipairs(f.options or {}) do
			x:tag("option"):text_tag("value", o):up()
		end
		x:up()
	end
	return x
end

-- --- nodes ---------------------------------------------------------------------

function service_mt:items_user(node)
	return self.owner .. "/" .. node
end

-- The record of node, or nil (no such node), or nil, error.
function service_mt:get_node(node)
	local record, e = self.nodes:get(self.owner, node)
	if e then
		return nil, err("wait", "internal-server-error")
	end
	if type(record) ~= "table" then
		return nil
	end
	record.affiliations = record.affiliations or {}
	record.subscriptions = record.subscriptions or {}
	return record
end

function service_mt:save_node(node, record)
	local ok, e = self.nodes:set(self.owner, node, record)
	if not ok then
		return nil, { type = "wait", condition = (st.storage_unavailable(e) and "resource-constraint")
			or "internal-server-error" }
	end
	return true
end

function service_mt:node_names()
	local all, e = self.nodes:get(self.owner)
	if e then
		return nil, err("wait", "internal-server-error")
	end
	local names = {}
	for name in pairs(all or {}) do
		names[#names + 1] = name
	end
	sort(names)
	return names, all or {}
end

function service_mt:affiliation(record, bare)
	if bare == nil then
		return "none"
	end
	if self.owner_jid and bare == self.owner_jid then
		return "owner"
	end
	return record.affiliations[bare] or "none"
end

-- Creates node for actor (a bare JID) with config (or the defaults).
function service_mt:create(node, actor, config)
	local existing, e = self:get_node(node)
	if e then
		return nil, e
	elseif existing then
		return nil, err("cancel", "conflict")
	end
	if self.may_create and not self.may_create(actor) then
		return nil, err("auth", "forbidden")
	end
	if self.max_nodes then
		local names, e2 = self:node_names()
		if not names then
			return nil, e2
		elseif #names >= self.max_nodes then
			return nil, err("wait", "resource-constraint", "max-nodes-exceeded", nil,
				"at most " .. self.max_nodes .. " nodes")
		end
	end
	local record = { config = config or self:default_config(), affiliations = {},
		subscriptions = {}, created = os_time() }
	if not self.owner_jid then
		record.affiliations[actor] = "owner"
	end
	local ok, e3 = self:save_node(node, record)
	if not ok then
		return nil, e3
	end
	return record
end

-- The node for an owner action by actor: record, or nil, error.
function service_mt:owned_node(node, actor)
	local record, e = self:get_node(node)
	if e then
		return nil, e
	elseif not record then
		return nil, err("cancel", "item-not-found")
	elseif self:affiliation(record, actor) ~= "owner" then
		return nil, err("auth", "forbidden")
	end
	return record
end

-- Deletes the node and its items; returns the old record.
function service_mt:delete(node, actor)
	local record, e = self:owned_node(node, actor)
	if not record then
		return nil, e
	end
	local ok, e2 = self:clear_items(node)
	if not ok then
		return nil, e2
	end
	local done, e3 = self.nodes:set(self.owner, node, nil)
	if not done then
		return nil, { type = "wait", condition = "internal-server-error", text = tostring(e3) }
	end
	return record
end

-- --- access ---------------------------------------------------------------------

-- Whether actor (a JID) may see the node's items and subscribe: true, or
-- nil, error (XEP-0060 6.1.3 and 6.5.9).
function service_mt:may_access(record, actor)
	local bare = actor and actor:match("^[^/]+")
	local aff = self:affiliation(record, bare)
	if aff == "outcast" then
		return nil, err("auth", "forbidden")
	elseif aff ~= "none" then
		return true
	end
	local model = record.config.access_model
	if model == "open" then
		return true
	elseif model == "presence" then
		if self.presence_subscribed and self.presence_subscribed(bare) then
			return true
		end
		return nil, err("auth", "not-authorized", "presence-subscription-required")
	elseif model == "roster" then
		local groups = self.roster_groups and self.roster_groups(bare)
		for _, g in ipairs(record.config.roster_groups_allowed or {}) do
			if groups and groups[g] then
				return true
			end
		end
		return nil, err("auth", "not-authorized", "not-in-roster-group")
	end
	return nil, err("cancel", "not-allowed", "closed-node")
end

function service_mt:may_publish(record, actor)
	local bare = actor and actor:match("^[^/]+")
	local aff = self:affiliation(record, bare)
	if aff == "owner" or aff == "publisher" then
		return true
	elseif aff == "outcast" then
		return false
	end
	local model = record.config.publish_model
	if model == "open" then
		return true
	elseif model == "subscribers" then
		return self:subscription(record, actor) ~= nil or self:subscription(record, bare) ~= nil
	end
	return false
end

-- --- subscriptions ----------------------------------------------------------------

function service_mt:subscription(record, jid)
	return record.subscriptions[jid]
end

function service_mt:subscribe(node, record, jid)
	local sub = record.subscriptions[jid]
	if not sub then
		sub = { subid = id.new(), deliver = true }
		record.subscriptions[jid] = sub
		local ok, e = self:save_node(node, record)
		if not ok then
			record.subscriptions[jid] = nil
			return nil, e
		end
	end
	return sub
end

function service_mt:unsubscribe(node, record, jid, subid)
	local sub = record.subscriptions[jid]
	if not sub then
		return nil, err("cancel", "unexpected-request", "not-subscribed")
	elseif subid and subid ~= sub.subid then
		return nil, err("modify", "not-acceptable", "invalid-subid")
	end
	record.subscriptions[jid] = nil
	local ok, e = self:save_node(node, record)
	if not ok then
		record.subscriptions[jid] = sub
		return nil, e
	end
	return true
end

-- --- items -------------------------------------------------------------------------

-- The store's items of node (or the one item_id): the value, or nil,
-- error when the store fails.
local function stored_items(self, node, item_id)
	local v, e = self.items:get(self:items_user(node), item_id)
	if e then
		return nil, err("wait", "internal-server-error")
	end
	return v
end

-- changes[id] = false for the oldest items of list (oldest first) past
-- the newest keep.
local function drop_oldest(changes, list, keep)
	for i = 1, #list - keep do
		changes[list[i].id] = false
	end
	return changes
end

-- Every item of node, oldest first, or nil, error.
function service_mt:items_of(node)
	local all, e = stored_items(self, node)
	if e then
		return nil, e
	end
	local list = {}
	for _, item in pairs(all or {}) do
		if type(item) == "table" and st.is_stanza(item.payload) then
			list[#list + 1] = item
		end
	end
	sort(list, function(a, b) return a.seq < b.seq end)
	return list
end

function service_mt:get_item(node, item_id)
	local item, e = stored_items(self, node, item_id)
	if e then
		return nil, e
	end
	return type(item) == "table" and item or nil
end

-- Stores <item/> (with its id) from publisher, dropping the oldest past
-- max_items. Returns the stored item, or nil, error.
function service_mt:publish(node, record, item_el, publisher)
	local list, e = self:items_of(node)
	if not list then
		return nil, e
	end
	local item_id = item_el.attr.id
	local seq, keep = 0, {}
	for _, it in ipairs(list) do
		seq = it.seq > seq and it.seq or seq
		if it.id ~= item_id then
			keep[#keep + 1] = it
		end
	end
	local item = { id = item_id, seq = seq + 1, publisher = publisher, payload = item_el, time = os_time() }
	if not record.config.persist_items then
		return item
	end
	local changes = drop_oldest({ [item_id] = item }, keep, self:item_cap(record.config) - 1)
	local ok, e2 = self:write_items(node, changes)
	if not ok then
		return nil, e2
	end
	return item
end

-- changes: item id -> item, or false to delete (none: nothing to do).
function service_mt:write_items(node, changes)
	local user = self:items_user(node)
	for item_id, v in pairs(changes) do
		local ok, e = self.items:set(user, item_id, v or nil)
		if not ok then
			return nil, { type = "wait", condition = st.storage_unavailable(e)
				and "resource-constraint" or "internal-server-error" }
		end
	end
	return true
end

function service_mt:retract(node, item_id)
	local item, e = self:get_item(node, item_id)
	if e then
		return nil, e
	elseif not item then
		return nil, err("cancel", "item-not-found")
	end
	return self:write_items(node, { [item_id] = false })
end

function service_mt:clear_items(node)
	local all, e = stored_items(self, node)
	if e then
		return nil, e
	end
	local changes = {}
	for item_id in pairs(all or {}) do
		changes[item_id] = false
	end
	return self:write_items(node, changes)
end

-- Trims stored items to max (after a configure lowered max_items).
function service_mt:trim(node, record)
	local list, e = self:items_of(node)
	if not list then
		return nil, e
	end
	local keep = record.config.persist_items and self:item_cap(record.config) or 0
	return self:write_items(node, drop_oldest({}, list, keep))
end

-- Removes every node and item of the service (account deletion).
function service_mt:destroy()
	local names, e = self:node_names()
	if not names then
		return nil, e
	end
	for _, node in ipairs(names) do
		self:clear_items(node)
		self.nodes:set(self.owner, node, nil)
	end
	return true
end

return M
