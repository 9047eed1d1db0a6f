"""Interop: slixmpp's own XEP-0363 plugin (python3-slixmpp, with aiohttp
for HTTP) finds Starling's upload component in the server's disco#items,
asks a slot and PUTs a file; the bytes come back identical over GET, and
a second slixmpp user is sent the URL in a message, as clients share
photos."""

import os
import urllib.request

from agents import Agent
from harness import check, fixture, time_limit
from server import free_port
from wsclient import wait_for_port


@fixture
def server(scope):
    port = free_port()
    srv = scope.server(
        modules=["roster", "presence", "message", "iq", "disco"],
        options={"http_ports": [port], "https_ports": []},
        components={"upload.localhost": ("http_file_share", {
            "http_external_url": "http://127.0.0.1:%d/" % port})})
    wait_for_port(port)
    return srv


@time_limit(90)
def test_slixmpp_uploads_a_photo(server):
    a, b = server.account("slixup"), server.account("slixdown")
    alice = Agent("slixmpp", server, a, resource="phone", plugins=["xep_0363"])
    bob = Agent("slixmpp", server, b, resource="laptop")
    ja, jb = alice.ready(), bob.ready()
    path = os.path.join(server.dir, "photo.jpg")
    data = b"\xff\xd8\xff\xe0" + os.urandom(300000)
    with open(path, "wb") as f:
        f.write(data)
    url = alice.upload(path)
    check(url.startswith("http://127.0.0.1:") and url.endswith("/photo.jpg"), url)
    alice.send(jb, url)
    got = bob.wait_message(body=url)
    check(got["from"] == ja, got)
    with urllib.request.urlopen(got["body"], timeout=30) as r:
        body = r.read()
        check(r.headers["Content-Type"] == "image/jpeg", r.headers["Content-Type"])
        check(r.headers["Content-Disposition"].startswith("inline;"),
              r.headers["Content-Disposition"])
    check(body == data, "%d bytes back, %d sent" % (len(body), len(data)))
