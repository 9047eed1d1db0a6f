-- util.muc.config: a room's configuration (XEP-0045 10.2): its defaults,
-- the muc#roomconfig form an owner fills in, reading a submitted form,
-- and the muc#roominfo form of the room's disco#info (XEP-0045 6.4).
--
--   defaults(opts)        a new room's config from the service's options
--   form(room, limits)    the <x type='form'/> with the room's values
--   apply(config, x, limits)
--                         a copy of config changed by a submitted form;
--                         nil, condition, text for a bad value
--   info_form(room, count)
--                         the muc#roominfo form
--
-- A config is a plain table (stored as it is): name, description,
-- persistent, public, members_only, moderated, password (nil: none),
-- whois ("moderators" or "anyone"), max_users (0: the service's cap),
-- allow_invites, change_subject, history_length, allowpm ("anyone",
-- "participants", "moderators", "none"), logging, language,
-- allow_register (users without an affiliation may register a nick and
-- become members, XEP-0045 7.10), registered_only (entering needs a
-- registered nick, and that nick).

local st = require "util.stanza"
local dataforms = require "util.dataforms"

local ipairs, pairs, tostring, tonumber, type = ipairs, pairs, tostring, tonumber, type
local math_type, sort = math.type, table.sort

local NS_CONFIG = "http://jabber.org/protocol/muc#roomconfig"
local NS_INFO = "http://jabber.org/protocol/muc#roominfo"
-- fields of our own (XEP-0045 lets a service add some; XEP-0068 wants
-- them namespaced)
local OWN = "{urn:xmpp:starling:muc}roomconfig_"

local M = { xmlns = NS_CONFIG, info_xmlns = NS_INFO }

function M.defaults(opts)
	return {
		name = nil, description = "", language = opts.language,
		persistent = opts.persistent, public = opts.public,
		members_only = opts.members_only, moderated = opts.moderated,
		password = nil,
		whois = opts.public_jids and "anyone" or "moderators",
		max_users = 0, allow_invites = false,
		change_subject = opts.change_subject,
		history_length = opts.history_length,
		allowpm = "anyone", logging = opts.logging,
		allow_register = opts.allow_register, registered_only = opts.registered_only,
	}
end

local ALLOWPM = { anyone = true, participants = true, moderators = true, none = true }
local WHOIS = { moderators = true, anyone = true }

local TRUE = { ["1"] = true, ["true"] = true }
local FALSE = { ["0"] = true, ["false"] = true }

local function boolean(v)
	if TRUE[v] then
		return true
	elseif FALSE[v] then
		return false
	end
	return nil
end

local function whole(v)
	local n = tonumber(v)
	if n and math_type(n) == "integer" and n >= 0 then
		return n
	end
	return nil
end

-- field var -> { type, key in config, kind of value, label }
local FIELDS = {
	{ "muc#roomconfig_roomname", "text-single", "name", "string", "Name" },
	{ "muc#roomconfig_roomdesc", "text-single", "description", "string", "Description" },
	{ "muc#roomconfig_lang", "text-single", "language", "string", "Language" },
	{ "muc#roomconfig_persistentroom", "boolean", "persistent", "boolean",
		"Make the room persistent" },
	{ "muc#roomconfig_publicroom", "boolean", "public", "boolean",
		"List the room in the public directory" },
	{ "muc#roomconfig_membersonly", "boolean", "members_only", "boolean",
		"Only members may enter" },
	{ "muc#roomconfig_moderatedroom", "boolean", "moderated", "boolean",
		"Only participants with voice may speak" },
	{ "muc#roomconfig_passwordprotectedroom", "boolean", "password_protected", "boolean",
		"A password is needed to enter" },
	{ "muc#roomconfig_roomsecret", "text-private", "password", "string", "Password" },
	{ "muc#roomconfig_whois", "list-single", "whois", WHOIS,
		"Who may discover occupants' real JIDs" },
	{ "muc#roomconfig_maxusers", "list-single", "max_users", "whole",
		"Maximum number of occupants (0: the service's limit)" },
	{ "muc#roomconfig_allowinvites", "boolean", "allow_invites", "boolean",
		"Occupants may invite others" },
	{ "muc#roomconfig_changesubject", "boolean", "change_subject", "boolean",
		"Occupants may change the subject" },
	{ "muc#roomconfig_historylength", "text-single", "history_length", "whole",
		"Messages of discussion history sent on entry" },
	{ "muc#roomconfig_allowpm", "list-single", "allowpm", ALLOWPM,
		"Who may send private messages" },
	{ "muc#roomconfig_enablelogging", "boolean", "logging", "boolean",
		"Archive the room's messages (MAM)" },
	{ OWN .. "allowregister", "boolean", "allow_register", "boolean",
		"Anyone may register a nickname and so become a member" },
	{ OWN .. "registerednicksonly", "boolean", "registered_only", "boolean",
		"Only registered nicknames may enter (admins and owners excepted)" },
}
local BY_VAR = {}
for _, f in ipairs(FIELDS) do
	BY_VAR[f[1]] = f
end

local function current(config, key)
	if key == "password_protected" then
		return config.password ~= nil
	end
	return config[key]
end

local function value_text(v)
	if v == true then
		return "1"
	elseif v == false then
		return "0"
	elseif v == nil then
		return ""
	end
	return tostring(v)
end

local function add_options(x, set)
	local names = {}
	for k in pairs(set) do
		names[#names + 1] = k
	end
	sort(names)
	for _, k in ipairs(names) do
		x:tag("option", { label = k }):text_tag("value", k):up()
	end
end

-- XEP-0045 lists maxusers as list-single: some sizes up to the service's
-- cap, the current value and 0 (no limit but the service's).
local function add_max_users_options(x, cap, value)
	local seen = {}
	for _, n in ipairs({ 0, 10, 20, 30, 50, 100, 200, 500, 1000, value, cap }) do
		if n <= cap and not seen[n] then
			seen[n] = true
			x:tag("option", { label = n == 0 and "no limit" or tostring(n) })
				:text_tag("value", tostring(n)):up()
		end
	end
end

function M.form(room, limits)
	local config = room.config
	local x = st.stanza("x", { xmlns = dataforms.xmlns, type = "form" })
		:text_tag("title", "Configuration of " .. room.jid)
		:tag("field", { var = "FORM_TYPE", type = "hidden" })
		:text_tag("value", NS_CONFIG):up()
	for _, f in ipairs(FIELDS) do
		local var, ftype, key, kind, label = f[1], f[2], f[3], f[4], f[5]
		if key == "max_users" then
			label = label .. ", at most " .. limits.max_users
		elseif key == "history_length" then
			label = label .. ", at most " .. limits.max_history
		end
		x:tag("field", { var = var, type = ftype, label = label })
		x:text_tag("value", value_text(current(config, key)))
		if type(kind) == "table" then
			add_options(x, kind)
		elseif key == "max_users" then
			add_max_users_options(x, limits.max_users, config.max_users)
		end
		x:up()
	end
	return x
end

-- One field's value in the form's kind; nil, text when it is not one.
local function read_value(f, values)
	local kind, v = f[4], values[1] or ""
	if kind == "boolean" then
		local b = boolean(v)
		if b == nil then
			return nil, "'" .. f[1] .. "' must be a boolean"
		end
		return b
	elseif kind == "whole" then
		local n = whole(v == "none" and "0" or v)
		if not n then
			return nil, "'" .. f[1] .. "' must be a whole number"
		end
		return n
	elseif type(kind) == "table" then
		if not kind[v] then
			return nil, "'" .. v .. "' is not an option of '" .. f[1] .. "'"
		end
		return v
	end
	return v
end

-- The new config from a submitted form, or nil, condition, text. Fields
-- it leaves out keep their value; unknown fields are ignored (XEP-0045
-- lets a service add its own; a client may send another service's).
function M.apply(config, x, limits)
	local fields, form_type = dataforms.read(x)
	if not fields then
		return nil, "bad-request", form_type
	end
	if form_type and form_type ~= NS_CONFIG then
		return nil, "bad-request", "the FORM_TYPE must be " .. NS_CONFIG
	end
	local new = {}
	for k, v in pairs(config) do
		new[k] = v
	end
	local protected
	for var, values in pairs(fields) do
		local f = BY_VAR[var]
		if f then
			local v, err = read_value(f, values)
			if v == nil then
				return nil, "not-acceptable", err
			end
			if f[3] == "password_protected" then
				protected = v
			else
				new[f[3]] = v
			end
		end
	end
	if new.name == "" then
		new.name = nil
	end
	if new.password == "" or protected == false then
		new.password = nil
	end
	if protected and not new.password then
		return nil, "not-acceptable", "a password-protected room needs a secret"
	end
	if new.max_users > limits.max_users then
		return nil, "not-acceptable", "at most " .. limits.max_users .. " occupants"
	end
	if new.history_length > limits.max_history then
		return nil, "not-acceptable", "at most " .. limits.max_history .. " messages of history"
	end
	if #(new.name or "") > 256 or #new.description > 1024 or #(new.password or "") > 256 then
		return nil, "not-acceptable", "a value is too long"
	end
	return new
end

-- The features disco#info lists for a room (XEP-0045 15.6).
function M.features(config)
	return {
		config.public and "muc_public" or "muc_hidden",
		config.persistent and "muc_persistent" or "muc_temporary",
		config.members_only and "muc_membersonly" or "muc_open",
		config.moderated and "muc_moderated" or "muc_unmoderated",
		config.whois == "anyone" and "muc_nonanonymous" or "muc_semianonymous",
		config.password and "muc_passwordprotected" or "muc_unsecured",
	}
end

function M.info_form(room, count)
	local config = room.config
	local x = st.stanza("x", { xmlns = dataforms.xmlns, type = "result" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" }):text_tag("value", NS_INFO):up()
	local function field(var, label, value)
		x:tag("field", { var = var, label = label }):text_tag("value", value):up()
	end
	field("muc#roominfo_description", "Description", config.description or "")
	field("muc#roominfo_subject", "Subject", room.subject or "")
	field("muc#roominfo_occupants", "Number of occupants", tostring(count))
	field("muc#roomconfig_roomname", "Name", config.name or "")
	field("muc#roominfo_changesubject", "Occupants may change the subject",
		value_text(config.change_subject))
	if config.language then
		field("muc#roominfo_lang", "Language", config.language)
	end
	return x
end

return M
