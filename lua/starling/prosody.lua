-- starling.prosody: the globals Prosody's modules expect, over Starling's
-- own state, so that community modules written for Prosody run unchanged
-- (docs/MODULE_API.md, "Prosody's API").
--
--   prosody.hosts[host]            a host object (below); `hosts` in a
--                                  module's environment is the same table
--   prosody.full_sessions[jid]     the bound session of a full JID
--   prosody.bare_sessions[jid]     { sessions = { [resource] = session } }
--   prosody.events                 the global events: fire_event, add_handler,
--                                  remove_handler
--   prosody.paths                  { config, data, plugins }
--   prosody.version, .platform, .start_time, .process_type ("prosody")
--
-- A host object: { host = name, type = "local" | "component",
-- sessions = { [username] = { sessions = { [resource] = session } } },
-- modules = { [name] = module environment }, events = the host's events }.
-- Everything is looked up when read: nothing is copied, nothing goes stale.
-- Modules may store their own fields in `prosody` (mod_stanza_counter
-- keeps prosody.stanza_counter there); those are shared by every module.

local core = require "starling.core"

local setmetatable, ipairs, type, next = setmetatable, ipairs, type, next
local format = string.format

local M = {}

local server_lib
local function server()
	if server_lib == nil then
		local ok, lib = pcall(require, "starling.server")
		server_lib = ok and lib or false
	end
	return server_lib or nil
end

-- The full JIDs of the bound client sessions of host (every host: nil).
local function bound_jids(host)
	local srv = server()
	local out = {}
	if not srv then
		return out
	end
	for _, s in ipairs(srv.sessions(host)) do
		if s.type == "c2s" and s.jid then
			out[#out + 1] = s.jid
		end
	end
	return out
end

local function split_full(full)
	local bare, resource = full:match("^([^/]+)/(.+)$")
	if not bare then
		return nil
	end
	local node, host = bare:match("^(.-)@(.+)$")
	return node, host, resource, bare
end

-- { sessions = { [resource] = session } } of an account, or nil when it
-- has none bound.
local function bare_entry(bare)
	local list = core.sessions(bare)
	if #list == 0 then
		return nil
	end
	local by_resource = {}
	for _, s in ipairs(list) do
		if s.resource then
			by_resource[s.resource] = s
		end
	end
	if next(by_resource) == nil then
		return nil
	end
	return { sessions = by_resource, jid = bare }
end

-- hosts[h].sessions: username -> bare entry, for the accounts of h that
-- have a bound session.
local function host_sessions(host)
	local function users()
		local seen, list = {}, {}
		for _, full in ipairs(bound_jids(host)) do
			local node = split_full(full)
			if node and node ~= "" and not seen[node] then
				seen[node] = true
				list[#list + 1] = node
			end
		end
		return list
	end
	return setmetatable({}, {
		__index = function(_, username)
			if type(username) ~= "string" then
				return nil
			end
			return bare_entry(username .. "@" .. host)
		end,
		__pairs = function()
			local list, i = users(), 0
			return function()
				while true do
					i = i + 1
					local name = list[i]
					if name == nil then
						return nil
					end
					local entry = bare_entry(name .. "@" .. host)
					if entry then
						return name, entry
					end
				end
			end
		end,
	})
end

local function host_modules(host)
	return setmetatable({}, {
		__index = function(_, name)
			local mm = require "starling.modulemanager"
			local mod = mm.get_module(host, name)
			return mod and mod.environment
		end,
		__pairs = function()
			local mm = require "starling.modulemanager"
			local names, i = mm.list(host), 0
			return function()
				i = i + 1
				local name = names[i]
				if name then
					local mod = mm.get_module(host, name)
					return name, mod and mod.environment or {}
				end
			end
		end,
	})
end

-- The events object of a host ("*": the global one), as Prosody's
-- util.events: fire_event, add_handler, remove_handler.
local function events_of(host)
	return {
		fire_event = function(event, data)
			return core.fire(host, event, data)
		end,
		add_handler = function(event, fn, priority)
			core.hook_add(host, event, fn, priority or 0, host .. ":events")
		end,
		remove_handler = function(event, fn)
			return core.hook_remove(host, event, fn)
		end,
	}
end

local host_objects = {}

local function host_object(name)
	local info
	for _, h in ipairs(core.hosts()) do
		if h.name == name then
			info = h
			break
		end
	end
	if not info then
		host_objects[name] = nil
		return nil
	end
	local obj = host_objects[name]
	if not obj or obj.type ~= info.type then
		obj = {
			host = name,
			type = info.type,
			sessions = info.type == "local" and host_sessions(name) or nil,
			modules = host_modules(name),
			events = events_of(name),
		}
		host_objects[name] = obj
	end
	return obj
end

M.hosts = setmetatable({}, {
	__index = function(_, name)
		if type(name) ~= "string" then
			return nil
		end
		return host_object(name)
	end,
	__newindex = function(_, name)
		error(format("prosody.hosts is Starling's list of hosts: add '%s' with VirtualHost in the config",
			tostring(name)), 2)
	end,
	__pairs = function()
		local list, i = core.hosts(), 0
		return function()
			i = i + 1
			local h = list[i]
			if h then
				return h.name, host_object(h.name)
			end
		end
	end,
})

M.full_sessions = setmetatable({}, {
	__index = function(_, full)
		if type(full) ~= "string" then
			return nil
		end
		return core.session(full)
	end,
	__pairs = function()
		local list, i = bound_jids(nil), 0
		return function()
			while true do
				i = i + 1
				local full = list[i]
				if full == nil then
					return nil
				end
				local s = core.session(full)
				if s then
					return full, s
				end
			end
		end
	end,
})

M.bare_sessions = setmetatable({}, {
	__index = function(_, bare)
		if type(bare) ~= "string" then
			return nil
		end
		return bare_entry(bare)
	end,
	__pairs = function()
		local seen, list = {}, {}
		for _, full in ipairs(bound_jids(nil)) do
			local _, _, _, bare = split_full(full)
			if bare and not seen[bare] then
				seen[bare] = true
				list[#list + 1] = bare
			end
		end
		local i = 0
		return function()
			while true do
				i = i + 1
				local bare = list[i]
				if bare == nil then
					return nil
				end
				local entry = bare_entry(bare)
				if entry then
					return bare, entry
				end
			end
		end
	end,
})

local function dirname(path)
	return path and path:match("^(.*)/[^/]*$") or "."
end

-- The one `prosody` table every module shares.
local prosody = {
	hosts = M.hosts,
	full_sessions = M.full_sessions,
	bare_sessions = M.bare_sessions,
	events = events_of("*"),
	version = "Starling",
	platform = "posix",
	process_type = "prosody",
	start_time = os.time() - math.floor(core.uptime and core.uptime() or 0),
}
prosody.paths = setmetatable({}, {
	__index = function(_, k)
		local cfg = core.config()
		if k == "config" then
			return cfg and dirname(cfg.path)
		elseif k == "data" then
			return cfg and cfg:get("*", "data_path")
		elseif k == "plugins" then
			local mm = require "starling.modulemanager"
			return table.concat(mm.search_dirs(), ";")
		end
	end,
})
M.prosody = prosody

-- Modules of Prosody's that Starling does not have, and why: a module that
-- depends on one fails to load saying so, and starlingctl check reports it.
M.missing_modules = {
	pep = "Starling has no PEP service (XEP-0163) yet",
	bookmarks = "Starling has no PEP-based bookmarks (XEP-0402) yet",
	muc = "Starling has no multi-user chat (XEP-0045) yet",
	track_muc_joins = "it tracks multi-user chat joins, and Starling has no MUC yet",
	bosh = "Starling has no BOSH (XEP-0124) yet",
}

-- The globals a Prosody module's environment adds to Starling's.
function M.globals()
	return { prosody = prosody, hosts = M.hosts }
end

return M
