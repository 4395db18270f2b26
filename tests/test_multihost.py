"""crawlfleet across hosts: three network namespaces stand for three machines.

    root (this test) ──veth── "hub" namespace ──veth── "alpha" namespace (node alpha)
                               MongoDB-wire (nx-27017)  └─veth── "beta" namespace (node beta)
                               Redis (its own, nothing kept)
                               demo site, master, web

Each node reaches the store, the broker and the demo site only through its
own veth link to the hub, at the hub's address on that link, as a node on
another machine would. The test makes the namespaces, links and a private
range (10.233.X.0/24, X picked per run and checked unused) itself, and removes
them — and every process inside them — whatever happens. It runs crawls on
both nodes, then cuts alpha's link in the middle of a crawl (`ip link set DEV
down` inside alpha) and watches the README's "No task lost" row play out:
alpha's tasks turn `abnormal`, their retries run to `finished` on beta; when
the link comes back, alpha stops its orphaned spiders and their late statuses
are refused.
"""

import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pymongo
import pytest
import requests

from helpers import FINAL, stop_groups
from crawlfleet.config import Config
from crawlfleet.store import Store
from crawlfleet.tokens import create_token

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
IP = shutil.which("ip") or "/usr/sbin/ip"
MONGO_PORT, REDIS_PORT, DEMO_PORT, WEB_PORT = 27017, 6379, 8900, 8080

# The short clocks of tests/conftest.py make_config, plus a short retry backoff.
CLOCKS = {
    "CRAWLFLEET_HEARTBEAT_INTERVAL": "1.0",
    "CRAWLFLEET_NODE_TIMEOUT": "5.0",
    "CRAWLFLEET_RECONCILE_INTERVAL": "0.5",
    "CRAWLFLEET_CANCEL_GRACE": "3.0",
    "CRAWLFLEET_STATS_INTERVAL": "0.5",
    "CRAWLFLEET_LOG_FLUSH_INTERVAL": "0.2",
    "CRAWLFLEET_RETRY_BACKOFF": "1.0",
}


def ip(*args, check=True):
    return subprocess.run([IP, *args], capture_output=True, text=True, check=check, timeout=30)


def why_no_namespaces():
    """The reason network namespaces cannot be made here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if not os.path.exists(IP):
        return "iproute2's `ip` is not installed (scripts/services.sh installs it)"
    if not shutil.which("redis-server"):
        return "redis-server is not installed (the hub namespace runs its own)"
    probe = f"cfprobe{os.getpid()}"
    made = ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"cannot make a network namespace: {made.stderr.strip()}"
    ip("netns", "del", probe, check=False)
    return None


class Hosts:
    """The namespaces, links and processes of one run; `close()` removes them all."""

    def __init__(self, tmp_path):
        self.tmp_path = tmp_path
        run = uuid.uuid4().hex[:6]
        self.ns = {role: f"cf{run}{role[0]}" for role in ("hub", "alpha", "beta")}
        self.root_dev = f"cf{run}r0"      # this test's end of the root ↔ hub link
        self.devs = {"alpha": f"cf{run}a0", "beta": f"cf{run}b0"}  # the nodes' ends
        self.subnet = self._free_subnet()
        s = self.subnet
        self.hub_for = {"root": f"{s}.2", "alpha": f"{s}.5", "beta": f"{s}.9"}
        self.procs = []

    @staticmethod
    def _free_subnet():
        used = ip("-4", "addr").stdout + ip("-4", "route").stdout
        for _ in range(100):
            subnet = f"10.233.{random.randrange(256)}"
            if subnet + "." not in used:
                return subnet
        raise RuntimeError("no free 10.233.X.0/24 on this machine")

    def make(self):
        s = self.subnet
        for ns in self.ns.values():
            ip("netns", "add", ns)
            self.exec_ip(ns, "link", "set", "lo", "up")
        hub = self.ns["hub"]
        # root ↔ hub: /30 with the test at .1, the hub at .2
        ip("link", "add", self.root_dev, "type", "veth", "peer", "name", f"{self.root_dev[:-1]}h",
           "netns", hub)
        ip("addr", "add", f"{s}.1/30", "dev", self.root_dev)
        ip("link", "set", self.root_dev, "up")
        self.exec_ip(hub, "addr", "add", f"{s}.2/30", "dev", f"{self.root_dev[:-1]}h")
        self.exec_ip(hub, "link", "set", f"{self.root_dev[:-1]}h", "up")
        # hub ↔ each node: /30 with the hub at .5 / .9, the node at .6 / .10
        for role, hub_addr, node_addr in (("alpha", 5, 6), ("beta", 9, 10)):
            dev, ns = self.devs[role], self.ns[role]
            hub_dev = f"{dev[:-1]}h"
            ip("link", "add", hub_dev, "netns", hub, "type", "veth", "peer", "name", dev,
               "netns", ns)
            self.exec_ip(hub, "addr", "add", f"{s}.{hub_addr}/30", "dev", hub_dev)
            self.exec_ip(hub, "link", "set", hub_dev, "up")
            self.exec_ip(ns, "addr", "add", f"{s}.{node_addr}/30", "dev", dev)
            self.exec_ip(ns, "link", "set", dev, "up")

    def exec_ip(self, ns, *args):
        return subprocess.run([IP, "netns", "exec", ns, IP, *args], capture_output=True,
                              text=True, check=True, timeout=30)

    def start(self, role, name, argv, env):
        """A process inside a host's namespace, in its own process group."""
        log = open(self.tmp_path / f"{name}.log", "wb")
        proc = subprocess.Popen([IP, "netns", "exec", self.ns[role], *argv], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        proc.name, proc.log_path = name, log.name
        self.procs.append(proc)
        return proc

    def close(self):
        """Processes first (a namespace lives while a process is in it), then the
        namespaces (their veth ends, and so the pairs, go with them), then this
        test's own end of the root link."""
        stop_groups(self.procs, timeout=5)
        for ns in self.ns.values():
            pids = ip("netns", "pids", ns, check=False).stdout.split()
            for pid in pids:  # anything left inside is one of ours (spiders)
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
        for ns in self.ns.values():
            ip("netns", "del", ns, check=False)
        ip("link", "del", self.root_dev, check=False)


@pytest.fixture
def hosts(tmp_path):
    reason = why_no_namespaces()
    if reason:
        pytest.skip(reason)
    hosts = Hosts(tmp_path)
    try:
        hosts.make()
        yield hosts
    finally:
        hosts.close()
        leftovers = [ns for ns in hosts.ns.values() if ns in ip("netns", "list").stdout]
        assert not leftovers, f"namespaces left behind: {leftovers}"


def wait(predicate, timeout, what, procs=()):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            assert proc.poll() is None, f"{proc.name} exited:\n{open(proc.log_path).read()[-3000:]}"
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what} not reached after {timeout} s")


def process_env(home, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env.update(CLOCKS)
    env.update({"CRAWLFLEET_HOME": str(home), "CRAWLFLEET_SPIDERS_PATH": str(ROOT / "spiders")})
    env.update(extra)
    home.mkdir(parents=True, exist_ok=True)
    return env


def test_tasks_of_a_cut_off_node_are_recovered_on_another_host(hosts, tmp_path):
    """Master, web, store, broker and demo site on one host, nodes alpha and beta on
    two others: crawls run on both; alpha's link is cut mid-crawl; its tasks
    become abnormal and their retries finish on beta; alpha, back online,
    stops its orphaned spiders and cannot overwrite their status."""
    s = hosts.subnet
    db, prefix = "t_" + uuid.uuid4().hex[:12], "cfm" + uuid.uuid4().hex[:8]
    py = sys.executable
    data = tmp_path / "hub"
    (data / "nx").mkdir(parents=True)
    hub_procs = [
        hosts.start("hub", "nx-27017", [str(BIN / "nx-27017"), "--data-dir", str(data / "nx"),
                                        "--host", "0.0.0.0", "-p", str(MONGO_PORT),
                                        "--log-file", str(data / "nx.log"),
                                        "--pid-file", str(data / "nx.pid")], dict(os.environ)),
        # a Redis of its own, inside the hub: nothing saved, nothing shared with this machine's
        hosts.start("hub", "redis", ["redis-server", "--bind", "0.0.0.0", "--port", str(REDIS_PORT),
                                     "--save", "", "--appendonly", "no", "--protected-mode", "no",
                                     "--dir", str(data)], dict(os.environ)),
        hosts.start("hub", "demo", [py, "-m", "spiders.demosite", "--host", "0.0.0.0",
                                    "--port", str(DEMO_PORT)], dict(os.environ)),
    ]
    store_uri = f"mongodb://{hosts.hub_for['root']}:{MONGO_PORT}"
    client = pymongo.MongoClient(store_uri, serverSelectionTimeoutMS=2000)
    wait(lambda: _answers(client), 30, "the store in the hub", hub_procs)

    hub_env = dict(CRAWLFLEET_MONGO_URI=f"mongodb://127.0.0.1:{MONGO_PORT}",
                   CRAWLFLEET_MONGO_DB=db, CRAWLFLEET_QUEUE_PREFIX=prefix,
                   CRAWLFLEET_BROKER_URL=f"redis://127.0.0.1:{REDIS_PORT}/0")
    master = hosts.start("hub", "master", [py, "-m", "crawlfleet", "master"],
                         process_env(tmp_path / "master", **hub_env))
    web = hosts.start("hub", "web", [py, "-m", "crawlfleet", "web", "--bind",
                                     f"0.0.0.0:{WEB_PORT}"],
                      process_env(tmp_path / "web", **hub_env, CRAWLFLEET_WEB_WORKERS="2"))
    nodes = {}
    for role in ("alpha", "beta"):
        hub = hosts.hub_for[role]  # the hub's address on this node's own link
        nodes[role] = hosts.start(role, f"node-{role}", [py, "-m", "crawlfleet", "node"],
                                  process_env(tmp_path / role,
                                              CRAWLFLEET_MONGO_URI=f"mongodb://{hub}:{MONGO_PORT}",
                                              CRAWLFLEET_MONGO_DB=db,
                                              CRAWLFLEET_QUEUE_PREFIX=prefix,
                                              CRAWLFLEET_BROKER_URL=f"redis://{hub}:{REDIS_PORT}/0",
                                              CRAWLFLEET_DEMO_URL=f"http://{hub}:{DEMO_PORT}",
                                              CRAWLFLEET_NODE_ID=role,
                                              CRAWLFLEET_MAX_RUNNERS="2"))
    everyone = hub_procs + [master, web, *nodes.values()]

    config = Config.from_dict({"home": str(tmp_path / "test"), "mongo_uri": store_uri,
                               "mongo_db": db, "broker_url": "memory://"})
    store = Store(config)
    try:
        wait(lambda: store.spiders.find_one({"_id": "books"}), 120, "spider discovery", everyone)
        wait(lambda: store.nodes.count_documents({"status": "online"}) == 2, 60,
             "both nodes online", everyone)
        api = requests.Session()
        api.headers["Authorization"] = "Bearer " + create_token(store, "multihost")
        base = f"http://{hosts.hub_for['root']}:{WEB_PORT}"
        wait(lambda: _get(api, f"{base}/healthz"), 60, "the web server", everyone)
        hostnames = {n["_id"]: n.get("hostname") for n in store.nodes.find()}
        assert set(hostnames) == {"alpha", "beta"}

        # 1. crawls of the demo site on both nodes, through their own links
        ran = api.post(f"{base}/api/v1/spiders/plain_catalogue/run",
                       json={"nodes": "all", "args": {"max_pages": 1}}, timeout=30).json()
        done = [_final(store, t, 90) for t in ran["task_ids"]]
        assert sorted(t["node_id"] for t in done) == ["alpha", "beta"]
        assert all(t["status"] == "finished" and t["stats"]["items"] == 20 for t in done), done

        # 2. four slow crawls: two run on each node (2 run slots each)
        body = {"args": {"max_pages": 2},  # 42 pages, 40 items, items stored 5 at a time
                "settings": {"DOWNLOAD_DELAY": "0.3", "CRAWLFLEET_BATCH_SIZE": "5"}}
        task_ids = [api.post(f"{base}/api/v1/spiders/books/run", json=body,
                             timeout=30).json()["task_ids"][0] for _ in range(4)]
        running = wait(lambda: _running_on(store, task_ids), 90, "2 tasks running on each node",
                       everyone)
        on_alpha = [t for t, n in running.items() if n == "alpha"]
        wait(lambda: all((store.tasks.find_one({"_id": t})["stats"].get("items") or 0) > 0
                         for t in on_alpha), 60, "alpha's crawls under way", everyone)

        # 3. cut alpha off, mid-crawl
        hosts.exec_ip(hosts.ns["alpha"], "link", "set", hosts.devs["alpha"], "down")
        cut = time.time()
        abnormal = [_final(store, t, 30) for t in on_alpha]
        assert [t["status"] for t in abnormal] == ["abnormal", "abnormal"], abnormal
        assert all("alpha stopped heartbeating" in t["error"] for t in abnormal)
        # bound: NODE_TIMEOUT (5) after the last heartbeat, + a reconcile pass (0.5)
        assert max(t["finished_at"] for t in abnormal) - cut < 5 + 0.5 + 1 + 2
        assert store.nodes.find_one({"_id": "alpha"})["status"] == "offline"
        retries = [_final(store, f"{t}-a2", 120) for t in on_alpha]
        for retry, first in zip(retries, on_alpha):
            assert retry["status"] == "finished", retry
            assert retry["node_id"] == "beta" and retry["retry_of"] == first
            assert retry["attempt"] == 2 and retry["stats"]["items"] == 40
            assert store.results(retry["results_collection"]).count_documents(
                {"_tid": retry["_id"]}) == 40
        for task_id in set(task_ids) - set(on_alpha):
            assert _final(store, task_id, 60)["status"] == "finished"

        # 4. alpha comes back: it stops its orphaned spiders; their status stays abnormal
        hosts.exec_ip(hosts.ns["alpha"], "link", "set", hosts.devs["alpha"], "up")
        wait(lambda: (lambda n: n["status"] == "online" and n.get("running") == [])(
            store.nodes.find_one({"_id": "alpha"})), 60, "alpha back, running nothing",
            everyone)
        time.sleep(1.0)  # its runs' late final writes, if any, have been tried
        for task_id in on_alpha:
            assert store.tasks.find_one({"_id": task_id})["status"] == "abnormal"
        assert store.tasks.count_documents({"root_id": {"$in": on_alpha}}) == 4  # no third attempt
        assert nodes["alpha"].poll() is None and nodes["beta"].poll() is None
    finally:
        store.close()
        client.close()


def _answers(client):
    try:
        client.admin.command("ping")
        return True
    except pymongo.errors.PyMongoError:
        return False


def _get(session, url):
    try:
        return session.get(url, timeout=5).status_code == 200
    except requests.RequestException:
        return False


def _final(store, task_id, timeout):
    return wait(lambda: (lambda t: t if t and t["status"] in FINAL else None)(
        store.tasks.find_one({"_id": task_id})), timeout, f"task {task_id} final")


def _running_on(store, task_ids):
    """{task: node} once every task runs, two on each node; else None."""
    docs = list(store.tasks.find({"_id": {"$in": task_ids}}, {"status": 1, "node_id": 1}))
    if len(docs) == len(task_ids) and all(d["status"] == "running" for d in docs):
        nodes = sorted(d["node_id"] for d in docs)
        assert nodes == ["alpha", "alpha", "beta", "beta"], nodes
        return {d["_id"]: d["node_id"] for d in docs}
    return None
