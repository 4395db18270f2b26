"""The SDK a spider process imports: store items for the task it runs as.

    from crawlfleet.sdk import save_item, save_items
    save_item({"title": "...", "price": 12.5})

Under a crawlfleet node (``CRAWLFLEET_TASK_ID`` set) each item goes to the
node over the task's private channel, and the node stores it in the spider's
results collection with ``_tid``, ``task_id`` and ``_at`` added. Run by hand
(no task id) the items are printed as JSON lines, so a spider can be tried
locally with no database.

`save_item` buffers and writes in batches (flushed at exit); `save_items`
writes its batch at once. Both count what they store in the task's
``stats.items``.
"""

import atexit
import json
import sys
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from crawlfleet.sdk.context import TaskContext, shared_context

BATCH_SIZE = 100

_lock = threading.Lock()
_buffer: list[dict] = []
_context: TaskContext | None = None


def _get_context() -> TaskContext | None:
    global _context
    _context = shared_context()
    return _context


def save_items(items: Iterable[Mapping[str, Any]]) -> int:
    """Store a batch of dict items now. Returns how many were stored."""
    items = [dict(item) for item in items]
    if not items:
        return 0
    context = _get_context()
    if context is None:
        for item in items:
            sys.stdout.write(json.dumps(item, ensure_ascii=False, default=str) + "\n")
        sys.stdout.flush()
        return len(items)
    return context.insert_items(items)


def save_item(item: Mapping[str, Any]) -> None:
    """Queue one item; it is written with the next full batch, or at exit."""
    with _lock:
        _buffer.append(dict(item))
        batch = _buffer[:] if len(_buffer) >= BATCH_SIZE else None
        if batch:
            _buffer.clear()
    if batch:
        save_items(batch)


def flush() -> None:
    """Write any items `save_item` still holds."""
    with _lock:
        batch = _buffer[:]
        _buffer.clear()
    if batch:
        save_items(batch)
    if _context is not None:
        _context.count()  # the items stored since the last count


atexit.register(flush)

__all__ = ["save_item", "save_items", "flush", "TaskContext"]
