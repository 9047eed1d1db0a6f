-- mod_bosh: XMPP over BOSH (XEP-0124, XEP-0206) at /http-bind.
--
-- Web clients that cannot keep a connection open (or a WebSocket) POST
-- <body/> wrappers; the session behind them is the same client stream as
-- on c2s_ports (SASL, bind, stream management, CSI, carbons), the BOSH
-- mechanics (rid order, hold, wait, inactivity) in C (core/http/bosh.c).
-- Options, as Prosody's:
--   bosh_max_wait          longest 'wait' a client may ask, s (120)
--   bosh_hold              most requests held at once (1)
--   bosh_max_inactivity    a session without a request this long ends,
--                          s (60); with XEP-0198 it hibernates
--   bosh_max_polling       shortest interval between empty polls, s (5)
--   bosh_max_requests      requests a client may have open at once (2)
--   consider_bosh_secure   http:// counts as encrypted (a proxy in front
--                          terminates TLS); default false
--   cross_domain_bosh      Origins whose pages may use it (CORS): false,
--                          true (any) or a list; http_cors_override
--                          (mod_http) has the last word
local http = require "starling.http"

module:depends("http")

local endpoint = http.bosh({
	consider_secure = module:get_option_boolean("consider_bosh_secure", false),
	max_wait = module:get_option_number("bosh_max_wait", 120),
	hold = module:get_option_number("bosh_hold", 1),
	max_inactivity = module:get_option_number("bosh_max_inactivity", 60),
	max_polling = module:get_option_number("bosh_max_polling", 5),
	max_requests = module:get_option_number("bosh_max_requests", 2),
})

module:provides("http", {
	name = "bosh",
	default_path = "/http-bind",
	-- XEP-0156 (mod_host_meta) names providers by their link relation.
	link_rel = "urn:xmpp:alt-connections:xbosh",
	cors = {
		enabled = module:get_option("cross_domain_bosh", false),
		methods = { "GET", "POST", "OPTIONS" },
	},
	route = {
		["GET"] = endpoint,
		["GET /"] = endpoint,
		["POST"] = endpoint,
		["POST /"] = endpoint,
	},
})
