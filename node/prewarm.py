"""Warm processes started before the first task needs one, so that the first
task after a deploy starts as fast as the hundredth.

A node watches the ledger once a second for two things: a project whose
current version changed (deployed, activated, rolled back), and schedules due
within the next few minutes. For each such Scrapy version it fetches the
version, finds its interpreter and asks the warm pool for a warm process, which
starts in the background. A task arriving while that start is under way waits
for it rather than starting a second one (node.warmpool).

Ad-hoc runs of a version not deployed since the node started, and runs after
`warm_idle_seconds` without a task, still start cold: the benchmarks report
those separately.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pymongo.errors

from crawlfleet.errors import CrawlfleetError
from crawlfleet.models import now

if TYPE_CHECKING:
    from crawlfleet.store import Store
    from crawlfleet.venvs import Virtualenvs
    from node.filecache import FileCache
    from node.warmpool import WarmPool

log = logging.getLogger(__name__)

INTERVAL = 1.0
SCHEDULE_HORIZON = 300.0  # seconds ahead: schedules due sooner get a warm process now
RETRY_AFTER = 60.0        # a version that could not be fetched is not retried every second


@dataclass(eq=False)
class Prewarmer:
    store: Store
    cache: FileCache
    venvs: Virtualenvs
    warm: WarmPool
    since: float = field(default_factory=now, init=False)  # deploys after this node started
    # version id -> (python, workdir)
    resolved: dict[str, tuple[str, Path]] = field(default_factory=dict, init=False)
    # version id -> monotonic time of the failure
    failed_at: dict[str, float] = field(default_factory=dict, init=False)

    def start(self, stopped: threading.Event) -> None:
        def loop() -> None:
            while not stopped.wait(INTERVAL):
                try:
                    self.tick()
                except pymongo.errors.PyMongoError as exc:
                    log.debug("prewarm: store unreachable (%s)", exc)
        threading.Thread(target=loop, name="prewarm", daemon=True).start()

    def tick(self) -> list:
        """Warm what is wanted now; returns the version ids asked for."""
        versions = self.wanted()
        for version in versions:
            self.warm_version(version)
        return versions

    def wanted(self) -> list:
        versions = []
        for doc in self.store.projects.find({"updated_at": {"$gt": self.since}},
                                            {"current_version": 1, "kind": 1, "updated_at": 1}):
            self.since = max(self.since, doc["updated_at"])
            if doc.get("kind") == "scrapy" and doc.get("current_version"):
                versions.append(doc["current_version"])
        due = self.store.schedules.find({"due_at": {"$ne": None, "$lte": now() + SCHEDULE_HORIZON}},
                                        {"spider": 1})
        spiders = sorted({d["spider"] for d in due if d.get("spider")})
        if spiders:
            for doc in self.store.spiders.find({"_id": {"$in": spiders}, "kind": "scrapy"},
                                               {"version": 1}):
                if doc.get("version"):
                    versions.append(doc["version"])
        return list(dict.fromkeys(versions))

    def warm_version(self, version: str) -> None:
        if time.monotonic() - self.failed_at.get(version, -RETRY_AFTER) < RETRY_AFTER:
            return
        key = self.resolved.get(version)
        if key is not None and self.warm.is_warm(*key):
            return
        try:
            workdir = self.cache.ensure(version)
            python = self.venvs.python_for(workdir, lambda line: log.info("prewarm: %s", line))
        except (CrawlfleetError, OSError) as exc:
            log.warning("prewarm: version %s not warmed: %s", version, exc)
            self.failed_at[version] = time.monotonic()
            return
        self.resolved[version] = (python, workdir)
        if not self.warm.is_warm(python, workdir):
            log.info("prewarm: starting a warm process for version %s", version)
            self.warm.prewarm(python, workdir, version)
