#!/usr/bin/python3
"""Pubsub and PEP scenarios played by client libraries we did not write,
for tests/interop/test_pubsub_interop.py. Each scenario logs its accounts
in, plays its part and prints one JSON object: what the library saw.

    pubsub_agent.py --scenario slixmpp-pep|slixmpp-pubsub|aioxmpp-pubsub
                    --port N --service DOMAIN --accounts JSON

--accounts: [[user@host, password], ...] (the scenario's accounts, in
order). Every wait is bounded: a step that times out is reported as
missing, not waited for."""

import argparse
import asyncio
import json
import os
import ssl
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

TIMEOUT = 15
BM = "urn:xmpp:bookmarks:1"


def slix_client(jid, password, port, plugins):
    import slixmpp
    xmpp = slixmpp.ClientXMPP(jid, password, sasl_mech="SCRAM-SHA-256")
    for plugin in plugins:
        xmpp.register_plugin(plugin)
    xmpp.ssl_context.check_hostname = False
    xmpp.ssl_context.verify_mode = ssl.CERT_NONE
    started = asyncio.get_running_loop().create_future()

    async def session_start(_):
        xmpp.send_presence()
        await xmpp.get_roster()
        if not started.done():
            started.set_result(True)
    xmpp.add_event_handler("session_start", session_start)
    xmpp.connect(address=("127.0.0.1", port))
    return xmpp, started


def waiter(xmpp, event, match=lambda e: True):
    fut = asyncio.get_running_loop().create_future()

    def handler(ev):
        if not fut.done() and match(ev):
            fut.set_result(ev)
    xmpp.add_event_handler(event, handler)
    return fut


async def bounded(fut):
    try:
        return await asyncio.wait_for(fut, TIMEOUT)
    except asyncio.TimeoutError:
        return None


def publish_options(xmpp, fields):
    form = xmpp["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#publish-options")
    for var, value in fields.items():
        form.add_field(var=var, value=value)
    return form


async def slixmpp_pep(args, accounts):
    """alice and bob subscribed both ways; alice's XEP-0084 avatar reaches
    bob through +notify, he fetches the image; alice's XEP-0402 bookmark
    reaches her second resource and shows in XEP-0048 private storage."""
    from slixmpp.xmlstream import ET
    plugins = ["xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163", "xep_0084",
               "xep_0049", "xep_0048"]
    (a, apw), (b, bpw) = accounts
    alice, a_up = slix_client(a + "/one", apw, args.port, plugins)
    bob, b_up = slix_client(b + "/one", bpw, args.port, plugins)
    out = {}
    await bounded(asyncio.gather(a_up, b_up))
    await asyncio.sleep(0.5)
    bob.send_presence()          # with the caps that list the avatar's +notify
    subscribed = waiter(alice, "presence_available", lambda p: p["from"].bare == b)
    alice.send_presence_subscription(pto=b)
    out["subscribed"] = await bounded(subscribed) is not None
    await asyncio.sleep(0.5)     # bob's caps are learnt from his presence

    image = bytes(range(200)) * 4
    avatar_id = alice["xep_0084"].generate_id(image)
    seen = waiter(bob, "avatar_metadata_publish", lambda m: m["from"].bare == a)
    await alice["xep_0084"].publish_avatar(image)
    await alice["xep_0084"].publish_avatar_metadata(
        [{"id": avatar_id, "type": "image/png", "bytes": len(image)}])
    msg = await bounded(seen)
    out["avatar_event"] = msg["pubsub_event"]["items"]["item"]["id"] if msg else None
    got = await bob["xep_0084"].retrieve_avatar(a, avatar_id)
    out["avatar_bytes_ok"] = got["pubsub"]["items"]["item"]["avatar_data"]["value"] == image

    # Bookmarks 2: a second resource interested in bookmarks
    alice2, a2_up = slix_client(a + "/two", apw, args.port, plugins)
    alice2["xep_0163"].add_interest(BM)
    await bounded(a2_up)
    await asyncio.sleep(0.5)
    alice2.send_presence()       # with the caps that now say +notify
    await asyncio.sleep(0.5)
    bm_seen = waiter(alice2, "pubsub_publish", lambda m: m["pubsub_event"]["items"]["node"] == BM)
    conf = ET.fromstring("<conference xmlns='%s' name='Elsinore' autojoin='true'>"
                         "<nick>Hamlet</nick></conference>" % BM)
    await alice["xep_0060"].publish(None, BM, id="elsinore@conference.localhost", payload=conf,
                                    options=publish_options(alice, {
                                        "pubsub#persist_items": "true",
                                        "pubsub#max_items": "max",
                                        "pubsub#send_last_published_item": "never",
                                        "pubsub#access_model": "whitelist"}))
    msg = await bounded(bm_seen)
    out["bookmark_event"] = msg["pubsub_event"]["items"]["item"]["id"] if msg else None
    stored = await alice2["xep_0048"].get_bookmarks(method="xep_0049")
    out["private_bookmarks"] = [str(c["jid"]) for c in
                                stored["private"]["bookmarks"]["conferences"]]
    for x in (alice, alice2, bob):
        x.disconnect()
    return out


async def slixmpp_pubsub(args, accounts):
    """XEP-0060 at the component: create with a config, publish, a
    subscriber's event, items, retract, purge, delete."""
    from slixmpp.xmlstream import ET
    plugins = ["xep_0030", "xep_0004", "xep_0060"]
    (a, apw), (b, bpw) = accounts
    owner, o_up = slix_client(a + "/one", apw, args.port, plugins)
    sub, s_up = slix_client(b + "/one", bpw, args.port, plugins)
    await bounded(asyncio.gather(o_up, s_up))
    out = {}
    svc = args.service
    form = owner["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden",
                   value="http://jabber.org/protocol/pubsub#node_config")
    form.add_field(var="pubsub#max_items", value="3")
    await owner["xep_0060"].create_node(svc, "slix", config=form)
    await sub["xep_0060"].subscribe(svc, "slix")
    event = waiter(sub, "pubsub_publish")
    for i in range(4):
        await owner["xep_0060"].publish(svc, "slix", id="i%d" % i,
                                        payload=ET.fromstring("<e xmlns='urn:example:slix'>%d</e>" % i))
    msg = await bounded(event)
    out["event"] = msg["pubsub_event"]["items"]["item"]["id"] if msg else None
    got = await sub["xep_0060"].get_items(svc, "slix")
    out["items"] = [i["id"] for i in got["pubsub"]["items"]]
    config = await owner["xep_0060"].get_node_config(svc, "slix")
    out["max_items"] = config["pubsub_owner"]["configure"]["form"].get_values()["pubsub#max_items"]
    retracted = waiter(sub, "pubsub_retract")
    await owner["xep_0060"].retract(svc, "slix", "i3", notify=True)
    out["retract_event"] = (await bounded(retracted)) is not None
    await owner["xep_0060"].purge(svc, "slix")
    got = await sub["xep_0060"].get_items(svc, "slix")
    out["after_purge"] = [i["id"] for i in got["pubsub"]["items"]]
    deleted = waiter(sub, "pubsub_delete")
    await owner["xep_0060"].delete_node(svc, "slix")
    out["delete_event"] = (await bounded(deleted)) is not None
    for x in (owner, sub):
        x.disconnect()
    return out


async def aioxmpp_pubsub(args, accounts):
    """aioxmpp's PubSubClient at the component and at an account (PEP)."""
    import aioxmpp
    import aioxmpp.errors
    import aioxmpp.pubsub
    import aioxmpp.xso
    from xmpp_agent import hook_aioxmpp_sasl
    hook_aioxmpp_sasl()

    @aioxmpp.pubsub.xso.as_payload_class
    class Entry(aioxmpp.xso.XSO):
        TAG = ("urn:example:aioxmpp", "entry")
        text = aioxmpp.xso.Text()

    def client(jid, password):
        return aioxmpp.Client(
            aioxmpp.JID.fromstr(jid), aioxmpp.make_security_layer(password, no_verify=True),
            override_peer=[("127.0.0.1", args.port, aioxmpp.connector.STARTTLSConnector())],
            max_initial_attempts=1)

    (a, apw), (b, bpw) = accounts
    owner, sub = client(a + "/aio", apw), client(b + "/aio", bpw)
    for c in (owner, sub):     # available: events to the bare JID reach it
        c.summon(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(available=True))
    svc = aioxmpp.JID.fromstr(args.service)
    out = {}
    async with owner.connected(), sub.connected():
        ops, sps = owner.summon(aioxmpp.PubSubClient), sub.summon(aioxmpp.PubSubClient)
        got_event = asyncio.get_running_loop().create_future()

        def published(jid, node, item, **kw):
            if not got_event.done():
                got_event.set_result(item.id_)
        sps.on_item_published.connect(published)
        await ops.create(svc, "aio")
        await sps.subscribe(svc, "aio")
        entry = Entry()
        entry.text = "hello"
        out["published_id"] = await ops.publish(svc, "aio", entry, id_="first")
        out["event"] = await bounded(got_event)
        items = await sps.get_items(svc, "aio")
        out["items"] = [(i.id_, i.registered_payload.text) for i in items.payload.items]
        subs = await sps.get_subscriptions(svc)
        out["subscriptions"] = [s.node for s in subs.subscriptions]
        # more items, the newest asked for with max_items; a retraction
        # the subscriber hears of (notify), then no more events once
        # unsubscribed; the node's deletion
        for n in ("second", "third"):
            entry.text = n
            await ops.publish(svc, "aio", entry, id_=n)
        items = await sps.get_items(svc, "aio", max_items=2)
        out["newest_two"] = sorted(i.id_ for i in items.payload.items)
        got_retract = asyncio.get_running_loop().create_future()

        def retracted(jid, node, id_, **kw):
            if not got_retract.done():
                got_retract.set_result(id_)
        sps.on_item_retracted.connect(retracted)
        await ops.retract(svc, "aio", "first", notify=True)
        out["retract_event"] = await bounded(got_retract)
        items = await sps.get_items(svc, "aio")
        out["after_retract"] = sorted(i.id_ for i in items.payload.items)
        await sps.unsubscribe(svc, "aio")
        subs = await sps.get_subscriptions(svc)
        out["subscriptions_after"] = [s.node for s in subs.subscriptions]
        await ops.delete(svc, "aio")
        try:
            await sps.get_items(svc, "aio")
            out["deleted"] = False
        except aioxmpp.errors.XMPPCancelError as e:
            out["deleted"] = e.condition == aioxmpp.ErrorCondition.ITEM_NOT_FOUND
        # PEP: the account's own service, read by a stranger with access open
        owner_bare = owner.local_jid.bare()
        form = aioxmpp.forms.Data(aioxmpp.forms.DataType.SUBMIT)
        form.fields.append(aioxmpp.forms.Field(
            var="FORM_TYPE", type_=aioxmpp.forms.FieldType.HIDDEN,
            values=["http://jabber.org/protocol/pubsub#publish-options"]))
        form.fields.append(aioxmpp.forms.Field(var="pubsub#access_model", values=["open"]))
        entry.text = "pep"
        await ops.publish(None, "urn:example:aioxmpp", entry, id_="current", publish_options=form)
        items = await sps.get_items(owner_bare, "urn:example:aioxmpp")
        out["pep_items"] = [(i.id_, i.registered_payload.text) for i in items.payload.items]
        features = await ops.get_features(owner_bare)
        out["pep_features"] = sorted(str(f.value) if hasattr(f, "value") else str(f) for f in features)
    return out


SCENARIOS = {"slixmpp-pep": slixmpp_pep, "slixmpp-pubsub": slixmpp_pubsub,
             "aioxmpp-pubsub": aioxmpp_pubsub}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--service", default="pubsub.localhost")
    p.add_argument("--accounts", required=True)
    args = p.parse_args()
    if os.environ.get("PUBSUB_AGENT_DEBUG"):   # the libraries' wire logs, on stderr
        import logging
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    out = asyncio.run(asyncio.wait_for(SCENARIOS[args.scenario](args, json.loads(args.accounts)),
                                       TIMEOUT * 6))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
