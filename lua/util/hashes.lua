-- util.hashes: digests, HMACs and PBKDF2 (OpenSSL, core/lua/lx_hashes.c)
-- under Prosody's names: md5, sha1, sha224, sha256, sha384, sha512,
-- blake2s256, blake2b512 (data[, hex]); hmac_<digest>(key, data[, hex]);
-- pbkdf2_hmac_sha1/sha256/sha512(password, salt, iterations[, hex]);
-- equals(a, b) in constant time.

local c = require "starling.hashes"

local M = {}
for k, v in pairs(c) do
	M[k] = v
end
M.scram_Hi_sha1 = c.pbkdf2_hmac_sha1
M.version = "OpenSSL"
return M
