-- util.jid: JID helpers for module authors, the API Prosody's util.jid
-- made familiar, over the C functions of starling.jid.
--
--   split(jid)          node, host, resource as written (nil when absent;
--                       all nil when jid is malformed)
--   bare(jid)           "node@host" or "host"
--   node(jid), host(jid), resource(jid)
--   prepped_split(jid)  node, host, resource after stringprep
--   prep(jid)           the prepared JID, or nil when it is invalid
--   join(node, host, resource)
--   compare(jid, acl)   whether jid matches acl, each part acl has
--   escape(s), unescape(s)  XEP-0106 JID escaping of a localpart
--   nodeprep, nameprep, resourceprep: one part, or nil
--
-- JIDs are plain strings; nothing here keeps state.

local cjid = require "starling.jid"

local gsub = string.gsub
local split = cjid.split

local function node(jid)
	return (split(jid))
end

local function host(jid)
	local _, h = split(jid)
	return h
end

local function resource(jid)
	local _, _, r = split(jid)
	return r
end

-- Each part the acl names must be equal in jid; parts the acl leaves out
-- match anything. An acl that does not split matches nothing.
local function compare(jid, acl)
	local jn, jh, jr = split(jid)
	local an, ah, ar = split(acl)
	if not jh or not ah then
		return false
	end
	return (an == nil or an == jn) and ah == jh and (ar == nil or ar == jr)
end

-- XEP-0106: the characters a localpart cannot hold, and a backslash that
-- would otherwise read as the start of an escape.
local escapes = {
	[" "] = "\\20", ['"'] = "\\22", ["&"] = "\\26", ["'"] = "\\27",
	["/"] = "\\2f", [":"] = "\\3a", ["<"] = "\\3c", [">"] = "\\3e",
	["@"] = "\\40", ["\\"] = "\\5c",
}
local unescapes = {}
for ch, esc in pairs(escapes) do
	unescapes[esc:sub(2)] = ch
end

local function escape(s)
	if s == nil then
		return nil
	end
	s = gsub(s, "\\(%x%x)", function(hex)
		if unescapes[hex] then
			return "\\5c" .. hex
		end
	end)
	return (gsub(s, "[ \"&'/:<>@]", escapes))
end

local function unescape(s)
	if s == nil then
		return nil
	end
	return (gsub(s, "\\(%x%x)", unescapes))
end

return {
	split = split,
	bare = cjid.bare,
	node = node,
	host = host,
	resource = resource,
	prepped_split = cjid.prepped_split,
	prep = cjid.prep,
	join = cjid.join,
	compare = compare,
	escape = escape,
	unescape = unescape,
	nodeprep = cjid.nodeprep,
	nameprep = cjid.nameprep,
	resourceprep = cjid.resourceprep,
}
