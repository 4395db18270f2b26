"""The broker topology, in one module that publishers and consumers both import.

- ``<prefix>-tasks``: a direct exchange. Routing key ``any`` reaches the shared
  queue ``<prefix>-tasks`` (any node takes it); ``node-<id>`` reaches that
  node's own durable queue ``<prefix>-node-<id>``; ``labels-<key>`` reaches the
  queue ``<prefix>-labels-<key>`` of one label selector (``region=eu``), which
  every node carrying those labels consumes (crawlfleet/labels.py names it). A
  message for labels no node carries yet waits in its queue: the publisher
  declares it.
- ``<prefix>-control``: a fan-out exchange; every node binds a private,
  auto-deleted queue to it and hears cancel requests.

Messages are JSON and carry a task id and nothing a node would execute: the
node reads what to run from the ledger. Queue names hold no dots because the
embedded (filesystem) transport keeps the queue name in file names.
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from kombu import Connection, Exchange, Queue
from kombu.pools import ProducerPool

from crawlfleet import embedded_broker
from crawlfleet.labels import selector_key

if TYPE_CHECKING:
    from crawlfleet.config import Config

log = logging.getLogger(__name__)

MAX_PRIORITY = 9
LABEL_ROUTE_PREFIX = "labels-"
PUBLISH_RETRY_POLICY = {
    "max_retries": 5,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 2,
}


class Topology:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.task_exchange = Exchange(f"{prefix}-tasks", type="direct", durable=True)
        self.control_exchange = Exchange(f"{prefix}-control", type="fanout", durable=True)
        self.shared_queue = Queue(
            f"{prefix}-tasks", self.task_exchange, routing_key="any",
            durable=True, max_priority=MAX_PRIORITY,
        )

    def node_queue(self, node_id: str) -> Queue:
        return Queue(
            f"{self.prefix}-node-{node_id}", self.task_exchange,
            routing_key=f"node-{node_id}", durable=True, max_priority=MAX_PRIORITY,
        )

    def control_queue(self, node_id: str) -> Queue:
        # A fresh name each start: a node's control queue lives only as long as it does.
        return Queue(
            f"{self.prefix}-control-{node_id}-{uuid.uuid4().hex[:8]}", self.control_exchange,
            durable=False, auto_delete=True,
        )

    def label_queue(self, labels: Mapping[str, str]) -> Queue:
        key = selector_key(labels)
        return Queue(
            f"{self.prefix}-labels-{key}", self.task_exchange,
            routing_key=f"{LABEL_ROUTE_PREFIX}{key}", durable=True, max_priority=MAX_PRIORITY,
        )

    @staticmethod
    def is_label_route(routing_key: str | None) -> bool:
        """Whether a task message was routed to a label selector's queue."""
        return (routing_key or "").startswith(LABEL_ROUTE_PREFIX)

    def queue_for(self, target: str | None, labels: Mapping[str, str] | None = None) -> Queue:
        """The queue a task for `target` ("any" or a node id) is published to; a task
        for any node that asks for labels goes to its selector's queue."""
        if target is None or target == "any":
            return self.label_queue(labels) if labels else self.shared_queue
        return self.node_queue(target)


def connect(config: Config) -> Connection:
    """A kombu Connection for the configured broker (not yet connected)."""
    url = config.broker_url
    options: dict[str, Any] = {}
    transport: type | None = None
    if url.startswith("filesystem://"):
        root = config.home_path / "broker"
        for sub in ("queue", "control", "processed", "doorbells"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        options = {
            "data_folder_in": str(root / "queue"),
            "data_folder_out": str(root / "queue"),
            "control_folder": str(root / "control"),
            # Read messages are moved, not copied, inside the same folder tree,
            # which keeps the move atomic between competing consumers.
            "store_processed": True,
            "processed_folder": str(root / "processed"),
            # Publishers ring waiting consumers (embedded_broker.Doorbell); the
            # interval is only the fallback for a ring that does not arrive.
            "doorbell_folder": str(root / "doorbells"),
            "polling_interval": 0.25,
        }
        url = "filesystem://localhost/"  # kombu warns when no host is named
        transport = embedded_broker.Transport
    elif url.startswith(("amqp", "pyamqp")):
        options = {"confirm_publish": True}
    elif url.startswith("redis"):
        options = {"socket_timeout": 10, "socket_connect_timeout": 5,
                   "health_check_interval": 10}
    return Connection(url, transport=transport, transport_options=options, heartbeat=0,
                      connect_timeout=5)


def prune_processed(config: Config, older_than: float = 600.0) -> int:
    """Delete messages the embedded broker has delivered (it keeps them to move
    them atomically). Returns how many were removed."""
    folder = config.home_path / "broker" / "processed"
    if not config.uses_embedded_broker or not folder.is_dir():
        return 0
    cutoff = time.time() - older_than
    removed = 0
    for entry in os.scandir(folder):
        try:
            if entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass
    return removed


class Broker:
    """Publishes task announcements and control messages."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.topology = Topology(config.queue_prefix)
        self.connection = connect(config)
        # A pool of its own: kombu's global pools are shared by every Connection
        # to the same URL, so closing one would close them for all.
        self.producers = ProducerPool(self.connection.Pool(limit=16), limit=16)

    def publish_task(self, task_id: str, target: str = "any", priority: int = 0,
                     labels: Mapping[str, str] | None = None) -> None:
        queue = self.topology.queue_for(target, labels)
        self._publish(
            {"task_id": task_id},
            exchange=self.topology.task_exchange,
            routing_key=queue.routing_key,
            declare=[queue],
            priority=max(0, min(MAX_PRIORITY, int(priority or 0))),
        )

    def publish_control(self, message: dict[str, Any]) -> None:
        self._publish(message, exchange=self.topology.control_exchange, routing_key="",
                      declare=[self.topology.control_exchange])

    def _publish(self, body: dict[str, Any], **kwargs: Any) -> None:
        with self.producers.acquire(block=True, timeout=30) as producer:
            producer.publish(
                body,
                serializer="json",
                delivery_mode=2,
                retry=True,
                retry_policy=PUBLISH_RETRY_POLICY,
                **kwargs,
            )

    def queue_depth(self, target: str = "any", labels: Mapping[str, str] | None = None) -> int:
        """Messages waiting in a task queue (0 when it does not exist yet)."""
        queue = self.topology.queue_for(target, labels)
        with self.connection.clone() as conn:
            try:
                _, count, _ = queue(conn.default_channel).queue_declare(passive=True)
                return count
            except conn.channel_errors:
                return 0

    def close(self) -> None:
        self.producers.force_close_all()
        self.connection.release()
