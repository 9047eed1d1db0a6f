"""The test framework run.py uses for tests/conversation and tests/interop.

A test file is a Python module. Every module-level function named test_*
is a test, run in the order of definition. A test's parameters are filled
by name:

  ctx       the test's own Scope: ctx.server(...) starts a server that is
            stopped (and checked) when the test ends
  <name>    a @fixture of the file with that name: made once, on first use,
            and torn down after the file's last test

    from harness import fixture, time_limit

    @fixture
    def server(scope):            # 'scope' is the file's Scope
        return scope.server()     # one server for the whole file

    def test_hello(server):
        a = server.login("alice")

    @time_limit(60)
    def test_slow(ctx):
        srv = ctx.server(options={"c2s_timeout": 2})

Every test has a time limit (DEFAULT_TIME_LIMIT seconds unless @time_limit
says otherwise, times STARLING_TEST_TIMEOUT_SCALE); SIGALRM ends a test
that runs over. Clients made during a test are closed when it ends. A
server that exits non-zero or shows a sanitizer report at its stop fails the
test that owned it (or the file's teardown, for a fixture's server).
"""

import contextlib
import importlib.util
import inspect
import io
import json
import os
import signal
import sys
import time
import traceback

import server as server_mod
import xmpp

DEFAULT_TIME_LIMIT = 30
FIXTURE_TIME_LIMIT = 60

_current = None     # the Scope of the running test


class TestTimeout(AssertionError):
    pass


class Skipped(Exception):
    """Raised by skip(): the test cannot run on this machine."""


def skip(reason):
    """End the test here: it cannot run on this machine (a tool it needs
    is not installed, say). It is reported as passed with the reason."""
    raise Skipped(reason)


def fixture(fn):
    """Mark a module-level function as a file-scoped fixture."""
    fn._starling_fixture = True
    return fn


def time_limit(seconds):
    """Give a test its own time limit (seconds, before scaling)."""
    def mark(fn):
        fn._starling_time_limit = seconds
        return fn
    return mark


class Scope:
    """The resources of one test or one file: servers, clients, cleanups."""

    def __init__(self, name, build_dir):
        self.name = name
        self.build_dir = build_dir
        self.servers = []
        self.clients = []
        self.cleanups = []
        self.notes = []         # note(): shown on the test's PASS line

    def server(self, start=True, **kw):
        """Start a Server (see server.Server for the arguments)."""
        srv = server_mod.Server(self.build_dir, **kw)
        self.servers.append(srv)
        if start:
            srv.start()
        return srv

    def cleanup(self, fn):
        self.cleanups.append(fn)
        return fn

    def close(self):
        """Close everything; returns a list of problems (strings)."""
        problems = []
        for c in self.clients:
            c.close()
        for fn in reversed(self.cleanups):
            try:
                fn()
            except Exception as e:       # a cleanup failing is a problem
                problems.append("cleanup %s: %r" % (fn, e))
        for srv in self.servers:
            try:
                srv.stop()
            except AssertionError as e:
                problems.append(str(e))
        self.clients, self.cleanups, self.servers = [], [], []
        return problems


def _track_client(client):
    if _current is not None:
        _current.clients.append(client)


server_mod.CLIENT_CREATED.append(_track_client)


def current_scope():
    return _current


def note(text):
    """A word shown after the running test's PASS/FAIL line (e.g. where
    an artifact it kept is)."""
    if _current is not None:
        _current.notes.append(text)


# ------------------------------------------------------------ helpers

def exchange(a, b, body=None):
    """a sends b a chat message to b's full JID; b must receive it with
    a's full JID as 'from'. Returns the received element."""
    body = body or "ping %s->%s %s" % (a.name, b.name, xmpp.new_id())
    mid = xmpp.new_id("m")
    a.send("<message to='%s' type='chat' id='%s'><body>%s</body></message>"
           % (xmpp.esc(b.jid), mid, xmpp.esc(body)))
    return b.expect("message", attrs={"from": a.jid, "type": "chat"},
                    child="body", text=body)


def sync(sender, receiver):
    """A marker message from sender to receiver's full JID, which must be
    the next message receiver sees: proves that nothing sent earlier by
    sender was delivered to receiver (stanzas from one session are routed
    in order)."""
    marker = "marker-%s" % xmpp.new_id()
    sender.send("<message to='%s' type='chat'><body>%s</body></message>"
                % (xmpp.esc(receiver.jid), marker))
    return receiver.expect("message", child="body", text=marker)


@contextlib.contextmanager
def bystanders(server):
    """Two logged-in clients exchange messages before and after the body
    of the with-statement: the server keeps serving everyone else."""
    b = server.login("bystander", resource="b", name="bystander-b")
    c = server.login("bystander", resource="c", name="bystander-c")
    exchange(b, c)
    exchange(c, b)
    yield b, c
    exchange(b, c)
    exchange(c, b)


def drain(client, on_item, timeout=0.0):
    """Hands every element that has arrived on client to on_item, until a
    wait longer than timeout; False once the connection is closed (a
    stream error before the close reaches on_item too)."""
    while True:
        try:
            item = client.next_item(timeout=max(timeout, 0.001))
        except xmpp.ConnectionClosed:
            return False
        except xmpp.ExpectError:
            return True
        if item is not None and hasattr(item, "tag"):
            on_item(item)


def check(condition, message="check failed"):
    if not condition:
        raise AssertionError(message)


def raises(exc_type, fn, *args, **kw):
    """Call fn; it must raise exc_type, which is returned."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s"
                         % (getattr(fn, "__name__", fn), exc_type.__name__))


# ------------------------------------------------------------ running

def _alarm(signum, frame):
    raise TestTimeout("time limit reached")


@contextlib.contextmanager
def _limit(seconds):
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load_module(path):
    name = "starling_test_%s" % os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def collect(module):
    tests, fixtures = [], {}
    for name, obj in vars(module).items():
        if not inspect.isfunction(obj) or obj.__module__ != module.__name__:
            continue
        if getattr(obj, "_starling_fixture", False):
            fixtures[name] = obj
        elif name.startswith("test_"):
            tests.append(obj)
    return tests, fixtures


class FileRun:
    """Runs the tests of one file; emit(record) gets one dict per result."""

    def __init__(self, path, display, build_dir, emit):
        self.path, self.display = path, display
        self.build_dir, self.emit = build_dir, emit
        self.file_scope = Scope(display, build_dir)
        self.values = {}        # fixture name -> value or exception

    def fixture_value(self, name, fixtures, stack=()):
        if name in self.values:
            value = self.values[name]
            if isinstance(value, BaseException):
                raise AssertionError("fixture %s failed earlier: %s"
                                     % (name, value))
            return value
        if name in stack:
            raise AssertionError("fixture cycle: %s" % " -> ".join(stack))
        fn = fixtures[name]
        args = {}
        for p in inspect.signature(fn).parameters:
            if p in ("scope", "ctx"):
                args[p] = self.file_scope
            elif p in fixtures:
                args[p] = self.fixture_value(p, fixtures, stack + (name,))
            else:
                raise AssertionError("fixture %s: unknown parameter %s"
                                     % (name, p))
        try:
            with _limit(xmpp.timeout_value(FIXTURE_TIME_LIMIT)):
                self.values[name] = fn(**args)
        except Exception as e:
            self.values[name] = e
            raise
        return self.values[name]

    def run_test(self, fn, fixtures):
        global _current
        name = "%s::%s" % (self.display, fn.__name__)
        scope = Scope(name, self.build_dir)
        limit = xmpp.timeout_value(getattr(fn, "_starling_time_limit",
                                           DEFAULT_TIME_LIMIT))
        out = io.StringIO()
        error = None
        note = ""
        t0 = time.monotonic()
        _current = scope
        try:
            with contextlib.redirect_stdout(out):
                args = {}
                for p in inspect.signature(fn).parameters:
                    if p == "ctx":
                        args[p] = scope
                    elif p in fixtures:     # under the fixture's own limit
                        args[p] = self.fixture_value(p, fixtures)
                    else:
                        raise AssertionError("unknown test parameter %s" % p)
                with _limit(limit):
                    fn(**args)
        except TestTimeout:
            error = "time limit of %.0fs reached\n%s" % (
                limit, traceback.format_exc())
        except Skipped as e:
            note = "skipped: %s" % e
        except KeyboardInterrupt:
            scope.close()
            raise
        except Exception:
            error = traceback.format_exc()
        finally:
            _current = None
        clients = list(scope.clients)
        logs = []
        if error:       # before close(): a clean stop deletes the log
            logs = [s.log_tail(40) for s in scope.servers + self.file_scope.servers
                    if getattr(s, "dir", None)]
        try:
            with _limit(xmpp.timeout_value(FIXTURE_TIME_LIMIT)):
                problems = scope.close()
        except TestTimeout:
            problems = ["teardown reached its time limit"]
        if problems:
            error = (error or "") + "\nteardown: " + "\n".join(problems)
        details = ""
        if error:
            parts = [error.strip()]
            if out.getvalue():
                parts.append("--- output ---\n" + out.getvalue().rstrip())
            parts += [c.dump(40) for c in clients]
            parts += logs
            details = "\n".join(parts)
        record = {"name": name, "ok": error is None,
                  "time": time.monotonic() - t0, "details": details}
        note = "; ".join(([note] if note else []) + scope.notes)
        if note:
            record["note"] = note
        self.emit(record)

    def run(self, selected):
        try:
            module = load_module(self.path)
        except BaseException:
            self.emit({"name": self.display + "::<import>", "ok": False,
                       "time": 0, "details": traceback.format_exc()})
            return
        tests, fixtures = collect(module)
        tests = [t for t in tests
                 if selected("%s::%s" % (self.display, t.__name__))]
        try:
            for fn in tests:
                self.run_test(fn, fixtures)
        except KeyboardInterrupt:
            self.file_scope.close()
            raise
        if not tests:
            return
        t0 = time.monotonic()
        try:
            with _limit(xmpp.timeout_value(FIXTURE_TIME_LIMIT)):
                problems = self.file_scope.close()
        except TestTimeout:
            problems = ["teardown reached its time limit"]
        if problems:
            self.emit({"name": self.display + "::<teardown>", "ok": False,
                       "time": time.monotonic() - t0,
                       "details": "\n".join(problems)})


def run_file(path, display, build_dir, selected, out):
    """Worker entry: run one file, writing one JSON line per result."""
    def emit(record):
        out.write(json.dumps(record) + "\n")
        out.flush()
    FileRun(path, display, build_dir, emit).run(selected)
