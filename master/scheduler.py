"""The cron scheduler: fires due schedules, on the leader master only.

Every master runs a `Scheduler` thread; only the holder of the ``scheduler``
lease (master/leader.py) fires. Each pass reads the schedules whose
``due_at`` has come, through its index, oldest first: never every schedule.

Firing one fire time of a schedule:

1. insert its record into ``schedule_fires`` (state ``dispatching``) — the
   unique key (schedule_id, fire_time) makes this the claim: if two masters
   ever race, the second insert fails and that master does nothing;
2. apply the overlap policy (``skip``: record ``skipped`` while a task of
   this schedule is pending or running; ``queue``: record ``queued`` and
   dispatch it when that run ends, at most one waiting; ``allow``);
3. dispatch through `master.dispatch.run_spider` (trigger ``schedule``; each
   task carries ``schedule_id`` and ``fire_time``), and record ``fired``
   with the task ids — or ``failed`` with the reason (no node online…), or
   ``skipped`` if the spider is gone, which also disables the schedule with
   a visible ``disabled_reason``.

Late and missed fire times. A fire time found due at most
``schedule_catchup`` seconds late fires, each one: lateness that short is a
leader failing over (a dead leader is replaced within the lease TTL, well
inside that window) or a slow pass, not an outage. Older fire times are
misfires (every master was down): the most recent of them fires once if it
is at most ``misfire_grace`` old (the schedule's own, else the setting),
and every other one is recorded as ``skipped`` — never a burst.

The guarantee: every fire time of an enabled schedule gets exactly one
record in ``schedule_fires``, and none fires twice. Fire times reached
within the catch-up window — which includes any leader failover — all fire.

A master that dies between its claim and its dispatch leaves a record in
``dispatching``; the leader finds such records after `STUCK_AFTER` seconds
(master/fireupkeep.py), adopts the tasks if they were written, else
dispatches them (within the grace) or records them skipped.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import pymongo
from pymongo import UpdateOne

from crawlfleet.errors import BadRequest, Conflict, CrawlfleetError, NotFound
from crawlfleet.models import ACTIVE_VALUES, Doc, now
from crawlfleet.schedules import (DISPATCHING, FAILED, FIRED, QUEUED, SKIPPED, CronSpec,
                                  iso_time)
from master.dispatch import run_spider
from master import fireupkeep
from master.fireupkeep import BATCH, STUCK_AFTER  # noqa: F401  (tests read them here)

if TYPE_CHECKING:
    from collections.abc import Callable

    from crawlfleet.broker import Broker
    from crawlfleet.config import Config
    from crawlfleet.store import Store
    from master.leader import Lease

log = logging.getLogger(__name__)

MAX_BATCHES = 50          # per pass, so a pass always ends
MAX_IDLE = 0.5            # longest sleep between passes (new schedules are seen this fast)
FOLLOWER_POLL = 0.25      # how often a non-leader looks whether it became leader
QUEUE_RECHECK = 1.0       # a queued fire looks whether the previous run ended this often
ERROR_RETRY = 30.0        # a schedule whose processing failed is looked at again after this
RECOVER_INTERVAL = 10.0
PRUNE_INTERVAL = 3600.0   # fire records go with the tasks (task_retention_days)
MISSED_RECORDS = 100      # missed fire times recorded one by one; the rest in one record


@dataclass(eq=False)
class Scheduler:
    config: Config
    store: Store
    broker: Broker
    lease: Lease | None = None
    _: KW_ONLY
    clock: Callable[[], float] = now
    master_id: str = "master"
    _specs: dict[tuple[str, str], CronSpec] = field(default_factory=dict, init=False)
    _recovered_at: float = field(default=0.0, init=False)
    # Outcomes of fires and schedules' next times, written in bulk after each
    # batch (the fire's claim and its tasks are written at once, one by one).
    _writes: dict[str, list[UpdateOne]] = field(
        default_factory=lambda: {"schedules": [], "schedule_fires": []}, init=False)
    _pruned_at: float = field(default=0.0, init=False)

    # -- the loop ----------------------------------------------------------------
    def leading(self) -> bool:
        return self.lease is None or self.lease.is_leader()

    def run(self, stopped: threading.Event) -> None:
        while not stopped.is_set():
            if not self.leading():
                stopped.wait(FOLLOWER_POLL)
                continue
            try:
                self.tick()
                if self.clock() - self._recovered_at > RECOVER_INTERVAL:
                    self.recover_stuck()
                if self.clock() - self._pruned_at > PRUNE_INTERVAL:
                    self.prune_history()
                pause = self.idle_time()
            except pymongo.errors.PyMongoError as exc:
                log.warning("scheduler pass failed: %s", exc)
                pause = 1.0
            except Exception:
                log.exception("scheduler pass failed")
                pause = 1.0
            stopped.wait(pause)

    def idle_time(self) -> float:
        """Seconds until the earliest due schedule, at most MAX_IDLE."""
        first = list(self.store.schedules.find({"due_at": {"$gte": 0}}, {"due_at": 1})
                     .sort("due_at", 1).limit(1))
        if not first:
            return MAX_IDLE
        return min(MAX_IDLE, max(0.0, first[0]["due_at"] - self.clock()))

    def tick(self, at: float | None = None) -> dict[str, int]:
        """One pass over the due schedules; returns counts of what happened."""
        stats = {"schedules": 0, "fired": 0, "skipped": 0, "queued": 0, "failed": 0,
                 "taken": 0}
        for _ in range(MAX_BATCHES):
            when = self.clock() if at is None else at
            batch = list(self.store.schedules.find({"due_at": {"$lte": when}})
                         .sort("due_at", 1).limit(BATCH))
            try:
                for doc in batch:
                    if not self.leading():
                        return stats
                    stats["schedules"] += 1
                    try:
                        self.process(doc, when, stats)
                    except pymongo.errors.PyMongoError:
                        raise
                    except Exception as exc:
                        log.exception("schedule %s: processing failed", doc["_id"])
                        self.store.schedules.update_one(
                            {"_id": doc["_id"], "due_at": doc["due_at"]},
                            {"$set": {"due_at": when + ERROR_RETRY, "last_error": str(exc)}})
            finally:
                self.flush()
            if len(batch) < BATCH:
                break
        return stats

    def flush(self) -> None:
        """Write the outcomes gathered so far. Lost if the master dies first: a
        schedule is then processed again (its claimed fire times are taken), and
        a fire left `dispatching` is completed by `recover_stuck`."""
        for name, ops in self._writes.items():
            if ops:
                self._writes[name] = []
                self.store.db[name].bulk_write(ops, ordered=False)

    # -- one schedule -------------------------------------------------------------------
    def spec(self, doc: Doc) -> CronSpec:
        key = (doc["cron"], doc.get("timezone") or "UTC")
        spec = self._specs.get(key)
        if spec is None:
            spec = self._specs[key] = CronSpec(*key)
        return spec

    def process(self, doc: Doc, at: float, stats: dict[str, int]) -> None:
        sid = doc["_id"]
        try:
            spec = self.spec(doc)
        except BadRequest as exc:
            self.disable(doc, f"invalid schedule: {exc}")
            return
        state = {"queued": doc.get("queued_fire"), "disable": None, "last": None}
        if state["queued"] is not None:
            self.release_queued(doc, state, at, stats)
        next_fire = doc.get("next_fire_at")
        if doc.get("enabled") and next_fire is not None and next_fire <= at:
            fire, skip = self.plan(doc, spec, next_fire, at)
            if skip:
                self.record_skipped(doc, skip)
                stats["skipped"] += len(skip)
            for fire_time in fire:
                self.fire(doc, fire_time, at, state, stats)
                if state["disable"]:
                    break
            next_fire = spec.next_after(at)
        if state["disable"]:
            self.disable(doc, state["disable"])
            return
        due = next_fire
        if state["queued"] is not None:
            due = min(due, at + QUEUE_RECHECK) if due is not None else at + QUEUE_RECHECK
        update = {"next_fire_at": next_fire, "due_at": due, "queued_fire": state["queued"]}
        if state["last"]:
            update.update(state["last"])
        self._writes["schedules"].append(UpdateOne(
            {"_id": sid, "due_at": doc["due_at"], "next_fire_at": doc.get("next_fire_at")},
            {"$set": update}))

    def plan(self, doc: Doc, spec: CronSpec, first_due: float,
             at: float) -> tuple[list[float], list[Doc]]:
        """(fire times to fire, skipped records) of the times due since `first_due`."""
        catchup_from = at - self.config.schedule_catchup
        recent, _ = spec.between(max(first_due, catchup_from), at, 10_000)
        if first_due >= catchup_from:
            return recent, []
        old, more = spec.between(first_due, catchup_from - 0.001, MISSED_RECORDS)
        if not old:  # `first_due` was no fire time of this expression (edited by hand)
            return recent, []
        latest: float | None
        if recent:
            latest = None
            reason = "missed: no master was firing schedules then"
        else:
            latest = spec.latest_between(first_due, catchup_from - 0.001) if more else old[-1]
            assert latest is not None  # `old` holds a fire time of that span
            grace = doc.get("misfire_grace")
            grace = self.config.schedule_misfire_grace if grace is None else grace
            if at - latest > grace:
                reason = (f"missed: no master was firing schedules then, and it is more "
                          f"than the misfire grace ({grace:g} s) ago")
                latest_fires = False
            else:
                reason = "missed: no master was firing schedules then; a later one ran instead"
                latest_fires = True
        skip = [{"fire_time": t, "reason": reason} for t in old if t != latest]
        if more:
            after = spec.next_after(old[-1])
            if after is not None and after != latest:
                until = latest if latest is not None else (recent[0] if recent else at)
                skip.append({"fire_time": after, "until": until,
                             "reason": f"{reason} (this record stands for every fire time "
                                       f"from here until {iso_time(until, spec.tz)})"})
        if recent:
            return recent, skip
        if latest_fires and latest is not None:
            return [latest], skip
        skip.append({"fire_time": latest, "reason": reason})
        return [], skip

    def record_skipped(self, doc: Doc, skipped: list[Doc]) -> None:
        stamp = self.clock()
        records = [{"schedule_id": doc["_id"], "spider": doc["spider"], "state": SKIPPED,
                    "claimed_at": stamp, "master": self.master_id, "task_ids": [], **s}
                   for s in skipped]
        try:
            self.store.schedule_fires.insert_many(records, ordered=False)
        except pymongo.errors.BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise
        for s in skipped:
            log.info("schedule %s: fire time %s skipped: %s", doc["_id"],
                     iso_time(s["fire_time"]), s["reason"])

    def fire(self, doc: Doc, fire_time: float, at: float, state: Doc,
             stats: dict[str, int]) -> None:
        """Claim one fire time (unique insert), then apply overlap and dispatch."""
        record = {"schedule_id": doc["_id"], "fire_time": fire_time, "spider": doc["spider"],
                  "state": DISPATCHING, "claimed_at": self.clock(), "master": self.master_id,
                  "term": getattr(self.lease, "term", None), "task_ids": [], "reason": None}
        try:
            self.store.schedule_fires.insert_one(record)
        except pymongo.errors.DuplicateKeyError:
            stats["taken"] += 1  # another master fired (or recorded) it
            return
        overlap = doc.get("overlap") or "skip"
        if overlap != "allow":
            active = self.active_task(doc["_id"])
            if active is not None:
                if overlap == "queue" and state["queued"] is None:
                    state["queued"] = fire_time
                    self.finish(doc, fire_time, QUEUED, state, stats,
                                reason=f"queued behind task {active['_id']} ({active['status']})")
                    return
                reason = (f"a run is already queued (fire time {iso_time(state['queued'])})"
                          if overlap == "queue" else
                          f"previous run still {active['status']} (task {active['_id']})")
                self.finish(doc, fire_time, SKIPPED, state, stats, reason=reason)
                return
        self.dispatch(doc, fire_time, state, stats)

    def dispatch(self, doc: Doc, fire_time: float, state: Doc, stats: dict[str, int]) -> None:
        try:
            if doc.get("workers") or doc.get("persist"):
                tasks = self.start_crawl(doc, fire_time)
            else:
                tasks = run_spider(
                    self.store, self.broker, self.config, doc["spider"],
                    args=doc.get("args"), settings=doc.get("settings"),
                    nodes=doc.get("nodes") or "any", timeout=doc.get("timeout"),
                    priority=doc.get("priority") or 0, trigger="schedule",
                    retry=doc.get("retry"), labels=doc.get("labels") or None,
                    extra={"schedule_id": doc["_id"], "fire_time": fire_time})
        except NotFound as exc:
            if self.store.spiders.find_one({"_id": doc["spider"]}, {"_id": 1}) is None:
                reason = f"spider {doc['spider']!r} no longer exists; schedule disabled"
                state["disable"] = (f"spider {doc['spider']!r} was deleted (found at "
                                    f"{iso_time(fire_time)}); enable again once it is back")
                self.finish(doc, fire_time, SKIPPED, state, stats, reason=reason)
            else:
                self.finish(doc, fire_time, FAILED, state, stats, reason=str(exc))
            return
        except (BadRequest, Conflict, CrawlfleetError) as exc:
            self.finish(doc, fire_time, FAILED, state, stats, reason=str(exc))
            return
        self.finish(doc, fire_time, FIRED, state, stats, task_ids=[t["_id"] for t in tasks])

    def start_crawl(self, doc: Doc, fire_time: float) -> list[Doc]:
        """A schedule with workers (or persist) fires one distributed crawl."""
        from master import crawls

        _, tasks = crawls.start_crawl(
            self.store, self.broker, self.config, doc["spider"], workers=doc.get("workers") or 1,
            persist=bool(doc.get("persist")), args=doc.get("args"), settings=doc.get("settings"),
            nodes=doc.get("nodes") or "any", timeout=doc.get("timeout"),
            priority=doc.get("priority") or 0, trigger="schedule", retry=doc.get("retry"),
            labels=doc.get("labels") or None,
            extra={"schedule_id": doc["_id"], "fire_time": fire_time})
        return tasks

    def finish(self, doc: Doc, fire_time: float, outcome: str, state: Doc,
               stats: dict[str, int], *, reason: str | None = None,
               task_ids: list[str] | tuple[str, ...] = ()) -> None:
        stamp = self.clock()
        self._writes["schedule_fires"].append(UpdateOne(
            {"schedule_id": doc["_id"], "fire_time": fire_time},
            {"$set": {"state": outcome, "reason": reason, "task_ids": list(task_ids),
                      "done_at": stamp, "late": round(stamp - fire_time, 3)}}))
        stats[outcome] = stats.get(outcome, 0) + 1
        state["last"] = {"last_fire_time": fire_time, "last_outcome": outcome,
                         "last_task_ids": list(task_ids), "last_reason": reason}
        if outcome == FIRED:
            log.info("schedule %s: fired %s → task(s) %s", doc["_id"], iso_time(fire_time),
                     ", ".join(task_ids))
        elif outcome != QUEUED:
            log.info("schedule %s: fire time %s %s: %s", doc["_id"], iso_time(fire_time),
                     outcome, reason)

    def active_task(self, schedule_id: str) -> Doc | None:
        """A pending or running task of this schedule, or None."""
        return self.store.tasks.find_one(
            {"schedule_id": schedule_id, "status": {"$in": ACTIVE_VALUES}}, {"status": 1})

    def release_queued(self, doc: Doc, state: Doc, at: float, stats: dict[str, int]) -> None:
        """Dispatch the queued fire once the run it waits for has ended."""
        fire_time = state["queued"]
        if self.active_task(doc["_id"]) is not None:
            return
        state["queued"] = None
        claimed = self.store.schedule_fires.update_one(
            {"schedule_id": doc["_id"], "fire_time": fire_time, "state": QUEUED},
            {"$set": {"state": DISPATCHING, "claimed_at": self.clock(),
                      "master": self.master_id}})
        if claimed.modified_count:
            self.dispatch(doc, fire_time, state, stats)

    def disable(self, doc: Doc, reason: str) -> None:
        log.warning("schedule %s disabled: %s", doc["_id"], reason)
        self.store.schedules.update_one(
            {"_id": doc["_id"]},
            {"$set": {"enabled": False, "due_at": None, "next_fire_at": None,
                      "queued_fire": None, "disabled_reason": reason,
                      "updated_at": self.clock()}})

    def prune_history(self, at: float | None = None) -> int:
        """Delete fire records older than ``task_retention_days`` (0 keeps them)."""
        return fireupkeep.prune_history(self, at)

    def recover_stuck(self, at: float | None = None) -> list[Any]:
        """Settle fire records a dead master left ``dispatching`` (master/fireupkeep.py)."""
        return fireupkeep.recover_stuck(self, at)
