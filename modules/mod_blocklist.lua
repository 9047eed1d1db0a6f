-- mod_blocklist: XEP-0191 Simple Communications Blocking
-- (docs/modules/blocklist.md).
--
-- Each account's blocked JIDs are a set in the "blocklist" keyval store
-- ({ ["jid"] = true, ... }). A blocked item matches as XEP-0191 section 3
-- says: a full JID only itself, a bare JID any of its resources, a domain
-- itself, everything at it and at its subdomains.
--
-- Stanzas from a JID the recipient blocked (checked on the recipient's
-- side, at priority 1000, above delivery; a remote sender's stanzas on
-- "route/s2sin", before any payload event): presence is dropped silently,
-- a message is answered service-unavailable, an iq get/set
-- service-unavailable, other iqs dropped. Stanzas a user sends to a JID
-- they blocked are not routed: not-acceptable with
-- <blocked xmlns='urn:xmpp:blocking:errors'/> (an unavailable presence
-- still goes out, and errors and iq results are dropped). Presence the
-- server sends on a user's behalf (broadcasts, probes, answers) to a
-- remote JID the user blocked is dropped on "route/remote", as it is at
-- delivery for a local one.
--
-- Blocking a contact sends it unavailable presence from the user's
-- available resources, unblocking sends their current presence (both
-- only to contacts with subscription "from" or "both"). Every change is
-- pushed to the user's resources that asked for the blocklist.

local core = require "starling.core"
local id = require "util.id"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"
local storage = require "starling.store"

local NS = "urn:xmpp:blocking"
local NS_ERRORS = "urn:xmpp:blocking:errors"

local max_items = module:get_option_integer("blocklist_max_items", 1000, 1)

local roster_store = roster_lib.open(module)
-- The blocklist stores of the local hosts, by host (false: not local).
local stores = { [module.host] = module:open_store("blocklist", "keyval") }

local function store_of(host)
	local store = stores[host]
	if store == nil then
		store = core.is_local_host(host) and storage.open(host, "blocklist", "keyval") or false
		stores[host] = store
	end
	return store or nil
end

-- The blocklist of username@host (a set; empty when none), or nil, err.
local function load(username, host)
	local store = store_of(host)
	if not store or not username then
		return {}
	end
	local list, err = store:get(username)
	if err then
		return nil, err
	end
	return type(list) == "table" and list or {}
end

-- Whether address (a prepared JID) matches an item of the set list.
local function matches(list, address)
	if next(list) == nil or not address then
		return false
	end
	if list[address] then
		return true
	end
	local node, host = jid.split(address)
	if not host then
		return false
	end
	if node and list[node .. "@" .. host] then
		return true
	end
	local domain = host
	while domain do
		if list[domain] then
			return true
		end
		domain = domain:match("^[^.]+%.(.+)$")
	end
	return false
end

-- Whether username@host blocks address. A list that cannot be read
-- blocks nothing (and is logged).
local function blocks(username, host, address)
	local list, err = load(username, host)
	if not list then
		module:log("error", "cannot read the blocklist of %s@%s: %s", username, host, err)
		return false
	end
	return matches(list, address)
end

-- --- enforcement ------------------------------------------------------------

-- A stanza to a JID its sender blocked (section 3.3, last paragraph).
local function refuse_outgoing(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if stanza.name == "presence" and t == "unavailable" then
		return nil
	end
	if t == "error" or (stanza.name == "iq" and t == "result") then
		return true
	end
	return module:reply(event, st.error_reply(stanza, {
		type = "cancel", condition = "not-acceptable",
		extra = { namespace = NS_ERRORS, condition = "blocked" },
	}))
end

-- A stanza from a JID its recipient blocked (section 3.3).
local function refuse_incoming(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if stanza.name == "presence" or t == "error"
	   or (stanza.name == "iq" and t ~= "get" and t ~= "set") then
		return true
	end
	return module:reply(event, st.error_reply(stanza, "cancel", "service-unavailable"))
end

-- pre-<kind>/<to>: the sender is a client of this host.
local function check_outgoing(event)
	local origin, to = event.origin, event.stanza.attr.to
	if origin and to and blocks(origin.username, origin.host, to) then
		return refuse_outgoing(event)
	end
	return nil
end

-- Whether the account the stanza is addressed to blocks its sender.
local function recipient_blocks(stanza)
	local from = stanza.attr.from
	local username, host = jid.split(stanza.attr.to)
	return from ~= nil and username ~= nil and blocks(username, host, from)
end

-- pre-iq/bare, pre-iq/full: an iq with a payload is handled by payload
-- events before iq/bare and iq/full fire, so the recipient's list is
-- checked here as well.
local function check_iq_both(event)
	local handled = check_outgoing(event)
	if handled ~= nil then
		return handled
	end
	if recipient_blocks(event.stanza) then
		return refuse_incoming(event)
	end
	return nil
end

local function check_incoming(event)
	if recipient_blocks(event.stanza) then
		return refuse_incoming(event)
	end
	return nil
end

-- Presence also comes from modules acting for the sender (broadcasts,
-- probes), which no pre- event sees: the sender's list is checked too.
local function check_presence(event)
	local stanza = event.stanza
	if recipient_blocks(stanza) then
		return true
	end
	local from = stanza.attr.from
	local username, host = jid.split(from or "")
	if username and stanza.attr.type ~= "unavailable" and core.is_local_host(host)
	   and blocks(username, host, stanza.attr.to) then
		return true
	end
	return nil
end

-- route/s2sin: a stanza from a remote server, before its delivery events
-- (an iq's payload events come first, so the recipient's list is checked
-- here, as check_iq_both does for local senders).
local function check_remote_sender(event)
	if recipient_blocks(event.stanza) then
		return refuse_incoming(event)
	end
	return nil
end

-- route/remote: presence a local account sends to a remote JID it
-- blocked; what clients send themselves was refused on pre- events.
local function check_leaving_presence(event)
	local stanza = event.stanza
	if stanza.name ~= "presence" or stanza.attr.type == "unavailable" then
		return nil
	end
	local username, host = jid.split(stanza.attr.from or "")
	if username and blocks(username, host, stanza.attr.to) then
		return true
	end
	return nil
end

-- --- the protocol ------------------------------------------------------------

local function save(username, list)
	local value = next(list) ~= nil and list or nil
	return stores[module.host]:set(username, value)
end

local function sorted(list)
	local out = {}
	for item in pairs(list) do
		out[#out + 1] = item
	end
	table.sort(out)
	return out
end

-- Sends the change to every resource of the user that asked for the list.
local function push(origin, name, items)
	for _, s in ipairs(core.sessions(origin.bare_jid)) do
		if s.blocklist_requested then
			local iq = st.iq({ type = "set", id = "block-" .. id.new(), to = s.full_jid })
				:tag(name, { xmlns = NS })
			for _, item in ipairs(items) do
				iq:tag("item", { jid = item }):up()
			end
			s:send(iq:up())
		end
	end
end

-- The JIDs that get the user's presence and match an item of `changed`:
-- roster contacts with subscription "from"/"both" (and blocked full JIDs
-- of such contacts).
local function presence_targets(origin, changed)
	local roster, err = roster_lib.load(roster_store, origin.username)
	if not roster then
		module:log("error", "cannot load the roster of %s: %s", origin.bare_jid, err)
		return {}
	end
	local targets = {}
	for contact in pairs(roster.items) do
		if roster_lib.is_subscribed(roster, contact) and matches(changed, contact) then
			targets[#targets + 1] = contact
		end
	end
	for item in pairs(changed) do
		local bare = jid.bare(item)
		if jid.resource(item) and not changed[bare] and roster_lib.is_subscribed(roster, bare) then
			targets[#targets + 1] = item
		end
	end
	return targets
end

-- From each available resource of the user to each target: unavailable
-- presence (blocked) or the resource's current presence (unblocked).
local function send_presence(origin, targets, unavailable)
	for _, s in ipairs(core.sessions(origin.bare_jid)) do
		if s.available then
			for _, target in ipairs(targets) do
				local p
				if unavailable or not s.presence then
					p = st.presence({ type = "unavailable" })
				else
					p = s.presence:clone()
				end
				p.attr.from, p.attr.to = s.full_jid, target
				module:send(p)
			end
		end
	end
end

local function handle_get(event)
	local origin = event.origin
	local list, err = load(origin.username, origin.host)
	if not list then
		module:log("error", "cannot read the blocklist of %s: %s", origin.bare_jid, err)
		return module:reply(event, st.error_reply(event.stanza, "wait", "internal-server-error"))
	end
	origin.blocklist_requested = true
	local reply = st.reply(event.stanza):tag("blocklist", { xmlns = NS })
	for _, item in ipairs(sorted(list)) do
		reply:tag("item", { jid = item }):up()
	end
	return module:reply(event, reply)
end

-- The items of a <block/> or <unblock/>: an array and a set of prepared
-- JIDs, or nil, condition, text.
local function read_items(command)
	local array, set = {}, {}
	for item in command:childtags("item", NS) do
		local address = item.attr.jid and jid.prep(item.attr.jid)
		if not address then
			return nil, nil, "jid-malformed", "each item needs a valid jid"
		end
		if not set[address] then
			set[address] = true
			array[#array + 1] = address
		end
	end
	return array, set
end

-- Loads the list and reads the command's items; nil after answering an error.
local function start_change(event, name)
	local origin = event.origin
	local array, set, condition, text = read_items(event.stanza:get_child(name, NS))
	if not array then
		module:reply(event, st.error_reply(event.stanza, "modify", condition, text))
		return nil
	end
	local list, err = load(origin.username, origin.host)
	if not list then
		module:log("error", "cannot read the blocklist of %s: %s", origin.bare_jid, err)
		module:reply(event, st.error_reply(event.stanza, "wait", "internal-server-error"))
		return nil
	end
	return list, array, set
end

local function finish_change(event, list)
	local ok, err = save(event.origin.username, list)
	if not ok then
		module:log_store_error(err, "cannot store the blocklist of %s", event.origin.bare_jid)
		module:reply(event, st.store_error_reply(event.stanza, err))
		return false
	end
	event.origin:send(st.reply(event.stanza))
	return true
end

local function handle_block(event)
	local origin = event.origin
	local list, array, added = start_change(event, "block")
	if not list then
		return true
	elseif #array == 0 then
		return module:reply(event, st.error_reply(event.stanza, "modify", "bad-request",
			"a block command needs at least one item"))
	end
	local count = 0
	for _ in pairs(list) do
		count = count + 1
	end
	for _, item in ipairs(array) do
		if not list[item] then
			list[item] = true
			count = count + 1
		end
	end
	if count > max_items then
		return module:reply(event, st.error_reply(event.stanza, "modify", "policy-violation",
			"at most " .. max_items .. " JIDs can be blocked"))
	end
	if finish_change(event, list) then
		push(origin, "block", array)
		send_presence(origin, presence_targets(origin, added), true)
	end
	return true
end

local function handle_unblock(event)
	local origin = event.origin
	local list, array, removed = start_change(event, "unblock")
	if not list then
		return true
	end
	if #array == 0 then -- unblock everyone (section 3.5)
		removed = list
		list = {}
	else
		for _, item in ipairs(array) do
			list[item] = nil
		end
	end
	if finish_change(event, list) then
		push(origin, "unblock", array)
		send_presence(origin, presence_targets(origin, removed), false)
	end
	return true
end

module:add_feature(NS)

module:hook("iq-get/self/urn:xmpp:blocking:blocklist", handle_get)
module:hook("iq-set/self/urn:xmpp:blocking:block", handle_block)
module:hook("iq-set/self/urn:xmpp:blocking:unblock", handle_unblock)

-- The checks run behind C gates (core.gate): a stanza none of whose
-- accounts named by the sides has a blocklist record (most accounts have
-- none; an emptied list is removed) passes without entering Lua. The
-- record is read each time, so a change made on another node or by
-- starlingctl counts at once.
local store = stores[module.host]
local outgoing = core.gate(check_outgoing, "record", "origin", store)
local iq_both = core.gate(check_iq_both, "record", "origin to", store)
local incoming = core.gate(check_incoming, "record", "to", store)
local presence = core.gate(check_presence, "record", "to from", store)
local remote_sender = core.gate(check_remote_sender, "record", "to", store)
local leaving_presence = core.gate(check_leaving_presence, "record", "from", store)

for _, to in ipairs({ "bare", "full", "host" }) do
	module:hook("pre-message/" .. to, outgoing, 1000)
	module:hook("pre-presence/" .. to, outgoing, 1000)
end
module:hook("pre-iq/host", outgoing, 1000)
module:hook("pre-iq/bare", iq_both, 1000)
module:hook("pre-iq/full", iq_both, 1000)
module:hook("message/bare", incoming, 1000)
module:hook("message/full", incoming, 1000)
module:hook("iq/bare", incoming, 1000)
module:hook("iq/full", incoming, 1000)
module:hook("presence/bare", presence, 1000)
module:hook("presence/full", presence, 1000)
module:hook("route/s2sin", remote_sender, 1000)
module:hook("route/remote", leaving_presence, 1000)
