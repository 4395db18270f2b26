"""Soak: push many short tasks through the web API, a master and two nodes,
sample the resident memory of each process, and report the growth after
warm-up and the throughput.

    python benchmarks/soak.py [--tasks 10000] [--broker embedded|redis|rabbitmq]
                              [--runners 4] [--home ./.bench-soak]

Goal: memory growth after warm-up under 20% for every process.
"""

import argparse
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import Platform, noop_project, percentile, rss_mb, table  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10000)
    parser.add_argument("--broker", default="embedded")
    parser.add_argument("--runners", type=int, default=4)
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
        samples = {name: [] for name in procs}
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                for name, proc in procs.items():
                    samples[name].append(rss_mb(proc.pid))
                stop.wait(2.0)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        submitted = 0
        latencies = []
        while submitted < opts.tasks:
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
        p.wait(lambda: p.store.tasks.count_documents(
            {"status": {"$in": ["pending", "running"]}}) == 0, 3600, "all tasks done")
        elapsed = time.monotonic() - started
        stop.set()
        sampler.join()
        statuses = {d["_id"]: d["n"] for d in p.store.tasks.aggregate(
            [{"$group": {"_id": "$status", "n": {"$sum": 1}}}])}

    rows = []
    for name, values in samples.items():
        # after the first fifth of the run (a very short run has few samples)
        warm = values[min(len(values) - 1, max(1, len(values) // 5))]
        peak_late = max(values[len(values) // 2:])
        growth = (values[-1] - warm) / warm * 100 if warm else 0.0
        rows.append([name, f"{values[0]:.0f}", f"{warm:.0f}", f"{peak_late:.0f}",
                     f"{values[-1]:.0f}", f"{growth:+.1f}%", "yes" if growth < 20 else "NO"])
    table(f"Soak: {opts.tasks} no-op tasks, {opts.broker} broker, 2 nodes × {opts.runners} runners "
          f"— RSS in MB (process group)",
          ["process", "start", "after warm-up", "peak 2nd half", "end", "growth", "< 20%"], rows)
    table("Throughput", ["tasks", "statuses", "wall time", "tasks/s", "API run p50", "API run p99"],
          [[opts.tasks, ", ".join(f"{k}={v}" for k, v in sorted(statuses.items())),
            f"{elapsed:.0f} s", f"{opts.tasks / elapsed:.1f}",
            f"{percentile(latencies, 0.5) * 1000:.0f} ms",
            f"{percentile(latencies, 0.99) * 1000:.0f} ms"]])


if __name__ == "__main__":
    main()
