-- util.rsm: XEP-0059 Result Set Management, as a query carries it and as
-- the answer reports the page.
--
--   read(set)      the request in <set xmlns='http://jabber.org/protocol/rsm'/>
--                  as { max = n, after = "id", before = "id" or true (an
--                  empty <before/>: the last page), index = n }, fields
--                  absent when not given; nil, "reason" when max or index
--                  is not a whole number >= 0
--   add(stanza, page)
--                  adds the answer <set/> at the cursor of stanza: page =
--                  { first = "id", index = n (optional), last = "id",
--                  count = n (optional) }; an empty page (no first) gives
--                  only the count

local ipairs, tostring, tonumber, math_type = ipairs, tostring, tonumber, math.type
local match = string.match

local NS = "http://jabber.org/protocol/rsm"

local M = { xmlns = NS }

local function whole(text)
	if not text or not match(text, "^%s*%d+%s*$") then
		return nil
	end
	local n = tonumber(text)
	return math_type(n) == "integer" and n or nil
end

function M.read(set)
	local request = {}
	for _, name in ipairs({ "max", "index" }) do
		local el = set:get_child(name, NS)
		if el then
			local n = whole(el:get_text())
			if not n then
				return nil, "<" .. name .. "/> must be a whole number"
			end
			request[name] = n
		end
	end
	local after = set:get_child("after", NS)
	if after then
		request.after = after:get_text()
	end
	local before = set:get_child("before", NS)
	if before then
		local id = before:get_text()
		request.before = id ~= "" and id or true
	end
	return request
end

function M.add(stanza, page)
	stanza:tag("set", { xmlns = NS })
	if page.first then
		stanza:tag("first", { index = page.index and tostring(page.index) or nil })
			:text(page.first):up()
		stanza:text_tag("last", page.last)
	end
	if page.count then
		stanza:text_tag("count", tostring(page.count))
	end
	return stanza:up()
end

return M
