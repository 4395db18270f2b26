"""What a spider process knows about its task, read from its environment,
and the two writes it makes: items into the results collection, counts and
stats into the task document."""

import atexit
import logging
import os
import threading
import time

import pymongo
import pymongo.errors
import pymongo.synchronous.monitor

from crawlfleet.results import dedup
from crawlfleet.results.writer import TaskWriter, WriteCounts, add_counts, write_batch
from crawlfleet.retrying import STORE_OUTAGE, STORE_UNREACHABLE

log = logging.getLogger(__name__)

# At exit pymongo joins its monitor threads, which wake only every half second:
# every spider process would linger that long after its work is done. The SDK
# closes its own clients, and daemon threads end with the process anyway.
_JOIN_MONITORS = getattr(pymongo.synchronous.monitor, "_shutdown_resources", None)
if _JOIN_MONITORS is not None:
    atexit.unregister(_JOIN_MONITORS)

COUNT_INTERVAL = 1.0

# Item writes are retried (`STORE_OUTAGE`) before the spider gives up loudly:
# an item is never silently dropped.


class TaskContext:
    def __init__(self, task_id, mongo_uri, mongo_db, collection, node_id="", *,
                 session=None, root_id=None, attempt=1, policy=None):
        self.task_id = task_id
        self.node_id = node_id
        # what the batch writer needs: who owns the task (fencing), which crawl
        # it belongs to, and how items are deduplicated
        self.writer = TaskWriter(task_id=task_id, collection=collection, session=session,
                                 node_id=node_id or None, root_id=root_id or task_id,
                                 attempt=attempt, policy=policy)
        self.client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000,
                                          appname=f"crawlfleet-spider-{task_id}")
        self.db = self.client[mongo_db]
        self.collection = self.db[collection]
        self.tasks = self.db.tasks
        self.count_lock = threading.Lock()
        self.uncounted = WriteCounts()
        self.counted_at = time.monotonic()

    @classmethod
    def from_environ(cls, environ):
        task_id = environ.get("CRAWLFLEET_TASK_ID")
        if not task_id:
            return None
        return cls(
            task_id,
            environ["CRAWLFLEET_MONGO_URI"],
            environ.get("CRAWLFLEET_MONGO_DB", "crawlfleet"),
            environ["CRAWLFLEET_RESULTS_COLLECTION"],
            environ.get("CRAWLFLEET_NODE_ID", ""),
            session=environ.get("CRAWLFLEET_TASK_SESSION") or None,
            root_id=environ.get("CRAWLFLEET_ROOT_ID") or None,
            attempt=int(environ.get("CRAWLFLEET_ATTEMPT") or 1),
            policy=dedup.from_environ(environ),
        )

    def use_settings(self, settings):
        """Let a Scrapy project's settings name the dedup policy (the node's
        variables, from the spider's platform setting, still win)."""
        self.writer.policy = dedup.from_environ(os.environ, settings)

    def insert_items(self, items):
        """Store items through the batch writer (fenced, deduplicated, tagged with
        the task id and `_at`), retrying while the store is unreachable;
        returns the count stored (new and updated). Raises `Fenced` when the
        task is no longer this process's."""
        items = list(items)
        counts = self._retry(lambda: write_batch(self.db, self.writer, items))
        with self.count_lock:
            self.uncounted.add(counts)
        if time.monotonic() - self.counted_at >= COUNT_INTERVAL:
            self.count()
        return counts.stored

    def count(self):
        """Add the items stored since the last count to the task's `stats`
        (items, new, updated, ignored; once a second at most: one more write
        per batch would cost a fifth of the ingest rate)."""
        with self.count_lock:
            n = self.uncounted.take()
            self.counted_at = time.monotonic()
        if n:
            try:
                self._retry(lambda: add_counts(self.db, self.task_id, n))
            except pymongo.errors.PyMongoError:
                with self.count_lock:
                    self.uncounted.add(n)
                raise

    def update_stats(self, stats):
        try:
            self.tasks.update_one({"_id": self.task_id},
                                  {"$set": {f"stats.{k}": v for k, v in stats.items()}})
        except pymongo.errors.PyMongoError as exc:
            log.warning("crawlfleet: stats not sent: %s", exc)

    def _retry(self, operation):
        return STORE_OUTAGE.call(
            operation, retry_on=STORE_UNREACHABLE,
            on_retry=lambda exc, attempt, wait: log.warning(
                "crawlfleet: store unreachable (%s); retry %d in %.1f s", exc, attempt, wait))

    def close(self):
        self.count()
        self.client.close()
