"""Monotonic counters kept in the store, which /metrics exposes as Prometheus
counters (web/metrics.py).

Counts that the ledger alone cannot give: retention deletes old tasks, so a
sum over `tasks` would go down. Each counter is one document of the
``counters`` collection, ``{_id, metric, labels…, value}``, raised with an
atomic ``$inc`` (upserted), so any number of processes can count into it.

- ``items:<spider>``: items a spider's tasks ingested. A node adds a task's
  final ``stats.items`` once, when the task ends on it (`add_task_items`).
  Best effort: a task whose node died is not counted (its items are in the
  results all the same), and a store outage at that moment skips it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import pymongo.errors
from pymongo.collection import Collection

if TYPE_CHECKING:
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

COLLECTION = "counters"
ITEMS = "items_ingested"


def collection(store: Store) -> Collection[Any]:
    return store.db[COLLECTION]


def add_task_items(store: Store, task_id: str, session: str) -> int:
    """Add the items of a task that ended on this node (`session`) to its
    spider's counter. Returns the number added."""
    try:
        task = store.tasks.find_one({"_id": task_id}, {"spider": 1, "stats": 1, "session": 1})
        if task is None or task.get("session") != session:
            return 0
        items = int((task.get("stats") or {}).get("items") or 0)
        if items > 0:
            collection(store).update_one(
                {"_id": f"items:{task['spider']}"},
                {"$inc": {"value": items}, "$set": {"metric": ITEMS, "spider": task["spider"]}},
                upsert=True)
        return items
    except (pymongo.errors.PyMongoError, TypeError, ValueError) as exc:
        log.warning("task %s: items not counted for /metrics: %s", task_id, exc)
        return 0


def items_by_spider(store: Store) -> dict[str, int]:
    """{spider: items ingested}."""
    return {doc["spider"]: doc.get("value") or 0
            for doc in collection(store).find({"metric": ITEMS}, {"spider": 1, "value": 1})
            if isinstance(doc.get("spider"), str)}
