-- util.id: ids for stanzas the server itself sends (roster pushes, pings),
-- so that replies can be matched.
--
--   id.new()   a fresh id: 16 random hex digits then a counter, unique in
--              this process and very unlikely to repeat across restarts
--
-- These are not secrets: they come from math.random (xoshiro256**, which
-- Lua 5.4 seeds randomly at start). Never use them as tokens or keys.

local format, random = string.format, math.random

local M = {}

local counter = 0

function M.new()
	counter = counter + 1
	return format("%08x%08x%x", random(0, 0xffffffff), random(0, 0xffffffff), counter)
end

return M
