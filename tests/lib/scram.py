"""Client side of SASL SCRAM (RFC 5802, RFC 7677) and PLAIN (RFC 4616),
written for the tests from the RFCs, plus SASLprep (RFC 4013).

    s = ScramClient("SCRAM-SHA-256", "alice", "secret")
    first = s.first()                   # bytes for <auth>
    final = s.final(server_first)       # bytes for <response>
    s.verify(server_final)              # checks v= (raises ScramError)

For -PLUS mechanisms pass cb_type and cb_data (the channel binding data of
the TLS connection). cb_flag overrides the gs2 flag ('n', 'y' or 'p'), to
test a server's downgrade checks.
"""

import base64
import hashlib
import hmac
import os
import stringprep
import unicodedata


class ScramError(Exception):
    """The server's SCRAM messages were wrong (bad nonce, bad signature...)."""


def saslprep(text):
    """SASLprep (RFC 4013) of a user name or password."""
    out = []
    for ch in text:
        if stringprep.in_table_c12(ch):
            out.append(" ")
        elif not stringprep.in_table_b1(ch):
            out.append(ch)
    text = unicodedata.normalize("NFKC", "".join(out))
    prohibited = (stringprep.in_table_c12, stringprep.in_table_c21,
                  stringprep.in_table_c22, stringprep.in_table_c3,
                  stringprep.in_table_c4, stringprep.in_table_c5,
                  stringprep.in_table_c6, stringprep.in_table_c7,
                  stringprep.in_table_c8, stringprep.in_table_c9)
    for ch in text:
        if any(table(ch) for table in prohibited):
            raise ValueError("prohibited character in SASLprep input")
    if any(stringprep.in_table_d1(ch) for ch in text):
        if not (stringprep.in_table_d1(text[0]) and
                stringprep.in_table_d1(text[-1])):
            raise ValueError("bidi rule violated")
        if any(stringprep.in_table_d2(ch) for ch in text):
            raise ValueError("bidi rule violated")
    return text


def _saslname(name):
    return saslprep(name).replace("=", "=3D").replace(",", "=2C")


def _parse(msg):
    attrs = {}
    for part in msg.split(","):
        if len(part) < 2 or part[1] != "=":
            raise ScramError("malformed SCRAM attribute %r in %r" % (part, msg))
        attrs.setdefault(part[0], part[2:])
    return attrs


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def plain_message(username, password, authzid=""):
    """The PLAIN initial response (RFC 4616)."""
    return ("%s\0%s\0%s" % (authzid, saslprep(username),
                              saslprep(password))).encode()


class ScramClient:
    def __init__(self, mechanism, username, password, cb_type=None,
                 cb_data=None, cb_flag=None, nonce=None):
        mech = mechanism.upper()
        self.plus = mech.endswith("-PLUS")
        base = mech[:-5] if self.plus else mech
        hashes = {"SCRAM-SHA-1": "sha1", "SCRAM-SHA-256": "sha256",
                  "SCRAM-SHA-512": "sha512"}
        if base not in hashes:
            raise ValueError("unsupported mechanism %s" % mechanism)
        self.hash = hashes[base]
        self.mechanism = mech
        self.username = username
        self.password = password
        if self.plus and (cb_type is None or cb_data is None):
            raise ValueError("%s needs cb_type and cb_data" % mech)
        self.cb_type = cb_type
        self.cb_data = cb_data or b""
        if cb_flag is None:
            cb_flag = "p" if self.plus else "n"
        self.cb_flag = cb_flag
        self.cnonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.server_signature = None
        self.salted_password = None

    def _gs2_header(self):
        if self.cb_flag == "p":
            return "p=%s,," % self.cb_type
        return "%s,," % self.cb_flag

    def first(self):
        self.first_bare = "n=%s,r=%s" % (_saslname(self.username), self.cnonce)
        return (self._gs2_header() + self.first_bare).encode()

    def _hmac(self, key, msg):
        return hmac.new(key, msg, self.hash).digest()

    def final(self, server_first):
        server_first = server_first.decode()
        attrs = _parse(server_first)
        if "m" in attrs:
            raise ScramError("server sent a mandatory extension")
        nonce, salt, iters = attrs.get("r"), attrs.get("s"), attrs.get("i")
        if not nonce or salt is None or not iters:
            raise ScramError("server-first-message lacks r, s or i: %r"
                             % server_first)
        if not nonce.startswith(self.cnonce) or nonce == self.cnonce:
            raise ScramError("server nonce does not extend the client nonce")
        self.iterations = int(iters)
        self.salt = base64.b64decode(salt)
        cbind = self._gs2_header().encode()
        if self.cb_flag == "p":
            cbind += self.cb_data
        without_proof = "c=%s,r=%s" % (base64.b64encode(cbind).decode(), nonce)
        salted = hashlib.pbkdf2_hmac(self.hash, saslprep(self.password).encode(),
                                     self.salt, self.iterations)
        self.salted_password = salted
        client_key = self._hmac(salted, b"Client Key")
        stored_key = hashlib.new(self.hash, client_key).digest()
        auth_message = ",".join([self.first_bare, server_first,
                                 without_proof]).encode()
        proof = _xor(client_key, self._hmac(stored_key, auth_message))
        server_key = self._hmac(salted, b"Server Key")
        self.server_signature = self._hmac(server_key, auth_message)
        return ("%s,p=%s" % (without_proof,
                             base64.b64encode(proof).decode())).encode()

    def verify(self, server_final):
        """Check the server-final-message; raises ScramError when wrong."""
        attrs = _parse(server_final.decode())
        if "e" in attrs:
            raise ScramError("server-final-message has error e=%s" % attrs["e"])
        if "v" not in attrs:
            raise ScramError("server-final-message has no verifier")
        if not hmac.compare_digest(base64.b64decode(attrs["v"]),
                                   self.server_signature):
            raise ScramError("server signature does not match")
        return True
