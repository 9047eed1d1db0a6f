-- mod_bookmarks: XEP-0402 PEP Native Bookmarks kept in step with the
-- older XEP-0048 bookmarks (docs/modules/bookmarks.md): in private XML
-- storage (XEP-0049, `<storage xmlns='storage:bookmarks'/>` in mod_private's
-- store: feature urn:xmpp:bookmarks:1#compat) and in the PEP node
-- "storage:bookmarks" (#compat-pep).
--
-- A conference bookmark set through any of the three appears in the
-- others: one item per room in "urn:xmpp:bookmarks:1" (id the room's JID,
-- node configured as the XEP says: persistent, max_items max, whitelist,
-- last item never sent), and the whole list as one <storage/> element in
-- private storage, where URL bookmarks (which XEP-0402 has not) are kept.
-- The PEP node "storage:bookmarks" is updated when it exists.

local jid = require "util.jid"
local st = require "util.stanza"
local pubsub_iq = require "util.pubsub_iq"
local reentry = require "util.reentry"

local pairs, ipairs = pairs, ipairs

local NS_BOOKMARKS = "urn:xmpp:bookmarks:1"
local NS_LEGACY = "storage:bookmarks"
local PRIVATE_KEY = "{" .. NS_LEGACY .. "}storage"

local pep = module:depends("pep")
module:depends("private")
local private = module:open_store("private", "map")

local NODE_CONFIG = {
	["pubsub#persist_items"] = { "true" }, ["pubsub#max_items"] = { "max" },
	["pubsub#send_last_published_item"] = { "never" }, ["pubsub#access_model"] = { "whitelist" },
}
local LEGACY_CONFIG = {
	["pubsub#persist_items"] = { "true" }, ["pubsub#access_model"] = { "whitelist" },
}


-- --- the two shapes -----------------------------------------------------------------

-- An xs:boolean attribute's truth (XEP-0048 clients write "1" as well).
local function is_true(v)
	return v == "true" or v == "1"
end

-- to, with the <nick/> and <password/> of conference (in namespace ns)
-- copied into it: the same in both shapes but for the namespace.
local function add_nick_password(to, conference, ns)
	for _, name in ipairs({ "nick", "password" }) do
		local text = conference:get_child_text(name, ns)
		if text then
			to:text_tag(name, text)
		end
	end
	return to
end

-- { [room JID] = <conference xmlns='urn:xmpp:bookmarks:1'/> } from a
-- <storage xmlns='storage:bookmarks'/>.
local function from_storage(storage)
	local rooms = {}
	for c in storage:childtags("conference", NS_LEGACY) do
		local room = c.attr.jid and jid.prep(c.attr.jid)
		if room then
			local conf = st.stanza("conference", { xmlns = NS_BOOKMARKS, name = c.attr.name,
				autojoin = is_true(c.attr.autojoin) and "true" or nil })
			rooms[room] = add_nick_password(conf, c, NS_LEGACY)
		end
	end
	return rooms
end

-- The <storage/> of the items of the bookmarks node, with the URL
-- bookmarks of old (the <storage/> stored before, or nil).
local function to_storage(items, old)
	local storage = st.stanza("storage", { xmlns = NS_LEGACY })
	for _, item in ipairs(items) do
		local conf = item.payload:get_child("conference", NS_BOOKMARKS)
		if conf then
			storage:tag("conference", { jid = item.id, name = conf.attr.name,
				autojoin = is_true(conf.attr.autojoin) and "true" or "false" })
			add_nick_password(storage, conf, NS_BOOKMARKS):up()
		end
	end
	if old then
		for url in old:childtags("url", NS_LEGACY) do
			storage:add_child(url)
		end
	end
	return storage
end

-- --- the sync ------------------------------------------------------------------------

local function user_of(username)
	return username .. "@" .. module.host
end

-- From the bookmarks node to private storage and the legacy PEP node.
local function export(username)
	local service, ctx = pep.service(username)
	local items = service:items_of(NS_BOOKMARKS)
	if not items then
		return
	end
	local old = private:get(username, PRIVATE_KEY)
	local storage = to_storage(items, st.is_stanza(old) and old or nil)
	local ok, err = private:set(username, PRIVATE_KEY, storage)
	if not ok then
		module:log_store_error(err, "cannot store the bookmarks of %s in private storage", username)
	end
	if service:get_node(NS_LEGACY) then
		local item = st.stanza("item", { xmlns = pubsub_iq.xmlns, id = "current" }):add_child(storage)
		pubsub_iq.publish(service, ctx, NS_LEGACY, item, user_of(username), LEGACY_CONFIG)
	end
end

-- Whether two <conference/>s of urn:xmpp:bookmarks:1 say the same (the
-- parts XEP-0048 carries; extensions are not compared).
local function same(a, b)
	if not (a and b) then
		return false
	end
	local function joins(c)
		return c.attr.autojoin == "true" or c.attr.autojoin == "1"
	end
	return a.attr.name == b.attr.name and joins(a) == joins(b)
		and a:get_child_text("nick") == b:get_child_text("nick")
		and a:get_child_text("password") == b:get_child_text("password")
end

-- From a <storage/> (private or legacy PEP) to the bookmarks node.
local function import(username, storage)
	local service, ctx = pep.service(username)
	local rooms = from_storage(storage)
	local existing = service:get_node(NS_BOOKMARKS) and service:items_of(NS_BOOKMARKS) or {}
	local have = {}
	for _, item in ipairs(existing) do
		have[item.id] = item.payload:get_child("conference", NS_BOOKMARKS) or false
	end
	for room, conf in pairs(rooms) do
		if not same(have[room], conf) then
			local item = st.stanza("item", { xmlns = pubsub_iq.xmlns, id = room }):add_child(conf)
			local ok, e = pubsub_iq.publish(service, ctx, NS_BOOKMARKS, item, user_of(username), NODE_CONFIG)
			if not ok then
				module:log("warn", "cannot copy a bookmark of %s to PEP: %s", username, tostring(e and e.condition))
			end
		end
	end
	for room in pairs(have) do
		if not rooms[room] then
			pubsub_iq.retract(service, ctx, NS_BOOKMARKS, room)
		end
	end
end

-- The changes this module makes fire the events it hooks.
local guarded = reentry.new(function(...) module:log(...) end, "bookmarks")

local function on_private(event)
	if event.key == PRIVATE_KEY then
		guarded(event.username, function(username)
			import(username, event.element)
			export(username) -- the legacy PEP node
		end)
	end
	return nil
end

local function on_pep(event)
	if event.node == NS_BOOKMARKS then
		guarded(event.username, export)
	elseif event.node == NS_LEGACY and event.item then
		local storage = event.item.payload:get_child("storage", NS_LEGACY)
		if storage then
			guarded(event.username, function(username)
				import(username, storage)
				export(username)
			end)
		end
	end
	return nil
end

module:add_item("account-feature", NS_BOOKMARKS .. "#compat")
module:add_item("account-feature", NS_BOOKMARKS .. "#compat-pep")
module:hook("private-stored", on_private)
module:hook("pep-published", on_pep)
module:hook("pep-retracted", on_pep)
