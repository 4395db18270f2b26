"""Tests for /metrics (web/metrics.py) and the items counter (crawlfleet/counters.py):
Prometheus text that prometheus_client's own parser reads, numbers taken
from the ledger, access rules, and a scrape of a real gunicorn web server
after a real crawl."""

import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from helpers import free_port, process_env, stop_group, wait_for, wait_for_port, wait_task
from crawlfleet import counters
from crawlfleet.broker import Broker, Topology
from crawlfleet.models import now
from crawlfleet.tokens import create_token
from master.nodes import record_selector
from web import create_app
from web.metrics import histogram_buckets


def parse(text):
    """{sample name: {frozenset(labels): value}} and {family name: type}."""
    samples, types = {}, {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for s in family.samples:
            samples.setdefault(s.name, {})[frozenset(s.labels.items())] = s.value
    return samples, types


def value(samples, name, **labels):
    return samples[name][frozenset(labels.items())]


def task_doc(task_id, status, created, started=None, not_before=None, spider="books"):
    return {"_id": task_id, "spider": spider, "status": status, "created_at": created,
            "started_at": started, "not_before": not_before, "stats": {"items": 0}}


def test_metrics_read_the_ledger(app, store, config):
    """Tasks by status, the latency window, queue depth, runners per node, nodes
    and items: each number is the one the ledger and broker hold."""
    t = now() - 100
    store.tasks.insert_many([
        task_doc("a1", "finished", t, t + 0.02),
        task_doc("a2", "finished", t + 1, t + 1.3),
        task_doc("a3", "error", t + 2, t + 2 + 7.0),
        # a retry: its latency counts from the end of its backoff, not its creation
        task_doc("a4", "running", t + 3, t + 13.04, not_before=t + 13),
        task_doc("a5", "pending", t + 4),
    ])
    store.nodes.insert_many([
        {"_id": "n-up", "status": "online", "heartbeat_at": now(), "busy": 1, "free": 3},
        {"_id": "n-gone", "status": "online", "heartbeat_at": now() - 3600, "busy": 2, "free": 0},
        {"_id": "n-stopped", "status": "stopped", "heartbeat_at": now(), "busy": 0, "free": 2},
    ])
    store.masters.insert_one({"_id": "m-1", "heartbeat_at": now()})
    store.tasks.update_one({"_id": "a1"}, {"$set": {"session": "s1", "stats": {"items": 7}}})
    assert counters.add_task_items(store, "a1", "s1") == 7
    assert counters.add_task_items(store, "a1", "other-session") == 0  # not this node's
    counters.add_task_items(store, "a1", "s1")
    broker = Broker(config)
    try:
        for task_id in ("q1", "q2", "q3"):
            broker.publish_task(task_id)
        broker.publish_task("q4", target="n-up")
        record_selector(store, {"region": "eu"})
        broker.publish_task("q5", labels={"region": "eu"})
    finally:
        broker.close()
    token = create_token(store, "prometheus", "viewer")

    response = app.test_client().get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, types = parse(response.get_data(as_text=True))

    assert value(samples, "crawlfleet_up", component="store") == 1
    assert value(samples, "crawlfleet_up", component="broker") == 1
    assert {s: value(samples, "crawlfleet_tasks", status=s) for s in
            ("pending", "running", "finished", "error", "cancelled", "timeout", "abnormal")} == \
        {"pending": 1, "running": 1, "finished": 2, "error": 1, "cancelled": 0, "timeout": 0,
         "abnormal": 0}

    assert types["crawlfleet_dispatch_latency_seconds"] == "histogram"
    assert value(samples, "crawlfleet_dispatch_latency_seconds_count") == 4
    assert value(samples, "crawlfleet_dispatch_latency_seconds_sum") == pytest.approx(
        0.02 + 0.3 + 7.0 + 0.04, abs=1e-6)
    bucket = lambda le: value(samples, "crawlfleet_dispatch_latency_seconds_bucket", le=le)  # noqa: E731
    assert (bucket("0.025"), bucket("0.05"), bucket("0.5"), bucket("5.0"), bucket("10.0"),
            bucket("+Inf")) == (1, 2, 3, 3, 4, 4)

    prefix = config.queue_prefix
    assert value(samples, "crawlfleet_queue_depth", queue=f"{prefix}-tasks") == 3
    assert value(samples, "crawlfleet_queue_depth", queue=f"{prefix}-node-n-up") == 1
    label_queue = Topology(prefix).label_queue({"region": "eu"}).name
    assert value(samples, "crawlfleet_queue_depth", queue=label_queue) == 1
    assert value(samples, "crawlfleet_node_runners", node="n-up", state="busy") == 1
    assert value(samples, "crawlfleet_node_runners", node="n-up", state="free") == 3
    runner_nodes = {dict(k)["node"] for k in samples["crawlfleet_node_runners"]}
    assert runner_nodes == {"n-up"}  # silent and stopped nodes have no runners
    assert value(samples, "crawlfleet_nodes_online") == 1
    assert value(samples, "crawlfleet_masters_online") == 1
    assert types["crawlfleet_items_ingested"] == "counter"
    assert value(samples, "crawlfleet_items_ingested_total", spider="books") == 14

    openmetrics = app.test_client().get("/metrics", headers={
        "Authorization": f"Bearer {token}", "Accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["Content-Type"].startswith("application/openmetrics-text")
    assert openmetrics.get_data(as_text=True).rstrip().endswith("# EOF")


def test_metrics_need_a_token_unless_public(app, store, config):
    """Without a token: 401 with a Bearer challenge; a bad token: 401; any valid
    token (viewer): 200; metrics_public serves it to anyone."""
    client = app.test_client()
    denied = client.get("/metrics")
    assert denied.status_code == 401
    assert denied.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", headers={"Authorization": "Bearer cft_nope"}).status_code == 401
    token = create_token(store, "viewer", "viewer")
    assert client.get("/metrics", headers={"Authorization": f"Bearer {token}"}).status_code == 200

    public = create_app(config.replace(metrics_public=True))
    try:
        response = public.test_client().get("/metrics")
        assert response.status_code == 200
        assert b"crawlfleet_tasks" in response.data
    finally:
        public.extensions["crawlfleet"].close()


def test_metrics_say_when_the_broker_is_down(store, config):
    """A broker that does not answer is `crawlfleet_up{component="broker"} 0`;
    the store's numbers are still served."""
    down = config.replace(broker_url=f"redis://127.0.0.1:{free_port()}/0", metrics_public=True)
    app = create_app(down)
    try:
        samples, _ = parse(app.test_client().get("/metrics").get_data(as_text=True))
    finally:
        app.extensions["crawlfleet"].close()
    assert value(samples, "crawlfleet_up", component="broker") == 0
    assert value(samples, "crawlfleet_up", component="store") == 1
    assert "crawlfleet_queue_depth" not in samples
    assert value(samples, "crawlfleet_tasks", status="pending") == 0


def test_histogram_buckets_are_cumulative():
    """Each bucket counts the values at most its bound; +Inf counts them all."""
    assert histogram_buckets([0.1, 0.2, 5], bounds=(0.1, 1.0)) == [
        ("0.1", 1), ("1.0", 2), ("+Inf", 3)]
    assert histogram_buckets([], bounds=(1.0,)) == [("1.0", 0), ("+Inf", 0)]


def test_scrape_a_real_web_server_after_a_real_crawl(config, store, processes, tmp_path):
    """A real master and node run a crawl; `crawlfleet web` (gunicorn, 2 workers)
    answers every scrape with the same numbers, whichever worker serves it."""
    processes.master()
    node = processes.node(store, node_id="metrics-node", max_runners=2)
    wait_for(lambda: store.spiders.find_one({"_id": "plain_catalogue"}), 60, "discovery")
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "crawlfleet", "web", "--bind", f"127.0.0.1:{port}"],
        env=process_env(config, CRAWLFLEET_WEB_WORKERS=2, CRAWLFLEET_WEB_THREADS=2),
        stdout=open(tmp_path / "web.log", "wb"), stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port(port, timeout=60, proc=web)
        token = create_token(store, "scraper", "viewer")
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        run = api.post(f"http://127.0.0.1:{port}/api/v1/spiders/plain_catalogue/run",
                       json={"args": {"max_pages": 2}}, timeout=30)
        assert run.status_code == 403  # a viewer token may scrape, not run
        admin = create_token(store, "admin", "admin")
        run = requests.post(f"http://127.0.0.1:{port}/api/v1/spiders/plain_catalogue/run",
                            json={"args": {"max_pages": 2}}, timeout=30,
                            headers={"Authorization": f"Bearer {admin}"})
        assert run.status_code == 201, run.text
        task = wait_task(store, run.json()["task_ids"][0], timeout=90)
        assert task["status"] == "finished" and task["stats"]["items"] == 40, task
        # the node adds the items to the counter right after it records the end
        wait_for(lambda: counters.items_by_spider(store).get("plain_catalogue") == 40, 20,
                 "items counted")
        # busy/free are what the node wrote with its last heartbeat
        wait_for(lambda: store.nodes.find_one({"_id": node.node_id}).get("free") == 2, 20,
                 "the node's heartbeat after the task")

        scrapes = []
        for _ in range(6):  # several scrapes land on both workers
            response = api.get(f"http://127.0.0.1:{port}/metrics", timeout=30)
            assert response.status_code == 200, response.text
            scrapes.append(parse(response.text)[0])
            time.sleep(0.05)
        for samples in scrapes:
            assert value(samples, "crawlfleet_tasks", status="finished") == 1
            assert value(samples, "crawlfleet_items_ingested_total", spider="plain_catalogue") == 40
            assert value(samples, "crawlfleet_dispatch_latency_seconds_count") == 1
            assert value(samples, "crawlfleet_nodes_online") == 1
            assert value(samples, "crawlfleet_masters_online") == 1
            assert value(samples, "crawlfleet_node_runners", node=node.node_id, state="free") == 2
            assert value(samples, "crawlfleet_queue_depth",
                         queue=f"{config.queue_prefix}-tasks") == 0
        latency = scrapes[0]["crawlfleet_dispatch_latency_seconds_sum"][frozenset()]
        assert 0 < latency < 10, latency
    finally:
        stop_group(web)


@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_queue_depths_on_real_brokers(broker, tmp_path, mongo_server):
    """On Redis and RabbitMQ: waiting messages are counted per queue over one
    connection, and a queue nobody declared yet counts 0 (RabbitMQ closes the
    channel on that passive declare; the next queue is still read)."""
    from helpers import make_config, purge_broker, rabbitmq_available, redis_available
    from web.metrics import queue_depths

    if not {"redis": redis_available, "rabbitmq": rabbitmq_available}[broker]():
        pytest.fail(f"{broker} is not running (.ci/run starts it)")
    config = make_config(tmp_path, mongo_server, broker=broker)
    client = Broker(config)
    try:
        for task_id in ("d1", "d2"):
            client.publish_task(task_id)
        client.publish_task("d3", target="known")
        depths = queue_depths(client, ["never-declared", "known"])
        prefix = config.queue_prefix
        assert depths == {f"{prefix}-tasks": 2, f"{prefix}-node-never-declared": 0,
                          f"{prefix}-node-known": 1}
    finally:
        client.close()
        purge_broker(config, ["known"])
