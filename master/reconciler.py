"""Close the gaps between the ledger and the broker.

One pass, run every ``reconcile_interval`` seconds by the master:

- a node whose heartbeat lapsed is marked offline, and the tasks it was
  running become ``abnormal`` (the node cannot report on them any more);
- a pending task never published (the broker was down when it was asked for)
  is published;
- a pending task published long ago whose queue is empty lost its message
  (Redis without persistence loses everything on restart) and is published
  again. A duplicate message is harmless: a node claims a task atomically in
  the ledger and drops a message whose task it cannot claim.
"""

import logging

from crawlfleet.broker import prune_processed
from crawlfleet.models import TaskStatus, now
from master.dispatch import publish

log = logging.getLogger(__name__)

UNPUBLISHED_GRACE = 5.0  # dispatch publishes right after writing; give it that long


class Reconciler:
    def __init__(self, config, store, broker):
        self.config = config
        self.store = store
        self.broker = broker

    def run_once(self):
        return {
            "offline_nodes": self.mark_offline_nodes(),
            "abnormal_tasks": self.mark_orphaned_tasks(),
            "published": self.publish_stranded_tasks(),
            "pruned_messages": prune_processed(self.config),
        }

    def mark_offline_nodes(self):
        cutoff = now() - self.config.node_timeout
        lapsed = [n["_id"] for n in self.store.nodes.find(
            {"status": "online", "heartbeat_at": {"$lt": cutoff}}, {"_id": 1})]
        for node_id in lapsed:
            self.store.nodes.update_one(
                {"_id": node_id, "heartbeat_at": {"$lt": cutoff}},
                {"$set": {"status": "offline"}})
            log.warning("node %s missed its heartbeats: offline", node_id)
        return lapsed

    def mark_orphaned_tasks(self):
        alive = {n["_id"]: n.get("session") for n in self.store.nodes.find(
            {"status": "online", "heartbeat_at": {"$gte": now() - self.config.node_timeout}},
            {"session": 1})}
        marked = []
        for task in self.store.tasks.find({"status": TaskStatus.RUNNING.value},
                                          {"node_id": 1, "session": 1}):
            session = alive.get(task.get("node_id"))
            if session is not None and session == task.get("session"):
                continue
            reason = (f"node {task.get('node_id')} stopped heartbeating" if session is None
                      else f"node {task.get('node_id')} restarted while the task ran")
            result = self.store.tasks.update_one(
                {"_id": task["_id"], "status": TaskStatus.RUNNING.value,
                 "session": task.get("session")},
                {"$set": {"status": TaskStatus.ABNORMAL.value, "finished_at": now(),
                          "error": reason}})
            if result.modified_count:
                log.warning("task %s abnormal: %s", task["_id"], reason)
                marked.append(task["_id"])
        return marked

    def publish_stranded_tasks(self):
        at = now()
        published = []
        never = self.store.tasks.find(
            {"status": TaskStatus.PENDING.value, "published_at": None,
             "created_at": {"$lt": at - UNPUBLISHED_GRACE}})
        for task in never:
            if publish(self.store, self.broker, task):
                published.append(task["_id"])
        stale = list(self.store.tasks.find(
            {"status": TaskStatus.PENDING.value,
             "published_at": {"$lt": at - self.config.republish_after}}))
        depths = {}
        for task in stale:
            target = task.get("target") or "any"
            if target not in depths:
                try:
                    depths[target] = self.broker.queue_depth(target)
                except Exception as exc:
                    log.warning("cannot read the depth of queue %s: %s", target, exc)
                    depths[target] = None
            if depths[target] == 0 and publish(self.store, self.broker, task):
                log.warning("task %s: its message was lost; published again", task["_id"])
                published.append(task["_id"])
        return published
