-- mod_register: XEP-0077 In-Band Registration (docs/modules/register.md).
--
-- Before authentication (only with allow_registration = true): the
-- stream feature <register xmlns='http://jabber.org/features/iq-register'/>,
-- the registration fields (iq get) and the creation of an account (iq set
-- with username and password), at most one per connection and, per IP
-- address, at most one every min_seconds_between_registrations. With
-- registration off, both iqs get service-unavailable (XEP-0077 3.1).
--
-- Attempts are throttled before anything about the username is looked
-- at, so that the difference between conflict (taken) and a new account
-- cannot be probed fast: an address has registration_throttle_max
-- attempts per registration_throttle_period (a bucket that refills
-- evenly), and one connection at most registration_throttle_max attempts
-- in all. An attempt over the address's budget gets wait/policy-violation
-- with the seconds to wait; one more than the connection's ends its
-- stream with policy-violation.
--
-- After authentication, to the server (the host's domain or no 'to'): the
-- current registration (get), a password change (set with username and
-- password), and <remove/>, which cancels the account's presence
-- subscriptions, deletes the account and everything stored for it
-- (core.user_delete), answers, and closes all its sessions with the
-- stream error not-authorized (3.2).
--
-- On a host with authentication = "anonymous" (SASL ANONYMOUS only) there
-- is no registration at all: an account made there could never log in,
-- and a temporary account must not become a permanent one, so its
-- password cannot be set (not-allowed). Such an account may be removed.
--
-- Events it fires on the host:
--   "user-registered"  { username, host, session }  an account was created
--   "user-deleted"     { username, host }           an account was removed

local core = require "starling.core"
local cost = require "util.cost"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS = "jabber:iq:register"
local NS_FEATURE = "http://jabber.org/features/iq-register"

local anonymous_host = module:get_option_string("authentication", "internal_hashed") == "anonymous"
local allow_registration = module:get_option_boolean("allow_registration", false)
	and not anonymous_host
local min_interval = module:get_option_period("min_seconds_between_registrations", 300)
local throttle_max = module:get_option_integer("registration_throttle_max", 5, 0)
local throttle_period = module:get_option_period("registration_throttle_period", 60)

local roster_store = roster_lib.open(module)

-- last_registration[ip] = core.uptime() of the last account made from ip
local last_registration = {}
-- attempts[ip] = { left = attempts the address may make now (fractional),
--                  at = core.uptime() when left was counted }
local attempts = {}

local function fail(event, kind, condition, text)
	event.origin:send(st.error_reply(event.stanza, kind, condition, text))
	return true
end

-- The text of the query's <username/> and <password/> (nil when absent).
local function credentials(query)
	return query:get_child_text("username"), query:get_child_text("password")
end

local function only_child_is_remove(query)
	local remove, others = false, 0
	for child in query:children() do
		if st.is_stanza(child) then
			if child.name == "remove" and child.attr.xmlns == NS then
				remove = true
			else
				others = others + 1
			end
		end
	end
	return remove, others
end

-- --- before authentication ---------------------------------------------------

local function advertise(event)
	if not event.origin.authenticated then
		event.features:tag("register", { xmlns = NS_FEATURE }):up()
	end
end

-- Registration is open, or this connection showed a valid invite
-- (mod_invites, XEP-0445: origin.invite).
local function may_register(origin)
	return allow_registration or origin.invite ~= nil
end

local function registration_form(event)
	if not may_register(event.origin) then
		return fail(event, "cancel", "service-unavailable")
	end
	event.origin:send(st.reply(event.stanza):tag("query", { xmlns = NS })
		:text_tag("instructions", "Choose a username and password.")
		:tag("username"):up()
		:tag("password"):up())
	return true
end

-- Seconds ip must wait before it may make another account (0: none).
local function registration_wait(ip)
	local last = last_registration[ip]
	if last == nil then
		return 0
	end
	return math.max(0, min_interval - (core.uptime() - last))
end

local function throttle_on()
	return throttle_max > 0 and throttle_period > 0 and throttle_period < math.huge
end

-- The address's bucket as of now: refilled at throttle_max per period.
local function bucket(ip, now)
	local b = attempts[ip]
	if not b then
		return { left = throttle_max, at = now }
	end
	b.left = math.min(throttle_max, b.left + (now - b.at) * throttle_max / throttle_period)
	b.at = now
	return b
end

-- Counts an attempt from ip: 0, or the seconds until ip may try again.
local function take_attempt(ip)
	if not throttle_on() then
		return 0
	end
	local now = core.uptime()
	local b = bucket(ip, now)
	attempts[ip] = b
	if b.left >= 1 then
		b.left = b.left - 1
		return 0
	end
	return (1 - b.left) * throttle_period / throttle_max
end

-- Forgets the addresses whose waits are over (memory stays bounded by
-- the addresses seen in the last period).
local function forget_old()
	local now = core.uptime()
	for ip, last in pairs(last_registration) do
		if now - last >= min_interval then
			last_registration[ip] = nil
		end
	end
	for ip in pairs(attempts) do
		if bucket(ip, now).left >= throttle_max then
			attempts[ip] = nil
		end
	end
	return 60
end

local function throttled(event, wait, what)
	return fail(event, "wait", "policy-violation",
		string.format("too many %s from your address, try again in %d s",
			what, math.max(1, math.ceil(wait))))
end

-- Per connection: one attempt over the budget ends the stream.
local function connection_spent(origin)
	local n = (origin.registration_attempts or 0) + 1
	origin.registration_attempts = n
	return throttle_on() and n > throttle_max
end

local function register(event)
	local origin, stanza = event.origin, event.stanza
	if not may_register(origin) then
		return fail(event, "cancel", "service-unavailable")
	end
	local query = stanza:get_child("query", NS)
	if only_child_is_remove(query) then
		return fail(event, "cancel", "unexpected-request", "authenticate before removing an account")
	end
	if connection_spent(origin) then
		module:log("info", "closing a connection from %s: too many registration attempts",
			origin.ip)
		origin:close("policy-violation", "too many registration attempts")
		return true
	end
	local wait = take_attempt(origin.ip)
	if wait > 0 then
		module:log("debug", "registration attempt from %s throttled (%.1f s)", origin.ip, wait)
		return throttled(event, wait, "registration attempts")
	end
	if origin.registered_account then
		return fail(event, "cancel", "not-acceptable", "one account per connection")
	end
	wait = registration_wait(origin.ip)
	if wait > 0 then
		return throttled(event, wait, "registrations")
	end
	local username, password = credentials(query)
	if not username or username == "" or not password or password == "" then
		return fail(event, "modify", "not-acceptable", "a username and a password are required")
	end
	local node = jid.nodeprep(username)
	if not node or node == "" then
		return fail(event, "modify", "not-acceptable", "the username is not valid in a JID")
	end
	local reserved = origin.invite and origin.invite.username
	if reserved and node ~= reserved then
		return fail(event, "modify", "not-acceptable", "the invite is for the username " .. reserved)
	end
	if core.user_exists(node, origin.host) then
		return fail(event, "cancel", "conflict", "the username is taken")
	end
	local ok, err = core.user_set_password(node, origin.host, password)
	if not ok then
		module:log("error", "cannot create the account %s@%s: %s", node, origin.host, err)
		return fail(event, "wait", "internal-server-error")
	end
	last_registration[origin.ip] = core.uptime()
	origin.registered_account = node
	module:log("info", "registered %s@%s from %s", node, origin.host, origin.ip)
	origin:send(st.reply(stanza))
	module:fire_event("user-registered", { username = node, host = origin.host, session = origin })
	return true
end

-- --- after authentication ------------------------------------------------------

local function current_registration(event)
	if event.origin.anonymous then
		return fail(event, "cancel", "not-allowed",
			"an anonymous login's account is temporary and has no password")
	end
	event.origin:send(st.reply(event.stanza):tag("query", { xmlns = NS })
		:tag("registered"):up()
		:text_tag("instructions", "You are registered; you may change your password.")
		:text_tag("username", event.origin.username)
		:tag("password"):up())
	return true
end

-- RFC 6121 3.2 and 3.3: the contacts learn that the subscriptions to and
-- from the account are cancelled.
local function cancel_subscriptions(username, host)
	local roster, err = roster_lib.load(roster_store, username)
	if not roster then
		module:log("warn", "cannot load the roster of %s@%s: %s", username, host, err)
		return
	end
	local from = username .. "@" .. host
	for _, contact in ipairs(roster_lib.jids(roster)) do
		local item = roster.items[contact]
		if item.subscription == "to" or item.subscription == "both" or item.ask then
			module:send(st.presence({ type = "unsubscribe", from = from, to = contact }))
		end
		if item.subscription == "from" or item.subscription == "both" then
			module:send(st.presence({ type = "unsubscribed", from = from, to = contact }))
		end
	end
end

local function remove_account(event)
	local origin = event.origin
	local username, host, bare = origin.username, origin.host, origin.bare_jid
	cancel_subscriptions(username, host)
	local ok, err = core.user_delete(username, host)
	if not ok then
		module:log("error", "cannot delete the account %s: %s", bare, err)
		return fail(event, "wait", "internal-server-error")
	end
	module:log("info", "%s removed their account", bare)
	origin:send(st.reply(event.stanza))
	module:fire_event("user-deleted", { username = username, host = host })
	for _, s in ipairs(core.sessions(bare)) do
		s:close("not-authorized", "the account was removed")
	end
	if not origin.closed then
		origin:close("not-authorized", "the account was removed")
	end
	return true
end

local function change_password(event, query)
	local origin = event.origin
	if origin.anonymous or anonymous_host then
		return fail(event, "cancel", "not-allowed",
			"an anonymous login's account is temporary and has no password")
	end
	local username, password = credentials(query)
	if not username or not password then
		return fail(event, "modify", "bad-request", "a username and a password are required")
	end
	if jid.nodeprep(username) ~= origin.username then
		return fail(event, "modify", "bad-request", "that is not your username")
	end
	if password == "" then
		return fail(event, "modify", "not-acceptable", "the password cannot be empty")
	end
	local ok, err = core.user_set_password(origin.username, origin.host, password)
	if not ok then
		module:log("error", "cannot change the password of %s: %s", origin.bare_jid, err)
		return fail(event, "wait", "internal-server-error")
	end
	module:log("info", "%s changed their password", origin.bare_jid)
	origin:send(st.reply(event.stanza))
	return true
end

local function update_registration(event)
	local query = event.stanza:get_child("query", NS)
	local remove, others = only_child_is_remove(query)
	if remove and others > 0 then
		return fail(event, "modify", "bad-request", "<remove/> must be the only child")
	elseif remove then
		return remove_account(event)
	end
	return change_password(event, query)
end

module:add_feature(NS)

module:hook("pre-auth/iq-get/jabber:iq:register:query", registration_form)
module:hook("pre-auth/iq-set/jabber:iq:register:query", register)
-- From a logged-in account, a look costs 1 unit of its budget (util.cost),
-- a change (new SCRAM credentials, or the account removed) 5.
local budget = cost.budget(module)
local current, update = budget:wrap(1, current_registration), budget:wrap(5, update_registration)

module:hook("iq-get/host/jabber:iq:register:query", current)
module:hook("iq-get/self/jabber:iq:register:query", current)
module:hook("iq-set/host/jabber:iq:register:query", update)
module:hook("iq-set/self/jabber:iq:register:query", update)

-- A reload keeps what the addresses have spent.
function module.save()
	return { last_registration = last_registration, attempts = attempts }
end

function module.restore(state)
	last_registration = state and state.last_registration or last_registration
	attempts = state and state.attempts or attempts
end

if allow_registration then
	module:hook("stream-features", advertise)
	module:add_timer(60, forget_old)
end
