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
        # the dispatch benchmark reads when the spider's own code started
        # (crawlfleet names the task in CRAWLFLEET_TASK_ID, Scrapyd in the _job argument)
        marker = os.environ.get("BENCH_START_FILE")
        if marker:
            task = os.environ.get("CRAWLFLEET_TASK_ID") or kwargs.get("_job")
            with open(marker, "a") as f:
                f.write(f"{task} {time.time()}\n")

    def parse(self, response):
        yield {"url": response.url, "title": response.css("title::text").get(default="").strip()}
