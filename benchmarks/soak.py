"""Soak: push many short tasks through the web API, a master and two nodes,
sample the resident memory of each process, and report the growth after
warm-up and the throughput.

    python benchmarks/soak.py [--tasks 10000] [--broker embedded|redis|rabbitmq]
                              [--runners N] [--home ./.bench-soak]

Goal: memory growth after warm-up under 20% for every process. A process
that died during the run fails the soak (exit status 1, "DIED" in its row),
and so does a task that did not finish.
"""

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Platform, headline, noop_project, percentile, rss_mb, table  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--broker", default="embedded")
    parser.add_argument("--runners", type=int, help="run slots a node (default: as shipped)")
    parser.add_argument("--home", default="./.bench-soak")
    parser.add_argument("--batch", type=int, default=200)
    opts = parser.parse_args()

    home = Path(opts.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    spiders = home / "spiders"
    noop_project(spiders)
    with Platform(home, broker=opts.broker, spiders_path=str(spiders)) as p:
        procs = {"master": p.master(), "web": p.web(),
                 "node-1": p.node("soak-1", opts.runners), "node-2": p.node("soak-2", opts.runners)}
        runners = p.store.nodes.find_one({"_id": "soak-1"})["max_runners"]
        samples = {name: [] for name in procs}
        died = {}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for name, proc in procs.items():
                    if proc.poll() is not None:
                        died.setdefault(name, f"exit status {proc.returncode}")
                    elif name not in died:
                        samples[name].append(rss_mb(proc.pid))
                stop.wait(2.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        submitted = 0
        latencies = []
        while submitted < opts.tasks and not died:
            # keep the queue a few batches deep, as a steady stream of requests would
            pending = p.store.tasks.count_documents({"status": "pending"})
            if pending > opts.batch * 2:
                time.sleep(0.2)
                continue
            for _ in range(min(opts.batch, opts.tasks - submitted)):
                t0 = time.monotonic()
                p.api.run("noop")
                latencies.append(time.monotonic() - t0)
                submitted += 1
        p.wait(lambda: died or p.store.tasks.count_documents(
            {"status": {"$in": ["pending", "running"]}}) == 0, 3600, "all tasks done")
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        for name, proc in procs.items():
            if proc.poll() is not None:
                died.setdefault(name, f"exit status {proc.returncode}")
        statuses = {d["_id"]: d["n"] for d in p.store.tasks.aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}}}])}

    rows = []
    for name, values in samples.items():
        if name in died or not values:
            rows.append([name, f"{values[0]:.0f}" if values else "—", "—", "—", "—", "—",
                         f"DIED ({died.get(name, 'no sample')})"])
            continue
        # after the first fifth of the run (a very short run has few samples)
        warm = values[min(len(values) - 1, max(1, len(values) // 5))]
        peak_late = max(values[len(values) // 2:])
        growth = (values[-1] - warm) / warm * 100
        rows.append([name, f"{values[0]:.0f}", f"{warm:.0f}", f"{peak_late:.0f}",
                     f"{values[-1]:.0f}", f"{growth:+.1f}%", "yes" if growth < 20 else "NO"])
    table(f"Soak: {opts.tasks} no-op tasks, {opts.broker} broker, 2 nodes × {runners} runners "
          f"— RSS in MB (process group)",
          ["process", "start", "after warm-up", "peak 2nd half", "end", "growth", "< 20%"], rows)
    unfinished = sum(n for status, n in statuses.items() if status != "finished")
    table("Throughput", ["tasks", "statuses", "wall time", "tasks/s", "API run p50", "API run p99"],
          [[opts.tasks, ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
            f"{elapsed:.0f} s", f"{opts.tasks / elapsed:.1f}",
            f"{percentile(latencies, 0.5) * 1000:.0f} ms",
            f"{percentile(latencies, 0.99) * 1000:.0f} ms"]])
    if died or unfinished:
        what = [f"{name} died ({why})" for name, why in died.items()]
        if unfinished:
            what.append(f"{unfinished} task(s) did not finish")
        headline("soak", "FAILED: " + "; ".join(what), "no process dies", "NO")
        sys.exit("soak FAILED: " + "; ".join(what))
    worst = max(rows, key=lambda r: float(r[5].rstrip("%")))
    headline(f"soak: {opts.tasks:,} no-op tasks through the API, a master and 2 nodes",
             f"every process alive, every task finished; largest RSS growth after warm-up "
             f"{worst[0]} **{worst[5]}**; {opts.tasks / elapsed:.1f} tasks/s",
             "growth < 20 %", "yes" if all(r[6] == "yes" for r in rows) else "no")


if __name__ == "__main__":
    main()
