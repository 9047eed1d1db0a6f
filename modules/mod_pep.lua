-- mod_pep: XEP-0163 Personal Eventing Protocol: a pubsub service on every
-- account's bare JID, on the engine util.pubsub (docs/modules/pep.md).
--
-- The account owns its nodes; a node is made by its first publish (with
-- the publish-options as its configuration), access model "presence" by
-- default. Notifications go to explicit subscribers, and to every
-- available resource of the account and of its contacts with a presence
-- subscription ("from" or "both") whose entity capabilities (XEP-0115)
-- list "<node>+notify". The capabilities of a verification string are
-- asked once (disco#info to the full JID that showed it), checked against
-- the string, and kept for every account of the server; a resource whose
-- presence has no <c/> gets no notifications, except a remote contact's
-- resource known only from its probe, which is asked directly. The last item of each node the
-- resource is interested in goes to a contact's resource when its
-- available presence or probe arrives and to the account's own resources
-- when they become available.
--
-- Stores: "pep_nodes" and "pep_items" (map; util.pubsub). Account
-- deletion removes them. Options: pep_max_items (cap on a node's
-- max_items, and what "max" means), pep_max_nodes, pep_max_item_size.
--
-- Events it fires on the host: "pep-published" { username, node, item,
-- actor } and "pep-retracted" { username, node, id, actor }, after the
-- change (mod_pep_compat keeps bookmarks and avatars in step with them).

local core = require "starling.core"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"
local pubsub = require "util.pubsub"
local pubsub_iq = require "util.pubsub_iq"
local caps = require "util.caps"
local id = require "util.id"
local cost = require "util.cost"
local set = require "util.set"

local pairs, ipairs, next, type, tostring = pairs, ipairs, next, type, tostring

local NS_INFO = "http://jabber.org/protocol/disco#info"

local max_items = module:get_option_integer("pep_max_items", pubsub.PEP_MAX_ITEMS, 1)
local max_nodes = module:get_option_integer("pep_max_nodes", pubsub.PEP_MAX_NODES, 1)
local max_item_size = module:get_option_size("pep_max_item_size", "64 KiB")

local nodes_store = module:open_store("pep_nodes", "map")
local items_store = module:open_store("pep_items", "map")
local roster_store = roster_lib.open(module)

-- Shared by every host and kept across reloads:
--   by_ver[ver]      the features of a verified caps string (a set)
--   by_jid[full]     the features of a full JID that showed no caps, or
--                    caps whose verification string did not match (some
--                    clients announce a stale one): trusted for it alone
--   pending[iq id]   { to =, ver =, waiters = { { user =, to = } } }
--   asking[ver]      the id of the query for ver, while one is out
local caps_cache = module:shared("/pep/caps")
caps_cache.by_ver = caps_cache.by_ver or {}
caps_cache.by_jid = caps_cache.by_jid or {}
caps_cache.pending = caps_cache.pending or {}
caps_cache.asking = caps_cache.asking or {}
local by_ver, by_jid, pending, asking = caps_cache.by_ver, caps_cache.by_jid, caps_cache.pending,
	caps_cache.asking

-- Per host: remote[user][full] = caps ({ node, ver }) or false: resources
-- of remote contacts that showed the user their presence; sent[user][full]
-- = the caps ver ("" without caps) that resource had the last items for
-- (new capabilities, new interests: sent again).
local remote = module:shared("remote")
local sent = module:shared("sent")

-- --- the service of an account -------------------------------------------------------

local function user_of(username)
	return username .. "@" .. module.host
end

local ctx_of

local function service_of(username)
	local roster
	local function load()
		roster = roster or roster_lib.load(roster_store, username) or { items = {} }
		return roster
	end
	return pubsub.new({
		nodes = nodes_store, items = items_store, owner = username, jid = user_of(username),
		owner_jid = user_of(username), max_items = max_items, max_nodes = max_nodes,
		defaults = pubsub.PEP_DEFAULTS,
		may_create = function(bare)
			return bare == user_of(username)
		end,
		presence_subscribed = function(bare)
			return roster_lib.is_subscribed(load(), bare)
		end,
		roster_groups = function(bare)
			local item = load().items[bare]
			return set.new(item and item.groups or {})
		end,
	})
end

-- The features of a full JID that showed presence p (nil: not known yet).
local function features_of(full, p)
	local c = caps.of(p)
	return c and by_ver[c.ver] or by_jid[full]
end

-- Asks full for its disco#info (node#ver when c), once per ver; when the
-- answer comes, user's last items go to full (user nil: only learn them).
local function ask_caps(user, full, c, key)
	local qid = c and asking[c.ver]
	if not qid then
		qid = id.new()
		pending[qid] = { to = full, ver = c and c.ver, hash = c and c.hash, waiters = {},
			asked = os.time() }
		if c then
			asking[c.ver] = qid
		end
		module:send(st.iq({ type = "get", id = qid, from = module.host, to = full })
			:tag("query", { xmlns = NS_INFO, node = c and (c.node .. "#" .. c.ver) or nil }))
	end
	local w = pending[qid].waiters
	if user and #w < 1000 then
		w[#w + 1] = { user = user, to = full, key = key }
	end
end

-- The resources of bare (local: its sessions; remote: those that showed
-- user their presence), as { full = features or false }.
local function resources_of(user, bare)
	local list = {}
	for _, s in ipairs(core.sessions(bare)) do
		if s.available and s.presence then
			list[s.full_jid] = features_of(s.full_jid, s.presence) or false
		end
	end
	for full, c in pairs(remote[user] or {}) do
		if jid.bare(full) == bare then
			list[full] = (c and by_ver[c.ver]) or by_jid[full] or false
		end
	end
	return list
end

-- The account's and its subscribed contacts' resources that want node.
local function recipients(username, node)
	local user = user_of(username)
	local out = {}
	local function add(bare)
		for full, features in pairs(resources_of(user, bare)) do
			if features and features[node .. "+notify"] then
				out[#out + 1] = full
			end
		end
	end
	add(user)
	local roster = roster_lib.load(roster_store, username)
	for contact, item in pairs(roster and roster.items or {}) do
		if item.subscription == "from" or item.subscription == "both" then
			add(contact)
		end
	end
	return out
end

-- Each node's last item, to full, for the nodes its features want.
local function send_last_items(username, full, features)
	local service = service_of(username)
	local names, all = service:node_names()
	if not names then
		return
	end
	local ctx = ctx_of(username)
	for _, node in ipairs(names) do
		local record = all[node]
		if features[node .. "+notify"] and type(record) == "table"
				and record.config.send_last_published_item == "on_sub_and_presence" then
			record.affiliations = record.affiliations or {}
			record.subscriptions = record.subscriptions or {}
			pubsub_iq.send_last(service, ctx, full, node, record)
		end
	end
end

-- full (a resource of the account or of a contact) is available with
-- presence p: its last items now, or once its caps are known. A resource
-- without caps is asked directly only when direct (a remote contact's
-- probe, which carries none); else it wants no notifications.
local function arrived(username, full, p, direct)
	local user = user_of(username)
	local c = caps.of(p)
	local key = c and c.ver or ""
	sent[user] = sent[user] or {}
	if sent[user][full] == key then
		return -- sent for these capabilities already
	end
	local features = features_of(full, p)
	if features then
		sent[user][full] = key
		return send_last_items(username, full, features)
	end
	if c or direct then
		ask_caps(user, full, c, key)
	end
end

local function gone(user, full)
	by_jid[full] = nil
	if sent[user] then
		sent[user][full] = nil
		if next(sent[user]) == nil then
			sent[user] = nil
		end
	end
	if remote[user] then
		remote[user][full] = nil
		if next(remote[user]) == nil then
			remote[user] = nil
		end
	end
end

-- The answer to a caps query (to the host): cache, then the waiters.
local function caps_answer(event)
	local stanza = event.stanza
	local q = pending[stanza.attr.id]
	if not q or jid.prep(stanza.attr.from or "") ~= q.to then
		return nil
	end
	pending[stanza.attr.id] = nil
	if q.ver then
		asking[q.ver] = nil
	end
	local query = stanza.attr.type == "result" and stanza:get_child("query", NS_INFO)
	local features = query and caps.features(query) or {}
	-- only a checked sha-1 string is shared; anything else is that JID's
	if query and q.ver and q.hash == "sha-1" and caps.ver(query) == q.ver then
		by_ver[q.ver] = features
	elseif query then
		by_jid[q.to] = features
	end
	-- a query may have waiters on every host
	for _, w in ipairs(q.waiters) do
		core.fire(jid.host(w.user), "pep/caps-known", { user = w.user, to = w.to, key = w.key,
			features = features })
	end
	return true
end

local function caps_known(event)
	local user, to = event.user, event.to
	if sent[user] and sent[user][to] == event.key then
		return nil
	end
	sent[user] = sent[user] or {}
	sent[user][to] = event.key
	send_last_items(jid.node(user), to, event.features)
	return nil
end

-- Queries nobody answered within a minute are forgotten (their waiters
-- get nothing; the next presence with that string asks again).
local function expire_queries(now)
	for qid, q in pairs(pending) do
		if now - q.asked > 60 then
			pending[qid] = nil
			if q.ver and asking[q.ver] == qid then
				asking[q.ver] = nil
			end
		end
	end
	return 60
end

-- --- the iq side ---------------------------------------------------------------------

function ctx_of(username)
	local user = user_of(username)
	return {
		send = function(stanza) module:send(stanza) end,
		reply = function(event, stanza) return module:reply(event, stanza) end,
		autocreate = true,
		max_item_size = max_item_size,
		recipients = function(node) return recipients(username, node) end,
		published = function(node, item, actor)
			module:fire_event("pep-published", { username = username, host = module.host,
				user = user, node = node, item = item, actor = actor })
		end,
		retracted = function(node, item_id, actor)
			module:fire_event("pep-retracted", { username = username, host = module.host,
				user = user, node = node, id = item_id, actor = actor })
		end,
	}
end

-- For mod_pep_compat and others: the service and context of an account.
function module.service(username)
	return service_of(username), ctx_of(username)
end

local function handle_self(event)
	local username = event.origin.username
	return pubsub_iq.handle(service_of(username), event, ctx_of(username))
end

local function handle_bare(event)
	local username, host = jid.split(event.stanza.attr.to)
	if not core.user_exists(username, host) then
		return module:reply(event, st.error_reply(event.stanza, "cancel", "service-unavailable"))
	end
	-- Only the account itself changes its nodes; others read and subscribe.
	return pubsub_iq.handle(service_of(username), event, ctx_of(username))
end

-- --- presence ------------------------------------------------------------------------

-- Presence from a contact to an account (bare or full JID), seen before
-- mod_presence handles it.
local function contact_presence(event)
	local stanza = event.stanza
	local from, t = stanza.attr.from, stanza.attr.type
	local username, host = jid.split(stanza.attr.to)
	if not (from and username and host == module.host) or not jid.resource(from) then
		return nil
	end
	local user = user_of(username)
	local bare = jid.bare(from)
	if bare == user then
		return nil
	end
	if t == "unavailable" then
		gone(user, from)
		return nil
	elseif t ~= nil and t ~= "probe" then
		return nil
	end
	local roster = roster_lib.load(roster_store, username)
	if not (roster and roster_lib.is_subscribed(roster, bare)) then
		-- not (yet) interested: learn the capabilities all the same, so
		-- that they are known once the subscription is there
		local c = t == nil and caps.of(stanza)
		if c and not by_ver[c.ver] then
			ask_caps(nil, from, c)
		end
		return nil
	end
	local p = stanza
	if core.is_local_host(jid.host(from)) then
		local s = core.session(from)
		p = s and s.available and s.presence
		if not p then
			return nil
		end
	elseif t == nil then
		remote[user] = remote[user] or {}
		remote[user][from] = caps.of(stanza) or false
	else
		local known = remote[user] and remote[user][from]
		remote[user] = remote[user] or {}
		remote[user][from] = known or false
		p = nil
	end
	arrived(username, from, p, p == nil)
	return nil
end

-- One of the account's own resources became available.
local function own_available(event)
	local origin = event.origin
	if event.initial then
		sent[origin.bare_jid] = sent[origin.bare_jid] or {}
		sent[origin.bare_jid][origin.full_jid] = nil
	end
	arrived(origin.username, origin.full_jid, origin.presence)
end

local function own_gone(event)
	local s = event.session
	if s.bare_jid then
		gone(s.bare_jid, s.full_jid)
	end
	return nil
end

-- --- disco and accounts -----------------------------------------------------------------

local function account_items(event)
	local service = service_of(event.username)
	local names, all = service:node_names()
	for _, node in ipairs(names or {}) do
		local record = all[node]
		record.affiliations = record.affiliations or {}
		if service:may_access(record, event.stanza.attr.from) then
			event.reply:tag("item", { jid = user_of(event.username), node = node }):up()
		end
	end
end

-- The service and record of the node a disco query names, when the
-- asker may see it; nil otherwise.
local function visible_node(event)
	local service = service_of(event.username)
	local record = service:get_node(event.node)
	if not record or not service:may_access(record, event.stanza.attr.from) then
		return nil
	end
	return service, record
end

local function account_node_info(event)
	local service, record = visible_node(event)
	if not service then
		return nil
	end
	event.reply:tag("identity", { category = "pubsub", type = "leaf" }):up()
		:add_child(service:config_form(record.config, "result"))
	return true
end

local function account_node_items(event)
	local service = visible_node(event)
	if not service then
		return nil
	end
	for _, it in ipairs(service:items_of(event.node) or {}) do
		event.reply:tag("item", { jid = user_of(event.username), name = it.id }):up()
	end
	return true
end

local function forget(event)
	local ok, err = service_of(event.username):destroy()
	if not ok then
		module:log("error", "cannot remove the PEP data of %s: %s", event.username, tostring(err and err.condition))
	end
	return nil
end

module:add_feature(pubsub_iq.xmlns .. "#pep")
module:add_item("account-identity", { category = "pubsub", type = "pep" })
module:add_item("account-feature", pubsub_iq.xmlns)
for _, f in ipairs(pubsub_iq.FEATURES) do
	if f ~= "instant-nodes" then
		module:add_item("account-feature", pubsub_iq.xmlns .. "#" .. f)
	end
end

local budget = cost.budget(module)
for _, kind in ipairs({ "iq-get", "iq-set" }) do
	for _, ns in ipairs({ pubsub_iq.xmlns, pubsub_iq.xmlns_owner }) do
		module:hook(kind .. "/self/" .. ns .. ":pubsub", budget:wrap(1, handle_self))
		module:hook(kind .. "/bare/" .. ns .. ":pubsub", budget:wrap(1, handle_bare))
	end
end
module:add_timer(60, expire_queries)
module:hook("iq/host", caps_answer, 20)
module:hook("pep/caps-known", caps_known)
module:hook("presence/bare", contact_presence, 10)
module:hook("presence/full", contact_presence, 10)
module:hook("presence/available", own_available)
module:hook("resource-unbind", own_gone)
module:hook("account-disco-items", account_items)
module:hook("account-disco-info-node", account_node_info)
module:hook("account-disco-items-node", account_node_items)
module:hook("user-deleted", forget)
