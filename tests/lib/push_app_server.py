"""A XEP-0357 app server written with slixmpp's component support
(slixmpp.ComponentXMPP), for tests/interop/test_push_component.py.

    push_app_server.py --host H --port P --domain D --secret S

It connects to the server's component port, prints "ready", then one JSON
line per publish request it receives: {"node", "from", "fields",
"publish_options", "priority"}. It answers result, except for nodes whose
name starts with "gone-" (cancel/item-not-found, as an app server that
forgot the device) or "auth-" (auth/not-authorized). A <message/> sent to
it is printed as {"message": body}: a test's marker in the stream."""

import argparse
import json
import sys

from slixmpp import ComponentXMPP
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

PUBSUB = "http://jabber.org/protocol/pubsub"
PUSH = "urn:xmpp:push:0"
DATA = "jabber:x:data"


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def form_fields(x):
    fields = {}
    if x is None:
        return fields
    for f in x.findall("{%s}field" % DATA):
        v = f.find("{%s}value" % DATA)
        fields[f.get("var")] = v.text if v is not None else None
    return fields


class AppServer(ComponentXMPP):
    def __init__(self, domain, secret, host, port):
        super().__init__(domain, secret, host, port)
        self.register_handler(Callback(
            "push publish",
            MatchXPath("{jabber:component:accept}iq/{%s}pubsub" % PUBSUB),
            self.on_publish))
        self.add_event_handler("session_start", lambda _: out("ready"))
        self.add_event_handler("message", self.on_message)

    def on_publish(self, iq):
        if iq["type"] != "set":
            return
        pubsub = iq.xml.find("{%s}pubsub" % PUBSUB)
        publish = pubsub.find("{%s}publish" % PUBSUB)
        node = publish.get("node") if publish is not None else None
        notif = publish.find("{%s}item/{%s}notification" % (PUBSUB, PUSH)) \
            if publish is not None else None
        prio = notif.find("{tigase:push:priority:0}priority") if notif is not None else None
        opts = pubsub.find("{%s}publish-options/{%s}x" % (PUBSUB, DATA))
        out({"node": node, "from": str(iq["from"]),
             "fields": form_fields(notif.find("{%s}x" % DATA) if notif is not None else None),
             "publish_options": form_fields(opts),
             "priority": prio.text if prio is not None else None})
        if node and node.startswith("gone-"):
            reply = iq.reply(clear=True)
            reply["type"] = "error"
            reply["error"]["type"] = "cancel"
            reply["error"]["condition"] = "item-not-found"
            reply.send()
        elif node and node.startswith("auth-"):
            reply = iq.reply(clear=True)
            reply["type"] = "error"
            reply["error"]["type"] = "auth"
            reply["error"]["condition"] = "not-authorized"
            reply.send()
        else:
            iq.reply(clear=True).send()

    def on_message(self, msg):
        out({"message": msg["body"]})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--secret", required=True)
    a = p.parse_args()
    app = AppServer(a.domain, a.secret, a.host, a.port)
    app.connect()
    app.process(forever=True)


if __name__ == "__main__":
    main()
