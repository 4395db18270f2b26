"""The one batch writer (crawlfleet/results): fencing, dedup upserts and their
counts, superseding a crawl's earlier attempts, and dedup settings from every
place they come from — against the real nx-27017 server."""

import pytest

from crawlfleet.errors import BadRequest, Conflict
from crawlfleet.models import new_task, next_attempt
from crawlfleet.results import attempts, dedup
from crawlfleet.results import writer as writer_module
from crawlfleet.results.writer import Fenced, TaskWriter, write_batch
from node.itemwriter import ItemWriter, NotOwned

COLL = "results_shop"


def running_task(store, session="s1", node="n1", task=None):
    task = task or new_task({"_id": "shop", "project": "p", "version": "v", "kind": "command",
                             "results_collection": COLL}, target="any")
    task.update(status="running", session=session, node_id=node)
    store.tasks.insert_one(task)
    return task


def rows(store):
    return list(store.db[COLL].find({}, {"_id": 0}).sort("sku", 1))


def test_an_attempt_that_lost_its_task_is_refused(store):
    """A writer whose session no longer holds the task stores nothing."""
    task = running_task(store)
    writer = TaskWriter.from_task(task)
    assert write_batch(store, writer, [{"sku": 1}]).new == 1
    # the node paused; the task was declared abnormal and retried elsewhere
    store.tasks.update_one({"_id": task["_id"]}, {"$set": {"status": "abnormal"}})
    with pytest.raises(Fenced, match="abnormal"):
        write_batch(store, writer, [{"sku": 2}])
    store.tasks.update_one({"_id": task["_id"]}, {"$set": {"status": "running",
                                                            "session": "s2"}})
    with pytest.raises(Fenced):
        write_batch(store, writer, [{"sku": 3}])
    assert [r["sku"] for r in rows(store)] == [1]


def test_the_node_writer_is_fenced_by_its_session(store, config):
    """The node stores a spider's items only under the session that owns the task."""
    task = running_task(store, session="s-live")
    stale = ItemWriter(store, task, "s-old", lambda line: None)
    live = ItemWriter(store, task, "s-live", lambda line: None)
    with pytest.raises(NotOwned):
        stale.store_items([{"sku": 1}])
    assert live.store_items([{"sku": 2}]) == 1
    live.close()
    assert [r["sku"] for r in rows(store)] == [2]


def writer_for(task, policy, upserts):
    """A writer taking the upsert path (MongoDB) or the read-then-insert path
    (servers whose updates scan, like nx-27017), whatever this server is."""
    writer = TaskWriter.from_task(task, policy)
    writer.slow_updates = not upserts
    return writer


@pytest.mark.parametrize("upserts", [True, False])
def test_overwrite_keeps_one_row_per_key_and_its_first_seen_time(store, upserts):
    first = running_task(store)
    policy = dedup.parse(["sku"], "overwrite")
    counts = write_batch(store, writer_for(first, policy, upserts),
                         [{"sku": n, "price": 1} for n in range(5)])
    assert (counts.new, counts.updated, counts.ignored) == (5, 0, 0)
    seen = {r["sku"]: r["_first_at"] for r in rows(store)}
    second = running_task(store, session="s2")
    counts = write_batch(store, writer_for(second, policy, upserts),
                         [{"sku": n, "price": 2} for n in range(3, 8)] + [{"sku": 7, "price": 2}])
    assert (counts.new, counts.updated, counts.ignored) == (3, 3, 0)  # sku 7 twice in a batch
    stored = rows(store)
    assert [r["sku"] for r in stored] == list(range(8))
    assert [r["price"] for r in stored] == [1, 1, 1, 2, 2, 2, 2, 2]
    assert all(r["_first_at"] == seen[r["sku"]] for r in stored if r["sku"] < 5)
    assert all(r["_at"] > r["_first_at"] for r in stored if r["sku"] in (3, 4))
    assert {r["_tid"] for r in stored if r["sku"] >= 3} == {second["_id"]}
    # the unique index holds even against a plain insert
    with pytest.raises(Exception):
        store.db[COLL].insert_one({"sku": 1})


def test_a_row_removed_between_the_read_and_the_replace_is_stored_anew(store, monkeypatch):
    """Without upserts (nx-27017), rows removed by another process after the
    writer read them (an earlier attempt superseded) are written again and
    counted new; the row still there is replaced and keeps its first-seen time."""
    policy = dedup.parse("sku", "overwrite")
    task = running_task(store)
    write_batch(store, writer_for(task, policy, False), [{"sku": n, "price": 1} for n in range(3)])
    first_seen = {r["sku"]: r["_first_at"] for r in rows(store)}
    replace = writer_module._replace

    def removed_meanwhile(collection, items):
        collection.delete_many({"sku": {"$in": [0, 1]}})
        return replace(collection, items)

    monkeypatch.setattr(writer_module, "_replace", removed_meanwhile)
    counts = write_batch(store, writer_for(task, policy, False),
                         [{"sku": n, "price": 2} for n in range(3)])
    assert (counts.new, counts.updated, counts.ignored) == (2, 1, 0)
    stored = rows(store)
    assert [(r["sku"], r["price"]) for r in stored] == [(0, 2), (1, 2), (2, 2)]
    assert stored[2]["_first_at"] == first_seen[2] < stored[2]["_at"]


@pytest.mark.parametrize("upserts", [True, False])
def test_ignore_keeps_the_first_copy(store, upserts):
    policy = dedup.parse("sku, shop", "ignore")
    first = running_task(store)
    write_batch(store, writer_for(first, policy, upserts),
                [{"sku": 1, "shop": "a", "v": 1}, {"sku": 1, "shop": "b", "v": 1}])
    second = running_task(store, session="s2")
    counts = write_batch(store, writer_for(second, policy, upserts),
                         [{"sku": 1, "shop": "a", "v": 2}, {"sku": 2, "shop": "a", "v": 2}])
    assert (counts.new, counts.updated, counts.ignored) == (1, 0, 1)
    assert sorted((r["sku"], r["shop"], r["v"]) for r in rows(store)) == [
        (1, "a", 1), (1, "b", 1), (2, "a", 2)]


def crawl(store):
    root = running_task(store, session="s1")
    retry = next_attempt(root, 0)
    # as the reconciler records it
    store.tasks.update_one({"_id": root["_id"]}, {"$set": {"status": "abnormal",
                                                            "retried_by": retry["_id"]}})
    running_task(store, session="s2", task=retry)
    return root, retry


@pytest.mark.parametrize("keep_partial", [False, True])
def test_a_finished_retry_supersedes_the_items_of_earlier_attempts(store, keep_partial):
    root, retry = crawl(store)
    store.tasks.update_one({"_id": root["_id"]}, {"$set": {"status": "running"}})
    write_batch(store, TaskWriter.from_task(root), [{"sku": n} for n in range(4)])
    store.tasks.update_one({"_id": root["_id"]}, {"$set": {"status": "abnormal"}})
    write_batch(store, TaskWriter.from_task(retry), [{"sku": n} for n in range(6)])
    assert store.db[COLL].count_documents({}) == 10
    removed = attempts.supersede(store, retry, keep_partial=keep_partial)
    assert removed == 4
    left = rows(store)
    if keep_partial:
        assert len(left) == 10
        assert {r["_superseded_by"] for r in left if r["_tid"] == root["_id"]} == {retry["_id"]}
    else:
        assert [r["sku"] for r in left] == list(range(6))
    store.tasks.update_one({"_id": retry["_id"]}, {"$set": {"status": "finished"}})
    root_doc = store.tasks.find_one({"_id": root["_id"]})
    assert attempts.final_attempt(store, root_doc)["_id"] == retry["_id"]


def test_ignore_mode_retry_takes_over_the_items_it_scraped_again(store):
    """With `ignore`, the retry's copies are ignored: the stored rows become
    the retry's so that superseding the first attempt keeps them."""
    policy = dedup.parse("sku", "ignore")
    root, retry = crawl(store)
    store.tasks.update_one({"_id": root["_id"]}, {"$set": {"status": "running"}})
    write_batch(store, TaskWriter.from_task(root, policy), [{"sku": n} for n in range(4)])
    counts = write_batch(store, TaskWriter.from_task(retry, policy),
                         [{"sku": n} for n in range(2, 6)], fence=False)
    assert (counts.new, counts.ignored) == (2, 2)
    assert attempts.supersede(store, retry, policy=policy) == 2  # skus 0 and 1: only the first saw them
    assert [(r["sku"], r["_tid"]) for r in rows(store)] == [(n, retry["_id"]) for n in range(2, 6)]


def test_turning_dedup_on_over_duplicates_counts_them_and_keeps_the_newest(store):
    coll = store.db[COLL]
    coll.insert_many([{"url": "a", "_at": 1.0}, {"url": "a", "_at": 3.0}, {"url": "a", "_at": 2.0},
                      {"url": "b", "_at": 1.0}])
    policy = dedup.parse("url")
    assert dedup.count_duplicates(coll, policy.keys) == 2
    with pytest.raises(Conflict, match="2 duplicate rows"):
        dedup.ensure_index(coll, policy)
    assert dedup.keep_newest(coll, policy.keys) == 2
    stored = sorted((d["url"], d["_at"], d.get("_first_at")) for d in coll.find())
    assert stored == [("a", 3.0, 1.0), ("b", 1.0, None)]
    dedup.ensure_index(coll, policy)
    assert dedup.current_keys(coll) == ("url",)
    # rows stored before dedup was on are found by their key, whichever write path
    for upserts, stamp in ((False, 5.0), (True, 6.0)):
        task = running_task(store, session=f"s-{upserts}")
        writer = writer_for(task, dedup.parse("url"), upserts)
        counts = write_batch(store, writer, [{"url": "a", "v": stamp}, {"url": "c"}], fence=False)
        assert (counts.new, counts.updated) == ((1, 1) if not upserts else (0, 2))
        rows_a = list(coll.find({"url": "a"}))
        assert len(rows_a) == 1 and rows_a[0]["v"] == stamp and rows_a[0]["_first_at"] == 1.0
    assert coll.count_documents({}) == 3
    dedup.drop_indexes(coll)
    assert dedup.current_keys(coll) is None


def test_dedup_settings_from_every_source():
    assert dedup.from_environ({"CRAWLFLEET_DEDUP_KEYS": "sku,shop",
                               "CRAWLFLEET_DEDUP_MODE": "ignore"}) == dedup.DedupPolicy(
        ("sku", "shop"), "ignore")
    # a Scrapy project's settings, when the platform sets nothing
    assert dedup.from_environ({}, {"CRAWLFLEET_DEDUP_KEYS": "url"}).keys == ("url",)
    # Crawlab's variables, for spiders written for its SDK
    crawlab = {"CRAWLAB_IS_DEDUP": "1", "CRAWLAB_DEDUP_FIELD": "url",
               "CRAWLAB_DEDUP_METHOD": "ignore"}
    assert dedup.from_environ(crawlab) == dedup.DedupPolicy(("url",), "ignore")
    assert dedup.from_environ({**crawlab, "CRAWLAB_IS_DEDUP": "0"}) is None
    # and back: what the node tells a spider process, under both names
    env = dedup.environment(dedup.DedupPolicy(("url",), "overwrite"))
    assert env["CRAWLAB_IS_DEDUP"] == "1" and env["CRAWLAB_DEDUP_FIELD"] == "url"
    assert dedup.from_environ(env) == dedup.DedupPolicy(("url",), "overwrite")
    # the spider's own setting wins over its manifest's; an empty one turns it off
    assert dedup.for_spider({"manifest_dedup": {"keys": ["a"]}}).keys == ("a",)
    assert dedup.for_spider({"dedup": {"keys": []}, "manifest_dedup": {"keys": ["a"]}}) is None
    for bad in (["_id"], ["a b"], ["a", "a"], [1]):
        with pytest.raises(BadRequest):
            dedup.parse(bad)
    with pytest.raises(BadRequest, match="mode"):
        dedup.parse(["url"], "merge")
