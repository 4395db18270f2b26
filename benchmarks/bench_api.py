"""Time the JSON API at scale (issue 7, item 5) on the dataset of seed_data.py
(by default 1M results in `results_bench`, 10k in `results_bench10k`, 100k
tasks; run_all seeds fewer to stay within its time: the labels say how many).

    python benchmarks/bench_api.py [--home ./.bench | --mongo-uri URI] [--runs 30]

Everything goes through a real `crawlfleet web` (gunicorn, its default
workers and threads) started as a subprocess in its own process group, over
HTTP with `requests`, so the figures are what a client sees on loopback:

- p50/p95 of the task list (first page, `status=error`, the page reached by
  following `next` 20 pages down), one task, and a page of results (the
  first, and the second through `next`);
- a results page at 1M rows against the same page at 10k rows;
- a full CSV export of the 1M-row collection: time to first byte, total time,
  rows/s, and the web process group's resident memory (sampled from /proc
  every 0.2 s) during the export against before it, and the CPU seconds the
  web and the embedded store spent on it.

Results and tasks: seed_data.py tags each result with a `_tid` (1000 results
per id) that names no task of its `tasks` collection, so the API's per-task
results route would answer 404. The benchmark registers one ledger task for
one such id in each results collection (ids no seeded task can have, removed
at the end) and times `/api/v1/tasks/<id>/results`, whose filter is the task
(`_tid`, indexed); the results browser's filtered page (`/results/<name>?q=`,
signed in) is timed too, as it is the only route with a filter language.
The export is the results browser's `/results/<name>/export`: the JSON API
only exports one task's items.

Without --mongo-uri the embedded server (nx-27017) is started under --home;
the dataset is seeded there first (seed_data.py, its defaults) when missing.
"""

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.harness import (cpu_seconds, headline, percentile, rss_mb, size_label,  # noqa: E402
                                stop_group, table)

PASSWORD = "bench-password-1"   # the UI user of bench_ui.py
DEEP_PAGES = 20                 # pages followed through `next` for the deep page
P95_GOAL_MS = 100.0
RATIO_GOAL = 2.0
SAMPLE_EVERY = 0.2              # seconds between RSS samples during the export
CONSTANT_MB = 32.0              # growth past the export's first 10% counted as constant


def main():
    from benchmarks.seed_data import dataset_arguments, dataset_store

    parser = dataset_arguments(__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--budget", type=float, default=30.0,
                        help="seconds one case may take before it stops (at least 3 runs)")
    args = parser.parse_args()
    args.home = args.home.resolve()
    with dataset_store(args) as (uri, proc):
        ensure_seeded(uri, args)
        run(uri, args, store_pid=proc.pid if proc else None)


# -- dataset, server, client ---------------------------------------------------

def ensure_seeded(uri, args):
    import pymongo

    client = pymongo.MongoClient(uri)
    db = client[args.db]
    sizes = [db[name].estimated_document_count()
             for name in ("tasks", "results_bench10k", "results_bench")]
    client.close()
    if all(sizes):
        return
    print(f"seeding the dataset under {args.home} (benchmarks/seed_data.py)", flush=True)
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "seed_data.py"),
                    "--mongo-uri", uri, "--db", args.db, "--home", str(args.home)],
                   check=True)


def start_web(uri, args):
    from crawlfleet.embedded import free_port, wait_for_port

    port = free_port()
    env = dict(os.environ, CRAWLFLEET_MONGO_URI=uri, CRAWLFLEET_MONGO_DB=args.db,
               CRAWLFLEET_HOME=str(args.home), CRAWLFLEET_SECRET_KEY="bench-api",
               CRAWLFLEET_LOG_LEVEL="WARNING")
    log = open(args.home / "bench-api-web.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "crawlfleet", "web",
                             "--bind", f"127.0.0.1:{port}"], env=env, stdout=log,
                            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    if wait_for_port("127.0.0.1", port, 60, proc):
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if requests.get(url + "/healthz", timeout=5).status_code == 200:
                    return proc, url
            except requests.RequestException:
                pass
            time.sleep(0.2)
    stop_group(proc, grace=20)
    raise SystemExit(f"bench_api: the web server did not start; see {log.name}")


def sign_in(url):
    session = requests.Session()
    page = session.get(url + "/login", timeout=30).text
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = session.post(url + "/login", data={"username": "bench", "password": PASSWORD,
                                           "csrf_token": csrf},
                     allow_redirects=False, timeout=30)
    assert r.status_code == 302, ("login", r.status_code, r.text[:300])
    return session


def timed(session, url, runs, budget):
    """Milliseconds of `runs` requests, body read (fewer, at least 3, past `budget` s);
    every request counted, the first included."""
    times = []
    for n in range(runs):
        if n >= 3 and sum(times) > budget * 1000:
            break
        started = time.perf_counter()
        response = session.get(url, timeout=300)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:300])
    return times, response


# -- the measures --------------------------------------------------------------

def run(uri, args, store_pid=None):
    from crawlfleet import users
    from crawlfleet.config import Config
    from crawlfleet.store import Store
    from crawlfleet.tokens import create_token, revoke_token, _digest

    config = Config.from_dict({"mongo_uri": uri, "mongo_db": args.db, "home": str(args.home)})
    store = Store(config)
    token = create_token(store, "bench-api", "viewer")
    if users.get_user(store, "bench") is None:
        users.create_user(store, "bench", PASSWORD, "viewer")
    sizes = {name: store.db[name].estimated_document_count()
             for name in ("tasks", "results_bench", "results_bench10k")}
    oldest = store.tasks.find_one(sort=[("created_at", 1)])["created_at"]
    tids, registered = {}, []
    for name in ("results_bench", "results_bench10k"):
        # the `_tid` of a seeded result, and a ledger task of that id (the
        # route reads a task's items by `_tid` = the task's id)
        tid = store.db[name].find_one({}, {"_tid": 1})["_tid"]
        tids[name] = tid
        if store.tasks.find_one({"_id": tid}, {"_id": 1}) is None:
            store.tasks.insert_one({
                "_id": tid, "spider": "bench", "project": "bench", "status": "finished",
                "results_collection": name, "created_at": oldest - 1,
                "finished_at": oldest - 1, "trigger": "bench_api"})
            registered.append(tid)
    # (count_documents on a filter takes 30 s at 1M rows on nx-27017: read the ids)
    items_per_task = {name: sum(1 for _ in store.db[name].find({"_tid": tid}, {"_id": 1}))
                      for name, tid in tids.items()}

    web, url = start_web(uri, args)
    rows = []
    try:
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {token}"
        ui = sign_in(url)
        print(f"\n{sizes['tasks']:,} tasks, {sizes['results_bench']:,} + "
              f"{sizes['results_bench10k']:,} results; crawlfleet web at {url} "
              f"(workers {config.web_workers}, threads {config.web_threads}); "
              f"{args.runs} requests per case", flush=True)
        rows = measure(api, ui, url, args, tids, items_per_task, web.pid, store_pid,
                       size_label(sizes["results_bench"]))
    finally:
        stop_group(web, grace=20)
        for tid in registered:
            store.tasks.delete_one({"_id": tid, "trigger": "bench_api"})
        revoke_token(store, _digest(token))
        store.close()
    table(f"JSON API at scale: {sizes['tasks']:,} tasks, {sizes['results_bench']:,} and "
          f"{sizes['results_bench10k']:,} results ({args.runs} runs a case, every request "
          f"counted)", ["measure", "p50 / value", "p95", "runs", "goal", "met"], rows)
    if rows:
        def p95_of(prefix):
            row = next((r for r in rows if r[0].strip().startswith(prefix)), None)
            return row[2] if row else "?"
        big = size_label(sizes["results_bench"])
        memory = next((r for r in rows if "web RSS" in r[0]), ["", "?", "?"])
        headline(f"JSON API at scale ({size_label(sizes['tasks'])} tasks, {big} results), p95",
                 f"task list {p95_of('GET /tasks (first')}, page {DEEP_PAGES} via `next` "
                 f"**{p95_of(f'GET /tasks page {DEEP_PAGES}')}**; a task's results at {big} rows "
                 f"{p95_of(f'API results of a task, {big}')}, page 2 via `next` "
                 f"**{p95_of(f'same, page 2 via next, {big}')}**; CSV export of {big} rows: web "
                 f"memory {memory[2]}",
                 f"p95 ≤ {P95_GOAL_MS:.0f} ms, {big} ≤ {RATIO_GOAL:.0f}× 10k, constant memory",
                 "yes" if all(r[5] in ("yes", "") for r in rows) else "no")


def measure(api, ui, url, args, tids, items_per_task, web_pid, store_pid, big="1M"):
    rows = []
    p95s = {}

    def case(label, session, path, key=None):
        times, response = timed(session, url + path, args.runs, args.budget)
        p50, p95 = percentile(times, 0.5), percentile(times, 0.95)
        if key:
            p95s[key] = (p50, p95)
        rows.append([label, f"{p50:.1f} ms", f"{p95:.1f} ms", len(times),
                     f"p95 <= {P95_GOAL_MS:.0f} ms", "yes" if p95 <= P95_GOAL_MS else "NO"])
        print(f"  {label}: p50 {p50:.1f} ms, p95 {p95:.1f} ms ({len(times)} runs)", flush=True)
        return response

    first = case("GET /tasks (first page, 50)", api, "/api/v1/tasks").json()
    case("GET /tasks?status=error", api, "/api/v1/tasks?status=error")
    cursor, walked = first["next"], time.perf_counter()
    for _ in range(DEEP_PAGES - 2):
        cursor = api.get(url + f"/api/v1/tasks?before={cursor}", timeout=300).json()["next"]
    walked = time.perf_counter() - walked
    print(f"  followed `next` {DEEP_PAGES - 1} times in {walked:.1f} s", flush=True)
    deep = case(f"GET /tasks page {DEEP_PAGES} (via next)", api,
                f"/api/v1/tasks?before={cursor}").json()
    task_id = deep["tasks"][len(deep["tasks"]) // 2]["_id"]
    case("GET /tasks/<id>", api, f"/api/v1/tasks/{task_id}")

    pages = {}
    for name, label in (("results_bench10k", "10k"), ("results_bench", big)):
        tid = tids[name]
        body = case(f"API results of a task, {label} rows (100 of "
                    f"{items_per_task[name]:,})", api, f"/api/v1/tasks/{tid}/results",
                    key=("api first", label)).json()
        case(f"  same, page 2 via next, {label} rows", api,
             f"/api/v1/tasks/{tid}/results?after={body['next']}", key=("api next", label))
        pages[label] = body
    q = "q=" + quote("price >= 990")
    for name, label in (("results_bench10k", "10k"), ("results_bench", big)):
        case(f"UI results browser price >= 990, {label}", ui, f"/results/{name}?{q}",
             key=("ui filter", label))
    for kind, what in (("api first", "API task results page"),
                       ("api next", "API task results page 2"),
                       ("ui filter", "UI filtered results page")):
        small, large = p95s[(kind, "10k")], p95s[(kind, big)]
        ratio50, ratio95 = large[0] / small[0], large[1] / small[1]
        rows.append([f"{what}: {big} / 10k", f"{ratio50:.2f}x", f"{ratio95:.2f}x", "",
                     f"<= {RATIO_GOAL:.0f}x", "yes" if ratio95 <= RATIO_GOAL else "NO"])
    rows += export(ui, url, "results_bench", web_pid, store_pid, big)
    return rows


def export(session, url, name, web_pid, store_pid, big="1M"):
    """The whole collection as CSV, streamed and counted, memory sampled meanwhile."""
    before = []
    for _ in range(5):
        before.append(rss_mb(web_pid))
        time.sleep(SAMPLE_EVERY)
    store_before = rss_mb(store_pid) if store_pid else None
    cpu_before = cpu_seconds(web_pid), cpu_seconds(store_pid) if store_pid else 0.0
    state = {"lines": 0, "done": False}
    samples = []  # (lines read so far, web RSS MB, store RSS MB)

    def sample():
        while not state["done"]:
            samples.append((state["lines"], rss_mb(web_pid),
                            rss_mb(store_pid) if store_pid else 0.0))
            time.sleep(SAMPLE_EVERY)

    sampler = threading.Thread(target=sample, daemon=True)
    started = time.perf_counter()
    sampler.start()
    headers_at = first_at = None
    size = 0
    try:
        with session.get(f"{url}/results/{name}/export?format=csv", stream=True,
                         timeout=600) as response:
            headers_at = time.perf_counter() - started
            assert response.status_code == 200, (response.status_code, response.text[:300])
            for chunk in response.iter_content(chunk_size=64 * 1024):
                if first_at is None:
                    first_at = time.perf_counter() - started
                size += len(chunk)
                state["lines"] += chunk.count(b"\n")
    finally:
        total = time.perf_counter() - started
        state["done"] = True
        sampler.join()
    cpu_web = cpu_seconds(web_pid) - cpu_before[0]
    cpu_store = cpu_seconds(store_pid) - cpu_before[1] if store_pid else None
    rows = state["lines"] - 1  # the header line
    base = max(before)
    peak = max(s[1] for s in samples)
    early = [s[1] for s in samples if s[0] <= rows / 10] or [base]
    growth = peak - max(early)
    print(f"  export: {rows:,} rows, {size / 1e6:.0f} MB in {total:.1f} s; web RSS "
          f"{base:.0f} MB before, {peak:.0f} MB peak", flush=True)
    out = [
        [f"CSV export of {big} rows: first byte", f"{first_at * 1000:.0f} ms",
         f"(headers {headers_at * 1000:.0f} ms)", 1, "", ""],
        ["  total time, rows/s", f"{total:.1f} s", f"{rows / total:,.0f} rows/s", 1,
         f"{rows:,} rows, {size / 1e6:.0f} MB", ""],
        ["  web RSS before -> peak", f"{base:.0f} MB -> {peak:.0f} MB",
         f"+{peak - base:.0f} MB", len(samples),
         f"constant: +<= {CONSTANT_MB:.0f} MB after 10%",
         "yes" if growth <= CONSTANT_MB else "NO"],
    ]
    if store_pid:
        store_peak = max(s[2] for s in samples)
        out.append(["  (store process RSS)", f"{store_before:.0f} MB -> {store_peak:.0f} MB",
                    f"+{store_peak - store_before:.0f} MB", len(samples), "", ""])
    out.append(["  CPU during export: web, store", f"{cpu_web:.1f} s",
                f"{cpu_store:.1f} s" if cpu_store is not None else "(not ours)", 1, "", ""])
    return out


if __name__ == "__main__":
    main()
