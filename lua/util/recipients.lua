-- util.recipients: which of an account's sessions a message to its bare
-- JID goes to (RFC 6121 8.5.2.1): every available resource with a
-- non-negative priority when `all` (headlines), else those sharing the
-- highest non-negative priority (the "most available" ones).

local ipairs = ipairs
local core = require "starling.core"

local M = {}

function M.for_bare(bare, all)
	local list, best = {}, -1
	for _, s in ipairs(core.sessions(bare)) do
		local priority = s.priority or 0
		if s.available and priority >= 0 then
			if all then
				list[#list + 1] = s
			elseif priority > best then
				best, list = priority, { s }
			elseif priority == best then
				list[#list + 1] = s
			end
		end
	end
	return list
end

return M
