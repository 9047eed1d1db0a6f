"""Interop: XEP-0133 service administration from slixmpp's xep_0050
plugin, as an admin (each command, and what it did as a user sees it)
and as a user who is not one (forbidden)."""

from agents import Agent
from harness import check, fixture, time_limit
from server import Account

ADMIN = "http://jabber.org/protocol/admin#"


@fixture
def server(scope):
    srv = scope.server(modules=["roster", "presence", "message", "iq", "disco", "ping",
                                "adhoc", "admin_adhoc", "vcard"],
                       options={"admins": ["chief@localhost"]})
    srv.register("chief", "chief-pw")
    return srv


def ok(result, what):
    check(result["ok"] and result["status"] == "completed", "%s: %s" % (what, result))
    check(not any(t == "error" for t, _ in result["notes"]), "%s: %s" % (what, result))
    return result


@time_limit(120)
def test_each_admin_command_from_slixmpp(server):
    chief = Agent("slixmpp", server, server.accounts["chief@localhost"], resource="admin",
                  plugins=["xep_0050", "xep_0133"])
    chief.ready()
    ok(chief.adhoc(ADMIN + "add-user", {"accountjid": "fresh@localhost", "password": "f1",
                                        "password-verify": "f1"}), "add-user")
    fresh = Agent("slixmpp", server, Account("fresh", "f1", "localhost"), resource="r")
    fresh.ready()

    num = ok(chief.adhoc(ADMIN + "get-online-users-num"), "get-online-users-num")
    check(int(num["fields"]["onlineusersnum"][0]) == 2, "online: %s" % num)
    num = ok(chief.adhoc(ADMIN + "get-registered-users-num"), "get-registered-users-num")
    check(int(num["fields"]["registeredusersnum"][0]) == 2, "registered: %s" % num)
    listed = ok(chief.adhoc(ADMIN + "get-online-users-list", {"max_items": "100"}),
                "get-online-users-list")
    check(set(listed["fields"]["onlineuserjids"]) == {"chief@localhost", "fresh@localhost"},
          "online list: %s" % listed)
    listed = ok(chief.adhoc(ADMIN + "get-registered-users-list", {"max_items": "100"}),
                "get-registered-users-list")
    check("fresh@localhost" in listed["fields"]["registereduserjids"], listed)

    ok(chief.adhoc(ADMIN + "announce", {"subject": "News", "announcement": "hello all"}),
       "announce")
    fresh.wait_message(body="hello all")

    ok(chief.adhoc(ADMIN + "change-user-password", {"accountjid": "fresh@localhost",
                                                    "password": "f2"}), "change-user-password")
    ok(chief.adhoc(ADMIN + "end-user-session", {"accountjids": ["fresh@localhost"]}),
       "end-user-session")
    fresh.wait("disconnected")
    again = Agent("slixmpp", server, Account("fresh", "f2", "localhost"), resource="r2")
    again.ready()
    ok(chief.adhoc(ADMIN + "reload-modules", {"modules": ["vcard"]}), "reload-modules")
    status = ok(chief.adhoc(ADMIN + "server-status"), "server-status")
    check(any("uptime" in text for _, text in status["notes"]), status)
    ok(chief.adhoc(ADMIN + "delete-user", {"accountjids": ["fresh@localhost"]}), "delete-user")
    again.wait("disconnected")
    num = ok(chief.adhoc(ADMIN + "get-registered-users-num"), "registered after delete")
    check(int(num["fields"]["registeredusersnum"][0]) == 1, "registered: %s" % num)


@time_limit(60)
def test_a_user_who_is_not_an_admin_is_refused(server):
    user = Agent("slixmpp", server, server.account("nobody"), resource="r",
                 plugins=["xep_0050", "xep_0133"])
    user.ready()
    for node in ("add-user", "delete-user", "get-online-users-num", "announce"):
        got = user.adhoc(ADMIN + node, {})
        check(not got["ok"] and got["condition"] == "forbidden", "%s: %s" % (node, got))
