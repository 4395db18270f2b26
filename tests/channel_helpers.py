"""A spider's TaskContext wired to a node-side writer in the test process,
as a node wires it for a real spider (node/taskchannel.py)."""

import os

from crawlfleet.sdk.context import TaskContext
from node.itemwriter import ItemWriter
from node.taskchannel import TaskChannel


class NodeBackedContext(TaskContext):
    """TaskContext whose close() also ends the node's side and flushes its count."""

    def __init__(self, store, task_id, collection, session="test-session"):
        # the node writes only for a task it owns: running, with its session
        store.tasks.update_one({"_id": task_id},
                               {"$set": {"status": "running", "session": session}}, upsert=True)
        self.writer = ItemWriter(store, {"_id": task_id, "results_collection": collection},
                                 session, lambda line: None)
        self.channel = TaskChannel(self.writer, lambda line: None)
        super().__init__(task_id, os.dup(self.channel.spider_fd), collection)
        self.channel.started()

    def close(self):
        self.sock.close()
        self.channel.close()
        self.writer.close()
