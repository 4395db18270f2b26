"""Dispatch latency, from the request to the spider's own code, crawlfleet
against Scrapyd 1.6 in the same run, interleaved run by run.

    python benchmarks/bench_dispatch.py [--rounds 20] [--deploys 5] [--idles 3] [--no-peers]
                                        [--sandbox auto|user|bwrap|none]

The clock starts on the client just before the run request is sent
(crawlfleet: POST /api/v1/spiders/<name>/run; Scrapyd: POST schedule.json)
and stops when the spider's __init__ writes time.time() (same machine, same
clock). The spider, benchmarks/projects/noop_scrapy, fetches one page of the
bundled demo site and yields one item. One run at a time: each run is waited
for to the end before the next request. Every run is counted, each in exactly
one row:

- first task after the node started (the version was deployed before it);
- steady state: back-to-back runs of a version already run;
- first task after a deploy, requested as soon as the deploy returned, and
  requested 5 s later (the node warms a version when it is deployed);
- first task after an idle period: the warm process is stopped after
  CRAWLFLEET_WARM_IDLE_SECONDS (600 s shipped; lowered for that row only).

crawlfleet runs with its shipped defaults (embedded store and broker, default
run slots, warm start). Scrapyd with its shipped defaults (poll_interval 5 s)
and tuned (poll_interval 0.2 s), both deployed as eggs.

Goals: steady p50 <= 20 ms, and <= 30 ms with the spider sandboxed (the node
says which sandbox it ran: a user of its own as root, bubblewrap otherwise);
the first task after a deploy within 100 ms of the steady p50.
"""

import argparse
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import (ROOT, Platform, headline, percentile, summary, table,  # noqa: E402
                     wait_until as wait)
from peers import Scrapyd, scrapyd_version  # noqa: E402

from spiders.demosite.server import start_in_thread  # noqa: E402

PROJECTS = ROOT / "benchmarks" / "projects"
SPIDER = "noop_scrapy"
FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]
THINK_SECONDS = 5.0      # a user's pause between deploying and running
IDLE_SECONDS = 8.0       # the warm-process idle limit for the idle row
STEADY_GOAL = 0.020
SANDBOXED_GOAL = 0.030
AFTER_DEPLOY_GOAL = 0.100


class Marks:
    """The start times the spiders write, by task or job id."""

    def __init__(self, path):
        self.path = path
        self.path.write_text("")

    def started(self, run_id):
        for line in self.path.read_text().splitlines():
            rid, _, at = line.partition(" ")
            if rid == run_id:
                return float(at)
        return None


def run_crawlfleet(p, marks):
    sent = time.time()
    task_id = p.api.run(SPIDER)["task_ids"][0]
    task = p.wait(lambda: p.store.tasks.find_one({"_id": task_id, "status": {"$in": FINAL}}),
                  120, f"task {task_id} done")
    if task["status"] != "finished":
        raise SystemExit(f"benchmark: task {task_id} ended {task['status']}: {task.get('error')}")
    # a sandboxed spider cannot write outside its task folder: its start time
    # comes back in its one item
    item = p.store.results(f"results_{SPIDER}").find_one({"_tid": task_id})
    if not item or "started_at" not in item:
        raise SystemExit(f"benchmark: task {task_id} stored no start time")
    return item["started_at"] - sent


def run_scrapyd(sd, marks):
    sent = time.time()
    job = sd.schedule(SPIDER, SPIDER)
    started = wait(lambda: marks.started(job), 120, f"Scrapyd job {job} started")
    wait(lambda: sd.finished(SPIDER, job), 120, f"Scrapyd job {job} done")
    return started - sent


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20, help="steady-state runs of each")
    parser.add_argument("--deploys", type=int, default=5)
    parser.add_argument("--idles", type=int, default=3)
    parser.add_argument("--think", type=float, default=THINK_SECONDS,
                        help="seconds between a deploy and the run of the later row")
    parser.add_argument("--no-peers", action="store_true", help="crawlfleet only")
    parser.add_argument("--sandbox", default="auto",
                        help="the nodes' CRAWLFLEET_SANDBOX (auto, the shipped default; none "
                             "to see what the sandbox costs)")
    parser.add_argument("--home", default="./.bench-dispatch")
    opts = parser.parse_args()
    home = Path(opts.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    marks = Marks(home / "started.txt")
    demo = start_in_thread()
    env = {"BENCH_START_FILE": marks.path, "CRAWLFLEET_DEMO_URL": demo.url}
    node_env = dict(env, CRAWLFLEET_SANDBOX=opts.sandbox)
    rows = {}  # (system, case) -> seconds

    def add(system, case, value):
        rows.setdefault((system, case), []).append(value)

    peers = []
    try:
        with Platform(home / "crawlfleet", spiders_path=str(PROJECTS)) as p:
            if not opts.no_peers:
                peers = [Scrapyd(home / "scrapyd-default", env),
                         Scrapyd(home / "scrapyd-tuned", env, poll_interval=0.2)]
                for sd in peers:
                    sd.deploy(SPIDER, PROJECTS / SPIDER)
            p.master()
            p.web()
            node = p.node("d1", **node_env)
            sandbox = p.wait(lambda: (p.store.nodes.find_one({"_id": "d1"}) or {}).get("sandbox"),
                             60, "node d1's sandbox")["mode"]
            cf = "crawlfleet"
            add(cf, "first task after the node started", run_crawlfleet(p, marks))
            for _ in range(opts.rounds):
                add(cf, "steady state", run_crawlfleet(p, marks))
                for sd in peers:
                    add(sd.label, "steady state", run_scrapyd(sd, marks))
            for n in range(opts.deploys):
                p.deploy(PROJECTS / SPIDER, SPIDER, f"# deploy {n} a {time.time()}")
                add(cf, "first task after a deploy, run at once", run_crawlfleet(p, marks))
                p.deploy(PROJECTS / SPIDER, SPIDER, f"# deploy {n} b {time.time()}")
                time.sleep(opts.think)
                add(cf, f"first task after a deploy, run {opts.think:g} s later",
                    run_crawlfleet(p, marks))
                for sd in peers[:1]:
                    sd.deploy(SPIDER, PROJECTS / SPIDER)
                    add(sd.label, "first task after a deploy, run at once", run_scrapyd(sd, marks))
            if opts.idles:
                # the idle limit is a node setting: a second node has it lowered
                p.stop(node)
                p.node("d2", CRAWLFLEET_WARM_IDLE_SECONDS=IDLE_SECONDS, **node_env)
                add(cf, "first task after the node started", run_crawlfleet(p, marks))
                idle_case = f"first task after {IDLE_SECONDS + 3:g} s idle (idle limit {IDLE_SECONDS:g} s)"
                for _ in range(opts.idles):
                    time.sleep(IDLE_SECONDS + 3)
                    add(cf, idle_case, run_crawlfleet(p, marks))
                    for sd in peers[:1]:
                        add(sd.label, f"first task after {IDLE_SECONDS + 3:g} s idle",
                            run_scrapyd(sd, marks))
    finally:
        for sd in peers:
            sd.close()
        demo.stop()

    steady = percentile(rows[("crawlfleet", "steady state")], 0.5)
    out = []
    for (system, case), values in rows.items():
        p50 = percentile(values, 0.5)
        if system == "crawlfleet" and case == "steady state":
            goal = (f"p50 <= {STEADY_GOAL * 1000:.0f} ms: {'yes' if p50 <= STEADY_GOAL else 'NO'}; "
                    f"sandboxed ({sandbox}) p50 <= {SANDBOXED_GOAL * 1000:.0f} ms: "
                    f"{'yes' if p50 <= SANDBOXED_GOAL and sandbox != 'none' else 'NO'}")
        elif system == "crawlfleet" and "deploy" in case:
            ok = p50 <= steady + AFTER_DEPLOY_GOAL
            goal = f"p50 <= steady + 100 ms: {'yes' if ok else 'NO'}"
        else:
            goal = ""
        ratio = f"{p50 / steady:.1f}×" if system != "crawlfleet" else ""
        out.append([system, case, *summary(values), ratio, goal])
    version = scrapyd_version() if peers else "not run"
    table("Dispatch latency: request sent → the spider's own code (noop_scrapy: one page, "
          f"one item), one run at a time, interleaved; Scrapyd {version}",
          ["system", "case", "n", "p50", "p99", "max", "p50 vs crawlfleet steady", "goal"], out)

    def p50_ms(system, case):
        values = rows.get((system, case))
        return f"{percentile(values, 0.5) * 1000:.0f} ms" if values else "not run"

    figure = f"crawlfleet p50 **{steady * 1000:.0f} ms**, sandbox {sandbox} (p99 " \
             f"{percentile(rows[('crawlfleet', 'steady state')], 0.99) * 1000:.0f} ms, " \
             f"n={len(rows[('crawlfleet', 'steady state')])})"
    for sd_label in ("Scrapyd (shipped defaults)", "Scrapyd (poll_interval 0.2 s)"):
        values = rows.get((sd_label, "steady state"))
        if values:
            figure += f"; {sd_label} p50 {percentile(values, 0.5) * 1000:.0f} ms " \
                      f"({percentile(values, 0.5) / steady:.0f}× slower)"
    headline("dispatch, request → spider code, steady state", figure,
             f"p50 ≤ {STEADY_GOAL * 1000:.0f} ms; sandboxed ≤ {SANDBOXED_GOAL * 1000:.0f} ms",
             "yes" if steady <= STEADY_GOAL else
             "sandboxed only" if steady <= SANDBOXED_GOAL and sandbox != "none" else "no")
    at_once = rows.get(("crawlfleet", "first task after a deploy, run at once"))
    later = rows.get(("crawlfleet", f"first task after a deploy, run {opts.think:g} s later"))
    if at_once and later:
        later_p50 = percentile(later, 0.5)
        headline("first task after a deploy (cold start)",
                 f"run {opts.think:g} s after the deploy p50 **{later_p50 * 1000:.0f} ms**; run "
                 f"at once p50 {percentile(at_once, 0.5) * 1000:.0f} ms "
                 f"(n={len(later)} each); after an idle period "
                 f"{p50_ms('crawlfleet', next((c for s, c in rows if 'idle' in c and s == 'crawlfleet'), ''))}",
                 "≤ steady p50 + 100 ms",
                 "yes" if later_p50 <= steady + AFTER_DEPLOY_GOAL else "no")


if __name__ == "__main__":
    main()
