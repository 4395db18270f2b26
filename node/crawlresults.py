"""What the node does about a task's results besides running its spider:
tells the spider process how items are written (its owner for fencing, its
crawl, its dedup policy, its feeds), and when an attempt finishes, makes the
crawl's results its items only and delivers them to the spider's data
sources."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Callable, Mapping

import pymongo.errors

from crawlfleet.errors import CrawlfleetError
from crawlfleet.results import attempts, dedup
from crawlfleet.results.delivery import deliver

log = logging.getLogger(__name__)


@dataclass
class ResultsSettings:
    """A spider's results settings, read once when its task starts."""

    policy: dedup.DedupPolicy | None = None
    keep_partial: bool = False
    sources: list = field(default_factory=list)
    feeds: dict | None = None

    @classmethod
    def of(cls, spider: Mapping | None) -> "ResultsSettings":
        spider = spider or {}
        return cls(policy=dedup.for_spider(spider),
                   keep_partial=bool(spider.get("keep_partial_attempts")),
                   sources=list(spider.get("datasources") or []),
                   feeds=spider.get("feeds") or None)

    def environment(self, task: Mapping) -> dict[str, str]:
        env = {"CRAWLFLEET_TASK_SESSION": task.get("session") or "",
               "CRAWLFLEET_ROOT_ID": task.get("root_id") or task["_id"],
               "CRAWLFLEET_ATTEMPT": str(task.get("attempt") or 1)}
        env.update(dedup.environment(self.policy))
        return env

    def scrapy_settings(self) -> dict[str, str]:
        """Scrapy settings of the run: Scrapy's own feed exports, passed through."""
        return {"FEEDS": json.dumps(self.feeds)} if self.feeds else {}


def finish(store, config, task: Mapping, settings: ResultsSettings,
           say: Callable[[str], None]) -> str | None:
    """After an attempt finished: supersede the attempts it replaced, then
    deliver its items. Returns an error that fails the task, or None."""
    try:
        removed = attempts.supersede(store, task, policy=settings.policy,
                                     keep_partial=settings.keep_partial)
    except pymongo.errors.PyMongoError as exc:
        return f"the items of earlier attempts could not be removed: {exc}"
    if removed:
        verb = "marked superseded" if settings.keep_partial else "removed"
        say(f"results: {removed} items of earlier attempts of crawl "
            f"{task.get('root_id')} {verb}")
        try:
            store.tasks.update_one({"_id": task["_id"]},
                                   {"$set": {"stats.superseded": removed}})
        except pymongo.errors.PyMongoError as exc:
            log.warning("task %s: superseded count not recorded (%s)", task["_id"], exc)
    try:
        deliver(store, config, task, settings.sources, settings.policy, say)
    except CrawlfleetError as exc:
        say(f"results not delivered: {exc}")
        return f"delivery failed: {exc}"
    return None
