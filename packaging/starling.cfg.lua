-- Starling's configuration (the Debian package's /etc/starling/starling.cfg.lua).
-- Change the VirtualHost below to your domain, put its certificate in
-- /etc/starling/certs (`starlingctl cert import /etc/letsencrypt/live` picks
-- Let's Encrypt's up), then `starlingctl check` and `systemctl reload starling`.
-- It is Lua. Options before the first VirtualHost are global; options after
-- a VirtualHost or Component line apply to that host only (looked up there
-- first, then globally). Relative paths are relative to this file.

-- Where and how to listen.
interfaces = { "*" }               -- every IPv4 and IPv6 address
c2s_ports = { 5222 }               -- STARTTLS
c2s_direct_tls_ports = { 5223 }    -- direct TLS (XEP-0368)

-- Accounts, rosters and everything else are stored here (LMDB).
data_path = "/var/lib/starling"

-- Log level (debug, info, warn, error) and where to ("stderr", "syslog" or
-- a file; SIGUSR1 reopens a file). Modules and hosts may have their own
-- level: modules = { roster = "debug", ["localhost:ping"] = "warn" }.
log = { level = "info", to = "/var/log/starling/starling.log" }

-- Lua's garbage collector: "generational" (the default: a stanza's garbage
-- dies young and is collected without walking every session's data) or
-- "incremental" (Lua's own default).
-- lua_gc_mode = "generational"

-- Administration (docs/ADMIN.md): starlingctl talks to the server over a
-- Unix socket only the server's user may use (default: data/starling.sock;
-- false turns it off). A pid file is written once the server runs.
-- admin_socket = "data/starling.sock"
pidfile = "/run/starling/starling.pid"

-- Extra directories to find mod_<name>.lua in, before the shipped modules/.
plugin_paths = { }

-- Modules loaded on every host.
modules_enabled = {
	"roster";    -- contact lists (RFC 6121)
	"presence";  -- presence and subscriptions
	"message";   -- message delivery rules (RFC 6121 section 8)
	"offline";   -- messages kept for offline accounts (XEP-0160)
	"iq";        -- iq delivery
	"disco";     -- service discovery (XEP-0030, contact addresses XEP-0157)
	"ping";      -- answers pings, pings idle clients (XEP-0199)
	"version";   -- the server's software version (XEP-0092)
	"time";      -- the server's time (XEP-0202)
	"uptime";    -- the server's uptime (XEP-0012)
	"lastactivity"; -- when contacts were last online (XEP-0012)
	"vcard";     -- user profiles (XEP-0054 vcard-temp)
	"private";   -- private XML storage, bookmarks (XEP-0049)
	"blocklist"; -- blocking contacts (XEP-0191)
	"register";  -- password change, account removal; sign-up only with
	             -- allow_registration = true (XEP-0077)
	"mam";       -- message archive and stanza ids (XEP-0313, XEP-0359)
	"adhoc";     -- ad-hoc commands (XEP-0050)
	"admin_adhoc"; -- service administration from an admin's client (XEP-0133)
	-- The web (HTTP on http_ports, default 5280, and https_ports, 5281):
	-- "websocket";        -- XMPP over WebSocket at /xmpp-websocket (RFC 7395)
	-- "host_meta";        -- web client discovery, /.well-known/host-meta (XEP-0156)
	-- "http_openmetrics"; -- /metrics for Prometheus (loopback only by default)
}

-- HTTP, when a web module is enabled (docs/ARCHITECTURE.md, "HTTP"):
-- http_ports = { 5280 }; https_ports = { 5281 }
-- http_interfaces = { "127.0.0.1" }     -- default: interfaces
-- consider_websocket_secure = false     -- true behind a TLS-terminating proxy
-- cross_domain_websocket = false        -- true, or a list of allowed Origins
-- openmetrics_allow_ips = { "127.0.0.1", "::1" }

-- JIDs that may run the administration commands (XEP-0133)
admins = { }

-- Security: TLS before authentication, limits on what a client may send.
c2s_require_encryption = true
c2s_stanza_size_limit = 256 * 1024
c2s_timeout = 60                   -- seconds to authenticate
c2s_idle_timeout = 900             -- seconds a logged-in client may be silent
c2s_max_unauthenticated_per_ip = 32
c2s_max_auth_failures = 3          -- failed logins per stream
c2s_auth_failure_delay = 8         -- longest delay (s) answering repeated failures;
                                   -- until then the address may not log in at all
-- In-band registration (mod_register), when allow_registration = true:
min_seconds_between_registrations = 300  -- one new account per address in this time
registration_throttle_max = 5      -- attempts per address per period, and per connection
registration_throttle_period = 60  -- seconds
max_resources_per_account = 32
c2s_send_queue_limit = 4 * 1024 * 1024  -- bytes queued to a client that does not read
limits = { c2s = { rate = "100kb/s", burst = "5s" } }  -- read rate per connection

-- Certificates: for each host, HOST.crt and HOST.key (or HOST/fullchain.pem
-- and HOST/privkey.pem) in this directory, relative to this file. The
-- package made a self-signed one for localhost.
certificates = "certs"

VirtualHost "localhost"
