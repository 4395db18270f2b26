"""The ledger: every change of a task's status, each one named and guarded.

MongoDB's `tasks` collection is the ledger of record. No other module writes a
task's `status`: each transition below is the single atomic update allowed
from the states it names (its filter holds those states, and the node session
where one applies), and it answers whether it happened. A transition that
did not happen means someone else got there first (another node claimed the
task, the reconciler gave it up, a user cancelled it): the caller logs it and
moves on, never retries it blindly. RQ's `JobStatus` and `set_status` are the
model.

| operation | from | to |
|---|---|---|
| `create` | (new) | pending |
| `claim` | pending (for this node or any) | running, stamped with node and session |
| `start` | running (this session) | running, the spider process recorded |
| `finish` | running (this session) | a final status |
| `mark_abnormal` | running (that session) | abnormal: its node went silent |
| `sweep_node_restart` | running (this node, an older session) | abnormal |
| `request_cancel` | running | running, `cancel_requested` and its time (the node stops it; the UI shows it `cancelling`) |
| `cancel_pending` | pending | cancelled |
| `add_attempt` | (new) | pending, the next attempt of a final task |
| `supersede` | final, retry undecided | final, replaced by a later attempt (or by none) |

`delete_final` removes a task that has ended (and its log): not a
transition, but guarded the same way, so a running task is never deleted.

Fields other than the status that only one role writes while a task runs
(log line counts, stats, alert records) are written by that role.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pymongo.errors
from pymongo import ReturnDocument

from crawlfleet.models import Doc, TaskStatus, now

PENDING = TaskStatus.PENDING.value
RUNNING = TaskStatus.RUNNING.value

# Each named transition: the statuses it may start from and those it may end in.
TRANSITIONS: dict[str, tuple[frozenset[TaskStatus], frozenset[TaskStatus]]] = {
    "create": (frozenset(), frozenset({TaskStatus.PENDING})),
    "claim": (frozenset({TaskStatus.PENDING}), frozenset({TaskStatus.RUNNING})),
    "start": (frozenset({TaskStatus.RUNNING}), frozenset({TaskStatus.RUNNING})),
    "finish": (frozenset({TaskStatus.RUNNING}), TaskStatus.FINAL),
    "mark_abnormal": (frozenset({TaskStatus.RUNNING}), frozenset({TaskStatus.ABNORMAL})),
    "sweep_node_restart": (frozenset({TaskStatus.RUNNING}), frozenset({TaskStatus.ABNORMAL})),
    "request_cancel": (frozenset({TaskStatus.RUNNING}), frozenset({TaskStatus.RUNNING})),
    "cancel_pending": (frozenset({TaskStatus.PENDING}), frozenset({TaskStatus.CANCELLED})),
    "add_attempt": (frozenset(), frozenset({TaskStatus.PENDING})),
    "supersede": (TaskStatus.FINAL, TaskStatus.FINAL),
}


def create(store: Any, tasks: list[Doc]) -> None:
    """Write new tasks (documents of `models.new_task`), all pending."""
    for task in tasks:
        if task.get("status") != PENDING:
            raise ValueError(f"task {task.get('_id')} must be created pending, "
                             f"not {task.get('status')}")
    store.tasks.insert_many(tasks)


def mark_published(store: Any, task_id: str, stamp: float) -> bool:
    """Record that a pending task's message was handed to the broker."""
    result = store.tasks.update_one(
        {"_id": task_id, "status": PENDING},
        {"$set": {"published_at": stamp}, "$inc": {"publish_count": 1}})
    return bool(result.matched_count)


def claim(store: Any, task_id: str, node_id: str, session: str) -> Doc | None:
    """pending → running on this node; the task as claimed, or None if it was not pending
    (or is meant for another node)."""
    return store.tasks.find_one_and_update(
        {"_id": task_id, "status": PENDING, "target": {"$in": ["any", node_id]}},
        {"$set": {"status": RUNNING, "node_id": node_id, "session": session,
                  "started_at": now()}},
        return_document=ReturnDocument.AFTER)


def start(store: Any, task_id: str, session: str, *, pid: int, hostname: str) -> bool:
    """Record the spider process of a task this session runs."""
    result = store.tasks.update_one(
        {"_id": task_id, "status": RUNNING, "session": session},
        {"$set": {"pid": pid, "spider_started_at": now(), "hostname": hostname}})
    return bool(result.modified_count)


def finish(store: Any, task_id: str, session: str, status: TaskStatus | str, *,
           error: str | None = None, exit_code: int | None = None,
           log_lines: int | None = None) -> bool:
    """running (on this session) → a final status, with how it ended."""
    status = TaskStatus(status)
    if status not in TaskStatus.FINAL:
        raise ValueError(f"finish needs a final status, not {status}")
    fields: Doc = {"status": status.value, "finished_at": now(), "exit_code": exit_code,
                   "error": error}
    if log_lines is not None:
        fields["log_lines"] = log_lines
    result = store.tasks.update_one(
        {"_id": task_id, "status": RUNNING, "session": session}, {"$set": fields})
    return bool(result.modified_count)


def mark_abnormal(store: Any, task_id: str, session: str | None, reason: str) -> bool:
    """running (on `session`, the one that went silent) → abnormal."""
    result = store.tasks.update_one(
        {"_id": task_id, "status": RUNNING, "session": session},
        {"$set": {"status": TaskStatus.ABNORMAL.value, "finished_at": now(), "error": reason}})
    return bool(result.modified_count)


def sweep_node_restart(store: Any, node_id: str, session: str) -> int:
    """Tasks an earlier process of this node was running → abnormal; how many."""
    result = store.tasks.update_many(
        {"node_id": node_id, "status": RUNNING, "session": {"$ne": session}},
        {"$set": {"status": TaskStatus.ABNORMAL.value, "finished_at": now(),
                  "error": "the node restarted while the task ran"}})
    return int(result.modified_count)


def request_cancel(store: Any, task_id: str) -> bool:
    """Ask the node running a task to stop it (it watches this flag). The first
    request's time is kept: the task shows as `cancelling` from then to its end."""
    result = store.tasks.update_one({"_id": task_id, "status": RUNNING},
                                    {"$set": {"cancel_requested": True}})
    if result.matched_count:
        store.tasks.update_one({"_id": task_id, "cancel_requested_at": None},
                               {"$set": {"cancel_requested_at": now()}})
    return bool(result.matched_count)


def cancel_pending(store: Any, task_id: str,
                   reason: str = "cancelled before it started") -> bool:
    """pending → cancelled (it never reached a node)."""
    stamp = now()
    result = store.tasks.update_one(
        {"_id": task_id, "status": PENDING},
        {"$set": {"status": TaskStatus.CANCELLED.value, "cancel_requested": True,
                  "cancel_requested_at": stamp, "finished_at": stamp, "error": reason}})
    return bool(result.modified_count)


def add_attempt(store: Any, attempt: Doc) -> bool:
    """Write the next attempt of a task (`models.next_attempt`); False if it exists
    already (its id is derived from the first attempt's, so two masters make one)."""
    if attempt.get("status") != PENDING or not attempt.get("retry_of"):
        raise ValueError("an attempt is a pending task naming the one it retries")
    try:
        store.tasks.insert_one(attempt)
    except pymongo.errors.DuplicateKeyError:
        return False
    return True


def supersede(store: Any, task_id: str, by: str | None) -> bool:
    """Close a final task's retry decision: replaced by attempt `by`, or by none."""
    result = store.tasks.update_one(
        {"_id": task_id, "retry_pending": True,
         "status": {"$in": TaskStatus.values(TaskStatus.FINAL)}},
        {"$unset": {"retry_pending": ""}, "$set": {"retried_by": by}})
    return bool(result.modified_count)


def delete_final(store: Any, task_id: str) -> bool:
    """Remove a task that has ended, and its log; False if it is not final (or
    gone). Its items stay in the results collection: they are the user's data."""
    result = store.tasks.delete_one(
        {"_id": task_id, "status": {"$in": TaskStatus.values(TaskStatus.FINAL)}})
    if result.deleted_count:
        store.task_logs.delete_many({"task_id": task_id})
    return bool(result.deleted_count)


def statuses(store: Any, task_ids: Iterable[str]) -> dict[str, str]:
    """The current status of each of `task_ids` that exists."""
    return {d["_id"]: d["status"]
            for d in store.tasks.find({"_id": {"$in": list(task_ids)}}, {"status": 1})}
