"""What crawlfleet stores with every scraped item, and how a batch is written.

Shared by the SDK (spider processes) and the node's items pipe, so an item
stored either way looks the same: NaN and infinities made null, the task id as
``_tid`` and ``task_id`` (Crawlab's name), and ``_at``, when it was stored.
"""

import hashlib
import math
import time
from typing import Any

import pymongo.errors
from bson import ObjectId
from pymongo.collection import Collection


def clean(value: Any) -> Any:
    """NaN and infinities become None: JSON-backed stores (nx-27017) refuse them,
    and no export format can carry them. Containers are copied."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [clean(v) for v in value]
    return value


def prepare(items: list[Any], task_id: str) -> list[dict[str, Any]]:
    """Cleaned copies of `items`, tagged with the task id and `_at` (UTC epoch
    seconds), strictly increasing within the batch so that the results browser
    can page in insertion order by an index on it."""
    items = [clean(item) for item in items]
    base = time.time()
    for i, item in enumerate(items):
        item["_tid"] = item["task_id"] = task_id
        item["_at"] = base + i * 1e-6
    return items


def origin_id(crawl_id: str, origin: str) -> ObjectId:
    """The `_id` of the item of crawl `crawl_id` tagged `origin` (the request it
    came from and its position, crawlfleet.sdk.origins): the first 12 bytes of
    a SHA-256, an ObjectId still so that pages and cursors on `_id` work."""
    return ObjectId(hashlib.sha256(f"{crawl_id}\0{origin}".encode()).digest()[:12])


def insert_batch(collection: Collection[Any], items: list[dict[str, Any]]) -> int:
    """insert_many that may be called again with the same prepared batch: a
    retried batch that landed in part has its `_id`s set already, so its
    duplicates are the copies that did land. Returns how many items were
    refused as copies of a stored `_id`."""
    return len(insert_refusing_copies(collection, items))


def insert_refusing_copies(collection: Collection[Any], docs: list[dict[str, Any]]) -> set[int]:
    """Insert `docs` unordered; the indexes of those a unique index refused
    (a copy of a stored `_id` or dedup key). Any other write error raises."""
    if not docs:
        return set()
    try:
        collection.insert_many(docs, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {e["index"] for e in errors}
    return set()
