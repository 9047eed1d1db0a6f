-- starling.prosody_import: `starlingctl import-prosody DATA_DIR`, moving
-- a Prosody server's users here by reading Prosody's own data directory
-- (its internal storage, as mod_storage_internal and util.datamanager
-- write it), without a XEP-0227 export first. Runs in starlingctl with
-- starling.pie (whose import_user stores what is read here).
--
--   import(dir, opts)  counts, or nil, err. opts:
--                      known_host(host) -> bool, list_dir(path) -> names
--                      (nil, err when not a directory), commit() after
--                      each user, warn(msg)
--
-- Prosody's layout: DIR/<host>/<store>/<user>.dat (keyval and map stores:
-- a Lua chunk "return { ... }") and <user>.list (archive stores: one
-- "item({ ... });" per item), host and user names %xx-encoded (every
-- byte that is not a letter or digit). What is carried:
--   accounts  SCRAM-SHA-1 stored_key, server_key (hex), salt,
--             iteration_count: the same credentials, so users keep their
--             passwords; a plain "password" (internal_plain) too
--   roster    items (subscription, ask, name, groups), pending requests
--   vcard     the vCard (mod_vcard)
--   private   private XML (mod_private: "name:xmlns" -> element)
--   offline   offline messages (archive "offline")
--   archive   the message archive (mod_mam, archive_store "archive")
--   pep       PEP nodes (store "pep": node -> { config, affiliations,
--             subscribers }) and their items (archive "pep_<node>": the
--             payload, its id as key, the publisher as with): OMEMO keys,
--             avatars, nickname, bookmarks, in util.pubsub's stores
-- Stanzas are kept as util.stanza's preserialize writes them: tables of
-- name, attr and children (strings are text).
--
-- The data is read as Lua, as Prosody reads it: each file is a chunk run
-- with an empty environment (no functions but item() for lists).

local pie = require "starling.pie"
local st = require "util.stanza"
local datetime = require "util.datetime"
local jid = require "util.jid"
local pubsub = require "util.pubsub"
local id = require "util.id"

local pairs, ipairs, type, tostring, tonumber, load = pairs, ipairs, type, tostring, tonumber, load
local format, char, byte, concat, sort = string.format, string.char, string.byte,
	table.concat, table.sort
local io_open = io.open

local M = {}

local NS_PIE = "urn:xmpp:pie:0"
local NS_SCRAM = "urn:xmpp:pie:0#scram"
local NS_PIE_MAM = "urn:xmpp:pie:0#mam"
local NS_MAM = "urn:xmpp:mam:2"
local NS_FORWARD = "urn:xmpp:forward:0"
local NS_DELAY = "urn:xmpp:delay"
local NS_CLIENT = "jabber:client"

-- The stores read, and what is said about the ones that are not.
local CARRIED = { accounts = true, roster = true, vcard = true, private = true,
	offline = true, archive = true, pep = true }
local NOT_CARRIED = {
	cron = "Prosody's own task times", smacks_h = "stream management counters",
	account_details = "Prosody's account metadata", lastlog = "mod_lastlog's record",
}

local function decode(s)
	return (s:gsub("%%(%x%x)", function(h) return char(tonumber(h, 16)) end))
end

local function hex_decode(s)
	if type(s) ~= "string" or #s % 2 ~= 0 or s:find("[^%x]") then
		return nil
	end
	return (s:gsub("%x%x", function(h) return char(tonumber(h, 16)) end))
end

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = byte(s, i, i + 2)
		local n = a * 65536 + (b or 0) * 256 + (c or 0)
		local quad = {}
		for k = 3, 0, -1 do
			local v = (n >> (6 * k)) & 63
			quad[#quad + 1] = B64:sub(v + 1, v + 1)
		end
		if not b then
			quad[3], quad[4] = "=", "="
		elseif not c then
			quad[4] = "="
		end
		out[#out + 1] = concat(quad)
	end
	return concat(out)
end

-- A file of Prosody's store as Lua: the value a .dat returns, or the
-- items of a .list. nil, err when unreadable.
local function read_chunk(path, env)
	local f, err = io_open(path, "rb")
	if not f then
		return nil, err
	end
	local text = f:read("a")
	f:close()
	local chunk, perr = load(text, "=" .. path, "t", env)
	if not chunk then
		return nil, perr
	end
	local ok, value = pcall(chunk)
	if not ok then
		return nil, path .. ": " .. tostring(value)
	end
	return value
end

local function read_dat(path)
	local v, err = read_chunk(path, {})
	if v == nil and err then
		return nil, err
	end
	if type(v) ~= "table" then
		return nil, path .. ": not a table"
	end
	return v
end

local function read_list(path)
	local items = {}
	local ok, err = read_chunk(path, { item = function(i) items[#items + 1] = i end })
	if ok == nil and err then
		return nil, err
	end
	return items
end

-- A stanza from util.stanza's preserialized form, children in order;
-- top replaces the top element's attributes of the same names (false
-- drops one).
local function to_stanza(t, top)
	if type(t) ~= "table" or type(t.name) ~= "string" then
		return nil
	end
	local attr = {}
	for k, v in pairs(t.attr or {}) do
		if type(k) == "string" and type(v) == "string" then
			attr[k] = v
		end
	end
	for k, v in pairs(top or {}) do
		attr[k] = v or nil
	end
	local s = st.stanza(t.name, attr)
	for _, child in ipairs(t) do
		if type(child) == "string" then
			s:text(child)
		else
			local c = to_stanza(child)
			if c then
				s:add_child(c)
			end
		end
	end
	return s
end

-- --- one user's stores into a XEP-0227 <user/> for pie.import_user ----------

local function add_account(u, acc, who, warn)
	if acc.stored_key and acc.server_key and acc.salt and acc.iteration_count then
		local sk, vk = hex_decode(acc.stored_key), hex_decode(acc.server_key)
		if not (sk and vk and #sk == 20 and #vk == 20) then
			warn(who .. ": the stored SCRAM keys are not SHA-1 keys: no account made")
			return false
		end
		u:tag("scram-credentials", { xmlns = NS_SCRAM, mechanism = "SCRAM-SHA-1" })
			:text_tag("iter-count", tostring(acc.iteration_count))
			:text_tag("salt", base64(tostring(acc.salt)))
			:text_tag("server-key", base64(vk))
			:text_tag("stored-key", base64(sk)):up()
		return true
	elseif type(acc.password) == "string" then
		u.attr.password = acc.password	-- internal_plain
		return true
	end
	warn(who .. ": no credentials Starling can use: no account made")
	return false
end

-- The string keys of t, sorted (an import is the same every time).
local function sorted_names(t)
	local names = {}
	for k in pairs(t) do
		if type(k) == "string" then
			names[#names + 1] = k
		end
	end
	sort(names)
	return names
end

local function add_roster(u, roster, me)
	local meta = roster[false] or {}
	local q = u:tag("query", { xmlns = "jabber:iq:roster",
		ver = tostring(meta.version or 0) })
	local contacts = sorted_names(roster)
	for _, contact in ipairs(contacts) do
		local item = roster[contact]
		q:tag("item", { jid = contact, name = item.name,
			subscription = item.subscription or "none",
			ask = item.ask == "subscribe" and "subscribe" or nil,
			approved = item.approved and "true" or nil })
		for _, g in ipairs(sorted_names(item.groups or {})) do
			q:text_tag("group", g)
		end
		q:up()
	end
	u:up()
	local n = #contacts
	for from in pairs(meta.pending or {}) do
		u:tag("presence", { xmlns = NS_CLIENT, type = "subscribe", from = from, to = me }):up()
	end
	return n
end

local function add_private(u, private)
	local q = u:tag("query", { xmlns = "jabber:iq:private" })
	local n = 0
	for _, el in pairs(private) do
		local s = to_stanza(el)
		if s then
			q:add_child(s)
			n = n + 1
		end
	end
	u:up()
	return n
end

-- An item of an archive: its stanza (in jabber:client, without the
-- "stamp" Prosody adds), and when (seconds).
local ARCHIVED = { xmlns = NS_CLIENT, stamp = false }
local function archived(item)
	local when = tonumber(item.when) or (type(item.attr) == "table" and item.attr.stamp
		and datetime.parse(item.attr.stamp))
	return to_stanza(item, ARCHIVED), when
end

local function add_offline(u, items, host)
	local om = u:tag("offline-messages", { xmlns = NS_PIE })
	local n = 0
	for _, item in ipairs(items) do
		local m, when = archived(item)
		if m and m.name == "message" then
			if not m:get_child("delay", NS_DELAY) then
				m:tag("delay", { xmlns = NS_DELAY, from = host,
					stamp = datetime.datetime(when) }):text("Offline Storage"):up()
			end
			om:add_child(m)
			n = n + 1
		end
	end
	u:up()
	return n
end

local function add_archive(u, items)
	local ar = u:tag("archive", { xmlns = NS_PIE_MAM })
	local n, last = 0, nil
	for _, item in ipairs(items) do
		local m, when = archived(item)
		if m and m.name == "message" and when then
			-- Prosody keeps whole seconds and the file's order; Starling
			-- orders by time: a burst in one second is spread a
			-- millisecond apart, in the file's order.
			if last and when <= last then
				when = last + 0.001
			end
			last = when
			ar:tag("result", { xmlns = NS_MAM, id = item.key })
				:tag("forwarded", { xmlns = NS_FORWARD })
					:tag("delay", { xmlns = NS_DELAY, stamp = datetime.datetime(when) }):up()
					:add_child(m)
				:up()
			:up()
			n = n + 1
		end
	end
	u:up()
	return n
end

-- --- the directory ----------------------------------------------------------

-- user -> { store -> path } of a host directory, and the stores skipped.
local function user_files(hdir, list_dir, counts, warn)
	local users = {}
	for _, store in ipairs(list_dir(hdir) or {}) do
		local files = list_dir(hdir .. "/" .. store)
		local name = decode(store)
		if files and (CARRIED[name] or name:match("^pep_.")) then
			for _, f in ipairs(files) do
				local user, ext = f:match("^(.+)%.(%a+)$")
				if user and (ext == "dat" or ext == "list") then
					user = decode(user)
					users[user] = users[user] or {}
					users[user][name .. "." .. ext] = hdir .. "/" .. store .. "/" .. f
				end
			end
		elseif files and #files > 0 then
			local why = NOT_CARRIED[name] or "a store Starling does not know"
			counts.skipped[name] = (counts.skipped[name] or 0) + #files
			if counts.skipped[name] == #files then
				warn(format("%s: store '%s' not carried: %s", hdir, name, why))
			end
		end
	end
	return users
end

-- Prosody's node config keys are util.pubsub's (both are XEP-0060's field
-- names without "pubsub#"); values of the wrong type are left out.
local function pep_config(service, config)
	local out = service:default_config()
	for _, f in ipairs(pubsub.CONFIG) do
		local v = type(config) == "table" and config[f.key]
		local d = out[f.key]
		if v ~= nil and v ~= false or (v == false and type(d) == "boolean") then
			if type(v) == type(d) or d == nil or (f.key == "max_items" and v == "max") then
				out[f.key] = v
			end
		end
	end
	return out
end

-- The account's PEP nodes and items, through util.pubsub as mod_pep keeps
-- them: each item published again in the file's order.
local function import_pep(name, host, load_dat, load_list, s, counts, warn)
	local nodes = load_dat("pep")
	if not nodes then
		return true
	end
	local bare = name .. "@" .. host
	local service = pubsub.new({ nodes = s.pep_nodes, items = s.pep_items, owner = name,
		jid = bare, owner_jid = bare, max_items = pubsub.PEP_MAX_ITEMS,
		defaults = pubsub.PEP_DEFAULTS })
	local names = {}
	for node in pairs(nodes) do
		if type(node) == "string" then
			names[#names + 1] = node
		end
	end
	sort(names)
	for _, node in ipairs(names) do
		local n = nodes[node]
		local record, err = service:create(node, bare, pep_config(service, n.config))
		if not record then
			warn(format("%s: PEP node %s: %s", bare, node, tostring(err and err.condition)))
		else
			for j, aff in pairs(type(n.affiliations) == "table" and n.affiliations or {}) do
				if type(j) == "string" and pubsub.AFFILIATIONS[aff] then
					record.affiliations[j] = aff
				end
			end
			for j in pairs(type(n.subscribers) == "table" and n.subscribers or {}) do
				if type(j) == "string" then
					record.subscriptions[j] = { subid = id.new(), deliver = true }
				end
			end
			local ok, serr = service:save_node(node, record)
			if not ok then
				return nil, format("%s: PEP node %s: %s", bare, node, tostring(serr.condition))
			end
			counts.pep_nodes = counts.pep_nodes + 1
			for _, item in ipairs(load_list("pep_" .. node) or {}) do
				local payload = to_stanza(item.value or item, { stamp = false })
				if payload and type(item.key) == "string" then
					local el = st.stanza("item", { id = item.key }):add_child(payload)
					local stored, perr = service:publish(node, record, el,
						type(item.with) == "string" and item.with or bare)
					if not stored then
						return nil, format("%s: PEP item %s: %s", bare, item.key,
							tostring(perr.condition))
					end
					counts.pep_items = counts.pep_items + 1
				end
			end
		end
	end
	return true
end

local function import_user(host, name, files, s, counts, warn)
	local who = name .. "@" .. host
	local u = st.stanza("user", { xmlns = NS_PIE, name = name })
	-- A store of the user's, read by read (read_dat or read_list) from
	-- its file ending in ext; nil when it is not there or cannot be read.
	local function load_store(store, ext, read)
		local path = files[store .. ext]
		if not path then
			return nil
		end
		local v, err = read(path)
		if not v then
			warn(who .. ": " .. tostring(err) .. ": skipped")
		end
		return v
	end
	local function load_dat(store)
		return load_store(store, ".dat", read_dat)
	end
	local function load_list(store)
		return load_store(store, ".list", read_list)
	end
	local acc = load_dat("accounts")
	if acc and add_account(u, acc, who, warn) then
		counts.accounts = counts.accounts + 1
	end
	local roster = load_dat("roster")
	if roster then
		counts.contacts = counts.contacts + add_roster(u, roster, who)
	end
	local vcard = to_stanza(load_dat("vcard"))
	if vcard then
		u:add_child(vcard)
		counts.vcards = counts.vcards + 1
	end
	local private = load_dat("private")
	if private then
		counts.private = counts.private + add_private(u, private)
	end
	local offline = load_list("offline")
	if offline then
		counts.offline = counts.offline + add_offline(u, offline, host)
	end
	local archive = load_list("archive")
	if archive then
		counts.archive = counts.archive + add_archive(u, archive)
	end
	local ok, err = pie.import_user(host, u, s, warn)
	if not ok then
		return nil, err
	end
	return import_pep(name, host, load_dat, load_list, s, counts, warn)
end

function M.import(dir, opts)
	local warn = opts.warn or function() end
	local list_dir = opts.list_dir
	local counts = { hosts = 0, users = 0, accounts = 0, contacts = 0, vcards = 0,
		private = 0, offline = 0, archive = 0, pep_nodes = 0, pep_items = 0, skipped = {},
		skipped_hosts = 0 }
	local hosts, lerr = list_dir(dir)
	if not hosts then
		return nil, format("%s: %s", dir, tostring(lerr))
	end
	sort(hosts)
	for _, hname in ipairs(hosts) do
		local hdir = dir .. "/" .. hname
		local host = jid.nameprep(decode(hname))
		if list_dir(hdir) and host and hname ~= "_global" then
			if opts.known_host and not opts.known_host(host) then
				warn(format("host %s is not a VirtualHost here: its users are skipped", host))
				counts.skipped_hosts = counts.skipped_hosts + 1
			else
				counts.hosts = counts.hosts + 1
				local s = pie.stores_of(host)
				local users = user_files(hdir, list_dir, counts, warn)
				for _, user in ipairs(sorted_names(users)) do
					local ok, ierr = import_user(host, user, users[user], s, counts, warn)
					if not ok then
						return nil, ierr
					end
					counts.users = counts.users + 1
					if opts.commit then
						opts.commit()
					end
				end
			end
		end
	end
	return counts
end

return M
