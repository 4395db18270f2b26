"""Short-task throughput: no-op Scrapy spider tasks (no request made) pushed
through the API, a master and one or two nodes, with warm start and with a
fresh interpreter per task; tasks/s and where each task's time went.

    python benchmarks/bench_throughput.py [--tasks 500] [--runners 4] [--broker redis]

Both nodes run on this machine, so "2 nodes" shares the same 2 cores.
Goal: ≥ 6 tasks/s on one 2-core node (3× Scrapyd's best measured here, 1.96 jobs/s).
"""

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Platform, table  # noqa: E402

PROJECTS = ROOT / "benchmarks" / "projects"
FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]


def measure(opts, nodes, warm, home):
    shutil.rmtree(home, ignore_errors=True)
    with Platform(home, broker=opts.broker, spiders_path=str(PROJECTS)) as p:
        p.master()
        p.web()
        for n in range(nodes):
            p.node(f"t{n}", max_runners=opts.runners, CRAWLFLEET_WARM_START=int(warm))
        # one task per node first: starts the warm processes and fills the caches
        for task_id in p.api.run("noop_scrapy", nodes="all")["task_ids"]:
            p.wait(lambda: p.store.tasks.find_one({"_id": task_id, "status": {"$in": FINAL}}),
                   120, "warm-up")
        started = time.monotonic()
        ids = []
        for _ in range(opts.tasks):
            ids += p.api.run("noop_scrapy")["task_ids"]
        p.wait(lambda: p.store.tasks.count_documents(
            {"_id": {"$in": ids}, "status": {"$in": FINAL}}) == len(ids), 3600, "all done")
        elapsed = time.monotonic() - started
        docs = list(p.store.tasks.find({"_id": {"$in": ids}}))
    statuses = {}
    for d in docs:
        statuses[d["status"]] = statuses.get(d["status"], 0) + 1
    median = lambda key: statistics.median(key(d) for d in docs)  # noqa: E731
    spider = median(lambda d: d["finished_at"] - d["spider_started_at"])
    setup = median(lambda d: d["spider_started_at"] - d["started_at"])
    return {
        "nodes": nodes, "start": "warm" if warm else "fresh", "tasks": len(ids),
        "statuses": ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
        "elapsed": elapsed, "rate": len(ids) / elapsed,
        "setup": setup, "spider": spider,
        "platform_share": setup / (setup + spider),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=500)
    parser.add_argument("--runners", type=int, default=4)
    parser.add_argument("--broker", default="redis")
    parser.add_argument("--home", default="./.bench-throughput")
    parser.add_argument("--skip-fresh", action="store_true")
    opts = parser.parse_args()
    home = Path(opts.home).resolve()
    rows = []
    for warm in ([True] if opts.skip_fresh else [True, False]):
        for nodes in (1, 2):
            r = measure(opts, nodes, warm, home / f"{nodes}-{warm}")
            rows.append([r["nodes"], r["start"], r["tasks"], r["statuses"], f"{r['elapsed']:.0f} s",
                         f"{r['rate']:.2f}", f"{r['setup'] * 1000:.0f} ms",
                         f"{r['spider'] * 1000:.0f} ms", f"{r['platform_share'] * 100:.0f}%",
                         f"{r['rate'] / 1.96:.1f}×"])
    table(f"Short-task throughput: no-op Scrapy tasks, {opts.runners} runners per node, "
          f"{opts.broker} broker (per task, medians: platform = claim → spider process started; "
          "spider = process start → final status, Scrapy's own start-up included)",
          ["nodes", "start", "tasks", "statuses", "wall", "tasks/s", "platform", "spider",
           "platform share", "vs Scrapyd best"], rows)


if __name__ == "__main__":
    main()
