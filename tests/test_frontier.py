"""Distributed and resumable crawls (issue 14) against real nodes, a real master,
real Redis and the demo site answering every page after 0.5 s.

Each test proves one behaviour; timings are measured at the site (first to
last request it received), not by fixed sleeps.
"""

import collections
import os
import signal
from urllib.parse import urlsplit

import pytest
import redis

from conftest import task_log, wait_for
from crawlfleet import frontier_acl
from crawlfleet.errors import Conflict
from crawlfleet.frontier import CrawlKeys, Frontier
from master import crawls
from spiders.demosite import catalogue
from spiders.demosite.server import start_in_thread
from test_node import platform

SLOW = 0.5
PER_WORKER = {"CONCURRENT_REQUESTS": "4", "CONCURRENT_REQUESTS_PER_DOMAIN": "4"}
EXPECTED_URLS = {p["path"] for p in catalogue.products()}


@pytest.fixture(scope="module")
def slow_site():
    site = start_in_thread("127.0.0.1", 0, delay=SLOW)
    yield site
    site.stop()


@pytest.fixture
def fleet(tmp_path, mongo_server, slow_site):
    slow_site.server.reset_log()
    yield from platform("redis", tmp_path, mongo_server, slow_site.url, node_timeout=4.0)


def start_nodes(procs, store, count):
    return procs.nodes(store, count, max_runners=1)


def run_crawl(config, store, broker, workers, limit, **options):
    settings = dict(PER_WORKER, CRAWLFLEET_DOMAIN_CONCURRENCY=str(limit))
    crawl, _ = crawls.start_crawl(store, broker, config, "books", workers=workers,
                                  settings=settings, **options)
    return crawl["_id"]


def wait_crawl(store, crawl_id, timeout=200, statuses=("finished", "error", "cancelled",
                                                         "timeout", "abnormal")):
    return wait_for(lambda: (lambda c: c if c["status"] in statuses else None)(
        store.crawls.find_one({"_id": crawl_id})), timeout=timeout, what=f"crawl {crawl_id} ended")


def crawl_items(store, crawl_id):
    ids = [t["_id"] for t in store.tasks.find({"crawl_id": crawl_id}, {"_id": 1})]
    return list(store.results("results_books").find({"_tid": {"$in": ids}}))


def item_paths(items):
    return [urlsplit(i["url"]).path for i in items]


def site_window(site, start):
    """(paths fetched since index `start`, seconds from the first to the last fetch)."""
    paths = site.requests[start:]
    times = site.request_times[start:]
    return paths, (times[-1] - times[0] + SLOW if times else 0.0)


def explain(store, crawl_id):
    lines = []
    for task in store.tasks.find({"crawl_id": crawl_id}):
        lines.append(f"--- {task['_id']} {task['status']} {task.get('error')}")
        lines += task_log(store, task["_id"])[-40:]
    return "\n".join(lines)


@pytest.mark.timeout(900)
def test_three_workers_share_one_frontier_and_politeness_holds(fleet, slow_site):
    """1 and 3 workers on 3 nodes: the same 300 items, every URL fetched once,
    3 workers ≥ 2.2× faster at a crawl-wide limit of 12; at a limit of 4 the
    site never sees more than 4 at once and 3 workers are no faster than 1."""
    config, store, broker, procs = fleet
    procs.master()
    start_nodes(procs, store, 3)
    site = slow_site.server
    timings = {}
    for workers, limit in ((3, 12), (1, 12), (3, 4)):
        mark = len(site.requests)
        site.max_active = site.active
        crawl_id = run_crawl(config, store, broker, workers, limit)
        crawl = wait_crawl(store, crawl_id)
        assert crawl["status"] == "finished", explain(store, crawl_id)
        paths, seconds = site_window(slow_site, mark)
        timings[(workers, limit)] = seconds
        print(f"{workers} worker(s), limit {limit}: {seconds:.1f} s at the site, "
              f"{crawl['finished_at'] - crawl['created_at']:.1f} s asked to finished")
        dupes = [p for p, n in collections.Counter(paths).items() if n > 1]
        assert not dupes, f"fetched twice: {dupes[:5]}"
        items = crawl_items(store, crawl_id)
        assert sorted(item_paths(items)) == sorted(EXPECTED_URLS)
        tasks = list(store.tasks.find({"crawl_id": crawl_id}))
        assert len(tasks) == workers and all(t["status"] == "finished" for t in tasks)
        if workers == 3:
            assert len({t["node_id"] for t in tasks}) == 3  # one worker per node
        assert crawl["stats"]["items"] == 300
        assert site.max_active <= limit, (site.max_active, limit)
        # a finished crawl's frontier is gone, and its workers' Redis user with it
        assert crawl["frontier_isolation"]  # its workers had a Redis user of their own
        assert not redis.Redis.from_url(config.broker_url).keys(
            CrawlKeys(config.queue_prefix, crawl_id).pattern)
        assert crawl_id not in frontier_acl.crawl_users(config).values()
    print("site-measured seconds:", timings)
    assert timings[(1, 12)] / timings[(3, 12)] >= 2.2, timings
    # Politeness: the site never saw more than 4 at once (asserted above), so 3
    # workers cannot beat the floor of 315 pages × 0.5 s / 4; one worker on a
    # busy 2-core machine does not keep its 4 slots quite full, three sharing
    # 4 slots do, hence the margin against the measured single worker.
    floor = len(EXPECTED_URLS) * SLOW / 4
    assert timings[(3, 4)] >= 0.95 * floor, timings
    assert timings[(3, 4)] >= 0.85 * timings[(1, 12)], timings


def test_a_dead_workers_requests_go_back_and_it_is_replaced(fleet, slow_site):
    """kill -9 one worker's node mid-crawl: the crawl finishes with every item
    once, fetching again at most what the dead worker had in flight."""
    config, store, broker, procs = fleet
    procs.master()
    nodes = {n.node_id: n for n in start_nodes(procs, store, 4)}
    site = slow_site.server
    mark = len(site.requests)
    crawl_id = run_crawl(config, store, broker, 3, 12)
    wait_for(lambda: len(site.requests) - mark >= 100, timeout=120, what="100 pages fetched")
    victim_task = store.tasks.find_one({"crawl_id": crawl_id, "status": "running"})
    os.killpg(nodes[victim_task["node_id"]].pid, signal.SIGKILL)
    frontier = Frontier.open(config, crawl_id)
    in_flight = frontier.redis.hlen(frontier.keys.inflight(victim_task["_id"]))
    frontier.close()
    crawl = wait_crawl(store, crawl_id)
    assert crawl["status"] == "finished", explain(store, crawl_id)
    tasks = {t["_id"]: t for t in store.tasks.find({"crawl_id": crawl_id})}
    assert tasks[victim_task["_id"]]["status"] == "abnormal"
    assert tasks[victim_task["_id"]]["frontier_returned"] == in_flight
    replacements = [t for t in tasks.values() if t["trigger"] == "retry"]
    assert replacements and replacements[0]["worker"] == victim_task["worker"]
    items = crawl_items(store, crawl_id)
    assert sorted(item_paths(items)) == sorted(EXPECTED_URLS)  # every item, once
    paths, _ = site_window(slow_site, mark)
    twice = sum(n - 1 for n in collections.Counter(paths).values() if n > 1)
    print(f"in flight on the dead node: {in_flight}; pages fetched twice: {twice}")
    assert twice <= in_flight


def test_cancelled_persistent_crawl_resumes_where_it_stopped(fleet, slow_site):
    """One persistent worker, cancelled after 60 pages, then resumed: the same
    300 items as an uninterrupted crawl, no page fetched twice but what was in flight."""
    config, store, broker, procs = fleet
    procs.master()
    start_nodes(procs, store, 1)
    site = slow_site.server
    mark = len(site.requests)
    crawl_id = run_crawl(config, store, broker, 1, 8, persist=True)
    wait_for(lambda: len(site.requests) - mark >= 60, timeout=120, what="60 pages fetched")
    crawls.cancel_crawl(store, broker, crawl_id)
    stopped = wait_crawl(store, crawl_id)
    assert stopped["status"] == "cancelled", explain(store, crawl_id)
    first = store.tasks.find_one({"crawl_id": crawl_id})
    assert len(crawl_items(store, crawl_id)) < 300
    frontier = Frontier.open(config, crawl_id)
    assert frontier.exists() and frontier.redis.ttl(frontier.keys.seen) > 0
    frontier.close()
    with pytest.raises(Conflict):
        crawls.scale_crawl(store, broker, config, crawl_id, 2)
    crawls.resume_crawl(store, broker, config, crawl_id)
    crawl = wait_crawl(store, crawl_id)
    assert crawl["status"] == "finished", explain(store, crawl_id)
    assert crawl["resumed"] == 1
    items = crawl_items(store, crawl_id)
    assert sorted(item_paths(items)) == sorted(EXPECTED_URLS)
    paths, _ = site_window(slow_site, mark)
    twice = sum(n - 1 for n in collections.Counter(paths).values() if n > 1)
    assert twice <= (first.get("frontier_returned") or 0)
    assert any("already seeded" in line
               for t in store.tasks.find({"crawl_id": crawl_id, "trigger": "resume"})
               for line in task_log(store, t["_id"]))


def test_without_redis_workers_and_resume_are_refused(tmp_path, mongo_server, demo_site):
    """On the embedded broker with no CRAWLFLEET_FRONTIER_URL, --workers is a 409 naming it."""
    gen = platform("embedded", tmp_path, mongo_server, demo_site)
    config, store, broker, procs = next(gen)
    try:
        with pytest.raises(Conflict, match="CRAWLFLEET_FRONTIER_URL"):
            crawls.start_crawl(store, broker, config, "books", workers=2)
        assert store.crawls.count_documents({}) == 0 and store.tasks.count_documents({}) == 0
    finally:
        gen.close()


def test_scaling_a_running_crawl_loses_nothing(fleet, slow_site):
    """3 workers scaled to 1 mid-crawl (the stopped ones' requests go back to
    the frontier), then to 2: the crawl finishes with every item once."""
    config, store, broker, procs = fleet
    procs.master()
    start_nodes(procs, store, 3)
    site = slow_site.server
    mark = len(site.requests)
    crawl_id = run_crawl(config, store, broker, 3, 12)
    wait_for(lambda: len(site.requests) - mark >= 60, timeout=120, what="60 pages fetched")
    crawls.scale_crawl(store, broker, config, crawl_id, 1)
    wait_for(lambda: store.tasks.count_documents(
        {"crawl_id": crawl_id, "scaled_down": True, "status": "cancelled"}) == 2,
        timeout=60, what="two workers stopped")
    wait_for(lambda: len(site.requests) - mark >= 120, timeout=120, what="120 pages fetched")
    crawls.scale_crawl(store, broker, config, crawl_id, 2)
    crawl = wait_crawl(store, crawl_id)
    assert crawl["status"] == "finished", explain(store, crawl_id)
    tasks = list(store.tasks.find({"crawl_id": crawl_id}))
    added = [t for t in tasks if t["trigger"] == "scale"]
    assert len(tasks) == 4 and len(added) == 1 and added[0]["status"] == "finished"
    assert added[0]["stats"]["pages"] > 0  # the added worker took work from the frontier
    assert sorted(item_paths(crawl_items(store, crawl_id))) == sorted(EXPECTED_URLS)
    paths, _ = site_window(slow_site, mark)
    twice = sum(n - 1 for n in collections.Counter(paths).values() if n > 1)
    assert twice <= sum(t.get("frontier_returned") or 0 for t in tasks)
