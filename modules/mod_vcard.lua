-- mod_vcard: XEP-0054 vcard-temp (docs/modules/vcard.md).
--
-- Each account's vCard is kept whole in the "vcard" keyval store (the
-- <vCard/> element). A user sets their own (no 'to', or their own bare
-- JID) and reads their own (an empty <vCard/> when none is stored);
-- anyone reads another account's by sending the get to its bare JID,
-- answered by the server on the account's behalf. Errors (XEP-0054
-- section 3): another account's vCard that does not exist, or an account
-- that does not exist: service-unavailable; a set on another account:
-- forbidden; a vCard larger than vcard_max_size: policy-violation. Setting
-- an empty <vCard/> removes the stored one.
--
-- Events it fires on the host: "vcard-stored" { username, host, vcard }
-- after the account set its vCard (vcard nil: removed).

local jid = require "util.jid"
local cost = require "util.cost"
local core = require "starling.core"
local st = require "util.stanza"

local NS = "vcard-temp"

local max_size = module:get_option_integer("vcard_max_size", 128 * 1024, 1)

local store = module:open_store("vcard", "keyval")

local function reply_with(event, vcard)
	local reply = st.reply(event.stanza)
	if vcard then
		reply:add_child(vcard)
	else
		reply:tag("vCard", { xmlns = NS }):up()
	end
	return module:reply(event, reply)
end

local function load(event, username)
	local vcard, err = store:get(username)
	if err then
		module:log("error", "cannot read the vCard of %s: %s", username, err)
		return nil, module:reply(event, st.error_reply(event.stanza, "wait", "internal-server-error"))
	end
	if vcard ~= nil and not st.is_stanza(vcard) then
		module:log("error", "the stored vCard of %s is not an element", username)
		return nil, module:reply(event, st.error_reply(event.stanza, "wait", "internal-server-error"))
	end
	return vcard
end

local function get_own(event)
	local vcard, handled = load(event, event.origin.username)
	if handled then
		return true
	end
	return reply_with(event, vcard)
end

local function get_other(event)
	local stanza = event.stanza
	local username, host = jid.split(stanza.attr.to)
	if not core.user_exists(username, host) then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	local vcard, handled = load(event, username)
	if handled then
		return true
	end
	if not vcard then
		return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	return reply_with(event, vcard)
end

local function set_own(event)
	local origin, stanza = event.origin, event.stanza
	local vcard = stanza:get_child("vCard", NS):clone()
	if #tostring(vcard) > max_size then
		return module:reply(event, st.error_reply(stanza, "modify", "policy-violation",
			"the vCard is larger than " .. max_size .. " bytes"))
	end
	local has_content = false
	for child in vcard:children() do
		if st.is_stanza(child) then
			has_content = true
			break
		end
	end
	-- An empty <vCard/> removes the stored one.
	local ok, err = store:set(origin.username, has_content and vcard or nil)
	if not ok then
		module:log_store_error(err, "cannot store the vCard of %s", origin.bare_jid)
		return module:reply(event, st.store_error_reply(stanza, err))
	end
	module:reply(event, st.reply(stanza))
	module:fire_event("vcard-stored", { username = origin.username, host = origin.host,
		vcard = has_content and vcard or nil })
	return true
end

local function set_other(event)
	return module:reply(event, st.error_reply(event.stanza, "auth", "forbidden"))
end

module:add_feature(NS)
module:add_item("account-feature", NS)

-- Reads cost 1 unit of the account's budget (util.cost), a write 2.
local budget = cost.budget(module)

module:hook("iq-get/self/vcard-temp:vCard", budget:wrap(1, get_own))
module:hook("iq-get/bare/vcard-temp:vCard", budget:wrap(1, get_other))
module:hook("iq-set/self/vcard-temp:vCard", budget:wrap(2, set_own))
module:hook("iq-set/bare/vcard-temp:vCard", set_other)
