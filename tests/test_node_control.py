"""Node labels, modes and run slots, obeyed by real node subprocesses."""

import uuid
from pathlib import Path

import pytest

from helpers import (BROKERS, Processes, make_config, purge_broker, rabbitmq_available,
                     redis_available, scan, wait_for, wait_task)
from crawlfleet.broker import Broker
from crawlfleet.errors import BadRequest, Conflict
from crawlfleet.store import Store
from master import dispatch
from master import nodes as node_control

FIXTURES = Path(__file__).parent / "fixtures" / "spiders"


def platform(kind, tmp_path, mongo_server, demo_site):
    if not {"embedded": True, "redis": redis_available(),
            "rabbitmq": rabbitmq_available()}[kind]:
        pytest.fail(f"{kind} is not running on this machine (.ci/run starts it)")
    config = make_config(tmp_path, mongo_server, broker=kind, spiders_path=str(FIXTURES))
    store = Store(config)
    store.ensure_indexes()
    assert not scan(store, config)["errors"]
    broker = Broker(config)
    procs = Processes(config, demo_site, tmp_path)
    yield config, store, broker, procs
    procs.stop_all()
    selectors = [d["labels"] for d in store.label_selectors.find()]
    broker.close()
    purge_label_queues(config, selectors)
    purge_broker(config, procs.node_ids)
    store.client.drop_database(config.mongo_db)
    store.close()


def purge_label_queues(config, selectors):
    if not config.broker_url.startswith("amqp"):
        return  # Redis keys go by prefix in purge_broker; the embedded broker is per test
    from kombu import Connection

    from crawlfleet.broker import Topology

    topology = Topology(config.queue_prefix)
    with Connection(config.broker_url) as conn:
        channel = conn.channel()
        for labels in selectors:
            try:
                channel.queue_delete(topology.label_queue(labels).name)
            except Exception:
                channel = conn.channel()


@pytest.fixture(params=list(BROKERS))
def env(request, tmp_path, mongo_server, demo_site):
    yield from platform(request.param, tmp_path, mongo_server, demo_site)


@pytest.fixture
def emb(tmp_path, mongo_server, demo_site):
    yield from platform("embedded", tmp_path, mongo_server, demo_site)


def nap(config, store, broker, secs, **kwargs):
    return dispatch.run_spider(store, broker, config, "napper", args={"secs": str(secs)},
                               **kwargs)[0]["_id"]


def node_id(name):
    return f"{name}-{uuid.uuid4().hex[:4]}"


def log_mark(proc):
    return len(open(proc.log_path).read())


def wait_applied(proc, text, since=0):
    """The node logged (after offset `since`) that it applied a setting (node/control.py)."""
    wait_for(lambda: text in open(proc.log_path).read()[since:], timeout=30, what=text)


def test_labelled_tasks_run_only_on_nodes_carrying_the_labels(env):
    """Tasks asking for region=eu run on the eu node only; the other node takes the rest."""
    config, store, broker, procs = env
    eu, us = node_id("eu"), node_id("us")
    eu_proc = procs.node(store, eu, max_runners=2)
    procs.node(store, us, max_runners=2)
    node_control.update_labels(store, eu, {"region": "eu", "proxy": "yes"})
    node_control.update_labels(store, us, {"region": "us", "proxy": "yes"})
    wanted = {"region": "eu", "proxy": "yes"}
    labelled = [nap(config, store, broker, 0.2, labels=wanted) for _ in range(4)]
    done = [wait_task(store, t, timeout=60) for t in labelled]
    assert [t["status"] for t in done] == ["finished"] * 4
    assert {t["node_id"] for t in done} == {eu}
    assert all(t["labels"] == wanted for t in done)
    assert "1 label queue(s)" in open(eu_proc.log_path).read()
    # a label both carry: either may take it, and a task for no label runs too
    both = wait_task(store, nap(config, store, broker, 0.1, labels={"proxy": "yes"}))
    assert both["status"] == "finished" and both["node_id"] in (eu, us)
    # labels no node carries are refused, not left pending for ever
    with pytest.raises(Conflict, match="no node carries the labels region=mars"):
        nap(config, store, broker, 0.1, labels={"region": "mars"})
    with pytest.raises(BadRequest, match="invalid label key"):
        nap(config, store, broker, 0.1, labels={"re gion": "eu"})
    with pytest.raises(BadRequest, match="not both"):
        nap(config, store, broker, 0.1, labels=wanted, nodes=[eu])


def test_labelled_task_waits_until_a_carrying_node_takes_tasks(emb):
    """No enabled node carries the labels: the task waits pending, saying why, and runs
    once a node gains them."""
    config, store, broker, procs = emb
    first, second = node_id("a"), node_id("b")
    first_proc = procs.node(store, first)
    second_proc = procs.node(store, second)
    node_control.update_labels(store, first, {"gpu": "yes"})
    node_control.set_mode(store, first, "disabled")
    wait_applied(first_proc, "disabled: taking no new task")
    task_id = nap(config, store, broker, 0.1, labels={"gpu": "yes"})
    task = store.tasks.find_one({"_id": task_id})
    reason = node_control.waiting_reason(store, config, task)
    assert reason == f"waiting for a node labelled gpu=yes: {first} is offline, draining or disabled"
    # the other node gains the label: it subscribes to the selector's queue and runs it
    node_control.update_labels(store, second, {"gpu": "yes"})
    done = wait_task(store, task_id, timeout=60)
    assert done["status"] == "finished" and done["node_id"] == second
    assert "1 label queue(s)" in open(second_proc.log_path).read()
    # and loses it: its queue is dropped, so the next such task waits again
    mark = log_mark(second_proc)
    node_control.update_labels(store, second, remove=["gpu"])
    wait_applied(second_proc, "2 run slot(s), 0 label queue(s)", mark)
    waiting = nap(config, store, broker, 0.1, labels={"gpu": "yes"})
    node_control.set_mode(store, first, "enabled")
    done = wait_task(store, waiting, timeout=60)
    assert done["status"] == "finished" and done["node_id"] == first


def test_drain_lets_the_running_task_finish_and_takes_no_new_one(env):
    """A draining node finishes what it runs, takes nothing new, and takes again once enabled."""
    config, store, broker, procs = env
    only = node_id("d")
    proc = procs.node(store, only, max_runners=2)
    running = nap(config, store, broker, 3)
    wait_for(lambda: store.tasks.find_one({"_id": running})["status"] == "running",
             what="the first task running")
    node_control.set_mode(store, only, "draining")
    wait_applied(proc, "draining: taking no new task")
    queued = nap(config, store, broker, 0.1)
    assert wait_task(store, running, timeout=60)["status"] == "finished"
    # the node stays alive and heartbeating, and still leaves the new task alone
    beat = store.nodes.find_one({"_id": only})["heartbeat_at"]
    wait_for(lambda: store.nodes.find_one({"_id": only})["heartbeat_at"] > beat + 1.5,
             timeout=30, what="two more heartbeats")
    assert store.tasks.find_one({"_id": queued})["status"] == "pending"
    listed = {n["_id"]: n for n in node_control.list_nodes(store, config)}[only]
    assert listed["mode"] == "draining" and listed["drained"] is True
    node_control.set_mode(store, only, "enabled")
    done = wait_task(store, queued, timeout=60)
    assert done["status"] == "finished" and done["node_id"] == only


def test_run_slots_change_live(emb):
    """A node started with one run slot runs two tasks at once once given two."""
    config, store, broker, procs = emb
    only = node_id("s")
    proc = procs.node(store, only, max_runners=1)
    node_control.set_run_slots(store, only, 2)
    wait_applied(proc, "taking tasks, 2 run slot(s)")
    wait_for(lambda: store.nodes.find_one({"_id": only}).get("max_runners") == 2,
             what="the node reporting 2 slots")
    tasks = [nap(config, store, broker, 20) for _ in range(2)]
    wait_for(lambda: all(store.tasks.find_one({"_id": t})["status"] == "running"
                         for t in tasks), timeout=30, what="both tasks running at once")
    for task_id in tasks:
        dispatch.request_cancel(store, broker, task_id)
    with pytest.raises(BadRequest, match="run_slots must be an integer"):
        node_control.set_run_slots(store, only, 0)
    back = node_control.set_run_slots(store, only, None)
    assert back["run_slots"] is None


def test_a_node_starts_with_the_labels_of_its_configuration(emb):
    """CRAWLFLEET_NODE_LABELS labels the node at start, next to an operator's labels."""
    config, store, broker, procs = emb
    only = node_id("c")
    store.nodes.insert_one({"_id": only, "labels": {"team": "data", "zone": "a"}})
    procs.node(store, only, CRAWLFLEET_NODE_LABELS="zone=b,proxy=yes")
    assert store.nodes.find_one({"_id": only})["labels"] == {
        "team": "data", "zone": "b", "proxy": "yes"}
    done = wait_task(store, nap(config, store, broker, 0.1, labels={"zone": "b", "team": "data"}),
                     timeout=60)
    assert done["status"] == "finished" and done["node_id"] == only
