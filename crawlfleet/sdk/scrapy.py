"""Scrapy components the node injects into every Scrapy project it runs:
an item pipeline that hands items to the node in batches, and an extension
that reports live stats, both over the task's channel to its node. Neither needs any change to the project."""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task, threads

from crawlfleet.sdk import origins
from crawlfleet.sdk.context import TaskContext, shared_context

if TYPE_CHECKING:
    from scrapy.crawler import Crawler

log = logging.getLogger(__name__)

PIPELINE = "crawlfleet.sdk.scrapy.ItemPipeline"
EXTENSION = "crawlfleet.sdk.scrapy.StatsReporter"
PIPELINE_ORDER = 1000  # after the project's own pipelines, which may clean or drop items
EXTENSION_ORDER = 500
FLUSH_SECONDS = 2.0


def _context() -> TaskContext:
    context = shared_context()
    if context is None:
        raise NotConfigured("not running as a crawlfleet task")
    return context


class ItemPipeline:
    """Stores every item that reaches it in the task's results collection.

    Batches go to a writer thread of its own, so the crawl goes on while the
    store works. At most IN_FLIGHT batches wait for it; past that the crawl
    blocks on the queue until the store catches up. (Returning a Deferred
    instead would let Scrapy's engine sit idle until its next 5-second
    heartbeat.) A batch the store refuses even after the SDK's retries closes
    the spider and fails the task: no item is silently dropped.
    """

    IN_FLIGHT = 4

    def __init__(self, context: TaskContext, batch_size: int,
                 crawler: Crawler | None = None) -> None:
        self.context = context
        self.batch_size = batch_size
        self.crawler = crawler
        self.buffer: list[dict[str, Any]] = []
        # beside `buffer`: each item's tag (crawlfleet.sdk.origins)
        self.origins: list[str | None] = []
        # Items taken and items stored so far: a distributed crawl's scheduler
        # (crawlfleet.sdk.frontier) releases a request once its items are stored.
        self.accepted = 0
        self.stored = 0
        # called from the writer thread with `stored` after each batch
        self.on_stored: list[Callable[[int], object]] = []
        self.last_flush = time.monotonic()
        self.batches: queue.Queue[tuple[list[dict[str, Any]], list[str | None]] | None] = \
            queue.Queue(maxsize=self.IN_FLIGHT)
        self.writer = threading.Thread(target=self._write_batches, name="crawlfleet-items",
                                       daemon=True)
        self.writer.start()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemPipeline:
        context = _context()
        context.use_settings(crawler.settings)
        return cls(context, crawler.settings.getint("CRAWLFLEET_BATCH_SIZE", 500), crawler)

    def process_item(self, item: Any, spider: Any = None) -> Any:
        # ItemAdapter.asdict costs ~75 µs an item; a plain dict needs only a copy
        # (the store write cleans and copies it deeply anyway).
        self.buffer.append(dict(item) if type(item) is dict else ItemAdapter(item).asdict())
        self.origins.append(origins.take(item))
        self.accepted += 1
        # Full batches, or whatever arrived in the last couple of seconds, so that
        # a slow crawl's items show up while it runs.
        if len(self.buffer) >= self.batch_size or time.monotonic() - self.last_flush > FLUSH_SECONDS:
            self.flush()
        return item

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        batch, self.buffer = self.buffer, []
        tags, self.origins = self.origins, []
        if batch and not STORE_FAILED:
            self.batches.put((batch, tags))

    def _write_batches(self) -> None:
        global STORE_FAILED
        while (entry := self.batches.get()) is not None:
            if STORE_FAILED:
                continue
            batch, tags = entry
            try:
                self.context.insert_items(batch, tags)
                self.stored += len(batch)
                for callback in self.on_stored:
                    callback(self.stored)
            except Exception as exc:
                STORE_FAILED = True
                log.error("crawlfleet: %d items could not be stored: %s", len(batch), exc)
                if self.crawler is not None and self.crawler.engine is not None:
                    # imported here: importing the reactor at module level would install one
                    from twisted.internet import reactor

                    reactor.callFromThread(close_for_store_failure, self.crawler)

    async def close_spider(self, spider: Any = None) -> None:
        # a coroutine: Scrapy 2.13+ warns when a pipeline returns a Deferred
        from scrapy.utils.defer import maybe_deferred_to_future

        self.flush()
        self.batches.put(None)
        try:
            await maybe_deferred_to_future(threads.deferToThread(self.writer.join))
        finally:
            self.context.close()


# Set when items could not be stored; `crawlfleet.sdk.launch` then exits non-zero.
STORE_FAILED = False


def close_for_store_failure(crawler: Crawler) -> None:
    """Close the spider because its items cannot be stored."""
    engine = crawler.engine
    try:
        if hasattr(engine, "close_spider_async"):
            from scrapy.utils.defer import deferred_from_coro

            deferred_from_coro(engine.close_spider_async(reason="crawlfleet_store_failed"))
        else:  # Scrapy before 2.13, whose engine the installed stubs do not describe
            engine.close_spider(crawler.spider, "crawlfleet_store_failed")  # type: ignore[arg-type]
    except Exception as exc:  # already closing
        log.debug("close after a store failure: %s", exc)


def collect(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The figures the platform shows, from Scrapy's stats collector."""
    errors = stats.get("log_count/ERROR", 0)
    return {
        "pages": stats.get("response_received_count", 0),
        "requests": stats.get("downloader/request_count", 0),
        "scraped": stats.get("item_scraped_count", 0),
        "dropped": stats.get("item_dropped_count", 0),
        "errors": errors,
        "status_404": stats.get("downloader/response_status_count/404", 0),
    }


class StatsReporter:
    """Writes pages, requests and errors to the task document every few seconds."""

    def __init__(self, crawler: Crawler, context: TaskContext, interval: float) -> None:
        self.crawler = crawler
        self.context = context
        self.interval = interval
        self.loop: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StatsReporter:
        interval = float(os.environ.get("CRAWLFLEET_STATS_INTERVAL", "2"))
        ext = cls(crawler, _context(), interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider: Any) -> None:
        self.loop = task.LoopingCall(self.report)
        self.loop.start(self.interval, now=True)

    def report(self) -> None:
        self.context.update_stats(collect(self.crawler.stats.get_stats()))

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.loop and self.loop.running:
            self.loop.stop()
        figures = collect(self.crawler.stats.get_stats())
        figures["finish_reason"] = reason
        self.context.update_stats(figures)
        self.context.close()
