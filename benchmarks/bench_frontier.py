"""Distributed crawls: the speedup curve of 1-4 workers sharing one frontier,
and what the frontier costs per request.

    python benchmarks/bench_frontier.py [--delay 0.5] [--max-workers 4] [--repeat 3]

1. Speedup: the bundled `books` spider over the demo site answering every
   page after DELAY seconds, each worker at CONCURRENT_REQUESTS=4 and the
   crawl-wide per-domain limit at 4 × workers (so the site allows what the
   workers can do), one worker per node. Times are measured at the site
   (first to last request received) and from the API request to the crawl's
   final status; "twice" counts pages the site served more than once.
2. Cost per request: the same crawl with no delay, as a plain crawlfleet task
   (Scrapy's own in-memory scheduler) and as a one-worker crawl (scrapy-redis
   frontier, in-flight accounting, crawl-wide limiter), median of REPEAT; and
   the Redis round trips a frontier request makes, timed alone (enqueue with
   its seen-set check, take, release, limiter acquire and free).
"""

import collections
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Platform, headline, options, table  # noqa: E402

from spiders.demosite.server import start_in_thread  # noqa: E402

FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]


def crawl_once(p, site, workers, settings, frontier=True):
    """Run books once; returns (wall seconds, site seconds, pages, pages fetched twice)."""
    mark = len(site.requests)
    started = time.monotonic()
    body = {"settings": settings}
    if frontier:
        body["workers"] = workers
    answer = p.api.run("books", **body)
    if frontier:
        doc = p.wait(lambda: p.store.crawls.find_one(
            {"_id": answer["crawl_id"], "status": {"$in": FINAL}}), 600, "crawl done")
        task_ids = answer["task_ids"]
    else:
        doc = p.wait(lambda: p.store.tasks.find_one(
            {"_id": answer["task_ids"][0], "status": {"$in": FINAL}}), 600, "task done")
        task_ids = answer["task_ids"]
    wall = time.monotonic() - started
    assert doc["status"] == "finished", doc
    items = p.store.db[doc.get("results_collection") or "results_books"].count_documents(
        {"_tid": {"$in": [t["_id"] for t in p.store.tasks.find(
            {"crawl_id": doc["_id"]}, {"_id": 1})] if frontier else task_ids}})
    assert items == 300, (items, doc)
    paths = site.requests[mark:]
    times = site.request_times[mark:]
    window = times[-1] - times[0] + site.server.delay
    twice = sum(n - 1 for n in collections.Counter(paths).values() if n > 1)
    return wall, window, len(paths), twice


def speedup(p, site, max_workers):
    rows, base = [], None
    for workers in range(1, max_workers + 1):
        settings = {"CONCURRENT_REQUESTS": 4, "CONCURRENT_REQUESTS_PER_DOMAIN": 4,
                    "CRAWLFLEET_DOMAIN_CONCURRENCY": 4 * workers}
        wall, window, pages, twice = crawl_once(p, site, workers, settings)
        base = base or window
        rows.append([workers, f"{wall:.1f} s", f"{window:.1f} s", f"{base / window:.2f}×",
                     f"{pages / window:.1f}", twice])
    return rows


def redis_round_trips(url, count=2000):
    """Microseconds per request of the frontier's own Redis work, timed alone."""
    import redis

    from crawlfleet.frontier import CrawlKeys
    from crawlfleet.sdk.crawlmiddlewares import ACQUIRE
    from crawlfleet.sdk.frontier import TAKE

    client = redis.Redis.from_url(url)
    keys = CrawlKeys("benchfrontier" + uuid.uuid4().hex[:6], "c")
    take = client.register_script(TAKE)
    acquire = client.register_script(ACQUIRE)
    payload = os.urandom(400)  # about a pickled GET request
    started = time.perf_counter()
    for i in range(count):
        client.sadd(keys.seen, f"fp{i}")
        client.execute_command("ZADD", keys.requests, 0, payload + str(i).encode())
    enqueue = time.perf_counter() - started
    started = time.perf_counter()
    taken = [take(keys=[keys.requests, keys.inflight("w")]) for _ in range(count)]
    take_time = time.perf_counter() - started
    started = time.perf_counter()
    for data in taken:
        client.hdel(keys.inflight("w"), data)
    release = time.perf_counter() - started
    started = time.perf_counter()
    for i in range(count):
        acquire(keys=[keys.limit("site"), keys.next_allowed("site")],
                args=[count + 1, 0, 60000, f"w:{i}"])
        client.zrem(keys.limit("site"), f"w:{i}")
    limiter = time.perf_counter() - started
    for key in client.scan_iter(keys.pattern):
        client.delete(key)
    client.close()
    per = lambda seconds: f"{seconds / count * 1e6:.0f} µs"  # noqa: E731
    return [["enqueue (seen-set SADD + ZADD)", per(enqueue)], ["take (Lua: pop + in-flight)",
            per(take_time)], ["release (HDEL)", per(release)],
            ["limiter (Lua acquire + ZREM)", per(limiter)],
            ["all, per request", per(enqueue + take_time + release + limiter)]]


def main():
    parser = options(__doc__, delay=0.5, max_workers=4, repeat=3, home="./.bench/frontier")
    parser.add_argument("--only", choices=["speedup", "cost"], help="Run one part only.")
    opts = parser.parse_args()
    slow = start_in_thread(delay=opts.delay)
    fast = start_in_thread()
    curve, costs = None, {}
    try:
        if opts.only != "cost":
            with Platform(Path(opts.home).resolve() / "speedup", broker="redis") as p:
                p.master()
                p.web()
                for k in range(opts.max_workers):
                    p.node(f"f{k}", max_runners=1, CRAWLFLEET_DEMO_URL=slow.url)
                curve = speedup(p, slow, opts.max_workers)
        if opts.only != "speedup":
            with Platform(Path(opts.home).resolve() / "cost", broker="redis") as p:
                p.master()
                p.web()
                p.node("fast", max_runners=1, CRAWLFLEET_DEMO_URL=fast.url)
                for frontier in (False, True, False, True):  # interleaved: the machine drifts
                    for _ in range(opts.repeat):
                        wall, window, pages, _ = crawl_once(p, fast, 1, {}, frontier=frontier)
                        costs.setdefault(frontier, []).append((wall, window, pages))
                trips = redis_round_trips(p.config.broker_url)
    finally:
        slow.stop()
        fast.stop()
    if curve:
        print_speedup(opts, curve)
    if costs:
        print_costs(opts, costs, trips)


def print_speedup(opts, curve):
    table(f"Speedup: books over the demo site answering after {opts.delay:g} s, "
          "4 concurrent requests per worker, crawl-wide limit 4 × workers, one worker per node",
          ["workers", "request → finished", "at the site", "speedup", "pages/s", "twice"], curve)


def print_costs(opts, costs, trips):
    rows = []
    for frontier, label in ((False, "plain task (Scrapy's scheduler)"),
                            (True, "1-worker crawl (Redis frontier)")):
        wall = statistics.median(c[0] for c in costs[frontier])
        window = statistics.median(c[1] for c in costs[frontier])
        pages = costs[frontier][0][2]
        rows.append([label, f"{wall:.2f} s", f"{window:.2f} s", f"{pages / window:.0f}",
                     f"{window / pages * 1000:.2f} ms"])
    plain = statistics.median(c[1] / c[2] for c in costs[False])
    framed = statistics.median(c[1] / c[2] for c in costs[True])
    rows.append(["frontier cost per request", "", "", "", f"{(framed - plain) * 1000:+.2f} ms"])
    headline("what a persistent crawl's Redis frontier costs, books, no delay",
             f"**{(framed - plain) * 1000:+.1f} ms** a page over a plain task's "
             f"{plain * 1000:.1f} ms (median of {2 * opts.repeat} interleaved crawls)")
    table(f"Frontier cost: books over the demo site with no delay (default settings), "
          f"median of {2 * opts.repeat}", ["how", "request → finished", "at the site",
                                           "pages/s", "per page"], rows)
    table("The frontier's Redis work per request, timed alone (one client, local Redis)",
          ["step", "time"], trips)


if __name__ == "__main__":
    main()
