-- util.muc.register: registered nicknames (XEP-0045 7.10, 7.12 and the
-- nick rules of 7.2.9): registering with a room through the muc#register
-- form, which makes the user a member, cancelling it, the check a joining
-- or renaming occupant's nick goes through, and the x-roomuser-item disco
-- node that tells a user the nick registered for it.
--
--   iq(ctx, event, room, actor, actor_aff)
--                      the room's jabber:iq:register get and set
--   check_nick(room, bare, nick, aff, enforce)
--                      nil, or err_type, condition, text when bare may not
--                      be in the room as nick
--   roomuser_item(room, bare, query)
--                      adds the identity with bare's registered nick
--
-- The registrations live in the room (util.muc.room reserve, reserved_nick,
-- nick_holder) and are stored with it. Who may register: members, admins
-- and owners always (to reserve their nick); users without an affiliation
-- when the room's allow_register is on; outcasts never.

local st = require "util.stanza"
local jid = require "util.jid"
local dataforms = require "util.dataforms"
local muc_admin = require "util.muc.admin"
local muc_room = require "util.muc.room"

local NS_REGISTER = "jabber:iq:register"
local NS_MUC_REGISTER = "http://jabber.org/protocol/muc#register"
local NICK_FIELD = "muc#register_roomnick"

local AFF = muc_room.AFFILIATIONS

local M = { xmlns = NS_REGISTER, node = "x-roomuser-item" }

function M.check_nick(room, bare, nick, aff, enforce)
	local holder = muc_room.nick_holder(room, nick)
	if holder and holder ~= bare then
		return "cancel", "conflict", "another user registered that nickname"
	end
	local mine = muc_room.reserved_nick(room, bare)
	if mine and mine ~= nick and (enforce or room.config.registered_only) then
		return "cancel", "not-acceptable", "enter this room as " .. mine
	elseif not mine and room.config.registered_only and AFF[aff] < AFF.admin then
		return "auth", "registration-required", "register a nickname with this room first"
	end
	return nil
end

function M.roomuser_item(room, bare, query)
	local nick = muc_room.reserved_nick(room, bare)
	if nick then
		query:tag("identity", { category = "conference", type = "text", name = nick }):up()
	end
	return query
end

local function form()
	local x = dataforms.form(NS_MUC_REGISTER, {
		{ var = NICK_FIELD, type = "text-single", label = "Nickname",
			child = st.stanza("required") },
	})
	x.attr.type = "form"
	return x
end

local function get(ctx, event, room, bare)
	local q = st.reply(event.stanza):tag("query", { xmlns = NS_REGISTER })
	local nick = muc_room.reserved_nick(room, bare)
	if nick then
		q:tag("registered"):up():text_tag("username", nick)
	else
		q:text_tag("instructions", "Choose the nickname to register with " .. room.jid
			.. "; registering makes you a member of the room.")
		q:add_child(form())
	end
	return ctx.reply(event, q)
end

-- <remove/>: the nick is free again, and a member without it is no member
-- (admins and owners keep their affiliation).
local function remove(ctx, event, room, bare, actor, aff)
	if not muc_room.reserved_nick(room, bare) and aff ~= "member" then
		return ctx.bounce(event, "cancel", "item-not-found", "you have no registration here")
	end
	if aff == "member" then
		muc_admin.set_affiliation(ctx, room, bare, "none", nil, actor)
	else
		muc_room.reserve(room, bare, nil)
		ctx.save(room)
	end
	return ctx.reply(event, st.reply(event.stanza))
end

-- The nick a submitted form asks for, or nil, err_type, condition, text.
local function wanted_nick(x)
	local fields, form_type = dataforms.read(x)
	if not fields then
		return nil, "modify", "bad-request", form_type
	elseif form_type ~= NS_MUC_REGISTER then
		return nil, "modify", "bad-request", "the FORM_TYPE must be " .. NS_MUC_REGISTER
	end
	local value = (fields[NICK_FIELD] or {})[1]
	if not value or value == "" then
		return nil, "modify", "not-acceptable", "the nickname is missing"
	end
	local nick = jid.resourceprep(value)
	if not nick or #nick > 1023 then
		return nil, "modify", "jid-malformed", "that is not a nickname"
	end
	return nick
end

local function set(ctx, event, room, bare, actor, aff)
	local query = event.stanza.tags[1]
	if query:get_child("remove") then
		return remove(ctx, event, room, bare, actor, aff)
	end
	local x = query:get_child("x", dataforms.xmlns)
	if not x then
		return ctx.bounce(event, "modify", "bad-request", "send the muc#register form")
	elseif x.attr.type == "cancel" then
		return ctx.reply(event, st.reply(event.stanza))
	end
	local nick, err_type, condition, text = wanted_nick(x)
	if not nick then
		return ctx.bounce(event, err_type, condition, text)
	end
	local holder = muc_room.nick_holder(room, nick)
	local in_use = room.occupants[nick]
	if (holder and holder ~= bare) or (in_use and in_use.bare ~= bare) then
		return ctx.bounce(event, "cancel", "conflict", "that nickname is taken")
	end
	if aff == "none" then -- XEP-0045 7.10: the registered user is a member
		muc_admin.set_affiliation(ctx, room, bare, "member", nick, actor)
	else
		muc_room.reserve(room, bare, nick)
		ctx.save(room)
	end
	return ctx.reply(event, st.reply(event.stanza))
end

function M.iq(ctx, event, room, actor, aff)
	local bare = jid.bare(event.stanza.attr.from)
	if aff == "outcast" then
		return ctx.bounce(event, "auth", "forbidden", "you are banned from this room")
	elseif aff == "none" and not room.config.allow_register then
		return ctx.bounce(event, "cancel", "not-allowed",
			"only members may register with this room; ask its admins for membership")
	elseif event.stanza.attr.type == "get" then
		return get(ctx, event, room, bare)
	end
	return set(ctx, event, room, bare, actor, aff)
end

return M
