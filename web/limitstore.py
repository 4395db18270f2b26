"""A `limits` storage in crawlfleet's own store, for Flask-Limiter when no
Redis is configured: every gunicorn worker and every web server reading the
same MongoDB shares the same counters.

limits ships a MongoDB storage, but it updates counters with an aggregation
pipeline (``$$NOW``, ``$cond``) that the embedded nx-27017 server does not
implement; this one keeps to plain ``$inc`` / ``$set`` / unique ``_id``
operations that both it and MongoDB support. It serves the fixed-window
strategy (the only one `web.guard` uses).

URI: ``crawlfleet+mongodb://host:port/...`` (the store's URI with the prefix);
the database is the ``database_name`` storage option.
"""

from __future__ import annotations

import datetime
import time

import pymongo
import pymongo.errors
from limits.storage import Storage

SCHEME = "crawlfleet+mongodb"
COLLECTION = "rate_limits"


class StoreLimitStorage(Storage):
    """Fixed-window counters: one document per key, ``count`` and ``expire_at``."""

    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str, database_name: str = "crawlfleet",
                 wrap_exceptions: bool = False, **options) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._uri = "mongodb" + uri[len(SCHEME):]
        self._database_name = database_name
        self._options = options
        self._client: pymongo.MongoClient | None = None
        self._indexed = False

    @property
    def base_exceptions(self):
        return pymongo.errors.PyMongoError

    @property
    def counters(self):
        if self._client is None:
            self._client = pymongo.MongoClient(self._uri, serverSelectionTimeoutMS=5000,
                                               **self._options)
        collection = self._client[self._database_name][COLLECTION]
        if not self._indexed:
            # the server drops counters a day after they lapse (guessed names
            # would otherwise pile up); `expire_at` is what the code reads
            collection.create_index("drop_after", expireAfterSeconds=86400)
            self._indexed = True
        return collection

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        for _ in range(5):  # lost races: another worker created or reset the key
            stamp = time.time()
            doc = self.counters.find_one_and_update(
                {"_id": key, "expire_at": {"$gt": stamp}}, {"$inc": {"count": amount}},
                return_document=pymongo.ReturnDocument.AFTER)
            if doc is not None:
                return int(doc["count"])
            fresh = {"count": amount, "expire_at": stamp + expiry,
                     "drop_after": datetime.datetime.fromtimestamp(stamp + expiry,
                                                                   datetime.timezone.utc)}
            if self.counters.update_one({"_id": key, "expire_at": {"$lte": stamp}},
                                        {"$set": fresh}).matched_count:
                return amount
            try:
                self.counters.insert_one({"_id": key, **fresh})
                return amount
            except pymongo.errors.DuplicateKeyError:
                continue
        raise pymongo.errors.OperationFailure(f"rate-limit counter {key!r} kept changing")

    def get(self, key: str) -> int:
        doc = self.counters.find_one({"_id": key, "expire_at": {"$gt": time.time()}})
        return int(doc["count"]) if doc else 0

    def get_expiry(self, key: str) -> float:
        doc = self.counters.find_one({"_id": key})
        return float(doc["expire_at"]) if doc else time.time()

    def check(self) -> bool:
        try:
            self.counters.database.command("ping")
            return True
        except pymongo.errors.PyMongoError:
            return False

    def reset(self) -> int | None:
        return self.counters.delete_many({}).deleted_count

    def clear(self, key: str) -> None:
        self.counters.delete_one({"_id": key})
