"""The embedded defaults of `crawlfleet up`: a MongoDB-wire server (nx-27017,
SQLite files under HOME/db) started as a child process on a free loopback
port. The embedded broker needs no process: it is kombu's filesystem
transport under HOME/broker (see crawlfleet.broker)."""

import socket
import subprocess
import sys
import time

MONGO_STARTUP_TIMEOUT = 30.0


def free_port(host="127.0.0.1", preferred=0):
    with socket.socket() as s:
        try:
            s.bind((host, preferred))
        except OSError:
            s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(host, port, timeout, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def start_mongo(home, log_file):
    """Start nx-27017 on a free port; returns (process, mongodb URI)."""
    folder = home / "db"
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
         "--data-dir", str(folder), "--host", "127.0.0.1", "-p", str(port),
         "--log-file", str(folder / "nx-27017.log"), "--pid-file", str(folder / "nx-27017.pid")],
        stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    if not wait_for_port("127.0.0.1", port, MONGO_STARTUP_TIMEOUT, proc):
        proc.kill()
        raise RuntimeError(f"the embedded MongoDB-wire server did not start; see {folder}/nx-27017.log")
    return proc, f"mongodb://127.0.0.1:{port}"
