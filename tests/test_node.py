"""A real node subprocess runs real spiders from the ledger, on each broker."""

import os
import signal
import time
from pathlib import Path

import pytest
from kombu import Connection

from conftest import (BROKERS, Processes, make_config, purge_broker, rabbitmq_available,
                      redis_available, task_log, wait_for, wait_task)
from crawlfleet.broker import Broker, Topology
from crawlfleet.store import Store
from master import discovery, dispatch

FIXTURES = Path(__file__).parent / "fixtures" / "spiders"
BUNDLED = Path(__file__).parent.parent / "spiders"


def available(broker):
    return {"embedded": True, "redis": redis_available(), "rabbitmq": rabbitmq_available()}[broker]


@pytest.fixture(params=list(BROKERS))
def env(request, tmp_path, mongo_server, demo_site):
    """Store, broker and discovered spiders (bundled + fixtures) on one broker kind."""
    if not available(request.param):
        pytest.fail(f"{request.param} is not running on this machine (.ci/run starts it)")
    config = make_config(tmp_path, mongo_server, broker=request.param,
                         spiders_path=f"{BUNDLED}:{FIXTURES}")
    store = Store(config)
    store.ensure_indexes()
    report = discovery.scan(store, config)
    assert not report["errors"], report
    broker = Broker(config)
    procs = Processes(config, demo_site, tmp_path)
    yield config, store, broker, procs
    procs.stop_all()
    broker.close()
    purge_broker(config, procs.node_ids)
    store.client.drop_database(config.mongo_db)
    store.close()


def run(config, store, broker, spider, **kwargs):
    return dispatch.run_spider(store, broker, config, spider, **kwargs)[0]["_id"]


def test_books_crawl_stores_every_item_with_its_task_id(env):
    """The bundled Scrapy project crawls the demo site through a node: 300 items, tagged."""
    config, store, broker, procs = env
    procs.node(store)
    task_id = run(config, store, broker, "books")
    task = wait_task(store, task_id, timeout=90)
    assert task["status"] == "finished", task_log(store, task_id)
    assert task["exit_code"] == 0
    assert task["stats"]["items"] == 300
    assert task["stats"]["pages"] >= 300
    items = list(store.results("results_books").find({"_tid": task_id}))
    assert len(items) == 300
    assert all(item["task_id"] == task_id for item in items)
    assert {"title", "price", "upc", "url"} <= set(items[0])
    assert task["log_lines"] > 0 and any("Spider closed" in line for line in task_log(store, task_id))


def test_generic_spider_runs_with_args_and_stores_items(env):
    """A plain-Python spider gets its arguments and saves through the SDK."""
    config, store, broker, procs = env
    procs.node(store)
    task_id = run(config, store, broker, "plain_catalogue", args={"max_pages": "2"})
    task = wait_task(store, task_id)
    assert task["status"] == "finished", task_log(store, task_id)
    assert store.results("results_plain_catalogue").count_documents({"_tid": task_id}) == 40
    assert task["stats"]["items"] == 40


def test_to_all_nodes_runs_one_task_per_online_node(env):
    """nodes="all" makes one task per online node, each run by that node."""
    config, store, broker, procs = env
    first, second = procs.node(store), procs.node(store)
    tasks = dispatch.run_spider(store, broker, config, "plain_catalogue",
                                args={"max_pages": "1"}, nodes="all")
    assert sorted(t["target"] for t in tasks) == sorted([first.node_id, second.node_id])
    for task in tasks:
        done = wait_task(store, task["_id"])
        assert done["status"] == "finished"
        assert done["node_id"] == task["target"]
