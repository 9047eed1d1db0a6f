"""Multi-User Chat with slixmpp's xep_0045 and xep_0313 plugins
(python3-slixmpp 1.8.3), as its own API drives it: a room created (201),
configured through the form slixmpp fetched (persistent, members-only,
logging), a member let in and a stranger refused (registration-required),
voice revoked and given back, the history and the room's MAM archive paged
by slixmpp's RSM iterator, a kick (307) and a ban (301, then forbidden),
and the room, its owner and its ban list still there after a restart.
The clients run on one asyncio loop inside the test."""

import asyncio
import signal
import ssl

from harness import check, fixture, time_limit
from muc import SERVICE, muc_server, room_jid


@fixture
def server(scope):
    return muc_server(scope)


PLUGINS = ["xep_0030", "xep_0004", "xep_0045", "xep_0059", "xep_0203", "xep_0313"]


async def connect(server, account, resource):
    import slixmpp

    x = slixmpp.ClientXMPP("%s/%s" % (account.jid, resource), account.password)
    for p in PLUGINS:
        x.register_plugin(p)
    x.ssl_context.check_hostname = False
    x.ssl_context.verify_mode = ssl.CERT_NONE
    ready = asyncio.get_running_loop().create_future()
    x.add_event_handler("session_start",
                        lambda _: ready.done() or ready.set_result(True))
    x.add_event_handler("failed_all_auth",
                        lambda _: ready.done() or ready.set_exception(
                            AssertionError("slixmpp could not log in")))
    x.groupchat = asyncio.Queue()
    x.add_event_handler("groupchat_message", x.groupchat.put_nowait)
    x.connect(address=("127.0.0.1", server.port), disable_starttls=False)
    await asyncio.wait_for(ready, 20)
    x.send_presence()
    return x


async def body(x, text):
    while True:
        m = await asyncio.wait_for(x.groupchat.get(), 10)
        if m["body"] == text:
            return m


async def presence_of(x, room, nick, ptype=None, **want):
    """The next presence of room/nick on x (of type ptype, when given)
    whose muc fields match want."""
    fut = asyncio.get_running_loop().create_future()

    def on(pr):
        if pr["from"].resource == nick and not fut.done() and (
                ptype is None or pr["type"] == ptype) and all(
                pr["muc"][k] == v for k, v in want.items()):
            fut.set_result(pr)
    x.add_event_handler("muc::%s::presence" % room, on)
    try:
        return await asyncio.wait_for(fut, 10)
    finally:
        x.del_event_handler("muc::%s::presence" % room, on)


async def refused(x, room, nick):
    from slixmpp.exceptions import PresenceError
    try:
        await x["xep_0045"].join_muc_wait(room, nick, timeout=10)
    except PresenceError as e:
        return e.condition
    return None


async def first_part(server, room, owner_acct, guest_acct, stranger_acct):
    from slixmpp.exceptions import IqError

    owner = await connect(server, owner_acct, "o")
    guest = await connect(server, guest_acct, "g")
    stranger = await connect(server, stranger_acct, "s")
    muc = owner["xep_0045"]
    pres, _, _, _ = await muc.join_muc_wait(room, "boss", timeout=10)
    check(201 in pres["muc"]["status_codes"], pres)
    form = await muc.get_room_config(room)
    for var, value in (("muc#roomconfig_persistentroom", True),
                       ("muc#roomconfig_membersonly", True),
                       ("muc#roomconfig_enablelogging", True),
                       ("muc#roomconfig_historylength", "5"),
                       ("muc#roomconfig_roomname", "Slix room")):
        form.get_fields()[var]["value"] = value
    await muc.set_room_config(room, form)
    check(await refused(stranger, room, "st") == "registration-required")
    await muc.set_affiliation(room, "member", jid=guest_acct.jid)
    for i in range(8):
        owner.send_message(mto=room, mbody="line %d" % i, mtype="groupchat")
        await body(owner, "line %d" % i)
    pres, subject, occupants, history = await guest["xep_0045"].join_muc_wait(
        room, "guest", maxstanzas=3, timeout=10)
    check(pres["muc"]["role"] == "participant" and pres["muc"]["affiliation"] == "member", pres)
    check([m["body"] for m in history] == ["line 5", "line 6", "line 7"],
          [m["body"] for m in history])
    check("boss" in [o["from"].resource for o in occupants], occupants)
    # voice: revoked, refused, given back
    muted = asyncio.ensure_future(presence_of(guest, room, "guest", role="visitor"))
    await muc.set_role(room, "guest", "visitor")
    await muted
    errors = asyncio.Queue()
    guest.add_event_handler("groupchat_message_error", errors.put_nowait)
    guest.send_message(mto=room, mbody="muted?", mtype="groupchat")
    err = await asyncio.wait_for(errors.get(), 10)
    check(err["error"]["condition"] == "forbidden", err)
    voiced = asyncio.ensure_future(presence_of(guest, room, "guest", role="participant"))
    await muc.set_role(room, "guest", "participant")
    await voiced
    guest.send_message(mto=room, mbody="thanks", mtype="groupchat")
    await body(owner, "thanks")
    # the room's archive, 3 a page, with slixmpp's RSM iterator
    bodies, pages = [], 0
    async for page in guest["xep_0313"].retrieve(jid=room, iterator=True, rsm={"max": 3}):
        pages += 1
        for msg in page["mam"]["results"]:
            bodies.append(msg["mam_result"]["forwarded"]["stanza"]["body"])
    check(bodies == ["line %d" % i for i in range(8)] + ["thanks"], bodies)
    check(pages >= 3, pages)
    # kick, then ban
    kicked = asyncio.ensure_future(presence_of(guest, room, "guest", ptype="unavailable"))
    await muc.set_role(room, "guest", "none", reason="out")
    pr = await kicked
    check(307 in pr["muc"]["status_codes"], pr)
    await guest["xep_0045"].join_muc_wait(room, "guest", timeout=10)
    banned = asyncio.ensure_future(presence_of(guest, room, "guest", ptype="unavailable"))
    await muc.set_affiliation(room, "outcast", jid=guest_acct.jid, reason="enough")
    pr = await banned
    check(301 in pr["muc"]["status_codes"], pr)
    check(await refused(guest, room, "guest") == "forbidden")
    # a non-owner cannot read the form
    try:
        await stranger["xep_0045"].get_room_config(room)
        check(False, "a stranger read the configuration")
    except IqError as e:
        check(e.condition == "forbidden", e.condition)
    for x in (owner, guest, stranger):
        x.disconnect()


async def after_restart(server, room, owner_acct, guest_acct):
    owner = await connect(server, owner_acct, "o2")
    muc = owner["xep_0045"]
    pres, _, _, history = await muc.join_muc_wait(room, "boss", maxstanzas=2, timeout=10)
    check(201 not in pres["muc"]["status_codes"] and pres["muc"]["affiliation"] == "owner", pres)
    check([m["body"] for m in history] == ["line 7", "thanks"], [m["body"] for m in history])
    form = await muc.get_room_config(room)
    check(form.get_fields()["muc#roomconfig_roomname"]["value"] == "Slix room", form)
    check(form.get_fields()["muc#roomconfig_persistentroom"]["value"] is True, form)
    outcasts = await muc.get_affiliation_list(room, "outcast")
    check([str(j) for j in outcasts] == [guest_acct.jid], outcasts)
    owner.disconnect()


@time_limit(120)
def test_room_lifecycle_with_slixmpp(server):
    room = room_jid("slix")
    owner, guest, stranger = (server.account(p) for p in ("owner", "guest", "stranger"))
    asyncio.run(asyncio.wait_for(first_part(server, room, owner, guest, stranger), 90))
    server.send_signal(signal.SIGTERM)
    server.wait_exit()
    server.restart()
    asyncio.run(asyncio.wait_for(after_restart(server, room, owner, guest), 60))


__all__ = ["SERVICE"]
