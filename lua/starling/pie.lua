-- starling.pie: XEP-0227 (Portable Import/Export) for starlingctl's
-- export and import. Runs in starlingctl only: it needs the admin modules
-- starling.accounts and starling.xmlfile (tools/lx_admin.h).
--
--   export(hosts, write, warn)     writes one <server-data/> document with
--                                  every account and user data of hosts
--                                  (a list) through write(text); true, or
--                                  nil, err
--   import(paths, opts)            reads each file (XInclude followed) and
--                                  stores what it holds: counts, or nil,
--                                  err. opts: known_host(host) -> bool,
--                                  commit() after each user, warn(msg)
--
-- What goes where (the stores the modules keep, always on LMDB):
--   account        <scram-credentials xmlns='urn:xmpp:pie:0#scram'
--                  mechanism='SCRAM-SHA-1|SCRAM-SHA-256'> with iter-count,
--                  salt, server-key, stored-key (base64); a 'password'
--                  attribute on import only (never exported)
--   roster         map "roster" (util.roster; what is left in the keyval
--                  "roster" of before is read as well) <-> <query
--                  xmlns='jabber:iq:roster' ver='N'> (Prosody's 'version'
--                  read too)
--   subscription_requests (map: contact -> the <presence type='subscribe'/>)
--                  <-> <presence xmlns='jabber:client' type='subscribe'/>
--                  children of <user/>
--   vcard          keyval "vcard" (the <vCard/>) <-> <vCard xmlns='vcard-temp'/>
--   private        map "private" ("{ns}name" -> element) <-> <query
--                  xmlns='jabber:iq:private'/>
--   offline        archive "offline" (mod_offline: one item per message)
--                  <-> <offline-messages/>, oldest first; export also
--                  reads what mod_offline has not yet moved from the map
--                  "offline" of before ("m%015d" -> message, "meta")
--   archive        archive "archive" (message archive, XEP-0313) <->
--                  <archive xmlns='urn:xmpp:pie:0#mam'> of <result
--                  xmlns='urn:xmpp:mam:2' id=''> with <forwarded/>
-- Import replaces an account's credentials, roster, vCard and the private
-- fragments it names; offline messages and archive items are added.

local accounts = require "starling.accounts"
local store = require "starling.store"
local xmlfile = require "starling.xmlfile"
local datetime = require "util.datetime"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local pairs, ipairs, type, tostring, tonumber = pairs, ipairs, type, tostring, tonumber
local format, sort, concat = string.format, table.sort, table.concat
local serialize, esc = xmlfile.serialize, xmlfile.escape

local M = {}

local NS_PIE = "urn:xmpp:pie:0"
local NS_PIE_OLD = "http://www.xmpp.org/extensions/xep-0227.html#ns"
local NS_SCRAM = "urn:xmpp:pie:0#scram"
local NS_PIE_MAM = "urn:xmpp:pie:0#mam"
local NS_MAM = "urn:xmpp:mam:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_DELAY = "urn:xmpp:delay"
local NS_ROSTER = "jabber:iq:roster"
local NS_PRIVATE = "jabber:iq:private"
local NS_VCARD = "vcard-temp"
local NS_CLIENT = "jabber:client"

local MECHS = { "SCRAM-SHA-1", "SCRAM-SHA-256" }
local SUBSCRIPTIONS = { none = true, to = true, from = true, both = true }

local function is_pie(ns)
	return ns == NS_PIE or ns == NS_PIE_OLD
end

-- The stores of a host, opened once.
local function stores_of(host)
	local function open(name, kind)
		return assert(store.open(host, name, kind, "lmdb"))
	end
	return {
		roster = roster_lib.open(open),
		requests = open("subscription_requests", "map"),
		vcard = open("vcard", "keyval"),
		private = open("private", "map"),
		offline = open("offline", "archive"),
		offline_old = open("offline", "map"),
		archive = open("archive", "archive"),
		pep_nodes = open("pep_nodes", "map"),
		pep_items = open("pep_items", "map"),
	}
end

local function sorted_keys(t)
	local keys = {}
	for k in pairs(t or {}) do
		if type(k) == "string" then
			keys[#keys + 1] = k
		end
	end
	sort(keys)
	return keys
end

-- --- export -----------------------------------------------------------------

-- Every user with an account or data in one of the stores, sorted.
local function users_of(host, s)
	local seen = {}
	for _, u in ipairs(accounts.list(host) or {}) do
		seen[u] = true
	end
	for _, one in pairs(s) do
		for u in one:users() do
			seen[u] = true
		end
	end
	return sorted_keys(seen)
end

local function scram_xml(creds)
	local out = {}
	for _, mech in ipairs(MECHS) do
		local c = creds[mech]
		if c then
			out[#out + 1] = serialize(st.stanza("scram-credentials",
					{ xmlns = NS_SCRAM, mechanism = mech })
				:text_tag("iter-count", tostring(c.iterations))
				:text_tag("salt", c.salt)
				:text_tag("server-key", c.server_key)
				:text_tag("stored-key", c.stored_key), NS_PIE)
		end
	end
	return out
end

local function roster_xml(roster)
	local q = st.stanza("query", { xmlns = NS_ROSTER, ver = tostring(roster.version or 0) })
	for _, contact in ipairs(sorted_keys(roster.items)) do
		local item = roster.items[contact]
		q:tag("item", {
			jid = contact,
			name = item.name,
			subscription = item.subscription or "none",
			ask = item.ask,
			approved = item.approved and "true" or nil,
		})
		for _, group in ipairs(item.groups or {}) do
			q:text_tag("group", group)
		end
		q:up()
	end
	return serialize(q, NS_PIE)
end

-- The children of one user element, as lines of XML; nil, err on failure.
local function user_lines(host, user, s, warn)
	local lines = {}
	local function add(text)
		lines[#lines + 1] = text
	end
	local function each_stanza(what, t, keys, fn)
		for _, k in ipairs(keys) do
			if st.is_stanza(t[k]) then
				fn(t[k], k)
			elseif k ~= "meta" then
				warn(format("%s@%s: %s entry %s is not XML: not exported", user, host, what, k))
			end
		end
	end
	local creds, err = accounts.get(host, user)
	if err then
		return nil, err
	end
	for _, x in ipairs(creds and scram_xml(creds) or {}) do
		add(x)
	end
	local roster
	roster, err = roster_lib.load(s.roster, user)
	if not roster then
		return nil, err
	end
	if roster.version > 0 or roster_lib.count(roster) > 0 then
		add(roster_xml(roster))
	end
	local requests = s.requests:get(user) or {}
	each_stanza("subscription request", requests, sorted_keys(requests), function(p)
		add(serialize(p, NS_PIE))
	end)
	local vcard = s.vcard:get(user)
	if st.is_stanza(vcard) then
		add(serialize(vcard, NS_PIE))
	end
	local private = s.private:get(user) or {}
	local keys = sorted_keys(private)
	if #keys > 0 then
		local parts = { "<query xmlns='" .. NS_PRIVATE .. "'>" }
		each_stanza("private", private, keys, function(el)
			parts[#parts + 1] = serialize(el, NS_PRIVATE)
		end)
		add(concat(parts) .. "</query>")
	end
	local offline = {}
	local old = s.offline_old:get(user) or {}
	each_stanza("offline message", old, sorted_keys(old), function(m)
		offline[#offline + 1] = "  " .. serialize(m, NS_PIE)
	end)
	for id, m in s.offline:find(user) do
		if st.is_stanza(m) then
			offline[#offline + 1] = "  " .. serialize(m, NS_PIE)
		else
			warn(format("%s@%s: offline message %s is not XML: not exported", user, host, id))
		end
	end
	if #offline > 0 then
		add("<offline-messages>")
		for _, line in ipairs(offline) do
			add(line)
		end
		add("</offline-messages>")
	end
	local first = true
	for id, msg, when in s.archive:find(user) do
		if first then
			add("<archive xmlns='" .. NS_PIE_MAM .. "'>")
			first = false
		end
		if st.is_stanza(msg) then
			add(format("  <result xmlns='%s' id='%s'><forwarded xmlns='%s'>"
				.. "<delay xmlns='%s' stamp='%s'/>%s</forwarded></result>",
				NS_MAM, esc(id), NS_FORWARD, NS_DELAY, datetime.datetime(when),
				serialize(msg, NS_FORWARD)))
		else
			warn(format("%s@%s: archive item %s is not XML: not exported", user, host, id))
		end
	end
	if not first then
		add("</archive>")
	end
	return lines
end

function M.export(hosts, write, warn)
	write("<?xml version='1.0' encoding='UTF-8'?>\n")
	write("<server-data xmlns='" .. NS_PIE .. "'>\n")
	for _, host in ipairs(hosts) do
		local s = stores_of(host)
		write("  <host jid='" .. esc(host) .. "'>\n")
		for _, user in ipairs(users_of(host, s)) do
			local lines, err = user_lines(host, user, s, warn)
			if not lines then
				return nil, format("%s@%s: %s", user, host, err)
			end
			if #lines == 0 then
				write("    <user name='" .. esc(user) .. "'/>\n")
			else
				write("    <user name='" .. esc(user) .. "'>\n")
				for _, line in ipairs(lines) do
					write("      " .. line .. "\n")
				end
				write("    </user>\n")
			end
		end
		write("  </host>\n")
	end
	write("</server-data>\n")
	return true
end

-- --- import -----------------------------------------------------------------

local function import_account(host, name, u, warn)
	local creds, n = {}, 0
	for sc in u:childtags("scram-credentials", NS_SCRAM) do
		local mech = sc.attr.mechanism
		if mech == "SCRAM-SHA-1" or mech == "SCRAM-SHA-256" then
			creds[mech] = {
				iterations = tonumber(sc:get_child_text("iter-count")),
				salt = sc:get_child_text("salt"),
				server_key = sc:get_child_text("server-key"),
				stored_key = sc:get_child_text("stored-key"),
			}
			n = n + 1
		else
			warn(format("%s@%s: %s credentials cannot be used: skipped", name, host,
				tostring(mech)))
		end
	end
	local ok, err
	if n > 0 then
		ok, err = accounts.set(host, name, creds)
	elseif u.attr.password then
		ok, err = accounts.set_password(host, name, u.attr.password)
	else
		warn(format("%s@%s: no credentials: no account made (data imported)", name, host))
		return true
	end
	if not ok then
		return nil, "account: " .. tostring(err)
	end
	return true
end

local function import_roster(name, u, s, warn)
	local q = u:get_child("query", NS_ROSTER)
	if not q then
		return true
	end
	local roster = { version = tonumber(q.attr.ver or q.attr.version) or 0, items = {} }
	for item in q:childtags("item") do
		local contact = item.attr.jid and jid.prep(item.attr.jid)
		if contact and not contact:find("/", 1, true) then
			local groups, seen = {}, {}
			for g in item:childtags("group") do
				local text = g:get_text()
				if text ~= "" and not seen[text] then
					seen[text] = true
					groups[#groups + 1] = text
				end
			end
			local sub = item.attr.subscription
			roster.items[contact] = {
				name = item.attr.name,
				subscription = SUBSCRIPTIONS[sub] and sub or "none",
				ask = item.attr.ask == "subscribe" and "subscribe" or nil,
				approved = (item.attr.approved == "true" or item.attr.approved == "1") or nil,
				groups = groups,
			}
		else
			warn(format("%s: roster item %s is not a bare JID: skipped", name,
				tostring(item.attr.jid)))
		end
	end
	return roster_lib.replace(s.roster, name, roster)
end

-- Subscription requests: <presence type='subscribe'/> in jabber:client,
-- or in the file's own namespace (as Prosody writes them).
local function import_requests(host, name, u, s)
	for p in u:children() do
		local from = type(p) ~= "string" and p.name == "presence"
			and (p.attr.xmlns == NS_CLIENT or is_pie(p.attr.xmlns))
			and p.attr.type == "subscribe" and p.attr.from and jid.prep(p.attr.from)
		if from then
			if p.attr.xmlns ~= NS_CLIENT then
				p = st.presence({ type = "subscribe", from = p.attr.from,
					to = p.attr.to or (name .. "@" .. host) })
			end
			local ok, err = s.requests:set(name, jid.bare(from), p)
			if not ok then
				return nil, err
			end
		end
	end
	return true
end

local function import_private(name, u, s)
	local q = u:get_child("query", NS_PRIVATE)
	if not q then
		return true
	end
	local keys = {}
	for el in q:children() do
		if type(el) ~= "string" then
			keys["{" .. el.attr.xmlns .. "}" .. el.name] = el
		end
	end
	return s.private:set_keys(name, keys)
end

local function import_offline(host, name, u, s)
	local om = u:get_child("offline-messages", u.attr.xmlns)
	if not om then
		return true
	end
	for m in om:childtags("message", NS_CLIENT) do
		if not m:get_child("delay", NS_DELAY) then
			m = m:clone()
			m:tag("delay", { xmlns = NS_DELAY, from = host, stamp = datetime.datetime() })
				:text("Offline Storage"):up()
		end
		local ok, err = s.offline:append(name, nil, m, nil, jid.bare(m.attr.from))
		if not ok then
			return nil, err
		end
	end
	return true
end

local function import_archive(host, name, u, s, warn)
	local ar = u:get_child("archive", NS_PIE_MAM)
	if not ar then
		return true
	end
	local me = name .. "@" .. host
	for result in ar:childtags("result", NS_MAM) do
		local msg = result:find("{" .. NS_FORWARD .. "}forwarded/{" .. NS_CLIENT .. "}message")
		local stamp = result:find("{" .. NS_FORWARD .. "}forwarded/{" .. NS_DELAY .. "}delay@stamp")
		local when = stamp and datetime.parse(stamp)
		if msg and when then
			local to, from = jid.bare(msg.attr.to or ""), jid.bare(msg.attr.from or "")
			local with = to == me and from or to
			local ok, err = s.archive:append(name, result.attr.id, msg, when,
				with ~= "" and with or nil)
			if not ok then
				return nil, err
			end
		else
			warn(format("%s: an archive result without a message or a time: skipped", me))
		end
	end
	return true
end

local function import_user(host, u, s, warn)
	local name = u.attr.name and jid.nodeprep(u.attr.name)
	if not name or name == "" then
		warn(format("%s: a user without a valid name (%s): skipped", host, tostring(u.attr.name)))
		return true
	end
	local steps = {
		function() return import_account(host, name, u, warn) end,
		function() return import_roster(name, u, s, warn) end,
		function() return import_requests(host, name, u, s) end,
		function()
			local vcard = u:get_child("vCard", NS_VCARD)
			return not vcard or s.vcard:set(name, vcard)
		end,
		function() return import_private(name, u, s) end,
		function() return import_offline(host, name, u, s) end,
		function() return import_archive(host, name, u, s, warn) end,
	}
	for _, step in ipairs(steps) do
		local ok, err = step()
		if not ok then
			return nil, format("%s@%s: %s", name, host, tostring(err))
		end
	end
	return true
end

-- For starling.prosody_import, which reads Prosody's files into <user/>s.
M.stores_of = stores_of
M.import_user = import_user

function M.import(paths, opts)
	local warn = opts.warn or function() end
	local counts = { users = 0, hosts = 0, skipped_hosts = 0 }
	local seen = {}
	local host, s, failure
	local function handler(event, depth, a, b, c)
		if failure then
			return false
		end
		if event == "open" then
			if not is_pie(b) then
				if depth <= 3 and b ~= NS_PIE_MAM then
					warn(format("ignoring <%s xmlns='%s'/>", a, b))
				end
				return false
			end
			if a == "host" then
				host = c.jid and jid.nameprep(c.jid)
				if host and opts.known_host and not opts.known_host(host) then
					warn(format("host %s is not a VirtualHost here: its users are skipped", host))
					counts.skipped_hosts = counts.skipped_hosts + 1
					host = nil
				elseif host then
					if not seen[host] then
						seen[host] = true
						counts.hosts = counts.hosts + 1
					end
					s = stores_of(host)
				else
					warn(format("a host with a bad jid (%s): skipped", tostring(c.jid)))
				end
			end
			return a == "user" and host ~= nil
		elseif event == "element" then
			local ok, err = import_user(host, a, s, warn)
			if not ok then
				failure = err
				return
			end
			counts.users = counts.users + 1
			if opts.commit then
				opts.commit()
			end
		elseif event == "close" and a == "host" and is_pie(b) then
			host, s = nil, nil
		end
	end
	for _, path in ipairs(paths) do
		local ok, err = xmlfile.read(path, handler)
		if failure then
			return nil, failure
		end
		if not ok then
			return nil, err
		end
	end
	return counts
end

return M
