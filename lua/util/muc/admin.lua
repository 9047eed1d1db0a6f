-- util.muc.admin: the muc#admin and muc#owner iqs of a room (XEP-0045
-- sections 8, 9 and 10): role and affiliation lists and changes, the
-- configuration form, instant rooms, destruction. Each action is checked
-- against the actor's affiliation and role (util.muc.room) and a request
-- with several items is all or nothing.
--
--   admin(ctx, event, room, actor, actor_aff)
--   owner(ctx, event, room, actor, actor_aff)
--
-- actor is the requesting occupant (nil when not present); ctx is what
-- mod_muc lends: reply, bounce, save, forget_room, archive, limits,
-- remove_occupant, broadcast_presence, broadcast_message, send_to_occupant.

local st = require "util.stanza"
local jid = require "util.jid"
local dataforms = require "util.dataforms"
local muc_config = require "util.muc.config"
local muc_room = require "util.muc.room"
local muc_stanza = require "util.muc.stanza"

local ipairs, next, pairs, sort, tostring = ipairs, next, pairs, table.sort, tostring

local NS_USER = "http://jabber.org/protocol/muc#user"
local NS_ADMIN = "http://jabber.org/protocol/muc#admin"
local NS_OWNER = "http://jabber.org/protocol/muc#owner"

local AFF, ROLE = muc_room.AFFILIATIONS, muc_room.ROLES
local ERROR_TYPE = { forbidden = "auth", ["not-allowed"] = "cancel", conflict = "cancel",
	["item-not-found"] = "cancel", ["jid-malformed"] = "modify" }

local M = {}

local function fail(ctx, event, condition, text)
	return ctx.bounce(event, ERROR_TYPE[condition] or "modify", condition, text)
end

-- --- lists -------------------------------------------------------------------------

local function affiliation_list(ctx, event, room, actor_aff, want)
	if not AFF[want] or want == "none" then
		return fail(ctx, event, "bad-request", "no such affiliation")
	elseif AFF[actor_aff] < AFF.admin then
		return fail(ctx, event, "forbidden", "only admins and owners see affiliation lists")
	end
	local list = {}
	for bare, a in pairs(room.affiliations) do
		if a == want then
			list[#list + 1] = bare
		end
	end
	sort(list)
	local r = st.reply(event.stanza):tag("query", { xmlns = NS_ADMIN })
	for _, bare in ipairs(list) do
		-- the registered nick (XEP-0045 9.5), else the one in use
		local nick = muc_room.reserved_nick(room, bare)
		if not nick then
			local occ = muc_room.occupant_by_bare(room, bare)
			nick = occ and occ.nick
		end
		r:tag("item", { affiliation = want, jid = bare, nick = nick }):up()
	end
	return ctx.reply(event, r)
end

local function role_list(ctx, event, room, actor, want)
	if not ROLE[want] or want == "none" then
		return fail(ctx, event, "bad-request", "no such role")
	elseif not actor or actor.role ~= "moderator" then
		return fail(ctx, event, "forbidden", "only moderators see role lists")
	end
	local nicks = {}
	for nick, occ in pairs(room.occupants) do
		if occ.role == want then
			nicks[#nicks + 1] = nick
		end
	end
	sort(nicks)
	local r = st.reply(event.stanza):tag("query", { xmlns = NS_ADMIN })
	for _, nick in ipairs(nicks) do
		local occ = room.occupants[nick]
		r:tag("item", { role = want, nick = nick, affiliation = muc_room.affiliation(room, occ.bare),
			jid = next(occ.sessions) }):up()
	end
	return ctx.reply(event, r)
end

-- --- changes -----------------------------------------------------------------------

-- One item of a set: the action, or nil, condition, text.
local function read_item(room, item, actor, actor_aff)
	local role, aff, nick = item.attr.role, item.attr.affiliation, item.attr.nick
	local reason = item:get_child_text("reason")
	if aff then
		if not AFF[aff] then
			return nil, "bad-request", "no such affiliation"
		end
		local bare = item.attr.jid and jid.prep(item.attr.jid)
		bare = bare and jid.bare(bare)
		local reserve -- a nick given with the JID is the one registered for it
		if bare and nick and AFF[aff] >= AFF.member then
			reserve = jid.resourceprep(nick)
			local holder = reserve and muc_room.nick_holder(room, reserve)
			if not reserve then
				return nil, "jid-malformed", "that is not a nickname"
			elseif holder and holder ~= bare then
				return nil, "conflict", "another user registered that nickname"
			end
		elseif not bare and nick and room.occupants[nick] then
			bare = room.occupants[nick].bare
		end
		if not bare then
			return nil, "bad-request", "an affiliation change needs a JID"
		end
		local err = muc_room.check_affiliation_change(room, actor_aff, bare, aff)
		if err then
			return nil, err, "you may not change that affiliation"
		end
		return { bare = bare, affiliation = aff, reason = reason, reserve = reserve }
	elseif role then
		if not ROLE[role] then
			return nil, "bad-request", "no such role"
		elseif not nick then
			return nil, "bad-request", "a role change needs a nick"
		elseif not actor then
			return nil, "forbidden", "only occupants may change roles"
		end
		local target = room.occupants[nick]
		if not target then
			return nil, "item-not-found", "no occupant has that nick"
		end
		local err = muc_room.check_role_change(room, actor, target, role)
		if err then
			return nil, err, "you may not change that occupant's role"
		end
		return { target = target, role = role, reason = reason }
	end
	return nil, "bad-request", "an item needs a role or an affiliation"
end

local function apply_role(ctx, room, a, actor)
	local extra = { actor = actor and actor.nick, reason = a.reason }
	if a.role == "none" then
		ctx.remove_occupant(room, a.target, { 307 }, extra)
	elseif room.occupants[a.target.nick] == a.target then
		a.target.role = a.role
		ctx.broadcast_presence(room, a.target, nil, { 110 }, nil, nil, extra)
	end
end

local function apply_affiliation(ctx, room, a, actor)
	room.affiliations[a.bare] = a.affiliation ~= "none" and a.affiliation or nil
	if AFF[a.affiliation] < AFF.member then
		muc_room.reserve(room, a.bare, nil) -- a registration is a membership
	elseif a.reserve then
		muc_room.reserve(room, a.bare, a.reserve)
	end
	ctx.save(room)
	local extra = { actor = actor and actor.nick, reason = a.reason }
	for _, occ in pairs(room.occupants) do
		if occ.bare == a.bare then
			if a.affiliation == "outcast" then
				ctx.remove_occupant(room, occ, { 301 }, extra)
			elseif room.config.members_only and AFF[a.affiliation] < AFF.member then
				ctx.remove_occupant(room, occ, { 321 }, extra)
			else
				occ.role = muc_room.default_role(room, a.affiliation)
				ctx.broadcast_presence(room, occ, nil, { 110 }, nil, nil, extra)
			end
		end
	end
end

local function set_items(ctx, event, room, actor, actor_aff)
	local actions = {}
	for item in event.stanza.tags[1]:childtags("item") do
		local a, cond, text = read_item(room, item, actor, actor_aff)
		if not a then
			return fail(ctx, event, cond, text)
		end
		actions[#actions + 1] = a
	end
	if #actions == 0 then
		return fail(ctx, event, "bad-request", "no items")
	end
	for _, a in ipairs(actions) do
		if a.role then
			apply_role(ctx, room, a, actor)
		else
			apply_affiliation(ctx, room, a, actor)
		end
	end
	return ctx.reply(event, st.reply(event.stanza))
end

function M.admin(ctx, event, room, actor, actor_aff)
	local stanza = event.stanza
	if stanza.attr.type == "set" then
		return set_items(ctx, event, room, actor, actor_aff)
	end
	local item = stanza.tags[1]:get_child("item")
	if item and item.attr.affiliation then
		return affiliation_list(ctx, event, room, actor_aff, item.attr.affiliation)
	elseif item and item.attr.role then
		return role_list(ctx, event, room, actor, item.attr.role)
	end
	return fail(ctx, event, "bad-request", "ask for a role or an affiliation")
end

-- Sets bare's affiliation (and registered nick: reserve, or nil to keep
-- it) as an admin's item would, telling the room; actor is an occupant
-- or nil. The caller checked it may.
function M.set_affiliation(ctx, room, bare, affiliation, reserve, actor)
	apply_affiliation(ctx, room, { bare = bare, affiliation = affiliation, reserve = reserve }, actor)
end

-- --- owner ------------------------------------------------------------------------

local function destroy(ctx, event, room, el)
	local alt = el.attr.jid and jid.prep(el.attr.jid)
	local how = { role = "none", destroy = { jid = alt, reason = el:get_child_text("reason") } }
	room.affiliations, room.reserved, room.holders = {}, {}, {}
	for _, occ in pairs(room.occupants) do
		ctx.send_to_occupant(occ, muc_stanza.presence(room, occ,
			st.presence({ type = "unavailable" }), false, nil, how))
	end
	room.occupants, room.by_jid, room.count = {}, {}, 0
	ctx.forget_room(room)
	ctx.archive:delete(jid.node(room.jid))
	return ctx.reply(event, st.reply(event.stanza))
end

-- A status-code message to every occupant (XEP-0045 10.2.1).
local function notify(ctx, room, codes)
	if #codes == 0 then
		return
	end
	local m = st.message({ from = room.jid, type = "groupchat" }):tag("x", { xmlns = NS_USER })
	for _, c in ipairs(codes) do
		m:tag("status", { code = tostring(c) }):up()
	end
	ctx.broadcast_message(room, m:up())
end

local function configure(ctx, event, room, x)
	local new, cond, text = muc_config.apply(room.config, x, ctx.limits)
	if not new then
		return fail(ctx, event, cond, text)
	end
	local old, was_locked = room.config, room.locked
	room.config, room.locked = new, false
	while #room.history > new.history_length do
		table.remove(room.history, 1)
	end
	ctx.save(room)
	ctx.reply(event, st.reply(event.stanza))
	if not was_locked then
		local codes = { 104 }
		if old.whois ~= new.whois then
			codes[#codes + 1] = new.whois == "anyone" and 172 or 173
		end
		if old.logging ~= new.logging then
			codes[#codes + 1] = new.logging and 170 or 171
		end
		notify(ctx, room, codes)
	end
	if new.members_only and not old.members_only then
		for _, occ in pairs(room.occupants) do
			if AFF[muc_room.affiliation(room, occ.bare)] < AFF.member then
				ctx.remove_occupant(room, occ, { 322 }, {})
			end
		end
	end
	return true
end

function M.owner(ctx, event, room, _, actor_aff)
	local stanza = event.stanza
	if actor_aff ~= "owner" then
		return fail(ctx, event, "forbidden", "only owners may configure the room")
	end
	local query = stanza.tags[1]
	if stanza.attr.type == "get" then
		return ctx.reply(event, st.reply(stanza):tag("query", { xmlns = NS_OWNER })
			:add_child(muc_config.form(room, ctx.limits)))
	end
	local el = query:get_child("destroy")
	if el then
		return destroy(ctx, event, room, el)
	end
	local x = query:get_child("x", dataforms.xmlns)
	if not x then
		return fail(ctx, event, "bad-request", "send a form or <destroy/>")
	elseif x.attr.type == "cancel" then
		if room.locked then -- XEP-0045 10.1.3: a new room's owner gave up
			return destroy(ctx, event, room, st.stanza("destroy"))
		end
		return ctx.reply(event, st.reply(stanza))
	end
	return configure(ctx, event, room, x)
end

return M
