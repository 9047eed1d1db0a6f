-- util.base64: RFC 4648 base64 (the standard alphabet, with padding).
--
--   encode(bytes)   the base64 text
--   decode(text)    the bytes, or nil when text is not base64 (white
--                   space, as vCard BINVAL values wrap, is skipped)

local byte, char, sub, gsub, concat = string.byte, string.char, string.sub, string.gsub, table.concat

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local value_of = {}
for i = 1, 64 do
	value_of[byte(ALPHABET, i)] = i - 1
end

local M = {}

function M.encode(s)
	local out = {}
	for i = 1, #s, 3 do
		local a, b, c = byte(s, i, i + 2)
		local n = (a << 16) | ((b or 0) << 8) | (c or 0)
		out[#out + 1] = char(byte(ALPHABET, (n >> 18) + 1), byte(ALPHABET, ((n >> 12) & 63) + 1),
			b and byte(ALPHABET, ((n >> 6) & 63) + 1) or 61, c and byte(ALPHABET, (n & 63) + 1) or 61)
	end
	return concat(out)
end

function M.decode(text)
	text = gsub(text, "%s", "")
	if #text % 4 ~= 0 then
		return nil
	end
	local out = {}
	for i = 1, #text, 4 do
		local quad = sub(text, i, i + 3)
		local n, pad = 0, 0
		for j = 1, 4 do
			local ch = byte(quad, j)
			local v = value_of[ch]
			if ch == 61 and i + 3 == #text and j >= 3 then
				pad, v = pad + 1, 0
			elseif not v or pad > 0 then
				return nil
			end
			n = (n << 6) | v
		end
		local bytes = char((n >> 16) & 255, (n >> 8) & 255, n & 255)
		out[#out + 1] = sub(bytes, 1, 3 - pad)
	end
	return concat(out)
end

return M
