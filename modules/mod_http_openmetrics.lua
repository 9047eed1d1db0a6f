-- mod_http_openmetrics: the server's metrics at /metrics in the
-- OpenMetrics text format (global), for Prometheus and friends.
--
-- Who may read them, as Prosody's module: openmetrics_allow_ips (default
-- loopback: "127.0.0.1", "::1") and openmetrics_allow_cidr (e.g.
-- "10.0.0.0/8"); metrics_allow is a further list of addresses or CIDR
-- ranges. Others get 403. The same numbers as `starlingctl metrics`.
module:set_global()
module:depends("http")

local metrics = require "starling.metrics"

local concat = table.concat

local allow_ips = {}
for _, ip in ipairs(module:get_option_array("openmetrics_allow_ips", { "127.0.0.1", "::1" })) do
	allow_ips[ip] = true
end
local cidrs = {}
for _, c in ipairs(module:get_option_array("openmetrics_allow_cidr", {})) do
	cidrs[#cidrs + 1] = c
end
for _, a in ipairs(module:get_option_array("metrics_allow", {})) do
	if a:find("/", 1, true) then
		cidrs[#cidrs + 1] = a
	else
		allow_ips[a] = true
	end
end

-- An address as 16 bytes (IPv4 as ::ffff:a.b.c.d), or nil.
local function ip_bytes(ip)
	local a, b, c, d = ip:match("^(%d+)%.(%d+)%.(%d+)%.(%d+)$")
	if a then
		return string.char(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255,
			tonumber(a) & 255, tonumber(b) & 255, tonumber(c) & 255, tonumber(d) & 255)
	end
	local v4 = ip:match("^::[fF][fF][fF][fF]:(%d+%.%d+%.%d+%.%d+)$")
	if v4 then
		return ip_bytes(v4)
	end
	if not ip:find(":", 1, true) then
		return nil
	end
	local head, tail = ip:match("^(.-)::(.*)$")
	local function groups(s)
		local out = {}
		for g in s:gmatch("[^:]+") do
			local n = tonumber(g, 16)
			if not n or #g > 4 then
				return nil
			end
			out[#out + 1] = n
		end
		return out
	end
	local h, t
	if head then
		h, t = groups(head), groups(tail)
	else
		h, t = groups(ip), {}
	end
	if not h or not t or #h + #t > 8 or (not head and #h ~= 8) then
		return nil
	end
	local all = {}
	for _, g in ipairs(h) do all[#all + 1] = g end
	for _ = 1, 8 - #h - #t do all[#all + 1] = 0 end
	for _, g in ipairs(t) do all[#all + 1] = g end
	local bytes = {}
	for _, g in ipairs(all) do
		bytes[#bytes + 1] = string.char(g >> 8, g & 255)
	end
	return concat(bytes)
end

local function in_cidr(ip, cidr)
	local net, bits = cidr:match("^(.-)/(%d+)$")
	local a, n = ip_bytes(ip), net and ip_bytes(net)
	bits = tonumber(bits)
	if not a or not n or not bits then
		return false
	end
	if net:find(".", 1, true) and not net:find(":", 1, true) then
		bits = bits + 96	-- IPv4 ranges, in the mapped space
	end
	for i = 1, 16 do
		local take = math.min(8, math.max(0, bits - (i - 1) * 8))
		if take == 0 then
			return true
		end
		local mask = (0xff << (8 - take)) & 0xff
		if a:byte(i) & mask ~= n:byte(i) & mask then
			return false
		end
	end
	return true
end

local function allowed(ip)
	if allow_ips[ip] then
		return true
	end
	local mapped = ip:match("^::[fF][fF][fF][fF]:(%d+%.%d+%.%d+%.%d+)$")
	if mapped and allow_ips[mapped] then
		return true
	end
	for _, c in ipairs(cidrs) do
		if in_cidr(ip, c) then
			return true
		end
	end
	return false
end

module:provides("http", {
	name = "metrics",
	default_path = "/metrics",
	route = {
		["GET"] = function(event)
			if not allowed(event.request.ip) then
				module:log("info", "metrics refused to %s", event.request.ip)
				return 403
			end
			event.response.headers.content_type =
				"application/openmetrics-text; version=1.0.0; charset=utf-8"
			return metrics.render()
		end,
	},
})
