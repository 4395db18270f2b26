import os
import time

import scrapy


class NoopSpider(scrapy.Spider):
    """The smallest real spider: fetches one page of the demo site and yields
    one item from it. What is left to time is starting, one request, one
    item, and stopping."""

    name = "noop_scrapy"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        base = os.environ.get("CRAWLFLEET_DEMO_URL") or "http://127.0.0.1:8900"
        self.start_urls = [base.rstrip("/") + "/"]
        # when the spider's own code started, for the dispatch benchmark: in its
        # item (a sandboxed spider cannot write outside its task folder), and for
        # Scrapyd in the file it names (its job id is the _job argument)
        self.started_at = time.time()
        marker = os.environ.get("BENCH_START_FILE")
        if marker and not os.environ.get("CRAWLFLEET_TASK_ID"):
            with open(marker, "a") as f:
                f.write(f"{kwargs.get('_job')} {self.started_at}\n")

    def parse(self, response):
        yield {"url": response.url, "title": response.css("title::text").get(default="").strip(),
               "started_at": self.started_at}
