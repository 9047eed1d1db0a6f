#!/usr/bin/python3
"""Starling's test runner.

    tests/run.py --build DIR [--asan | --tsan] [-j N] [pattern ...]

Runs, in this order:
  unit/NAME          every DIR/tests/test_* binary (C unit tests): passes
                     when it exits 0; the checks its "N passed, N failed"
                     lines report are added to the totals
  lint/luacheck      luacheck on lua/ and modules/, when .luacheckrc exists
  conversation/...   every test_* function of tests/conversation/test_*.py
  interop/...        and of tests/interop/test_*.py
  browser/...        and of tests/browser/test_*.py (chromium, make browser-deps)

Each test file runs in its own worker process (up to -j at once); each test
has a time limit. One line per test (PASS/FAIL, name, time), details after
a FAIL, then exactly one closing line "total: N passed, N failed". Exits 1
when anything failed, 2 when nothing matched the patterns.

A pattern selects tests by name: a plain string matches as a substring, one
with * ? [ as a glob (e.g. 'conversation/test_login.py::*plus*').

--asan, --tsan: the build is instrumented (AddressSanitizer + UBSan, or
ThreadSanitizer): time limits are tripled (unless
STARLING_TEST_TIMEOUT_SCALE is set) and unit test output is also checked
for sanitizer reports. --tsan sets TSAN_OPTIONS (unless set) so that the
first data race ends the process with a report and a non-zero exit.
"""

import argparse
import concurrent.futures
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIB = os.path.join(ROOT, "tests", "lib")
TEST_DIRS = ("conversation", "interop", "browser")
SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "runtime error:", "WARNING: ThreadSanitizer",
                      "ERROR: ThreadSanitizer")
# A race ends the process at its first report (halt_on_error); the
# suppressions file lists false positives in libraries we did not write.
TSAN_OPTIONS = ("halt_on_error=1:second_deadlock_stack=1:history_size=4:"
                "suppressions=" + os.path.join(ROOT, "tests", "tsan.supp"))
UNIT_TIMEOUT = 300
LINT_TIMEOUT = 300
FILE_TIMEOUT = 900
COUNTS = re.compile(r"(\d+) passed, (\d+) failed")


class Totals:
    def __init__(self):
        self.passed = self.failed = 0
        self.lock = threading.Lock()

    def report(self, name, ok, seconds, details="", note="", passed=None,
               failed=None):
        """Print one result; passed/failed override the count of 1."""
        with self.lock:
            if passed is None:
                passed, failed = (1, 0) if ok else (0, 1)
            self.passed += passed
            self.failed += failed
            line = "%s %s (%.2fs)%s" % ("PASS" if ok else "FAIL", name,
                                        seconds, " " + note if note else "")
            print(line, flush=True)
            if not ok and details:
                for d in details.rstrip().splitlines():
                    print("    " + d)
                sys.stdout.flush()


def make_selector(patterns):
    def selected(name):
        if not patterns:
            return True
        for p in patterns:
            if any(ch in p for ch in "*?["):
                if fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(name, "*" + p):
                    return True
            elif p in name:
                return True
        return False
    return selected


def run_units(build, instrumented, env, selected, totals):
    directory = os.path.join(build, "tests")
    if not os.path.isdir(directory):
        return 0
    ran = 0
    for entry in sorted(os.listdir(directory)):
        path = os.path.join(directory, entry)
        name = "unit/" + entry
        if (not entry.startswith("test_") or not os.path.isfile(path)
                or not os.access(path, os.X_OK) or not selected(name)):
            continue
        ran += 1
        t0 = time.monotonic()
        try:
            proc = subprocess.run([path], cwd=ROOT, env=env,
                                  capture_output=True, text=True,
                                  errors="replace",
                                  timeout=UNIT_TIMEOUT * (3 if instrumented else 1))
            output, code = proc.stdout + proc.stderr, proc.returncode
        except subprocess.TimeoutExpired as e:
            output = ((e.stdout or b"").decode(errors="replace")
                      + (e.stderr or b"").decode(errors="replace"))
            code = "timeout"
        passed = failed = 0
        for m in COUNTS.finditer(output):
            passed += int(m.group(1))
            failed += int(m.group(2))
        problems = []
        if code != 0:
            problems.append("exit code %s" % code)
        problems += ["output shows %r" % p for p in SANITIZER_PATTERNS
                     if p in output]
        ok = not problems and failed == 0
        if passed + failed == 0:
            passed, failed = (1, 0) if ok else (0, 1)
        elif not ok and failed == 0:
            failed = 1
        tail = "\n".join(output.rstrip().splitlines()[-60:])
        totals.report(name, ok, time.monotonic() - t0,
                      "; ".join(problems) + "\n" + tail,
                      note="%d checks" % (passed + failed),
                      passed=passed, failed=failed)
    return ran


def run_luacheck(selected, totals):
    name = "lint/luacheck"
    if not os.path.exists(os.path.join(ROOT, ".luacheckrc")) or not selected(name):
        return 0
    targets = [d for d in ("lua", "modules") if os.path.isdir(os.path.join(ROOT, d))]
    t0 = time.monotonic()
    if shutil.which("luacheck") is None:
        totals.report(name, False, 0, "luacheck is not installed "
                      "(apt-get install lua-check)")
        return 1
    proc = subprocess.run(["luacheck", "--no-color", "--codes"] + targets,
                          cwd=ROOT, capture_output=True, text=True,
                          timeout=LINT_TIMEOUT)
    totals.report(name, proc.returncode == 0, time.monotonic() - t0,
                  proc.stdout + proc.stderr)
    return 1


def test_files(selected_dirs):
    files = []
    for d in selected_dirs:
        directory = os.path.join(ROOT, "tests", d)
        if not os.path.isdir(directory):
            continue
        for entry in sorted(os.listdir(directory)):
            if entry.startswith("test_") and entry.endswith(".py"):
                files.append((os.path.join(directory, entry),
                              "%s/%s" % (d, entry)))
    return files


def run_worker_file(path, display, args, env, totals):
    """Run one test file in a worker; returns the number of results."""
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", path,
           "--display", display, "--build", args.build]
    for p in args.patterns:
        cmd += ["--select", p]
    errlog = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errlog,
                            stdin=subprocess.DEVNULL, env=env, text=True)
    killer = threading.Timer(FILE_TIMEOUT * float(env["STARLING_TEST_TIMEOUT_SCALE"]),
                             proc.kill)
    killer.start()
    results, done = 0, False
    t0 = time.monotonic()
    try:
        for line in proc.stdout:
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record.get("done"):
                done = True
                continue
            results += 1
            totals.report(record["name"], record["ok"], record["time"],
                          record.get("details", ""),
                          note=record.get("note", ""))
        proc.wait()
    finally:
        killer.cancel()
    if not done or proc.returncode != 0:
        errlog.seek(0)
        err = errlog.read().decode(errors="replace")
        why = ("killed after %ss" % FILE_TIMEOUT if proc.returncode < 0
               else "worker exited with code %s" % proc.returncode)
        totals.report(display + "::<worker>", False, time.monotonic() - t0,
                      why + "\n" + "\n".join(err.splitlines()[-80:]))
        results += 1
    errlog.close()
    return results


def worker_main(args):
    """Run one file; JSON results on the original stdout, which is kept
    away from tests and the processes they start."""
    out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = os.fdopen(1, "w")
    sys.path.insert(0, LIB)
    import harness
    harness.run_file(args.worker, args.display, os.path.abspath(args.build),
                     make_selector(args.select), out)
    out.write(json.dumps({"done": True}) + "\n")
    out.flush()
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", required=True, help="build directory")
    ap.add_argument("--asan", action="store_true",
                    help="the build uses AddressSanitizer/UBSan")
    ap.add_argument("--tsan", action="store_true",
                    help="the build uses ThreadSanitizer")
    ap.add_argument("-j", "--jobs", type=int, default=3,
                    help="test files run at once (default 3)")
    ap.add_argument("patterns", nargs="*", help="select tests by name")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--display", help=argparse.SUPPRESS)
    ap.add_argument("--select", action="append", default=[],
                    help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        return worker_main(args)

    sys.path.insert(0, LIB)
    import server as server_mod

    env = dict(os.environ)
    instrumented = args.asan or args.tsan
    env.setdefault("STARLING_TEST_TIMEOUT_SCALE", "3" if instrumented else "1")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    if args.asan:
        env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=0")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
    if args.tsan:
        env.setdefault("TSAN_OPTIONS", TSAN_OPTIONS)
    selected = make_selector(args.patterns)
    totals = Totals()
    t0 = time.monotonic()
    ran = run_units(args.build, instrumented, env, selected, totals)
    ran += run_luacheck(selected, totals)

    files = test_files(TEST_DIRS)
    if files:
        certdir = tempfile.mkdtemp(prefix="starling-cert-")
        try:
            server_mod.make_cert(certdir)
            env["STARLING_TEST_CERT_DIR"] = certdir
            with concurrent.futures.ThreadPoolExecutor(max(1, args.jobs)) as pool:
                futures = [pool.submit(run_worker_file, path, display, args,
                                       env, totals)
                           for path, display in files]
                for f in futures:
                    ran += f.result()
        finally:
            shutil.rmtree(certdir, ignore_errors=True)

    print("(%.1fs)" % (time.monotonic() - t0))
    print("total: %d passed, %d failed" % (totals.passed, totals.failed),
          flush=True)
    if ran == 0:
        print("no test matched", file=sys.stderr)
        return 2
    return 1 if totals.failed else 0


if __name__ == "__main__":
    sys.exit(main())
