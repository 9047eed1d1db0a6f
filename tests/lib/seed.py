"""Test-only server modules that set up state directly.

Tests of modules that only read rosters (disco, ping, lastactivity,
blocklist) need contacts with a given subscription state without going
through the whole subscription protocol (which mod_presence's own tests
cover). ROSTER_SEED is a plugin module that lets a client write one item
of its own roster:

    from seed import ROSTER_SEED, roster_item

    srv = scope.server(modules=[...], plugins={"test_roster_seed": ROSTER_SEED})
    roster_item(bob_client, alice.jid, "from")   # bob shares presence with alice

The item is stored in the shape util.roster describes; no roster push is
sent.
"""

import xmpp

NS_SEED = "urn:starling:test:roster-seed"

ROSTER_SEED = '''
-- mod_test_roster_seed (tests only): a client sets one item of its own
-- roster, with any subscription, by an iq set to itself:
--   <seed xmlns='%s' jid='...' subscription='from'/>
local roster_lib = require "util.roster"
local st = require "util.stanza"

local store = roster_lib.open(module)

module:hook("iq-set/self/%s:seed", function(event)
	local seed = event.stanza:get_child("seed", "%s")
	local roster = assert(roster_lib.load(store, event.origin.username))
	roster.items[seed.attr.jid] = {
		subscription = seed.attr.subscription or "none", groups = {},
	}
	assert(roster_lib.save(store, event.origin.username, roster))
	event.origin:send(st.reply(event.stanza))
	return true
end)
''' % (NS_SEED, NS_SEED, NS_SEED)


def roster_item(client, contact, subscription):
    """Store contact in client's roster with this subscription."""
    iq_id = xmpp.new_id("seed")
    client.send("<iq type='set' id='%s'><seed xmlns='%s' jid='%s' "
                "subscription='%s'/></iq>"
                % (iq_id, NS_SEED, xmpp.esc(contact), subscription))
    client.expect("iq", attrs={"id": iq_id, "type": "result"})
