"""HTTP File Upload (XEP-0363, mod_http_file_share) as a client and an
operator see it: the component in disco, a slot asked for, the PUT with
the slot's Authorization header, the GET with the bytes and the right
headers (type, disposition, length, ETag, Last-Modified, 304), HEAD,
Range (206, 416); the refusals with the XEP's errors (file-too-large with
max-size, a type not allowed, the daily and global quotas, a bad name, an
account of another host); the PUT's checks (token, size, type, one use,
the slot's expiry); expiry of files and of an account's files with it; a
file of tens of MB streamed both ways; hostile PUTs (far over the slot's
size, chunks past it, a stalled body) cut off while a bystander chats."""

import hashlib
import http.client
import os
import socket
import time
import urllib.parse

from harness import bystanders, check, exchange, fixture, time_limit
from server import free_port
from wsclient import wait_for_port
import xmpp
from xmpp import find, find_all, new_id, text_of

NS = "urn:xmpp:http:upload:0"
NS_INFO = "http://jabber.org/protocol/disco#info"
NS_ITEMS = "http://jabber.org/protocol/disco#items"
UPLOAD = "upload.localhost"


def start(scope, http_opts=None, **share):
    port = free_port()
    opts = {"http_file_share_size_limit": 64 * 1024 * 1024,
            "http_file_share_daily_quota": 200 * 1024 * 1024,
            "http_external_url": "http://127.0.0.1:%d/" % port}
    opts.update(share)
    srv = scope.server(modules=["roster", "presence", "message", "iq", "disco"],
                       hosts=("localhost", "other.localhost"),
                       options=dict({"http_ports": [port], "https_ports": []},
                                    **(http_opts or {})),
                       components={UPLOAD: ("http_file_share", opts)})
    srv.http_port = port
    wait_for_port(port)
    return srv


@fixture
def server(scope):
    return start(scope, http_opts={"http_request_timeout": 3},
                 http_file_share_allowed_file_types=["image/*", "text/plain",
                                                     "application/*"])


def ask_slot(client, name, size, ctype=None):
    iq_id = new_id("slot")
    attrs = "filename='%s' size='%d'" % (name.replace("'", "&apos;"), size)
    if ctype:
        attrs += " content-type='%s'" % ctype
    client.send("<iq type='get' id='%s' to='%s'><request xmlns='%s' %s/></iq>"
                % (iq_id, UPLOAD, NS, attrs))
    return iq_id


def slot(client, name, size, ctype=None):
    """(put_url, headers, get_url) of a granted slot."""
    el = client.expect("iq", attrs={"id": ask_slot(client, name, size, ctype),
                                    "type": "result", "from": UPLOAD},
                       child="{%s}slot" % NS)
    put = find(el, "{%s}slot/{%s}put" % (NS, NS))
    headers = {h.get("name"): h.text for h in find_all(put, "{%s}header" % NS)}
    get = find(el, "{%s}slot/{%s}get" % (NS, NS))
    check(put.get("url") and get.get("url"), "urls in %r" % el)
    return put.get("url"), headers, get.get("url")


def request(method, url, body=None, headers=None):
    """(status, headers (lowercase names), body) of one request."""
    u = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    try:
        conn.request(method, u.path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def upload(client, name, data, ctype="application/octet-stream"):
    put, headers, get = slot(client, name, len(data), ctype)
    status, _, _ = request("PUT", put, data, dict(headers, **{"Content-Type": ctype}))
    check(status == 201, "PUT answered %d" % status)
    return put, headers, get


def files_of(srv):
    d = os.path.join(srv.data_dir, "http_file_share")
    return sorted(os.listdir(d)) if os.path.isdir(d) else []


def test_the_component_in_disco(server):
    c = server.login("discoup")
    iq_id = new_id("info")
    c.send("<iq type='get' id='%s' to='%s'><query xmlns='%s'/></iq>" % (iq_id, UPLOAD, NS_INFO))
    el = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    q = "{%s}query/" % NS_INFO
    idents = [(i.get("category"), i.get("type")) for i in find_all(el, q + "{%s}identity" % NS_INFO)]
    check(idents == [("store", "file")], "identities %r" % idents)
    check(NS in [f.get("var") for f in find_all(el, q + "{%s}feature" % NS_INFO)], "feature")
    fields = {f.get("var"): text_of(f, "{jabber:x:data}value")
              for f in find_all(el, q + "{jabber:x:data}x/{jabber:x:data}field")}
    check(fields.get("FORM_TYPE") == NS and fields.get("max-file-size") == str(64 * 1024 * 1024),
          "form %r" % fields)
    iq_id = new_id("items")
    c.send("<iq type='get' id='%s' to='localhost'><query xmlns='%s'/></iq>" % (iq_id, NS_ITEMS))
    el = c.expect("iq", attrs={"id": iq_id, "type": "result"})
    jids = [i.get("jid") for i in find_all(el, "{%s}query/{%s}item" % (NS_ITEMS, NS_ITEMS))]
    check(UPLOAD in jids, "disco#items of localhost: %r" % jids)


def test_upload_then_download(server):
    c = server.login("upper")
    data = os.urandom(100000)
    put, headers, get = slot(c, "holiday photo.png", len(data), "image/png")
    check(headers.get("Authorization", "").startswith("Bearer "), repr(headers))
    check(put == get and "/file_share/" in get and get.endswith("/holiday%20photo.png"), get)
    check(request("GET", get)[0] == 404, "a file before its upload")
    status, _, _ = request("PUT", put, data, {"Content-Type": "image/png"})
    check(status == 401, "a PUT without the token: %d" % status)
    status, _, _ = request("PUT", put, data, dict(headers, **{"Content-Type": "image/png"}))
    check(status == 201, "PUT %d" % status)
    status, h, body = request("GET", get)
    check(status == 200 and body == data, "GET %d, %d bytes" % (status, len(body)))
    check(h["content-type"] == "image/png" and h["content-length"] == str(len(data)), repr(h))
    check(h["content-disposition"].startswith("inline;")
          and 'filename="holiday photo.png"' in h["content-disposition"], repr(h))
    check(h.get("accept-ranges") == "bytes" and h.get("etag") and h.get("last-modified"), repr(h))
    check(h.get("x-content-type-options") == "nosniff", repr(h))
    status, hh, body = request("HEAD", get)
    check(status == 200 and body == b"" and hh["content-length"] == str(len(data)), "HEAD")
    status, _, body = request("GET", get, headers={"If-None-Match": h["etag"]})
    check(status == 304 and body == b"", "If-None-Match: %d" % status)
    status, _, _ = request("PUT", put, data, dict(headers, **{"Content-Type": "image/png"}))
    check(status == 409, "a second PUT: %d" % status)
    check(request("GET", get)[2] == data, "the file changed")


def test_names_are_quoted_and_unsafe_types_are_attachments(server):
    c = server.login("quoter")
    data = b"%PDF-1.4 not really\n"
    _, _, get = upload(c, 'r\u00e9sum\u00e9 "final";.pdf', data, "application/pdf")
    status, h, body = request("GET", get)
    check(status == 200 and body == data, "GET")
    cd = h["content-disposition"]
    check(cd.startswith("attachment;"), cd)
    check('filename="r__sum__ _final__.pdf"' in cd, cd)
    check("filename*=UTF-8''r%C3%A9sum%C3%A9%20%22final%22%3B.pdf" in cd, cd)


def test_ranges(server):
    c = server.login("ranger")
    data = bytes(range(256)) * 40
    _, _, get = upload(c, "data.bin", data)
    n = len(data)
    for rng, part in (("bytes=10-19", data[10:20]), ("bytes=-5", data[-5:]),
                      ("bytes=10200-", data[10200:]), ("bytes=0-999999", data)):
        status, h, body = request("GET", get, headers={"Range": rng})
        check(status == 206 and body == part, "%s: %d, %d bytes" % (rng, status, len(body)))
        first = n - len(part)
        if rng.startswith("bytes=10-"):
            first = 10
        elif rng.startswith("bytes=0"):
            first = 0
        check(h["content-range"] == "bytes %d-%d/%d" % (first, first + len(part) - 1, n),
              "%s: %r" % (rng, h.get("content-range")))
    status, h, _ = request("GET", get, headers={"Range": "bytes=%d-" % n})
    check(status == 416 and h["content-range"] == "bytes */%d" % n, "416: %d %r" % (status, h))
    status, _, body = request("GET", get, headers={"Range": "bytes=0-1,5-6"})
    check(status == 200 and body == data, "several ranges: the whole file")
    status, _, body = request("GET", get, headers={"Range": "bytes=0-1", "If-Range": '"other"'})
    check(status == 200 and body == data, "If-Range of another version: the whole file")


def test_slot_refusals(server):
    c = server.login("refused")
    el = c.expect_error("iq", "not-acceptable", type="modify",
                        attrs={"id": ask_slot(c, "huge.bin", 64 * 1024 * 1024 + 1)})
    big = find(el, "error/{%s}file-too-large/{%s}max-size" % (NS, NS))
    check(big is not None and big.text == str(64 * 1024 * 1024), "file-too-large/max-size")
    c.expect_error("iq", "not-acceptable", type="modify",
                   attrs={"id": ask_slot(c, "a.exe", 10, "video/mp4")})
    for name in ("", "a/b", "..", "a\\b"):
        c.expect_error("iq", "bad-request", type="modify",
                       attrs={"id": ask_slot(c, name, 10, "text/plain")})
    c.expect_error("iq", "bad-request", attrs={"id": ask_slot(c, "a.txt", -1, "text/plain")})
    acct = server.account("stranger", host="other.localhost")
    stranger = xmpp.Client("127.0.0.1", server.port, "other.localhost", name="stranger")
    stranger.connect()
    stranger.open_stream()
    stranger.starttls()
    stranger.auth_scram(acct.user, acct.password, xmpp.DEFAULT_MECH)
    stranger.bind(None)
    stranger.expect_error("iq", "forbidden", type="auth",
                          attrs={"id": ask_slot(stranger, "a.txt", 10, "text/plain")})


def test_quotas(ctx):
    srv = start(ctx, http_file_share_size_limit=1000,
                http_file_share_daily_quota=2500, http_file_share_global_quota=4000)
    a, b = srv.login("quotaa"), srv.login("quotab")
    slot(a, "1.bin", 1000)
    slot(a, "2.bin", 1000)
    a.expect_error("iq", "resource-constraint", type="wait",
                   attrs={"id": ask_slot(a, "3.bin", 1000)})
    slot(a, "3.bin", 500)                   # what is left of the day's quota
    slot(b, "1.bin", 1000)                  # another uploader: 3500 in all
    b.expect_error("iq", "resource-constraint", type="wait",
                   attrs={"id": ask_slot(b, "2.bin", 1000)})


def test_put_checks(server):
    c = server.login("putter")
    put, headers, get = slot(c, "a.txt", 10, "text/plain")
    bad = dict(headers, Authorization="Bearer " + "0" * 64)
    check(request("PUT", put, b"0123456789", dict(bad, **{"Content-Type": "text/plain"}))[0] == 401,
          "a wrong token")
    check(request("PUT", put, b"0123456789", dict(headers, **{"Content-Type": "image/png"}))[0] == 415,
          "another type")
    check(request("PUT", put, b"01234567890", dict(headers, **{"Content-Type": "text/plain"}))[0] == 413,
          "a longer body")
    check(request("PUT", put, b"012345678", dict(headers, **{"Content-Type": "text/plain"}))[0] == 400,
          "a shorter body")
    other = put.rsplit("/", 2)[0] + "/doesnotexist/a.txt"
    check(request("PUT", other, b"0123456789", headers)[0] == 404, "an unknown slot")
    check(request("GET", get)[0] == 404, "nothing was stored by the refused PUTs")
    check(request("PUT", put, b"0123456789", dict(headers, **{"Content-Type": "text/plain"}))[0] == 201,
          "the right PUT after the refused ones")
    big = os.urandom(3 * 1024 * 1024)
    put, headers, _ = slot(c, "big.bin", len(big))
    # refused on its head, and the whole body still sent: the client reads
    # the answer, not a reset (the server drops what follows for a while)
    check(request("PUT", put, big, dict(headers, Authorization="Bearer " + "1" * 64))[0] == 401,
          "a refused large PUT")


def test_chunked_put_of_the_exact_size(server):
    c = server.login("chunker")
    data = os.urandom(50000)
    put, headers, get = slot(c, "c.bin", len(data), "application/octet-stream")

    def chunks():
        for i in range(0, len(data), 7000):
            yield data[i:i + 7000]
    status, _, _ = request("PUT", put, chunks(), headers)     # http.client chunks it
    check(status == 201, "chunked PUT %d" % status)
    check(request("GET", get)[2] == data, "bytes differ")


@time_limit(60)
def test_expiry(ctx):
    srv = start(ctx, http_file_share_expires_after=3, http_file_share_slot_expires_after=2)
    c = srv.login("expirer")
    _, _, get = upload(c, "soon.txt", b"short-lived", "text/plain")
    put, headers, _ = slot(c, "late.txt", 4, "text/plain")
    check(len(files_of(srv)) == 1, "one file stored: %r" % files_of(srv))
    time.sleep(3.5)             # whole seconds: past the slot's second
    check(request("PUT", put, b"late", dict(headers, **{"Content-Type": "text/plain"}))[0] == 410,
          "a PUT after the slot expired")
    deadline = time.monotonic() + 15
    while files_of(srv) and time.monotonic() < deadline:
        time.sleep(0.5)
    check(files_of(srv) == [], "expired file left: %r" % files_of(srv))
    check(request("GET", get)[0] == 404, "an expired file is still served")


def test_deleting_an_account_deletes_its_files(server):
    acct = server.account("leaver")
    c = server.login(acct)
    _, _, get = upload(c, "mine.txt", b"mine", "text/plain")
    keeper = server.login("keeper")
    _, _, kept = upload(keeper, "kept.txt", b"kept", "text/plain")
    before = files_of(server)
    c.close()
    server.ctl("user", "delete", acct.jid)
    check(request("GET", get)[0] == 404, "the deleted account's file is served")
    check(request("GET", kept)[2] == b"kept", "another account's file went too")
    check(len(files_of(server)) == len(before) - 1, "%r -> %r" % (before, files_of(server)))


@time_limit(120)
def test_tens_of_megabytes_both_ways(server):
    c = server.login("bigfile")
    data = os.urandom(24 * 1024 * 1024)
    with bystanders(server) as (a, b):
        put, headers, get = slot(c, "big.bin", len(data))
        status, _, _ = request("PUT", put, data, headers)
        check(status == 201, "PUT %d" % status)
        exchange(a, b)
        u = urllib.parse.urlsplit(get)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        conn.request("GET", u.path)
        r = conn.getresponse()
        digest, n = hashlib.sha256(), 0
        while True:
            piece = r.read(1 << 20)
            if not piece:
                break
            digest.update(piece)
            n += len(piece)
            exchange(a, b)          # chat goes on while the file streams
        conn.close()
        check(r.status == 200 and n == len(data) and
              digest.digest() == hashlib.sha256(data).digest(), "%d bytes back" % n)


def raw_put(srv, put, headers, head_extra=b""):
    u = urllib.parse.urlsplit(put)
    s = socket.create_connection((u.hostname, u.port), timeout=10)
    lines = b"".join(b"%s: %s\r\n" % (k.encode(), v.encode()) for k, v in headers.items())
    s.sendall(b"PUT %s HTTP/1.1\r\nHost: %s\r\n%s%s\r\n" % (u.path.encode(),
              u.netloc.encode(), lines, head_extra))
    return s


def read_status(s):
    buf = b""
    while b"\r\n" not in buf:
        piece = s.recv(4096)
        if not piece:
            break
        buf += piece
    return int(buf.split(b" ")[1]) if buf else None


def closed(s, timeout=10):
    """The server closed s: at once, or after lingering (up to 5 s) over a
    refused request's body."""
    s.settimeout(timeout)
    try:
        while s.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_hostile_put_far_over_the_size(server):
    c = server.login("hostile")
    with bystanders(server) as (a, b):
        put, headers, get = slot(c, "small.txt", 100, "text/plain")
        s = raw_put(server, put, dict(headers, **{"Content-Type": "text/plain"}),
                    b"Content-Length: 2000000000\r\n")
        check(read_status(s) == 413 and closed(s), "announced far over the slot's size")
        exchange(a, b)
        s = raw_put(server, put, dict(headers, **{"Content-Type": "text/plain"}),
                    b"Transfer-Encoding: chunked\r\n")
        try:
            for _ in range(50):
                s.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
        except (ConnectionResetError, BrokenPipeError):
            pass
        check(read_status(s) == 413, "chunks past the slot's size")
        exchange(a, b)
        check(request("GET", get)[0] == 404, "the refused body is served")
        check(put.split("/")[-2] not in files_of(server), "the refused body is kept")
        status, _, _ = request("PUT", put, b"y" * 100, dict(headers, **{"Content-Type": "text/plain"}))
        check(status == 201, "the slot is still usable after the refusals: %d" % status)


@time_limit(30)
def test_stalled_put_is_timed_out(server):
    c = server.login("staller")
    with bystanders(server) as (a, b):
        put, headers, get = slot(c, "stall.bin", 100000)
        s = raw_put(server, put, headers, b"Content-Length: 100000\r\n")
        s.sendall(b"z" * 1000)
        exchange(a, b)
        check(read_status(s) == 408 and closed(s), "a stalled body was not timed out")
        exchange(a, b)
        check(request("GET", get)[0] == 404, "a partial file is served")
        check(put.split("/")[-2] not in files_of(server), "a partial file is kept")
        data = os.urandom(100000)
        check(request("PUT", put, data, headers)[0] == 201, "the slot after the timeout")
        check(request("GET", get)[2] == data, "bytes differ")


def test_urls_from_http_host_and_the_http_port(ctx):
    port = free_port()
    srv = ctx.server(modules=["roster", "presence", "message", "iq", "disco"],
                     options={"http_ports": [port], "https_ports": []},
                     components={UPLOAD: ("http_file_share", {"http_host": "127.0.0.1"})})
    wait_for_port(port)
    c = srv.login("hoster")
    put, headers, get = slot(c, "h.txt", 2, "text/plain")
    check(get.startswith("http://127.0.0.1:%d/file_share/" % port), get)
    check(request("PUT", put, b"hi", dict(headers, **{"Content-Type": "text/plain"}))[0] == 201, "PUT")
    check(request("GET", get)[2] == b"hi", "GET")


def test_web_clients_upload_from_their_own_origin(ctx, server):
    """A web client (Converse.js on its own site) PUTs and GETs across
    origins: the preflight allows PUT with the slot's Authorization
    header, the answers name the Origin (as Prosody's share does);
    http_cors_override["file_share"] turns it off."""
    c = server.login("webup")
    site = "http://127.0.0.1:%d" % free_port()
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)
    put, headers, get = slot(c, "from the web.png", len(data), "image/png")
    status, h, _ = request("OPTIONS", put, headers={
        "Origin": site, "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "authorization,content-type"})
    check(status == 204 and h.get("access-control-allow-origin") == site, (status, h))
    check("PUT" in h.get("access-control-allow-methods", "").split(", "), repr(h))
    allowed = h.get("access-control-allow-headers", "").lower().split(", ")
    check("authorization" in allowed and "content-type" in allowed, repr(h))
    status, h, _ = request("PUT", put, data, dict(headers, **{
        "Content-Type": "image/png", "Origin": site}))
    check(status == 201 and h.get("access-control-allow-origin") == site, (status, h))
    status, h, body = request("GET", get, headers={"Origin": site})
    check(status == 200 and body == data, "GET %d" % status)
    check(h.get("access-control-allow-origin") == site, repr(h))

    closed_srv = start(ctx, http_opts={
        "http_cors_override": {"file_share": {"enabled": False}}})
    c2 = closed_srv.login("webup")
    put, headers, get = slot(c2, "same origin only.png", len(data), "image/png")
    status, h, _ = request("OPTIONS", put, headers={
        "Origin": site, "Access-Control-Request-Method": "PUT"})
    check("access-control-allow-origin" not in h, "override ignored: %r" % h)
    status, h, _ = request("PUT", put, data, dict(headers, **{
        "Content-Type": "image/png", "Origin": site}))
    check(status == 201 and "access-control-allow-origin" not in h, (status, h))
