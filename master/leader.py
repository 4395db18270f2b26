"""Leader election between masters: a lease document in ``leases``.

Every master runs a `Lease` for the name ``scheduler``. The holder renews it
every quarter of ``schedule_lease_ttl``; anyone may take it once it has
expired. Taking and renewing are each one atomic ``find_one_and_update`` on
the lease document, so two masters can never both succeed at the same
moment. A master that dies stops renewing, and another takes over within
the TTL plus one poll. One that stops cleanly (SIGTERM) gives the lease up
at once.

A leader also keeps a local, monotonic deadline: it considers itself leader
only until ``renewed + ttl - margin`` by its own clock, so a master whose
renewals stall (store slow, process paused) stops acting before another one
can take over. Lease times are epoch floats from each master's clock: masters
on several hosts need clocks in step (NTP) to well under the TTL. Even if
they are not, the unique key on (schedule, fire time) keeps a tick from
firing twice; leadership only keeps the work in one place.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING

import pymongo
from pymongo import ReturnDocument

from crawlfleet.models import Doc, now

if TYPE_CHECKING:
    from collections.abc import Callable

    from crawlfleet.store import Store

log = logging.getLogger(__name__)

SAFETY_MARGIN = 0.2  # of the TTL: stop acting this much before the lease can lapse


class Lease:
    def __init__(self, store: Store, name: str, owner: str, ttl: float, *,
                 clock: Callable[[], float] = now,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.store = store
        self.name = name
        self.owner = owner
        self.ttl = float(ttl)
        self.clock = clock
        self.monotonic = monotonic
        self._valid_until = 0.0
        self.term: int | None = None           # bumped each time the lease changes hands
        self.leader_since: float | None = None   # epoch time this owner took the lease
        self.changed = threading.Event()  # set whenever leadership is gained or lost

    @property
    def interval(self) -> float:
        """Seconds between renewals (and between attempts to take the lease)."""
        return self.ttl / 4

    def is_leader(self) -> bool:
        return self.monotonic() < self._valid_until

    def refresh(self) -> bool:
        """Renew the lease, or take it if it has lapsed; True while we hold it."""
        started = self.monotonic()
        at = self.clock()
        was_leader = self.is_leader()
        try:
            doc = self._renew(at) or self._take_over(at) or self._create(at)
        except pymongo.errors.PyMongoError as exc:
            log.warning("lease %s: store error (%s)", self.name, exc)
            doc = None
        if doc is not None and doc.get("owner") == self.owner:
            self._valid_until = started + self.ttl * (1 - SAFETY_MARGIN)
            if not was_leader:
                self.term = doc.get("term")
                self.leader_since = doc.get("acquired_at", at)
                log.info("lease %s: %s is leader (term %s)", self.name, self.owner, self.term)
                self.changed.set()
            return True
        self._valid_until = 0.0
        if was_leader:
            log.warning("lease %s: %s lost it", self.name, self.owner)
            self.leader_since = None
            self.changed.set()
        return False

    def _renew(self, at: float) -> Doc | None:
        return self.store.leases.find_one_and_update(
            {"_id": self.name, "owner": self.owner, "expires_at": {"$gte": at}},
            {"$set": {"expires_at": at + self.ttl, "renewed_at": at}},
            return_document=ReturnDocument.AFTER)

    def _take_over(self, at: float) -> Doc | None:
        return self.store.leases.find_one_and_update(
            {"_id": self.name, "expires_at": {"$lt": at}},
            {"$set": {"owner": self.owner, "expires_at": at + self.ttl, "renewed_at": at,
                      "acquired_at": at},
             "$inc": {"term": 1}},
            return_document=ReturnDocument.AFTER)

    def _create(self, at: float) -> Doc | None:
        try:
            self.store.leases.insert_one(
                {"_id": self.name, "owner": self.owner, "expires_at": at + self.ttl,
                 "renewed_at": at, "acquired_at": at, "term": 1})
        except pymongo.errors.DuplicateKeyError:
            return None  # it exists and is held by someone else
        return self.store.leases.find_one({"_id": self.name})

    def release(self) -> None:
        """Give the lease up (clean stop), so another master takes it at once."""
        was = self.is_leader()
        self._valid_until = 0.0
        if not was:
            return
        try:
            self.store.leases.update_one({"_id": self.name, "owner": self.owner},
                                         {"$set": {"expires_at": 0.0}})
            log.info("lease %s: %s gave it up", self.name, self.owner)
        except pymongo.errors.PyMongoError as exc:
            log.warning("lease %s: could not give it up (%s); it lapses in %.1f s",
                        self.name, exc, self.ttl)

    def holder(self) -> Doc | None:
        """The lease document (owner, expires_at, term), or None."""
        return self.store.leases.find_one({"_id": self.name})

    def run(self, stopped: threading.Event) -> None:
        """Keep the lease fresh (or keep trying to take it) until `stopped` is set."""
        while not stopped.is_set():
            self.refresh()
            stopped.wait(self.interval)
        self.release()
