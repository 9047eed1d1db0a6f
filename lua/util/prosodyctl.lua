-- util.prosodyctl: the few helpers module commands (module.command) use,
-- printing to what the command's caller reads (starlingctl mod_<name>).

local M = {}

function M.show_usage(usage, desc)
	print("Usage: starlingctl " .. usage)
	if desc then
		print(" " .. desc)
	end
end

function M.show_message(fmt, ...)
	print(select("#", ...) > 0 and fmt:format(...) or fmt)
end

M.show_warning = M.show_message

return M
