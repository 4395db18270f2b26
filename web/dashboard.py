"""The dashboard: nodes, running and pending counts, a month of tasks, items
and failures per day, the latest failures and tasks."""

import time

from flask import render_template

from crawlfleet.models import FAILED_VALUES, now
from master.nodes import list_nodes
from web import services
from web.appcache import cached
from web.ui import bp

DAY = 86400
CHART_DAYS = 30
COUNT_LIMIT = 500         # running / pending counts stop here ("500+")


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
        {"$match": {**match, "status": {"$in": FAILED_VALUES}}},
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


def success_rate(totals):
    """(percent of ended runs that finished, how many ended) over `totals` by status.

    Only finished and failed runs (error, timeout, abnormal) count: a cancelled
    task was stopped by a person, neither a success nor a failure."""
    finished = totals.get("finished", 0)
    judged = finished + sum(totals.get(s, 0) for s in FAILED_VALUES)
    return (100.0 * finished / judged if judged else None), judged


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
    rate, judged = success_rate(totals)
    failures = list(store.tasks.find({"status": {"$in": FAILED_VALUES}})
                    .sort("created_at", -1).limit(8))
    return render_template(
        "dashboard.html",
        nodes=nodes,
        online=sum(1 for n in nodes if n["online"]),
        running=bounded_count(store.tasks, {"status": "running"}),
        pending=bounded_count(store.tasks, {"status": "pending"}),
        success_rate=rate,
        finals=judged,
        series=cached("series", version, lambda: daily_series(store)),
        count_limit=COUNT_LIMIT,
        failures=failures,
        recent=list(store.tasks.find().sort("_id", -1).limit(8)),
    )
