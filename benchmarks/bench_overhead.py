"""Crawl overhead: the bundled `books` spider over the demo site through
crawlfleet (API request → task finished, items stored through the platform's
pipeline) against a bare `scrapy crawl books` of the same project with the
same settings (process start → exit, items written to a local file).

    python benchmarks/bench_overhead.py [--repeat 5] [--broker redis]

Goal: wall-time ratio ≤ 1.02 (Scrapyd measured here: 1.25 with its defaults).
"""

import argparse
import os
import shutil
import statistics
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Platform, table  # noqa: E402

from spiders.demosite.server import start_in_thread  # noqa: E402

FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]


def bare(demo_url, repeat):
    times, pages = [], 0
    env = dict(os.environ, CRAWLFLEET_DEMO_URL=demo_url)
    for name in [k for k in env if k.startswith("CRAWLFLEET_") and k != "CRAWLFLEET_DEMO_URL"]:
        env.pop(name)
    for _ in range(repeat):
        started = time.monotonic()
        done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "books"],
                              cwd=ROOT / "spiders" / "books", env=env, check=True,
                              capture_output=True, text=True)
        times.append(time.monotonic() - started)
        pages = int(re.search(r"'response_received_count': (\d+)", done.stderr).group(1))
    return times, pages


def platform(demo_url, repeat, broker, home, warm):
    shutil.rmtree(home, ignore_errors=True)
    times, pages = [], 0
    with Platform(home, broker=broker) as p:
        p.master()
        p.web()
        p.node("o1", max_runners=2, CRAWLFLEET_DEMO_URL=demo_url, CRAWLFLEET_WARM_START=int(warm))
        for i in range(repeat + 1):
            started = time.monotonic()
            task_id = p.api.run("books")["task_ids"][0]
            task = p.wait(lambda: p.store.tasks.find_one(
                {"_id": task_id, "status": {"$in": FINAL}}), 300, "crawl done")
            if i:  # the first crawl starts the warm process
                times.append(time.monotonic() - started)
                pages = task["stats"].get("pages", 0)
                assert task["stats"]["items"] == 300, task
    return times, pages


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--broker", default="redis")
    parser.add_argument("--home", default="./.bench-overhead")
    opts = parser.parse_args()
    demo = start_in_thread()
    try:
        base_times, bare_pages = bare(demo.url, opts.repeat)
        rows = []
        base = statistics.median(base_times)
        rows.append(["bare scrapy crawl (items discarded)", f"{base:.2f} s", "1.00",
                     f"{bare_pages / base:.0f}", "—"])
        for warm in (True, False):
            times, pages = platform(demo.url, opts.repeat, opts.broker,
                                    Path(opts.home).resolve() / str(warm), warm)
            t = statistics.median(times)
            rows.append([f"crawlfleet ({'warm' if warm else 'fresh'} start)", f"{t:.2f} s",
                         f"{t / base:.2f}", f"{pages / t:.0f}",
                         "yes" if t / base <= 1.02 else "no"])
    finally:
        demo.stop()
    table(f"Crawl overhead: books over the demo site (300 items, {bare_pages} pages), "
          f"wall time from request to end, median of {opts.repeat}",
          ["how", "wall time", "ratio", "pages/s", "goal ≤ 1.02"], rows)


if __name__ == "__main__":
    main()
