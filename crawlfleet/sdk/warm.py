"""A warm process for one Scrapy project version: it imports Scrapy, the
project's settings and spiders once, then forks one child per task.

    python -m crawlfleet.sdk.warm FD     (run by the node, in the project folder)

Starting a fresh interpreter costs a Scrapy task most of a second of CPU,
nearly all of it imports. The warm process pays that once. It never runs a
crawl itself and never installs a Twisted reactor or opens a connection, so
every child starts from the same pristine state, exactly as a fresh process
would; the child then becomes its own session (process group), takes the
task's environment, working directory and output, and runs
`crawlfleet.sdk.launch` as `python -m crawlfleet.sdk.launch` would.

The node talks to it over a SEQPACKET socket (file descriptor FD): it sends
``{"op": "spawn", "id", "argv", "env", "cwd"}`` with the write end of the
task's output pipe and the task's channel to the node attached, and hears ``{"op": "started", "id", "pid"}`` and
later ``{"op": "exited", "pid", "code"}`` (PIDs as the warm process numbers
them); each child also sends ``{"op": "child", "id"}`` itself, so that the
node reads the child's PID in its own namespace from the credentials. It exits when the node closes the
socket; its children die with it (PR_SET_PDEATHSIG), as they would with the
node.
"""

from __future__ import annotations

import atexit
import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys
import threading
import traceback
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:  # Scrapy is imported by `preload`, never on import of this module
    from scrapy.settings import Settings

PR_SET_PDEATHSIG = 1
PROJECT_SETTINGS: Settings | None = None


def preload() -> list[str]:
    """Import what every crawl of this project imports; never the reactor."""
    from scrapy.spiderloader import get_spider_loader
    from scrapy.utils.misc import load_object

    import crawlfleet.sdk.scrapy  # noqa: F401  the pipeline and extension the node adds
    import scrapy.cmdline  # noqa: F401
    import scrapy.commands.crawl  # noqa: F401
    import scrapy.crawler  # noqa: F401
    from crawlfleet.sdk.launch import project_settings

    settings = project_settings()
    loader = get_spider_loader(settings)
    spiders = loader.list()
    _remember_commands(settings)
    _remember_spider_loader(settings, loader)
    _remember_versions(settings)
    global PROJECT_SETTINGS
    # Computed from files that cannot change under a version and from the
    # node's environment, which is the same for every task: children copy it.
    PROJECT_SETTINGS = settings.copy()
    for name in ("DOWNLOADER_MIDDLEWARES_BASE", "DOWNLOADER_MIDDLEWARES", "SPIDER_MIDDLEWARES_BASE",
                 "SPIDER_MIDDLEWARES", "EXTENSIONS_BASE", "EXTENSIONS", "ITEM_PIPELINES_BASE",
                 "ITEM_PIPELINES"):
        for path in settings.getdict(name):
            if isinstance(path, str):
                _try_load(load_object, path)
    for path in settings.getdict("DOWNLOAD_HANDLERS_BASE").values():
        if isinstance(path, str):
            _try_load(load_object, path)
    if "twisted.internet.reactor" in sys.modules:
        raise RuntimeError("a reactor was installed while importing the project; "
                           "it cannot be shared with forked children")
    if threading.active_count() > 1:
        # fork() copies only the calling thread: locks held by the others
        # would stay locked forever in every child
        raise RuntimeError("importing the project started threads; forking it is not safe")
    return spiders


def _remember_commands(settings: Settings) -> None:
    """Scrapy looks its commands up (walking modules and entry points) on every
    start; the answer cannot change for this project, so children reuse the
    warm process's. Each child gets its own copy of the command objects."""
    import scrapy.cmdline

    lookup = getattr(scrapy.cmdline, "_get_commands_dict", None)
    if lookup is None:
        return
    known = {inproject: lookup(settings, inproject) for inproject in (True, False)}

    def commands(settings: Any, inproject: bool) -> dict[str, Any]:
        return dict(known[inproject])
    scrapy.cmdline._get_commands_dict = commands


def _remember_spider_loader(settings: Settings, loader: Any) -> None:
    """Every crawl builds a spider loader, which walks SPIDER_MODULES; the warm
    process has walked them already, and the modules cannot change under a
    version. A task whose settings name other modules or another loader gets
    its own, as a fresh process would."""
    import scrapy.crawler

    def key(s: Any) -> tuple[Any, ...]:
        return (s.get("SPIDER_LOADER_CLASS"), tuple(s.getlist("SPIDER_MODULES")),
                s.getbool("SPIDER_LOADER_WARN_ONLY"))

    build = getattr(scrapy.crawler, "get_spider_loader", None)
    if build is None:  # an older Scrapy builds it elsewhere: nothing to remember
        return
    warm_key = key(settings)

    def get_spider_loader(s: Any) -> Any:
        return loader if key(s) == warm_key else build(s)
    scrapy.crawler.get_spider_loader = get_spider_loader  # type: ignore[assignment]


def _remember_versions(settings: Settings) -> None:
    """Scrapy logs the versions of its dependencies on every start, reading
    package metadata and running `uname`: the answers cannot change for this
    environment (a requirements environment is never altered once built)."""
    import scrapy.utils.log

    lookup = getattr(scrapy.utils.log, "get_versions", None)
    if lookup is None:  # an older Scrapy names its versions another way
        return
    known: dict[tuple[str, ...], list[tuple[str, str]]] = {}

    def get_versions(software: list[str] | None = None) -> list[tuple[str, str]]:
        names = tuple(software or ())
        if names not in known:
            known[names] = lookup(software)
        return list(known[names])
    scrapy.utils.log.get_versions = get_versions
    get_versions(settings.getlist("LOG_VERSIONS"))


def _try_load(load_object: Callable[[str], Any], path: str) -> None:
    try:
        load_object(path)
    except Exception:
        pass  # the crawl will report it, as a fresh process would


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.send(json.dumps(message).encode())


def child(message: dict[str, Any], out_fd: int, channel_fd: int, sock: socket.socket,
          zygote_pid: int) -> NoReturn:
    """In the forked child: become the task's process, run it, never return."""
    code = 1
    try:
        # Say who we are, so the node learns our PID as *it* numbers it: in the
        # sandbox this process has a PID namespace of its own, and the kernel
        # translates the sender's credentials on the way (SO_PASSCRED).
        send(sock, {"op": "child", "id": message["id"]})
        sock.close()
        os.setsid()
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != zygote_pid:  # the warm process died before prctl
            os._exit(1)
        for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(out_fd, 1)
        os.dup2(out_fd, 2)
        os.close(out_fd)
        os.close(devnull)
        os.chdir(message["cwd"])
        os.environ.clear()
        os.environ.update(message["env"])
        # the node's number for the channel means nothing here: ours is this one
        os.environ["CRAWLFLEET_CHANNEL_FD"] = str(channel_fd)
        sys.argv = ["crawlfleet.sdk.launch", *message["argv"]]
        from crawlfleet.sdk.launch import main

        try:
            main(message["argv"], settings=PROJECT_SETTINGS)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(sock: socket.socket) -> None:
    zygote_pid = os.getpid()
    # What preload built is never freed: out of the collector's sight, a child's
    # collections neither walk it nor copy the pages it lives in.
    gc.freeze()
    children: set[int] = set()
    while True:
        readable, _, _ = select.select([sock], [], [], 0.05)
        if readable:
            data, fds, _, _ = socket.recv_fds(sock, 1 << 20, 4)
            if not data:
                break  # the node is gone
            message = json.loads(data)
            if message.get("op") != "spawn" or len(fds) != 2:
                for fd in fds:
                    os.close(fd)
                send(sock, {"op": "error", "id": message.get("id"), "error": "bad request"})
                continue
            pid = os.fork()
            if pid == 0:
                child(message, fds[0], fds[1], sock, zygote_pid)
            for fd in fds:  # the child has them; no other child may inherit them
                os.close(fd)
            children.add(pid)
            send(sock, {"op": "started", "id": message["id"], "pid": pid})
        while children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            children.discard(pid)
            send(sock, {"op": "exited", "pid": pid, "code": os.waitstatus_to_exitcode(status)})


def main() -> int:
    sock = socket.socket(fileno=int(sys.argv[1]))
    # Signals meant for a task go to its own group; the warm process ignores stray ones.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        spiders = preload()
    except BaseException as exc:
        send(sock, {"op": "failed", "error": f"{exc.__class__.__name__}: {exc}",
                    "traceback": traceback.format_exc()})
        return 1
    send(sock, {"op": "ready", "pid": os.getpid(), "spiders": spiders})
    try:
        serve(sock)
    except (OSError, ValueError):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
