import os
import time

import scrapy


class NoopSpider(scrapy.Spider):
    """Makes no request: all that is left to time is starting and stopping."""

    name = "noop_scrapy"
    start_urls = []

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # the dispatch-latency benchmark reads when the spider itself started
        marker = os.environ.get("BENCH_START_FILE")
        if marker:
            with open(marker, "a") as f:
                f.write(f"{os.environ.get('CRAWLFLEET_TASK_ID')} {time.time()}\n")
