"""The yardstick pipeline of the realistic crawl (bench_overhead.py) for bare
`scrapy crawl` and Scrapyd: plain pymongo `insert_many` in batches of 100,
each item tagged with the run's `_tid` and `_at` as crawlfleet's rows are.
crawlfleet's own spiders hold no store credential (their items go to the
node over the task channel), so the peers get the plainest equivalent.

Configured from the environment: BENCH_MONGO_URI, BENCH_MONGO_DB,
BENCH_COLLECTION, BENCH_TID.
"""

import os
import time

import pymongo

BATCH = 100


class MongoPipeline:
    def open_spider(self, spider=None):
        self.client = pymongo.MongoClient(os.environ["BENCH_MONGO_URI"])
        self.collection = self.client[os.environ["BENCH_MONGO_DB"]][os.environ["BENCH_COLLECTION"]]
        self.tid = os.environ.get("BENCH_TID", "")
        self.buffer = []

    def process_item(self, item, spider=None):
        self.buffer.append(dict(item, _tid=self.tid, _at=time.time()))
        if len(self.buffer) >= BATCH:
            self.collection.insert_many(self.buffer)
            self.buffer = []
        return item

    def close_spider(self, spider=None):
        if self.buffer:
            self.collection.insert_many(self.buffer)
        self.client.close()
