"""What every stored item carries, written by the SDK or by the node's items pipe."""

import math
import os

from crawlfleet.items import clean, prepare
from node.itemspipe import ItemsPipe
from node.itemwriter import ItemWriter


def test_prepare_tags_cleans_and_copies():
    """Items get _tid, task_id and increasing _at; NaN and infinities become None;
    the caller's dicts are left as they were."""
    original = [{"a": math.nan, "b": [1.5, math.inf], "c": {"d": -math.inf}}, {"a": 2}]
    out = prepare(original, "t1")
    assert out[0]["a"] is None and out[0]["b"] == [1.5, None] and out[0]["c"] == {"d": None}
    assert all(i["_tid"] == i["task_id"] == "t1" for i in out)
    assert out[0]["_at"] < out[1]["_at"]
    assert "_tid" not in original[0] and math.isnan(original[0]["a"])
    assert clean((1, {2: 3})) == [1, {"2": 3}]


def test_items_pipe_stores_nan_as_null(store, tmp_path):
    """JSON lines may carry NaN (json accepts it); the pipe stores it as null."""
    task = {"_id": "pipe1", "results_collection": "results_pipe"}
    store.tasks.insert_one({"_id": "pipe1", "stats": {"items": 0}, "status": "running",
                            "session": "s1"})
    said = []
    writer = ItemWriter(store, task, "s1", said.append)
    pipe = ItemsPipe(writer, str(tmp_path), said.append)
    with open(pipe.path, "w") as out:
        out.write('{"price": NaN, "n": 1}\n{"n": 2}\nnot json\n')
    pipe.close()
    writer.close()
    assert store.tasks.find_one({"_id": "pipe1"})["stats"]["items"] == 2
    items = sorted(store.results("results_pipe").find({"_tid": "pipe1"}), key=lambda i: i["n"])
    assert [i["n"] for i in items] == [1, 2] and items[0]["price"] is None
    assert pipe.stored == 2 and pipe.rejected == 1 and pipe.lost == 0
    assert not os.path.exists(pipe.path)
