"""Benchmark the cron scheduler and print a table.

1. Fire precision: a real `crawlfleet master` process fires every-second
   schedules for a while; for each tick, the delay from its due time to the
   task document being written (task ``created_at`` − ``fire_time``),
   p50/p99/max over every tick. Goal: p99 < 1 s.
2. Scheduler cost with 10,000 enabled schedules (hourly, spread over the
   minutes): an idle pass (nothing due), a busy pass (every schedule due that
   minute fires: ~1/60 of them), and the query for the next due time — the
   scheduler reads only due schedules through the ``due_at`` index.
   Goal: a pass well under a second.

    python benchmarks/bench_scheduler.py [--mongo-uri URI] [--home ./.bench/scheduler]
                                         [--seconds 30] [--every-second 10] [--count 10000]

Without --mongo-uri it starts the embedded MongoDB-wire server (nx-27017)
under --home; the broker is the embedded (filesystem) one under --home.
"""

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.harness import headline, percentile, table, wait_until as wait_for  # noqa: E402

DB = "crawlfleet_bench_scheduler"


def ms(seconds):
    return f"{seconds * 1000:.1f} ms"


def tick_project(folder):
    project = folder / "bench_tick"
    project.mkdir(parents=True, exist_ok=True)
    (project / "main.py").write_text("print('tick')\n")
    (project / "crawlfleet.json").write_text(json.dumps(
        {"spiders": [{"name": "bench_tick", "command": ["python", "main.py"]}]}))


def precision(config, store, args):
    """Every-second schedules fired by a real master process for `seconds`."""
    from crawlfleet import schedules

    env = dict(os.environ)
    env.update(config.as_environ())
    log = open(Path(config.home) / "bench-master.log", "ab")
    master = subprocess.Popen([sys.executable, "-m", "crawlfleet", "master"], env=env,
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                              start_new_session=True)
    try:
        wait_for(lambda: store.spiders.find_one({"_id": "bench_tick"}), 60, "discovery")
        wait_for(lambda: (store.leases.find_one({"_id": "scheduler"}) or {}).get(
            "expires_at", 0) > time.time(), 30, "a scheduler leader")
        ids = [schedules.create(store, {"spider": "bench_tick", "cron": "* * * * * *",
                                        "overlap": "allow"})["_id"]
               for _ in range(args.every_second)]
        time.sleep(args.seconds)
        store.schedules.update_many({"_id": {"$in": ids}},
                                    {"$set": {"enabled": False, "due_at": None}})
        time.sleep(1.0)
    finally:
        try:
            os.killpg(master.pid, signal.SIGTERM)
            master.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(master.pid, signal.SIGKILL)
    tasks = list(store.tasks.find({"schedule_id": {"$in": ids}},
                                  {"created_at": 1, "fire_time": 1, "schedule_id": 1}))
    delays = [t["created_at"] - t["fire_time"] for t in tasks]
    fires = list(store.schedule_fires.find({"schedule_id": {"$in": ids}}, {"state": 1}))
    not_fired = sum(1 for f in fires if f["state"] != "fired")
    per_tick = {}
    for t in tasks:
        key = (t["schedule_id"], t["fire_time"])
        per_tick[key] = per_tick.get(key, 0) + 1
    return {"ticks": len(tasks), "delays": delays, "not_fired": not_fired,
            "twice": sum(1 for n in per_tick.values() if n > 1)}


def cost(config, store, args):
    """Passes of an in-process Scheduler (fixed clock) over `count` enabled schedules."""
    from crawlfleet.broker import Broker
    from crawlfleet.schedules import CronSpec, new_schedule_id
    from master.scheduler import Scheduler

    store.schedules.delete_many({})
    store.schedule_fires.delete_many({})
    store.tasks.delete_many({})
    rng = random.Random(7)
    start = (int(time.time()) // 3600 + 1) * 3600.0  # the next whole hour
    docs = []
    built = time.perf_counter()
    specs = {}
    for _ in range(args.count):
        cron = f"{rng.randrange(60)} * * * *"
        spec = specs.get(cron) or specs.setdefault(cron, CronSpec(cron, "UTC"))
        first = spec.next_after(start - 1)
        docs.append({"_id": new_schedule_id(), "spider": "bench_tick", "cron": cron,
                     "timezone": "UTC", "args": {}, "settings": {}, "nodes": "any",
                     "priority": 0, "timeout": None, "retry": None, "description": "",
                     "enabled": True, "overlap": "allow", "misfire_grace": None,
                     "alerts": None, "next_fire_at": first, "due_at": first,
                     "queued_fire": None, "disabled_reason": None, "created_at": start,
                     "updated_at": start})
    for i in range(0, len(docs), 1000):
        store.schedules.insert_many(docs[i:i + 1000])
    inserted = time.perf_counter() - built
    clock_at = [start - 30]
    broker = Broker(config)
    scheduler = Scheduler(config, store, broker, clock=lambda: clock_at[0], master_id="bench")
    idle = []
    for i in range(50):
        clock_at[0] = start - 30 + i * 0.5
        began = time.perf_counter()
        stats = scheduler.tick()
        idle.append(time.perf_counter() - began)
        assert stats["schedules"] == 0, stats
    peek = []
    for _ in range(50):
        began = time.perf_counter()
        scheduler.idle_time()
        peek.append(time.perf_counter() - began)
    busy = []
    fired = []
    for minute in range(5):
        clock_at[0] = start + 60 * minute + 0.05
        began = time.perf_counter()
        stats = scheduler.tick()
        busy.append(time.perf_counter() - began)
        fired.append(stats["fired"])
    broker.close()
    return {"count": args.count, "inserted": inserted, "idle": idle, "peek": peek,
            "busy": busy, "fired": fired}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mongo-uri")
    parser.add_argument("--home", default="./.bench/scheduler", type=Path)
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="how long the every-second schedules run")
    parser.add_argument("--every-second", type=int, default=10,
                        help="every-second schedules fired at once")
    parser.add_argument("--count", type=int, default=10_000,
                        help="enabled schedules for the cost part")
    args = parser.parse_args()
    home = args.home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    proc = None
    uri = args.mongo_uri
    if not uri:
        from crawlfleet.embedded import start_mongo

        proc, uri = start_mongo(home, open(home / "nx-27017.out", "ab"))
    try:
        run(uri, home, args)
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(30)


def run(uri, home, args):
    from crawlfleet.config import Config
    from crawlfleet.store import Store

    spiders = home / "spiders"
    tick_project(spiders)
    config = Config.from_dict({"mongo_uri": uri, "mongo_db": DB, "home": str(home),
                               "spiders_path": str(spiders), "broker_url": "filesystem://",
                               "queue_prefix": "benchsched", "log_level": "WARNING"})
    store = Store(config)
    store.client.drop_database(DB)
    store.ensure_indexes()
    try:
        p = precision(config, store, args)
        c = cost(config, store, args)
    finally:
        store.client.drop_database(DB)
        store.close()
    d = p["delays"]
    rows = [[f"ticks fired ({args.every_second} every-second schedules × {args.seconds:g} s, "
             "one master)", f"{p['ticks']} ({p['not_fired']} not fired, {p['twice']} twice)",
             "every tick once"]]
    if d:
        rows += [["delay due → task written, n / p50", f"{len(d)} / {ms(statistics.median(d))}", ""],
                 ["delay due → task written, p99", ms(percentile(d, 0.99)), "p99 < 1 s"],
                 ["delay due → task written, max", ms(max(d)), ""]]
    per_fire = sum(c["busy"]) / max(1, sum(c["fired"]))
    rows += [[f"{c['count']:,} enabled schedules inserted", f"{c['inserted']:.1f} s", ""],
             ["idle pass (none due), p50 / p99",
              f"{ms(statistics.median(c['idle']))} / {ms(percentile(c['idle'], 0.99))}",
              "well under 1 s"],
             ["next-due-time query, p50", ms(statistics.median(c["peek"])), ""],
             [f"busy pass ({statistics.mean(c['fired']):.0f} due → as many tasks), p50 / max",
              f"{ms(statistics.median(c['busy']))} / {ms(max(c['busy']))}", "well under 1 s"],
             ["cost per fire in a busy pass", ms(per_fire), ""]]
    table(f"Scheduler: {os.cpu_count()} CPUs, store {uri}, embedded broker",
          ["measure", "value", "goal"], rows)
    once = p["not_fired"] == 0 and p["twice"] == 0
    p99 = percentile(d, 0.99) if d else float("inf")
    headline(f"scheduler ({args.every_second} every-second schedules; {c['count']:,} schedules)",
             f"due → task written p50 {ms(statistics.median(d)) if d else '—'}, p99 **{ms(p99)}**; "
             f"every tick fired once: {'yes' if once else 'NO'}; a pass firing "
             f"{statistics.mean(c['fired']):.0f} at once {ms(statistics.median(c['busy']))}",
             "p99 < 1 s, every tick once", "yes" if once and p99 < 1 else "no")


if __name__ == "__main__":
    main()
