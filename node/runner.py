"""Run one claimed task: fetch its version, start the spider in its own
process group, ship its output, enforce its timeout, obey cancel, and
record how it ended.

Stopping (cancel or timeout) sends SIGINT to the whole process group (Scrapy
then closes the spider cleanly), SIGTERM after ``cancel_grace`` seconds, and
SIGKILL after as long again, so grandchildren die with the spider.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pymongo.errors

from crawlfleet import ledger
from crawlfleet.errors import CrawlfleetError
from crawlfleet.sandbox import Mounts
from crawlfleet.spiderenv import for_spider as spider_variables
from crawlfleet.venvs import venv_of as venv_folder
from crawlfleet.models import Doc, SpiderKind, TaskStatus
from crawlfleet.retrying import FINAL_STATUS, STORE_OUTAGE
from node.command import spider_command
from node.crawlresults import ResultsSettings, finish
from node.environ import task_environment
from node.itemspipe import ItemsPipe
from node.itemwriter import ItemWriter
from node.logship import LogShipper
from node.taskchannel import TaskChannel

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.sandbox import Sandbox
    from crawlfleet.store import Store
    from crawlfleet.venvs import Virtualenvs
    from node.filecache import FileCache
    from node.warmpool import WarmPool, WarmProcess

log = logging.getLogger(__name__)
T = TypeVar("T")

POLL = 0.1

# The spider gets SIGKILL if the node dies (kill -9, OOM) instead of running on
# unobserved: PR_SET_PDEATHSIG through util-linux's setpriv, where it exists.
_SETPRIV = shutil.which("setpriv")
PDEATHSIG = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []


def version_folder(config: Config, version: str) -> Path:
    """The folder of a version's task folders, which its warm process writes in."""
    return config.home_path / "tasks" / str(version)


def task_folder(config: Config, version: str, task_id: str) -> Path:
    """A task's own folder (its HOME, its items pipe): HOME/tasks/VERSION/TASK."""
    return version_folder(config, version) / task_id


@dataclass(frozen=True)
class RunKit:
    """What a node gives every task it runs, built once by the node agent."""

    store: Store
    config: Config
    cache: FileCache
    venvs: Virtualenvs
    node_id: str
    session: str  # this node process's: the ledger accepts writes of its own session only
    warm: WarmPool | None = None
    sandbox: Sandbox | None = None


class TaskRun:
    def __init__(self, task: Doc, kit: RunKit) -> None:
        self.task = task
        self.task_id = task["_id"]
        self.kit = kit
        self.items: ItemsPipe | None = None
        self.results = ResultsSettings()
        self.channel: TaskChannel | None = None
        self.writer: ItemWriter | None = None
        # grouped by version: a warm process of the version sees its group only
        self.task_dir = task_folder(kit.config, task["version"], task["_id"])
        self.cancel_event = threading.Event()
        self.shutdown_reason: str | None = None  # set when the node, not a user, stops the task
        self.thread: threading.Thread | None = None
        self.proc: subprocess.Popen[bytes] | WarmProcess | None = None
        self.log = LogShipper(kit.store, self.task_id, kit.config)

    def cancel(self) -> None:
        self.cancel_event.set()

    def disown(self, reason: str) -> None:
        """The ledger gave this task to someone else: store nothing more for it."""
        if self.writer is not None:
            self.writer.disown(reason)

    def run(self) -> str:
        """Run to the end; returns the final status. Never raises."""
        try:
            result = self._run()
        except Exception as exc:  # the platform failed, not the spider
            log.exception("task %s failed inside the node", self.task_id)
            self.log.say("the node could not run this task:")
            for line in traceback.format_exc().rstrip().splitlines():
                self.log.say(line)
            result = {"status": TaskStatus.ERROR.value, "error": f"node error: {exc}"}
        finally:
            if self.proc is not None and self.proc.poll() is None:
                self._signal(signal.SIGKILL)
            if self.channel is not None:
                self.channel.close()
            if self.items is not None:
                self.items.close()
            if self.writer is not None:
                self.writer.close()
                self.writer.disown("the task ended")
            shutil.rmtree(self.task_dir, ignore_errors=True)
        lost = self.writer.lost if self.writer is not None else 0
        if lost and result["status"] == TaskStatus.FINISHED.value:
            result = {**result, "status": TaskStatus.ERROR.value,
                      "error": f"{lost} items could not be stored"}
        if result["status"] == TaskStatus.FINISHED.value:
            error = self._finish_results()
            if error:
                result = {**result, "status": TaskStatus.ERROR.value, "error": error}
        if self.log.close() and self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        self._record(result)
        return result["status"]

    def _run(self):
        kit = self.kit
        version = self._with_store_retries(lambda: kit.cache.version(self.task["version"]))
        spider_doc = self._with_store_retries(
            lambda: kit.store.spiders.find_one({"_id": self.task["spider"]})) or {}
        # dedup, data sources, feeds: the spider's settings now, like its command
        self.results = ResultsSettings.of(spider_doc)
        spider = {"_id": self.task["spider"], "command": spider_doc.get("command")}
        scrapy = self.task["kind"] == SpiderKind.SCRAPY.value
        # the task runs the version it recorded, whatever is current now
        spider = dict(spider, command=self._command_of(version, spider))
        if not scrapy and not spider.get("command"):
            return {"status": TaskStatus.ERROR.value,
                    "error": f"spider {self.task['spider']} is not in version {self.task['version']}"}
        self.log.say(f"task {self.task_id} on node {kit.node_id}: "
                     f"{self.task['spider']} version {self.task['version']}")
        try:
            workdir = self._with_store_retries(lambda: kit.cache.ensure(self.task["version"]))
            python = kit.venvs.python_for(workdir, self.log.say)
        except CrawlfleetError as exc:
            self.log.say(str(exc))
            return {"status": TaskStatus.ERROR.value, "error": str(exc)}
        command = spider_command(self.task, spider)
        if scrapy:
            try:
                command.settings.update(self.results.scrapy_settings(
                    self.task_dir, kit.config.feeds_path))
            except CrawlfleetError as exc:
                self.log.say(str(exc))
                return {"status": TaskStatus.ERROR.value, "error": str(exc)}
        argv = command.argv(python)
        self.task_dir.mkdir(parents=True, exist_ok=True)
        project = self._project()
        try:
            env = task_environment(self.task, kit.config, kit.node_id, home=self.task_dir,
                                   spider_env=self.spider_env(project),
                                   # (a JSON-backed store may keep true as 1)
                                   store_access=bool(project.get("store_access")),
                                   crawl=self._crawl())
        except CrawlfleetError as exc:  # e.g. a secret this node's key cannot decrypt
            self.log.say(str(exc))
            return {"status": TaskStatus.ERROR.value, "error": str(exc)}
        env.update(self.results.environment(self.task))
        self.writer = ItemWriter(kit.store, self.task, kit.session, self.log.say,
                                 policy=self.results.policy)
        self.items = ItemsPipe(self.writer, self.task_dir, self.log.say)
        self.channel = TaskChannel(self.writer, self.log.say)
        env["CRAWLFLEET_ITEMS_PIPE"] = self.items.path
        env["CRAWLFLEET_CHANNEL_FD"] = str(self.channel.spider_fd)
        if kit.sandbox is not None:
            for folder in (workdir, *venv_folder(python)):
                kit.sandbox.share(folder)
            kit.sandbox.own(self.task_dir.parent)
            kit.sandbox.own(self.task_dir)
            kit.sandbox.own(self.items.path)
        self.log.say("command: " + command.display())
        started = time.monotonic()
        if kit.sandbox is not None and kit.sandbox.mode == "none":
            self.log.say("WARNING: " + kit.sandbox.state.warning)
        # Scrapy reads SCRAPY_* variables into the settings a warm process computed once
        warm_ok = not any(k.startswith("SCRAPY_") for k in env)
        if kit.warm is not None and command.warm_capable and warm_ok:
            self.proc = kit.warm.spawn(python, workdir, command.launch_args(), env, self.log.say,
                                       channel_fd=self.channel.spider_fd,
                                       task_dir=self.task_dir)
        if self.proc is None:
            mounts = Mounts(readonly=[workdir, *venv_folder(python)], writable=[self.task_dir])
            command = kit.sandbox.wrap(argv, mounts, workdir) if kit.sandbox else argv
            try:
                self.proc = subprocess.Popen(
                    PDEATHSIG + command, cwd=workdir, env=env, stdin=subprocess.DEVNULL,
                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
                    pass_fds=[self.channel.spider_fd],
                    umask=kit.sandbox.umask if kit.sandbox else -1,
                )
            except OSError as exc:
                return {"status": TaskStatus.ERROR.value,
                        "error": f"cannot start the spider: {exc}"}
        self.channel.started()
        self._best_effort(lambda: ledger.start(kit.store, self.task_id, kit.session,
                                               pid=self.proc.pid, hostname=socket.gethostname()))
        self.log.follow(self.proc.stdout)
        ending = self._wait(started)
        code = self.proc.returncode
        if kit.sandbox is not None and isinstance(self.proc, subprocess.Popen):
            code = kit.sandbox.exit_code(code)
        # Whatever the spider started in its group must not outlive it (and
        # would keep its output pipe open).
        self._signal(signal.SIGKILL)
        try:
            self.results.collect_feeds(self.task["spider"], self.log.say)
        except OSError as exc:
            self.log.say(f"feed not written: {exc}")
            if ending is None and code == 0:
                ending = (TaskStatus.ERROR.value, f"feed not written: {exc}")
        if ending is not None:
            status, error = ending
        elif code == 0:
            status, error = TaskStatus.FINISHED.value, None
        else:
            status = TaskStatus.ERROR.value
            error = (f"killed by signal {-code}" if code < 0 else f"exit code {code}")
        self.log.say(f"spider exited with code {code}; status {status}")
        return {"status": status, "error": error, "exit_code": code}

    def spider_env(self, project: Doc) -> dict[str, str]:
        """The spider's own variables and secrets (crawlfleet/spiderenv.py), decrypted
        here only; the log masks the secrets' values if the spider prints them."""
        if not project.get("has_env"):
            return {}
        env, secret_values = self._with_store_retries(lambda: spider_variables(
            self.kit.store, self.kit.config, self.task.get("project"), self.task["spider"]))
        self.log.secrets = secret_values
        return env

    def _crawl(self) -> Doc | None:
        """The crawl a worker task belongs to: its sealed frontier password."""
        if not self.task.get("crawl_id"):
            return None
        return self._with_store_retries(lambda: self.kit.store.crawls.find_one(
            {"_id": self.task["crawl_id"]}, {"frontier_secret": 1}))

    def _project(self):
        """What the task's project says about its spiders' environment: whether
        it has variables, and whether an admin gave it direct store access
        (for spiders written for Crawlab's SDK; off unless switched on)."""
        return self._with_store_retries(lambda: self.kit.store.projects.find_one(
            {"_id": self.task.get("project")}, {"store_access": 1, "has_env": 1})) or {}

    @staticmethod
    def _command_of(version, spider):
        for entry in version.get("spiders") or []:
            if isinstance(entry, dict) and entry.get("name") == spider.get("_id"):
                return entry.get("command")
        return spider.get("command")

    def _wait(self, started):
        """Wait for exit; returns (status, error) when the platform ended it."""
        timeout = self.task.get("timeout")
        ending = None
        while self.proc.poll() is None:
            if ending is None:
                if self.cancel_event.is_set() and self.shutdown_reason:
                    ending = (TaskStatus.ABNORMAL.value, self.shutdown_reason)
                elif self.cancel_event.is_set():
                    ending = (TaskStatus.CANCELLED.value, "cancelled by request")
                elif timeout and time.monotonic() - started > timeout:
                    ending = (TaskStatus.TIMEOUT.value, f"timed out after {timeout:g} s")
                if ending is not None:
                    self.log.say(f"{ending[1]}: stopping the spider")
                    threading.Thread(target=self._stop, daemon=True).start()
            try:
                self.proc.wait(POLL)  # returns as soon as the spider exits
            except subprocess.TimeoutExpired:
                pass
        return ending

    def _finish_results(self):
        """Supersede earlier attempts and deliver to data sources; an error or None."""
        try:
            return finish(self.kit.store, self.kit.config, self.task, self.results, self.log.say)
        except Exception as exc:  # never let it keep the final status unwritten
            log.exception("task %s: results not finished", self.task_id)
            return f"results not finished: {exc}"

    def _best_effort(self, write):
        """A ledger write the task does not depend on: skipped while the store is away."""
        try:
            write()
        except pymongo.errors.PyMongoError as exc:
            log.warning("task %s: ledger update skipped (%s)", self.task_id, exc)

    def _with_store_retries(self, operation: Callable[[], T]) -> T:
        """Run a step that needs the store, waiting out a short outage."""
        return STORE_OUTAGE.call(operation, on_retry=lambda exc, attempt, wait: self.log.say(
            f"store unreachable ({exc.__class__.__name__}); retrying in {wait:.1f} s"))

    def _stop(self):
        grace = self.kit.config.cancel_grace
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
            if self.proc.poll() is not None:
                return
            self._signal(sig)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.log.say(f"spider still running {grace:g} s after {sig.name}")

    def _signal(self, sig):
        try:
            os.killpg(self.proc.pid, sig)
        except ProcessLookupError:
            pass

    def _record(self, result):
        """Write the final status; retried, because the ack waits for it."""
        try:
            FINAL_STATUS.call(lambda: ledger.finish(
                self.kit.store, self.task_id, self.kit.session, result["status"],
                error=result.get("error"), exit_code=result.get("exit_code"),
                log_lines=self.log.stored))
        except pymongo.errors.PyMongoError as exc:
            log.error("task %s: giving up writing its final status (%s)", self.task_id, exc)
