"""Multi-User Chat with aioxmpp's MUCClient (python3-aioxmpp 0.13.3), through
its own API: a room created and configured with aioxmpp's ConfigurationForm
(persistent, moderated), a visitor asking for voice and the moderator
granting it through aioxmpp's on_muc_role_request, the topic, messages, a
kick and a ban seen by aioxmpp's on_exit with their status codes, a
members-only room refusing a stranger, and the configuration still there
after a restart; then the discussion history a newcomer asks for with
aioxmpp's History, and the room's MAM archive paged with aioxmpp's RSM
(aioxmpp 0.13 has no MAM service: the query and its results are XSOs
declared here). The clients run on one asyncio loop inside the test."""

import asyncio
import signal

from harness import check, fixture, time_limit
from muc import muc_server, room_jid


@fixture
def server(scope):
    return muc_server(scope)


class Client:
    """An aioxmpp client with its MUC service, connected as account."""

    def __init__(self, server, account, resource):
        import aioxmpp
        import aioxmpp.connector
        self.jid = aioxmpp.JID.fromstr("%s/%s" % (account.jid, resource))
        self.client = aioxmpp.Client(
            self.jid, aioxmpp.make_security_layer(account.password, no_verify=True),
            override_peer=[("127.0.0.1", server.port, aioxmpp.connector.STARTTLSConnector())],
            max_initial_attempts=1)
        self.muc = self.client.summon(aioxmpp.MUCClient)
        self._cm = None

    async def __aenter__(self):
        self._cm = self.client.connected()
        await self._cm.__aenter__()
        return self

    async def __aexit__(self, *exc):
        return await self._cm.__aexit__(*exc)

    async def join(self, room, nick):
        import aioxmpp
        r, fut = self.muc.join(aioxmpp.JID.fromstr(room), nick, autorejoin=False)
        await asyncio.wait_for(fut, 10)
        return r


def signal_future(sig, pick=lambda *a, **kw: True):
    """A future set by the first emission of sig whose arguments pick likes."""
    fut = asyncio.get_running_loop().create_future()

    def on(*args, **kw):
        if not fut.done() and pick(*args, **kw):
            fut.set_result((args, kw))
        return fut.done()   # disconnect once done
    sig.connect(on)
    return fut


async def until(cond, what, timeout=10):
    """Waits (on the loop) until cond() holds: what aioxmpp learns from
    stanzas after a future it returned is done (the subject follows the
    self-presence that ends a join)."""
    for _ in range(int(timeout / 0.05)):
        if cond():
            return
        await asyncio.sleep(0.05)
    check(False, "timed out waiting for " + what)


async def configure(c, room, **values):
    import aioxmpp
    import aioxmpp.muc
    jid = aioxmpp.JID.fromstr(room)
    form = aioxmpp.muc.ConfigurationForm.from_xso(await c.muc.get_room_config(jid))
    for k, v in values.items():
        getattr(form, k).value = v
    await c.muc.set_room_config(jid, form.render_reply())


async def first_part(server, room, owner_acct, guest_acct, stranger_acct):
    import aioxmpp
    import aioxmpp.errors

    async with Client(server, owner_acct, "o") as o, Client(server, guest_acct, "g") as g, \
            Client(server, stranger_acct, "s") as s:
        oroom = await o.join(room, "mod")
        await configure(o, room, persistentroom=True, moderatedroom=True, roomname="Aio room")
        await oroom.set_topic({None: "aioxmpp topic"})
        groom = await g.join(room, "guest")
        check(groom.me.role == "visitor", groom.me.role)
        await until(lambda: groom.muc_subject, "the subject")
        check(groom.muc_subject.any() == "aioxmpp topic", groom.muc_subject)
        # voice: requested by the visitor, granted by the moderator's client

        def approve(form, fut):
            if not fut.done():
                check(form.roomnick.value == "guest", form.roomnick.value)
                form.request_allow.value = True
                fut.set_result(form.render_reply())
        oroom.on_muc_role_request.connect(approve)
        await groom.muc_request_voice()
        await until(lambda: groom.me.role == "participant", "voice")
        heard = signal_future(oroom.on_message,
                              lambda msg, member, source, **kw: msg.body.any() == "with voice")
        msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
        msg.body[None] = "with voice"
        groom.send_message(msg)
        (msg, member, _), _ = await asyncio.wait_for(heard, 10)
        check(member.nick == "guest", member)
        # a kick, then a ban, as aioxmpp reports them
        guest_member = next(m for m in oroom.members if m.nick == "guest")
        exited = signal_future(groom.on_exit)
        await oroom.kick(guest_member, "cool down")
        _, kw = await asyncio.wait_for(exited, 10)
        check(307 in kw.get("muc_status_codes", set()), kw)
        check(kw.get("muc_reason") == "cool down", kw)
        groom = await g.join(room, "guest")
        guest_member = next(m for m in oroom.members if m.nick == "guest")
        exited = signal_future(groom.on_exit)
        await oroom.ban(guest_member, "gone for good")
        _, kw = await asyncio.wait_for(exited, 10)
        check(301 in kw.get("muc_status_codes", set()), kw)
        try:
            await g.join(room, "guest")
            check(False, "a banned user entered")
        except aioxmpp.errors.XMPPError as e:
            check(e.condition == aioxmpp.ErrorCondition.FORBIDDEN, e)
        # members-only refuses a stranger
        await configure(o, room, membersonly=True)
        try:
            await s.join(room, "st")
            check(False, "a stranger entered a members-only room")
        except aioxmpp.errors.XMPPError as e:
            check(e.condition == aioxmpp.ErrorCondition.REGISTRATION_REQUIRED, e)


async def after_restart(server, room, owner_acct):
    import aioxmpp
    import aioxmpp.muc

    async with Client(server, owner_acct, "o2") as o:
        oroom = await o.join(room, "mod")
        check(oroom.me.affiliation == "owner", oroom.me.affiliation)
        await until(lambda: oroom.muc_subject, "the subject")
        check(oroom.muc_subject.any() == "aioxmpp topic", oroom.muc_subject)
        form = aioxmpp.muc.ConfigurationForm.from_xso(
            await o.muc.get_room_config(aioxmpp.JID.fromstr(room)))
        check(form.roomname.value == "Aio room", form.roomname.value)
        check(form.moderatedroom.value is True and form.membersonly.value is True,
              (form.moderatedroom.value, form.membersonly.value))
        outcasts = await o.muc.get_affiliated(aioxmpp.JID.fromstr(room), "outcast")
        check(len(outcasts) == 1, outcasts)


@time_limit(120)
def test_room_with_aioxmpp(server):
    room = room_jid("aio")
    owner, guest, stranger = (server.account(p) for p in ("owner", "guest", "stranger"))
    asyncio.run(asyncio.wait_for(first_part(server, room, owner, guest, stranger), 90))
    server.send_signal(signal.SIGTERM)
    server.wait_exit()
    server.restart()
    asyncio.run(asyncio.wait_for(after_restart(server, room, owner), 60))


def mam_xsos():
    """XEP-0313 query, fin and result as aioxmpp XSOs (once per process)."""
    import aioxmpp
    import aioxmpp.misc
    import aioxmpp.rsm.xso as rsm_xso
    import aioxmpp.xso as xso
    if hasattr(mam_xsos, "done"):
        return mam_xsos.done
    ns = "urn:xmpp:mam:2"

    @aioxmpp.IQ.as_payload_class
    class Query(xso.XSO):
        TAG = (ns, "query")
        queryid = xso.Attr("queryid", default=None)
        rsm = xso.Child([rsm_xso.ResultSetMetadata])

    @aioxmpp.IQ.as_payload_class
    class Fin(xso.XSO):
        TAG = (ns, "fin")
        complete = xso.Attr("complete", type_=xso.Bool(), default=False)
        rsm = xso.Child([rsm_xso.ResultSetMetadata])

    class Result(xso.XSO):
        TAG = (ns, "result")
        queryid = xso.Attr("queryid", default=None)
        id_ = xso.Attr("id")
        forwarded = xso.Child([aioxmpp.misc.Forwarded])

    aioxmpp.Message.xep0313_result = xso.Child([Result])
    mam_xsos.done = Query
    return Query


async def mam_page(c, room, queryid, after=None, max_=2):
    """One page of room's archive: ([(archive id, body)], fin)."""
    import aioxmpp
    import aioxmpp.dispatcher
    import aioxmpp.rsm.xso as rsm
    Query = mam_xsos()
    got = []

    def on_message(msg):
        r = getattr(msg, "xep0313_result", None)
        if r is not None and r.queryid == queryid:
            got.append((r.id_, r.forwarded.stanza.body.any()))
    disp = c.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    disp.register_callback(aioxmpp.MessageType.NORMAL, aioxmpp.JID.fromstr(room), on_message)
    try:
        q = Query()
        q.queryid = queryid
        q.rsm = rsm.ResultSetMetadata()
        q.rsm.max_ = max_
        if after is not None:
            q.rsm.after = rsm.After()
            q.rsm.after.value = after
        iq = aioxmpp.IQ(type_=aioxmpp.IQType.SET, to=aioxmpp.JID.fromstr(room), payload=q)
        fin = await c.client.send(iq)
    finally:
        disp.unregister_callback(aioxmpp.MessageType.NORMAL, aioxmpp.JID.fromstr(room))
    return got, fin


async def history_and_archive(server, room, owner_acct, guest_acct, reader_acct):
    import aioxmpp
    import aioxmpp.muc.xso

    async with Client(server, owner_acct, "o") as o, Client(server, guest_acct, "g") as g, \
            Client(server, reader_acct, "r") as r:
        oroom = await o.join(room, "host")
        await configure(o, room, enablelogging=True, roomname="Archived")
        for i in range(5):
            heard = signal_future(oroom.on_message,
                                  lambda msg, member, source, n=i, **kw: msg.body.any() == "m%d" % n)
            msg = aioxmpp.Message(type_=aioxmpp.MessageType.GROUPCHAT)
            msg.body[None] = "m%d" % i
            oroom.send_message(msg)
            await asyncio.wait_for(heard, 10)
        # history on entering: the last two, as aioxmpp's History asks
        seen = []
        r_, fut = g.muc.join(aioxmpp.JID.fromstr(room), "guest", autorejoin=False,
                             history=aioxmpp.muc.xso.History(maxstanzas=2))
        r_.on_message.connect(lambda msg, member, source, **kw: seen.append(msg.body.any()))
        await asyncio.wait_for(fut, 10)
        await until(lambda: len(seen) >= 2, "the history")
        await until(lambda: r_.muc_subject is not None, "the subject after the history")
        got = [str(b) for b in seen if b]
        check(got == ["m3", "m4"], got)
        # the archive, paged forwards two at a time by a client not in the room
        pages, after = [], None
        for n in range(4):
            got, fin = await mam_page(r, room, "q%d" % n, after)
            pages.append([body for _, body in got])
            check(fin.rsm is not None and fin.rsm.first is not None or not got, fin)
            if fin.complete:
                break
            after = fin.rsm.last.value
            check(after == got[-1][0], (after, got))
        check(pages == [["m0", "m1"], ["m2", "m3"], ["m4"]], pages)
        check(fin.complete, "the last page says complete")


@time_limit(120)
def test_history_and_archive_with_aioxmpp(server):
    room = room_jid("aioarch")
    owner, guest, reader = (server.account(p) for p in ("aarch", "aguest", "areader"))
    asyncio.run(asyncio.wait_for(history_and_archive(server, room, owner, guest, reader), 90))
