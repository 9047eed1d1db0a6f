-- mod_presence: presence and presence subscriptions (RFC 6121 sections 3
-- and 4, Appendix A, 8.5; docs/modules/presence.md).
--
-- Outbound (on the sender's host, "pre-presence/..."): subscription
-- stanzas a client sends change its roster and are routed from its bare
-- JID; directed presence is remembered. Inbound ("presence/..."): the
-- same stanzas change the receiving account's roster and reach its
-- available resources; probes are answered on the account's behalf.
--
-- Session fields it keeps (other modules read them):
--   s.available  true between the session's initial available presence
--                and its unavailable presence (or its end)
--   s.presence   a copy of the session's last available presence, nil
--                when it is not available
--   s.priority   that presence's <priority/>, -128..127 (0 when absent)
--   s.directed   set of JIDs the session sent directed available presence
--                to (they get its unavailable presence), or nil
--
-- Stores: "subscription_requests" (map: user, contact -> the subscribe
-- stanza waiting for an answer), "last_presence" (keyval: user -> { stanza,
-- time } of the account's last unavailable presence, for probes).
--
-- Events it fires on the host:
--   "presence/initial"    { origin = s, stanza }: s just became available
--   "presence/available"  { origin = s, stanza, initial }: s sent available
--                         presence (its first, or a change)

local core = require "starling.core"
local datetime = require "util.datetime"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"
local subscription = require "util.subscription"

local math_type, tonumber, os_time, sort = math.type, tonumber, os.time, table.sort

local NS_PREAPPROVAL = "urn:xmpp:features:pre-approval"
local NS_DELAY = "urn:xmpp:delay"

local max_requests = module:get_option_integer("presence_max_pending_requests", 500, 1)

local rm = module:depends("roster")
local requests = module:open_store("subscription_requests", "map")
local last_store = module:open_store("last_presence", "keyval")

local SUBSCRIPTION = { subscribe = true, subscribed = true, unsubscribe = true, unsubscribed = true }
local OTHER_TYPES = { unavailable = true, probe = true, error = true }

-- --- helpers -----------------------------------------------------------

-- <priority/>: an integer from -128 to 127 (RFC 6121 4.7.2.3); a missing
-- or malformed one counts as 0, an out-of-range one is clamped.
local function parse_priority(stanza)
	local text = stanza:get_child_text("priority")
	local n = text and text:match("^%s*[+-]?%d+%s*$") and tonumber(text)
	if not n or math_type(n) ~= "integer" then
		return 0
	end
	if n < -128 then
		return -128
	elseif n > 127 then
		return 127
	end
	return n
end

local function load_roster(username, host)
	local roster, err = rm.load_roster(username)
	if not roster then
		module:log("error", "cannot load the roster of %s@%s: %s", username, host, err)
	end
	return roster
end

local function has_request(username, contact)
	return requests:get(username, contact) ~= nil
end

-- The subscription state of contact in username's roster (Appendix A),
-- and the roster item (nil when there is none).
local function state_of(roster, username, contact)
	local item = roster.items[contact]
	return subscription.state(item and item.subscription, item and item.ask == "subscribe",
		has_request(username, contact)), item
end

local function subscribed(state)
	local s = subscription.split(state)
	return s == "from" or s == "both"
end

-- Every available resource of the account gets stanza.
local function deliver(stanza, bare)
	for _, s in ipairs(core.sessions(bare)) do
		if s.available then
			s:send(stanza)
		end
	end
end

-- Each available resource of the account sends its current presence to `to`.
local function send_current_presence(bare, to)
	for _, s in ipairs(core.sessions(bare)) do
		if s.available and s.presence then
			local p = s.presence:clone()
			p.attr.to = to
			module:send(p)
		end
	end
end

local function send_unavailable_from_all(bare, to)
	for _, s in ipairs(core.sessions(bare)) do
		if s.available then
			module:send(st.presence({ type = "unavailable", from = s.full_jid, to = to }))
		end
	end
end

-- Presence p from origin goes to the account's available resources
-- (origin too, when it is still there: an account is subscribed to
-- itself, 4.2.2) and to every contact subscribed to the account.
local function broadcast(origin, p, roster)
	local copy = p:clone()
	copy.attr.to = origin.bare_jid
	for _, s in ipairs(core.sessions(origin.bare_jid)) do
		if s.available and s ~= origin then
			s:send(copy)
		end
	end
	if not origin.closed then
		origin:send(copy)
	end
	for contact, item in pairs(roster and roster.items or {}) do
		if item.subscription == "from" or item.subscription == "both" then
			copy.attr.to = contact
			module:send(copy)
		end
	end
end

-- Moves contact's entry in username's roster from state old to new: the
-- roster item (stored and pushed when it changed) and the stored request
-- (request: the stanza to keep when new is pending in). Returns true, or
-- nil, condition, text.
local function change_state(username, host, roster, contact, old, new, request)
	if new == old then
		return true
	end
	local old_sub, old_out, old_in = subscription.split(old)
	local new_sub, new_out, new_in = subscription.split(new)
	local item = roster.items[contact]
	local item_changes = old_sub ~= new_sub or old_out ~= new_out
	if item_changes and not item and rm.is_full(roster) then
		return nil, "not-allowed", "the roster is full"
	end
	if old_in ~= new_in then
		local ok, err = requests:set(username, contact, new_in and request or nil)
		if not ok then
			module:log_store_error(err, "cannot store a subscription request for %s@%s", username, host)
			return nil, st.storage_unavailable(err) and "resource-constraint" or "internal-server-error"
		end
	end
	if not item_changes then
		return true
	end
	item = item or { subscription = "none", groups = {} }
	item.subscription, item.ask = new_sub, new_out and "subscribe" or nil
	if new_sub == "from" or new_sub == "both" then
		item.approved = nil -- a pre-approval is used up (3.4)
	end
	if not rm.store_item(username, host, roster, contact, item) then
		return nil, "internal-server-error"
	end
	return true
end

local function set_approved(origin, roster, contact, item, approved)
	if not item and rm.is_full(roster) then
		return nil, "not-allowed", "the roster is full"
	end
	item = item or { subscription = "none", groups = {} }
	item.approved = approved or nil
	if not rm.store_item(origin.username, origin.host, roster, contact, item) then
		return nil, "internal-server-error"
	end
	return true
end

-- --- outbound: what a client sends with a 'to' ----------------------------

local PREAPPROVABLE = { none = true, ["none+out"] = true, to = true }

-- 3.4: "subscribed" with no request to answer is kept as a pre-approval
-- (never routed); "unsubscribed" withdraws one. Returns false when the
-- stanza is not about pre-approval, else true and what set_approved gave.
local function preapproval(origin, roster, contact, state, item, t)
	if not PREAPPROVABLE[state] then
		return false
	end
	local approved = item ~= nil and item.approved == true
	if t == "subscribed" then
		if approved then
			return true, true
		end
		return true, set_approved(origin, roster, contact, item, true)
	elseif t == "unsubscribed" and approved then
		return true, set_approved(origin, roster, contact, item, false)
	end
	return false
end

-- 3.1.2, 3.1.5, 3.2.2, 3.3.2 and A.2: the user's roster changes, then the
-- stanza is routed from the user's bare JID when the table says so.
local function outbound_subscription(origin, stanza, t)
	local contact = jid.bare(stanza.attr.to)
	if contact == origin.bare_jid then
		return true -- an account is always subscribed to itself
	end
	local roster = load_roster(origin.username, origin.host)
	if not roster then
		origin:send(st.error_reply(stanza, "wait", "internal-server-error"))
		return true
	end
	local state, item = state_of(roster, origin.username, contact)
	local handled, ok, condition, text = preapproval(origin, roster, contact, state, item, t)
	if not handled then
		local rule = subscription.outbound[t][state]
		ok, condition, text = change_state(origin.username, origin.host, roster, contact,
			state, rule.new)
		handled = ok and not rule.route
	end
	if not ok then
		local wait = condition == "internal-server-error" or condition == "resource-constraint"
		origin:send(st.error_reply(stanza, wait and "wait" or "cancel",
			condition, text))
		return true
	end
	if handled then
		return true
	end
	stanza.attr.from, stanza.attr.to = origin.bare_jid, contact
	module:send(stanza)
	if t == "subscribed" then
		send_current_presence(origin.bare_jid, contact)
	elseif t == "unsubscribed" and subscribed(state) then
		send_unavailable_from_all(origin.bare_jid, contact)
	end
	return true
end

-- 4.6: directed presence is remembered, so that the entity learns when
-- the session goes unavailable.
local function track_directed(origin, to, available)
	if jid.bare(to) == origin.bare_jid then
		return
	end
	local directed = origin.directed
	if available then
		directed = directed or {}
		directed[to] = true
		origin.directed = directed
	elseif directed then
		directed[to] = nil
	end
end

-- A client's own probe goes out only to contacts it is subscribed to (or
-- its own account); the answers come to the probing resource.
local function outbound_probe(origin, stanza)
	local contact = jid.bare(stanza.attr.to)
	if contact == origin.bare_jid then
		return nil
	end
	local roster = load_roster(origin.username, origin.host)
	if roster and roster_lib.is_subscribed_to(roster, contact) then
		return nil
	end
	return true
end

local function outbound(event)
	local origin, stanza = event.origin, event.stanza
	local t = stanza.attr.type
	if t == nil or t == "unavailable" then
		track_directed(origin, stanza.attr.to, t == nil)
		return nil
	elseif SUBSCRIPTION[t] then
		return outbound_subscription(origin, stanza, t)
	elseif t == "probe" then
		return outbound_probe(origin, stanza)
	elseif t == "error" then
		return nil
	end
	origin:send(st.error_reply(stanza, "modify", "bad-request", "unknown presence type"))
	return true
end

-- --- a session's own presence ---------------------------------------------

-- 4.2.2: contacts the account is subscribed to are probed from the new
-- resource, so the answers reach it alone.
local function probe_contacts(origin, roster)
	for contact, item in pairs(roster and roster.items or {}) do
		if item.subscription == "to" or item.subscription == "both" then
			module:send(st.presence({ type = "probe", from = origin.full_jid, to = contact }))
		end
	end
end

-- A new resource learns of the account's other available resources (as
-- a probe of its own account would tell it).
local function send_own_resources(origin)
	for _, s in ipairs(core.sessions(origin.bare_jid)) do
		if s ~= origin and s.available and s.presence then
			local p = s.presence:clone()
			p.attr.to = origin.full_jid
			origin:send(p)
		end
	end
end

-- 3.1.3: requests nobody answered yet reach every new available resource.
local function redeliver_requests(origin)
	local pending = requests:get(origin.username)
	local contacts = {}
	for contact in pairs(pending or {}) do
		contacts[#contacts + 1] = contact
	end
	sort(contacts)
	for _, contact in ipairs(contacts) do
		origin:send(pending[contact])
	end
end

-- 4.2 and 4.4: initial and subsequent available presence.
local function become_available(origin, stanza)
	local initial = not origin.available
	origin.presence = stanza:clone()
	origin.priority = parse_priority(stanza)
	origin.available = true
	local roster = load_roster(origin.username, origin.host)
	broadcast(origin, stanza, roster)
	if initial then
		send_own_resources(origin)
		probe_contacts(origin, roster)
		redeliver_requests(origin)
		module:fire_event("presence/initial", { origin = origin, stanza = stanza })
	end
	module:fire_event("presence/available", { origin = origin, stanza = stanza, initial = initial })
	return true
end

-- 4.5 and 4.6.3: the session's unavailable presence (its own, or one made
-- for it when it ended) goes to the account's resources, its subscribers
-- and the entities it sent directed presence to.
local function go_unavailable(origin, stanza, reason)
	local p = stanza and stanza:clone()
		or st.presence({ type = "unavailable", from = origin.full_jid })
	if not stanza and reason then
		p:tag("status"):text("Disconnected: " .. reason):up()
	end
	p.attr.to = nil
	local was_available, roster = origin.available, nil
	if was_available then
		origin.available, origin.presence, origin.priority = false, nil, nil
		roster = load_roster(origin.username, origin.host)
		broadcast(origin, p, roster)
		local ok, err = last_store:set(origin.username, { stanza = p, time = os_time() })
		if not ok then
			module:log("warn", "cannot store the last presence of %s: %s", origin.bare_jid, err)
		end
	end
	local directed = origin.directed
	origin.directed = nil
	for to in pairs(directed or {}) do
		if not (was_available and roster and roster_lib.is_subscribed(roster, jid.bare(to))) then
			p.attr.to = to
			module:send(p)
		end
	end
end

-- Presence with no 'to' from a client: its broadcast presence.
local function handle_self(event)
	local origin, stanza = event.origin, event.stanza
	local t = stanza.attr.type
	if t == nil then
		return become_available(origin, stanza)
	elseif t == "unavailable" then
		go_unavailable(origin, stanza)
	elseif not (SUBSCRIPTION[t] or OTHER_TYPES[t]) then
		origin:send(st.error_reply(stanza, "modify", "bad-request", "unknown presence type"))
	end
	-- subscription stanzas, probes and errors need a 'to'
	return true
end

-- 4.5.3.1: a session that ends goes unavailable on its behalf.
local function handle_unbind(event)
	local session = event.session
	if session.available or session.directed then
		go_unavailable(session, nil, event.error)
	end
	return nil
end

-- --- inbound: presence for a local account ---------------------------------

local AUTO_APPROVED = { none = "from", ["none+out"] = "from+out", to = "both" }

-- 3.1.3: a subscription request for the account (user: its bare JID).
local function inbound_subscribe(stanza, username, host, roster, contact)
	local user = username .. "@" .. host
	local state, item = state_of(roster, username, contact)
	local approve = subscribed(state) and state
		or (item and item.approved and AUTO_APPROVED[state])
	if approve then
		change_state(username, host, roster, contact, state, approve)
		module:send(st.presence({ type = "subscribed", from = user, to = contact }))
		send_current_presence(user, contact)
		return true
	end
	local rule = subscription.inbound.subscribe[state]
	if not rule.deliver then
		return true -- already pending
	end
	local waiting = 0
	for _ in pairs(requests:get(username) or {}) do
		waiting = waiting + 1
	end
	if waiting >= max_requests then
		module:send(st.error_reply(stanza, "wait", "resource-constraint",
			"too many subscription requests are waiting"))
		return true
	end
	local kept = stanza:clone()
	kept:tag("delay", { xmlns = NS_DELAY, from = host, stamp = datetime.datetime() }):up()
	if change_state(username, host, roster, contact, state, rule.new, kept) then
		deliver(stanza, user)
	end
	return true
end

-- 3.1.6, 3.2.3, 3.3.3 and A.3: subscription stanzas for the account.
local function inbound_subscription(stanza, t)
	local user = jid.bare(stanza.attr.to)
	local username, host = jid.split(user)
	local contact = stanza.attr.from and jid.bare(stanza.attr.from)
	if not (username and contact) or contact == user then
		return true
	end
	stanza.attr.to = user -- as if sent to the bare JID (3.1.3)
	if not core.user_exists(username, host) then
		-- 8.5.1: a request for nobody is answered "unsubscribed"
		if t == "subscribe" then
			module:send(st.presence({ type = "unsubscribed", from = user, to = contact }))
		end
		return true
	end
	local roster = load_roster(username, host)
	if not roster then
		return true
	end
	if t == "subscribe" then
		return inbound_subscribe(stanza, username, host, roster, contact)
	end
	local state = state_of(roster, username, contact)
	local rule = subscription.inbound[t][state]
	if rule.deliver and change_state(username, host, roster, contact, state, rule.new) then
		deliver(stanza, user)
		if t == "unsubscribe" and subscribed(state) then
			send_unavailable_from_all(user, contact)
		end
	end
	return true
end

-- The account's last unavailable presence, stamped with its time.
local function last_unavailable(username, user)
	local last = last_store:get(username)
	if type(last) ~= "table" or not st.is_stanza(last.stanza) then
		return st.presence({ type = "unavailable", from = user })
	end
	local p = last.stanza:clone()
	p:tag("delay", { xmlns = NS_DELAY, from = jid.host(user), stamp = datetime.datetime(last.time) }):up()
	return p
end

-- 4.3.2: a probe of the account is answered on its behalf: the presence
-- of each available resource, else its last unavailable presence; anyone
-- not subscribed to it (and probes of accounts that do not exist) gets
-- "unsubscribed".
local function answer_probe(stanza)
	local user = jid.bare(stanza.attr.to)
	local username, host = jid.split(user)
	local from = stanza.attr.from
	if not (username and from) then
		return true
	end
	local prober = jid.bare(from)
	if prober ~= user then
		local roster = core.user_exists(username, host) and load_roster(username, host)
		if not (roster and roster_lib.is_subscribed(roster, prober)) then
			module:send(st.presence({ type = "unsubscribed", from = user, to = prober }))
			return true
		end
	end
	local answered = false
	for _, s in ipairs(core.sessions(user)) do
		if s.available and s.presence then
			local p = s.presence:clone()
			p.attr.to = from
			module:send(p)
			answered = true
		end
	end
	if not answered then
		local p = last_unavailable(username, user)
		p.attr.to = from
		module:send(p)
	end
	return true
end

-- 8.5.2: presence to a bare JID.
local function inbound(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	if SUBSCRIPTION[t] then
		return inbound_subscription(stanza, t)
	elseif t == "probe" then
		return answer_probe(stanza)
	elseif t == nil or t == "unavailable" or t == "error" then
		deliver(stanza, jid.bare(stanza.attr.to))
	end
	return true
end

-- 8.5.3: presence to a full JID: the session of that JID gets it, none:
-- dropped. Subscription stanzas and probes are about the account.
local function inbound_full(event)
	local t = event.stanza.attr.type
	if SUBSCRIPTION[t] or t == "probe" then
		return inbound(event)
	end
	local session = core.session(event.stanza.attr.to)
	if session then
		session:send(event.stanza)
	end
	return true
end

-- 2.5.2: removing a contact cancels the subscriptions both ways and
-- declines its request.
local function handle_item_removed(event)
	local username, host, contact, item = event.username, event.host, event.jid, event.item
	local user = username .. "@" .. host
	local s = item.subscription
	if s == "to" or s == "both" or item.ask then
		module:send(st.presence({ type = "unsubscribe", from = user, to = contact }))
	end
	if s == "from" or s == "both" then
		module:send(st.presence({ type = "unsubscribed", from = user, to = contact }))
		send_unavailable_from_all(user, contact)
	elseif has_request(username, contact) then
		requests:set(username, contact, nil)
		module:send(st.presence({ type = "unsubscribed", from = user, to = contact }))
	end
	return nil
end

-- 3.4: pre-approval is advertised once the stream is authenticated.
local function advertise_preapproval(event)
	if event.origin.authenticated then
		event.features:tag("sub", { xmlns = NS_PREAPPROVAL }):up()
	end
end

module:hook("presence/self", handle_self, -1)
module:hook("presence/bare", inbound, -1)
module:hook("presence/full", inbound_full, -1)
for _, to in ipairs({ "bare", "full", "host" }) do
	module:hook("pre-presence/" .. to, outbound, -1)
end
module:hook("resource-unbind", handle_unbind)
module:hook("roster-item-removed", handle_item_removed)
module:hook("stream-features", advertise_preapproval)
