"""The tasks pages: the filtered list (with checkboxes to cancel, retry or
delete many), one task (with a preview of its items, its live log and a chart
of its pace while it runs), cancel, retry and delete.

What may be done to a task is `master.taskactions`' rule: cancel a pending or
running task, retry or delete one that has ended (delete: admins)."""

import calendar
import time

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import ngettext

from crawlfleet.errors import CrawlfleetError
from crawlfleet.models import (FINAL_VALUES, TRIGGERS, TaskStatus, is_results_collection,
                               public_task)
from crawlfleet.results.attempts import final_attempt
from master import dispatch, taskactions
from master.nodes import waiting_reason
from web import auth, errors, export, services, taskpager
from web.ui import bp

TASK_PAGE = 50
DAY = 86400
RESULTS_PREVIEW = 50
BULK_ERRORS_SHOWN = 5  # refusals of a bulk action flashed one by one
RATE_WINDOW = 600     # seconds of a running task's pace the live chart keeps
STATUS_VALUES = [s.value for s in TaskStatus]
CANCELLING = "cancelling"   # a status filter: running, asked to stop


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
    elif status == CANCELLING:
        query.update(status=TaskStatus.RUNNING.value, cancel_requested=True)
    if args.get("trigger"):
        query["trigger"] = args["trigger"]
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
        filters=args, statuses=STATUS_VALUES[:2] + [CANCELLING] + STATUS_VALUES[2:],
        triggers=TRIGGERS, final_statuses=FINAL_VALUES,
        spider_names=[d["_id"] for d in store.spiders.find({}, {"_id": 1}).sort("_id", 1)],
        node_ids=[d["_id"] for d in store.nodes.find({}, {"_id": 1}).sort("_id", 1)],
    )


def get_task(task_id):
    task = services().store.tasks.find_one({"_id": task_id})
    if task is None:
        abort(404, _("unknown task %(id)r", id=task_id))
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
                           rate_window=RATE_WINDOW,
                           status_url=url_for("api.task", task_id=task_id),
                           stream_url=url_for("ui.log_stream", task_id=task_id))


@bp.post("/tasks/<task_id>/cancel")
@auth.require("operator")
def cancel(task_id):
    svc = services()
    with errors.flash_errors():
        doc = dispatch.request_cancel(svc.store, svc.broker, task_id) or {}
        flash(_("Task cancelled.") if doc.get("status") == TaskStatus.CANCELLED.value
              else _("Cancel requested: the node is stopping the task."), "ok")
    return redirect(url_for("ui.task", task_id=task_id))


@bp.post("/tasks/<task_id>/retry")
@auth.require("operator")
def retry(task_id):
    """Run an ended task's spider again with the same arguments, settings and node."""
    svc = services()
    get_task(task_id)
    try:
        new = taskactions.retry(svc.store, svc.broker, svc.config, task_id, trigger="ui",
                                extra={"user": g.user["_id"]})
    except CrawlfleetError as exc:
        flash(_("Could not retry: %(error)s", error=exc), "error")
        return redirect(url_for("ui.task", task_id=task_id))
    return redirect(url_for("ui.task", task_id=new["_id"]))


@bp.post("/tasks/<task_id>/delete")
@auth.require("admin")
def delete_task(task_id):
    try:
        taskactions.delete(services().store, task_id)
    except CrawlfleetError as exc:
        flash(_("Could not delete: %(error)s", error=exc), "error")
        return redirect(url_for("ui.task", task_id=task_id))
    flash(_("Task %(id)s deleted (its items stay in the results).", id=task_id), "ok")
    return redirect(url_for("ui.tasks"))


@bp.post("/tasks/bulk")
@auth.require("operator")
def bulk():
    """The checked tasks of the list: cancel, retry or delete (admins) each one,
    then back to the list with what happened."""
    action = request.form.get("action", "")
    ids = request.form.getlist("ids")
    back = request.form.get("back") or ""
    back = back if back.startswith("/") and not back.startswith("//") else url_for("ui.tasks")
    if not ids:
        flash(_("Select tasks first."), "error")
        return redirect(back)
    if action == "delete" and not auth.can("admin"):
        abort(403, _("deleting tasks needs the admin role"))
    svc = services()
    try:
        results = taskactions.bulk(svc.store, svc.broker, svc.config, action, ids,
                                   trigger="ui", extra={"user": g.user["_id"]})
    except CrawlfleetError as exc:
        flash(str(exc), "error")
        return redirect(back)
    done = [r for r in results if r["ok"]]
    if done:
        flash({"cancel": ngettext("Cancel requested for %(num)d task.",
                                  "Cancel requested for %(num)d tasks.", len(done)),
               "retry": ngettext("Retried %(num)d task.", "Retried %(num)d tasks.", len(done)),
               "delete": ngettext("Deleted %(num)d task.", "Deleted %(num)d tasks.", len(done)),
               }[action], "ok")
    refused = [r["error"] for r in results if not r["ok"]]
    for error in refused[:BULK_ERRORS_SHOWN]:
        flash(error, "error")
    if len(refused) > BULK_ERRORS_SHOWN:
        flash(_("... and %(num)d more refused.", num=len(refused) - BULK_ERRORS_SHOWN), "error")
    return redirect(back)
