-- mod_vcard_legacy: the vCard-based avatar (XEP-0153, vcard-temp's
-- PHOTO) and the PEP avatar (XEP-0084) kept in step (docs/modules/pep.md).
--
-- Setting a vCard with a PHOTO publishes its image to
-- "urn:xmpp:avatar:data" and its metadata (sha-1 id, bytes, type) to
-- "urn:xmpp:avatar:metadata"; publishing avatar metadata puts the image
-- named there into the stored vCard's PHOTO (an empty <metadata/> removes
-- it). The same vCard's NICKNAME follows the XEP-0172 nickname node. The
-- avatar nodes get access model "presence" as the rest of PEP, unless they
-- exist with another. An available presence the account broadcasts
-- without XEP-0153's <x xmlns='vcard-temp:x:update'/> (a client that
-- knows only XEP-0084) gets one with the current avatar's sha-1, so
-- contacts on XEP-0153 see the avatar change too.

local st = require "util.stanza"
local base64 = require "util.base64"
local hashes = require "util.hashes"
local pubsub_iq = require "util.pubsub_iq"
local reentry = require "util.reentry"

local NS_DATA = "urn:xmpp:avatar:data"
local NS_META = "urn:xmpp:avatar:metadata"
local NS_NICK = "http://jabber.org/protocol/nick"
local NS_VCARD = "vcard-temp"
local NS_UPDATE = "vcard-temp:x:update"

local pep = module:depends("pep")
module:depends("vcard")
local vcards = module:open_store("vcard", "keyval")


local function user_of(username)
	return username .. "@" .. module.host
end

local function item(item_id, payload)
	return st.stanza("item", { xmlns = pubsub_iq.xmlns, id = item_id }):add_child(payload)
end

-- vCard -> PEP: the PHOTO as avatar data and metadata.
local function publish_photo(username, vcard)
	local photo = vcard and vcard:get_child("PHOTO", NS_VCARD)
	local binval = photo and photo:get_child_text("BINVAL", NS_VCARD)
	local service, ctx = pep.service(username)
	local user = user_of(username)
	if not binval then
		if service:get_node(NS_META) then
			pubsub_iq.publish(service, ctx, NS_META, item("current",
				st.stanza("metadata", { xmlns = NS_META })), user)
		end
		return
	end
	local bytes = base64.decode(binval)
	if not bytes then
		module:log("debug", "the vCard PHOTO of %s is not base64", username)
		return
	end
	local sha1 = hashes.sha1(bytes, true)
	local current = service:get_item(NS_META, sha1)
	if current then
		return
	end
	local mime = photo:get_child_text("TYPE", NS_VCARD) or "image/png"
	local ok, e = pubsub_iq.publish(service, ctx, NS_DATA, item(sha1,
		st.stanza("data", { xmlns = NS_DATA }):text(base64.encode(bytes))), user)
	if ok then
		ok, e = pubsub_iq.publish(service, ctx, NS_META, item(sha1,
			st.stanza("metadata", { xmlns = NS_META }):tag("info", { id = sha1,
				bytes = tostring(#bytes), type = mime }):up()), user)
	end
	if not ok then
		module:log("warn", "cannot publish the avatar of %s: %s", username, tostring(e and e.condition))
	end
end

-- Replaces (or removes, photo nil) the PHOTO of the stored vCard.
local function store_photo(username, photo)
	local vcard = vcards:get(username)
	if not st.is_stanza(vcard) then
		if not photo then
			return
		end
		vcard = st.stanza("vCard", { xmlns = NS_VCARD })
	end
	vcard = vcard:clone()
	vcard:maptags(function(child)
		if child.name == "PHOTO" then
			return nil
		end
		return child
	end)
	if photo then
		vcard:add_child(photo)
	end
	local ok, err = vcards:set(username, vcard)
	if not ok then
		module:log_store_error(err, "cannot store the vCard of %s", username)
	end
end

-- PEP metadata -> vCard: the image of its first <info/> from the data node.
local function take_metadata(username, item_el)
	local meta = item_el and item_el.payload:get_child("metadata", NS_META)
	local info = meta and meta:get_child("info", NS_META)
	if not info then
		return store_photo(username, nil)
	end
	local service = pep.service(username)
	local data = info.attr.id and service:get_item(NS_DATA, info.attr.id)
	local el = data and data.payload:get_child("data", NS_DATA)
	if not el then
		return -- an avatar kept elsewhere (<info url/>): the vCard stays
	end
	store_photo(username, st.stanza("PHOTO", { xmlns = NS_VCARD })
		:text_tag("TYPE", info.attr.type or "image/png")
		:text_tag("BINVAL", el:get_text()))
end

local function take_nickname(username, item_el)
	local nick = item_el and item_el.payload:get_child_text("nick", NS_NICK)
	local vcard = vcards:get(username)
	if not nick or not st.is_stanza(vcard) then
		return
	end
	vcard = vcard:clone()
	vcard:maptags(function(child)
		if child.name == "NICKNAME" then
			return nil
		end
		return child
	end)
	vcard:text_tag("NICKNAME", nick)
	vcards:set(username, vcard)
end

-- The sha-1 of the account's avatar from its metadata node: "" when the
-- avatar is disabled (empty metadata), nil when it never published one.
local function avatar_hash(username)
	local list = pep.service(username):items_of(NS_META)
	local last = list and list[#list]
	local meta = last and last.payload:get_child("metadata", NS_META)
	if not meta then
		return nil
	end
	local info = meta:get_child("info", NS_META)
	return info and info.attr.id or ""
end

-- XEP-0153 3.2 on the client's behalf: the photo hash in its broadcast
-- available presence, unless the client gave one (or none is known).
local function add_photo_hash(event)
	local stanza, origin = event.stanza, event.origin
	if stanza.attr.type ~= nil or stanza:get_child("x", NS_UPDATE) or not origin.username then
		return nil
	end
	local hash = avatar_hash(origin.username)
	if hash then
		stanza:tag("x", { xmlns = NS_UPDATE }):text_tag("photo", hash):up()
	end
	return nil
end

-- The changes this module makes fire the events it hooks.
local guarded = reentry.new(function(...) module:log(...) end, "avatar")

local function on_vcard(event)
	guarded(event.username, publish_photo, event.vcard)
	return nil
end

local function on_pep(event)
	if event.node == NS_META then
		guarded(event.username, take_metadata, event.item)
	elseif event.node == NS_NICK then
		guarded(event.username, take_nickname, event.item)
	end
	return nil
end

module:add_item("account-feature", "urn:xmpp:pep-vcard-conversion:0")
module:hook("vcard-stored", on_vcard)
module:hook("pep-published", on_pep)
module:hook("presence/self", add_photo_hash, 10)
