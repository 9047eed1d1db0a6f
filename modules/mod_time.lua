-- mod_time: XEP-0202 Entity Time for the server (docs/modules/time.md).
-- A query to the host's domain gets the current time in UTC (with
-- milliseconds) and the offset of the server's local time zone.

local core = require "starling.core"
local datetime = require "util.datetime"
local st = require "util.stanza"

local NS = "urn:xmpp:time"

local floor, format = math.floor, string.format

-- The local time zone's offset from UTC at time t, as "+hh:mm"/"-hh:mm".
local function tzo(t)
	local here = os.date("*t", t)
	local utc = os.date("!*t", t)
	utc.isdst = here.isdst
	local offset = os.time(here) - os.time(utc)
	local sign = offset < 0 and "-" or "+"
	offset = math.abs(offset)
	return format("%s%02d:%02d", sign, offset // 3600, offset % 3600 // 60)
end

local function handle_time(event)
	local now = core.now()
	local reply = st.reply(event.stanza):tag("time", { xmlns = NS })
		:text_tag("tzo", tzo(floor(now)))
		:text_tag("utc", datetime.datetime(now))
	module:reply(event, reply)
	return true
end

module:add_feature(NS)

module:hook("iq-get/host/urn:xmpp:time:time", handle_time)
