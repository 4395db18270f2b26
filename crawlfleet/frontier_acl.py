"""Per-crawl Redis ACL users: a crawl's worker spiders reach its frontier as a
user of their own that may touch only that crawl's keys, with only the
commands the frontier components use (``crawlfleet.sdk.frontier``,
``crawlfleet.sdk.crawlmiddlewares`` and scrapy-redis's scheduler, queue and
duplicate filter), so spider code cannot read or delete the broker's queues
or other crawls' frontiers.

The user is ``<queue prefix>-crawl-<crawl id>`` with a random password, kept
sealed (``crawlfleet.secrets``) on the crawl document and decrypted only on
the node that starts a worker. A Redis that refuses ``ACL SETUSER`` (before
6, or a configured user without ``+acl``) leaves the crawl on the platform's
own URL, as before: the crawl says ``frontier_isolation: false`` and the
master logs a warning once.
"""

from __future__ import annotations

import logging
import re
import secrets
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

from crawlfleet import secrets as sealed
from crawlfleet.errors import Conflict
from crawlfleet.frontier import CrawlKeys, frontier_url

if TYPE_CHECKING:
    import redis

    from crawlfleet.config import Config

log = logging.getLogger(__name__)

SECRET_FIELD = "frontier_secret"      # the sealed password, on the crawl document
ISOLATION_FIELD = "frontier_isolation"

# Every command a worker sends (directly, or from inside the frontier's Lua
# scripts, which Redis checks against the same user): nothing that reaches
# beyond a key (no KEYS, SCAN, FLUSHALL, CONFIG, ACL, FUNCTION, SCRIPT FLUSH).
# (not CLIENT SETINFO: Redis 7.0 does not know it, and redis-py ignores its refusal)
COMMANDS = (
    "ping", "select", "client|setname", "multi", "exec", "discard",
    "eval", "evalsha", "script|load", "script|exists",
    "time", "get", "set", "del", "exists", "expire", "pexpire", "ttl",
    "sadd", "srem", "smembers", "sismember", "scard",
    "zadd", "zrem", "zcard", "zrange", "zrangebyscore", "zremrangebyscore", "zremrangebyrank",
    "hset", "hdel", "hlen", "hgetall", "hkeys",
)

_warned = False


def user_name(config: Config, crawl_id: str) -> str:
    return f"{config.queue_prefix}-crawl-{crawl_id}"


def _glob_escape(text: str) -> str:
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


def _client(config: Config) -> redis.Redis:
    import redis  # here, not at import: only crawls with a frontier need it

    return redis.Redis.from_url(frontier_url(config), socket_timeout=10,
                                socket_connect_timeout=5)


def grant(config: Config, crawl: dict[str, Any]) -> bool:
    """(Re)make the ACL user of `crawl` from its sealed password: after a Redis
    restart the user is gone while the frontier's keys may not be. False when
    the crawl has no user of its own."""
    import redis

    token = crawl.get(SECRET_FIELD)
    if not token:
        return False
    client = _client(config)
    try:
        client.acl_setuser(user_name(config, crawl["_id"]), reset=True, enabled=True,
                           passwords=["+" + sealed.decrypt(config, token)],
                           keys=[_glob_escape(CrawlKeys(config.queue_prefix, crawl["_id"]).base)
                                 + "*"],
                           channels=[], reset_channels=True,
                           categories=["-@all"], commands=[f"+{c}" for c in COMMANDS])
        return True
    except redis.ResponseError as exc:
        log.warning("crawl %s: its frontier user could not be made again (%s)",
                    crawl["_id"], exc)
        return False
    finally:
        client.close()


def create(config: Config, crawl_id: str) -> dict[str, Any]:
    """Make crawl `crawl_id`'s ACL user; the fields to store on the crawl:
    the sealed password and ``frontier_isolation``. A Redis that refuses ACLs
    gives ``frontier_isolation: False`` (workers then get the platform's URL)."""
    import redis

    global _warned
    crawl = {"_id": crawl_id, SECRET_FIELD: sealed.encrypt(config, secrets.token_urlsafe(32))}
    client = _client(config)
    try:
        client.execute_command("ACL", "WHOAMI")  # refused before Redis 6
    except redis.ConnectionError as exc:
        raise Conflict(f"the frontier Redis is unreachable ({exc}); try again") from None
    except redis.ResponseError as exc:
        if not _warned:
            _warned = True
            log.warning("the frontier Redis refuses ACL commands (%s): crawl workers get the "
                        "platform's own Redis URL and can reach every key in it; use Redis >= 6 "
                        "and a CRAWLFLEET_FRONTIER_URL user allowed +acl to isolate crawls", exc)
        return {ISOLATION_FIELD: False}
    finally:
        client.close()
    try:
        made = grant(config, crawl)
    except redis.ResponseError:
        made = False
    if not made:
        if not _warned:
            _warned = True
            log.warning("the frontier Redis user may not run ACL SETUSER: crawl workers get "
                        "the platform's own Redis URL; allow it +acl to isolate crawls")
        return {ISOLATION_FIELD: False}
    return {ISOLATION_FIELD: True, SECRET_FIELD: crawl[SECRET_FIELD]}


def revoke(config: Config, crawl_id: str) -> bool:
    """Delete crawl `crawl_id`'s ACL user (Redis also disconnects its clients)."""
    import redis

    client = _client(config)
    try:
        return bool(client.acl_deluser(user_name(config, crawl_id)))
    except redis.ResponseError:
        return False
    finally:
        client.close()


def crawl_users(config: Config) -> dict[str, str]:
    """This installation's crawl users in the frontier Redis: name → crawl id."""
    import redis

    head = f"{config.queue_prefix}-crawl-"
    client = _client(config)
    try:
        names = [n.decode() if isinstance(n, bytes) else n for n in client.acl_users()]
    except redis.ResponseError:
        return {}
    finally:
        client.close()
    return {n: n[len(head):] for n in names if n.startswith(head)}


def worker_url(config: Config, crawl: dict[str, Any] | None) -> str:
    """The frontier URL a worker of `crawl` gets: the crawl's own user when it
    has one, else the platform's URL."""
    base = frontier_url(config)
    if crawl is None or not crawl.get(SECRET_FIELD) or not base:
        return base
    token = crawl[SECRET_FIELD]
    password = sealed.decrypt(config, token)
    parts = urlsplit(base)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{quote(user_name(config, crawl['_id']), safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))
