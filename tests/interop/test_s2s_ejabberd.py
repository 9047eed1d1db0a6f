"""Federation with Debian's ejabberd 23.01: a private ejabberd node
(ej.example, its own loopback address, port 5269, its own epmd) and a
Starling (st.example), joined by a private NSD serving their SRV records
(tests/lib/peers.py, docs/INTEROP.md). Users of each talk to users of the
other: chat both ways, a subscription that ends in "both" (asked from
either side) with presence flowing afterwards, pings and disco#info to
the other server.

Dialback only: no shared CA (ejabberd's certificate comes from a CA that
only it knows, Starling's is self-signed), s2s_use_starttls: required and
mod_s2s_dialback on ejabberd, so both directions authenticate with
XEP-0220 over STARTTLS. The SASL EXTERNAL variant (one CA trusted by both:
s2s_cafile) is the last test."""

from harness import check, fixture, time_limit
import peers
import s2s_interop as scenario


@fixture
def fed(scope):
    f = peers.Federation(scope)
    st = f.starling("st.example")
    ej = f.ejabberd("ej.example")
    f.start()
    return st, ej


def test_chat_both_ways(fed):
    st, ej = fed
    scenario.chat_both_ways(st, ej)
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=True)
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=False)
    scenario.iq_to_the_other_server(st, ej)
    methods = scenario.starling_methods(st, ej)
    check(methods == {"outgoing": "dialback", "incoming": "dialback"}, methods)


def test_subscription_from_starling_ends_in_both(fed):
    st, ej = fed
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=True)


def test_subscription_from_ejabberd_ends_in_both(fed):
    st, ej = fed
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=False)


def test_iq_to_the_other_server_is_answered(fed):
    st, ej = fed
    scenario.iq_to_the_other_server(st, ej)


@time_limit(60)
def test_sasl_external_with_a_shared_ca(ctx):
    """One CA signs both certificates and both servers trust it:
    ejabberd offers SASL EXTERNAL and uses it towards Starling, and
    Starling should do the same."""
    f = peers.Federation(ctx, shared_ca=True)
    st = f.starling("st.example")
    ej = f.ejabberd("ej.example", dialback=False)
    f.start()
    # ejabberd without mod_s2s_dialback offers EXTERNAL only; a peer that
    # answers with dialback is refused
    scenario.external_works(st, ej, r"Closing inbound s2s connection st\.example -> "
                              r"ej\.example: Stream closed by local host: not-authorized")
    scenario.chat_both_ways(st, ej)
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=True)
    scenario.subscription_ends_in_both(st, ej, starling_asks_first=False)
    scenario.iq_to_the_other_server(st, ej)
    methods = scenario.starling_methods(st, ej)
    check(methods == {"outgoing": "SASL EXTERNAL", "incoming": "SASL EXTERNAL"},
          methods)
