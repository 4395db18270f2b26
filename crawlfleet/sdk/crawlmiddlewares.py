"""The Scrapy middlewares of a worker of a distributed or resumable crawl
(`crawlfleet.sdk.frontier.configure` adds them): `SeedOnce` runs the start
requests in one worker only, `DomainLimiter` holds the crawl-wide per-domain
concurrency and delay on Redis's clock, shared by workers on every host.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Self

import redis
from scrapy import signals
from scrapy.exceptions import NotConfigured
from scrapy.utils.httpobj import urlparse_cached
from scrapy_redis.connection import get_redis_from_settings
from twisted.internet import task

from crawlfleet.sdk.frontier import crawl_keys

if TYPE_CHECKING:
    from scrapy import Request, Spider
    from scrapy.crawler import Crawler
    from scrapy.http import Response

log = logging.getLogger(__name__)

# One slot of the crawl-wide per-domain limit, on Redis's clock (workers on
# several hosts share it). Returns 0 (taken) or how many ms to wait.
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return -1 end
local nxt = tonumber(redis.call('GET', KEYS[2]) or '0')
if nxt > now then return nxt - now end
local lease = tonumber(ARGV[3])
redis.call('ZADD', KEYS[1], now + lease, ARGV[4])
redis.call('PEXPIRE', KEYS[1], lease + 60000)
local delay = tonumber(ARGV[2])
if delay > 0 then redis.call('SET', KEYS[2], now + delay, 'PX', delay + 60000) end
return 0
"""


class CrawlMiddleware:
    """What every frontier middleware holds: the crawl's Redis, its keys and
    this worker's name; outside a crawl the middleware switches itself off."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        if not settings.get("CRAWLFLEET_CRAWL_ID"):
            raise NotConfigured
        self.server = get_redis_from_settings(settings)
        self.keys = crawl_keys(settings)
        self.worker = settings.get("CRAWLFLEET_FRONTIER_WORKER")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)


class SeedOnce(CrawlMiddleware):
    """Runs the spider's start requests in the first worker only; the others
    (and every worker of a resumed crawl) take their work from the frontier."""

    async def process_start(self, start: AsyncIterator[Any]) -> AsyncIterator[Any]:
        if not self.server.set(self.keys.seeded, f"running:{self.worker}", nx=True):
            log.info("crawlfleet frontier: start requests already seeded (%s); "
                     "taking work from the frontier",
                     (self.server.get(self.keys.seeded) or b"?").decode())
            return
        log.info("crawlfleet frontier: this worker seeds the start requests")
        async for item_or_request in start:
            yield item_or_request
        self.server.set(self.keys.seeded, "done")


class DomainLimiter(CrawlMiddleware):
    """A downloader middleware holding one crawl-wide slot of the request's
    domain while it downloads: at most CRAWLFLEET_DOMAIN_CONCURRENCY requests
    of the whole crawl at a time (default: the spider's
    CONCURRENT_REQUESTS_PER_DOMAIN), starting at least CRAWLFLEET_DOMAIN_DELAY
    seconds apart (default: DOWNLOAD_DELAY)."""

    META = "crawlfleet_domain_slot"
    WAIT_FULL = 0.02

    def __init__(self, crawler: Crawler) -> None:
        super().__init__(crawler)
        settings = crawler.settings
        self.limit = settings.getint("CRAWLFLEET_DOMAIN_CONCURRENCY") or settings.getint(
            "CONCURRENT_REQUESTS_PER_DOMAIN")
        delay = settings.get("CRAWLFLEET_DOMAIN_DELAY")
        self.delay_ms = int(1000 * (float(delay) if delay not in (None, "")
                                    else settings.getfloat("DOWNLOAD_DELAY")))
        # A dead worker's slot frees itself after this (the master frees it sooner).
        self.lease_ms = int(1000 * (settings.getfloat("DOWNLOAD_TIMEOUT") + 10))
        self._acquire = self.server.register_script(ACQUIRE)
        self.counter = 0
        self.waited = 0.0
        self.crawler = crawler
        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @staticmethod
    def domain(request: Request) -> str:
        return request.meta.get("download_slot") or urlparse_cached(request).hostname or ""

    async def process_request(self, request: Request) -> None:
        from scrapy.utils.defer import maybe_deferred_to_future
        from twisted.internet import reactor

        domain = self.domain(request)
        self.counter += 1
        token = f"{self.worker}:{self.counter}"
        started = time.monotonic()
        while True:
            wait = self._acquire(keys=[self.keys.limit(domain), self.keys.next_allowed(domain)],
                                 args=[self.limit, self.delay_ms, self.lease_ms, token])
            if wait == 0:
                break
            seconds = self.WAIT_FULL if wait < 0 else wait / 1000
            await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))
        self.waited += time.monotonic() - started
        request.meta[self.META] = (domain, token)
        return None

    def _free(self, request: Request) -> None:
        held = request.meta.pop(self.META, None)
        if held:
            try:
                self.server.zrem(self.keys.limit(held[0]), held[1])
            except redis.RedisError as exc:  # the lease frees it later
                log.warning("crawlfleet limiter: slot not freed (%s)", exc)

    def process_response(self, request: Request, response: Response) -> Response:
        self._free(request)
        return response

    def process_exception(self, request: Request, exception: Exception) -> None:
        self._free(request)
        return None

    def spider_closed(self, spider: Spider) -> None:
        self.crawler.stats.set_value("crawlfleet/domain_limit_wait_seconds", round(self.waited, 3))
