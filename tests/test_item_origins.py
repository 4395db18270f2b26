"""The tags of crawlfleet.sdk.origins: each item of a response is tagged with
the request's fingerprint and its place among that response's items, the same
again when the request is fetched again, and the pipeline takes them."""

import asyncio

import scrapy
from scrapy.http import HtmlResponse, Request
from scrapy.utils.test import get_crawler

import crawlfleet.sdk.scrapy as cf_scrapy
from crawlfleet.sdk import origins


class Book(scrapy.Item):
    title = scrapy.Field()


def response_for(url):
    request = Request(url)
    return HtmlResponse(url, body=b"<html></html>", request=request)


def outputs(url):
    return [Book(title="a"), Request(url + "next"), {"title": "b"}, Book(title="c")]


def test_items_of_one_response_are_tagged_in_order_and_the_same_when_fetched_again():
    middleware = origins.ItemOrigins(get_crawler(scrapy.Spider))
    first = list(middleware.process_spider_output(response_for("http://x/1"), outputs("http://x/1")))
    again = list(middleware.process_spider_output(response_for("http://x/1"), outputs("http://x/1")))
    other = list(middleware.process_spider_output(response_for("http://x/2"), outputs("http://x/2")))
    tags = [[origins.take(o) for o in out] for out in (first, again, other)]
    assert tags[0][1] is None  # a request is no item
    prefix = tags[0][0].split(":")[0]
    assert [tags[0][0], tags[0][2], tags[0][3]] == [f"{prefix}:0", f"{prefix}:1", f"{prefix}:2"]
    assert tags[1] == tags[0]
    assert tags[2][0] != tags[0][0] and tags[2][0].endswith(":0")
    assert origins.take(first[0]) is None  # taken once


def test_async_callbacks_are_tagged_too():
    middleware = origins.ItemOrigins(get_crawler(scrapy.Spider))

    async def result():
        for output in outputs("http://x/3"):
            yield output

    async def collect():
        return [o async for o in middleware.process_spider_output_async(
            response_for("http://x/3"), result())]
    out = asyncio.run(collect())
    assert [origins.take(o) is not None for o in out] == [True, False, True, True]


def test_a_dropped_item_is_forgotten_and_the_pipeline_sends_tags_beside_items(monkeypatch):
    monkeypatch.setattr(cf_scrapy, "STORE_FAILED", False)
    middleware = origins.ItemOrigins(get_crawler(scrapy.Spider))
    out = list(middleware.process_spider_output(response_for("http://x/4"), outputs("http://x/4")))
    middleware.forget(out[0])
    assert origins.take(out[0]) is None

    sent = []

    class Context:
        def insert_items(self, items, tags=None):
            sent.append((items, tags))
            return len(items)

        def close(self):
            pass

    pipeline = cf_scrapy.ItemPipeline(Context(), batch_size=10)
    for item in (out[2], out[3], {"title": "untagged"}):
        pipeline.process_item(item)
    pipeline.flush()
    pipeline.batches.put(None)
    pipeline.writer.join(10)
    (items, tags), = sent
    assert [i["title"] for i in items] == ["b", "c", "untagged"]
    assert tags[0].endswith(":1") and tags[1].endswith(":2") and tags[2] is None
