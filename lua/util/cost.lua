-- util.cost: a per-account budget for costly requests (roster, private
-- XML storage, vCards, archive queries, registration changes), so that one
-- client cannot take the server's time from everyone else.
--
-- Every account of a host has a token bucket of cost units: it holds up to
-- account_cost_burst units and refills at account_cost_rate units a second
-- (both host options; rate 0 turns the budget off). A request costs what
-- its module says (a roster set 1 unit; bigger answers more). A request
-- may overdraw the bucket down to minus the burst: it is served, and the
-- session that sent it reads nothing more from its client until the bucket
-- is back at zero (s:pause_reading), so a client that waits for its answers
-- is only slowed down, never refused. A request that would overdraw more
-- (what a client pipelined before the pause took effect) is answered
-- <resource-constraint/> of type wait (RFC 6120 8.3.3.18) without being
-- served, and costs nothing.
--
--   budget(module)          the budget of module's host: shared by every
--                           module of the host that opens it
--   b:charge(event, units)  true: go on (units taken); false: the request
--                           was answered resource-constraint, stop
--   b:wrap(units, handler)  a handler that charges first; units a number
--                           or function(event) -> number
--   b:level(account)        units left for account ("user@host"), for tests
--                           and status

local floor, max, min = math.floor, math.max, math.min
local type, pairs, setmetatable = type, pairs, setmetatable

local core = require "starling.core"
local st = require "util.stanza"

local M = {}

-- Buckets of accounts whose bucket is full again are dropped once the
-- table holds this many (and twice as many as were left last time).
local SWEEP_AT = 1024

local Budget = {}
Budget.__index = Budget

function M.budget(module)
	local rate = module:get_option_number("account_cost_rate", 50, 0)
	local burst = module:get_option_number("account_cost_burst", 300, 1)
	local shared = module:shared("/" .. module.host .. "/util.cost")
	shared.buckets = shared.buckets or {}
	shared.n = shared.n or 0
	shared.sweep_at = shared.sweep_at or SWEEP_AT
	return setmetatable({ rate = rate, burst = burst, shared = shared, module = module },
		Budget)
end

-- The bucket's level now (refilled since it was last seen).
local function refill(self, bucket, now)
	bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.at) * self.rate)
	bucket.at = now
	return bucket.tokens
end

local function sweep(self, now)
	local shared, n = self.shared, 0
	for account, bucket in pairs(shared.buckets) do
		if refill(self, bucket, now) >= self.burst then
			shared.buckets[account] = nil
		else
			n = n + 1
		end
	end
	shared.n = n
	shared.sweep_at = max(SWEEP_AT, 2 * n)
end

local function bucket_of(self, account, now)
	local shared = self.shared
	local bucket = shared.buckets[account]
	if not bucket then
		if shared.n >= shared.sweep_at then
			sweep(self, now)
		end
		bucket = { tokens = self.burst, at = now }
		shared.buckets[account] = bucket
		shared.n = shared.n + 1
	end
	return bucket
end

function Budget:level(account)
	local bucket = self.shared.buckets[account]
	if not bucket then
		return self.burst
	end
	return refill(self, bucket, core.uptime())
end

function Budget:charge(event, units)
	local origin = event.origin
	if self.rate <= 0 or not origin or not origin.bare_jid then
		return true
	end
	local now = core.uptime()
	local bucket = bucket_of(self, origin.bare_jid, now)
	local level = refill(self, bucket, now)
	if level - units < -self.burst then
		origin:pause_reading(-level / self.rate)
		self.module:log("debug", "%s: over its cost budget, %g units refused",
			origin.full_jid or origin.bare_jid, units)
		if not bucket.warned then
			bucket.warned = true
			self.module:log("info", "%s sends costly requests faster than %g units/s: "
				.. "answering resource-constraint", origin.bare_jid, self.rate)
		end
		origin:send(st.error_reply(event.stanza, "wait", "resource-constraint",
			"too many costly requests; retry later"))
		return false
	end
	level = level - units
	bucket.tokens = level
	if level < 0 then
		origin:pause_reading(-level / self.rate)
	elseif level >= self.burst / 2 then
		bucket.warned = nil
	end
	return true
end

function Budget:wrap(units, handler)
	return function(event)
		local n = units
		if type(units) == "function" then
			n = units(event)
		end
		if not self:charge(event, n) then
			return true
		end
		return handler(event)
	end
end

-- Units for an answer of about size bytes: 1, and 1 more per 4 KiB.
function M.by_size(size)
	return 1 + floor((size or 0) / 4096)
end

return M
