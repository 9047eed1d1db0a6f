-- luacheck configuration (run as `luacheck lua modules`; part of make test).
std = "lua54"
max_line_length = 120
-- Methods of the module object need not use `self`.
self = false

-- Plugin modules: the module object is the only global they see.
files["modules/"] = {
	read_globals = {
		module = { other_fields = true, read_only = false },
	},
}
