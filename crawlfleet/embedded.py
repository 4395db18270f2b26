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
    """`preferred` when nothing listens on it, else any free port. Probed with
    SO_REUSEADDR, as the servers bind: a port still in TIME_WAIT after a
    quick restart is free, not taken."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, preferred))
        except OSError:
            s.bind((host, 0))
        return s.getsockname()[1]


def port_is_free(host, port):
    """Whether a server could listen on host:port now (see `free_port`)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
            return True
        except OSError:
            return False


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


def start_mongo(home, log_file, port=0):
    """Start nx-27017 on `port` (0: a free one); returns (process, mongodb URI).
    It listens on loopback only: nx-27017 has no authentication."""
    folder = home / "db"
    folder.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
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
