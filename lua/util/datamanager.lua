-- util.datamanager: Prosody's per-user data files, over Starling's stores.
--
--   datamanager.load(username, host, store)          --> data, or nil
--   datamanager.store(username, host, store, data)   --> true, or nil, err
--   datamanager.list_load / list_store / list_append  (an array of items)
--   datamanager.users(host, store)                   --> iterator
--
-- Each (host, store) is Starling's keyval store of that name, except the
-- stores Starling keeps in its own shape, read and written in Prosody's:
--   private   a map store, key "{namespace}name" (mod_private); Prosody
--             keys its table "name:namespace".
-- A nil username is the host's own data.

local type, pairs, next = type, pairs, next
local format = string.format

local M = {}

local opened = {}

local function open(host, name, kind)
	local key = host .. "\0" .. name .. "\0" .. kind
	local s = opened[key]
	if not s then
		local storage = require "starling.store"
		local err
		s, err = storage.open(host, name, kind)
		if not s then
			return nil, err
		end
		opened[key] = s
	end
	return s
end

local function user_key(username)
	return username or ""
end

-- Stores kept in Starling's own shape: load and store in Prosody's.
local adapted = {
	private = {
		load = function(username, host)
			local s, err = open(host, "private", "map")
			if not s then
				return nil, err
			end
			local all = s:get(user_key(username))
			if type(all) ~= "table" or next(all) == nil then
				return nil
			end
			local out = {}
			for k, v in pairs(all) do
				local ns, name = k:match("^{(.*)}(.+)$")
				if ns then
					out[name .. ":" .. ns] = v
				end
			end
			return out
		end,
		store = function(username, host, data)
			local s, err = open(host, "private", "map")
			if not s then
				return nil, err
			end
			local changes = {}
			local old = s:get(user_key(username))
			for k in pairs(type(old) == "table" and old or {}) do
				changes[k] = false
			end
			for k, v in pairs(data or {}) do
				local name, ns = k:match("^([^:]+):(.+)$")
				if name then
					changes["{" .. ns .. "}" .. name] = v
				end
			end
			for k, v in pairs(changes) do
				local ok, serr = s:set(user_key(username), k, v or nil)
				if not ok then
					return nil, serr
				end
			end
			return true
		end,
	},
}

function M.load(username, host, store)
	local a = adapted[store]
	if a then
		return a.load(username, host)
	end
	local s, err = open(host, store, "keyval")
	if not s then
		return nil, err
	end
	return s:get(user_key(username))
end

function M.store(username, host, store, data)
	local a = adapted[store]
	if a then
		return a.store(username, host, data)
	end
	local s, err = open(host, store, "keyval")
	if not s then
		return nil, err
	end
	if type(data) == "table" and next(data) == nil then
		data = nil	-- Prosody removes the file of an empty table
	end
	return s:set(user_key(username), data)
end

function M.list_load(username, host, store)
	return M.load(username, host, store)
end

function M.list_store(username, host, store, list)
	return M.store(username, host, store, list)
end

function M.list_append(username, host, store, item)
	local list = M.load(username, host, store) or {}
	list[#list + 1] = item
	return M.store(username, host, store, list)
end

function M.users(host, store)
	local s, err = open(host, store, "keyval")
	if not s then
		error(format("datamanager.users(%s, %s): %s", host, store, tostring(err)), 2)
	end
	return s:users()
end

return M
