"""A node's history: one sample of its load, memory and busy runners a minute,
and the tasks it ran.

The node agent records the samples from its heartbeat (`Sampler`), kept
``node_history_days`` by a TTL index on ``drop_after``. The node page draws
its charts from `node_history`, the JSON API answers
``GET /api/v1/nodes/<id>/history`` with it and ``crawlfleet node history NODE``
prints it, so all three show the same numbers.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from crawlfleet.errors import BadRequest
from crawlfleet.models import Doc

SAMPLE_EVERY = 60.0      # seconds: the heartbeat beats every few seconds, a sample is enough a minute
DEFAULT_HOURS = 24
MAX_HOURS = 168          # a week: what the default retention keeps
RECENT_TASKS = 50        # tasks listed; the per-hour counts take every task of the window
MAX_COUNTED = 20000      # tasks read for the per-hour counts, at most
SAMPLE_FIELDS = ("at", "load", "memory_percent", "busy", "slots")
TASK_FIELDS = {"_id": 1, "spider": 1, "status": 1, "started_at": 1, "finished_at": 1,
               "trigger": 1}


@dataclass(eq=False)
class Sampler:
    """Writes a node's figures to ``node_samples`` at most once per `every` seconds.

    The last sample's time is read from the store on first use, so a node that
    restarts does not write a second sample within the minute either.
    """

    store: Any
    node_id: str
    retention_days: float
    every: float = SAMPLE_EVERY
    clock: Callable[[], float] = time.time
    last_at: float | None = field(default=None, init=False)
    loaded: bool = field(default=False, init=False)

    def offer(self, load: float | None, memory_percent: float | None, busy: int,
              slots: int) -> bool:
        """Record these figures unless a sample is less than `every` seconds old."""
        if self.retention_days <= 0:
            return False
        at = self.clock()
        if not self.loaded:
            newest = self.store.db.node_samples.find_one(
                {"node_id": self.node_id}, {"at": 1}, sort=[("at", -1)])
            self.last_at = newest["at"] if newest else None
            self.loaded = True
        if self.last_at is not None and 0 <= at - self.last_at < self.every:
            return False
        self.store.db.node_samples.insert_one({
            "node_id": self.node_id, "at": at, "load": load, "memory_percent": memory_percent,
            "busy": busy, "slots": slots,
            "drop_after": datetime.fromtimestamp(at + self.retention_days * 86400,
                                                 tz=timezone.utc)})
        self.last_at = at
        return True


def parse_hours(raw: str | None) -> int:
    """The window asked for (`?hours=N`, `--hours N`): a whole number of hours, 1 to 168."""
    if raw in (None, ""):
        return DEFAULT_HOURS
    text = str(raw).strip()
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= MAX_HOURS:
        raise BadRequest(f"hours must be a whole number from 1 to {MAX_HOURS}, "
                         f"got {text[:20]!r}")
    return int(text)


def task_row(task: Doc) -> Doc:
    started, finished = task.get("started_at"), task.get("finished_at")
    duration = (round(finished - started, 3)
                if isinstance(started, (int, float)) and isinstance(finished, (int, float))
                else None)
    return {"task_id": task["_id"], "spider": task.get("spider"), "status": task.get("status"),
            "trigger": task.get("trigger"), "started_at": started, "finished_at": finished,
            "duration": duration}


def per_hour(starts: list[float], since: float, hours: int) -> list[Doc]:
    """How many tasks started in each hour of the window, oldest first."""
    counts = [0] * hours
    for started in starts:
        index = int((started - since) // 3600)
        if 0 <= index < hours:
            counts[index] += 1
    return [{"hour": since + i * 3600, "tasks": n} for i, n in enumerate(counts)]


def node_history(store: Any, node_id: str, hours: int = DEFAULT_HOURS,
                 until: float | None = None) -> Doc:
    """The node's samples and the tasks it started over the last `hours` hours."""
    hours = max(1, min(int(hours), MAX_HOURS))
    until = time.time() if until is None else until
    since = until - hours * 3600
    samples = [{k: d.get(k) for k in SAMPLE_FIELDS}
               for d in store.db.node_samples.find(
                   {"node_id": node_id, "at": {"$gte": since}},
                   {k: 1 for k in SAMPLE_FIELDS}).sort("at", 1)]
    window = {"node_id": node_id, "started_at": {"$gte": since}}
    recent = [task_row(t) for t in store.tasks.find(window, TASK_FIELDS)
              .sort("started_at", -1).limit(RECENT_TASKS)]
    counted = list(store.tasks.find(window, {"started_at": 1, "status": 1}).limit(MAX_COUNTED))
    starts = [t["started_at"] for t in counted]
    statuses: dict[str, int] = {}
    for task in counted:
        statuses[task.get("status") or "?"] = statuses.get(task.get("status") or "?", 0) + 1
    return {
        "node": node_id, "hours": hours, "since": since, "until": until,
        "sample_every": SAMPLE_EVERY, "samples": samples,
        "tasks": {"started": len(starts), "by_status": statuses,
                  "per_hour": per_hour(starts, since, hours), "recent": recent},
    }
