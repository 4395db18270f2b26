"""Run every benchmark in turn and print their tables.

    python benchmarks/run_all.py [--compare] [--quick] [--only a,b]

--compare also installs Scrapyd 1.6 (benchmarks/.peers/, from PyPI, once) and
measures it in the same run as crawlfleet (dispatch, throughput, the
realistic crawl), then writes benchmarks/REPORT.md — every table, the machine,
the load average sampled during each benchmark, the commit — and rewrites the
summary block of the README from it. Without --compare the peers are skipped
and nothing is written. --quick uses smaller counts (a few minutes); the full
plan is sized to take about 25 minutes on an otherwise idle 2-core machine
(longer under load: the report records the time and the load). The report is
rewritten after each benchmark, so a run stopped half-way keeps what it measured.

Each benchmark is its own script and runs alone: see the docstring at the top
of each.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REPORT = HERE / "REPORT.md"
README = ROOT / "README.md"
BEGIN = "<!-- benchmarks:begin (written by benchmarks/run_all.py --compare; do not edit) -->"
END = "<!-- benchmarks:end -->"
PEERS = {"bench_dispatch.py", "bench_throughput.py", "bench_overhead.py"}

# (title, script, its options in the full plan, in --quick; None: left out of --quick).
# seed_data.py drops and re-seeds the API/UI dataset, smaller than its default.
PLAN = [
    ("dispatch latency", "bench_dispatch.py",
     "--rounds 12 --deploys 3 --idles 2", "--rounds 4 --deploys 1 --idles 1"),
    ("short-task throughput and CPU per task", "bench_throughput.py",
     "--tasks 40 --rounds 2", "--tasks 24 --rounds 1"),
    ("realistic crawl", "bench_overhead.py", "--products 1900 --repeat 2", "--products 1500 --repeat 1"),
    ("item ingest", "bench_ingest.py", "--items 20000", "--items 5000"),
    ("scheduler", "bench_scheduler.py", "--seconds 20 --count 5000", "--seconds 10 --count 2000"),
    ("distributed crawls", "bench_frontier.py", "--repeat 3", "--repeat 1 --max-workers 3"),
    ("seed the API/UI dataset", "seed_data.py",
     "--home .bench-report --results 100000 --tasks 20000", None),
    ("JSON API at scale", "bench_api.py", "--home .bench-report --runs 20", None),
    ("web UI at scale", "bench_ui.py", "--home .bench-report --runs 20", None),
    ("slow clients", "bench_slow_clients.py", "", "--idle 100 --streams 50"),
    ("soak", "soak.py", "--tasks 1500", "--tasks 300"),
]


def plan_of(quick):
    """[(title, argv)] of the full plan, or of the quick one."""
    return [(title, [script, *(quick_options if quick else options).split()])
            for title, script, options, quick_options in PLAN
            if not quick or quick_options is not None]


def machine():
    info = {"cores": os.cpu_count(), "platform": platform.platform(),
            "python": platform.python_version()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines()
                           if line.startswith("model name"))
    except (OSError, StopIteration):
        info["cpu"] = platform.processor() or "unknown"
    try:
        kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal:"))
        info["memory"] = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        info["memory"] = "unknown"
    return info


def commit():
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    sha = git("rev-parse", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--untracked-files=no")
    return sha[:12] + (" (with uncommitted changes)" if dirty else "")


class LoadSampler:
    """The 1-minute load average, sampled every 5 s while a benchmark runs."""

    def __init__(self):
        self.samples = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            self.samples.append(os.getloadavg()[0])
            if self.stop.wait(5.0):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()

    def describe(self):
        s = self.samples or [os.getloadavg()[0]]
        return f"{min(s):.1f}–{max(s):.1f} (mean {sum(s) / len(s):.1f}, {len(s)} samples)"


def run_plan(plan, compare, after_each=None):
    results = []
    for title, argv in plan:
        if not compare and argv[0] in PEERS:
            argv = [*argv, "--no-peers"]
        print(f"\n=== {title}: python benchmarks/{' '.join(argv)}", flush=True)
        with tempfile.NamedTemporaryFile("r", suffix=".jsonl") as rec:
            started = time.monotonic()
            with LoadSampler() as load:
                code = subprocess.call([sys.executable, str(HERE / argv[0]), *argv[1:]], cwd=ROOT,
                                       env=dict(os.environ, BENCH_RECORD=rec.name))
            elapsed = time.monotonic() - started
            entries = [json.loads(line) for line in rec.read().splitlines() if line.strip()]
        print(f"=== {title}: {'done' if code == 0 else f'FAILED ({code})'} in {elapsed:.0f} s, "
              f"load average {load.describe()}", flush=True)
        results.append({"title": title, "argv": argv, "code": code, "elapsed": elapsed,
                        "load": load.describe(), "entries": entries})
        if after_each is not None:
            after_each(results)  # a run stopped half-way still leaves what it measured
    return results


def markdown_table(header, rows):
    esc = lambda c: str(c).replace("|", "\\|")  # noqa: E731
    out = ["| " + " | ".join(esc(h) for h in header) + " |",
           "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(esc(c) for c in row) + " |" for row in rows]
    return "\n".join(out)


def context_line(info, sha, when, results):
    lows = [float(r["load"].split("–")[0]) for r in results]
    highs = [float(r["load"].split("–")[1].split()[0]) for r in results]
    return (f"Measured {when} at commit `{sha}` on {info['cores']} cores ({info['cpu']}), "
            f"{info['memory']}, {info['platform']}, Python {info['python']}, under a 1-minute "
            f"load average of {min(lows):.1f}–{max(highs):.1f} (other work shared the machine; "
            f"each row gives the load it was measured under).")


def write_report(results, info, sha, when, quick, unfinished=0):
    lines = ["# crawlfleet benchmark report", "",
             "Written by `python benchmarks/run_all.py --compare"
             + (" --quick" if quick else "") + "`: do not edit by hand; run it again.", ""]
    if unfinished:
        lines += [f"**Incomplete: {unfinished} benchmark(s) of the plan still to run.**", ""]
    lines += [f"- when: {when}", f"- commit: `{sha}`",
              f"- machine: {info['cores']} cores, {info['cpu']}, {info['memory']} memory, "
              f"{info['platform']}, Python {info['python']}",
              f"- total time: {sum(r['elapsed'] for r in results) / 60:.1f} min", "",
              "Every process — store, broker, web, master, nodes, Scrapyd, spiders, the demo "
              "site — ran on this one machine, sharing its cores with whatever else ran at the "
              "time; the load average below is the 1-minute one, sampled every 5 s during each "
              "benchmark. Peers were measured in the same run as crawlfleet, interleaved.", "",
              "## Summary", "", summary_table(results), ""]
    for r in results:
        outcome = "ok" if r["code"] == 0 else f"**FAILED (exit status {r['code']})**"
        lines += [f"## {r['title']}", "",
                  f"`python benchmarks/{' '.join(r['argv'])}` — {outcome}, "
                  f"{r['elapsed']:.0f} s, load average {r['load']}", ""]
        for e in r["entries"]:
            if e["kind"] != "table":
                continue
            lines += [f"**{e['title']}**", "", markdown_table(e["header"], e["rows"]), ""]
            if e.get("note"):
                lines += [e["note"], ""]
    REPORT.write_text("\n".join(lines))


def summary_table(results):
    rows = []
    for r in results:
        heads = [e for e in r["entries"] if e["kind"] == "headline"]
        if r["code"] and not heads:
            rows.append([r["title"], f"**FAILED** (exit status {r['code']})", "", "", r["load"],
                         f"`{r['argv'][0]}`"])
        for e in heads:
            rows.append([e["what"], e["figure"], e["goal"], e["met"], r["load"],
                         f"`{r['argv'][0]}`"])
    return markdown_table(["what", "figure", "goal", "met", "load average during it", "script"],
                          rows)


def write_readme_block(results, info, sha, when):
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README has no {BEGIN!r} … {END!r} block: not rewritten", file=sys.stderr)
        return
    block = "\n".join([
        BEGIN, "",
        context_line(info, sha, when, results) + " Full tables: "
        "[benchmarks/REPORT.md](benchmarks/REPORT.md).", "",
        summary_table(results), "", END])
    head, rest = text.split(BEGIN, 1)
    README.write_text(head + block + rest.split(END, 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--compare", action="store_true",
                        help="measure Scrapyd in the same run; write REPORT.md and the README block")
    parser.add_argument("--only", help="comma-separated script names to run")
    opts = parser.parse_args()
    plan = plan_of(opts.quick)
    if opts.only:
        wanted = set(opts.only.split(","))
        plan = [(name, argv) for name, argv in plan if argv[0] in wanted or argv[0][:-3] in wanted]
    if opts.compare:
        sys.path.insert(0, str(HERE))
        from peers import scrapyd_version
        print(f"Scrapyd {scrapyd_version()} ready in benchmarks/.peers/", flush=True)
    info, sha = machine(), commit()
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    partial = (lambda done: write_report(done, info, sha, when, opts.quick,
                                         unfinished=len(plan) - len(done)))
    results = run_plan(plan, opts.compare, partial if opts.compare else None)
    if opts.compare:
        write_report(results, info, sha, when, opts.quick)
        print(f"\nwrote {REPORT.relative_to(ROOT)}", flush=True)
        if not opts.only:
            write_readme_block(results, info, sha, when)
            print(f"rewrote the benchmark block of {README.relative_to(ROOT)}", flush=True)
    failed = [r["title"] for r in results if r["code"]]
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
