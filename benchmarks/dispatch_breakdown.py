"""Where a dispatch's time goes, from the ledger's own time stamps: the run
request sent → the task written (web) → published → claimed by a node
(broker delivery, the claim) → the spider process spawned (the node's
preparation) → the spider's own code (the warm process's fork and Scrapy's
start), for back-to-back runs of the no-op spider of bench_dispatch.py.

    python benchmarks/dispatch_breakdown.py [--runs 20]
"""

import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_dispatch import FINAL, PROJECTS, SPIDER  # noqa: E402
from harness import Platform, options, table  # noqa: E402

from spiders.demosite.server import start_in_thread  # noqa: E402

STEPS = [("request → task written", "sent", "created_at"),
         ("written → published", "created_at", "published_at"),
         ("published → claimed", "published_at", "started_at"),
         ("claimed → spider spawned", "started_at", "spider_started_at"),
         ("spawned → spider code", "spider_started_at", "spider_code"),
         ("request → spider code", "sent", "spider_code")]


def main():
    opts = options(__doc__, runs=20, home="./.bench-breakdown").parse_args()
    home = Path(opts.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    demo = start_in_thread()
    samples = {name: [] for name, _, _ in STEPS}
    try:
        with Platform(home / "crawlfleet", spiders_path=str(PROJECTS)) as p:
            p.master()
            p.web()
            p.node("b1", CRAWLFLEET_DEMO_URL=demo.url, BENCH_START_FILE=str(home / "marks"))
            for n in range(opts.runs + 1):
                sent = time.time()
                task_id = p.api.run(SPIDER)["task_ids"][0]
                task = p.wait(lambda: p.store.tasks.find_one(
                    {"_id": task_id, "status": {"$in": FINAL}}), 120, f"task {task_id} done")
                item = p.store.results(f"results_{SPIDER}").find_one({"_tid": task_id}) or {}
                stamps = dict(task, sent=sent, spider_code=item.get("started_at"))
                if n == 0:
                    continue  # the first run starts the warm process
                for name, a, b in STEPS:
                    if stamps.get(a) and stamps.get(b):
                        samples[name].append((stamps[b] - stamps[a]) * 1000)
    finally:
        demo.stop()
    rows = [[name, len(v), f"{statistics.median(v):.1f}", f"{max(v):.1f}"]
            for name, v in samples.items() if v]
    table(f"Dispatch, step by step ({opts.runs} back-to-back runs after the first)",
          ["step", "n", "median ms", "max ms"], rows)


if __name__ == "__main__":
    main()
