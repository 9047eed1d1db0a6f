-- util.datetime: XMPP date and time profiles (XEP-0082), always in UTC.
--
--   date(t)       "CCYY-MM-DD"
--   datetime(t)   "CCYY-MM-DDThh:mm:ssZ", with ".sss" when t has a fraction
--   time(t)       "hh:mm:ss"
--   legacy(t)     "CCYYMMDDThh:mm:ss" (the old XEP-0091 format)
--   parse(s)      seconds since the epoch (a float when s has a fraction)
--                 from a DateTime with a "Z" or "+hh:mm"/"-hh:mm" offset,
--                 a Date (midnight UTC), or the legacy format; nil when s
--                 is none of these or names an impossible date
--
-- t is seconds since the epoch and defaults to now (os.time()).

local os_date, os_time = os.date, os.time
local floor, type, tonumber = math.floor, type, tonumber
local format, match = string.format, string.match

local M = {}

local function now(t)
	if t == nil then
		return os_time()
	end
	return t
end

function M.date(t)
	return os_date("!%Y-%m-%d", floor(now(t)))
end

function M.datetime(t)
	t = now(t)
	local whole = floor(t)
	local ms = floor((t - whole) * 1000 + 0.5)
	if ms >= 1000 then
		whole, ms = whole + 1, 0
	end
	if ms == 0 then
		return os_date("!%Y-%m-%dT%H:%M:%SZ", whole)
	end
	return os_date("!%Y-%m-%dT%H:%M:%S", whole) .. format(".%03dZ", ms)
end

function M.time(t)
	return os_date("!%H:%M:%S", floor(now(t)))
end

function M.legacy(t)
	return os_date("!%Y%m%dT%H:%M:%S", floor(now(t)))
end

-- Days between 1970-01-01 and the given civil date (proleptic Gregorian).
local function days_from_civil(y, m, d)
	if m <= 2 then
		y = y - 1
	end
	local era = (y >= 0 and y or y - 399) // 400
	local yoe = y - era * 400
	local mp = m > 2 and m - 3 or m + 9
	local doy = (153 * mp + 2) // 5 + d - 1
	local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
	return era * 146097 + doe - 719468
end

local month_days = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }

local function valid_date(y, m, d)
	if m < 1 or m > 12 or d < 1 then
		return false
	end
	local max = month_days[m]
	if m == 2 and (y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0)) then
		max = 29
	end
	return d <= max
end

local function epoch(y, mo, d, h, mi, s)
	y, mo, d, h, mi = tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi)
	s = tonumber(s)
	if not valid_date(y, mo, d) or h > 23 or mi > 59 or s > 60 then
		return nil
	end
	return ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60 + s
end

local function parse_offset(tz)
	if tz == "Z" then
		return 0
	end
	local sign, oh, om = match(tz, "^([+-])(%d%d):(%d%d)$")
	if not sign then
		return nil
	end
	oh, om = tonumber(oh), tonumber(om)
	if oh > 23 or om > 59 then
		return nil
	end
	local offset = (oh * 60 + om) * 60
	return sign == "-" and -offset or offset
end

function M.parse(s)
	if type(s) ~= "string" then
		return nil
	end
	local y, mo, d, h, mi, sec, frac, tz =
		match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)T(%d%d):(%d%d):(%d%d)(%.?%d*)(.*)$")
	if y then
		local offset = parse_offset(tz)
		if not offset or frac == "." then
			return nil
		end
		local t = epoch(y, mo, d, h, mi, sec)
		if not t then
			return nil
		end
		if frac ~= "" then
			t = t + tonumber("0" .. frac)
		end
		return t - offset
	end
	y, mo, d, h, mi, sec = match(s, "^(%d%d%d%d)(%d%d)(%d%d)T(%d%d):(%d%d):(%d%d)$")
	if y then
		return epoch(y, mo, d, h, mi, sec)
	end
	y, mo, d = match(s, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
	if y then
		return epoch(y, mo, d, 0, 0, 0)
	end
	return nil
end

return M
