"""The crawl API, UI pages and supervisor (web/crawls_api.py, web/crawls_ui.py,
master/crawls.py) through Flask's test client, against a real store and real
Redis; the crawls themselves run in tests/test_frontier.py."""

import pytest

from conftest import make_config, purge_broker
from crawlfleet.frontier import Frontier
from crawlfleet.store import Store
from master import crawls
from helpers import scan  # discovery.scan, each `scrapy list` answer remembered
from test_ui import PASSWORD, Browser
from web import create_app


@pytest.fixture
def redis_env(tmp_path, mongo_server, monkeypatch):
    monkeypatch.setenv("CRAWLFLEET_ADMIN_PASSWORD", PASSWORD)
    config = make_config(tmp_path, mongo_server, broker="redis")
    store = Store(config)
    store.ensure_indexes()
    assert not scan(store, config)["errors"]
    app = create_app(config)
    app.config["TESTING"] = True
    yield config, store, app
    app.extensions["crawlfleet"].close()
    purge_broker(config)
    store.client.drop_database(config.mongo_db)
    store.close()


def bearer(store, role="operator"):
    from crawlfleet.tokens import create_token

    return {"Authorization": "Bearer " + create_token(store, f"t-{role}", role)}


def test_run_with_workers_makes_one_crawl_of_worker_tasks(redis_env):
    """POST run {"workers": 3} answers 201 with one crawl id and 3 worker tasks."""
    config, store, app = redis_env
    client = app.test_client()
    answer = client.post("/api/v1/spiders/books/run", headers=bearer(store),
                         json={"workers": 3, "settings": {"CONCURRENT_REQUESTS": 4}})
    assert answer.status_code == 201, answer.json
    crawl_id = answer.json["crawl_id"]
    assert len(answer.json["task_ids"]) == 3
    tasks = list(store.tasks.find({"crawl_id": crawl_id}))
    assert sorted(t["worker"] for t in tasks) == [0, 1, 2]
    assert all(t["settings"] == {"CONCURRENT_REQUESTS": "4"} for t in tasks)
    shown = client.get(f"/api/v1/crawls/{crawl_id}", headers=bearer(store, "viewer")).json
    assert shown["status"] == "pending" and shown["workers"] == 3 and len(shown["tasks"]) == 3
    # a worker's task id finds its crawl too
    assert client.get(f"/api/v1/crawls/{tasks[0]['_id']}",
                      headers=bearer(store, "viewer")).json["id"] == crawl_id
    listed = client.get("/api/v1/crawls", headers=bearer(store, "viewer")).json["crawls"]
    assert [c["id"] for c in listed] == [crawl_id]
    # the workers' sealed Redis password is on the crawl, and never shown
    assert store.crawls.find_one({"_id": crawl_id}).get("frontier_secret")
    assert shown["frontier_isolation"] is True and "frontier_secret" not in shown
    assert "frontier_secret" not in listed[0]


def test_scale_cancel_and_resume_rules(redis_env):
    """Scale adds and stops workers; cancel ends the crawl; a non-persistent
    crawl's frontier is gone, so resume is a 409; bad input is a 400."""
    config, store, app = redis_env
    client = app.test_client()
    op = bearer(store)
    crawl_id = client.post("/api/v1/spiders/books/run", headers=op,
                           json={"workers": 2}).json["crawl_id"]
    assert client.post(f"/api/v1/crawls/{crawl_id}/scale", headers=op,
                       json={"workers": 4}).json["workers"] == 4
    assert store.tasks.count_documents({"crawl_id": crawl_id}) == 4
    client.post(f"/api/v1/crawls/{crawl_id}/scale", headers=op, json={"workers": 1})
    stopped = list(store.tasks.find({"crawl_id": crawl_id, "scaled_down": True}))
    assert len(stopped) == 3 and all(t["status"] == "cancelled" for t in stopped)
    for bad in ({"workers": 0}, {"workers": "x"}, {"workers": True}, {"other": 1}, {}):
        answer = client.post(f"/api/v1/crawls/{crawl_id}/scale", headers=op, json=bad)
        assert answer.status_code == 400 and answer.json["error"], bad
    assert client.post(f"/api/v1/crawls/{crawl_id}/cancel", headers=op).status_code == 200
    crawls.supervise(store, None, config)
    assert store.crawls.find_one({"_id": crawl_id})["status"] == "cancelled"
    answer = client.post(f"/api/v1/crawls/{crawl_id}/resume", headers=op)
    assert answer.status_code == 409 and "frontier" in answer.json["error"]
    assert client.post(f"/api/v1/crawls/{crawl_id}/cancel", headers=op).status_code == 409
    assert client.get("/api/v1/crawls/nope", headers=op).status_code == 404
    for bad in ({"workers": 0}, {"workers": 65}, {"workers": "2"}, {"persist": "yes"}):
        answer = client.post("/api/v1/spiders/books/run", headers=op, json=bad)
        assert answer.status_code == 400, bad
    viewer = bearer(store, "viewer")
    assert client.post(f"/api/v1/crawls/{crawl_id}/resume", headers=viewer).status_code == 403


def test_command_spiders_cannot_share_a_frontier(redis_env):
    config, store, app = redis_env
    answer = app.test_client().post("/api/v1/spiders/plain_catalogue/run", headers=bearer(store),
                                    json={"workers": 2})
    assert answer.status_code == 400 and "Scrapy" in answer.json["error"]


def test_supervisor_returns_a_dead_workers_requests(redis_env):
    """A worker that ended abnormal: its in-flight hash goes back to the queue,
    its unfinished seeding is forgotten, and a replacement takes its slot."""
    config, store, app = redis_env
    crawl, tasks = crawls.start_crawl(store, _NoBroker(), config, "books", workers=2)
    frontier = Frontier.open(config, crawl["_id"])
    dead = tasks[0]["_id"]
    frontier.redis.hset(frontier.keys.inflight(dead), mapping={b"req-a": -0.0, b"req-b": -5.0})
    frontier.redis.set(frontier.keys.seeded, f"running:{dead}")
    store.tasks.update_one({"_id": dead}, {"$set": {"status": "abnormal", "node_id": "gone"}})
    crawls.supervise(store, _NoBroker(), config)
    assert frontier.redis.zrange(frontier.keys.requests, 0, -1, withscores=True) == [
        (b"req-b", -5.0), (b"req-a", 0.0)]
    assert not frontier.redis.exists(frontier.keys.inflight(dead), frontier.keys.seeded)
    doc = store.tasks.find_one({"_id": dead})
    assert doc["frontier_returned"] == 2
    replacement = store.tasks.find_one({"crawl_id": crawl["_id"], "trigger": "retry"})
    assert replacement["worker"] == 0
    crawl = store.crawls.find_one({"_id": crawl["_id"]})
    assert crawl["frontier"]["queued"] == 2
    frontier.close()


def test_a_crawl_whose_workers_are_not_written_yet_is_left_alone(redis_env):
    """start_crawl writes the crawl, then its workers: a supervisor pass in
    between leaves it pending; a crawl left without workers past the grace
    (its request died) ends in error saying so."""
    config, store, app = redis_env
    crawl, tasks = crawls.start_crawl(store, _NoBroker(), config, "books", workers=1)
    store.tasks.delete_many({"crawl_id": crawl["_id"]})  # as if not written yet
    assert crawls.supervise(store, _NoBroker(), config) == []
    assert store.crawls.find_one({"_id": crawl["_id"]})["status"] == "pending"
    store.crawls.update_one({"_id": crawl["_id"]},
                            {"$set": {"created_at": crawl["created_at"] - crawls.WORKERLESS_GRACE - 1}})
    assert crawls.supervise(store, _NoBroker(), config) == [crawl["_id"]]
    ended = store.crawls.find_one({"_id": crawl["_id"]})
    assert ended["status"] == "error" and "no worker was made" in ended["error"]


def test_without_a_frontier_the_api_names_the_setting(app, auth, store, config):
    """Embedded broker, no CRAWLFLEET_FRONTIER_URL: 409 naming it; nothing written."""
    scan(store, config)
    client = app.test_client()
    for body in ({"workers": 2}, {"persist": True}):
        answer = client.post("/api/v1/spiders/books/run", headers=auth.operator, json=body)
        assert answer.status_code == 409 and "CRAWLFLEET_FRONTIER_URL" in answer.json["error"]
    assert store.tasks.count_documents({}) == 0


def test_crawl_pages_and_run_dialog(redis_env):
    """The Run dialog with workers opens the crawl's page: workers, Cancel, Scale;
    the crawl list shows it; a viewer sees no buttons."""
    config, store, app = redis_env
    admin = Browser(app, store, "admin")
    page = admin.get("/spiders/books")
    assert b'name="workers"' in page.data and b'name="persist"' in page.data
    answer = admin.post("/spiders/books/run", {"workers": "2", "persist": "1", "target": "any"})
    assert answer.status_code == 302 and "/crawls/" in answer.location
    crawl_id = answer.location.rstrip("/").rsplit("/", 1)[1]
    page = admin.get(f"/crawls/{crawl_id}")
    assert page.status_code == 200
    assert page.data.count(b"/tasks/") >= 2 and b"scale-button" in page.data
    assert b"persistent" in page.data
    assert b"its own Redis user" in page.data and b"frontier_secret" not in page.data
    assert crawl_id.encode() in admin.get("/crawls/").data
    answer = admin.post(f"/crawls/{crawl_id}/scale", {"workers": "3"})
    assert answer.status_code == 302
    assert store.tasks.count_documents({"crawl_id": crawl_id}) == 3
    answer = admin.post("/spiders/books/run", {"workers": "x"})
    assert answer.status_code == 302 and answer.location.endswith("/spiders/books")
    assert b"Workers must be a whole number" in admin.get("/spiders/books").data  # flashed
    viewer = Browser(app, store, "viewer")
    assert b"scale-button" not in viewer.get(f"/crawls/{crawl_id}").data
    assert admin.get("/crawls/nope").status_code == 404


class _NoBroker:
    """Publishing is not under test here: the ledger keeps what is not published."""

    def publish_task(self, *args):
        raise ConnectionError("no broker in this test")

    def publish_control(self, *args):
        pass


def test_frontier_keys_expire(redis_env):
    """Frontier.expire gives every key of a crawl a TTL; delete removes them all."""
    config, store, app = redis_env
    frontier = Frontier.open(config, "c-ttl")
    frontier.redis.sadd(frontier.keys.seen, "x")
    frontier.redis.zadd(frontier.keys.requests, {"r": 0})
    frontier.expire(100)
    assert 0 < frontier.redis.ttl(frontier.keys.seen) <= 100
    assert frontier.delete() == 2 and not frontier.exists()
    frontier.close()


def test_a_schedule_with_workers_fires_one_crawl(config, store):
    """A schedule with workers fires a crawl of that many workers (tagged with the
    schedule); without a Redis frontier the fire fails with a reason naming the setting."""
    from crawlfleet import schedules
    from crawlfleet.broker import Broker
    from master.scheduler import Scheduler

    t0 = 1_717_243_200.0
    store.spiders.insert_one({"_id": "s1", "project": "s1", "version": "v1", "kind": "scrapy",
                              "results_collection": "results_s1"})
    doc = schedules.create(store, {"spider": "s1", "cron": "* * * * *", "workers": 3,
                                   "persist": True}, at=t0)
    assert doc["workers"] == 3 and doc["persist"] is True
    with pytest.raises(Exception, match="workers must be"):
        schedules.create(store, {"spider": "s1", "cron": "* * * * *", "workers": 0}, at=t0)
    broker = Broker(config)
    try:
        refused = Scheduler(config, store, broker, clock=lambda: t0 + 60.2, master_id="m1")
        refused.tick()
        record = store.schedule_fires.find_one({"schedule_id": doc["_id"]})
        assert record["state"] == "failed" and "CRAWLFLEET_FRONTIER_URL" in record["reason"]
        with_redis = config.replace(frontier_url="redis://127.0.0.1:6379/5")
        Scheduler(with_redis, store, broker, clock=lambda: t0 + 120.2, master_id="m1").tick()
        crawl = store.crawls.find_one({"schedule_id": doc["_id"]})
        assert crawl["workers"] == 3 and crawl["persist"] and crawl["trigger"] == "schedule"
        assert store.tasks.count_documents({"crawl_id": crawl["_id"],
                                            "schedule_id": doc["_id"]}) == 3
    finally:
        broker.close()
