-- util.pubsub_iq: the XMPP side of util.pubsub: reads a pubsub iq
-- (XEP-0060 sections 5 to 8, XEP-0223 publish-options, XEP-0059 paging of
-- items), acts on a service, answers, and sends the event notifications.
--
--   handle(service, event, ctx)
--       answers the iq of event (its child <pubsub/> in the pubsub or the
--       pubsub#owner namespace); returns true. ctx = {
--         send(stanza)               routes a notification
--         reply(event, stanza)       answers the iq
--         recipients(node, record)   who else gets the node's notifications
--                                    (PEP: interested resources): a list
--                                    of JIDs, or nil
--         autocreate                 publish creates a missing node (PEP)
--         instant                    create without a node name is allowed
--         max_item_size              bytes of one <item/>
--         published(node, item, actor), retracted(node, item_id, actor)
--                                    optional: called after the change
--       }
--   notify(service, ctx, node, record, build, jids)
--       a notification to every subscriber and recipient: build(event)
--       adds to the <event/> element; jids (optional) limits it
--   send_last(service, ctx, to, node, record)
--       the node's last item to `to`, if it may see it

local st = require "util.stanza"
local pubsub = require "util.pubsub"
local dataforms = require "util.dataforms"
local rsm = require "util.rsm"
local id = require "util.id"
local jid_lib = require "util.jid"

local ipairs, pairs, tostring, tonumber, math_type = ipairs, pairs, tostring, tonumber, math.type

local NS = "http://jabber.org/protocol/pubsub"
local NS_OWNER = NS .. "#owner"
local NS_EVENT = NS .. "#event"
local NS_NODE_CONFIG = NS .. "#node_config"
local NS_PUBLISH_OPTIONS = NS .. "#publish-options"
local NS_SUB_OPTIONS = NS .. "#subscribe_options"

local err = pubsub.err

local M = { xmlns = NS, xmlns_owner = NS_OWNER, xmlns_event = NS_EVENT }

local function bare(j)
	return j and jid_lib.bare(j)
end

local function fail(ctx, event, e)
	return ctx.reply(event, st.error_reply(event.stanza, e))
end

-- The answer to an iq whose work gave ok, or nil and an error: an empty
-- result, or the error.
local function answer(ctx, event, ok, e)
	if not ok then
		return fail(ctx, event, e)
	end
	return ctx.reply(event, st.reply(event.stanza))
end

local function unsupported(feature)
	return err("cancel", "feature-not-implemented", "unsupported", NS .. "#" .. feature)
end

-- --- notifications ---------------------------------------------------------

local function message_to(service, record, to)
	local mtype = record.config.notification_type
	return st.message({ from = service.jid, to = to, id = id.new(),
		type = mtype == "normal" and nil or mtype })
end

function M.notify(service, ctx, node, record, build, only)
	if record.config.deliver_notifications == false then
		return
	end
	local seen = {}
	local function deliver(to, subid)
		if seen[to] then
			return
		end
		seen[to] = true
		local m = message_to(service, record, to)
		m:tag("event", { xmlns = NS_EVENT })
		build(m)
		m:up()
		if subid then
			m:tag("headers", { xmlns = "http://jabber.org/protocol/shim" })
				:text_tag("header", subid, { name = "SubID" }):up()
		end
		ctx.send(m)
	end
	for to, sub in pairs(record.subscriptions) do
		if sub.deliver ~= false and (not only or only[to]) and service:may_access(record, to) then
			deliver(to)
		end
	end
	-- PEP's interested resources: each as the access model lets it read
	-- (a contact's +notify is no right to a roster or whitelist node)
	for _, to in ipairs(ctx.recipients and ctx.recipients(node, record) or {}) do
		if (not only or only[to]) and service:may_access(record, to) then
			deliver(to)
		end
	end
end

local function add_item(parent, item, with_payload, publisher)
	parent:tag("item", { id = item.id, publisher = publisher and item.publisher or nil })
	if with_payload then
		for child in item.payload:children() do
			if st.is_stanza(child) then
				parent:add_child(child)
			end
		end
	end
	return parent:up()
end

local function notify_item(service, ctx, node, record, item, only)
	local publisher = record.config.itemreply == "publisher"
	M.notify(service, ctx, node, record, function(m)
		m:tag("items", { node = node })
		add_item(m, item, record.config.deliver_payloads ~= false, publisher)
		m:up()
	end, only)
end

function M.send_last(service, ctx, to, node, record)
	if record.config.send_last_published_item == "never" or not service:may_access(record, to) then
		return
	end
	local list = service:items_of(node)
	local last = list and list[#list]
	if last then
		local m = message_to(service, record, to)
		m:tag("event", { xmlns = NS_EVENT }):tag("items", { node = node })
		add_item(m, last, true, record.config.itemreply == "publisher")
		m:up():up()
		m:tag("delay", { xmlns = "urn:xmpp:delay", from = service.jid,
			stamp = os.date("!%Y-%m-%dT%H:%M:%SZ", last.time) }):up()
		ctx.send(m)
	end
end

-- A publish made by the server on the account's behalf (a sync between
-- storages): creates node with the config fields when missing, stores
-- item_el (an <item/>), notifies. Returns the item, or nil, error.
function M.publish(service, ctx, node, item_el, actor, fields)
	local record, e = service:get_node(node)
	if e then
		return nil, e
	end
	if not record then
		local config
		config, e = service:apply_fields(service:default_config(), fields or {})
		if not config then
			return nil, e
		end
		record, e = service:create(node, actor, config)
		if not record then
			return nil, e
		end
	end
	local stored
	stored, e = service:publish(node, record, item_el, actor)
	if stored then
		notify_item(service, ctx, node, record, stored)
	end
	return stored, e
end

-- The same for a retraction: true, or nil, error.
function M.retract(service, ctx, node, item_id)
	local record, e = service:get_node(node)
	if not record then
		return nil, e or err("cancel", "item-not-found")
	end
	local ok
	ok, e = service:retract(node, item_id)
	if ok and record.config.notify_retract then
		M.notify(service, ctx, node, record, function(m)
			m:tag("items", { node = node }):tag("retract", { id = item_id }):up():up()
		end)
	end
	return ok, e
end

-- --- forms --------------------------------------------------------------------

-- The fields of the form in parent (a <configure/> or <publish-options/>),
-- or {} when there is none; nil, error for a malformed one.
local function form_fields(parent, form_type)
	local x = parent and parent:get_child("x", "jabber:x:data")
	if not x then
		return {}
	end
	local fields, ftype = dataforms.read(x)
	if not fields then
		return nil, err("modify", "bad-request", nil, nil, ftype)
	end
	if x.attr.type == "cancel" then
		return {}
	end
	if ftype ~= form_type then
		return nil, err("modify", "bad-request", nil, nil, "the form must be of type " .. form_type)
	end
	return fields
end

-- --- the entity's requests (pubsub namespace) -------------------------------------

local function handle_create(service, ctx, event, ps, actor)
	local create = ps:get_child("create")
	local node = create.attr.node
	if not node then
		if not ctx.instant then
			return fail(ctx, event, err("modify", "not-acceptable", "nodeid-required"))
		end
		node = id.new()
	end
	local config = service:default_config()
	local configure = ps:get_child("configure")
	local fields, e = form_fields(configure, NS_NODE_CONFIG)
	if not fields then
		return fail(ctx, event, e)
	end
	config, e = service:apply_fields(config, fields)
	if not config then
		return fail(ctx, event, e)
	end
	local record
	record, e = service:create(node, bare(actor), config)
	if not record then
		return fail(ctx, event, e)
	end
	local reply = st.reply(event.stanza)
	if not create.attr.node then
		reply:tag("pubsub", { xmlns = NS }):tag("create", { node = node }):up():up()
	end
	return ctx.reply(event, reply)
end

-- The single <item/> of a publish, checked: item, or nil, error.
local function publish_item(ctx, publish)
	local item, count = nil, 0
	for child in publish:childtags("item", NS) do
		item, count = child, count + 1
	end
	if count > 1 then
		return nil, err("modify", "bad-request", "invalid-payload", nil, "publish one item at a time")
	elseif count == 0 then
		return nil, err("modify", "bad-request", "item-required")
	end
	local payloads = 0
	for child in item:children() do
		if st.is_stanza(child) then
			payloads = payloads + 1
		end
	end
	if payloads == 0 then
		return nil, err("modify", "bad-request", "payload-required")
	elseif payloads > 1 then
		return nil, err("modify", "bad-request", "invalid-payload", nil, "one payload element per item")
	end
	local copy = item:clone()
	copy.attr.id = item.attr.id or id.new()
	if ctx.max_item_size and #tostring(copy) > ctx.max_item_size then
		return nil, err("modify", "not-acceptable", "payload-too-big")
	end
	return copy
end

local function handle_publish(service, ctx, event, ps, actor)
	local publish = ps:get_child("publish")
	local node = publish.attr.node
	if not node then
		return fail(ctx, event, err("modify", "bad-request", "nodeid-required"))
	end
	local item, e = publish_item(ctx, publish)
	if not item then
		return fail(ctx, event, e)
	end
	local options
	options, e = form_fields(ps:get_child("publish-options"), NS_PUBLISH_OPTIONS)
	if not options then
		return fail(ctx, event, e)
	end
	local record
	record, e = service:get_node(node)
	if e then
		return fail(ctx, event, e)
	end
	if not record then
		if not ctx.autocreate then
			return fail(ctx, event, err("cancel", "item-not-found"))
		end
		local config = service:apply_fields(service:default_config(), options)
		if not config then
			return fail(ctx, event, err("cancel", "conflict", "precondition-not-met"))
		end
		record, e = service:create(node, bare(actor), config)
		if not record then
			return fail(ctx, event, e)
		end
	elseif not service:preconditions_met(record.config, options) then
		return fail(ctx, event, err("cancel", "conflict", "precondition-not-met"))
	end
	if not service:may_publish(record, actor) then
		return fail(ctx, event, err("auth", "forbidden"))
	end
	local stored
	stored, e = service:publish(node, record, item, bare(actor))
	if not stored then
		return fail(ctx, event, e)
	end
	ctx.reply(event, st.reply(event.stanza):tag("pubsub", { xmlns = NS })
		:tag("publish", { node = node }):tag("item", { id = stored.id }):up():up():up())
	notify_item(service, ctx, node, record, stored)
	if ctx.published then
		ctx.published(node, stored, actor)
	end
	return true
end

local function handle_retract(service, ctx, event, ps, actor)
	local retract = ps:get_child("retract")
	local node = retract.attr.node
	if not node then
		return fail(ctx, event, err("modify", "bad-request", "nodeid-required"))
	end
	local item = retract:get_child("item")
	local item_id = item and item.attr.id
	if not item_id then
		return fail(ctx, event, err("modify", "bad-request", "item-required"))
	end
	local record, e = service:get_node(node)
	if not record then
		return fail(ctx, event, e or err("cancel", "item-not-found"))
	end
	local aff = service:affiliation(record, bare(actor))
	if aff ~= "owner" and aff ~= "publisher" then
		local it = service:get_item(node, item_id)
		if not (aff ~= "outcast" and it and it.publisher == bare(actor)) then
			return fail(ctx, event, err("auth", "forbidden"))
		end
	end
	local ok
	ok, e = service:retract(node, item_id)
	if not ok then
		return fail(ctx, event, e)
	end
	ctx.reply(event, st.reply(event.stanza))
	local notify = retract.attr.notify
	if notify == "true" or notify == "1" or record.config.notify_retract then
		M.notify(service, ctx, node, record, function(m)
			m:tag("items", { node = node }):tag("retract", { id = item_id }):up():up()
		end)
	end
	if ctx.retracted then
		ctx.retracted(node, item_id, actor)
	end
	return true
end

local function sub_element(node, jid, sub)
	return st.stanza("subscription", { node = node, jid = jid,
		subid = sub and sub.subid or nil, subscription = sub and "subscribed" or "none" })
end

-- The subscription options form of sub.
local function options_form(sub)
	return st.stanza("x", { xmlns = "jabber:x:data", type = "form" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" }):text_tag("value", NS_SUB_OPTIONS):up()
		:tag("field", { var = "pubsub#deliver", type = "boolean" })
		:text_tag("value", sub.deliver == false and "0" or "1"):up()
end

local function apply_options(sub, fields)
	for var, values in pairs(fields) do
		if var ~= "pubsub#deliver" then
			return nil, err("modify", "bad-request", "invalid-options")
		end
		local v = values[1]
		if v == "1" or v == "true" then
			sub.deliver = true
		elseif v == "0" or v == "false" then
			sub.deliver = false
		else
			return nil, err("modify", "bad-request", "invalid-options")
		end
	end
	return true
end

-- A node and a subscriber JID that must be the actor's own.
local function node_and_jid(service, el, actor)
	local node, jid = el.attr.node, el.attr.jid
	if not node then
		return nil, err("modify", "bad-request", "nodeid-required")
	end
	if not jid or bare(jid) ~= bare(actor) then
		return nil, err("modify", "bad-request", "invalid-jid")
	end
	local record, e = service:get_node(node)
	if not record then
		return nil, e or err("cancel", "item-not-found")
	end
	return node, jid, record
end

local function handle_subscribe(service, ctx, event, ps, actor)
	local node, jid, record = node_and_jid(service, ps:get_child("subscribe"), actor)
	if not node then
		return fail(ctx, event, jid)
	end
	local ok, e = service:may_access(record, jid)
	if not ok then
		return fail(ctx, event, e)
	end
	local fields
	fields, e = form_fields(ps:get_child("options"), NS_SUB_OPTIONS)
	if not fields then
		return fail(ctx, event, e)
	end
	local probe = { deliver = true }
	ok, e = apply_options(probe, fields)
	if not ok then
		return fail(ctx, event, e)
	end
	local sub
	sub, e = service:subscribe(node, record, jid)
	if not sub then
		return fail(ctx, event, e)
	end
	if sub.deliver ~= probe.deliver then
		sub.deliver = probe.deliver
		service:save_node(node, record)
	end
	ctx.reply(event, st.reply(event.stanza):tag("pubsub", { xmlns = NS })
		:add_child(sub_element(node, jid, sub)))
	if record.config.send_last_published_item ~= "never" then
		M.send_last(service, ctx, jid, node, record)
	end
	return true
end

local function handle_unsubscribe(service, ctx, event, ps, actor)
	local el = ps:get_child("unsubscribe")
	local node, jid, record = node_and_jid(service, el, actor)
	if not node then
		return fail(ctx, event, jid)
	end
	return answer(ctx, event, service:unsubscribe(node, record, jid, el.attr.subid))
end

local function handle_options(service, ctx, event, ps, actor, is_set)
	local el = ps:get_child("options")
	local node, jid, record = node_and_jid(service, el, actor)
	if not node then
		return fail(ctx, event, jid)
	end
	local sub = record.subscriptions[jid]
	if not sub then
		return fail(ctx, event, err("modify", "unexpected-request", "not-subscribed"))
	elseif el.attr.subid and el.attr.subid ~= sub.subid then
		return fail(ctx, event, err("modify", "not-acceptable", "invalid-subid"))
	end
	if not is_set then
		return ctx.reply(event, st.reply(event.stanza):tag("pubsub", { xmlns = NS })
			:tag("options", { node = node, jid = jid, subid = sub.subid }):add_child(options_form(sub)))
	end
	local fields, e = form_fields(el, NS_SUB_OPTIONS)
	if not fields then
		return fail(ctx, event, e)
	end
	local ok
	ok, e = apply_options(sub, fields)
	if not ok then
		return fail(ctx, event, e)
	end
	return answer(ctx, event, service:save_node(node, record))
end

-- 6.5: items by id, the last max_items, or a page (XEP-0059).
local function handle_items(service, ctx, event, ps, actor)
	local el = ps:get_child("items")
	local node = el.attr.node
	if not node then
		return fail(ctx, event, err("modify", "bad-request", "nodeid-required"))
	end
	local record, e = service:get_node(node)
	if not record then
		return fail(ctx, event, e or err("cancel", "item-not-found"))
	end
	local ok
	ok, e = service:may_access(record, actor)
	if not ok then
		return fail(ctx, event, e)
	end
	local list
	list, e = service:items_of(node)
	if not list then
		return fail(ctx, event, e)
	end
	local wanted = {}
	for it in el:childtags("item") do
		if it.attr.id then
			wanted[#wanted + 1] = it.attr.id
		end
	end
	local chosen, page = {}, nil
	if #wanted > 0 then
		local by_id = {}
		for _, it in ipairs(list) do
			by_id[it.id] = it
		end
		for _, wid in ipairs(wanted) do
			chosen[#chosen + 1] = by_id[wid]
		end
	else
		-- newest first, as services commonly return them
		local newest = {}
		for i = #list, 1, -1 do
			newest[#newest + 1] = list[i]
		end
		local set = ps:get_child("set", rsm.xmlns)
		local max = el.attr.max_items and tonumber(el.attr.max_items)
		if el.attr.max_items and not (max and math_type(max) == "integer" and max >= 0) then
			return fail(ctx, event, err("modify", "bad-request", nil, nil, "max_items must be a whole number"))
		end
		if set then
			local req, why = rsm.read(set)
			if not req then
				return fail(ctx, event, err("modify", "bad-request", nil, nil, why))
			end
			local from = 1
			if req.after then
				from = nil
				for i, it in ipairs(newest) do
					if it.id == req.after then
						from = i + 1
					end
				end
				if not from then
					return fail(ctx, event, err("cancel", "item-not-found", nil, nil, "no such item to page after"))
				end
			elseif req.index then
				from = req.index + 1
			end
			local limit = req.max or max or #newest
			for i = from, math.min(#newest, from + limit - 1) do
				chosen[#chosen + 1] = newest[i]
			end
			page = { count = #newest }
			if #chosen > 0 then
				page.first, page.last, page.index = chosen[1].id, chosen[#chosen].id, from - 1
			end
		else
			for i = 1, math.min(#newest, max or #newest) do
				chosen[#chosen + 1] = newest[i]
			end
		end
	end
	local reply = st.reply(event.stanza):tag("pubsub", { xmlns = NS }):tag("items", { node = node })
	local publisher = record.config.itemreply == "publisher"
	for _, it in ipairs(chosen) do
		add_item(reply, it, true, publisher)
	end
	reply:up()
	if page then
		rsm.add(reply, page)
	end
	return ctx.reply(event, reply)
end

-- 5.6 and 5.7: the actor's own subscriptions and affiliations.
local function handle_own_list(service, ctx, event, ps, actor, what)
	local only = ps:get_child(what).attr.node
	local names, all = service:node_names()
	if not names then
		return fail(ctx, event, all)
	end
	local reply = st.reply(event.stanza):tag("pubsub", { xmlns = NS }):tag(what, { node = only })
	local me = bare(actor)
	for _, node in ipairs(names) do
		if not only or only == node then
			local record = service:get_node(node)
			if record and what == "subscriptions" then
				for j, sub in pairs(record.subscriptions) do
					if bare(j) == me then
						reply:add_child(sub_element(node, j, sub))
					end
				end
			elseif record then
				local aff = service:affiliation(record, me)
				if aff ~= "none" then
					reply:tag("affiliation", { node = node, affiliation = aff }):up()
				end
			end
		end
	end
	return ctx.reply(event, reply)
end

-- --- the owner's requests (pubsub#owner) ---------------------------------------------

local function owner_node(service, ctx, event, el, actor)
	local node = el.attr.node
	if not node then
		return nil, fail(ctx, event, err("modify", "bad-request", "nodeid-required"))
	end
	local record, e = service:owned_node(node, bare(actor))
	if not record then
		return nil, fail(ctx, event, e)
	end
	return node, record
end

-- The reply to an owner's get of a node's list (subscriptions or
-- affiliations), for the entries to be added to.
local function owner_list(event, what, node)
	return st.reply(event.stanza):tag("pubsub", { xmlns = NS_OWNER }):tag(what, { node = node })
end

local function handle_configure(service, ctx, event, ps, actor, is_set)
	local el = ps:get_child("configure")
	local node, record = owner_node(service, ctx, event, el, actor)
	if not node then
		return record
	end
	if not is_set then
		return ctx.reply(event, st.reply(event.stanza):tag("pubsub", { xmlns = NS_OWNER })
			:tag("configure", { node = node }):add_child(service:config_form(record.config)))
	end
	local x = el:get_child("x", "jabber:x:data")
	if not x then
		return fail(ctx, event, err("modify", "bad-request", nil, nil, "a data form is needed"))
	end
	local fields, e = form_fields(el, NS_NODE_CONFIG)
	if not fields then
		return fail(ctx, event, e)
	end
	local config
	config, e = service:apply_fields(record.config, fields)
	if not config then
		return fail(ctx, event, e)
	end
	record.config = config
	local ok
	ok, e = service:save_node(node, record)
	if not ok then
		return fail(ctx, event, e)
	end
	service:trim(node, record)
	ctx.reply(event, st.reply(event.stanza))
	if config.notify_config then
		M.notify(service, ctx, node, record, function(m)
			m:tag("configuration", { node = node }):add_child(service:config_form(config, "result")):up()
		end)
	end
	return true
end

local function handle_default(service, ctx, event, ps)
	return ctx.reply(event, st.reply(event.stanza):tag("pubsub", { xmlns = ps.attr.xmlns })
		:tag("default"):add_child(service:config_form(service:default_config())))
end

local function handle_delete(service, ctx, event, ps, actor)
	local el = ps:get_child("delete")
	local node, record = owner_node(service, ctx, event, el, actor)
	if not node then
		return record
	end
	local done, e = service:delete(node, bare(actor))
	if not done then
		return fail(ctx, event, e)
	end
	ctx.reply(event, st.reply(event.stanza))
	if record.config.notify_delete then
		local redirect = el:get_child("redirect")
		M.notify(service, ctx, node, record, function(m)
			m:tag("delete", { node = node })
			if redirect and redirect.attr.uri then
				m:tag("redirect", { uri = redirect.attr.uri }):up()
			end
			m:up()
		end)
	end
	return true
end

local function handle_purge(service, ctx, event, ps, actor)
	local node, record = owner_node(service, ctx, event, ps:get_child("purge"), actor)
	if not node then
		return record
	end
	if not record.config.persist_items then
		return fail(ctx, event, unsupported("persistent-items"))
	end
	local ok, e = service:clear_items(node)
	if not ok then
		return fail(ctx, event, e)
	end
	ctx.reply(event, st.reply(event.stanza))
	M.notify(service, ctx, node, record, function(m)
		m:tag("purge", { node = node }):up()
	end)
	return true
end

local function handle_owner_subscriptions(service, ctx, event, ps, actor, is_set)
	local el = ps:get_child("subscriptions")
	local node, record = owner_node(service, ctx, event, el, actor)
	if not node then
		return record
	end
	if not is_set then
		local reply = owner_list(event, "subscriptions", node)
		for j, sub in pairs(record.subscriptions) do
			reply:tag("subscription", { jid = j, subscription = "subscribed", subid = sub.subid }):up()
		end
		return ctx.reply(event, reply)
	end
	for s in el:childtags("subscription") do
		local j, state = s.attr.jid and jid_lib.prep(s.attr.jid), s.attr.subscription
		if not j or (state ~= "subscribed" and state ~= "none") then
			return fail(ctx, event, err("modify", "bad-request"))
		end
	end
	for s in el:childtags("subscription") do
		local j = jid_lib.prep(s.attr.jid)
		if s.attr.subscription == "none" then
			record.subscriptions[j] = nil
		elseif not record.subscriptions[j] then
			record.subscriptions[j] = { subid = id.new(), deliver = true }
		end
	end
	return answer(ctx, event, service:save_node(node, record))
end

local function handle_owner_affiliations(service, ctx, event, ps, actor, is_set)
	local el = ps:get_child("affiliations")
	local node, record = owner_node(service, ctx, event, el, actor)
	if not node then
		return record
	end
	if not is_set then
		local reply = owner_list(event, "affiliations", node)
		if service.owner_jid then
			reply:tag("affiliation", { jid = service.owner_jid, affiliation = "owner" }):up()
		end
		for j, aff in pairs(record.affiliations) do
			reply:tag("affiliation", { jid = j, affiliation = aff }):up()
		end
		return ctx.reply(event, reply)
	end
	local changes = {}
	for a in el:childtags("affiliation") do
		local j, aff = a.attr.jid and jid_lib.prep(a.attr.jid), a.attr.affiliation
		if not j or not pubsub.AFFILIATIONS[aff] then
			return fail(ctx, event, err("modify", "bad-request"))
		end
		changes[bare(j)] = aff
	end
	local new = {}
	for j, aff in pairs(record.affiliations) do
		new[j] = aff
	end
	for j, aff in pairs(changes) do
		new[j] = aff ~= "none" and aff or nil
	end
	if service.owner_jid and changes[service.owner_jid] then
		return fail(ctx, event, err("modify", "not-acceptable", nil, nil, "the account owns its PEP nodes"))
	end
	local owners = 0
	for _, aff in pairs(new) do
		owners = owners + (aff == "owner" and 1 or 0)
	end
	if owners == 0 and not service.owner_jid then
		return fail(ctx, event, err("modify", "not-acceptable", nil, nil, "a node keeps at least one owner"))
	end
	record.affiliations = new
	return answer(ctx, event, service:save_node(node, record))
end

-- --- dispatch -----------------------------------------------------------------------

local ENTITY_SET = {
	create = { handle_create, "create-nodes" }, publish = { handle_publish, "publish" },
	retract = { handle_retract, "delete-items" }, subscribe = { handle_subscribe, "subscribe" },
	unsubscribe = { handle_unsubscribe, "subscribe" }, options = { handle_options, "subscription-options" },
}
local ENTITY_GET = {
	items = { handle_items, "retrieve-items" }, options = { handle_options, "subscription-options" },
	subscriptions = { function(s, c, e, p, a) return handle_own_list(s, c, e, p, a, "subscriptions") end,
		"retrieve-subscriptions" },
	affiliations = { function(s, c, e, p, a) return handle_own_list(s, c, e, p, a, "affiliations") end,
		"retrieve-affiliations" },
	default = { handle_default, "retrieve-default" },
}
local OWNER = {
	configure = { handle_configure, "config-node" }, default = { handle_default, "retrieve-default" },
	delete = { handle_delete, "delete-nodes" }, purge = { handle_purge, "purge-nodes" },
	subscriptions = { handle_owner_subscriptions, "manage-subscriptions" },
	affiliations = { handle_owner_affiliations, "modify-affiliations" },
}

-- The action: the first child element that is not an option of another.
local SECONDARY = { configure = true, ["publish-options"] = true, options = true, set = true }

function M.handle(service, event, ctx)
	local stanza = event.stanza
	local is_set = stanza.attr.type == "set"
	local ps = stanza:get_child("pubsub", NS)
	local table_of
	if ps then
		table_of = is_set and ENTITY_SET or ENTITY_GET
	else
		ps = stanza:get_child("pubsub", NS_OWNER)
		table_of = OWNER
	end
	local action, fallback
	for child in ps:children() do
		if st.is_stanza(child) then
			if not SECONDARY[child.name] or (child.name == "options" and not action)
				or (child.name == "configure" and table_of == OWNER) then
				action = action or child
			end
			fallback = fallback or child
		end
	end
	-- <options/> alone, <configure/> alone: those are the actions
	action = action or fallback
	if not action then
		return fail(ctx, event, err("modify", "bad-request", nil, nil, "no pubsub action"))
	end
	if action.name == "options" and ps:get_child("subscribe") then
		action = ps:get_child("subscribe")
	end
	local entry = table_of[action.name]
	if not entry then
		return fail(ctx, event, err("cancel", "feature-not-implemented", nil, nil,
			"unknown pubsub action " .. action.name))
	end
	local from = stanza.attr.from or service.jid
	return entry[1](service, ctx, event, ps, from, is_set)
end

M.FEATURES = {
	"access-open", "access-presence", "access-roster", "access-whitelist",
	"auto-create", "config-node", "create-and-configure", "create-nodes", "delete-items",
	"delete-nodes", "filtered-notifications", "instant-nodes", "item-ids", "last-published",
	"manage-subscriptions", "member-affiliation", "meta-data", "modify-affiliations",
	"multi-items", "outcast-affiliation", "persistent-items", "presence-notifications",
	"publish", "publish-options", "publisher-affiliation", "purge-nodes", "retract-items",
	"retrieve-affiliations", "retrieve-default", "retrieve-items", "retrieve-subscriptions",
	"rsm", "subscribe", "subscription-options", "config-node-max",
}

return M
