"""Item ingest: items/s into MongoDB through crawlfleet's SDK and Scrapy
pipeline, against raw pymongo insert_many (batches of 100) on the same server.

The crawlfleet paths run as on a node: the spider process holds no store
credential and hands its items over its task channel to the node side
(node/taskchannel.py, node/itemwriter.py, run here in this process), which
stores them.

    python benchmarks/bench_ingest.py [--items 20000] [--mongo-uri URI]

Goal: ≥ 0.8× raw insert_many.
"""

import argparse
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, table  # noqa: E402

import pymongo  # noqa: E402

from crawlfleet.config import Config  # noqa: E402
from crawlfleet.embedded import start_mongo  # noqa: E402
from crawlfleet.store import Store  # noqa: E402
from node.itemwriter import ItemWriter  # noqa: E402
from node.taskchannel import TaskChannel  # noqa: E402

PROJECT = ROOT / "benchmarks" / "projects" / "items_gen"


def docs(n):
    return [{"title": f"Book number {i}", "price": 10 + i % 90 + 0.99, "currency": "GBP",
             "availability": i % 20, "rating": 1 + i % 5, "upc": f"{i:016x}",
             "category": ("Travel", "Poetry", "History")[i % 3],
             "url": f"http://127.0.0.1:8900/catalogue/book_{i}/index.html"} for i in range(n)]


def raw_insert_many(uri, db, n):
    client = pymongo.MongoClient(uri)
    coll = client[db]["raw_loop"]
    items = docs(n)
    started = time.monotonic()
    for i in range(0, n, 100):
        coll.insert_many(items[i:i + 100])
    elapsed = time.monotonic() - started
    client.close()
    return n / elapsed


class NodeSide:
    """The node's end of one task: a running task document, its writer and channel."""

    def __init__(self, uri, db, collection):
        self.store = Store(Config.from_dict({"mongo_uri": uri, "mongo_db": db}))
        self.task_id = uuid.uuid4().hex[:20]
        self.store.tasks.insert_one({"_id": self.task_id, "status": "running",
                                     "session": "bench", "stats": {"items": 0}})
        self.writer = ItemWriter(self.store, {"_id": self.task_id,
                                              "results_collection": collection},
                                 "bench", lambda line: None)
        self.channel = TaskChannel(self.writer, print)

    def env(self):
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
        env.update({"CRAWLFLEET_TASK_ID": self.task_id,
                    "CRAWLFLEET_CHANNEL_FD": str(self.channel.spider_fd)})
        return env

    def run(self, argv, **kwargs):
        done = subprocess.run(argv, env=self.env(), pass_fds=[self.channel.spider_fd],
                              capture_output=True, text=True, check=True, **kwargs)
        self.channel.started()
        self.channel.close()
        self.writer.close()
        self.store.close()
        return done


def sdk_save_items(uri, db, n):
    """crawlfleet.sdk.save_items, as a plain-Python spider calls it."""
    code = (
        "import sys, time\n"
        "sys.path.insert(0, %r)\n"
        "from bench_ingest import docs\n"
        "from crawlfleet.sdk import save_items\n"
        "items = docs(%d)\n"
        "t = time.monotonic()\n"
        "for i in range(0, len(items), 100):\n"
        "    save_items(items[i:i + 100])\n"
        "print(time.monotonic() - t)\n" % (str(Path(__file__).parent), n))
    out = NodeSide(uri, db, "sdk_items").run([sys.executable, "-c", code]).stdout
    return n / float(out.strip().splitlines()[-1])


def scrapy_crawl(uri, db, n, through_crawlfleet):
    """items/s over the crawl (Scrapy's elapsed_time_seconds), items yielded without requests."""
    if through_crawlfleet:
        argv = [sys.executable, "-m", "crawlfleet.sdk.launch", "items_gen", "-a", f"count={n}"]
        done = NodeSide(uri, db, "scrapy_items").run(argv, cwd=PROJECT)
    else:
        argv = [sys.executable, "-m", "scrapy", "crawl", "items_gen", "-a", f"count={n}", "-s",
                'ITEM_PIPELINES={"items_gen.pipelines.RawMongoPipeline": 100}']
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
        env.update({"BENCH_MONGO_URI": uri, "BENCH_MONGO_DB": db})
        done = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True,
                              check=True)
    elapsed = float(re.search(r"'elapsed_time_seconds': ([0-9.]+)", done.stderr).group(1))
    scraped = int(re.search(r"'item_scraped_count': (\d+)", done.stderr).group(1))
    return scraped / elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--mongo-uri")
    parser.add_argument("--home", default="./.bench-ingest")
    opts = parser.parse_args()
    mongo = None
    uri = opts.mongo_uri
    if uri is None:
        home = Path(opts.home).resolve()
        home.mkdir(parents=True, exist_ok=True)
        mongo, uri = start_mongo(home, open(home / "nx.out", "ab"))
    db = "bench_ingest_" + uuid.uuid4().hex[:6]
    try:
        raw = raw_insert_many(uri, db, opts.items)
        sdk = sdk_save_items(uri, db, opts.items)
        raw_scrapy = scrapy_crawl(uri, db, opts.items, through_crawlfleet=False)
        cf_scrapy = scrapy_crawl(uri, db, opts.items, through_crawlfleet=True)
        client = pymongo.MongoClient(uri)
        stored = client[db]["sdk_items"].estimated_document_count()
        client.drop_database(db)
        client.close()
    finally:
        if mongo is not None:
            mongo.terminate()
            mongo.wait(15)
    table(f"Item ingest: {opts.items} book-like items into the same MongoDB-wire server "
          f"({'given' if opts.mongo_uri else 'embedded nx-27017'}); items stored by crawlfleet: {stored}",
          ["path", "items/s", "vs its yardstick", "goal ≥ 0.8×"],
          [["raw pymongo insert_many (batches of 100), one process", f"{raw:.0f}", "1.00", "—"],
           ["crawlfleet.sdk.save_items (batches of 100)", f"{sdk:.0f}", f"{sdk / raw:.2f}",
            "yes" if sdk / raw >= 0.8 else "no"],
           ["Scrapy crawl + a raw insert_many pipeline", f"{raw_scrapy:.0f}", "1.00", "—"],
           ["Scrapy crawl + crawlfleet's pipeline", f"{cf_scrapy:.0f}",
            f"{cf_scrapy / raw_scrapy:.2f}", "yes" if cf_scrapy / raw_scrapy >= 0.8 else "no"]])


if __name__ == "__main__":
    main()
