"""The admin socket: only the server's own user may use it (the socket file
is mode 0600, and the server checks each peer's uid with SO_PEERCRED);
its line protocol answers pipelined requests in order and refuses a line
that is too long; a stale socket file is replaced at start-up."""

import os
import pwd
import socket
import stat
import subprocess

from admin import Admin, encode
from harness import bystanders, check, exchange, fixture
from xmpp import timeout_value

OTHER_USER = "starling-test-other"


@fixture
def server(scope):
    return scope.server(modules=["roster", "presence", "message", "iq"])


def other_user():
    """The passwd entry of a system user other than root, made if needed;
    None when the tests do not run as root."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(OTHER_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", OTHER_USER], check=True,
                       capture_output=True)
        return pwd.getpwnam(OTHER_USER)


def connect_as(user, path):
    """In a child process running as user: connect to path and read
    everything the server sends. Returns "EACCES" or "ANSWER <bytes>"."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                    # the child
        result = b""
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(10)
            try:
                s.connect(path)
            except PermissionError:
                result = b"EACCES"
            else:
                data = b""                          # refused at once: no request
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                result = b"ANSWER " + data
        except BaseException as e:                  # reported to the parent
            result = repr(e).encode()
        finally:
            os.write(w, result)
            os._exit(0)
    os.close(w)
    out = b""
    while True:
        chunk = os.read(r, 4096)
        if not chunk:
            break
        out += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return out.decode(errors="replace")


def test_socket_file_is_private(server):
    path = os.path.join(server.data_dir, "starling.sock")
    st = os.stat(path)
    check(stat.S_ISSOCK(st.st_mode), "not a socket")
    check(stat.S_IMODE(st.st_mode) == 0o600, "mode %o" % stat.S_IMODE(st.st_mode))
    check(st.st_uid == os.geteuid(), "owned by uid %d" % st.st_uid)


def test_another_user_is_refused(server):
    user = other_user()
    if user is None:
        print("SKIPPED: not running as root, so no other user to connect as")
        return
    path = os.path.join(server.data_dir, "starling.sock")
    os.chmod(server.dir, 0o711)                     # let them reach the socket
    os.chmod(server.data_dir, 0o711)
    got = connect_as(user, path)
    check(got == "EACCES", "mode 0600 did not stop uid %d: %r" % (user.pw_uid, got))

    # Even with the file opened up, the server checks who connects.
    os.chmod(path, 0o666)
    try:
        got = connect_as(user, path)
    finally:
        os.chmod(path, 0o600)
    check(got.startswith("ANSWER error ") and "permission denied" in got,
          "the server answered another user: %r" % got)
    check("version:" not in got, "status leaked to another user: %r" % got)
    server.wait_log(r"admin: refused a connection from uid %d" % user.pw_uid)

    # starlingctl run as that user says so too.
    proc = subprocess.run(["runuser", "-u", OTHER_USER, "--", server.ctl_binary,
                           "-c", server.config_path, "status"],
                          capture_output=True, text=True, timeout=timeout_value(30))
    check(proc.returncode == 1 and "permission denied" in proc.stderr,
          "starlingctl as another user: %d %r" % (proc.returncode, proc.stderr))

    out = server.ctl("status").stdout                # the owner still gets in
    check("version: " in out, out)
    a = server.login("after-refusal")
    exchange(a, a)


def test_pipelined_requests_are_answered_in_order(server):
    adm = Admin.of(server)
    adm.send_line(b"status\nmodule list localhost\nfrobnicate\neval return 6%20*%207\n")
    answers = [adm.read_answer() for _ in range(4)]
    check(answers[0][0] == "ok" and "version:" in answers[0][1], answers[0])
    check(answers[1][0] == "ok" and answers[1][1].startswith("localhost: "), answers[1])
    check(answers[2][0] == "error" and "unknown command" in answers[2][1], answers[2])
    check(answers[3] == ("ok", "42\n"), answers[3])
    adm.close()


def test_encoded_words_carry_spaces_and_newlines(server):
    adm = Admin.of(server)
    out = adm.ok("eval", "local s = 'a b\\n%c'\nreturn #s")
    check(out.strip() == "6", out)
    check(encode("a b\n%") == b"a%20b%0A%25", encode("a b\n%"))
    adm.close()


def test_a_too_long_request_is_refused(server):
    adm = Admin.of(server)
    try:
        adm.sock.sendall(b"eval return '" + b"x" * (1024 * 1024 + 100))
    except (BrokenPipeError, ConnectionResetError):
        pass
    status, text = adm.read_answer()
    check(status == "error" and "too long" in text, text)
    check(adm.sock.recv(10) == b"", "the connection stays open")
    adm.close()
    check("version:" in Admin.of(server).ok("status"), "the server stopped answering")


def test_too_many_admin_connections_are_refused(ctx):
    # A server of its own: connections other tests closed may not be
    # counted out yet when these arrive.
    server = ctx.server(modules=["roster", "presence", "message", "iq"])
    held = [Admin.of(server) for _ in range(16)]
    extra = Admin.of(server)
    status, text = extra.read_answer()
    check(status == "error" and "too many" in text, text)
    for adm in held:
        adm.close()
    extra.close()


def test_starlingctl_refused_says_why_and_exits_1(ctx):
    # The server answers a refused connection and closes it, often before
    # starlingctl has written: a short request meets a closed socket, a
    # long one (1 MiB, more than the socket buffers and the server reads)
    # always does. starlingctl once died of SIGPIPE here (exit 141, no
    # word).
    server = ctx.server(modules=["roster", "presence", "message", "iq"])
    with bystanders(server):
        held = [Admin.of(server) for _ in range(16)]
        for _ in range(5):
            p = server.ctl("status", check=False)
            check(p.returncode == 1 and "too many admin connections" in p.stderr,
                  "status: exit %d, %r" % (p.returncode, p.stderr))
        p = server.ctl("shell", input="return '%s'\n" % ("x" * (1 << 20)),
                       check=False)
        check(p.returncode == 1 and "too many admin connections" in p.stderr,
              "shell: exit %d, %r" % (p.returncode, p.stderr[-300:]))
        for adm in held:
            adm.close()
        # a request the server refuses after accepting: too long
        p = server.ctl("shell", input="return '%s'\n" % ("x" * (2 << 20)),
                       check=False)
        check(p.returncode == 1 and "too long" in p.stderr,
              "too long: exit %d, %r" % (p.returncode, p.stderr[-300:]))
        check("version:" in server.ctl("status").stdout, "no answer after")


def test_a_stale_socket_file_is_replaced(ctx):
    srv = ctx.server(start=False, modules=["roster", "presence", "message", "iq"])
    # A socket file nobody listens on, as a killed server leaves behind.
    srv.start()
    path = os.path.join(srv.data_dir, "starling.sock")
    srv.proc.kill()
    srv.proc.wait()
    check(os.path.exists(path), "a killed server removed its socket?")
    srv.proc = None
    srv._launch(10)
    check("version:" in srv.ctl("status").stdout, "the restarted server does not answer")
