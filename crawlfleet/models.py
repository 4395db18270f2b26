"""The nouns every role shares: task statuses, ids, clocks and the task document.

Timestamps in the ledger are UTC seconds since the epoch (floats). MongoDB
would store datetimes just as well, but the embedded MongoDB-wire server
(nx-27017 0.8) turns a datetime written by `$set` into a string, which then
no longer compares; numbers behave the same on both.
"""

import enum
import re
import secrets
import socket
import time
from collections.abc import Iterable
from typing import Any, ClassVar

# A document of the store, as pymongo gives and takes it.
Doc = dict[str, Any]

SPIDER_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NODE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")


class TaskStatus(enum.StrEnum):
    """A task's place in its life cycle; `crawlfleet.ledger` moves it (RQ's JobStatus).

    The sets below are the only lists of statuses: code that asks "is it
    still going", "has it ended", "did it fail", "may it be retried" uses them.
    """

    PENDING = "pending"
    RUNNING = "running"
    FINISHED = "finished"
    ERROR = "error"
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    ABNORMAL = "abnormal"

    # Declared here, filled in below the class (annotations alone are not members).
    ACTIVE: ClassVar[frozenset["TaskStatus"]]
    FINAL: ClassVar[frozenset["TaskStatus"]]
    FAILED: ClassVar[frozenset["TaskStatus"]]
    RETRYABLE: ClassVar[frozenset["TaskStatus"]]

    @property
    def is_final(self) -> bool:
        return self in TaskStatus.FINAL

    @staticmethod
    def values(statuses: "Iterable[TaskStatus]") -> list[str]:
        """The stored strings of `statuses`, in the enum's order (for `$in` queries)."""
        chosen = set(statuses)
        return [s.value for s in TaskStatus if s in chosen]


TaskStatus.ACTIVE = frozenset({TaskStatus.PENDING, TaskStatus.RUNNING})
TaskStatus.FINAL = frozenset(set(TaskStatus) - TaskStatus.ACTIVE)
# The ways a run can fail; a retry policy may ask for another attempt on each.
TaskStatus.FAILED = frozenset(
    {TaskStatus.ERROR, TaskStatus.TIMEOUT, TaskStatus.ABNORMAL})
TaskStatus.RETRYABLE = TaskStatus.FAILED

# What asks for a task (its `trigger`): a person in the UI, an API client, a
# schedule, a Scrapyd client, a retry policy, a distributed crawl scaled or resumed.
TRIGGERS = ("ui", "api", "schedule", "scrapyd", "retry", "scale", "resume")

FINAL_STATUSES = TaskStatus.FINAL
FINAL_VALUES = TaskStatus.values(TaskStatus.FINAL)
ACTIVE_VALUES = TaskStatus.values(TaskStatus.ACTIVE)
FAILED_VALUES = TaskStatus.values(TaskStatus.FAILED)
RETRYABLE_VALUES = TaskStatus.values(TaskStatus.RETRYABLE)


class NodeStatus(enum.StrEnum):
    """A node's registration in `nodes`: heartbeating, missed its heartbeats, or shut down."""

    ONLINE = "online"
    OFFLINE = "offline"
    STOPPED = "stopped"


class NodeMode(enum.StrEnum):
    """Whether a node takes new tasks, as its operator set it (`nodes.mode`).

    Draining and disabled both take no new task and let running ones finish;
    draining says "empty me" (the node shows as drained once idle, the moment
    to stop it), disabled says "keep out of rotation" until enabled again."""

    ENABLED = "enabled"
    DRAINING = "draining"
    DISABLED = "disabled"


class FireState(enum.StrEnum):
    """What became of one fire time of a schedule (`schedule_fires.state`)."""

    DISPATCHING = "dispatching"
    FIRED = "fired"
    SKIPPED = "skipped"
    QUEUED = "queued"
    FAILED = "failed"


class SpiderKind(str, enum.Enum):
    SCRAPY = "scrapy"
    COMMAND = "command"


def default_node_id() -> str:
    """A node's id when none is configured: its host name, made a valid id."""
    name = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname()).strip("-")
    return (name or "node")[:63]


def now() -> float:
    return time.time()


def new_task_id() -> str:
    """Sortable by creation time (hex milliseconds) and unguessable."""
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(5)}"


RESULTS_PREFIX = "results_"
# Results collections live in their own namespace: a manifest naming `users`
# or `tokens` would otherwise show the ledger (password hashes included) to
# viewers of the results browser.
RESULTS_NAME_RE = re.compile(r"^results_[A-Za-z0-9_]{1,100}$")
SAFE_NAME_RE = re.compile(r"^[A-Za-z0-9_]{1,100}$")


def results_collection_for(spider_name: str) -> str:
    return RESULTS_PREFIX + re.sub(r"[^A-Za-z0-9_]", "_", spider_name)


def is_results_collection(name: object) -> bool:
    """Whether `name` may hold results: ``results_`` and letters, digits, '_'."""
    return isinstance(name, str) and bool(RESULTS_NAME_RE.match(name))


def check_results_collection(name: object) -> str | None:
    """A spider's own `results_collection` inside the results namespace: None
    stays None (the default, ``results_<spider>``); a safe name gets the
    ``results_`` prefix when it lacks it (``items`` → ``results_items``);
    anything else is a ValueError."""
    if name is None:
        return None
    if not isinstance(name, str) or not SAFE_NAME_RE.match(name):
        raise ValueError(f"results_collection must be 1-100 letters, digits or '_' (it is "
                         f"stored as '{RESULTS_PREFIX}<name>'), got {str(name)[:60]!r}")
    full = name if name.startswith(RESULTS_PREFIX) else RESULTS_PREFIX + name
    if not is_results_collection(full):
        raise ValueError(f"results_collection {name!r} names no collection after "
                         f"'{RESULTS_PREFIX}'")
    return full


def new_task(spider: Doc, *, target: str, args: dict[str, str] | None = None,
             settings: dict[str, str] | None = None, timeout: float | None = None,
             priority: int = 0, trigger: str = "api", retry: Doc | None = None,
             retry_of: str | None = None, attempt: int = 1, extra: Doc | None = None,
             labels: dict[str, str] | None = None) -> Doc:
    """The ledger document of a task that has been asked for but not yet run.

    `retry` is the task's retry policy ``{"max_attempts": n, "backoff": s}``;
    `extra` adds fields a caller owns (e.g. the schedule that fired it); `labels`
    limits a task for any node to nodes carrying them (crawlfleet/labels.py).
    """
    created = now()
    doc = {
        "_id": new_task_id(),
        "spider": spider["_id"],
        "project": spider["project"],
        "version": spider["version"],
        "kind": spider["kind"],
        "results_collection": spider["results_collection"],
        "status": TaskStatus.PENDING.value,
        "target": target,
        "labels": dict(labels or {}),
        "node_id": None,
        "args": dict(args or {}),
        "settings": dict(settings or {}),
        "timeout": timeout,
        "priority": priority,
        "trigger": trigger,
        "attempt": attempt,
        "retry_of": retry_of,
        "created_at": created,
        "published_at": None,
        "started_at": None,
        "finished_at": None,
        "exit_code": None,
        "error": None,
        "cancel_requested": False,
        "stats": {"items": 0, "pages": 0, "errors": 0},
        "log_lines": 0,
        "retry": retry,
    }
    doc["root_id"] = doc["_id"]
    doc["retry_pending"] = True
    doc.update(extra or {})
    return doc


# Fields a retry copies from the attempt before it.
CARRIED_FIELDS = ("spider", "project", "version", "kind", "results_collection", "target",
                  "labels",
                  "args", "settings", "timeout", "priority", "retry", "root_id",
                  "schedule_id", "fire_time")


def next_attempt(task: Doc, delay: float) -> Doc:
    """The ledger document of the attempt after `task`, due `delay` seconds from now.

    Its id is derived from the first attempt's, so writing it twice is a
    duplicate-key error rather than a second retry."""
    created = now()
    attempt = task.get("attempt", 1) + 1
    root = task.get("root_id") or task["_id"]
    doc = {k: task[k] for k in CARRIED_FIELDS if k in task}
    doc.update({
        "_id": f"{root}-a{attempt}", "root_id": root, "status": TaskStatus.PENDING.value,
        "node_id": None, "trigger": "retry", "attempt": attempt, "retry_of": task["_id"],
        "created_at": created, "not_before": created + delay, "published_at": None,
        "started_at": None, "finished_at": None, "exit_code": None, "error": None,
        "cancel_requested": False, "stats": {"items": 0, "pages": 0, "errors": 0},
        "log_lines": 0, "retry_pending": True,
    })
    return doc


def is_cancelling(task: Doc) -> bool:
    """A cancel was asked for and the task has not ended yet."""
    return task.get("status") == TaskStatus.RUNNING.value and bool(task.get("cancel_requested"))


def public_task(doc: Doc | None) -> Doc | None:
    """A task document as the API shows it: `id` next to `_id` for clients, and
    `cancelling` (a running task asked to stop: its node has not yet ended it)."""
    if doc is None:
        return None
    out = dict(doc)
    out["id"] = out.get("_id")
    out["cancelling"] = is_cancelling(doc)
    if out.get("started_at"):
        end = out.get("finished_at") or now()
        out["duration"] = round(end - out["started_at"], 3)
    return out
