"""Shared fixtures: a real MongoDB-wire server, isolated databases and brokers.

Every process a test starts runs in its own process group, and the fixture
that started it ends that group.
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymongo
import pytest

from crawlfleet.config import Config
from crawlfleet.store import Store

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20.0, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout} s")


def stop_group(proc, timeout=10.0):
    """End a process started with start_new_session=True, and its whole group."""
    if proc.poll() is None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                continue
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers left in the group
    except (ProcessLookupError, PermissionError):
        pass


@pytest.fixture(scope="session")
def mongo_server(tmp_path_factory):
    """An nx-27017 MongoDB-wire server on a free port, for the whole session."""
    folder = tmp_path_factory.mktemp("nx")
    port = free_port()
    proc = subprocess.Popen(
        [str(BIN / "nx-27017"), "--data-dir", str(folder / "data"), "--host", "127.0.0.1",
         "-p", str(port), "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    try:
        wait_for_port(port, proc=proc)
        yield f"mongodb://127.0.0.1:{port}"
    finally:
        stop_group(proc)


def redis_available():
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def rabbitmq_available():
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=1):
            return True
    except OSError:
        return False


BROKERS = {
    "embedded": lambda: "filesystem://",
    "redis": lambda: "redis://127.0.0.1:6379/5",
    "rabbitmq": lambda: "amqp://guest:guest@127.0.0.1:5672//",
}


def make_config(tmp_path, mongo_uri, broker="embedded", **extra):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    values = {
        "home": str(home),
        "mongo_uri": mongo_uri,
        "mongo_db": "t_" + uuid.uuid4().hex[:12],
        "broker_url": BROKERS[broker](),
        "queue_prefix": "cft" + uuid.uuid4().hex[:10],
        "spiders_path": str(ROOT / "spiders"),
        "api_url": "http://127.0.0.1:1",
        "heartbeat_interval": 1.0,
        "node_timeout": 5.0,
        "reconcile_interval": 0.5,
        "cancel_grace": 3.0,
        "stats_interval": 0.5,
        "log_flush_interval": 0.2,
    }
    values.update(extra)
    return Config.from_dict(values)


@pytest.fixture
def config(tmp_path, mongo_server):
    """A config with its own database, home folder and embedded broker."""
    return make_config(tmp_path, mongo_server)


@pytest.fixture
def store(config):
    store = Store(config)
    store.ensure_indexes()
    yield store
    store.client.drop_database(config.mongo_db)
    store.close()
