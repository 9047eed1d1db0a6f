-- util.adhoc: XEP-0050 ad-hoc commands as modules provide them, with the
-- names and meanings Prosody module authors know:
--
--   adhoc.new(name, node, handler, permission)
--       a command descriptor for module:provides("adhoc", ...):
--       permission is "any" (anyone, remote entities included), "user"
--       (an account of this host; the default), "local_user" (the same)
--       or "admin" (a JID of the option admins). mod_adhoc lists and runs
--       it.
--
--   handler(command, data, state) -> result, state
--       data = { action = "execute"|"next"|"prev"|"complete"|"cancel",
--                form = the submitted <x xmlns='jabber:x:data'/> or nil,
--                from = the requester's full JID, to = the server,
--                origin = the requester's session, stanza = the request }
--       state = what the handler returned last time in this session (nil
--       at first). A result is a table:
--         status = "executing" (with form = an <x type='form'/> and
--                  actions = { "next", "complete", default = "complete" }),
--                  "completed" (with info / warn / form for a result form),
--                  "canceled", or "error" with error = { type =,
--                  condition =, message = }
--         info, warn: notes shown to the user.
--       Returning a state keeps the session open for the next stage.
--
--   adhoc.simple_form(form, fn) -> handler
--       a two-stage command: execute answers form (a function returning
--       the <x type='form'/>, or the stanza itself); the submission calls
--       fn(fields, data), fields as util.dataforms.read gives them
--       ({ var = { values } }), which returns the final result.

local dataforms = require "util.dataforms"

local M = {}

local permissions = { any = true, user = true, local_user = true, admin = true }

function M.new(name, node, handler, permission)
	permission = permission or "user"
	if type(name) ~= "string" or type(node) ~= "string" or type(handler) ~= "function" then
		error("adhoc.new(name, node, handler, permission): name and node are strings, "
			.. "handler a function", 2)
	end
	if not permissions[permission] then
		error("adhoc.new: permission must be any, user, local_user or admin", 2)
	end
	return { name = name, node = node, handler = handler, permission = permission }
end

function M.simple_form(form, fn)
	return function(_, data, state)
		if data.action == "cancel" then
			return { status = "canceled" }
		end
		if not state then
			local x = type(form) == "function" and form(data) or form
			return { status = "executing", form = x, actions = { "complete", default = "complete" } },
				"form sent"
		end
		if not data.form then
			return { status = "error", error = { type = "modify", condition = "bad-request",
				message = "the form was not submitted" } }
		end
		local fields, err = dataforms.read(data.form)
		if not fields then
			return { status = "error", error = { type = "modify", condition = "bad-request",
				message = err } }
		end
		return fn(fields, data)
	end
end

return M
