"""Run every benchmark in turn and print their tables.

    python benchmarks/run_all.py [--quick]

--quick uses smaller counts (a few minutes in all); without it the counts are
the ones the figures in the README were measured with. Each benchmark is its
own script and can be run alone: see the docstring at the top of each.
"""

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ("dispatch latency", ["bench_dispatch.py", "--runs", "100"]),
    ("short-task throughput", ["bench_throughput.py", "--tasks", "500"]),
    ("crawl overhead", ["bench_overhead.py", "--repeat", "5"]),
    ("item ingest", ["bench_ingest.py", "--items", "20000"]),
    ("scheduler", ["bench_scheduler.py"]),
    ("distributed crawls", ["bench_frontier.py", "--repeat", "3"]),
    ("seed 1M results / 100k tasks", ["seed_data.py"]),
    ("web UI at scale", ["bench_ui.py"]),
    ("JSON API at scale", ["bench_api.py"]),
    ("soak", ["soak.py", "--tasks", "10000"]),
]
QUICK = [
    ("dispatch latency", ["bench_dispatch.py", "--runs", "30"]),
    ("short-task throughput", ["bench_throughput.py", "--tasks", "100", "--skip-fresh"]),
    ("crawl overhead", ["bench_overhead.py", "--repeat", "2"]),
    ("item ingest", ["bench_ingest.py", "--items", "5000"]),
    ("scheduler", ["bench_scheduler.py", "--seconds", "10", "--count", "2000"]),
    ("distributed crawls", ["bench_frontier.py", "--repeat", "1", "--max-workers", "3"]),
    ("soak", ["soak.py", "--tasks", "500"]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", help="comma-separated script names to run")
    opts = parser.parse_args()
    plan = QUICK if opts.quick else FULL
    if opts.only:
        wanted = set(opts.only.split(","))
        plan = [(name, argv) for name, argv in plan if argv[0] in wanted or argv[0][:-3] in wanted]
    failed = []
    for name, argv in plan:
        print(f"\n=== {name}: python benchmarks/{' '.join(argv)}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]], cwd=HERE.parent)
        print(f"=== {name}: {'done' if code == 0 else f'FAILED ({code})'} "
              f"in {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
