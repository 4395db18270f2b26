"""Dispatch latency: from the API's reply to `run` until the spider has
started — the spider notes its own start time (in its __init__, after
Scrapy built its crawler) and stores it as its one item — one run at a time,
on Redis and on RabbitMQ, with the node's spider sandbox on (`auto`).

    python benchmarks/bench_dispatch.py [--runs 100] [--brokers redis,rabbitmq]

Goal: p50 ≤ 30 ms, p99 ≤ 150 ms.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Platform, percentile, table  # noqa: E402

PROJECTS = ROOT / "benchmarks" / "projects"


def measure(broker, runs, home, warm, sandbox="auto"):
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with Platform(home, broker=broker, spiders_path=str(PROJECTS)) as p:
        p.master()
        p.web()
        p.node("d1", max_runners=2, CRAWLFLEET_WARM_START=int(warm), CRAWLFLEET_SANDBOX=sandbox)
        latencies = []
        for i in range(runs + 2):
            reply = p.api.run("noop_scrapy", args={"report_start": "1"})
            replied = time.time()
            task_id = reply["task_ids"][0]
            p.wait(lambda: p.store.tasks.find_one(
                {"_id": task_id, "status": {"$in": ["finished", "error"]}}), 60, "task done")
            item = p.store.results("results_noop_scrapy").find_one({"_tid": task_id})
            if item is None:
                raise SystemExit(f"task {task_id} stored no start time: "
                                 f"{p.store.tasks.find_one({'_id': task_id})}")
            if i >= 2:  # the first runs start the warm process and fill the caches
                latencies.append(item["started_at"] - replied)
    return latencies


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--brokers", default="redis,rabbitmq")
    parser.add_argument("--home", default="./.bench-dispatch")
    parser.add_argument("--fresh", action="store_true", help="also measure without warm start")
    parser.add_argument("--sandboxes", default="auto",
                        help="node sandbox settings to measure, e.g. auto,none")
    opts = parser.parse_args()
    rows = []
    for broker in opts.brokers.split(","):
        for warm, sandbox in [(w, b) for w in ([True, False] if opts.fresh else [True])
                              for b in opts.sandboxes.split(",")]:
            lat = measure(broker, opts.runs, Path(opts.home).resolve() / broker, warm, sandbox)
            p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
            rows.append([broker, "warm" if warm else "fresh", sandbox, len(lat), f"{p50 * 1000:.0f} ms",
                         f"{p99 * 1000:.0f} ms", f"{max(lat) * 1000:.0f} ms",
                         "yes" if p50 <= 0.030 and p99 <= 0.150 else "no"])
    table("Dispatch latency: API reply → spider started (its own clock), one run at a time",
          ["broker", "start", "sandbox", "runs", "p50", "p99", "max", "goal p50≤30 ms, p99≤150 ms"], rows)


if __name__ == "__main__":
    main()
