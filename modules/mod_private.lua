-- mod_private: XEP-0049 Private XML Storage (docs/modules/private.md).
--
-- A user stores XML fragments on the server and reads them back, one
-- fragment per element name and namespace, in the "private" map store
-- (key "{namespace}name", value the element). Only the account itself
-- may do so: to another account's bare JID it is forbidden. Errors
-- (XEP-0049 section 2.3): no child element, or a reserved namespace
-- ("jabber:...", "http://jabber.org/...", "vcard-temp"): not-acceptable;
-- a get naming more than one element: bad-request; a fragment larger than
-- private_max_size, or more than private_max_items fragments:
-- policy-violation.
--
-- Events it fires on the host: "private-stored" { username, host, key,
-- element } after a fragment was stored (mod_bookmarks reads bookmarks).

local cost = require "util.cost"
local st = require "util.stanza"

local NS = "jabber:iq:private"

local max_size = module:get_option_integer("private_max_size", 64 * 1024, 1)
local max_items = module:get_option_integer("private_max_items", 100, 1)

local store = module:open_store("private", "map")

local function fail(event, kind, condition, text)
	return module:reply(event, st.error_reply(event.stanza, kind, condition, text))
end

local function reserved(ns)
	return ns:sub(1, 7) == "jabber:" or ns:sub(1, 18) == "http://jabber.org/"
		or ns == "vcard-temp"
end

local function key_of(element)
	return "{" .. element.attr.xmlns .. "}" .. element.name
end

-- The child elements of the <query/>, or nil, condition, text.
local function fragments(stanza)
	local list = {}
	for child in stanza:get_child("query", NS):children() do
		if st.is_stanza(child) then
			if child.attr.xmlns == NS or reserved(child.attr.xmlns) then
				return nil, "not-acceptable", "the namespace " .. child.attr.xmlns .. " is reserved"
			end
			list[#list + 1] = child
		end
	end
	if #list == 0 then
		return nil, "not-acceptable", "the query needs a child element with its own namespace"
	end
	return list
end

local function handle_get(event)
	local list, condition, text = fragments(event.stanza)
	if not list then
		return fail(event, "modify", condition, text)
	elseif #list > 1 then
		return fail(event, "modify", "bad-request", "ask for one element at a time")
	end
	local asked = list[1]
	local value, err = store:get(event.origin.username, key_of(asked))
	if err then
		module:log("error", "cannot read private data of %s: %s", event.origin.bare_jid, err)
		return fail(event, "wait", "internal-server-error")
	end
	local reply = st.reply(event.stanza):tag("query", { xmlns = NS })
	if st.is_stanza(value) then
		reply:add_child(value)
	else
		reply:tag(asked.name, { xmlns = asked.attr.xmlns }):up()
	end
	return module:reply(event, reply)
end

-- How many fragments the user would have after storing `keys`.
local function count_after(username, keys)
	local stored, err = store:get(username)
	if err then
		return nil, err
	end
	local n = 0
	for _ in pairs(stored or {}) do
		n = n + 1
	end
	for key in pairs(keys) do
		if not (stored and stored[key] ~= nil) then
			n = n + 1
		end
	end
	return n
end

local function handle_set(event)
	local origin = event.origin
	local list, condition, text = fragments(event.stanza)
	if not list then
		return fail(event, "modify", condition, text)
	end
	local keys = {}
	for _, element in ipairs(list) do
		local copy = element:clone()
		if #tostring(copy) > max_size then
			return fail(event, "modify", "policy-violation",
				"a fragment may hold at most " .. max_size .. " bytes")
		end
		keys[key_of(element)] = copy
	end
	local n, err = count_after(origin.username, keys)
	if not n then
		module:log("error", "cannot read private data of %s: %s", origin.bare_jid, err)
		return fail(event, "wait", "internal-server-error")
	elseif n > max_items then
		return fail(event, "modify", "policy-violation",
			"at most " .. max_items .. " fragments can be stored")
	end
	local ok
	ok, err = store:set_keys(origin.username, keys)
	if not ok then
		module:log_store_error(err, "cannot store private data of %s", origin.bare_jid)
		return module:reply(event, st.store_error_reply(event.stanza, err))
	end
	module:reply(event, st.reply(event.stanza))
	for key, element in pairs(keys) do
		module:fire_event("private-stored", { username = origin.username, host = origin.host,
			key = key, element = element })
	end
	return true
end

-- XEP-0049 2.3: nobody reads or writes another account's private data.
local function forbidden(event)
	return fail(event, "cancel", "forbidden")
end

module:add_feature(NS)

-- A read costs 1 unit of the account's budget (util.cost), a write 2.
local budget = cost.budget(module)

module:hook("iq-get/self/jabber:iq:private:query", budget:wrap(1, handle_get))
module:hook("iq-set/self/jabber:iq:private:query", budget:wrap(2, handle_set))
module:hook("iq-get/bare/jabber:iq:private:query", forbidden)
module:hook("iq-set/bare/jabber:iq:private:query", forbidden)
