"""The tasks pages: the filtered list, one task (with a preview of its items
and its live log), cancel and retry."""

import calendar
import time

from flask import abort, flash, g, redirect, render_template, request, url_for

from crawlfleet.errors import CrawlfleetError
from crawlfleet.models import FINAL_VALUES, TaskStatus, is_results_collection, public_task
from crawlfleet.results.attempts import final_attempt
from master import dispatch
from master.nodes import waiting_reason
from web import auth, export, services, taskpager
from web.ui import bp

TASK_PAGE = 50
DAY = 86400
RESULTS_PREVIEW = 50
STATUS_VALUES = [s.value for s in TaskStatus]


def day_start(text):
    """Epoch seconds of a YYYY-MM-DD day (UTC), or None."""
    try:
        return calendar.timegm(time.strptime(text, "%Y-%m-%d")) if text else None
    except ValueError:
        return None


@bp.get("/tasks")
def tasks():
    """Newest first, paged by `web.taskpager` (the API's pager and cursor)."""
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
    if created:
        query["created_at"] = created
    store = services().store
    before = args.get("before") or None
    try:
        docs, cursor = taskpager.page(store.tasks, query, TASK_PAGE, before)
    except CrawlfleetError as exc:
        abort(400, str(exc))
    keep = {k: v for k, v in args.items() if k != "before" and v}
    return render_template(
        "tasks.html", tasks=[public_task(d) for d in docs],
        next_url=url_for("ui.tasks", **keep, before=cursor) if cursor else None,
        first_url=url_for("ui.tasks", **keep) if before else None,
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
    if doc["status"] == TaskStatus.PENDING.value:
        doc["waiting"] = waiting_reason(store, services().config, doc)
    # a crawl's items are its final attempt's (crawlfleet/results/attempts.py)
    shown = final_attempt(store, doc)["_id"]
    items = []
    if is_results_collection(doc.get("results_collection")):
        items = list(store.results(doc["results_collection"]).find({"_tid": shown})
                     .sort("_id", 1).limit(RESULTS_PREVIEW))
    columns = [c for c in export.csv_columns(items) if c not in ("_tid", "task_id")]
    return render_template("task.html", task=doc, items=items, columns=columns, items_of=shown,
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
            extra={"user": g.user["_id"], "retry_of": task_id},
            labels=(old.get("labels") or None) if old.get("target") in (None, "any") else None)
    except CrawlfleetError as exc:
        flash(f"Could not retry: {exc}", "error")
        return redirect(url_for("ui.task", task_id=task_id))
    return redirect(url_for("ui.task", task_id=tasks[0]["_id"]))
