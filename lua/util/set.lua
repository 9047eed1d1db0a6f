-- util.set: sets of strings (or any other values usable as table keys).
--
-- A set is a table whose keys are its members (each mapped to true), so
-- `set[item]` tests membership and `pairs(set)` walks the members. The
-- methods live in the metatable:
--
--   set.new(list)          a set of the values of the array list (or nil)
--   s:contains(item)       true or false
--   s:add(item), s:remove(item)
--   s:items()              iterator over the members (unordered)
--   s:count(), s:empty()
--   s:to_array()           the members sorted (when comparable) in an array
--   s + t, s - t, s & t    union, difference, intersection (new sets)
--   s == t                 same members
--   set.is_set(x)
--
-- A member named like a method ("add", "contains", ...) shadows that
-- method for `s:name()` calls; use set.contains(s, x) etc. on such sets.

local setmetatable, getmetatable, pairs, ipairs, next = setmetatable, getmetatable, pairs, ipairs, next
local rawget, tostring, type, sort, concat = rawget, tostring, type, table.sort, table.concat

local M = {}
local methods = {}
local set_mt = { __index = methods }

local function new(list)
	local s = setmetatable({}, set_mt)
	if list then
		for _, item in pairs(list) do
			s[item] = true
		end
	end
	return s
end

function methods.contains(s, item)
	return rawget(s, item) == true
end

function methods.add(s, item)
	s[item] = true
	return s
end

function methods.remove(s, item)
	s[item] = nil
	return s
end

function methods.items(s)
	return next, s, nil
end

function methods.count(s)
	local n = 0
	for _ in pairs(s) do
		n = n + 1
	end
	return n
end

function methods.empty(s)
	return next(s) == nil
end

function methods.to_array(s)
	local list, comparable = {}, true
	local kind
	for item in pairs(s) do
		list[#list + 1] = item
		local t = type(item)
		if (t ~= "string" and t ~= "number") or (kind and kind ~= t) then
			comparable = false
		end
		kind = t
	end
	if comparable then
		sort(list)
	end
	return list
end

function set_mt.__add(a, b)
	local s = new()
	for item in pairs(a) do s[item] = true end
	for item in pairs(b) do s[item] = true end
	return s
end

function set_mt.__sub(a, b)
	local s = new()
	for item in pairs(a) do
		if not rawget(b, item) then s[item] = true end
	end
	return s
end

function set_mt.__band(a, b)
	local s = new()
	for item in pairs(a) do
		if rawget(b, item) then s[item] = true end
	end
	return s
end

function set_mt.__eq(a, b)
	for item in pairs(a) do
		if not rawget(b, item) then return false end
	end
	for item in pairs(b) do
		if not rawget(a, item) then return false end
	end
	return true
end

function set_mt.__tostring(s)
	local parts = {}
	for i, item in ipairs(methods.to_array(s)) do
		parts[i] = tostring(item)
	end
	return "{" .. concat(parts, ", ") .. "}"
end

M.new = new
M.contains = methods.contains
M.add = methods.add
M.remove = methods.remove
M.items = methods.items
M.count = methods.count
M.empty = methods.empty
M.to_array = methods.to_array

function M.is_set(x)
	return getmetatable(x) == set_mt
end

return M
