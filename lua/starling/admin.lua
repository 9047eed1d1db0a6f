-- starling.admin: the commands of the administration socket (core/admin.c)
-- and of SIGHUP. docs/ADMIN.md is the operator's guide.
--
-- handle(ctx, line) takes one request line (words separated by spaces,
-- each percent-encoded) and returns a status ("ok", "error", "more") and
-- the answer's text. ctx is a table kept per admin connection (the
-- shell's environment and unfinished input live there).
--
-- Words used here:
--   report   the lines an answer is made of, joined with newlines
--   reload   re-reading the config and applying the difference: TLS
--            contexts, log settings, c2s limits, hosts added or removed,
--            modules loaded or unloaded, then "config-reloaded" events

local core = require "starling.core"
local server = require "starling.server"
local config = require "starling.config"
local mm = require "starling.modulemanager"
local api = require "starling.module_api"
local jid_util = require "util.jid"

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local setmetatable, getmetatable, load, xpcall = setmetatable, getmetatable, load, xpcall
local collectgarbage = collectgarbage
local format, char, concat, sort, pack = string.format, string.char, table.concat, table.sort, table.pack
local floor, max, math_type = math.floor, math.max, math.type
local os_date, os_time = os.date, os.time
local co_create, co_resume, co_status = coroutine.create, coroutine.resume, coroutine.status
local debug_sethook, debug_traceback = debug.sethook, debug.traceback
local G = _G

local M = {}

-- Seconds a shell evaluation may run before it is stopped (the whole
-- server waits while it runs).
M.shell_time_limit = 3

-- --- small helpers -----------------------------------------------------------------

local function decode(word)
	return (word:gsub("%%(%x%x)", function(h)
		return char(tonumber(h, 16))
	end))
end

local function split_words(line)
	local words = {}
	for w in line:gmatch("[^ ]+") do
		words[#words + 1] = decode(w)
	end
	return words
end

local function text(lines)
	if #lines == 0 then
		return ""
	end
	return concat(lines, "\n") .. "\n"
end

-- Keys sorted: integers first, in order, then the others by name.
local function sorted_keys(t)
	local keys = {}
	for k in pairs(t) do
		keys[#keys + 1] = k
	end
	sort(keys, function(a, b)
		local ia, ib = math_type(a) == "integer", math_type(b) == "integer"
		if ia ~= ib then
			return ia
		elseif ia then
			return a < b
		end
		return tostring(a) < tostring(b)
	end)
	return keys
end

local function deep_equal(a, b, depth)
	if a == b then
		return true
	end
	if type(a) ~= "table" or type(b) ~= "table" or (depth or 0) > 20 then
		return false
	end
	for k, v in pairs(a) do
		if not deep_equal(v, b[k], (depth or 0) + 1) then
			return false
		end
	end
	for k in pairs(b) do
		if a[k] == nil then
			return false
		end
	end
	return true
end

local function duration(secs)
	secs = floor(secs)
	local d, h, m, s = secs // 86400, secs % 86400 // 3600, secs % 3600 // 60, secs % 60
	if d > 0 then
		return format("%dd %dh %dm %ds", d, h, m, s)
	elseif h > 0 then
		return format("%dh %dm %ds", h, m, s)
	elseif m > 0 then
		return format("%dm %ds", m, s)
	end
	return format("%ds", s)
end

local function mib(bytes)
	return format("%.1f MiB", bytes / (1024 * 1024))
end

local function host_names()
	local names = {}
	for _, h in ipairs(server.hosts()) do
		names[#names + 1] = h.name
	end
	sort(names)
	return names
end

local function local_hosts()
	local names = {}
	for _, h in ipairs(server.hosts()) do
		if h.type == "local" then
			names[#names + 1] = h.name
		end
	end
	sort(names)
	return names
end

local function is_host(name)
	for _, h in ipairs(server.hosts()) do
		if h.name == name then
			return true
		end
	end
	return name == "*"
end

-- --- status -------------------------------------------------------------------------

-- One line on the storage's health (server.storage()).
local function storage_line(st)
	if st.ok then
		return "storage: ok" .. (st.failures > 0 and format(
			" (failed %d times; %d writes refused, %d batches lost)",
			st.failures, st.refused, st.lost) or "")
	end
	return format("storage: FAILING since %s (%s: %s); %d writes refused, %d batches lost",
		os_date("!%Y-%m-%dT%H:%M:%SZ", floor(st.since)), st.why, st.error, st.refused, st.lost)
end

-- One line on the loop's iterations (server.loop()): how many, the mean
-- and the longest of the last minute.
local function loop_line(l)
	return format("loop: %d iterations, mean %.3f ms, longest %.1f ms in the last minute",
		l.iterations, l.iterations > 0 and l.busy * 1e3 / l.iterations or 0,
		l.longest_60s * 1e3)
end

local function cmd_status()
	local c = server.counts()
	local rss = require("starling.metrics").resident()
	local lines = {
		"version: " .. core.version,
		format("uptime: %s (%d s)", duration(core.uptime()), floor(core.uptime())),
		"hosts: " .. concat(host_names(), ", "),
		format("connections: %d", c.connections),
		format("websocket connections: %d", c.websocket),
		format("bosh sessions: %d", c.bosh),
		format("authenticated: %d", c.authenticated),
		format("sessions: %d", c.bound),
		format("hibernating: %d", c.hibernating),
		format("s2s streams: %d incoming, %d outgoing", c.s2s_in, c.s2s_out),
		format("components: %d connected", c.components),
		format("listeners: %d", c.listeners),
		"memory: " .. (rss and mib(rss) .. " resident" or "unknown"),
		"lua memory: " .. mib(collectgarbage("count") * 1024),
		format("hook errors: %d", c.hook_errors),
		loop_line(server.loop()),
		storage_line(server.storage()),
	}
	-- each host's certificate and when it ends (option
	-- certificate_expiry_warning, days: "expires soon" under it)
	local soon = (core.config():get("*", "certificate_expiry_warning") or 14) * 86400
	local now = os_time()
	for _, cert in ipairs(server.certificates()) do
		local left = cert.not_after - now
		lines[#lines + 1] = format("certificate %s: %s, until %s (%s)%s", cert.host, cert.file,
			os_date("!%Y-%m-%d", cert.not_after),
			left < 0 and "expired" or (floor(left / 86400) .. " days left"),
			left < 0 and " EXPIRED" or left < soon and " EXPIRES SOON" or "")
	end
	local cl = server.cluster()
	if cl then
		local me = "?"
		for _, n in ipairs(cl.nodes) do
			if n.id == cl.self then me = n.name end
		end
		table.insert(lines, 6, format("node: %s, cluster node %d (pid %d), %d node links up",
			me, c.node, c.pid, c.node_links))
	elseif c.node > 0 then
		table.insert(lines, 6, format("node: worker %d (pid %d), %d node links up",
			c.node, c.pid, c.node_links))
	end
	return true, lines
end

-- --- metrics ------------------------------------------------------------------------

-- The counts in the OpenMetrics text format (starling.metrics), as the
-- /metrics page serves them.
local function cmd_metrics()
	local lines = {}
	for line in require("starling.metrics").render():gmatch("[^\n]+") do
		lines[#lines + 1] = line
	end
	return true, lines
end

-- --- reload -----------------------------------------------------------------------

-- Options only a restart applies: they hold sockets or files open.
local restart_options = {
	"interfaces", "c2s_ports", "c2s_direct_tls_ports", "data_path",
	"storage_max_size", "admin_socket", "pidfile", "component_ports",
	"component_interfaces", "workers", "cluster",
}

local function option_keys(cfg, host, keys)
	for k in pairs(cfg.global or {}) do
		keys[k] = true
	end
	local section = host ~= "*" and cfg.sections and cfg.sections[host]
	for k in pairs(section or {}) do
		keys[k] = true
	end
end

-- The options whose value on host differs between the two configs.
local function changed_options(old, new, host)
	local keys = {}
	option_keys(old, host, keys)
	option_keys(new, host, keys)
	local changed = {}
	for _, k in ipairs(sorted_keys(keys)) do
		if not deep_equal(old:get(host, k), new:get(host, k)) then
			changed[#changed + 1] = k
		end
	end
	return changed
end

local function host_types(cfg)
	local types = {}
	for _, h in ipairs(cfg.hosts or {}) do
		types[h.name] = h.type or "local"
	end
	return types
end

local function apply_hosts(old, new, lines)
	local before, after = host_types(old), host_types(new)
	for _, name in ipairs(sorted_keys(before)) do
		if after[name] ~= before[name] then
			local n = server.close_host(name, "host-gone", "this host was removed from the server")
			mm.unload_host(name)
			local ok, err = server.host_remove(name)
			if ok then
				lines[#lines + 1] = format("host removed: %s (%d streams closed)", name, n)
			else
				lines[#lines + 1] = format("host %s: cannot remove it: %s", name, err)
			end
		end
	end
	for _, h in ipairs(new.hosts or {}) do
		if before[h.name] ~= after[h.name] then
			server.host_add(h.name, h.type or "local", h.module)
			lines[#lines + 1] = "host added: " .. h.name
		end
	end
end

local function fire_reloaded(old, new)
	for _, h in ipairs(new.hosts or {}) do
		if core.is_local_host(h.name) then
			core.fire(h.name, "config-reloaded", { host = h.name, config = new,
				old_config = old, changed = changed_options(old, new, h.name) })
		end
	end
	core.fire("*", "config-reloaded", { host = "*", config = new, old_config = old,
		changed = changed_options(old, new, "*") })
end

-- Re-reads the config file and applies the difference. Returns ok (false
-- when something failed), the report lines and whether the new config was
-- applied. Nothing changes when the file does not load or a certificate is
-- unusable.
function M.reload()
	local old = core.config()
	local path = old and old.path
	if not path then
		return false, { "no config loaded" }
	end
	local new, err = config.load(path)
	if not new then
		return false, { "config " .. path .. ": " .. tostring(err), "nothing was changed" }
	end
	local aok, aerr = server.check_host_auth(new)
	if not aok then
		return false, { tostring(aerr), "nothing was changed" }
	end
	local ok, n_tls = server.load_tls(new)
	if not ok then
		return false, { "TLS: " .. tostring(n_tls), "nothing was changed" }
	end
	server.replace_config(new)
	local lines, failed = { format("config reloaded from %s", path) }, 0
	local lok, lerr = server.apply_log()
	if not lok then
		failed = failed + 1
		lines[#lines + 1] = "log: " .. lerr .. " (the previous log settings stay)"
	end
	server.read_options()
	for _, k in ipairs(restart_options) do
		if not deep_equal(old:get("*", k), new:get("*", k)) then
			lines[#lines + 1] = format("option '%s' changed: restart the server to apply it", k)
		end
	end
	apply_hosts(old, new, lines)
	local hok, herr = server.apply_host_auth()
	if not hok then
		failed = failed + 1
		lines[#lines + 1] = "authentication: " .. tostring(herr)
	end
	local report, mfailed = mm.reconcile(old, new)
	for _, l in ipairs(report) do
		lines[#lines + 1] = l
	end
	failed = failed + mfailed
	lines[#lines + 1] = format("TLS certificates reloaded (%d hosts)", n_tls)
	if not server.has_default_tls() then
		lines[#lines + 1] = "warning: no TLS certificate configured"
	end
	fire_reloaded(old, new)
	for _, l in ipairs(lines) do
		core.log(failed > 0 and "warn" or "info", "admin", "reload: " .. l)
	end
	return failed == 0, lines, true
end

-- With workers, the other workers reload too, from the same file (the
-- master passes it on): each reports to its own log.
local function cmd_reload(args)
	if #args > 0 then
		return false, { "usage: reload" }
	end
	local ok, lines, applied = M.reload()
	if applied and server.cluster() then
		-- each machine's node has its own config file: its operator
		-- reloads it there
		lines[#lines + 1] = "this node only: the cluster's other nodes reload on their own"
	elseif applied and server.counts().node > 0 then
		local sent, err = server.reload_others()
		lines[#lines + 1] = sent and "the other workers reload too (see their logs)"
			or "the other workers were not told: " .. tostring(err)
		ok = ok and sent ~= nil
	end
	return ok, lines
end

-- --- modules ------------------------------------------------------------------------

local function loaded_hosts(name)
	local out = {}
	for _, h in ipairs(host_names()) do
		if mm.is_loaded(h, name) then
			out[#out + 1] = h
		end
	end
	if mm.is_loaded("*", name) then
		out[#out + 1] = "*"
	end
	return out
end

local function module_load(name, host)
	local hosts = host and { host } or local_hosts()
	local lines, ok = {}, true
	for _, h in ipairs(hosts) do
		if mm.is_loaded(h, name) then
			if host then
				ok = false
				lines[#lines + 1] = format("%s: %s is already loaded", h, name)
			end
		else
			local mod, err = mm.load(h, name)
			if mod then
				lines[#lines + 1] = format("%s: loaded %s", h, name)
			else
				ok = false
				lines[#lines + 1] = format("%s: cannot load %s: %s", h, name, tostring(err))
			end
		end
	end
	if #lines == 0 then
		lines[1] = format("%s is already loaded on every host", name)
	end
	return ok, lines
end

local function module_unload(name, host)
	local hosts = host and { host } or loaded_hosts(name)
	if #hosts == 0 then
		return false, { format("%s is not loaded", name) }
	end
	local lines, ok = {}, true
	for _, h in ipairs(hosts) do
		local done, err = mm.unload(h, name)
		if done then
			lines[#lines + 1] = format("%s: unloaded %s", h, name)
		elseif mm.is_loaded(h, name) or host then
			ok = false
			lines[#lines + 1] = format("%s: %s", h, tostring(err))
		end
	end
	return ok, lines
end

local function module_reload(name, host)
	local hosts = host and { host } or loaded_hosts(name)
	if #hosts == 0 then
		return false, { format("%s is not loaded", name) }
	end
	local lines, ok, done = {}, true, {}
	for _, h in ipairs(hosts) do
		local mod = mm.get_module(h, name)
		if not (mod and done[mod]) then
			local new, err = mm.reload(h, name)
			if new then
				done[new] = true
				lines[#lines + 1] = format("%s: reloaded %s", h, name)
			else
				ok = false
				lines[#lines + 1] = format("%s: reload of %s failed, the loaded version "
					.. "keeps running: %s", h, name, tostring(err))
			end
		end
	end
	return ok, lines
end

local function module_list(host)
	local hosts = host and { host } or host_names()
	if not host then
		hosts[#hosts + 1] = "*"
	end
	local lines = {}
	for _, h in ipairs(hosts) do
		local names = mm.list(h)
		if host or #names > 0 then
			lines[#lines + 1] = format("%s: %s", h, #names > 0 and concat(names, " ") or "(none)")
		end
	end
	return true, lines
end

local function module_info(name, host)
	local lines = {}
	for _, h in ipairs(host and { host } or loaded_hosts(name)) do
		local mod = mm.get_module(h, name)
		local stats = mod and api.stats(mod)
		if stats then
			lines[#lines + 1] = format("%s: %s from %s: %d hooks, %d timers, %d items, %d shared",
				h, name, tostring(mod.path), stats.hooks, stats.timers, stats.items, stats.shared)
		end
	end
	if #lines == 0 then
		return false, { format("%s is not loaded%s", name, host and " on " .. host or "") }
	end
	return true, lines
end

local module_cmds = {
	load = module_load, unload = module_unload, reload = module_reload,
	info = module_info,
}

local function cmd_module(args)
	local sub, name, host = args[1], args[2], args[3]
	if sub == "list" and #args <= 2 then
		if name and not is_host(name) then
			return false, { format("unknown host '%s'", name) }
		end
		return module_list(name)
	end
	if sub == "command" and name then
		-- a module's own command (Prosody's `prosodyctl mod_NAME ARGS`)
		return mm.run_command(name, { table.unpack(args, 3) })
	end
	local fn = module_cmds[sub or ""]
	if not fn or not name or #args > 3 then
		return false, { "usage: module load|unload|reload|info NAME [HOST]; module list [HOST]" }
	end
	if host and not is_host(host) then
		return false, { format("unknown host '%s'", host) }
	end
	local ok, lines = fn(name, host)
	-- with workers, the others do the same (each reports to its log)
	if sub ~= "info" and server.counts().node > 0 then
		server.admin_others(concat({ "module", sub, name, host }, " "))
		lines[#lines + 1] = format("the other workers %s it too (see their logs)", sub)
	end
	return ok, lines
end

-- A module command another worker's operator gave (cmd_module): done
-- here too, reported to the log.
function M.from_node(node, line)
	local args = split_words(line)
	local fn = args[1] == "module" and args[2] ~= "info" and module_cmds[args[2] or ""]
	if not fn or not args[3] or (args[4] and not is_host(args[4])) then
		core.log("warn", "admin", format("worker %d sent an unknown command: %s", node, line))
		return
	end
	local ok, lines = fn(args[3], args[4])
	for _, l in ipairs(lines) do
		core.log(ok and "info" or "warn", "admin",
			format("module command of worker %d: %s", node, l))
	end
end

-- --- sessions ---------------------------------------------------------------------------

local function columns(rows)
	local widths = {}
	for _, row in ipairs(rows) do
		for i, cell in ipairs(row) do
			widths[i] = max(widths[i] or 0, #cell)
		end
	end
	local lines = {}
	for _, row in ipairs(rows) do
		local cells = {}
		for i, cell in ipairs(row) do
			cells[i] = i < #row and cell .. (" "):rep(widths[i] - #cell) or cell
		end
		lines[#lines + 1] = concat(cells, "  ")
	end
	return lines
end

local function cmd_sessions(args)
	local host = args[1]
	if #args > 1 or (host and not is_host(host)) then
		return false, { host and format("unknown host '%s'", host) or "usage: sessions [HOST]" }
	end
	local list = server.sessions(host)
	-- With workers, every worker's sessions, and the NODE (worker) of each.
	local nodes = list[1] and list[1].node ~= nil
	local rows = { { "JID", "IP", "TLS", "CIPHER", "SINCE", nodes and "NODE" or nil } }
	local n = 0
	sort(list, function(a, b)
		return (a.jid or "") < (b.jid or "")
	end)
	for _, s in ipairs(list) do
		if s.jid then
			n = n + 1
			rows[#rows + 1] = {
				s.jid,
				s.ip and format("%s:%d", s.ip, s.port) or "-",
				s.tls_version or "none",
				s.cipher or "-",
				os_date("!%Y-%m-%dT%H:%M:%SZ", floor(s.connected_at)),
				nodes and tostring(s.node) or nil,
			}
		end
	end
	local lines = columns(rows)
	lines[#lines + 1] = format("%d sessions", n)
	return true, lines
end

-- cluster status: the cluster's nodes as Redis told them a second ago
-- (name, id, link address, alive, sessions in its directory) and our link
-- to each.
local function cmd_cluster(args)
	if args[1] ~= "status" or #args > 1 then
		return false, { "usage: cluster status" }
	end
	local c = server.cluster()
	if not c then
		return false, { "not a node of a cluster (no cluster option)" }
	end
	local rows = { { "NODE", "ID", "ADDRESS", "ALIVE", "SESSIONS", "LINK" } }
	local alive, up = 0, 0
	sort(c.nodes, function(a, b) return a.id < b.id end)
	for _, n in ipairs(c.nodes) do
		alive = alive + (n.alive and 1 or 0)
		up = up + (n.link == "up" and 1 or 0)
		rows[#rows + 1] = { n.name, tostring(n.id), n.address, n.alive and "yes" or "no",
			tostring(n.sessions), n.link }
	end
	local lines = columns(rows)
	lines[#lines + 1] = format("%d nodes alive, %d links up, redis %s", alive, up,
		c.redis and "answering" or "NOT ANSWERING")
	return true, lines
end

-- s2s list | s2s close DOMAIN: the server-to-server streams.
local function cmd_s2s(args)
	if args[1] == "close" and args[2] and #args == 2 then
		local n = server.s2s_close(args[2])
		return true, { format("%d stream%s to or from %s closed", n, n == 1 and "" or "s", args[2]) }
	end
	if (args[1] and args[1] ~= "list") or #args > 1 then
		return false, { "usage: s2s list | s2s close DOMAIN" }
	end
	local rows = { { "DIRECTION", "LOCAL", "REMOTE", "STATE", "AUTH", "CERTIFICATE", "IP", "TLS", "SINCE" } }
	local n = 0
	for _, s in ipairs(server.sessions()) do
		if s.direction then
			n = n + 1
			rows[#rows + 1] = {
				s.direction, s.host or "-",
				(s.domains and s.domains ~= "" and s.domains) or s.peer or "-",
				s.authenticated and "authenticated" or "negotiating",
				s.authenticated and s.auth or "-",
				s.certificate or "-",
				s.ip and format("%s:%d", s.ip, s.port) or "-",
				s.tls_version or "none",
				os_date("!%Y-%m-%dT%H:%M:%SZ", floor(s.connected_at)),
			}
		end
	end
	local lines = columns(rows)
	lines[#lines + 1] = format("%d s2s streams", n)
	return true, lines
end

-- components: the external components (XEP-0114) connected now, and the
-- Component hosts that wait for one.
local function cmd_components(args)
	if #args > 0 then
		return false, { "usage: components" }
	end
	local rows = { { "DOMAIN", "ADDRESS", "SINCE", "IN", "OUT" } }
	local connected = {}
	local list = server.components()
	sort(list, function(a, b)
		return a.domain < b.domain or (a.domain == b.domain and a.since < b.since)
	end)
	for _, c in ipairs(list) do
		connected[c.domain] = true
		rows[#rows + 1] = { c.domain, format("%s:%d", c.ip, c.port),
			os_date("!%Y-%m-%dT%H:%M:%SZ", floor(c.since)),
			tostring(c.stanzas_in), tostring(c.stanzas_out) }
	end
	local lines = columns(rows)
	lines[#lines + 1] = format("%d component stream%s", #list, #list == 1 and "" or "s")
	local waiting = {}
	for _, h in ipairs(core.hosts()) do
		if h.type == "component" and not h.module and not connected[h.name] then
			waiting[#waiting + 1] = h.name
		end
	end
	sort(waiting)
	if #waiting > 0 then
		lines[#lines + 1] = "not connected: " .. concat(waiting, ", ")
	end
	return true, lines
end

-- Closes the sessions of target (a full JID, or all of a bare JID's).
local function kick(target, reason)
	reason = reason or "kicked by the administrator"
	local n = server.kick(target, "policy-violation", reason)
	if n == 0 then
		return false, { "no session of " .. target }
	end
	core.log("info", "admin", format("kicked %d session(s) of %s: %s", n, target, reason))
	return true, { format("kicked %d session(s) of %s", n, target) }
end

local function cmd_kick(args)
	local target = args[1] and jid_util.prep(args[1])
	if not target then
		return false, { "usage: kick JID [REASON]" }
	end
	return kick(target, #args > 1 and concat(args, " ", 2) or nil)
end

-- --- users ---------------------------------------------------------------------------------

local function parse_user(jid)
	local node, host, resource = jid_util.prepped_split(jid or "")
	if not node or resource or not host then
		return nil, format("'%s' is not a user JID (user@host)", tostring(jid))
	end
	for _, h in ipairs(local_hosts()) do
		if h == host then
			return node, host
		end
	end
	return nil, format("host '%s' is not a VirtualHost of this server", host)
end

local function user_create(node, host, password)
	if core.user_exists(node, host) then
		return false, { format("user %s@%s already exists", node, host) }
	end
	local ok, err = core.user_set_password(node, host, password)
	if not ok then
		return false, { "cannot create the account: " .. tostring(err) }
	end
	core.fire(host, "user-created", { username = node, host = host })
	return true, { format("created %s@%s", node, host) }
end

local function user_password(node, host, password)
	if not core.user_exists(node, host) then
		return false, { format("no such user: %s@%s", node, host) }
	end
	local ok, err = core.user_set_password(node, host, password)
	if not ok then
		return false, { "cannot change the password: " .. tostring(err) }
	end
	return true, { format("password of %s@%s changed", node, host) }
end

local function user_delete(node, host)
	if not core.user_exists(node, host) then
		return false, { format("no such user: %s@%s", node, host) }
	end
	local ok, err = core.user_delete(node, host)
	if not ok then
		return false, { "cannot delete the account: " .. tostring(err) }
	end
	core.fire(host, "user-deleted", { username = node, host = host })
	local n = server.kick(node .. "@" .. host, "not-authorized", "the account was removed")
	return true, { format("deleted %s@%s (%d sessions closed)", node, host, n) }
end

local function user_revoke_tokens(node, host)
	if not core.user_exists(node, host) then
		return false, { format("no such user: %s@%s", node, host) }
	end
	local n, err = server.revoke_tokens(node, host)
	if not n then
		return false, { "cannot revoke the tokens: " .. tostring(err) }
	end
	return true, { format("revoked %d login tokens of %s@%s", n, node, host) }
end

local function cmd_user(args)
	local sub = args[1]
	local needs_pw = sub == "create" or sub == "password"
	if not (needs_pw or sub == "delete" or sub == "revoke-tokens")
	   or #args ~= (needs_pw and 3 or 2) then
		return false, { "usage: user create|password JID PASSWORD; user delete|revoke-tokens JID" }
	end
	local node, host = parse_user(args[2])
	if not node then
		return false, { host }
	end
	if needs_pw and args[3] == "" then
		return false, { "empty passwords are not allowed" }
	end
	local ok, lines
	if sub == "create" then
		ok, lines = user_create(node, host, args[3])
	elseif sub == "password" then
		ok, lines = user_password(node, host, args[3])
	elseif sub == "revoke-tokens" then
		ok, lines = user_revoke_tokens(node, host)
	else
		ok, lines = user_delete(node, host)
	end
	server.commit()
	return ok, lines
end

-- --- invites ------------------------------------------------------------------------------

-- invite HOST [USERNAME]: a link to register on HOST (the username
-- reserved when given); invite JID: a link that makes its holder JID's
-- contact, and lets them register on JID's host. Needs mod_invites.
local function cmd_invite(args)
	if #args < 1 or #args > 2 then
		return false, { "usage: invite HOST [USERNAME] | invite JID" }
	end
	local node, host = jid_util.prepped_split(args[1])
	if not host or (node and #args > 1) then
		return false, { "usage: invite HOST [USERNAME] | invite JID" }
	end
	local mod = mm.get_module(host, "invites")
	if not mod or not mod.create then
		return false, { format("mod_invites is not loaded on %s", host) }
	end
	local token, record
	if node then
		if not core.user_exists(node, host) then
			return false, { format("no such user: %s@%s", node, host) }
		end
		token, record = mod.create("roster", { inviter = node .. "@" .. host, ibr = true })
	else
		local username = args[2] and jid_util.nodeprep(args[2])
		if args[2] and (not username or username == "") then
			return false, { format("'%s' is not a valid username", args[2]) }
		end
		if username and core.user_exists(username, host) then
			return false, { format("user %s@%s already exists", username, host) }
		end
		token, record = mod.create("register", { username = username })
	end
	if not token then
		return false, { "cannot store the invite: " .. tostring(record) }
	end
	server.commit()
	return true, { mod.uri(token, record),
		"expires " .. os_date("!%Y-%m-%dT%H:%M:%SZ", record.expires) }
end

-- --- log -----------------------------------------------------------------------------------

local function cmd_log(args)
	if args[1] ~= "reopen" or #args ~= 1 then
		return false, { "usage: log reopen" }
	end
	local ok, err = server.reopen_log()
	if not ok then
		return false, { err }
	end
	return true, { "log reopened" }
end

-- --- shell -----------------------------------------------------------------------------------

local function repr(v, depth, seen)
	if type(v) == "string" then
		return format("%q", v)
	elseif type(v) ~= "table" or depth > 2 or seen[v] or getmetatable(v) ~= nil then
		return tostring(v)
	end
	seen[v] = true
	local parts, n, len = {}, 0, #v
	for _, k in ipairs(sorted_keys(v)) do
		n = n + 1
		if n > 50 then
			parts[#parts + 1] = "..."
			break
		end
		local value = repr(v[k], depth + 1, seen)
		if math_type(k) == "integer" and k >= 1 and k <= len then
			parts[#parts + 1] = value
		else
			local key = type(k) == "string" and k:match("^[%a_][%w_]*$") and k
				or "[" .. repr(k, depth + 1, seen) .. "]"
			parts[#parts + 1] = key .. " = " .. value
		end
	end
	seen[v] = nil
	return "{ " .. concat(parts, ", ") .. (n > 0 and " }" or "}")
end

local function shell_env(ctx)
	if ctx.env then
		return ctx.env
	end
	local safe_os = {}
	for k, v in pairs(G.os) do
		safe_os[k] = v
	end
	safe_os.exit = function()
		error("os.exit is not available in the shell (use SIGTERM to stop the server)", 2)
	end
	local env = setmetatable({
		os = safe_os, core = core, server = server, modules = mm, module_api = api,
		config = function() return core.config() end,
		admin = M, prosody = require("starling.prosody").prosody,
	}, { __index = G })
	ctx.env = env
	return env
end

-- Runs chunk in a coroutine stopped after the time limit. ok, results or
-- false, error text.
local function run_limited(chunk)
	local co = co_create(chunk)
	local deadline = core.uptime() + M.shell_time_limit
	debug_sethook(co, function()
		if core.uptime() > deadline then
			error(format("stopped after %d seconds", M.shell_time_limit), 0)
		end
	end, "", 10000)
	local res = pack(co_resume(co))
	if not res[1] then
		-- The traceback of the shell's code, without the shell's own frames.
		local lines = {}
		for l in debug_traceback(co, tostring(res[2])):gmatch("[^\n]+") do
			if not (l:find("starling/admin.lua", 1, true) or l:find("in function 'error'", 1, true)
				or l:find("(...tail calls...)", 1, true)) then
				lines[#lines + 1] = l
			end
		end
		if lines[#lines] == "stack traceback:" then
			lines[#lines] = nil
		end
		return false, concat(lines, "\n")
	end
	if co_status(co) ~= "dead" then
		return false, "the code yielded: the shell cannot wait"
	end
	return true, res
end

local function cmd_eval(ctx, code)
	local env = shell_env(ctx)
	local src = ctx.pending and (ctx.pending .. "\n" .. code) or code
	local chunk, err = load("return " .. src, "=shell", "t", env)
	if not chunk then
		chunk, err = load(src, "=shell", "t", env)
	end
	if not chunk then
		if err:sub(-5) == "<eof>" then
			ctx.pending = src
			return "more", ""
		end
		ctx.pending = nil
		return "error", err .. "\n"
	end
	ctx.pending = nil
	local out = {}
	env.print = function(...)
		out[#out + 1] = mm.print_text(...)
	end
	local ok, res = run_limited(chunk)
	if not ok then
		out[#out + 1] = res
		return "error", text(out)
	end
	if res.n > 1 then
		local parts = {}
		for i = 2, res.n do
			parts[#parts + 1] = repr(res[i], 0, {})
		end
		out[#out + 1] = concat(parts, "\t")
	end
	return "ok", text(out)
end

-- --- dispatch ----------------------------------------------------------------------------------

-- What the admin socket's commands do, for the other front ends
-- (mod_admin_adhoc: XEP-0133 from an admin's client). Each returns ok and
-- the lines of its report, as the commands do; the users are already
-- prepared (parse_user).
M.ops = {
	parse_user = parse_user,
	user_create = user_create,
	user_password = user_password,
	user_delete = user_delete,
	kick = kick,
	module_reload = module_reload,
	status = cmd_status,
}

local help = {
	"status                          version, uptime, hosts, counts, memory, storage",
	"metrics                         the counts in the Prometheus text format",
	"invite HOST [USERNAME] | invite JID   an invitation link (mod_invites)",
	"reload                          re-read the config and apply the difference",
	"module list [HOST]              loaded modules",
	"module load|unload|reload|info NAME [HOST]",
	"module command NAME [ARGS]      a module's own command (also: mod_NAME ARGS)",
	"sessions [HOST]                 bound sessions: JID, IP, TLS, cipher, since",
	"kick JID [REASON]               close a session (full JID) or all of an account's",
	"s2s list                        server-to-server streams: direction, domains, auth",
	"s2s close DOMAIN                close every stream to and from DOMAIN",
	"components                      external components (XEP-0114): domain, address, since",
	"user create|password JID PASSWORD",
	"user delete JID                 (closes the account's sessions)",
	"user revoke-tokens JID          end the account's FAST login tokens",
	"log reopen                      open the log file again (after rotation)",
	"eval CODE                       run Lua in the server (the shell)",
	"cluster status                  the cluster's nodes, their sessions, our links",
}

local commands = {
	status = cmd_status, metrics = cmd_metrics, reload = cmd_reload, module = cmd_module,
	sessions = cmd_sessions, kick = cmd_kick, s2s = cmd_s2s, user = cmd_user, log = cmd_log,
	invite = cmd_invite, components = cmd_components, cluster = cmd_cluster,
	help = function() return true, help end,
}

local function on_error(e)
	return debug_traceback(tostring(e), 2)
end

function M.handle(ctx, line)
	local cmd, rest = line:match("^(%S+) ?(.*)$")
	if not cmd then
		return "error", "empty request\n"
	end
	cmd = decode(cmd)
	if cmd == "eval" then
		return cmd_eval(ctx, decode(rest))
	end
	local fn = commands[cmd]
	if not fn then
		return "error", format("unknown command '%s' (try help)\n", cmd)
	end
	local res = pack(xpcall(fn, on_error, split_words(rest)))
	if not res[1] then
		core.log("error", "admin", format("command '%s' failed: %s", cmd, tostring(res[2])))
		return "error", format("command '%s' failed: %s\n", cmd, tostring(res[2]))
	end
	return res[2] and "ok" or "error", text(res[3] or {})
end

-- For tests and the shell: the same without the socket.
M.run = function(line)
	return M.handle({}, line)
end

return M
