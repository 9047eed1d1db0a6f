"""A private PostgreSQL for a test (issue #23): Debian's initdb makes a
cluster in a temporary directory, pg_ctl starts it on a random loopback
port with its socket in that directory, and stop() removes it all.
PostgreSQL refuses to run as root: when the tests run as root, the
cluster belongs to 'nobody' and its programs run as that user.

    pg = PgServer(); pg.start()
    pg.conninfo("starling")     # libpq "key=value" of a new database
    pg.stop()
"""

import glob
import os
import pwd
import shutil
import subprocess
import tempfile

from server import free_port


def pg_bindir():
    """Debian's PostgreSQL programs (the newest version), or None."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class PgServer:
    def __init__(self):
        self.bindir = pg_bindir()
        self.dir = None
        self.port = None
        self.running = False
        self.dbs = 0

    def _as_owner(self):
        if os.getuid() != 0:
            return None
        pw = pwd.getpwnam("nobody")

        def drop():
            os.setgid(pw.pw_gid)
            os.setgroups([])
            os.setuid(pw.pw_uid)
        return drop

    def _run(self, prog, *args, **kw):
        env = dict(os.environ, LC_ALL="C", PGHOST=self.dir, PGPORT=str(self.port))
        r = subprocess.run([os.path.join(self.bindir, prog)] + list(args),
                           cwd=self.dir, env=env, preexec_fn=self._as_owner(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=kw.get("timeout", 60))
        if r.returncode != 0:
            raise RuntimeError("%s %s: %s" % (prog, " ".join(args),
                                              r.stdout.decode(errors="replace")))
        return r.stdout.decode(errors="replace")

    def start(self):
        if not self.bindir:
            raise RuntimeError("PostgreSQL is not installed (postgresql)")
        self.dir = tempfile.mkdtemp(prefix="starling-pg-")
        if os.getuid() == 0:
            pw = pwd.getpwnam("nobody")
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        data = os.path.join(self.dir, "data")
        self._run("initdb", "-D", data, "-U", "starling", "--auth=trust",
                  "-E", "UTF8", "--no-sync")
        self.resume()
        return self

    def pause(self):
        """Stops the server (its clients' connections break), keeping its
        data for resume()."""
        self._run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "fast",
                  "-w", "stop")
        self.running = False

    def stop_now(self):
        """Stops the server at once (immediate: its clients' connections
        break, uncommitted work is gone), keeping its data for resume()."""
        self._run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m",
                  "immediate", "-w", "stop")
        self.running = False

    def resume(self):
        """Starts the paused server again, on the same port."""
        opts = ("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=on "
                "-c max_connections=50" % (self.port, self.dir))
        self._run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-o", opts,
                  "-l", os.path.join(self.dir, "log"), "-w", "start")
        self.running = True

    def database(self, name=None):
        """Creates a database; returns its name."""
        self.dbs += 1
        name = name or "starling%d" % self.dbs
        self._run("createdb", "-h", "127.0.0.1", "-U", "starling", name)
        return name

    def conninfo(self, db=None):
        """The libpq conninfo of database db (a new one when None)."""
        return "host=127.0.0.1 port=%d user=starling dbname=%s" % (
            self.port, db or self.database())

    def psql(self, db, sql):
        """Runs sql in database db; returns psql's unaligned output."""
        return self._run("psql", "-h", "127.0.0.1", "-U", "starling", "-d", db,
                         "-At", "-c", sql)

    def stop(self):
        if self.running:
            try:
                self._run("pg_ctl", "-D", os.path.join(self.dir, "data"),
                          "-m", "immediate", "-w", "stop")
            finally:
                self.running = False
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None
