-- util.subscription: the presence subscription states of RFC 6121
-- Appendix A and what each subscription stanza does to them, as tables.
--
-- A state is the roster item's subscription plus the pending flags, named
-- as in Appendix A: "none", "none+out", "none+in", "none+out+in", "to",
-- "to+in", "from", "from+out", "both". "out" is a request the user sent
-- that the contact has not answered (the item's ask="subscribe"); "in" a
-- request the contact sent that the user has not answered.
--
--   state(subscription, pending_out, pending_in)  the state's name
--   split(state)                 subscription, pending_out, pending_in
--   outbound[type][state]        for a subscription stanza the user sends
--                                (A.2): { route = bool, new = state }
--   inbound[type][state]         for one the user's server receives for
--                                the user (A.3): { deliver = bool, new = state }
-- type is "subscribe", "subscribed", "unsubscribe" or "unsubscribed".

local ipairs = ipairs
local find, match = string.find, string.match

local M = {}

function M.state(subscription, pending_out, pending_in)
	local s = subscription or "none"
	local name = s
	if pending_out and (s == "none" or s == "from") then
		name = name .. "+out"
	end
	if pending_in and (s == "none" or s == "to") then
		name = name .. "+in"
	end
	return name
end

function M.split(state)
	return match(state, "^%a+"), find(state, "+out", 1, true) ~= nil,
		find(state, "+in", 1, true) ~= nil
end

-- rows: { existing state, route or deliver, new state (nil: no change) }
local function rule_table(flag, rows)
	local t = {}
	for _, row in ipairs(rows) do
		t[row[1]] = { [flag] = row[2], new = row[3] or row[1] }
	end
	return t
end

M.outbound = {
	-- A.2.1
	subscribe = rule_table("route", {
		{ "none",        true, "none+out" },
		{ "none+out",    true },
		{ "none+in",     true, "none+out+in" },
		{ "none+out+in", true },
		{ "to",          true },
		{ "to+in",       true },
		{ "from",        true, "from+out" },
		{ "from+out",    true },
		{ "both",        true },
	}),
	-- A.2.2
	unsubscribe = rule_table("route", {
		{ "none",        true },
		{ "none+out",    true, "none" },
		{ "none+in",     true },
		{ "none+out+in", true, "none+in" },
		{ "to",          true, "none" },
		{ "to+in",       true, "none+in" },
		{ "from",        true },
		{ "from+out",    true, "from" },
		{ "both",        true, "from" },
	}),
	-- A.2.3 (without pre-approval, which the caller handles first)
	subscribed = rule_table("route", {
		{ "none",        false },
		{ "none+out",    false },
		{ "none+in",     true, "from" },
		{ "none+out+in", true, "from+out" },
		{ "to",          false },
		{ "to+in",       true, "both" },
		{ "from",        false },
		{ "from+out",    false },
		{ "both",        false },
	}),
	-- A.2.4
	unsubscribed = rule_table("route", {
		{ "none",        false },
		{ "none+out",    false },
		{ "none+in",     true, "none" },
		{ "none+out+in", true, "none+out" },
		{ "to",          false },
		{ "to+in",       true, "to" },
		{ "from",        true, "none" },
		{ "from+out",    true, "none+out" },
		{ "both",        true, "to" },
	}),
}

M.inbound = {
	-- A.3.1 (from, from+out and both: the server answers "subscribed"
	-- for the user; pre-approval is handled by the caller first)
	subscribe = rule_table("deliver", {
		{ "none",        true, "none+in" },
		{ "none+out",    true, "none+out+in" },
		{ "none+in",     false },
		{ "none+out+in", false },
		{ "to",          true, "to+in" },
		{ "to+in",       false },
		{ "from",        false },
		{ "from+out",    false },
		{ "both",        false },
	}),
	-- A.3.2
	unsubscribe = rule_table("deliver", {
		{ "none",        false },
		{ "none+out",    false },
		{ "none+in",     true, "none" },
		{ "none+out+in", true, "none+out" },
		{ "to",          false },
		{ "to+in",       true, "to" },
		{ "from",        true, "none" },
		{ "from+out",    true, "none+out" },
		{ "both",        true, "to" },
	}),
	-- A.3.3
	subscribed = rule_table("deliver", {
		{ "none",        false },
		{ "none+out",    true, "to" },
		{ "none+in",     false },
		{ "none+out+in", true, "to+in" },
		{ "to",          false },
		{ "to+in",       false },
		{ "from",        false },
		{ "from+out",    true, "both" },
		{ "both",        false },
	}),
	-- A.3.4
	unsubscribed = rule_table("deliver", {
		{ "none",        false },
		{ "none+out",    true, "none" },
		{ "none+in",     false },
		{ "none+out+in", true, "none+in" },
		{ "to",          true, "none" },
		{ "to+in",       true, "none+in" },
		{ "from",        false },
		{ "from+out",    true, "from" },
		{ "both",        true, "from" },
	}),
}

return M
