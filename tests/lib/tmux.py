"""A terminal program under test (mcabber, profanity) in a detached tmux
session on a socket of its own, in a temporary directory with its own
HOME: start it, read its screen, wait for what it shows or logs, stop it.
Subclasses say how to read their log (log_tail)."""

import os
import shutil
import subprocess
import tempfile
import time

from harness import skip
from xmpp import timeout_value


class TmuxProgram:
    name = "program"

    def __init__(self, tool):
        for t in (tool, "tmux"):
            if not shutil.which(t):
                skip("%s is not installed" % t)
        self.dir = tempfile.mkdtemp(prefix="starling-%s-" % tool)
        self.home = os.path.join(self.dir, "home")
        self.session = "starling-%s-%d" % (tool, os.getpid())
        self.tmux_socket = os.path.join(self.dir, "tmux.sock")

    def start(self, command, width, height, unset=(), **env_extra):
        """Runs command in the session with HOME and a plain terminal;
        the variables in unset are not passed on."""
        env = dict(os.environ, HOME=self.home, TERM="xterm",
                   LANG="C.UTF-8", LC_ALL="C.UTF-8", **env_extra)
        for name in ("TMUX",) + tuple(unset):
            env.pop(name, None)
        self._tmux("new-session", "-d", "-s", self.session, "-x", str(width),
                   "-y", str(height), command, env=env)

    def _tmux(self, *args, env=None, check_rc=True):
        return subprocess.run(["tmux", "-S", self.tmux_socket] + list(args),
                              env=env, check=check_rc, timeout=10,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def log_tail(self):
        return ""

    def screen(self):
        r = self._tmux("capture-pane", "-p", "-t", self.session,
                       check_rc=False)
        return r.stdout.decode(errors="replace")

    def wait(self, what, ready, timeout=20):
        deadline = time.monotonic() + timeout_value(timeout)
        while not ready():
            if time.monotonic() > deadline:
                raise AssertionError(
                    "%s: no %s within %ss\n--- screen ---\n%s\n"
                    "--- log (end) ---\n%s"
                    % (self.name, what, timeout, self.screen(),
                       self.log_tail()[-4000:]))
            time.sleep(0.1)

    def close(self):
        self._tmux("kill-server", check_rc=False)
        shutil.rmtree(self.dir, ignore_errors=True)
