-- starling.configcheck: what `starlingctl check` reports about a config
-- file, without starting anything.
--
-- check(path, helpers) returns a list of problems, each
-- { level = "error"|"warning", text = "..." }. helpers are C functions
-- starlingctl gives it:
--   tls(cert, key)  nil, or an error text, and a warning text (or nil)
--   is_dir(path)    whether path is a directory
--
-- Known options: the core's (the list below) plus every name the enabled
-- modules (and the Lua libraries they require) pass literally to
-- module:get_option*(). An option nothing reads is a warning, not an
-- error: a module may build option names at run time.

local config = require "starling.config"
local mm = require "starling.modulemanager"

local type, pairs, ipairs, tostring, tonumber, load = type, pairs, ipairs, tostring, tonumber, load
local format, concat, sort = string.format, table.concat, table.sort
local io_open = io.open
local package = package

local M = {}

-- Options the core and the module manager read (core/main.c, server.c,
-- modulemanager.lua, config.lua).
M.core_options = {
	"interfaces", "c2s_ports", "c2s_direct_tls_ports", "data_path", "log",
	"plugin_paths", "modules_enabled", "modules_disabled", "ssl", "admins",
	"c2s_require_encryption", "allow_unencrypted_plain_auth",
	"c2s_strict_channel_binding", "c2s_timeout", "c2s_idle_timeout",
	"c2s_stanza_size_limit", "c2s_stanza_depth_limit",
	"c2s_stanza_attribute_limit", "c2s_send_queue_limit",
	"c2s_max_auth_failures", "max_resources_per_account",
	"c2s_max_unauthenticated_per_ip", "c2s_auth_failure_delay",
	"sasl2_fast_token_ttl", "sasl2_fast_token_min_ttl", "fast_token_expiry",
	"csi_max_held_bytes", "limits", "storage_max_size", "pidfile",
	"archive_index_delay", "lua_gc_mode", "certificates", "certificate_expiry_warning",
	"workers",
	"admin_socket", "component_module",
	"authentication", "insecure_authentication_on_purpose",
	-- server-to-server streams (core/main.c, core/xmpp/s2s*.c)
	"s2s_ports", "s2s_direct_tls_ports", "s2s_interfaces", "s2s_require_encryption", "s2s_timeout",
	"s2s_connect_timeout", "s2s_stanza_size_limit", "s2s_stanza_depth_limit",
	"s2s_stanza_attribute_limit", "s2s_send_queue_limit",
	"s2s_parser_release_after", "s2s_max_unauthenticated_per_ip",
	"s2s_queue_max", "s2s_secure_auth", "s2s_secure_domains",
	"s2s_insecure_domains",
	-- name resolution for federation (core/net/dns.c, core/server.c)
	"s2s_static_hosts", "dns_resolver", "dns_hosts_file", "dns_trust_anchor",
	"dns_timeout",
	-- external components, XEP-0114 (core/server.c, core/xmpp/component.c)
	"component_ports", "component_interfaces", "component_secret",
	"component_max_connections", "component_queue", "component_queue_timeout",
	"component_stanza_size_limit", "component_send_queue_limit", "name",
}

local log_levels = { debug = true, info = true, warn = true, warning = true, error = true }

local function dirname(path)
	return path:match("^(.*)/[^/]*$") or "."
end

local function read_file(path)
	local f = io_open(path, "rb")
	if not f then
		return nil
	end
	local data = f:read("a")
	f:close()
	return data
end

-- Option names read literally with get_option*, and what a source
-- requires and depends on.
local function scan(source, known, requires, depends)
	for name in source:gmatch("get_option[%w_]*%s*%(%s*[\"']([^\"']+)[\"']") do
		known[name] = true
	end
	for name in source:gmatch("require%s*%(?%s*[\"']([%w_%.]+)[\"']") do
		requires[name] = true
	end
	for name in source:gmatch("depends%s*%(%s*[\"']([%w_%-]+)[\"']") do
		depends[#depends + 1] = name
	end
end

-- What Prosody offers and Starling does not, for modules written for
-- Prosody (docs/MODULE_API.md, "Prosody's API"): why they cannot work.
local missing_modules = require("starling.prosody").missing_modules
local missing_libraries = {
	["net.http.server"] = "Starling's HTTP server is reached through module:provides(\"http\"), not net.http.server",
	["net.http"] = "Starling has no HTTP client",
	["net.server"] = "modules do not get sockets of their own in Starling",
	["util.async"] = "handlers cannot wait in Starling's Lua yet",
	["util.promise"] = "handlers cannot wait in Starling's Lua yet",
}

local function library_exists(name)
	if name:match("^starling%.") or package.preload[name] or package.loaded[name] then
		return true
	end
	return package.searchpath(name, package.path) ~= nil
end

-- A module that cannot work in Starling, and why, reported for the host.
local function check_prosody_needs(h, name, mreqs, depends, report)
	for _, d in ipairs(depends) do
		if missing_modules[d] then
			report("error", "host %s: module %s depends on '%s': %s", h.name, name, d,
				missing_modules[d])
		end
	end
	local list = {}
	for r in pairs(mreqs) do
		list[#list + 1] = r
	end
	table.sort(list)
	for _, r in ipairs(list) do
		if not library_exists(r) then
			report("error", "host %s: module %s needs the library '%s', which Starling does not "
				.. "provide%s", h.name, name, r,
				missing_libraries[r] and (": " .. missing_libraries[r]) or "")
		end
	end
end

-- Finds, compiles and scans the modules of one host (and their
-- dependencies).
local function check_modules(cfg, h, known, requires, seen, report)
	local queue = mm.host_modules(cfg, h)
	local i = 1
	while queue[i] do
		local name = queue[i]
		i = i + 1
		if not seen[name] then
			seen[name] = true
			local path, source = mm.find(name, cfg)
			if not path then
				report("error", "host %s: %s", h.name, source)
			else
				local chunk, err = load(source, "@" .. path, "t", {})
				if not chunk then
					report("error", "module %s: %s", name, err)
				end
				local depends, mreqs = {}, {}
				scan(source, known, mreqs, depends)
				for r in pairs(mreqs) do
					requires[r] = true
				end
				check_prosody_needs(h, name, mreqs, depends, report)
				for _, d in ipairs(depends) do
					if not missing_modules[d] then
						queue[#queue + 1] = d
					end
				end
			end
		end
	end
end

local function scan_libraries(requires, known)
	local done = {}
	local pending = true
	while pending do
		pending = false
		for name in pairs(requires) do
			if not done[name] then
				done[name] = true
				local path = package.searchpath(name, package.path)
				local source = path and read_file(path)
				if source then
					local more = {}
					scan(source, known, more, {})
					for r in pairs(more) do
						if not requires[r] then
							requires[r] = true
							pending = true
						end
					end
				end
			end
		end
	end
end

-- Levenshtein distance of a and b, at most limit + 1.
local function distance(a, b, limit)
	if math.abs(#a - #b) > limit then
		return limit + 1
	end
	local prev = {}
	for j = 0, #b do
		prev[j] = j
	end
	for i = 1, #a do
		local cur = { [0] = i }
		for j = 1, #b do
			local cost = a:byte(i) == b:byte(j) and 0 or 1
			cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
		end
		prev = cur
	end
	return prev[#b]
end

-- The known option closest to name (a typo's fix), or nil.
local function nearest(name, known)
	local best, best_d
	local limit = math.max(1, #name // 4)
	for k in pairs(known) do
		local d = distance(name, k, limit)
		if d <= limit and (not best_d or d < best_d or (d == best_d and k < best)) then
			best, best_d = k, d
		end
	end
	return best
end

local function check_unknown(cfg, known, report)
	local function each(section, where)
		local keys = {}
		for k in pairs(section) do
			keys[#keys + 1] = tostring(k)
		end
		sort(keys)
		for _, k in ipairs(keys) do
			if not known[k] then
				local near = nearest(k, known)
				report("warning", "unknown option '%s' (%s): nothing enabled reads it%s", k, where,
					near and format("; did you mean '%s'? (rename it)", near)
						or " (remove it, or enable the module that reads it)")
			end
		end
	end
	each(cfg.global, "global")
	for _, h in ipairs(cfg.hosts) do
		each(h.section or {}, "host " .. h.name)
	end
end

-- The host's files in the certificates directory, as the server finds
-- them (core/server.c find_cert, without the parent's wildcard): nil
-- when there are none.
local function certificate_files(cfg, base, host)
	local dir = cfg:get(host, "certificates") or "certs"
	if type(dir) ~= "string" then
		return nil
	end
	dir = dir:sub(1, 1) == "/" and dir or base .. "/" .. dir
	for _, pair in ipairs({ { host .. ".crt", host .. ".key" },
		{ host .. "/fullchain.pem", host .. "/privkey.pem" } }) do
		local c, k = dir .. "/" .. pair[1], dir .. "/" .. pair[2]
		local f = io_open(c, "r")
		if f then
			f:close()
			return c, k
		end
	end
	return nil
end

local function check_tls(cfg, base, helpers, report)
	local function resolve(p)
		return p:sub(1, 1) == "/" and p or base .. "/" .. p
	end
	local n = 0
	for _, h in ipairs(cfg.hosts) do
		if h.type ~= "component" then
			local ssl = cfg:get(h.name, "ssl")
			for _, f in ipairs({ "cafile", "capath" }) do
				local v = type(ssl) == "table" and ssl[f]
				if v and (type(v) ~= "string" or not io_open(resolve(v), "r")) then
					report("error", "host %s: ssl.%s %s cannot be read", h.name, f, tostring(v))
				end
			end
			local cert, key = certificate_files(cfg, base, h.name)
			if (ssl == nil or (type(ssl) == "table" and ssl.certificate == nil
				and ssl.key == nil)) and cert then
				n = n + 1
				local err, warn = helpers.tls(cert, key, h.name)
				if err then
					report("error", "host %s: %s", h.name, err)
				end
				if warn then
					report("warning", "host %s: %s", h.name, warn)
				end
			elseif ssl == nil or (type(ssl) == "table" and ssl.certificate == nil
				and ssl.key == nil) then
				report("warning", "host %s: no certificate (option ssl, or %s.crt and %s.key "
					.. "in the certificates directory: starlingctl cert import DIR puts "
					.. "them there)", h.name, h.name, h.name)
			elseif type(ssl) ~= "table" or type(ssl.certificate) ~= "string"
				or type(ssl.key) ~= "string" then
				report("error", "host %s: ssl must be { certificate = \"...\", key = \"...\" }", h.name)
			else
				n = n + 1
				local err, warn = helpers.tls(resolve(ssl.certificate), resolve(ssl.key), h.name)
				if err and err:find(" does not name ", 1, true)
					and not (h.section and h.section.ssl) then
					-- the global certificate, shared by every host: the
					-- host has none of its own
					report("warning", "host %s: %s", h.name, err)
					err = nil
				end
				if err then
					report("error", "host %s: %s", h.name, err)
				end
				if warn then
					report("warning", "host %s: %s", h.name, warn)
				end
			end
		end
	end
	return n
end

local function is_port_list(v)
	if type(v) == "number" then
		return v >= 1 and v <= 65535
	end
	if type(v) ~= "table" then
		return false
	end
	for _, p in ipairs(v) do
		local n = tonumber(p)
		if not n or n < 1 or n > 65535 or n % 1 ~= 0 then
			return false
		end
	end
	return true
end

local function check_log(v, report)
	if v == nil then
		return
	end
	if type(v) == "string" then
		return
	end
	if type(v) ~= "table" then
		report("error", "option 'log' must be a level, a destination or a table")
		return
	end
	if v.level ~= nil and not log_levels[v.level] then
		report("error", "option 'log': unknown level %s", tostring(v.level))
	end
	if v.modules ~= nil then
		if type(v.modules) ~= "table" then
			report("error", "option 'log': modules must be a table of levels")
		else
			for k, l in pairs(v.modules) do
				if not log_levels[l] then
					report("error", "option 'log': module %s: unknown level %s", tostring(k), tostring(l))
				end
			end
		end
	end
end

local function check_core_types(cfg, base, helpers, report)
	for _, k in ipairs({ "c2s_ports", "c2s_direct_tls_ports" }) do
		local v = cfg.global[k]
		if v ~= nil and not is_port_list(v) then
			report("error", "option '%s' must be a list of port numbers", k)
		end
	end
	check_log(cfg.global.log, report)
	local gc = cfg.global.lua_gc_mode
	if gc ~= nil and gc ~= "generational" and gc ~= "incremental" then
		report("error", "option 'lua_gc_mode' must be \"generational\" or \"incremental\"")
	end
	local data = cfg.global.data_path or "data"
	if type(data) ~= "string" then
		report("error", "option 'data_path' must be a string")
	else
		local dir = data:sub(1, 1) == "/" and data or base .. "/" .. data
		if not helpers.is_dir(dir) then
			report("warning", "data_path %s does not exist yet", dir)
		end
	end
	for _, dir in ipairs(mm.search_dirs(cfg)) do
		if not helpers.is_dir(dir) then
			report("warning", "module directory %s does not exist", dir)
		end
	end
end

-- Each VirtualHost's "authentication" (core/server.c reads it the same
-- way): what it is when it is not the default, and the insecure backend
-- without its flag is the error the server refuses to start with.
local function check_authentication(cfg, report)
	for _, h in ipairs(cfg.hosts) do
		if (h.type or "local") == "local" then
			local auth = cfg:get(h.name, "authentication")
			local allow_reg = cfg:get(h.name, "allow_registration")
			-- nil and "internal_hashed" (the default): nothing to say
			if auth == "anonymous" then
				report("warning", "host %s: authentication = \"anonymous\": SASL ANONYMOUS "
					.. "only, every login a temporary account removed when it ends", h.name)
				if allow_reg == true then
					report("warning", "host %s: allow_registration is ignored on an "
						.. "anonymous host (an account made there could never log in)", h.name)
				end
			elseif auth == "insecure" then
				if cfg:get(h.name, "insecure_authentication_on_purpose") == true then
					report("warning", "host %s: authentication = \"insecure\": any password "
						.. "logs in and creates its account; for tests only", h.name)
				else
					report("error", "host %s: authentication = \"insecure\" accepts any "
						.. "password and creates the account: it is for tests only; set "
						.. "insecure_authentication_on_purpose = true on the host to use it "
						.. "on purpose (the server refuses to start without it)", h.name)
				end
			elseif auth ~= nil and auth ~= "internal_hashed" then
				report("error", "host %s: option 'authentication' is %s; it must be "
					.. "\"internal_hashed\", \"anonymous\" or \"insecure\"", h.name,
					type(auth) == "string" and format("%q", auth) or tostring(auth))
			end
		end
	end
end

-- Checks the config file at path; returns the list of problems.
-- External components (a Component without a module): each needs its
-- component_secret; the numbers are counts and seconds.
local function check_components(cfg, report)
	for _, h in ipairs(cfg.hosts) do
		if h.type == "component" then
			local section = h.section or {}
			local secret = section.component_secret
			if h.module and secret ~= nil then
				report("warning", "host %s: component_secret is set, but the module %s "
					.. "serves this Component: no external component can connect", h.name,
					h.module)
			elseif not h.module and (type(secret) ~= "string" or secret == "") then
				report("error", "host %s: an external component (a Component without a "
					.. "module) needs component_secret, a string; without it none can "
					.. "connect", h.name)
			end
			for _, k in ipairs({ "component_max_connections", "component_queue",
				"component_queue_timeout" }) do
				local v = cfg:get(h.name, k)
				if v ~= nil and (math.type(v) ~= "integer" or v < 0) then
					report("error", "host %s: %s must be a whole number >= 0", h.name, k)
				end
			end
		end
	end
	local ports = cfg:get("*", "component_ports")
	for _, p in ipairs(type(ports) == "table" and ports or { ports }) do
		local n = math.tointeger(tonumber(p))
		if not n or n < 1 or n > 65535 then
			report("error", "option 'component_ports': %s is not a TCP port", tostring(p))
		end
	end
end

-- part: "config", "certs", "dns", or nil for all three. helpers also
-- has resolver and local_addresses for the DNS part (starling.dnscheck).
function M.check(path, helpers, part)
	local problems = {}
	local function report(level, fmt, ...)
		problems[#problems + 1] = { level = level, text = format(fmt, ...) }
	end
	local cfg, err = config.load(path)
	if not cfg then
		report("error", "%s", tostring(err))
		return problems
	end
	local base = dirname(path)
	if #cfg.hosts == 0 then
		report("warning", "no VirtualHost: nobody can log in")
	end
	if part == nil or part == "config" then
		local known, requires = {}, {}
		for _, k in ipairs(M.core_options) do
			known[k] = true
		end
		for _, h in ipairs(cfg.hosts) do
			check_modules(cfg, h, known, requires, {}, report)
		end
		scan_libraries(requires, known)
		check_unknown(cfg, known, report)
		check_core_types(cfg, base, helpers, report)
		check_authentication(cfg, report)
		check_components(cfg, report)
	end
	if part == nil or part == "certs" then
		check_tls(cfg, base, helpers, report)
	end
	if part == nil or part == "dns" then
		require("starling.dnscheck").check(cfg, base, helpers, report)
	end
	return problems
end

-- "error: ..." and "warning: ..." lines, then a summary; and the number
-- of errors.
function M.format(problems, path)
	local lines, errors, warnings = {}, 0, 0
	for _, p in ipairs(problems) do
		lines[#lines + 1] = p.level .. ": " .. p.text
		if p.level == "error" then
			errors = errors + 1
		else
			warnings = warnings + 1
		end
	end
	if errors == 0 then
		lines[#lines + 1] = format("%s: OK (%d warnings)", path, warnings)
	else
		lines[#lines + 1] = format("%s: %d errors, %d warnings", path, errors, warnings)
	end
	return concat(lines, "\n") .. "\n", errors
end

return M
