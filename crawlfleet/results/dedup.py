"""Deduplication by key, per spider: which fields make an item's identity and
what a second copy does — ``overwrite`` (the newest version replaces the
stored one, which keeps its first-seen time ``_first_at``) or ``ignore`` (the
first stays). A unique index on the key fields of the results collection
makes it hold even between concurrent writers.

A policy comes from, in order: the spider document's ``dedup`` (set through
the API, CLI or UI), the spider's ``crawlfleet.json`` entry
(``manifest_dedup``), the Scrapy project's settings
(``CRAWLFLEET_DEDUP_KEYS``, ``CRAWLFLEET_DEDUP_MODE``), and Crawlab's
variables (``CRAWLAB_IS_DEDUP``, ``CRAWLAB_DEDUP_FIELD``,
``CRAWLAB_DEDUP_METHOD``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping

import pymongo
import pymongo.errors

from crawlfleet.errors import BadRequest, Conflict, CrawlfleetError

MODES = ("overwrite", "ignore")
INDEX_PREFIX = "dedup_"
FIELD_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]{0,99}$")
MAX_KEYS = 5


class DuplicatesExist(Conflict):
    """Raised when a unique index cannot be made: the collection already holds duplicates."""


@dataclass(frozen=True)
class DedupPolicy:
    keys: tuple[str, ...]
    mode: str = "overwrite"

    def as_doc(self) -> dict:
        return {"keys": list(self.keys), "mode": self.mode}

    @property
    def index_name(self) -> str:
        return INDEX_PREFIX + "_".join(self.keys)

    def key_of(self, item: Mapping) -> dict:
        """The filter that finds the stored copy of `item` (a missing field is null)."""
        return {k: item.get(k) for k in self.keys}


def parse(keys: Any, mode: Any = None) -> DedupPolicy | None:
    """A checked policy from user input, or None for "no deduplication".

    `keys` is a list of field names or a comma-separated string; empty turns
    deduplication off."""
    if keys is None or keys == "" or keys == []:
        return None
    if isinstance(keys, str):
        keys = [k.strip() for k in keys.split(",") if k.strip()]
    if not isinstance(keys, (list, tuple)) or not keys:
        raise BadRequest("dedup keys must be a list of field names")
    if len(keys) > MAX_KEYS:
        raise BadRequest(f"at most {MAX_KEYS} dedup key fields")
    for key in keys:
        if not isinstance(key, str) or not FIELD_RE.match(key) or key.startswith("_"):
            raise BadRequest(f"invalid dedup key field {key!r} (letters, digits, _ and -; "
                             "not starting with _)")
    if len(set(keys)) != len(keys):
        raise BadRequest("dedup key fields repeat")
    mode = (mode or "overwrite")
    if mode not in MODES:
        raise BadRequest(f"dedup mode must be one of {', '.join(MODES)}, not {mode!r}")
    return DedupPolicy(tuple(keys), mode)


def from_doc(doc: Mapping | None) -> DedupPolicy | None:
    if not doc or not doc.get("keys"):
        return None
    try:
        return parse(doc.get("keys"), doc.get("mode"))
    except BadRequest:
        return None


def for_spider(spider: Mapping | None) -> DedupPolicy | None:
    """The policy a spider document asks for: its own setting, else its manifest's."""
    spider = spider or {}
    if spider.get("dedup") is not None:
        return from_doc(spider["dedup"])
    return from_doc(spider.get("manifest_dedup"))


def from_environ(environ: Mapping[str, str], settings: Mapping | None = None) -> DedupPolicy | None:
    """The policy of a spider process: crawlfleet's variables (set by the node
    from the spider's policy), then Scrapy project settings, then Crawlab's."""
    settings = settings or {}
    sources = [
        (environ.get("CRAWLFLEET_DEDUP_KEYS"), environ.get("CRAWLFLEET_DEDUP_MODE")),
        (settings.get("CRAWLFLEET_DEDUP_KEYS"), settings.get("CRAWLFLEET_DEDUP_MODE")),
    ]
    if str(environ.get("CRAWLAB_IS_DEDUP", "")).lower() in ("1", "true", "yes"):
        sources.append((environ.get("CRAWLAB_DEDUP_FIELD"), environ.get("CRAWLAB_DEDUP_METHOD")))
    for keys, mode in sources:
        if keys:
            try:
                return parse(keys, mode or None)
            except BadRequest as exc:
                raise CrawlfleetError(f"dedup setting: {exc}") from None
    return None


def environment(policy: DedupPolicy | None) -> dict[str, str]:
    """Variables a spider process gets for `policy`, under crawlfleet's and
    Crawlab's names (Crawlab's SDK dedups on one field)."""
    if policy is None:
        return {"CRAWLAB_IS_DEDUP": "0"}
    env = {"CRAWLFLEET_DEDUP_KEYS": ",".join(policy.keys), "CRAWLFLEET_DEDUP_MODE": policy.mode,
           "CRAWLAB_IS_DEDUP": "1" if len(policy.keys) == 1 else "0",
           "CRAWLAB_DEDUP_METHOD": policy.mode}
    if len(policy.keys) == 1:
        env["CRAWLAB_DEDUP_FIELD"] = policy.keys[0]
    return env


# -- the unique index ------------------------------------------------------------
# nx-27017 names an index after its collection and fields whatever name it is
# given, so a dedup index is recognised by what it is: unique, not on `_id`.

def _unique_indexes(collection) -> dict[str, tuple[str, ...]]:
    return {name: tuple(k for k, _ in info["key"])
            for name, info in collection.index_information().items()
            if info.get("unique") and [k for k, _ in info["key"]] != ["_id"]}


def current_keys(collection) -> tuple[str, ...] | None:
    """The key fields of the collection's dedup index, if it has one."""
    found = list(_unique_indexes(collection).values())
    return found[0] if found else None


def ensure_index(collection, policy: DedupPolicy) -> None:
    """The unique index of `policy` on `collection` (other dedup indexes dropped).

    Raises DuplicatesExist when the collection already holds copies."""
    if current_keys(collection) == policy.keys:
        return
    drop_indexes(collection)
    try:
        collection.create_index([(k, pymongo.ASCENDING) for k in policy.keys],
                                unique=True, name=policy.index_name)
    except (pymongo.errors.DuplicateKeyError, pymongo.errors.OperationFailure) as exc:
        dupes = count_duplicates(collection, policy.keys)
        if dupes:
            raise DuplicatesExist(
                f"{collection.name} holds {dupes} duplicate rows over "
                f"{', '.join(policy.keys)}; keep the newest of each first "
                f"(crawlfleet spider set NAME --keep-newest)") from None
        raise CrawlfleetError(f"cannot index {collection.name}: {exc}") from None


def drop_indexes(collection) -> None:
    for name in _unique_indexes(collection):
        collection.drop_index(name)


def duplicate_groups(collection, keys) -> list[tuple[dict, int]]:
    """(key values, rows) of every key held by more than one row.

    One key is grouped by the server; several are counted here from a
    projection of the key fields (nx-27017 does not evaluate a document
    `_id` in `$group`)."""
    if len(keys) == 1:
        pipeline = [{"$group": {"_id": f"${keys[0]}", "n": {"$sum": 1}}},
                    {"$match": {"n": {"$gt": 1}}}]
        return [({keys[0]: g["_id"]}, g["n"]) for g in collection.aggregate(pipeline)]
    seen: dict[str, list] = {}
    for doc in collection.find({}, {k: 1 for k in keys}).batch_size(5000):
        values = {k: doc.get(k) for k in keys}
        entry = seen.setdefault(repr(sorted(values.items())), [values, 0])
        entry[1] += 1
    return [(values, n) for values, n in seen.values() if n > 1]


def count_duplicates(collection, keys) -> int:
    """Rows that share their key with another row (what keep-newest would remove)."""
    return sum(n - 1 for _, n in duplicate_groups(collection, keys))


def keep_newest(collection, keys) -> int:
    """Delete every row but the newest (by `_at`, then `_id`) of each key; returns
    how many went. The newest keeps the oldest copy's first-seen time."""
    removed = 0
    for query, _ in duplicate_groups(collection, keys):
        rows = list(collection.find(query, {"_id": 1, "_at": 1, "_first_at": 1}))
        rows.sort(key=lambda d: (d.get("_at") or 0, d["_id"]))
        newest, older = rows[-1], rows[:-1]
        first = min((d.get("_first_at") or d.get("_at") or 0) for d in rows)
        removed += collection.delete_many({"_id": {"$in": [d["_id"] for d in older]}}).deleted_count
        if first:
            collection.update_one({"_id": newest["_id"]}, {"$set": {"_first_at": first}})
    return removed
