"""Retries, node death recovery and retention, against real nodes and a real master."""

import os
import signal
import time

import pytest

from helpers import task_log, wait_for, wait_task
from crawlfleet.models import now
from master import dispatch, housekeeping
from test_node import platform as platform_fixture
from test_node import run


@pytest.fixture
def emb(tmp_path, mongo_server, demo_site):
    yield from platform_fixture("embedded", tmp_path, mongo_server, demo_site,
                                retry_backoff=0.5)


def attempts(store, root_id):
    return sorted(store.tasks.find({"root_id": root_id}), key=lambda t: t["attempt"])


def retry_decided(store, task_id):
    """Wait for the reconciler's decision on a final task, recorded in the ledger
    (`retry_pending` cleared, `retried_by` the next attempt or None); returns it."""
    return wait_for(lambda: (lambda d: d if "retry_pending" not in d else None)(
        store.tasks.find_one({"_id": task_id})), timeout=30, what=f"retry decision on {task_id}")


def test_error_is_retried_per_policy_with_backoff(emb):
    """A crashing spider with max_attempts=3 runs three times, each attempt visible."""
    config, store, broker, procs = emb
    procs.master()
    procs.node(store)
    first = run(config, store, broker, "crasher",
                retry={"max_attempts": 3, "backoff": 1, "on": ["error"]})
    chain = wait_for(lambda: (lambda c: c if len(c) == 3 and c[-1]["status"] == "error" else None)(
        attempts(store, first)), timeout=60, what="three attempts")
    assert [t["attempt"] for t in chain] == [1, 2, 3]
    assert [t["status"] for t in chain] == ["error"] * 3
    assert chain[1]["retry_of"] == chain[0]["_id"] and chain[2]["retry_of"] == chain[1]["_id"]
    assert chain[0]["retried_by"] == chain[1]["_id"]
    # backoff 1 s, then 2 s: each attempt waited at least that long after the one before
    assert chain[1]["started_at"] - chain[0]["finished_at"] >= 1.0
    assert chain[2]["started_at"] - chain[1]["finished_at"] >= 2.0
    for task in chain:  # every attempt keeps its own log and exit code
        assert task["exit_code"] == 1
        assert any("ValueError" in line for line in task_log(store, task["_id"]))
    assert retry_decided(store, chain[-1]["_id"])["retried_by"] is None
    assert len(attempts(store, first)) == 3  # no fourth


def test_errors_are_not_retried_by_default(emb):
    """Without a policy a spider's own failure is final: only `abnormal` is retried."""
    config, store, broker, procs = emb
    procs.master()
    procs.node(store)
    task_id = run(config, store, broker, "crasher")
    assert wait_task(store, task_id)["status"] == "error"
    assert retry_decided(store, task_id)["retried_by"] is None
    assert len(attempts(store, task_id)) == 1
    assert store.tasks.find_one({"_id": task_id}).get("retry_pending") is None


def test_task_of_a_killed_node_is_retried_on_another_node(emb):
    """kill -9 a node mid-task: the task turns abnormal and its retry finishes elsewhere."""
    config, store, broker, procs = emb
    procs.master()
    nodes = {n.node_id: n for n in procs.nodes(store, 2)}
    task_id = run(config, store, broker, "napper", args={"secs": "6"})
    running = wait_task(store, task_id, statuses={"running"})
    victim = nodes[running["node_id"]]
    wait_for(lambda: store.tasks.find_one({"_id": task_id}).get("pid"), what="spider started")
    spider_pid = store.tasks.find_one({"_id": task_id})["pid"]
    os.killpg(victim.pid, signal.SIGKILL)
    killed_at = now()
    # the spider does not outlive its node (PR_SET_PDEATHSIG)
    wait_for(lambda: not os.path.exists(f"/proc/{spider_pid}") or
             open(f"/proc/{spider_pid}/stat").read().split(") ", 1)[1][0] == "Z",
             timeout=5, what="orphaned spider gone")
    first = wait_task(store, task_id, timeout=config.node_timeout + 20)
    assert first["status"] == "abnormal"
    assert first["finished_at"] - killed_at <= config.node_timeout + 3 * config.reconcile_interval
    retry = wait_task(store, f"{task_id}-a2", timeout=60)
    assert retry["status"] == "finished", task_log(store, retry["_id"])
    assert retry["node_id"] != victim.node_id
    items = list(store.results("results_napper").find({"_tid": {"$in": [task_id, retry["_id"]]}}))
    assert [i["_tid"] for i in items] == [retry["_id"]]  # the dead attempt wrote nothing


def test_retention_deletes_old_tasks_and_logs_but_not_results(emb):
    """Tasks past task_retention_days go with their logs; logs past log_retention_days go alone."""
    config, store, broker, procs = emb
    day = 86400
    at = now()
    store.tasks.insert_many([
        {"_id": "old", "status": "finished", "finished_at": at - 100 * day, "created_at": 0},
        {"_id": "middle", "status": "error", "finished_at": at - 40 * day, "created_at": 0,
         "log_lines": 3},
        {"_id": "recent", "status": "finished", "finished_at": at - day, "created_at": 0},
        {"_id": "running", "status": "running", "finished_at": None, "created_at": 0},
    ])
    for tid in ("old", "middle", "recent"):
        store.task_logs.insert_one({"task_id": tid, "seq": 0, "start": 0, "end": 1, "lines": ["x"]})
    store.results("results_x").insert_one({"_tid": "old", "task_id": "old", "v": 1})
    report = housekeeping.prune_ledger(store, config, at=at)
    assert report == {"tasks": 1, "logs_of_tasks": 1}
    assert {t["_id"] for t in store.tasks.find()} == {"middle", "recent", "running"}
    assert {d["task_id"] for d in store.task_logs.find()} == {"recent"}
    assert store.tasks.find_one({"_id": "middle"})["logs_pruned"]  # nx-27017 gives back 1
    assert store.results("results_x").count_documents({}) == 1


def test_node_forgets_versions_it_has_not_used(emb, tmp_path):
    """The node cache keeps what was used recently and what a running task uses."""
    from node.filecache import FileCache

    config, store, broker, procs = emb
    spider = store.spiders.find_one({"_id": "plain_catalogue"})
    cache = FileCache(store, tmp_path / "cache")
    path = cache.ensure(spider["version"])
    assert cache.prune(3600) == []
    old = time.time() - 7200
    os.utime(path / ".crawlfleet-ready", (old, old))
    assert cache.prune(3600, keep={spider["version"]}) == []
    assert cache.prune(3600) == [spider["version"]]
    assert not path.exists()
    assert cache.ensure(spider["version"]).exists()  # fetched again when needed


def test_spider_manifest_sets_its_retry_policy(emb):
    """A retry policy in crawlfleet.json applies to every run of that spider."""
    config, store, broker, procs = emb
    procs.master()
    procs.node(store)
    assert store.spiders.find_one({"_id": "flaky"})["retry"]["max_attempts"] == 2
    first = run(config, store, broker, "flaky")
    assert wait_task(store, first)["status"] == "error"
    second = wait_task(store, f"{first}-a2", timeout=60)
    assert second["status"] == "finished"
    assert store.results("results_flaky").count_documents({"_tid": second["_id"]}) == 1
