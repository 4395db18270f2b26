import time

import scrapy


class NoopSpider(scrapy.Spider):
    """Makes no request: all that is left to time is starting and stopping."""

    name = "noop_scrapy"
    start_urls = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # when the spider itself started, for the dispatch-latency benchmark
        # (`-a report_start=1`): a spider cannot write outside its sandbox, so
        # it reports it as its one item
        self.started_at = time.time()

    async def start(self):
        if getattr(self, "report_start", None):
            yield {"started_at": self.started_at}
