"""A crawl's results hold its final attempt's items, once.

A crawl is its first task (the root) and its retries ``<root>-a2``,
``<root>-a3``, ... (`crawlfleet.models.next_attempt`). When a later attempt
finishes, the items the attempts before it stored are removed from the
results collection — or, when the spider keeps partial attempts
(``keep_partial_attempts``), kept and marked ``_superseded_by`` — so that
the crawl's views (`crawlfleet results ROOT`, the API, the UI, exports) show
the final attempt's items once.

With deduplication the final attempt has already overwritten (or, in
``ignore`` mode, taken over) every item it scraped again; what remains under
an earlier attempt's id is what only that attempt saw. Rows first seen before
this crawl began are left alone: they belong to earlier crawls.
"""

from __future__ import annotations

from typing import Mapping

from crawlfleet.results.dedup import DedupPolicy

FINISHED = "finished"


def attempt_ids(root_id: str, attempt: int) -> list[str]:
    """Ids of the attempts of crawl `root_id` before attempt number `attempt`."""
    return [root_id] + [f"{root_id}-a{n}" for n in range(2, attempt)]


def replaced(store, task: Mapping, policy: DedupPolicy | None) -> tuple[list[str], float | None]:
    """What attempt `task` replaces: the earlier attempts' ids, and with dedup
    the time its crawl began (rows first seen before it belong to earlier
    crawls); no ids for a first attempt."""
    attempt = task.get("attempt") or 1
    if attempt <= 1:
        return [], None
    root_id = task.get("root_id") or task["_id"]
    first_since = None
    if policy is not None:
        root = store.tasks.find_one({"_id": root_id}, {"created_at": 1}) or {}
        first_since = root.get("created_at") or None
    return attempt_ids(root_id, attempt), first_since


def supersede(store, task: Mapping, *, policy: DedupPolicy | None = None,
              keep_partial: bool = False) -> int:
    """Remove (or mark) the items of the attempts `task` replaced; returns how many."""
    earlier, first_since = replaced(store, task, policy)
    if not earlier:
        return 0
    query: dict = {"_tid": {"$in": earlier}}
    if first_since is not None:
        query["_first_at"] = {"$gte": first_since}
    collection = store.db[task["results_collection"]]
    if keep_partial:
        return collection.update_many(query, {"$set": {"_superseded_by": task["_id"]}}).modified_count
    return collection.delete_many(query).deleted_count


def final_attempt(store, task: Mapping) -> Mapping:
    """The task whose items stand for the crawl of `task`: its last finished
    attempt, else `task` itself (a crawl still running shows what it has)."""
    root_id = task.get("root_id") or task["_id"]
    if not task.get("retried_by") and root_id == task["_id"] and (task.get("attempt") or 1) == 1:
        return task
    chain = list(store.tasks.find({"root_id": root_id, "status": FINISHED},
                                  {"_id": 1, "attempt": 1, "results_collection": 1,
                                   "spider": 1}))
    if not chain:
        return task
    return max(chain, key=lambda t: t.get("attempt") or 1)
