"""Scrapy components that make one crawl out of several worker processes (or
let one worker's crawl be resumed): scrapy-redis's scheduler, priority queue
and duplicate filter on the crawl's Redis keys (named in
``crawlfleet.frontier``), plus what scrapy-redis leaves out:

- ``InflightQueue``: a request popped from the frontier is moved, in the same
  Redis script, into this worker's in-flight hash; it leaves that hash only
  once its callback's output has been scheduled and its items stored. A worker
  that dies therefore loses nothing: the master pushes its hash back.
- ``FrontierScheduler``: never flushes the shared frontier when one worker
  closes (scrapy-redis does unless SCHEDULER_PERSIST), and keeps an idle
  worker open while any other worker may still produce requests: a crawl is
  finished when its start requests are seeded, the frontier is empty and no
  worker holds an in-flight request.
- ``crawlfleet.sdk.crawlmiddlewares.SeedOnce``: only the first worker runs
  the spider's start requests.
- ``crawlfleet.sdk.crawlmiddlewares.DomainLimiter``: a crawl-wide per-domain
  limit (concurrent requests and delay) shared by every worker through Redis.
- ``crawlfleet.sdk.origins.ItemOrigins``: tags each item with the response it
  came from, so that a request fetched again stores its items once.

`configure` adds them to a project's settings when the task's environment
names a crawl (``CRAWLFLEET_CRAWL_ID``); the spider itself is unchanged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

import redis
from scrapy import signals
from scrapy.exceptions import CloseSpider, DontCloseSpider
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler
from twisted.internet import task

from crawlfleet.frontier import CrawlKeys
from crawlfleet.sdk import origins

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.settings import BaseSettings, Settings

    from crawlfleet.sdk.scrapy import ItemPipeline

log = logging.getLogger(__name__)

IDLE_POLL = 0.2        # seconds between checks of an idle worker for new work
RELEASE_INTERVAL = 0.25
FLUSH_AFTER = 0.5      # a finished request waits at most this long for its items' batch
TTL_REFRESH = 30.0
LIFO_PERIOD = float(2 ** 24)  # seconds (194 days) before the newest-first order wraps once

# Take the best request and record it as this worker's, atomically: a worker
# killed between the two steps of a client-side pop/record would lose it.
TAKE = """
local top = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if #top == 0 then return false end
redis.call('ZREM', KEYS[1], top[1])
redis.call('HSET', KEYS[2], top[1], top[2])
return top[1]
"""

# Set when a worker found its crawl's frontier gone; `crawlfleet.sdk.launch`
# then exits non-zero (the task fails instead of finishing a crawl it did not).
FRONTIER_LOST = False

SCHEDULER = "crawlfleet.sdk.frontier.FrontierScheduler"
QUEUE = "crawlfleet.sdk.frontier.InflightQueue"
DUPEFILTER = "scrapy_redis.dupefilter.RFPDupeFilter"
SEED_MIDDLEWARE = "crawlfleet.sdk.crawlmiddlewares.SeedOnce"
LIMITER = "crawlfleet.sdk.crawlmiddlewares.DomainLimiter"
SEED_ORDER = 1          # closest to the engine: it sees the start output of every other middleware
LIMITER_ORDER = 950     # after the HTTP cache (900): a cached answer takes no slot of the site


def configure(settings: Settings, environ: Mapping[str, str]) -> Settings:
    """Point `settings` at the crawl's frontier when the task is part of one."""
    crawl_id = environ.get("CRAWLFLEET_CRAWL_ID")
    if not crawl_id:
        return settings
    keys = CrawlKeys(environ.get("CRAWLFLEET_FRONTIER_PREFIX", "crawlfleet"), crawl_id)
    values = {
        "SCHEDULER": SCHEDULER,
        "SCHEDULER_QUEUE_CLASS": QUEUE,
        "DUPEFILTER_CLASS": DUPEFILTER,
        "SCHEDULER_PERSIST": True,
        "SCHEDULER_QUEUE_KEY": keys.requests,
        "SCHEDULER_DUPEFILTER_KEY": keys.seen,
        "REDIS_URL": environ["CRAWLFLEET_FRONTIER_URL"],
        "CRAWLFLEET_CRAWL_ID": crawl_id,
        "CRAWLFLEET_FRONTIER_PREFIX": keys.base.split(":crawl:")[0],
        "CRAWLFLEET_FRONTIER_WORKER": environ["CRAWLFLEET_TASK_ID"],
        "CRAWLFLEET_FRONTIER_TTL": float(environ.get("CRAWLFLEET_FRONTIER_TTL") or 7 * 86400),
    }
    for name, value in values.items():
        settings.set(name, value, priority="cmdline")
    for name, component, order in (("SPIDER_MIDDLEWARES", SEED_MIDDLEWARE, SEED_ORDER),
                                   ("SPIDER_MIDDLEWARES", origins.MIDDLEWARE, origins.ORDER),
                                   ("DOWNLOADER_MIDDLEWARES", LIMITER, LIMITER_ORDER)):
        components = dict(settings.getdict(name))
        components[component] = order
        settings.set(name, components, priority="cmdline")
    return settings


def crawl_keys(settings: BaseSettings) -> CrawlKeys:
    """The Redis keys of the crawl that `configure` put in `settings`."""
    return CrawlKeys(settings.get("CRAWLFLEET_FRONTIER_PREFIX"), settings.get("CRAWLFLEET_CRAWL_ID"))


class InflightQueue(PriorityQueue):
    """scrapy-redis's priority queue whose pop also records the request as
    this worker's in flight (its ``pop`` is a MULTI of ZRANGE and
    ZREMRANGEBYRANK that forgets the request once it leaves Redis)."""

    def __init__(self, server: redis.Redis, spider: Spider, key: str,
                 serializer: Any = None) -> None:
        super().__init__(server, spider, key, serializer)
        settings = spider.settings
        self.inflight_key = crawl_keys(settings).inflight(settings.get("CRAWLFLEET_FRONTIER_WORKER"))
        self._take = server.register_script(TAKE)
        self.taken: dict[int, tuple[Request, bytes]] = {}  # id(request) -> (request, encoded), until released

    def push(self, request: Request) -> None:
        # scrapy-redis scores a request -priority alone, so requests of one
        # priority leave in the order of their pickled bytes: a spider that
        # yields its "next page" last could wait behind every detail page.
        # Scrapy's own queues are LIFO within a priority; so is this one (newest
        # first, by the pushing worker's clock), keeping priorities apart
        # (the fraction stays within [0, 1)).
        fraction = (time.time() % LIFO_PERIOD) / LIFO_PERIOD
        self.server.execute_command("ZADD", self.key, -request.priority - fraction,
                                    self._encode_request(request))

    def pop(self, timeout: float = 0) -> Request | None:
        data = self._take(keys=[self.key, self.inflight_key])
        if not data:
            return None
        request = self._decode_request(data)
        self.taken[id(request)] = (request, data)
        return request

    def done(self, request: Request) -> bytes | None:
        """The encoded form of `request` if this worker took it from the frontier."""
        entry = self.taken.pop(id(request), None)
        return entry[1] if entry is not None and entry[0] is request else None


class FrontierScheduler(Scheduler):
    """scrapy-redis's scheduler for one worker of a shared crawl."""

    # crawlfleet's item pipeline, once looked up; False when the crawl has none
    _items: ItemPipeline | Literal[False] | None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> FrontierScheduler:
        scheduler = super().from_crawler(crawler)
        scheduler.crawler = crawler
        settings = crawler.settings
        scheduler.keys = crawl_keys(settings)
        scheduler.worker = settings.get("CRAWLFLEET_FRONTIER_WORKER")
        scheduler.ttl = int(settings.getfloat("CRAWLFLEET_FRONTIER_TTL"))
        scheduler.pending = []     # (encoded request, items accepted when it finished, time)
        scheduler.lock = threading.Lock()  # the item writer thread releases too
        scheduler._items = None
        scheduler.loop = None
        scheduler.refreshed = 0.0
        crawler.signals.connect(scheduler.spider_idle, signal=signals.spider_idle)
        return scheduler

    def open(self, spider: Spider) -> None:
        super().open(spider)
        self.server.sadd(self.keys.base + "workers", self.worker)
        self._refresh_ttl()
        # Scrapy sends no signal once a request's callback output is scheduled
        # and its items handed to the pipelines; the engine's slot forgets the
        # request exactly then, so that one method is where a request is done.
        slot = self.crawler.engine._slot
        forget = slot.remove_request

        def remove_request(request: Request) -> None:
            forget(request)
            self._finished(request)

        slot.remove_request = remove_request
        self.loop = task.LoopingCall(self._tick)
        self.loop.start(RELEASE_INTERVAL, now=False)

    def close(self, reason: str) -> None:
        # The pipelines have closed (flushed) by now: release what they stored.
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        self._release()
        self._refresh_ttl()
        super().close(reason)

    # -- in-flight accounting -----------------------------------------------------
    def _pipeline(self) -> ItemPipeline | None:
        if self._items is None:
            from crawlfleet.sdk.scrapy import ItemPipeline

            itemproc = getattr(self.crawler.engine.scraper, "itemproc", None)
            self._items = next((c for c in getattr(itemproc, "middlewares", ())
                                if isinstance(c, ItemPipeline)), False)
            if self._items:
                # released from the writer thread the moment a batch is stored: a
                # worker killed right after storing then refetches (and stores
                # again) as little as possible
                self._items.on_stored.append(self._release)
        return self._items or None

    def _finished(self, request: Request) -> None:
        data = self.queue.done(request)
        if data is None:
            return
        pipeline = self._pipeline()
        with self.lock:
            self.pending.append((data, pipeline.accepted if pipeline else 0, time.monotonic()))
        if pipeline is None or pipeline.stored >= pipeline.accepted:
            self._release()

    def _release(self, stored: float | None = None) -> float | None:
        """Forget finished requests whose items are stored (all of them when the
        items do not go through crawlfleet's pipeline)."""
        pipeline = self._pipeline()
        if stored is None:
            stored = pipeline.stored if pipeline is not None else float("inf")
        with self.lock:
            count = 0
            while count < len(self.pending) and self.pending[count][1] <= stored:
                count += 1
            if count:
                self.server.hdel(self.queue.inflight_key, *[p[0] for p in self.pending[:count]])
                del self.pending[:count]
            waiting = self.pending[0][2] if self.pending else None
        return waiting

    def _flush_if_waiting(self) -> None:
        waiting = self._release()
        pipeline = self._pipeline()
        # A quiet crawl would hold its last items (and so its last requests) in
        # the pipeline's buffer. Hand them to the writer only while it is idle:
        # a put on its full queue would block the crawl itself.
        if (waiting is not None and pipeline is not None and pipeline.buffer
                and pipeline.batches.empty() and time.monotonic() - waiting > FLUSH_AFTER):
            pipeline.flush()

    def _tick(self) -> None:
        try:
            self._flush_if_waiting()
            if time.monotonic() - self.refreshed > TTL_REFRESH:
                self._refresh_ttl()
        except redis.RedisError as exc:
            log.warning("crawlfleet frontier: Redis unreachable (%s); retrying", exc)

    def _refresh_ttl(self) -> None:
        self.refreshed = time.monotonic()
        pipe = self.server.pipeline(transaction=False)
        for key in (self.keys.requests, self.keys.seen, self.keys.seeded,
                    self.keys.base + "workers", self.queue.inflight_key):
            pipe.expire(key, self.ttl)
        pipe.execute()

    # -- when is the whole crawl done? ------------------------------------------------
    def crawl_done(self) -> bool:
        """Seeded, nothing queued, nothing in flight on any worker."""
        if self.pending:
            return False
        workers = [w.decode() for w in self.server.smembers(self.keys.base + "workers")]
        pipe = self.server.pipeline(transaction=False)
        pipe.get(self.keys.seeded)
        pipe.zcard(self.keys.requests)
        for worker in workers:
            pipe.hlen(self.keys.inflight(worker))
        seeded, queued, *inflight = pipe.execute()
        return seeded == b"done" and queued == 0 and not any(inflight)

    def frontier_lost(self) -> bool:
        """Redis forgot the crawl (restarted without persistence, or its keys
        expired): waiting would never end."""
        pipe = self.server.pipeline(transaction=False)
        pipe.exists(self.keys.seeded)
        pipe.sismember(self.keys.base + "workers", self.worker)
        seeded, known = pipe.execute()
        return not seeded and not known

    def spider_idle(self, spider: Spider) -> None:
        global FRONTIER_LOST
        try:
            self._flush_if_waiting()
            if self.frontier_lost():
                FRONTIER_LOST = True
                log.error("crawlfleet frontier: the crawl's keys are gone from Redis "
                          "(restarted without persistence, or expired); stopping")
                raise CloseSpider("crawlfleet_frontier_lost")
            if self.crawl_done():
                log.info("crawlfleet frontier: empty, and no worker has a request in flight; "
                         "this worker is done")
                return
        except redis.RedisError as exc:
            log.warning("crawlfleet frontier: Redis unreachable (%s); waiting", exc)
        from twisted.internet import reactor

        slot = self.crawler.engine._slot
        if slot is not None:
            # Scrapy looks at the scheduler again only every 5 s when idle; work
            # pushed by other workers should start sooner.
            # (twisted types `reactor` as its interface, whose methods take no self)
            reactor.callLater(IDLE_POLL, slot.nextcall.schedule)  # type: ignore[arg-type]
        raise DontCloseSpider("other workers of the crawl are still busy")
