-- mod_http: the HTTP server for modules (global).
--
-- A module serves HTTP as in Prosody:
--
--   module:depends("http")
--   module:provides("http", {
--       default_path = "/hello",            -- else "/<module name>"
--       route = {
--           ["GET"] = function(event) return "hi" end,        -- /hello
--           ["POST /items"] = function(event) ... end,        -- /hello/items
--           ["GET /files/*"] = function(event, rest) ... end, -- /hello/files/...
--       },
--   })
--
-- The option http_paths = { name = "/path" } mounts a provider elsewhere.
-- Routes belong to the host the providing module runs on ("*" for a
-- global module: every host); unloading the module removes them. The
-- ports (http_ports, https_ports, http_interfaces) open when this module
-- first loads; the limits (http_max_header_size, http_max_content_size,
-- http_header_timeout, ...) are read on each load. docs/HTTP.md.
module:set_global()

local http = require "starling.http"

local ok, err = http.listen()
if not ok then
	error(err)
end

local mounted = {}	-- provider item -> { host = , routes = { route handles } }

-- Where a provider is mounted on host (mod is a module object of host).
local function base_path(mod, item)
	local paths = mod:get_option("http_paths", {})
	local path = type(paths) == "table" and paths[item.name] or nil
	path = path or item.default_path or ("/" .. item.name)
	if path:sub(1, 1) ~= "/" then
		path = "/" .. path
	end
	if #path > 1 and path:sub(-1) == "/" then
		path = path:sub(1, -2)
	end
	return path
end
module.base_path = base_path

-- "GET /x" -> "GET", base .. "/x"; "GET" -> base; "/x" -> "GET", base .. "/x".
local function parse_key(key, base)
	local method, sub = key:match("^(%u+)%s+(/.*)$")
	if not method then
		if key:sub(1, 1) == "/" then
			method, sub = "GET", key
		else
			method, sub = key:match("^(%u+)$"), ""
		end
	end
	if not method then
		return nil
	end
	if base == "/" and sub ~= "" then
		return method, sub
	end
	return method, base .. sub
end

-- A provider's cross-origin policy (CORS) on host, as in Prosody: the
-- provider's own (item.cors.enabled: false, true or a list of Origins),
-- then http_cors_override[name] ({ enabled =, credentials =, origins = }),
-- with access_control_allow_origins, _methods, _headers, _max_age and
-- _credentials for what neither says. nil: same origin only.
local function cors_of(mod, item)
	local cors = type(item.cors) == "table" and item.cors or {}
	local enabled, origins = cors.enabled, nil
	local credentials = cors.credentials
	if type(enabled) == "table" then
		enabled, origins = true, enabled
	end
	local overrides = mod:get_option("http_cors_override", {})
	local o = type(overrides) == "table" and overrides[item.name] or nil
	if type(o) == "table" then
		if o.enabled ~= nil then enabled = o.enabled end
		if o.credentials ~= nil then credentials = o.credentials end
		if type(o.origins) == "table" then origins = o.origins end
	end
	if not enabled then
		return nil
	end
	origins = origins or mod:get_option_array("access_control_allow_origins", nil)
	if credentials == nil then
		credentials = mod:get_option_boolean("access_control_allow_credentials", false)
	end
	return {
		origins = origins or true,
		methods = table.concat(cors.methods or mod:get_option_array(
			"access_control_allow_methods", { "GET", "OPTIONS" }), ", "),
		headers = table.concat(cors.headers or mod:get_option_array(
			"access_control_allow_headers", { "Content-Type" }), ", "),
		max_age = mod:get_option_integer("access_control_max_age", 7200, 0),
		credentials = credentials,
	}
end

local function mount(mod, host, item, source)
	if mounted[item] or type(item.route) ~= "table" then
		return
	end
	local base = base_path(mod, item)
	local owner = host .. ":" .. (source and source.name or item.name)
	local m = { host = host, routes = {} }
	local cors = cors_of(mod, item)
	mounted[item] = m
	for key, handler in pairs(item.route) do
		local method, path = parse_key(key, base)
		if not method then
			mod:log("error", "%s: '%s' is not a route (\"METHOD /path\")", owner, key)
		else
			local r, rerr = http.route(host, method, path, handler, owner, cors)
			if r then
				m.routes[#m.routes + 1] = r
			else
				mod:log("error", "%s: %s", owner, rerr)
			end
		end
	end
	mod:log("debug", "%s serves %s on %s", owner, base, host)
end

local function unmount(item)
	local m = mounted[item]
	if not m then
		return
	end
	for _, r in ipairs(m.routes) do
		http.unroute(r)
	end
	mounted[item] = nil
end

local function unmount_host(host)
	for item, m in pairs(mounted) do
		if m.host == host then
			unmount(item)
		end
	end
end

local function watch(mod, host)
	mod:hook("item-added/http-provider", function(event)
		mount(mod, host, event.item, event.source)
	end)
	mod:hook("item-removed/http-provider", function(event)
		unmount(event.item)
	end)
	for _, item in ipairs(mod:get_host_items("http-provider")) do
		mount(mod, host, item)
	end
end

-- Global modules' providers: on every host.
watch(module, "*")

function module.add_host(hmod)
	watch(hmod, hmod.host)
	function hmod.unload()
		unmount_host(hmod.host)
	end
end

function module.unload()
	for item in pairs(mounted) do
		unmount(item)
	end
end
