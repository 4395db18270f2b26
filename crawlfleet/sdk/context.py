"""What a spider process knows about its task, read from its environment,
and the two writes it asks its node to make: items into the results
collection, live stats into the task document.

A spider holds no credential of the store: it talks to its node over the
task's private channel (``CRAWLFLEET_CHANNEL_FD``, crawlfleet.channel), and
the node writes, in batches, only while it still owns the task.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from crawlfleet.channel import ChannelClosed, receive, send

log = logging.getLogger(__name__)


class StoreRefused(Exception):
    """Raised when the node did not store a batch (refused, or the store failed)."""


class TaskContext:
    def __init__(self, task_id: str, channel_fd: int, collection: str = "",
                 node_id: str = "") -> None:
        self.task_id = task_id
        self.node_id = node_id
        self.collection = collection
        self.sock = socket.socket(fileno=channel_fd)
        self.sock.setblocking(True)
        self.lock = threading.Lock()  # one request at a time, each with its reply
        self.pid = os.getpid()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TaskContext | None:
        task_id = environ.get("CRAWLFLEET_TASK_ID")
        if not task_id:
            return None
        fd = environ.get("CRAWLFLEET_CHANNEL_FD")
        if not fd or not fd.isdigit():
            raise RuntimeError("crawlfleet: CRAWLFLEET_TASK_ID is set but this process has no "
                               "channel to its node (CRAWLFLEET_CHANNEL_FD); a process started "
                               "by the spider must keep that descriptor open (pass_fds)")
        return cls(task_id, int(fd), environ.get("CRAWLFLEET_RESULTS_COLLECTION", ""),
                   environ.get("CRAWLFLEET_NODE_ID", ""))

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        if os.getpid() != self.pid:
            raise StoreRefused("the channel to the node belongs to the process that opened it, "
                               "not to a forked copy")
        with self.lock:
            try:
                send(self.sock, request)
                reply = receive(self.sock)
            except (OSError, ChannelClosed) as exc:
                raise StoreRefused(f"the node's channel is closed ({exc.__class__.__name__})") from None
        if not reply.get("ok"):
            raise StoreRefused(reply.get("error") or "refused by the node")
        return reply

    def use_settings(self, settings: Any) -> None:
        """A Scrapy project's own dedup settings (CRAWLFLEET_DEDUP_KEYS/_MODE),
        told to the node, which stores the items; a policy of the platform's
        (the spider's settings through the API, its manifest) still wins."""
        keys = settings.get("CRAWLFLEET_DEDUP_KEYS")
        if keys and not os.environ.get("CRAWLFLEET_DEDUP_KEYS"):
            self._ask({"op": "dedup", "keys": keys,
                       "mode": settings.get("CRAWLFLEET_DEDUP_MODE") or None})

    def insert_items(self, items: Iterable[Mapping[str, Any]],
                     origins: Iterable[str | None] | None = None) -> int:
        """Have the node store `items` (it adds `_tid`, `task_id`, `_at`); returns
        the count stored, or raises StoreRefused. `origins`, beside `items`, are
        the tags of `crawlfleet.sdk.origins` (the node stores a tagged item of a
        crawl once however often it is sent)."""
        items = [dict(item) for item in items]
        if not items:
            return 0
        request: dict[str, Any] = {"op": "items", "items": items}
        if origins and any(origins):
            request["origins"] = list(origins)
        return self._ask(request).get("stored", len(items))

    def count(self) -> None:
        """The node counts `stats.items` itself; kept for callers of the old SDK."""

    def update_stats(self, stats: Mapping[str, Any]) -> None:
        try:
            self._ask({"op": "stats", "stats": dict(stats)})
        except StoreRefused as exc:
            log.warning("crawlfleet: stats not sent: %s", exc)

    def close(self) -> None:
        """Nothing to flush: every request was answered before it returned."""


_shared: TaskContext | None = None
_shared_lock = threading.Lock()


def shared_context(environ: Mapping[str, str] | None = None) -> TaskContext | None:
    """The process's one TaskContext (the SDK, the Scrapy pipeline and the
    stats extension share the channel, one request at a time), or None when
    not run as a crawlfleet task."""
    global _shared
    with _shared_lock:
        if _shared is None or _shared.pid != os.getpid():
            _shared = TaskContext.from_environ(os.environ if environ is None else environ)
        return _shared
