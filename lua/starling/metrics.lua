-- starling.metrics: the server's counts in the OpenMetrics text format,
-- one renderer for `starlingctl metrics` (lua/starling/admin.lua) and the
-- /metrics page (modules/mod_http_openmetrics.lua).
--
--   render()   the whole exposition, ending in "# EOF"

local core = require "starling.core"
local http = require "starling.http"
local server = require "starling.server"

local format, concat = string.format, table.concat

local M = {}

-- Resident memory from /proc/self/status, in bytes (nil elsewhere).
function M.resident()
	local f = io.open("/proc/self/status", "r")
	if not f then
		return nil
	end
	local data = f:read("a")
	f:close()
	local kb = data and data:match("VmRSS:%s*(%d+)%s*kB")
	return kb and tonumber(kb) * 1024
end

function M.render()
	local c, st, h = server.counts(), server.storage(), http.stats()
	local out = {}
	local function family(name, kind, help)
		out[#out + 1] = format("# TYPE starling_%s %s", name, kind)
		out[#out + 1] = format("# HELP starling_%s %s", name, help)
	end
	local function sample(name, labels, value)
		out[#out + 1] = format("starling_%s%s %s", name, labels or "", format("%.0f", value))
	end
	local function seconds(name, labels, value)
		out[#out + 1] = format("starling_%s%s %.9g", name, labels or "", value)
	end
	family("uptime_seconds", "gauge", "Seconds since the server started.")
	sample("uptime_seconds", nil, core.uptime())
	family("connections", "gauge", "Open connections by kind.")
	sample("connections", '{kind="c2s"}', c.connections - c.hibernating - c.websocket - c.bosh)
	sample("connections", '{kind="websocket"}', c.websocket)
	sample("connections", '{kind="bosh"}', c.bosh)
	sample("connections", '{kind="http"}', h.connections)
	sample("connections", '{kind="s2s_in"}', c.s2s_in)
	sample("connections", '{kind="s2s_out"}', c.s2s_out)
	family("sessions", "gauge", "Client sessions by state.")
	sample("sessions", '{state="bound"}', c.bound)
	sample("sessions", '{state="authenticated"}', c.authenticated)
	sample("sessions", '{state="hibernating"}', c.hibernating)
	family("stanzas", "counter", "Stanzas from and to sessions, by kind.")
	for _, dir in ipairs({ "in", "out" }) do
		local t = c["stanzas_" .. dir]
		for _, kind in ipairs({ "message", "presence", "iq" }) do
			sample("stanzas_total", format('{direction="%s",kind="%s"}', dir, kind), t[kind])
		end
	end
	family("http_requests", "counter", "HTTP requests read.")
	sample("http_requests_total", nil, h.requests)
	family("http_responses", "counter", "HTTP responses by status class.")
	for i = 1, 5 do
		sample("http_responses_total", format('{class="%dxx"}', i), h.responses[i])
	end
	family("websocket_upgrades", "counter", "HTTP connections upgraded to WebSocket.")
	sample("websocket_upgrades_total", nil, h.upgrades)
	family("hook_errors", "counter", "Errors raised by event handlers.")
	sample("hook_errors_total", nil, c.hook_errors)
	family("storage_ok", "gauge", "1 while storage takes writes, 0 while it refuses them.")
	sample("storage_ok", nil, st.ok and 1 or 0)
	family("storage_failures", "counter", "Times storage writes began to fail.")
	sample("storage_failures_total", nil, st.failures)
	family("storage_refused_writes", "counter", "Writes refused while storage was failing.")
	sample("storage_refused_writes_total", nil, st.refused)
	family("storage_lost_batches", "counter", "Storage batches whose commit failed.")
	sample("storage_lost_batches_total", nil, st.lost)
	local rss = M.resident()
	if rss then
		family("resident_memory_bytes", "gauge", "Resident memory of the process.")
		sample("resident_memory_bytes", nil, rss)
	end
	local loop = server.loop()
	family("loop_iteration_seconds", "histogram",
		"Loop iterations by length: from the poll's return to the next poll.")
	local n = 0
	for _, b in ipairs(loop.buckets) do
		n = n + b[2]
		local le = b[1] == math.huge and "+Inf" or format("%.9g", b[1])
		sample("loop_iteration_seconds_bucket", format('{le="%s"}', le), n)
	end
	sample("loop_iteration_seconds_count", nil, n)
	seconds("loop_iteration_seconds_sum", nil, loop.busy)
	family("loop_iteration_longest_seconds", "gauge",
		"The longest loop iteration in the last 10 or 60 seconds.")
	seconds("loop_iteration_longest_seconds", '{window="10s"}', loop.longest_10s)
	seconds("loop_iteration_longest_seconds", '{window="60s"}', loop.longest_60s)
	family("lua_memory_bytes", "gauge", "Memory of the Lua state.")
	sample("lua_memory_bytes", nil, h.lua_memory)
	-- what modules count (module:metric / module:measure)
	for _, line in ipairs(require("starling.module_api").metrics_lines()) do
		out[#out + 1] = line
	end
	out[#out + 1] = "# EOF"
	return concat(out, "\n") .. "\n"
end

return M
