"""Schedules in the store: create, change, enable, delete, and their fire history.

Each fire time of a schedule leaves a record in `schedule_fires` whose
`state` is a `FireState` (the scheduler, master/scheduler.py, writes them).
"""

from __future__ import annotations

import secrets
import time
from datetime import timezone, tzinfo
from typing import TYPE_CHECKING, Any

from crawlfleet.errors import BadRequest, NotFound
from crawlfleet.models import Doc, FireState, now
from crawlfleet.schedules.cron import CronSpec, iso_time, load_timezone
from crawlfleet.schedules.validation import (DEFAULTS, FIELDS, check_fields, require_carriers,
                                             validate)

if TYPE_CHECKING:
    from crawlfleet.store import Store

# Fire states recorded in `schedule_fires`, as stored.
DISPATCHING = FireState.DISPATCHING.value
FIRED = FireState.FIRED.value
SKIPPED = FireState.SKIPPED.value
QUEUED = FireState.QUEUED.value
FAILED = FireState.FAILED.value


def new_schedule_id() -> str:
    return f"{int(time.time() * 1000):011x}{secrets.token_hex(3)}"


def timing(spec: CronSpec, enabled: bool, at: float) -> Doc:
    """The fields that tell the scheduler when to look at a schedule next."""
    next_fire = spec.next_after(at) if enabled else None
    return {"next_fire_at": next_fire, "due_at": next_fire, "queued_fire": None}


def public_schedule(doc: Doc | None, upcoming: int = 0) -> Doc | None:
    """A schedule as the API shows it: `id`, ISO times, optionally the next fires."""
    if doc is None:
        return None
    out = dict(doc)
    out["id"] = doc["_id"]
    try:
        spec = CronSpec(doc["cron"], doc.get("timezone"))
    except BadRequest:
        spec = None
    tz = spec.tz if spec else timezone.utc
    out["next_fire_time"] = iso_time(doc.get("next_fire_at"), tz)
    if upcoming and spec and doc.get("enabled"):
        out["upcoming"] = [spec.iso(t) for t in spec.next_times(now(), upcoming)]
    elif upcoming:
        out["upcoming"] = []
    return out


def get(store: Store, schedule_id: Any) -> Doc:
    doc = store.schedules.find_one({"_id": schedule_id}) if isinstance(schedule_id, str) else None
    if doc is None:
        raise NotFound(f"unknown schedule {schedule_id!r}")
    return doc


def create(store: Store, body: Doc, *, at: float | None = None) -> Doc:
    check_fields(body)
    values, spec = validate(store, {**DEFAULTS, **body})
    require_carriers(store, values["labels"])
    at = now() if at is None else at
    doc = {"_id": new_schedule_id(), **values, **timing(spec, values["enabled"], at),
           "disabled_reason": None, "created_at": at, "updated_at": at,
           "last_fire_time": None, "last_outcome": None, "last_task_ids": []}
    store.schedules.insert_one(doc)
    return doc


def update(store: Store, schedule_id: Any, changes: Doc, *, replace: bool = False,
           at: float | None = None) -> Doc:
    """PATCH (only the fields given) or PUT (`replace`: every other field to its default)."""
    check_fields(changes)
    current = get(store, schedule_id)
    base = DEFAULTS if replace else {k: current.get(k, DEFAULTS.get(k)) for k in FIELDS}
    values, spec = validate(store, {**base, **changes})
    if values["labels"] != (current.get("labels") or {}):
        require_carriers(store, values["labels"])
    at = now() if at is None else at
    update_doc = {**values, "updated_at": at}
    when_changed = ("cron", "timezone", "enabled")
    if any(values[k] != current.get(k) for k in when_changed) or (
            values["enabled"] and current.get("next_fire_at") is None):
        update_doc.update(timing(spec, values["enabled"], at))
    if values["enabled"]:
        update_doc["disabled_reason"] = None
    store.schedules.update_one({"_id": schedule_id}, {"$set": update_doc})
    if "queued_fire" in update_doc and current.get("queued_fire") is not None:
        store.schedule_fires.update_one(  # the fire that waited will not run now
            {"schedule_id": schedule_id, "fire_time": current["queued_fire"], "state": QUEUED},
            {"$set": {"state": SKIPPED, "done_at": at,
                      "reason": "the schedule was changed or disabled while it waited"}})
    return get(store, schedule_id)


def set_enabled(store: Store, schedule_id: Any, enabled: bool, *,
                at: float | None = None) -> Doc:
    current = get(store, schedule_id)
    if bool(current.get("enabled")) == enabled and not (enabled and current.get("due_at") is None):
        return current
    return update(store, schedule_id, {"enabled": enabled}, at=at)


def delete(store: Store, schedule_id: Any) -> None:
    get(store, schedule_id)
    store.schedules.delete_one({"_id": schedule_id})
    store.schedule_fires.delete_many({"schedule_id": schedule_id})


def history(store: Store, schedule_id: Any, *, limit: int = 50,
            before: float | None = None) -> Doc:
    """Fire records, newest first, each with the status of the task(s) it made."""
    doc = get(store, schedule_id)
    query = {"schedule_id": schedule_id}
    if before is not None:
        query["fire_time"] = {"$lt": before}
    fires = list(store.schedule_fires.find(query).sort("fire_time", -1).limit(limit + 1))
    more = len(fires) > limit
    fires = fires[:limit]
    task_ids = [t for f in fires for t in f.get("task_ids") or []]
    tasks = {t["_id"]: t for t in store.tasks.find(
        {"_id": {"$in": task_ids}},
        {"status": 1, "node_id": 1, "stats": 1, "started_at": 1, "finished_at": 1,
         "exit_code": 1, "error": 1})} if task_ids else {}
    try:
        tz: tzinfo = load_timezone(doc.get("timezone"))[1]
    except BadRequest:
        tz = timezone.utc
    out = []
    for fire in fires:
        fire.pop("_id", None)
        fire["fire_iso"] = iso_time(fire["fire_time"], tz)
        fire["tasks"] = [{"id": t, "status": (tasks.get(t) or {}).get("status"),
                          "node_id": (tasks.get(t) or {}).get("node_id"),
                          "items": ((tasks.get(t) or {}).get("stats") or {}).get("items"),
                          "finished_at": (tasks.get(t) or {}).get("finished_at")}
                         for t in fire.get("task_ids") or []]
        out.append(fire)
    return {"fires": out, "next": fires[-1]["fire_time"] if more else None}
