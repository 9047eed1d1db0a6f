-- core.storagemanager: Prosody's storage manager over Starling's stores.
--
--   open(host, store[, kind])  --> store (kind "keyval", "map", "archive")
--   initialize_host(host)      hosts' stores are ready at start-up in
--                              Starling: nothing to do

local storage = require "starling.store"

local M = {}

function M.open(host, name, kind)
	local s, err = storage.open(host, name, kind or "keyval")
	if not s then
		error(("cannot open %s store '%s' on host '%s': %s"):format(kind or "keyval", name, host,
			tostring(err)), 2)
	end
	return s
end

function M.initialize_host()
	return true
end

function M.get_driver(host)
	return { name = "lmdb", host = host }
end

return M
