-- util.dataforms: XEP-0004 data forms, the parts a server needs to offer a
-- form and read what a client submits.
--
--   read(x)            the fields of a submitted <x xmlns='jabber:x:data'/>:
--                      { [var] = { "value", ... }, ... } (every field a
--                      list of its <value/> texts, possibly empty), and
--                      the form's FORM_TYPE (nil when it has none); nil,
--                      "reason" for a form of another type than submit
--                      or a field without var, or a var given twice
--   form(form_type, fields)
--                      a new <x type='form'/> stanza: the hidden FORM_TYPE
--                      field, then one <field var type/> per entry of the
--                      list fields ({ var =, type =, label = }, and
--                      optional child = a stanza put inside the field)

local st = require "util.stanza"

local ipairs = ipairs

local NS = "jabber:x:data"

local M = { xmlns = NS }

function M.read(x)
	local t = x.attr.type
	if t ~= nil and t ~= "submit" then
		return nil, "a form of type '" .. t .. "' cannot be submitted"
	end
	local fields, form_type = {}, nil
	for field in x:childtags("field", NS) do
		local var = field.attr.var
		if not var then
			return nil, "a field without var"
		end
		if fields[var] then
			return nil, "field '" .. var .. "' given twice"
		end
		local values = {}
		for v in field:childtags("value", NS) do
			values[#values + 1] = v:get_text()
		end
		if var == "FORM_TYPE" then
			form_type = values[1]
		else
			fields[var] = values
		end
	end
	return fields, form_type
end

function M.form(form_type, fields)
	local x = st.stanza("x", { xmlns = NS, type = "form" })
		:tag("field", { var = "FORM_TYPE", type = "hidden" })
		:text_tag("value", form_type):up()
	for _, f in ipairs(fields) do
		x:tag("field", { var = f.var, type = f.type, label = f.label })
		if f.child then
			x:add_child(f.child)
		end
		x:up()
	end
	return x
end

return M
