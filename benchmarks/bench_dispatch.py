"""Dispatch latency: from the API's reply to `run` until the spider has
started — the spider writes down its own start time (in its __init__, after
Scrapy built its crawler) — one run at a time, on Redis and on RabbitMQ.

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


def measure(broker, runs, home, warm):
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    marks = home / "started.txt"
    with Platform(home, broker=broker, spiders_path=str(PROJECTS)) as p:
        p.master()
        p.web()
        p.node("d1", max_runners=2, BENCH_START_FILE=marks, CRAWLFLEET_WARM_START=int(warm))
        latencies = []
        for i in range(runs + 2):
            reply = p.api.run("noop_scrapy")
            replied = time.time()
            task_id = reply["task_ids"][0]
            started = p.wait(lambda: _started(marks, task_id), 60, f"task {task_id} started")
            if i >= 2:  # the first runs start the warm process and fill the caches
                latencies.append(started - replied)
            p.wait(lambda: p.store.tasks.find_one(
                {"_id": task_id, "status": {"$in": ["finished", "error"]}}), 60, "task done")
    return latencies


def _started(marks, task_id):
    try:
        for line in marks.read_text().splitlines():
            tid, at = line.split()
            if tid == task_id:
                return float(at)
    except OSError:
        return None
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--brokers", default="redis,rabbitmq")
    parser.add_argument("--home", default="./.bench-dispatch")
    parser.add_argument("--fresh", action="store_true", help="also measure without warm start")
    opts = parser.parse_args()
    rows = []
    for broker in opts.brokers.split(","):
        for warm in ([True, False] if opts.fresh else [True]):
            lat = measure(broker, opts.runs, Path(opts.home).resolve() / broker, warm)
            p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
            rows.append([broker, "warm" if warm else "fresh", len(lat), f"{p50 * 1000:.0f} ms",
                         f"{p99 * 1000:.0f} ms", f"{max(lat) * 1000:.0f} ms",
                         "yes" if p50 <= 0.030 and p99 <= 0.150 else "no"])
    table("Dispatch latency: API reply → spider started (its own clock), one run at a time",
          ["broker", "start", "runs", "p50", "p99", "max", "goal p50≤30 ms, p99≤150 ms"], rows)


if __name__ == "__main__":
    main()
