-- starling.modulemanager: finds, loads, unloads and reloads plugin modules.
--
-- A module is a file mod_<name>.lua found in the server's modules
-- directory (core.modules_dir), then in the configured plugin_paths
-- (relative ones are relative to the config file's directory);
-- mod_<name>/mod_<name>.lua works too, as Prosody lays its modules out.
-- Each loaded instance runs in its own environment: a fresh table whose
-- __index is an allow-listed standard library, plus `module`, its module
-- object (starling.module_api), and Prosody's globals (starling.prosody).
--
-- Words used here:
--   record     what the manager keeps per loaded instance: its module
--              object, file, source, dependents
--   global     a module loaded once with host "*" (module:set_global(), or
--              loaded on "*"); hosts that enable it are its users, each
--              with a record whose parent is the global one. A global
--              module may define module.add_host(host_module), called for
--              each user host with a module object of that host
--   dependent  a module that called module:depends(name); unloading or
--              reloading `name` does the same to its dependents
--
-- Lifecycle of one load: compile the file, run it, call module.load() if
-- it defined one, then module.restore(state) when reloading. An error in
-- any step unloads what the module registered and returns nil, err; the
-- error is logged with the module's name and the server goes on.

local core = require "starling.core"
local api = require "starling.module_api"

local type, pairs, ipairs, next, tostring, select = type, pairs, ipairs, next, tostring, select
local xpcall, setmetatable, lua_load, require = xpcall, setmetatable, load, require
local format, concat, sort, pack, unpack = string.format, table.concat, table.sort, table.pack, table.unpack
local io_open, traceback = io.open, debug.traceback
local G = _G

local M = {}

-- The line print(...) would write: each value through tostring, separated
-- by tabs. Module environments and the admin console print through it.
function M.print_text(...)
	local parts = {}
	for i = 1, select("#", ...) do
		parts[i] = tostring((select(i, ...)))
	end
	return concat(parts, "\t")
end

local records = {}	-- records[host][name] = record
local order = {}	-- records, in load order
local loading = {}	-- ["host\0name"] = true while that module's file runs
local record_of = setmetatable({}, { __mode = "k" })	-- module object -> record
local deps_of = setmetatable({}, { __mode = "k" })	-- module object -> records it depends on

-- --- records --------------------------------------------------------------

local function get(host, name)
	local by_name = records[host]
	return by_name and by_name[name]
end

local function put(rec)
	local by_name = records[rec.host]
	if not by_name then
		by_name = {}
		records[rec.host] = by_name
	end
	by_name[rec.name] = rec
	order[#order + 1] = rec
end

local function drop(rec)
	local by_name = records[rec.host]
	if by_name and by_name[rec.name] == rec then
		by_name[rec.name] = nil
		if next(by_name) == nil then
			records[rec.host] = nil
		end
	end
	for i = #order, 1, -1 do
		if order[i] == rec then
			table.remove(order, i)
			break
		end
	end
end

local function is_current(rec)
	return get(rec.host, rec.name) == rec
end

local function log(level, host, name, msg)
	core.log(level, host .. ":" .. name, msg)
end

-- Calls fn protected; true and its results, or false, message, traceback.
local function handler(e)
	local msg = tostring(e)
	return { msg = msg, trace = traceback(msg, 2) }
end

local function call(fn, ...)
	local res = pack(xpcall(fn, handler, ...))
	if res[1] then
		return true, unpack(res, 2, res.n)
	end
	local e = res[2]
	return false, e.msg, e.trace
end

-- --- finding and compiling -------------------------------------------------

local function dirname(path)
	return path and path:match("^(.*)/[^/]*$") or "."
end

local function plugin_dirs(cfg)
	local dirs = {}
	cfg = cfg or core.config()
	local paths = cfg and cfg:get("*", "plugin_paths")
	if type(paths) == "string" then
		paths = { paths }
	end
	if type(paths) == "table" then
		local base = dirname(cfg.path)
		for _, p in ipairs(paths) do
			if type(p) == "string" and p ~= "" then
				if p:sub(1, 1) ~= "/" then
					p = base .. "/" .. p
				end
				dirs[#dirs + 1] = p
			end
		end
	end
	return dirs
end

-- The server's own modules come first: a plugin directory may be
-- Prosody's (Debian's prosody-modules shares it with Prosody's core
-- plugins, mod_presence.lua, mod_csi.lua, ...), whose core modules are
-- written for Prosody's core; Starling's modules of those names serve.
local function search_dirs(cfg)
	local dirs = {}
	if core.modules_dir then
		dirs[1] = core.modules_dir
	end
	for _, dir in ipairs(plugin_dirs(cfg)) do
		dirs[#dirs + 1] = dir
	end
	return dirs
end

local ENOENT = 2

local function read_source(path)
	local f, err, code = io_open(path, "rb")
	if not f then
		if code == ENOENT then
			return nil
		end
		return nil, err
	end
	local data, rerr = f:read("a")
	f:close()
	if not data then
		return nil, path .. ": " .. tostring(rerr)
	end
	return data
end

local function valid_name(name)
	return type(name) == "string" and name:match("^[%w_%-]+$") ~= nil
end

-- path, source of module `name`; or nil, error. cfg: the config whose
-- plugin_paths to search (default: the server's).
local function find_module(name, cfg)
	local dirs = search_dirs(cfg)
	for _, dir in ipairs(dirs) do
		local file = "mod_" .. name .. ".lua"
		for _, path in ipairs({ dir .. "/" .. file, dir .. "/mod_" .. name .. "/" .. file }) do
			local source, err = read_source(path)
			if source then
				return path, source
			elseif err then
				return nil, err
			end
		end
	end
	return nil, format("module '%s' not found (searched %s)", name,
		#dirs > 0 and concat(dirs, ", ") or "no directories")
end

local safe_globals = {
	"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
	"tostring", "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen",
	"setmetatable", "getmetatable", "_VERSION",
}
local safe_libs = { "string", "table", "math", "utf8", "coroutine" }

-- A module's environment: its own table over a fresh copy of the
-- allow-listed library. (A convenience boundary for trusted code, not a
-- security one: modules can require any library in lua/.)
local function new_env()
	local base = {}
	for _, k in ipairs(safe_globals) do
		base[k] = G[k]
	end
	for _, lib in ipairs(safe_libs) do
		local copy = {}
		for k, v in pairs(G[lib]) do
			copy[k] = v
		end
		base[lib] = copy
	end
	base.os = { time = os.time, date = os.date, clock = os.clock, getenv = os.getenv,
		difftime = os.difftime }
	base.require = require
	-- Prosody's globals (starling.prosody): prosody, hosts.
	for k, v in pairs(require("starling.prosody").globals()) do
		base[k] = v
	end
	local env = setmetatable({}, { __index = base })
	env._G = env
	return env
end

local function compile(name)
	local path, source = find_module(name)
	if not path then
		return nil, source
	end
	local env = new_env()
	local chunk, err = lua_load(source, "@" .. path, "t", env)
	if not chunk then
		return nil, err
	end
	return { path = path, source = source, env = env, chunk = chunk }
end

-- --- loading ----------------------------------------------------------------

local function unlink_deps(mod)
	for _, drec in ipairs(deps_of[mod] or {}) do
		drec.dependents[mod] = nil
	end
	deps_of[mod] = nil
end

local function fire_loaded(event, host, name)
	core.fire(host, event, { module = name, host = host })
end

-- Attaches host as a user of the global module of record grec.
local function attach(grec, host)
	local name = grec.name
	local hrec = { host = host, name = name, path = grec.path, parent = grec, dependents = {} }
	local add_host = grec.module.add_host
	if add_host then
		local hmod = api.new(host, name, grec.path)
		deps_of[hmod] = {}
		local ok, msg, trace = call(add_host, hmod)
		if not ok then
			api.release(hmod)
			unlink_deps(hmod)
			log("error", host, name, "add_host failed: " .. trace)
			return nil, msg
		end
		hrec.module = hmod
		record_of[hmod] = hrec
	end
	grec.users[host] = hrec
	put(hrec)
	fire_loaded("module-loaded", host, name)
	return grec.module
end

local function unload_record(rec)
	if rec.unloading or not is_current(rec) then
		return
	end
	rec.unloading = true
	local dependents = {}
	for m in pairs(rec.dependents) do
		dependents[#dependents + 1] = record_of[m]
	end
	for _, drec in ipairs(dependents) do
		unload_record(drec)
	end
	if rec.global then
		local users = {}
		for _, hrec in pairs(rec.users) do
			users[#users + 1] = hrec
		end
		for _, hrec in ipairs(users) do
			unload_record(hrec)
		end
	end
	local mod = rec.module
	if mod then
		api.release(mod)
		if mod.unload then
			local ok, _, trace = call(mod.unload)
			if not ok then
				log("error", rec.host, rec.name, "unload failed: " .. trace)
			end
		end
		unlink_deps(mod)
	end
	drop(rec)
	log("debug", rec.host, rec.name, "unloaded")
	fire_loaded("module-unloaded", rec.host, rec.name)
	local parent = rec.parent
	if parent then
		parent.users[rec.host] = nil
		if not parent.explicit and next(parent.users) == nil then
			unload_record(parent)
		end
	end
end

-- Runs a compiled module (c from compile()) on host. opts.state: what the
-- previous instance's save() returned; opts.explicit: for a global module,
-- whether it stays loaded without user hosts.
local function instantiate(host, name, c, opts)
	local mod = api.new(host, name, c.path)
	local env = c.env
	env.module = mod
	env.print = function(...)
		mod:log("info", "%s", M.print_text(...))
	end
	mod.environment = env
	if host == "*" then
		mod.global = true
	end
	deps_of[mod] = {}
	local key = host .. "\0" .. name
	loading[key] = true
	local ok, msg, trace = call(c.chunk)
	if ok and mod.global and host ~= "*" and get("*", name) then
		ok, msg, trace = false, "global module loaded twice", "global module loaded twice"
	end
	if ok and mod.load then
		ok, msg, trace = call(mod.load)
	end
	loading[key] = nil
	if not ok then
		api.release(mod)
		unlink_deps(mod)
		log("error", host, name, "failed to load: " .. trace)
		return nil, msg
	end
	if opts.state ~= nil and mod.restore then
		local rok, _, rtrace = call(mod.restore, opts.state)
		if not rok then
			log("warn", host, name, "restore failed (state lost): " .. rtrace)
		end
	end
	local rec = { host = mod.host, name = name, path = c.path, source = c.source,
		module = mod, dependents = {} }
	record_of[mod] = rec
	if mod.global then
		rec.host = "*"
		rec.global = true
		rec.users = {}
		if opts.explicit ~= nil then
			rec.explicit = opts.explicit
		else
			rec.explicit = host == "*"
		end
	end
	put(rec)
	log("debug", rec.host, name, "loaded from " .. c.path)
	fire_loaded("module-loaded", rec.host, name)
	if rec.global and host ~= "*" then
		local gmod, err = attach(rec, host)
		if not gmod then
			if not rec.explicit and next(rec.users) == nil then
				unload_record(rec)
			end
			return nil, err
		end
	end
	return mod
end

local function known_host(host)
	return host == "*" or core.is_local_host(host)
end

local function load_module(host, name, opts)
	if type(host) ~= "string" or not known_host(host) then
		return nil, format("unknown host '%s'", tostring(host))
	end
	if not valid_name(name) then
		return nil, format("invalid module name '%s'", tostring(name))
	end
	if get(host, name) then
		return nil, format("module '%s' is already loaded on host '%s'", name, host)
	end
	if host ~= "*" then
		local grec = get("*", name)
		if grec then
			return attach(grec, host)
		end
	end
	if loading[host .. "\0" .. name] then
		return nil, format("circular dependency: module '%s' is still loading on host '%s'",
			name, host)
	end
	local c, err = compile(name)
	if not c then
		log("error", host, name, "failed to load: " .. err)
		return nil, err
	end
	return instantiate(host, name, c, opts or {})
end

-- Loads module `name` on host ("*" for a global load). Returns its module
-- object, or nil and an error message.
function M.load(host, name)
	return load_module(host, name, {})
end

-- Unloads module `name` from host (its dependents first). true, or nil
-- and an error message.
function M.unload(host, name)
	local rec = get(host, name)
	if not rec then
		return nil, format("module '%s' is not loaded on host '%s'", tostring(name), tostring(host))
	end
	unload_record(rec)
	return true
end

-- Called by module:depends(): see module_api.
function M.depend(mod, name)
	local host = mod.host
	local drec = get(host, name)
	local missing = require("starling.prosody").missing_modules[name]
	if not drec and missing then
		error(format("cannot load dependency '%s': %s", tostring(name), missing), 0)
	end
	if not drec then
		local dmod, err = load_module(host, name, {})
		if not dmod then
			error(format("cannot load dependency '%s': %s", tostring(name), err), 0)
		end
		drec = get(host, name)
	end
	drec.dependents[mod] = true
	local list = deps_of[mod]
	if list then
		list[#list + 1] = drec
	end
	return (drec.parent or drec).module
end

-- --- reloading --------------------------------------------------------------

local function save_state(rec)
	local mod = rec.module
	if not (mod and mod.save) then
		return nil
	end
	local ok, state_or_msg, trace = call(mod.save)
	if not ok then
		log("warn", rec.host, rec.name, "save failed (state lost): " .. trace)
		return nil
	end
	return state_or_msg
end

-- Every record that depends on rec, directly or not, parents before their
-- own dependents, each with its saved state.
local function collect_dependents(rec, out, seen)
	local function visit(r)
		for m in pairs(r.dependents) do
			local drec = record_of[m]
			if drec and not seen[drec] then
				seen[drec] = true
				out[#out + 1] = { host = drec.host, name = drec.name, state = save_state(drec) }
				collect_dependents(drec, out, seen)
			end
		end
	end
	visit(rec)
	if rec.global then
		for _, hrec in pairs(rec.users) do
			visit(hrec)
		end
	end
	return out
end

-- Reloads module `name` on host: compiles the new code first (a syntax
-- error keeps the old instance untouched), carries state through
-- module.save()/module.restore(), and reloads its dependents. If the new
-- code fails to load, the old code is loaded again with the saved state.
-- Returns the new module object, or nil and an error message.
function M.reload(host, name)
	local rec = get(host, name)
	if not rec then
		return nil, format("module '%s' is not loaded on host '%s'", tostring(name), tostring(host))
	end
	rec = rec.parent or rec
	local c, err = compile(name)
	if not c then
		log("error", rec.host, name, "reload failed, keeping the loaded version: " .. err)
		return nil, err
	end
	local dependents = collect_dependents(rec, {}, {})
	local state = save_state(rec)
	local users
	if rec.global then
		users = {}
		for h in pairs(rec.users) do
			users[#users + 1] = h
		end
		sort(users)
	end
	local opts = { state = state, explicit = rec.explicit }
	local pins = { api.pin_shared(rec.module) }
	for _, d in ipairs(dependents) do
		local drec = get(d.host, d.name)
		if drec and drec.module then
			pins[#pins + 1] = api.pin_shared(drec.module)
		end
	end
	unload_record(rec)
	local mod, lerr = instantiate(rec.host, name, c, opts)
	if not mod then
		local old = { path = rec.path, source = rec.source, env = new_env() }
		old.chunk = lua_load(rec.source, "@" .. rec.path, "t", old.env)
		if old.chunk then
			instantiate(rec.host, name, old, opts)
		end
		log("error", rec.host, name, "reload failed, the previous version is loaded again")
	end
	local grec = get("*", name)
	for _, h in ipairs(users or {}) do
		if grec and not get(h, name) then
			attach(grec, h)
		end
	end
	for _, d in ipairs(dependents) do
		if not get(d.host, d.name) then
			load_module(d.host, d.name, { state = d.state })
		end
	end
	for _, pin in ipairs(pins) do
		api.unpin_shared(pin)
	end
	if not mod then
		return nil, lerr
	end
	return mod
end

-- --- queries ----------------------------------------------------------------

function M.is_loaded(host, name)
	return get(host, name) ~= nil
end

-- The module object serving name on host (a global module's own object
-- for its user hosts), or nil.
function M.get_module(host, name)
	local rec = get(host, name)
	if not rec then
		return nil
	end
	return (rec.parent or rec).module
end

-- Names of the modules loaded on host, sorted.
function M.list(host)
	local names = {}
	for name in pairs(records[host] or {}) do
		names[#names + 1] = name
	end
	sort(names)
	return names
end

-- --- start-up and shutdown ----------------------------------------------------

local function add_plugin_paths()
	local path = package.path
	for _, dir in ipairs(plugin_dirs()) do
		local entry = dir .. "/?.lua"
		if not (";" .. path .. ";"):find(";" .. entry .. ";", 1, true) then
			path = entry .. ";" .. path
		end
	end
	package.path = path
end

local function add_names(list, seen, names, host, option)
	if list == nil then
		return
	end
	if type(list) == "string" then
		list = { list }
	end
	if type(list) ~= "table" then
		core.log("error", host, format("option '%s' must be a list of module names", option))
		return
	end
	for _, name in ipairs(list) do
		if type(name) ~= "string" then
			core.log("error", host, format("option '%s': %s is not a module name", option,
				tostring(name)))
		elseif not seen[name] then
			seen[name] = true
			names[#names + 1] = name
		end
	end
end

-- The modules host should run: its component module, or the global
-- modules_enabled plus the host's own, minus modules_disabled.
local function host_modules(cfg, h)
	local section = h.section or (cfg.host and cfg:host(h.name)) or {}
	local names, seen = {}, {}
	if h.type == "component" then
		if h.module then
			add_names({ h.module }, seen, names, h.name, "Component")
		end
	else
		add_names(cfg:get("*", "modules_enabled"), seen, names, h.name, "modules_enabled")
	end
	add_names(section.modules_enabled, seen, names, h.name, "modules_enabled")
	local disabled, dseen = {}, {}
	add_names(cfg:get("*", "modules_disabled"), dseen, disabled, h.name, "modules_disabled")
	add_names(section.modules_disabled, dseen, disabled, h.name, "modules_disabled")
	local out = {}
	for _, name in ipairs(names) do
		if not dseen[name] then
			out[#out + 1] = name
		end
	end
	return out
end

-- Loads the configured modules of every host. Failures are logged and the
-- others load anyway. Returns the number of modules that failed.
function M.load_all()
	local cfg = core.config()
	if not cfg then
		return 0
	end
	add_plugin_paths()
	local failed = 0
	for _, h in ipairs(cfg.hosts or {}) do
		for _, name in ipairs(host_modules(cfg, h)) do
			if not get(h.name, name) and not load_module(h.name, name, {}) then
				failed = failed + 1
			end
		end
	end
	return failed
end

-- --- reload of the config -------------------------------------------------------

local function name_set(list)
	local out = {}
	for _, name in ipairs(list) do
		out[name] = true
	end
	return out
end

-- After a config reload (new_cfg is already the server's config): on each
-- host of new_cfg, unloads the modules old_cfg enabled and new_cfg does
-- not (unless a loaded module depends on them), and loads every module
-- new_cfg enables that is not loaded. Modules loaded by hand
-- (starlingctl module load) are left alone. Returns report lines and the
-- number of modules that failed to load.
function M.reconcile(old_cfg, new_cfg)
	add_plugin_paths()
	local old_sets = {}
	for _, h in ipairs(old_cfg and old_cfg.hosts or {}) do
		old_sets[h.name] = name_set(host_modules(old_cfg, h))
	end
	local report, failed = {}, 0
	for _, h in ipairs(new_cfg.hosts or {}) do
		local wanted = host_modules(new_cfg, h)
		local want = name_set(wanted)
		local dropped = {}
		for name in pairs(old_sets[h.name] or {}) do
			if not want[name] then
				dropped[#dropped + 1] = name
			end
		end
		sort(dropped)
		for _, name in ipairs(dropped) do
			local rec = get(h.name, name)
			if rec and next(rec.dependents) then
				report[#report + 1] = format("%s: kept %s (other modules depend on it)", h.name, name)
			elseif rec then
				unload_record(rec)
				report[#report + 1] = format("%s: unloaded %s", h.name, name)
			end
		end
		for _, name in ipairs(wanted) do
			if not get(h.name, name) then
				local mod, err = load_module(h.name, name, {})
				if mod then
					report[#report + 1] = format("%s: loaded %s", h.name, name)
				else
					failed = failed + 1
					report[#report + 1] = format("%s: failed to load %s: %s", h.name, name,
						tostring(err))
				end
			end
		end
	end
	return report, failed
end

-- Unloads every module of host (a host being removed), newest first.
function M.unload_host(host)
	while true do
		local rec
		for i = #order, 1, -1 do
			if order[i].host == host then
				rec = order[i]
				break
			end
		end
		if not rec then
			return
		end
		unload_record(rec)
		drop(rec)
	end
end

-- Runs the command a module file defines (module.command(args), as
-- Prosody's `prosodyctl mod_NAME ARGS`): the file runs in a module object
-- of host "*" that is released afterwards. true or false, the lines it
-- printed, and its exit code.
function M.run_command(name, args)
	if not valid_name(name) then
		return false, { format("invalid module name '%s'", tostring(name)) }
	end
	local c, err = compile(name)
	if not c then
		return false, { err }
	end
	local mod = api.new("*", name, c.path)
	local out = {}
	c.env.module = mod
	c.env.print = function(...)
		out[#out + 1] = M.print_text(...)
	end
	mod.environment = c.env
	local ok, msg = call(c.chunk)
	local code = 1
	if ok and type(mod.command) ~= "function" then
		ok, msg = false, format("module '%s' has no command", name)
	end
	if ok then
		local res
		ok, res = call(mod.command, args or {})
		if ok then
			code = res or 0
		else
			msg = res
		end
	end
	api.release(mod)
	if not ok then
		out[#out + 1] = tostring(msg)
		return false, out, 1
	end
	return code == 0, out, code
end

-- For starlingctl check and the admin commands: where modules are looked
-- for, which a host enables, and finding one (path, source or nil, err).
M.search_dirs = search_dirs
M.host_modules = host_modules
M.find = find_module

-- Unloads everything, the most recently loaded first.
function M.unload_all()
	while #order > 0 do
		local rec = order[#order]
		unload_record(rec)
		if order[#order] == rec then
			drop(rec)
		end
	end
end

return M
