-- util.presence_access: who may learn what an account's presence tells
-- (its last activity, its disco#info, whether its bare JID answers a
-- ping): the account itself, and the contacts the account shares its
-- presence with, that is roster items with subscription "from" or "both"
-- (RFC 6121 section 3; XEP-0012 section 4 and its security
-- considerations). The roster is only read, in the shape util.roster
-- describes.
--
--   may_see(roster_store, username, host, asker)
--       true when asker (a full or bare JID, nil for the server itself)
--       may see the presence of username@host; false otherwise, and
--       when the roster cannot be read

local jid = require "util.jid"
local roster_lib = require "util.roster"

local M = {}

function M.may_see(roster_store, username, host, asker)
	if asker == nil or username == nil then
		return false
	end
	local bare = jid.bare(asker)
	if bare == nil then
		return false
	end
	if bare == username .. "@" .. host then
		return true
	end
	local roster = roster_lib.load(roster_store, username)
	return roster ~= nil and roster_lib.is_subscribed(roster, bare)
end

return M
