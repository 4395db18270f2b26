"""The Redis side of a distributed or resumable crawl: its key names and the
few operations the master needs on them.

Every key of crawl C lives under ``<queue_prefix>:crawl:C:`` so one SCAN finds
them all and several installations can share a Redis:

=====================  ======  ====================================================
key                    type    holds
=====================  ======  ====================================================
``requests``           zset    the frontier: pickled requests scored by -priority
                               (scrapy-redis ``PriorityQueue``)
``seen``               set     fingerprints of every request ever scheduled
                               (scrapy-redis ``RFPDupeFilter``)
``seeded``             string  ``running:<task>`` while a worker runs the spider's
                               start requests, ``done`` after
``inflight:<task>``    hash    requests worker <task> has taken and not finished
                               (pickled request → score); pushed back to
                               ``requests`` when the worker dies or stops
``limit:<domain>``     zset    the crawl-wide per-domain limiter: slot tokens
                               scored by lease expiry (ms)
``next:<domain>``      string  earliest time (ms) the domain's next request may start
=====================  ======  ====================================================

Only this module and ``crawlfleet.sdk.frontier`` (the Scrapy side, which runs
in spider processes) know these names.
"""

from typing import TYPE_CHECKING, Any

from crawlfleet.errors import Conflict

if TYPE_CHECKING:
    import redis

SCAN_BATCH = 500

# Move every request of a worker's in-flight hash back into the frontier, at the
# score (priority) it was taken with, and forget the hash: atomic, so a pushback
# racing a late release can neither lose nor double a request.
PUSHBACK = """
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  redis.call('ZADD', KEYS[2], entries[i + 1], entries[i])
end
redis.call('DEL', KEYS[1])
return #entries / 2
"""


def frontier_url(config) -> str:
    """The Redis URL of frontiers: the setting, else the broker's when it is Redis."""
    if config.frontier_url:
        return config.frontier_url
    if config.broker_url.startswith(("redis://", "rediss://")):
        return config.broker_url
    return ""


def require_frontier(config, what: str) -> str:
    url = frontier_url(config)
    if not url:
        raise Conflict(f"{what} needs a Redis frontier: set CRAWLFLEET_FRONTIER_URL "
                       "(e.g. redis://host:6379/0), or use a Redis broker")
    return url


def frontier_environment(task: dict, config, url: str | None = None) -> dict:
    """What a worker task's spider process needs to find its crawl's frontier;
    `url` is the crawl's own (``crawlfleet.frontier_acl.worker_url``)."""
    if not task.get("crawl_id"):
        return {}
    return {"CRAWLFLEET_CRAWL_ID": task["crawl_id"],
            "CRAWLFLEET_FRONTIER_URL": url or frontier_url(config),
            "CRAWLFLEET_FRONTIER_PREFIX": config.queue_prefix,
            "CRAWLFLEET_FRONTIER_TTL": str(config.frontier_ttl)}


class CrawlKeys:
    """Names of one crawl's keys."""

    def __init__(self, prefix: str, crawl_id: str):
        self.base = f"{prefix}:crawl:{crawl_id}:"
        self.requests = self.base + "requests"
        self.seen = self.base + "seen"
        self.seeded = self.base + "seeded"

    def inflight(self, task_id: str) -> str:
        return f"{self.base}inflight:{task_id}"

    def limit(self, domain: str) -> str:
        return f"{self.base}limit:{domain}"

    def next_allowed(self, domain: str) -> str:
        return f"{self.base}next:{domain}"

    @property
    def pattern(self) -> str:
        return self.base + "*"


class Frontier:
    """One crawl's frontier as the master sees it."""

    def __init__(self, client: "redis.Redis", keys: CrawlKeys):
        self.redis = client
        self.keys = keys
        self._pushback = client.register_script(PUSHBACK)

    @classmethod
    def open(cls, config, crawl_id: str) -> "Frontier":
        import redis  # here, not at import: only crawls with a frontier need it

        client = redis.Redis.from_url(frontier_url(config), socket_timeout=10,
                                      socket_connect_timeout=5)
        return cls(client, CrawlKeys(config.queue_prefix, crawl_id))

    def close(self):
        self.redis.close()

    def figures(self, task_ids) -> dict:
        """Sizes a user watches: waiting, seen, in flight (per worker too)."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.zcard(self.keys.requests)
        pipe.scard(self.keys.seen)
        pipe.get(self.keys.seeded)
        for task_id in task_ids:
            pipe.hlen(self.keys.inflight(task_id))
        waiting, seen, seeded, *inflight = pipe.execute()
        return {"queued": waiting, "seen": seen,
                "seeded": (seeded or b"").decode() or None,
                "in_flight": sum(inflight),
                "in_flight_by_worker": dict(zip(task_ids, inflight))}

    def push_back(self, task_id: str) -> int:
        """Return the requests worker `task_id` had taken to the frontier."""
        return int(self._pushback(keys=[self.keys.inflight(task_id), self.keys.requests]))

    def unseed_if(self, task_id: str) -> bool:
        """Forget a seeding the dead worker `task_id` had not finished, so that
        the next worker runs the start requests again."""
        current = self.redis.get(self.keys.seeded)
        if current == f"running:{task_id}".encode():
            self.redis.delete(self.keys.seeded)
            return True
        return False

    def release_limits(self, task_id: str):
        """Free the per-domain slots a dead worker held (each would otherwise
        block its domain until its lease ran out)."""
        for key in self.redis.scan_iter(self.keys.base + "limit:*", count=SCAN_BATCH):
            members: Any = self.redis.zrange(key, 0, -1)
            tokens = [t for t in members
                      if t.decode(errors="replace").startswith(task_id + ":")]
            if tokens:
                self.redis.zrem(key, *tokens)

    def exists(self) -> bool:
        return bool(self.redis.exists(self.keys.requests, self.keys.seen, self.keys.seeded))

    def expire(self, seconds: float):
        for key in self.redis.scan_iter(self.keys.pattern, count=SCAN_BATCH):
            self.redis.expire(key, max(1, int(seconds)))

    def delete(self) -> int:
        removed = 0
        batch = []
        for key in self.redis.scan_iter(self.keys.pattern, count=SCAN_BATCH):
            batch.append(key)
            if len(batch) >= SCAN_BATCH:
                removed += self.redis.delete(*batch)
                batch = []
        if batch:
            removed += self.redis.delete(*batch)
        return removed
