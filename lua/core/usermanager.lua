-- core.usermanager: Prosody's account functions over Starling's accounts.
--
--   user_exists(username, host)
--   create_user(username, password, host)   --> true, or nil, err
--   set_password(username, password, host)  --> true, or nil, err
--   delete_user(username, host)             --> true, or nil, err
--   is_admin(jid[, host])  jid (bare or full) is listed in the option
--                          `admins` of host or of the whole server
--   get_provider(host)     { name = "internal_hashed" }: Starling keeps
--                          SCRAM credentials only

local core = require "starling.core"
local jid_lib = require "util.jid"

local type, ipairs = type, ipairs

local M = {}

function M.user_exists(username, host)
	return core.user_exists(username, host)
end

function M.create_user(username, password, host)
	if core.user_exists(username, host) then
		return nil, "user exists"
	end
	return core.user_set_password(username, host, password)
end

function M.set_password(username, password, host)
	if not core.user_exists(username, host) then
		return nil, "no such user"
	end
	return core.user_set_password(username, host, password)
end

function M.delete_user(username, host)
	return core.user_delete(username, host)
end

local function listed(list, bare)
	if type(list) == "string" then
		list = { list }
	end
	if type(list) ~= "table" then
		return false
	end
	for _, entry in ipairs(list) do
		if type(entry) == "string" and jid_lib.prep(entry) == bare then
			return true
		end
	end
	return false
end

function M.is_admin(jid, host)
	if type(jid) ~= "string" then
		return false
	end
	local bare = jid_lib.prep(jid_lib.bare(jid))
	local cfg = core.config()
	if not bare or not cfg then
		return false
	end
	if listed(cfg:get("*", "admins"), bare) then
		return true
	end
	if host and host ~= "*" then
		local section = cfg.host and cfg:host(host)
		return listed(section and section.admins, bare)
	end
	return false
end

function M.get_provider(host)
	return { name = "internal_hashed", host = host }
end

return M
