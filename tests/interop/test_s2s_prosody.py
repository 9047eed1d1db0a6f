"""Federation with Debian's Prosody 0.12: a private Prosody (pro.example,
its own loopback address, port 5269) and a Starling (st.example), joined
by a private NSD serving their SRV records (tests/lib/peers.py,
docs/INTEROP.md). Users of each talk to users of the other: chat both
ways, a subscription that ends in "both" (asked from either side) with
presence flowing afterwards, pings and disco#info to the other server.

Dialback only: no shared CA (Prosody's certificate comes from a CA that
only it knows, Starling's is self-signed), s2s_secure_auth = false and
s2s_require_encryption = true on Prosody, so both directions authenticate
with XEP-0220 over STARTTLS. The SASL EXTERNAL variant (one CA trusted by
both, s2s_secure_auth = true) is the last test."""

from harness import check, fixture, skip, time_limit
import peers
import s2s_interop as scenario


@fixture
def fed(scope):
    f = peers.Federation(scope)
    st = f.starling("st.example")
    pro = f.prosody("pro.example")
    f.start()
    return st, pro


def test_chat_both_ways(fed):
    st, pro = fed
    scenario.chat_both_ways(st, pro)
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=True)
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=False)
    scenario.iq_to_the_other_server(st, pro)
    methods = scenario.starling_methods(st, pro)
    check(methods == {"outgoing": "dialback", "incoming": "dialback"}, methods)
    # Prosody's side says the same: its key checked by Starling, Starling's
    # key checked with Starling, both streams complete
    pro.wait_log(r"s2sout\S*\s+debug\s+sent dialback key on outgoing s2s stream")
    pro.wait_log(r"s2sin\S*\s+debug\s+connection st\.example->pro\.example is now "
                 r"authenticated for st\.example")
    pro.wait_log(r"info\s+Outgoing s2s connection pro\.example->st\.example complete")
    pro.wait_log(r"info\s+Incoming s2s connection st\.example->pro\.example complete")


def test_subscription_from_starling_ends_in_both(fed):
    st, pro = fed
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=True)


def test_subscription_from_prosody_ends_in_both(fed):
    st, pro = fed
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=False)


def test_iq_to_the_other_server_is_answered(fed):
    st, pro = fed
    scenario.iq_to_the_other_server(st, pro)


@time_limit(60)
def test_sasl_external_with_a_shared_ca(ctx):
    """One CA signs both certificates and both servers trust it
    (s2s_secure_auth = true): Prosody offers SASL EXTERNAL and expects
    Starling to use it, and Starling should offer it to Prosody."""
    f = peers.Federation(ctx, shared_ca=True)
    st = f.starling("st.example")
    pro = f.prosody("pro.example")
    f.start()
    scenario.external_works(st, pro, r"No certificate provided by st\.example")
    scenario.chat_both_ways(st, pro)
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=True)
    scenario.subscription_ends_in_both(st, pro, starling_asks_first=False)
    scenario.iq_to_the_other_server(st, pro)
    methods = scenario.starling_methods(st, pro)
    check(methods == {"outgoing": "SASL EXTERNAL", "incoming": "SASL EXTERNAL"},
          methods)
