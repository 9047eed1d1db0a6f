-- mod_roster: roster get, set and remove with pushes and versioning
-- (RFC 6121 section 2; docs/modules/roster.md). Rosters live in the
-- host's "roster" map store, one record per item, as util.roster describes.
--
-- Exported for mod_presence (module:depends("roster")):
--   module.load_roster(username)      the roster, or nil, err
--   module.store_item(username, host, roster, jid, item)
--                                     stores one changed item (nil: removed)
--                                     and pushes it: true, or nil, err
--   module.is_full(roster)            no room for another item
--
-- Events it fires on the host (for the presence logic):
--   "roster-item-removed"  { username, host, jid, item }: after a removal
--                          by the user (2.5.2: the subscription is
--                          cancelled both ways)

local core = require "starling.core"
local cost = require "util.cost"
local id = require "util.id"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS = "jabber:iq:roster"
local NS_VER = "urn:xmpp:features:rosterver"

local max_items = module:get_option_integer("roster_max_items", 1000, 1)
local max_name = module:get_option_integer("roster_max_name_length", 1023, 1)
local max_group = module:get_option_integer("roster_max_group_length", 1023, 1)
local versioning = module:get_option_boolean("roster_versioning", true)

-- A set costs 1 unit of the account's budget (util.cost), a get 1 and 1
-- more per 100 items it carries.
local budget = cost.budget(module)

-- The roster map store (util.roster), with the keyval store of before:
-- what is left there moves over when the module loads.
local store = roster_lib.open(module)
do
	local moved = roster_lib.migrate_all(store, function(...) module:log(...) end)
	if moved > 0 then
		module:log("info", "moved %d rosters to the map store", moved)
	end
end

local function send_error(event, kind, condition, text)
	local err = st.error_reply(event.stanza, kind, condition, text)
	module:reply(event, err)
	return true
end

-- A roster push of one item (removed: nil) carrying version ver.
local function push_iq(to, contact, item, ver)
	local iq = st.iq({ type = "set", id = "push" .. id.new(), to = to })
		:tag("query", { xmlns = NS, ver = versioning and ver or nil })
	return roster_lib.add_item_xml(iq, contact, item or { subscription = "remove" })
end

-- Sends the change of one item to every interested resource of the
-- account: those that asked for the roster (2.1.6).
local function push(username, host, contact, item, roster)
	local ver = roster_lib.ver(roster)
	for _, s in ipairs(core.sessions(username .. "@" .. host)) do
		if s.roster_requested then
			s:send(push_iq(s.full_jid, contact, item, ver))
		end
	end
end

local function store_item(username, host, roster, contact, item)
	local ok, err = roster_lib.set_item(store, username, roster, contact, item)
	if not ok then
		module:log_store_error(err, "cannot store the roster of %s@%s", username, host)
		return nil, err
	end
	push(username, host, contact, item, roster)
	return true
end

local function load_roster(username)
	return roster_lib.load(store, username)
end

local function is_full(roster)
	return roster_lib.count(roster) >= max_items
end

-- 2.6.3: a client whose version is a known older one gets an empty result
-- and then the changes as pushes, when they are fewer than the items.
local function answer_with_pushes(origin, stanza, roster, ver)
	local changes = roster_lib.changes_since(roster, ver)
	if not changes or #changes >= roster_lib.count(roster) then
		return false
	end
	origin:send(st.reply(stanza))
	for _, change in ipairs(changes) do
		local v = roster_lib.ver({ epoch = roster.epoch, version = change.ver })
		origin:send(push_iq(origin.full_jid, change.jid, change.item, v))
	end
	return true
end

-- 2.2 and 2.6: the roster, or an empty result when the client's version
-- is the current one.
local function handle_get(event)
	local origin, stanza = event.origin, event.stanza
	local roster, err = roster_lib.load(store, origin.username)
	if not roster then
		module:log("error", "cannot load the roster of %s: %s", origin.bare_jid, err)
		return send_error(event, "wait", "internal-server-error")
	end
	if not budget:charge(event, 1 + roster_lib.count(roster) // 100) then
		return true
	end
	origin.roster_requested = true
	local ver = versioning and stanza:get_child("query", NS).attr.ver or nil
	local current = roster_lib.ver(roster)
	if ver == current then
		origin:send(st.reply(stanza))
		return true
	end
	if ver and answer_with_pushes(origin, stanza, roster, ver) then
		return true
	end
	local reply = st.reply(stanza):tag("query", { xmlns = NS, ver = ver and current or nil })
	for _, contact in ipairs(roster_lib.jids(roster)) do
		roster_lib.add_item_xml(reply, contact, roster.items[contact])
	end
	origin:send(reply)
	return true
end

-- The one <item/> of a roster set, or nil when there is not exactly one.
local function only_item(query)
	local found
	for item in query:childtags("item", NS) do
		if found then
			return nil
		end
		found = item
	end
	return found
end

-- The groups of a roster set's item: a list, or nil, condition, text.
local function read_groups(item)
	local groups, seen = {}, {}
	for group in item:childtags("group", NS) do
		local name = group:get_text()
		if name == "" then
			return nil, "not-acceptable", "a group name cannot be empty"
		elseif #name > max_group then
			return nil, "not-acceptable", "a group name is too long"
		elseif seen[name] then
			return nil, "bad-request", "the same group is listed twice"
		end
		seen[name] = true
		groups[#groups + 1] = name
	end
	return groups
end

-- 2.5: the item goes; the presence logic cancels the subscriptions.
local function remove_item(event, roster, contact)
	local origin = event.origin
	local old = roster.items[contact]
	if not old then
		return send_error(event, "cancel", "item-not-found")
	end
	local stored, err = store_item(origin.username, origin.host, roster, contact, nil)
	if not stored then
		return module:reply(event, st.store_error_reply(event.stanza, err))
	end
	origin:send(st.reply(event.stanza))
	module:fire_event("roster-item-removed", {
		username = origin.username, host = origin.host, jid = contact, item = old,
	})
	return true
end

-- 2.3 and 2.4: adds or updates name and groups. subscription, ask and
-- approved are the server's (2.1.2): a roster set never changes them, and
-- any 'subscription' value other than "remove" is ignored (2.1.2.5).
local function set_item(event, roster, contact, item)
	local origin = event.origin
	local name = item.attr.name
	if name == "" then
		name = nil
	elseif name and #name > max_name then
		return send_error(event, "modify", "not-acceptable", "the name is too long")
	end
	local groups, condition, text = read_groups(item)
	if not groups then
		return send_error(event, "modify", condition, text)
	end
	local old = roster.items[contact]
	if not old and is_full(roster) then
		return send_error(event, "cancel", "not-allowed",
			"the roster is full (" .. max_items .. " items)")
	end
	local new = {
		name = name, groups = groups,
		subscription = old and old.subscription or "none",
		ask = old and old.ask or nil,
		approved = old and old.approved or nil,
	}
	local stored, err = store_item(origin.username, origin.host, roster, contact, new)
	if not stored then
		return module:reply(event, st.store_error_reply(event.stanza, err))
	end
	origin:send(st.reply(event.stanza))
	return true
end

-- 2.3, 2.4 and 2.5: add, update or remove one item (errors per 2.3.3,
-- 2.5.3).
local function handle_set(event)
	local origin, stanza = event.origin, event.stanza
	local item = only_item(stanza:get_child("query", NS))
	if not item then
		return send_error(event, "modify", "bad-request", "a roster set holds exactly one item")
	end
	if not item.attr.jid then
		return send_error(event, "modify", "bad-request", "the item has no jid")
	end
	local contact = jid.prep(item.attr.jid)
	if not contact then
		return send_error(event, "modify", "jid-malformed", "the item's jid is not a valid JID")
	end
	if jid.resource(contact) then
		return send_error(event, "modify", "bad-request", "roster items are bare JIDs")
	end
	if contact == origin.bare_jid then
		return send_error(event, "cancel", "not-allowed", "your own JID cannot be a roster item")
	end
	local roster, err = roster_lib.load(store, origin.username)
	if not roster then
		module:log("error", "cannot load the roster of %s: %s", origin.bare_jid, err)
		return send_error(event, "wait", "internal-server-error")
	end
	if item.attr.subscription == "remove" then
		return remove_item(event, roster, contact)
	end
	return set_item(event, roster, contact, item)
end

-- 2.1.5 / 2.3.3: nobody reads or changes another account's roster.
local function forbidden(event)
	return send_error(event, "auth", "forbidden", "this is not your roster")
end

-- 2.6.1: the stream feature, once authenticated.
local function advertise_versioning(event)
	if event.origin.authenticated then
		event.features:tag("ver", { xmlns = NS_VER }):up()
	end
end

module.load_roster = load_roster
module.store_item = store_item
module.is_full = is_full
-- For mod_privilege (XEP-0356): the get and set of a roster on behalf of
-- its account, with an origin that stands for the account.
module.handle_get = handle_get
module.handle_set = handle_set

module:hook("iq-get/self/jabber:iq:roster:query", handle_get)
module:hook("iq-set/self/jabber:iq:roster:query", budget:wrap(1, handle_set))
module:hook("iq-get/bare/jabber:iq:roster:query", forbidden)
module:hook("iq-set/bare/jabber:iq:roster:query", forbidden)
if versioning then
	module:hook("stream-features", advertise_versioning)
end
