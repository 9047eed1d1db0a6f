-- util.muc.mam: XEP-0313 queries of a room's archive (XEP-0313 section 5:
-- the room's JID answers, the items are the room's groupchat messages
-- with the stanza-ids the room gave them).
--
--   query(archive, room_node, query, page_size)
--       the page a <query xmlns='urn:xmpp:mam:2'/> asks for:
--       { items = { { id, msg, when }, ... } oldest first, complete,
--       count }; nil, condition, text for a bad query
--   form()  the query form (XEP-0313 4.1.1)
--   result(to, from, queryid, item)  a <message/> carrying one item
--   fin(iq, page, flip)  the <fin/> reply

local st = require "util.stanza"
local dataforms = require "util.dataforms"
local datetime = require "util.datetime"
local jid = require "util.jid"
local rsm = require "util.rsm"

local pairs, ipairs = pairs, ipairs

local NS = "urn:xmpp:mam:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_DELAY = "urn:xmpp:delay"

local M = { xmlns = NS }

local FIELDS = { with = "jid-single", start = "text-single", ["end"] = "text-single",
	["before-id"] = "text-single", ["after-id"] = "text-single" }

function M.form()
	local list = {}
	for _, var in ipairs({ "with", "start", "end", "before-id", "after-id" }) do
		list[#list + 1] = { var = var, type = FIELDS[var] }
	end
	return dataforms.form(NS, list)
end

local function read_form(query)
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
		if not FIELDS[var] then
			return nil, "feature-not-implemented", "unknown field '" .. var .. "'"
		elseif v and v ~= "" then
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
				f[var] = v
			end
		end
	end
	return f
end

-- The tighter of two bounds (the form's id and RSM's); an id naming no
-- item makes the store answer item-not-found.
local function bound(archive, node, a, b, later)
	if not (a and b) then
		return a or b
	end
	local _, wa = archive:get(node, a)
	local _, wb = archive:get(node, b)
	if not (wa and wb) then
		return a -- the store reports the missing one
	end
	local a_later = wa > wb or (wa == wb and a > b)
	if later then
		return a_later and a or b
	end
	return a_later and b or a
end

function M.query(archive, node, query, page_size)
	local f, cond, text = read_form(query)
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
	local q = { start = f.start, ["end"] = f["end"], with = f.with, reverse = page.before ~= nil,
		limit = max + 1, total = not (f["after-id"] or f["before-id"]) }
	q.after = bound(archive, node, f["after-id"], page.after, true)
	q.before = bound(archive, node, f["before-id"], page.before ~= true and page.before or nil, false)
	local iter, total = archive:find(node, q)
	if not iter then
		if total == "item-not-found" then
			return nil, "item-not-found", "no such item in the archive"
		end
		return nil, "internal-server-error", nil
	end
	local items = {}
	for id, msg, when in iter do
		items[#items + 1] = { id = id, msg = msg, when = when }
	end
	local complete = #items <= max
	if not complete then
		items[#items] = nil
	end
	if q.reverse then
		local n = #items
		for i = 1, n // 2 do
			items[i], items[n + 1 - i] = items[n + 1 - i], items[i]
		end
	end
	return { items = items, complete = complete, count = q.total and total or nil,
		first_page = not q.reverse and not page.after and not f["after-id"] }
end

function M.result(to, from, queryid, item)
	return st.message({ to = to, from = from })
		:tag("result", { xmlns = NS, queryid = queryid, id = item.id })
		:tag("forwarded", { xmlns = NS_FORWARD })
		:tag("delay", { xmlns = NS_DELAY, stamp = datetime.datetime(item.when) }):up()
		:add_child(item.msg)
end

function M.fin(iq, page)
	local items, n = page.items, #page.items
	local fin = st.reply(iq):tag("fin", { xmlns = NS, complete = page.complete and "true" or "false",
		stable = "true" })
	rsm.add(fin, { first = items[1] and items[1].id, last = items[n] and items[n].id,
		index = (n > 0 and page.first_page) and 0 or nil, count = page.count })
	return fin
end

return M
