"""Tests for `crawlfleet health master|node|web` (crawlfleet/cli/health.py): the
exit status and the one line each check prints, run as the real command."""

import socket
import subprocess
import sys

import pytest

from helpers import free_port, process_env
from crawlfleet.models import now
from web import create_app


def health(config, *args, **env):
    return subprocess.run([sys.executable, "-m", "crawlfleet", "health", *args],
                          env=process_env(config, **env), capture_output=True, text=True,
                          timeout=60, start_new_session=True)


def test_master_health_follows_this_hosts_heartbeat(config, store):
    """No master of this host: 1. A fresh heartbeat: 0. Only a stale one: 1.
    Another host's master does not count; --id names one."""
    host = socket.gethostname()
    assert health(config, "master").returncode == 1
    store.masters.insert_one({"_id": "elsewhere-1", "heartbeat_at": now()})
    missing = health(config, "master")
    assert missing.returncode == 1 and "no master of host" in missing.stderr

    store.masters.insert_one({"_id": f"{host}-4242", "heartbeat_at": now() - 60})
    stale = health(config, "master")
    assert stale.returncode == 1 and "last heartbeat" in stale.stderr
    store.masters.insert_one({"_id": f"{host}-4343", "heartbeat_at": now()})
    fresh = health(config, "master")
    assert fresh.returncode == 0, fresh.stderr
    assert fresh.stdout.startswith("healthy: master") and f"{host}-4343" in fresh.stdout
    assert health(config, "master", "--id", f"{host}-4242").returncode == 1
    # each check is a process start: on a busy machine seconds pass between them
    store.masters.update_one({"_id": "elsewhere-1"}, {"$set": {"heartbeat_at": now()}})
    assert health(config, "master", "--id", "elsewhere-1").returncode == 0
    assert health(config, "master", "--max-age", "0.000001").returncode == 1


def test_node_health_follows_its_heartbeat_and_status(config, store):
    """The node named by CRAWLFLEET_NODE_ID (or --id): online and fresh is 0;
    stale, stopped or unknown is 1."""
    store.nodes.insert_one({"_id": "hn1", "status": "online", "heartbeat_at": now(),
                            "busy": 1, "free": 1})
    ok = health(config, "node", CRAWLFLEET_NODE_ID="hn1")
    assert ok.returncode == 0, ok.stderr
    assert "node hn1 heartbeat" in ok.stdout and "1 busy / 1 free" in ok.stdout
    store.nodes.update_one({"_id": "hn1"}, {"$set": {"heartbeat_at": now()}})
    assert health(config, "node", "--id", "hn1").returncode == 0
    assert health(config, "node", "--id", "nobody").returncode == 1

    store.nodes.update_one({"_id": "hn1"}, {"$set": {"heartbeat_at": now() - 3600}})
    assert "last heartbeat" in health(config, "node", "--id", "hn1").stderr
    store.nodes.update_one({"_id": "hn1"}, {"$set": {"heartbeat_at": now(), "status": "stopped"}})
    stopped = health(config, "node", "--id", "hn1")
    assert stopped.returncode == 1 and "is stopped" in stopped.stderr


def test_store_down_is_unhealthy(config):
    """A store that does not answer makes master and node unhealthy, quickly."""
    down = f"mongodb://127.0.0.1:{free_port()}"
    for role in ("master", "node"):
        result = health(config, role, CRAWLFLEET_MONGO_URI=down)
        assert result.returncode == 1
        assert "the store does not answer" in result.stderr


def test_web_health(config, store):
    """/healthz answering {"ok": true} is 0; nothing listening is 1."""
    from werkzeug.serving import make_server
    import threading

    app = create_app(config)
    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        ok = health(config, "web", "--url", f"http://127.0.0.1:{port}/healthz")
        assert ok.returncode == 0, ok.stderr
    finally:
        server.shutdown()
        app.extensions["crawlfleet"].close()
    gone = health(config, "web", "--url", f"http://127.0.0.1:{port}/healthz", "--timeout", "2")
    assert gone.returncode == 1 and "does not answer" in gone.stderr


@pytest.mark.parametrize("role", ["master", "node", "web", "bogus"])
def test_health_help_and_bad_role(config, role):
    """Each role has its own help; an unknown role is a usage error (2)."""
    result = health(config, role, "--help")
    assert result.returncode == (2 if role == "bogus" else 0)
