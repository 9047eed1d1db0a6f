-- util.encodings: the part of Prosody's library of the same name that
-- modules use most: base64.encode(data), base64.decode(text) (nil when
-- text is not base64). Over OpenSSL (core/lua/lx_hashes.c).

local c = require "starling.hashes"

return {
	base64 = {
		encode = c.base64_encode,
		decode = c.base64_decode,
	},
}
