-- util.json: JSON (RFC 8259) to and from Lua values, as Prosody's.
--
--   json.encode(value)  --> text; a table that is a sequence (keys 1..n)
--                           is an array, any other an object (keys as
--                           strings); json.null and json.array(t) say so
--                           explicitly. Cycles and non-finite numbers raise.
--   json.decode(text)   --> value, or nil, error; null is json.null
--   json.null, json.array(t), json.object(t)

local type, pairs, ipairs, tostring, error, setmetatable, getmetatable =
	type, pairs, ipairs, tostring, error, setmetatable, getmetatable
local format, byte, sub, find, gsub = string.format, string.byte,
	string.sub, string.find, string.gsub
local concat, sort = table.concat, table.sort
local math_type, huge, utf8_char = math.type, math.huge, utf8.char

local M = {}

local null = setmetatable({}, { __tostring = function() return "null" end })
M.null = null

local array_mt = { __name = "json.array" }
local object_mt = { __name = "json.object" }

function M.array(t)
	return setmetatable(t or {}, array_mt)
end

function M.object(t)
	return setmetatable(t or {}, object_mt)
end

local escapes = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
	["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function encode_string(s)
	return '"' .. gsub(s, '[%c"\\]', function(c)
		return escapes[c] or format("\\u%04x", byte(c))
	end) .. '"'
end

local function is_sequence(t)
	local n = #t
	local count = 0
	for k in pairs(t) do
		if math_type(k) ~= "integer" or k < 1 or k > n then
			return false
		end
		count = count + 1
	end
	return count == n and n > 0
end

local encode_value

local function encode_table(t, out, seen)
	if seen[t] then
		error("json.encode: a table refers to itself", 0)
	end
	seen[t] = true
	local mt = getmetatable(t)
	if mt == array_mt or (mt ~= object_mt and is_sequence(t)) then
		out[#out + 1] = "["
		for i, v in ipairs(t) do
			if i > 1 then
				out[#out + 1] = ","
			end
			encode_value(v, out, seen)
		end
		out[#out + 1] = "]"
	else
		local keys = {}
		for k in pairs(t) do
			if type(k) == "string" or type(k) == "number" then
				keys[#keys + 1] = tostring(k)
			end
		end
		sort(keys)
		out[#out + 1] = "{"
		for i, k in ipairs(keys) do
			if i > 1 then
				out[#out + 1] = ","
			end
			out[#out + 1] = encode_string(k)
			out[#out + 1] = ":"
			local v = t[k]
			if v == nil then
				v = t[tonumber(k)]
			end
			encode_value(v, out, seen)
		end
		out[#out + 1] = "}"
	end
	seen[t] = nil
end

function encode_value(v, out, seen)
	local tv = type(v)
	if v == nil or v == null then
		out[#out + 1] = "null"
	elseif tv == "boolean" then
		out[#out + 1] = v and "true" or "false"
	elseif tv == "number" then
		if v ~= v or v == huge or v == -huge then
			error("json.encode: cannot encode " .. tostring(v), 0)
		end
		out[#out + 1] = math_type(v) == "integer" and tostring(v) or format("%.17g", v)
	elseif tv == "string" then
		out[#out + 1] = encode_string(v)
	elseif tv == "table" then
		encode_table(v, out, seen)
	else
		error("json.encode: cannot encode a " .. tv, 0)
	end
end

function M.encode(value)
	local out = {}
	encode_value(value, out, {})
	return concat(out)
end

-- --- decoding -------------------------------------------------------------

local function decode_error(_, pos, what)
	error(format("json.decode: %s at position %d", what, pos), 0)
end

local function skip(s, pos)
	return (find(s, "[^ \t\r\n]", pos)) or #s + 1
end

local decode_at

local function decode_string(s, pos)
	local out, i = {}, pos + 1
	while true do
		local c = byte(s, i)
		if not c then
			decode_error(s, pos, "unterminated string")
		elseif c == 34 then
			return concat(out), i + 1
		elseif c == 92 then
			local e = sub(s, i + 1, i + 1)
			if e == "u" then
				local hex = sub(s, i + 2, i + 5)
				if not hex:match("^%x%x%x%x$") then
					decode_error(s, i, "bad \\u escape")
				end
				local cp = tonumber(hex, 16)
				i = i + 6
				if cp >= 0xD800 and cp <= 0xDBFF and sub(s, i, i + 1) == "\\u" then
					local lo = tonumber(sub(s, i + 2, i + 5), 16)
					if lo and lo >= 0xDC00 and lo <= 0xDFFF then
						cp = 0x10000 + (cp - 0xD800) * 0x400 + (lo - 0xDC00)
						i = i + 6
					end
				end
				out[#out + 1] = utf8_char(cp)
			else
				local map = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f",
					n = "\n", r = "\r", t = "\t" }
				if not map[e] then
					decode_error(s, i, "bad escape")
				end
				out[#out + 1] = map[e]
				i = i + 2
			end
		elseif c < 32 then
			decode_error(s, i, "control character in string")
		else
			local j = find(s, '["\\%c]', i) or #s + 1
			out[#out + 1] = sub(s, i, j - 1)
			i = j
		end
	end
end

function decode_at(s, pos, depth)
	if depth > 200 then
		decode_error(s, pos, "nesting too deep")
	end
	pos = skip(s, pos)
	local c = sub(s, pos, pos)
	if c == "{" then
		local t = {}
		pos = skip(s, pos + 1)
		if sub(s, pos, pos) == "}" then
			return t, pos + 1
		end
		while true do
			if sub(s, pos, pos) ~= '"' then
				decode_error(s, pos, "expected a key")
			end
			local k
			k, pos = decode_string(s, pos)
			pos = skip(s, pos)
			if sub(s, pos, pos) ~= ":" then
				decode_error(s, pos, "expected ':'")
			end
			t[k], pos = decode_at(s, pos + 1, depth + 1)
			pos = skip(s, pos)
			local d = sub(s, pos, pos)
			if d == "}" then
				return t, pos + 1
			elseif d ~= "," then
				decode_error(s, pos, "expected ',' or '}'")
			end
			pos = skip(s, pos + 1)
		end
	elseif c == "[" then
		local t, n = {}, 0
		pos = skip(s, pos + 1)
		if sub(s, pos, pos) == "]" then
			return M.array(t), pos + 1
		end
		while true do
			n = n + 1
			t[n], pos = decode_at(s, pos, depth + 1)
			pos = skip(s, pos)
			local d = sub(s, pos, pos)
			if d == "]" then
				return M.array(t), pos + 1
			elseif d ~= "," then
				decode_error(s, pos, "expected ',' or ']'")
			end
			pos = pos + 1
		end
	elseif c == '"' then
		return decode_string(s, pos)
	elseif sub(s, pos, pos + 3) == "true" then
		return true, pos + 4
	elseif sub(s, pos, pos + 4) == "false" then
		return false, pos + 5
	elseif sub(s, pos, pos + 3) == "null" then
		return null, pos + 4
	else
		local num = s:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
		local v = num and tonumber(num)
		if not v then
			decode_error(s, pos, "unexpected character")
		end
		return v, pos + #num
	end
end

function M.decode(text)
	if type(text) ~= "string" then
		return nil, "json.decode: expected a string"
	end
	local ok, v, pos = pcall(decode_at, text, 1, 0)
	if not ok then
		return nil, v
	end
	if skip(text, pos) <= #text then
		return nil, format("json.decode: trailing garbage at position %d", pos)
	end
	return v
end

return M
