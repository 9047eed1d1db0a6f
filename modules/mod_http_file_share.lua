-- mod_http_file_share: HTTP File Upload (XEP-0363) as a component:
--
--   Component "upload.example.org" "http_file_share"
--
-- A client asks the component for a slot (filename, size, content-type);
-- the answer names a PUT URL with an Authorization header (an HMAC over
-- the slot, so knowing the GET URL is not enough to upload) and the GET
-- URL. The slot is a random id bound, in storage, to its uploader, size,
-- type, name and times; the PUT must come within
-- http_file_share_slot_expires_after (5 minutes), once (a second one: 409),
-- with exactly the slot's size (Content-Length: more is 413 before any of
-- the body is read, less 400) and type (else 415). The body goes straight
-- to <data_path>/http_file_share/<id> as it arrives (core/http: a head
-- handler and http_body_to_file), never whole in memory; GET and HEAD
-- send it a window at a time, with Range (206, 416), ETag, Last-Modified,
-- If-None-Match, If-Range, and Content-Disposition: inline for the safe
-- types, attachment otherwise.
--
-- Options (Prosody's names): http_file_share_size_limit (10 MiB),
-- http_file_share_daily_quota (per uploader and 24 hours; 10 times the
-- size limit), http_file_share_global_quota (all files; none),
-- http_file_share_expires_after (1 week; "never"),
-- http_file_share_allowed_file_types (any when empty; "image/*" style),
-- http_file_share_safe_file_types (served inline), http_file_share_access
-- (JIDs or hosts that may upload besides the parent host's users),
-- parent_host, http_external_url (the URLs' base when a proxy is in
-- front), http_host (the host name in the URLs). Starling's own:
-- http_file_share_slot_expires_after, http_file_share_remove_on_user_delete
-- (true: deleting an account deletes its files).
local st = require "util.stanza"
local jid = require "util.jid"
local hashes = require "util.hashes"
local http = require "starling.http"
local core = require "starling.core"

local NS = "urn:xmpp:http:upload:0"
local DAY = 86400

local http_mod = module:depends("http")
module:depends("disco")

local size_limit = module:get_option_size("http_file_share_size_limit", 10 * 1024 * 1024)
local daily_quota = module:get_option_size("http_file_share_daily_quota", size_limit * 10)
local global_quota = module:get_option_size("http_file_share_global_quota", nil)
local expires_after = module:get_option_period("http_file_share_expires_after", "1w")
local slot_ttl = module:get_option_period("http_file_share_slot_expires_after", 300)
local allowed_types = module:get_option_array("http_file_share_allowed_file_types", {})
local safe_types = module:get_option_array("http_file_share_safe_file_types",
	{ "image/*", "video/*", "audio/*", "text/plain" })
local access = module:get_option_set("http_file_share_access", {})
local parent = module:get_option_string("parent_host", module.host:match("^[^.]+%.(.+)$"))
local remove_with_user = module:get_option_boolean("http_file_share_remove_on_user_delete", true)
local external = module:get_option_string("http_external_url", nil)
local http_host = module:get_option_string("http_host", nil)

local uploads = module:open_store("http_file_share", "keyval")
local meta = module:open_store("http_file_share_meta", "keyval")

-- --- where files go ------------------------------------------------------

-- data_path, relative to the config file's directory (as the core reads it)
local function data_dir()
	local cfg = core.config()
	local data = cfg and cfg:get("*", "data_path") or "data"
	if data:sub(1, 1) ~= "/" then
		data = ((cfg and cfg.path or ""):match("^(.*)/[^/]*$") or ".") .. "/" .. data
	end
	return data .. "/http_file_share"
end
local dir = data_dir()
assert(http.mkdir(dir:match("^(.*)/[^/]*$")))
assert(http.mkdir(dir))

local function path_of(id)
	return dir .. "/" .. id
end

-- The key of the PUT tokens; kept, so slots survive a restart.
local secret = meta:get(nil)
secret = type(secret) == "table" and secret.secret
if type(secret) ~= "string" then
	secret = core.random_token(48)
	assert(meta:set(nil, { secret = secret }))
end

-- --- the index: every slot and file, by id and by uploader ------------------

local index = {}	-- id -> record { uploader, size, type, name, time, expires, uploaded }
local by_user = {}	-- uploader -> { id = true }
local total = 0		-- bytes of every record

local function remember(id, rec)
	index[id] = rec
	by_user[rec.uploader] = by_user[rec.uploader] or {}
	by_user[rec.uploader][id] = true
	total = total + rec.size
end

local function forget(id)
	local rec = index[id]
	if not rec then
		return
	end
	index[id] = nil
	local mine = by_user[rec.uploader]
	if mine then
		mine[id] = nil
		if next(mine) == nil then
			by_user[rec.uploader] = nil
		end
	end
	total = total - rec.size
	local ok, err = uploads:set(id, nil)
	if not ok then
		module:log("error", "cannot forget the upload %s: %s", id, tostring(err))
	end
	if rec.uploaded then
		local removed, rerr = http.remove(path_of(id))
		if not removed and not tostring(rerr):match("No such file") then
			module:log("warn", "cannot remove %s: %s", path_of(id), tostring(rerr))
		end
	end
end

for id in uploads:users() do
	local rec = uploads:get(id)
	if type(rec) == "table" and type(rec.size) == "number" and type(rec.uploader) == "string" then
		remember(id, rec)
	end
end

-- Bytes uploader asked for in the last 24 hours.
local function used_today(uploader, now)
	local sum = 0
	for id in pairs(by_user[uploader] or {}) do
		local rec = index[id]
		if rec and rec.time > now - DAY then
			sum = sum + rec.size
		end
	end
	return sum
end

-- --- slots -----------------------------------------------------------------

local function base_url()
	if external then
		return (external:gsub("/+$", ""))
	end
	-- HTTPS when https_ports names a port, else HTTP (the defaults)
	local cfg = core.config()
	local tls = cfg and cfg:get("*", "https_ports")
	local ports = type(tls) == "table" and tls[1] and tls or (cfg and cfg:get("*", "http_ports"))
	local port = type(ports) == "table" and ports[1] or ports
	local scheme = (tls ~= nil and ports == tls) and "https" or "http"
	port = port or 5280
	return scheme .. "://" .. (http_host or module.host) .. ":" .. tostring(port)
end

local function url_escape(s)
	return (s:gsub("[^%w%-%._~]", function(c)
		return string.format("%%%02X", c:byte())
	end))
end

local function token_for(id, rec)
	return hashes.hmac_sha256(secret, table.concat({ id, rec.size, rec.type,
		rec.expires }, "\n"), true)
end

local function may_upload(from)
	local node, host = jid.split(from)
	local bare = jid.bare(from)
	if access:contains(bare) or access:contains(host) then
		return true
	end
	return node ~= nil and host == parent
end

local function type_matches(list, ctype)
	local base = ctype:match("^([^;%s]+)"):lower()
	for _, pattern in ipairs(list) do
		pattern = pattern:lower()
		if pattern == base or (pattern:sub(-2) == "/*" and base:sub(1, #pattern - 1) == pattern:sub(1, -2)) then
			return true
		end
	end
	return false
end

local function refuse(event, etype, condition, text, tag)
	return module:reply(event, st.error_reply(event.stanza, { type = etype,
		condition = condition, text = text, extra = tag and { tag = tag } }))
end

local function request_slot(event)
	local stanza = event.stanza
	local req = stanza.tags[1]
	local filename = req.attr.filename
	local size = tonumber(req.attr.size)
	local ctype = req.attr["content-type"]
	local now = os.time()

	if not may_upload(stanza.attr.from) then
		return refuse(event, "auth", "forbidden", "this service is for the users of " .. tostring(parent))
	end
	if type(filename) ~= "string" or filename == "" or #filename > 255 or not utf8.len(filename)
			or filename:find("[%c/\\]") or filename == "." or filename == ".." then
		return refuse(event, "modify", "bad-request", "the filename is missing or not allowed")
	end
	if not size or size < 0 or size ~= math.floor(size) then
		return refuse(event, "modify", "bad-request", "the size is missing or not a number of bytes")
	end
	if size > size_limit then
		local tag = st.stanza("file-too-large", { xmlns = NS })
			:text_tag("max-size", string.format("%d", size_limit))
		return refuse(event, "modify", "not-acceptable", "the file is larger than "
			.. string.format("%d", size_limit) .. " bytes", tag)
	end
	if ctype == nil or ctype == "" then
		ctype = "application/octet-stream"
	end
	if #ctype > 255 or not ctype:match("^[%w!#$&^_.+-]+/[%w!#$&^_.+-]+%s*;?[%w%s=;\"'!#$&^_.+-]*$") then
		return refuse(event, "modify", "bad-request", "the content-type is not a media type")
	end
	if #allowed_types > 0 and not type_matches(allowed_types, ctype) then
		return refuse(event, "modify", "not-acceptable", "files of type " .. ctype .. " are not allowed")
	end
	local uploader = jid.bare(stanza.attr.from)
	if daily_quota and used_today(uploader, now) + size > daily_quota then
		return refuse(event, "wait", "resource-constraint", "your daily upload quota is used up")
	end
	if global_quota and total + size > global_quota then
		return refuse(event, "wait", "resource-constraint", "the upload service is full")
	end

	local id = core.random_token(24)
	local rec = { uploader = uploader, size = size, type = ctype, name = filename,
		time = now, expires = now + slot_ttl }
	local ok, err = uploads:set(id, rec)
	if not ok then
		return module:reply(event, st.store_error_reply(stanza, err))
	end
	remember(id, rec)
	local url = base_url() .. http_mod.base_path(module, { name = "file_share",
		default_path = "/file_share" }) .. "/" .. id .. "/" .. url_escape(filename)
	module:log("info", "slot %s for %s: %s, %d bytes, %s", id, uploader, filename, size, ctype)
	local reply = st.reply(stanza):tag("slot", { xmlns = NS })
		:tag("put", { url = url })
			:text_tag("header", "Bearer " .. token_for(id, rec), { name = "Authorization" })
		:up()
		:tag("get", { url = url }):up()
	return module:reply(event, reply)
end

-- --- HTTP: PUT ---------------------------------------------------------------

local function slot_of(rest)
	local id = rest and rest:match("^(%w+)/[^/]+$")
	return id, id and index[id]
end

-- The head: everything is checked before a byte of the body is read.
local function put_head(event, rest)
	local request = event.request
	local id, rec = slot_of(rest)
	if not rec then
		return 404
	end
	local auth = request.headers.authorization
	local token = auth and auth:match("^Bearer%s+(%x+)%s*$")
	if not token or not hashes.equals(token, token_for(id, rec)) then
		return 401
	end
	if rec.uploaded then
		return 409
	end
	if os.time() > rec.expires then
		return 410
	end
	local length = request.headers.content_length
	if length and tonumber(length) ~= rec.size then
		return (tonumber(length) or math.huge) > rec.size and 413 or 400
	end
	local ctype = request.headers.content_type
	if ctype and ctype:match("^[^;%s]+"):lower() ~= rec.type:match("^[^;%s]+"):lower() then
		return 415
	end
	local ok, err = event.response:body_to_file(path_of(id), rec.size)
	if not ok then
		if tostring(err):match("exists") then
			return 409	-- another PUT of the slot is under way
		end
		module:log("error", "cannot write %s: %s", path_of(id), tostring(err))
		return 500
	end
	return nil	-- the body follows, into the file
end

local function put(event, rest)
	local request = event.request
	local id, rec = slot_of(rest)
	if not rec then
		return 410	-- the slot expired while the body came
	end
	if not request.body_file then
		return 500
	end
	if request.body_length ~= rec.size then
		return 400
	end
	rec.uploaded = os.time()
	local ok, err = uploads:set(id, rec)
	if not ok then
		rec.uploaded = nil
		module:log("error", "cannot record the upload %s: %s", id, tostring(err))
		return 503
	end
	event.response:keep_body()
	module:log("info", "%s uploaded %s (%d bytes)", rec.uploader, id, rec.size)
	return 201
end

-- --- HTTP: GET and HEAD ---------------------------------------------------

local function http_date(t)
	return os.date("!%a, %d %b %Y %H:%M:%S GMT", t)
end

local function disposition(rec)
	local kind = type_matches(safe_types, rec.type) and "inline" or "attachment"
	local ascii = rec.name:gsub("[^%w%-%._~ ()+,]", "_")
	return string.format("%s; filename=\"%s\"; filename*=UTF-8''%s", kind, ascii,
		url_escape(rec.name))
end

-- The one range of a Range header: from, to (inclusive); nil when the
-- header is to be ignored; false when it cannot be satisfied.
local function parse_range(header, size)
	local spec = header:match("^%s*bytes%s*=%s*(.-)%s*$")
	if not spec or spec:find(",") then
		return nil	-- another unit, or several ranges: the whole file
	end
	local a, b = spec:match("^(%d*)%s*%-%s*(%d*)$")
	if not a or (a == "" and b == "") then
		return nil
	end
	if a == "" then		-- the last b bytes
		local n = tonumber(b)
		if n == 0 or size == 0 then
			return false
		end
		return math.max(0, size - n), size - 1
	end
	local from, to = tonumber(a), b ~= "" and tonumber(b) or size - 1
	if from >= size or to < from then
		return false
	end
	return from, math.min(to, size - 1)
end

local function get(event, rest)
	local request, response = event.request, event.response
	local id, rec = slot_of(rest)
	local now = os.time()
	if not rec or not rec.uploaded or (expires_after ~= math.huge and rec.uploaded + expires_after < now) then
		return 404
	end
	local etag = '"' .. id .. '"'
	local h = response.headers
	h.etag = etag
	h.last_modified = http_date(rec.uploaded)
	h.cache_control = "public, max-age=31536000, immutable"
	h.accept_ranges = "bytes"
	h.content_type = rec.type
	h.content_disposition = disposition(rec)
	h.x_content_type_options = "nosniff"
	h.content_security_policy = "default-src 'none'; frame-ancestors 'none'"
	local inm = request.headers.if_none_match
	if inm and (inm == "*" or inm:find(etag, 1, true)) then
		return 304
	end
	local from, to
	local range = request.headers.range
	local if_range = request.headers.if_range
	if range and (not if_range or if_range == etag) then
		from, to = parse_range(range, rec.size)
		if from == false then
			h.content_range = "bytes */" .. string.format("%d", rec.size)
			h.content_type = "text/plain; charset=utf-8"
			h.content_disposition = nil
			return 416
		end
	end
	if from then
		response.status_code = 206
		h.content_range = string.format("bytes %d-%d/%d", from, to, rec.size)
	else
		from, to = 0, rec.size - 1
	end
	local ok, err = response:send_file(path_of(id), from, to - from + 1)
	if not ok then
		module:log("error", "cannot read %s: %s", path_of(id), tostring(err))
		response.status_code = nil
		h.content_range = nil
		return 500
	end
	return true
end

-- Web clients PUT and GET from their page's origin (Converse.js on its own
-- site), so cross-origin requests are allowed, as in Prosody; the slot's
-- secret URL is the authority, not the Origin. http_cors_override
-- ["file_share"] narrows it.
module:provides("http", {
	name = "file_share",
	default_path = "/file_share",
	cors = { enabled = true, methods = { "GET", "HEAD", "PUT", "OPTIONS" },
		headers = { "Content-Type", "Authorization" } },
	route = {
		["PUT /*"] = { head = put_head, handler = put },
		["GET /*"] = get,
	},
})

-- --- expiry ---------------------------------------------------------------

local function expire()
	local now = os.time()
	local gone = 0
	for id, rec in pairs(index) do
		if (rec.uploaded and expires_after ~= math.huge and rec.uploaded + expires_after < now)
				or (not rec.uploaded and rec.expires + 60 < now) then
			forget(id)
			gone = gone + 1
		end
	end
	if gone > 0 then
		module:log("info", "%d expired uploads removed", gone)
	end
end

local every = math.max(1, math.min(60, math.min(expires_after, slot_ttl) / 2))
module:add_timer(every, function()
	expire()
	return every
end)

-- --- discovery and accounts ----------------------------------------------

module:add_identity("store", "file", "HTTP File Upload")
module:add_feature(NS)
-- XEP-0363 section 4: the size limit in the service's disco#info
local form = st.stanza("x", { xmlns = "jabber:x:data", type = "result" })
	:tag("field", { var = "FORM_TYPE", type = "hidden" }):text_tag("value", NS):up()
	:tag("field", { var = "max-file-size" }):text_tag("value", string.format("%d", size_limit)):up()
module:add_extension(form)

module:hook("iq-get/host/" .. NS .. ":request", request_slot)

if parent and core.is_local_host(parent) then
	local pctx = module:context(parent)
	pctx:add_item("disco-item", { jid = module.host, name = "HTTP File Upload" })
	if remove_with_user then
		pctx:hook("user-deleted", function(event)
			local bare = jid.join(event.username, event.host)
			local n = 0
			for id in pairs(by_user[bare] or {}) do
				forget(id)
				n = n + 1
			end
			if n > 0 then
				module:log("info", "removed the %d uploads of deleted account %s", n, bare)
			end
		end)
	end
end
