"""`crawlfleet up` that never falls over (issue 16, items 8-10): a crashed role
is restarted with backoff and the terminal says so; a taken web port stops
`up` at once with one line naming the port and the flag; the demo site's port
survives a quick restart (TIME_WAIT is not "taken"); HOME is private."""

import os
import signal
import socket
import stat
import subprocess
import sys
import time

from conftest import free_port, stop_group
from crawlfleet.cli.children import Child
from crawlfleet.cli.server import _start_web
from crawlfleet.embedded import free_port as embedded_free_port
from crawlfleet.embedded import port_is_free
from helpers import make_config
from test_readme_e2e import CLI, cli, ctrl_c, start_up, user_env


def children_named(parent_pid, word):
    """pids of `parent_pid`'s children whose command line holds `word`."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent_pid and word.encode() in argv:
            out.append(int(entry))
    return out


def wait_log(path, text, timeout=90.0, since=0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in open(path).read()[since:]:
            return
        time.sleep(0.2)
    raise AssertionError(f"{text!r} not in the terminal output:\n{open(path).read()[since:]}")


def test_a_crashed_role_is_restarted_and_the_platform_stays_up(tmp_path):
    home = tmp_path / "data"
    log_path = tmp_path / "up.log"
    up = start_up(home, free_port(), free_port(), log_path)
    try:
        # HOME and what `up` writes in it are its owner's only
        assert stat.S_IMODE(home.stat().st_mode) == 0o700
        for name in ("admin-token", "secret-key", "run/up.json", "run/nx-27017.out"):
            path = home / name
            if path.exists():
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
        [node] = children_named(up.pid, "node")
        seen = len(open(log_path).read())
        os.killpg(node, signal.SIGKILL)
        wait_log(log_path, "crawlfleet: node exited with code -9; restarting it in 1 s "
                           "(restart 1)", since=seen)
        wait_log(log_path, "crawlfleet: node restarted", since=seen)
        assert up.poll() is None
        [again] = children_named(up.pid, "node")
        assert again != node
        ran = cli("run", "plain_catalogue", "--wait", "-a", "max_pages=1",
                  env=user_env(home), timeout=180)
        assert ran.returncode == 0, ran.stdout + ran.stderr
        assert "finished" in ran.stdout.strip().splitlines()[-1]
        assert ctrl_c(up) == 0
        up = None
    finally:
        if up is not None:
            stop_group(up)


def test_a_taken_web_port_stops_up_before_anything_is_made(tmp_path):
    home = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*CLI, "up", "--port", str(port), "--demo-port", "0"],
                              env=user_env(home), capture_output=True, text=True, timeout=60,
                              start_new_session=True)
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert f"port {port}" in lines[0] and "--port" in lines[0]
    assert "crawlfleet is up" not in done.stdout and "password" not in done.stdout
    assert not (home / "admin-token").exists()


def test_a_port_in_time_wait_is_not_taken():
    """A server that closed its side first leaves its port in TIME_WAIT: the
    demo site binds it again (SO_REUSEADDR), so `up` keeps the port."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    conn, _ = server.accept()
    conn.close()  # the server's side closes first: TIME_WAIT on `port`
    client.recv(1)
    client.close()
    server.close()
    assert port_is_free("127.0.0.1", port)
    assert embedded_free_port(preferred=port) == port
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        taken = listening.getsockname()[1]
        assert not port_is_free("127.0.0.1", taken)
        assert embedded_free_port(preferred=taken) != taken


def test_a_scrapyd_port_taken_after_the_check_moves_the_web_to_another(tmp_path, mongo_server):
    """`up` found the Scrapyd port free, then another program took it before the
    web bound it: the web is started again on another port instead of dying
    after `up` said it was up."""
    config = make_config(tmp_path, mongo_server)
    env = {**os.environ, **config.as_environ()}
    children: list[Child] = []
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        held = taken.getsockname()[1]
        # chosen while `held` is bound: a port picked before it could be the one
        # the kernel hands out next (seen in a CI-style run: web and Scrapyd on one)
        port = free_port()
        try:
            moved = _start_web([sys.executable, "-m", "crawlfleet"], "127.0.0.1", port, held,
                               env, children)
            assert moved not in (0, held)
            assert len(children) == 1 and children[0].proc.poll() is None
            with socket.create_connection(("127.0.0.1", moved), timeout=5):
                pass  # the Scrapyd listener answers on the new port
        finally:
            for child in children:
                child.stop()
