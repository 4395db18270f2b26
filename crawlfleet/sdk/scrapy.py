"""Scrapy components the node injects into every Scrapy project it runs:
an item pipeline that stores items in batches, and an extension that reports
live stats to the task document. Neither needs any change to the project."""

import logging
import os

from itemadapter import ItemAdapter
from scrapy import signals
from scrapy.exceptions import NotConfigured
from twisted.internet import task

from crawlfleet.sdk.context import TaskContext

log = logging.getLogger(__name__)

PIPELINE = "crawlfleet.sdk.scrapy.ItemPipeline"
EXTENSION = "crawlfleet.sdk.scrapy.StatsReporter"
PIPELINE_ORDER = 1000  # after the project's own pipelines, which may clean or drop items
EXTENSION_ORDER = 500


def _context():
    context = TaskContext.from_environ(os.environ)
    if context is None:
        raise NotConfigured("not running as a crawlfleet task")
    return context


class ItemPipeline:
    """Stores every item that reaches it in the task's results collection."""

    def __init__(self, context, batch_size):
        self.context = context
        self.batch_size = batch_size
        self.buffer = []

    @classmethod
    def from_crawler(cls, crawler):
        return cls(_context(), crawler.settings.getint("CRAWLFLEET_BATCH_SIZE", 100))

    def process_item(self, item, spider=None):
        self.buffer.append(ItemAdapter(item).asdict())
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def flush(self):
        batch, self.buffer = self.buffer, []
        if batch:
            self.context.insert_items(batch)

    def close_spider(self, spider=None):
        self.flush()
        self.context.close()


def collect(stats):
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

    def __init__(self, crawler, context, interval):
        self.crawler = crawler
        self.context = context
        self.interval = interval
        self.loop = None

    @classmethod
    def from_crawler(cls, crawler):
        interval = float(os.environ.get("CRAWLFLEET_STATS_INTERVAL", "2"))
        ext = cls(crawler, _context(), interval)
        crawler.signals.connect(ext.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        return ext

    def spider_opened(self, spider):
        self.loop = task.LoopingCall(self.report)
        self.loop.start(self.interval, now=True)

    def report(self):
        self.context.update_stats(collect(self.crawler.stats.get_stats()))

    def spider_closed(self, spider, reason):
        if self.loop and self.loop.running:
            self.loop.stop()
        figures = collect(self.crawler.stats.get_stats())
        figures["finish_reason"] = reason
        self.context.update_stats(figures)
        self.context.close()
