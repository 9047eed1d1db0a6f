-- util.stanza: stanza builders for modules, in the shape module authors
-- know from Prosody's util.stanza, over the C stanza userdata of
-- starling.stanza (no Lua tables are built for trees).
--
--   local st = require "util.stanza"
--   local m = st.message({ to = jid, type = "chat" }, "hi")
--   local r = st.reply(iq):tag("query", { xmlns = "jabber:iq:version" })
--       :text_tag("name", "Starling"):up()
--
-- Differences from Prosody: attr.xmlns always reads the element's
-- namespace (never nil); error_reply() on a message or presence keeps the
-- original payload; attribute and text values must be strings.

local cstanza = require "starling.stanza"

local new, is_stanza, clone = cstanza.new, cstanza.is_stanza, cstanza.clone
local error, type, getmetatable = error, type, getmetatable

local xmlns_stanzas = "urn:ietf:params:xml:ns:xmpp-stanzas"

-- Every child element of s, whatever its namespace (s:childtags() with
-- no arguments keeps to s's own namespace, as in Prosody).
local function elements(s)
	local it = s:children()
	return function()
		for child in it do
			if type(child) ~= "string" then
				return child
			end
		end
	end
end

local function stanza(name, attr)
	return new(name, attr)
end

local function message(attr, body)
	local s = new("message", attr)
	if body == nil then
		return s
	end
	return s:text_tag("body", body)
end

local function iq(attr)
	if not attr then
		error("iq stanzas require id and type attributes", 2)
	end
	if not attr.id then
		error("iq stanzas require an id attribute", 2)
	end
	if not attr.type then
		error("iq stanzas require a type attribute", 2)
	end
	return new("iq", attr)
end

local function presence(attr)
	return new("presence", attr)
end

local function reply(orig)
	if not is_stanza(orig) then
		error("bad argument to reply: expected stanza, got " .. type(orig), 2)
	end
	return orig:reply()
end

-- error_reply(orig, type, condition, text, by), or
-- error_reply(orig, err) with a util.error style table
-- { type, condition, text, context = { by }, extra = { uri | tag |
-- namespace + condition } }.
local function error_reply(orig, error_type, condition, text, by)
	if not is_stanza(orig) then
		error("bad argument to error_reply: expected stanza, got " .. type(orig), 2)
	end
	if orig.attr.type == "error" then
		error("bad argument to error_reply: got stanza of type error which must not be replied to", 2)
	end
	local extra
	if type(error_type) == "table" then
		local e = error_type
		if type(e.extra) == "table" then
			extra = e.extra
		end
		if type(e.context) == "table" and type(e.context.by) == "string" then
			by = e.context.by
		end
		error_type, condition, text = e.type, e.condition, e.text
	end
	local r = orig:error_reply(error_type or "cancel",
		condition or "undefined-condition", text, by)
	if extra then
		if condition == "gone" and type(extra.uri) == "string" then
			r:get_child("error"):get_child(condition, xmlns_stanzas):text(extra.uri)
		end
		if is_stanza(extra.tag) then
			r:add_child(extra.tag)
		elseif extra.namespace and extra.condition then
			r:tag(extra.condition, { xmlns = extra.namespace }):up()
		end
	end
	return r
end

-- Whether err (the second result of a failed store method) says the
-- server's storage is full or failing: the core has logged that once, and
-- the client should try again later.
local function storage_unavailable(err)
	return err == "storage full" or err == "storage failing"
end

-- The error for a request whose write failed (err from a store method):
-- wait/resource-constraint while the server's storage is full or failing
-- (RFC 6120 8.3.3.18), else wait/internal-server-error.
local function store_error_reply(orig, err)
	if storage_unavailable(err) then
		return error_reply(orig, "wait", "resource-constraint",
			"the server cannot store this now; try again later")
	end
	return error_reply(orig, "wait", "internal-server-error")
end

return {
	storage_unavailable = storage_unavailable,
	store_error_reply = store_error_reply,
	stanza = stanza,
	new = stanza,
	message = message,
	iq = iq,
	presence = presence,
	reply = reply,
	error_reply = error_reply,
	is_stanza = is_stanza,
	clone = clone,
	elements = elements,
	methods = cstanza.methods,
	-- Prosody's: the stanzas' metatable (getmetatable(s) == st.stanza_mt)
	stanza_mt = getmetatable(new("x")),
	-- Prosody's storage forms: Starling stores stanzas as they are
	preserialize = function(s) return s end,
	deserialize = function(s) return s end,
	xmlns_stanzas = xmlns_stanzas,
}
