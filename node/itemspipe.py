"""Items from spiders in any language: the node gives each task a named pipe
(``CRAWLFLEET_ITEMS_PIPE``); the spider writes one JSON object per line to
it, and the node stores them in batches exactly like SDK items (``_tid``,
``task_id`` and ``_at`` added, ``stats.items`` counted), through the task's
`ItemWriter` (fenced: nothing is stored once the task is no longer ours).

The node holds a write end of its own while the spider runs, so the reader
does not see end-of-file each time a spider closes and reopens the pipe.
"""

import json
import logging
import os
import threading
import time
from collections.abc import Callable

import pymongo.errors

from crawlfleet.models import Doc
from node.itemwriter import ItemWriter, NotOwned

log = logging.getLogger(__name__)

BATCH = 200
FLUSH_SECONDS = 1.0


class ItemsPipe:
    def __init__(self, writer: ItemWriter, folder: str | os.PathLike[str],
                 say: Callable[[str], None], mode: int = 0o600) -> None:
        self.writer = writer
        self.task_id = writer.task_id
        self.say = say
        self.path = os.path.join(folder, "items.jsonl")
        os.mkfifo(self.path)
        os.chmod(self.path, mode)  # whatever the umask
        self.read_fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)
        self.hold_fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(self.read_fd, True)
        self.stored = 0
        self.rejected = 0
        self.lost = 0
        self.thread = threading.Thread(target=self._read, name=f"items-{self.task_id}",
                                       daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.writer.ensure_indexes()  # even for a spider that stores through its channel
        batch: list[Doc] = []
        last = time.monotonic()
        with os.fdopen(self.read_fd, "rb") as stream:
            for number, raw in enumerate(stream, 1):
                try:
                    item = json.loads(raw)
                    if not isinstance(item, dict):
                        raise ValueError("not a JSON object")
                except ValueError as exc:
                    self.rejected += 1
                    if self.rejected <= 10:
                        self.say(f"items pipe: line {number} skipped ({exc})")
                    continue
                batch.append(item)
                if len(batch) >= BATCH or time.monotonic() - last > FLUSH_SECONDS:
                    self._store(batch)
                    batch, last = [], time.monotonic()
        self._store(batch)

    def _store(self, batch: list[Doc]) -> None:
        if not batch:
            return
        try:
            self.stored += self.writer.store_items(batch)
        except NotOwned as exc:
            self.say(f"items pipe: {len(batch)} items refused: {exc}")
        except pymongo.errors.PyMongoError as exc:
            # counted, said, and the task fails: never dropped silently
            self.lost += len(batch)
            self.say(f"items pipe: {len(batch)} items could not be stored ({exc})")

    def close(self, timeout: float = 30.0) -> None:
        """After the spider ended: read what is left, then remove the pipe."""
        os.close(self.hold_fd)
        self.thread.join(timeout)
        try:
            os.unlink(self.path)
        except OSError:
            pass
        if self.stored or self.rejected:
            self.say(f"items pipe: {self.stored} items stored"
                     + (f", {self.rejected} lines skipped" if self.rejected else ""))
