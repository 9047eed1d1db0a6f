-- util.recipients: which of an account's sessions a message to its bare
-- JID goes to (RFC 6121 8.5.2.1): every available resource with a
-- non-negative priority when `all` (headlines), else those sharing the
-- highest non-negative priority (the "most available" ones).

local core = require "starling.core"

local M = {}

-- The list is core.sessions' own (a fresh table), filtered in place: a
-- message to a bare JID makes no table of its own here.
function M.for_bare(bare, all)
	local list = core.sessions(bare)
	local count, n, best = #list, 0, -1
	for i = 1, count do
		local s = list[i]
		local priority = s.priority or 0
		if s.available and priority >= 0 then
			if not all and priority > best then
				best, n = priority, 0
			end
			if all or priority == best then
				n = n + 1
				list[n] = s
			end
		end
	end
	for i = n + 1, count do
		list[i] = nil
	end
	return list
end

return M
