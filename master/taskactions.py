"""What a person may do to tasks they see in a list: cancel, retry, delete —
one task or many at once (the UI's checkboxes, ``POST /api/v1/tasks/bulk``,
``crawlfleet tasks cancel|retry|delete ID...``).

Each action is allowed only where it makes sense, and says why when not:
cancel a pending or running task, retry or delete one that has ended. A bulk
request reports each task on its own (one refused task does not stop the
others), like Crawlab's batch task operations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawlfleet import ledger
from crawlfleet.errors import BadRequest, Conflict, CrawlfleetError, NotFound
from crawlfleet.models import Doc, TaskStatus
from master import dispatch

if TYPE_CHECKING:
    from crawlfleet.broker import Broker
    from crawlfleet.config import Config
    from crawlfleet.store import Store

ACTIONS = ("cancel", "retry", "delete")
MAX_BULK = 500   # tasks in one bulk request (a page of the API's task list)


def get_task(store: Store, task_id: str) -> Doc:
    task = store.tasks.find_one({"_id": task_id})
    if task is None:
        raise NotFound(f"unknown task {task_id!r}")
    return task


def retry(store: Store, broker: Broker, config: Config, task_id: str, *,
          trigger: str, extra: Doc | None = None) -> Doc:
    """Run an ended task's spider again with its arguments, settings, target and
    timeout; the new task names the old one (`retry_of`). Returns the new task."""
    old = get_task(store, task_id)
    if not TaskStatus(old["status"]).is_final:
        raise Conflict(f"task {task_id} is {old['status']}: only a task that has ended "
                       "can be retried")
    tasks = dispatch.run_spider(
        store, broker, config, old["spider"], args=old.get("args"),
        settings=old.get("settings"), nodes=old.get("target") or "any",
        timeout=old.get("timeout"), priority=old.get("priority", 0), trigger=trigger,
        extra={**(extra or {}), "retry_of": task_id},
        labels=(old.get("labels") or None) if old.get("target") in (None, "any") else None)
    return tasks[0]


def delete(store: Store, task_id: str) -> None:
    """Remove an ended task and its log (its items stay in the results)."""
    task = get_task(store, task_id)
    if not ledger.delete_final(store, task_id):
        raise Conflict(f"task {task_id} is {task['status']}: cancel it first, only a task "
                       "that has ended can be deleted")


def check_ids(ids: Any) -> list[str]:
    """The task ids of a bulk request: a non-empty list of distinct strings."""
    if not isinstance(ids, list) or not ids:
        raise BadRequest("ids must be a non-empty list of task ids")
    if len(ids) > MAX_BULK:
        raise BadRequest(f"at most {MAX_BULK} task ids at once")
    if not all(isinstance(i, str) and 0 < len(i) <= 200 for i in ids):
        raise BadRequest("each task id must be a non-empty string")
    return list(dict.fromkeys(ids))


def bulk(store: Store, broker: Broker, config: Config, action: Any, ids: Any, *,
         trigger: str, extra: Doc | None = None) -> list[Doc]:
    """Apply `action` to each task of `ids`; one result per task:
    ``{"id", "ok", "status"}`` (the task's status after it, or the new task's id
    for a retry as ``"new_task_id"``), or ``{"id", "ok": false, "error"}``."""
    if action not in ACTIONS:
        raise BadRequest(f"action must be one of {', '.join(ACTIONS)}, not {action!r}")
    results = []
    for task_id in check_ids(ids):
        try:
            if action == "cancel":
                doc = dispatch.request_cancel(store, broker, task_id) or {}
                results.append({"id": task_id, "ok": True, "status": doc.get("status"),
                                "cancelling": doc.get("status") == "running"})
            elif action == "retry":
                new = retry(store, broker, config, task_id, trigger=trigger, extra=extra)
                results.append({"id": task_id, "ok": True, "new_task_id": new["_id"]})
            else:
                delete(store, task_id)
                results.append({"id": task_id, "ok": True, "status": "deleted"})
        except CrawlfleetError as exc:
            results.append({"id": task_id, "ok": False, "error": str(exc)})
    return results
