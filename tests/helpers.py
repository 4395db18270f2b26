"""What tests share besides fixtures: ports, process groups, configs, brokers,
and waits on facts (the ledger, a port, a node's registration).

Fixtures live in conftest.py, which imports what it needs from here; tests
import helpers from here (``from helpers import wait_task``). conftest
re-exports every name below, so ``from conftest import ...`` keeps working.

Every wait takes a timeout scaled by ``CRAWLFLEET_TEST_TIMEOUT_SCALE`` (default
1): CI sets it when it runs the suite with a core kept busy.
"""

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

from crawlfleet import processes
from crawlfleet.config import Config
from crawlfleet.models import NodeStatus, TaskStatus
from crawlfleet.retrying import poll_until

TIMEOUT_SCALE = float(os.environ.get("CRAWLFLEET_TEST_TIMEOUT_SCALE") or 1)


def scaled(timeout):
    """A timeout stretched for a loaded machine."""
    return timeout * TIMEOUT_SCALE


ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port, timeout=20.0, proc=None):
    timeout = scaled(timeout)
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
    processes.stop_group(proc, timeout)


def stop_groups(procs, timeout=10.0):
    """End processes started with start_new_session=True, and their whole groups,
    all at once (one after the other, a test's nodes would stop in turn)."""
    processes.stop_groups(procs, timeout)


def listening(port, host="127.0.0.1"):
    """True when a server accepts connections on `port` (a service the tests need)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def redis_available():
    return listening(6379)


def rabbitmq_available():
    return listening(5672)


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


# What a test waits for when it waits for a task to end (the ledger's own set).
FINAL = frozenset(TaskStatus.values(TaskStatus.FINAL))


def wait_task(store, task_id, timeout=60.0, statuses=FINAL):
    """Poll the ledger until the task reaches one of `statuses`; returns its document."""
    timeout = scaled(timeout)
    deadline = time.monotonic() + timeout
    doc = None
    while time.monotonic() < deadline:
        doc = store.tasks.find_one({"_id": task_id})
        if doc and doc["status"] in statuses:
            return doc
        time.sleep(0.1)
    raise AssertionError(f"task {task_id} still {doc and doc['status']} after {timeout} s: {doc}")


def wait_for(predicate, timeout=20.0, what="condition"):
    """Poll `predicate` until it returns something true; returns that."""
    timeout = scaled(timeout)
    value = poll_until(predicate, timeout, interval=0.1)
    if not value:
        raise AssertionError(f"{what} not reached after {timeout} s")
    return value


def task_log(store, task_id):
    lines = []
    for doc in store.task_logs.find({"task_id": task_id}).sort("seq", 1):
        lines.extend(doc["lines"])
    return lines


def process_env(config, **extra):
    env = dict(os.environ)
    env.update(config.as_environ())
    env.update({k: str(v) for k, v in extra.items()})
    return env


class Processes:
    """crawlfleet processes started by one test, each in its own process group."""

    def __init__(self, config, demo_url, tmp_path):
        self.config = config
        self.demo_url = demo_url
        self.tmp_path = tmp_path
        self.procs = []
        self.node_ids = []

    def start(self, *args, env=None, name="proc"):
        log = open(self.tmp_path / f"{name}-{len(self.procs)}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "crawlfleet", *args],
            env=env or process_env(self.config, CRAWLFLEET_DEMO_URL=self.demo_url),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        proc.log_path = log.name
        self.procs.append(proc)
        return proc

    def node(self, store, node_id=None, max_runners=2, **extra_env):
        """A node, once it has registered."""
        proc = self._start_node(node_id, max_runners, extra_env)
        self._registered(store, proc)
        return proc

    def nodes(self, store, count, max_runners=2, **extra_env):
        """`count` nodes started side by side, once all have registered."""
        procs = [self._start_node(None, max_runners, extra_env) for _ in range(count)]
        for proc in procs:
            self._registered(store, proc)
        return procs

    def _start_node(self, node_id, max_runners, extra_env):
        node_id = node_id or "n" + uuid.uuid4().hex[:6]
        env = process_env(self.config, CRAWLFLEET_DEMO_URL=self.demo_url,
                          CRAWLFLEET_NODE_ID=node_id, CRAWLFLEET_MAX_RUNNERS=max_runners,
                          **extra_env)
        proc = self.start("node", env=env, name=f"node-{node_id}")
        proc.node_id = node_id
        self.node_ids.append(node_id)
        return proc

    def _registered(self, store, proc):
        wait_for(lambda: (store.nodes.find_one({"_id": proc.node_id,
                                                "status": NodeStatus.ONLINE.value})
                          or proc.poll() is not None),
                 what=f"node {proc.node_id} registered")
        assert proc.poll() is None, open(proc.log_path).read()

    def master(self):
        return self.start("master", name="master")

    def stop_all(self):
        stop_groups(self.procs)


def purge_broker(config, node_ids=()):
    """Delete what a test declared on a shared Redis or RabbitMQ."""
    from kombu import Connection

    if config.broker_url.startswith("redis"):
        import redis

        client = redis.Redis.from_url(config.broker_url)
        for key in client.scan_iter(f"*{config.queue_prefix}*"):
            client.delete(key)
        # the frontier ACL users of the crawls it ran (crawlfleet/frontier_acl.py)
        users = [u if isinstance(u, str) else u.decode() for u in client.acl_users()]
        for user in users:
            if user.startswith(f"{config.queue_prefix}-crawl-"):
                client.acl_deluser(user)
        client.close()
    elif config.broker_url.startswith("amqp"):
        with Connection(config.broker_url) as conn:
            channel = conn.channel()
            from crawlfleet.broker import Topology

            topology = Topology(config.queue_prefix)
            names = [topology.shared_queue.name]
            names += [topology.node_queue(n).name for n in node_ids]
            for name in names:
                try:
                    channel.queue_delete(name)
                except Exception:
                    channel = conn.channel()
            for exchange in (topology.task_exchange, topology.control_exchange):
                try:
                    channel.exchange_delete(exchange.name)
                except Exception:
                    channel = conn.channel()


# `scrapy list` answers by project content, remembered across the tests of one
# process (one xdist worker): see scan below.
_LISTINGS = {}


def scan(store, config):
    """master.discovery.scan for a test's fresh database, running `scrapy list`
    once per project content in this process rather than once per test (a few
    seconds a test on a busy machine). It is what a master does with versions it
    knows (discovery._known_listing): versions are content-hashed and immutable,
    so listing them again only repeats the answer. tests/test_discovery.py tests
    the listing itself and calls the real scan."""
    from crawlfleet import packaging
    from master import discovery

    real = discovery.list_scrapy_spiders

    def remembered(folder, config, timeout):
        key = (str(folder), packaging.content_hash(folder.name, folder))
        if key not in _LISTINGS:
            _LISTINGS[key] = real(folder, config, timeout)  # a failure is not remembered
        return list(_LISTINGS[key])

    discovery.list_scrapy_spiders = remembered
    try:
        return discovery.scan(store, config)
    finally:
        discovery.list_scrapy_spiders = real


class Tokens:
    """Authorization headers (and raw tokens) for each role."""

    def __init__(self, store):
        from crawlfleet.tokens import create_token

        self.admin_token = create_token(store, "t-admin", "admin")
        self.operator_token = create_token(store, "t-op", "operator")
        self.viewer_token = create_token(store, "t-view", "viewer")
        self.admin = {"Authorization": "Bearer " + self.admin_token}
        self.operator = {"Authorization": "Bearer " + self.operator_token}
        self.viewer = {"Authorization": "Bearer " + self.viewer_token}
