-- util.mam: what a XEP-0313 query of an account's archive (mod_mam) and
-- of a room's (util.muc.mam) have in common: the query form, the page it
-- asks for, the bounds, the page read from the store and the messages
-- that carry it.
--
--   form(with_ids)      the query form (XEP-0313 4.1.1); with_ids adds
--                       the 'ids' field (urn:xmpp:mam:2#extended)
--   read_query(query, page_size, with_ids)
--       f, page, max: the form's filters { with, start, ["end"],
--       before_id, after_id, ids }, the RSM request and the page size;
--       nil, condition, text for a bad query
--   bound(archive, key, form_id, rsm_id, tighter_is_later)
--       the tighter of two bounds; nil, "item-not-found" when one of two
--       names nothing (a single id is checked by the store)
--   collect(iter, max, reverse, keep)
--       items { id, msg, when } oldest first, and whether the set ends
--       there; keep(msg), when given, filters
--   error_type(condition)   the stanza error type of a failed query
--   results(to, from, query, items)   the <message/>s, in the order the
--                       query asks for (<flip-page/>)
--   fin(iq, items, complete, index, count)   the <fin/> reply

local st = require "util.stanza"
local dataforms = require "util.dataforms"
local datetime = require "util.datetime"
local jid = require "util.jid"
local rsm = require "util.rsm"

local pairs, ipairs = pairs, ipairs

local NS = "urn:xmpp:mam:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_DELAY = "urn:xmpp:delay"
local NS_VALIDATE = "http://jabber.org/protocol/xdata-validate"

local M = { xmlns = NS }

local FIELDS = {
	{ var = "with", type = "jid-single" },
	{ var = "start", type = "text-single" },
	{ var = "end", type = "text-single" },
	{ var = "before-id", type = "text-single" },
	{ var = "after-id", type = "text-single" },
}
local IDS_FIELD = { var = "ids", type = "list-multi",
	child = st.stanza("validate", { xmlns = NS_VALIDATE, datatype = "xs:string" }):tag("open"):up() }

function M.form(with_ids)
	local list = {}
	for _, f in ipairs(FIELDS) do
		list[#list + 1] = f
	end
	if with_ids then
		list[#list + 1] = IDS_FIELD
	end
	return dataforms.form(NS, list)
end

local KNOWN = {}
for _, f in ipairs(FIELDS) do
	KNOWN[f.var] = true
end

-- One field's value into f; nil, condition, text when it is wrong.
local function read_field(f, var, v)
	if var == "with" then
		f.with = jid.prep(v)
		if not f.with then
			return nil, "jid-malformed", "'with' is not a JID"
		end
	elseif var == "start" or var == "end" then
		f[var] = datetime.parse(v)
		if not f[var] then
			return nil, "bad-request", "'" .. var .. "' is not a XEP-0082 DateTime"
		end
	else
		f[var == "before-id" and "before_id" or "after_id"] = v
	end
	return f
end

local function read_form(query, with_ids)
	local x = query:get_child("x", dataforms.xmlns)
	local f = {}
	if not x then
		return f
	end
	local fields, form_type = dataforms.read(x)
	if not fields then
		return nil, "bad-request", form_type
	end
	if form_type and form_type ~= NS then
		return nil, "bad-request", "the FORM_TYPE must be " .. NS
	end
	for var, values in pairs(fields) do
		local v = values[1]
		if var == "ids" and with_ids then
			f.ids = values
		elseif not KNOWN[var] then
			return nil, "feature-not-implemented", "unknown field '" .. var .. "'"
		elseif v and v ~= "" then
			local ok, cond, text = read_field(f, var, v)
			if not ok then
				return nil, cond, text
			end
		end
	end
	return f
end

function M.read_query(query, page_size, with_ids)
	local f, cond, text = read_form(query, with_ids)
	if not f then
		return nil, cond, text
	end
	local page = {}
	local set_el = query:get_child("set", rsm.xmlns)
	if set_el then
		page, text = rsm.read(set_el)
		if not page then
			return nil, "bad-request", text
		end
	end
	if page.index then
		return nil, "feature-not-implemented", "paging by <index/> is not supported"
	end
	local max = page.max or page_size
	if max > page_size then
		return nil, "policy-violation", "at most " .. page_size .. " results per page"
	end
	return f, page, max
end

-- (when, id) of an item, for choosing between two bounds; nil when the id
-- names nothing.
local function position(archive, key, id)
	local value, when = archive:get(key, id)
	if value == nil then
		return nil
	end
	return { when = when, id = id }
end

function M.bound(archive, key, form_id, rsm_id, tighter_is_later)
	if not (form_id and rsm_id) then
		return form_id or rsm_id
	end
	local a, b = position(archive, key, form_id), position(archive, key, rsm_id)
	if not (a and b) then
		return nil, "item-not-found"
	end
	local later = (a.when > b.when or (a.when == b.when and a.id > b.id)) and a or b
	if tighter_is_later then
		return later.id
	end
	return (later == a and b or a).id
end

function M.collect(iter, max, reverse, keep)
	local items = {}
	for id, msg, when in iter do
		if not keep or keep(msg) then
			items[#items + 1] = { id = id, msg = msg, when = when }
			if #items > max then
				break
			end
		end
	end
	local complete = #items <= max
	if not complete then
		items[#items] = nil
	end
	if reverse then
		local n = #items
		for i = 1, n // 2 do
			items[i], items[n + 1 - i] = items[n + 1 - i], items[i]
		end
	end
	return items, complete
end

local ERROR_TYPE = {
	["item-not-found"] = "cancel", ["feature-not-implemented"] = "cancel",
	["internal-server-error"] = "wait",
}

function M.error_type(cond)
	return ERROR_TYPE[cond] or "modify"
end

function M.results(to, from, query, items)
	local list, n = {}, #items
	local flip = query:get_child("flip-page", NS) ~= nil
	for i = 1, n do
		local item = items[flip and n + 1 - i or i]
		list[i] = st.message({ to = to, from = from })
			:tag("result", { xmlns = NS, queryid = query.attr.queryid, id = item.id })
			:tag("forwarded", { xmlns = NS_FORWARD })
			:tag("delay", { xmlns = NS_DELAY, stamp = datetime.datetime(item.when) }):up()
			:add_child(item.msg)
	end
	return list
end

function M.fin(iq, items, complete, index, count)
	local n = #items
	local fin = st.reply(iq):tag("fin", { xmlns = NS, complete = complete and "true" or "false",
		stable = "true" })
	rsm.add(fin, { first = items[1] and items[1].id, last = items[n] and items[n].id,
		index = index, count = count })
	return fin
end

return M
