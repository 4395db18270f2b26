"""The Scrapy pipeline's writer: batches in order, and a store failure fails loudly."""

import crawlfleet.sdk.scrapy as cf_scrapy


class RecordingContext:
    def __init__(self, fail_after=None):
        self.batches = []
        self.fail_after = fail_after
        self.closed = False

    def insert_items(self, items, origins=None):
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise ConnectionError("store unreachable")
        self.batches.append(list(items))
        return len(items)

    def close(self):
        self.closed = True


def run_pipeline(context, count, batch_size=10):
    pipeline = cf_scrapy.ItemPipeline(context, batch_size)
    for i in range(count):
        assert pipeline.process_item({"n": i}) == {"n": i}
    pipeline.flush()
    pipeline.batches.put(None)
    pipeline.writer.join(10)
    return pipeline


def test_every_item_is_written_once_in_order(monkeypatch):
    """Items reach the store in batches, each once, in the order they came."""
    monkeypatch.setattr(cf_scrapy, "STORE_FAILED", False)
    context = RecordingContext()
    run_pipeline(context, 95)
    assert [len(b) for b in context.batches] == [10] * 9 + [5]
    assert [i["n"] for b in context.batches for i in b] == list(range(95))


def test_a_store_failure_is_recorded_and_stops_writing(monkeypatch):
    """A batch the store refuses marks the run failed; launch then exits non-zero."""
    monkeypatch.setattr(cf_scrapy, "STORE_FAILED", False)
    context = RecordingContext(fail_after=2)
    run_pipeline(context, 50)
    assert cf_scrapy.STORE_FAILED is True
    assert len(context.batches) == 2


def test_launch_exits_non_zero_after_a_store_failure(monkeypatch):
    """The spider process reports the failure through its exit status."""
    import pytest

    from crawlfleet.sdk import launch

    monkeypatch.setattr(cf_scrapy, "STORE_FAILED", True)
    monkeypatch.setattr("scrapy.cmdline.execute", lambda argv, settings=None: (_ for _ in ()).throw(SystemExit(0)))
    with pytest.raises(SystemExit) as exit_info:
        launch.main(["books"], settings=object())
    assert exit_info.value.code and "could not be stored" in str(exit_info.value.code)
