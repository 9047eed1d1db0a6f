#!/usr/bin/python3
"""An XMPP client built on a library we did not write (slixmpp, aioxmpp or
nbxmpp),
driven over stdin/stdout by an interop test (see agents.py).

    xmpp_agent.py --lib slixmpp|aioxmpp|nbxmpp --jid USER@HOST/RES --password PW
                  --port N [--host 127.0.0.1] [--direct-tls] [--mech NAME]
                  [--priority N] [--lifetime SECONDS] [--plugins LIST]
                  [--im]

stdout, one JSON object a line:
    {"event": "ready", "jid": FULL_JID, "mech": SASL_MECHANISM}
                                                 logged in, presence sent
    {"event": "auth_failure", "reason": ..}      a SASL <failure/> received
                                                 (all three libraries)
    {"event": "message", "from": .., "to": .., "type": .., "id": .., "body": ..,
     "delay": STAMP or null, "delay_from": ..}   (delay: slixmpp with
                                                 --plugins xep_0203)
    {"event": "presence", "from": .., "to": .., "type": .., "status": ..}
                                                 any presence (--im, slixmpp;
                                                 type "available" when none)
    {"event": "roster", "ok": true|false, "empty": bool, "ver": ..,
     "items": {JID: SUBSCRIPTION}}               the answer to a roster command
    {"event": "message_error", "from": .., "id": .., "condition": ..,
     "app_condition": ..}                        a message bounced (slixmpp)
    {"event": "iq_result", "cmd": .., "ok": true|false, "jids": [..],
     "condition": ..}                            the answer to a blocking or
                                                 carbons command
    {"event": "sm_enabled", "id": .., "resume": bool}   XEP-0198 enabled
                                                 (slixmpp --plugins xep_0198)
    {"event": "cut"}                             the connection was dropped
                                                 by a cut command
    {"event": "resumed"}                         the stream was resumed
    {"event": "carbon", "direction": "received"|"sent", "from": .., "to": ..,
     "id": .., "body": ..}                       a XEP-0280 copy (the inner
                                                 message; --plugins xep_0280)
    {"event": "mam", "ok": true|false, "pages": N, "items": [[ID, BODY,
     STAMP], ..], "condition": ..}               the answer to a mam command
    {"event": "failed", "reason": ..}            login or connection failed
    {"event": "disconnected", "reason": ..}
stdin, one JSON object a line:
    {"cmd": "send", "to": JID, "body": TEXT, "type": "chat", "id": ID}
    {"cmd": "block"|"unblock", "jids": [JID, ..]}    XEP-0191 (slixmpp with
    {"cmd": "blocklist"}                             --plugins xep_0191)
    {"cmd": "adhoc", "node": N, "fields": {var: v}}  XEP-0050 at the server
                                                     (--plugins xep_0050)
    {"cmd": "subscribe", "to": JID}              presence subscription request
    {"cmd": "roster", "ver": VER or null}        a roster get (slixmpp)
    {"cmd": "presence", "show": .., "status": ..}  broadcast presence
    {"cmd": "raw", "xml": TEXT}                  sent as it is (nonzas such as
                                                 XEP-0352 <inactive/>)
    {"cmd": "cut"}                               drop the TCP connection
                                                 without closing the stream
    {"cmd": "reconnect"}                         connect again after a cut
                                                 (xep_0198 resumes)
    {"cmd": "carbons", "enable": bool}           XEP-0280 (--plugins xep_0280)
    {"cmd": "mam", "max": N, "reverse": bool, "with": JID or null}
                                                 page through the whole
                                                 archive (--plugins xep_0313)
    {"cmd": "quit"}
The library's debug log goes to stderr. The agent exits by itself after
--lifetime seconds.

Library notes (versions in Debian 12):
- slixmpp 1.8.3 knows only tls-unique (undefined on TLS 1.3, where it
  computes it as on TLS 1.2; Starling accepts that) and, when a non-PLUS
  SCRAM mechanism is forced, sends the gs2 flag 'y' whenever TLS is up.
  Starling accepts that by default (c2s_strict_channel_binding = false),
  so the agent runs slixmpp as it is; --hide-cb hides the channel binding
  credential so that it says 'n' (for a server with the strict rule).
- aioxmpp 0.13.3 (aiosasl 0.5) uses non-PLUS SCRAM only (the best hash
  offered, flag 'n') and enforces at least 4096 iterations. It retries and
  falls back silently; the agent wraps its SASLXMPPInterface to report
  each <failure/>.
- nbxmpp 4.2.2 (Gajim's library; GLib main loop, not asyncio) turns its
  -PLUS mechanisms off (no channel binding through GLib) and takes
  SCRAM-SHA-512, -256 or -1, flag 'n'. Commands: send and quit only.
"""

import argparse
import asyncio
import json
import logging
import ssl
import sys
import threading


def emit(event, **fields):
    fields["event"] = event
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


def start_stdin_reader(loop, queue):
    def pump():
        for line in sys.stdin:
            line = line.strip()
            if line:
                loop.call_soon_threadsafe(queue.put_nowait, json.loads(line))
        loop.call_soon_threadsafe(queue.put_nowait, {"cmd": "quit"})
    threading.Thread(target=pump, daemon=True).start()


async def run_slixmpp(args, commands):
    import slixmpp

    xmpp = slixmpp.ClientXMPP(args.jid, args.password, sasl_mech=args.mech)
    for plugin in args.plugins:
        xmpp.register_plugin(plugin)
    xmpp.ssl_context.check_hostname = False
    xmpp.ssl_context.verify_mode = ssl.CERT_NONE
    if args.hide_cb:
        mechanisms = xmpp["feature_mechanisms"]
        default_credentials = mechanisms.sasl_callback

        def credentials(required, optional):
            values = default_credentials(required, optional)
            if "channel_binding" in values:
                values["channel_binding"] = None
            return values
        mechanisms.sasl_callback = credentials

    done = asyncio.get_running_loop().create_future()
    state = {"cutting": False}

    def finish(event, reason):
        emit(event, reason=str(reason))
        if not done.done():
            done.set_result(None)

    def disconnected(reason):
        if state["cutting"]:
            state["cutting"] = False
            emit("cut")
        else:
            finish("disconnected", reason)

    async def session_start(_):
        if args.im:     # an interested resource before initial presence
            await xmpp.get_roster()
        xmpp.send_presence(ppriority=args.priority)
        mech = xmpp["feature_mechanisms"].mech
        emit("ready", jid=str(xmpp.boundjid), mech=mech and mech.name)

    def message(msg):
        if msg.xml.find("{urn:xmpp:mam:2}result") is not None:
            return                      # reported by the mam command
        delay = None
        if ("xep_0203" in args.plugins
                and msg.xml.find("{urn:xmpp:delay}delay") is not None):
            delay = msg["delay"]
        stamp = delay["stamp"] if delay is not None else None
        emit("message", **{"from": str(msg["from"]), "to": str(msg["to"]),
                           "type": msg["type"], "id": msg["id"],
                           "body": msg["body"],
                           "delay": stamp.isoformat() if stamp else None,
                           "delay_from": str(delay["from"]) if stamp else None})

    def presence(pres):
        emit("presence", **{"from": str(pres["from"]), "to": str(pres["to"]),
                            "type": pres["type"], "status": pres["status"]})

    def message_error(msg):
        error = msg["error"]
        app = [child.tag for child in error.xml
               if not child.tag.startswith("{urn:ietf:params:xml:ns:xmpp-stanzas}")]
        emit("message_error", **{"from": str(msg["from"]), "id": msg["id"],
                                 "condition": error["condition"],
                                 "app_condition": app[0] if app else None})

    xmpp.add_event_handler("session_start", session_start)
    xmpp.add_event_handler("message", message)
    xmpp.add_event_handler("message_error", message_error)
    if args.im:
        xmpp.add_event_handler("presence", presence)
    xmpp.add_event_handler("failed_auth",
                           lambda s: emit("auth_failure", reason=str(s)))
    xmpp.add_event_handler("failed_all_auth",
                           lambda _: finish("failed", "all SASL mechanisms failed"))
    xmpp.add_event_handler("connection_failed",
                           lambda e: finish("failed", "connection failed: %s" % e))
    xmpp.add_event_handler("disconnected", disconnected)
    add_slixmpp_extras(xmpp, args)
    xmpp.connect(address=(args.host, args.port), use_ssl=args.direct_tls,
                 disable_starttls=False)

    async def serve():
        while True:
            cmd = await commands.get()
            if cmd["cmd"] == "quit":
                xmpp.disconnect()
                return
            if cmd["cmd"] == "send":
                msg = xmpp.make_message(mto=cmd["to"], mbody=cmd["body"],
                                        mtype=cmd.get("type", "chat"))
                if cmd.get("id"):
                    msg["id"] = cmd["id"]
                msg.send()
            elif cmd["cmd"] in ("block", "unblock", "blocklist"):
                await slixmpp_blocking(xmpp, cmd)
            elif cmd["cmd"] == "adhoc":
                await slixmpp_adhoc(xmpp, cmd)
            elif cmd["cmd"] == "subscribe":
                xmpp.send_presence(pto=cmd["to"], ptype="subscribe")
            elif cmd["cmd"] == "roster":
                await slixmpp_roster(xmpp, cmd.get("ver"))
            elif cmd["cmd"] == "upload":
                await slixmpp_upload(xmpp, cmd)
            elif cmd["cmd"] == "cut":
                state["cutting"] = True
                xmpp.transport.abort()      # no </stream:stream>
            else:
                await slixmpp_modern(xmpp, args, cmd)

    server_task = asyncio.ensure_future(serve())
    await asyncio.wait([server_task, done], return_when=asyncio.FIRST_COMPLETED)
    if server_task.done():
        try:
            await asyncio.wait_for(asyncio.shield(done), 5)
        except asyncio.TimeoutError:
            pass
    else:
        server_task.cancel()


def add_slixmpp_extras(xmpp, args):
    """Events of the XEP-0198 and XEP-0280 plugins, when registered."""
    def carbon(direction):
        def handler(msg):
            inner = msg["carbon_%s" % direction]
            emit("carbon", **{"direction": direction, "from": str(inner["from"]),
                              "to": str(inner["to"]), "id": inner["id"],
                              "body": inner["body"]})
        return handler

    if "xep_0198" in args.plugins:
        xmpp.add_event_handler("sm_enabled", lambda s: emit(
            "sm_enabled", id=s["id"], resume=s["resume"] in ("true", "1", True)))
        xmpp.add_event_handler("session_resumed", lambda _: emit("resumed"))
    if "xep_0280" in args.plugins:
        xmpp.add_event_handler("carbon_received", carbon("received"))
        xmpp.add_event_handler("carbon_sent", carbon("sent"))


async def slixmpp_modern(xmpp, args, cmd):
    """The commands of mobile and multi-device clients: presence, raw
    nonzas, reconnection, carbons, archive queries."""
    from slixmpp.exceptions import IqError, IqTimeout

    if cmd["cmd"] == "presence":
        xmpp.send_presence(pshow=cmd.get("show"), pstatus=cmd.get("status"),
                           ppriority=args.priority)
    elif cmd["cmd"] == "raw":
        xmpp.send_raw(cmd["xml"])
    elif cmd["cmd"] == "reconnect":
        xmpp.connect(address=(args.host, args.port), use_ssl=args.direct_tls,
                     disable_starttls=False)
    elif cmd["cmd"] == "carbons":
        plugin = xmpp["xep_0280"]
        try:
            await (plugin.enable if cmd.get("enable", True) else plugin.disable)(timeout=10)
            emit("iq_result", cmd="carbons", ok=True)
        except IqError as e:
            emit("iq_result", cmd="carbons", ok=False,
                 condition=e.iq["error"]["condition"])
        except IqTimeout:
            emit("iq_result", cmd="carbons", ok=False, condition="timeout")
    elif cmd["cmd"] == "mam":
        await slixmpp_mam(xmpp, cmd)


async def slixmpp_mam(xmpp, cmd):
    """Pages through the account's archive with slixmpp's own RSM iterator
    (forwards, or backwards from the end with reverse); reports every item
    in the order the pages and their items came."""
    from slixmpp import JID
    from slixmpp.exceptions import IqError, IqTimeout

    iterator = xmpp["xep_0313"].retrieve(
        with_jid=JID(cmd["with"]) if cmd.get("with") else None,
        reverse=bool(cmd.get("reverse")), iterator=True,
        rsm={"max": int(cmd.get("max", 50))})
    items, pages = [], 0
    try:
        async for page in iterator:
            pages += 1
            for msg in page["mam"]["results"]:
                fwd = msg["mam_result"]["forwarded"]
                stamp = fwd["delay"]["stamp"]
                items.append([msg["mam_result"]["id"], fwd["stanza"]["body"],
                              stamp.isoformat() if stamp else None])
    except (IqError, IqTimeout) as e:
        emit("mam", ok=False, pages=pages, items=items, condition=str(e))
        return
    emit("mam", ok=True, pages=pages, items=items)


async def slixmpp_blocking(xmpp, cmd):
    """A XEP-0191 command through slixmpp's xep_0191 plugin; reports the
    answer as an iq_result event."""
    from slixmpp.exceptions import IqError, IqTimeout

    plugin = xmpp["xep_0191"]
    try:
        if cmd["cmd"] == "blocklist":
            iq = await plugin.get_blocked(timeout=10)
            jids = sorted(str(j) for j in iq["blocklist"]["items"])
        else:
            await getattr(plugin, cmd["cmd"])(cmd["jids"], timeout=10)
            jids = cmd["jids"]
        emit("iq_result", cmd=cmd["cmd"], ok=True, jids=jids)
    except IqError as e:
        emit("iq_result", cmd=cmd["cmd"], ok=False,
             condition=e.iq["error"]["condition"])
    except IqTimeout:
        emit("iq_result", cmd=cmd["cmd"], ok=False, condition="timeout")


async def slixmpp_adhoc(xmpp, cmd):
    """A XEP-0050 command at the server through slixmpp's xep_0050 plugin:
    execute, then (when it asks for a form) the form slixmpp got with
    cmd["fields"] filled in, submitted with complete. Reports an "adhoc"
    event: ok, status, notes [[type, text]], fields {var: [values]} of the
    last form, or the error condition."""
    from slixmpp.exceptions import IqError, IqTimeout

    plugin = xmpp["xep_0050"]
    server = cmd.get("to") or xmpp.boundjid.domain
    try:
        iq = await plugin.send_command(server, cmd["node"], action="execute", timeout=10)
        if iq["command"]["status"] == "executing":
            form = iq["command"]["form"]
            form["type"] = "submit"
            for var, value in cmd.get("fields", {}).items():
                form.field[var]["value"] = value
            iq = await plugin.send_command(server, cmd["node"], action="complete",
                                           payload=form,
                                           sessionid=iq["command"]["sessionid"],
                                           timeout=10)
        command = iq["command"]
        fields = {}
        for var, field in command["form"].field.items():
            value = field["value"]
            fields[var] = value if isinstance(value, list) else [str(value)]
        emit("adhoc", node=cmd["node"], ok=True, status=command["status"],
             notes=[list(n) for n in command["notes"]], fields=fields)
    except IqError as e:
        emit("adhoc", node=cmd["node"], ok=False, condition=e.iq["error"]["condition"])
    except IqTimeout:
        emit("adhoc", node=cmd["node"], ok=False, condition="timeout")


async def slixmpp_upload(xmpp, cmd):
    """XEP-0363 with slixmpp's own plugin: the service found in the
    server's disco#items, then the plugin asks a slot and PUTs the file
    with aiohttp. (slixmpp 1.8.3's own discovery, get_info_from_domain,
    hands asyncio.wait bare coroutines, which Python 3.11 refuses; the
    same disco walk is done here with its xep_0030 calls.)"""
    plugin = xmpp["xep_0363"]
    try:
        items = await xmpp["xep_0030"].get_items(jid=xmpp.boundjid.domain, timeout=10)
        for item in items["disco_items"]["items"]:
            info = await xmpp["xep_0030"].get_info(jid=item[0], timeout=10)
            if (("store", "file") in [i[:2] for i in info["disco_info"]["identities"]]
                    and "urn:xmpp:http:upload:0" in info["disco_info"]["features"]):
                plugin.upload_service = info["from"]
                for form in info["disco_info"].iterables:
                    values = form["values"]
                    if values.get("FORM_TYPE") == ["urn:xmpp:http:upload:0"]:
                        plugin.max_file_size = int(values["max-file-size"])
                break
        url = await xmpp["xep_0363"].upload_file(cmd["path"],
                                                 content_type=cmd.get("type"),
                                                 timeout=30)
        emit("upload", ok=True, url=url)
    except Exception as e:         # reported to the test, which fails on it
        emit("upload", ok=False, error="%s: %s" % (type(e).__name__, e))


async def slixmpp_roster(xmpp, ver):
    """A roster get with 'ver' (None: without), sent as slixmpp builds it;
    reports the answer as a roster event."""
    from slixmpp.exceptions import IqError, IqTimeout

    iq = xmpp.Iq()
    iq["type"] = "get"
    iq.enable("roster")
    if ver is not None:
        iq["roster"]["ver"] = ver
    try:
        result = await iq.send(timeout=10)
    except (IqError, IqTimeout) as e:
        emit("roster", ok=False, reason=str(e))
        return
    query = result.xml.find("{jabber:iq:roster}query")
    items = {} if query is None else {
        item.get("jid"): item.get("subscription", "none")
        for item in query.findall("{jabber:iq:roster}item")}
    emit("roster", ok=True, empty=query is None,
         ver=None if query is None else query.get("ver"), items=items)


AIOXMPP_MECH = []      # the mechanisms aioxmpp started, in order


def hook_aioxmpp_sasl():
    """aioxmpp (aiosasl) reports no SASL failure it recovers from: it tries
    the next mechanism or attempt silently. Every <failure/> it receives
    passes through SASLXMPPInterface._send_sasl_node_and_wait_for, which
    turns it into aiosasl.SASLFailure; wrapped here, each one is reported
    as an auth_failure event (the opaque_error is the condition), and each
    <auth/> sent records its mechanism."""
    import aiosasl
    import aioxmpp.sasl

    iface = aioxmpp.sasl.SASLXMPPInterface
    if getattr(iface, "_starling_hooked", False):
        return
    send_and_wait = iface._send_sasl_node_and_wait_for
    initiate = iface.initiate

    async def wrapped_send(self, node):
        try:
            return await send_and_wait(self, node)
        except aiosasl.SASLFailure as err:
            emit("auth_failure", reason="%s: %s" % (err.opaque_error,
                                                    err.text))
            raise

    async def wrapped_initiate(self, mechanism, payload=None):
        AIOXMPP_MECH.append(mechanism)
        return await initiate(self, mechanism, payload)

    iface._send_sasl_node_and_wait_for = wrapped_send
    iface.initiate = wrapped_initiate
    iface._starling_hooked = True


async def run_aioxmpp(args, commands):
    import aioxmpp
    import aioxmpp.connector
    import aioxmpp.dispatcher

    hook_aioxmpp_sasl()
    jid = aioxmpp.JID.fromstr(args.jid)
    connector = (aioxmpp.connector.XMPPOverTLSConnector() if args.direct_tls
                 else aioxmpp.connector.STARTTLSConnector())
    client = aioxmpp.Client(
        jid, aioxmpp.make_security_layer(args.password, no_verify=True),
        override_peer=[(args.host, args.port, connector)],
        max_initial_attempts=1)
    # available presence with our priority, sent once the stream is up
    client.summon(aioxmpp.PresenceServer).set_presence(
        aioxmpp.PresenceState(available=True), priority=args.priority)

    def message(msg):
        body = msg.body.any() if msg.body else None
        emit("message", **{"from": str(msg.from_), "to": str(msg.to),
                           "type": msg.type_.value, "id": msg.id_,
                           "body": body})

    dispatcher = client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher)
    dispatcher.register_callback(None, None, message)
    try:
        async with client.connected():
            emit("ready", jid=str(client.local_jid), mech=AIOXMPP_MECH[-1]
                 if AIOXMPP_MECH else None)
            while True:
                cmd = await commands.get()
                if cmd["cmd"] == "quit":
                    break
                if cmd["cmd"] == "send":
                    msg = aioxmpp.Message(
                        to=aioxmpp.JID.fromstr(cmd["to"]),
                        type_=aioxmpp.MessageType(cmd.get("type", "chat")))
                    if cmd.get("id"):
                        msg.id_ = cmd["id"]
                    msg.body[None] = cmd["body"]
                    await client.send(msg)
        emit("disconnected", reason="quit")
    except Exception as e:      # report any library failure to the test
        emit("failed", reason="%s: %s" % (type(e).__name__, e))


def run_nbxmpp(args):
    """nbxmpp (Gajim's library, python3-nbxmpp 4.2.2) on a GLib main loop,
    with its default settings: it picks the strongest mechanism it knows
    among those offered (its -PLUS variants are disabled: no channel
    binding through GLib), so SCRAM-SHA-512, -256 or -1 in that order.
    Only the address is set (127.0.0.1 and the port, STARTTLS or direct
    TLS) and the self-signed certificate accepted (set_ignore_tls_errors).
    Every SASL <failure/> it receives (they all pass through
    SASL.delegate) is an auth_failure event."""
    from gi.repository import GLib
    import nbxmpp.sasl
    from nbxmpp.client import Client
    from nbxmpp.const import ConnectionProtocol, ConnectionType
    from nbxmpp.protocol import JID, Message, Presence

    loop = GLib.MainLoop()
    jid = JID.from_string(args.jid)
    client = Client()
    client.set_domain(jid.domain)
    client.set_username(jid.localpart)
    client.set_resource(jid.resource)
    client.set_password(args.password)
    client.set_ignore_tls_errors(True)
    client.set_custom_host(
        "%s:%d" % (args.host, args.port), ConnectionProtocol.TCP,
        ConnectionType.DIRECT_TLS if args.direct_tls
        else ConnectionType.START_TLS)
    state = {"ended": False, "quitting": False}

    delegate = nbxmpp.sasl.SASL.delegate

    def sasl_delegate(sasl, stanza):
        if stanza.getName() == "failure":
            emit("auth_failure", reason=str(stanza))
        return delegate(sasl, stanza)
    nbxmpp.sasl.SASL.delegate = sasl_delegate

    def end(event, reason):
        if not state["ended"]:
            state["ended"] = True
            emit(event, reason=reason)
        GLib.idle_add(loop.quit)

    def connected(_client, _signal):
        client.send_stanza(Presence(priority=args.priority))
        mech = client._sasl._mechanism
        emit("ready", jid=str(client.get_bound_jid()),
             mech=mech.name if mech else None,
             tls=str(client.tls_version))

    def disconnected(_client, _signal):
        if state["quitting"]:
            end("disconnected", "quit")
        else:
            end("failed", "disconnected: %s" % (client.get_error(),))

    def connection_failed(_client, _signal):
        end("failed", "connection failed: %s" % (client.get_error(),))

    def message(_client, stanza, _properties):
        emit("message", **{"from": str(stanza.getFrom()),
                           "to": str(stanza.getTo()),
                           "type": stanza.getType(), "id": stanza.getID(),
                           "body": stanza.getBody()})

    def command(cmd):
        if cmd["cmd"] == "quit":
            state["quitting"] = True
            if client.state.name == "DISCONNECTED":
                end("disconnected", "quit")
            else:
                client.disconnect()
                GLib.timeout_add_seconds(5, lambda: end("disconnected",
                                                        "quit") and False)
        elif cmd["cmd"] == "send":
            msg = Message(to=cmd["to"], body=cmd["body"],
                          typ=cmd.get("type", "chat"))
            if cmd.get("id"):
                msg.setID(cmd["id"])
            client.send_stanza(msg)
        return False

    def pump():
        for line in sys.stdin:
            if line.strip():
                GLib.idle_add(command, json.loads(line))
        GLib.idle_add(command, {"cmd": "quit"})
    threading.Thread(target=pump, daemon=True).start()

    from nbxmpp.structs import StanzaHandler
    client.register_handler(StanzaHandler(name="message", callback=message))
    client.subscribe("connected", connected)
    client.subscribe("disconnected", disconnected)
    client.subscribe("connection-failed", connection_failed)
    GLib.timeout_add(int(args.lifetime * 1000), lambda: end(
        "failed", "agent lifetime of %ss reached" % args.lifetime) and False)
    client.connect()
    loop.run()


async def main_async(args):
    commands = asyncio.Queue()
    start_stdin_reader(asyncio.get_running_loop(), commands)
    runner = run_slixmpp if args.lib == "slixmpp" else run_aioxmpp
    try:
        await asyncio.wait_for(runner(args, commands), args.lifetime)
    except asyncio.TimeoutError:
        emit("failed", reason="agent lifetime of %ss reached" % args.lifetime)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", choices=["slixmpp", "aioxmpp", "nbxmpp"], required=True)
    ap.add_argument("--jid", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--direct-tls", action="store_true")
    ap.add_argument("--mech")
    ap.add_argument("--priority", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=60)
    ap.add_argument("--plugins", default="",
                    type=lambda v: [p for p in v.split(",") if p],
                    help="slixmpp plugins to register, comma-separated")
    ap.add_argument("--im", action="store_true",
                    help="slixmpp: get the roster before initial presence "
                         "and report every presence")
    ap.add_argument("--hide-cb", action="store_true",
                    help="slixmpp: hide the channel binding credential "
                         "(gs2 flag 'n' instead of 'y')")
    args = ap.parse_args()
    logging.basicConfig(level=logging.DEBUG, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.lib == "nbxmpp":
        run_nbxmpp(args)
    else:
        asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
