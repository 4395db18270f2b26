"""The fault suite: each scenario submits a known number of tasks, injects a
fault, waits, and counts from the ledger and the results:

- submitted: tasks asked for;
- finished: chains (a task and its retries) whose last attempt finished;
- lost: chains that never reached a final state;
- run twice: chains in which two attempts wrote results although the earlier
  one had finished (no retry was due).

Each prints one summary line. Required everywhere: lost = 0, run twice = 0.
Services are restarted with the commands this machine starts them with, and
restored whatever happens.
"""

import os
import signal
import subprocess
import sys
import time

import pytest

from helpers import (Processes, free_port, make_config, purge_broker, rabbitmq_available,
                      redis_available, stop_group, task_log, wait_for, wait_for_port)
from crawlfleet.broker import Broker
from crawlfleet.models import FINAL_VALUES
from crawlfleet.store import Store
from master import discovery, dispatch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPIDERS = f"{ROOT}/spiders:{ROOT}/tests/fixtures/spiders"
FAST = dict(heartbeat_interval=1.0, node_timeout=5.0, reconcile_interval=0.5,
            republish_after=3.0, retry_backoff=0.5, cancel_grace=2.0)

REDIS_START = ["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "-::1", "--port",
               "6379", "--save", "", "--appendonly", "no", "--dir", "/var/lib/redis",
               "--logfile", "/var/log/redis/ci.log"]


class Fleet:
    """A store, broker, master and nodes for one scenario."""

    def __init__(self, tmp_path, mongo_uri, demo_url, broker="embedded", **settings):
        self.config = make_config(tmp_path, mongo_uri, broker=broker, spiders_path=SPIDERS,
                                  **{**FAST, **settings})
        self.store = Store(self.config)
        self.store.ensure_indexes()
        assert not discovery.scan(self.store, self.config)["errors"]
        self.broker = Broker(self.config)
        self.procs = Processes(self.config, demo_url, tmp_path)
        self.roots = []
        self.closed = False

    def submit(self, spider, count, **kwargs):
        for _ in range(count):
            task = dispatch.run_spider(self.store, self.broker, self.config, spider, **kwargs)[0]
            self.roots.append(task["_id"])

    def chains(self):
        by_root = {}
        for task in self.store.tasks.find({"root_id": {"$in": self.roots}}):
            by_root.setdefault(task["root_id"], []).append(task)
        return {root: sorted(by_root.get(root, []), key=lambda t: t["attempt"])
                for root in self.roots}

    def settled(self):
        """Every chain's last attempt is final and owes no retry."""
        for chain in self.chains().values():
            last = chain[-1] if chain else None
            if last is None or last["status"] not in FINAL_VALUES or last.get("retry_pending"):
                return False
        return True

    def summary(self, name, expect="finished"):
        chains = self.chains()
        counts = {"submitted": len(self.roots), "finished": 0, "cancelled": 0, "lost": 0,
                  "run_twice": 0, "retried": 0}
        for root, chain in chains.items():
            last = chain[-1] if chain else None
            if last is None or last["status"] not in FINAL_VALUES:
                counts["lost"] += 1
                continue
            counts[last["status"]] = counts.get(last["status"], 0) + 1
            counts["retried"] += len(chain) - 1
            wrote = [t for t in chain if self.wrote_results(t)]
            if len(wrote) > 1 and any(t["status"] == "finished" for t in wrote[:-1]):
                counts["run_twice"] += 1
        line = f"fault {name}: " + " ".join(f"{k}={v}" for k, v in counts.items())
        print("\n" + line)
        return counts

    def wrote_results(self, task):
        return self.store.results(task["results_collection"]).count_documents(
            {"_tid": task["_id"]}, limit=1) > 0

    def close(self, node_ids=()):
        if self.closed:
            return
        self.closed = True
        self.procs.stop_all()
        self.broker.close()
        purge_broker(self.config, list(node_ids) + self.procs.node_ids)
        self.store.client.drop_database(self.config.mongo_db)
        self.store.close()




@pytest.fixture
def fleet_factory(tmp_path, mongo_server, demo_site):
    fleets = []

    def make(**kwargs):
        fleet = Fleet(tmp_path, kwargs.pop("mongo_uri", mongo_server), demo_site, **kwargs)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.close()


def settle(fleet, timeout):
    try:
        wait_for(fleet.settled, timeout=timeout, what="every task settled")
    except AssertionError:
        for root, chain in fleet.chains().items():
            print(root, [(t["_id"][-6:], t["status"], t.get("node_id"), t.get("error"),
                          t.get("retry_pending")) for t in chain])
        for proc in fleet.procs.procs:
            print("----", proc.log_path)
            print(open(proc.log_path).read()[-3000:])
        raise


def test_kill_a_node_mid_crawl(fleet_factory):
    """kill -9 one of two nodes while they crawl: its tasks are retried on the other."""
    fleet = fleet_factory()
    fleet.procs.master()
    a, b = fleet.procs.node(fleet.store), fleet.procs.node(fleet.store)
    fleet.submit("napper", 12, args={"secs": "2"})
    wait_for(lambda: fleet.store.tasks.find_one({"status": "running", "node_id": a.node_id}),
             what="node a busy")
    os.killpg(a.pid, signal.SIGKILL)
    settle(fleet, 90)
    counts = fleet.summary("kill-node")
    assert counts["lost"] == 0 and counts["run_twice"] == 0
    assert counts["finished"] == 12 and counts["retried"] >= 1


@pytest.mark.skipif(not redis_available(), reason="Redis is not running (.ci/run starts it)")
def test_restart_redis_with_tasks_queued(fleet_factory):
    """Redis restarted without persistence loses the queue; the ledger republishes it."""
    fleet = fleet_factory(broker="redis")
    fleet.procs.master()
    fleet.procs.node(fleet.store, max_runners=1)
    fleet.submit("napper", 8, args={"secs": "0.5"})
    wait_for(lambda: fleet.store.tasks.find_one({"status": "running"}), what="first task running")
    try:
        subprocess.run(["redis-cli", "-p", "6379", "shutdown", "nosave"], timeout=20,
                       capture_output=True)
        time.sleep(2)
    finally:
        subprocess.run(REDIS_START, check=True, timeout=30)
        wait_for_port(6379, timeout=30)
    settle(fleet, 120)
    counts = fleet.summary("restart-redis")
    assert counts["lost"] == 0 and counts["run_twice"] == 0
    assert counts["finished"] == 8


@pytest.mark.skipif(not rabbitmq_available(), reason="RabbitMQ is not running (.ci/run starts it)")
def test_restart_rabbitmq_with_tasks_queued(fleet_factory):
    """RabbitMQ restarted: durable queues keep the messages, nodes reconnect and go on."""
    fleet = fleet_factory(broker="rabbitmq")
    fleet.procs.master()
    fleet.procs.node(fleet.store, max_runners=1)
    fleet.submit("napper", 8, args={"secs": "0.5"})
    wait_for(lambda: fleet.store.tasks.find_one({"status": "running"}), what="first task running")
    try:
        subprocess.run(["rabbitmqctl", "stop"], timeout=120, capture_output=True)
    finally:
        subprocess.run(["rabbitmq-server", "-detached"], timeout=60, capture_output=True)
        wait_for_port(5672, timeout=120)
        subprocess.run(["rabbitmqctl", "await_startup"], timeout=120, capture_output=True)
    settle(fleet, 180)
    counts = fleet.summary("restart-rabbitmq")
    assert counts["lost"] == 0 and counts["run_twice"] == 0
    assert counts["finished"] == 8


def test_kill_the_master_while_tasks_run(fleet_factory):
    """kill -9 the master mid-run and start it again: nothing running is disturbed."""
    fleet = fleet_factory()
    master = fleet.procs.master()
    fleet.procs.node(fleet.store, max_runners=3)
    fleet.submit("napper", 9, args={"secs": "1.5"})
    wait_for(lambda: fleet.store.tasks.find_one({"status": "running"}), what="tasks running")
    os.killpg(master.pid, signal.SIGKILL)
    time.sleep(3)
    fleet.procs.master()
    settle(fleet, 90)
    counts = fleet.summary("kill-master")
    assert counts["lost"] == 0 and counts["run_twice"] == 0
    assert counts["finished"] == 9 and counts["retried"] == 0
    assert fleet.store.tasks.count_documents({"status": "abnormal"}) == 0


def _start_mongo(folder, port):
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from nx_27017.nx_27017 import main; sys.exit(main())",
         "--data-dir", str(folder / "data"), "--host", "127.0.0.1", "-p", str(port),
         "--log-file", str(folder / "nx.log"), "--pid-file", str(folder / "nx.pid")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    wait_for_port(port, timeout=30, proc=proc)
    return proc


def test_store_unreachable_for_20_seconds(fleet_factory, tmp_path):
    """The MongoDB-wire server stops for 20 s mid-crawl: spiders go on, nothing is lost."""
    folder = tmp_path / "own-store"
    folder.mkdir()
    port = free_port()
    mongo = _start_mongo(folder, port)
    try:
        fleet = fleet_factory(mongo_uri=f"mongodb://127.0.0.1:{port}")
        fleet.procs.master()
        fleet.procs.node(fleet.store, max_runners=4)
        fleet.submit("napper", 4, args={"secs": "8"})
        wait_for(lambda: fleet.store.tasks.count_documents({"status": "running"}) == 4,
                 timeout=30, what="all running")
        stop_group(mongo)
        time.sleep(20)
        mongo = _start_mongo(folder, port)
        settle(fleet, 120)
        counts = fleet.summary("store-outage")
        assert counts["lost"] == 0 and counts["run_twice"] == 0
        assert counts["finished"] == 4 and counts["retried"] == 0
        for root in fleet.roots:
            assert fleet.store.results("results_napper").count_documents({"_tid": root}) == 1
        fleet.close()
    finally:
        stop_group(mongo)


def test_cancel_storm(fleet_factory):
    """Cancel 50 running tasks at once: all end `cancelled`, no spider survives."""
    fleet = fleet_factory()
    fleet.procs.master()
    fleet.procs.node(fleet.store, max_runners=25)
    fleet.procs.node(fleet.store, max_runners=25)
    fleet.submit("sleeper", 50)
    wait_for(lambda: fleet.store.tasks.count_documents({"status": "running", "pid": {"$gt": 0}}) == 50,
             timeout=180, what="50 spiders running")
    pids = [t["pid"] for t in fleet.store.tasks.find({"status": "running"}, {"pid": 1})]
    started = time.monotonic()
    for root in fleet.roots:
        dispatch.request_cancel(fleet.store, fleet.broker, root)
    settle(fleet, 60)
    took = time.monotonic() - started
    counts = fleet.summary("cancel-storm")
    print(f"fault cancel-storm: all 50 cancelled in {took:.1f} s")
    assert counts["lost"] == 0 and counts["run_twice"] == 0
    assert counts["cancelled"] == 50
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=10, what="spiders gone")


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


SLOW_BOOKS = {"DOWNLOAD_DELAY": "0.03", "CONCURRENT_REQUESTS": "1"}


@pytest.mark.parametrize("dedup", [None, "url"])
def test_kill_a_node_mid_books_crawl_keeps_each_item_once(fleet_factory, dedup):
    """kill -9 the node crawling `books` once it has stored items: the retry
    finishes elsewhere and the crawl's results hold its 300 items once (the
    killed attempt's removed). With dedup on `url`, two more runs keep 300
    rows and count 300 updated each."""
    fleet = fleet_factory()
    if dedup:
        fleet.store.spiders.update_one({"_id": "books"}, {"$set": {
            "dedup": {"keys": [dedup], "mode": "overwrite"}}})
    fleet.procs.master()
    a = fleet.procs.node(fleet.store, max_runners=1)
    fleet.submit("books", 1, settings=SLOW_BOOKS)
    root = fleet.roots[0]
    results = fleet.store.results("results_books")
    wait_for(lambda: results.count_documents({"_tid": root}) >= 30, timeout=120,
             what="first attempt storing items")
    fleet.procs.node(fleet.store, max_runners=1)
    os.killpg(a.pid, signal.SIGKILL)
    settle(fleet, 180)
    counts = fleet.summary(f"kill-node-books{'-dedup' if dedup else ''}")
    assert counts["lost"] == 0 and counts["finished"] == 1 and counts["retried"] >= 1
    chain = fleet.chains()[root]
    final = chain[-1]
    assert chain[0]["status"] == "abnormal" and final["status"] == "finished"
    rows = list(results.find({}, {"url": 1, "_tid": 1}))
    assert len(rows) == 300, f"{len(rows)} rows for a 300-item crawl"
    assert len({r["url"] for r in rows}) == 300
    assert {r["_tid"] for r in rows} == {final["_id"]}
    if not dedup:  # with dedup the retry overwrote most of them itself
        assert final["stats"]["superseded"] > 0
        assert any("items of earlier attempts" in line for line in task_log(fleet.store, final["_id"]))
    from crawlfleet.results.attempts import final_attempt
    assert final_attempt(fleet.store, chain[0])["_id"] == final["_id"]
    if not dedup:
        return
    first_seen = {r["url"]: r["_first_at"] for r in results.find({}, {"url": 1, "_first_at": 1})}
    for run in (2, 3):
        fleet.submit("books", 1)
        settle(fleet, 180)
        task = fleet.store.tasks.find_one({"_id": fleet.roots[-1]})
        assert task["status"] == "finished", task.get("error")
        assert task["stats"]["updated"] == 300 and task["stats"]["new"] == 0, task["stats"]
        assert results.count_documents({}) == 300
    again = {r["url"]: r["_first_at"] for r in results.find({}, {"url": 1, "_first_at": 1})}
    assert again == first_seen  # overwrite keeps the first-seen time


def test_a_stopped_node_that_comes_back_stores_nothing_more(fleet_factory):
    """SIGSTOP the node crawling `books` (its spider keeps crawling, its items
    waiting on the node): it is declared dead and the task handed to another
    node. Woken up (SIGCONT) after that, the node's writes for the attempt it
    lost are refused: no item of that attempt is stored after it comes back,
    and the attempt's log says why."""
    fleet = fleet_factory()
    fleet.procs.master()
    a = fleet.procs.node(fleet.store, max_runners=1)
    fleet.submit("books", 1, settings={"DOWNLOAD_DELAY": "0.1", "CONCURRENT_REQUESTS": "1"})
    root = fleet.roots[0]
    results = fleet.store.results("results_books")
    wait_for(lambda: results.count_documents({"_tid": root}) >= 20, timeout=120,
             what="first attempt storing items")
    b = fleet.procs.node(fleet.store, max_runners=1)
    os.kill(a.pid, signal.SIGSTOP)  # the node only: its spider goes on
    try:
        second = wait_for(lambda: fleet.store.tasks.find_one(
            {"root_id": root, "attempt": {"$gt": 1}, "status": "running",
             "node_id": b.node_id}), timeout=60, what="the task handed to node b")
        wait_for(lambda: results.count_documents({"_tid": second["_id"]}) >= 1, timeout=60,
                 what="the second attempt storing items")
    finally:
        resumed_at = time.time()
        os.kill(a.pid, signal.SIGCONT)


    def late():
        return results.count_documents({"_tid": root, "_at": {"$gte": resumed_at}})

    def refused():
        return any("writes refused" in line for line in task_log(fleet.store, root))

    # node a answers its spider's waiting batch either way: stored, or refused
    wait_for(lambda: late() or refused(), timeout=60, what="node a handling its pending items")
    assert late() == 0, f"{late()} items of the lost attempt stored after node a came back"
    assert refused()
    assert fleet.store.tasks.find_one({"_id": root})["status"] == "abnormal"
    settle(fleet, 180)
    counts = fleet.summary("stopped-node-comes-back")
    assert counts["lost"] == 0 and counts["finished"] == 1 and counts["retried"] >= 1
    assert {r["_tid"] for r in results.find({}, {"_tid": 1})} == {second["_id"]}
