"""A realistic crawl through crawlfleet, through Scrapyd 1.6 and by a bare
`scrapy crawl`, in the same run, interleaved: the bundled `books` spider over
the bundled demo site grown to --products books (a page per book, a listing
page per 20, the slow page and the broken links; the table counts them), every
item stored by all three with the same pymongo pipeline
(crawlfleet.sdk.scrapy.ItemPipeline) into the same store.

    python benchmarks/bench_overhead.py [--products 1900] [--repeat 3] [--tuned] [--no-peers]

Scrapyd runs with its shipped defaults; --tuned adds a second Scrapyd with
poll_interval 0.2 s (which only shortens its wait before the crawl starts).

Wall time: crawlfleet from the run request to the final status in the ledger;
Scrapyd from schedule.json to the job listed as finished; bare Scrapy from
process start to exit. Every crawl is counted (the first crawlfleet one
starts the project's warm process).

Goal: crawlfleet's median wall time <= 1.02× bare Scrapy's.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Platform, headline, table, wait_until  # noqa: E402
from peers import Scrapyd, scrapyd_version  # noqa: E402

FINAL = ["finished", "error", "cancelled", "timeout", "abnormal"]
PIPELINE = {"benchmarks.mongo_pipeline.MongoPipeline": 1000}
BOOKS = ROOT / "spiders" / "books"
GOAL = 1.02


def stats_of(log_text):
    pages = re.search(r"'response_received_count': (\d+)", log_text)
    return int(pages.group(1)) if pages else 0


def bare(p, demo_url, n):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
    env.update({"CRAWLFLEET_DEMO_URL": demo_url, "PYTHONPATH": str(ROOT),
                **pipeline_env(p, "results_bare", f"bare-{n}")})
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "scrapy", "crawl", "books", "-s",
                           f"ITEM_PIPELINES={json.dumps(PIPELINE)}"],
                          cwd=BOOKS, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - started
    if done.returncode:
        raise SystemExit(f"benchmark: bare scrapy failed:\n{done.stderr[-2000:]}")
    items = p.store.results("results_bare").count_documents({"_tid": f"bare-{n}"})
    return elapsed, stats_of(done.stderr), items


def pipeline_env(p, collection, tid):
    """Where benchmarks/mongo_pipeline.py stores a peer's items."""
    return {"BENCH_MONGO_URI": p.config.mongo_uri, "BENCH_MONGO_DB": p.config.mongo_db,
            "BENCH_COLLECTION": collection, "BENCH_TID": tid}


def crawlfleet(p):
    started = time.monotonic()
    task_id = p.api.run("books")["task_ids"][0]
    task = wait_until(lambda: p.store.tasks.find_one({"_id": task_id, "status": {"$in": FINAL}}),
                      900, "crawl done")
    elapsed = time.monotonic() - started
    if task["status"] != "finished":
        raise SystemExit(f"benchmark: the crawl ended {task['status']}: {task.get('error')}")
    items = p.store.results("results_books").count_documents({"_tid": task_id})
    return elapsed, task["stats"].get("pages", 0), items


def scrapyd(p, sd, collection):
    before = p.store.results(collection).estimated_document_count()
    started = time.monotonic()
    job = sd.schedule("books", "books", settings={"ITEM_PIPELINES": json.dumps(PIPELINE)})
    wait_until(lambda: sd.finished("books", job), 900, "Scrapyd crawl done")
    elapsed = time.monotonic() - started
    items = p.store.results(collection).estimated_document_count() - before
    return elapsed, stats_of(sd.job_log("books", "books", job)), items


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1900)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--tuned", action="store_true", help="also Scrapyd, poll_interval 0.2 s")
    parser.add_argument("--no-peers", action="store_true", help="crawlfleet and bare Scrapy only")
    parser.add_argument("--home", default="./.bench-overhead")
    opts = parser.parse_args()
    os.environ["CRAWLFLEET_DEMO_PRODUCTS"] = str(opts.products)  # read when the site is imported
    from spiders.demosite.server import start_in_thread

    home = Path(opts.home).resolve()
    shutil.rmtree(home, ignore_errors=True)
    demo = start_in_thread()
    runs = {}
    peers = []
    try:
        with Platform(home / "crawlfleet") as p:
            p.master()
            p.web()
            p.node("o1", CRAWLFLEET_DEMO_URL=demo.url)
            if not opts.no_peers:
                kinds = [("results_scrapyd", None)] + ([("results_scrapyd_tuned", 0.2)] if opts.tuned else [])
                for label, poll in kinds:
                    env = {"PYTHONPATH": str(ROOT), "CRAWLFLEET_DEMO_URL": demo.url,
                           **pipeline_env(p, label, label)}
                    sd = Scrapyd(home / label, env, poll_interval=poll)
                    sd.collection = label
                    sd.deploy("books", BOOKS)
                    peers.append(sd)
            for n in range(opts.repeat):
                runs.setdefault("bare `scrapy crawl`", []).append(bare(p, demo.url, n))
                runs.setdefault("crawlfleet (shipped defaults)", []).append(crawlfleet(p))
                for sd in peers:
                    runs.setdefault(sd.label, []).append(scrapyd(p, sd, sd.collection))
    finally:
        for sd in peers:
            sd.close()
        demo.stop()

    base = statistics.median(r[0] for r in runs["bare `scrapy crawl`"])
    rows = []
    for name, values in runs.items():
        t = statistics.median(r[0] for r in values)
        pages, items = values[-1][1], values[-1][2]
        goal = ""
        if name.startswith("crawlfleet"):
            goal = f"≤ {GOAL}× bare: {'yes' if t / base <= GOAL else 'NO'}"
        rows.append([name, len(values), ", ".join(f"{r[0]:.1f}" for r in values), f"{t:.2f} s",
                     f"{t / base:.2f}", pages, ", ".join(str(r[2]) for r in values),
                     f"{pages / t:.0f}", goal])
    version = scrapyd_version() if peers else "not run"
    table(f"Realistic crawl: `books` over the demo site grown to {opts.products} books, items "
          f"stored into the same store (crawlfleet by its node, the others by a plain insert_many pipeline), interleaved; Scrapyd "
          f"{version}",
          ["how", "n", "wall time of each (s)", "median", "vs bare", "pages", "items stored",
           "pages/s", "goal"], rows)
    cf = statistics.median(r[0] for r in runs["crawlfleet (shipped defaults)"])
    figure = (f"{runs['bare `scrapy crawl`'][-1][1]:,} pages, {runs['bare `scrapy crawl`'][-1][2]:,} "
              f"items stored: crawlfleet **{cf / base:.2f}×** bare Scrapy ({cf:.1f} s vs {base:.1f} s)")
    for sd in peers:
        t = statistics.median(r[0] for r in runs[sd.label])
        figure += f"; {sd.label} {t / base:.2f}×"
    headline("realistic crawl, request → end, median", figure, f"≤ {GOAL}× bare",
             "yes" if cf / base <= GOAL else "no")


if __name__ == "__main__":
    main()
