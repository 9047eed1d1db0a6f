-- mod_external_services: External Service Discovery (XEP-0215,
-- urn:xmpp:extdisco:2) with TURN credentials in the REST style coturn
-- takes with use-auth-secret / static-auth-secret:
--
--   username = "<expiry unix time>:<user>"
--   password = base64(HMAC-SHA1(secret, username))
--
-- so clients can make audio and video calls through a TURN relay without
-- the relay knowing our accounts. Only the host's own users (their
-- client sessions) are answered; anyone else gets forbidden.
--
-- Options (Prosody's names):
--   turn_external_host, turn_external_port (3478), turn_external_secret,
--   turn_external_ttl (86400 s), turn_external_user (the user part; the
--   asker's bare JID when unset), turn_external_tcp (also TURN over TCP),
--   turn_external_tls_port (TURNS over TLS on that port): one coturn as a
--   STUN and TURN service.
--   external_services = { { type =, host =, port =, transport =,
--     username =, password =, secret =, ttl =, restricted =, name = } }:
--   any other services; an entry with a secret gets credentials made as
--   above (algorithm "turn", the only one).
--   external_service_ttl: the default ttl of those.
local st = require "util.stanza"
local jid = require "util.jid"
local hashes = require "util.hashes"
local base64 = require "util.encodings".base64
local datetime = require "util.datetime"

local NS = "urn:xmpp:extdisco:2"

local function read_services()
	local out = {}
	local turn_host = module:get_option_string("turn_external_host", nil)
	local turn_secret = module:get_option_string("turn_external_secret", nil)
	local default_ttl = module:get_option_integer("external_service_ttl", 86400, 1)
	if turn_host then
		local port = module:get_option_integer("turn_external_port", 3478, 1, 65535)
		local ttl = module:get_option_integer("turn_external_ttl", 86400, 1)
		local user = module:get_option_string("turn_external_user", nil)
		out[#out + 1] = { type = "stun", transport = "udp", host = turn_host, port = port }
		if turn_secret then
			local turn = { type = "turn", host = turn_host, port = port, secret = turn_secret,
				ttl = ttl, username = user, restricted = true }
			out[#out + 1] = setmetatable({ transport = "udp" }, { __index = turn })
			if module:get_option_boolean("turn_external_tcp", false) then
				out[#out + 1] = setmetatable({ transport = "tcp" }, { __index = turn })
			end
			local tls_port = module:get_option_integer("turn_external_tls_port", nil, 1, 65535)
			if tls_port then
				out[#out + 1] = setmetatable({ type = "turns", transport = "tcp", port = tls_port },
					{ __index = turn })
			end
		else
			module:log("warn", "turn_external_host without turn_external_secret: STUN only")
		end
	end
	local extra = module:get_option("external_services", {})
	if type(extra) ~= "table" then
		module:log("error", "external_services must be a list of services")
		extra = {}
	end
	for i, item in ipairs(extra) do
		if type(item) ~= "table" or type(item.type) ~= "string" or type(item.host) ~= "string" then
			module:log("error", "external_services[%d]: a service needs a type and a host", i)
		else
			local s = {}
			for k, v in pairs(item) do
				s[k] = v
			end
			s.ttl = tonumber(s.ttl) or default_ttl
			if s.secret and s.algorithm and s.algorithm ~= "turn" then
				module:log("error", "external_services[%d]: algorithm '%s' is not known", i,
					tostring(s.algorithm))
				s.secret = nil
			end
			if s.secret and s.restricted == nil then
				s.restricted = true
			end
			out[#out + 1] = s
		end
	end
	return out
end

local services = read_services()

-- The <service/> of s for the user at time now, with credentials.
local function service_tag(s, user, now)
	local attrs = { type = s.type, host = s.host, transport = s.transport, name = s.name,
		port = s.port and string.format("%d", s.port) or nil }
	if s.secret then
		local expires = now + s.ttl
		attrs.username = string.format("%d:%s", expires, s.username or user)
		attrs.password = base64.encode(hashes.hmac_sha1(s.secret, attrs.username))
		attrs.expires = datetime.datetime(expires)
	elseif s.username or s.password then
		attrs.username, attrs.password = s.username, s.password
	end
	if s.restricted then
		attrs.restricted = "1"
	end
	return st.stanza("service", attrs)
end

local function allowed(event)
	local origin = event.origin
	return origin and origin.type == "c2s" and jid.host(event.stanza.attr.from) == module.host
end

local function answer(event, name, match)
	if not allowed(event) then
		return module:reply(event, st.error_reply(event.stanza, "auth", "forbidden",
			"external services are for the users of " .. module.host))
	end
	local user = jid.bare(event.stanza.attr.from)
	local now = os.time()
	local reply = st.reply(event.stanza):tag(name, { xmlns = NS })
	local n = 0
	for _, s in ipairs(services) do
		if match(s) then
			reply:add_child(service_tag(s, user, now))
			n = n + 1
		end
	end
	return module:reply(event, reply), n
end

-- <services [type='turn']/>: every service (of that type), with
-- credentials where they are made here.
local function on_services(event)
	local want = event.stanza.tags[1].attr.type
	return (answer(event, "services", function(s)
		return want == nil or s.type == want
	end))
end

-- <credentials><service type= host= [port=]/></credentials>: the
-- credentials of that service; item-not-found when there is none.
local function on_credentials(event)
	local ask = event.stanza.tags[1]:get_child("service")
	if not ask or not ask.attr.host or not ask.attr.type then
		return module:reply(event, st.error_reply(event.stanza, "modify", "bad-request",
			"name the service: <service type='' host=''/>"))
	end
	local port = tonumber(ask.attr.port)
	local function match(s)
		return s.type == ask.attr.type and s.host == ask.attr.host
			and (port == nil or s.port == port) and s.secret ~= nil
	end
	local found = false
	for _, s in ipairs(services) do
		found = found or match(s)
	end
	if allowed(event) and not found then
		return module:reply(event, st.error_reply(event.stanza, "cancel", "item-not-found",
			"no such service with credentials"))
	end
	return (answer(event, "credentials", match))
end

module:add_feature(NS)
module:hook("iq-get/host/" .. NS .. ":services", on_services)
module:hook("iq-get/host/" .. NS .. ":credentials", on_credentials)

module:hook("config-reloaded", function()
	services = read_services()
end)
