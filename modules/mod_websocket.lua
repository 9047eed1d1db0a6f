-- mod_websocket: XMPP over WebSocket (RFC 7395) at /xmpp-websocket.
--
-- Clients open a WebSocket with the "xmpp" subprotocol and speak XMPP in
-- <open/>/<close/> framing: the same client streams as on c2s_ports
-- (SASL, bind, stream management, CSI), the frames read and written in C
-- (core/http/websocket.c). Options, as Prosody's:
--   consider_websocket_secure  ws:// counts as encrypted (a proxy in
--                              front terminates TLS); default false
--   cross_domain_websocket     Origins that may connect: false (only the
--                              server's own), true (any), or a list
-- A message over c2s_stanza_size_limit ends the stream with
-- policy-violation (close code 1009).
local http = require "starling.http"

module:depends("http")

local endpoint = http.websocket({
	consider_secure = module:get_option_boolean("consider_websocket_secure", false),
	cross_domain = module:get_option("cross_domain_websocket", false),
})

module:provides("http", {
	name = "websocket",
	default_path = "/xmpp-websocket",
	-- XEP-0156 (mod_host_meta) names providers by their link relation.
	link_rel = "urn:xmpp:alt-connections:websocket",
	-- CORS on the endpoint's HTTP answers; the upgrade itself checks the
	-- Origin against the same option.
	cors = { enabled = module:get_option("cross_domain_websocket", false) },
	route = {
		["GET"] = endpoint,
		["GET /"] = endpoint,
	},
})
