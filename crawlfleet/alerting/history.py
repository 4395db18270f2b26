"""The history of sent alerts, in ``alert_history``: one record per delivery
(task or node alert, channel or settings destination), newest first, with
its result. Targets are kept redacted; the record is never a way to read a
channel's URL back. Records go after `KEEP_DAYS` (the store's TTL index)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from crawlfleet.errors import BadRequest
from crawlfleet.models import Doc, now

PAGE = (50, 500)  # default and largest page
KEEP_DAYS = 90     # a record is dropped (TTL index on drop_after) after this many days


def record(store: Any, *, kind: str, subject: str, events: list[str], channel: str,
           target: str, text: str, ok: bool, attempts: int, error: str | None,
           spider: str | None = None, at: float | None = None) -> Doc:
    at = at or now()
    doc = {"_id": uuid.uuid4().hex, "at": at, "kind": kind, "subject": subject,
           "spider": spider, "events": events, "channel": channel, "target": target,
           "text": text[:1000], "ok": ok, "attempts": attempts, "error": error}
    store.db.alert_history.insert_one({**doc, "drop_after": datetime.fromtimestamp(
        at + KEEP_DAYS * 86400, timezone.utc)})
    return doc


def public(doc: Doc) -> Doc:
    return {"id": doc["_id"], **{k: v for k, v in doc.items() if k not in ("_id", "drop_after")}}


def recent(store: Any, limit: int = PAGE[0], before: float | None = None) -> list[Doc]:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise BadRequest("limit must be a positive whole number")
    query = {"at": {"$lt": before}} if before is not None else {}
    cursor = store.db.alert_history.find(query).sort("at", -1).limit(min(limit, PAGE[1]))
    return [public(d) for d in cursor]
