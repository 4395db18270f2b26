"""What the node does about a task's results besides running its spider:
tells the spider process how items are written (its owner for fencing, its
crawl, its dedup policy, its feeds), and when an attempt finishes, makes the
crawl's results its items only and delivers them to the spider's data
sources."""

from __future__ import annotations

import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Mapping
from urllib.parse import urlparse

import pymongo.errors

from crawlfleet.errors import CrawlfleetError
from crawlfleet.results import attempts, dedup, sqlremove
from crawlfleet.results.delivery import deliver

if TYPE_CHECKING:
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)


@dataclass
class ResultsSettings:
    """A spider's results settings, read once when its task starts."""

    policy: dedup.DedupPolicy | None = None
    keep_partial: bool = False
    sources: list = field(default_factory=list)
    feeds: dict | None = None
    # local feed files: (where the sandboxed spider writes them, where the node puts them)
    feed_copies: list = field(default_factory=list)

    @classmethod
    def of(cls, spider: Mapping | None) -> "ResultsSettings":
        spider = spider or {}
        return cls(policy=dedup.for_spider(spider),
                   keep_partial=bool(spider.get("keep_partial_attempts")),
                   sources=list(spider.get("datasources") or []),
                   feeds=spider.get("feeds") or None)

    def environment(self, task: Mapping) -> dict[str, str]:
        """The dedup policy under crawlfleet's and Crawlab's names (Crawlab's SDK
        reads them); the node itself stores the items, fenced and deduplicated."""
        return dedup.environment(self.policy)

    def scrapy_settings(self, task_dir: Path, feeds_dir: Path) -> dict[str, str]:
        """Scrapy settings of the run: Scrapy's own feed exports, passed through.

        A feed to a local file cannot be written where it names from inside the
        sandbox: the spider writes it in its task folder and the node moves it
        (`collect_feeds`) under `feeds_dir` (``CRAWLFLEET_FEEDS_DIR``), the only
        place local feeds may go. Remote storages (S3, FTP, ...) are Scrapy's own."""
        if not self.feeds:
            return {}
        feeds = {}
        for n, (uri, options) in enumerate(self.feeds.items()):
            local = local_feed_path(uri)
            if local is None:
                feeds[uri] = options
                continue
            inside = Path(task_dir) / "feeds" / str(n)
            feeds[str(inside / Path(local).name)] = options
            self.feed_copies.append((inside, feed_destination(local, feeds_dir)))
        return {"FEEDS": json.dumps(feeds)}

    def collect_feeds(self, spider: str, say: Callable[[str], None]) -> None:
        """Move the local feed files the spider wrote to their destinations."""
        for inside, folder in self.feed_copies:
            if not inside.is_dir():
                continue
            folder = Path(str(folder).replace("%(name)s", spider))
            folder.mkdir(parents=True, exist_ok=True)
            for entry in os.scandir(inside):
                # a spider's symlink must not make the node copy a file of its own
                if not entry.is_file(follow_symlinks=False):
                    continue
                with open(os.open(entry.path, os.O_RDONLY | os.O_NOFOLLOW), "rb") as src, \
                        open(folder / entry.name, "wb") as out:
                    shutil.copyfileobj(src, out)
                say(f"feed written: {folder / entry.name}")


def local_feed_path(uri: str) -> str | None:
    """The path of a feed URI that names a local file, else None."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return parsed.path
    return uri if parsed.scheme == "" else None


def feed_destination(path: str, feeds_dir: Path) -> Path:
    """The folder a local feed file goes to: inside `feeds_dir`, or refused."""
    base = Path(feeds_dir).resolve()
    target = (base / path).resolve() if not os.path.isabs(path) else Path(path).resolve()
    if target != base and base not in target.parents:
        raise CrawlfleetError(f"feed {path!r} is outside the feeds folder {base} "
                              "(CRAWLFLEET_FEEDS_DIR): local feeds are written only there")
    return target.parent


def finish(store: Store, config: Config, task: Mapping, settings: ResultsSettings,
           say: Callable[[str], None]) -> str | None:
    """After an attempt finished: supersede the attempts it replaced (in the
    spider's SQL data sources first: an attempt whose delivery failed half-way
    left rows there), then deliver its items. Returns an error that fails the
    task, or None."""
    if settings.sources and not settings.keep_partial:
        earlier, first_since = attempts.replaced(store, task, settings.policy)
        try:
            in_sql = sqlremove.delete_rows(store, config, task["results_collection"], earlier,
                                           first_since=first_since, sources=settings.sources,
                                           attempts=config.sink_attempts)
        except CrawlfleetError as exc:
            say(f"results: {exc}")
            return f"the rows of earlier attempts could not be removed: {exc}"
        if any(in_sql.values()):
            say(f"results: rows of earlier attempts of crawl {task.get('root_id')} removed "
                f"from data sources: {sqlremove.describe(in_sql)}")
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
