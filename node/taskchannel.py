"""A task's private channel to its node: one end of a socket pair, inherited
by the spider process (or passed to a warm child with SCM_RIGHTS), never a
path another process could open. The node's end answers each request of the
SDK (crawlfleet.channel) by writing through the task's `ItemWriter`.
"""

import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

import bson.errors
import pymongo.errors

from crawlfleet.channel import ChannelClosed, receive, send
from crawlfleet.errors import CrawlfleetError
from crawlfleet.models import Doc
from node.itemwriter import ItemWriter, NotOwned

log = logging.getLogger(__name__)

MAX_ORIGIN = 200  # a request fingerprint (64 hex) and a position, with room to spare


def _valid_origins(origins: Any, count: int) -> bool:
    return (isinstance(origins, list) and len(origins) == count
            and all(o is None or (isinstance(o, str) and len(o) <= MAX_ORIGIN) for o in origins))


class TaskChannel:
    def __init__(self, writer: ItemWriter, say: Callable[[str], None]) -> None:
        self.writer = writer
        self.say = say
        self.sock, self.theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.refused_said = False
        self.thread = threading.Thread(target=self._serve, name=f"channel-{writer.task_id}",
                                       daemon=True)
        self.thread.start()

    @property
    def spider_fd(self) -> int:
        """The descriptor the spider inherits (CRAWLFLEET_CHANNEL_FD)."""
        return self.theirs.fileno()

    def started(self) -> None:
        """The spider holds its end now: drop ours, so its exit closes the channel."""
        self.theirs.close()

    def _serve(self) -> None:
        while True:
            try:
                request = receive(self.sock)
            except (ChannelClosed, OSError):
                return
            except (ValueError, bson.errors.BSONError) as exc:
                self.say(f"channel: unreadable request ({exc}); channel closed")
                return
            try:
                send(self.sock, self._answer(request))
            except OSError:
                return

    def _answer(self, request: Doc) -> Doc:
        op = request.get("op")
        try:
            if op == "items":
                items = request.get("items")
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    return {"ok": False, "error": "items must be a list of documents"}
                origins = request.get("origins")
                if origins is not None and not _valid_origins(origins, len(items)):
                    return {"ok": False, "error": "origins must be one short string (or null) per item"}
                return {"ok": True, "stored": self.writer.store_items(items, origins)}
            if op == "stats":
                self.writer.set_stats(request.get("stats"))
                return {"ok": True}
            if op == "dedup":
                self.writer.use_spider_policy(request.get("keys"), request.get("mode"))
                return {"ok": True}
            return {"ok": False, "error": f"unknown request {op!r}"}
        except CrawlfleetError as exc:  # a dedup setting that does not parse
            self.say(f"channel: {exc}")
            return {"ok": False, "error": str(exc)}
        except NotOwned as exc:
            if not self.refused_said:
                self.refused_said = True
                self.say(f"writes refused: {exc}")
            return {"ok": False, "error": f"refused: {exc}", "refused": True}
        except pymongo.errors.PyMongoError as exc:
            self.say(f"channel: items could not be stored ({exc})")
            return {"ok": False, "error": f"the node could not store the items: {exc}"}

    def close(self, timeout: float = 30.0) -> None:
        """After the spider ended: answer what is left, then close."""
        try:
            self.theirs.close()
        except OSError:
            pass
        self.thread.join(timeout)
        try:
            self.sock.close()
        except OSError:
            pass
