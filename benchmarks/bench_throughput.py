"""Short-task throughput and the platform's CPU per task, crawlfleet against
Scrapyd 1.6 in the same run: batches of tasks of the no-op benchmark spider
(benchmarks/projects/noop_scrapy: one page of the demo site, one item),
submitted all at once through each one's API, the batches of the two
interleaved.

    python benchmarks/bench_throughput.py [--tasks 80] [--rounds 2] [--no-peers]

Both run with their shipped defaults: crawlfleet one node with its default
run slots (max(2, cores)), the embedded store and broker, warm start; Scrapyd
its default max_proc (4 a core) and poll_interval (5 s). crawlfleet stores
each task's item in its store; Scrapyd, by default, keeps none. Every task is
counted, the first batch (warm process not started yet) included.

CPU per task: user + system seconds of the platform's own processes over the
batch, divided by its tasks: crawlfleet's master, web, node and warm
processes (the store apart), Scrapyd's daemon; a spider process's own CPU is
not counted for either. "All CPU" adds the spider processes (Scrapyd starts a
fresh interpreter per job; crawlfleet forks a warm one): everything but the
store.

Goals: tasks/s >= 10× Scrapyd's in the same run; platform CPU <= 50 ms a task.
"""

import argparse
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (ROOT, Platform, headline, table, tree_cpu_seconds,  # noqa: E402
                     wait_until)
from peers import Scrapyd, scrapyd_version  # noqa: E402

from spiders.demosite.server import start_in_thread  # noqa: E402

PROJECTS = ROOT / "benchmarks" / "projects"
SPIDER = "noop_scrapy"
FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]
RATIO_GOAL = 10.0
CPU_GOAL = 0.050


def crawlfleet_batch(p, n):
    store_pid = p.mongo.pid if p.mongo is not None else None
    others = [pid for pid in p.platform_pids() if pid != store_pid]
    cpu0 = tree_cpu_seconds(others), tree_cpu_seconds([store_pid] if store_pid else [])
    all0 = tree_cpu_seconds(others, reaped=True)
    started = time.monotonic()
    ids = []
    for _ in range(n):
        ids += p.api.run(SPIDER)["task_ids"]
    wait_until(lambda: p.store.tasks.count_documents(
        {"_id": {"$in": ids}, "status": {"$in": FINAL}}) == len(ids), 3600, "all tasks done")
    elapsed = time.monotonic() - started
    cpu1 = tree_cpu_seconds(others), tree_cpu_seconds([store_pid] if store_pid else [])
    total = tree_cpu_seconds(others, reaped=True) - all0
    docs = list(p.store.tasks.find({"_id": {"$in": ids}}))
    bad = [d for d in docs if d["status"] != "finished"]
    if bad:
        raise SystemExit(f"benchmark: {len(bad)} tasks did not finish, e.g. {bad[0]}")
    setup = statistics.median(d["spider_started_at"] - d["started_at"] for d in docs)
    return {"n": n, "elapsed": elapsed, "cpu": cpu1[0] - cpu0[0], "store_cpu": cpu1[1] - cpu0[1],
            "total": total, "setup": setup}


def scrapyd_batch(sd, n):
    cpu0 = tree_cpu_seconds([sd.proc.pid])
    all0 = tree_cpu_seconds([sd.proc.pid], reaped=True)
    started = time.monotonic()
    for _ in range(n):
        sd.schedule(SPIDER, SPIDER)
    wait_until(sd.idle, 3600, "all Scrapyd jobs done")
    elapsed = time.monotonic() - started
    return {"n": n, "elapsed": elapsed, "cpu": tree_cpu_seconds([sd.proc.pid]) - cpu0,
            "total": tree_cpu_seconds([sd.proc.pid], reaped=True) - all0,
            "store_cpu": None, "setup": None}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=80, help="tasks in each batch")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-peers", action="store_true", help="crawlfleet only")
    parser.add_argument("--home", default="./.bench-throughput")
    opts = parser.parse_args()
    home = Path(opts.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    demo = start_in_thread()
    env = {"CRAWLFLEET_DEMO_URL": demo.url}
    batches = {}
    sd = None
    try:
        with Platform(home / "crawlfleet", spiders_path=str(PROJECTS)) as p:
            if not opts.no_peers:
                sd = Scrapyd(home / "scrapyd", env)
                sd.deploy(SPIDER, PROJECTS / SPIDER)
            p.master()
            p.web()
            p.node("t1", **env)
            runners = p.store.nodes.find_one({"_id": "t1"})["max_runners"]
            for _ in range(opts.rounds):
                batches.setdefault("crawlfleet", []).append(crawlfleet_batch(p, opts.tasks))
                if sd is not None:
                    batches.setdefault(sd.label, []).append(scrapyd_batch(sd, opts.tasks))
    finally:
        if sd is not None:
            sd.close()
        demo.stop()

    def rate(name):
        b = batches[name]
        return sum(x["n"] for x in b) / sum(x["elapsed"] for x in b)

    base = rate(sd.label) if sd is not None else None
    rows = []
    for name, b in batches.items():
        tasks = sum(x["n"] for x in b)
        cpu = sum(x["cpu"] for x in b) / tasks
        store = (f"{sum(x['store_cpu'] for x in b) / tasks * 1000:.0f} ms"
                 if b[0]["store_cpu"] is not None else "(none)")
        config = (f"1 node, {runners} run slots (default), embedded store + broker, warm start"
                  if name == "crawlfleet" else "max_proc 0 = 4 a core, poll_interval 5 s")
        ratio = rate(name) / base if base else None
        goals = []
        if name == "crawlfleet":
            if ratio is not None:
                goals.append(f"≥ {RATIO_GOAL:.0f}× Scrapyd: {'yes' if ratio >= RATIO_GOAL else 'NO'}")
            goals.append(f"CPU ≤ {CPU_GOAL * 1000:.0f} ms: {'yes' if cpu <= CPU_GOAL else 'NO'}")
        rows.append([name, config, tasks, ", ".join(f"{x['n'] / x['elapsed']:.2f}" for x in b),
                     f"{rate(name):.2f}", f"{ratio:.1f}×" if ratio else "—",
                     f"{cpu * 1000:.0f} ms", store,
                     f"{sum(x['total'] for x in b) / tasks * 1000:.0f} ms", "; ".join(goals)])
    version = scrapyd_version() if sd is not None else "not run"
    setup = statistics.median(x["setup"] for x in batches["crawlfleet"])
    table(f"Short-task throughput: {opts.rounds} interleaved batches of {opts.tasks} noop_scrapy "
          f"tasks each (one page, one item), shipped defaults; Scrapyd {version}",
          ["system", "configuration", "tasks", "tasks/s by batch", "tasks/s", "vs Scrapyd",
           "platform CPU/task", "store CPU/task", "all CPU/task (spiders too, store apart)",
           "goal"], rows,
          note=f"crawlfleet, claim → spider process started (median of the batches' medians): "
               f"{setup * 1000:.0f} ms")
    cf_rate = rate("crawlfleet")
    cf_cpu = sum(x["cpu"] for x in batches["crawlfleet"]) / sum(x["n"] for x in batches["crawlfleet"])
    figure = f"crawlfleet **{cf_rate:.1f} tasks/s**"
    if base:
        sd_cpu = sum(x["cpu"] for x in batches[sd.label]) / sum(x["n"] for x in batches[sd.label])
        figure += f", Scrapyd {base:.2f} tasks/s: **{cf_rate / base:.1f}×**"
        headline("short-task throughput, shipped defaults, same run", figure,
                 f"≥ {RATIO_GOAL:.0f}× Scrapyd", "yes" if cf_rate / base >= RATIO_GOAL else "no")
        cf_all = sum(x["total"] for x in batches["crawlfleet"]) / sum(x["n"] for x in batches["crawlfleet"])
        sd_all = sum(x["total"] for x in batches[sd.label]) / sum(x["n"] for x in batches[sd.label])
        headline("platform CPU per task", f"crawlfleet **{cf_cpu * 1000:.0f} ms** (store apart), "
                 f"Scrapyd's daemon {sd_cpu * 1000:.0f} ms; with the spider processes "
                 f"crawlfleet {cf_all * 1000:.0f} ms, Scrapyd {sd_all * 1000:.0f} ms",
                 f"≤ {CPU_GOAL * 1000:.0f} ms", "yes" if cf_cpu <= CPU_GOAL else "no")
    else:
        headline("short-task throughput, shipped defaults", figure)


if __name__ == "__main__":
    main()
