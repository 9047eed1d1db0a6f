"""A room used by a user of another server: two Starlings (a.example with
the muc component conference.a.example, and b.example), pinned to each
other. bob@b.example enters a room of conference.a.example over
server-to-server streams, hears alice@a.example and is heard, and leaves;
the room sees him leave when his server says his session ended."""

from harness import check, fixture
from muc import MODULES, codes, create, expect_groupchat, groupchat, item, join, login
from peers import pin
import server as server_mod

ROOM_SERVICE = "conference.a.example"
T = 15  # the first stanza to the other domain waits for the stream


@fixture
def pair(scope):
    a = server_mod.Server(scope.build_dir, hosts=("a.example",), modules=MODULES,
                          components={ROOM_SERVICE: ("muc", {})})
    b = server_mod.Server(scope.build_dir, hosts=("b.example",), modules=MODULES)
    a.options["s2s_static_hosts"] = pin("b.example", b.s2s_port)
    b.options["s2s_static_hosts"] = dict(pin("a.example", a.s2s_port),
                                         **pin(ROOM_SERVICE, a.s2s_port))
    for srv in (a, b):
        scope.servers.append(srv)
        srv.start()
    return a, b


def test_remote_occupant(pair):
    a_srv, b_srv = pair
    alice = login(a_srv, "alice")
    bob = login(b_srv, "bob")
    bob.timeout = T
    room = "lounge@" + ROOM_SERVICE
    create(alice, room, "al")
    r = join(bob, room, "bob")
    check(item(r["self"]).get("role") == "participant", r["self"])
    p = alice.expect("presence", attrs={"from": room + "/bob"}, timeout=T)
    check(item(p).get("jid") == bob.jid, item(p).attrib)
    groupchat(alice, room, "hello b")
    expect_groupchat(bob, room, "al", "hello b")
    groupchat(bob, room, "hello a")
    expect_groupchat(alice, room, "al", "hello b")
    expect_groupchat(alice, room, "bob", "hello a")
    bob.close()
    p = alice.expect("presence", attrs={"from": room + "/bob", "type": "unavailable"}, timeout=T)
    check(codes(p) == [], codes(p))
