"""A page in Debian's chromium, driven by one of tests/browser's node
drivers (playwright-core from tests/browser/node_modules, `make
browser-deps`): commands to its stdin, its answers read line by line.

    page = Page(scope, "conversejs.js", [args...], artifacts("conversejs"))
    page.said("LOGGED_IN")          # the rest of the driver's next line
    page.tell("EXPECT hello")

The driver keeps the page's log (console, page errors, XMPP traffic) in
the artifact directory, BUILD/artifacts/browser/NAME/console.log, and on a
failure a screenshot, failure.png, beside it; an assertion about the page
names both."""

import os
import queue
import shutil
import subprocess
import threading

from harness import skip
from xmpp import timeout_value

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BROWSER = os.path.join(ROOT, "tests", "browser")
CHROMIUM = "/usr/bin/chromium"


def need_browser():
    """Skip the test when chromium, node or tests/browser's packages are
    missing (make test installs them)."""
    if not (shutil.which("node") and os.path.exists(CHROMIUM)):
        skip("node or chromium is not installed (make test-deps)")
    if not os.path.isdir(os.path.join(BROWSER, "node_modules", "playwright-core")):
        skip("tests/browser/node_modules is missing (make browser-deps)")


def artifacts(build_dir, name):
    """BUILD/artifacts/browser/NAME, emptied: what the test keeps."""
    d = os.path.join(build_dir, "artifacts", "browser", name)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


class Page:
    """The driver process: commands on stdin, answers on stdout."""

    def __init__(self, scope, driver, args, artifact_dir, step=20):
        self.dir = artifact_dir
        env = dict(os.environ, STEP_TIMEOUT_MS=str(int(timeout_value(step) * 1000)))
        self.proc = subprocess.Popen(["node", os.path.join(BROWSER, driver)] + args,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=env)
        self.lines = queue.Queue()
        self.blocked = []
        self.err = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._stderr, daemon=True).start()
        scope.cleanup(self.close)

    def _read(self):
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            if line.startswith("BLOCKED "):
                self.blocked.append(line[8:])
            else:
                self.lines.put(line)
        self.lines.put(None)

    def _stderr(self):
        for line in self.proc.stderr:
            self.err.append(line.rstrip("\n"))

    def said(self, prefix, timeout=30):
        """The driver's next line; it must start with prefix."""
        try:
            line = self.lines.get(timeout=timeout_value(timeout))
        except queue.Empty:
            line = "(nothing in time)"
        if line is None or not line.startswith(prefix):
            raise AssertionError(
                "the browser said %r, not %s...; refused off loopback: %r;"
                " the page's log: %s, its screenshot: %s; the driver's"
                " stderr:\n%s" % (line, prefix, self.blocked,
                                  os.path.join(self.dir, "console.log"),
                                  os.path.join(self.dir, "failure.png"),
                                  "\n".join(self.err[-30:])))
        return line[len(prefix):].strip()

    def tell(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def quit(self):
        """QUIT; the driver closes the browser and exits 0."""
        self.tell("QUIT")
        self.said("DONE")
        return self.proc.wait(timeout_value(20))

    def close(self):
        """Cleanup: a driver still running when the test ended (it failed
        on its side) is asked to keep failure.png first."""
        if self.proc.poll() is None:
            try:
                self.tell("ABORT")
                self.proc.wait(timeout_value(10))
            except (OSError, subprocess.TimeoutExpired):
                pass
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
