-- util.muc.mam: XEP-0313 queries of a room's archive (XEP-0313 section 5:
-- the room's JID answers, the items are the room's groupchat messages
-- with the stanza-ids the room gave them). The query form, paging and the
-- messages that carry a page are util.mam's, shared with mod_mam.
--
--   query(archive, room_node, query, page_size)
--       the page a <query xmlns='urn:xmpp:mam:2'/> asks for:
--       { items = { { id, msg, when }, ... } oldest first, complete,
--       count, first_page }; nil, condition, text for a bad query
--   form()  the query form (XEP-0313 4.1.1)
--   results(to, from, query, items)  the <message/>s carrying the items
--   fin(iq, page)  the <fin/> reply
--   error_type(condition)  the stanza error type of a failed query

local mam = require "util.mam"

local M = { xmlns = mam.xmlns, results = mam.results, error_type = mam.error_type }

function M.form()
	return mam.form(false)
end

function M.query(archive, node, query, page_size)
	local f, page, max = mam.read_query(query, page_size, false)
	if not f then
		return nil, page, max
	end
	local q = { start = f.start, ["end"] = f["end"], with = f.with, reverse = page.before ~= nil,
		limit = max + 1, total = not (f.after_id or f.before_id) }
	local err
	q.after, err = mam.bound(archive, node, f.after_id, page.after, true)
	if err then
		return nil, err, "no such item in the archive"
	end
	q.before, err = mam.bound(archive, node, f.before_id, page.before ~= true and page.before or nil, false)
	if err then
		return nil, err, "no such item in the archive"
	end
	local iter, total = archive:find(node, q)
	if not iter then
		if total == "item-not-found" then
			return nil, "item-not-found", "no such item in the archive"
		end
		return nil, "internal-server-error", nil
	end
	local items, complete = mam.collect(iter, max, q.reverse)
	return { items = items, complete = complete, count = q.total and total or nil,
		first_page = not q.reverse and not page.after and not f.after_id }
end

function M.fin(iq, page)
	local index = (#page.items > 0 and page.first_page) and 0 or nil
	return mam.fin(iq, page.items, page.complete, index, page.count)
end

return M
