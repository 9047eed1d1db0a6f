-- mod_muc: XEP-0045 Multi-User Chat as a component (docs/modules/muc.md).
--
--   Component "conference.example.org" "muc"
--
-- Rooms are room@service; occupants room@service/nick. This file holds the
-- service: rooms by JID (live in module:shared, so a reload keeps the
-- occupants), creation and its limits, persistence, and the stanza flow
-- (entering, leaving, nick changes, groupchat, private messages,
-- invitations, voice requests, iqs to occupants, disco, the room's MAM
-- archive). The rules of one room are in util.muc.room, its configuration
-- form in util.muc.config, the admin and owner protocol in util.muc.admin,
-- registered nicknames in util.muc.register.

local core = require "starling.core"
local usermanager = require "core.usermanager"
local dataforms = require "util.dataforms"
local datetime = require "util.datetime"
local id = require "util.id"
local jid = require "util.jid"
local st = require "util.stanza"
local muc_admin = require "util.muc.admin"
local muc_config = require "util.muc.config"
local muc_mam = require "util.muc.mam"
local muc_register = require "util.muc.register"
local muc_room = require "util.muc.room"
local muc_stanza = require "util.muc.stanza"

local NS_MUC = "http://jabber.org/protocol/muc"
local NS_USER = NS_MUC .. "#user"
local NS_ADMIN = NS_MUC .. "#admin"
local NS_OWNER = NS_MUC .. "#owner"
local NS_REQUEST = NS_MUC .. "#request"
local NS_UNIQUE = NS_MUC .. "#unique"
local NS_SELF_PING = NS_MUC .. "#self-ping-optimization"
local NS_STABLE_ID = NS_MUC .. "#stable_id"
local NS_DELAY = "urn:xmpp:delay"
local NS_SID = "urn:xmpp:sid:0"
local NS_OID = "urn:xmpp:occupant-id:0"
local NS_CONFERENCE = "jabber:x:conference"
local NS_PING = "urn:xmpp:ping"
local NS_INFO = "http://jabber.org/protocol/disco#info"
local NS_ITEMS = "http://jabber.org/protocol/disco#items"
local NS_MAM = muc_mam.xmlns

local service_name = module:get_option_string("name", "Chatrooms")
local restrict = module:get_option("restrict_room_creation", false)
if not (restrict == false or restrict == true or restrict == "admin" or restrict == "local") then
	error("option 'restrict_room_creation' on host '" .. module.host
		.. "': expected false, true, \"admin\" or \"local\"")
end
local defaults = {
	public = module:get_option_boolean("muc_room_default_public", true),
	persistent = module:get_option_boolean("muc_room_default_persistent", false),
	members_only = module:get_option_boolean("muc_room_default_members_only", false),
	moderated = module:get_option_boolean("muc_room_default_moderated", false),
	public_jids = module:get_option_boolean("muc_room_default_public_jids", false),
	language = module:get_option_string("muc_room_default_language", nil),
	change_subject = module:get_option_boolean("muc_room_default_change_subject", false),
	logging = module:get_option_boolean("muc_log_by_default", false),
	allow_register = module:get_option_boolean("allow_unaffiliated_register", false),
	registered_only = module:get_option_boolean("muc_room_default_registered_nicks_only", false),
}
-- one who registered a nick enters only with it (in every room)
local enforce_nick = module:get_option_boolean("enforce_registered_nickname", false)
local max_history = module:get_option_integer("max_history_messages", 20, 0)
defaults.history_length = math.min(module:get_option_integer("muc_room_default_history_length",
	20, 0), max_history)
local limits = {
	max_users = module:get_option_integer("muc_max_occupants", 1000, 1),
	max_history = max_history,
}
local max_rooms = module:get_option_integer("muc_max_rooms", 10000, 1)
local max_rooms_per_user = module:get_option_integer("muc_max_rooms_per_user", 100, 1)
local locking = module:get_option_boolean("muc_room_locking", true)
local lock_timeout = module:get_option_period("muc_room_lock_timeout", 300)
local page_size = module:get_option_integer("max_archive_query_results", 50, 1)

local room_store = module:open_store("muc_rooms", "keyval")
local archive = module:open_store("muc_log", "archive")

-- state.rooms[room JID] = room (util.muc.room); state.pending[id] = an iq
-- forwarded to an occupant. Shared, so a reload keeps both.
local state = module:shared("state")
state.rooms = state.rooms or {}
state.pending = state.pending or {}
local rooms, pending = state.rooms, state.pending
-- state.count: how many rooms there are, kept as rooms come and go, so
-- that creating one does not count them all
if not state.count then
	state.count = 0
	for _ in pairs(rooms) do
		state.count = state.count + 1
	end
end

local function add_room(room)
	if not rooms[room.jid] then
		state.count = state.count + 1
	end
	rooms[room.jid] = room
end

-- --- sending -------------------------------------------------------------------

local function send_to(stanza, to)
	local s = stanza:clone()
	s.attr.to = to
	module:send(s)
end

-- stanza to every session of occupant occ
local function send_to_occupant(occ, stanza)
	for full in pairs(occ.sessions) do
		send_to(stanza, full)
	end
end

local function bounce(event, err_type, condition, text)
	local stanza = event.stanza
	if stanza.attr.type == "error" or stanza.attr.type == "result" then
		return true
	end
	return module:reply(event, st.error_reply(stanza, err_type, condition, text))
end

local function room_jid_of(room, nick)
	return room.jid .. "/" .. nick
end

-- --- persistence ---------------------------------------------------------------

local function save(room)
	local node = jid.node(room.jid)
	if room.config.persistent then
		local ok, err = room_store:set(node, muc_room.saved(room))
		if not ok then
			module:log("error", "cannot store room %s: %s", room.jid, err)
		end
		return ok
	end
	room_store:set(node, nil)
	return true
end

local function forget_room(room)
	if rooms[room.jid] then
		state.count = state.count - 1
		rooms[room.jid] = nil
	end
	room_store:set(jid.node(room.jid), nil)
	module:log("debug", "room %s is gone", room.jid)
end

local function restore_rooms()
	local n = 0
	for node in room_store:users() do
		local room_jid = node .. "@" .. module.host
		if not rooms[room_jid] then
			local data = room_store:get(node)
			if type(data) == "table" and type(data.config) == "table" then
				local room = muc_room.from_saved(room_jid, data)
				for k, v in pairs(muc_config.defaults(defaults)) do
					if room.config[k] == nil then
						room.config[k] = v
					end
				end
				if room.config.logging then
					muc_stanza.history_from_archive(room, archive, node)
				end
				add_room(room)
				n = n + 1
			end
		end
	end
	return n
end

-- --- presence ------------------------------------------------------------------

-- Every occupant's view of occ's presence (each with its status codes),
-- sent to every session; self_codes go to occ's own sessions only.
local function broadcast_presence(room, occ, codes, self_codes, base, skip, extra)
	for _, o in pairs(room.occupants) do
		if o ~= skip then
			local own = o == occ
			local p = muc_stanza.presence(room, occ, base, muc_room.sees_jids(room, o) or own,
				own and self_codes or codes, extra)
			send_to_occupant(o, p)
		end
	end
end

local function destroy_if_empty(room)
	if room.count == 0 and not room.config.persistent then
		forget_room(room)
	end
end

-- Removes occ from the room with an unavailable presence carrying codes
-- (307 kicked, 301 banned, 321, 322, 332...), item extras (actor,
-- reason) and, to itself, 110.
local function remove_occupant(room, occ, codes, extra)
	local base = st.presence({ type = "unavailable" })
	local sessions = occ.sessions
	muc_room.remove_occupant(room, occ)
	occ.role = "none"
	occ.sessions = sessions
	local self_codes = { 110 }
	for _, c in ipairs(codes) do
		self_codes[#self_codes + 1] = c
	end
	send_to_occupant(occ, muc_stanza.presence(room, occ, base, true, self_codes, extra))
	occ.sessions = {}
	broadcast_presence(room, occ, codes, nil, base, occ, extra)
end

local function presence_error(event, err_type, condition, text)
	return module:reply(event, st.error_reply(event.stanza, err_type, condition, text))
end

local function may_create(bare)
	if restrict == false then
		return true
	elseif restrict == "local" then
		return core.is_local_host(jid.host(bare)) or usermanager.is_admin(bare, module.host)
	end
	return usermanager.is_admin(bare, module.host)
end

-- Whether bare owns max rooms or more (nobody does while there are
-- fewer rooms than that).
local function owns_at_least(bare, max)
	if state.count < max then
		return false
	end
	local n = 0
	for _, room in pairs(rooms) do
		if room.affiliations[bare] == "owner" then
			n = n + 1
			if n >= max then
				return true
			end
		end
	end
	return false
end

local function new_room(event, room_jid, bare)
	if not may_create(bare) then
		presence_error(event, "cancel", "not-allowed", "only administrators may create rooms here")
		return nil
	end
	if state.count >= max_rooms then
		presence_error(event, "wait", "resource-constraint", "the service has as many rooms as it may")
		return nil
	end
	if not usermanager.is_admin(bare, module.host) and owns_at_least(bare, max_rooms_per_user) then
		presence_error(event, "cancel", "policy-violation",
			"you own " .. max_rooms_per_user .. " rooms already")
		return nil
	end
	local room = muc_room.new(room_jid, muc_config.defaults(defaults), core.random_token(16))
	room.affiliations[bare] = "owner"
	add_room(room)
	return room
end

-- A locked room nobody configured in time goes away.
local function lock_timer(room)
	if lock_timeout == math.huge then
		return
	end
	module:add_timer(lock_timeout, function()
		if rooms[room.jid] == room and room.locked then
			for _, occ in pairs(room.occupants) do
				remove_occupant(room, occ, {}, { reason = "the room was not configured in time" })
			end
			forget_room(room)
		end
	end)
end

local function history_limits(x)
	local h = x and x:get_child("history", NS_MUC)
	if not h then
		return {}
	end
	local function whole(v)
		local n = tonumber(v)
		return n and n >= 0 and math.floor(n) or nil
	end
	return {
		maxstanzas = whole(h.attr.maxstanzas), maxchars = whole(h.attr.maxchars),
		seconds = whole(h.attr.seconds), since = h.attr.since and datetime.parse(h.attr.since),
	}
end

local function send_history_and_subject(room, full, x)
	local now = core.now()
	for _, e in ipairs(muc_room.select_history(room, history_limits(x), now)) do
		local m = e.stanza:clone()
		m.attr.to = full
		m:tag("delay", { xmlns = NS_DELAY, stamp = datetime.datetime(e.when), from = room.jid }):up()
		module:send(m)
	end
	local from = room.subject_from and room_jid_of(room, room.subject_from) or room.jid
	module:send(st.message({ type = "groupchat", from = from, to = full, id = id.new() })
		:text_tag("subject", room.subject or ""))
end

-- The checks on entering an existing room: nil, or err_type, condition, text.
local function refuse_entry(room, bare, nick, x)
	local aff = muc_room.affiliation(room, bare)
	local rank = muc_room.AFFILIATIONS
	if room.locked and aff ~= "owner" then
		return "cancel", "item-not-found", "the room is locked until its owner configures it"
	elseif aff == "outcast" then
		return "auth", "forbidden", "you are banned from this room"
	end
	local other = room.occupants[nick]
	if other and other.bare ~= bare then
		return "cancel", "conflict", "that nickname is in use"
	end
	local err_type, condition, text = muc_register.check_nick(room, bare, nick, aff, enforce_nick)
	if err_type then
		return err_type, condition, text
	elseif room.config.members_only and rank[aff] < rank.member then
		return "auth", "registration-required", "only members may enter this room"
	elseif room.config.password and aff ~= "owner"
	   and (x and x:get_child_text("password", NS_MUC)) ~= room.config.password then
		return "auth", "not-authorized", "a password is needed to enter this room"
	elseif not other and rank[aff] < rank.admin then
		local max = room.config.max_users
		if max == 0 or max > limits.max_users then
			max = limits.max_users
		end
		if room.count >= max then
			return "wait", "service-unavailable", "the room is full"
		end
	end
	return nil
end

local function enter(event, room, nick, created)
	local stanza = event.stanza
	local from = stanza.attr.from
	local bare = jid.bare(from)
	local x = stanza:get_child("x", NS_MUC)
	if not created then
		local err_type, condition, text = refuse_entry(room, bare, nick, x)
		if err_type then
			return presence_error(event, err_type, condition, text)
		end
	end
	local aff = muc_room.affiliation(room, bare)
	local existing = room.occupants[nick]
	local occ = muc_room.add_session(room, nick, bare, from, muc_stanza.clean_presence(stanza),
		existing and existing.role or muc_room.default_role(room, aff))
	-- the others to the newcomer, the newcomer to the others, then itself
	for _, o in pairs(room.occupants) do
		if o ~= occ then
			send_to(muc_stanza.presence(room, o, nil, muc_room.sees_jids(room, occ)), from)
		end
	end
	local codes = { 110 }
	if room.config.whois == "anyone" then
		codes[#codes + 1] = 100
	end
	if room.config.logging then
		codes[#codes + 1] = 170
	end
	if created then
		codes[#codes + 1] = 201
	end
	broadcast_presence(room, occ, nil, codes)
	send_history_and_subject(room, from, x)
	return true
end

-- codes: the status codes of the others' unavailable (333: removed for
-- an error), also in the leaver's own with 110.
local function leave(room, occ, full, stanza, codes)
	local base = muc_stanza.clean_presence(stanza)
	local gone = muc_room.remove_session(room, occ, full)
	local self_codes = { 110 }
	for _, c in ipairs(codes or {}) do
		self_codes[#self_codes + 1] = c
	end
	send_to(muc_stanza.presence(room, occ, base, true, self_codes, { role = "none" }), full)
	if gone then
		occ.role = "none"
		broadcast_presence(room, occ, codes, nil, base, occ, { role = "none" })
		destroy_if_empty(room)
	else
		broadcast_presence(room, occ, nil, { 110 })
	end
	return true
end

local function change_nick(event, room, occ, nick)
	local other = room.occupants[nick]
	if other and other ~= occ then
		return presence_error(event, "cancel", "conflict", "that nickname is in use")
	end
	local err_type, condition, text = muc_register.check_nick(room, occ.bare, nick,
		muc_room.affiliation(room, occ.bare), enforce_nick)
	if err_type then
		return presence_error(event, err_type, condition, text)
	end
	local new_presence = muc_stanza.clean_presence(event.stanza)
	local unavailable = st.presence({ type = "unavailable" })
	broadcast_presence(room, occ, { 303 }, { 303, 110 }, unavailable, nil, { nick = nick })
	muc_room.rename(room, occ, nick)
	occ.sessions[event.stanza.attr.from] = new_presence
	occ.presence = new_presence
	broadcast_presence(room, occ, nil, { 110 })
	return true
end

-- A client's presence of type error to an occupant JID: the session is
-- gone or refuses the room (XEP-0045 7.14, XEP-0410): it leaves.
local function drop_session(room, full)
	local occ = muc_room.occupant_of(room, full)
	if occ then
		leave(room, occ, full, st.presence({ type = "unavailable" })
			:text_tag("status", "the occupant's client reported an error"), { 333 })
	end
end

local function handle_occupant_presence(event)
	local stanza = event.stanza
	local from, t = stanza.attr.from, stanza.attr.type
	local room_jid, _, nick = jid.bare(stanza.attr.to), nil, jid.resource(stanza.attr.to)
	local room = rooms[room_jid]
	if t == "error" then
		if room then
			drop_session(room, from)
		end
		return true
	elseif t ~= nil and t ~= "unavailable" then
		return true -- subscriptions and probes mean nothing to a room
	end
	local occ = room and muc_room.occupant_of(room, from)
	if t == "unavailable" then
		if occ then
			leave(room, occ, from, stanza)
		end
		return true
	end
	if #nick > 1023 then
		return presence_error(event, "modify", "not-acceptable", "that nickname is too long")
	end
	if not room then
		room = new_room(event, room_jid, jid.bare(from))
		if not room then
			return true
		end
		room.locked = locking and stanza:get_child("x", NS_MUC) ~= nil
		if room.locked then
			lock_timer(room)
		end
		module:log("info", "room %s created by %s", room_jid, jid.bare(from))
		return enter(event, room, nick, true)
	end
	if not occ then
		return enter(event, room, nick, false)
	elseif occ.nick ~= nick then
		return change_nick(event, room, occ, nick)
	end
	local p = muc_stanza.clean_presence(stanza)
	occ.sessions[from] = p
	occ.presence = p
	broadcast_presence(room, occ, nil, { 110 })
	return true
end

local function handle_room_presence(event)
	local t = event.stanza.attr.type
	if t == nil then
		return presence_error(event, "modify", "jid-malformed", "a nickname is needed to enter a room")
	end
	return true
end

-- --- messages --------------------------------------------------------------------

local function archive_message(room, m, nick)
	if not room.config.logging then
		return id.new()
	end
	local sid, err = archive:append(jid.node(room.jid), nil, m, core.now(), room_jid_of(room, nick))
	if not sid then
		module:log("error", "cannot archive a message of %s: %s", room.jid, err)
		return id.new()
	end
	return sid
end

-- m to every session of every occupant: one copy routed to each in C
-- (core.fanout), through the recipient's own delivery chain.
local function broadcast_message(room, m)
	local list, n = {}, 0
	for _, o in pairs(room.occupants) do
		for full in pairs(o.sessions) do
			n = n + 1
			list[n] = full
		end
	end
	core.fanout(m, list)
end

local function groupchat(event, room, occ)
	local stanza = event.stanza
	if not occ then
		return bounce(event, "cancel", "not-acceptable", "only occupants may speak in the room")
	elseif occ.role == "visitor" then
		return bounce(event, "auth", "forbidden", "visitors may not speak in a moderated room")
	end
	local subject = stanza:get_child("subject")
	local has_body = stanza:get_child("body") ~= nil
	if subject and not has_body then
		if not (room.config.change_subject or occ.role == "moderator") then
			return bounce(event, "auth", "forbidden", "only moderators may change the subject")
		end
		local text = subject:get_text()
		room.subject = text ~= "" and text or nil
		room.subject_from = occ.nick
		save(room)
	end
	local m = muc_stanza.groupchat(room, occ, stanza)
	local sid = archive_message(room, m, occ.nick)
	if has_body then
		muc_room.add_history(room, m, core.now(), #tostring(m))
	end
	m:tag("stanza-id", { xmlns = NS_SID, id = sid, by = room.jid }):up()
	broadcast_message(room, m)
	return true
end

local function invite(event, room, occ, inv)
	local to = inv.attr.to and jid.prep(inv.attr.to)
	if not to then
		return bounce(event, "modify", "jid-malformed", "the invitation needs a 'to' JID")
	end
	if not occ then
		return bounce(event, "cancel", "not-acceptable", "only occupants may invite")
	end
	local aff = muc_room.affiliation(room, occ.bare)
	local rank = muc_room.AFFILIATIONS
	local privileged = rank[aff] >= rank.admin
	if room.config.members_only and not (privileged or room.config.allow_invites) then
		return bounce(event, "auth", "forbidden", "only admins may invite to this room")
	end
	if room.config.members_only and muc_room.affiliation(room, jid.bare(to)) == "none" then
		room.affiliations[jid.bare(to)] = "member"
		save(room)
	end
	local m = st.message({ from = room.jid, to = to, id = event.stanza.attr.id or id.new() })
		:tag("x", { xmlns = NS_USER })
		:tag("invite", { from = event.stanza.attr.from })
	local reason = inv:get_child_text("reason")
	if reason then
		m:text_tag("reason", reason)
	end
	m:up()
	if room.config.password then
		m:text_tag("password", room.config.password)
	end
	m:up():tag("x", { xmlns = NS_CONFERENCE, jid = room.jid, reason = reason }):up()
	module:send(m)
	return true
end

local function decline(event, room, dec)
	local to = dec.attr.to and jid.prep(dec.attr.to)
	if not to then
		return bounce(event, "modify", "jid-malformed", "the decline needs a 'to' JID")
	end
	local m = st.message({ from = room.jid, to = to })
		:tag("x", { xmlns = NS_USER }):tag("decline", { from = event.stanza.attr.from })
	local reason = dec:get_child_text("reason")
	if reason then
		m:text_tag("reason", reason)
	end
	module:send(m)
	return true
end

local function voice_request(event, room, occ, fields)
	if not occ then
		return bounce(event, "cancel", "not-acceptable", "only occupants may ask for voice")
	end
	local allow = fields["muc#request_allow"] and fields["muc#request_allow"][1]
	if allow then -- a moderator's answer
		if occ.role ~= "moderator" then
			return bounce(event, "auth", "forbidden", "only moderators approve voice requests")
		end
		local nick = fields["muc#roomnick"] and fields["muc#roomnick"][1]
		local target = nick and room.occupants[nick]
		if (allow == "true" or allow == "1") and target and target.role == "visitor" then
			target.role = "participant"
			broadcast_presence(room, target, nil, { 110 })
		end
		return true
	end
	if occ.role ~= "visitor" then
		return true -- it has voice already
	end
	local form = muc_stanza.voice_form(room, occ)
	for _, o in pairs(room.occupants) do
		if o.role == "moderator" then
			send_to_occupant(o, form)
		end
	end
	return true
end

local function handle_room_message(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	local room = rooms[jid.bare(stanza.attr.to)]
	if not room then
		return bounce(event, "cancel", "item-not-found", "no such room")
	end
	local from = stanza.attr.from
	local occ = muc_room.occupant_of(room, from)
	if t == "error" then
		drop_session(room, from)
		return true
	elseif t == "groupchat" then
		return groupchat(event, room, occ)
	end
	local x = stanza:get_child("x", NS_USER)
	if x then
		local inv, dec = x:get_child("invite"), x:get_child("decline")
		if inv then
			return invite(event, room, occ, inv)
		elseif dec then
			return decline(event, room, dec)
		end
	end
	local form = stanza:get_child("x", dataforms.xmlns)
	if form then
		local fields, form_type = dataforms.read(form)
		if fields and form_type == NS_REQUEST then
			return voice_request(event, room, occ, fields)
		end
	end
	return bounce(event, "modify", "bad-request", "send groupchat messages to the room")
end

local function may_pm(room, occ)
	local allow = room.config.allowpm
	if occ.role == "moderator" then
		return allow ~= "none"
	elseif allow == "anyone" then
		return true
	elseif allow == "participants" then
		return occ.role == "participant"
	end
	return false
end

local function handle_private_message(event)
	local stanza = event.stanza
	local room = rooms[jid.bare(stanza.attr.to)]
	if not room then
		return bounce(event, "cancel", "item-not-found", "no such room")
	end
	local occ = muc_room.occupant_of(room, stanza.attr.from)
	if stanza.attr.type == "error" then
		return true
	elseif not occ then
		return bounce(event, "cancel", "not-acceptable", "only occupants may send private messages")
	elseif stanza.attr.type == "groupchat" then
		return bounce(event, "modify", "bad-request", "a private message is not of type groupchat")
	end
	local target = room.occupants[jid.resource(stanza.attr.to)]
	if not target then
		return bounce(event, "cancel", "item-not-found", "no such occupant")
	elseif not may_pm(room, occ) then
		return bounce(event, "cancel", "not-allowed", "private messages are not allowed here")
	end
	send_to_occupant(target, muc_stanza.private_message(room, occ, stanza))
	return true
end

-- --- iqs to occupants (XEP-0045 7.9, XEP-0410) ----------------------------------------

-- iqs passed to an occupant whose answer never came are forgotten after
-- PENDING_TTL seconds (looked for once PENDING_SWEEP have piled up).
local PENDING_TTL, PENDING_SWEEP = 120, 256

local function forget_stale_iqs()
	if (state.pending_count or 0) < PENDING_SWEEP then
		return
	end
	local now, n = core.uptime(), 0
	for k, p in pairs(pending) do
		if now - p.at > PENDING_TTL then
			pending[k] = nil
		else
			n = n + 1
		end
	end
	state.pending_count = n
end

local function handle_occupant_iq(event)
	local stanza = event.stanza
	local t = stanza.attr.type
	local room = rooms[jid.bare(stanza.attr.to)]
	if t == "result" or t == "error" then
		local p = pending[stanza.attr.id]
		if p and p.room == jid.bare(stanza.attr.to) and p.target == stanza.attr.from then
			pending[stanza.attr.id] = nil
			state.pending_count = state.pending_count - 1
			local r = stanza:clone()
			r.attr.id, r.attr.from, r.attr.to = p.id, p.from, p.to
			module:send(r)
		end
		return true
	end
	if not room then
		return bounce(event, "cancel", "item-not-found", "no such room")
	end
	local occ = muc_room.occupant_of(room, stanza.attr.from)
	if not occ then
		return bounce(event, "cancel", "not-acceptable", "you are not in this room")
	end
	local nick = jid.resource(stanza.attr.to)
	local target = room.occupants[nick]
	if not target then
		return bounce(event, "cancel", "item-not-found", "no such occupant")
	end
	local child = stanza.tags[1]
	if target == occ and child and child.name == "ping" and child.attr.xmlns == NS_PING then
		return module:reply(event, st.reply(stanza)) -- self-ping: still joined
	end
	local full = next(target.sessions)
	local new_id = id.new()
	forget_stale_iqs()
	pending[new_id] = { room = room.jid, target = full, id = stanza.attr.id,
		from = stanza.attr.to, to = stanza.attr.from, at = core.uptime() }
	state.pending_count = (state.pending_count or 0) + 1
	local fwd = stanza:clone()
	fwd.attr.id, fwd.attr.from, fwd.attr.to = new_id, room_jid_of(room, occ.nick), full
	module:send(fwd)
	return true
end

-- --- the room's own iqs ---------------------------------------------------------------

local function room_of(event)
	local room = rooms[jid.bare(event.stanza.attr.to)]
	if not room then
		bounce(event, "cancel", "item-not-found", "no such room")
	end
	return room
end

local function room_disco_info(event)
	local room = room_of(event)
	if not room then
		return true
	end
	local stanza = event.stanza
	local node = stanza.tags[1].attr.node
	if node == muc_register.node then -- XEP-0045 7.12: my registered nick
		return module:reply(event, muc_register.roomuser_item(room, jid.bare(stanza.attr.from),
			st.reply(stanza):tag("query", { xmlns = NS_INFO, node = node })))
	elseif node then
		return bounce(event, "cancel", "item-not-found", "no such node")
	end
	local r = st.reply(stanza):tag("query", { xmlns = NS_INFO })
		:tag("identity", { category = "conference", type = "text", name = room.config.name or jid.node(room.jid) }):up()
	local features = { NS_MUC, NS_INFO, NS_ITEMS, NS_SID, NS_OID, NS_SELF_PING, NS_STABLE_ID,
		NS_REQUEST, NS_CONFERENCE, muc_register.xmlns }
	if room.config.logging then
		features[#features + 1] = NS_MAM
	end
	for _, f in ipairs(muc_config.features(room.config)) do
		features[#features + 1] = f
	end
	for _, f in ipairs(features) do
		r:tag("feature", { var = f }):up()
	end
	r:add_child(muc_config.info_form(room, room.count))
	return module:reply(event, r)
end

local function room_disco_items(event)
	local room = room_of(event)
	if not room then
		return true
	end
	-- XEP-0045 6.5: the occupants are not listed to keep them private
	return module:reply(event, st.reply(event.stanza):tag("query", { xmlns = NS_ITEMS }))
end

local function actor_of(event, room)
	local from = event.stanza.attr.from
	return muc_room.occupant_of(room, from), muc_room.affiliation(room, jid.bare(from))
end

local admin_ctx -- set below: what util.muc.admin needs of the service

-- A handler of the room's #admin or #owner iqs: util.muc.admin's answer
-- for the room and the sender's occupant and affiliation.
local function room_admin_iq(answer)
	return function(event)
		local room = room_of(event)
		if not room then
			return true
		end
		local occ, aff = actor_of(event, room)
		return answer(admin_ctx, event, room, occ, aff)
	end
end

local handle_admin = room_admin_iq(muc_admin.admin)
local handle_owner = room_admin_iq(muc_admin.owner)
local handle_register = room_admin_iq(function(ctx, event, room, occ, aff)
	if room.locked and aff ~= "owner" then
		return bounce(event, "cancel", "item-not-found", "the room is locked until its owner configures it")
	end
	return muc_register.iq(ctx, event, room, occ, aff)
end)

local function may_read_archive(room, bare)
	local aff = muc_room.affiliation(room, bare)
	if aff == "outcast" then
		return false
	end
	if room.config.members_only or not room.config.public then
		return muc_room.AFFILIATIONS[aff] >= muc_room.AFFILIATIONS.member
			or muc_room.occupant_by_bare(room, bare) ~= nil
	end
	return true
end

local function handle_mam_query(event)
	local room = room_of(event)
	if not room then
		return true
	end
	local stanza = event.stanza
	if not room.config.logging then
		return bounce(event, "cancel", "service-unavailable", "this room keeps no archive")
	elseif not may_read_archive(room, jid.bare(stanza.attr.from)) then
		return bounce(event, "auth", "forbidden", "only members may read this room's archive")
	end
	local query = stanza.tags[1]
	local page, cond, text = muc_mam.query(archive, jid.node(room.jid), query, page_size)
	if not page then
		return bounce(event, muc_mam.error_type(cond), cond, text)
	end
	for _, m in ipairs(muc_mam.results(stanza.attr.from, room.jid, query, page.items)) do
		module:reply(event, m)
	end
	return module:reply(event, muc_mam.fin(stanza, page))
end

local function handle_mam_form(event)
	if not room_of(event) then
		return true
	end
	return module:reply(event, st.reply(event.stanza):tag("query", { xmlns = NS_MAM })
		:add_child(muc_mam.form()))
end

-- --- the service's iqs ---------------------------------------------------------------

local function service_disco_info(event)
	if event.stanza.tags[1].attr.node then
		return bounce(event, "cancel", "item-not-found", "no such node")
	end
	local r = st.reply(event.stanza):tag("query", { xmlns = NS_INFO })
		:tag("identity", { category = "conference", type = "text", name = service_name }):up()
	for _, f in ipairs({ NS_MUC, NS_INFO, NS_ITEMS, NS_UNIQUE, NS_SID, NS_OID, NS_SELF_PING,
		NS_STABLE_ID, NS_REQUEST, NS_CONFERENCE }) do
		r:tag("feature", { var = f }):up()
	end
	return module:reply(event, r)
end

local function service_disco_items(event)
	local r = st.reply(event.stanza):tag("query", { xmlns = NS_ITEMS })
	local list = {}
	for room_jid, room in pairs(rooms) do
		if room.config.public and not room.locked then
			list[#list + 1] = room_jid
		end
	end
	table.sort(list)
	for _, room_jid in ipairs(list) do
		r:tag("item", { jid = room_jid, name = rooms[room_jid].config.name or jid.node(room_jid) }):up()
	end
	return module:reply(event, r)
end

local function unique_name(event)
	local name
	repeat
		name = core.random_token(12):lower():gsub("[^%w]", "")
	until #name > 0 and not rooms[name .. "@" .. module.host]
	return module:reply(event, st.reply(event.stanza):tag("unique", { xmlns = NS_UNIQUE }):text(name))
end

local function ping_service(event)
	return module:reply(event, st.reply(event.stanza))
end

-- --- shutdown ------------------------------------------------------------------------

local function on_shutdown()
	for _, room in pairs(rooms) do
		for _, occ in pairs(room.occupants) do
			local base = st.presence({ type = "unavailable" })
			send_to_occupant(occ, muc_stanza.presence(room, occ, base, true, { 110, 332 }, { role = "none" }))
		end
	end
end

admin_ctx = {
	send = function(s) module:send(s) end,
	reply = function(event, s) return module:reply(event, s) end,
	bounce = bounce,
	save = save,
	forget_room = forget_room,
	archive = archive,
	limits = limits,
	remove_occupant = remove_occupant,
	broadcast_presence = broadcast_presence,
	broadcast_message = broadcast_message,
	send_to_occupant = send_to_occupant,
}

function module.load()
	-- a reload: rooms still locked get their timer again
	for _, room in pairs(rooms) do
		if room.locked then
			lock_timer(room)
		end
	end
	local n = restore_rooms()
	if n > 0 then
		module:log("info", "%d persistent rooms restored", n)
	end
end

module:add_identity("conference", "text", service_name)
module:add_feature(NS_MUC)

module:hook("presence/full", handle_occupant_presence)
module:hook("presence/bare", handle_room_presence)
module:hook("message/bare", handle_room_message)
module:hook("message/full", handle_private_message)
module:hook("iq/full", handle_occupant_iq)
module:hook("iq-get/bare/" .. NS_INFO .. ":query", room_disco_info)
module:hook("iq-get/bare/" .. NS_ITEMS .. ":query", room_disco_items)
module:hook("iq-get/bare/" .. NS_ADMIN .. ":query", handle_admin)
module:hook("iq-set/bare/" .. NS_ADMIN .. ":query", handle_admin)
module:hook("iq-get/bare/" .. NS_OWNER .. ":query", handle_owner)
module:hook("iq-set/bare/" .. NS_OWNER .. ":query", handle_owner)
module:hook("iq-get/bare/" .. muc_register.xmlns .. ":query", handle_register)
module:hook("iq-set/bare/" .. muc_register.xmlns .. ":query", handle_register)
module:hook("iq-set/bare/" .. NS_MAM .. ":query", handle_mam_query)
module:hook("iq-get/bare/" .. NS_MAM .. ":query", handle_mam_form)
module:hook("iq-get/host/" .. NS_INFO .. ":query", service_disco_info)
module:hook("iq-get/host/" .. NS_ITEMS .. ":query", service_disco_items)
module:hook("iq-get/host/" .. NS_UNIQUE .. ":unique", unique_name)
module:hook("iq-get/host/" .. NS_PING .. ":ping", ping_service)
module:hook_global("server-stopping", on_shutdown)
