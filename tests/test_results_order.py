"""Every stored item carries `_at`, its insertion time, strictly increasing
within a write: through the SDK (and so the Scrapy pipeline, which stores
through it) and through the node's items pipe; and its results collection
gets the `_at` index the results browser pages by (tests/test_ui.py pages it)."""

import json
import time

from crawlfleet.models import new_task
from channel_helpers import NodeBackedContext
from node.itemspipe import ItemsPipe
from node.itemwriter import ItemWriter


def a_task(store, collection):
    task = new_task({"_id": "order", "project": "p", "version": "v", "kind": "command",
                     "results_collection": collection}, target="any")
    store.tasks.insert_one(dict(task, status="running", session="s1"))
    return task


def assert_stamped(items, task_id, after=0.0):
    stamps = [item["_at"] for item in items]
    assert all(isinstance(s, float) for s in stamps)
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), "not strictly increasing"
    assert after < stamps[0] and abs(stamps[-1] - time.time()) < 60
    assert all(item["_tid"] == item["task_id"] == task_id for item in items)


def test_sdk_items_carry_strictly_increasing_at(store, config):
    """`TaskContext.insert_items` (save_item, save_items, the Scrapy pipeline)
    stamps each item of a batch after the one before, and a later batch after it."""
    task = a_task(store, "results_order")
    context = NodeBackedContext(store, task["_id"], "results_order")
    try:
        before = time.time()
        assert context.insert_items([{"n": n} for n in range(300)]) == 300
        assert context.insert_items([{"n": n} for n in range(300, 350)]) == 50
    finally:
        context.close()
    items = list(store.db.results_order.find().sort("_at", 1))
    assert [item["n"] for item in items] == list(range(350))
    assert_stamped(items, task["_id"], after=before - 1e-3)
    assert store.tasks.find_one({"_id": task["_id"]})["stats"]["items"] == 350


def test_items_pipe_items_carry_strictly_increasing_at_and_get_the_index(store, tmp_path):
    """Lines written to the items pipe are stored in their order, stamped, in
    several batches; the pipe makes the collection's indexes whoever writes to it."""
    task = a_task(store, "results_piped")
    said = []
    pipe = ItemsPipe(ItemWriter(store, task, "s1", said.append), str(tmp_path), said.append)
    with open(pipe.path, "w") as out:
        for n in range(450):  # three batches of at most 200
            out.write(json.dumps({"n": n}) + "\n")
    pipe.close()
    assert pipe.stored == 450, said
    items = list(store.db.results_piped.find().sort("_at", 1))
    assert [item["n"] for item in items] == list(range(450))
    assert_stamped(items, task["_id"])
    keys = [info["key"] for info in store.db.results_piped.index_information().values()]
    assert [("_at", 1)] in keys and [("_tid", 1)] in keys


def test_items_pipe_indexes_a_collection_written_only_through_the_sdk(store, tmp_path):
    """A spider that stores through the SDK never writes to the pipe; its
    collection gets the `_at` index from the node all the same."""
    task = a_task(store, "results_sdk_only")
    writer = ItemWriter(store, task, "s1", lambda line: None)
    pipe = ItemsPipe(writer, str(tmp_path), lambda line: None)
    pipe.close()
    keys = [info["key"] for info in store.db.results_sdk_only.index_information().values()]
    assert [("_at", 1)] in keys
