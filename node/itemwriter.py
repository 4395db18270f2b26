"""The node's side of a task's writes: items and live stats arrive from the
spider (through its channel or its items pipe) and the node writes them, so a
spider never holds a credential of the store.

Every write is fenced: it is made only while this node still owns the task
(the ledger says `running` with this node's session). A node that lost its
claim — stopped for a while and declared dead, its task handed to another
node — or whose task was cancelled or ended, stores nothing more for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import pymongo.errors
from bson import ObjectId

from crawlfleet.errors import BadRequest, CrawlfleetError
from crawlfleet.items import origin_id
from crawlfleet.models import Doc, TaskStatus
from crawlfleet.results import dedup
from crawlfleet.results.writer import TaskWriter, WriteCounts, add_counts, write_batch
from crawlfleet.retrying import STORE_OUTAGE

if TYPE_CHECKING:
    from crawlfleet.store import Store

T = TypeVar("T")

log = logging.getLogger(__name__)

COUNT_INTERVAL = 1.0
# Errors a retry cannot mend: the batch itself is refused.
REFUSED_BATCH = (pymongo.errors.BulkWriteError, pymongo.errors.DocumentTooLarge,
                 pymongo.errors.InvalidOperation)
# How old the last "still ours" answer of the ledger may be. A node that was
# stopped (SIGSTOP, a frozen VM) finds its answer stale when it wakes: the
# monotonic clock moved on meanwhile.
OWNERSHIP_TTL = 0.5


class NotOwned(Exception):
    """Raised for a write of a task this node no longer owns."""


class ItemWriter:
    def __init__(self, store: Store, task: Doc, session: str, say: Callable[[str], None],
                 policy: dedup.DedupPolicy | None = None) -> None:
        self.store = store
        self.task = task
        self.task_id = task["_id"]
        self.session = session
        self.collection = task["results_collection"]
        # dedup, counts and attempts: the shared batch writer (crawlfleet/results);
        # ownership is checked here, once per OWNERSHIP_TTL rather than per batch
        self.task_writer = TaskWriter.from_task({**task, "session": session}, policy)
        self.say = say
        self.lock = threading.Lock()
        self.disowned = ""
        self.checked_at = float("-inf")
        self.stored = 0
        self.lost = 0
        self.refused = 0
        self.uncounted = WriteCounts()
        self.counted_at = time.monotonic()
        self.indexed = False

    # -- ownership ------------------------------------------------------------------
    def disown(self, reason: str) -> None:
        """The node knows it gave the task up (ledger watch, shutdown, end)."""
        self.disowned = reason or "the task ended"

    def check_owned(self) -> None:
        if self.disowned:
            raise NotOwned(self.disowned)
        if time.monotonic() - self.checked_at < OWNERSHIP_TTL:
            return
        doc = self.store.tasks.find_one({"_id": self.task_id}, {"status": 1, "session": 1})
        if doc is None or doc.get("session") != self.session:
            self.disown("another attempt owns this task now")
        elif doc.get("status") != TaskStatus.RUNNING.value:
            self.disown(f"the task is {doc.get('status')}")
        if self.disowned:
            raise NotOwned(self.disowned)
        self.checked_at = time.monotonic()

    def use_spider_policy(self, keys: Any, mode: Any) -> None:
        """The dedup policy a Scrapy project's settings name, when the platform
        set none for the spider (raises CrawlfleetError when it does not parse)."""
        if self.task_writer.policy is None:
            try:
                self.task_writer.policy = dedup.parse(keys, mode)
            except BadRequest as exc:
                raise CrawlfleetError(f"dedup setting: {exc}") from None

    # -- writes ---------------------------------------------------------------------
    def store_items(self, items: list[Doc], origins: list[str | None] | None = None) -> int:
        """Store a batch for the task; returns how many. Raises NotOwned, or
        PyMongoError after retries (the batch is then counted as lost).

        Every item gets its `_id` here, before the first try, so that a retry
        of a batch that landed in part skips the copies that did land. An item
        of a crawl tagged with its origin (`origins`, see
        crawlfleet.sdk.origins) gets an `_id` derived from it: fetched again
        after its worker died, or by a resumed crawl, it is stored once."""
        if not items:
            return 0
        crawl_id = self.task.get("crawl_id")
        for item, origin in zip(items, origins or [None] * len(items)):
            if "_id" not in item:
                item["_id"] = origin_id(crawl_id, origin) if crawl_id and origin else ObjectId()
        with self.lock:
            try:
                self._with_retries(self.check_owned)
            except NotOwned:
                self.refused += len(items)
                raise
            if not self.indexed:
                self.ensure_indexes()
            try:
                counts = self._with_retries(lambda: write_batch(
                    self.store, self.task_writer, items, fence=False))
            except pymongo.errors.PyMongoError:
                self.lost += len(items)
                raise
            self.stored += counts.stored
            self.uncounted.add(counts)
            if time.monotonic() - self.counted_at >= COUNT_INTERVAL:
                self._count()
        return counts.stored

    def set_stats(self, stats: Any) -> None:
        """Live stats into the task document, only while the task is ours."""
        if not isinstance(stats, dict) or not stats:
            return
        fields = {f"stats.{k}": v for k, v in stats.items()
                  if isinstance(k, str) and k and "." not in k and not k.startswith("$")
                  and k != "items"}
        if not fields or self.disowned:
            return
        try:
            self.store.tasks.update_one(
                {"_id": self.task_id, "session": self.session,
                 "status": TaskStatus.RUNNING.value}, {"$set": fields})
        except pymongo.errors.PyMongoError as exc:
            log.warning("task %s: stats not written (%s)", self.task_id, exc)

    def close(self) -> None:
        with self.lock:
            self._count()

    def ensure_indexes(self) -> None:
        try:
            # the collection's indexes (`_tid`, `_at`), whichever way the spider
            # stores its items: made once per task
            self.store.results(self.collection)
            self.indexed = True
        except pymongo.errors.PyMongoError as exc:
            log.warning("task %s: indexes of %s not made (%s)", self.task_id, self.collection, exc)

    def _count(self) -> None:
        """Add the items stored since the last count to the task's stats (items,
        new, updated, ignored; once a second at most: a count per batch would
        cost a fifth of the ingest rate)."""
        counts = self.uncounted.take()
        self.counted_at = time.monotonic()
        if not counts:
            return
        try:
            add_counts(self.store, self.task_id, counts)
        except pymongo.errors.PyMongoError as exc:
            self.uncounted.add(counts)
            log.warning("task %s: item count not updated (%s)", self.task_id, exc)

    def _with_retries(self, operation: Callable[[], T]) -> T:
        return STORE_OUTAGE.call(
            operation, give_up_on=REFUSED_BATCH,
            on_retry=lambda exc, attempt, wait: log.warning(
                "task %s: store unreachable (%s); retry %d", self.task_id, exc, attempt))
