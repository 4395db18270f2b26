"""Warm processes on the node side: one per Scrapy project version and
interpreter, each forking a child per task (see crawlfleet.sdk.warm).

`WarmPool.spawn` gives back a `WarmProcess` that the runner handles exactly
like a `subprocess.Popen` (pid, poll, wait, returncode, stdout), or None when
the project cannot run warm — the runner then starts a fresh process, so warm
start is an optimisation, never a requirement.

Warm processes are started from one long-lived thread, because the
parent-death signal that ties them to the node follows the thread that
started them.

A warm process runs in the spider sandbox like any task (crawlfleet/sandbox.py),
seeing its version's code, its environment and the folder that holds the
task folders of that version; each child gets its task's channel to the
node as a descriptor passed along with its output pipe.
"""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import queue
import socket
import struct
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from crawlfleet.sandbox import Mounts
from crawlfleet.venvs import venv_of as venv_folder
from node.environ import base_environment
from node.runner import PDEATHSIG, version_folder

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.sandbox import Sandbox

log = logging.getLogger(__name__)

READY_TIMEOUT = 60.0
REPLY_TIMEOUT = 10.0
MAX_WARM = 8


CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


class WarmProcess:
    """A task's process forked by a warm process; Popen's interface, as the runner uses it.
    `pid` is the node's number for it (the runner signals its group)."""

    def __init__(self, pid: int, stdout: IO[bytes]) -> None:
        self.pid = pid
        self.stdout = stdout
        self.returncode: int | None = None
        self._done = threading.Event()

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._done.wait(timeout):  # (without a timeout it waits for the end)
            raise subprocess.TimeoutExpired("warm child", timeout or 0.0)
        return self.returncode

    def _exited(self, code: int) -> None:
        self.returncode = code
        self._done.set()


class Zygote:
    """One warm process and the conversation with it."""

    def __init__(self, python: str, workdir: str | Path, env: Mapping[str, str] | None,
                 sandbox: Sandbox | None = None, group_dir: Path | None = None) -> None:
        self.key = (python, str(workdir))
        self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        argv = [python, "-m", "crawlfleet.sdk.warm", str(theirs.fileno())]
        if sandbox is not None:
            mounts = Mounts(readonly=[workdir, *venv_folder(python)], writable=[group_dir])
            argv = sandbox.wrap(argv, mounts, workdir)
        self.proc = subprocess.Popen(
            PDEATHSIG + argv,
            cwd=workdir, env=env, pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
            umask=sandbox.umask if sandbox is not None else -1)
        theirs.close()
        self.lock = threading.Lock()
        self.ids = itertools.count(1)
        self.replies: dict[int, tuple[queue.SimpleQueue[WarmProcess | None], int]] = {}
        self.children: dict[int, WarmProcess] = {}  # by the warm process's PID for them
        self.host_pids: dict[Any, int | None] = {}  # request id -> the child's PID here, from its credentials
        self.alive = True
        self.last_used = time.monotonic()
        self.sock.settimeout(READY_TIMEOUT)
        sender = None
        try:
            data, sender = self._receive()
            hello = json.loads(data or b"{}")
        except (OSError, ValueError):
            hello = {}
        self.sock.settimeout(None)
        if hello.get("op") != "ready":
            self.close()
            error = hello.get("error") or self._stderr_tail() or "no answer"
            raise RuntimeError(f"the project cannot be preloaded: {error}")
        self.pid = sender or hello["pid"]  # the node's number for it
        threading.Thread(target=self._listen, name=f"warm-{self.pid}", daemon=True).start()

    def _stderr_tail(self):
        """The last line the warm process wrote to stderr, to explain why it died."""
        try:
            self.proc.wait(1)
            return self.proc.stderr.read().decode(errors="replace").strip().splitlines()[-1]
        except (subprocess.TimeoutExpired, OSError, ValueError, IndexError):
            return ""  # still running, pipe closed, or silent: nothing to explain with

    def _receive(self):
        """One message and the sender's PID in this node's PID namespace."""
        data, ancillary, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(CREDENTIALS.size))
        pid = None
        for level, kind, value in ancillary:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = CREDENTIALS.unpack(value[:CREDENTIALS.size])[0]
        return data, pid

    def _listen(self):
        pending = {}  # request id -> (slot, read_fd, inner pid) until the child said hello
        while True:
            try:
                data, sender = self._receive()
            except OSError:
                data = b""
            if not data:
                break
            message = json.loads(data)
            if message["op"] == "child":
                # the child's own hello: its PID here is the sender's
                request_id = message.get("id")
                if request_id in pending:
                    self._register(*pending.pop(request_id), sender)
                else:
                    self.host_pids[request_id] = sender
            elif message["op"] in ("started", "error"):
                request_id = message.get("id")
                slot, read_fd = self.replies.pop(request_id, (None, None))
                if slot is None:
                    continue
                if message["op"] == "error":
                    os.close(read_fd)
                    slot.put(None)
                    continue
                host_pid = self.host_pids.pop(request_id, None)
                if host_pid is None:
                    pending[request_id] = (slot, read_fd, message["pid"])
                else:
                    self._register(slot, read_fd, message["pid"], host_pid)
            elif message["op"] == "exited":
                with self.lock:
                    child = self.children.pop(message["pid"], None)
                if child is not None:
                    child._exited(message["code"])
                else:  # died before its hello reached us
                    for request_id, (slot, read_fd, inner) in list(pending.items()):
                        if inner == message["pid"]:
                            del pending[request_id]
                            os.close(read_fd)
                            slot.put(None)
        # The warm process is gone: its children died with it (parent-death signal).
        # Said before any waiting spawn is answered None, so that it can tell a
        # dead warm process from a refused task.
        self.alive = False
        for slot, read_fd, _ in pending.values():
            os.close(read_fd)
            slot.put(None)
        with self.lock:
            orphans, self.children = list(self.children.values()), {}
        for child in orphans:
            child._exited(-9)
        for request_id in list(self.replies):
            slot, read_fd = self.replies.pop(request_id, (None, None))
            if slot is not None:
                os.close(read_fd)
                slot.put(None)

    def _register(self, slot, read_fd, inner_pid, host_pid):
        # Registered here, before the next message is read, so that an exit
        # reported right after the start is never missed.
        child = WarmProcess(host_pid, os.fdopen(read_fd, "rb"))
        with self.lock:
            self.children[inner_pid] = child
        slot.put(child)

    def spawn(self, argv: list[str], env: Mapping[str, str], cwd: str | Path,
              channel_fd: int) -> WarmProcess | None:
        read_fd, write_fd = os.pipe()
        request_id = next(self.ids)
        slot: queue.SimpleQueue[WarmProcess | None] = queue.SimpleQueue()
        self.replies[request_id] = (slot, read_fd)
        message = {"op": "spawn", "id": request_id, "argv": argv, "env": env, "cwd": str(cwd)}
        try:
            with self.lock:
                socket.send_fds(self.sock, [json.dumps(message).encode()], [write_fd, channel_fd])
        except OSError as exc:
            self.replies.pop(request_id, None)
            os.close(read_fd)
            if exc.errno in (errno.EPIPE, errno.ECONNRESET, errno.ENOTCONN):
                self.alive = False  # gone, though _listen may not have read its end yet
            return None
        finally:
            os.close(write_fd)
        try:
            child = slot.get(timeout=REPLY_TIMEOUT)
        except queue.Empty:
            child = None  # the warm process is stuck; its pending read end leaks with it
        self.last_used = time.monotonic()
        return child

    def busy(self) -> bool:
        return bool(self.children)

    def close(self) -> None:
        self.alive = False
        try:
            # shutdown, not only close: _listen's read holds the socket open, so
            # a close alone sends the warm process no end of file, and the
            # terminate below reaches a bubblewrap that ignores SIGTERM
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            self.proc.terminate()
            self.proc.wait(5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()


class _Pending:
    """The start of one warm process: whoever needs it waits on the same one."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: Zygote | Exception | None = None

    def wait(self) -> Zygote | Exception | None:
        self.done.wait()
        return self.result


class WarmPool:
    def __init__(self, idle_seconds: float = 600.0, sandbox: Sandbox | None = None,
                 config: Config | None = None) -> None:
        self.idle_seconds = idle_seconds
        self.sandbox = sandbox
        self.config = config
        self.zygotes: dict[tuple[str, str], Zygote] = {}
        self.failed: dict[tuple[str, str], str] = {}
        self.starting: dict[tuple[str, str], _Pending] = {}
        self.lock = threading.Lock()
        self.requests: queue.SimpleQueue[tuple[tuple[Any, ...], _Pending]] = queue.SimpleQueue()
        threading.Thread(target=self._starter, name="warm-starter", daemon=True).start()

    def _starter(self):
        """Starts every warm process, so they live as long as the node does."""
        while True:
            args, pending = self.requests.get()
            key = (args[0], str(args[1]))
            try:
                result = Zygote(*args)
            except Exception as exc:
                result = exc
            with self.lock:
                self.starting.pop(key, None)
                if isinstance(result, Exception):
                    self.failed[key] = str(result)
                else:
                    old = self.zygotes.get(key)
                    if old is not None and old.alive:
                        result.close()  # one started meanwhile by a task that raced this start
                        result = old
                    self.zygotes[key] = result
                    self._trim()
            pending.result = result
            pending.done.set()

    def _start(self, python, workdir, env, group_dir):
        """The start of a warm process for (python, workdir), begun now or already
        under way. It runs sandboxed, writing only in `group_dir` (the folder of
        its version's task folders), with the node's allowlisted base
        environment: the same for every task of the version, no task's
        variables or secrets."""
        key = (python, str(workdir))
        with self.lock:
            pending = self.starting.get(key)
            if pending is None:
                pending = self.starting[key] = _Pending()
                base_env = base_environment(group_dir, env)
                self.requests.put(((python, workdir, base_env, self.sandbox, group_dir), pending))
        return pending

    def is_warm(self, python: str, workdir: str | Path) -> bool:
        """A warm process for this version is running, starting, or cannot exist."""
        key = (python, str(workdir))
        with self.lock:
            zygote = self.zygotes.get(key)
            return (key in self.failed or key in self.starting
                    or (zygote is not None and zygote.alive))

    def prewarm(self, python: str, workdir: str | Path, version: str) -> None:
        """Start a warm process ahead of the first task of `version` (returns at once)."""
        if self.is_warm(python, workdir):
            return
        assert self.config is not None, "prewarming needs the node's config"
        group_dir = version_folder(self.config, version)
        group_dir.mkdir(parents=True, exist_ok=True)
        if self.sandbox is not None:
            # what the runner does before a task's start: the code and its
            # environment readable in the sandbox, the group folder its own
            for folder in (workdir, *venv_folder(python)):
                self.sandbox.share(folder)
            self.sandbox.own(group_dir)
        self._start(python, workdir, None, group_dir)

    def spawn(self, python: str, workdir: str | Path, argv: list[str], env: Mapping[str, str],
              say: Callable[[str], None], *, channel_fd: int,
              task_dir: str | Path) -> WarmProcess | None:
        """A task process forked warm, or None (run it fresh instead)."""
        key = (python, str(workdir))
        with self.lock:
            if key in self.failed:
                return None
            zygote = self.zygotes.get(key)
        for _ in range(2):
            if zygote is None or not zygote.alive:
                # a start already under way (a deploy warmed it) is waited for, not repeated
                zygote = self._start(python, workdir, env, Path(task_dir).parent).wait()
                if isinstance(zygote, Exception):
                    say(f"warm start unavailable, running a fresh process ({zygote})")
                    return None
            child = zygote.spawn(argv, env, workdir, channel_fd)
            if child is not None or zygote.alive:
                break
            # It died between our look and the task's request (killed, out of
            # memory): the task gets the new one it would have had a moment
            # later, as it would get a fresh process (a child it forked died
            # with it, by the parent-death signal).
        if child is None:
            say("warm start failed for this task, running a fresh process")
        return child

    def _trim(self):
        now = time.monotonic()
        for key, zygote in list(self.zygotes.items()):
            idle = now - zygote.last_used > self.idle_seconds
            if not zygote.alive or (idle and not zygote.busy()):
                zygote.close()
                del self.zygotes[key]
        while len(self.zygotes) > MAX_WARM:
            key = min((k for k, z in self.zygotes.items() if not z.busy()),
                      key=lambda k: self.zygotes[k].last_used, default=None)
            if key is None:
                break
            self.zygotes.pop(key).close()

    def prune(self) -> None:
        with self.lock:
            self._trim()

    def close(self) -> None:
        with self.lock:
            for zygote in self.zygotes.values():
                zygote.close()
            self.zygotes.clear()
