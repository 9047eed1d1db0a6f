-- util.muc.stanza: the stanzas a room sends, built from its state
-- (XEP-0045 with XEP-0421 occupant ids). Nothing here sends.
--
--   clean_presence(p)   a client's presence as the room keeps it: a copy
--                       without addresses, the MUC payloads and any
--                       occupant-id the client put in
--   presence(room, occ, base, with_jid, codes, extra)
--                       occ's presence as the room shows it: base (or
--                       occ.presence) from room@service/nick with the
--                       muc#user item (the real JID when with_jid), the
--                       status codes and the occupant id. extra: { role,
--                       nick (a nick change), actor (a nick), reason,
--                       destroy = { jid, reason } }
--   groupchat(room, occ, m)       a groupchat message as the room relays it
--   private_message(room, occ, m) a private message between occupants
--   voice_form(room, occ)         XEP-0045 8.6: a voice request to moderators
--   history_from_archive(room, archive, node)
--                       fills the history of a restored room from its MAM

local st = require "util.stanza"
local muc_room = require "util.muc.room"

local ipairs, next, tostring = ipairs, next, tostring

local NS_MUC = "http://jabber.org/protocol/muc"
local NS_USER = NS_MUC .. "#user"
local NS_REQUEST = NS_MUC .. "#request"
local NS_SID = "urn:xmpp:sid:0"
local NS_OID = "urn:xmpp:occupant-id:0"
local NS_DATA = "jabber:x:data"

local M = {}

local function strip(s, room_jid)
	s:maptags(function(c)
		local ns = c.attr.xmlns
		if ns == NS_MUC or ns == NS_USER or ns == NS_OID then
			return nil
		elseif ns == NS_SID and c.name == "stanza-id" and c.attr.by == room_jid then
			return nil
		end
		return c
	end)
	return s
end

function M.clean_presence(p)
	local s = p:clone()
	s.attr.to, s.attr.from, s.attr.id = nil, nil, nil
	return strip(s, nil)
end

function M.presence(room, occ, base, with_jid, codes, extra)
	extra = extra or {}
	local p = (base or occ.presence):clone()
	p:reset()
	p.attr.from = room.jid .. "/" .. occ.nick
	p:tag("x", { xmlns = NS_USER })
		:tag("item", {
			affiliation = muc_room.affiliation(room, occ.bare),
			role = extra.role or occ.role,
			jid = with_jid and (next(occ.sessions) or occ.bare) or nil,
			nick = extra.nick,
		})
	if extra.actor then
		p:tag("actor", { nick = extra.actor }):up()
	end
	if extra.reason then
		p:text_tag("reason", extra.reason)
	end
	p:up()
	if extra.destroy then
		p:tag("destroy", { jid = extra.destroy.jid })
		if extra.destroy.reason then
			p:text_tag("reason", extra.destroy.reason)
		end
		p:up()
	end
	for _, code in ipairs(codes or {}) do
		p:tag("status", { code = tostring(code) }):up()
	end
	p:up()
	p:tag("occupant-id", { xmlns = NS_OID, id = muc_room.occupant_id(room, occ.bare) }):up()
	return p
end

-- m as the room passes it on from occ: from the occupant's room JID,
-- with the room's own children replaced, then <x/> of NS_USER when
-- marked (a private message), and the occupant-id.
local function relayed(room, occ, m, marked)
	local s = strip(m:clone(), room.jid)
	s:reset()
	s.attr.from, s.attr.to = room.jid .. "/" .. occ.nick, nil
	if marked then
		s:tag("x", { xmlns = NS_USER }):up()
	end
	s:tag("occupant-id", { xmlns = NS_OID, id = muc_room.occupant_id(room, occ.bare) }):up()
	return s
end

function M.groupchat(room, occ, m)
	return relayed(room, occ, m, false)
end

function M.private_message(room, occ, m)
	return relayed(room, occ, m, true)
end

function M.voice_form(room, occ)
	local function field(x, var, ftype, label, value)
		x:tag("field", { var = var, type = ftype, label = label }):text_tag("value", value):up()
	end
	local m = st.message({ from = room.jid })
	m:tag("x", { xmlns = NS_DATA, type = "form" }):text_tag("title", "Voice request")
	field(m, "FORM_TYPE", "hidden", nil, NS_REQUEST)
	field(m, "muc#role", "list-single", "Requested role", "participant")
	field(m, "muc#jid", "jid-single", "User ID", next(occ.sessions) or occ.bare)
	field(m, "muc#roomnick", "text-single", "Room nickname", occ.nick)
	field(m, "muc#request_allow", "boolean", "Grant voice to this person?", "false")
	return m:up()
end

function M.history_from_archive(room, archive, node)
	local n = room.config.history_length
	if n == 0 then
		return
	end
	local iter = archive:find(node, { reverse = true, limit = n })
	if not iter then
		return
	end
	local list = {}
	for sid, msg, when in iter do
		if msg:get_child("body") then
			msg:tag("stanza-id", { xmlns = NS_SID, id = sid, by = room.jid }):up()
			list[#list + 1] = { stanza = msg, when = when, chars = #tostring(msg) }
		end
	end
	for i = #list, 1, -1 do
		room.history[#room.history + 1] = list[i]
	end
end

return M
