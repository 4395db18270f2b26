"""Ship a spider's output to the task log while it runs.

A reader thread collects lines; a flusher thread writes them in batches, each
a document ``{task_id, seq, start, end, lines}`` in ``task_logs``, and keeps
the task's ``log_lines`` current. The two share only an in-memory list, so a
store that stops answering delays the log but never blocks the spider: lines
wait in memory (at most ``log_max_lines``) and are written on recovery.
Over-long lines are cut and lines past the cap are counted and dropped, each
with a marker, so a spider that floods its output cannot exhaust the node or
the store.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import IO, TYPE_CHECKING

import pymongo.errors

from crawlfleet.models import now
from crawlfleet.secrets import mask_in

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

PLATFORM_PREFIX = "[crawlfleet] "
RETRY_PAUSE = 1.0


class LogShipper:
    def __init__(self, store: Store, task_id: str, config: Config) -> None:
        self.store = store
        self.task_id = task_id
        self.batch_lines = config.log_batch_lines
        self.max_lines = config.log_max_lines
        self.max_line_bytes = config.log_max_line_bytes
        self.interval = config.log_flush_interval
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.closing = False
        self.pending: list[str] = []
        self.accepted = 0  # lines accepted so far (stored or pending)
        self.stored = 0
        self.seq = 0
        self.dropped = 0
        self.secrets: list[str] = []  # values masked wherever they appear in a line
        self.reader: threading.Thread | None = None
        self.flusher = threading.Thread(target=self._flush_loop, name=f"logflush-{task_id}",
                                        daemon=True)
        self.flusher.start()

    def say(self, text: str) -> None:
        """A line from the platform itself, marked as such: one line whatever
        `text` holds, so a value quoted in it cannot start a forged line."""
        self._add(PLATFORM_PREFIX + text.replace("\r", "\\r").replace("\n", "\\n"))

    def follow(self, stream: IO[bytes]) -> None:
        """Read `stream` (binary) on a thread until it closes."""
        self.reader = threading.Thread(target=self._read, args=(stream,),
                                       name=f"log-{self.task_id}", daemon=True)
        self.reader.start()

    def _read(self, stream: IO[bytes]) -> None:
        limit = self.max_line_bytes
        cutting = False
        try:
            while raw := stream.readline(limit):
                complete = raw.endswith(b"\n")
                if cutting:  # the rest of a line already cut
                    cutting = not complete
                    continue
                line = raw.rstrip(b"\r\n").decode("utf-8", "replace").replace("\x00", "\\x00")
                if not complete and len(raw) >= limit:
                    line += f" {PLATFORM_PREFIX}(line cut at {limit} bytes)"
                    cutting = True
                self._add(line)
        except (OSError, ValueError) as exc:
            log.warning("task %s: output reader stopped: %s", self.task_id, exc)

    def _add(self, line: str) -> None:
        if self.secrets:
            line = mask_in(line, self.secrets)
        with self.lock:
            if self.accepted >= self.max_lines:
                self.dropped += 1
                return
            self.pending.append(line)
            self.accepted += 1
            if len(self.pending) >= self.batch_lines:
                self.wake.set()

    def _flush_loop(self) -> None:
        while True:
            self.wake.wait(self.interval)
            self.wake.clear()
            while self.pending:
                if not self.flush():
                    time.sleep(RETRY_PAUSE)
                    if self.closing:
                        break
            if self.closing:
                return

    def flush(self) -> bool:
        """Write one batch; False when the store did not take it (it stays pending)."""
        with self.lock:
            if not self.pending:
                return True
            lines = self.pending[: self.batch_lines * 5]
            doc = {"task_id": self.task_id, "seq": self.seq, "start": self.stored,
                   "end": self.stored + len(lines), "lines": lines, "at": now()}
        try:
            self.store.task_logs.insert_one(doc)
        except pymongo.errors.DuplicateKeyError:
            pass  # an earlier try landed although it reported an error
        except pymongo.errors.PyMongoError as exc:
            log.warning("task %s: log batch kept for later: %s", self.task_id, exc)
            return False
        with self.lock:
            del self.pending[: len(lines)]
            self.seq += 1
            self.stored += len(lines)
            stored = self.stored
        try:
            self.store.tasks.update_one({"_id": self.task_id}, {"$set": {"log_lines": stored}})
        except pymongo.errors.PyMongoError:
            pass  # the next batch writes a newer count
        return True

    def close(self, timeout: float = 10.0, store_timeout: float = 300.0) -> bool:
        """Wait for the reader to reach the end of output, then write everything.

        Returns False when the output did not end (a process that left the
        spider's group still holds it open)."""
        ended = True
        if self.reader is not None:
            self.reader.join(timeout)
            ended = not self.reader.is_alive()
            if not ended:
                self.say("output still open after the spider ended; no longer read")
        if self.dropped:
            with self.lock:
                self.pending.append(
                    f"{PLATFORM_PREFIX}{self.dropped} more lines dropped "
                    f"(log_max_lines = {self.max_lines})")
        self.wake.set()
        deadline = time.monotonic() + store_timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        self.closing = True
        self.wake.set()
        self.flusher.join(5)
        if self.pending:
            log.error("task %s: %d log lines could not be stored", self.task_id, len(self.pending))
        return ended
