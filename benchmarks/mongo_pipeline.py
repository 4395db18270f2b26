"""The yardstick pipeline of the benchmarks: plain pymongo `insert_many` in
batches of 100, nothing else. bench_overhead.py stores bare `scrapy crawl`'s
and Scrapyd's items with it (tagged with the run's `_tid` and `_at` as
crawlfleet's rows are: crawlfleet's own spiders hold no store credential, their
items go to the node over the task channel); bench_ingest.py times it
untagged against crawlfleet's pipeline.

Configured from the environment: BENCH_MONGO_URI, BENCH_MONGO_DB,
BENCH_COLLECTION, and BENCH_TID (unset: items are stored as yielded).
"""

import os
import time

import pymongo

BATCH = 100


class MongoPipeline:
    def open_spider(self, spider=None):
        self.client = pymongo.MongoClient(os.environ["BENCH_MONGO_URI"])
        self.collection = self.client[os.environ["BENCH_MONGO_DB"]][os.environ["BENCH_COLLECTION"]]
        self.tid = os.environ.get("BENCH_TID")
        self.buffer = []

    def process_item(self, item, spider=None):
        row = dict(item)
        if self.tid is not None:
            row.update(_tid=self.tid, _at=time.time())
        self.buffer.append(row)
        if len(self.buffer) >= BATCH:
            self.collection.insert_many(self.buffer)
            self.buffer = []
        return item

    def close_spider(self, spider=None):
        if self.buffer:
            self.collection.insert_many(self.buffer)
        self.client.close()
