"""Helpers for the pubsub and PEP conversation tests: requests as a
client writes them (XEP-0060), and what to look for in the answers."""

from harness import check
from xmpp import esc, find, find_all, new_id, to_xml

NS = "http://jabber.org/protocol/pubsub"
NS_OWNER = NS + "#owner"
NS_EVENT = NS + "#event"
NS_ERRORS = NS + "#errors"
PS = "{%s}pubsub" % NS
OWNER = "{%s}pubsub" % NS_OWNER
EVENT = "{%s}event" % NS_EVENT


def form(form_type, fields, type_="submit"):
    """A data form of FORM_TYPE form_type with {var: value or [values]}."""
    out = ["<x xmlns='jabber:x:data' type='%s'>" % type_,
           "<field var='FORM_TYPE' type='hidden'><value>%s</value></field>"
           % esc(form_type)]
    for var, value in fields.items():
        values = value if isinstance(value, (list, tuple)) else [value]
        out.append("<field var='%s'>%s</field>" % (esc(var), "".join(
            "<value>%s</value>" % esc(v) for v in values)))
    out.append("</x>")
    return "".join(out)


def config_form(fields):
    return form(NS + "#node_config", fields)


def publish_options(fields):
    return "<publish-options>%s</publish-options>" % form(
        NS + "#publish-options", fields)


def request(c, type_, inner, to=None, owner=False):
    """Sends <iq type><pubsub>inner</pubsub></iq>; returns its id."""
    iq_id = new_id("ps")
    to_attr = " to='%s'" % esc(to) if to else ""
    c.send("<iq type='%s' id='%s'%s><pubsub xmlns='%s'>%s</pubsub></iq>"
           % (type_, iq_id, to_attr, NS_OWNER if owner else NS, inner))
    return iq_id


def ok(c, type_, inner, to=None, owner=False, **kw):
    """The request, answered with a result (returned)."""
    return c.expect("iq", attrs={"id": request(c, type_, inner, to, owner),
                                 "type": "result"}, **kw)


def fails(c, type_, inner, condition, app=None, to=None, owner=False,
          error_type=None):
    """The request, answered with the error condition (and the
    pubsub#errors condition app)."""
    el = c.expect_error("iq", condition, type=error_type,
                        attrs={"id": request(c, type_, inner, to, owner)})
    if app:
        check(find(el, "error/{%s}%s" % (NS_ERRORS, app)) is not None,
              "no <%s/> in %s" % (app, to_xml(el)))
    return el


def item(item_id, payload):
    id_attr = " id='%s'" % esc(item_id) if item_id is not None else ""
    return "<item%s>%s</item>" % (id_attr, payload)


def publish(c, node, item_id, payload, to=None, options=None):
    """Publishes one item; returns the result (its item id is the id the
    service kept)."""
    inner = "<publish node='%s'>%s</publish>" % (esc(node), item(item_id, payload))
    if options:
        inner += publish_options(options)
    return ok(c, "set", inner, to=to)


def items(c, node, to=None, max_items=None, ids=(), extra=""):
    attrs = " max_items='%d'" % max_items if max_items is not None else ""
    inner = "<items node='%s'%s>%s</items>%s" % (esc(node), attrs, "".join(
        "<item id='%s'/>" % esc(i) for i in ids), extra)
    return ok(c, "get", inner, to=to)


def item_ids(el):
    return [i.get("id") for i in find_all(el, PS + "/{%s}items/{%s}item" % (NS, NS))]


def event_item_ids(msg):
    return [i.get("id") for i in find_all(
        msg, EVENT + "/{%s}items/{%s}item" % (NS_EVENT, NS_EVENT))]
