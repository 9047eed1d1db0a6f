-- starling.config: loads the server's Lua config file.
--
-- The file runs in a sandbox. Plain assignments set options in the current
-- section: the global section until the first `VirtualHost "name"` or
-- `Component "name" ["module"]`, then that host. `Include "path-or-glob"`
-- runs another file in the same way (relative to the including file; a
-- glob skips the files being loaded, naming one of them is an error).
-- Lookups: cfg:get(host, key) tries the host's section, then the global one.

local setmetatable, type, pairs, ipairs = setmetatable, type, pairs, ipairs
local error, tostring, tonumber, loadfile, pcall = error, tostring, tonumber, loadfile, pcall
local print = print
local io_popen, table_sort = io.popen, table.sort
local string_lib, table_lib, math_lib = string, table, math
local os_getenv, os_time, os_date = os.getenv, os.time, os.date
local cjid = require "starling.jid"

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

-- One spelling per file for the Include cycle check: "a/./b", "a//b" and
-- "./a/b" are "a/b".
local function normalize(p)
	local n
	repeat
		p, n = p:gsub("/%./", "/")
	until n == 0
	p = p:gsub("//+", "/"):gsub("^%./", "")
	return p
end

local function is_glob(pattern)
	return pattern:find("[*?%[]") ~= nil
end

local function expand(base, pattern)
	if pattern:sub(1, 1) ~= "/" then
		pattern = base .. "/" .. pattern
	end
	if not is_glob(pattern) then
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
	table_sort(list)
	return list
end

local function copy(t)
	local c = {}
	for k, v in pairs(t) do
		c[k] = v
	end
	return c
end

-- What a config file may use besides its own functions. Fresh copies for
-- every load: a config assigning to string.format or os.getenv must not
-- change the libraries the server and its modules share, nor what the
-- next load (a reload) starts from. math.randomseed is left out: the
-- generator is shared with util.id.
local function sandbox_globals()
	local math_copy = copy(math_lib)
	math_copy.randomseed = nil
	return {
		os = { getenv = os_getenv, time = os_time, date = os_date },
		string = copy(string_lib), table = copy(table_lib), math = math_copy,
		tostring = tostring, tonumber = tonumber, type = type,
		pairs = pairs, ipairs = ipairs, print = print,
	}
end

-- Loads path; returns a config object, or nil and an error message.
function M.load(path)
	local cfg = setmetatable({ path = path, global = {}, sections = {}, hosts = {} }, cfg_methods)
	local current = cfg.global
	local env = {}
	local allowed_env = sandbox_globals()
	local run_file

	local function add_host(name, kind)
		if type(name) ~= "string" or name == "" then
			error("a host name must be a non-empty string", 3)
		end
		-- C sees names as C strings: a NUL would cut them short.
		if name:find("[%c%s/@]") then
			error("host name \"" .. name:gsub("%c", "?") .. "\" has a control character, space, '/' or '@'", 3)
		end
		-- RFC 7622 3.2: the domainpart as it will be compared (case
		-- folded, Unicode normalised: "Example.COM" and "example.com" are
		-- one host, as are the two spellings of "café.example").
		local prepped = cjid.nameprep(name)
		if not prepped then
			error("host name \"" .. name .. "\" is not a valid domain name (RFC 7622)", 3)
		end
		name = prepped
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
		local section = add_host(name, "component")
		local entry
		for _, h in ipairs(cfg.hosts) do
			if h.section == section then entry = h end
		end
		return function(module_name)
			if type(module_name) ~= "string" then
				error("Component \"" .. name .. "\" expects a module name string", 2)
			end
			entry.module = module_name
			entry.section.component_module = module_name
		end
	end

	-- The files being run, the innermost last, and the same as a set.
	local stack, active = {}, {}

	-- Relative to the including file. A glob skips the files that are
	-- being run (`Include "*.cfg"` next to the main file matches it too);
	-- naming one of them is an error, not an endless recursion.
	function env.Include(pattern)
		if type(pattern) ~= "string" or pattern == "" then
			error("Include expects a file name or a glob", 2)
		end
		if pattern:find("\0", 1, true) then
			-- the OS would see a shorter name (and the shell a cut command)
			error("Include: a file name cannot hold a NUL byte", 2)
		end
		local glob = is_glob(pattern)
		for _, f in ipairs(expand(dirname(stack[#stack]), pattern)) do
			if not (glob and active[normalize(f)]) then
				run_file(f)
			end
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
		local key = normalize(file)
		if active[key] then
			error(file .. ": Include cycle (the file is already being loaded)", 0)
		end
		local chunk, err = loadfile(file, "t", env)
		if not chunk then
			error(err, 0)
		end
		active[key] = true
		stack[#stack + 1] = file
		chunk()
		stack[#stack] = nil
		active[key] = nil
	end

	local ok, err = pcall(run_file, path)
	if not ok then
		return nil, tostring(err)
	end
	for _, h in ipairs(cfg.hosts) do
		h.module = h.module or h.section.component_module
		if h.module ~= nil and type(h.module) ~= "string" then
			return nil, "host \"" .. h.name .. "\": component_module must be a string"
		end
	end
	return cfg
end

return M
