"""The processes `crawlfleet up` keeps running: each role in its own process
group, restarted with a backoff when it dies, and the embedded store
restarted on its own port."""

import os
import subprocess
import time

from crawlfleet.embedded import start_mongo
from crawlfleet.processes import stop_group

RESTART_FIRST, RESTART_LONGEST = 1.0, 30.0  # seconds before restarting a crashed role
STABLE_AFTER = 60.0  # a role up this long has its backoff reset


class Child:
    """A role of `up`, in its own process group, restarted with backoff when it dies."""

    def __init__(self, name, argv, env):
        self.name, self.argv, self.env = name, argv, env
        self.restarts = 0
        self.restart_at = None
        self.spawn()

    def spawn(self):
        self.proc = subprocess.Popen(self.argv, env=self.env, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.started = time.monotonic()

    def supervise(self, echo):
        """Called every half second by `up`: notice a death, restart after a backoff
        (1, 2, 4 ... 30 s), and say both on the terminal."""
        now = time.monotonic()
        if self.restart_at is None and self.proc.poll() is None:
            if self.restarts and now - self.started > STABLE_AFTER:
                self.restarts = 0
            return
        if self.restart_at is None:
            self.restarts += 1
            delay = min(RESTART_LONGEST, RESTART_FIRST * 2 ** (self.restarts - 1))
            self.restart_at = now + delay
            self.stop(timeout=5.0)  # whatever it left in its process group
            echo(f"crawlfleet: {self.name} exited with code {self.proc.returncode}; "
                 f"restarting it in {delay:.0f} s (restart {self.restarts})")
        elif now >= self.restart_at:
            self.restart_at = None
            try:
                self.spawn()
            except (OSError, RuntimeError) as exc:
                echo(f"crawlfleet: {self.name} could not be restarted: {exc}")
                self.started = now
                return
            echo(f"crawlfleet: {self.name} restarted (pid {self.proc.pid})")

    def stop(self, timeout=20.0):
        stop_group(self.proc, timeout)


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (one of another user counts)."""
    try:
        os.kill(pid, 0)
        return True
    except (ProcessLookupError, TypeError):
        return False
    except PermissionError:
        return True


class EmbeddedStore(Child):
    """nx-27017, restarted on the same port so that every role's URI holds."""

    def __init__(self, home, log_file):
        self.name, self.home, self.log_file = "mongo", home, log_file
        self.restarts, self.restart_at, self.port = 0, None, 0
        self.spawn()

    def spawn(self):
        self.proc, self.uri = start_mongo(self.home, self.log_file, self.port)
        self.port = int(self.uri.rsplit(":", 1)[1])
        self.started = time.monotonic()
