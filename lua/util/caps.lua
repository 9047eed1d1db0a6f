-- util.caps: XEP-0115 entity capabilities: reading the <c/> of a
-- presence, and checking a verification string against the disco#info
-- answer it stands for (section 5.1).
--
--   of(presence)        { node =, ver =, hash = } of its <c/>, or nil
--   ver(query)          the sha-1 verification string of a disco#info
--                       <query/> (base64)
--   features(query)     the set of its <feature var/>s (a table var -> true)

local hashes = require "util.hashes"
local base64 = require "util.base64"

local sort, concat, ipairs, pairs = table.sort, table.concat, ipairs, pairs

local NS = "http://jabber.org/protocol/caps"
local NS_INFO = "http://jabber.org/protocol/disco#info"
local NS_DATA = "jabber:x:data"

local M = { xmlns = NS }

function M.of(presence)
	local c = presence and presence:get_child("c", NS)
	if not (c and c.attr.ver and c.attr.node) then
		return nil
	end
	return { node = c.attr.node, ver = c.attr.ver, hash = c.attr.hash }
end

function M.features(query)
	local set = {}
	for f in query:childtags("feature", NS_INFO) do
		if f.attr.var then
			set[f.attr.var] = true
		end
	end
	return set
end

local function form_string(x)
	local form_type, fields = nil, {}
	for field in x:childtags("field", NS_DATA) do
		local values = {}
		for v in field:childtags("value", NS_DATA) do
			values[#values + 1] = v:get_text()
		end
		if field.attr.var == "FORM_TYPE" then
			form_type = values[1]
		elseif field.attr.var then
			sort(values)
			fields[#fields + 1] = { var = field.attr.var, values = values }
		end
	end
	sort(fields, function(a, b) return a.var < b.var end)
	local parts = { (form_type or "") .. "<" }
	for _, f in ipairs(fields) do
		parts[#parts + 1] = f.var .. "<"
		for _, v in ipairs(f.values) do
			parts[#parts + 1] = v .. "<"
		end
	end
	return form_type or "", concat(parts)
end

function M.ver(query)
	local identities, features, forms = {}, {}, {}
	for i in query:childtags("identity", NS_INFO) do
		identities[#identities + 1] = (i.attr.category or "") .. "/" .. (i.attr.type or "") .. "/"
			.. (i.attr["xml:lang"] or "") .. "/" .. (i.attr.name or "") .. "<"
	end
	for var in pairs(M.features(query)) do
		features[#features + 1] = var .. "<"
	end
	for x in query:childtags("x", NS_DATA) do
		local form_type, text = form_string(x)
		forms[#forms + 1] = { form_type, text }
	end
	sort(identities)
	sort(features)
	sort(forms, function(a, b) return a[1] < b[1] end)
	local s = concat(identities) .. concat(features)
	for _, f in ipairs(forms) do
		s = s .. f[2]
	end
	return base64.encode(hashes.sha1(s))
end

return M
