"""The web UI's pages: dashboard, nodes, spiders, tasks (list, detail, live
log, cancel, retry). Server-rendered with Jinja (autoescaped); the small
JavaScript in static/app.js only refreshes and streams.

Every page needs a signed-in user; running and cancelling need the operator
role. Lists page by keyset on ``_id`` (task ids sort by creation time) and
never count a large collection.
"""

import calendar
import json
import time

from flask import (Blueprint, Response, abort, current_app, flash, g, redirect,
                   render_template, request, stream_with_context, url_for)

from crawlfleet.errors import CrawlfleetError, NotFound
from crawlfleet.models import FINAL_VALUES, TaskStatus, now, public_task
from master import discovery, dispatch
from master.nodes import list_nodes
from web import auth, export, services

bp = Blueprint("ui", __name__)
bp.before_request(auth.login_required_for_blueprint)

TASK_PAGE = 50
TIE_LIMIT = 1000        # tasks of one instant read to page past the cursor's
DAY = 86400
CHART_DAYS = 30
FAILED = ["error", "timeout", "abnormal"]
RESULTS_PREVIEW = 50
COUNT_LIMIT = 500         # running / pending counts stop here ("500+")
STATUS_VALUES = [s.value for s in TaskStatus]
SSE_POLL = 0.5            # seconds between reads of the stored log while it grows
SSE_BATCH = 500           # lines per event
SSE_KEEPALIVE = 15.0      # seconds between comments that keep proxies from closing
SSE_MAX_SECONDS = 300.0   # a stream ends after this; EventSource reconnects from its last id


def http_error(exc):
    """HTTP errors: JSON under /api/, a page of the UI elsewhere."""
    from web import api

    if request.path == api.PREFIX or request.path.startswith(api.PREFIX + "/"):
        return api.http_error(exc)
    if exc.code is None or exc.code < 400:
        return exc
    return render_template("error.html", error=exc), exc.code


NAV = {"ui.dashboard": "Dashboard", "ui.nodes": "Nodes", "ui.spider": "Spiders",
       "crawls_ui.": "Crawls",
       "ui.task": "Tasks", "ui.log": "Tasks", "results.": "Results", "schedules_ui.": "Schedules",
       "projects_ui.": "Projects", "admin.users": "Users", "admin.tokens": "API tokens"}


def page_context():
    endpoint = request.endpoint or ""
    active = next((label for prefix, label in NAV.items() if endpoint.startswith(prefix)), None)
    return {"active_nav": active, "blueprints": current_app.blueprints}


def register_filters(app):
    app.context_processor(page_context)
    app.add_template_filter(when)
    app.add_template_filter(ago)
    app.add_template_filter(duration)
    app.add_template_filter(cell)


def when(stamp):
    if not stamp:
        return "–"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + " UTC"


def ago(stamp):
    if not stamp:
        return "never"
    delta = now() - stamp
    for size, unit in ((DAY, "d"), (3600, "h"), (60, "min")):
        if delta >= size:
            return f"{int(delta // size)} {unit} ago"
    return f"{max(0, int(delta))} s ago"


def duration(seconds):
    if seconds is None:
        return "–"
    seconds = float(seconds)
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def cell(value):
    """A result field as short text (escaped later by Jinja)."""
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        text = export.dumps(value, ensure_ascii=False)
    else:
        text = export.csv_cell(value)
    return text if len(text) <= 300 else text[:300] + "…"


# -- dashboard -------------------------------------------------------------------

def daily_series(store, days=CHART_DAYS):
    """Tasks, items and failures per UTC day over the last `days` days.

    Aggregates over a ``created_at`` range (indexed), grouped by a projected
    day number; nx-27017 0.8 cannot group by a compound or computed ``_id``,
    so failures are a second, narrower pass.
    """
    today = int(now() // DAY)
    first = today - days + 1
    match = {"created_at": {"$gte": first * DAY}}
    day = {"$trunc": {"$divide": ["$created_at", DAY]}}
    per_day = {d["_id"]: d for d in store.tasks.aggregate([
        {"$match": match},
        {"$project": {"d": day, "items": "$stats.items"}},
        {"$group": {"_id": "$d", "n": {"$sum": 1}, "items": {"$sum": "$items"}}},
    ])}
    failed = {d["_id"]: d["n"] for d in store.tasks.aggregate([
        {"$match": {**match, "status": {"$in": FAILED}}},
        {"$project": {"d": day}},
        {"$group": {"_id": "$d", "n": {"$sum": 1}}},
    ])}
    labels, tasks, items, failures = [], [], [], []
    for d in range(first, today + 1):
        labels.append(time.strftime("%m-%d", time.gmtime(d * DAY)))
        row = per_day.get(d) or per_day.get(float(d)) or {}
        tasks.append(row.get("n", 0))
        items.append(row.get("items", 0) or 0)
        failures.append(failed.get(d, failed.get(float(d), 0)))
    return {"labels": labels, "tasks": tasks, "items": items, "failures": failures}


def status_totals(store, since):
    return {d["_id"]: d["n"] for d in store.tasks.aggregate([
        {"$match": {"created_at": {"$gte": since}}},
        {"$group": {"_id": "$status", "n": {"$sum": 1}}},
    ])}


def bounded_count(collection, query, limit=COUNT_LIMIT):
    """How many match, reading at most `limit` + 1 ids (shown as "500+")."""
    return sum(1 for _ in collection.find(query, {"_id": 1}).limit(limit + 1))


def cached(key, version, compute):
    """`compute()`, kept in this app until `version` changes.

    For aggregates over a month of tasks: the version is what changes them
    (the newest task, the latest finish), read from two indexes, so a page
    view costs two index lookups until a task starts or ends."""
    cache = current_app.extensions.setdefault("crawlfleet_ui_cache", {})
    hit = cache.get(key)
    if hit is not None and hit[0] == version:
        return hit[1]
    value = compute()
    cache[key] = (version, value)
    return value


def ledger_version(store):
    newest = store.tasks.find_one({}, {"_id": 1}, sort=[("created_at", -1)])
    ended = store.tasks.find_one({"finished_at": {"$gt": 0}}, {"finished_at": 1},
                                 sort=[("finished_at", -1)])
    return (newest or {}).get("_id"), (ended or {}).get("finished_at"), int(now() // DAY)


@bp.get("/")
def dashboard():
    svc = services()
    store = svc.store
    nodes = list_nodes(store, svc.config)
    version = ledger_version(store)
    totals = cached("totals", version, lambda: status_totals(store, now() - CHART_DAYS * DAY))
    final = sum(totals.get(s, 0) for s in FINAL_VALUES)
    failures = list(store.tasks.find({"status": {"$in": FAILED}})
                    .sort("created_at", -1).limit(8))
    return render_template(
        "dashboard.html",
        nodes=nodes,
        online=sum(1 for n in nodes if n["online"]),
        running=bounded_count(store.tasks, {"status": "running"}),
        pending=bounded_count(store.tasks, {"status": "pending"}),
        success_rate=(100.0 * totals.get("finished", 0) / final) if final else None,
        finals=final,
        series=cached("series", version, lambda: daily_series(store)),
        count_limit=COUNT_LIMIT,
        failures=failures,
        recent=list(store.tasks.find().sort("_id", -1).limit(8)),
    )


# -- nodes -----------------------------------------------------------------------

@bp.get("/nodes")
def nodes():
    svc = services()
    nodes = list_nodes(svc.store, svc.config)
    running_ids = [t for n in nodes for t in (n.get("running") or [])]
    tasks = {t["_id"]: t for t in svc.store.tasks.find({"_id": {"$in": running_ids}},
                                                        {"spider": 1, "started_at": 1})}
    return render_template("nodes.html", nodes=nodes, tasks=tasks,
                           config_timeout=svc.config.node_timeout)


# -- spiders ---------------------------------------------------------------------

def next_runs(store, spider_names):
    """{spider: next fire time} from enabled schedules, when schedules exist."""
    out = {}
    try:
        for doc in store.db.schedules.find({"spider": {"$in": spider_names},
                                            "enabled": True}, {"spider": 1, "next_fire_at": 1}):
            at = doc.get("next_fire_at")
            if isinstance(at, (int, float)) and (doc["spider"] not in out
                                                 or at < out[doc["spider"]]):
                out[doc["spider"]] = at
    except Exception:  # no schedules feature in this deployment
        pass
    return out


@bp.get("/spiders")
def spiders():
    store = services().store
    docs = list(store.spiders.find().sort("_id", 1))
    last = {}
    for doc in docs:
        found = list(store.tasks.find({"spider": doc["_id"]},
                                      {"status": 1, "created_at": 1, "stats": 1})
                     .sort("created_at", -1).limit(1))
        last[doc["_id"]] = found[0] if found else None
    return render_template("spiders.html", spiders=docs, last=last,
                           next_runs=next_runs(store, [d["_id"] for d in docs]),
                           node_ids=[n["_id"] for n in store.nodes.find({}, {"_id": 1})])


@bp.get("/spiders/<name>")
def spider(name):
    svc = services()
    store = svc.store
    try:
        doc = dispatch.get_spider(store, name)
    except NotFound as exc:
        abort(404, str(exc))
    tasks = list(store.tasks.find({"spider": name}).sort("created_at", -1).limit(20))
    versions = list(store.versions.find({"project": doc["project"]})
                    .sort("created_at", -1).limit(20))
    return render_template("spider.html", spider=doc, tasks=tasks, versions=versions,
                           next_run=next_runs(store, [name]).get(name),
                           node_ids=[n["_id"] for n in list_nodes(store, svc.config)
                                     if n["online"]])


@bp.post("/spiders/rescan")
@auth.require("operator")
def rescan():
    svc = services()
    report = discovery.scan(svc.store, svc.config)
    errors = report.get("errors") or []
    spiders = sum(len(p.get("spiders") or []) for p in report.get("projects") or [])
    flash(f"Rescanned the spider folders: {len(report.get('projects') or [])} projects, "
          f"{spiders} spiders." + "".join(f" {e['path']}: {e['error']}" for e in errors[:3]),
          "error" if errors else "ok")
    return redirect(url_for("ui.spiders"))


def parse_pairs(text, what):
    """NAME=VALUE lines of a textarea as a dict."""
    out = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise CrawlfleetError(f"{what}: expected NAME=VALUE, got {line!r}")
        out[key.strip()] = value.strip()
    return out


@bp.post("/spiders/<name>/run")
@auth.require("operator")
def run(name):
    svc = services()
    form = request.form
    try:
        args = parse_pairs(form.get("args"), "arguments")
        settings = parse_pairs(form.get("settings"), "settings")
        target = form.get("target", "any")
        nodes = form.getlist("nodes") if target == "nodes" else target
        timeout = float(form["timeout"]) if form.get("timeout", "").strip() else None
        if form.get("workers", "").strip() or form.get("persist"):
            from web import crawls_ui  # a crawl of workers sharing a frontier

            return crawls_ui.run_from_form(name, form)
        tasks = dispatch.run_spider(svc.store, svc.broker, svc.config, name, args=args,
                                    settings=settings, nodes=nodes, timeout=timeout,
                                    trigger="ui", extra={"user": g.user["_id"]})
    except ValueError:
        flash("The timeout must be a number of seconds.", "error")
        return redirect(url_for("ui.spider", name=name))
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(url_for("ui.spider", name=name))
    if len(tasks) == 1:
        return redirect(url_for("ui.task", task_id=tasks[0]["_id"]))
    flash(f"Started {len(tasks)} tasks, one per node.", "ok")
    return redirect(url_for("ui.tasks", spider=name))


# -- tasks -----------------------------------------------------------------------

def day_start(text):
    """Epoch seconds of a YYYY-MM-DD day (UTC), or None."""
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d")) if text else None
    except ValueError:
        return None


def task_cursor(task):
    return f"{task['created_at']!r}_{task['_id']}"


def read_task_cursor(text):
    stamp, _, task_id = (text or "").partition("_")
    try:
        return float(stamp), task_id
    except ValueError:
        abort(400, "invalid page cursor")


@bp.get("/tasks")
def tasks():
    """Newest first, paged by keyset on (created_at, _id).

    Not on `_id` alone (which also sorts by creation): every filter has an
    index ending in ``created_at``, and nx-27017 scans the whole collection
    for a range on `_id` but not for one on an indexed field. Tasks created in
    the very same microsecond as the cursor's are told apart by `_id`.
    """
    args = request.args
    query = {}
    status = args.get("status", "")
    if status in STATUS_VALUES:
        query["status"] = status
    if args.get("spider"):
        query["spider"] = args["spider"]
    if args.get("node"):
        query["node_id"] = args["node"]
    since, until = day_start(args.get("from", "")), day_start(args.get("to", ""))
    created = {}
    if since is not None:
        created["$gte"] = since
    if until is not None:
        created["$lt"] = until + DAY
    cursor = read_task_cursor(args["before"]) if args.get("before") else None
    store = services().store
    order = [("created_at", -1), ("_id", -1)]
    docs = []
    if cursor:
        # first the tasks of the cursor's very instant (almost always none) ...
        if all(cursor[0] >= v if op.startswith("$g") else cursor[0] < v
               for op, v in created.items()):
            # (`_id` compared here: nx-27017 scans the collection for an `_id` range)
            same = store.tasks.find({**query, "created_at": cursor[0]}).sort("_id", -1)
            docs = [d for d in same.limit(TIE_LIMIT) if d["_id"] < cursor[1]][:TASK_PAGE + 1]
        # ... then the older ones
        created["$lt"] = min(created.get("$lt", cursor[0]), cursor[0])
    if created:
        query["created_at"] = created
    if len(docs) <= TASK_PAGE:
        docs += list(store.tasks.find(query).sort(order).limit(TASK_PAGE + 1 - len(docs)))
    more = len(docs) > TASK_PAGE
    docs = docs[:TASK_PAGE]
    keep = {k: v for k, v in args.items() if k != "before" and v}
    return render_template(
        "tasks.html", tasks=[public_task(d) for d in docs],
        next_url=url_for("ui.tasks", **keep, before=task_cursor(docs[-1])) if more else None,
        first_url=url_for("ui.tasks", **keep) if cursor else None,
        filters=args, statuses=STATUS_VALUES,
        spider_names=[d["_id"] for d in store.spiders.find({}, {"_id": 1}).sort("_id", 1)],
        node_ids=[d["_id"] for d in store.nodes.find({}, {"_id": 1}).sort("_id", 1)],
    )


def get_task(task_id):
    task = services().store.tasks.find_one({"_id": task_id})
    if task is None:
        abort(404, f"unknown task {task_id!r}")
    return task


@bp.get("/tasks/<task_id>")
def task(task_id):
    doc = public_task(get_task(task_id))
    store = services().store
    items = list(store.results(doc["results_collection"]).find({"_tid": task_id})
                 .sort("_id", 1).limit(RESULTS_PREVIEW)) if doc.get("results_collection") else []
    columns = [c for c in export.csv_columns(items) if c not in ("_tid", "task_id")]
    return render_template("task.html", task=doc, items=items, columns=columns,
                           final=doc["status"] in FINAL_VALUES,
                           status_url=url_for("api.task", task_id=task_id),
                           stream_url=url_for("ui.log_stream", task_id=task_id))


@bp.post("/tasks/<task_id>/cancel")
@auth.require("operator")
def cancel(task_id):
    svc = services()
    try:
        dispatch.request_cancel(svc.store, svc.broker, task_id)
        flash("Cancel requested.", "ok")
    except CrawlfleetError as exc:
        flash(str(exc), "error")
    return redirect(url_for("ui.task", task_id=task_id))


@bp.post("/tasks/<task_id>/retry")
@auth.require("operator")
def retry(task_id):
    """Run the same spider again with the same arguments, settings and node."""
    svc = services()
    old = get_task(task_id)
    try:
        tasks = dispatch.run_spider(
            svc.store, svc.broker, svc.config, old["spider"], args=old.get("args"),
            settings=old.get("settings"), nodes=old.get("target") or "any",
            timeout=old.get("timeout"), priority=old.get("priority", 0), trigger="ui",
            extra={"user": g.user["_id"], "retry_of": task_id})
    except CrawlfleetError as exc:
        flash(f"Could not retry: {exc}", "error")
        return redirect(url_for("ui.task", task_id=task_id))
    return redirect(url_for("ui.task", task_id=tasks[0]["_id"]))


@bp.get("/tasks/<task_id>/log/stream")
def log_stream(task_id):
    """Server-sent events: the task's log from a line offset, until the task is final.

    Each event carries up to SSE_BATCH lines as a JSON list and, as its id,
    the offset after them, so EventSource resumes where it stopped
    (``Last-Event-ID``). One stream lasts at most SSE_MAX_SECONDS, which
    bounds how long it holds a gunicorn thread.
    """
    get_task(task_id)
    store = services().store
    raw = request.headers.get("Last-Event-ID") or request.args.get("offset") or "0"
    try:
        offset = max(0, int(raw))
    except ValueError:
        offset = 0

    def events():
        position = offset
        started = last_sent = time.monotonic()
        yield "retry: 2000\n\n"
        while time.monotonic() - started < SSE_MAX_SECONDS:
            lines, position_after = export.log_page(store.task_logs, task_id, position,
                                                    SSE_BATCH)
            if lines or position_after != position:
                position = position_after
                yield f"id: {position}\ndata: {json.dumps(lines, ensure_ascii=False)}\n\n"
                last_sent = time.monotonic()
                continue
            task = store.tasks.find_one({"_id": task_id}, {"status": 1})
            if task is None or task["status"] in FINAL_VALUES:
                # The node stores the whole log before the final status: read
                # what was written between the last page and the status check.
                while True:
                    lines, after = export.log_page(store.task_logs, task_id, position,
                                                   SSE_BATCH)
                    if after == position:
                        break
                    position = after
                    yield f"id: {position}\ndata: {json.dumps(lines, ensure_ascii=False)}\n\n"
                yield f"event: end\ndata: {json.dumps(task and task['status'])}\n\n"
                return
            if time.monotonic() - last_sent > SSE_KEEPALIVE:
                yield ": keepalive\n\n"
                last_sent = time.monotonic()
            time.sleep(SSE_POLL)

    return Response(stream_with_context(events()), mimetype="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
