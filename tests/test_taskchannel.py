"""A task's private channel: the SDK hands items and stats to its node, which
stores them with the usual tags, and refuses them once the task is not its own."""

import datetime
import os
import subprocess
import sys

import pytest

from crawlfleet.sdk.context import StoreRefused, TaskContext
from node.itemwriter import ItemWriter
from node.taskchannel import TaskChannel


def running_task(store, task_id, session="s1"):
    store.tasks.insert_one({"_id": task_id, "status": "running", "session": session,
                            "stats": {"items": 0}})
    return {"_id": task_id, "results_collection": "results_channel"}


def open_channel(store, task, session="s1"):
    said = []
    writer = ItemWriter(store, task, session, said.append)
    channel = TaskChannel(writer, said.append)
    # what the spider process would inherit: a duplicate of the node's other end
    context = TaskContext(task["_id"], os.dup(channel.spider_fd))
    channel.started()
    return writer, channel, context, said


def test_items_through_the_channel_keep_their_types_and_get_the_task_tags(store):
    """Dates stay dates (BSON, not JSON); `_tid`, `task_id`, `_at` added; counted."""
    task = running_task(store, "ch1")
    writer, channel, context, _ = open_channel(store, task)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert context.insert_items([{"n": 1, "when": when}, {"n": 2, "price": float("nan")}]) == 2
    context.update_stats({"pages": 7})
    context.sock.close()
    channel.close()
    writer.close()
    items = sorted(store.results("results_channel").find({"_tid": "ch1"}), key=lambda i: i["n"])
    assert [i["n"] for i in items] == [1, 2]
    assert items[0]["when"] == when and items[1]["price"] is None
    assert all(i["task_id"] == "ch1" and isinstance(i["_at"], float) for i in items)
    doc = store.tasks.find_one({"_id": "ch1"})
    assert doc["stats"]["items"] == 2 and doc["stats"]["pages"] == 7


def test_writes_are_refused_once_another_attempt_owns_the_task(store):
    """A node whose claim was handed to another session stores nothing more,
    and the spider hears why."""
    task = running_task(store, "ch2")
    writer, channel, context, said = open_channel(store, task)
    assert context.insert_items([{"n": 1}]) == 1
    store.tasks.update_one({"_id": "ch2"}, {"$set": {"session": "someone-else"}})
    writer.checked_at = float("-inf")  # as after a pause longer than the ownership TTL
    with pytest.raises(StoreRefused, match="another attempt owns this task"):
        context.insert_items([{"n": 2}])
    context.update_stats({"pages": 99})
    context.sock.close()
    channel.close()
    assert store.results("results_channel").count_documents({"_tid": "ch2"}) == 1
    assert "pages" not in store.tasks.find_one({"_id": "ch2"})["stats"]
    assert any("refused" in line for line in said)


def test_writes_are_refused_after_the_task_ended(store):
    """Cancelled or finished in the ledger: nothing is stored for it any more."""
    task = running_task(store, "ch3")
    writer, channel, context, _ = open_channel(store, task)
    store.tasks.update_one({"_id": "ch3"}, {"$set": {"status": "cancelled"}})
    with pytest.raises(StoreRefused, match="cancelled"):
        context.insert_items([{"n": 1}])
    context.sock.close()
    channel.close()
    assert store.results("results_channel").count_documents({"_tid": "ch3"}) == 0


def test_a_spider_process_uses_the_inherited_descriptor(store):
    """save_item in a real child process reaches the node through the
    descriptor named by CRAWLFLEET_CHANNEL_FD, with no store URI at all."""
    task = running_task(store, "ch4")
    said = []
    writer = ItemWriter(store, task, "s1", said.append)
    channel = TaskChannel(writer, said.append)
    env = {"PATH": os.environ["PATH"], "CRAWLFLEET_TASK_ID": "ch4",
           "CRAWLFLEET_CHANNEL_FD": str(channel.spider_fd)}
    code = ("from crawlfleet.sdk import save_item\n"
            "for i in range(250): save_item({'n': i})\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, pass_fds=[channel.spider_fd],
                          capture_output=True, text=True, timeout=60)
    channel.started()
    assert done.returncode == 0, done.stderr
    channel.close()
    writer.close()
    assert store.results("results_channel").count_documents({"_tid": "ch4"}) == 250
    assert store.tasks.find_one({"_id": "ch4"})["stats"]["items"] == 250


def test_a_crawls_tagged_items_are_stored_once_whichever_worker_sends_them(store):
    """Two workers of one crawl send the same tagged items (a request fetched
    again after its first worker died): each is stored once; untagged items,
    and the same tags in another crawl, are stored as usual."""
    first = {**running_task(store, "ch5"), "crawl_id": "crawl-a"}
    second = {**running_task(store, "ch6"), "crawl_id": "crawl-a"}
    other = {**running_task(store, "ch7"), "crawl_id": "crawl-b"}
    tags = ["ab12:0", "ab12:1", None]
    stored = []
    for task in (first, second, other):
        writer, channel, context, said = open_channel(store, task)
        stored.append(context.insert_items([{"n": 1}, {"n": 2}, {"n": 3}], tags))
        context.sock.close()
        channel.close()
        writer.close()
    assert stored == [3, 1, 3]
    rows = list(store.results("results_channel").find({"_tid": {"$in": ["ch5", "ch6", "ch7"]}}))
    assert sorted((r["_tid"], r["n"]) for r in rows) == [
        ("ch5", 1), ("ch5", 2), ("ch5", 3), ("ch6", 3), ("ch7", 1), ("ch7", 2), ("ch7", 3)]
    counts = {t: store.tasks.find_one({"_id": t})["stats"] for t in ("ch5", "ch6")}
    assert counts["ch5"]["items"] == 3 and counts["ch6"]["items"] == 1
    assert counts["ch6"]["ignored"] == 2


def test_origins_must_match_the_items(store):
    task = running_task(store, "ch8")
    writer, channel, context, _ = open_channel(store, task)
    with pytest.raises(StoreRefused, match="origins"):
        context._ask({"op": "items", "items": [{"n": 1}], "origins": ["a", "b"]})
    with pytest.raises(StoreRefused, match="origins"):
        context._ask({"op": "items", "items": [{"n": 1}], "origins": ["x" * 500]})
    context.sock.close()
    channel.close()
    assert store.results("results_channel").count_documents({"_tid": "ch8"}) == 0
