-- core.modulemanager: Prosody's module manager calls over Starling's
-- (starling.modulemanager).
--
--   get_modules_for_host(host)  --> set of the module names enabled there
--   is_loaded(host, name)  get_module(host, name)  load(host, name)
--   unload(host, name)  reload(host, name)  get_modules(host) --> { name = module }

local mm = require "starling.modulemanager"
local set = require "util.set"
local core = require "starling.core"

local M = {}

-- The modules configured for host (modules_enabled with the global list,
-- minus modules_disabled), as Prosody's get_modules_for_host.
function M.get_modules_for_host(host)
	local cfg = core.config()
	local names = {}
	if cfg then
		for _, h in ipairs(cfg.hosts or {}) do
			if h.name == host then
				names = mm.host_modules(cfg, h)
				break
			end
		end
	end
	return set.new(names)
end

function M.is_loaded(host, name)
	return mm.is_loaded(host, name)
end

function M.get_module(host, name)
	return mm.get_module(host, name)
end

function M.get_modules(host)
	local out = {}
	for _, name in ipairs(mm.list(host)) do
		out[name] = mm.get_module(host, name)
	end
	return out
end

M.load, M.unload, M.reload = mm.load, mm.unload, mm.reload

return M
