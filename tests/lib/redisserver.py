"""A private Redis for a test (issue #23: the cluster's registry,
liveness and session directory): Debian's redis-server on a random
loopback port, its files in a temporary directory, nothing persisted
(no RDB snapshots, no AOF); stop() kills it and removes the directory.

    r = RedisServer(); r.start()
    r.url                    # "redis://127.0.0.1:PORT/0"
    r.cli("HGETALL", "starling:nodes")
    r.restart()              # killed, started again empty on the same port
    r.stop()
"""

import os
import shutil
import socket
import subprocess
import tempfile
import time

from server import free_port

REDIS_SERVER = "/usr/bin/redis-server"
REDIS_CLI = "/usr/bin/redis-cli"


def redis_installed():
    return os.access(REDIS_SERVER, os.X_OK) and os.access(REDIS_CLI, os.X_OK)


class RedisServer:
    def __init__(self, host="127.0.0.1"):
        self.host = host
        self.port = None
        self.dir = None
        self.proc = None

    @property
    def url(self):
        return "redis://%s:%d/0" % (self.host, self.port)

    def start(self, timeout=10):
        if not redis_installed():
            raise RuntimeError("Redis is not installed (redis-server)")
        self.dir = tempfile.mkdtemp(prefix="starling-redis-")
        self.port = self.port or free_port()
        log = open(os.path.join(self.dir, "redis.log"), "ab")
        try:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", self.host,
                 "--dir", self.dir, "--save", "", "--appendonly", "no",
                 "--daemonize", "no", "--protected-mode", "no"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.dir)
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("redis-server exited:\n" + self.log_text())
            try:
                socket.create_connection((self.host, self.port), 0.5).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not answer:\n" + self.log_text())

    def log_text(self):
        try:
            with open(os.path.join(self.dir, "redis.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def cli(self, *args):
        """One command through redis-cli; its output without the end."""
        r = subprocess.run([REDIS_CLI, "-h", self.host, "-p", str(self.port)]
                           + [str(a) for a in args], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=10)
        return r.stdout.decode(errors="replace").rstrip("\n")

    def restart(self, timeout=10):
        """Killed (SIGKILL) and started again, empty, on the same port."""
        self.stop()
        return self.start(timeout)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
