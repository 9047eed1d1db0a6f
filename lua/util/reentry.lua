-- util.reentry: a guard for two stores kept in step, where writing one
-- fires the event that writes the other (bookmarks in private storage and
-- PEP, the vCard photo and the PEP avatar): the write the guard makes does
-- not come back round as a new one.
--
--   guard = reentry.new(log, what)
--   guard(username, fn, ...)  calls fn(username, ...) unless a call for
--                             username is already running; an error is
--                             logged as "<what> of <username>: <error>"
--                             (log is module:log's shape) and not raised

local pcall, tostring = pcall, tostring

local M = {}

function M.new(log, what)
	local running = {}
	return function(username, fn, ...)
		if running[username] then
			return
		end
		running[username] = true
		local ok, e = pcall(fn, username, ...)
		running[username] = nil
		if not ok then
			log("error", "%s of %s: %s", what, username, tostring(e))
		end
	end
end

return M
