"""Item ingest: items/s into MongoDB through crawlfleet's SDK and Scrapy
pipeline, against raw pymongo insert_many (batches of 100) on the same server,
every collection with the indexes a real results collection has (`_tid`, `_at`);
deduplicated ingest (upserts on a unique `url` index through the batch writer,
fenced) against the same raw insert_many; and SQL ingest (a spider's table in
PostgreSQL and MariaDB, plain and upserted) against the driver's raw
executemany into an equivalent table on the same server.

The crawlfleet paths run as on a node: the spider process holds no store
credential and hands its items over its task channel to the node side
(node/taskchannel.py, node/itemwriter.py, run here in this process), which
stores them.

    python benchmarks/bench_ingest.py [--items 20000] [--mongo-uri URI]
        [--postgres-url URL] [--mysql-url URL] [--no-sql | --sql-only | --dedup-only]
        [--sql-rounds 3]

`--dedup-only` measures only raw insert_many and the deduplicated MongoDB
ingest (a minute instead of several on nx-27017).

Goals: ≥ 0.8× raw insert_many (SDK, Scrapy pipeline); upsert ingest ≥ 0.5×.
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

from harness import ROOT, rate_table, ratio_headline  # noqa: E402

import pymongo  # noqa: E402

from crawlfleet.config import Config  # noqa: E402
from crawlfleet.embedded import start_mongo  # noqa: E402
from crawlfleet.store import RESULTS_INDEXES  # noqa: E402
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
                'ITEM_PIPELINES={"benchmarks.mongo_pipeline.MongoPipeline": 100}']
        env = {k: v for k, v in os.environ.items() if not k.startswith("CRAWLFLEET_")}
        env.update({"BENCH_MONGO_URI": uri, "BENCH_MONGO_DB": db, "BENCH_COLLECTION": "raw_items",
                    "PYTHONPATH": str(ROOT)})
        done = subprocess.run(argv, cwd=PROJECT, env=env, capture_output=True, text=True,
                              check=True)
    elapsed = float(re.search(r"'elapsed_time_seconds': ([0-9.]+)", done.stderr).group(1))
    scraped = int(re.search(r"'item_scraped_count': (\d+)", done.stderr).group(1))
    return scraped / elapsed


def writer_ingest(uri, db, n, policy):
    """crawlfleet.results.write_batch in batches of 100, fenced by a running task;
    with `policy`, a first pass of new keys and a second of the same keys."""
    from crawlfleet.models import new_task
    from crawlfleet.results.writer import TaskWriter, write_batch

    client = pymongo.MongoClient(uri)
    database = client[db]
    coll = f"writer_{'dedup' if policy else 'plain'}"
    task = new_task({"_id": "bench", "project": "p", "version": "v", "kind": "command",
                     "results_collection": coll}, target="any")
    task.update(status="running", session="bench-session", node_id="bench-node")
    database.tasks.insert_one(task)
    writer = TaskWriter.from_task(task, policy)
    rates = []
    for _ in range(2 if policy else 1):
        items = docs(n)
        started = time.monotonic()
        for i in range(0, n, 100):
            write_batch(database, writer, items[i:i + 100])
        rates.append(n / (time.monotonic() - started))
    stored = database[coll].estimated_document_count()
    client.close()
    return rates, stored


SQL_COLUMNS = ("title", "price", "currency", "availability", "rating", "upc", "category", "url")


def sql_ingest(url, n, rounds=3):
    """Median items/s over `rounds` interleaved rounds of (raw executemany, crawlfleet
    insert, crawlfleet upsert of new keys, the same upsert again), each round
    into fresh tables, so a change of the machine's load hits every path alike."""
    import statistics

    from crawlfleet.results.sql import make_engine

    engine = make_engine(url)
    items = [dict(d, _tid="bench", _at=time.time() + i * 1e-6) for i, d in enumerate(docs(n))]
    try:
        samples = [sql_round(engine, items) for _ in range(rounds)]
    finally:
        engine.dispose()
    return [statistics.median(column) for column in zip(*samples)]


def sql_round(engine, items):
    import json as jsonlib

    import sqlalchemy as sa

    from crawlfleet.results.dedup import DedupPolicy
    from crawlfleet.results.sql import SqlTable

    n = len(items)
    suffix = uuid.uuid4().hex[:6]
    raw_name, plain_name, dedup_name = (f"bench_raw_{suffix}", f"bench_plain_{suffix}",
                                        f"bench_dedup_{suffix}")
    json_type = "JSONB" if engine.dialect.name == "postgresql" else "JSON"
    double = "DOUBLE PRECISION" if engine.dialect.name == "postgresql" else "DOUBLE"
    with engine.begin() as conn:
        # the columns crawlfleet's table has, and its `_tid` index; no dedup key
        conn.execute(sa.text(
            f"CREATE TABLE {raw_name} (_rowid BIGINT PRIMARY KEY "
            f"{'GENERATED ALWAYS AS IDENTITY' if engine.dialect.name == 'postgresql' else 'AUTO_INCREMENT'}, "
            f"_tid VARCHAR(64), _at {double}, item {json_type}, title TEXT, price {double}, "
            "currency TEXT, availability BIGINT, rating BIGINT, upc TEXT, category TEXT, url TEXT)"))
        conn.execute(sa.text(f"CREATE INDEX ix_{raw_name}__tid ON {raw_name} (_tid)"))
    placeholders = ", ".join(["%s"] * (3 + len(SQL_COLUMNS)))
    insert = (f"INSERT INTO {raw_name} (_tid, _at, item, {', '.join(SQL_COLUMNS)}) "
              f"VALUES ({placeholders})")
    try:
        raw_conn = engine.raw_connection()
        try:
            cursor = raw_conn.cursor()
            started = time.monotonic()
            for i in range(0, n, 500):
                rows = [(it["_tid"], it["_at"], jsonlib.dumps(it), *[it[c] for c in SQL_COLUMNS])
                        for it in items[i:i + 500]]
                cursor.executemany(insert, rows)
                raw_conn.commit()
            raw = n / (time.monotonic() - started)
        finally:
            raw_conn.close()
        rates = [raw]
        for name, policy, passes in ((plain_name, None, 1),
                                     (dedup_name, DedupPolicy(("url",), "overwrite"), 2)):
            table = SqlTable(engine, name)
            for _ in range(passes):
                started = time.monotonic()
                for i in range(0, n, 500):
                    table.write(items[i:i + 500], policy)
                rates.append(n / (time.monotonic() - started))
        return rates
    finally:
        with engine.begin() as conn:
            for name in (raw_name, plain_name, dedup_name):
                conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))


# (rate's key, row label, its yardstick's key, goal or None); a row shows when measured
MONGO_ROWS = [
    ("raw", "raw pymongo insert_many (batches of 100), one process", "raw", None),
    ("sdk", "crawlfleet.sdk.save_items (batches of 100)", "raw", 0.8),
    ("raw_scrapy", "Scrapy crawl + a raw insert_many pipeline", "raw_scrapy", None),
    ("cf_scrapy", "Scrapy crawl + crawlfleet's pipeline", "raw_scrapy", 0.8),
    ("fenced", "write_batch, fenced, no dedup (batches of 100)", "raw", 0.8),
    ("upsert_new", "write_batch upsert, overwrite on `url`, every key new", "raw", 0.5),
    ("upsert_again", "write_batch upsert, every key stored (updates)", "raw", 0.5),
]


def versus(rate, yardstick, what):
    """'**0.82×** what (1,234 vs 1,500 items/s)': a headline's figure."""
    return f"**{rate / yardstick:.2f}×** {what} ({rate:,.0f} vs {yardstick:,.0f} items/s)"


def measure_mongo(opts):
    """Items/s of each MongoDB path measured (all, or with --dedup-only raw and
    the upserts), the items the SDK stored, and the rows two upsert passes left."""
    from crawlfleet.results.dedup import DedupPolicy

    mongo = None
    uri = opts.mongo_uri
    if uri is None:
        home = Path(opts.home).resolve()
        home.mkdir(parents=True, exist_ok=True)
        mongo, uri = start_mongo(home, open(home / "nx.out", "ab"))
    db = "bench_ingest_" + uuid.uuid4().hex[:6]
    rates, stored = {}, None
    try:
        with pymongo.MongoClient(uri) as indexed:
            for name in ("raw_loop", "raw_items", "sdk_items"):
                indexed[db][name].create_indexes(RESULTS_INDEXES)
        rates["raw"] = raw_insert_many(uri, db, opts.items)
        if not opts.dedup_only:
            rates["sdk"] = sdk_save_items(uri, db, opts.items)
            rates["raw_scrapy"] = scrapy_crawl(uri, db, opts.items, through_crawlfleet=False)
            rates["cf_scrapy"] = scrapy_crawl(uri, db, opts.items, through_crawlfleet=True)
            (rates["fenced"],), _ = writer_ingest(uri, db, opts.items, None)
        (rates["upsert_new"], rates["upsert_again"]), dedup_rows = writer_ingest(
            uri, db, opts.items, DedupPolicy(("url",), "overwrite"))
        with pymongo.MongoClient(uri) as client:
            if not opts.dedup_only:
                stored = client[db]["sdk_items"].estimated_document_count()
            client.drop_database(db)
    finally:
        if mongo is not None:
            mongo.terminate()
            mongo.wait(15)
    return rates, stored, dedup_rows


def mongo_ingest(opts):
    rates, stored, dedup_rows = measure_mongo(opts)
    server = "given" if opts.mongo_uri else "embedded nx-27017"
    sdk_stored = "" if stored is None else f"; items stored by the SDK: {stored}"
    rate_table(f"Item ingest: {opts.items} book-like items into the same MongoDB-wire server "
               f"({server}), collections indexed on `_tid` and `_at`; the upserts on a unique "
               f"`url` index, rows after two passes: {dedup_rows}{sdk_stored}",
               "its yardstick",
               [(label, rates[key], rates[yardstick], goal)
                for key, label, yardstick, goal in MONGO_ROWS if key in rates])
    raw = rates["raw"]
    if "sdk" in rates:
        ratio_headline(f"item ingest, {opts.items:,} items, indexed collections",
                       f"SDK `save_items` {versus(rates['sdk'], raw, 'raw `insert_many`')}; "
                       "Scrapy through crawlfleet's pipeline "
                       + versus(rates["cf_scrapy"], rates["raw_scrapy"],
                                "a plain `insert_many` pipeline"),
                       (rates["sdk"] / raw, rates["cf_scrapy"] / rates["raw_scrapy"]), 0.8)
    new, again = rates["upsert_new"], rates["upsert_again"]
    ratio_headline(f"deduplicated ingest into MongoDB (overwrite on `url`), {opts.items:,} items",
                   f"keys new {versus(new, raw, 'raw `insert_many`')}, every key stored "
                   + versus(again, raw, "raw `insert_many`"), (new / raw, again / raw), 0.5)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=20000)
    parser.add_argument("--mongo-uri")
    parser.add_argument("--home", default="./.bench-ingest")
    parser.add_argument("--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--mysql-url", default="mysql+pymysql://root@127.0.0.1:3306/test")
    parser.add_argument("--no-sql", action="store_true", help="Skip the SQL rows.")
    parser.add_argument("--sql-only", action="store_true", help="Only the SQL rows.")
    parser.add_argument("--dedup-only", action="store_true",
                        help="Only raw insert_many and deduplicated MongoDB ingest (no SQL).")
    parser.add_argument("--sql-rounds", type=int, default=3,
                        help="Interleaved rounds of the SQL paths (medians are reported).")
    opts = parser.parse_args()
    if not opts.sql_only:
        mongo_ingest(opts)
    if opts.no_sql or opts.dedup_only:
        return
    measured = []
    for label, url in (("PostgreSQL", opts.postgres_url), ("MariaDB", opts.mysql_url)):
        try:
            raw_sql, plain, up_new, up_again = sql_ingest(url, opts.items, opts.sql_rounds)
        except Exception as exc:  # a server that is not running: say so, measure the rest
            print(f"{label}: not measured ({str(exc).splitlines()[0][:200]})")
            continue
        rate_table(f"SQL ingest into {label}: {opts.items} items, batches of 500, against the "
                   "driver's raw executemany into an equivalent table (same columns, JSON and "
                   f"`_tid` index, no dedup key); medians of {opts.sql_rounds} interleaved rounds",
                   "raw executemany",
                   [("raw DBAPI executemany", raw_sql, raw_sql),
                    ("crawlfleet SqlTable.write, insert", plain, raw_sql),
                    ("crawlfleet upsert on url, keys new", up_new, raw_sql, 0.5),
                    ("crawlfleet upsert on url, keys stored", up_again, raw_sql, 0.5)])
        measured.append((label, raw_sql, min(up_new, up_again)))
    if measured:
        ratio_headline(f"SQL upsert ingest, {opts.items:,} items",
                       "; ".join(f"{label} upsert {versus(up, raw, 'raw executemany')}"
                                 for label, raw, up in measured)
                       + " (the slower of new and stored keys)",
                       [up / raw for _, raw, up in measured], 0.5)


if __name__ == "__main__":
    main()
