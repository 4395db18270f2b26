"""Seed a benchmark dataset: N results (default 1M) in `results_bench`, 10k in
`results_bench10k` (each with `_tid`, `task_id` and `_at`, and the indexes
crawlfleet makes, as its stores write them), and 100k tasks spread over 60
days, with insert_many in batches from several processes.

    python benchmarks/seed_data.py --mongo-uri mongodb://127.0.0.1:27017 --db crawlfleet_bench

Without --mongo-uri it starts the embedded MongoDB-wire server (nx-27017)
under --home (default ./.bench) and leaves its data there for bench_ui.py.
"""

import argparse
import contextlib
import multiprocessing
import random
import secrets
import sys
import time
from pathlib import Path

import pymongo
from bson import ObjectId

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BATCH = 2000
CATEGORIES = ["Fiction", "Mystery", "History", "Science", "Poetry", "Travel", "Cooking"]
STATUSES = ["finished"] * 80 + ["error"] * 8 + ["cancelled"] * 4 + ["timeout"] * 2 + \
    ["abnormal"] * 2 + ["running"] * 2 + ["pending"] * 2
SPIDERS = ["books", "plain_catalogue", "news", "prices", "jobs"]
DAY = 86400


def result_docs(start, count, seed):
    rng = random.Random(seed)
    for n in range(start, start + count):
        tid = f"{n // 1000:011x}bench{n // 1000 % 100000:05d}"
        yield {"_id": ObjectId(), "title": f"Item {n} of the bench catalogue",
               "price": round(rng.uniform(1, 1000), 2), "category": rng.choice(CATEGORIES),
               "rating": rng.randint(1, 5), "in_stock": rng.random() < 0.7, "n": n,
               "url": f"http://demo.invalid/item/{n}", "_tid": tid, "task_id": tid}


def task_docs(start, count, seed, now):
    rng = random.Random(seed)
    for n in range(start, start + count):
        created = now - 60 * DAY + (n / 100_000) * 60 * DAY
        status = rng.choice(STATUSES)
        started = created + rng.uniform(0, 5)
        final = status not in ("pending", "running")
        yield {"_id": f"{int(created * 1000):011x}{secrets.token_hex(5)}",
               "spider": rng.choice(SPIDERS), "project": "bench", "version": "v1",
               "kind": "scrapy", "results_collection": "results_bench", "status": status,
               "target": "any", "node_id": None if status == "pending" else f"node-{n % 4}",
               "args": {}, "settings": {}, "timeout": None, "priority": 0, "trigger": "bench",
               "attempt": 1, "retry_of": None, "created_at": created,
               "published_at": created, "started_at": None if status == "pending" else started,
               "finished_at": started + rng.uniform(1, 600) if final else None,
               "exit_code": 0 if status == "finished" else (1 if final else None),
               "error": "bench failure" if status in ("error", "timeout", "abnormal") else None,
               "cancel_requested": False, "stats": {"items": rng.randint(0, 500),
                                                    "pages": rng.randint(0, 50), "errors": 0},
               "log_lines": 0, "retry": None}


def worker(args):
    uri, db, collection, kind, start, count, seed, now = args
    client = pymongo.MongoClient(uri)
    coll = client[db][collection]
    docs = result_docs(start, count, seed) if kind == "results" else task_docs(start, count,
                                                                               seed, now)
    batch = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= BATCH:
            insert(coll, kind, batch)
            batch = []
    if batch:
        insert(coll, kind, batch)
    client.close()
    return count


def insert(coll, kind, batch):
    if kind == "results":
        # what crawlfleet adds to every stored item: its insertion time,
        # strictly increasing within a batch (crawlfleet.sdk.context)
        base = time.time()
        for i, doc in enumerate(batch):
            doc["_at"] = base + i * 1e-6
    coll.insert_many(batch, ordered=False)


def seed(uri, db, collection, kind, total, processes):
    per = -(-total // processes)
    now = time.time()
    jobs = [(uri, db, collection, kind, i * per, min(per, total - i * per), i, now)
            for i in range(processes) if i * per < total]
    started = time.monotonic()
    with multiprocessing.Pool(processes) as pool:
        done = sum(pool.map(worker, jobs))
    took = time.monotonic() - started
    print(f"  {collection}: {done:,} {kind} in {took:.1f} s ({done / took:,.0f}/s)", flush=True)


def start_embedded(home):
    from crawlfleet.embedded import start_mongo

    home.mkdir(parents=True, exist_ok=True)
    log = open(home / "nx-27017.out", "ab")
    return start_mongo(home, log)


def dataset_arguments(description):
    """The command line of the scripts that share this dataset: where its store is."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--mongo-uri", help="default: start the embedded server under --home")
    parser.add_argument("--home", default="./.bench", type=Path)
    parser.add_argument("--db", default="crawlfleet_bench")
    return parser


@contextlib.contextmanager
def dataset_store(args):
    """(uri, process): --mongo-uri, else the embedded server under --home,
    started for the `with` block (process None when the store was given)."""
    if args.mongo_uri:
        yield args.mongo_uri, None
        return
    from benchmarks.harness import stop_group

    proc, uri = start_embedded(args.home.resolve())
    try:
        yield uri, proc
    finally:
        stop_group(proc, grace=30)


def main():
    parser = dataset_arguments(__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1_000_000)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=4)
    args = parser.parse_args()
    with dataset_store(args) as (uri, proc):
        if proc is not None:
            (args.home / "mongo-uri").write_text(uri)
        from crawlfleet.config import Config
        from crawlfleet.store import Store

        store = Store(Config.from_dict({"mongo_uri": uri, "mongo_db": args.db,
                                        "home": str(args.home)}))
        store.client.drop_database(args.db)
        store.ensure_indexes()
        for name in ("results_bench", "results_bench10k"):
            store.results(name)  # crawlfleet's indexes: `_tid` and `_at`
        store.db.results_bench.create_index("price")
        store.db.results_bench10k.create_index("price")
        print(f"seeding {uri} database {args.db} with {args.processes} processes", flush=True)
        seed(uri, args.db, "tasks", "tasks", args.tasks, args.processes)
        seed(uri, args.db, "results_bench10k", "results", 10_000, args.processes)
        seed(uri, args.db, "results_bench", "results", args.results, args.processes)
        store.close()


if __name__ == "__main__":
    main()
