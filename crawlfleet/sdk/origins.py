"""Which response each item of a frontier crawl came from, so that storing it
twice stores it once.

A worker that dies after its items are stored but before its requests leave
its in-flight hash has those requests fetched again by another worker (or by
the resumed crawl), and their callbacks yield the same items again. Each item
is therefore tagged with the fingerprint of the request whose response
produced it and its position among that callback's items; the node derives
the stored row's ``_id`` from the crawl id and that tag
(`crawlfleet.items.origin_id`), so the second copy is refused by the
collection's own ``_id`` index instead of stored.

The tag travels beside the item, not in it: a Scrapy ``Item`` refuses fields
it does not declare, and the spider's own pipelines must see its items as it
yielded them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

from itemadapter import is_item
from scrapy import signals

if TYPE_CHECKING:
    from scrapy.crawler import Crawler
    from scrapy.http import Response

MIDDLEWARE = "crawlfleet.sdk.origins.ItemOrigins"
ORDER = 2  # next to the engine: it tags the items every other middleware let through

# id(item) -> tag, from the callback's output until the item pipeline takes it
_tags: dict[int, str] = {}


def take(item: Any) -> str | None:
    """The tag of `item` (None when it came from no response), forgotten once read."""
    return _tags.pop(id(item), None)


class ItemOrigins:
    """Spider middleware that tags the items of each response (see module doc)."""

    def __init__(self, crawler: Crawler) -> None:
        self.fingerprint = crawler.request_fingerprinter.fingerprint
        # an item dropped or failed in a pipeline never reaches crawlfleet's
        crawler.signals.connect(self.forget, signal=signals.item_dropped)
        crawler.signals.connect(self.forget, signal=signals.item_error)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ItemOrigins:
        return cls(crawler)

    def forget(self, item: Any, **_: Any) -> None:
        _tags.pop(id(item), None)

    def _tagger(self, response: Response) -> Callable[[Any], Any]:
        prefix = self.fingerprint(response.request).hex() if response.request is not None else None
        count = 0

        def tag(output: Any) -> Any:
            nonlocal count
            if prefix is not None and is_item(output):
                _tags[id(output)] = f"{prefix}:{count}"
                count += 1
            return output
        return tag

    def process_spider_output(self, response: Response, result: Iterable[Any],
                              spider: Any = None) -> Iterator[Any]:
        tag = self._tagger(response)
        for output in result:
            yield tag(output)

    async def process_spider_output_async(self, response: Response, result: AsyncIterable[Any],
                                          spider: Any = None) -> AsyncIterator[Any]:
        tag = self._tagger(response)
        async for output in result:
            yield tag(output)
