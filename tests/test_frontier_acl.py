"""Per-crawl Redis ACL users (issue 10 for issue 14's frontiers): a crawl's
workers reach only their own crawl's keys, with only the frontier's commands;
the user goes with the frontier. Real Redis at the broker's URL, no nodes (a
worker's environment is built the way its node builds it).
"""

import uuid

import pytest
import redis

from crawlfleet import frontier_acl
from crawlfleet.frontier import CrawlKeys, frontier_url
from master import crawls, housekeeping
from node.environ import task_environment
from test_node import platform


@pytest.fixture
def fleet(tmp_path, mongo_server, demo_site):
    yield from platform("redis", tmp_path, mongo_server, demo_site)


def worker_client(config, store, crawl_id):
    """A Redis client with the URL a worker task of the crawl gets."""
    task = store.tasks.find_one({"crawl_id": crawl_id})
    crawl = store.crawls.find_one({"_id": crawl_id}, {"frontier_secret": 1})
    env = task_environment(task, config, "node-x", home="/tmp", base={}, crawl=crawl)
    url = env["CRAWLFLEET_FRONTIER_URL"]
    client = redis.Redis.from_url(url)
    # never go on with the platform's own rights: the checks below flush
    assert url.startswith(f"redis://{config.queue_prefix}-crawl-{crawl_id}:"), url
    refused(lambda: client.get(f"{config.queue_prefix}.anything"))
    return client, url


def refused(call):
    with pytest.raises(redis.exceptions.NoPermissionError):
        call()


def test_a_workers_url_reaches_its_own_crawl_only(fleet):
    config, store, broker, _ = fleet
    mine, _ = crawls.start_crawl(store, broker, config, "books", workers=2)
    other, _ = crawls.start_crawl(store, broker, config, "books", workers=1)
    assert mine["frontier_isolation"] is True
    doc = store.crawls.find_one({"_id": mine["_id"]})
    client, url = worker_client(config, store, mine["_id"])
    password = url.split(":")[2].split("@")[0]
    assert password not in str(doc)                      # sealed in the store
    assert "frontier_secret" not in crawls.public_crawl(store, doc)  # never shown
    assert "frontier_secret" not in str(crawls.without_secret(doc))

    keys, theirs = CrawlKeys(config.queue_prefix, mine["_id"]), CrawlKeys(
        config.queue_prefix, other["_id"])
    admin = redis.Redis.from_url(frontier_url(config))
    admin.set(theirs.seeded, "done")
    admin.set(f"{config.queue_prefix}.broker-probe", "x")
    try:
        # its own keys: every kind the frontier uses
        assert client.ping()
        assert client.set(keys.seeded, "running:w", nx=True)
        client.zadd(keys.requests, {"r": -1})
        client.sadd(keys.seen, "fp")
        client.sadd(keys.base + "workers", "w")
        client.hset(keys.inflight("w"), "r", -1)
        client.expire(keys.requests, 60)
        take = client.register_script("local t = redis.call('TIME') "
                                      "redis.call('ZADD', KEYS[1], t[1], 'x') "
                                      "return redis.call('ZCARD', KEYS[1])")
        assert take(keys=[keys.limit("example.org")]) == 1
        assert client.get(keys.seeded) == b"running:w"
        # nothing else
        refused(lambda: client.get(theirs.seeded))
        refused(lambda: client.delete(theirs.seeded))
        refused(lambda: client.get(f"{config.queue_prefix}.broker-probe"))
        refused(lambda: client.keys("*"))
        refused(lambda: client.scan())
        refused(lambda: client.flushall())
        refused(lambda: client.flushdb())
        refused(lambda: client.config_get("*"))
        refused(lambda: client.acl_list())
        with pytest.raises(redis.ResponseError):  # a script is held to the same keys
            client.eval("return redis.call('GET', KEYS[1])", 1, theirs.seeded)
        assert admin.get(theirs.seeded) == b"done"
    finally:
        client.close()
        admin.delete(f"{config.queue_prefix}.broker-probe")
        admin.close()


def test_the_user_goes_with_the_frontier(fleet):
    config, store, broker, _ = fleet
    crawl, _ = crawls.start_crawl(store, broker, config, "books", workers=1)
    client, url = worker_client(config, store, crawl["_id"])
    client.close()
    crawls.cancel_crawl(store, broker, crawl["_id"])  # its pending worker ends at once
    assert crawls.supervise(store, broker, config) == [crawl["_id"]]
    assert store.crawls.find_one({"_id": crawl["_id"]})["status"] == "cancelled"
    assert frontier_acl.user_name(config, crawl["_id"]) not in frontier_acl.crawl_users(config)
    with pytest.raises(redis.AuthenticationError):
        redis.Redis.from_url(url).ping()


def test_housekeeping_deletes_users_of_crawls_gone(fleet):
    config, store, broker, _ = fleet
    kept, _ = crawls.start_crawl(store, broker, config, "books", workers=1)
    ghost = uuid.uuid4().hex
    assert frontier_acl.create(config, ghost)["frontier_isolation"] is True
    assert housekeeping.prune_crawl_users(store, config) == [ghost]
    assert set(frontier_acl.crawl_users(config).values()) == {kept["_id"]}


def test_a_redis_user_without_acl_rights_falls_back(fleet):
    config, store, broker, _ = fleet
    admin = redis.Redis.from_url(frontier_url(config))
    name, password = f"{config.queue_prefix}-noacl", uuid.uuid4().hex
    admin.acl_setuser(name, enabled=True, passwords=["+" + password], keys=["*"],
                      channels=["*"], categories=["+@all", "-@admin"])
    try:
        config.frontier_url = f"redis://{name}:{password}@127.0.0.1:6379/0"
        crawl, tasks = crawls.start_crawl(store, broker, config, "books", workers=1)
        assert crawl["frontier_isolation"] is False
        assert "frontier_secret" not in store.crawls.find_one({"_id": crawl["_id"]})
        env = task_environment(tasks[0], config, "node-x", home="/tmp", base={},
                               crawl=store.crawls.find_one({"_id": crawl["_id"]}))
        assert env["CRAWLFLEET_FRONTIER_URL"] == config.frontier_url
    finally:
        admin.acl_deluser(name)
        admin.close()
