-- starling.module_api: the `module` object a plugin module sees.
--
-- The module manager (starling.modulemanager) creates one module object
-- per loaded instance with new(host, name, path) and, on unload, calls
-- release(mod), which undoes everything registered through the object:
-- hooks, timers, items (features, identities, extensions, providers, ...)
-- and shared tables. docs/MODULE_API.md is the module author's reference.
--
-- Words used here:
--   item     a value a module contributes to its host under a kind
--            ("feature", "identity", "extension", "<kind>-provider", ...);
--            other modules list them with get_host_items(kind).
--   shared   a table shared by path between module instances, kept while
--            at least one instance that asked for it is loaded.
--   global   a module loaded once for the whole server, with host "*".

local core = require "starling.core"
local set = require "util.set"

local setmetatable, type, tostring, select, error = setmetatable, type, tostring, select, error
local pairs, ipairs, next, math_type, tointeger = pairs, ipairs, next, math.type, math.tointeger
local tonumber = tonumber
local format, concat, sort, unpack = string.format, table.concat, table.sort, table.unpack
local huge = math.huge

local M = {}

local api = {}
local module_mt = {
	__index = api,
	__tostring = function(mod)
		return "module " .. mod.host .. ":" .. mod.name
	end,
}

-- Registrations per module object: { hooks, timers, items, shared, released }.
-- Weak keys: a released module object that nothing references goes away.
local regs = setmetatable({}, { __mode = "k" })

-- items[host][kind] = array of { item = value, source = module object }
local items = {}

-- shared_tables[path] = { data = table, users = { [module or pin] = true } }
local shared_tables = {}

function M.new(host, name, path)
	local mod = setmetatable({ host = host, name = name, path = path }, module_mt)
	regs[mod] = { hooks = {}, timers = {}, items = {}, shared = {}, released = false }
	return mod
end

function M.is_module(x)
	return regs[x] ~= nil
end

local function owner(mod)
	return mod.host .. ":" .. mod.name
end

local function check_live(mod)
	local r = regs[mod]
	if not r then
		error("not a module object (use module:method(), with a colon)", 3)
	end
	if r.released then
		error(format("module '%s' on host '%s' is unloaded", mod.name, mod.host), 3)
	end
	return r
end

-- --- identity -------------------------------------------------------------

function api:get_host()
	return self.host
end

-- "local", "component", or "global" for a module loaded with host "*".
function api:get_host_type()
	if self.host == "*" then
		return "global"
	end
	for _, h in ipairs(core.hosts()) do
		if h.name == self.host then
			return h.type
		end
	end
	return nil
end

-- Makes this module global: loaded once, with host "*". Call it at the top
-- of the module file; hooks made on a host before it stay on that host.
function api:set_global()
	check_live(self)
	self.host = "*"
	self.global = true
end

-- --- hooks ----------------------------------------------------------------

local function add_hook(mod, host, event, fn, priority)
	local r = check_live(mod)
	if type(event) ~= "string" then
		error("hook: the event name must be a string", 3)
	end
	-- A function, or a handler in C a feature offers (starling.handler).
	if type(fn) ~= "function" and type(fn) ~= "userdata" then
		error(format("hook '%s': the handler must be a function", event), 3)
	end
	if priority ~= nil and math_type(priority) ~= "integer" then
		error(format("hook '%s': the priority must be an integer", event), 3)
	end
	core.hook_add(host, event, fn, priority or 0, owner(mod))
	r.hooks[#r.hooks + 1] = { host = host, event = event, fn = fn }
	return fn
end

function api:hook(event, fn, priority)
	return add_hook(self, self.host, event, fn, priority)
end

function api:hook_global(event, fn, priority)
	return add_hook(self, "*", event, fn, priority)
end

local function remove_hook(mod, host, event, fn)
	local hooks = check_live(mod).hooks
	for i = #hooks, 1, -1 do
		local h = hooks[i]
		if h.host == host and h.event == event and h.fn == fn then
			table.remove(hooks, i)
			return core.hook_remove(host, event, fn)
		end
	end
	return false
end

function api:unhook(event, fn)
	return remove_hook(self, self.host, event, fn)
end

function api:unhook_global(event, fn)
	return remove_hook(self, "*", event, fn)
end

function api:fire_event(event, data)
	return core.fire(self.host, event, data)
end

-- Fires event on this host on every other node of the server (workers),
-- with { username = username, host = ..., node = ... }: what a module
-- keeps there of that account is stale. Nothing with one process.
function api:tell_nodes(event, username)
	return core.tell_nodes(self.host, event, username)
end

function api:fire_global(event, data)
	return core.fire("*", event, data)
end

-- --- stanzas --------------------------------------------------------------

function api:send(stanza, origin)
	return core.route(stanza, origin)
end

-- Answers the stanza of a stanza event: to the session it came from when
-- there is one (a local client), else routed by its 'to'. Returns true,
-- so a handler can end with `return module:reply(event, st.reply(s))`.
function api:reply(event, stanza)
	if event.origin then
		event.origin:send(stanza)
	else
		core.route(stanza)
	end
	return true
end

-- --- timers ---------------------------------------------------------------

-- fn() returning a number runs it again after that many seconds; nil ends
-- the timer. Returns the timer (timer:stop() cancels it).
function api:add_timer(seconds, fn)
	local r = check_live(self)
	if type(seconds) ~= "number" or seconds < 0 then
		error("add_timer: the delay must be a number of seconds >= 0", 2)
	end
	if type(fn) ~= "function" then
		error("add_timer: the callback must be a function", 2)
	end
	local timers = r.timers
	local t
	local function tick()
		timers[t] = nil
		local again = fn(os.time())
		if again ~= nil and not r.released then
			timers[t] = true
			return again
		end
		return nil
	end
	t = core.timer(seconds, tick, owner(self))
	timers[t] = true
	return t
end

-- --- logging --------------------------------------------------------------

local levels = { debug = "debug", info = "info", warn = "warn", warning = "warn", error = "error" }

function api:log(level, fmt, ...)
	local lvl = levels[level]
	if not lvl then
		error(format("log: unknown level '%s' (debug, info, warn, error)", tostring(level)), 2)
	end
	if core.log_enabled and not core.log_enabled(lvl, owner(self)) then
		return
	end
	local msg
	if select("#", ...) > 0 then
		msg = format(fmt, ...)
	else
		msg = tostring(fmt)
	end
	core.log(lvl, owner(self), msg)
end

-- A store method failed with err: logged with what was being done (fmt,
-- ...) as an error, or at debug level while the server's storage is full
-- or failing, which the core logs once when it starts and once when it
-- ends.
function api:log_store_error(err, fmt, ...)
	local quiet = err == "storage full" or err == "storage failing"
	self:log(quiet and "debug" or "error", "%s: %s", format(fmt, ...), tostring(err))
end

-- --- options --------------------------------------------------------------

function api:get_option(name, default)
	local cfg = core.config()
	local value
	if cfg then
		value = cfg:get(self.host, name)
	end
	if value == nil then
		return default
	end
	return value
end

local function describe(value)
	if type(value) == "string" then
		return format("%q", value)
	end
	return tostring(value)
end

local function bad_option(mod, name, expected, value)
	error(format("option '%s' on host '%s': expected %s (got %s)",
		name, mod.host, expected, describe(value)), 0)
end

function api:get_option_string(name, default)
	local value = self:get_option(name)
	if value == nil then
		return default
	end
	if type(value) == "number" then
		return tostring(value)
	end
	if type(value) ~= "string" then
		bad_option(self, name, "a string", value)
	end
	return value
end

local function range_text(what, min, max)
	if min and max then
		return format("%s between %s and %s", what, min, max)
	elseif min then
		return format("%s >= %s", what, min)
	elseif max then
		return format("%s <= %s", what, max)
	end
	return what
end

local function get_number(mod, name, default, min, max, integer)
	local value = mod:get_option(name)
	if value == nil then
		return default
	end
	local what = integer and "an integer" or "a number"
	local n = value
	if integer and math_type(n) == "float" then
		n = tointeger(n) or n
	end
	if type(n) ~= "number" or n ~= n or (integer and math_type(n) ~= "integer")
	   or (min and n < min) or (max and n > max) then
		bad_option(mod, name, range_text(what, min, max), value)
	end
	return n
end

function api:get_option_number(name, default, min, max)
	return get_number(self, name, default, min, max, false)
end

function api:get_option_integer(name, default, min, max)
	return get_number(self, name, default, min, max, true)
end

local boolean_words = {
	["true"] = true, yes = true, on = true, enabled = true,
	["false"] = false, no = false, off = false, disabled = false,
}

function api:get_option_boolean(name, default)
	local value = self:get_option(name)
	if value == nil then
		return default
	end
	if type(value) == "boolean" then
		return value
	end
	if type(value) == "string" then
		local b = boolean_words[value:lower()]
		if b ~= nil then
			return b
		end
	end
	bad_option(self, name, "a boolean (true or false)", value)
end

local function is_array(t)
	local n = #t
	for k in pairs(t) do
		if math_type(k) ~= "integer" or k < 1 or k > n then
			return false
		end
	end
	return true
end

local function copy_array(t)
	local out = {}
	for i = 1, #t do
		out[i] = t[i]
	end
	return out
end

-- A single string is taken as a one-item list. Returns a copy.
function api:get_option_array(name, default)
	local value = self:get_option(name)
	if value == nil then
		if type(default) == "table" then
			if set.is_set(default) then
				return default:to_array()
			end
			return copy_array(default)
		end
		return default
	end
	if type(value) == "string" then
		return { value }
	end
	if type(value) ~= "table" or not is_array(value) then
		bad_option(self, name, 'a list such as { "a", "b" }', value)
	end
	return copy_array(value)
end

function api:get_option_set(name, default)
	local list = self:get_option_array(name, default)
	if list == nil then
		return nil
	end
	return set.new(list)
end

function api:get_option_enum(name, default, ...)
	local value = self:get_option(name)
	if value == nil then
		return default
	end
	local allowed = { default, ... }
	for i = 1, select("#", ...) + 1 do
		if allowed[i] ~= nil and value == allowed[i] then
			return value
		end
	end
	local names = {}
	for i = 1, select("#", ...) + 1 do
		if allowed[i] ~= nil then
			names[#names + 1] = describe(allowed[i])
		end
	end
	bad_option(self, name, "one of " .. concat(names, ", "), value)
end

local period_units = {
	[""] = 1, s = 1, sec = 1, secs = 1, second = 1, seconds = 1,
	m = 60, min = 60, mins = 60, minute = 60, minutes = 60,
	h = 3600, hr = 3600, hrs = 3600, hour = 3600, hours = 3600,
	d = 86400, day = 86400, days = 86400,
	w = 604800, wk = 604800, wks = 604800, week = 604800, weeks = 604800,
	mo = 2592000, month = 2592000, months = 2592000,
	y = 31536000, yr = 31536000, year = 31536000, years = 31536000,
}

-- Seconds from a period: a number (seconds), "never" (math.huge), or a
-- string of one or more <number><unit> parts: "90", "30s", "1.5h",
-- "2 days", "1w", "1h30m", "1 hour 30 minutes". Units: s, m/min, h, d,
-- w, mo (30 days), y (365 days) and their long forms. nil when invalid.
function M.parse_period(value)
	if type(value) == "number" then
		if value >= 0 then
			return value
		end
		return nil
	end
	if type(value) ~= "string" then
		return nil
	end
	local s = value:lower():gsub("^%s+", ""):gsub("%s+$", "")
	if s == "never" then
		return huge
	end
	if s == "" then
		return nil
	end
	local total, pos = 0, 1
	while pos <= #s do
		local num, unit, stop = s:match("^(%d+%.?%d*)%s*(%a*)%s*,?%s*()", pos)
		if not num then
			return nil
		end
		local factor = period_units[unit]
		if not factor or (unit == "" and pos > 1) then
			return nil
		end
		total = total + tonumber(num) * factor
		pos = stop
	end
	return total
end

-- An option read through parse (M.parse_period, M.parse_size): the parsed
-- default when unset, an error naming the caller of get_option_<what> when
-- that default does not parse, and bad_option when the configured value
-- does not. Called from a get_option_* method, not as a tail call, so that
-- error level 3 is that method's caller.
local function get_parsed(mod, name, default, parse, what, expected)
	local value = mod:get_option(name)
	if value == nil then
		if default == nil then
			return nil
		end
		local d = parse(default)
		if d == nil then
			error(format("get_option_%s('%s'): the default %s is not a %s",
				what, name, describe(default), what), 3)
		end
		return d
	end
	local parsed = parse(value)
	if parsed == nil then
		bad_option(mod, name, expected, value)
	end
	return parsed
end

function api:get_option_period(name, default)
	local seconds = get_parsed(self, name, default, M.parse_period, "period",
		'a period (seconds, or a string like "30 minutes", "2 days", "1w")')
	return seconds
end

local size_units = {
	[""] = 1, b = 1, byte = 1, bytes = 1,
	kb = 1000, mb = 1000 ^ 2, gb = 1000 ^ 3, tb = 1000 ^ 4,
	k = 1024, kib = 1024, m = 1024 ^ 2, mib = 1024 ^ 2,
	g = 1024 ^ 3, gib = 1024 ^ 3, t = 1024 ^ 4, tib = 1024 ^ 4,
}

-- Bytes from a size: a number (bytes), or a string of a number and an
-- optional unit: "1048576", "512 KiB", "10 MB", "1.5GiB". kB, MB, GB, TB
-- are powers of 1000; KiB, MiB, GiB, TiB (and K, M, G, T) of 1024; case
-- does not matter. A whole number of bytes, or nil when invalid.
function M.parse_size(value)
	if type(value) == "number" then
		if value >= 0 and value < huge then
			return math.floor(value)
		end
		return nil
	end
	if type(value) ~= "string" then
		return nil
	end
	local num, unit = value:lower():match("^%s*(%d+%.?%d*)%s*(%a*)%s*$")
	local factor = num and size_units[unit]
	if not factor then
		return nil
	end
	return math.floor(tonumber(num) * factor)
end

function api:get_option_size(name, default)
	local bytes = get_parsed(self, name, default, M.parse_size, "size",
		'a size (bytes, or a string like "512 KiB", "10 MB")')
	return bytes
end

-- --- items: features, identities, extensions, providers ---------------------

local function host_items(host, kind)
	local by_kind = items[host]
	if not by_kind then
		by_kind = {}
		items[host] = by_kind
	end
	local list = by_kind[kind]
	if not list then
		list = {}
		by_kind[kind] = list
	end
	return list
end

function api:add_item(kind, item)
	local r = check_live(self)
	if type(kind) ~= "string" then
		error("add_item: the kind must be a string", 2)
	end
	if item == nil then
		error(format("add_item('%s'): the item is nil", kind), 2)
	end
	local host = self.host
	local list = host_items(host, kind)
	list[#list + 1] = { item = item, source = self }
	r.items[#r.items + 1] = { host = host, kind = kind, item = item }
	core.fire(host, "item-added/" .. kind, { source = self, item = item, kind = kind })
	return item
end

local function drop_item(mod, host, kind, item)
	local list = items[host] and items[host][kind]
	if not list then
		return false
	end
	for i = #list, 1, -1 do
		if list[i].source == mod and list[i].item == item then
			table.remove(list, i)
			if #list == 0 then
				items[host][kind] = nil
				if next(items[host]) == nil then
					items[host] = nil
				end
			end
			core.fire(host, "item-removed/" .. kind, { source = mod, item = item, kind = kind })
			return true
		end
	end
	return false
end

function api:remove_item(kind, item)
	local r = check_live(self)
	for i = #r.items, 1, -1 do
		local entry = r.items[i]
		if entry.kind == kind and entry.item == item then
			table.remove(r.items, i)
			return drop_item(self, entry.host, kind, item)
		end
	end
	return false
end

-- Items of a kind on host (and, for a host other than "*", those global
-- modules contributed), in the order they were added. A new array.
function M.host_items(host, kind)
	local out = {}
	local function collect(h)
		local list = items[h] and items[h][kind]
		if list then
			for _, entry in ipairs(list) do
				out[#out + 1] = entry.item
			end
		end
	end
	collect(host)
	if host ~= "*" then
		collect("*")
	end
	return out
end

function api:get_host_items(kind)
	return M.host_items(self.host, kind)
end

function api:add_feature(xmlns)
	if type(xmlns) ~= "string" then
		error("add_feature: the feature must be a string", 2)
	end
	return self:add_item("feature", xmlns)
end

function api:add_identity(category, type_, name)
	if type(category) ~= "string" or type(type_) ~= "string" then
		error("add_identity: category and type must be strings", 2)
	end
	return self:add_item("identity", { category = category, type = type_, name = name })
end

-- A XEP-0128 data form (a stanza) for the host's disco#info.
function api:add_extension(form)
	return self:add_item("extension", form)
end

-- The host's features, each once, sorted.
function api:get_features()
	local seen, out = {}, {}
	for _, f in ipairs(self:get_host_items("feature")) do
		if not seen[f] then
			seen[f] = true
			out[#out + 1] = f
		end
	end
	sort(out)
	return out
end

-- The host's identities, each once, sorted by category, type, name.
function api:get_identities()
	local seen, out = {}, {}
	for _, id in ipairs(self:get_host_items("identity")) do
		local key = id.category .. "\0" .. id.type .. "\0" .. (id.name or "")
		if not seen[key] then
			seen[key] = true
			out[#out + 1] = id
		end
	end
	sort(out, function(a, b)
		if a.category ~= b.category then return a.category < b.category end
		if a.type ~= b.type then return a.type < b.type end
		return (a.name or "") < (b.name or "")
	end)
	return out
end

-- Registers item (a table) as a provider of kind: an item of kind
-- "<kind>-provider" whose name defaults to the module's name.
function api:provides(kind, item)
	item = item or {}
	if type(item) ~= "table" then
		error(format("provides('%s'): the provider must be a table", tostring(kind)), 2)
	end
	if item.name == nil then
		item.name = self.name
	end
	return self:add_item(kind .. "-provider", item)
end

-- --- shared tables --------------------------------------------------------

-- module:shared(path, ...) returns one table per path. A path without a
-- leading "/" is relative to "/<host>/<module name>/".
function api:shared(...)
	local r = check_live(self)
	local n = select("#", ...)
	local out = {}
	for i = 1, n do
		local path = select(i, ...)
		if type(path) ~= "string" or path == "" then
			error("shared: each path must be a non-empty string", 2)
		end
		if path:sub(1, 1) ~= "/" then
			path = "/" .. self.host .. "/" .. self.name .. "/" .. path
		end
		local entry = shared_tables[path]
		if not entry then
			entry = { data = {}, users = {} }
			shared_tables[path] = entry
		end
		entry.users[self] = true
		r.shared[path] = true
		out[i] = entry.data
	end
	return unpack(out, 1, n)
end

local function release_shared(user, paths)
	for path in pairs(paths) do
		local entry = shared_tables[path]
		if entry then
			entry.users[user] = nil
			if next(entry.users) == nil then
				shared_tables[path] = nil
			end
		end
	end
end

-- Keeps the shared tables mod uses alive until unpin(pin): used across a
-- reload, between unloading the old instance and loading the new one.
function M.pin_shared(mod)
	local pin = { paths = {} }
	local r = regs[mod]
	if r then
		for path in pairs(r.shared) do
			local entry = shared_tables[path]
			if entry then
				entry.users[pin] = true
				pin.paths[path] = true
			end
		end
	end
	return pin
end

function M.unpin_shared(pin)
	release_shared(pin, pin.paths)
end

-- --- storage and dependencies ------------------------------------------------

-- Opens a store of this host: name defaults to the module's name, kind to
-- "keyval". Raises when the store cannot be opened.
function api:open_store(name, kind)
	local storage = require "starling.store"
	name = name or self.name
	kind = kind or "keyval"
	local store, err = storage.open(self.host, name, kind)
	if not store then
		error(format("cannot open %s store '%s' on host '%s': %s", kind, name, self.host,
			tostring(err)), 2)
	end
	return store
end

-- Loads module `name` on this module's host unless it is loaded, and
-- records that this module depends on it (unloading or reloading it
-- unloads or reloads this one too). Returns its module object.
function api:depends(name)
	check_live(self)
	return require("starling.modulemanager").depend(self, name)
end

-- --- release --------------------------------------------------------------

-- --- Prosody's API: what modules written for Prosody call ----------------------
--
-- Same names and meanings as Prosody's module API (docs/MODULE_API.md has
-- the table of what is the same, adapted or missing).

local function track(mod, undo)
	local r = check_live(mod)
	r.undo = r.undo or {}
	r.undo[#r.undo + 1] = undo
end

-- module:hook_object_event(object, event, fn, priority): a handler on any
-- object with add_handler/remove_handler (prosody.events, a host's events).
function api:hook_object_event(object, event, fn, priority)
	if type(object) ~= "table" or type(object.add_handler) ~= "function" then
		error("hook_object_event: the object has no add_handler", 2)
	end
	object.add_handler(event, fn, priority)
	track(self, function()
		object.remove_handler(event, fn)
	end)
	return fn
end

-- module:hook_tag(xmlns, name, fn, priority): a top-level element a client
-- stream carries that is not a stanza (Starling: "stream-element/ns:name").
function api:hook_tag(xmlns, name, fn, priority)
	return self:hook("stream-element/" .. tostring(xmlns) .. ":" .. tostring(name), fn, priority)
end

-- module:hook_stanza(xmlns, name, fn, priority): the same (Prosody's older name).
api.hook_stanza = api.hook_tag

-- module:context(host): a module object of the same module on another
-- host, whose registrations are undone with this module's.
function api:context(host)
	local ctx = M.new(host, self.name, self.path)
	ctx.environment = self.environment
	track(self, function()
		M.release(ctx)
	end)
	return ctx
end

function api:get_directory()
	return self.path and self.path:match("^(.*)/[^/]*$") or "."
end

-- module:load_resource(path, mode): a file beside the module's, opened.
function api:load_resource(path, mode)
	if path:sub(1, 1) ~= "/" then
		path = self:get_directory() .. "/" .. path
	end
	return io.open(path, mode or "r")
end

-- module:require(name): a library beside the module (name.lib.lua, or
-- name.lua), run in the module's environment; else require(name).
function api:require(name)
	local dir = self:get_directory()
	for _, file in ipairs({ dir .. "/" .. name .. ".lib.lua", dir .. "/" .. name .. ".lua" }) do
		local f = io.open(file, "rb")
		if f then
			local src = f:read("a")
			f:close()
			local chunk, err = load(src, "@" .. file, "t", self.environment)
			if not chunk then
				error(err, 2)
			end
			return chunk()
		end
	end
	return require(name)
end

-- An option that is a list, the global one and the host's together.
function api:get_option_inherited_set(name, default)
	local cfg = core.config()
	local out = set.new()
	local function add(v)
		if type(v) == "string" then
			out:add(v)
		elseif type(v) == "table" then
			for _, item in ipairs(v) do
				out:add(item)
			end
		end
	end
	if cfg then
		add(cfg:get("*", name))
		if self.host ~= "*" then
			local section = cfg.host and cfg:host(self.host)
			add(section and section[name])
		end
	end
	if out:empty() and default ~= nil then
		add(default)
	end
	return out
end

function api:get_option_scalar(name, default)
	local value = self:get_option(name)
	if type(value) == "table" then
		bad_option(self, name, "a single value", value)
	end
	if value == nil then
		return default
	end
	return value
end

-- module:handle_items(kind, added, removed, existing): added(event) for
-- each item of kind added on the host (and, unless existing is false, for
-- those there already), removed(event) for each one removed.
function api:handle_items(kind, added, removed, existing)
	self:hook("item-added/" .. kind, added)
	if removed then
		self:hook("item-removed/" .. kind, removed)
	end
	if existing ~= false then
		for _, item in ipairs(self:get_host_items(kind)) do
			added({ item = item, kind = kind, source = self })
		end
	end
end

-- module:broadcast(jids, stanza[, iter]): a copy of stanza to each JID.
function api:broadcast(jids, stanza, iter)
	for jid in (iter or pairs)(jids) do
		local copy = stanza:clone()
		copy.attr.to = jid
		self:send(copy)
	end
end

function api:set_status(kind, text)
	self.status_type, self.status_message = kind, text
	core.fire(self.host, "module-status/updated", { name = self.name })
end

function api:get_status()
	return self.status_type or "core", self.status_message or "Loaded"
end

function api:log_status(level, fmt, ...)
	local text = format(fmt, ...)
	self:log(level, "%s", text)
	self:set_status(level, text)
	return text
end

-- --- metrics: working counters, listed by `starlingctl metrics` -------------------------

-- metric_families[full name] = { kind, unit, help, labels, series = { [key] = series } }
local metric_families = {}

local function metric_name(mod, name)
	local n = ("starling_module_" .. mod.name .. "_" .. name):gsub("[^%w_]", "_")
	return n
end

local function new_series(kind, labels)
	local series = { labels = labels, value = 0, count = 0, sum = 0 }
	function series:add(v) self.value = self.value + (v or 1) end
	function series:set(v) self.value = v end
	function series:sample(v)
		self.count, self.sum, self.value = self.count + 1, self.sum + v, v
	end
	series.kind = kind
	return series
end

-- module:metric(kind, name, unit, description, label_names): a family of
-- series ("counter", "gauge", "histogram", "summary"); :with_labels(...)
-- gives one series, with :add(n), :set(v), :sample(v).
function api:metric(kind, name, unit, description, label_names)
	local full = metric_name(self, name .. ((unit and unit ~= "") and ("_" .. unit) or ""))
	local fam = metric_families[full]
	if not fam then
		fam = { kind = kind, help = description or name, labels = label_names or {}, series = {} }
		metric_families[full] = fam
	end
	local obj = {}
	function obj:with_labels(...)
		local values = { ... }
		local key = concat(values, "\0")
		local s = fam.series[key]
		if not s then
			s = new_series(fam.kind, values)
			fam.series[key] = s
		end
		return s
	end
	function obj:with_partial_label(...)
		return obj:with_labels(...)
	end
	track(self, function()
		metric_families[full] = nil
	end)
	return obj
end

-- module:measure(name, kind): Prosody's older form. "rate"/"counter" give
-- fn(n) that counts; "amount"/"sizes"/"distribution"/"times" give
-- fn(value) that samples (count and sum).
function api:measure(name, kind)
	if kind == "rate" or kind == "counter" then
		local s = self:metric("counter", name, "total", name):with_labels()
		return function(n) s:add(n or 1) end
	end
	local s = self:metric("summary", name, "", name):with_labels()
	if kind == "times" then
		return function()
			local t0 = core.now()
			return function() s:sample(core.now() - t0) end
		end
	end
	return function(v) s:sample(v) end
end

-- Prometheus text lines of every module metric (cmd_metrics appends them).
function M.metrics_lines()
	local out, names = {}, {}
	for name in pairs(metric_families) do
		names[#names + 1] = name
	end
	sort(names)
	for _, name in ipairs(names) do
		local fam = metric_families[name]
		local kind = (fam.kind == "counter" or fam.kind == "gauge") and fam.kind or "summary"
		out[#out + 1] = format("# HELP %s %s", name, fam.help)
		out[#out + 1] = format("# TYPE %s %s", name, kind)
		for _, s in pairs(fam.series) do
			local parts = {}
			for i, label in ipairs(fam.labels) do
				parts[#parts + 1] = format('%s="%s"', label, tostring(s.labels[i] or ""))
			end
			local lbl = #parts > 0 and ("{" .. concat(parts, ",") .. "}") or ""
			if kind == "summary" then
				out[#out + 1] = format("%s_count%s %s", name, lbl, s.count)
				out[#out + 1] = format("%s_sum%s %s", name, lbl, s.sum)
			else
				out[#out + 1] = format("%s%s %s", name, lbl, s.value)
			end
		end
	end
	return out
end

-- Removes everything mod registered: hooks, timers, items, shared tables.
-- The module manager calls mod.unload() afterwards.
function M.release(mod)
	local r = regs[mod]
	if not r or r.released then
		return
	end
	r.released = true
	for i = #r.hooks, 1, -1 do
		local h = r.hooks[i]
		core.hook_remove(h.host, h.event, h.fn)
	end
	r.hooks = {}
	for t in pairs(r.timers) do
		t:stop()
	end
	r.timers = {}
	for i = #r.items, 1, -1 do
		local entry = r.items[i]
		drop_item(mod, entry.host, entry.kind, entry.item)
	end
	r.items = {}
	release_shared(mod, r.shared)
	r.shared = {}
	for i = #(r.undo or {}), 1, -1 do
		r.undo[i]()
	end
	r.undo = nil
end

-- Counts of what mod has registered, for diagnostics and tests.
function M.stats(mod)
	local r = regs[mod]
	if not r then
		return nil
	end
	local timers = 0
	for _ in pairs(r.timers) do
		timers = timers + 1
	end
	local shared = 0
	for _ in pairs(r.shared) do
		shared = shared + 1
	end
	return { hooks = #r.hooks, timers = timers, items = #r.items, shared = shared,
		released = r.released }
end

return M
