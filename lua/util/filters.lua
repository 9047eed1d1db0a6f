-- util.filters: functions a session's outgoing stanzas pass, as Prosody
-- modules add them:
--
--   filters.add_filter(session, "stanzas/out", fn, priority)
--   filters.remove_filter(session, "stanzas/out", fn)
--
-- fn(stanza, session) returns the stanza to send on (the same or another)
-- or nil to drop it. Higher priorities run first, equal ones in the order
-- they were added. They run ahead of the core's own filters (CSI's hold
-- queue), through the session's outgoing trampoline
-- (core/lua/lx_session_out.c). Only "stanzas/out" exists in Starling: the
-- other kinds ("stanzas/in", "bytes/in", "bytes/out") raise an error
-- naming what is missing, so a module that needs them fails visibly.

local setmetatable, ipairs, type, error, tostring = setmetatable, ipairs, type, error, tostring
local insert, remove = table.insert, table.remove

local M = {}

-- lists[session] = array of { fn, priority }
local lists = setmetatable({}, { __mode = "k" })

local function run(stanza, session)
	local list = lists[session]
	if not list then
		return stanza
	end
	for _, f in ipairs(list) do
		stanza = f.fn(stanza, session)
		if stanza == nil then
			return nil
		end
	end
	return stanza
end

local function check_type(kind)
	if kind ~= "stanzas/out" then
		error("util.filters: filter type '" .. tostring(kind)
			.. "' is not supported by Starling (only \"stanzas/out\")", 3)
	end
end

function M.add_filter(session, kind, fn, priority)
	check_type(kind)
	if type(fn) ~= "function" then
		error("util.filters: the filter must be a function", 2)
	end
	priority = priority or 0
	local list = lists[session]
	if not list then
		list = {}
		lists[session] = list
	end
	for _, f in ipairs(list) do
		if f.fn == fn then
			return	-- already there
		end
	end
	local at = #list + 1
	for i, f in ipairs(list) do
		if f.priority < priority then
			at = i
			break
		end
	end
	insert(list, at, { fn = fn, priority = priority })
	if #list == 1 then
		session:set_outgoing(run)
	end
end

function M.remove_filter(session, kind, fn)
	check_type(kind)
	local list = lists[session]
	if not list then
		return
	end
	for i, f in ipairs(list) do
		if f.fn == fn then
			remove(list, i)
			break
		end
	end
	if #list == 0 then
		lists[session] = nil
		session:set_outgoing(nil)
	end
end

-- Prosody's session.filter: runs the session's filters of kind on data.
function M.initialize(session)
	return function(kind, data)
		if kind == "stanzas/out" then
			return run(data, session)
		end
		return data
	end
end

return M
