"""The embedded broker: kombu's filesystem transport, made safe for concurrent
writers and readers.

kombu's own transport (5.x) creates a message file, then locks and writes it,
while a consumer moves and reads files without a lock: a consumer that lists
the folder between the two reads an empty or half-written message and raises
``JSONDecodeError`` out of ``drain_events``, which killed nodes. Its exchange
tables (the bindings of fan-out exchanges) have the same gap: a new table file
is truncated before it is locked.

Here a message is written whole under a name no consumer matches and then
renamed into place (a rename within one folder is atomic on POSIX), so a
consumer sees a message complete or not at all. Exchange tables are only ever
changed under an exclusive lock taken before anything is read or truncated. A
message that still cannot be decoded (a file damaged on disk) is logged and
left in the processed folder instead of raising: the ledger's reconciler
republishes the task it announced.

Consumers do not wait a polling interval for a new message: each waiting
connection keeps a doorbell (a named pipe in ``doorbell_folder``) and every
publish rings them all, so a message is taken as soon as it is written.
Polling stays as the fallback for a ring that cannot arrive (a folder shared
with a host whose pipes are not ours).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import select
import socket
import uuid
from collections.abc import Iterator
from queue import Empty
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.json import dumps, loads

log = logging.getLogger(__name__)

STAGING_PREFIX = "."  # a leading dot: never "<stamp>_<uuid>.<queue>.msg", so never read
DOORBELL_SUFFIX = ".bell"


class Doorbell:
    """A named pipe a waiting consumer sleeps on, rung by publishers.

    Opened read-write so that it never reads end-of-file when a publisher closes
    its end; a pipe no process holds open any more belonged to a consumer that is
    gone, and the next ring removes it."""

    def __init__(self, folder: str) -> None:
        os.makedirs(folder, mode=0o700, exist_ok=True)
        self.path = os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex[:12]}{DOORBELL_SUFFIX}")
        os.mkfifo(self.path, 0o600)
        self.fd = os.open(self.path, os.O_RDWR | os.O_NONBLOCK)

    def wait(self, timeout: float) -> None:
        """Return when rung, or after `timeout` seconds."""
        readable, _, _ = select.select([self.fd], [], [], timeout)
        if readable:
            with contextlib.suppress(BlockingIOError):
                while os.read(self.fd, 4096):
                    pass

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self.path)
        with contextlib.suppress(OSError):
            os.close(self.fd)


def ring(folder: str | None) -> None:
    """Wake every consumer waiting for a message in this broker folder."""
    if not folder:
        return
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return
    for name in names:
        if not name.endswith(DOORBELL_SUFFIX):
            continue
        path = os.path.join(folder, name)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nobody holds it open: its consumer is gone
                with contextlib.suppress(OSError):
                    os.unlink(path)
            continue
        try:
            os.write(fd, b"\0")
        except OSError:
            pass  # a full pipe has been rung already
        finally:
            os.close(fd)


class Channel(filesystem.Channel):
    """A filesystem channel whose messages and exchange tables are never seen half-written."""

    # -- messages ---------------------------------------------------------------
    def _put(self, queue: str, payload: dict, **kwargs) -> None:  # type: ignore[override]
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        staging = os.path.join(self.data_folder_out, f"{STAGING_PREFIX}{name}.part")
        try:
            with open(staging, "wb") as f:
                f.write(dumps(payload).encode())
            os.rename(staging, final)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(staging)
            raise ChannelError(f"cannot add a message to {self.data_folder_out!r}") from exc
        ring(self.transport_options.get("doorbell_folder"))

    def _get(self, queue: str) -> dict:  # type: ignore[override]
        suffix = f"{queue}.msg"
        processed = self.processed_folder if self.store_processed else None
        for name in sorted(os.listdir(self.data_folder_in)):
            if name.partition(".")[2] != suffix:
                continue
            source = os.path.join(self.data_folder_in, name)
            taken = os.path.join(processed, name) if processed else source + ".taken"
            try:
                # The rename is the claim: of competing consumers exactly one succeeds.
                os.rename(source, taken)
            except OSError:
                continue
            try:
                with open(taken, "rb") as f:
                    raw = f.read()
                if processed is None:
                    os.unlink(taken)
            except OSError as exc:
                raise ChannelError(f"cannot read message {taken!r}") from exc
            try:
                return loads(raw.decode())
            except (ValueError, UnicodeDecodeError) as exc:
                log.error("dropped an unreadable broker message %s (%s)", taken, exc)
                continue
        raise Empty()

    # -- exchange tables (fan-out bindings) ---------------------------------------
    @contextlib.contextmanager
    def _table(self, exchange: str, exclusive: bool) -> Iterator[tuple[int, list]]:
        """The exchange's bindings, read under a lock taken before anything else."""
        file = self._exchange_file(exchange)
        self.control_folder.mkdir(parents=True, exist_ok=True)
        flags = os.O_RDWR | os.O_CREAT if exclusive else os.O_RDONLY
        try:
            fd = os.open(file, flags, 0o600)
        except FileNotFoundError:
            yield -1, []
            return
        except OSError as exc:
            raise ChannelError(f"cannot open {file}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            with os.fdopen(os.dup(fd), "rb") as f:
                raw = f.read()
            try:
                rows = loads(raw.decode()) if raw.strip() else []
            except (ValueError, UnicodeDecodeError):
                log.error("exchange table %s was unreadable; starting it anew", file)
                rows = []
            yield fd, [filesystem.exchange_queue_t(*row) for row in rows]
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    @staticmethod
    def _rewrite(fd: int, rows: list) -> None:
        data = dumps(rows).encode()
        os.lseek(fd, 0, os.SEEK_SET)
        os.ftruncate(fd, 0)
        os.write(fd, data)

    def get_table(self, exchange: str) -> list:
        with self._table(exchange, exclusive=False) as (_, rows):
            return rows

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str, queue: str) -> None:
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        with self._table(exchange, exclusive=True) as (fd, rows):
            if binding not in rows:
                self._rewrite(fd, [binding, *rows])

    def _delete(self, queue, exchange, routing_key, pattern, *args, **kwargs) -> None:
        # The virtual channel's bookkeeping, without kombu's unlocked table rewrite.
        super(filesystem.Channel, self)._delete(queue, exchange, routing_key, pattern,
                                                *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        if not os.path.exists(self._exchange_file(exchange)):
            return
        with self._table(exchange, exclusive=True) as (fd, rows):
            if binding in rows:
                self._rewrite(fd, [row for row in rows if row != binding])


class Transport(filesystem.Transport):
    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        self.doorbell_folder: str | None = client.transport_options.get("doorbell_folder")
        self.doorbell: Doorbell | None = None

    def drain_events(self, connection: Any, timeout: float | None = None) -> None:  # type: ignore[override]
        """kombu's polling loop, sleeping on the doorbell instead of a fixed interval."""
        if self.doorbell is None and self.doorbell_folder:
            # made before the first look, so no message published after it goes unrung
            try:
                self.doorbell = Doorbell(self.doorbell_folder)
            except OSError as exc:  # e.g. a file system without named pipes
                log.warning("no doorbell in %s (%s); polling every %s s instead",
                            self.doorbell_folder, exc, self.polling_interval)
                self.doorbell_folder = None
        time_start = monotonic()
        interval = self.polling_interval or 0.0
        get = self.cycle.get  # type: ignore[attr-defined]  # set once the transport is up
        while True:
            try:
                get(self._deliver, timeout=timeout)
                return
            except Empty:
                waited = monotonic() - time_start
                if timeout is not None and waited >= timeout:
                    raise socket.timeout() from None
                pause = interval if timeout is None else min(interval, timeout - waited)
                if self.doorbell is not None:
                    self.doorbell.wait(pause)
                elif pause > 0:
                    select.select([], [], [], pause)

    def close_connection(self, connection: Any) -> None:
        try:
            super().close_connection(connection)
        finally:
            if self.doorbell is not None:
                self.doorbell.close()
                self.doorbell = None
