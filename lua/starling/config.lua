-- starling.config: loads the server's Lua config file.
--
-- The file runs in a sandbox. Plain assignments set options in the current
-- section: the global section until the first `VirtualHost "name"` or
-- `Component "name" ["module"]`, then that host. `Include "path-or-glob"`
-- runs another file in the same way (relative to the including file).
-- Lookups: cfg:get(host, key) tries the host's section, then the global one.

local setmetatable, type, pairs, ipairs = setmetatable, type, pairs, ipairs
local error, tostring, loadfile, pcall = error, tostring, loadfile, pcall
local io_popen = io.popen

local M = {}

local cfg_methods = {}
cfg_methods.__index = cfg_methods

function cfg_methods:get(host, key)
	if host and host ~= "*" then
		local section = self.sections[host]
		if section and section[key] ~= nil then
			return section[key]
		end
	end
	return self.global[key]
end

function cfg_methods:host(name)
	return self.sections[name]
end

local function dirname(path)
	return path:match("^(.*)/[^/]*$") or "."
end

local function expand(base, pattern)
	if pattern:sub(1, 1) ~= "/" then
		pattern = base .. "/" .. pattern
	end
	if not pattern:find("[*?%[]") then
		return { pattern }
	end
	-- Globs: let the shell list them, one per line, sorted.
	local quoted = pattern:gsub("'", "'\\''"):gsub("([*?%[%]])", "'%1'")
	local f = io_popen("for f in '" .. quoted .. "'; do [ -e \"$f\" ] && printf '%s\\n' \"$f\"; done")
	local list = {}
	if f then
		for line in f:lines() do
			list[#list + 1] = line
		end
		f:close()
	end
	table.sort(list)
	return list
end

local allowed_env = {
	os = { getenv = os.getenv, time = os.time, date = os.date },
	string = string, table = table, math = math,
	tostring = tostring, tonumber = tonumber, type = type,
	pairs = pairs, ipairs = ipairs, print = print,
}

-- Loads path; returns a config object, or nil and an error message.
function M.load(path)
	local cfg = setmetatable({ path = path, global = {}, sections = {}, hosts = {} }, cfg_methods)
	local current = cfg.global
	local env = {}
	local run_file

	local function add_host(name, kind)
		if type(name) ~= "string" or name == "" then
			error("a host name must be a non-empty string", 3)
		end
		name = name:lower()
		local section = cfg.sections[name]
		if not section then
			section = {}
			cfg.sections[name] = section
			cfg.hosts[#cfg.hosts + 1] = { name = name, type = kind, section = section }
		end
		current = section
		return section
	end

	function env.VirtualHost(name)
		add_host(name, "local")
	end
	env.Host = env.VirtualHost

	function env.Component(name)
		add_host(name, "component")
		local entry = cfg.hosts[#cfg.hosts]
		for _, h in ipairs(cfg.hosts) do
			if h.name == name:lower() then entry = h end
		end
		return function(module_name)
			if type(module_name) ~= "string" then
				error("Component \"" .. name .. "\" expects a module name string", 2)
			end
			entry.module = module_name
			entry.section.component_module = module_name
		end
	end

	function env.Include(pattern)
		local files = expand(dirname(path), pattern)
		for _, f in ipairs(files) do
			run_file(f)
		end
	end

	setmetatable(env, {
		__index = function(_, k)
			local v = current[k]
			if v == nil and current ~= cfg.global then v = cfg.global[k] end
			if v == nil then v = allowed_env[k] end
			return v
		end,
		__newindex = function(_, k, v)
			current[k] = v
		end,
	})

	function run_file(file)
		local chunk, err = loadfile(file, "t", env)
		if not chunk then
			error(err, 0)
		end
		chunk()
	end

	local ok, err = pcall(run_file, path)
	if not ok then
		return nil, tostring(err)
	end
	for _, h in ipairs(cfg.hosts) do
		h.module = h.module or h.section.component_module
	end
	return cfg
end

return M
