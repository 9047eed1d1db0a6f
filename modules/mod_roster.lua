-- mod_roster: roster get, set and remove with pushes and versioning
-- (RFC 6121 section 2; docs/modules/roster.md). Rosters live in the
-- host's "roster" keyval store in the shape util.roster describes.
--
-- Events it fires on the host (for the presence logic):
--   "roster-item-removed"  { username, host, jid, item }: after a removal
--                          by the user (2.5.2: the subscription is
--                          cancelled both ways)

local core = require "starling.core"
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

local store = module:open_store("roster", "keyval")

local function send_error(event, kind, condition, text)
	local err = st.error_reply(event.stanza, kind, condition, text)
	if event.origin then
		event.origin:send(err)
	else
		module:send(err)
	end
	return true
end

-- Sends the change of one item to every interested resource of the
-- account: those that asked for the roster (2.1.6).
local function push(username, host, contact, item, version)
	local bare = username .. "@" .. host
	for _, s in ipairs(core.sessions(bare)) do
		if s.roster_requested then
			local iq = st.iq({ type = "set", id = "push" .. id.new(), to = s.full_jid })
				:tag("query", { xmlns = NS, ver = versioning and tostring(version) or nil })
			roster_lib.add_item_xml(iq, contact, item)
			s:send(iq)
		end
	end
end

-- 2.1.3 / 2.6: the roster, or an empty result when the client's version
-- is the current one.
local function handle_get(event)
	local origin, stanza = event.origin, event.stanza
	local roster, err = roster_lib.load(store, origin.username)
	if not roster then
		module:log("error", "cannot load the roster of %s: %s", origin.bare_jid, err)
		return send_error(event, "wait", "internal-server-error")
	end
	origin.roster_requested = true
	local ver = stanza:get_child("query", NS).attr.ver
	local current = tostring(roster.version)
	if versioning and ver ~= nil and ver == current then
		origin:send(st.reply(stanza))
		return true
	end
	local reply = st.reply(stanza):tag("query", {
		xmlns = NS, ver = (versioning and ver ~= nil) and current or nil,
	})
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

local function remove_item(event, roster, contact)
	local origin = event.origin
	local old = roster.items[contact]
	if not old then
		return send_error(event, "cancel", "item-not-found")
	end
	roster.items[contact] = nil
	local ok, err = roster_lib.save(store, origin.username, roster)
	if not ok then
		module:log("error", "cannot store the roster of %s: %s", origin.bare_jid, err)
		return send_error(event, "wait", "internal-server-error")
	end
	push(origin.username, origin.host, contact, { subscription = "remove" }, roster.version)
	origin:send(st.reply(event.stanza))
	module:fire_event("roster-item-removed", {
		username = origin.username, host = origin.host, jid = contact, item = old,
	})
	return true
end

local function update_item(event, roster, contact, item)
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
	if not old and roster_lib.count(roster) >= max_items then
		return send_error(event, "cancel", "not-allowed",
			"the roster is full (" .. max_items .. " items)")
	end
	-- 2.1.2: subscription and ask are the server's; a roster set never
	-- changes them.
	local new = {
		name = name, groups = groups,
		subscription = old and old.subscription or "none",
		ask = old and old.ask or nil,
	}
	roster.items[contact] = new
	local ok, err = roster_lib.save(store, origin.username, roster)
	if not ok then
		module:log("error", "cannot store the roster of %s: %s", origin.bare_jid, err)
		return send_error(event, "wait", "internal-server-error")
	end
	push(origin.username, origin.host, contact, new, roster.version)
	origin:send(st.reply(event.stanza))
	return true
end

-- 2.3 and 2.5: add, update or remove one item (errors per 2.3.3, 2.5.3).
local function handle_set(event)
	local origin, stanza = event.origin, event.stanza
	local item = only_item(stanza:get_child("query", NS))
	if not item then
		return send_error(event, "modify", "bad-request", "a roster set holds exactly one item")
	end
	local contact = item.attr.jid and jid.prep(item.attr.jid)
	if not contact then
		return send_error(event, "modify", "jid-malformed", "the item needs a valid jid")
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
	return update_item(event, roster, contact, item)
end

-- 2.1.5 / 2.3.3: nobody reads or changes another account's roster.
local function forbidden(event)
	return send_error(event, "auth", "forbidden")
end

local function advertise_versioning(event)
	if event.origin.username then
		event.features:tag("ver", { xmlns = NS_VER }):up()
	end
end

module:hook("iq-get/self/jabber:iq:roster:query", handle_get)
module:hook("iq-set/self/jabber:iq:roster:query", handle_set)
module:hook("iq-get/bare/jabber:iq:roster:query", forbidden)
module:hook("iq-set/bare/jabber:iq:roster:query", forbidden)
if versioning then
	module:hook("stream-features", advertise_versioning)
end
