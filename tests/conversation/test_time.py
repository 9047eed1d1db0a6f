"""mod_time: XEP-0202 Entity Time of the server."""

import datetime
import re

from harness import check, fixture
from xmpp import new_id, text_of

NS_TIME = "urn:xmpp:time"


@fixture
def server(scope):
    return scope.server(modules=["iq", "time"])


def test_server_time(server):
    c = server.login("clock")
    iq_id = new_id("time")
    before = datetime.datetime.now(datetime.timezone.utc)
    c.send("<iq type='get' id='%s' to='%s'><time xmlns='%s'/></iq>"
           % (iq_id, server.domain, NS_TIME))
    el = c.expect("iq", attrs={"id": iq_id, "type": "result",
                               "from": server.domain},
                  child=["{%s}time/{%s}utc" % (NS_TIME, NS_TIME),
                         "{%s}time/{%s}tzo" % (NS_TIME, NS_TIME)])
    after = datetime.datetime.now(datetime.timezone.utc)
    utc = text_of(el, "{%s}time/{%s}utc" % (NS_TIME, NS_TIME))
    tzo = text_of(el, "{%s}time/{%s}tzo" % (NS_TIME, NS_TIME))
    check(re.fullmatch(r"[+-]\d\d:\d\d", tzo), "tzo is %r" % tzo)
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?Z", utc)
    check(m, "utc is %r" % utc)
    t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc)
    check(before - datetime.timedelta(seconds=2) <= t
          <= after + datetime.timedelta(seconds=2),
          "server time %s is not between %s and %s" % (t, before, after))
