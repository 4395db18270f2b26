"""Upkeep of the scheduler's fire records, for `master.scheduler.Scheduler`:
old records pruned with the tasks, and records a master left in
``dispatching`` when it died (between its claim and its dispatch) adopted,
dispatched within the misfire grace, or recorded skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from crawlfleet.schedules import DISPATCHING, FAILED, FIRED, SKIPPED

if TYPE_CHECKING:
    from master.scheduler import Scheduler

BATCH = 200               # due schedules (or stuck records) read at once
STUCK_AFTER = 30.0        # a fire record still dispatching this long lost its master


def prune_history(scheduler: Scheduler, at: float | None = None) -> int:
    """Delete fire records older than ``task_retention_days`` (0 keeps them)."""
    at = scheduler.clock() if at is None else at
    scheduler._pruned_at = at
    days = scheduler.config.task_retention_days
    if days <= 0:
        return 0
    return scheduler.store.schedule_fires.delete_many(
        {"fire_time": {"$lt": at - days * 86400},
         "state": {"$in": [FIRED, SKIPPED, FAILED]}}).deleted_count


def recover_stuck(scheduler: Scheduler, at: float | None = None) -> list[Any]:
    """Adopt, dispatch or skip the fire records a dead master left dispatching."""
    at = scheduler.clock() if at is None else at
    scheduler._recovered_at = at
    recovered = []
    stuck = list(scheduler.store.schedule_fires.find(
        {"state": DISPATCHING, "claimed_at": {"$lt": at - STUCK_AFTER}}).limit(BATCH))
    for record in stuck:
        key = {"schedule_id": record["schedule_id"], "fire_time": record["fire_time"]}
        claimed = scheduler.store.schedule_fires.update_one(
            {**key, "state": DISPATCHING, "claimed_at": record["claimed_at"]},
            {"$set": {"claimed_at": at, "master": scheduler.master_id}})
        if not claimed.modified_count:
            continue
        made = [t["_id"] for t in scheduler.store.tasks.find(key, {"_id": 1})]
        doc = scheduler.store.schedules.find_one({"_id": record["schedule_id"]})
        state = {"queued": None, "disable": None, "last": None}
        stats: dict[str, int] = {}
        if made:
            scheduler.finish(doc or {"_id": record["schedule_id"]}, record["fire_time"], FIRED,
                        state, stats, task_ids=made)
        elif doc is None or not doc.get("enabled"):
            scheduler.finish({"_id": record["schedule_id"]}, record["fire_time"], SKIPPED, state,
                        stats, reason="its master stopped while firing it, and the "
                                      "schedule is now deleted or disabled")
        else:
            grace = doc.get("misfire_grace")
            grace = scheduler.config.schedule_misfire_grace if grace is None else grace
            if at - record["fire_time"] <= grace:
                scheduler.dispatch(doc, record["fire_time"], state, stats)
            else:
                scheduler.finish(doc, record["fire_time"], SKIPPED, state, stats,
                            reason="its master stopped while firing it, more than the "
                                   f"misfire grace ({grace:g} s) ago")
            if state["disable"]:
                scheduler.disable(doc, state["disable"])
        recovered.append(key)
    scheduler.flush()
    return recovered
