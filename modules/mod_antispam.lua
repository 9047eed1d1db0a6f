-- mod_antispam: defences against spam from strangers (docs/modules/antispam.md).
--
-- A stranger is a sender the recipient does not have in their roster. For
-- messages (chat and normal) and subscription requests from strangers to
-- this host's accounts:
--   rates    each stranger (by bare JID) has a token bucket per kind;
--            over it a local stranger's stream is slowed (nothing more is
--            read from it for a while) and the stanza still goes; past
--            twice the burst, and for remote strangers at once, it is
--            refused with policy-violation (type wait). The recipient's
--            contacts never meet these limits.
--   list     antispam_blocklist names a file of bare JIDs and domains (one
--            a line, # comments); anything from them to this host's
--            accounts is dropped (an iq answered service-unavailable). It
--            is read again on every config reload.
--   reports  XEP-0377: a <report xmlns='urn:xmpp:reporting:1'/> in a
--            XEP-0191 block is kept for the admins (archive store
--            spam_reports), who read them with the ad-hoc command
--            "Spam reports" (mod_adhoc) or starlingctl shell.

local adhoc = require "util.adhoc"
local core = require "starling.core"
local datetime = require "util.datetime"
local jid = require "util.jid"
local roster_lib = require "util.roster"
local st = require "util.stanza"

local NS_REPORTING = "urn:xmpp:reporting:1"
local NS_BLOCKING = "urn:xmpp:blocking"

local limits = {
	message = {
		rate = module:get_option_number("antispam_stranger_message_rate", 1, 0),
		burst = module:get_option_number("antispam_stranger_message_burst", 10, 1),
	},
	subscription = {
		rate = module:get_option_number("antispam_stranger_subscription_rate", 0.1, 0),
		burst = module:get_option_number("antispam_stranger_subscription_burst", 5, 1),
	},
}
local blocklist_path = module:get_option_string("antispam_blocklist", nil)

local roster_store = roster_lib.open(module)
local reports = module:open_store("spam_reports", "archive")

-- --- the blocklist ------------------------------------------------------------

local blocked = {}

local function read_blocklist()
	local list = {}
	if blocklist_path then
		local f, err = require("io").open(blocklist_path, "r")
		if not f then
			module:log("error", "antispam_blocklist: %s", tostring(err))
			return
		end
		for line in f:lines() do
			line = line:gsub("#.*", ""):match("^%s*(.-)%s*$")
			if line ~= "" then
				local entry = jid.prep(line)
				if entry then
					list[jid.bare(entry)] = true
				else
					module:log("warn", "antispam_blocklist: not a JID or domain: %s", line)
				end
			end
		end
		f:close()
	end
	blocked = list
	module:log("info", "antispam blocklist: %d entries", (function()
		local n = 0
		for _ in pairs(list) do
			n = n + 1
		end
		return n
	end)())
end

read_blocklist()
module:hook_global("config-reloaded", read_blocklist)

-- Whether bare (a bare JID) or its domain, or a parent domain, is listed.
local function is_blocked(bare)
	if blocked[bare] then
		return true
	end
	local _, host = jid.split(bare)
	while host do
		if blocked[host] then
			return true
		end
		host = host:match("^[^.]+%.(.+)$")
	end
	return false
end

-- --- strangers and their buckets -------------------------------------------------

-- buckets[kind][bare] = { tokens, at }
local buckets = { message = {}, subscription = {} }

local function is_stranger(username, from_bare)
	if from_bare == username .. "@" .. module.host then
		return false
	end
	local roster = roster_lib.load(roster_store, username)
	return not (roster and roster.items[from_bare])
end

-- Takes one stanza from the stranger's bucket of kind: the deficit after
-- it (0: within the rate).
local function take(kind, bare)
	local lim, now = limits[kind], core.uptime()
	local b = buckets[kind][bare]
	if not b then
		b = { tokens = lim.burst, at = now }
		buckets[kind][bare] = b
	end
	b.tokens = math.min(lim.burst, b.tokens + (now - b.at) * lim.rate) - 1
	b.at = now
	return b.tokens < 0 and -b.tokens or 0
end

-- Applies the limit of kind to a stanza from a stranger: true to stop it.
local function limited(event, kind, from_bare)
	local lim = limits[kind]
	if lim.rate == 0 then
		return false
	end
	local deficit = take(kind, from_bare)
	if deficit == 0 then
		return false
	end
	local origin = event.origin
	local is_local = origin and origin.username and origin.pause_reading
	if is_local and deficit <= lim.burst then
		origin:pause_reading(deficit / lim.rate)
		return false
	end
	if deficit == 1 or deficit == lim.burst + 1 then
		module:log("info", "%s from stranger %s over the limit: refused", kind, from_bare)
	end
	-- a message is answered; a subscription request comes from a bare
	-- JID, where an error presence would be dropped anyway (RFC 6121)
	local stanza = event.stanza
	if stanza.name == "message" and stanza.attr.type ~= "error" then
		module:send(st.error_reply(stanza, "wait", "policy-violation",
			"too many messages to people who do not know you; slow down"))
	end
	return true
end

local function local_user(to)
	local node, host = jid.split(to or "")
	if node and host == module.host and core.user_exists(node, host) then
		return node
	end
	return nil
end

-- A stanza of kind ("message", "subscription") to a local user from someone
-- not on their roster: true (handled) when the sender is over the limit.
local function stranger_limited(event, from_bare, kind)
	local username = local_user(event.stanza.attr.to)
	if not username or not is_stranger(username, from_bare) then
		return nil
	end
	return limited(event, kind, from_bare) or nil
end

local function check_message(event)
	local stanza = event.stanza
	local from_bare = jid.bare(stanza.attr.from or "")
	if is_blocked(from_bare) then
		return true
	end
	local t = stanza.attr.type or "normal"
	if t ~= "chat" and t ~= "normal" then
		return nil
	end
	return stranger_limited(event, from_bare, "message")
end

local function check_presence(event)
	local stanza = event.stanza
	local from_bare = jid.bare(stanza.attr.from or "")
	if is_blocked(from_bare) then
		return true
	end
	if stanza.attr.type ~= "subscribe" then
		return nil
	end
	return stranger_limited(event, from_bare, "subscription")
end

local function check_iq(event)
	local stanza = event.stanza
	if not is_blocked(jid.bare(stanza.attr.from or "")) then
		return nil
	end
	if stanza.attr.type == "get" or stanza.attr.type == "set" then
		module:send(st.error_reply(stanza, "cancel", "service-unavailable"))
	end
	return true
end

module:hook("message/bare", check_message, 900)
module:hook("message/full", check_message, 900)
module:hook("presence/bare", check_presence, 900)
module:hook("presence/full", check_presence, 900)
module:hook("iq/bare", check_iq, 900)
module:hook("iq/full", check_iq, 900)

-- Buckets that are full again are forgotten.
module:add_timer(60, function()
	local now = core.uptime()
	for kind, list in pairs(buckets) do
		local lim = limits[kind]
		for bare, b in pairs(list) do
			if b.tokens + (now - b.at) * lim.rate >= lim.burst then
				list[bare] = nil
			end
		end
	end
	return 60
end)

-- --- XEP-0377: reports -------------------------------------------------------------

module:add_feature(NS_REPORTING)

module:hook("iq-set/self/" .. NS_BLOCKING .. ":block", function(event)
	local reporter = event.origin.bare_jid
	for item in event.stanza:get_child("block", NS_BLOCKING):childtags("item") do
		local report = item:get_child("report", NS_REPORTING)
		local reported = item.attr.jid and jid.prep(item.attr.jid)
		if report and reported then
			local ok, err = reports:append("", nil, {
				reporter = reporter, reported = reported,
				reason = report.attr.reason or "", text = report:get_child_text("text") or "",
			}, os.time(), reported)
			if ok then
				module:log("info", "%s reported %s (%s)", reporter, reported, report.attr.reason or "")
			else
				module:log_store_error(err, "cannot keep %s's report of %s", reporter, reported)
			end
		end
	end
	return nil		-- mod_blocklist blocks as asked
end, 10)

module:depends("adhoc")
module:provides("adhoc", adhoc.new("Spam reports", "urn:xmpp:starling:antispam#reports", function()
	local items, err = reports:find("", { limit = 50, reverse = true })
	if not items then
		return { status = "error", error = { type = "wait", condition = "internal-server-error",
			message = tostring(err) } }
	end
	local lines = {}
	for _, value, when in items do
		lines[#lines + 1] = ("%s %s reported %s: %s %s"):format(datetime.datetime(when),
			value.reporter, value.reported, value.reason, value.text)
	end
	return { status = "completed", info = #lines > 0 and table.concat(lines, "\n") or "no reports" }
end, "admin"))
