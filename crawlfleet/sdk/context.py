"""What a spider process knows about its task, read from its environment,
and the two writes it makes: items into the results collection, counts and
stats into the task document."""

import atexit
import logging
import threading
import time

import pymongo
import pymongo.errors
import pymongo.synchronous.monitor

from crawlfleet.items import insert_batch, prepare
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
    def __init__(self, task_id, mongo_uri, mongo_db, collection, node_id=""):
        self.task_id = task_id
        self.node_id = node_id
        self.client = pymongo.MongoClient(mongo_uri, serverSelectionTimeoutMS=10_000,
                                          appname=f"crawlfleet-spider-{task_id}")
        self.db = self.client[mongo_db]
        self.collection = self.db[collection]
        self.tasks = self.db.tasks
        self.count_lock = threading.Lock()
        self.uncounted = 0
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
        )

    def insert_items(self, items):
        """Insert items tagged with the task id and their insertion time (`_at`),
        retrying; returns the count stored."""
        items = prepare(items, self.task_id)
        self._retry(lambda: insert_batch(self.collection, items))
        with self.count_lock:
            self.uncounted += len(items)
        if time.monotonic() - self.counted_at >= COUNT_INTERVAL:
            self.count()
        return len(items)

    def count(self):
        """Add the items stored since the last count to the task's `stats.items`
        (once a second at most: one more write per batch would cost a fifth of
        the ingest rate)."""
        with self.count_lock:
            n, self.uncounted = self.uncounted, 0
            self.counted_at = time.monotonic()
        if n:
            try:
                self._retry(lambda: self.tasks.update_one(
                    {"_id": self.task_id}, {"$inc": {"stats.items": n}}))
            except pymongo.errors.PyMongoError:
                with self.count_lock:
                    self.uncounted += n
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
