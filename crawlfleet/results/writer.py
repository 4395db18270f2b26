"""The one way a batch of items is stored: fenced, deduplicated, counted.

Every path that stores items (the SDK in a spider process, the injected
Scrapy pipeline, the node's items pipe, and the node-side channel that will
replace the first two) calls `write_batch(store, task, batch)`:

1. fencing: the task must still be running under the writer's session (or
   node); an attempt that lost its task (its node paused, was declared dead,
   and the task was retried elsewhere) is refused with `Fenced` before it
   stores anything;
2. items are cleaned and tagged (`crawlfleet.items.prepare`: ``_tid``,
   ``task_id``, ``_at``);
3. without a dedup policy they are inserted; with one they are upserted on
   the key fields — ``overwrite`` replaces the stored copy (keeping its
   ``_first_at``), ``ignore`` keeps the first;
4. the counts (new, updated, ignored) are returned for the caller to add to
   the task document (`add_counts`), which it may do less often than once a
   batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import pymongo.errors
from bson import ObjectId
from pymongo import ReplaceOne, UpdateOne
from pymongo.database import Database

from crawlfleet.errors import CrawlfleetError
from crawlfleet.items import insert_batch, insert_refusing_copies, prepare
from crawlfleet.results import dedup

RUNNING = "running"


class Fenced(CrawlfleetError):
    """Raised when an attempt that no longer owns its task tries to store items."""


@dataclass
class WriteCounts:
    new: int = 0
    updated: int = 0
    ignored: int = 0

    @property
    def stored(self) -> int:
        return self.new + self.updated

    def add(self, other: "WriteCounts") -> None:
        self.new += other.new
        self.updated += other.updated
        self.ignored += other.ignored

    def take(self) -> "WriteCounts":
        """These counts, leaving zero behind."""
        out = WriteCounts(self.new, self.updated, self.ignored)
        self.new = self.updated = self.ignored = 0
        return out

    def __bool__(self) -> bool:
        return bool(self.new or self.updated or self.ignored)


@dataclass
class TaskWriter:
    """What `write_batch` needs to know of a task, from its ledger document or
    from a spider's environment."""

    task_id: str
    collection: str
    session: str | None = None
    node_id: str | None = None
    root_id: str | None = None
    attempt: int = 1
    policy: dedup.DedupPolicy | None = None
    indexed: set = field(default_factory=set)
    # True when the server's updates filtered on key fields scan the collection
    # (nx-27017 reports no version): dedup then reads the stored rows by `_id`
    # and replaces them by `_id` or inserts, instead of upserting on the keys
    slow_updates: bool | None = None

    @classmethod
    def from_task(cls, task: Mapping, policy: dedup.DedupPolicy | None = None) -> "TaskWriter":
        return cls(task_id=task["_id"], collection=task["results_collection"],
                   session=task.get("session"), node_id=task.get("node_id"),
                   root_id=task.get("root_id") or task["_id"], attempt=task.get("attempt") or 1,
                   policy=policy)

    def earlier_attempts(self) -> list[str]:
        root = self.root_id or self.task_id
        return [root] + [f"{root}-a{n}" for n in range(2, self.attempt)]


def _db(store) -> Database:
    """The database of a `crawlfleet.store.Store`, or a pymongo Database as is
    (whose attributes name collections: `database.db` would be one)."""
    return store if isinstance(store, Database) else store.db


def check_owner(db, writer: TaskWriter) -> None:
    """Refuse writes from an attempt that lost its task (see module doc)."""
    query: dict[str, Any] = {"_id": writer.task_id, "status": RUNNING}
    if writer.session:
        query["session"] = writer.session
    elif writer.node_id:
        query["node_id"] = writer.node_id
    else:
        return  # a writer that names no owner (a tool, a test) is not a task attempt
    if db.tasks.find_one(query, {"_id": 1}) is None:
        task = db.tasks.find_one({"_id": writer.task_id}, {"status": 1, "node_id": 1}) or {}
        raise Fenced(f"task {writer.task_id} is no longer this writer's "
                     f"({task.get('status', 'unknown')} on node {task.get('node_id')}): "
                     "items refused")


def write_batch(store, writer: TaskWriter, batch: Iterable[Mapping], *,
                fence: bool = True) -> WriteCounts:
    """Store `batch` for the task of `writer`; returns what happened to the items.

    May be called again with the same batch after an error: inserts skip the
    copies that landed, upserts are idempotent."""
    db = _db(store)
    if fence:
        check_owner(db, writer)
    items = prepare(list(batch), writer.task_id)
    if not items:
        return WriteCounts()
    collection = db[writer.collection]
    if writer.policy is None:
        copies = insert_batch(collection, items)
        return WriteCounts(new=len(items) - copies, ignored=copies)
    if writer.policy.index_name not in writer.indexed:
        dedup.ensure_index(collection, writer.policy)
        writer.indexed.add(writer.policy.index_name)
    if writer.slow_updates is None:
        writer.slow_updates = "version" not in db.client.server_info()
    if writer.slow_updates:
        counts = _read_then_insert(collection, writer.policy, items)
    else:
        counts = _upsert(collection, writer.policy, items)
    if writer.policy.mode == "ignore" and writer.attempt > 1:
        _take_over(collection, writer, items)
    return counts


def _operation(policy: dedup.DedupPolicy, item: dict) -> UpdateOne:
    item.pop("_id", None)
    new = {"_id": key_id(policy, item), "_first_at": item["_at"]}
    if policy.mode == "overwrite":
        update = {"$set": item, "$setOnInsert": new}
    else:
        update = {"$setOnInsert": {**item, **new}}
    return UpdateOne(policy.key_of(item), update, upsert=True)


def _upsert(collection, policy: dedup.DedupPolicy, items: list[dict]) -> WriteCounts:
    operations = [_operation(policy, item) for item in items]
    new = 0
    for _ in range(3):
        try:
            result = collection.bulk_write(operations, ordered=False)
            new += result.upserted_count
            break
        except pymongo.errors.BulkWriteError as exc:
            details = exc.details
            failed = details.get("writeErrors", [])
            if any(e.get("code") != 11000 for e in failed):
                raise
            new += details.get("nUpserted", 0)
            # Two writers inserted the same new key at once: the loser's
            # operations now find the winner's row and update or ignore it.
            operations = [operations[e["index"]] for e in failed]
    else:
        raise CrawlfleetError(f"{len(operations)} items kept colliding on their dedup key")
    others = len(items) - new
    if policy.mode == "overwrite":
        return WriteCounts(new=new, updated=others)
    return WriteCounts(new=new, ignored=others)


def _key(policy: dedup.DedupPolicy, doc: Mapping) -> str:
    return repr([doc.get(k) for k in policy.keys])


def _stored(collection, policy: dedup.DedupPolicy, keys: dict) -> dict:
    """{key: stored row (`_id`, `_first_at`, `_at`)} of the rows holding `keys`,
    read through the first key field's index (a `$or` would scan on nx-27017)."""
    first = policy.keys[0]
    values = list({repr(v): v for v in (it.get(first) for it in keys.values())}.values())
    fields = {k: 1 for k in policy.keys} | {"_first_at": 1, "_at": 1}
    rows = collection.find({first: {"$in": values}}, fields)
    return {k: row for row in rows if (k := _key(policy, row)) in keys}



def key_id(policy: dedup.DedupPolicy, item: Mapping) -> ObjectId:
    """The `_id` of the row holding `item`'s key: the first 12 bytes of a
    SHA-256 of the key values. An ObjectId still, so pages and cursors keyed on
    `_id` work as for any row; it lets a writer find a key's row by `_id`
    (fast on nx-27017, unlike a read through the key fields' index)."""
    values = json.dumps([item.get(k) for k in policy.keys], sort_keys=True, default=str)
    return ObjectId(hashlib.sha256(values.encode()).digest()[:12])


def _replace(collection, items: list[dict]) -> tuple[set[int], set[int]]:
    """Replace the stored rows of `items` by `_id` (fast on nx-27017, which finds
    them through the `_id` column, unlike a filter on the key fields); returns
    (indexes inserted because their row went between the read and this write,
    indexes refused by the unique index). Other errors raise."""
    if not items:
        return set(), set()
    # upsert: a row another writer removed meanwhile is written anyway, and
    # the server says which (a replace that matched nothing would be silent)
    operations = [ReplaceOne({"_id": item["_id"]}, item, upsert=True) for item in items]
    try:
        result = collection.bulk_write(operations, ordered=False)
    except pymongo.errors.BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return ({u["index"] for u in exc.details.get("upserted", [])},
                {e["index"] for e in errors})
    return set(result.upserted_ids), set()


def _read_then_insert(collection, policy: dedup.DedupPolicy, items: list[dict]) -> WriteCounts:
    """Deduplicate without upserts on the key fields, for servers whose updates
    filtered on fields other than `_id` scan the whole collection (nx-27017:
    65 upserts/s at 3,000 rows). Each row's `_id` is derived from its key (`key_id`): the
    batch's stored rows are read by `_id`; ``overwrite`` replaces them by
    `_id` with the new versions, keeping their first-seen time (a replace of
    one row is atomic: readers see the old version or the new, never
    neither), ``ignore`` leaves them; new keys are inserted. A key another
    writer inserts meanwhile, or a row stored before dedup was on (its `_id`
    is not derived), is refused by the unique index and sorted out by a read
    through the key fields."""
    pending: dict[ObjectId, dict] = {}
    for item in items:
        item["_id"] = key_id(policy, item)
        if policy.mode == "overwrite" or item["_id"] not in pending:
            pending[item["_id"]] = item
    counts = WriteCounts()
    repeated = len(items) - len(pending)  # copies of one key within the batch
    if policy.mode == "overwrite":
        counts.updated += repeated
    else:
        counts.ignored += repeated
    replacing: set = set()  # ids whose key had a row stored under another `_id`
    for _ in range(5):
        stored = {row["_id"]: row for row in collection.find(
            {"_id": {"$in": list(pending)}}, {"_first_at": 1, "_at": 1})}
        inserts, replaces = [], []
        for row_id, item in pending.items():
            row = stored.get(row_id)
            if row is None:
                item.setdefault("_first_at", item["_at"])
                inserts.append(item)
            elif policy.mode == "overwrite":
                item["_first_at"] = row.get("_first_at") or row.get("_at") or item["_at"]
                replaces.append(item)
            else:
                counts.ignored += 1
        upserted, refused_replaces = _replace(collection, replaces)
        for n, item in enumerate(replaces):
            if n in upserted and item["_id"] not in replacing:
                counts.new += 1  # its row was removed meanwhile: stored anew
            elif n not in refused_replaces:
                counts.updated += 1
        refused = insert_refusing_copies(collection, inserts)
        for n, item in enumerate(inserts):
            if n not in refused:
                if item["_id"] in replacing:
                    counts.updated += 1
                else:
                    counts.new += 1
        pending = ({inserts[n]["_id"]: inserts[n] for n in refused}
                   | {replaces[n]["_id"]: replaces[n] for n in refused_replaces})
        if not pending:
            return counts
        # refused: another writer's row under this `_id`, or an older row of the key
        by_key = _stored(collection, policy, {_key(policy, i): i for i in pending.values()})
        for key, row in by_key.items():
            waiting = pending.get(key_id(policy, row))
            if waiting is None or row["_id"] == waiting["_id"]:
                continue  # stored under its own `_id`: read again next round
            if policy.mode == "ignore":
                counts.ignored += 1
                del pending[waiting["_id"]]
                continue
            waiting["_first_at"] = min(waiting.get("_first_at") or waiting["_at"],
                                       row.get("_first_at") or row.get("_at") or waiting["_at"])
            collection.delete_one({"_id": row["_id"]})
            replacing.add(waiting["_id"])
        if not pending:
            return counts
    raise CrawlfleetError(f"{len(pending)} items kept colliding on their dedup key")


def _take_over(collection, writer: TaskWriter, items: list[dict]) -> None:
    """In ``ignore`` mode, rows an earlier attempt of this crawl stored and this
    attempt scraped again become this attempt's, so that superseding the
    earlier attempts does not remove them."""
    policy = writer.policy
    assert policy is not None  # only called in ignore mode, which has a policy
    keys = policy.keys
    if len(keys) == 1:
        match: dict[str, Any] = {keys[0]: {"$in": [item.get(keys[0]) for item in items]}}
    else:
        match = {"$or": [policy.key_of(item) for item in items]}
    match["_tid"] = {"$in": writer.earlier_attempts()}
    collection.update_many(match, {"$set": {"_tid": writer.task_id, "task_id": writer.task_id}})


def add_counts(store, task_id: str, counts: WriteCounts) -> None:
    """Add `counts` to the task document's ``stats`` (``items`` = new + updated)."""
    if not counts:
        return
    _db(store).tasks.update_one({"_id": task_id}, {"$inc": {
        "stats.items": counts.stored, "stats.new": counts.new,
        "stats.updated": counts.updated, "stats.ignored": counts.ignored}})
