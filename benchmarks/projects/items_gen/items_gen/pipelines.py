import os

import pymongo


class RawMongoPipeline:
    """The yardstick: plain pymongo insert_many in batches of 100, nothing else."""

    def open_spider(self, spider=None):
        self.client = pymongo.MongoClient(os.environ["BENCH_MONGO_URI"])
        self.collection = self.client[os.environ["BENCH_MONGO_DB"]]["raw_items"]
        self.buffer = []

    def process_item(self, item, spider=None):
        self.buffer.append(dict(item))
        if len(self.buffer) >= 100:
            self.collection.insert_many(self.buffer)
            self.buffer = []
        return item

    def close_spider(self, spider=None):
        if self.buffer:
            self.collection.insert_many(self.buffer)
        self.client.close()
