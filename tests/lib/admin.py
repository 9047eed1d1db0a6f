"""A client for the server's admin socket (core/admin.h, docs/ADMIN.md),
for tests that send many requests without starting starlingctl each time.

    adm = Admin(server.admin_socket_path())   # or Admin.of(server)
    status, text = adm.request("module", "reload", "roster")
    adm.ok("reload")                          # raises unless status is ok
"""

import os
import socket

import xmpp


def encode(word):
    """Percent-encode what would end a word or the line, and '%'. Other
    bytes (UTF-8 included) go as they are."""
    out = bytearray()
    for b in word.encode():
        if b <= 0x20 or b in (0x25, 0x7f):
            out += b"%%%02X" % b
        else:
            out.append(b)
    return bytes(out)


class AdminError(AssertionError):
    """An answer whose status is not the one expected."""


class Admin:
    def __init__(self, path, timeout=30):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(xmpp.timeout_value(timeout))
        self.sock.connect(path)
        self.buf = b""

    @classmethod
    def of(cls, server, **kw):
        return cls(os.path.join(server.data_dir, "starling.sock"), **kw)

    def _read_more(self):
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("the admin socket closed")
        self.buf += data

    def read_answer(self):
        while b"\n" not in self.buf:
            self._read_more()
        head, _, rest = self.buf.partition(b"\n")
        status, length = head.decode().split(" ")
        length = int(length)
        self.buf = rest
        while len(self.buf) < length:
            self._read_more()
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, body.decode()

    def send_line(self, line):
        self.sock.sendall(line + b"\n")

    def request(self, *words):
        """(status, text) of one request."""
        self.send_line(b" ".join(encode(w) for w in words))
        return self.read_answer()

    def ok(self, *words):
        status, text = self.request(*words)
        if status != "ok":
            raise AdminError("admin %s: %s %s" % (" ".join(words), status, text))
        return text

    def close(self):
        self.sock.close()
