"""Close the gaps between the ledger and the broker.

One pass, run every ``reconcile_interval`` seconds by every master (each step
is an atomic, idempotent update, so two masters reconciling at once do no
harm):

- a node whose heartbeat lapsed is marked offline, and the tasks it was
  running become ``abnormal`` (the node cannot report on them any more);
- a final task whose retry policy asks for another attempt gets one, after
  its backoff;
- a pending task never published (the broker was down when it was asked for,
  or a retry whose backoff has passed) is published;
- distributed crawls (master/crawls.py) get their lost workers' requests
  back into their frontier, replacements, combined stats and final status;
- a pending task published long ago whose queue is empty lost its message
  (Redis without persistence loses everything on restart) and is published
  again. A duplicate message is harmless: a node claims a task atomically in
  the ledger and drops a message whose task it cannot claim.

A master that could not see the store (its own outage, or its start) judges
no heartbeat until it has watched for a whole ``node_timeout``: nodes that
were heartbeating into an unreachable store are not dead.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from crawlfleet import labels as labelling
from crawlfleet import ledger
from crawlfleet.broker import prune_processed
from crawlfleet.models import (FINAL_VALUES, RETRYABLE_VALUES, NodeStatus, TaskStatus,
                               next_attempt, now)
from master import crawls
from master.dispatch import publish

if TYPE_CHECKING:
    from crawlfleet.broker import Broker
    from crawlfleet.config import Config
    from crawlfleet.store import Store

log = logging.getLogger(__name__)

UNPUBLISHED_GRACE = 5.0  # dispatch publishes right after writing; give it that long
BATCH = 500


class Reconciler:
    def __init__(self, config: Config, store: Store, broker: Broker) -> None:
        self.config = config
        self.store = store
        self.broker = broker
        self.last_success: float | None = None
        self.judging_from = now() + config.node_timeout

    def run_once(self) -> dict[str, Any]:
        at = now()
        if self.last_success is None or at - self.last_success > self.config.node_timeout:
            self.judging_from = max(self.judging_from, at + self.config.node_timeout)
        judging = at >= self.judging_from
        report = {
            "offline_nodes": self.mark_offline_nodes() if judging else [],
            "abnormal_tasks": self.mark_orphaned_tasks() if judging else [],
            "retries": self.schedule_retries(),
            "published": self.publish_stranded_tasks(),
            "pruned_messages": prune_processed(self.config),
            "crawls_ended": crawls.supervise(self.store, self.broker, self.config),
        }
        self.last_success = now()
        return report

    def mark_offline_nodes(self) -> list[str]:
        cutoff = now() - self.config.node_timeout
        lapsed = [n["_id"] for n in self.store.nodes.find(
            {"status": NodeStatus.ONLINE.value, "heartbeat_at": {"$lt": cutoff}}, {"_id": 1})]
        for node_id in lapsed:
            self.store.nodes.update_one(
                {"_id": node_id, "heartbeat_at": {"$lt": cutoff}},
                {"$set": {"status": NodeStatus.OFFLINE.value}})
            log.warning("node %s missed its heartbeats: offline", node_id)
        return lapsed

    def mark_orphaned_tasks(self) -> list[str]:
        alive = {n["_id"]: n.get("session") for n in self.store.nodes.find(
            {"status": NodeStatus.ONLINE.value,
             "heartbeat_at": {"$gte": now() - self.config.node_timeout}},
            {"session": 1})}
        marked = []
        for task in self.store.tasks.find({"status": TaskStatus.RUNNING.value},
                                          {"node_id": 1, "session": 1, "started_at": 1}):
            session = alive.get(task.get("node_id"))
            if session is not None and session == task.get("session"):
                continue
            reason = (f"node {task.get('node_id')} stopped heartbeating" if session is None
                      else f"node {task.get('node_id')} restarted while the task ran")
            if ledger.mark_abnormal(self.store, task["_id"], task.get("session"), reason):
                log.warning("task %s abnormal: %s", task["_id"], reason)
                marked.append(task["_id"])
        return marked

    def schedule_retries(self) -> list[str]:
        """Give each final task whose policy asks for it its next attempt, once."""
        made = []
        done = self.store.tasks.find(
            {"retry_pending": True, "status": {"$in": FINAL_VALUES}}).limit(BATCH)
        for task in done:
            policy = task.get("retry") or {}
            attempt = task.get("attempt", 1)
            due = (task["status"] in policy.get("on", RETRYABLE_VALUES)
                   and attempt < policy.get("max_attempts", 1)
                   and not task.get("cancel_requested"))
            retry = None
            if due:
                delay = policy.get("backoff", 0) * 2 ** (attempt - 1)
                retry = next_attempt(task, delay)
                # False: another master made it already (its id is derived).
                if ledger.add_attempt(self.store, retry):
                    log.warning("task %s %s: attempt %d of %d in %.0f s as %s", task["_id"],
                                task["status"], retry["attempt"], policy["max_attempts"],
                                delay, retry["_id"])
                    made.append(retry["_id"])
                    if delay == 0:
                        publish(self.store, self.broker, retry)
            ledger.supersede(self.store, task["_id"], retry["_id"] if retry else None)
        return made

    def publish_stranded_tasks(self) -> list[str]:
        at = now()
        published = []
        never = self.store.tasks.find(
            {"status": TaskStatus.PENDING.value, "published_at": None,
             "created_at": {"$lt": at}}).limit(BATCH)
        for task in never:
            due = (task["not_before"] if task.get("not_before") is not None
                   else task["created_at"] + UNPUBLISHED_GRACE)
            if due <= at and publish(self.store, self.broker, task):
                published.append(task["_id"])
        stale = list(self.store.tasks.find(
            {"status": TaskStatus.PENDING.value,
             "published_at": {"$lt": at - self.config.republish_after}}).limit(BATCH))
        depths: dict[tuple[str, str], int | None] = {}
        for task in stale:
            target = task.get("target") or "any"
            wanted = task.get("labels") or {}
            queue = (target, labelling.describe(wanted))
            if queue not in depths:
                try:
                    depths[queue] = self.broker.queue_depth(target, wanted)
                except Exception as exc:
                    log.warning("cannot read the depth of queue %s: %s", queue, exc)
                    depths[queue] = None
            if depths[queue] == 0 and publish(self.store, self.broker, task):
                log.warning("task %s: its message was lost; published again", task["_id"])
                published.append(task["_id"])
        return published
