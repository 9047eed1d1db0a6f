-- mod_host_meta: web client discovery (XEP-0156) at
-- /.well-known/host-meta (XRD) and /.well-known/host-meta.json (JRD).
--
-- Lists the endpoints this host's HTTP providers declare with a
-- link_rel (mod_websocket's urn:xmpp:alt-connections:websocket, BOSH's
-- urn:xmpp:alt-connections:xbosh), at the URL the client asked on (its
-- Host, http or https), or under http_external_url when set (a proxy in
-- front). Served with Access-Control-Allow-Origin: * (XEP-0156 4).
local http_mod = module:depends("http")

local external = module:get_option_string("http_external_url", nil)

local function xml_escape(s)
	return (s:gsub("[&<>'\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;",
		["'"] = "&apos;", ['"'] = "&quot;" }))
end

local function json_escape(s)
	return (s:gsub('[%c"\\]', function(c)
		return string.format("\\u%04x", c:byte())
	end))
end

-- { { rel =, href = } ... } for the request, in a stable order.
local function links(request)
	local out = {}
	local root
	if external then
		root = external:gsub("/+$", "")
	else
		local host = request.headers.host or module.host
		root = (request.secure and "https://" or "http://") .. host
	end
	for _, item in ipairs(module:get_host_items("http-provider")) do
		if item.link_rel then
			local href = root .. http_mod.base_path(module, item)
			if item.link_rel:match("websocket$") then
				href = href:gsub("^http", "ws")
			end
			out[#out + 1] = { rel = item.link_rel, href = href }
		end
	end
	table.sort(out, function(a, b) return a.rel < b.rel end)
	return out
end

local function xrd(event)
	local lines = { "<?xml version='1.0' encoding='utf-8'?>",
		"<XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>" }
	for _, l in ipairs(links(event.request)) do
		lines[#lines + 1] = string.format("  <Link rel='%s' href='%s'/>",
			xml_escape(l.rel), xml_escape(l.href))
	end
	lines[#lines + 1] = "</XRD>"
	event.response.headers.content_type = "application/xrd+xml"
	event.response.headers.access_control_allow_origin = "*"
	return table.concat(lines, "\n") .. "\n"
end

local function jrd(event)
	local items = {}
	for _, l in ipairs(links(event.request)) do
		items[#items + 1] = string.format('{"rel":"%s","href":"%s"}',
			json_escape(l.rel), json_escape(l.href))
	end
	event.response.headers.content_type = "application/json"
	event.response.headers.access_control_allow_origin = "*"
	return '{"links":[' .. table.concat(items, ",") .. "]}\n"
end

module:provides("http", {
	name = "host_meta",
	default_path = "/.well-known",
	route = {
		["GET /host-meta"] = xrd,
		["GET /host-meta.json"] = jrd,
	},
})
