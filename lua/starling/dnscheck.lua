-- starling.dnscheck: the DNS part of `starlingctl check` (check dns).
--
-- For each VirtualHost, the SRV records clients and servers look up
-- (RFC 6120 3.2, XEP-0368) for the services this config offers:
--   _xmpp-client._tcp    when c2s_ports listen (the default, 5222)
--   _xmpps-client._tcp   when c2s_direct_tls_ports are set
--   _xmpp-server._tcp    when federating (s2s not in modules_disabled)
--   _xmpps-server._tcp   when federating with s2s_direct_tls_ports set
-- then each SRV target's A/AAAA: that it has some, that they are this
-- machine's (its interfaces, or the configured interfaces), and that the
-- record's port is one the server listens on. A host with neither SRV
-- records nor A/AAAA cannot be reached at all: an error. A Component is
-- reached by remote servers only, through _xmpp-server._tcp or its
-- A/AAAA: missing both is a warning (a component for local users only
-- needs none). Every finding carries its fix: the record to add or
-- change, in zone-file form.
--
-- Names are resolved with the server's own resolver settings
-- (dns_resolver, dns_hosts_file, dns_trust_anchor, dns_timeout), through
-- the resolver helper starlingctl gives (tools/ctl_dns.c).
--
-- Words:
--   service   one SRV name prefix with the ports it must point at
--   fallback  what a peer does when there is no SRV record: the host's
--             own A/AAAA on the default port (5222 or 5269); direct TLS
--             has no fallback (XEP-0368)

local type, ipairs, pairs, tostring, tonumber = type, ipairs, pairs, tostring, tonumber
local format, concat, sort = string.format, table.concat, table.sort
local math_tointeger = math.tointeger

local M = {}

local TTL = 3600

-- Names public DNS never has: RFC 6761 (localhost, .invalid, .test is
-- kept: tests and labs serve it), mDNS's .local, and single labels.
local function not_in_dns(host)
	return host == "localhost" or host:match("%.localhost$") or host:match("%.local$")
		or host:match("%.invalid$") or not host:find(".", 1, true)
		or host:match("^[%d%.]+$") or host:find(":", 1, true)
end

-- A port list option as integers; default when unset.
local function port_list(cfg, key, default)
	local v = cfg:get("*", key)
	if v == nil then
		return default
	end
	local out = {}
	for _, p in ipairs(type(v) == "table" and v or { v }) do
		local n = math_tointeger(tonumber(p))
		if n then
			out[#out + 1] = n
		end
	end
	return out
end

local function contains(list, x)
	for _, v in ipairs(list) do
		if v == x then
			return true
		end
	end
	return false
end

local function federating(cfg)
	local disabled = cfg:get("*", "modules_disabled")
	return not (type(disabled) == "table" and contains(disabled, "s2s"))
end

-- The resolver's options as the server reads them (core/server.c
-- server_apply_dns): paths relative to the config's folder.
local function resolver_options(cfg, base)
	local function path(p)
		if type(p) ~= "string" then
			return p
		end
		return p:sub(1, 1) == "/" and p or base .. "/" .. p
	end
	local r = cfg:get("*", "dns_resolver")
	return {
		resolvers = type(r) == "string" and { r } or r,
		hosts_file = path(cfg:get("*", "dns_hosts_file")),
		trust_anchor = path(cfg:get("*", "dns_trust_anchor")),
		timeout = tonumber(cfg:get("*", "dns_timeout")),
	}
end

-- The addresses a record may point at: the configured interfaces when
-- they are addresses, else every address of this machine.
local function own_addresses(cfg, key, helpers)
	local ifaces = cfg:get("*", key)
	if key ~= "interfaces" and ifaces == nil then
		ifaces = cfg:get("*", "interfaces")
	end
	local set = {}
	local specific = false
	for _, a in ipairs(type(ifaces) == "table" and ifaces or { ifaces }) do
		if a ~= "*" and a ~= "::" and a ~= "0.0.0.0" then
			set[a] = true
			specific = true
		end
	end
	if not specific then
		for _, a in ipairs(helpers.local_addresses()) do
			set[a] = true
		end
	end
	return set
end

-- The addresses of a set, sorted.
local function own_list(set)
	local list = {}
	for a in pairs(set) do
		list[#list + 1] = a
	end
	sort(list)
	return list
end

-- An address to suggest in a fix: a non-loopback one of set when there
-- is one.
local function suggested_address(set)
	local list = own_list(set)
	for _, a in ipairs(list) do
		if not a:match("^127%.") and a ~= "::1" then
			return a
		end
	end
	return list[1] or "192.0.2.1"
end

local function address_record(name, addr)
	return format("%s. %d IN %s %s", name, TTL, addr:find(":", 1, true) and "AAAA" or "A", addr)
end

local function srv_record(service, host, port, target)
	return format("%s.%s. %d IN SRV 0 5 %d %s.", service, host, TTL, port, target)
end

local function ports_text(ports)
	local t = {}
	for _, p in ipairs(ports) do
		t[#t + 1] = tostring(p)
	end
	return concat(t, ", ")
end

-- The A and AAAA of name: the addresses, and an error text when a lookup
-- failed (not when there are none).
local function addresses(probe, name, cache)
	if cache[name] then
		return cache[name].list, cache[name].err
	end
	local list, err = {}, nil
	for _, t in ipairs({ "A", "AAAA" }) do
		local a = probe:ask(name, t)
		if a.err then
			-- the resolver failing once fails again: one wait is enough
			err = format("%s lookup of %s: %s", t, name, a.err)
			break
		end
		for _, addr in ipairs(a.records) do
			list[#list + 1] = addr
		end
	end
	cache[name] = { list = list, err = err }
	return list, err
end

-- Checks one SRV target of a service; says whether it is usable.
local function check_target(ctx, svc, rec)
	local host, report, level = ctx.host, ctx.report, ctx.level
	local owner = svc.name .. "." .. host
	local list, err = addresses(ctx.probe, rec.target, ctx.cache)
	if err then
		report(level, "host %s: %s SRV points at %s, whose %s", host, owner, rec.target, err)
		return false
	end
	if #list == 0 then
		if ctx.said[rec.target] then
			return false	-- one finding per target, whatever points at it
		end
		ctx.said[rec.target] = true
		report(level, "host %s: %s SRV points at %s, which has no A or AAAA record, so "
			.. "nobody can connect through it\n  fix: add %s", host, owner, rec.target,
			address_record(rec.target, suggested_address(svc.own)))
		return false
	end
	local ok = true
	if not contains(svc.ports, rec.port) then
		report(level, "host %s: %s SRV says port %d, but the server listens for it on %s "
			.. "(%s)\n  fix: change the record to %s", host, owner, rec.port,
			ports_text(svc.ports), svc.option, srv_record(svc.name, host, svc.ports[1], rec.target))
		ok = false
	end
	local mine = false
	for _, a in ipairs(list) do
		mine = mine or svc.own[a]
	end
	if not mine then
		report("warning", "host %s: %s SRV target %s has the addresses %s, none of them "
			.. "this machine's (%s); right only when they forward port %d here\n"
			.. "  fix: point %s at this machine: %s", host, owner, rec.target,
			concat(list, ", "), ports_text(ctx.own_list(svc.own)), rec.port, rec.target,
			address_record(rec.target, suggested_address(svc.own)))
	end
	return ok
end

-- What a peer finds without SRV records: the host's own A/AAAA on the
-- default port. Reports when that does not reach this server.
local function check_fallback(ctx, svc, fix_target)
	local host = ctx.host
	local fix = srv_record(svc.name, host, svc.ports[1], fix_target)
	if svc.tls then
		-- XEP-0368: direct TLS is found through its SRV record only
		ctx.report("warning", "host %s: no %s.%s SRV record: %s are not told about direct "
			.. "TLS on port %s (%s)\n  fix: add %s", host, svc.name, host, svc.who,
			ports_text(svc.ports), svc.option, fix)
		return
	end
	if #ctx.host_addrs == 0 then
		return	-- said once for the host: no SRV and no A/AAAA
	end
	if not contains(svc.ports, svc.default) then
		ctx.report(ctx.level, "host %s: no %s.%s SRV record, and %s that fall back to %s's "
			.. "A/AAAA try port %d, where the server does not listen (%s: %s)\n  fix: add %s",
			host, svc.name, host, svc.who, host, svc.default, svc.option, ports_text(svc.ports), fix)
		return
	end
	local mine = false
	for _, a in ipairs(ctx.host_addrs) do
		mine = mine or svc.own[a]
	end
	if not mine then
		ctx.report("warning", "host %s: no %s.%s SRV record, and %s's addresses (%s) are "
			.. "not this machine's\n  fix: add %s, or point %s at this machine", host,
			svc.name, host, host, concat(ctx.host_addrs, ", "), fix, host)
	end
end

-- One service of one host. Returns whether it has SRV records, and a
-- usable target (for the fixes of the other services).
local function check_service(ctx, svc, fix_target)
	local host = ctx.host
	local owner = svc.name .. "." .. host
	local a = ctx.probe:ask(owner, "SRV")
	if a.err then
		ctx.report("error", "host %s: cannot look up %s SRV: %s", host, owner, a.err)
		return true
	end
	local recs = a.records
	if #recs == 0 then
		check_fallback(ctx, svc, fix_target)
		return false
	end
	if #recs == 1 and recs[1].target == "." then
		ctx.report(ctx.level, "host %s: %s SRV says the service is not offered here "
			.. "(target \".\"), but the server listens for it on %s (%s)\n  fix: replace "
			.. "it with %s", host, owner, ports_text(svc.ports), svc.option,
			srv_record(svc.name, host, svc.ports[1], fix_target))
		return true
	end
	local target
	for _, rec in ipairs(recs) do
		if rec.target ~= "." and check_target(ctx, svc, rec) then
			target = target or rec.target
		end
	end
	return true, target
end

-- The services a host offers, from the config.
local function services(cfg, helpers, component)
	local list = {}
	local c2s_own = own_addresses(cfg, "interfaces", helpers)
	local s2s_own = own_addresses(cfg, "s2s_interfaces", helpers)
	if not component then
		local c2s = port_list(cfg, "c2s_ports", { 5222 })
		if #c2s > 0 then
			list[#list + 1] = { name = "_xmpp-client._tcp", ports = c2s, default = 5222,
				option = "c2s_ports", who = "clients", own = c2s_own }
		end
		local c2s_tls = port_list(cfg, "c2s_direct_tls_ports", {})
		if #c2s_tls > 0 then
			list[#list + 1] = { name = "_xmpps-client._tcp", ports = c2s_tls, tls = true,
				option = "c2s_direct_tls_ports", who = "clients", own = c2s_own }
		end
	end
	if federating(cfg) then
		local s2s = port_list(cfg, "s2s_ports", { 5269 })
		if #s2s > 0 then
			list[#list + 1] = { name = "_xmpp-server._tcp", ports = s2s, default = 5269,
				option = "s2s_ports", who = "servers", own = s2s_own }
		end
		local s2s_tls = port_list(cfg, "s2s_direct_tls_ports", {})
		if #s2s_tls > 0 then
			list[#list + 1] = { name = "_xmpps-server._tcp", ports = s2s_tls, tls = true,
				option = "s2s_direct_tls_ports", who = "servers", own = s2s_own }
		end
	end
	return list
end


-- Checks one host; returns the SRV target it suggests (for the
-- components under it). parent_target: the target of the VirtualHost a
-- component's name is under, if any.
local function check_host(cfg, h, helpers, probe, cache, report, parent_target)
	local component = h.type == "component"
	local svcs = services(cfg, helpers, component)
	if #svcs == 0 then
		return nil	-- a component while not federating: nothing to find
	end
	local host_addrs, err = addresses(probe, h.name, cache)
	if err then
		report("error", "host %s: %s", h.name, err)
		return nil
	end
	local ctx = { host = h.name, probe = probe, cache = cache, report = report,
		level = component and "warning" or "error", host_addrs = host_addrs,
		own_list = own_list, said = {} }
	-- the SRV target to suggest: the host itself when it has addresses
	local fix_target = #host_addrs > 0 and h.name or parent_target or ("xmpp." .. h.name)
	local any_srv = false
	for _, svc in ipairs(svcs) do
		local has, target = check_service(ctx, svc, fix_target)
		any_srv = any_srv or has
		if target and #host_addrs == 0 then
			fix_target = target
		end
	end
	if not any_srv and #host_addrs == 0 then
		local svc = svcs[1]
		local what = component and "remote servers cannot reach this component"
			or "neither clients nor servers can find it"
		if parent_target then
			report(ctx.level, "host %s: no SRV records and no A or AAAA record: %s\n"
				.. "  fix: add %s", h.name, what,
				srv_record(svc.name, h.name, svc.ports[1], parent_target))
		else
			report(ctx.level, "host %s: no SRV records and no A or AAAA record: %s\n"
				.. "  fix: add %s\n  and  %s", h.name, what,
				srv_record(svc.name, h.name, svc.ports[1], fix_target),
				address_record(fix_target, suggested_address(svc.own)))
		end
	end
	return fix_target
end

-- The suggested target of the longest VirtualHost name name is under.
local function parent_target(name, targets)
	local best, best_len
	for host, target in pairs(targets) do
		if #name > #host and name:sub(-#host - 1) == "." .. host
			and (not best_len or #host > best_len) then
			best, best_len = target, #host
		end
	end
	return best
end

-- Checks every host of cfg (base: the config's folder), adding findings
-- through report(level, fmt, ...).
function M.check(cfg, base, helpers, report)
	local hosts = {}
	for _, h in ipairs(cfg.hosts) do
		if not not_in_dns(h.name) then
			hosts[#hosts + 1] = h
		end
	end
	if #hosts == 0 then
		return
	end
	local probe, err = helpers.resolver(resolver_options(cfg, base))
	if not probe then
		report("error", "dns: %s", tostring(err))
		return
	end
	local cache, targets = {}, {}
	for _, h in ipairs(hosts) do
		if h.type ~= "component" then
			targets[h.name] = check_host(cfg, h, helpers, probe, cache, report)
		end
	end
	for _, h in ipairs(hosts) do
		if h.type == "component" then
			check_host(cfg, h, helpers, probe, cache, report, parent_target(h.name, targets))
		end
	end
	probe:close()
end

return M
