"""Helpers for the hostile-input tests (tests/conversation/test_hostile_*.py).

What the server process spends, read from /proc while it runs:

    watch = ProcWatch(srv.proc.pid)
    watch.rss()           VmRSS in bytes (resident memory now)
    watch.reset_peak()    VmHWM := VmRSS (writes 5 to /proc/PID/clear_refs)
    watch.peak()          VmHWM in bytes (the peak since reset_peak)
    watch.cpu()           user + system CPU seconds so far
    watch.fds()           open file descriptors

An attack wrapped in a Guard:

    with Guard(srv) as g:             # warm-up, two bystanders log in and
        bad = srv.login("bad")        # chat, baseline taken
        bad.send(...)
        bad.expect_stream_error("policy-violation")
        g.chat()                      # a bystander round trip, timed
    # on exit: the server's descriptors are back to the baseline (every
    # attacking connection is gone), its resident memory is back within
    # the allowance, and the bystanders still chat

On an AddressSanitizer build (its allocator quarantines freed memory) or
a ThreadSanitizer build (its allocator and shadow memory) the memory
checks are skipped; descriptors and bystanders are still checked.

The memory allowance is max(2 MiB, 10% of the baseline) plus, for tests
that hold thousands of connections at once, PER_CONN_HIGH_WATER bytes per
connection at the peak: libev's fd-indexed table and timer heap, and the
epoll event array, grow to the peak and are never shrunk (measured: about
330-430 bytes per peak connection of allocator memory still in use after
every connection closed, the same after a second flood, so a high-water
mark and not a leak).

glibc: the server is single-threaded (one libev loop; LMDB, OpenSSL and
Lua start no threads), so MALLOC_ARENA_MAX changes nothing. The trim
threshold (MALLOC_TRIM_THRESHOLD_) only decides when free memory at the
top of the brk heap is given back; memory freed below a live allocation
(the libev tables above, which are reallocated upwards as they grow) is
only returned by malloc_trim(). The tests therefore run the server with
glibc's defaults: what they measure is what an operator sees.

Raw sockets for floods:

    raise_fd_limit(12000)             # soft RLIMIT_NOFILE of this process
    sources(n, per_address=32)        # 127.0.x.y source addresses
    Flood(port)                       # many non-blocking sockets, epoll
"""

import contextlib
import errno
import os
import resource
import select
import selectors
import socket
import time

import harness
import xmpp

MiB = 1024 * 1024
PER_CONN_HIGH_WATER = 512

STREAM_HEADER = ("<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams' "
                 "to='localhost' version='1.0'>")


# ------------------------------------------------------------ /proc

class ProcWatch:
    """Resources of one process, from /proc/PID."""

    def __init__(self, pid):
        self.pid = pid
        self.tick = os.sysconf("SC_CLK_TCK")

    def _status(self, key):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
        raise AssertionError("no %s in /proc/%d/status" % (key, self.pid))

    def rss(self):
        return self._status("VmRSS")

    def peak(self):
        return self._status("VmHWM")

    def reset_peak(self):
        """Make VmHWM start again from the current VmRSS (Linux >= 4.0)."""
        with open("/proc/%d/clear_refs" % self.pid, "w") as f:
            f.write("5")

    def cpu(self):
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        # fields[0] is the state (field 3): utime is field 14, stime 15
        return (int(fields[11]) + int(fields[12])) / self.tick

    def fds(self):
        return len(os.listdir("/proc/%d/fd" % self.pid))

    def sanitized(self):
        """True for an AddressSanitizer build (its allocator keeps freed
        memory in quarantine) or a ThreadSanitizer one (its allocator
        and shadow memory): resident memory says nothing there."""
        with open("/proc/%d/maps" % self.pid) as f:
            maps = f.read()
        return "libasan" in maps or "libtsan" in maps

    def wait_fds(self, at_most, timeout):
        """Wait until the process has at most `at_most` descriptors open;
        returns the count (the caller checks it)."""
        deadline = time.monotonic() + xmpp.timeout_value(timeout)
        n = self.fds()
        while n > at_most and time.monotonic() < deadline:
            time.sleep(0.05)
            n = self.fds()
        return n

    def wait_rss(self, at_most, timeout):
        """Wait until VmRSS is at most `at_most` bytes; returns VmRSS."""
        deadline = time.monotonic() + xmpp.timeout_value(timeout)
        n = self.rss()
        while n > at_most and time.monotonic() < deadline:
            time.sleep(0.1)
            n = self.rss()
        return n


def mib(n):
    return "%.1f MiB" % (n / MiB)


def warm_up(srv, rounds=3):
    """Steady state before a baseline: logins, messages, a stream error,
    logouts - the buffers, Lua objects and storage pages a server keeps
    once it has served anyone."""
    for i in range(rounds):
        a = srv.login("warm")
        b = srv.login("warm")
        for _ in range(10):
            harness.exchange(a, b)
            harness.exchange(b, a)
        bad = srv.client(tls=None)
        bad.send("<message><body>x</message>")
        bad.expect_stream_error("not-well-formed")
        leave(a)
        leave(b)


def leave(client):
    """End a well-behaved client's stream (inside a Guard, every
    connection but the bystanders' must be gone by the end)."""
    client.end_stream()
    client.expect_closed()


class Guard:
    """An attack on srv between a baseline and the checks afterwards (see
    the module docstring). peak_conns: connections held at once at the
    peak (for the high-water allowance). settle: seconds to wait for the
    attacking connections to be gone."""

    def __init__(self, srv, peak_conns=0, settle=15, warm=True):
        self.srv = srv
        self.peak_conns = peak_conns
        self.settle = settle
        self.warm = warm
        self.watch = ProcWatch(srv.proc.pid)
        self.memory_checks = not self.watch.sanitized()
        self.latencies = []

    def __enter__(self):
        if self.warm:
            warm_up(self.srv)
        self._bystanders = harness.bystanders(self.srv)
        self.b, self.c = self._bystanders.__enter__()
        self.base_fds = self.watch.fds()
        self.base_rss = self.watch.rss()
        self.base_cpu = self.watch.cpu()
        self.watch.reset_peak()
        return self

    def allowance(self):
        return (max(2 * MiB, self.base_rss // 10)
                + PER_CONN_HIGH_WATER * self.peak_conns)

    def cpu_used(self):
        return self.watch.cpu() - self.base_cpu

    def chat(self):
        """A message each way between the bystanders; returns (and keeps)
        the seconds it took."""
        t = time.monotonic()
        harness.exchange(self.b, self.c)
        harness.exchange(self.c, self.b)
        took = time.monotonic() - t
        self.latencies.append(took)
        return took

    def check_peak(self, limit_above_baseline, what):
        peak = self.watch.peak()
        if not self.memory_checks:
            return peak
        harness.check(peak <= self.base_rss + limit_above_baseline,
                      "%s: resident memory peaked at %s, baseline %s "
                      "(allowed +%s)" % (what, mib(peak), mib(self.base_rss),
                                         mib(limit_above_baseline)))
        return peak

    def check_back(self):
        """Descriptors and resident memory back to the baseline."""
        fds = self.watch.wait_fds(self.base_fds, self.settle)
        harness.check(fds <= self.base_fds,
                      "server still has %d descriptors open, %d before the "
                      "attack" % (fds, self.base_fds))
        if not self.memory_checks:
            return
        limit = self.base_rss + self.allowance()
        rss = self.watch.wait_rss(limit, 5)
        harness.check(rss <= limit,
                      "server memory did not return to its baseline: VmRSS "
                      "%s after the attack, %s before, peak %s (allowed +%s)"
                      % (mib(rss), mib(self.base_rss), mib(self.watch.peak()),
                         mib(self.allowance())))

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            return False
        self.check_back()
        self._bystanders.__exit__(None, None, None)
        return False


# ------------------------------------------------------------ sockets

def raise_fd_limit(wanted):
    """Raise this process's soft RLIMIT_NOFILE towards `wanted` (a server
    started afterwards inherits it); returns the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft == resource.RLIM_INFINITY or soft >= target:
        return soft
    resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return target


@contextlib.contextmanager
def fd_limit(soft):
    """This process's soft RLIMIT_NOFILE set to `soft` inside the block
    (a server started inside inherits it), restored afterwards."""
    old_soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (old_soft, hard))


def sources(n, per_address=32, first=2):
    """n source addresses in 127.0.0.0/8 (all loopback on Linux), each
    used per_address times in a row: 127.0.0.2 x32, 127.0.0.3 x32, ..."""
    for i in range(n):
        k = first + i // per_address
        yield "127.%d.%d.%d" % (k // 65536 % 256, k // 256 % 256, k % 256)


class Flood:
    """Many raw non-blocking connections, watched with epoll.

    open(addr, port) starts a connection from source address addr and
    returns its key; send_when_connected(key, data) queues bytes for when
    it is established; pump(timeout) runs the loop once, reading and
    discarding what the server sends and noting when it closed each one.
    """

    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.conns = {}          # fd -> Conn

    class Conn:
        __slots__ = ("sock", "opened", "connected", "closed_at", "data",
                     "got", "head", "close_when_connected", "refused", "kind")

    def open(self, src, port, data=b"", close_when_connected=False,
             kind=None):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.bind((src, 0))
        c = self.Conn()
        c.sock, c.opened, c.connected, c.closed_at = s, time.monotonic(), False, None
        c.data, c.got, c.close_when_connected = data, 0, close_when_connected
        c.refused, c.head, c.kind = False, b"", kind
        try:
            s.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        self.conns[s.fileno()] = c
        self.sel.register(s, selectors.EVENT_WRITE)
        return c

    def pump(self, timeout=0):
        for key, ev in self.sel.select(timeout):
            c = self.conns[key.fd]
            if not c.connected:
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    c.refused = True
                    self._finish(key.fd, c)
                    continue
                c.connected = True
                if c.close_when_connected:
                    self._finish(key.fd, c, by_us=True)
                    continue
                if c.data:
                    try:
                        c.sock.send(c.data)
                    except OSError:
                        pass
                self.sel.modify(c.sock, selectors.EVENT_READ)
                continue
            try:
                d = c.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                d = b""
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    continue
                d = b""
            if d:
                c.got += len(d)
                if len(c.head) < 4096:
                    c.head += d[:4096 - len(c.head)]
            else:
                self._finish(key.fd, c)

    def _finish(self, fd, c, by_us=False):
        c.closed_at = None if by_us else time.monotonic()
        self.sel.unregister(c.sock)
        c.sock.close()
        del self.conns[fd]

    def __len__(self):
        return len(self.conns)

    def pump_until(self, done, timeout):
        """pump() until done() or timeout seconds (scaled) have passed."""
        deadline = time.monotonic() + xmpp.timeout_value(timeout)
        while not done() and time.monotonic() < deadline:
            self.pump(0.2)

    def close_all(self):
        for fd, c in list(self.conns.items()):
            self._finish(fd, c, by_us=True)
        self.sel.close()


def readable(client):
    """True when the server has sent something the client has not read
    (for a sender that must stop once the stream error is there)."""
    sock = client.transport.sock
    if getattr(sock, "pending", None) and sock.pending():
        return True
    r, _, _ = select.select([sock], [], [], 0)
    return bool(r)


def pace(interval):
    """A generator of deadlines `interval` seconds apart, for trickling:
    `for _ in pace(0.01): send one byte` (sleeps between items)."""
    t = time.monotonic()
    while True:
        t += interval
        yield
        left = t - time.monotonic()
        if left > 0:
            time.sleep(left)
