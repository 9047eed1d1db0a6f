-- util.muc.room: a room's state and XEP-0045's rules over it, without
-- sending anything (mod_muc sends).
--
-- words:
--   affiliation  long-lived, by bare JID: owner, admin, member, outcast
--                (none when absent)
--   role         while present, by occupant: moderator, participant,
--                visitor (none: not present)
--   occupant     { nick, bare, role, sessions = { [full JID] = presence },
--                  presence = the last presence of any of its sessions }:
--                one bare JID may be present from several resources under
--                the same nick
--   history      the last config.history_length groupchat messages, each
--                { stanza, when, chars }
--   reserved     registered nicks (XEP-0045 7.10), by bare JID; holders
--                is the same by nick (rebuilt, never stored)
--
-- A room is a plain table (module:shared keeps it across a reload; the
-- functions live here, not in metatables).

local hashes = require "util.hashes"

local pairs, next = pairs, next

local M = {}

M.AFFILIATIONS = { owner = 4, admin = 3, member = 2, none = 1, outcast = 0 }
M.ROLES = { moderator = 3, participant = 2, visitor = 1, none = 0 }

function M.new(room_jid, config, salt)
	return {
		jid = room_jid, config = config, affiliations = {}, occupants = {},
		by_jid = {}, count = 0, locked = false, subject = nil,
		subject_from = nil, history = {}, salt = salt, reserved = {}, holders = {},
	}
end

-- What storage keeps of a persistent room.
function M.saved(room)
	return {
		config = room.config, affiliations = room.affiliations,
		subject = room.subject, subject_from = room.subject_from,
		salt = room.salt, reserved = room.reserved,
	}
end

function M.from_saved(room_jid, data)
	local room = M.new(room_jid, data.config, data.salt)
	room.affiliations = data.affiliations or {}
	room.subject, room.subject_from = data.subject, data.subject_from
	for bare, nick in pairs(data.reserved or {}) do
		M.reserve(room, bare, nick)
	end
	return room
end

-- --- registered nicks (XEP-0045 7.10) -----------------------------------------

-- A room kept across a reload from before registrations gets its tables.
local function reservations(room)
	if not room.reserved then
		room.reserved, room.holders = {}, {}
	end
	return room.reserved, room.holders
end

function M.reserved_nick(room, bare)
	return (reservations(room))[bare]
end

-- The bare JID that registered nick, or nil.
function M.nick_holder(room, nick)
	local _, holders = reservations(room)
	return holders[nick]
end

-- Reserves nick for bare (nil: drops bare's reservation). The caller
-- checked that nobody else holds nick.
function M.reserve(room, bare, nick)
	local reserved, holders = reservations(room)
	local old = reserved[bare]
	if old then
		holders[old] = nil
	end
	reserved[bare] = nick
	if nick then
		holders[nick] = bare
	end
end

function M.affiliation(room, bare)
	return room.affiliations[bare] or "none"
end

function M.owners(room)
	local n = 0
	for _, a in pairs(room.affiliations) do
		if a == "owner" then
			n = n + 1
		end
	end
	return n
end

-- The role an occupant of this affiliation gets on entry.
function M.default_role(room, affiliation)
	if affiliation == "owner" or affiliation == "admin" then
		return "moderator"
	elseif affiliation == "member" then
		return "participant"
	elseif affiliation == "outcast" then
		return nil
	end
	return room.config.moderated and "visitor" or "participant"
end

-- XEP-0421: stable per room and bare JID, meaningless outside the room.
function M.occupant_id(room, bare)
	return hashes.hmac_sha256(room.salt, bare, true)
end

function M.occupant_of(room, full)
	local nick = room.by_jid[full]
	return nick and room.occupants[nick]
end

function M.add_session(room, nick, bare, full, presence, role)
	local occ = room.occupants[nick]
	if not occ then
		occ = { nick = nick, bare = bare, role = role, sessions = {} }
		room.occupants[nick] = occ
		room.count = room.count + 1
	end
	occ.sessions[full] = presence
	occ.presence = presence
	room.by_jid[full] = nick
	return occ
end

-- Removes one session; true when the occupant is gone with it.
function M.remove_session(room, occ, full)
	occ.sessions[full] = nil
	room.by_jid[full] = nil
	local _, p = next(occ.sessions)
	if p then
		occ.presence = p
		return false
	end
	room.occupants[occ.nick] = nil
	room.count = room.count - 1
	return true
end

function M.remove_occupant(room, occ)
	for full in pairs(occ.sessions) do
		room.by_jid[full] = nil
	end
	occ.sessions = {}
	if room.occupants[occ.nick] == occ then
		room.occupants[occ.nick] = nil
		room.count = room.count - 1
	end
end

function M.rename(room, occ, new_nick)
	room.occupants[occ.nick] = nil
	occ.nick = new_nick
	room.occupants[new_nick] = occ
	for full in pairs(occ.sessions) do
		room.by_jid[full] = new_nick
	end
end

function M.occupant_by_bare(room, bare)
	for _, occ in pairs(room.occupants) do
		if occ.bare == bare then
			return occ
		end
	end
	return nil
end

-- Whether recipient (an occupant or nil) sees occupants' real JIDs.
function M.sees_jids(room, recipient)
	return room.config.whois == "anyone" or (recipient ~= nil and recipient.role == "moderator")
end

-- --- privileges (XEP-0045 5.1.3 and 5.2.1) -----------------------------------

-- May actor (an occupant) give target (an occupant) this role? nil, or
-- the error condition.
function M.check_role_change(room, actor, target, role)
	local actor_aff = M.affiliation(room, actor.bare)
	local target_aff = M.affiliation(room, target.bare)
	if actor.role ~= "moderator" then
		return "forbidden"
	end
	if role == "moderator" or target.role == "moderator" and role ~= "none" then
		-- granting or revoking moderator status: admins and owners only
		if M.AFFILIATIONS[actor_aff] < M.AFFILIATIONS.admin then
			return "not-allowed"
		end
	end
	if M.AFFILIATIONS[target_aff] >= M.AFFILIATIONS.admin and target_aff ~= "none" then
		-- nobody changes the role of an admin or owner (they are
		-- moderators by affiliation); an owner may of an admin
		if not (actor_aff == "owner" and target_aff == "admin") then
			return "not-allowed"
		end
	end
	return nil
end

-- May an occupant (or outsider) of affiliation actor_aff change bare's
-- affiliation to new_aff? nil, or the error condition.
function M.check_affiliation_change(room, actor_aff, bare, new_aff)
	local old = M.affiliation(room, bare)
	local rank = M.AFFILIATIONS
	if actor_aff == "owner" then
		if old == "owner" and new_aff ~= "owner" and M.owners(room) <= 1 then
			return "conflict" -- XEP-0045 10.10: the last owner stays
		end
		return nil
	elseif actor_aff == "admin" then
		if rank[old] >= rank.admin or rank[new_aff] >= rank.admin then
			return "not-allowed"
		end
		return nil
	end
	return "forbidden"
end

-- --- history ------------------------------------------------------------------

function M.add_history(room, stanza, when, chars)
	local h, max = room.history, room.config.history_length
	h[#h + 1] = { stanza = stanza, when = when, chars = chars }
	while #h > max do
		table.remove(h, 1)
	end
end

-- The entries a joining occupant asked for (XEP-0045 7.2.15): limits {
-- maxstanzas, maxchars, seconds, since }, any of them nil.
function M.select_history(room, limits, now)
	local h = room.history
	local out, chars = {}, 0
	local max_stanzas = limits.maxstanzas or #h
	local since = limits.since
	if limits.seconds then
		local from = now - limits.seconds
		since = since and (since > from and since or from) or from
	end
	for i = #h, 1, -1 do
		local e = h[i]
		if #out >= max_stanzas or (since and e.when < since) then
			break
		end
		if limits.maxchars then
			chars = chars + e.chars
			if chars > limits.maxchars then
				break
			end
		end
		out[#out + 1] = e
	end
	local n = #out
	for i = 1, n // 2 do
		out[i], out[n + 1 - i] = out[n + 1 - i], out[i]
	end
	return out
end

return M
