-- mod_invites: invitations (docs/modules/invites.md).
--
--   XEP-0401  ad-hoc commands: urn:xmpp:invite#invite (any user: a link
--             that makes the invitee the user's contact, and with
--             allow_user_invites lets them register here) and
--             urn:xmpp:invite#create-account (admins: a link that lets
--             someone register, with or without a chosen username, on a
--             host whose registration is otherwise closed)
--   XEP-0445  pre-authenticated in-band registration: the
--             <register xmlns='urn:xmpp:ibr-token:0'/> stream feature, and
--             <preauth xmlns='urn:xmpp:pars:0' token=.../> before
--             registering (mod_register then takes the registration)
--   XEP-0379  pre-authenticated subscription: a subscription request to
--             the inviter that carries the token is approved at once, and
--             the inviter subscribes back
--
-- After an invited registration the new account and the inviter are
-- subscribed to each other ("both"). Invites expire after invite_expiry and
-- are used up by the registration or subscription they allow.
-- `starlingctl invite` makes them from the shell (module.create below).

local core = require "starling.core"
local adhoc = require "util.adhoc"
local datetime = require "util.datetime"
local jid = require "util.jid"
local st = require "util.stanza"

local NS_PARS = "urn:xmpp:pars:0"
local NS_IBR_TOKEN = "urn:xmpp:ibr-token:0"
local NS_INVITE = "urn:xmpp:invite"
local NS_DATA = "jabber:x:data"

local expiry = module:get_option_period("invite_expiry", 7 * 86400)
local allow_user_invites = module:get_option_boolean("allow_user_invites", false)

local store = module:open_store("invites", "map")
local rm = module:depends("roster")
module:depends("adhoc")

-- --- invites ----------------------------------------------------------------

-- Makes an invite: kind "roster" (inviter = bare JID; ibr = may register)
-- or "register" (username = reserved localpart or nil; inviter = whom the
-- new account subscribes to, or nil). Returns token, record; or nil, err.
local function create(kind, opts)
	local token = core.random_token(24)
	local record = {
		kind = kind, inviter = opts.inviter, username = opts.username,
		ibr = kind == "register" or opts.ibr == true,
		created = os.time(), expires = os.time() + (opts.expiry or expiry),
	}
	local ok, err = store:set("", token, record)
	if not ok then
		module:log_store_error(err, "cannot store an invite")
		return nil, err
	end
	module:log("info", "invite created: %s%s%s", kind,
		opts.inviter and " by " .. opts.inviter or "",
		opts.username and " for " .. opts.username or "")
	return token, record
end

-- The record of a token still valid, or nil.
local function valid(token)
	if type(token) ~= "string" or token == "" then
		return nil
	end
	local record = store:get("", token)
	if type(record) ~= "table" then
		return nil
	end
	if record.expires and record.expires < os.time() then
		store:set("", token, nil)
		return nil
	end
	return record
end

local function use(token)
	local ok, err = store:set("", token, nil)
	if not ok then
		module:log_store_error(err, "cannot use up an invite")
	end
	return ok
end

-- The xmpp: URI of an invite (XEP-0401 4.1, 4.5).
local function uri(token, record)
	if record.kind == "roster" then
		return ("xmpp:%s?roster;preauth=%s%s"):format(record.inviter, token,
			record.ibr and ";ibr=y" or "")
	end
	local who = record.username and (record.username .. "@" .. module.host) or module.host
	return ("xmpp:%s?register;preauth=%s"):format(who, token)
end

module.create, module.uri = create, uri

-- The contact and the user become subscribed to each other: both local
-- accounts, so both rosters are written here and pushed to their sessions.
local function subscribe_both(a, b)
	for _, pair in ipairs({ { a, b }, { b, a } }) do
		local node, host = jid.split(pair[1])
		local roster = rm.load_roster(node)
		if roster then
			local item = roster.items[pair[2]] or { groups = {} }
			item.subscription, item.ask = "both", nil
			rm.store_item(node, host, roster, pair[2], item)
		end
	end
end

-- --- XEP-0401: the commands -------------------------------------------------

local function result_form(token, record)
	return st.stanza("x", { xmlns = NS_DATA, type = "result" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" })
			:text_tag("value", NS_INVITE .. "#invitation"):up()
		:tag("field", { var = "uri", type = "text-single" }):text_tag("value", uri(token, record)):up()
		:tag("field", { var = "expire", type = "text-single" })
			:text_tag("value", datetime.datetime(record.expires)):up()
end

local function fail(message)
	return { status = "error", error = { type = "wait", condition = "internal-server-error",
		message = message } }
end

module:provides("adhoc", adhoc.new("Invite user", NS_INVITE .. "#invite", function(_, data)
	local token, record = create("roster", { inviter = jid.bare(data.from), ibr = allow_user_invites })
	if not token then
		return fail("the invite could not be stored")
	end
	return { status = "completed", form = result_form(token, record) }
end, "user"))

module:provides("adhoc", adhoc.new("Create account", NS_INVITE .. "#create-account",
	adhoc.simple_form(st.stanza("x", { xmlns = NS_DATA, type = "form" })
		:tag("field", { var = "username", type = "text-single", label = "Username" }):up()
		:tag("field", { var = "roster-subscription", type = "boolean",
			label = "Roster subscription" }):up(),
	function(fields, data)
		local username = fields.username and fields.username[1]
		if username == "" then
			username = nil
		end
		if username then
			username = jid.nodeprep(username)
			if not username or username == "" then
				return { status = "error", error = { type = "modify", condition = "bad-request",
					message = "the username is not valid in a JID" } }
			end
			if core.user_exists(username, module.host) then
				return { status = "error", error = { type = "cancel", condition = "conflict",
					message = "the username is taken" } }
			end
		end
		local sub = fields["roster-subscription"] and fields["roster-subscription"][1]
		local token, record = create("register", { username = username,
			inviter = (sub == "1" or sub == "true") and jid.bare(data.from) or nil })
		if not token then
			return fail("the invite could not be stored")
		end
		return { status = "completed", form = result_form(token, record) }
	end), "admin"))

-- --- XEP-0445: registering with a token --------------------------------------

module:hook("stream-features", function(event)
	if not event.origin.authenticated then
		event.features:tag("register", { xmlns = NS_IBR_TOKEN }):up()
	end
end)

module:hook("pre-auth/iq-set/" .. NS_PARS .. ":preauth", function(event)
	local token = event.stanza:get_child("preauth", NS_PARS).attr.token
	local record = valid(token)
	if not record or not record.ibr then
		return module:reply(event, st.error_reply(event.stanza, "cancel", "item-not-found",
			"The provided token is invalid or expired"))
	end
	-- checked now, used up when the registration succeeds (XEP-0445 5)
	event.origin.invite = { token = token, username = record.username }
	return module:reply(event, st.reply(event.stanza))
end)

module:hook("user-registered", function(event)
	local session = event.session
	local invite = session and session.invite
	if not invite then
		return
	end
	session.invite = nil
	local record = store:get("", invite.token)
	use(invite.token)
	local new = event.username .. "@" .. event.host
	module:log("info", "%s registered with an invite", new)
	if type(record) == "table" and record.inviter then
		subscribe_both(new, record.inviter)
	end
end)

-- --- XEP-0379: subscribing with a token ---------------------------------------

module:hook("presence/bare", function(event)
	local stanza = event.stanza
	if stanza.attr.type ~= "subscribe" then
		return nil
	end
	local preauth = stanza:get_child("preauth", NS_PARS)
	if not preauth then
		return nil
	end
	local inviter = jid.bare(stanza.attr.to)
	local record = valid(preauth.attr.token)
	if not record or record.inviter ~= inviter then
		return nil		-- an ordinary request: the user decides
	end
	local contact = jid.bare(stanza.attr.from)
	use(preauth.attr.token)
	local node, host = jid.split(inviter)
	local roster = rm.load_roster(node)
	if not roster then
		return nil
	end
	local item = roster.items[contact] or { groups = {} }
	local sub = item.subscription or "none"
	item.subscription = (sub == "to" or sub == "both") and "both" or "from"
	item.ask = item.subscription == "from" and "subscribe" or nil
	rm.store_item(node, host, roster, contact, item)
	module:log("info", "%s subscribed to %s with an invite", contact, inviter)
	module:send(st.presence({ from = inviter, to = contact, type = "subscribed" }))
	if item.ask then
		module:send(st.presence({ from = inviter, to = contact, type = "subscribe" }))
	end
	return true
end, 10)
