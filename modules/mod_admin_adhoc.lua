-- mod_admin_adhoc: XEP-0133 service administration from an admin's client
-- (docs/modules/adhoc.md), as ad-hoc commands (needs mod_adhoc).
--
-- The commands do what starlingctl does over the admin socket, through
-- the same functions (lua/starling/admin.lua, M.ops): add, delete and
-- change the password of a user, end a user's sessions, count and list
-- registered and online users, announce to everyone online, reload
-- modules and show the server's status. Only the JIDs of the option
-- admins may run them (permission "admin").

local admin = require "starling.admin"
local adhoc = require "util.adhoc"
local core = require "starling.core"
local jid = require "util.jid"
local st = require "util.stanza"

local NS_ADMIN = "http://jabber.org/protocol/admin"
local NS_DATA = "jabber:x:data"
local ops = admin.ops

module:depends("adhoc")

-- An <x/> of type kind (form, result) with FORM_TYPE and fields: { var =,
-- type =, label =, value = string or list, options = { ... } }.
local function x(kind, title, fields)
	local form = st.stanza("x", { xmlns = NS_DATA, type = kind })
	if title then
		form:text_tag("title", title)
	end
	form:tag("field", { var = "FORM_TYPE", type = "hidden" }):text_tag("value", NS_ADMIN):up()
	for _, f in ipairs(fields) do
		form:tag("field", { var = f.var, type = f.type, label = f.label })
		if f.required then
			form:tag("required"):up()
		end
		for _, o in ipairs(f.options or {}) do
			form:tag("option", { label = o }):text_tag("value", o):up()
		end
		local values = type(f.value) == "table" and f.value or { f.value }
		for _, v in ipairs(values) do
			form:text_tag("value", tostring(v))
		end
		form:up()
	end
	return form
end

local function done(ok, lines)
	return { status = "completed", [ok and "info" or "error"] = table.concat(lines, "\n") }
end

local function first(fields, var)
	return fields[var] and fields[var][1]
end

-- The users named in fields[var] (bare JIDs of this host): a list of
-- { node, host }, or nil and why.
local function users_of(fields, var)
	local out = {}
	for _, j in ipairs(fields[var] or {}) do
		local node, host = ops.parse_user(j)
		if not node then
			return nil, host
		end
		if host ~= module.host then
			return nil, j .. " is not an account of " .. module.host
		end
		out[#out + 1] = { node, host }
	end
	if #out == 0 then
		return nil, "no account given"
	end
	return out
end

-- The one account in "accountjid" and the non-empty "password": node, host,
-- password, or nil and why not.
local function account_and_password(fields)
	local users, why = users_of(fields, "accountjid")
	if not users then
		return nil, why
	end
	local password = first(fields, "password")
	if not password or password == "" then
		return nil, "empty passwords are not allowed"
	end
	return users[1][1], users[1][2], password
end

local function command(name, node, form, fn)
	module:provides("adhoc", adhoc.new(name, NS_ADMIN .. "#" .. node,
		adhoc.simple_form(form, fn), "admin"))
end

-- --- users ------------------------------------------------------------------

command("Add User", "add-user", x("form", "Adding a User", {
	{ var = "accountjid", type = "jid-single", label = "The Jabber ID for the account to be added",
	  required = true },
	{ var = "password", type = "text-private", label = "The password for this account",
	  required = true },
	{ var = "password-verify", type = "text-private", label = "Retype password", required = true },
}), function(fields)
	local node, host, password = account_and_password(fields)
	if not node then
		return done(false, { host })
	end
	if password ~= first(fields, "password-verify") then
		return done(false, { "the passwords do not match" })
	end
	return done(ops.user_create(node, host, password))
end)

command("Delete User", "delete-user", x("form", "Deleting a User", {
	{ var = "accountjids", type = "jid-multi", label = "The Jabber ID(s) to delete", required = true },
}), function(fields)
	local users, why = users_of(fields, "accountjids")
	if not users then
		return done(false, { why })
	end
	local all_ok, lines = true, {}
	for _, u in ipairs(users) do
		local ok, out = ops.user_delete(u[1], u[2])
		all_ok = all_ok and ok
		table.move(out, 1, #out, #lines + 1, lines)
	end
	return done(all_ok, lines)
end)

command("Change User Password", "change-user-password", x("form", "Changing a User Password", {
	{ var = "accountjid", type = "jid-single", label = "The Jabber ID for this account",
	  required = true },
	{ var = "password", type = "text-private", label = "The password for this account",
	  required = true },
}), function(fields)
	local node, host, password = account_and_password(fields)
	if not node then
		return done(false, { host })
	end
	return done(ops.user_password(node, host, password))
end)

command("End User Session", "end-user-session", x("form", "Ending a User Session", {
	{ var = "accountjids", type = "jid-multi", label = "The Jabber ID(s) whose sessions end",
	  required = true },
}), function(fields)
	local all_ok, lines = true, {}
	for _, j in ipairs(fields.accountjids or {}) do
		local target = jid.prep(j)
		local _, host = jid.split(target or "")
		if not target or host ~= module.host then
			return done(false, { j .. " is not an account of " .. module.host })
		end
		local ok, out = ops.kick(target, "ended by an administrator")
		all_ok = all_ok and ok
		table.move(out, 1, #out, #lines + 1, lines)
	end
	if #lines == 0 then
		return done(false, { "no account given" })
	end
	return done(all_ok, lines)
end)

-- --- counts and lists -------------------------------------------------------

local function registered()
	local list, err = core.users(module.host)
	if not list then
		module:log("error", "cannot list the accounts: %s", tostring(err))
		return {}
	end
	for i, u in ipairs(list) do
		list[i] = u .. "@" .. module.host
	end
	table.sort(list)
	return list
end

local function online()
	local seen, list = {}, {}
	for _, s in ipairs(require("starling.server").sessions(module.host)) do
		local bare = s.jid and jid.bare(s.jid)
		if bare and not seen[bare] then
			seen[bare] = true
			list[#list + 1] = bare
		end
	end
	table.sort(list)
	return list
end

local function counter(name, node, var, label, list)
	module:provides("adhoc", adhoc.new(name, NS_ADMIN .. "#" .. node, function()
		return { status = "completed", form = x("result", nil, {
			{ var = var, label = label, value = #list() } }) }
	end, "admin"))
end

counter("Get Number of Registered Users", "get-registered-users-num", "registeredusersnum",
	"The number of registered users", registered)
counter("Get Number of Online Users", "get-online-users-num", "onlineusersnum",
	"The number of online users", online)

local limits = { "25", "50", "75", "100", "150", "200", "none" }

local function lister(name, node, var, label, list)
	command(name, node, x("form", name, {
		{ var = "max_items", type = "list-single", label = "Maximum number of items to show",
		  options = limits, value = "100" },
	}), function(fields)
		local all, out = list(), {}
		local max = tonumber(first(fields, "max_items") or "100") or #all
		table.move(all, 1, math.min(max, #all), 1, out)
		return { status = "completed", form = x("result", nil, {
			{ var = var, type = "jid-multi", label = label, value = out } }) }
	end)
end

lister("Get List of Registered Users", "get-registered-users-list", "registereduserjids",
	"The list of all users", registered)
lister("Get List of Online Users", "get-online-users-list", "onlineuserjids",
	"The list of all online users", online)

-- --- announce, reload, status ---------------------------------------------

command("Send Announcement to Online Users", "announce", x("form", "Making an Announcement", {
	{ var = "subject", type = "text-single", label = "Subject" },
	{ var = "announcement", type = "text-multi", label = "Announcement", required = true },
}), function(fields, data)
	local body = table.concat(fields.announcement or {}, "\n")
	if body == "" then
		return done(false, { "the announcement is empty" })
	end
	local n = 0
	for _, s in ipairs(require("starling.server").sessions(module.host)) do
		if s.jid and jid.resource(s.jid) then
			local m = st.message({ to = s.jid, from = module.host, type = "headline" })
			if first(fields, "subject") then
				m:text_tag("subject", first(fields, "subject"))
			end
			m:text_tag("body", body)
			module:send(m)
			n = n + 1
		end
	end
	module:log("info", "%s announced to %d sessions", jid.bare(data.from), n)
	return done(true, { string.format("sent to %d sessions", n) })
end)

local function loaded_modules()
	return require("starling.modulemanager").list(module.host)
end

command("Reload modules", "reload-modules", function()
	return x("form", "Reload modules", {
		{ var = "modules", type = "list-multi", label = "Modules to reload", required = true,
		  options = loaded_modules() } })
end, function(fields)
	local all_ok, lines = true, {}
	for _, name in ipairs(fields.modules or {}) do
		local ok, out = ops.module_reload(name, module.host)
		all_ok = all_ok and ok
		table.move(out, 1, #out, #lines + 1, lines)
	end
	if #lines == 0 then
		return done(false, { "no module chosen" })
	end
	return done(all_ok, lines)
end)

module:provides("adhoc", adhoc.new("Server status", NS_ADMIN .. "#server-status", function()
	local ok, lines = ops.status()
	return done(ok, lines)
end, "admin"))
