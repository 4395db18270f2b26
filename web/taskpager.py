"""Newest-first keyset pages of the task list, one pager for the JSON API and
the UI: both page with the same cursor, the id of the last task shown
(``before=<task id>``).

Pages are keyed on (created_at, _id), not on `_id` alone (which also sorts by
creation): every filter has an index ending in ``created_at``, and nx-27017
scans the whole collection for a range on `_id` but not for one on an
indexed field. Tasks created in the very instant of the cursor's task are
told apart by `_id`; when the cursor's task is gone, older ids stand in.
"""

from __future__ import annotations

import re

from crawlfleet.errors import BadRequest

TIE_LIMIT = 1000   # tasks of the cursor's very instant read to page past it
ORDER = [("created_at", -1), ("_id", -1)]
# task ids: hex (time, then randomness), with an attempt suffix for retries
CURSOR_RE = re.compile(r"^[0-9a-f]{8,64}(?:-[A-Za-z0-9]{1,16}){0,3}$")


def page(tasks, query: dict, limit: int, before: str | None = None):
    """(up to `limit` task documents matching `query`, the cursor of the next
    page or None). `query` may hold a ``created_at`` range of its own."""
    if before is not None and not (isinstance(before, str) and CURSOR_RE.match(before)):
        raise BadRequest("invalid page cursor: pass the `next` of the previous page")
    query = dict(query)
    created = dict(query.pop("created_at", None) or {})
    docs = []
    anchor = tasks.find_one({"_id": before}, {"created_at": 1}) if before else None
    if anchor and isinstance(anchor.get("created_at"), (int, float)):
        stamp = anchor["created_at"]
        if _within(stamp, created):
            same = tasks.find({**query, "created_at": stamp}).sort("_id", -1).limit(TIE_LIMIT)
            docs = [d for d in same if d["_id"] < before][:limit + 1]
        created["$lt"] = min(created.get("$lt", stamp), stamp)
    elif before:  # the cursor's task is gone: the older ids
        query["_id"] = {"$lt": before}
    if created:
        query["created_at"] = created
    if len(docs) <= limit:
        docs += list(tasks.find(query).sort(ORDER).limit(limit + 1 - len(docs)))
    more = len(docs) > limit
    docs = docs[:limit]
    return docs, (docs[-1]["_id"] if more and docs else None)


def _within(stamp: float, created: dict) -> bool:
    return all(stamp >= bound if op == "$gte" else stamp < bound
               for op, bound in created.items())
