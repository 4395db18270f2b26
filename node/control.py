"""What an operator set on this node (master/nodes.py writes it into the node's
document), read every second, and applied to the node's task consumer.

- ``mode``: ``enabled`` consumes; ``draining`` and ``disabled`` cancel the task
  consumer, so the broker hands this node nothing new and keeps the messages
  for other nodes; running tasks go on to their end.
- ``run_slots``: how many tasks run at once (None: the node's own
  ``max_runners``). The broker's prefetch follows it, so a node never holds
  more messages than it can start.
- ``labels``: the node consumes the queue of every label selector a run has
  asked for (``label_selectors``) that its labels satisfy.

`refresh` runs on the heartbeat thread (it reads the store); `apply` runs on
the consuming thread, the only one allowed to touch the kombu channel.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any


from crawlfleet import labels as labelling
from crawlfleet.broker import Topology
from crawlfleet.models import Doc, NodeMode

log = logging.getLogger(__name__)


@dataclass(eq=False)
class NodeControl:
    store: Any
    node_id: str
    own_slots: int
    topology: Topology
    lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    labels: dict[str, str] = field(default_factory=dict, init=False)
    mode: str = field(default=NodeMode.ENABLED.value, init=False)
    slots: int = field(init=False)  # the node's own until an operator sets run_slots
    # queue name -> labels it asks for
    selectors: dict[str, dict[str, str]] = field(default_factory=dict, init=False)
    applied: tuple[Any, ...] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.slots = self.own_slots

    @property
    def accepting(self) -> bool:
        return self.mode == NodeMode.ENABLED.value

    def refresh(self) -> None:
        """Read the operator's settings and the selectors this node satisfies."""
        doc: Doc = self.store.nodes.find_one(
            {"_id": self.node_id}, {"labels": 1, "mode": 1, "run_slots": 1}) or {}
        labels = doc.get("labels") or {}
        selectors = {
            self.topology.label_queue(d["labels"]).name: d["labels"]
            for d in self.store.label_selectors.find({}, {"labels": 1})
            if isinstance(d.get("labels"), dict) and d["labels"]
            and labelling.matches(d["labels"], labels)}
        slots = doc.get("run_slots")
        with self.lock:
            self.labels = labels
            self.mode = doc.get("mode") or NodeMode.ENABLED.value
            self.slots = slots if isinstance(slots, int) and slots > 0 else self.own_slots
            self.selectors = selectors

    def forget_applied(self) -> None:
        """A new channel: everything is applied again on it."""
        self.applied = None

    def apply(self, consumer: Any, channel: Any, amqp: bool) -> None:
        """Bring the task consumer (a kombu Consumer) in line with the settings
        (consuming thread)."""
        with self.lock:
            accepting, slots, selectors = self.accepting, self.slots, dict(self.selectors)
        wanted = (accepting, slots, frozenset(selectors))
        if wanted == self.applied:
            return
        previous = self.applied
        fixed = {self.topology.shared_queue.name, self.topology.node_queue(self.node_id).name}
        for name in [q.name for q in consumer.queues if q.name not in fixed]:
            if name not in selectors:
                consumer.cancel_by_queue(name)
        present = {q.name for q in consumer.queues}
        for name, labels in selectors.items():
            if name not in present:
                consumer.add_queue(self.topology.label_queue(labels))
        if previous is None or previous[:2] != wanted[:2]:
            # A new prefetch holds only for consumers started after it: restart them.
            # Unacked messages (the running tasks) stay with the channel.
            consumer.cancel()
            if accepting:
                consumer.qos(prefetch_count=slots)
                if amqp:  # both task queues together, not each, stay within the slots
                    channel.basic_qos(0, slots, True)
        if accepting:
            consumer.consume()  # starts the queues not consumed yet
        self.applied = wanted
        log.info("node %s: %s, %d run slot(s), %d label queue(s)", self.node_id,
                 "taking tasks" if accepting else f"{self.mode}: taking no new task",
                 slots, len(selectors))
